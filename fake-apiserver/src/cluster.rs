//! The core: one cluster's state behind one lock, and [`Cluster::handle`], the single door every
//! request goes through — the tower Service, the typed API and any direct adapter alike — where the
//! fault plan is consulted, the operation runs, the journal records it, and the built-in controllers
//! (garbage collector, namespace and CRD cleanup) finish what the write set in motion.
//!
//! Operations themselves live in `ops/` (reads, writes, deletion); this module keeps the state and
//! the few primitives every write shares: storing a version, removing an object, recording a change.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use crate::auth::{AccessAttributes, Auth, Identity};
use crate::clock::Clock;
use crate::error::{ApiError, Result};
use crate::faults::{Fault, FaultPlan};
use crate::journal::{Delivery, Journal, Operation, Revision};
use crate::metrics::{RequestCounts, RequestKey};
use crate::request::{Request, Response, Verb};
use crate::resources::{Registry, ResourceInfo, StorageKey};
use crate::store::Store;
use crate::store::history::{Change, EventType, History};
use crate::store::objects::{ObjectKey, StoredObject};
use crate::watch::{WatchInfo, lock};

/// Work the built-in controllers still have to do after a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Task {
    /// An object was removed: collect or release its dependents.
    OwnerGone { uid: String },
    /// An owner in foreground deletion may be done waiting for its dependents.
    CheckForeground { key: StorageKey, object: ObjectKey },
    /// Foreground deletion started: delete the dependents.
    StartForeground { key: StorageKey, object: ObjectKey },
    /// Orphan deletion started: strip the owner reference from dependents, then release the owner.
    StartOrphan { key: StorageKey, object: ObjectKey },
    /// A namespace is terminating: delete what is left in it, finalize it when empty.
    CleanNamespace { name: String },
    /// A CRD is terminating: delete its objects, remove it when none are left.
    CleanCrd { name: String },
    /// A CRD was created: accept its names, mark it established, serve it.
    EstablishCrd { name: String },
}

/// The mutable state of a cluster. Guarded by one mutex, never held across an `.await`.
#[derive(Debug)]
pub(crate) struct State {
    /// The last resourceVersion handed out (the cluster-wide revision).
    pub(crate) rv: u64,
    pub(crate) registry: Registry,
    pub(crate) stores: BTreeMap<StorageKey, Store>,
    /// Owner uid → the objects that name it in their ownerReferences.
    pub(crate) dependents: BTreeMap<String, BTreeSet<(StorageKey, ObjectKey)>>,
    pub(crate) history: History,
    pub(crate) rng: fastrand::Rng,
    pub(crate) faults: FaultPlan,
    pub(crate) journal: Journal,
    /// Request counters (`/metrics`), kept whether the journal is on or off.
    pub(crate) requests: RequestCounts,
    pub(crate) watches: BTreeMap<u64, WatchInfo>,
    pub(crate) next_watch_id: u64,
    /// Wakes every watch when the revision moves.
    pub(crate) notify: Arc<crate::watch::ChangeSignal>,
    pub(crate) clock: Clock,
    pub(crate) tasks: VecDeque<Task>,
    /// Warnings for the request being handled (`Warning` headers), taken when it is done.
    pub(crate) warnings: Vec<String>,
    /// The feature gate `ShardedListAndWatch`: honour `shardSelector` (else ignore it).
    pub(crate) sharded_list_and_watch: bool,
    /// Tokens, and RBAC enforcement with its compiled policy.
    pub(crate) auth: Auth,
    /// The webhooks of the stored configurations, parsed (`None` after they changed).
    pub(crate) webhooks: Option<Arc<Vec<crate::admission::hooks::Hook>>>,
    /// Whether the request being executed may be set aside for admission webhooks.
    pub(crate) admitting: bool,
    /// The write the gate set aside for its webhooks, if any.
    pub(crate) pending: Option<crate::ops::admit::Pending>,
}

