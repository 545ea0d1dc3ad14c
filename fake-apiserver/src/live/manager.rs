//! The controller manager: one task that runs every enabled control loop, as the live cluster's
//! kube-controller-manager, kube-scheduler and kubelets together.
//!
//! It is a client of the core like any other: it lists and watches the resources the loops need
//! through [`Cluster::handle`] (informers), keeps their caches ([`World`]), maps each change to
//! work keys per loop, and runs the loops' reconciliations one key at a time; a reconciliation
//! returns requests (created through the same door, journaled under the loop's name) and the
//! instant it wants to run again. Changes are applied in resourceVersion order and the queue is
//! first-in first-out, so the same inputs give the same requests in the same order, every run.
//!
//! Time is tokio's: timers are `sleep_until` on the cluster's clock, so under a paused clock a
//! kubelet's one-second start, a crash loop's back-off or a CronJob's schedule take no wall time.
//! While it waits, the task registers its next deadline in [`Shared`] for exact settling.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use futures::FutureExt as _;
use futures::StreamExt as _;
use futures::stream::Peekable;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::control::Shared;
use super::world::{Kind, ObjKey, Object, World};
use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::error::ApiError;
use crate::request::{Params, PatchType, Request, Response, Verb};
use crate::watch::{WatchEvent, WatchStream};

/// One control loop.
pub(crate) trait Reconciler: Send + Sync {
    /// The name requests are journaled under (`replicaset-controller`, `kubelet`).
    fn name(&self) -> &'static str;

    /// The field manager of its writes (`kube-controller-manager`, `kube-scheduler`, `kubelet`).
    fn manager(&self) -> &'static str {
        "kube-controller-manager"
    }

    /// The resources it reads.
    fn kinds(&self) -> &'static [Kind];

    /// Maps a change (the object's new state, or its last state if it was deleted) to the keys
    /// that need reconciling.
    fn on_change(&mut self, world: &World, kind: Kind, object: &Object, deleted: bool, out: &mut Vec<ObjKey>);

    /// Brings one key towards its desired state: reads the world, queues requests in `cx`, and
    /// returns when it wants to run again (a delay, a back-off, a schedule), if ever.
    fn reconcile(&mut self, cx: &mut Cx<'_>, key: &ObjKey) -> Option<Instant>;
}

/// A request a reconciliation makes.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    Create {
        kind: Kind,
        namespace: String,
        body: Value,
    },
    /// A merge patch of the object or its status.
    Patch {
        kind: Kind,
        namespace: String,
        name: String,
        status: bool,
        patch: Value,
    },
    /// A PUT of the status with the object's resourceVersion (optimistic concurrency).
    ReplaceStatus {
        kind: Kind,
        object: Value,
    },
    /// A PUT of the object with its resourceVersion.
    Replace {
        kind: Kind,
        object: Value,
    },
    Delete {
        kind: Kind,
        namespace: String,
        name: String,
        grace: Option<i64>,
        uid: Option<String>,
        propagation: Option<&'static str>,
    },
    /// `POST pods/<name>/binding`.
    Bind {
        namespace: String,
        name: String,
        uid: String,
        node: String,
    },
}

/// What a reconciliation sees and does.
pub(crate) struct Cx<'a> {
    pub(crate) world: &'a World,
    pub(crate) now: Instant,
    pub(crate) clock: Clock,
    pub(crate) shared: &'a Shared,
    pub(crate) actions: Vec<Action>,
    /// Run this key again right after the requests (another step is due at once).
    pub(crate) again: bool,
}

