//! Peering (Kopf's `peering`): operators that share a peering object — `KopfPeering` in each
//! served namespace, or `ClusterKopfPeering` for cluster-wide operators — keep a record there,
//! `status.<identity> = {"priority": …, "lifetime": …, "lastseen": …}`, refreshed every
//! `lifetime - 5..10` s by the keep-alive and set to `null` when the operator exits gracefully.
//!
//! Every change of the peering object is evaluated ([`evaluate`]): records whose
//! `lastseen + lifetime` has passed are dead and cleaned; a live peer of a higher priority pauses
//! this operator, one of the same priority pauses both (with a warning); otherwise it resumes.
//! While paused, the observer sleeps until the blocking peers would expire and then touches its own
//! record, so the fresh event re-evaluates them. The pause itself is a toggle in the operator's
//! [`ToggleSet`]; the reactor's watch streams and workers follow it.
//!
//! The format is Kopf's, byte for byte, so kopf-rs and Python Kopf peers see and pause each other.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::client::{self, ApiClient, PatchBody, RawEvent};
use crate::execution::Runtime;
use crate::observe::Observation;
use crate::primitives::clock::{Clock, format_iso, parse_iso};
use crate::primitives::tasks::OwnedTask;
use crate::primitives::toggles::{Toggle, ToggleSet};
use crate::settings::Settings;
use crate::structs::references::Resource;

/// The group of the current peering CRDs.
pub(crate) const GROUP: &str = "kopf.dev";
/// The legacy group, still watched (Kopf's `zalando.org/v1` peerings).
pub(crate) const LEGACY_GROUP: &str = "zalando.org";
/// The plural of the namespaced peering resource.
pub(crate) const NAMESPACED_PLURAL: &str = "kopfpeerings";
/// The plural of the cluster-wide peering resource.
pub(crate) const CLUSTER_PLURAL: &str = "clusterkopfpeerings";
/// Peering objects are read whole, never sharded: every replica must see every peer.
static EVERYTHING: client::Selectors = client::Selectors { shard: None };
/// A peer that reports no lifetime counts as living this long (Kopf's default).
const DEFAULT_LIFETIME: u64 = 60;

/// One record of the peering object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Peer {
    pub(crate) identity: String,
    pub(crate) priority: i64,
    pub(crate) lifetime: u64,
    pub(crate) lastseen: Timestamp,
}

impl Peer {
    /// When the record expires.
    pub(crate) fn deadline(&self) -> Timestamp {
        let lifetime = jiff::SignedDuration::from_secs(i64::try_from(self.lifetime).unwrap_or(i64::MAX));
        self.lastseen.checked_add(lifetime).unwrap_or(Timestamp::MAX)
    }

    /// Whether the record has expired by `now` (Kopf: `deadline <= now`).
    pub(crate) fn is_dead(&self, now: Timestamp) -> bool {
        self.deadline() <= now
    }

    /// The record as stored: `{"priority": …, "lifetime": …, "lastseen": …}`.
    pub(crate) fn as_record(&self) -> Value {
        json!({"priority": self.priority, "lifetime": self.lifetime, "lastseen": format_iso(self.lastseen)})
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "<Peer {}: priority={}, lifetime={}, lastseen='{}'>",
            self.identity,
            self.priority,
            self.lifetime,
            format_iso(self.lastseen)
        )
    }
}

fn list(peers: &[&Peer]) -> String {
    let items: Vec<String> = peers.iter().map(ToString::to_string).collect();
    format!("[{}]", items.join(", "))
}

fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The records of a peering object's `status`, as Kopf reads them: a missing priority is 0, a
/// missing lifetime 60 s, a missing `lastseen` now. Entries that are not mappings are skipped.
pub(crate) fn parse_peers(body: &Value, now: Timestamp) -> Vec<Peer> {
    let Some(status) = body.get("status").and_then(Value::as_object) else { return Vec::new() };
    status
        .iter()
        .filter_map(|(identity, info)| {
            let info = info.as_object()?;
            let priority = info.get("priority").and_then(int).unwrap_or(0);
            let lifetime = info
                .get("lifetime")
                .and_then(int)
                .map_or(DEFAULT_LIFETIME, |l| u64::try_from(l).unwrap_or(0));
            let lastseen = info.get("lastseen").and_then(Value::as_str).and_then(parse_iso).unwrap_or(now);
            Some(Peer { identity: identity.clone(), priority, lifetime, lastseen })
        })
        .collect()
}

/// What a peering object says to one operator.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Verdict {
    /// Whether to pause.
    pub(crate) pause: bool,
    /// The records to clean (expired).
    pub(crate) dead: Vec<String>,
    /// When the earliest blocking peer expires (the moment to re-evaluate), if any blocks.
    pub(crate) wake_at: Option<Timestamp>,
    /// Live peers of a higher priority.
    pub(crate) higher: Vec<Peer>,
    /// Live peers of the same priority.
    pub(crate) same: Vec<Peer>,
}

