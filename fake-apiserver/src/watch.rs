//! Watches: a stream per subscriber that reads the shared change log from its own cursor, filters
//! by resource, namespace and selectors, and turns changes into `ADDED`/`MODIFIED`/`DELETED` events
//! (an object entering or leaving a selector becomes `ADDED` or `DELETED`, as on the real server).
//!
//! There are no per-watch queues to overflow: a slow watch simply reads later. If its cursor falls
//! out of the history it gets an `ERROR` event with 410 Gone and ends, and the client re-lists.
//! Bookmarks, `timeoutSeconds` and the initial-events-end bookmark of `sendInitialEvents` follow the
//! real server; all timing is on tokio time, so a paused clock drives it.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::cluster::{Shared, State};
use crate::error::ApiError;
use crate::faults::Fault;
use crate::resources::{ResourceInfo, StorageKey};
use crate::selectors::fields::FieldSelector;
use crate::selectors::labels::LabelSelector;
use crate::selectors::shards::ShardSelector;
use crate::store::history::{Change, EventType};
use crate::store::objects::StoredObject;

/// How often a watch that allows bookmarks gets one (the real watch cache's bookmark frequency).
pub const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// How long a watch without `timeoutSeconds` lasts (the real server's `--min-request-timeout`).
pub const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// How many changes a watch takes from the log per lock.
const BATCH: usize = 512;

/// One event of a watch stream.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// An object was created, or entered the watch's selectors, or is part of the initial state.
    Added(Arc<StoredObject>),
    /// An object changed.
    Modified(Arc<StoredObject>),
    /// An object was deleted, or left the watch's selectors (its last state).
    Deleted(Arc<StoredObject>),
    /// The watch has seen everything up to this resourceVersion.
    Bookmark {
        /// The resourceVersion.
        resource_version: u64,
        /// Set on the bookmark that ends the initial events of `sendInitialEvents`.
        initial_events_end: bool,
    },
    /// The watch failed (e.g. 410 Gone); the stream ends after it.
    Error(ApiError),
}

impl WatchEvent {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Added(_) => "ADDED",
            Self::Modified(_) => "MODIFIED",
            Self::Deleted(_) => "DELETED",
            Self::Bookmark { .. } => "BOOKMARK",
            Self::Error(_) => "ERROR",
        }
    }

    /// The object of an `ADDED`/`MODIFIED`/`DELETED` event.
    pub fn object(&self) -> Option<&Arc<StoredObject>> {
        match self {
            Self::Added(o) | Self::Modified(o) | Self::Deleted(o) => Some(o),
            _ => None,
        }
    }

    /// The resourceVersion the event carries (0 for errors).
    pub fn resource_version(&self) -> u64 {
        match self {
            Self::Bookmark { resource_version, .. } => *resource_version,
            Self::Error(_) => 0,
            Self::Added(o) | Self::Modified(o) | Self::Deleted(o) => o.resource_version(),
        }
    }

    /// The event as one line of the watch wire format (`{"type":…,"object":…}\n`). `present` turns a
    /// stored object into the bytes the client asked for (another version, metadata only).
    pub fn to_json_line(&self, info: &ResourceInfo, present: impl Fn(&StoredObject) -> Bytes) -> Bytes {
        let mut line = Vec::with_capacity(256);
        line.extend_from_slice(b"{\"type\":\"");
        line.extend_from_slice(self.type_name().as_bytes());
        line.extend_from_slice(b"\",\"object\":");
        match self {
            Self::Added(o) | Self::Modified(o) | Self::Deleted(o) => line.extend_from_slice(&present(o)),
            Self::Bookmark { resource_version, initial_events_end } => {
                let mut metadata =
                    json!({"resourceVersion": resource_version.to_string(), "creationTimestamp": null});
                if *initial_events_end {
                    metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
                }
                let object =
                    json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": metadata});
                line.extend_from_slice(&serde_json::to_vec(&object).unwrap_or_default());
            }
            Self::Error(e) => line.extend_from_slice(&serde_json::to_vec(&e.to_status()).unwrap_or_default()),
        }
        line.extend_from_slice(b"}\n");
        Bytes::from(line)
    }
}

/// What a watch selects.
#[derive(Debug)]
pub(crate) struct WatchFilter {
    pub(crate) key: Arc<StorageKey>,
    pub(crate) namespace: Option<String>,
    pub(crate) labels: LabelSelector,
    pub(crate) fields: FieldSelector,
    /// The parsed `shardSelector`, when the feature gate is on. The uid and the namespace never
    /// change, so an object never moves in or out of a shard: no synthetic `ADDED`/`DELETED`.
    pub(crate) shards: Option<ShardSelector>,
}

