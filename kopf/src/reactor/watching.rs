//! The watch stream of one resource in one namespace (or cluster-wide): list, then watch from the
//! list's resourceVersion; re-watch from the last seen resourceVersion when a watch ends or goes
//! silent (`watching.inactivity_timeout`); re-list after 410 Gone; back off on errors. Every object
//! listed and every event goes to the [`Dispatcher`].

use std::sync::Arc;

use futures::StreamExt as _;
use tokio::time::Instant;

use super::processing::EventKind;
use super::queueing::Dispatcher;
use crate::client::{self, RawEvent, Selectors};
use crate::execution::Runtime;
use crate::primitives::activity::Counter;
use crate::structs::references::Resource;

/// Watches until the stop signal.
pub(crate) async fn watch_resource(
    rt: Runtime,
    resource: Arc<Resource>,
    namespace: Option<String>,
    mut dispatcher: Dispatcher,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let activity = rt.activity.clone();
    let settings = rt.settings.clone();
    let ns = namespace.as_deref();
    // Counted as disconnected until the first list is through, and whenever (re)connecting.
    activity.enter(Counter::Disconnected);
    let mut error_step = 0usize;
    let mut indexed_listing_reported = false;
    let selectors = selectors_for(&settings, &resource);
    let mut unsharded_reported = false;
    let mut watched_once = false;
    'relist: loop {
        if *stop.borrow() {
            break;
        }
        // Kopf's streaming block: no listing and no watching while the operator is paused. A
        // paused stream is not counted disconnected (there is nothing to do until resumed).
        if rt.paused.is_on() {
            let blockers = rt.paused.names_on().join(", ");
            tracing::debug!("Pausing the watch-stream for {resource} (blockers: {blockers}).");
            activity.leave(Counter::Disconnected);
            let resumed = until_resumed(&rt, &mut stop).await;
            activity.enter(Counter::Disconnected);
            if !resumed {
                break;
            }
            continue;
        }
        let listed =
            client::retrying::retrying(&settings.networking, || rt.client.list(&resource, ns, &selectors))
                .await;
        let list = match listed {
            Ok(list) => list,
            Err(e) => {
                let delay = backoff(&settings.networking.error_backoffs, &mut error_step);
                tracing::error!(resource = %resource, error = %e, ?delay, "Listing failed; retrying.");
                if !pause(&rt, &mut stop, Instant::now() + delay).await {
                    break;
                }
                continue;
            }
        };
        if let Some(selector) = &selectors.shard
            && list.shard_info.is_none()
            && !unsharded_reported
        {
            unsharded_reported = true;
            report_unsharded(&rt, &resource, ns, selector);
        }
        let listed = list.items.len();
        let keys: std::collections::BTreeSet<String> =
            list.items.iter().map(super::queueing::object_key).collect();
        for item in list.items {
            dispatcher.dispatch(EventKind::Listed, item);
        }
        // Objects gone while not watching (a pause, a 410): their workers end.
        dispatcher.retain(&keys);
        if !indexed_listing_reported && dispatcher.has_indexers() {
            indexed_listing_reported = true;
            rt.indexes.listed(listed);
        }
        let mut resource_version = list.resource_version;
        activity.leave(Counter::Disconnected);
        loop {
            let timeout = settings.watching.server_timeout.map(|t| t.as_secs());
            // Every watch after the stream's first is a restart (a re-watch, or one after a re-list).
            if watched_once {
                rt.metrics.watch_restart(&resource.name());
            }
            watched_once = true;
            let watched = rt.client.watch(&resource, ns, &resource_version, timeout, &selectors).await;
            let mut stream = match watched {
                Ok(stream) => {
                    error_step = 0;
                    stream
                }
                Err(client::Error::Gone(_)) => {
                    activity.enter(Counter::Disconnected);
                    continue 'relist;
                }
                Err(e) => {
                    let delay = backoff(&settings.networking.error_backoffs, &mut error_step);
                    tracing::warn!(resource = %resource, error = %e, ?delay, "Watching failed; retrying.");
                    activity.enter(Counter::Disconnected);
                    let resumed = pause(&rt, &mut stop, Instant::now() + delay).await;
                    activity.leave(Counter::Disconnected);
                    if !resumed {
                        return finish(&activity, &mut dispatcher, false).await;
                    }
                    continue;
                }
            };
            loop {
                let silent_until = settings.watching.inactivity_timeout.map(|t| Instant::now() + t);
                let mut stop_rx = stop.clone();
                let mut paused = rt.paused.subscribe();
                let next = activity
                    .wait(silent_until, async {
                        tokio::select! {
                            biased;
                            _ = stop_rx.wait_for(|s| *s) => Next::Stop,
                            _ = paused.wait_for(|p| *p) => Next::Pause,
                            event = stream.next() => Next::Event(event),
                        }
                    })
                    .await;
                let event = match next {
                    None => break, // silent for too long: re-watch
                    Some(Next::Stop) => return finish(&activity, &mut dispatcher, false).await,
                    Some(Next::Pause) => {
                        // The stream closes; the next listing is after the pause.
                        drop(stream);
                        activity.enter(Counter::Disconnected);
                        continue 'relist;
                    }
                    Some(Next::Event(None)) => break, // the server ended the watch: re-watch
                    Some(Next::Event(Some(event))) => event,
                };
                match event {
                    Ok(RawEvent::Added(o)) => {
                        remember(&mut resource_version, &o);
                        dispatcher.dispatch(EventKind::Added, o);
                    }
                    Ok(RawEvent::Modified(o)) => {
                        remember(&mut resource_version, &o);
                        dispatcher.dispatch(EventKind::Modified, o);
                    }
                    Ok(RawEvent::Deleted(o)) => {
                        remember(&mut resource_version, &o);
                        dispatcher.dispatch(EventKind::Deleted, o);
                        dispatcher.reap();
                    }
                    Ok(RawEvent::Bookmark { resource_version: rv }) => resource_version = rv,
                    Ok(RawEvent::Error { code: 410, .. }) => {
                        activity.enter(Counter::Disconnected);
                        continue 'relist;
                    }
                    Ok(RawEvent::Error { code, message }) => {
                        tracing::warn!(resource = %resource, code, %message, "The watch reported an error; re-watching.");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(resource = %resource, error = %e, "The watch failed; re-watching.");
                        break;
                    }
                }
            }
            activity.enter(Counter::Disconnected);
            let resumed = pause(&rt, &mut stop, Instant::now() + settings.watching.reconnect_backoff).await;
            activity.leave(Counter::Disconnected);
            if !resumed {
                return finish(&activity, &mut dispatcher, false).await;
            }
        }
    }
    finish(&activity, &mut dispatcher, true).await;
}