/// Kopf's decision on one state of the peering object, for the operator `identity` of `priority`.
/// Sharded operators (Kopf 1.45.2: `settings.watching.shard_selectors` set) are replicas that
/// split the objects among themselves: peers of their own priority do not pause them.
pub(crate) fn evaluate(
    body: &Value,
    identity: &str,
    priority: i64,
    sharded: bool,
    now: Timestamp,
) -> Verdict {
    let peers = parse_peers(body, now);
    let dead = peers.iter().filter(|p| p.is_dead(now)).map(|p| p.identity.clone()).collect();
    let live: Vec<&Peer> = peers.iter().filter(|p| !p.is_dead(now) && p.identity != identity).collect();
    let higher: Vec<Peer> = live.iter().filter(|p| p.priority > priority).map(|p| (*p).clone()).collect();
    let same: Vec<Peer> = if sharded {
        Vec::new()
    } else {
        live.iter().filter(|p| p.priority == priority).map(|p| (*p).clone()).collect()
    };
    let wake_at = higher.iter().chain(&same).map(Peer::deadline).min();
    Verdict { pause: !higher.is_empty() || !same.is_empty(), dead, wake_at, higher, same }
}

/// Kopf's identity of an operator process: `POD_ID` if set, otherwise
/// `user@host/YYYYmmddHHMMSS/xyz` (three random characters), or `user@host` for the manual
/// `freeze`/`resume` commands.
pub fn detect_own_id(manual: bool) -> String {
    if let Some(pod) = std::env::var_os("POD_ID") {
        return pod.to_string_lossy().into_owned();
    }
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into());
    let host = hostname();
    if manual {
        return format!("{user}@{host}");
    }
    let now = Clock::wall().now().strftime("%Y%m%d%H%M%S");
    const ALPHABET: &[u8] = b"abcdefhijklmnopqrstuvwxyz0123456789"; // no 'g', as in Kopf
    let rnd: String = (0..3).map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char).collect();
    format!("{user}@{host}/{now}/{rnd}")
}

fn hostname() -> String {
    let name = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let mut name = name.as_str();
    while let Some(stripped) = name.strip_suffix(".local").or_else(|| name.strip_suffix(".localdomain")) {
        name = stripped;
    }
    name.to_owned()
}

/// The peering resources served for this mode, current group first (Kopf watches both).
pub(crate) fn peering_resources(resources: &[Resource], clusterwide: bool) -> Vec<Resource> {
    let plural = if clusterwide { CLUSTER_PLURAL } else { NAMESPACED_PLURAL };
    [GROUP, LEGACY_GROUP]
        .iter()
        .filter_map(|group| {
            resources.iter().find(|r| r.group == *group && r.version == "v1" && r.plural == plural).cloned()
        })
        .collect()
}

/// Writes this operator's record into the peering object — or removes it with `lifetime` 0. The
/// object being absent is not an error: `Ok(false)`.
pub(crate) async fn touch(
    client: &dyn ApiClient,
    settings: &Settings,
    clock: &Clock,
    target: &Target,
    identity: &str,
    priority: i64,
    lifetime: u64,
) -> client::Result<bool> {
    let peer = Peer { identity: identity.to_owned(), priority, lifetime, lastseen: clock.now() };
    let record = if peer.is_dead(clock.now()) { Value::Null } else { peer.as_record() };
    let patch = PatchBody::Merge(json!({"status": {identity: record}}));
    let result = patch_peering(client, settings, target, &patch).await;
    if !settings.peering.stealth || !matches!(result, Ok(true)) {
        let outcome = match &result {
            Ok(true) => "ok".to_owned(),
            Ok(false) => "not found".to_owned(),
            Err(e) => e.to_string(),
        };
        tracing::debug!("Keep-alive in {:?} {}: {outcome}.", settings.peering.name, target.where_());
    }
    result
}

