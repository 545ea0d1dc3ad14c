//! Activities: startup, cleanup, login and probe handlers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kopf::{ConnectionInfo, Context, HandlerError, Operator, OperatorError, RunOptions};
use kopf_testing::{DirectApiClient, Fault, FaultRule, KopfRunner, Verb};
use serde_json::json;

use crate::common::*;

fn counter() -> (Arc<AtomicU32>, Arc<AtomicU32>) {
    let count = Arc::new(AtomicU32::new(0));
    (count.clone(), count)
}

fn greeting() -> Operator {
    Operator::new()
        .on_create(|_ex: Arc<KopfExample>, ctx: Context| async move {
            let greeting = ctx.memo().get::<String>().unwrap_or_default();
            Ok::<_, HandlerError>(json!({"greeting": greeting}))
        })
        .id("create_fn")
}

#[tokio::test(start_paused = true)]
async fn startup_runs_before_watching_is_retried_and_its_settings_and_memo_take_effect() {
    let (attempts, seen) = counter();
    let operator = greeting().on_startup(move |ctx: Context| {
        let attempt = seen.fetch_add(1, Ordering::SeqCst);
        async move {
            if attempt == 0 {
                return Err(HandlerError::temporary("not ready").with_delay(Duration::from_secs(5)));
            }
            ctx.update_settings(|s| s.posting.enabled = false);
            ctx.memo().insert("hello from startup".to_owned());
            Ok(())
        }
    });
    let runner =
        KopfRunner::new(operator).with_crd::<KopfExample>().with_objects([example("ex1", "v")]).start().await;
    runner.settle().await;
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!(runner.elapsed(), Duration::from_secs(5), "the second startup attempt came after its delay");
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert_eq!(
        status(&ex)["create_fn"]["greeting"],
        "hello from startup",
        "the operator memo reached the object"
    );
    assert!(runner.cluster().list::<Event>().await.is_empty(), "posting was disabled by the startup handler");
}

#[tokio::test(start_paused = true)]
async fn a_permanently_failing_startup_handler_stops_the_operator_before_it_watches() {
    let server = fake_apiserver::FakeApiServer::builder().build();
    let operator =
        greeting().on_startup(|_ctx: Context| async { Err::<(), _>(HandlerError::permanent("no way")) });
    let client = Arc::new(DirectApiClient::new(server.cluster().clone()));
    let running = operator.spawn(client, RunOptions::default()).unwrap();
    let outcome = running.join().await;
    assert!(
        matches!(&outcome, Err(OperatorError::Startup(message)) if message.contains("no way")),
        "{outcome:?}"
    );
    let watches = server.cluster().journal(|j| j.operations().filter(|o| o.verb == Verb::Watch).count());
    assert_eq!(watches, 0);
}

#[tokio::test(start_paused = true)]
async fn cleanup_runs_once_at_a_graceful_stop() {
    let (cleanups, seen) = counter();
    let operator = greeting().on_cleanup(move |_ctx: Context| {
        seen.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, HandlerError>(()) }
    });
    let mut runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.settle().await;
    assert_eq!(cleanups.load(Ordering::SeqCst), 0);
    runner.restart().await;
    assert_eq!(cleanups.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn login_handlers_are_called_again_after_a_401() {
    let (logins, seen) = counter();
    let operator = greeting().on_login(move |_ctx: Context| {
        let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            let info = ConnectionInfo::with_token("https://fake.invalid", format!("token-{n}"));
            Ok::<_, HandlerError>(serde_json::to_value(info).unwrap())
        }
    });
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.settle().await;
    assert_eq!(logins.load(Ordering::SeqCst), 1, "logged in once to start");
    runner.fault(FaultRule::new(Fault::unauthorized()).verb(Verb::Patch).once());
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    assert_eq!(logins.load(Ordering::SeqCst), 2, "the 401 made it log in again");
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert!(status(&ex)["create_fn"].is_object(), "and the request went through after the re-login");
}

#[tokio::test(start_paused = true)]
async fn probes_give_their_values_by_id_and_are_cached_for_ten_seconds() {
    let (runs, seen) = counter();
    let operator = greeting()
        .on_probe(move |_ctx: Context| {
            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
            async move { Ok::<_, HandlerError>(json!(n)) }
        })
        .id("runs")
        .on_probe(|_ctx: Context| async { Ok::<_, HandlerError>(json!("ok")) })
        .id("health");
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    assert_eq!(runner.probe().await, [("health".into(), json!("ok")), ("runs".into(), json!(1))].into());
    runner.advance(Duration::from_secs(9)).await;
    assert_eq!(runner.probe().await["runs"], 1, "cached");
    runner.advance(Duration::from_secs(1)).await;
    assert_eq!(runner.probe().await["runs"], 2, "refreshed after 10 s");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}