impl WatchFilter {
    pub(crate) fn matches(&self, object: &StoredObject) -> bool {
        self.namespace.as_ref().is_none_or(|ns| ns == object.namespace())
            && self.labels.matches(&object.labels)
            && self.fields.matches(|path| object.field(path))
            && self.shards.as_ref().is_none_or(|s| s.matches(&object.uid, object.namespace()))
    }

    /// The event a change becomes for this watch, if any.
    fn event_for(&self, change: &Change) -> Option<WatchEvent> {
        if *change.key != *self.key {
            return None;
        }
        let now = self.matches(&change.object);
        let before = change.prev.as_deref().is_some_and(|p| self.matches(p));
        match (change.kind, before, now) {
            (EventType::Added, _, true) => Some(WatchEvent::Added(change.object.clone())),
            (EventType::Modified, true, true) => Some(WatchEvent::Modified(change.object.clone())),
            (EventType::Modified, false, true) => Some(WatchEvent::Added(change.object.clone())),
            (EventType::Modified, true, false) => Some(WatchEvent::Deleted(change.object.clone())),
            (EventType::Deleted, _, true) => Some(WatchEvent::Deleted(change.object.clone())),
            _ => None,
        }
    }
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// The current state as `ADDED` events first; with `bookmark`, then the initial-events-end bookmark.
    Initial { bookmark: bool },
    /// Changes after this resourceVersion.
    From(u64),
}

/// Everything needed to open a watch.
#[derive(Debug)]
pub(crate) struct WatchSpec {
    pub(crate) info: Arc<ResourceInfo>,
    pub(crate) filter: WatchFilter,
    pub(crate) start: Start,
    pub(crate) timeout: Duration,
    pub(crate) bookmarks: bool,
    pub(crate) fault: Option<Fault>,
}

/// The state of one open watch that the cluster keeps, so `settle` can tell whether it has
/// undelivered events.
#[derive(Debug)]
pub(crate) struct WatchInfo {
    pub(crate) filter: Arc<WatchFilter>,
    /// Every change up to here has been examined.
    pub(crate) cursor: u64,
    /// Events taken from the log but not yet yielded.
    pub(crate) buffered: Arc<AtomicUsize>,
    /// A stalled watch never delivers; its backlog is not "pending".
    pub(crate) stalled: bool,
    /// Set to end the stream ([`crate::Cluster::drop_watches`]).
    pub(crate) closed: Arc<std::sync::atomic::AtomicBool>,
}

impl WatchInfo {
    /// Whether events are waiting for this watch.
    pub(crate) fn has_backlog(&self, state: &State) -> bool {
        if self.stalled || self.closed.load(Ordering::SeqCst) {
            return false;
        }
        if self.buffered.load(Ordering::SeqCst) > 0 {
            return true;
        }
        match state.history.after(self.cursor) {
            Some(mut changes) => changes.any(|c| self.filter.event_for(c).is_some()),
            None => true, // it will get its 410 next
        }
    }
}

/// A stream of watch events from the core. Dropping it closes the watch.
pub struct WatchStream {
    id: u64,
    info: Arc<ResourceInfo>,
    inner: Pin<Box<dyn Stream<Item = WatchEvent> + Send>>,
}

impl std::fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream").field("id", &self.id).field("resource", &self.info.plural).finish()
    }
}

impl WatchStream {
    /// The watch's id (as the journal names it).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The resource watched (its version decides how objects are presented).
    pub fn info(&self) -> &Arc<ResourceInfo> {
        &self.info
    }

    /// A watch that only yields `event` and ends (errors detected at the start).
    pub(crate) fn single(info: Arc<ResourceInfo>, event: WatchEvent) -> Self {
        Self { id: 0, info, inner: Box::pin(futures::stream::iter([event])) }
    }

