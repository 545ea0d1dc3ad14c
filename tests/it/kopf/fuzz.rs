//! Fuzzing kopf's readers of what it keeps on objects — progress records, the diff-base, the
//! legacy `status.kopf.progress` — with arbitrary and half-valid input, on the stable toolchain
//! (proptest): never a panic, a record either read or ignored, what kopf writes read back
//! unchanged, and a whole operator handling objects whatever kopf annotations they come with.
//!
//! Bounded in CI; the long run sets `FUZZ_CASES` (and `FUZZ_THREADS`, default 2; the whole-operator
//! test takes `FUZZ_OPERATOR_CASES`) and prints the inputs tried and the panics:
//! `FUZZ_CASES=10000000 cargo test --release -p kopf-tests --test it kopf::fuzz::parsers -- --nocapture`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kopf::{Context, DiffBaseStorage, HandlerError, Operator, Patch, ProgressRecord, ProgressStorage};
use kopf_testing::KopfRunner;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{Value, json};

use crate::common::*;

const HANDLER: &str = "create_fn";

fn cases(default: u64) -> u64 {
    std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Timestamps as Kopf writes them, in other formats, out of range, and junk.
fn timestamp() -> BoxedStrategy<String> {
    prop_oneof![
        Just("2026-01-01T00:00:05.250000+00:00".to_owned()),
        Just("2020-02-14T16:58:25.396364".to_owned()),
        Just("9999-12-31T23:59:59.999999+00:00".to_owned()),
        Just("0001-01-01T00:00:00+00:00".to_owned()),
        Just("-009999-01-01T00:00:00Z".to_owned()),
        Just("2026-13-45T25:61:61Z".to_owned()),
        (0i64..4_102_444_800)
            .prop_map(|s| format!("{}", jiff::Timestamp::from_second(s).unwrap_or_default())),
        "[0-9T:.+Z-]{0,32}",
        any::<String>(),
    ]
    .boxed()
}

/// Records with every field random, extremes included.
fn record() -> BoxedStrategy<ProgressRecord> {
    (
        (prop::option::of(timestamp()), prop::option::of(timestamp()), prop::option::of(timestamp())),
        prop::option::of(prop_oneof![Just("create".to_owned()), Just("update".to_owned()), any::<String>()]),
        prop::option::of(prop_oneof![Just(u32::MAX), Just(u32::MAX - 1), 0u32..20, any::<u32>()]),
        (prop::option::of(any::<bool>()), prop::option::of(any::<bool>())),
        prop::option::of(any::<String>()),
        prop::option::of(prop::collection::vec(any::<String>(), 0..3)),
    )
        .prop_map(|((started, stopped, delayed), purpose, retries, (success, failure), message, subrefs)| {
            ProgressRecord { started, stopped, delayed, purpose, retries, success, failure, message, subrefs }
        })
        .boxed()
}

/// Any JSON value, small.
fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("started".to_owned()),
                    Just("retries".to_owned()),
                    Just("success".to_owned()),
                    Just("delayed".to_owned()),
                    Just("subrefs".to_owned()),
                    Just("spec".to_owned()),
                    Just("metadata".to_owned()),
                    ".{0,8}",
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// What an annotation value may hold: a valid record, a damaged one, any JSON, any text, any
/// bytes.
fn annotation() -> BoxedStrategy<String> {
    prop_oneof![
        3 => record().prop_map(|r| r.encode()),
        2 => (record(), any::<prop::sample::Index>(), any::<char>()).prop_map(|(r, at, c)| {
            let mut text: Vec<char> = r.encode().chars().collect();
            let i = at.index(text.len() + 1);
            if i < text.len() && c.is_ascii_digit() { text.truncate(i) } else { text.insert(i.min(text.len()), c) }
            text.into_iter().collect()
        }),
        2 => json_value().prop_map(|v| v.to_string()),
        1 => any::<String>(),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
    .boxed()
}

/// A body carrying a random progress record, touch annotation, diff-base and legacy status
/// record.
fn body() -> BoxedStrategy<Value> {
    (
        prop::option::of(annotation()),
        prop::option::of(annotation()),
        prop::option::of(annotation()),
        prop::option::of(json_value()),
        json_value(),
    )
        .prop_map(|(v2, touch, diffbase, legacy, spec)| {
            let mut annotations = serde_json::Map::new();
            if let Some(v) = v2 {
                annotations.insert(format!("kopf.zalando.org/{HANDLER}"), v.into());
            }
            if let Some(v) = touch {
                annotations.insert("kopf.zalando.org/touch-dummy".into(), v.into());
            }
            if let Some(v) = diffbase {
                annotations.insert("kopf.zalando.org/last-handled-configuration".into(), v.into());
            }
            let mut body = json!({
                "apiVersion": "kopf.dev/v1", "kind": "KopfExample",
                "metadata": {"name": "ex1", "namespace": "default", "annotations": annotations},
                "spec": spec,
            });
            if let Some(legacy) = legacy {
                body["status"] = json!({"kopf": {"progress": {HANDLER: legacy}}});
            }
            body
        })
        .boxed()
}

fn merged(body: &Value, patch: &Patch) -> Value {
    let mut out = body.clone();
    json_patch::merge(&mut out, &patch.snapshot());
    out
}

/// One input through every parser: read or ignored, never a panic, and what kopf writes back is
/// read back unchanged.
fn check_parsers(body: &Value) -> Result<(), TestCaseError> {
    let progress = ProgressStorage::default();
    let diffbase = DiffBaseStorage::default();
    if let Some(record) = progress.fetch(HANDLER, body) {
        let patch = Patch::default();
        progress.store(HANDLER, &record, body, &patch);
        prop_assert_eq!(
            progress.fetch(HANDLER, &merged(body, &patch)),
            Some(record),
            "a stored record reads back"
        );
    }
    if let Some(old) = diffbase.fetch(body) {
        prop_assert!(old.is_object());
    }
    let essence = diffbase.build(body, &[vec!["spec".to_owned()]]);
    let patch = Patch::default();
    diffbase.store(body, &patch, &essence);
    prop_assert_eq!(diffbase.fetch(&merged(body, &patch)), Some(essence), "a stored essence reads back");
    let _ = kopf::diff(diffbase.fetch(body).as_ref(), Some(&diffbase.build(body, &[])));
    Ok(())
}

/// Runs `cases` inputs of the strategy `make` gives through `check` on `threads` threads (seeded
/// runners); returns the inputs tried.
fn fuzz<S: Strategy>(
    make: impl Fn() -> S + Sync,
    cases: u64,
    threads: u64,
    check: impl Fn(S::Value) -> Result<(), TestCaseError> + Sync,
) -> u64 {
    let tried = AtomicU64::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (make, tried, check) = (&make, &tried, &check);
                scope.spawn(move || {
                    let mut seed = [0u8; 32];
                    seed[..8].copy_from_slice(&(t + 1).to_le_bytes());
                    let share = cases / threads + u64::from(t < cases % threads);
                    let config = Config {
                        cases: u32::try_from(share).unwrap_or(u32::MAX),
                        failure_persistence: None,
                        ..Config::default()
                    };
                    let mut runner =
                        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
                    runner
                        .run(&make(), |input| {
                            tried.fetch_add(1, Ordering::Relaxed);
                            check(input)
                        })
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("{e}"),
                Err(_) => panic!("a fuzzing thread panicked outside a case"),
            }
        }
    });
    tried.into_inner()
}