impl Cx<'_> {
    /// The cluster's wall time as `metav1.Time` (whole seconds).
    pub(crate) fn time(&self) -> String {
        self.clock.now_rfc3339()
    }

    /// The cluster's wall time as `metav1.MicroTime`.
    pub(crate) fn micro_time(&self) -> String {
        self.clock.now_micro()
    }

    /// The cluster's wall time in whole seconds since the epoch.
    pub(crate) fn unix(&self) -> i64 {
        self.clock.now().as_second()
    }

    /// The instant of a wall time (past instants come out as now).
    pub(crate) fn instant_at(&self, at: jiff::Timestamp) -> Instant {
        let ahead = at.duration_since(self.clock.now());
        match Duration::try_from(ahead) {
            Ok(d) => self.now + d,
            Err(_) => self.now,
        }
    }

    /// The rules of container behaviour.
    pub(crate) fn rules(&self) -> Vec<super::behaviour::Rule> {
        super::control::lock(&self.shared.rules).clone()
    }

    pub(crate) fn create(&mut self, kind: Kind, namespace: &str, body: Value) {
        self.actions.push(Action::Create { kind, namespace: namespace.to_owned(), body });
    }

    pub(crate) fn patch(&mut self, kind: Kind, object: &Object, patch: Value) {
        let (namespace, name) = object.key();
        self.actions.push(Action::Patch { kind, namespace, name, status: false, patch });
    }

    /// Replaces the status when it differs from the cached one.
    pub(crate) fn update_status(&mut self, kind: Kind, object: &Object, status: Value) {
        if object.status() == &status {
            return;
        }
        let mut value = object.value.clone();
        value["status"] = status;
        // Unconditional (built-ins allow it): the cache is current, and a patch of the object
        // earlier in the same reconciliation must not make this one conflict.
        if let Some(meta) = value["metadata"].as_object_mut() {
            meta.remove("resourceVersion");
            meta.remove("managedFields");
        }
        self.actions.push(Action::ReplaceStatus { kind, object: value });
    }

    pub(crate) fn replace(&mut self, kind: Kind, object: Value) {
        self.actions.push(Action::Replace { kind, object });
    }

    pub(crate) fn delete(&mut self, kind: Kind, object: &Object, grace: Option<i64>) {
        let (namespace, name) = object.key();
        self.actions.push(Action::Delete {
            kind,
            namespace,
            name,
            grace,
            uid: Some(object.uid().to_owned()),
            propagation: None,
        });
    }

    pub(crate) fn delete_propagating(&mut self, kind: Kind, object: &Object, propagation: &'static str) {
        let (namespace, name) = object.key();
        self.actions.push(Action::Delete {
            kind,
            namespace,
            name,
            grace: None,
            uid: Some(object.uid().to_owned()),
            propagation: Some(propagation),
        });
    }

    pub(crate) fn bind(&mut self, pod: &Object, node: &str) {
        let (namespace, name) = pod.key();
        self.actions.push(Action::Bind { namespace, name, uid: pod.uid().to_owned(), node: node.to_owned() });
    }
}

/// One watched resource: its stream and where it resumes.
struct Informer {
    kind: Kind,
    /// The id of its watch.
    id: u64,
    stream: Option<Peekable<WatchStream>>,
    /// The resourceVersion to resume from.
    rv: u64,
    /// Re-list (the history moved past `rv`).
    relist: bool,
    /// When to try again after a failed list or watch.
    retry_at: Option<Instant>,
    failures: u32,
}

/// Work: a loop's index and a key.
type Work = (usize, ObjKey);

/// A first-in first-out queue without duplicates.
#[derive(Default)]
struct Queue {
    order: VecDeque<Work>,
    queued: std::collections::HashSet<Work>,
}

impl Queue {
    fn push(&mut self, work: Work) {
        if self.queued.insert(work.clone()) {
            self.order.push_back(work);
        }
    }

    fn pop(&mut self) -> Option<Work> {
        let work = self.order.pop_front()?;
        self.queued.remove(&work);
        Some(work)
    }
}

/// At most one timer per work item; the latest reconciliation decides it.
#[derive(Default)]
struct Timers {
    by_work: HashMap<Work, (Instant, u64)>,
    due: BTreeSet<(Instant, u64, Work)>,
    seq: u64,
}

impl Timers {
    fn set(&mut self, work: Work, at: Option<Instant>) {
        if let Some((old_at, old_seq)) = self.by_work.remove(&work) {
            self.due.remove(&(old_at, old_seq, work.clone()));
        }
        if let Some(at) = at {
            self.seq += 1;
            self.by_work.insert(work.clone(), (at, self.seq));
            self.due.insert((at, self.seq, work));
        }
    }