    /// Opens a watch; the caller holds the state lock.
    pub(crate) fn open(shared: &Arc<Shared>, state: &mut State, spec: WatchSpec) -> Self {
        state.next_watch_id += 1;
        let id = state.next_watch_id;
        let filter = Arc::new(spec.filter);
        let buffered = Arc::new(AtomicUsize::new(0));
        let mut buffer = VecDeque::new();
        let cursor = match spec.start {
            Start::Initial { bookmark } => {
                if let Some(objects) = state.stores.get(&*filter.key) {
                    let candidates: Box<dyn Iterator<Item = &Arc<StoredObject>>> = match &filter.namespace {
                        Some(ns) => Box::new(objects.in_namespace(ns)),
                        None => Box::new(objects.iter()),
                    };
                    buffer.extend(
                        candidates.filter(|o| filter.matches(o)).map(|o| WatchEvent::Added(o.clone())),
                    );
                }
                if bookmark {
                    buffer.push_back(WatchEvent::Bookmark {
                        resource_version: state.rv,
                        initial_events_end: true,
                    });
                }
                state.rv
            }
            Start::From(rv) => rv,
        };
        let stalled = spec.fault == Some(Fault::WatchStall);
        if spec.fault == Some(Fault::WatchGone) {
            buffer.clear();
            buffer.push_back(WatchEvent::Error(too_old(cursor, state.history.compacted())));
        }
        if let Some(Fault::WatchDrop { after }) = spec.fault {
            buffer.truncate(after);
        }
        let buffer_len = buffer.len();
        buffered.store(buffer_len, Ordering::SeqCst);
        let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        state.watches.insert(
            id,
            WatchInfo {
                filter: filter.clone(),
                cursor,
                buffered: buffered.clone(),
                stalled,
                closed: closed.clone(),
            },
        );
        let resource: Arc<str> = filter.key.journal_name().into();
        let scope: Arc<str> = filter.namespace.as_deref().unwrap_or_default().into();
        state.journal_delivery(id, &resource, "OPENED", cursor, None, Some(&scope));
        let now = Instant::now();
        let next_bookmark = spec.bookmarks.then(|| now + BOOKMARK_INTERVAL);
        for event in &buffer {
            state.journal_event(id, &resource, event);
        }
        let watcher = Watcher {
            shared: shared.clone(),
            id,
            resource,
            scope,
            filter,
            cursor,
            buffer,
            buffered,
            rx: Subscription::new(&state.notify),
            deadline: now + spec.timeout,
            next_bookmark,
            timer: Box::pin(tokio::time::sleep_until(
                next_bookmark.unwrap_or(now + spec.timeout).min(now + spec.timeout),
            )),
            budget: match spec.fault {
                Some(Fault::WatchDrop { after }) => Some(after.saturating_sub(buffer_len)),
                _ => None,
            },
            stalled,
            done: spec.fault == Some(Fault::WatchGone),
            closed,
        };
        let inner = futures::stream::unfold(watcher, |mut w| async move { w.next().await.map(|e| (e, w)) });
        Self { id, info: spec.info, inner: Box::pin(inner) }
    }
}

impl Stream for WatchStream {
    type Item = WatchEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchEvent>> {
        self.inner.as_mut().poll_next(cx)
    }
}

fn too_old(requested: u64, compacted: u64) -> ApiError {
    ApiError::Expired(format!("too old resource version: {requested} ({})", compacted + 1))
}

/// Wakes the watch streams at each change of the cluster, in the order they started waiting, so
/// one history is delivered to its watchers in the same order run after run. (tokio's `watch`
/// channel spreads its waiters over shards picked at random: clients watching two resources saw
/// the same writes in a different order from one run to the next.)
#[derive(Debug, Default)]
pub(crate) struct ChangeSignal {
    /// Bumped at each change (or wake-up without one: a dropped watch, a removed resource).
    version: AtomicU64,
    notify: tokio::sync::Notify,
}

