//! `POST pods/<name>/binding`: how a scheduler assigns a Pod to a Node. The real server's binding
//! storage sets `spec.nodeName` and the `PodScheduled=True` condition in one write, refuses a Pod
//! that is already assigned or being deleted (409), and answers with a `Status` of success.

use std::sync::Arc;

use serde_json::{Value, json};

use super::read::object_key;
use crate::cluster::State;
use crate::error::{ApiError, Result, StatusCause};
use crate::request::{Request, Response};
use crate::resources::ResourceInfo;
use crate::store::history::EventType;

impl State {
    pub(crate) fn bind(&mut self, info: &Arc<ResourceInfo>, req: &Request) -> Result<Response> {
        let key = object_key(req);
        let gr = info.group_resource();
        let Some(body) = req.body.as_ref().filter(|b| b.is_object()) else {
            return Err(ApiError::BadRequest("the body of the request was not a Binding object".into()));
        };
        if body["kind"].as_str().is_some_and(|k| k != "Binding") {
            return Err(ApiError::BadRequest(format!(
                "the body of the request was a {}, not a Binding",
                body["kind"].as_str().unwrap_or_default()
            )));
        }
        let target = body["target"]["name"].as_str().unwrap_or_default();
        if target.is_empty() {
            return Err(ApiError::invalid(
                "Binding",
                "",
                &key.1,
                vec![StatusCause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value".into(),
                    field: "target.name".into(),
                }],
            ));
        }
        let pod = self.current(info.storage_key(), &key).ok_or_else(|| ApiError::not_found(&gr, &key.1))?;
        let conflict =
            |message: String| ApiError::Conflict { resource: gr.clone(), name: key.1.clone(), message };
        if let Some(uid) = body["metadata"]["uid"].as_str().filter(|u| !u.is_empty())
            && uid != pod.uid()
        {
            return Err(conflict(format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                pod.uid()
            )));
        }
        if pod.is_deleting() {
            return Err(conflict(format!("pod {} is being deleted, cannot be assigned to a host", key.1)));
        }
        let mut object = pod.value();
        if let Some(node) = object["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            return Err(conflict(format!("pod {} is already assigned to node \"{node}\"", key.1)));
        }
        object["spec"]["nodeName"] = json!(target);
        let scheduled = json!({
            "type": "PodScheduled",
            "status": "True",
            "lastProbeTime": null,
            "lastTransitionTime": self.clock.now_rfc3339(),
        });
        let conditions = object["status"]["conditions"].as_array_mut();
        match conditions {
            Some(list) => {
                list.retain(|c| c["type"] != "PodScheduled");
                list.push(scheduled);
            }
            None => object["status"]["conditions"] = json!([scheduled]),
        }
        if !req.params.dry_run {
            self.put(info, object, EventType::Modified);
        }
        Ok(Response::Status(success()))
    }
}

fn success() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}
