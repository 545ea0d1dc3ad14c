"""The official Python `kubernetes` client against `fake-apiserver serve`, one scenario per run:

    python client_scenarios.py crud|watch-resume|stale-replace|status-subresource

It loads the kubeconfig from $KUBECONFIG, does what the scenario says, and prints one JSON object
with what the client saw; the Rust test (fake-apiserver/tests/it/python_client.rs) checks that and
the objects left on the server. Any exception fails the run with a traceback.
"""

import json
import sys

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

NS = "default"
GROUP, VERSION, PLURAL = "kopf.dev", "v1", "kopfexamples"


def configmap(name, data, labels=None):
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data=data)


def crud(core, custom):
    created = core.create_namespaced_config_map(NS, configmap("a", {"k": "1"}, {"app": "py"}))
    core.create_namespaced_config_map(NS, configmap("b", {"k": "2"}))
    read = core.read_namespaced_config_map("a", NS)
    read.data["k"] = "replaced"
    replaced = core.replace_namespaced_config_map("a", NS, read)
    patched = core.patch_namespaced_config_map("a", NS, {"data": {"extra": "x"}})
    labelled = core.list_namespaced_config_map(NS, label_selector="app=py")
    deleted = core.delete_namespaced_config_map("b", NS)
    try:
        core.read_namespaced_config_map("b", NS)
        gone = None
    except ApiException as e:
        gone = {"status": e.status, "reason": json.loads(e.body)["reason"]}
    example = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "KopfExample",
        "metadata": {"name": "ex1"},
        "spec": {"field": "from python", "items": ["a"]},
    }
    made = custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, example)
    custom.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "ex1", {"spec": {"items": ["a", "b"]}})
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)
    return {
        "created_uid": created.metadata.uid,
        "replaced_rv": replaced.metadata.resource_version,
        "patched_data": patched.data,
        "labelled": [c.metadata.name for c in labelled.items],
        "deleted": deleted if isinstance(deleted, dict) else deleted.to_dict(),
        "gone": gone,
        "example_uid": made["metadata"]["uid"],
        "examples": [[e["metadata"]["name"], e["spec"]] for e in listed["items"]],
    }


def events_from(core, resource_version, count):
    """Watches config maps from `resource_version` until `count` events came; returns them."""
    seen = []
    stream = watch.Watch()
    for event in stream.stream(core.list_namespaced_config_map, NS, resource_version=resource_version, timeout_seconds=60):
        obj = event["object"]
        seen.append([event["type"], obj.metadata.name, (obj.data or {}).get("k"), obj.metadata.resource_version])
        if len(seen) == count:
            stream.stop()
    return seen


def watch_resume(core, _custom):
    listed = core.list_namespaced_config_map(NS)
    core.create_namespaced_config_map(NS, configmap("w1", {"k": "1"}))
    core.patch_namespaced_config_map("w1", NS, {"data": {"k": "2"}})
    first = events_from(core, listed.metadata.resource_version, 2)
    # Resume from the last event seen: only what happened after it comes, nothing twice.
    core.create_namespaced_config_map(NS, configmap("w2", {"k": "3"}))
    core.delete_namespaced_config_map("w1", NS)
    second = events_from(core, first[-1][3], 2)
    return {"list_rv": listed.metadata.resource_version, "first": first, "second": second}


def stale_replace(core, _custom):
    core.create_namespaced_config_map(NS, configmap("s", {"k": "1"}))
    stale = core.read_namespaced_config_map("s", NS)
    core.patch_namespaced_config_map("s", NS, {"data": {"k": "2"}})
    stale.data["k"] = "stale"
    try:
        core.replace_namespaced_config_map("s", NS, stale)
        return {"error": None}
    except ApiException as e:
        body = json.loads(e.body)
        return {"error": e.status, "kind": body["kind"], "reason": body["reason"], "message": body["message"], "stale_rv": stale.metadata.resource_version}


def status_subresource(_core, custom):
    example = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "KopfExample",
        "metadata": {"name": "st"},
        "spec": {"field": "f", "items": []},
    }
    made = custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, example)
    # Through the main resource, a status is ignored; through /status, the spec is.
    main = custom.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "st", {"status": {"x": 1}, "spec": {"field": "g"}})
    status = custom.patch_namespaced_custom_object_status(GROUP, VERSION, NS, PLURAL, "st", {"status": {"y": 2}, "spec": {"field": "ignored"}})
    got = custom.get_namespaced_custom_object_status(GROUP, VERSION, NS, PLURAL, "st")
    return {
        "generation": [made["metadata"]["generation"], main["metadata"]["generation"], status["metadata"]["generation"]],
        "main_status": main.get("status"),
        "after_status": [status["spec"], status.get("status")],
        "got": [got["spec"], got.get("status")],
    }


SCENARIOS = {
    "crud": crud,
    "watch-resume": watch_resume,
    "stale-replace": stale_replace,
    "status-subresource": status_subresource,
}

if __name__ == "__main__":
    config.load_kube_config()
    api = client.ApiClient()
    result = SCENARIOS[sys.argv[1]](client.CoreV1Api(api), client.CustomObjectsApi(api))
    print(json.dumps(result))