async fn patch_peering(
    client: &dyn ApiClient,
    settings: &Settings,
    target: &Target,
    patch: &PatchBody,
) -> client::Result<bool> {
    let name = settings.peering.name.as_str();
    let ns = target.namespace.as_deref();
    match client::retrying::retrying(&settings.networking, || {
        client.patch(&target.resource, ns, name, patch, None)
    })
    .await
    {
        Ok(_) => Ok(true),
        Err(client::Error::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// One peering object: a resource and a namespace (`None` for the cluster-wide one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) resource: Resource,
    pub(crate) namespace: Option<String>,
}

impl Target {
    fn where_(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("in {ns:?}"),
            None => "cluster-wide".into(),
        }
    }
}

/// The peering of a running operator: an observer and a keep-alive per peering object, each
/// holding a toggle of the operator's pause.
#[derive(Debug)]
pub(crate) struct Peering {
    tasks: Vec<OwnedTask<()>>,
    stop: watch::Sender<bool>,
}

impl Peering {
    /// Starts peering on these objects; their toggles are on (paused) until each object has been
    /// read and evaluated once, so no handler runs before the operator knows its peers.
    pub(crate) fn start(rt: &Runtime, paused: &ToggleSet, targets: Vec<Target>, identity: &str) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for target in targets {
            let what = format!("{}@{}", rt.settings.peering.name, target.namespace.as_deref().unwrap_or(""));
            let toggle = paused.make_toggle(true, what.clone());
            let observer = Observer {
                rt: rt.clone(),
                target: target.clone(),
                identity: identity.to_owned(),
                toggle,
                what,
                reported: std::sync::Mutex::new(None),
            };
            let awake = rt.activity.awake();
            let stop = stop_rx.clone();
            tasks.push(OwnedTask::spawn(async move {
                let _awake = awake;
                observer.run(stop).await;
            }));
            let keepalive = KeepAlive { rt: rt.clone(), target, identity: identity.to_owned() };
            let awake = rt.activity.awake();
            let stop = stop_rx.clone();
            tasks.push(OwnedTask::spawn(async move {
                let _awake = awake;
                keepalive.run(stop).await;
            }));
        }
        Self { tasks, stop }
    }

    /// Stops peering gracefully: the keep-alives remove this operator's records.
    pub(crate) async fn stop(self, rt: &Runtime) {
        self.stop.send_replace(true);
        for task in self.tasks {
            rt.activity.wait(None, task.join()).await;
        }
    }
}

/// The peering of a running operator, by Kopf's modes: none when standalone, or when
/// auto-detection finds no peering resource served at the start; peering on the served resource's
/// objects; or, when peering is mandatory (`--peering NAME`) and the resource is not served, a
/// pause until its CRD appears.
#[derive(Debug)]
pub(crate) struct Supervisor {
    task: OwnedTask<()>,
    stop: watch::Sender<bool>,
}

impl Supervisor {
    /// Starts peering for an operator serving `served` namespaces (`None`: cluster-wide). The
    /// pause toggles exist when this returns, so watch streams started after it wait for them.
    pub(crate) fn start(
        rt: &Runtime,
        resources: &[Resource],
        served: Option<Vec<String>>,
        identity: &str,
    ) -> Option<Self> {
        let settings = &rt.settings.peering;
        if settings.standalone {
            return None;
        }
        let found = peering_resources(resources, settings.clusterwide);
        if found.is_empty() && !settings.mandatory {
            tracing::debug!("No peering resource is served: running standalone (auto-detection).");
            return None;
        }
        let (stop, stop_rx) = watch::channel(false);
        let (peering, missing) = if found.is_empty() {
            tracing::warn!(
                "The peering resource is not served, but peering {:?} is mandatory: paused until it is.",
                settings.name
            );
            rt.observe(|| Observation::Peering {
                peering: format!("{}@", settings.name),
                paused: true,
                message: "the peering CRD is missing".into(),
            });
            (None, Some(rt.paused.make_toggle(true, "peering CRD is missing")))
        } else {
            (Some(Peering::start(rt, &rt.paused, targets(&found, served.as_deref()), identity)), None)
        };
        let (rt, identity) = (rt.clone(), identity.to_owned());
        let awake = rt.activity.awake();
        let task = OwnedTask::spawn(async move {
            let _awake = awake;
            supervise(rt, peering, missing, served, identity, stop_rx).await;
        });
        Some(Self { task, stop })
    }

    /// Stops peering gracefully: the keep-alives remove this operator's records.
    pub(crate) async fn stop(self, rt: &Runtime) {
        self.stop.send_replace(true);
        rt.activity.wait(None, self.task.join()).await;
    }
}

fn targets(resources: &[Resource], served: Option<&[String]>) -> Vec<Target> {
    let mut out = Vec::new();
    for resource in resources {
        match (served, resource.namespaced) {
            (Some(namespaces), true) => out.extend(
                namespaces
                    .iter()
                    .map(|ns| Target { resource: resource.clone(), namespace: Some(ns.clone()) }),
            ),
            _ => out.push(Target { resource: resource.clone(), namespace: None }),
        }
    }
    out
}

async fn supervise(
    rt: Runtime,
    peering: Option<Peering>,
    missing: Option<Toggle>,
    served: Option<Vec<String>>,
    identity: String,
    mut stop: watch::Receiver<bool>,
) {
    let peering = match peering {
        Some(peering) => peering,
        None => {
            let Some(resources) = wait_for_crd(&rt, &mut stop).await else { return };
            let found = peering_resources(&resources, rt.settings.peering.clusterwide);
            let peering = Peering::start(&rt, &rt.paused, targets(&found, served.as_deref()), &identity);
            drop(missing); // the peering's own toggles hold the pause from now on
            peering
        }
    };
    rt.activity.wait(None, stop.wait_for(|s| *s)).await;
    peering.stop(&rt).await;
}

