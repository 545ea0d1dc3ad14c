//! R14, R16, R17: finalizers and deletionTimestamp, garbage collection, namespace lifecycle.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy};
use serde_json::json;

use crate::common::*;

fn with_finalizer(name: &str, finalizer: &str) -> ConfigMap {
    let mut c = cm(name);
    c.metadata.finalizers = Some(vec![finalizer.to_owned()]);
    c
}

fn owned_by(name: &str, owner: &ConfigMap, block: bool) -> ConfigMap {
    let mut c = cm(name);
    c.metadata.owner_references =
        Some(vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: owner.metadata.name.clone().unwrap(),
            uid: owner.metadata.uid.clone().unwrap(),
            block_owner_deletion: Some(block),
            controller: None,
        }]);
    c
}

#[tokio::test]
async fn delete_of_an_object_with_finalizers_sets_deletion_timestamp_once_and_keeps_it() {
    let server = server();
    let Some(client) = clock_bound_client(&server) else { return };
    let api = configmaps(&client);
    api.create(&PostParams::default(), &with_finalizer("a", "kopf.zalando.org/KopfFinalizerMarker"))
        .await
        .unwrap();
    let first = api.delete("a", &DeleteParams::default()).await.unwrap().left().expect("the object stays");
    let stamp = first.metadata.deletion_timestamp.clone().expect("deletionTimestamp is set");
    assert_eq!(first.metadata.deletion_grace_period_seconds, Some(0));
    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(10)).await;
    let again = api.delete("a", &DeleteParams::default()).await.unwrap().left().unwrap();
    assert_eq!(again.metadata.deletion_timestamp, Some(stamp), "a repeated delete changes nothing");
    assert_eq!(rv(&again), rv(&first));
}

#[tokio::test]
async fn removing_the_last_finalizer_deletes_the_object() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    api.create(&PostParams::default(), &with_finalizer("a", "example.com/f")).await.unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .unwrap();
    assert!(api.get_opt("a").await.unwrap().is_none());
}

#[tokio::test]
async fn new_finalizers_cannot_be_added_to_a_deleting_object() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    api.create(&PostParams::default(), &with_finalizer("a", "example.com/f")).await.unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let (code, reason, message) = api_error(
        api.patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/f", "example.com/g"]}})),
        )
        .await,
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert!(message.contains("no new finalizers can be added if the object is being deleted"), "{message}");
}

#[tokio::test]
async fn delete_preconditions_on_uid_and_resource_version_are_enforced() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let created = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let wrong_uid = DeleteParams {
        preconditions: Some(Preconditions { uid: Some("nope".into()), resource_version: None }),
        ..Default::default()
    };
    let (code, reason, message) = api_error(api.delete("a", &wrong_uid).await);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(message.contains("Precondition failed: UID in precondition: nope"), "{message}");
    let right = DeleteParams {
        preconditions: Some(Preconditions {
            uid: created.metadata.uid.clone(),
            resource_version: created.metadata.resource_version.clone(),
        }),
        ..Default::default()
    };
    let status =
        api.delete("a", &right).await.unwrap().right().expect("a Status for built-ins deleted at once");
    assert_eq!(status.status, Some(kube::core::response::StatusSummary::Success));
}

#[tokio::test]
async fn background_deletion_collects_dependents_whose_owners_are_all_gone() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let owner = api.create(&PostParams::default(), &cm("owner")).await.unwrap();
    let other = api.create(&PostParams::default(), &cm("other")).await.unwrap();
    api.create(&PostParams::default(), &owned_by("child", &owner, false)).await.unwrap();
    let mut shared = owned_by("shared", &owner, false);
    let second = owned_by("x", &other, false).metadata.owner_references.unwrap().remove(0);
    shared.metadata.owner_references.as_mut().unwrap().push(second);
    api.create(&PostParams::default(), &shared).await.unwrap();

    api.delete("owner", &DeleteParams::background()).await.unwrap();
    assert!(api.get_opt("child").await.unwrap().is_none(), "the only-owned dependent is collected");
    let survivor = api.get("shared").await.unwrap();
    let owners: Vec<String> =
        survivor.metadata.owner_references.unwrap().into_iter().map(|o| o.name).collect();
    assert_eq!(
        owners,
        vec!["other"],
        "a dependent with another live owner loses only the dangling reference"
    );
}

#[tokio::test]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let owner = api.create(&PostParams::default(), &cm("owner")).await.unwrap();
    let mut child = owned_by("child", &owner, true);
    child.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &child).await.unwrap();

    api.delete("owner", &DeleteParams::foreground()).await.unwrap();
    let waiting = api.get("owner").await.unwrap();
    assert!(waiting.metadata.deletion_timestamp.is_some());
    assert_eq!(waiting.metadata.finalizers, Some(vec!["foregroundDeletion".to_owned()]));
    assert!(
        api.get("child").await.unwrap().metadata.deletion_timestamp.is_some(),
        "the dependent is being deleted"
    );

    api.patch("child", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .unwrap();
    assert!(api.get_opt("child").await.unwrap().is_none());
    assert!(
        api.get_opt("owner").await.unwrap().is_none(),
        "the owner goes once its blocking dependent is gone"
    );
}

#[tokio::test]
async fn orphan_deletion_strips_owner_references_and_keeps_dependents() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let owner = api.create(&PostParams::default(), &cm("owner")).await.unwrap();
    api.create(&PostParams::default(), &owned_by("child", &owner, true)).await.unwrap();
    api.delete("owner", &DeleteParams::orphan()).await.unwrap();
    assert!(api.get_opt("owner").await.unwrap().is_none());
    let child = api.get("child").await.unwrap();
    assert_eq!(child.metadata.owner_references, None);
}

#[tokio::test]
async fn namespace_deletion_terminates_empties_and_then_removes_the_namespace() {
    let server = server();
    let client = client_for(&server).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap(),
        )
        .await
        .unwrap();
    let team: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    team.create(&PostParams::default(), &cm("plain")).await.unwrap();
    team.create(&PostParams::default(), &with_finalizer("held", "example.com/hold")).await.unwrap();

    namespaces.delete("team", &DeleteParams::default()).await.unwrap();
    let terminating = namespaces.get("team").await.unwrap();
    assert_eq!(terminating.status.and_then(|s| s.phase).as_deref(), Some("Terminating"));
    assert!(team.get_opt("plain").await.unwrap().is_none(), "contents are deleted");
    let (code, reason, _) = api_error(team.create(&PostParams::default(), &cm("late")).await);
    assert_eq!((code, reason.as_str()), (403, "Forbidden"), "no new content in a terminating namespace");

    team.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .unwrap();
    assert!(namespaces.get_opt("team").await.unwrap().is_none(), "the namespace goes last");
}

#[tokio::test]
async fn a_dry_run_delete_deletes_nothing() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        dry_run: true,
        ..Default::default()
    };
    api.delete("a", &params).await.unwrap();
    assert!(api.get_opt("a").await.unwrap().is_some(), "a dry-run delete deletes nothing");
}

#[tokio::test]
async fn deletecollection_deletes_what_the_selector_matches() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    api.create(&PostParams::default(), &labelled("a", &[("team", "x")])).await.unwrap();
    api.create(&PostParams::default(), &labelled("b", &[("team", "y")])).await.unwrap();
    api.delete_collection(&DeleteParams::default(), &kube::api::ListParams::default().labels("team=x"))
        .await
        .unwrap();
    assert!(api.get_opt("a").await.unwrap().is_none());
    assert!(api.get_opt("b").await.unwrap().is_some());
}