/// The server-side selection of a resource's lists and watches, from `settings.watching`.
pub(crate) fn selectors_for(settings: &crate::Settings, resource: &Resource) -> Selectors {
    Selectors { shard: settings.watching.shard_selectors.first(resource).cloned() }
}

/// Warns (once per watch stream) that the server sent a whole collection for a sharded request.
fn report_unsharded(rt: &Runtime, resource: &Resource, namespace: Option<&str>, selector: &str) {
    tracing::warn!(
        resource = %resource,
        namespace = namespace.unwrap_or_default(),
        selector,
        "The API server ignored the shard selector (no ShardedListAndWatch feature gate?): \
         this operator sees and handles every object, not only its shard."
    );
    rt.observe(|| crate::observe::Observation::Unsharded {
        resource: resource.name(),
        namespace: namespace.unwrap_or_default().to_owned(),
        selector: selector.to_owned(),
    });
}

/// Why a watch stream's wait ended.
enum Next<T> {
    Stop,
    Pause,
    Event(Option<T>),
}

/// Waits while the operator is paused; `false` if stopped meanwhile.
async fn until_resumed(rt: &Runtime, stop: &mut tokio::sync::watch::Receiver<bool>) -> bool {
    let mut stop = stop.clone();
    let mut paused = rt.paused.subscribe();
    let resumed = rt
        .activity
        .wait(None, async move {
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => false,
                _ = paused.wait_for(|p| !*p) => true,
            }
        })
        .await;
    resumed == Some(true)
}

async fn finish(
    activity: &crate::primitives::activity::Activity,
    dispatcher: &mut Dispatcher,
    disconnected: bool,
) {
    if disconnected {
        activity.leave(Counter::Disconnected);
    }
    dispatcher.shutdown().await;
}

fn remember(resource_version: &mut String, object: &serde_json::Value) {
    if let Some(rv) = object["metadata"]["resourceVersion"].as_str() {
        *resource_version = rv.to_owned();
    }
}

fn backoff(backoffs: &[std::time::Duration], step: &mut usize) -> std::time::Duration {
    let delay = backoffs.get(*step).or(backoffs.last()).copied().unwrap_or(std::time::Duration::from_secs(1));
    *step += 1;
    delay
}

/// Waits until `deadline` unless stopped; `false` when stopped.
async fn pause(rt: &Runtime, stop: &mut tokio::sync::watch::Receiver<bool>, deadline: Instant) -> bool {
    let mut stop = stop.clone();
    rt.activity.wait(Some(deadline), async move { stop.wait_for(|s| *s).await.is_ok() }).await.is_none()
}
