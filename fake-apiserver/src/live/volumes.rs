//! Simulated volumes: every PersistentVolumeClaim is provisioned and bound at once — a
//! PersistentVolume `pvc-<claim uid>` of the requested size and access modes (a host path on the
//! simulated node, reclaim policy Delete) is created, both sides are marked Bound — and the volume
//! of a deleted claim is deleted, as the PV controller with a dynamic provisioner does.

use serde_json::json;
use tokio::time::Instant;

use super::manager::{Cx, Reconciler};
use super::world::{Kind, ObjKey, Object, World};

/// The StorageClass claims without one get (as kind's default class is named).
pub const DEFAULT_STORAGE_CLASS: &str = "standard";
const PROVISIONER: &str = "fake.kopf.dev/simulated-volume";

/// The volume binder.
#[derive(Debug, Default)]
pub(crate) struct VolumeBinder;

fn volume_name(claim: &Object) -> String {
    format!("pvc-{}", claim.uid())
}

impl Reconciler for VolumeBinder {
    fn name(&self) -> &'static str {
        "persistent-volume-binder"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::PersistentVolumeClaim, Kind::PersistentVolume]
    }

    fn on_change(&mut self, _: &World, kind: Kind, object: &Object, _deleted: bool, out: &mut Vec<ObjKey>) {
        match kind {
            Kind::PersistentVolumeClaim => out.push(object.key()),
            _ => {
                let claim = &object.spec()["claimRef"];
                if let (Some(ns), Some(name)) = (claim["namespace"].as_str(), claim["name"].as_str()) {
                    out.push((ns.to_owned(), name.to_owned()));
                }
            }
        }
    }

    fn reconcile(&mut self, cx: &mut Cx<'_>, key: &ObjKey) -> Option<Instant> {
        let claim = cx.world.get(Kind::PersistentVolumeClaim, &key.0, &key.1).cloned();
        // Volumes whose claim is gone (or was replaced by another of the same name) are deleted.
        let stale: Vec<_> = cx
            .world
            .all(Kind::PersistentVolume)
            .filter(|pv| {
                let r = &pv.spec()["claimRef"];
                r["namespace"] == key.0.as_str()
                    && r["name"] == key.1.as_str()
                    && claim.as_ref().is_none_or(|c| r["uid"] != c.uid())
                    && pv.spec()["persistentVolumeReclaimPolicy"] == "Delete"
                    && !pv.deleting()
            })
            .cloned()
            .collect();
        for pv in stale {
            cx.delete(Kind::PersistentVolume, &pv, None);
        }
        let claim = claim.filter(|c| !c.deleting())?;
        let name = volume_name(&claim);
        let Some(volume) = cx.world.get(Kind::PersistentVolume, "", &name).cloned() else {
            let requests = &claim.spec()["resources"]["requests"];
            let storage = requests["storage"].as_str().unwrap_or("1Gi");
            let class = claim.spec()["storageClassName"].as_str().unwrap_or(DEFAULT_STORAGE_CLASS);
            cx.create(
                Kind::PersistentVolume,
                "",
                json!({
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
                    "spec": {
                        "capacity": {"storage": storage},
                        "accessModes": claim.spec()["accessModes"].as_array().cloned().unwrap_or_else(|| vec![json!("ReadWriteOnce")]),
                        "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": claim.namespace(),
                            "name": claim.name(), "uid": claim.uid(), "resourceVersion": claim.rv.to_string()},
                        "persistentVolumeReclaimPolicy": "Delete",
                        "storageClassName": class,
                        "volumeMode": claim.spec()["volumeMode"].as_str().unwrap_or("Filesystem"),
                        "hostPath": {"path": format!("/var/local-path-provisioner/{name}_{}_{}", claim.namespace(), claim.name()), "type": "DirectoryOrCreate"},
                    },
                }),
            );
            cx.again = true;
            return None;
        };
        if volume.status()["phase"] != "Bound" {
            cx.update_status(Kind::PersistentVolume, &volume, json!({"phase": "Bound"}));
        }
        if claim.spec()["volumeName"].as_str() != Some(name.as_str()) {
            let class = claim.spec()["storageClassName"].as_str().unwrap_or(DEFAULT_STORAGE_CLASS);
            cx.patch(
                Kind::PersistentVolumeClaim,
                &claim,
                json!({
                    "metadata": {"annotations": {"pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes",
                        "volume.beta.kubernetes.io/storage-provisioner": PROVISIONER, "volume.kubernetes.io/storage-provisioner": PROVISIONER}},
                    "spec": {"volumeName": name, "storageClassName": class},
                }),
            );
            cx.again = true;
            return None;
        }
        if claim.status()["phase"] != "Bound" {
            let status = json!({
                "phase": "Bound",
                "accessModes": volume.spec()["accessModes"].clone(),
                "capacity": volume.spec()["capacity"].clone(),
            });
            cx.update_status(Kind::PersistentVolumeClaim, &claim, status);
        }
        None
    }
}
