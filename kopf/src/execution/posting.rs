//! Kubernetes Events, posted as Kopf posts them: core `v1` Events with `generateName:
//! kopf-event-`, `source.component`/`reportingComponent` from the settings, `action: Action?`,
//! first/last/event times from the operator's clock, messages cut to 1024 characters with `...` in
//! the middle. One background task posts them in order; failures are logged and ignored.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::client::ApiClient;
use crate::primitives::activity::{Activity, Counter};
use crate::primitives::clock::{Clock, format_iso};
use crate::primitives::tasks::OwnedTask;
use crate::settings::PostingSettings;
use crate::structs::references::Resource;

/// One Event to post.
#[derive(Debug, Clone)]
pub(crate) struct PostRequest {
    pub(crate) involved: Value,
    pub(crate) event_type: String,
    pub(crate) reason: String,
    pub(crate) message: String,
}

/// The sending side of the poster. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Poster {
    tx: mpsc::UnboundedSender<PostRequest>,
    activity: Activity,
}

impl Poster {
    /// Queues an Event about `body`. Events about Events are dropped, as in Kopf.
    pub(crate) fn post(&self, body: &Value, event_type: &str, reason: &str, message: &str) {
        if body["kind"] == "Event" {
            return;
        }
        let meta = &body["metadata"];
        let involved = json!({
            "apiVersion": body["apiVersion"],
            "kind": body["kind"],
            "name": meta["name"],
            "uid": meta["uid"],
            "namespace": meta["namespace"],
        });
        self.activity.enter(Counter::PendingPosts);
        let request = PostRequest {
            involved,
            event_type: event_type.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
        };
        if self.tx.send(request).is_err() {
            self.activity.leave(Counter::PendingPosts); // the operator is stopping
        }
    }
}

/// Cuts a message to 1024 characters: 511 from the head, `...`, 510 from the tail.
pub(crate) fn cut(message: &str) -> String {
    let chars: Vec<char> = message.chars().collect();
    if chars.len() <= 1024 {
        return message.to_owned();
    }
    let head: String = chars[..511].iter().collect();
    let tail: String = chars[chars.len() - 510..].iter().collect();
    format!("{head}...{tail}")
}

/// The poster's channel and the task that drains it.
pub(crate) fn spawn(
    client: Arc<dyn ApiClient>,
    settings: PostingSettings,
    clock: Clock,
    activity: Activity,
    default_namespace: String,
) -> (Poster, OwnedTask<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<PostRequest>();
    let poster = Poster { tx, activity: activity.clone() };
    let events = Resource {
        group: String::new(),
        version: "v1".into(),
        plural: "events".into(),
        kind: "Event".into(),
        singular: "event".into(),
        short_names: vec!["ev".into()],
        namespaced: true,
        status_subresource: false,
        preferred: true,
    };
    let task = OwnedTask::spawn(async move {
        while let Some(request) = rx.recv().await {
            let namespace = request.involved["namespace"]
                .as_str()
                .map_or_else(|| default_namespace.clone(), str::to_owned);
            let now = format_iso(clock.now());
            let body = json!({
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"namespace": namespace, "generateName": settings.event_name_prefix},
                "action": "Action?",
                "type": request.event_type,
                "reason": request.reason,
                "message": cut(&request.message),
                "reportingComponent": settings.reporting_component,
                "reportingInstance": settings.reporting_instance,
                "source": {"component": settings.reporting_component},
                "firstTimestamp": now,
                "lastTimestamp": now,
                "eventTime": now,
                "involvedObject": request.involved,
            });
            if let Err(e) = client.create(&events, Some(&namespace), &body).await {
                tracing::warn!(error = %e, reason = %request.reason, "failed to post an event; ignored");
            }
            activity.leave(Counter::PendingPosts);
        }
    });
    (poster, task)
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn long_messages_are_cut_in_the_middle_like_kopf() {
        let long = format!("{}{}", "a".repeat(600), "b".repeat(600));
        let cut = cut(&long);
        assert_eq!(cut.chars().count(), 1024);
        assert!(cut.starts_with(&"a".repeat(511)) && cut.ends_with(&"b".repeat(510)) && cut.contains("..."));
        assert_eq!(super::cut("short"), "short");
    }
}