/// The state plus what lives outside the lock.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Requests inside [`Cluster::handle`] right now.
    in_flight: AtomicUsize,
    clock: Clock,
    /// In-process webhook endpoints, and whether webhooks are called over the network.
    endpoints: crate::admission::Endpoints,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

/// Options of a new cluster.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) seed: u64,
    pub(crate) base_time: jiff::Timestamp,
    pub(crate) history: usize,
    pub(crate) journal: usize,
    pub(crate) namespaces: Vec<String>,
    pub(crate) sharded_list_and_watch: bool,
    /// Enforce RBAC on requests that carry an identity.
    pub(crate) rbac: bool,
}

/// A handle to the in-memory cluster. Cheap to clone; all clones share one state.
#[derive(Debug, Clone)]
pub struct Cluster {
    shared: Arc<Shared>,
}

impl Cluster {
    pub(crate) fn new(config: &Config) -> Self {
        let clock = Clock::new(config.base_time);
        let notify = Arc::default();
        let state = State {
            rv: 0,
            registry: Registry::builtin(),
            stores: BTreeMap::new(),
            dependents: BTreeMap::new(),
            history: History::new(config.history),
            rng: fastrand::Rng::with_seed(config.seed),
            faults: FaultPlan::default(),
            journal: Journal::new(config.journal),
            requests: RequestCounts::default(),
            watches: BTreeMap::new(),
            next_watch_id: 0,
            notify,
            clock,
            tasks: VecDeque::new(),
            warnings: Vec::new(),
            sharded_list_and_watch: config.sharded_list_and_watch,
            auth: Auth::default(),
            webhooks: None,
            admitting: false,
            pending: None,
        };
        let cluster = Self {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                in_flight: AtomicUsize::new(0),
                clock,
                endpoints: crate::admission::Endpoints::default(),
            }),
        };
        {
            let mut state = cluster.shared.lock();
            for ns in &config.namespaces {
                let body =
                    serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                // The bootstrap namespaces are valid by construction; a failure here is a bug in the list.
                if let Err(e) = state.create_as(
                    "kube-apiserver",
                    Request::new(Verb::Create, "", "v1", "namespaces").body(body),
                ) {
                    tracing::error!(namespace = %ns, error = %e, "bootstrap namespace rejected");
                }
            }
        }
        if config.rbac {
            cluster.enforce_rbac(true);
        }
        cluster
    }

    /// Runs one request: consults the fault plan, applies its latency, runs the operation, records
    /// it in the journal and lets the built-in controllers react.
    ///
    /// # Errors
    /// The real server's error for the request, as an [`ApiError`], or the injected fault's.
    pub async fn handle(&self, req: Request) -> Result<Response> {
        self.handle_warned(req).await.0
    }

    /// [`Cluster::handle`], also returning the warnings the real server sends in `Warning` headers
    /// (such as unknown fields under `fieldValidation=Warn`).
    pub async fn handle_warned(&self, mut req: Request) -> (Result<Response>, Vec<String>) {
        let _in_flight = InFlight::enter(&self.shared);
        let decision = {
            let mut state = self.shared.lock();
            if state.faults.is_empty() { Default::default() } else { state.faults.decide(&req) }
        };
        if !decision.latency.is_zero() {
            tokio::time::sleep(decision.latency).await;
        }
        // Authentication and authorization come before admission, as in the real server.
        let (authorized, admitted) = {
            let mut state = self.shared.lock();
            let authorized = state.authorize(&req);
            let admitted = authorized.is_ok()
                && decision.error.is_none()
                && req.verb.is_write()
                && !state.webhook_hooks().is_empty();
            (authorized, admitted)
        };
        let mut warnings = Vec::new();
        let admitted_result =
            if admitted { Some(self.execute_admitted(&mut req, &mut warnings).await) } else { None };
        let mut state = self.shared.lock();
        if !admitted {
            state.warnings.clear();
        }
        let result = match (authorized, decision.error, admitted_result) {
            (Err(forbidden), _, _) => Err(forbidden),
            (Ok(()), Some(error), _) => Err(error),
            (Ok(()), None, Some(result)) => result,
            (Ok(()), None, None) => state.execute(&self.shared, &mut req, decision.watch),
        };
        let fault = (!decision.labels.is_empty()).then(|| decision.labels.join(", "));
        let code = match &result {
            Ok(response) => response.code(req.verb),
            Err(e) => e.code(),
        };
        state.requests.record(&req, code);
        state.journal_request(&req, &result, fault);
        warnings.append(&mut state.warnings);
        state.run_controllers();
        (result, warnings)
    }

    /// Turns RBAC enforcement on or off. On, every request that carries an identity ([`Request::user`],
    /// set by [`crate::FakeService::for_identity`], the HTTP front's tokens, or a direct client) is
    /// authorized against the cluster's Roles, ClusterRoles and bindings, and refused with the real
    /// server's 403; requests without one act as the loopback identity and are always allowed.
    /// Turning it on creates the bootstrap ClusterRoles and ClusterRoleBindings that are missing
    /// (`system:discovery`, `system:basic-user`, `cluster-admin`, `admin`/`edit`/`view`, …).
    pub fn enforce_rbac(&self, enabled: bool) {
        let mut state = self.shared.lock();
        state.auth.enforce = enabled;
        if enabled {
            state.bootstrap_policy();
            state.run_controllers();
        }
    }

    /// Whether RBAC is enforced.
    pub fn rbac_enforced(&self) -> bool {
        self.shared.lock().auth.enforce
    }

    /// Makes a bearer token authenticate as `identity` (over the HTTP front, and in `TokenReview`).
    pub fn register_token(&self, token: impl Into<String>, identity: Identity) {
        self.shared.lock().auth.register_token(token.into(), identity);
    }

    /// A fresh random token (from the seeded generator) that authenticates as `identity`.
    pub fn issue_token(&self, identity: Identity) -> String {
        let mut state = self.shared.lock();
        let token = format!("fake.{}", state.new_uid().replace('-', ""));
        state.auth.register_token(token.clone(), identity);
        token
    }

    /// Who a bearer token authenticates as, if the cluster knows it.
    pub fn authenticate(&self, token: &str) -> Option<Identity> {
        self.shared.lock().auth.authenticate(token)
    }

    /// What RBAC decides for `user` and `attributes`, enforced or not: `Ok` when allowed, else the
    /// 403 the real server answers.
    ///
    /// # Errors
    /// The 403 [`ApiError::Forbidden`] when the policy does not allow it.
    pub fn access(&self, user: &Identity, attributes: &AccessAttributes) -> Result<()> {
        let decision = self.shared.lock().decide(user, attributes);
        if decision.allowed {
            Ok(())
        } else {
            Err(crate::auth::forbidden(user, attributes, &decision.reason))
        }
    }

    /// Authorizes a request for a path outside the API (discovery, OpenAPI, `/version`, health)
    /// when RBAC is enforced and the request has an identity.
    pub(crate) fn authorize_path(&self, user: Option<&Identity>, verb: &str, path: &str) -> Result<()> {
        let mut state = self.shared.lock();
        let Some(user) = user.filter(|_| state.auth.enforce) else { return Ok(()) };
        let attributes = AccessAttributes::NonResource { verb: verb.to_owned(), path: path.to_owned() };
        let decision = state.decide(user, &attributes);
        if decision.allowed {
            Ok(())
        } else {
            Err(crate::auth::forbidden(user, &attributes, &decision.reason))
        }
    }

    /// Runs a write that admission webhooks may intercept: to the gate under the lock; if set
    /// aside, the webhooks with the lock released; then the commit, tried again from the start
    /// when the object changed meanwhile.
    async fn execute_admitted(&self, req: &mut Request, warnings: &mut Vec<String>) -> Result<Response> {
        /// How often a write is tried again when its object keeps changing under its webhooks.
        const ATTEMPTS: usize = 10;
        let original = req.clone();
        for attempt in 1..=ATTEMPTS {
            *req = original.clone();
            let (result, pending) = {
                let mut state = self.shared.lock();
                state.admitting = true;
                let result = state.execute(&self.shared, req, None);
                state.admitting = false;
                warnings.append(&mut state.warnings);
                (result, state.pending.take())
            };
            let Some(mut pending) = pending else { return result };
            let mut outcome = crate::admission::Outcome::default();
            let reviewed = async {
                crate::admission::mutate(self, &mut pending.review, &mut outcome).await?;
                if outcome.changed {
                    let readmitted = {
                        let mut state = self.shared.lock();
                        let readmitted = state.readmit(&mut pending);
                        warnings.append(&mut state.warnings);
                        readmitted
                    };
                    readmitted?;
                }
                crate::admission::validate(self, &pending.review, &mut outcome).await
            }
            .await;
            warnings.append(&mut outcome.warnings);
            reviewed?;
            let committed = {
                let mut state = self.shared.lock();
                let committed = state.commit(pending, &original);
                warnings.append(&mut state.warnings);
                committed
            };
            match committed? {
                Some(response) => return Ok(response),
                None if attempt < ATTEMPTS => {
                    tracing::debug!(attempt, "the object changed under its webhooks")
                }
                None => {}
            }
        }
        let name = original.name.clone().unwrap_or_default();
        Err(ApiError::stale(&crate::error::GroupResource::new(&original.group, &original.plural), &name))
    }

    /// Serves an admission webhook in process: webhooks whose URL starts with `base_url` (at a
    /// path boundary; the longest such base wins) are called through `endpoint`, with no socket —
    /// the transport for tests on virtual time. A service reference is matched as
    /// `https://<name>.<namespace>.svc:<port><path>`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use fake_apiserver::{FakeApiServer, WebhookCall};
    /// use serde_json::json;
    /// let server = FakeApiServer::new();
    /// server.cluster().serve_webhook("https://hooks.test", Arc::new(|call: WebhookCall| {
    ///     let uid = call.review["request"]["uid"].clone();
    ///     Box::pin(async move {
    ///         Ok(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
    ///                   "response": {"uid": uid, "allowed": true}}))
    ///     })
    /// }));
    /// # }
    /// ```
    pub fn serve_webhook(&self, base_url: &str, endpoint: crate::admission::WebhookEndpoint) {
        self.shared.endpoints.insert(base_url, endpoint);
    }

    /// Stops serving an in-process webhook endpoint ([`Cluster::serve_webhook`]).
    pub fn stop_serving_webhook(&self, base_url: &str) {
        self.shared.endpoints.remove(base_url);
    }

    /// Whether webhooks without an in-process endpoint are called over the network (HTTPS, or
    /// HTTP for `http://` URLs). Off by default — real sockets do not follow a paused clock —
    /// and turned on by [`crate::FakeApiServer::serve`].
    pub fn set_webhook_network(&self, enabled: bool) {
        self.shared.endpoints.set_network(enabled);
    }

    pub(crate) fn webhook_endpoint(&self, url: &str) -> Option<(crate::admission::WebhookEndpoint, String)> {
        self.shared.endpoints.find(url)
    }

    pub(crate) fn webhook_network(&self) -> bool {
        self.shared.endpoints.network.load(Ordering::SeqCst)
    }

    /// A fresh uid from the cluster's seeded generator.
    pub(crate) fn new_uid(&self) -> String {
        self.shared.lock().new_uid()
    }

    /// Where a Service sends its traffic: its `externalName`, or the first address of its
    /// EndpointSlices with the target port of the service port.
    pub(crate) fn service_address(
        &self,
        namespace: &str,
        name: &str,
        port: u16,
    ) -> std::result::Result<(String, u16), String> {
        let state = self.shared.lock();
        let services = StorageKey { group: String::new(), plural: "services".into() };
        let Some(service) = state.current(&services, &(namespace.to_owned(), name.to_owned())) else {
            return Err(format!("service \"{namespace}/{name}\" not found"));
        };
        let service = service.value();
        if let Some(external) = service["spec"]["externalName"].as_str() {
            return Ok((external.to_owned(), port));
        }
        let service_port = service["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["port"].as_u64() == Some(u64::from(port)))
            .cloned()
            .ok_or_else(|| format!("service \"{namespace}/{name}\" has no port {port}"))?;
        let slices = StorageKey { group: "discovery.k8s.io".into(), plural: "endpointslices".into() };
        for slice in
            state.stores.get(&slices).map(|s| s.iter().cloned().collect::<Vec<_>>()).unwrap_or_default()
        {
            let slice = slice.value();
            if slice["metadata"]["namespace"].as_str() != Some(namespace)
                || slice["metadata"]["labels"]["kubernetes.io/service-name"].as_str() != Some(name)
            {
                continue;
            }
            let target = match &service_port["targetPort"] {
                Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                Value::String(port_name) => slice["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|p| p["name"].as_str() == Some(port_name))
                    .and_then(|p| p["port"].as_u64())
                    .and_then(|n| u16::try_from(n).ok()),
                _ => Some(port),
            };
            let address = slice["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["conditions"]["ready"].as_bool() != Some(false))
                .find_map(|e| e["addresses"][0].as_str());
            if let (Some(address), Some(target)) = (address, target) {
                return Ok((address.to_owned(), target));
            }
        }
        Err(format!("no endpoints available for service \"{namespace}/{name}\""))
    }

    /// The current cluster-wide resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv
    }

    /// The current virtual wall time of the cluster.
    pub fn clock(&self) -> Clock {
        self.shared.clock
    }

    /// Reads the journal.
    pub fn journal<R>(&self, f: impl FnOnce(&Journal) -> R) -> R {
        f(&self.shared.lock().journal)
    }

    /// Records an HTTP request served over TCP, stamped with the cluster's virtual time.
    pub(crate) fn journal_http(&self, mut request: crate::journal::HttpRequest) {
        let mut state = self.shared.lock();
        if state.journal.enabled() {
            request.at = state.clock.elapsed();
            state.journal.http(request);
        }
    }

    /// The request counters so far: how many requests each client made, by verb, resource,
    /// subresource and status code (what `/metrics` serves; see [`RequestKey`]).
    pub fn request_counts(&self) -> Vec<(RequestKey, u64)> {
        self.shared.lock().requests.snapshot()
    }

    /// Forgets the journal's records so far.
    pub fn clear_journal(&self) {
        self.shared.lock().journal.clear();
    }

    /// Changes the fault plan.
    pub fn faults<R>(&self, f: impl FnOnce(&mut FaultPlan) -> R) -> R {
        f(&mut self.shared.lock().faults)
    }

    /// Ends every open watch stream now, as an API server restart or a load balancer would;
    /// clients resume from their last resourceVersion.
    pub fn drop_watches(&self) {
        let state = self.shared.lock();
        for watch in state.watches.values() {
            watch.closed.store(true, Ordering::SeqCst);
        }
        state.notify.wake();
    }

    /// Drops the whole watch history, as etcd's compaction does: any watch or continue token from
    /// an older resourceVersion now gets 410 Gone.
    pub fn compact(&self) {
        let mut state = self.shared.lock();
        let rv = state.rv;
        state.history.compact(rv);
    }

    /// Whether the feature gate `ShardedListAndWatch` is on ([`crate::Builder::sharded_list_and_watch`]).
    pub fn sharded_list_and_watch(&self) -> bool {
        self.shared.lock().sharded_list_and_watch
    }

    /// The resource served at this group, version and plural.
    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.shared.lock().registry.get(group, version, plural)
    }

    /// Runs `f` on the state under the lock (the live cluster's bootstrap writes).
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.shared.lock())
    }

    pub(crate) fn with_registry<R>(&self, f: impl FnOnce(&Registry) -> R) -> R {
        f(&self.shared.lock().registry)
    }

    /// Every served resource, ordered by group, version and plural.
    pub fn resources(&self) -> Vec<Arc<ResourceInfo>> {
        self.shared.lock().registry.all().cloned().collect()
    }

    /// The current version of an object, read directly (no journal, no faults).
    pub fn object(
        &self,
        group: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Arc<StoredObject>> {
        let key = StorageKey { group: group.to_owned(), plural: plural.to_owned() };
        self.shared.lock().stores.get(&key)?.get(namespace, name).cloned()
    }

    /// Every object of a resource, in key order, read directly.
    pub fn objects(&self, group: &str, plural: &str) -> Vec<Arc<StoredObject>> {
        let key = StorageKey { group: group.to_owned(), plural: plural.to_owned() };
        self.shared.lock().stores.get(&key).map(|m| m.iter().cloned().collect()).unwrap_or_default()
    }

    /// Requests currently being handled (for settling).
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// How many open watches have events not yet delivered (for settling).
    pub fn watches_with_backlog(&self) -> usize {
        let state = self.shared.lock();
        state.watches.values().filter(|w| w.has_backlog(&state)).count()
    }

    /// Whether any of these watches has events not yet delivered.
    pub(crate) fn watches_have_backlog(&self, ids: &[u64]) -> bool {
        let state = self.shared.lock();
        ids.iter().filter_map(|id| state.watches.get(id)).any(|w| w.has_backlog(&state))
    }

    /// How many watches are open.
    pub fn open_watches(&self) -> usize {
        self.shared.lock().watches.len()
    }

    /// How many changes the watch history holds.
    pub fn history_len(&self) -> usize {
        self.shared.lock().history.len()
    }
}

