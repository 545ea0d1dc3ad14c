//! The example operator as a program (`kopf::run`): it logs in through a kubeconfig with a token
//! or as an in-cluster pod, handles an object over HTTPS, and exits with status 0 on SIGTERM. The
//! fake API server is served in-process by the same code as `fake-apiserver serve`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fake_apiserver::{FakeApiServer, ServeHandle, ServeOptions};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kopf_examples::kopfexample::{KopfExample, example};
use kube::CustomResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::wait::await_condition;

/// Generous: the program is started cold, and CI machines are slow.
const WAIT: Duration = Duration::from_secs(60);
const TOKEN: &str = "0perat0r-t0ken";

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn cluster() -> (FakeApiServer, ServeHandle) {
    let server = FakeApiServer::builder().build();
    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    crds.create(&PostParams::default(), &KopfExample::crd()).await.unwrap();
    let handle = fake_apiserver::http::serve(&server, ServeOptions::default().tls(true).token(TOKEN))
        .await
        .expect("the fake serves HTTPS");
    (server, handle)
}

/// Starts the program, creates an object, waits until the operator has greeted it, then stops the
/// program with SIGTERM and checks that it exits with status 0.
async fn handle_one_object_then_terminate(server: &FakeApiServer, mut program: tokio::process::Command) {
    let child = program
        .args(["--namespace", "default", "--log-format", "plain"])
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the operator starts");
    let examples: Api<KopfExample> = Api::namespaced(server.client(), "default");
    examples.create(&PostParams::default(), &example("ex1", "world")).await.unwrap();
    let greeted = await_condition(examples, "ex1", |ex: Option<&KopfExample>| {
        ex.and_then(|ex| ex.status.as_ref()).is_some_and(|s| s.0.contains_key("create_fn"))
    });
    let handled = tokio::time::timeout(WAIT, greeted).await;
    let pid = child.id().expect("still running").to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let output =
        tokio::time::timeout(WAIT, child.wait_with_output()).await.expect("it exits in time").unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let ex = handled.expect("the object is handled in time").unwrap().expect("the object exists");
    assert_eq!(ex.status.unwrap().0["create_fn"]["message"], "hello, world", "{stderr}");
    assert_eq!(output.status.code(), Some(0), "SIGTERM is a graceful stop:\n{stderr}");
    assert!(stderr.contains("Stop signal received"), "{stderr}");
}

#[tokio::test]
async fn the_program_logs_in_with_a_kubeconfig_token_and_stops_cleanly_on_sigterm() {
    let (server, handle) = cluster().await;
    let kubeconfig = scratch("kubeconfig-login").join("kubeconfig");
    handle.write_kubeconfig(&kubeconfig).unwrap();
    let mut program = tokio::process::Command::new(env!("CARGO_BIN_EXE_kopfexample"));
    program.env("KUBECONFIG", &kubeconfig).env_remove("KUBERNETES_SERVICE_HOST");
    handle_one_object_then_terminate(&server, program).await;
}

#[tokio::test]
async fn the_program_logs_in_as_an_in_cluster_service_account() {
    let (server, handle) = cluster().await;
    let account = scratch("in-cluster-login");
    std::fs::write(account.join("token"), TOKEN).unwrap();
    std::fs::write(account.join("ca.crt"), handle.ca_pem().expect("a CA for HTTPS")).unwrap();
    std::fs::write(account.join("namespace"), "default").unwrap();
    let mut program = tokio::process::Command::new(env!("CARGO_BIN_EXE_kopfexample"));
    program
        .env("KUBERNETES_SERVICE_HOST", handle.local_addr().ip().to_string())
        .env("KUBERNETES_SERVICE_PORT", handle.local_addr().port().to_string())
        .env("KOPF_SERVICE_ACCOUNT_DIR", &account)
        .env("KUBECONFIG", account.join("no-such-kubeconfig"));
    handle_one_object_then_terminate(&server, program).await;
}

#[tokio::test]
async fn a_wrong_token_is_reported_and_the_program_exits_with_a_failure() {
    let (_server, handle) = cluster().await;
    let kubeconfig = scratch("wrong-token").join("kubeconfig");
    std::fs::write(&kubeconfig, handle.kubeconfig().replace(TOKEN, "wrong")).unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_kopfexample"))
        .args(["--namespace", "default"])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(WAIT, output).await.expect("it gives up in time").unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("401") || stderr.to_lowercase().contains("unauthorized"), "{stderr}");
}