/// Watches CRDs until a peering CRD for this mode is served; the served resources then (`None`:
/// stopped first).
async fn wait_for_crd(rt: &Runtime, stop: &mut watch::Receiver<bool>) -> Option<Vec<Resource>> {
    let plural = if rt.settings.peering.clusterwide { CLUSTER_PLURAL } else { NAMESPACED_PLURAL };
    let names = [format!("{plural}.{GROUP}"), format!("{plural}.{LEGACY_GROUP}")];
    let crds = Resource {
        group: "apiextensions.k8s.io".into(),
        version: "v1".into(),
        plural: "customresourcedefinitions".into(),
        kind: "CustomResourceDefinition".into(),
        singular: "customresourcedefinition".into(),
        short_names: vec!["crd".into(), "crds".into()],
        namespaced: false,
        status_subresource: true,
        preferred: true,
    };
    let is_peering = |o: &Value| o["metadata"]["name"].as_str().is_some_and(|n| names.iter().any(|m| m == n));
    let mut error_step = 0usize;
    loop {
        if *stop.borrow() {
            return None;
        }
        // Whatever changed, discovery decides whether the resource is served.
        let listed = rt.client.list(&crds, None, &EVERYTHING).await;
        let mut rv = match listed {
            Ok(list) if list.items.iter().any(is_peering) => {
                if let Some(found) = discover_peering(rt).await {
                    return Some(found);
                }
                list.resource_version
            }
            Ok(list) => list.resource_version,
            Err(e) => {
                let delay = backoff(&rt.settings.networking.error_backoffs, &mut error_step);
                tracing::warn!(error = %e, ?delay, "Listing CRDs failed; retrying.");
                if rt.activity.wait(Some(Instant::now() + delay), stop.wait_for(|s| *s)).await.is_some() {
                    return None;
                }
                continue;
            }
        };
        let Ok(mut stream) = rt.client.watch(&crds, None, &rv, None, &EVERYTHING).await else {
            let delay = backoff(&rt.settings.networking.error_backoffs, &mut error_step);
            if rt.activity.wait(Some(Instant::now() + delay), stop.wait_for(|s| *s)).await.is_some() {
                return None;
            }
            continue;
        };
        error_step = 0;
        loop {
            let mut stop_rx = stop.clone();
            let next = rt
                .activity
                .wait(None, async {
                    tokio::select! {
                        biased;
                        _ = stop_rx.wait_for(|s| *s) => None,
                        event = futures::StreamExt::next(&mut stream) => Some(event),
                    }
                })
                .await
                .flatten();
            match next {
                None => return None,
                Some(Some(Ok(RawEvent::Added(o) | RawEvent::Modified(o)))) => {
                    remember(&mut rv, &o);
                    if is_peering(&o)
                        && let Some(found) = discover_peering(rt).await
                    {
                        return Some(found);
                    }
                }
                Some(Some(Ok(RawEvent::Bookmark { resource_version }))) => rv = resource_version,
                Some(Some(Ok(RawEvent::Deleted(o)))) => remember(&mut rv, &o),
                Some(_) => break,
            }
        }
        let backoff = Instant::now() + rt.settings.watching.reconnect_backoff;
        if rt.activity.wait(Some(backoff), stop.wait_for(|s| *s)).await.is_some() {
            return None;
        }
    }
}

async fn discover_peering(rt: &Runtime) -> Option<Vec<Resource>> {
    let resources = rt.client.discover().await.ok()?;
    let found = peering_resources(&resources, rt.settings.peering.clusterwide);
    (!found.is_empty()).then_some(resources)
}

struct KeepAlive {
    rt: Runtime,
    target: Target,
    identity: String,
}

impl KeepAlive {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let rt = &self.rt;
        let peering = &rt.settings.peering;
        // Kopf's jitter, seeded by the identity so a test's schedule repeats.
        let mut rng = fastrand::Rng::with_seed(fnv(self.identity.as_bytes()));
        loop {
            if *stop.borrow() {
                break;
            }
            if let Err(e) = self.touch(peering.lifetime).await {
                tracing::warn!(error = %e, "The peering keep-alive failed; retrying at the next one.");
            }
            let lifetime = peering.lifetime;
            let interval = lifetime.min(lifetime.saturating_sub(rng.u64(5..=10)).max(1)).max(1);
            let deadline = Instant::now() + Duration::from_secs(interval);
            let stopped = rt.activity.wait(Some(deadline), stop.wait_for(|s| *s)).await;
            if stopped.is_some() {
                break;
            }
        }
        if let Err(e) = self.touch(0).await {
            tracing::warn!(error = %e, "Couldn't remove self from the peering. Ignoring.");
        }
    }

    async fn touch(&self, lifetime: u64) -> client::Result<bool> {
        let rt = &self.rt;
        touch(
            rt.client.as_ref(),
            &rt.settings,
            &rt.clock,
            &self.target,
            &self.identity,
            rt.settings.peering.priority,
            lifetime,
        )
        .await
    }
}