/// Counts a request in flight for as long as it lives.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl State {
    /// Dispatches a request to its operation.
    fn execute(
        &mut self,
        shared: &Arc<Shared>,
        req: &mut Request,
        watch_fault: Option<Fault>,
    ) -> Result<Response> {
        let info =
            self.registry.get(&req.group, &req.version, &req.plural).ok_or(ApiError::NoSuchResource)?;
        self.check_scope(&info, req)?;
        let sub = req.subresource.as_deref();
        if let Some(sub) = sub
            && !self.has_subresource(&info, sub)
        {
            return Err(ApiError::NoSuchResource);
        }
        if !info.listable && req.verb != Verb::Create {
            return Err(method_not_allowed(req.verb, &info));
        }
        if req.verb == Verb::Create && sub.is_none() && crate::auth::is_review(&info) {
            return self.review(&info, req);
        }
        match (req.verb, sub) {
            (Verb::Get, None | Some("status")) => self.get(&info, req).map(Response::Object),
            (Verb::Get, Some("scale")) => self.get_scale(&info, req),
            (Verb::List, None) => self.list(&info, req).map(Response::List),
            (Verb::Watch, None) => self.watch(shared, &info, req, watch_fault),
            (Verb::Create, Some("binding")) => self.bind(&info, req),
            (Verb::Create, None) => self.create(&info, req).map(Response::Object),
            (Verb::Update | Verb::Patch, _) => self.modify(&info, req),
            (Verb::Delete, None) => self.delete(&info, req),
            (Verb::DeleteCollection, None) => self.delete_collection(&info, req).map(Response::List),
            (verb, _) => Err(method_not_allowed(verb, &info)),
        }
    }

    fn has_subresource(&self, info: &ResourceInfo, sub: &str) -> bool {
        match sub {
            "status" => info.status,
            "scale" => info.scale.is_some(),
            "finalize" => info.group.is_empty() && info.plural == "namespaces",
            "binding" => info.group.is_empty() && info.plural == "pods",
            _ => false,
        }
    }

    /// Namespaced resources need a namespace for single objects; cluster-scoped ones refuse one.
    fn check_scope(&self, info: &ResourceInfo, req: &Request) -> Result<()> {
        match (info.namespaced, &req.namespace) {
            (false, Some(_)) => Err(ApiError::NoSuchResource),
            (true, None) if req.name.is_some() => Err(ApiError::NoSuchResource),
            (true, None) if matches!(req.verb, Verb::Create | Verb::DeleteCollection) => {
                Err(method_not_allowed(req.verb, info))
            }
            _ => Ok(()),
        }
    }

    /// Whether any version of this storage key is still served.
    pub(crate) fn registry_has(&self, key: &StorageKey) -> bool {
        self.registry.all().any(|r| r.group == key.group && r.plural == key.plural)
    }

    pub(crate) fn current(&self, key: &StorageKey, object: &ObjectKey) -> Option<Arc<StoredObject>> {
        self.stores.get(key)?.get(&object.0, &object.1).cloned()
    }

    /// Stores a new version of an object (created or changed) at the next resourceVersion and
    /// records the change for watches.
    pub(crate) fn put(
        &mut self,
        info: &ResourceInfo,
        mut object: Value,
        kind: EventType,
    ) -> Arc<StoredObject> {
        self.rv += 1;
        let rv = self.rv;
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let mut stored = StoredObject::new(&object, &info.selectable_fields);
        let key = info.storage_key().clone();
        self.webhooks_changed(&key);
        if !self.stores.contains_key(&*key) {
            self.stores.insert((*key).clone(), Store::default());
        }
        let store = self.stores.get_mut(&*key).expect("the store was just ensured");
        if let Some(namespace) = store.namespace_key(&stored.namespace) {
            stored.namespace = namespace; // share one string per namespace
        }
        let stored = Arc::new(stored);
        let object_key = (stored.namespace().to_owned(), stored.name().to_owned());
        let prev = store.insert(stored.clone());
        self.auth.changed(&key);
        let owners_changed = match &prev {
            Some(p) => p.owners != stored.owners,
            None => !stored.owners.is_empty(),
        };
        if owners_changed {
            self.reindex_owners(&key, &object_key, prev.as_deref(), Some(&stored));
        }
        self.journal_revision(&key, kind, &stored);
        self.history.push(Change { rv, key, kind, object: stored.clone(), prev });
        self.notify.wake();
        stored
    }

    /// Removes an object from storage at the next resourceVersion; the `DELETED` event carries its
    /// last state. Queues the controllers' follow-up (dependents, namespace, CRD, foreground owners).
    pub(crate) fn remove(
        &mut self,
        info: &ResourceInfo,
        object_key: &ObjectKey,
    ) -> Option<Arc<StoredObject>> {
        let key = info.storage_key().clone();
        let prev = self.stores.get_mut(&*key)?.remove(&object_key.0, &object_key.1)?;
        self.auth.changed(&key);
        self.webhooks_changed(&key);
        self.rv += 1;
        let rv = self.rv;
        let mut last = prev.value();
        last["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let stored = Arc::new(StoredObject::new(&last, &info.selectable_fields));
        self.reindex_owners(&key, object_key, Some(&prev), None);
        self.journal_revision(&key, EventType::Deleted, &stored);
        self.history.push(Change {
            rv,
            key: key.clone(),
            kind: EventType::Deleted,
            object: stored.clone(),
            prev: Some(prev),
        });
        self.notify.wake();
        self.after_removal(info, &stored);
        Some(stored)
    }

    fn reindex_owners(
        &mut self,
        key: &StorageKey,
        object: &ObjectKey,
        old: Option<&StoredObject>,
        new: Option<&StoredObject>,
    ) {
        let entry = (key.clone(), object.clone());
        let old_uids: BTreeSet<&str> =
            old.map(|o| o.owners.iter().map(|r| r.uid.as_str()).collect()).unwrap_or_default();
        let new_uids: BTreeSet<&str> =
            new.map(|o| o.owners.iter().map(|r| r.uid.as_str()).collect()).unwrap_or_default();
        for uid in old_uids.difference(&new_uids) {
            if let Some(set) = self.dependents.get_mut(*uid) {
                set.remove(&entry);
                if set.is_empty() {
                    self.dependents.remove(*uid);
                }
            }
        }
        for uid in new_uids.difference(&old_uids) {
            self.dependents.entry((*uid).to_owned()).or_default().insert(entry.clone());
        }
    }

    /// A fresh uid from the seeded generator, formatted like a version-4 UUID.
    pub(crate) fn new_uid(&mut self) -> String {
        let hi = self.rng.u64(..);
        let lo = self.rng.u64(..);
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0x0fff,
            ((lo >> 48) & 0x3fff) | 0x8000,
            lo & 0xffff_ffff_ffff
        )
    }

    /// Five random characters for `generateName`, from the alphabet the real server uses.
    pub(crate) fn name_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..5).map(|_| ALPHABET[self.rng.usize(..ALPHABET.len())] as char).collect()
    }

    /// Records one event delivered to a watch of `resource` (or its opening or closing, with
    /// `scope` as the watched namespace).
    pub(crate) fn journal_delivery(
        &mut self,
        watch: u64,
        resource: &Arc<str>,
        event: &'static str,
        rv: u64,
        object: Option<&StoredObject>,
        scope: Option<&Arc<str>>,
    ) {
        if self.journal.enabled() {
            let at = self.clock.elapsed();
            let (namespace, name) = match object {
                Some(object) => object.names(),
                None => (scope.cloned().unwrap_or_default(), Arc::default()),
            };
            self.journal.delivery(Delivery {
                seq: 0,
                at,
                watch,
                event,
                resource: resource.clone(),
                resource_version: rv,
                namespace,
                name,
            });
        }
    }

    /// Records a change stored.
    fn journal_revision(&mut self, key: &StorageKey, kind: EventType, object: &StoredObject) {
        if self.journal.enabled() {
            let at = self.clock.elapsed();
            let (namespace, name) = object.names();
            self.journal.revision(Revision {
                seq: 0,
                at,
                resource: key.journal_name(),
                event: kind.as_str(),
                resource_version: object.resource_version(),
                namespace,
                name,
            });
        }
    }

    fn journal_request(&mut self, req: &Request, result: &Result<Response>, fault: Option<String>) {
        if !self.journal.enabled() {
            return;
        }
        let (code, rv) = match result {
            Ok(response) => (
                response.code(req.verb),
                match response {
                    Response::Object(o) => Some(o.resource_version()),
                    Response::List(l) => Some(l.resource_version),
                    Response::Status(_) | Response::Watch(_) => None,
                },
            ),
            Err(e) => (e.code(), None),
        };
        let resource =
            if req.group.is_empty() { req.plural.clone() } else { format!("{}.{}", req.plural, req.group) };
        self.journal_op(
            &req.actor,
            req.verb,
            resource,
            req.subresource.clone(),
            req.namespace.clone(),
            req.name.clone(),
            code,
            rv,
            fault,
        );
    }

    /// Records an operation (a client's or an internal controller's).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn journal_op(
        &mut self,
        actor: &str,
        verb: Verb,
        resource: String,
        subresource: Option<String>,
        namespace: Option<String>,
        name: Option<String>,
        code: u16,
        resource_version: Option<u64>,
        fault: Option<String>,
    ) {
        if self.journal.enabled() {
            let at = self.clock.elapsed();
            self.journal.operation(Operation {
                seq: 0,
                at,
                actor: actor.to_owned(),
                verb,
                resource,
                subresource,
                namespace,
                name,
                code,
                resource_version,
                fault,
            });
        }
    }
}

pub(crate) fn method_not_allowed(verb: Verb, info: &ResourceInfo) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{} is not supported on resources of kind \"{}.{}\"",
        verb.as_str(),
        info.plural,
        info.group
    ))
}
