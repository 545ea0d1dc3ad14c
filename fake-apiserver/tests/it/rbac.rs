//! RBAC, as the real server enforces it: identities (service accounts, users, groups) are allowed
//! what Roles, ClusterRoles and their bindings grant — verbs, API groups, resources and
//! subresources, names, namespaces, non-resource URLs — and refused with the real 403 `Status`
//! otherwise; the review resources answer from the same policy. Through `kube::Client` over the
//! transport under test (in-process, or the HTTP front with a bearer token per identity).

use fake_apiserver::{AccessAttributes, FakeApiServer, Identity};
use futures::StreamExt as _;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec, SelfSubjectRulesReview,
    SelfSubjectRulesReviewSpec, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchParams};
use serde_json::{Value, json};

use crate::common::*;

const SA: &str = "system:serviceaccount:ops:kopf";

fn sa() -> Identity {
    Identity::service_account("ops", "kopf")
}

async fn enforcing() -> FakeApiServer {
    let server = FakeApiServer::builder().seed(1).rbac(true).build();
    for ns in ["ops", "other"] {
        let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        server.cluster().api::<Namespace>(None).create(&namespace).await.unwrap();
    }
    server
}

async fn create<K>(server: &FakeApiServer, namespace: Option<&str>, object: Value) -> K
where
    K: kube::Resource<DynamicType = ()>
        + serde::Serialize
        + serde::de::DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    let typed: K = serde_json::from_value(object).unwrap();
    server.cluster().api::<K>(namespace).create(&typed).await.unwrap()
}

async fn role(server: &FakeApiServer, namespace: &str, name: &str, rules: Value) {
    create::<Role>(
        server,
        Some(namespace),
        json!({"metadata": {"name": name, "namespace": namespace}, "rules": rules}),
    )
    .await;
}

async fn cluster_role(server: &FakeApiServer, name: &str, rules: Value) {
    create::<ClusterRole>(server, None, json!({"metadata": {"name": name}, "rules": rules})).await;
}

fn subject_sa(namespace: &str, name: &str) -> Value {
    json!({"kind": "ServiceAccount", "name": name, "namespace": namespace})
}

async fn role_binding(
    server: &FakeApiServer,
    namespace: &str,
    name: &str,
    kind: &str,
    role: &str,
    subjects: Value,
) {
    create::<RoleBinding>(
        server,
        Some(namespace),
        json!({"metadata": {"name": name, "namespace": namespace},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
               "subjects": subjects}),
    )
    .await;
}

async fn cluster_role_binding(server: &FakeApiServer, name: &str, role: &str, subjects: Value) {
    create::<ClusterRoleBinding>(
        server,
        None,
        json!({"metadata": {"name": name},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
               "subjects": subjects}),
    )
    .await;
}

fn raw_status<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_service_account_with_no_binding_gets_the_real_servers_403_for_each_verb() {
    let server = enforcing().await;
    server.cluster().api::<ConfigMap>(Some("ops")).create(&cm("x")).await.unwrap();
    let client = client_as(&server, sa()).await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "ops");

    let status = raw_status(configmaps.get("x").await);
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        status.message,
        format!(
            r#"configmaps "x" is forbidden: User "{SA}" cannot get resource "configmaps" in API group "" in the namespace "ops""#
        )
    );
    let details = status.details.expect("details");
    assert_eq!(
        (details.name.as_str(), details.kind.as_str(), details.group.as_str()),
        ("x", "configmaps", "")
    );

    assert_eq!(
        api_error(configmaps.list(&ListParams::default()).await).2,
        format!(
            r#"configmaps is forbidden: User "{SA}" cannot list resource "configmaps" in API group "" in the namespace "ops""#
        )
    );
    assert_eq!(
        api_error(configmaps.watch(&WatchParams::default(), "0").await.map(|_| ())).2,
        format!(
            r#"configmaps is forbidden: User "{SA}" cannot watch resource "configmaps" in API group "" in the namespace "ops""#
        )
    );
    assert_eq!(
        api_error(configmaps.create(&PostParams::default(), &cm("y")).await).2,
        format!(
            r#"configmaps is forbidden: User "{SA}" cannot create resource "configmaps" in API group "" in the namespace "ops""#
        )
    );
    let all: Api<ConfigMap> = Api::all(client);
    assert_eq!(
        api_error(all.list(&ListParams::default()).await).2,
        format!(
            r#"configmaps is forbidden: User "{SA}" cannot list resource "configmaps" in API group "" at the cluster scope"#
        )
    );
    let forbidden = server.cluster().journal(|j| j.operations().filter(|o| o.code == 403).count());
    assert_eq!(forbidden, 5, "every refusal is journaled with its 403");
}

