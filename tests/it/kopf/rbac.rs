//! The operator as its ServiceAccount under the RBAC it generates: Roles in each served namespace
//! (a ClusterRole for cluster-scoped resources and for all namespaces), no 403 through either
//! client path, a 403 that fails the run with the server's message, and every generated
//! permission needed by a life with creation, update, deletion, a timer and a daemon.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kopf::{Context, HandlerError, Namespaces, Operator, RbacOptions};
use kopf_testing::{Adapter, KopfRunner, Runner};
use serde_json::json;

use crate::common::*;

/// Create, update, delete handlers, a timer and a daemon on KopfExamples; the timer and the
/// daemon return results, the creation handler none.
fn operator() -> Operator {
    Operator::new()
        .on_create(|_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(()) })
        .id("create_fn")
        .on_update(|_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(()) })
        .id("update_fn")
        .on_delete(|_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(()) })
        .id("delete_fn")
        .timer(Duration::from_secs(60), |_ex: Arc<KopfExample>, _ctx: Context| async move {
            Ok::<_, HandlerError>(json!({"tick": true}))
        })
        .id("tick")
        .daemon(|_ex: Arc<KopfExample>, ctx: Context| async move {
            ctx.stopped().wait(Duration::from_secs(3600)).await;
            Ok::<_, HandlerError>(())
        })
        .id("watcher")
}

fn in_namespace(name: &str, namespace: &str) -> KopfExample {
    let mut ex = example(name, "v1");
    ex.metadata.namespace = Some(namespace.into());
    ex
}

/// An object in each namespace created, updated, left for two minutes and deleted.
async fn live(runner: KopfRunner, namespaces: &[&str]) -> Runner {
    let runner = runner.start().await;
    for ns in namespaces {
        runner.cluster().create(in_namespace("ex", ns)).await;
    }
    runner.settle().await;
    for ns in namespaces {
        let api = runner.server().cluster().api::<KopfExample>(Some(ns));
        api.merge("ex", json!({"spec": {"field": "v2"}})).await.unwrap();
    }
    runner.advance(Duration::from_secs(120)).await;
    for ns in namespaces {
        runner.server().cluster().api::<KopfExample>(Some(ns)).delete("ex").await.unwrap();
    }
    runner.settle().await;
    runner
}

fn namespaced_runner(namespaces: &[&str]) -> KopfRunner {
    KopfRunner::new(operator()).with_crd::<KopfExample>().namespaces(namespaces.iter().copied())
}

