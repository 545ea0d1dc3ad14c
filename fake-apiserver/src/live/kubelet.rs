//! The simulated kubelets: a Pod bound to a Node is admitted (Pending, `ContainerCreating`, a Pod
//! IP from the Node's Pod CIDR), its init containers run one after another, then its containers
//! start after their declared delay and run as declared ([`super::behaviour`]): until the Pod is
//! deleted, or for a while and then exit. The status carries the real condition set
//! (`PodReadyToStartContainers`, `Initialized`, `Ready`, `ContainersReady`, `PodScheduled`) and
//! `containerStatuses` with `started`, `ready` and `restartCount`.
//!
//! - Readiness follows the readiness probe: probes run at `periodSeconds` ticks from the
//!   container's start; the first one at or after `initialDelaySeconds` succeeds (after
//!   `successThreshold` ticks in a row). A startup probe holds `started` back the same way.
//! - `restartPolicy`: an exited container of an `Always` Pod (or a failed one of an `OnFailure` Pod)
//!   is restarted with the kubelet's back-off — the first restart at once, then after 10 s, 20 s,
//!   40 s … at most 5 min (`CrashLoopBackOff` meanwhile), reset after 10 min without a crash.
//!   Image pulls that fail back off the same way (`ErrImagePull`, then `ImagePullBackOff`).
//! - `activeDeadlineSeconds` fails the Pod (`DeadlineExceeded`) when it runs out.
//! - Graceful deletion: a Pod with a `deletionTimestamp` keeps running until its grace period
//!   (`deletionGracePeriodSeconds`) has passed, then its containers are killed, the terminal status
//!   is posted and the kubelet deletes it with grace 0.
//!
//! Like the real kubelet's status manager, it writes a Pod's status when its own view changes,
//! keeping the conditions others own (`PodScheduled`, `DisruptionTarget`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::behaviour::{Pull, Readiness, Resolved, Run, resolve};
use super::control::{NODE_HEALTH_ANNOTATION, NodeHealth};
use super::manager::{Cx, Reconciler};
use super::templates::fnv32a;
use super::world::{Kind, ObjKey, Object, World};

/// The kubelet's restart and image-pull back-off: 10 s, doubling, at most 5 min.
pub(crate) const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// How long after an `ErrImagePull` the status shows `ImagePullBackOff`.
const PULL_BACKOFF_SHOWN: Duration = Duration::from_secs(1);

/// A back-off entry (`flowcontrol.Backoff`): the current delay and when it was last updated. An
/// entry not updated for twice the maximum has expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Backoff {
    delay: Duration,
    updated: Instant,
}

impl Backoff {
    fn live(entry: Option<Backoff>, at: Instant) -> Option<Backoff> {
        entry.filter(|b| at.saturating_duration_since(b.updated) <= BACKOFF_MAX * 2)
    }

    /// A failure at `at`: when to try again and the entry from then on. The first failure (or
    /// one after a quiet spell) is retried at once; later ones after the current delay, which
    /// doubles at each retry.
    fn after_failure(entry: Option<Backoff>, at: Instant) -> (Instant, Backoff) {
        match Self::live(entry, at) {
            Some(b) => {
                let retry = at + b.delay;
                (retry, Backoff { delay: (b.delay * 2).min(BACKOFF_MAX), updated: retry })
            }
            None => (at, Backoff { delay: BACKOFF_INITIAL, updated: at }),
        }
    }
}

/// A Go duration as the kubelet prints a back-off (`10s`, `1m20s`, `5m0s`).
fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 { format!("{s}s") } else { format!("{}m{}s", s / 60, s % 60) }
}

/// A probe's schedule.
#[derive(Debug, Clone, Copy)]
struct Probe {
    initial_delay: u64,
    period: u64,
    success_threshold: u64,
}

impl Probe {
    fn of(probe: &Value) -> Option<Self> {
        if !probe.is_object() {
            return None;
        }
        let n = |k: &str, d: u64| probe[k].as_u64().unwrap_or(d);
        Some(Self {
            initial_delay: n("initialDelaySeconds", 0),
            period: n("periodSeconds", 10).max(1),
            success_threshold: n("successThreshold", 1).max(1),
        })
    }