#[tokio::test]
async fn a_role_grants_its_verbs_on_its_resources_in_its_namespace_only() {
    let server = enforcing().await;
    role(
        &server,
        "ops",
        "reader",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]),
    )
    .await;
    role_binding(&server, "ops", "kopf-reads", "Role", "reader", json!([subject_sa("ops", "kopf")])).await;
    for ns in ["ops", "other"] {
        server.cluster().api::<ConfigMap>(Some(ns)).create(&cm("x")).await.unwrap();
    }
    let client = client_as(&server, sa()).await;
    let ops: Api<ConfigMap> = Api::namespaced(client.clone(), "ops");
    assert_eq!(ops.get("x").await.unwrap().metadata.name.as_deref(), Some("x"));
    assert_eq!(ops.list(&ListParams::default()).await.unwrap().items.len(), 1);
    let mut events = ops.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    assert!(events.next().await.is_some(), "the watch streams");
    let (code, _, message) = api_error(ops.create(&PostParams::default(), &cm("y")).await);
    assert_eq!(code, 403, "{message}");
    let other: Api<ConfigMap> = Api::namespaced(client.clone(), "other");
    assert!(api_error(other.get("x").await).2.ends_with(r#"in the namespace "other""#));
    let all: Api<ConfigMap> = Api::all(client);
    assert_eq!(
        api_error(all.list(&ListParams::default()).await).0,
        403,
        "a Role grants nothing across namespaces"
    );
}

#[tokio::test]
async fn a_cluster_role_binding_grants_everywhere_and_a_role_binding_to_it_grants_in_one_namespace() {
    let server = enforcing().await;
    cluster_role(
        &server,
        "cm-reader",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]),
    )
    .await;
    role_binding(&server, "ops", "local", "ClusterRole", "cm-reader", json!([subject_sa("ops", "kopf")]))
        .await;
    let client = client_as(&server, sa()).await;
    let lp = ListParams::default();
    assert!(Api::<ConfigMap>::namespaced(client.clone(), "ops").list(&lp).await.is_ok());
    assert_eq!(api_error(Api::<ConfigMap>::namespaced(client.clone(), "other").list(&lp).await).0, 403);
    assert_eq!(api_error(Api::<ConfigMap>::all(client.clone()).list(&lp).await).0, 403);
    cluster_role_binding(&server, "global", "cm-reader", json!([subject_sa("ops", "kopf")])).await;
    assert!(Api::<ConfigMap>::namespaced(client.clone(), "other").list(&lp).await.is_ok());
    assert!(
        Api::<ConfigMap>::all(client).list(&lp).await.is_ok(),
        "a ClusterRoleBinding grants across namespaces"
    );
}