#[tokio::test]
async fn a_login_handlers_credentials_are_used_and_renewed_after_a_401() {
    let (server, handle) = cluster().await;
    let logins = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let (seen, url, ca) = (logins.clone(), handle.url().to_owned(), handle.ca_pem().unwrap().to_owned());
    let operator = kopf_examples::kopfexample::operator().on_login(move |_ctx: kopf::Context| {
        // The first credentials are stale: the server answers 401 and the operator logs in again.
        let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let token = if n == 0 { "stale-token" } else { TOKEN };
        let info = kopf::ConnectionInfo::with_token(url.clone(), token).ca(ca.clone());
        async move { Ok::<_, kopf::HandlerError>(serde_json::to_value(info).expect("serializable")) }
    });
    let unused = std::sync::Arc::new(kopf::KubeApiClient::new(server.client()));
    let running = operator.spawn(unused, kopf::RunOptions::default()).expect("a valid operator");
    let examples: Api<KopfExample> = Api::namespaced(server.client(), "default");
    examples.create(&PostParams::default(), &example("ex1", "world")).await.unwrap();
    let greeted = await_condition(examples, "ex1", |ex: Option<&KopfExample>| {
        ex.and_then(|ex| ex.status.as_ref()).is_some_and(|s| s.0.contains_key("create_fn"))
    });
    tokio::time::timeout(WAIT, greeted).await.expect("handled over HTTPS with the handler's token").unwrap();
    running.stop();
    running.join().await.expect("a clean stop");
    assert_eq!(logins.load(std::sync::atomic::Ordering::SeqCst), 2, "stale token, 401, then the good one");
    let unauthorized = server.cluster().journal(|j| {
        j.records().filter(|r| matches!(r, fake_apiserver::Record::Http(h) if h.code == 401)).count()
    });
    assert!(unauthorized >= 1, "the server did reject the stale token");
}

/// The program's own `manifests` (CRD, ServiceAccount, generated RBAC), applied to a cluster that
/// enforces RBAC, let the program run as that ServiceAccount: it handles an object and the server
/// refuses it nothing.
#[tokio::test]
async fn the_program_runs_as_its_service_account_under_the_rbac_its_manifests_print() {
    use kube::api::DynamicObject;
    use kube::core::{ApiResource, GroupVersionKind};

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_kopfexample"))
        .args(["manifests", "--name", "kopfexample", "--deploy-namespace", "default"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).expect("a JSON List");

    let server = FakeApiServer::builder().rbac(true).build();
    for item in list["items"].as_array().unwrap() {
        let (group, version) = match item["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", item["apiVersion"].as_str().unwrap()),
        };
        let kind = item["kind"].as_str().unwrap();
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        let api: Api<DynamicObject> = match item["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(server.client(), ns, &resource),
            None => Api::all_with(server.client(), &resource),
        };
        let object: DynamicObject = serde_json::from_value(item.clone()).unwrap();
        api.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("{kind} rejected: {e}"));
    }
    let handle = fake_apiserver::http::serve(&server, ServeOptions::default().tls(true).token(TOKEN))
        .await
        .expect("the fake serves HTTPS");
    let token =
        server.cluster().issue_token(fake_apiserver::Identity::service_account("default", "kopfexample"));
    let kubeconfig = scratch("rbac-login").join("kubeconfig");
    std::fs::write(&kubeconfig, handle.kubeconfig().replace(TOKEN, &token)).unwrap();
    let mut program = tokio::process::Command::new(env!("CARGO_BIN_EXE_kopfexample"));
    program.env("KUBECONFIG", &kubeconfig).env_remove("KUBERNETES_SERVICE_HOST");
    handle_one_object_then_terminate(&server, program).await;
    let refused: Vec<String> = server.cluster().journal(|j| {
        j.operations().filter(|o| o.code == 403).map(|o| format!("{} {}", o.verb, o.resource)).collect()
    });
    assert!(refused.is_empty(), "refused: {refused:?}");
    let patched = server.cluster().journal(|j| {
        j.operations().filter(|o| o.verb == fake_apiserver::Verb::Patch && o.code == 200).count()
    });
    assert!(patched > 0, "the operator did write, as its ServiceAccount");
}