    /// When the probe first passes (`successThreshold` ticks in a row), counted from the
    /// container's start: ticks are `periodSeconds` apart from the start, and none counts before
    /// `initialDelaySeconds` nor before `after`.
    fn passes(&self, after: Duration) -> Duration {
        let after = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        let first = self.initial_delay.max(after).div_ceil(self.period);
        Duration::from_secs((first + self.success_threshold - 1) * self.period)
    }
}

/// What a container is doing.
#[derive(Debug, Clone, PartialEq)]
enum State {
    Waiting { reason: &'static str, message: Option<String> },
    Running { since: Instant, started_at: String },
    Terminated { exit: i32, reason: &'static str, started_at: String, finished_at: String, id: String },
}

/// The next thing that happens to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The image is pulled (or not) and the container starts — or restarts after a crash.
    Start,
    /// The pull back-off shows (a second after a failed pull).
    ShowPullBackOff,
    /// The process exits.
    Exit,
}

/// Formats times and ids for one Pod's containers.
struct Names {
    now: Instant,
    clock: crate::clock::Clock,
    pod: String,
    uid: String,
}

impl Names {
    /// `metav1.Time` of an instant (the kubelet may apply steps a little after they were due).
    fn time(&self, at: Instant) -> String {
        let behind = self.now.saturating_duration_since(at);
        let t = self.clock.now() - jiff::SignedDuration::try_from(behind).unwrap_or_default();
        crate::clock::rfc3339_seconds(t)
    }