#[tokio::test]
async fn a_subresource_needs_its_own_rule_and_the_main_resource_does_not_grant_it() {
    let server = enforcing().await;
    install_crd(&server.client()).await;
    examples(&server.client()).create(&PostParams::default(), &example("e", "v")).await.unwrap();
    let rule =
        |resources: Value| json!([{"apiGroups": ["kopf.dev"], "resources": resources, "verbs": ["patch"]}]);
    role(&server, "default", "main", rule(json!(["kopfexamples"]))).await;
    role_binding(&server, "default", "main", "Role", "main", json!([subject_sa("ops", "kopf")])).await;
    let client = client_as(&server, sa()).await;
    let examples = examples(&client);
    let status = Patch::Merge(json!({"status": {"message": "hi"}}));
    let pp = PatchParams::default();
    assert!(
        examples.patch("e", &pp, &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}}))).await.is_ok()
    );
    assert_eq!(
        api_error(examples.patch_status("e", &pp, &status).await).2,
        format!(
            r#"kopfexamples.kopf.dev "e" is forbidden: User "{SA}" cannot patch resource "kopfexamples/status" in API group "kopf.dev" in the namespace "default""#
        )
    );
    role(&server, "default", "any-status", rule(json!(["*/status"]))).await;
    role_binding(&server, "default", "any-status", "Role", "any-status", json!([subject_sa("ops", "kopf")]))
        .await;
    let patched = examples.patch_status("e", &pp, &status).await.unwrap();
    assert_eq!(patched.status.unwrap().message, "hi", "`*/status` grants every status subresource");
}

#[tokio::test]
async fn resource_names_restrict_a_rule_to_the_named_objects() {
    let server = enforcing().await;
    for name in ["mine", "theirs"] {
        server.cluster().api::<ConfigMap>(Some("ops")).create(&cm(name)).await.unwrap();
    }
    role(&server, "ops", "one", json!([{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["mine"], "verbs": ["get", "list"]}])).await;
    role_binding(&server, "ops", "one", "Role", "one", json!([subject_sa("ops", "kopf")])).await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client_as(&server, sa()).await, "ops");
    assert!(configmaps.get("mine").await.is_ok());
    assert_eq!(api_error(configmaps.get("theirs").await).0, 403);
    assert_eq!(api_error(configmaps.list(&ListParams::default()).await).0, 403, "a list names no object");
    let named = ListParams::default().fields("metadata.name=mine");
    assert_eq!(configmaps.list(&named).await.unwrap().items.len(), 1, "a list for one name is that name's");
}

#[tokio::test]
async fn users_groups_and_service_accounts_are_subjects_each_in_their_own_way() {
    let server = enforcing().await;
    cluster_role(
        &server,
        "lister",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]),
    )
    .await;
    cluster_role_binding(
        &server,
        "subjects",
        "lister",
        json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "jane"},
               {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs"},
               {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:serviceaccounts:ops"}]),
    )
    .await;
    // A RoleBinding's service account without a namespace is in the binding's namespace.
    role_binding(
        &server,
        "other",
        "local-sa",
        "ClusterRole",
        "lister",
        json!([{"kind": "ServiceAccount", "name": "bot"}]),
    )
    .await;
    let lists = async |identity: Identity, ns: &str| {
        let client = client_as(&server, identity).await;
        Api::<ConfigMap>::namespaced(client, ns).list(&ListParams::default()).await.map(|_| ())
    };
    assert!(lists(Identity::user("jane", Vec::<String>::new()), "ops").await.is_ok());
    assert!(lists(Identity::user("joe", ["devs"]), "ops").await.is_ok());
    assert!(
        lists(Identity::service_account("ops", "anyone"), "ops").await.is_ok(),
        "by the namespace's SA group"
    );
    assert!(lists(Identity::service_account("other", "bot"), "other").await.is_ok());
    assert_eq!(
        api_error(lists(Identity::service_account("default", "bot"), "other").await).0,
        403,
        "default/bot is not other/bot"
    );
    assert_eq!(api_error(lists(Identity::user("joe", ["ops"]), "ops").await).0, 403);
}