/// FNV-1a, for a seed.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

struct Observer {
    rt: Runtime,
    target: Target,
    identity: String,
    toggle: Toggle,
    what: String,
    /// The state last reported (none before the first evaluation).
    reported: std::sync::Mutex<Option<bool>>,
}

/// Why the observer's wait ended.
enum Next {
    Stop,
    Wake,
    Event(Option<client::Result<RawEvent>>),
}

impl Observer {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let rt = &self.rt;
        let (resource, ns) = (&self.target.resource, self.target.namespace.as_deref());
        let name = rt.settings.peering.name.clone();
        let mut error_step = 0usize;
        let mut wake_at: Option<Instant>;
        'relist: loop {
            if *stop.borrow() {
                return;
            }
            let list = match client::retrying::retrying(&rt.settings.networking, || {
                rt.client.list(resource, ns, &EVERYTHING)
            })
            .await
            {
                Ok(list) => list,
                Err(e) => {
                    let delay = backoff(&rt.settings.networking.error_backoffs, &mut error_step);
                    tracing::error!(error = %e, ?delay, "Listing the peering failed; retrying.");
                    if rt.activity.wait(Some(Instant::now() + delay), stop.wait_for(|s| *s)).await.is_some() {
                        return;
                    }
                    continue;
                }
            };
            let own = list.items.iter().find(|o| o["metadata"]["name"].as_str() == Some(name.as_str()));
            wake_at = self.process(own).await;
            let mut resource_version = list.resource_version;
            loop {
                let timeout = rt.settings.watching.server_timeout.map(|t| t.as_secs());
                let mut stream =
                    match rt.client.watch(resource, ns, &resource_version, timeout, &EVERYTHING).await {
                        Ok(stream) => {
                            error_step = 0;
                            stream
                        }
                        Err(client::Error::Gone(_)) => continue 'relist,
                        Err(e) => {
                            let delay = backoff(&rt.settings.networking.error_backoffs, &mut error_step);
                            tracing::warn!(error = %e, ?delay, "Watching the peering failed; retrying.");
                            if rt
                                .activity
                                .wait(Some(Instant::now() + delay), stop.wait_for(|s| *s))
                                .await
                                .is_some()
                            {
                                return;
                            }
                            continue;
                        }
                    };
                loop {
                    let silent_until = rt.settings.watching.inactivity_timeout.map(|t| Instant::now() + t);
                    let deadline = [silent_until, wake_at].into_iter().flatten().min();
                    let mut stop_rx = stop.clone();
                    let next = rt
                        .activity
                        .wait(deadline, async {
                            tokio::select! {
                                biased;
                                _ = stop_rx.wait_for(|s| *s) => Next::Stop,
                                event = futures::StreamExt::next(&mut stream) => Next::Event(event),
                            }
                        })
                        .await
                        .unwrap_or(Next::Wake);
                    let event = match next {
                        Next::Stop => return,
                        Next::Wake if wake_at.is_some_and(|w| w <= Instant::now()) => {
                            // The blocking peers should have expired: touch self for a fresh look.
                            wake_at = None;
                            if let Err(e) = self.touch().await {
                                tracing::warn!(error = %e, "Touching the peering failed.");
                            }
                            continue;
                        }
                        Next::Wake | Next::Event(None) => break, // silent or ended: re-watch
                        Next::Event(Some(event)) => event,
                    };
                    match event {
                        Ok(RawEvent::Added(o) | RawEvent::Modified(o)) => {
                            remember(&mut resource_version, &o);
                            if o["metadata"]["name"].as_str() == Some(name.as_str()) {
                                wake_at = self.process(Some(&o)).await;
                            }
                        }
                        Ok(RawEvent::Deleted(o)) => {
                            remember(&mut resource_version, &o);
                            if o["metadata"]["name"].as_str() == Some(name.as_str()) {
                                wake_at = self.process(None).await;
                            }
                        }
                        Ok(RawEvent::Bookmark { resource_version: rv }) => resource_version = rv,
                        Ok(RawEvent::Error { code: 410, .. }) => continue 'relist,
                        Ok(RawEvent::Error { code, message }) => {
                            tracing::warn!(code, %message, "The peering watch reported an error; re-watching.");
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "The peering watch failed; re-watching.");
                            break;
                        }
                    }
                }
                let backoff = Instant::now() + rt.settings.watching.reconnect_backoff;
                if rt.activity.wait(Some(backoff), stop.wait_for(|s| *s)).await.is_some() {
                    return;
                }
            }
        }
    }

    async fn touch(&self) -> client::Result<bool> {
        let rt = &self.rt;
        let peering = &rt.settings.peering;
        touch(
            rt.client.as_ref(),
            &rt.settings,
            &rt.clock,
            &self.target,
            &self.identity,
            peering.priority,
            peering.lifetime,
        )
        .await
    }

    /// Evaluates one state of the peering object (`None`: absent) and turns the pause toggle; the
    /// instant to re-evaluate at, if a peer blocks.
    async fn process(&self, body: Option<&Value>) -> Option<Instant> {
        let rt = &self.rt;
        let peering = &rt.settings.peering;
        let now = rt.clock.now();
        let Some(body) = body else {
            // No peering object: paused only when peering is mandatory.
            self.turn(peering.mandatory, || {
                if peering.mandatory {
                    format!("the peering object {:?} is absent", peering.name)
                } else {
                    format!("no peering object {:?}: running standalone", peering.name)
                }
            });
            return None;
        };
        let sharded = !rt.settings.watching.shard_selectors.is_empty();
        let verdict = evaluate(body, &self.identity, peering.priority, sharded, now);
        if !verdict.dead.is_empty() {
            let cleaning: serde_json::Map<String, Value> =
                verdict.dead.iter().map(|id| (id.clone(), Value::Null)).collect();
            let patch = PatchBody::Merge(json!({"status": cleaning}));
            if let Err(e) = patch_peering(rt.client.as_ref(), &rt.settings, &self.target, &patch).await {
                tracing::warn!(error = %e, "Cleaning the dead peers failed.");
            }
        }
        let was_on = self.last_reported() == Some(true);
        if !verdict.higher.is_empty() {
            let higher: Vec<&Peer> = verdict.higher.iter().collect();
            if !was_on {
                tracing::info!("Pausing operations in favour of {}.", list(&higher));
            }
            self.turn(true, || format!("in favour of {}", list(&higher)));
        } else if !verdict.same.is_empty() {
            let same: Vec<&Peer> = verdict.same.iter().collect();
            tracing::warn!("Possibly conflicting operators with the same priority: {}.", list(&same));
            if !was_on {
                let all = parse_peers(body, now);
                let all: Vec<&Peer> = all.iter().collect();
                tracing::warn!("Pausing all operators, including self: {}", list(&all));
            }
            self.turn(true, || format!("conflicting with the same priority: {}", list(&same)));
        } else {
            if was_on {
                tracing::info!(
                    "Resuming operations after the pause. Conflicting operators with the same priority are gone."
                );
            }
            self.turn(false, || "no higher or same-priority peers".to_owned());
        }
        verdict.wake_at.map(|at| rt.clock.instant_of(at))
    }

    fn last_reported(&self) -> Option<bool> {
        *self.reported.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Turns the toggle, reporting the first decision and every change.
    fn turn(&self, on: bool, why: impl FnOnce() -> String) {
        self.toggle.turn_to(on);
        let changed =
            self.reported.lock().unwrap_or_else(std::sync::PoisonError::into_inner).replace(on) != Some(on);
        if changed {
            self.rt.observe(|| Observation::Peering {
                peering: self.what.clone(),
                paused: on,
                message: why(),
            });
        }
    }
}