    fn next(&self) -> Option<Instant> {
        self.due.first().map(|(at, ..)| *at)
    }

    fn pop_due(&mut self, now: Instant) -> Option<Work> {
        let (at, _, work) = self.due.first()?.clone();
        if at > now {
            return None;
        }
        self.set(work.clone(), None);
        Some(work)
    }
}

/// The controller manager's state; [`Manager::run`] is the task.
pub(crate) struct Manager {
    cluster: Cluster,
    shared: Arc<Shared>,
    world: World,
    informers: Vec<Informer>,
    loops: Vec<Box<dyn Reconciler>>,
    interest: BTreeMap<Kind, Vec<usize>>,
    queue: Queue,
    timers: Timers,
    failures: HashMap<Work, u32>,
}

/// The first retry of a failed request, doubling up to [`MAX_BACKOFF`] (client-go's per-item
/// exponential rate limiter).
const BASE_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1000);

fn backoff(failures: u32) -> Duration {
    BASE_BACKOFF.saturating_mul(1u32 << failures.saturating_sub(1).min(20)).min(MAX_BACKOFF)
}

impl Manager {
    pub(crate) fn new(cluster: Cluster, shared: Arc<Shared>, loops: Vec<Box<dyn Reconciler>>) -> Self {
        let mut interest: BTreeMap<Kind, Vec<usize>> = BTreeMap::new();
        for (i, l) in loops.iter().enumerate() {
            for kind in l.kinds() {
                interest.entry(*kind).or_default().push(i);
            }
        }
        let informers = interest
            .keys()
            .map(|kind| Informer {
                kind: *kind,
                id: 0,
                stream: None,
                rv: 0,
                relist: true,
                retry_at: None,
                failures: 0,
            })
            .collect();
        Self {
            cluster,
            shared,
            world: World::default(),
            informers,
            loops,
            interest,
            queue: Queue::default(),
            timers: Timers::default(),
            failures: HashMap::new(),
        }
    }

    /// The task: runs until aborted.
    pub(crate) async fn run(mut self) {
        loop {
            let now = Instant::now();
            self.connect(now).await;
            self.drain();
            if self.shared.poked.swap(false, Ordering::SeqCst) {
                self.poke_all();
            }
            while let Some(work) = self.timers.pop_due(now) {
                self.queue.push(work);
            }
            if let Some(work) = self.queue.pop() {
                self.reconcile(work).await;
                continue;
            }
            if self.drain() > 0 || self.needs_connect(Instant::now()) {
                continue;
            }
            self.wait().await;
        }
    }

    /// Lists and watches what is not connected (at start, after a watch ended or failed).
    async fn connect(&mut self, now: Instant) {
        for i in 0..self.informers.len() {
            let inf = &self.informers[i];
            if inf.stream.is_some() || inf.retry_at.is_some_and(|at| at > now) {
                continue;
            }
            let kind = inf.kind;
            if inf.relist {
                let (cluster, shared, actor) =
                    (self.cluster.clone(), self.shared.clone(), self.actor_for(kind));
                match list(&cluster, &shared, actor, kind).await {
                    Ok((items, rv)) => self.replace_all(i, items, rv),
                    Err(e) => {
                        self.informer_failed(i, now, &e);
                        continue;
                    }
                }
            }
            let (group, version, plural) = kind.gvr();
            let mut req = Request::new(Verb::Watch, group, version, plural);
            req.params =
                Params { resource_version: Some(self.informers[i].rv.to_string()), ..Params::default() };
            req.actor = self.actor_for(kind).into();
            self.shared.count_request();
            let cluster = self.cluster.clone();
            match cluster.handle(req).await {
                Ok(Response::Watch(stream)) => {
                    let inf = &mut self.informers[i];
                    inf.id = stream.id();
                    inf.stream = Some(stream.peekable());
                    inf.retry_at = None;
                    inf.failures = 0;
                }
                Ok(_) => {
                    self.informer_failed(i, now, &ApiError::Internal("a watch returned no stream".into()))
                }
                Err(e) => self.informer_failed(i, now, &e),
            }
        }
    }