#[tokio::test]
async fn an_aggregated_cluster_role_holds_the_rules_of_the_roles_its_selectors_match() {
    let server = enforcing().await;
    create::<ClusterRole>(
        &server,
        None,
        json!({"metadata": {"name": "monitoring"},
               "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"example.com/aggregate-to-monitoring": "true"}}]},
               "rules": []}),
    )
    .await;
    cluster_role_binding(&server, "monitoring", "monitoring", json!([subject_sa("ops", "kopf")])).await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client_as(&server, sa()).await, "ops");
    assert_eq!(api_error(configmaps.list(&ListParams::default()).await).0, 403);
    create::<ClusterRole>(
        &server,
        None,
        json!({"metadata": {"name": "cm-part", "labels": {"example.com/aggregate-to-monitoring": "true"}},
               "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]}),
    )
    .await;
    assert!(
        configmaps.list(&ListParams::default()).await.is_ok(),
        "a new matching role widens the aggregate"
    );
}

#[tokio::test]
async fn a_binding_to_a_missing_role_is_named_in_the_403s_reason() {
    let server = enforcing().await;
    role_binding(&server, "ops", "dangling", "Role", "nonexistent", json!([subject_sa("ops", "kopf")])).await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client_as(&server, sa()).await, "ops");
    assert_eq!(
        api_error(configmaps.get("x").await).2,
        format!(
            r#"configmaps "x" is forbidden: User "{SA}" cannot get resource "configmaps" in API group "" in the namespace "ops": RBAC: role.rbac.authorization.k8s.io "nonexistent" not found"#
        )
    );
}