/// A peering command from outside the operators (Kopf's `kopf freeze` and `kopf resume`): a record
/// written into the peering objects as a peer that pauses every operator of a lower priority for
/// its lifetime, and removed again.
///
/// ```no_run
/// # async fn demo(client: &dyn kopf::ApiClient) -> Result<(), kopf::peering::PeeringError> {
/// use kopf::peering::{PeeringCommand, freeze, resume};
/// let command = PeeringCommand::new("default").namespaces(["default"]);
/// freeze(client, &command, 600).await?;   // the operators of a lower priority pause for 10 min…
/// resume(client, &command).await?;        // …or until the record is removed
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PeeringCommand {
    /// The peering object's name (`--peering`).
    pub peering: String,
    /// The namespaces whose `KopfPeering` objects to write (exact names or Kopf's globs); `None`:
    /// the cluster-wide `ClusterKopfPeering` (`--all-namespaces`).
    pub namespaces: Option<Vec<String>>,
    /// The record's key (`--id`; default: `user@host`).
    pub identity: Option<String>,
    /// The priority of the record (`--priority`; default: 100; `--dev`: 666).
    pub priority: i64,
    /// The clock of `lastseen` (default: the wall clock); tests pass the operators' clock.
    pub clock: Option<Clock>,
}

impl PeeringCommand {
    /// A command on the peering objects named `peering`, cluster-wide, with priority 100.
    pub fn new(peering: impl Into<String>) -> Self {
        Self { peering: peering.into(), namespaces: None, identity: None, priority: 100, clock: None }
    }