    fn needs_connect(&self, now: Instant) -> bool {
        self.informers.iter().any(|i| i.stream.is_none() && i.retry_at.is_none_or(|at| at <= now))
    }

    fn informer_failed(&mut self, i: usize, now: Instant, error: &ApiError) {
        let inf = &mut self.informers[i];
        inf.failures += 1;
        inf.retry_at = Some(now + backoff(inf.failures).max(Duration::from_millis(100)));
        if matches!(error, ApiError::Expired(_)) {
            inf.relist = true;
        }
        tracing::debug!(kind = ?inf.kind, %error, "control plane: list or watch failed; retrying");
    }

    fn actor_for(&self, kind: Kind) -> &'static str {
        self.interest
            .get(&kind)
            .and_then(|l| l.first())
            .map_or("kube-controller-manager", |i| self.loops[*i].name())
    }

    /// A fresh list: every listed object is a change (added or modified), every cached object not
    /// listed any more is deleted.
    fn replace_all(&mut self, i: usize, items: Vec<Arc<crate::StoredObject>>, rv: u64) {
        let kind = self.informers[i].kind;
        let listed: BTreeSet<ObjKey> =
            items.iter().map(|o| (o.namespace().to_owned(), o.name().to_owned())).collect();
        let gone: Vec<ObjKey> =
            self.world.cache(kind).keys().filter(|k| !listed.contains(*k)).cloned().collect();
        for key in gone {
            if let Some(old) = self.world.cache_mut(kind).remove(&key, rv) {
                self.dispatch(kind, &old, true);
            }
        }
        for item in items {
            let object = Arc::new(Object::new(item.value()));
            if self.world.cache_mut(kind).upsert(object.clone()) {
                self.dispatch(kind, &object, false);
            }
        }
        let inf = &mut self.informers[i];
        inf.rv = rv;
        inf.relist = false;
    }

    /// Applies every watch event available now, in resourceVersion order; returns how many.
    fn drain(&mut self) -> usize {
        let mut events: Vec<(u64, usize, WatchEvent)> = Vec::new();
        for (i, inf) in self.informers.iter_mut().enumerate() {
            while let Some(stream) = inf.stream.as_mut() {
                match stream.next().now_or_never() {
                    Some(Some(event)) => events.push((event.resource_version(), i, event)),
                    Some(None) => inf.stream = None, // ended (timeout, closed): resume from rv
                    None => break,
                }
            }
        }
        events.sort_by_key(|(rv, i, _)| (*rv, *i));
        let count = events.len();
        for (rv, i, event) in events {
            let kind = self.informers[i].kind;
            match event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                    self.informers[i].rv = self.informers[i].rv.max(rv);
                    let key = (o.namespace().to_owned(), o.name().to_owned());
                    let cached = self.world.cache(kind).get(&key).filter(|c| c.rv >= rv).cloned();
                    let object = match cached {
                        Some(c) => c,
                        None => {
                            let object = Arc::new(Object::new(o.value()));
                            if !self.world.cache_mut(kind).upsert(object.clone()) {
                                continue; // deleted by our own request meanwhile
                            }
                            object
                        }
                    };
                    self.dispatch(kind, &object, false);
                }
                WatchEvent::Deleted(o) => {
                    self.informers[i].rv = self.informers[i].rv.max(rv);
                    let key = (o.namespace().to_owned(), o.name().to_owned());
                    let last = self
                        .world
                        .cache_mut(kind)
                        .remove(&key, rv)
                        .unwrap_or_else(|| Arc::new(Object::new(o.value())));
                    self.dispatch(kind, &last, true);
                }
                WatchEvent::Bookmark { .. } => {}
                WatchEvent::Error(e) => {
                    let inf = &mut self.informers[i];
                    inf.stream = None;
                    inf.relist = true;
                    tracing::debug!(?kind, error = %e, "control plane: watch failed; re-listing");
                }
            }
        }
        for inf in &self.informers {
            self.world.cache_mut(inf.kind).forget_tombstones(inf.rv);
        }
        count
    }

    fn dispatch(&mut self, kind: Kind, object: &Object, deleted: bool) {
        let Some(loops) = self.interest.get(&kind) else { return };
        let mut keys = Vec::new();
        for i in loops {
            keys.clear();
            self.loops[*i].on_change(&self.world, kind, object, deleted, &mut keys);
            for key in keys.drain(..) {
                self.queue.push((*i, key));
            }
        }
    }

    /// A change of settings (the root CA): every loop's every namespace key again.
    fn poke_all(&mut self) {
        let namespaces: Vec<Arc<Object>> = self.world.all(Kind::Namespace).cloned().collect();
        for ns in namespaces {
            self.dispatch(Kind::Namespace, &ns, false);
        }
    }

    async fn reconcile(&mut self, work: Work) {
        let (i, key) = &work;
        self.shared.count_reconcile();
        let mut cx = Cx {
            world: &self.world,
            now: Instant::now(),
            clock: self.cluster.clock(),
            shared: &self.shared,
            actions: Vec::new(),
            again: false,
        };
        let next = self.loops[*i].reconcile(&mut cx, key);
        let (actions, again) = (std::mem::take(&mut cx.actions), cx.again);
        let mut ok = true;
        for action in actions {
            ok &= self.execute(*i, action).await;
        }
        if ok {
            self.failures.remove(&work);
            self.timers.set(work.clone(), next);
            if again {
                self.queue.push(work);
            }
        } else {
            let failures = self.failures.entry(work.clone()).or_default();
            *failures += 1;
            let retry = Instant::now() + backoff(*failures);
            self.timers.set(work, Some(next.map_or(retry, |n| n.min(retry))));
        }
    }

    /// Runs one request; keeps the cache in step with its answer. Returns false if it failed.
    async fn execute(&mut self, l: usize, action: Action) -> bool {
        let (name, manager) = (self.loops[l].name(), self.loops[l].manager());
        let (kind, req) = request(action, name, manager);
        let (namespace, object_name) = (req.namespace.clone().unwrap_or_default(), req.name.clone());
        let verb = req.verb;
        self.shared.count_request();
        let cluster = self.cluster.clone();
        match cluster.handle(req).await {
            Ok(Response::Object(o)) => {
                self.world.cache_mut(kind).upsert(Arc::new(Object::new(o.value())));
                true
            }
            Ok(Response::Status(_)) if verb == Verb::Delete => {
                if let Some(name) = object_name {
                    let rv = self.cluster.resource_version();
                    self.world.cache_mut(kind).remove(&(namespace, name), rv);
                }
                true
            }
            Ok(_) => true,
            Err(ApiError::NotFound { .. }) if matches!(verb, Verb::Delete) => true,
            Err(ApiError::AlreadyExists { .. }) => true,
            Err(error) => {
                tracing::debug!(controller = name, ?kind, %error, "control plane: request failed; will retry");
                false
            }
        }
    }

    /// Waits for a change, the next timer, a retry or a poke, with the deadline registered.
    async fn wait(&mut self) {
        let retry = self.informers.iter().filter_map(|i| i.retry_at).min();
        let deadline = match (self.timers.next(), retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if self.shared.poked.load(Ordering::SeqCst) {
            return;
        }
        *super::control::lock(&self.shared.watches) =
            self.informers.iter().filter(|i| i.stream.is_some()).map(|i| i.id).collect();
        self.shared.park(deadline);
        let informers = &mut self.informers;
        let ready = poll_fn(|cx| {
            for inf in informers.iter_mut() {
                if let Some(stream) = inf.stream.as_mut()
                    && Pin::new(stream).poll_peek(cx).is_ready()
                {
                    return Poll::Ready(());
                }
            }
            Poll::Pending
        });
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = self.shared.poke.notified() => {}
            () = ready => {}
            () = sleep => {}
        }
        self.shared.unpark();
    }
}