#[tokio::test]
async fn discovery_is_allowed_by_the_bootstrap_roles_and_refused_to_the_anonymous_user() {
    let server = enforcing().await;
    let as_sa = client_as(&server, sa()).await;
    let version = as_sa.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
    assert!(
        !as_sa.list_api_groups().await.unwrap().groups.is_empty(),
        "system:discovery: every authenticated user"
    );
    let anonymous = server.client_as(Identity::anonymous());
    assert!(anonymous.apiserver_version().await.is_ok(), "system:public-info-viewer: /version for everyone");
    let status = raw_status(anonymous.list_api_groups().await);
    assert_eq!(
        (status.code, status.message.as_str()),
        (403, r#"forbidden: User "system:anonymous" cannot get path "/apis""#)
    );
}

#[tokio::test]
async fn without_enforcement_and_for_privileged_users_everything_is_allowed() {
    let open = FakeApiServer::builder().seed(1).build();
    let configmaps: Api<ConfigMap> = Api::namespaced(open.client_as(sa()), "default");
    assert!(configmaps.create(&PostParams::default(), &cm("x")).await.is_ok(), "RBAC is off by default");
    assert!(!open.cluster().rbac_enforced());
    let server = enforcing().await;
    let admin: Api<ConfigMap> = Api::namespaced(client_as(&server, Identity::admin()).await, "ops");
    assert!(admin.create(&PostParams::default(), &cm("x")).await.is_ok(), "system:masters");
    let loopback: Api<ConfigMap> = Api::namespaced(server.client(), "ops");
    assert!(
        loopback.delete("x", &Default::default()).await.is_ok(),
        "a client with no identity is the loopback user"
    );
}

fn ssar(verb: &str, resource: &str, subresource: &str, namespace: &str) -> SelfSubjectAccessReview {
    SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                resource: Some(resource.into()),
                subresource: Some(subresource.into()).filter(|s: &String| !s.is_empty()),
                namespace: Some(namespace.into()),
                group: Some(String::new()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn self_subject_access_reviews_answer_what_the_policy_allows_and_why() {
    let server = enforcing().await;
    role(
        &server,
        "ops",
        "reader",
        json!([{"apiGroups": [""], "resources": ["pods", "pods/status"], "verbs": ["get"]}]),
    )
    .await;
    role_binding(&server, "ops", "kopf-reads", "Role", "reader", json!([subject_sa("ops", "kopf")])).await;
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client_as(&server, sa()).await);
    let pp = PostParams::default();
    let allowed = reviews.create(&pp, &ssar("get", "pods", "status", "ops")).await.unwrap().status.unwrap();
    assert!(allowed.allowed);
    assert_eq!(
        allowed.reason.as_deref(),
        Some(
            r#"RBAC: allowed by RoleBinding "kopf-reads/ops" of Role "reader" to ServiceAccount "kopf/ops""#
        )
    );
    let denied = reviews.create(&pp, &ssar("delete", "pods", "", "ops")).await.unwrap().status.unwrap();
    assert!(!denied.allowed);
    assert_eq!(denied.reason, None);
    let missing = reviews.create(&pp, &SelfSubjectAccessReview::default()).await;
    assert_eq!(api_error(missing).0, 422, "neither resource nor non-resource attributes");
    // Another user's access, asked by an administrator.
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(SA.into()),
            groups: Some(sa().groups().to_vec()),
            resource_attributes: ssar("get", "pods", "", "ops").spec.resource_attributes,
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SubjectAccessReview>::all(server.client()).create(&pp, &sar).await.unwrap();
    assert!(answer.status.unwrap().allowed);
    assert_eq!(
        server
            .cluster()
            .access(
                &sa(),
                &AccessAttributes::Resource {
                    verb: "get".into(),
                    group: String::new(),
                    resource: "pods".into(),
                    subresource: String::new(),
                    namespace: "other".into(),
                    name: "p".into(),
                }
            )
            .unwrap_err()
            .code(),
        403
    );
}

#[tokio::test]
async fn self_subject_rules_reviews_list_the_rules_that_apply_in_a_namespace() {
    let server = enforcing().await;
    role(
        &server,
        "ops",
        "reader",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]),
    )
    .await;
    role_binding(&server, "ops", "kopf-reads", "Role", "reader", json!([subject_sa("ops", "kopf")])).await;
    let review = SelfSubjectRulesReview {
        spec: SelfSubjectRulesReviewSpec { namespace: Some("ops".into()) },
        ..Default::default()
    };
    let client = client_as(&server, sa()).await;
    let status = Api::<SelfSubjectRulesReview>::all(client)
        .create(&PostParams::default(), &review)
        .await
        .unwrap()
        .status
        .unwrap();
    assert!(!status.incomplete);
    let resources: Vec<(Vec<String>, Vec<String>)> = status
        .resource_rules
        .iter()
        .map(|r| (r.resources.clone().unwrap_or_default(), r.verbs.clone()))
        .collect();
    assert!(resources.contains(&(vec!["configmaps".into()], vec!["get".into()])), "{resources:?}");
    assert!(
        resources.iter().any(|(r, _)| r.contains(&"selfsubjectaccessreviews".to_owned())),
        "system:basic-user's rules apply to every authenticated user: {resources:?}"
    );
    assert!(
        status
            .non_resource_rules
            .iter()
            .any(|r| r.non_resource_urls.as_ref().is_some_and(|u| u.contains(&"/apis/*".to_owned())))
    );
}