    /// On the `KopfPeering` objects of these namespaces instead of the cluster-wide one.
    #[must_use]
    pub fn namespaces<S: Into<String>>(mut self, namespaces: impl IntoIterator<Item = S>) -> Self {
        self.namespaces = Some(namespaces.into_iter().map(Into::into).collect());
        self
    }

    /// The record's key.
    #[must_use]
    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = Some(identity.into());
        self
    }

    /// The record's priority.
    #[must_use]
    pub fn priority(mut self, priority: i64) -> Self {
        self.priority = priority;
        self
    }

    /// The clock of `lastseen`.
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }
}

/// Why a peering command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeeringError {
    /// Neither `kopf.dev/v1` nor `zalando.org/v1` serves the peering resource.
    #[error("cannot find the peering resource {0}")]
    NotServed(String),
    /// A request failed.
    #[error("the peering request failed: {0}")]
    Api(#[from] client::Error),
}

/// Pauses the operators of a lower priority than the command's for `lifetime` seconds (Kopf's
/// `kopf freeze`); the number of peering objects written (absent ones are skipped, as in Kopf).
///
/// # Errors
/// The peering resource is not served, or a request failed.
pub async fn freeze(
    client: &dyn ApiClient,
    command: &PeeringCommand,
    lifetime: u64,
) -> Result<usize, PeeringError> {
    run_command(client, command, lifetime).await
}

/// Removes the command's record (Kopf's `kopf resume`), so the paused operators resume at once;
/// the number of peering objects written.
///
/// # Errors
/// As [`freeze`].
pub async fn resume(client: &dyn ApiClient, command: &PeeringCommand) -> Result<usize, PeeringError> {
    run_command(client, command, 0).await
}

async fn run_command(
    client: &dyn ApiClient,
    command: &PeeringCommand,
    lifetime: u64,
) -> Result<usize, PeeringError> {
    let mut settings = Settings::default();
    settings.peering.name.clone_from(&command.peering);
    settings.peering.clusterwide = command.namespaces.is_none();
    let resources = client.discover().await?;
    let found = peering_resources(&resources, settings.peering.clusterwide);
    if found.is_empty() {
        let plural = if settings.peering.clusterwide { CLUSTER_PLURAL } else { NAMESPACED_PLURAL };
        return Err(PeeringError::NotServed(format!("{plural}.{GROUP}/v1")));
    }
    let served = match &command.namespaces {
        None => None,
        Some(patterns) if patterns.iter().all(|p| !p.contains(['*', '?', '!', ','])) => {
            Some(patterns.clone())
        }
        Some(patterns) => {
            let namespaces = resources
                .iter()
                .find(|r| r.group.is_empty() && r.plural == "namespaces")
                .cloned()
                .ok_or_else(|| PeeringError::NotServed("namespaces".into()))?;
            let list = client.list(&namespaces, None, &EVERYTHING).await?;
            Some(
                list.items
                    .iter()
                    .filter_map(|ns| ns["metadata"]["name"].as_str())
                    .filter(|name| crate::primitives::globs::matches(patterns, name))
                    .map(str::to_owned)
                    .collect(),
            )
        }
    };
    let identity = command.identity.clone().unwrap_or_else(|| detect_own_id(true));
    let clock = command.clock.unwrap_or_else(Clock::wall);
    let mut written = 0;
    for target in targets(&found, served.as_deref()) {
        if touch(client, &settings, &clock, &target, &identity, command.priority, lifetime).await? {
            written += 1;
        }
    }
    Ok(written)
}

/// The CRDs of the peering resources, as Kopf's `peering.yaml` declares them: the cluster-wide
/// `ClusterKopfPeering` and the namespaced `KopfPeering` in `kopf.dev/v1`, with a `status` that
/// keeps any fields. Install them to let operators peer.
///
/// ```
/// let [cluster, namespaced] = kopf::peering::crds();
/// assert_eq!(cluster.metadata.name.as_deref(), Some("clusterkopfpeerings.kopf.dev"));
/// assert_eq!(namespaced.spec.scope, "Namespaced");
/// ```
pub fn crds()
-> [k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition; 2] {
    [
        crd(CLUSTER_PLURAL, "ClusterKopfPeering", "Cluster"),
        crd(NAMESPACED_PLURAL, "KopfPeering", "Namespaced"),
    ]
}

fn crd(
    plural: &str,
    kind: &str,
    scope: &str,
) -> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    let singular = plural.trim_end_matches('s');
    let value = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{GROUP}")},
        "spec": {
            "scope": scope,
            "group": GROUP,
            "names": {"kind": kind, "plural": plural, "singular": singular},
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    },
                }},
            }],
        },
    });
    serde_json::from_value(value).unwrap_or_default()
}