#[test]
fn parsers_read_or_ignore_any_progress_record_and_diff_base_and_read_back_what_they_write() {
    let threads = std::env::var("FUZZ_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2u64).max(1);
    let started = std::time::Instant::now();
    let tried = fuzz(body, cases(4_000), threads, |body| check_parsers(&body));
    // proptest turns a panic into a failed case, so reaching here means no input panicked.
    eprintln!("kopf parsers: {tried} inputs, 0 panics, {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn parsers_take_the_records_kopf_writes_for_what_they_are() {
    let tried = fuzz(record, cases(1_000), 1, |record| {
        let body =
            json!({"metadata": {"annotations": {format!("kopf.zalando.org/{HANDLER}"): record.encode()}}});
        prop_assert_eq!(ProgressStorage::default().fetch(HANDLER, &body), Some(record));
        Ok(())
    });
    assert!(tried > 0);
}

/// Whether the record kopf reads asks for a retry more than a day after the runner's start
/// (kopf then rightly waits that long).
fn delayed_past_a_day(body: &Value) -> bool {
    let base: jiff::Timestamp = fake_apiserver::DEFAULT_BASE_TIME.parse().unwrap_or_default();
    let Some(delayed) = ProgressStorage::default().fetch(HANDLER, body).and_then(|r| r.delayed) else {
        return false;
    };
    let at = delayed.parse::<jiff::Timestamp>().ok().or_else(|| {
        let civil: jiff::civil::DateTime = delayed.parse().ok()?;
        civil.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
    });
    at.is_some_and(|at| at > base + jiff::SignedDuration::from_hours(24))
}

thread_local! {
    static PANICS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts panics per thread (the operator of a KopfRunner test runs on the test's thread), keeping
/// the previous hook's output.
fn count_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|p| p.set(p.get() + 1));
            previous(info);
        }));
    });
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("FUZZ_OPERATOR_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(16),
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(22),
        ..ProptestConfig::default()
    })]
    /// Objects arrive with any kopf records (valid, damaged, junk, extreme): the operator neither
    /// panics nor stops, and handles each object within two days of virtual time.
    #[test]
    fn an_operator_handles_objects_whatever_kopf_records_they_come_with(body in body(), field in "[a-z]{1,8}") {
        count_panics();
        let before = PANICS.with(std::cell::Cell::get);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
        // Boxed: a whole operator's future is too big for a test thread's stack in debug builds.
        let converged = runtime.block_on(Box::pin(async {
            let operator = Operator::new()
                .on_create(|_ex: Arc<KopfExample>, _ctx: Context| async { Ok::<_, HandlerError>(json!({"ok": 1})) })
                .id(HANDLER)
                .on_update(|_ex: Arc<KopfExample>, _ctx: Context| async { Ok::<_, HandlerError>(()) })
                .id("update_fn");
            let mut object = body.clone();
            object["spec"] = json!({"field": field, "items": []});
            let runner = KopfRunner::new(operator).with_crd::<KopfExample>().with_objects([object]).start().await;
            let done = |c: &kopf_testing::TestCluster| {
                c.peek::<KopfExample>("ex1").is_some_and(|ex| {
                    let body = serde_json::to_value(&ex).unwrap_or_default();
                    DiffBaseStorage::default().fetch(&body).is_some_and(|d| d["spec"]["field"] == json!(field))
                })
            };
            let converged = runner.wait_for(done, Duration::from_secs(2 * 24 * 3600)).await.is_ok();
            runner.cluster().patch::<KopfExample>("ex1", json!({"spec": {"field": "changed"}})).await;
            runner.settle().await;
            runner.stop().await;
            converged
        }));
        prop_assert_eq!(PANICS.with(std::cell::Cell::get) - before, 0, "kopf panicked on {}", body);
        prop_assert!(converged || delayed_past_a_day(&body), "not handled in two days: {}", body);
    }
}