#[tokio::test(start_paused = true)]
async fn served_namespaces_get_a_role_each_and_every_permission_in_them_is_needed() {
    let namespaces = ["ns1", "ns2"];
    let full = live(namespaced_runner(&namespaces).with_generated_rbac(), &namespaces).await;
    for ns in namespaces {
        assert!(full.cluster().get_opt_in::<KopfExample>(Some(ns), "ex").await.is_none(), "released in {ns}");
    }
    let rbac = full.rbac().unwrap().clone();
    let kinds: Vec<String> =
        rbac.objects().iter().map(|o| format!("{} {}", o["kind"], o["metadata"]["namespace"])).collect();
    assert_eq!(
        kinds,
        [r#""Role" "ns1""#, r#""RoleBinding" "ns1""#, r#""Role" "ns2""#, r#""RoleBinding" "ns2""#],
        "no cluster-wide grant for namespaced resources in named namespaces"
    );
    assert_eq!(
        rbac.rules(Some("ns1")),
        [
            json!({"apiGroups": ["kopf.dev"], "resources": ["kopfexamples"], "verbs": ["list", "watch", "patch"]}),
            json!({"apiGroups": ["kopf.dev"], "resources": ["kopfexamples/status"], "verbs": ["patch"]}),
        ]
    );
    full.stop().await;
    let permissions: Vec<kopf::Permission> = rbac.permissions().cloned().collect();
    assert_eq!(permissions.len(), 8);
    for permission in &permissions {
        let runner = namespaced_runner(&namespaces).with_rbac(rbac.without(permission)).expect_forbidden();
        let runner = live(runner, &namespaces).await;
        let ns = permission.namespace.as_deref().unwrap();
        let expected = format!(
            r#"cannot {} resource "{}" in API group "kopf.dev" in the namespace "{ns}""#,
            permission.verb, permission.resource
        );
        assert!(
            runner.forbidden().iter().any(|f| f.contains(&expected)),
            "without {permission}: {:?}",
            runner.forbidden()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn through_the_kube_client_the_operator_discovers_and_works_as_its_service_account() {
    let runner = KopfRunner::new(operator())
        .with_crd::<KopfExample>()
        .adapter(Adapter::KubeClient)
        .with_generated_rbac()
        .start()
        .await;
    runner.cluster().create(example("ex1", "v1")).await;
    runner.advance(Duration::from_secs(60)).await;
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert_eq!(status(&ex)["tick"], json!({"tick": true}), "written through kopfexamples/status");
    let refused = runner.server().cluster().journal(|j| j.operations().filter(|o| o.code == 403).count());
    assert_eq!(refused, 0, "discovery, list, watch and patches all allowed");
    assert!(runner.forbidden().is_empty());
    runner.cluster().delete::<KopfExample>("ex1").await;
    runner.settle().await;
    assert!(runner.cluster().get_opt::<KopfExample>("ex1").await.is_none());
}

#[tokio::test(start_paused = true)]
#[should_panic(
    expected = r#"cannot patch resource "kopfexamples/status" in API group "kopf.dev" in the namespace "default""#
)]
async fn a_missing_permission_fails_the_run_at_the_next_settle_with_the_servers_message() {
    let served = [kopf::Resource {
        group: "kopf.dev".into(),
        version: "v1".into(),
        plural: "kopfexamples".into(),
        kind: "KopfExample".into(),
        namespaced: true,
        status_subresource: true,
        preferred: true,
        ..kopf::Resource::default()
    }];
    let rbac = kopf::rbac(&operator(), &served, &RbacOptions::default());
    let status = rbac.permissions().find(|p| p.resource == "kopfexamples/status").unwrap().clone();
    let runner =
        KopfRunner::new(operator()).with_crd::<KopfExample>().with_rbac(rbac.without(&status)).start().await;
    runner.cluster().create(example("ex1", "v1")).await;
    runner.settle().await;
}

#[tokio::test(start_paused = true)]
async fn cluster_scoped_resources_are_granted_cluster_wide_and_their_events_in_default() {
    let operator = Operator::new()
        .on_create(|_ns: Arc<Namespace>, ctx: Context| async move {
            ctx.info("seen");
            Ok::<_, HandlerError>(())
        })
        .id("ns_created")
        .settings(|s| s.posting.loggers = true);
    let runner = KopfRunner::new(operator).namespaces(["ns1"]).with_generated_rbac().start().await;
    let rbac = runner.rbac().unwrap().clone();
    let permissions: Vec<String> = rbac.permissions().map(ToString::to_string).collect();
    assert_eq!(
        permissions,
        [
            "list namespaces (core) cluster-wide",
            "patch namespaces (core) cluster-wide",
            "watch namespaces (core) cluster-wide",
            "create events (core) in default",
        ]
    );
    let mut ns = Namespace::default();
    ns.metadata.name = Some("fresh".into());
    runner.cluster().create(ns).await;
    runner.settle().await;
    let events = runner.server().cluster().objects("", "events");
    assert!(events.iter().any(|e| e.namespace() == "default"), "the Logging Event is posted in default");
    assert!(runner.forbidden().is_empty());
}

#[test]
fn namespace_globs_grant_cluster_wide_and_list_namespaces() {
    let served = [kopf::Resource {
        group: "kopf.dev".into(),
        version: "v1".into(),
        plural: "kopfexamples".into(),
        kind: "KopfExample".into(),
        namespaced: true,
        preferred: true,
        ..kopf::Resource::default()
    }];
    let options =
        RbacOptions { namespaces: Namespaces::Only(vec!["team-*".into()]), ..RbacOptions::default() };
    let rbac = kopf::rbac(&operator(), &served, &options);
    let permissions: Vec<String> = rbac.permissions().map(ToString::to_string).collect();
    assert_eq!(
        permissions,
        [
            "list namespaces (core) cluster-wide",
            "list kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples (kopf.dev) cluster-wide",
            "watch kopfexamples (kopf.dev) cluster-wide",
        ],
        "results go through the main resource without a status subresource"
    );
}

/// Peering: the peering object of the mode is listed, watched and patched (keep-alives); each of
/// those permissions is generated only because the peering resource is served, and each is needed.
#[tokio::test(start_paused = true)]
async fn peering_gets_list_watch_and_patch_on_its_peering_object_and_needs_each() {
    let peered = |namespaces: &[&str]| {
        let runner = namespaced_runner(namespaces).with_peering_crds();
        match namespaces {
            [] => runner.with_objects([kopf::peering::object("default", None)]),
            _ => runner.with_objects(namespaces.iter().map(|ns| kopf::peering::object("default", Some(ns)))),
        }
    };
    for namespaces in [&[][..], &["ns1"][..]] {
        let objects = if namespaces.is_empty() { &["default"][..] } else { namespaces };
        let full = live(peered(namespaces).with_generated_rbac(), objects).await;
        let rbac = full.rbac().unwrap().clone();
        full.stop().await;
        let peering: Vec<kopf::Permission> =
            rbac.permissions().filter(|p| p.resource.ends_with("kopfpeerings")).cloned().collect();
        let text: Vec<String> = peering.iter().map(ToString::to_string).collect();
        let expected: &[&str] = if namespaces.is_empty() {
            &[
                "list clusterkopfpeerings (kopf.dev) cluster-wide",
                "patch clusterkopfpeerings (kopf.dev) cluster-wide",
                "watch clusterkopfpeerings (kopf.dev) cluster-wide",
            ]
        } else {
            &[
                "list kopfpeerings (kopf.dev) in ns1",
                "patch kopfpeerings (kopf.dev) in ns1",
                "watch kopfpeerings (kopf.dev) in ns1",
            ]
        };
        assert_eq!(text, expected);
        for permission in &peering {
            let runner = peered(namespaces).with_rbac(rbac.without(permission)).expect_forbidden();
            let runner = live(runner, objects).await;
            let needle = format!(r#"cannot {} resource "{}""#, permission.verb, permission.resource);
            assert!(
                runner.forbidden().iter().any(|f| f.contains(&needle)),
                "without {permission}: {:?}",
                runner.forbidden()
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn standalone_and_undetected_peering_need_no_peering_permissions_and_mandatory_peering_watches_crds() {
    let standalone = Operator::new()
        .on_create(|_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(()) })
        .settings(|s| s.peering.standalone = true);
    let runner =
        KopfRunner::new(standalone).with_crd::<KopfExample>().with_peering_crds().with_generated_rbac();
    let runner = runner.start().await;
    assert!(runner.rbac().unwrap().permissions().all(|p| !p.resource.contains("peering")));
    runner.stop().await;
    let undetected =
        KopfRunner::new(operator()).with_crd::<KopfExample>().with_generated_rbac().start().await;
    let generated = undetected.rbac().unwrap().clone();
    assert!(generated.permissions().all(|p| p.group == "kopf.dev" && !p.resource.contains("peering")));
    undetected.stop().await;

    let mandatory = || operator().settings(|s| s.peering.mandatory = true);
    let runner = KopfRunner::new(mandatory()).with_crd::<KopfExample>().with_generated_rbac().start().await;
    let rbac = runner.rbac().unwrap().clone();
    runner.stop().await;
    let framework: Vec<String> = rbac
        .permissions()
        .filter(|p| p.group != "kopf.dev" || p.resource.contains("peering"))
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        framework,
        [
            "list customresourcedefinitions (apiextensions.k8s.io) cluster-wide",
            "watch customresourcedefinitions (apiextensions.k8s.io) cluster-wide",
            "list clusterkopfpeerings (kopf.dev) cluster-wide",
            "patch clusterkopfpeerings (kopf.dev) cluster-wide",
            "watch clusterkopfpeerings (kopf.dev) cluster-wide",
        ],
        "the operator waits for the peering CRD, then peers on it"
    );
    for crds in rbac.permissions().filter(|p| p.resource == "customresourcedefinitions") {
        let runner = KopfRunner::new(mandatory()).with_crd::<KopfExample>();
        let runner = runner.with_rbac(rbac.without(crds)).expect_forbidden().start().await;
        let needle = format!(r#"cannot {} resource "customresourcedefinitions""#, crds.verb);
        assert!(runner.forbidden().iter().any(|f| f.contains(&needle)), "{:?}", runner.forbidden());
    }
}