/// A peering object: a `KopfPeering` in `namespace`, or the cluster-wide `ClusterKopfPeering`
/// with `None`. Create one named `default` to let operators in auto-detection mode peer.
///
/// ```
/// let object = kopf::peering::object("default", Some("ns1"));
/// assert_eq!(object["kind"], "KopfPeering");
/// assert_eq!(object["metadata"]["namespace"], "ns1");
/// ```
pub fn object(name: &str, namespace: Option<&str>) -> Value {
    match namespace {
        Some(ns) => json!({
            "apiVersion": format!("{GROUP}/v1"),
            "kind": "KopfPeering",
            "metadata": {"name": name, "namespace": ns},
        }),
        None => json!({
            "apiVersion": format!("{GROUP}/v1"),
            "kind": "ClusterKopfPeering",
            "metadata": {"name": name},
        }),
    }
}

fn remember(resource_version: &mut String, object: &Value) {
    if let Some(rv) = object["metadata"]["resourceVersion"].as_str() {
        *resource_version = rv.to_owned();
    }
}

fn backoff(backoffs: &[Duration], step: &mut usize) -> Duration {
    let delay = backoffs.get(*step).or(backoffs.last()).copied().unwrap_or(Duration::from_secs(1));
    *step += 1;
    delay
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn records_default_like_kopf_and_expire_at_their_deadline() {
        let now = at("2026-01-01T00:01:00Z");
        let body = json!({"status": {
            "a": {"priority": 10, "lifetime": 60, "lastseen": "2026-01-01T00:00:00+00:00"},
            "b": {"priority": "5", "lastseen": "2026-01-01T00:00:30.5+00:00"},
            "c": {},
            "junk": "not a record",
        }});
        let peers = parse_peers(&body, now);
        assert_eq!(peers.len(), 3);
        assert!(peers[0].is_dead(now), "lastseen + lifetime == now is dead, as in Kopf");
        assert_eq!((peers[1].priority, peers[1].lifetime), (5, 60));
        assert!(!peers[1].is_dead(now));
        assert_eq!((peers[2].priority, peers[2].lifetime, peers[2].lastseen), (0, 60, now));
    }

    #[test]
    fn higher_priorities_pause_same_priorities_pause_both_lower_ones_do_not() {
        let now = at("2026-01-01T00:00:10Z");
        let rec = |p: i64| json!({"priority": p, "lifetime": 60, "lastseen": "2026-01-01T00:00:00+00:00"});
        let body = json!({"status": {"me": rec(5), "low": rec(1)}});
        let v = evaluate(&body, "me", 5, false, now);
        assert!(!v.pause && v.wake_at.is_none());
        let body = json!({"status": {"me": rec(5), "high": rec(9)}});
        let v = evaluate(&body, "me", 5, false, now);
        assert!(v.pause);
        assert_eq!(v.wake_at, Some(at("2026-01-01T00:01:00Z")));
        let body = json!({"status": {"me": rec(5), "twin": rec(5)}});
        assert!(evaluate(&body, "me", 5, false, now).pause);
        assert!(!evaluate(&body, "me", 5, true, now).pause, "sharded replicas share a priority");
        let dead = json!({"priority": 9, "lifetime": 5, "lastseen": "2026-01-01T00:00:00+00:00"});
        let body = json!({"status": {"me": rec(5), "gone": dead}});
        let v = evaluate(&body, "me", 5, false, now);
        assert!(!v.pause);
        assert_eq!(v.dead, vec!["gone".to_owned()]);
    }

    #[test]
    fn records_are_written_in_kopfs_format() {
        let peer =
            Peer { identity: "x".into(), priority: 100, lifetime: 60, lastseen: at("2026-01-01T00:00:05Z") };
        assert_eq!(
            serde_json::to_string(&peer.as_record()).unwrap(),
            r#"{"lastseen":"2026-01-01T00:00:05+00:00","lifetime":60,"priority":100}"#
        );
        let fractional = Peer { lastseen: at("2026-01-01T00:00:05.25Z"), ..peer };
        assert_eq!(fractional.as_record()["lastseen"], "2026-01-01T00:00:05.250000+00:00");
    }

    #[test]
    fn the_identity_of_a_manual_command_has_no_timestamp() {
        let manual = detect_own_id(true);
        assert!(manual.contains('@') && !manual.contains('/'), "{manual}");
        let auto = detect_own_id(false);
        if std::env::var_os("POD_ID").is_none() {
            let parts: Vec<&str> = auto.split('/').collect();
            assert_eq!(parts.len(), 3, "{auto}");
            assert_eq!(parts[1].len(), 14);
            assert!(parts[2].chars().all(|c| c != 'g') && parts[2].len() == 3);
        }
    }
}