#[tokio::test]
async fn a_self_subject_review_reports_who_the_request_authenticated_as() {
    let server = enforcing().await;
    let client = client_as(&server, sa()).await;
    let review: Value = client
        .request(
            http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
                .header("content-type", "application/json")
                .body(
                    serde_json::to_vec(
                        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
                    )
                    .unwrap(),
                )
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(review["status"]["userInfo"]["username"], SA);
    assert_eq!(review["status"]["userInfo"]["groups"], json!(sa().groups()));
}

#[tokio::test]
async fn over_http_the_admin_token_is_a_cluster_admin_and_an_unknown_token_is_a_401() {
    let server = enforcing().await;
    let front = server.serve(fake_apiserver::ServeOptions::default().token(TOKEN)).await.unwrap();
    let with_token = async |token: &str| {
        let yaml = front.kubeconfig().replace(TOKEN, token);
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        let options = kube::config::KubeConfigOptions::default();
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.unwrap();
        config.root_cert = Some(Vec::new());
        config.default_retry = false;
        Api::<ConfigMap>::namespaced(kube::Client::try_from(config).unwrap(), "ops")
    };
    let admin = with_token(TOKEN).await;
    assert!(admin.create(&PostParams::default(), &cm("x")).await.is_ok());
    let (code, reason, _) = api_error(with_token("not-a-token").await.get("x").await);
    assert_eq!((code, reason.as_str()), (401, "Unauthorized"));
    let issued = server.cluster().issue_token(sa());
    assert_eq!(server.cluster().authenticate(&issued), Some(sa()));
    assert!(api_error(with_token(&issued).await.get("x").await).2.contains(SA));
    front.shutdown().await;
}

/// `fake-apiserver serve --rbac --token-auth-file` with kubectl: a token file's service account is
/// refused with the real message, `auth can-i` (a protobuf SelfSubjectAccessReview) and `auth
/// whoami` answer for it, and a Role bound with `kubectl create rolebinding` lets it through.
#[tokio::test]
async fn kubectl_sees_403s_asks_can_i_and_whoami_as_a_token_files_service_account() {
    for kubectl in crate::external::kubectls() {
        let dir = crate::external::scratch("kubectl-rbac");
        let tokens = dir.join("tokens.csv");
        std::fs::write(&tokens, "sa-token,system:serviceaccount:default:op,uid-1\n").unwrap();
        let served = crate::external::Served::spawn(
            "kubectl-rbac",
            &["--bare", "--rbac", "--token-auth-file", tokens.to_str().unwrap()],
        )
        .await;
        fn as_sa<'a>(args: &[&'a str]) -> Vec<&'a str> {
            [&["--token", "sa-token"], args].concat()
        }
        let user = "system:serviceaccount:default:op";
        let stderr = kubectl.fail(&served, &as_sa(&["get", "configmaps"]), None).await;
        assert_eq!(
            stderr.trim(),
            format!(
                r#"Error from server (Forbidden): configmaps is forbidden: User "{user}" cannot list resource "configmaps" in API group "" in the namespace "default""#
            ),
            "kubectl {}",
            kubectl.version
        );
        let no = kubectl.output(&served, &as_sa(&["auth", "can-i", "list", "configmaps"]), None).await;
        assert_eq!(
            String::from_utf8_lossy(&no.stdout).trim(),
            "no",
            "{}",
            String::from_utf8_lossy(&no.stderr)
        );
        assert_eq!(
            kubectl.run(&served, &["auth", "can-i", "list", "configmaps"]).await.trim(),
            "yes",
            "the admin"
        );
        let whoami = kubectl.run(&served, &as_sa(&["auth", "whoami", "-o", "json"])).await;
        let whoami: Value = serde_json::from_str(&whoami).unwrap();
        assert_eq!(whoami["status"]["userInfo"]["username"], user);
        assert_eq!(whoami["status"]["userInfo"]["uid"], "uid-1");

        // Generator commands send protobuf; piped through apply they go as JSON.
        for generate in [
            &["create", "role", "reader", "--verb=get,list", "--resource=configmaps"][..],
            &["create", "rolebinding", "reader", "--role=reader", "--serviceaccount=default:op"][..],
        ] {
            let manifest =
                kubectl.run(&served, &[generate, &["--dry-run=client", "-o", "json"]].concat()).await;
            kubectl.run_with_stdin(&served, &["apply", "-f", "-"], Some(&manifest)).await;
        }
        let yes = kubectl.run(&served, &as_sa(&["auth", "can-i", "list", "configmaps"])).await;
        assert_eq!(yes.trim(), "yes");
        let listed = kubectl.run(&served, &as_sa(&["get", "configmaps", "-o", "name"])).await;
        assert_eq!(listed.trim(), "", "allowed now, and there are none");
        let stderr = kubectl.fail(&served, &as_sa(&["delete", "configmap", "x"]), None).await;
        assert!(stderr.contains(r#"cannot delete resource "configmaps""#), "{stderr}");
    }
}