    fn container_id(&self, container: &str, run: u32) -> String {
        format!("containerd://{}", digest(&format!("{}/{container}/{run}", self.uid)))
    }
}

/// 64 hex digits derived from `text` (for container ids and image digests).
fn digest(text: &str) -> String {
    (0..8u8)
        .map(|i| {
            let mut bytes = text.as_bytes().to_vec();
            bytes.push(i);
            format!("{:08x}", fnv32a(&bytes))
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Container {
    name: String,
    image: String,
    behaviour: Result<Resolved, String>,
    readiness: Option<Probe>,
    startup: Option<Probe>,
    state: State,
    next: Option<(Instant, Step)>,
    restarts: u32,
    /// The container has run at least once (its id and image id are known).
    ran: u32,
    last: Option<Value>,
    crash: Option<Backoff>,
    pull: Option<Backoff>,
    pull_retry: Option<Instant>,
    /// The next start is a restart after a crash.
    restarting: bool,
}

impl Container {
    fn new(spec: &Value, behaviour: Result<Resolved, String>, waiting: &'static str) -> Self {
        Self {
            name: spec["name"].as_str().unwrap_or_default().to_owned(),
            image: spec["image"].as_str().unwrap_or_default().to_owned(),
            behaviour,
            readiness: Probe::of(&spec["readinessProbe"]),
            startup: Probe::of(&spec["startupProbe"]),
            state: State::Waiting { reason: waiting, message: None },
            next: None,
            restarts: 0,
            ran: 0,
            last: None,
            crash: None,
            pull: None,
            pull_retry: None,
            restarting: false,
        }
    }

    /// Its turn begins: it starts after its delay (or never, misconfigured).
    fn begin(&mut self, at: Instant) {
        match &self.behaviour {
            Ok(b) => {
                self.state = State::Waiting { reason: "ContainerCreating", message: None };
                self.next = Some((at + b.start_delay, Step::Start));
            }
            Err(message) => {
                self.state =
                    State::Waiting { reason: "CreateContainerConfigError", message: Some(message.clone()) };
                self.next = None;
            }
        }
    }

    fn succeeded(&self) -> bool {
        matches!(self.state, State::Terminated { exit: 0, .. }) && self.next.is_none()
    }

    fn failed_for_good(&self) -> bool {
        matches!(self.state, State::Terminated { exit, .. } if exit != 0) && self.next.is_none()
    }

    fn startup_passed_at(&self) -> Option<Instant> {
        let State::Running { since, .. } = self.state else { return None };
        Some(since + self.startup.map_or(Duration::ZERO, |p| p.passes(Duration::ZERO)))
    }

    fn started(&self, now: Instant) -> bool {
        self.startup_passed_at().is_some_and(|at| at <= now)
    }

    /// When a running container becomes ready, if it does before it exits.
    fn ready_at(&self) -> Option<Instant> {
        let State::Running { since, .. } = self.state else { return None };
        if self.behaviour.as_ref().ok()?.ready == Readiness::Never {
            return None;
        }
        let started = self.startup_passed_at()?.duration_since(since);
        let ready = since + self.readiness.map_or(started, |p| p.passes(started));
        match self.next {
            Some((exit, Step::Exit)) if exit <= ready => None,
            _ => Some(ready),
        }
    }

    fn ready(&self, now: Instant) -> bool {
        self.ready_at().is_some_and(|at| at <= now)
    }

    /// The next instant its status changes by itself: a step, or becoming started or ready.
    fn next_change(&self, now: Instant) -> Option<Instant> {
        [
            self.next.map(|(at, _)| at),
            self.startup_passed_at().filter(|at| *at > now),
            self.ready_at().filter(|at| *at > now),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn terminated_json(&self) -> Value {
        match &self.state {
            State::Terminated { exit, reason, started_at, finished_at, id } => json!({"terminated": {
                "exitCode": exit, "reason": reason, "startedAt": started_at, "finishedAt": finished_at, "containerID": id,
            }}),
            _ => json!({}),
        }
    }

    /// Kills a running container (SIGKILL: exit 137); a waiting one stops waiting for nothing.
    fn kill(&mut self, at: Instant, names: &Names) {
        self.next = None;
        if let State::Running { started_at, .. } = &self.state {
            self.state = State::Terminated {
                exit: 137,
                reason: "Error",
                started_at: started_at.clone(),
                finished_at: names.time(at),
                id: names.container_id(&self.name, self.ran),
            };
        }
    }

    /// Applies the step due at `at`; `restart` says whether an exit code restarts the container.
    fn step(&mut self, at: Instant, step: Step, restart: bool, names: &Names) {
        let Ok(b) = self.behaviour.clone() else { return };
        match step {
            Step::Start if b.pull == Pull::Fail && self.ran == 0 => {
                let delay = match Backoff::live(self.pull, at) {
                    Some(p) => (p.delay * 2).min(BACKOFF_MAX),
                    None => BACKOFF_INITIAL,
                };
                let retry = at + delay;
                self.pull = Some(Backoff { delay, updated: at });
                self.state = State::Waiting {
                    reason: "ErrImagePull",
                    message: Some(format!(
                        "failed to pull and unpack image \"{0}\": failed to resolve reference \"{0}\": pull access denied, repository does not exist or may require authorization",
                        self.image
                    )),
                };
                self.pull_retry = Some(retry);
                self.next = Some((at + PULL_BACKOFF_SHOWN, Step::ShowPullBackOff));
            }
            Step::ShowPullBackOff => {
                self.state = State::Waiting {
                    reason: "ImagePullBackOff",
                    message: Some(format!("Back-off pulling image \"{}\"", self.image)),
                };
                self.next = self.pull_retry.take().map(|r| (r.max(at), Step::Start));
            }
            Step::Start => {
                if self.restarting {
                    self.restarts += 1;
                    self.restarting = false;
                }
                self.ran += 1;
                self.state = State::Running { since: at, started_at: names.time(at) };
                self.next = match b.run {
                    Run::Forever => None,
                    Run::For(d) => Some((at + d, Step::Exit)),
                };
            }
            Step::Exit => {
                let State::Running { started_at, .. } = &self.state else { return };
                self.state = State::Terminated {
                    exit: b.exit_code,
                    reason: if b.exit_code == 0 { "Completed" } else { "Error" },
                    started_at: started_at.clone(),
                    finished_at: names.time(at),
                    id: names.container_id(&self.name, self.ran),
                };
                self.next = None;
                if restart {
                    let shown = Backoff::live(self.crash, at).map(|b| b.delay);
                    let (when, entry) = Backoff::after_failure(self.crash, at);
                    self.crash = Some(entry);
                    self.last = Some(self.terminated_json());
                    self.restarting = true;
                    if when > at {
                        self.state = State::Waiting {
                            reason: "CrashLoopBackOff",
                            message: Some(format!(
                                "back-off {} restarting failed container={} pod={}",
                                go_duration(shown.unwrap_or(BACKOFF_INITIAL)),
                                self.name,
                                names.pod
                            )),
                        };
                        self.next = Some((when, Step::Start));
                    } else {
                        self.step(at, Step::Start, restart, names);
                    }
                }
            }
        }
    }

    fn status(&self, now: Instant, names: &Names) -> Value {
        let state = match &self.state {
            State::Waiting { reason, message } => {
                let mut w = json!({"reason": reason});
                if let Some(m) = message {
                    w["message"] = json!(m);
                }
                json!({"waiting": w})
            }
            State::Running { started_at, .. } => json!({"running": {"startedAt": started_at}}),
            State::Terminated { .. } => self.terminated_json(),
        };
        let mut status = json!({
            "name": self.name,
            "image": self.image,
            "imageID": if self.ran > 0 { format!("{}@sha256:{}", self.image.split(':').next().unwrap_or_default(), digest(&self.image)) } else { String::new() },
            "ready": self.ready(now),
            "restartCount": self.restarts,
            "started": self.started(now),
            "state": state,
            "lastState": self.last.clone().unwrap_or_else(|| json!({})),
        });
        if self.ran > 0 {
            status["containerID"] = json!(names.container_id(&self.name, self.ran));
        }
        status
    }
}

/// One Pod as its kubelet runs it.
#[derive(Debug, Clone)]
struct Sim {
    node: String,
    ip: String,
    host_ip: String,
    start_time: String,
    init: Vec<Container>,
    containers: Vec<Container>,
    policy: String,
    /// `activeDeadlineSeconds` from admission.
    deadline: Option<Instant>,
    /// The Pod failed as a whole (reason, message).
    failed: Option<(&'static str, &'static str)>,
    /// When a deleted Pod's grace period ends.
    kill_at: Option<Instant>,
    killed: bool,
    /// The kubelet-owned status last written.
    written: Option<Value>,
    /// The Pod IP went back to the pool (the Pod finished).
    released: bool,
}

impl Sim {
    fn restart(&self, init: bool, exit: i32) -> bool {
        match self.policy.as_str() {
            "Never" => false,
            "OnFailure" => exit != 0,
            _ if init => exit != 0,
            _ => true,
        }
    }

    fn init_done(&self) -> bool {
        self.init.iter().all(Container::succeeded)
    }

    /// Applies every step due by `now`, in time order.
    fn advance(&mut self, now: Instant, names: &Names) {
        loop {
            if self.failed.is_some() || self.killed {
                return;
            }
            if let Some(deadline) = self.deadline.filter(|d| *d <= now) {
                let due_before = self.earliest_step().is_some_and(|(at, ..)| at < deadline);
                if !due_before {
                    self.fail_all(
                        deadline,
                        ("DeadlineExceeded", "Pod was active on the node longer than the specified deadline"),
                        names,
                    );
                    return;
                }
            }
            let Some((at, init, i)) = self.earliest_step().filter(|(at, ..)| *at <= now) else { return };
            let list = if init { &mut self.init } else { &mut self.containers };
            let Some((_, step)) = list[i].next else { return };
            let exit = list[i].behaviour.as_ref().map(|b| b.exit_code).unwrap_or(0);
            let restart = self.restart(init, exit);
            let list = if init { &mut self.init } else { &mut self.containers };
            list[i].step(at, step, restart, names);
            if init && self.init[i].failed_for_good() {
                self.failed = Some(("", ""));
                return;
            }
            if init && self.init[i].succeeded() {
                match self.init.get_mut(i + 1) {
                    Some(next) => next.begin(at),
                    None => self.containers.iter_mut().for_each(|c| c.begin(at)),
                }
            }
        }
    }

    /// The earliest pending step: (instant, init?, index), init containers first on ties.
    fn earliest_step(&self) -> Option<(Instant, bool, usize)> {
        let init = self.init.iter().enumerate().filter_map(|(i, c)| c.next.map(|(at, _)| (at, true, i)));
        let main =
            self.containers.iter().enumerate().filter_map(|(i, c)| c.next.map(|(at, _)| (at, false, i)));
        init.chain(main).min_by_key(|(at, init, i)| (*at, !*init, *i))
    }

    fn fail_all(&mut self, at: Instant, why: (&'static str, &'static str), names: &Names) {
        for c in self.init.iter_mut().chain(self.containers.iter_mut()) {
            c.kill(at, names);
        }
        self.failed = Some(why);
    }

    /// The next instant the status changes by itself.
    fn next_change(&self, now: Instant) -> Option<Instant> {
        if self.failed.is_some() || self.killed {
            return None;
        }
        self.init
            .iter()
            .chain(self.containers.iter())
            .filter_map(|c| c.next_change(now))
            .chain(self.deadline.filter(|d| *d > now))
            .min()
    }

    /// The Pod phase (`getPhase`).
    fn phase(&self) -> &'static str {
        if self.failed.is_some() {
            return "Failed";
        }
        if !self.init_done() {
            return if self.policy == "Never" && self.init.iter().any(Container::failed_for_good) {
                "Failed"
            } else {
                "Pending"
            };
        }
        let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
        for c in &self.containers {
            match &c.state {
                State::Running { .. } => running += 1,
                State::Terminated { exit, .. } => {
                    stopped += 1;
                    if *exit == 0 {
                        succeeded += 1;
                    }
                }
                State::Waiting { .. } if c.last.is_some() => stopped += 1,
                State::Waiting { .. } => waiting += 1,
            }
        }
        if waiting > 0 {
            "Pending"
        } else if running > 0 {
            "Running"
        } else if stopped > 0 {
            if self.policy == "Always" || self.policy.is_empty() {
                "Running"
            } else if stopped == succeeded && self.containers.iter().all(|c| c.next.is_none()) {
                "Succeeded"
            } else if self.policy == "Never" {
                "Failed"
            } else {
                "Running"
            }
        } else {
            "Pending"
        }
    }

    /// The status fields the kubelet owns, with the Pod's other conditions kept.
    fn status(&self, pod: &Object, now: Instant, names: &Names) -> Value {
        let phase = self.phase();
        let terminal = matches!(phase, "Succeeded" | "Failed");
        let time = names.time(now);
        let old = pod.status();
        let keep_time = |kind: &str, status: &str| {
            super::templates::condition(old, kind)
                .filter(|c| c["status"] == status)
                .and_then(|c| c["lastTransitionTime"].as_str())
                .map_or_else(|| time.clone(), str::to_owned)
        };
        let condition = |kind: &str, ok: bool, reason: &str, message: String| {
            let status = if ok { "True" } else { "False" };
            let mut c = json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": keep_time(kind, status)});
            if !reason.is_empty() {
                c["reason"] = json!(reason);
            }
            if !message.is_empty() {
                c["message"] = json!(message);
            }
            c
        };
        let unready: Vec<&str> =
            self.containers.iter().filter(|c| !c.ready(now)).map(|c| c.name.as_str()).collect();
        let incomplete: Vec<&str> =
            self.init.iter().filter(|c| !c.succeeded()).map(|c| c.name.as_str()).collect();
        let succeeded = phase == "Succeeded";
        let (ready, ready_reason, ready_message) = if succeeded {
            (false, "PodCompleted", String::new())
        } else if unready.is_empty() {
            (true, "", String::new())
        } else {
            (false, "ContainersNotReady", format!("containers with unready status: [{}]", unready.join(" ")))
        };
        let initialized = if incomplete.is_empty() {
            condition("Initialized", true, if succeeded { "PodCompleted" } else { "" }, String::new())
        } else {
            condition(
                "Initialized",
                false,
                "ContainersNotInitialized",
                format!("containers with incomplete status: [{}]", incomplete.join(" ")),
            )
        };
        let mut conditions = vec![
            condition("PodReadyToStartContainers", !terminal, "", String::new()),
            initialized,
            condition("Ready", ready, ready_reason, ready_message.clone()),
            condition("ContainersReady", ready, ready_reason, ready_message),
        ];
        const OWNED: [&str; 4] = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"];
        for c in old["conditions"].as_array().into_iter().flatten() {
            if !OWNED.contains(&c["type"].as_str().unwrap_or_default()) {
                conditions.push(c.clone());
            }
        }
        let mut statuses: Vec<Value> = self.containers.iter().map(|c| c.status(now, names)).collect();
        statuses.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        let mut status = json!({
            "phase": phase,
            "conditions": conditions,
            "hostIP": self.host_ip,
            "hostIPs": [{"ip": self.host_ip}],
            "podIP": self.ip,
            "podIPs": [{"ip": self.ip}],
            "startTime": self.start_time,
            "containerStatuses": statuses,
            "qosClass": qos_class(pod.spec()),
        });
        if !self.init.is_empty() {
            status["initContainerStatuses"] =
                Value::Array(self.init.iter().map(|c| c.status(now, names)).collect());
        }
        if let Some((reason, message)) = self.failed.filter(|(r, _)| !r.is_empty()) {
            status["reason"] = json!(reason);
            status["message"] = json!(message);
        }
        status
    }
}

/// The Pod's QoS class: Guaranteed when every container's requests equal its limits for CPU and
/// memory, BestEffort when none asks for anything, Burstable otherwise.
fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = spec["containers"]
        .as_array()
        .into_iter()
        .chain(spec["initContainers"].as_array())
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let (requests, limits) = (&c["resources"]["requests"], &c["resources"]["limits"]);
        for r in ["cpu", "memory"] {
            let (req, lim) = (&requests[r], &limits[r]);
            if !req.is_null() || !lim.is_null() {
                any = true;
            }
            if lim.is_null() || (!req.is_null() && req != lim) {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// The Pod IPs of one node (`<pod CIDR prefix>.2` onwards), smallest free first.
#[derive(Debug, Default)]
struct IpPool {
    used: BTreeSet<u16>,
}

/// The simulated kubelets of every Node.
#[derive(Debug, Default)]
pub(crate) struct Kubelet {
    sims: HashMap<String, Sim>,
    /// Pod key → uid, to forget a deleted Pod.
    uids: HashMap<ObjKey, String>,
    pools: HashMap<String, IpPool>,
}

fn node_health(node: &Object) -> NodeHealth {
    NodeHealth::parse(node.annotation(NODE_HEALTH_ANNOTATION))
}

impl Kubelet {
    fn forget(&mut self, uid: &str) {
        if let Some(mut sim) = self.sims.remove(uid) {
            self.release(&mut sim);
        }
    }

    fn release(&mut self, sim: &mut Sim) {
        if sim.released {
            return;
        }
        sim.released = true;
        if let (Some(pool), Some(host)) = (self.pools.get_mut(&sim.node), sim.ip.rsplit('.').next())
            && let Ok(n) = host.parse::<u16>()
        {
            pool.used.remove(&n);
        }
    }

    fn allocate(&mut self, node: &Object) -> String {
        let cidr = node.spec()["podCIDR"].as_str().unwrap_or("10.244.0.0/24");
        let prefix = cidr.split('/').next().unwrap_or("10.244.0.0");
        let prefix = prefix.rsplit_once('.').map_or("10.244.0", |(p, _)| p);
        let pool = self.pools.entry(node.name().to_owned()).or_default();
        let n = (2u16..=254).find(|n| !pool.used.contains(n)).unwrap_or(254);
        pool.used.insert(n);
        format!("{prefix}.{n}")
    }

    fn admit(&mut self, cx: &Cx<'_>, pod: &Object, node: &Object) -> Sim {
        let rules = cx.rules();
        let spec = pod.spec();
        let containers = |key: &str, init: bool, waiting: &'static str| -> Vec<Container> {
            spec[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| Container::new(c, resolve(&rules, &pod.value, c, init), waiting))
                .collect()
        };
        let init = containers("initContainers", true, "PodInitializing");
        let mut main = containers(
            "containers",
            false,
            if init.is_empty() { "ContainerCreating" } else { "PodInitializing" },
        );
        let mut init = init;
        match init.first_mut() {
            Some(first) => first.begin(cx.now),
            None => main.iter_mut().for_each(|c| c.begin(cx.now)),
        }
        let host_ip = node.status()["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["type"] == "InternalIP")
            .and_then(|a| a["address"].as_str())
            .unwrap_or("172.18.0.2")
            .to_owned();
        Sim {
            node: node.name().to_owned(),
            ip: self.allocate(node),
            host_ip,
            start_time: cx.time(),
            init,
            containers: main,
            policy: spec["restartPolicy"].as_str().unwrap_or("Always").to_owned(),
            deadline: spec["activeDeadlineSeconds"].as_u64().map(|s| cx.now + Duration::from_secs(s)),
            failed: None,
            kill_at: None,
            killed: false,
            written: None,
            released: false,
        }
    }
}

impl Reconciler for Kubelet {
    fn name(&self) -> &'static str {
        "kubelet"
    }

    fn manager(&self) -> &'static str {
        "kubelet"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Pod, Kind::Node]
    }

    fn on_change(
        &mut self,
        world: &World,
        kind: Kind,
        object: &Object,
        deleted: bool,
        out: &mut Vec<ObjKey>,
    ) {
        match kind {
            Kind::Pod if deleted => {
                self.uids.remove(&object.key());
                self.forget(object.uid());
            }
            Kind::Pod => {
                if object.spec()["nodeName"].as_str().is_some_and(|n| !n.is_empty()) {
                    out.push(object.key());
                }
            }
            _ => out.extend(world.pods_on(object.name()).map(|p| p.key())),
        }
    }

    fn reconcile(&mut self, cx: &mut Cx<'_>, key: &ObjKey) -> Option<Instant> {
        let pod = cx.world.get(Kind::Pod, &key.0, &key.1)?.clone();
        let node_name = pod.spec()["nodeName"].as_str().unwrap_or_default().to_owned();
        let node = cx.world.get(Kind::Node, "", &node_name)?.clone();
        if node_health(&node) == NodeHealth::Stopped {
            return None;
        }
        if let Some(old) = self.uids.insert(key.clone(), pod.uid().to_owned()).filter(|u| u != pod.uid()) {
            self.forget(&old); // a new Pod with the same name
        }
        if !self.sims.contains_key(pod.uid()) {
            if super::templates::pod_terminal(&pod) {
                return None; // finished before this kubelet saw it
            }
            let sim = self.admit(cx, &pod, &node);
            self.sims.insert(pod.uid().to_owned(), sim);
        }
        let mut sim = self.sims.remove(pod.uid())?;
        if sim.killed {
            self.sims.insert(pod.uid().to_owned(), sim);
            return None; // deleted with grace 0; the deletion's echo is on its way
        }
        let names = Names {
            now: cx.now,
            clock: cx.clock,
            pod: format!("{}_{}({})", pod.name(), pod.namespace(), pod.uid()),
            uid: pod.uid().to_owned(),
        };
        let now = cx.now;
        if pod.deleting() {
            let grace = pod.meta()["deletionGracePeriodSeconds"].as_u64().unwrap_or(0);
            let kill_at = *sim.kill_at.get_or_insert(now + Duration::from_secs(grace));
            sim.advance(now.min(kill_at), &names);
            let running = sim
                .containers
                .iter()
                .chain(sim.init.iter())
                .any(|c| matches!(c.state, State::Running { .. }));
            if kill_at <= now || !running {
                if running {
                    for c in sim.init.iter_mut().chain(sim.containers.iter_mut()) {
                        c.kill(now, &names);
                    }
                    sim.killed = true;
                    let status = sim.status(&pod, now, &names);
                    cx.update_status(Kind::Pod, &pod, status);
                }
                sim.killed = true;
                self.release(&mut sim);
                cx.delete(Kind::Pod, &pod, Some(0));
                self.sims.insert(pod.uid().to_owned(), sim);
                return None;
            }
            let status = sim.status(&pod, now, &names);
            let next = sim.next_change(now).map_or(kill_at, |n| n.min(kill_at));
            self.write(cx, &pod, &mut sim, &status);
            self.sims.insert(pod.uid().to_owned(), sim);
            return Some(next);
        }
        sim.advance(now, &names);
        let status = sim.status(&pod, now, &names);
        let next = sim.next_change(now);
        self.write(cx, &pod, &mut sim, &status);
        if matches!(sim.phase(), "Succeeded" | "Failed") {
            self.release(&mut sim);
        }
        self.sims.insert(pod.uid().to_owned(), sim);
        next
    }
}

impl Kubelet {
    /// Writes the status when the kubelet's own view changed since its last write.
    fn write(&self, cx: &mut Cx<'_>, pod: &Arc<Object>, sim: &mut Sim, status: &Value) {
        let mut own = status.clone();
        if let Some(conditions) = own["conditions"].as_array_mut() {
            conditions.retain(|c| {
                matches!(
                    c["type"].as_str(),
                    Some("PodReadyToStartContainers" | "Initialized" | "Ready" | "ContainersReady")
                )
            });
        }
        let summary = |status: &Value| -> Vec<(Value, Value)> {
            let mut pairs = vec![(json!("phase"), status["phase"].clone())];
            for c in status["conditions"].as_array().into_iter().flatten() {
                if matches!(
                    c["type"].as_str(),
                    Some("PodReadyToStartContainers" | "Initialized" | "Ready" | "ContainersReady")
                ) {
                    pairs.push((c["type"].clone(), c["status"].clone()));
                }
            }
            pairs.sort_by_key(|(k, _)| k.to_string());
            pairs
        };
        // Written before and the server still shows it: nothing to do (like the status manager,
        // which re-syncs only when the server's copy drifted from its own).
        if sim.written.as_ref() == Some(&own) && summary(pod.status()) == summary(&own) {
            return;
        }
        sim.written = Some(own);
        let mut merged: Map<String, Value> = pod.status().as_object().cloned().unwrap_or_default();
        for (k, v) in status.as_object().into_iter().flatten() {
            merged.insert(k.clone(), v.clone());
        }
        if sim.failed.is_none() {
            merged.remove("reason");
            merged.remove("message");
        }
        cx.update_status(Kind::Pod, pod, Value::Object(merged));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crash_back_off_restarts_at_once_then_after_10_s_doubling_to_5_min() {
        let t0 = Instant::now();
        let mut entry = None;
        let mut at = t0;
        let mut delays = Vec::new();
        for _ in 0..9 {
            let (retry, next) = Backoff::after_failure(entry, at);
            delays.push(retry.duration_since(at).as_secs());
            entry = Some(next);
            at = retry + Duration::from_secs(1); // runs a second, crashes again
        }
        assert_eq!(delays, [0, 10, 20, 40, 80, 160, 300, 300, 300]);
        let quiet = at + Duration::from_secs(601);
        assert_eq!(Backoff::after_failure(entry, quiet).0, quiet, "ten quiet minutes reset it");
    }

    #[test]
    fn probes_pass_at_period_ticks_after_the_initial_delay() {
        let p =
            |initial, period, success| Probe { initial_delay: initial, period, success_threshold: success };
        assert_eq!(p(0, 10, 1).passes(Duration::ZERO), Duration::ZERO);
        assert_eq!(p(5, 10, 1).passes(Duration::ZERO), Duration::from_secs(10));
        assert_eq!(p(5, 10, 3).passes(Duration::ZERO), Duration::from_secs(30));
        assert_eq!(p(0, 5, 1).passes(Duration::from_secs(12)), Duration::from_secs(15));
    }

    #[test]
    fn qos_classes_follow_requests_and_limits() {
        assert_eq!(qos_class(&json!({"containers": [{}]})), "BestEffort");
        let equal = json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(&equal), "Guaranteed");
        let burst = json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]});
        assert_eq!(qos_class(&burst), "Burstable");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
    }
}