/// Lists a resource, as an informer does before it watches.
async fn list(
    cluster: &Cluster,
    shared: &Shared,
    actor: &str,
    kind: Kind,
) -> Result<(Vec<Arc<crate::StoredObject>>, u64), ApiError> {
    let (group, version, plural) = kind.gvr();
    let mut req = Request::new(Verb::List, group, version, plural);
    req.actor = actor.into();
    shared.count_request();
    match cluster.handle(req).await? {
        Response::List(list) => Ok((list.items, list.resource_version)),
        _ => Err(ApiError::Internal("a list returned no list".into())),
    }
}

/// The core request of an action, and the kind it is about.
fn request(action: Action, actor: &str, manager: &str) -> (Kind, Request) {
    let new = |verb: Verb, kind: Kind, namespace: &str| {
        let (group, version, plural) = kind.gvr();
        let mut req = Request::new(verb, group, version, plural);
        if kind.namespaced() {
            req.namespace = Some(namespace.to_owned());
        }
        req.actor = actor.to_owned();
        req.params.field_manager = Some(manager.to_owned());
        req
    };
    match action {
        Action::Create { kind, namespace, body } => (kind, new(Verb::Create, kind, &namespace).body(body)),
        Action::Patch { kind, namespace, name, status, patch } => {
            let mut req =
                new(Verb::Patch, kind, &namespace).name(name).patch_type(PatchType::Merge).body(patch);
            if status {
                req.subresource = Some("status".into());
            }
            (kind, req)
        }
        Action::ReplaceStatus { kind, object } => {
            let (namespace, name) = names(&object);
            (kind, new(Verb::Update, kind, &namespace).name(name).subresource("status").body(object))
        }
        Action::Replace { kind, object } => {
            let (namespace, name) = names(&object);
            (kind, new(Verb::Update, kind, &namespace).name(name).body(object))
        }
        Action::Delete { kind, namespace, name, grace, uid, propagation } => {
            let mut req = new(Verb::Delete, kind, &namespace).name(name);
            req.params.field_manager = None;
            req.params.grace_period_seconds = grace;
            req.params.preconditions.uid = uid;
            req.params.propagation_policy = propagation.map(str::to_owned);
            (kind, req)
        }
        Action::Bind { namespace, name, uid, node } => {
            let body = json!({
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": name, "namespace": namespace, "uid": uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            });
            let mut req =
                new(Verb::Create, Kind::Pod, &namespace).name(name).subresource("binding").body(body);
            req.params.field_manager = None;
            (Kind::Pod, req)
        }
    }
}

fn names(object: &Value) -> (String, String) {
    let meta = &object["metadata"];
    (
        meta["namespace"].as_str().unwrap_or_default().to_owned(),
        meta["name"].as_str().unwrap_or_default().to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_requests_back_off_from_five_milliseconds_doubling_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(5));
        assert_eq!(backoff(2), Duration::from_millis(10));
        assert_eq!(backoff(10), Duration::from_millis(2560));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn the_queue_is_fifo_without_duplicates_and_timers_keep_the_latest() {
        let mut q = Queue::default();
        let a = (0, ("ns".to_owned(), "a".to_owned()));
        let b = (1, ("ns".to_owned(), "b".to_owned()));
        q.push(a.clone());
        q.push(b.clone());
        q.push(a.clone());
        assert_eq!((q.pop(), q.pop(), q.pop()), (Some(a.clone()), Some(b.clone()), None));
        let mut t = Timers::default();
        let now = Instant::now();
        t.set(a.clone(), Some(now + Duration::from_secs(5)));
        t.set(a.clone(), Some(now + Duration::from_secs(9)));
        t.set(b.clone(), Some(now + Duration::from_secs(7)));
        assert_eq!(t.next(), Some(now + Duration::from_secs(7)));
        assert_eq!(t.pop_due(now + Duration::from_secs(8)), Some(b));
        assert_eq!(t.pop_due(now + Duration::from_secs(8)), None);
        t.set(a, None);
        assert_eq!(t.next(), None);
    }
}