impl ChangeSignal {
    /// Wakes every waiting watch stream.
    pub(crate) fn wake(&self) {
        self.version.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

/// A watch stream's view of the [`ChangeSignal`]: which wake-up it has seen.
struct Subscription {
    signal: Arc<ChangeSignal>,
    seen: u64,
}

impl Subscription {
    fn new(signal: &Arc<ChangeSignal>) -> Self {
        Self { signal: signal.clone(), seen: signal.version.load(Ordering::SeqCst) }
    }

    /// Resolves at the first wake-up not seen yet (at once if one came since the last look).
    async fn changed(&mut self) {
        loop {
            let notified = self.signal.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let version = self.signal.version.load(Ordering::SeqCst);
            if version != self.seen {
                self.seen = version;
                return;
            }
            notified.await;
        }
    }

    /// Marks every wake-up so far as seen (the stream is about to look at the log).
    fn mark_seen(&mut self) {
        self.seen = self.signal.version.load(Ordering::SeqCst);
    }
}

/// The state machine behind one watch stream.
struct Watcher {
    shared: Arc<Shared>,
    id: u64,
    /// The resource as the journal names it.
    resource: Arc<str>,
    /// The namespace watched, empty for all.
    scope: Arc<str>,
    filter: Arc<WatchFilter>,
    cursor: u64,
    buffer: VecDeque<WatchEvent>,
    buffered: Arc<AtomicUsize>,
    rx: Subscription,
    deadline: Instant,
    next_bookmark: Option<Instant>,
    /// One timer for the next bookmark or the deadline, re-armed rather than re-created.
    timer: Pin<Box<tokio::time::Sleep>>,
    /// Events still allowed before a `WatchDrop` fault ends the stream.
    budget: Option<usize>,
    stalled: bool,
    /// The stream ends once the buffer is drained.
    done: bool,
    /// Set by [`crate::Cluster::drop_watches`]: end now.
    closed: Arc<std::sync::atomic::AtomicBool>,
}

enum Fill {
    /// Events (maybe none) were taken; keep going.
    Taken,
    /// A whole batch of changes held nothing for this watch and more follow: look again now,
    /// rather than wait for the next change (which may never come).
    More,
    /// The resource is gone (its CRD was deleted): end the stream.
    Gone,
}

impl Watcher {
    async fn next(&mut self) -> Option<WatchEvent> {
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return None;
            }
            if let Some(event) = self.buffer.pop_front() {
                self.buffered.fetch_sub(1, Ordering::SeqCst);
                if matches!(event, WatchEvent::Error(_)) {
                    self.done = true;
                    self.buffer.clear();
                    self.buffered.store(0, Ordering::SeqCst);
                }
                return Some(event);
            }
            if self.done || self.budget == Some(0) {
                return None;
            }
            if !self.stalled {
                match self.fill() {
                    Fill::Gone => return None,
                    Fill::More => continue,
                    Fill::Taken if !self.buffer.is_empty() => continue,
                    Fill::Taken => {}
                }
            }
            // Nothing to deliver: wait for a change, the next bookmark, or the end.
            tokio::select! {
                biased;
                () = self.rx.changed(), if !self.stalled => {}
                () = &mut self.timer => {
                    if Instant::now() >= self.deadline {
                        return None;
                    }
                    if let Some(at) = self.next_bookmark.as_mut() {
                        *at += BOOKMARK_INTERVAL;
                        if !self.stalled {
                            let bookmark = WatchEvent::Bookmark { resource_version: self.cursor, initial_events_end: false };
                            self.shared.lock().journal_event(self.id, &self.resource, &bookmark);
                            self.buffer.push_back(bookmark);
                            self.buffered.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    let next = self.next_bookmark.unwrap_or(self.deadline).min(self.deadline);
                    self.timer.as_mut().reset(next);
                }
            }
        }
    }

    /// Takes the next batch of matching changes from the log, journaling each as delivered to this
    /// watch (under the same lock, so the journal shows it before anything the consumer does next).
    fn fill(&mut self) -> Fill {
        self.rx.mark_seen();
        let mut state = self.shared.lock();
        let state = &mut *state;
        let Some(changes) = state.history.after(self.cursor) else {
            let error = WatchEvent::Error(too_old(self.cursor, state.history.compacted()));
            self.buffer.push_back(error);
            self.buffered.fetch_add(1, Ordering::SeqCst);
            return Fill::Taken;
        };
        let limit = self.budget.unwrap_or(usize::MAX);
        let mut examined = 0;
        let mut last = self.cursor;
        for change in changes.take(BATCH) {
            if self.buffer.len() >= limit {
                break;
            }
            examined += 1;
            last = change.rv;
            if let Some(event) = self.filter.event_for(change) {
                self.buffer.push_back(event);
            }
        }
        if examined < BATCH && self.buffer.len() < limit {
            last = last.max(state.rv);
            if self.buffer.is_empty() && !state.registry_has(&self.filter.key) {
                return Fill::Gone;
            }
        }
        self.cursor = last;
        self.buffered.store(self.buffer.len(), Ordering::SeqCst);
        if let Some(budget) = self.budget.as_mut() {
            *budget -= self.buffer.len().min(*budget);
        }
        for event in &self.buffer {
            state.journal_event(self.id, &self.resource, event);
        }
        if let Some(info) = state.watches.get_mut(&self.id) {
            info.cursor = last;
        }
        if examined == BATCH && self.buffer.is_empty() && last < state.rv {
            return Fill::More;
        }
        Fill::Taken
    }
}

impl State {
    /// Records one event as delivered to a watch.
    fn journal_event(&mut self, watch: u64, resource: &Arc<str>, event: &WatchEvent) {
        if self.journal.enabled() {
            let object = event.object().map(|o| &**o);
            self.journal_delivery(watch, resource, event.type_name(), event.resource_version(), object, None);
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.watches.remove(&self.id);
        let cursor = self.cursor;
        state.journal_delivery(self.id, &self.resource, "CLOSED", cursor, None, Some(&self.scope));
    }
}

/// A shared, poison-tolerant lock helper so a panic elsewhere never wedges the cluster.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Renders a stored object for a resource version other than the stored one, if needed.
pub(crate) fn present_version(object: &StoredObject, api_version: &str) -> Bytes {
    if object.api_version() == api_version {
        return object.json().clone();
    }
    let mut value: Value = object.value();
    value["apiVersion"] = Value::String(api_version.to_owned());
    Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
}
