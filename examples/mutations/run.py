#!/usr/bin/env python3
"""Breaks each example's promised behaviour in turn and checks that the example's tests catch it.

Usage (from the repository root): python3 examples/mutations/run.py [NAME_FILTER]
Each mutation is a source edit (file, text, replacement) applied in place; the example's tests
(`cargo test -p kopf-examples --lib MODULE`) must then fail. The file is restored afterwards,
whatever happens. Prints one line per mutation and the count caught; exits 1 if any survived.
"""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SRC = ROOT / "examples" / "src"

# (module whose tests must catch it, file, text, replacement, what the edit breaks)
MUTATIONS = [
    ("ex01_minimal", "ex01_minimal.rs", 'Ok::<_, HandlerError>(json!({"message": "hello world"}))', 'Ok::<_, HandlerError>(json!({"message": "hello"}))', "the greeting in the status"),
    ("ex02_children", "ex02_children.rs", "owner_references: Some(vec![owner])", "owner_references: None", "the child's adoption"),
    ("ex03_exceptions", "ex03_exceptions.rs", "if ctx.retry() < 3 {", "if ctx.retry() < 2 {", "the number of temporary errors"),
    ("ex04_events", "ex04_events.rs", 'ctx.event("Warning", "SomeReason", "Some warning");', "", "an explicit event"),
    ("ex05_handlers", "ex05_handlers.rs", '.on_field("spec.field"', '.on_field("spec.items"', "the field handler's field"),
    ("ex06_peering", "ex06_peering.rs", "s.peering.priority = priority;", "s.peering.priority = -priority;", "the replicas' priorities"),
    ("ex07_subhandlers", "ex07_subhandlers.rs", 'json!({"handled": item})', 'json!({"handled": "?"})', "a child's result"),
    ("ex08_events", "ex08_events.rs", 'ctx.event_type().unwrap_or("?")', 'ctx.event_type().map(|_| "MODIFIED").unwrap_or("?")', "the event types seen"),
    ("ex09_testing", "kopfexample.rs", "Duration::from_secs(60);", "Duration::from_secs(30);", "the example operator's heartbeat"),
    ("ex10_builtins", "ex10_builtins.rs", '.id("pod_deleted")\n        .optional()', '.id("pod_deleted")', "no finalizers on Pods"),
    ("ex11_filtering", "ex11_filtering.rs", '.labels("somelabel", MetaFilter::Absent)', '.labels("somelabel", MetaFilter::Present)', "a label filter"),
    ("ex12_embedded", "ex12_embedded.rs", "let _ = done_tx.send(result);", "let _ = done_tx.send(serde_json::Value::Null);", "what the host program learns"),
    ("ex13_hooks", "ex13_hooks.rs", 'ctx.memo().insert(Greeting("hello from startup".into()));', "", "the startup handler's memo"),
    ("ex14_daemons", "ex14_daemons.rs", "if ctx.stopped().wait(PERIOD).await {", "if ctx.stopped().wait(PERIOD * 2).await {", "the daemon's period"),
    ("ex15_timers", "ex15_timers.rs", ".idle(Duration::from_secs(300))", ".idle(Duration::from_secs(200))", "the idle period"),
    ("ex16_indexing", "ex16_indexing.rs", "|app| json!({app: name})", "|_app| json!({})", "the index entries"),
    ("ex17_admission", "ex17_admission.rs", '.labels("somelabel", "somevalue")', "", "the mutation's label selector"),
    ("ex99_all_at_once", "ex99_all_at_once.rs", ".id(\"tick\")", ".id(\"tock\")", "the timer's id"),
    ("configmap_driven", "configmap_driven.rs", '.map(|(k, v)| (k, v.replace("${NAME}", &name)))', ".map(|(k, v)| (k, v))", "the rendering"),
    ("child_deployment", "child_deployment.rs", 'c.status.as_deref() == Some("True")', 'c.status.as_deref().is_some()', "waiting for availability"),
]


def main() -> int:
    only = sys.argv[1] if len(sys.argv) > 1 else ""
    caught = total = 0
    for module, file, text, replacement, what in MUTATIONS:
        if only not in module:
            continue
        path = SRC / file
        original = path.read_text()
        if original.count(text) != 1:
            print(f"ERROR {module}: the text to mutate is not in {file} exactly once: {text!r}")
            return 2
        total += 1
        try:
            path.write_text(original.replace(text, replacement))
            run = subprocess.run(
                ["cargo", "test", "-q", "-p", "kopf-examples", "--lib", f"{module}::"],
                cwd=ROOT, capture_output=True, text=True,
            )
        finally:
            path.write_text(original)
        if "error[E" in run.stderr or "could not compile" in run.stderr:
            print(f"ERROR {module}: the mutant did not compile ({what})")
            return 2
        if run.returncode != 0:
            caught += 1
            print(f"caught   {module}: {what}")
        else:
            print(f"SURVIVED {module}: {what}")
    print(f"{caught} of {total} mutations caught")
    return 0 if caught == total else 1


if __name__ == "__main__":
    sys.exit(main())