/// A CRD whose spec keeps anything (`x-kubernetes-preserve-unknown-fields`).
fn free_form_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                }}},
                "subresources": {"status": {}},
            }],
        },
    })
}

/// Found by fuzzing the diff-base: serde_json parsed some floats back one ULP off what it had
/// written (without its `float_roundtrip` feature), so a diff-base with such a number did not read
/// back as the essence it was written from (Python's `json` reads its own output back exactly).
/// The operator then still sees no change: the body and the diff-base go through the same parser.
#[tokio::test(start_paused = true)]
async fn a_float_in_the_spec_reads_back_from_the_diff_base_exactly_and_is_no_change() {
    let value = -1.587_315_336_518_056_5e162;
    let text = serde_json::to_string(&json!(value)).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), json!(value), "{text} reads back exactly");

    let updates = Arc::new(AtomicU64::new(0));
    let seen = updates.clone();
    let operator = Operator::new()
        .on_create(|_o: Arc<kopf::Body>, _ctx: Context| async { Ok::<_, HandlerError>(()) })
        .resource("gadgets.example.com")
        .on_update(move |_o: Arc<kopf::Body>, _ctx: Context| {
            seen.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, HandlerError>(()) }
        })
        .resource("gadgets.example.com");
    let gadget = json!({
        "apiVersion": "example.com/v1", "kind": "Gadget",
        "metadata": {"name": "g1", "namespace": "default"},
        "spec": {"ratio": value, "ratios": [value, 0.1, 1e-300, 2.2250738585072014e-308]},
    });
    let runner =
        KopfRunner::new(operator).with_crd_json(free_form_crd()).with_objects([gadget]).start().await;
    runner.advance(Duration::from_secs(60)).await;
    assert_eq!(updates.load(Ordering::SeqCst), 0, "{}", runner.timeline());
}

/// Found by fuzzing the progress records: a record with the largest retry count (`4294967295`)
/// made the next attempt's count overflow — a panic in debug builds that killed the object's
/// worker, so the object was never handled.
#[tokio::test(start_paused = true)]
async fn a_progress_record_at_the_largest_retry_count_does_not_overflow() {
    count_panics();
    let before = PANICS.with(std::cell::Cell::get);
    let operator = Operator::new()
        .on_create(|_ex: Arc<KopfExample>, _ctx: Context| async { Ok::<_, HandlerError>(()) })
        .id(HANDLER)
        .retries(3);
    let record =
        ProgressRecord { retries: Some(u32::MAX), purpose: Some("create".into()), ..Default::default() };
    let mut ex = example("ex1", "v");
    ex.metadata.annotations = Some([(format!("kopf.zalando.org/{HANDLER}"), record.encode())].into());
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().with_objects([ex]).start().await;
    runner.advance(Duration::from_secs(60)).await;
    assert_eq!(PANICS.with(std::cell::Cell::get) - before, 0, "no panic:\n{}", runner.timeline());
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert!(
        annotations(&ex).contains_key("kopf.zalando.org/last-handled-configuration"),
        "{}",
        runner.timeline()
    );
}
