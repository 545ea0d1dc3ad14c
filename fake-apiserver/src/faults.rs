//! The fault plan: failures as data, consulted at one point of the core's operation path
//! ([`crate::Cluster::handle`]), so the tower Service and any direct adapter see the same faults.
//!
//! A plan holds scripted rules ("the 3rd patch of kopfexamples/ex1 gets 409") and seeded random
//! rules ("5% of writes get 503"). Both are deterministic: the same plan, seed and requests give the
//! same faults.

use std::time::Duration;

use crate::error::{ApiError, GroupResource};
use crate::request::{Request, Verb};

/// One injected failure.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The request fails with this error (401, 409, 429 with Retry-After, 500, 503, 504, …).
    Error(ApiError),
    /// The request is answered after this much (virtual) time.
    Latency(Duration),
    /// A watch starts with an ERROR event of 410 Gone and ends, so the client must re-list.
    WatchGone,
    /// A watch ends cleanly after delivering this many events, so the client re-watches.
    WatchDrop {
        /// Events delivered before the stream ends.
        after: usize,
    },
    /// A watch delivers nothing and never ends (a stalled connection).
    WatchStall,
}

impl Fault {
    /// 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self::Error(ApiError::Unauthorized)
    }

    /// 409 Conflict on the object, as a stale write gets it.
    pub fn conflict() -> Self {
        Self::Error(ApiError::stale(&GroupResource::default(), ""))
    }

    /// 429 TooManyRequests with `Retry-After: seconds`.
    pub fn too_many_requests(retry_after_seconds: u32) -> Self {
        Self::Error(ApiError::TooManyRequests {
            message: "Too many requests, please try again later.".to_owned(),
            retry_after_seconds,
        })
    }

    /// 500 InternalError.
    pub fn internal_error() -> Self {
        Self::Error(ApiError::Internal("injected fault".to_owned()))
    }

    /// 503 ServiceUnavailable.
    pub fn service_unavailable() -> Self {
        Self::Error(ApiError::ServiceUnavailable(
            "the server is currently unable to handle the request".to_owned(),
        ))
    }

    /// 504 Timeout.
    pub fn gateway_timeout() -> Self {
        Self::Error(ApiError::Timeout(
            "the server was unable to return a response in the time allotted".to_owned(),
        ))
    }

    /// 410 Gone on a watch.
    pub fn watch_gone() -> Self {
        Self::WatchGone
    }

    /// A watch closed after `after` events.
    pub fn watch_drop(after: usize) -> Self {
        Self::WatchDrop { after }
    }

    /// A stalled watch.
    pub fn watch_stall() -> Self {
        Self::WatchStall
    }

    fn is_watch_only(&self) -> bool {
        matches!(self, Self::WatchGone | Self::WatchDrop { .. } | Self::WatchStall)
    }

    /// A short label for the journal.
    pub fn label(&self) -> String {
        match self {
            Self::Error(e) => format!("{} {}", e.code(), e.reason()),
            Self::Latency(d) => format!("latency {d:?}"),
            Self::WatchGone => "watch 410 Gone".to_owned(),
            Self::WatchDrop { after } => format!("watch dropped after {after}"),
            Self::WatchStall => "watch stalled".to_owned(),
        }
    }

    /// Fills in the resource and name of an error fault from the request it hits, so the Status
    /// reads like a real one.
    fn for_request(&self, req: &Request) -> Self {
        match self {
            Self::Error(ApiError::Conflict { message, .. }) => Self::Error(ApiError::Conflict {
                resource: GroupResource::new(req.group.clone(), req.plural.clone()),
                name: req.name.clone().unwrap_or_default(),
                message: message.clone(),
            }),
            other => other.clone(),
        }
    }
}

/// Which requests a rule applies to; unset parts match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FaultMatch {
    verbs: Vec<Verb>,
    resource: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<Option<String>>,
    actor: Option<String>,
}

impl FaultMatch {
    fn matches(&self, req: &Request) -> bool {
        (self.verbs.is_empty() || self.verbs.contains(&req.verb))
            && self
                .resource
                .as_ref()
                .is_none_or(|r| r == &req.plural || *r == format!("{}.{}", req.plural, req.group))
            && self.namespace.as_ref().is_none_or(|n| req.namespace.as_ref() == Some(n))
            && self.name.as_ref().is_none_or(|n| req.name.as_ref() == Some(n))
            && self.subresource.as_ref().is_none_or(|s| &req.subresource == s)
            && self.actor.as_ref().is_none_or(|a| a == &req.actor)
    }
}

/// A scripted rule: the `nth` matching request (and the `times - 1` after it) gets the fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    matcher: FaultMatch,
    fault: Fault,
    nth: u64,
    times: Option<u64>,
    seen: u64,
    fired: u64,
}

impl FaultRule {
    /// A rule that injects `fault` into every matching request until limited.
    pub fn new(fault: Fault) -> Self {
        Self { matcher: FaultMatch::default(), fault, nth: 1, times: None, seen: 0, fired: 0 }
    }

    /// Only requests with this verb (may be given several times).
    #[must_use]
    pub fn verb(mut self, verb: Verb) -> Self {
        self.matcher.verbs.push(verb);
        self
    }

    /// Only requests for this resource (`plural` or `plural.group`).
    #[must_use]
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.matcher.resource = Some(resource.into());
        self
    }

    /// Only requests in this namespace.
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.matcher.namespace = Some(namespace.into());
        self
    }

    /// Only requests for this object name.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.matcher.name = Some(name.into());
        self
    }

    /// Only requests to this subresource (`None`: the main resource only).
    #[must_use]
    pub fn subresource(mut self, subresource: Option<&str>) -> Self {
        self.matcher.subresource = Some(subresource.map(str::to_owned));
        self
    }

    /// Only requests from this client (its field manager or user agent, as the journal's `actor`;
    /// kopf-testing's direct adapter is `kopf`), so a test's own requests can stay unharmed.
    #[must_use]
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.matcher.actor = Some(actor.into());
        self
    }

    /// Start at the `n`th matching request (1-based).
    #[must_use]
    pub fn nth(mut self, n: u64) -> Self {
        self.nth = n.max(1);
        self
    }

    /// Fire this many times, then stop.
    #[must_use]
    pub fn times(mut self, times: u64) -> Self {
        self.times = Some(times);
        self
    }

    /// Fire once (at the `nth` match).
    #[must_use]
    pub fn once(self) -> Self {
        self.times(1)
    }

    /// How many times the rule has fired.
    pub fn fired(&self) -> u64 {
        self.fired
    }

    fn decide(&mut self, req: &Request) -> Option<Fault> {
        if self.fault.is_watch_only() && req.verb != Verb::Watch {
            return None;
        }
        if !self.matcher.matches(req) {
            return None;
        }
        self.seen += 1;
        if self.seen < self.nth || self.times.is_some_and(|t| self.fired >= t) {
            return None;
        }
        self.fired += 1;
        Some(self.fault.for_request(req))
    }
}

/// A seeded random rule: each matching request gets one of `faults` with probability `rate`.
#[derive(Debug, Clone)]
pub struct RandomFaults {
    matcher: FaultMatch,
    faults: Vec<Fault>,
    rate: f64,
    rng: fastrand::Rng,
}

impl RandomFaults {
    /// Each matching request gets one of `faults` (uniformly) with probability `rate`, decided by an
    /// RNG seeded with `seed`.
    pub fn new(seed: u64, rate: f64, faults: Vec<Fault>) -> Self {
        Self {
            matcher: FaultMatch::default(),
            faults,
            rate: rate.clamp(0.0, 1.0),
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// Only requests with this verb (may be given several times).
    #[must_use]
    pub fn verb(mut self, verb: Verb) -> Self {
        self.matcher.verbs.push(verb);
        self
    }

    /// Only requests for this resource (`plural` or `plural.group`).
    #[must_use]
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.matcher.resource = Some(resource.into());
        self
    }

    /// Only requests from this client (see [`FaultRule::actor`]).
    #[must_use]
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.matcher.actor = Some(actor.into());
        self
    }

    fn decide(&mut self, req: &Request) -> Option<Fault> {
        if self.faults.is_empty() || !self.matcher.matches(req) {
            return None;
        }
        let candidates: Vec<&Fault> =
            self.faults.iter().filter(|f| !f.is_watch_only() || req.verb == Verb::Watch).collect();
        if candidates.is_empty() || self.rng.f64() >= self.rate {
            return None;
        }
        let pick = self.rng.usize(..candidates.len());
        Some(candidates[pick].for_request(req))
    }
}

/// Everything injected into one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) latency: Duration,
    pub(crate) error: Option<ApiError>,
    pub(crate) watch: Option<Fault>,
    pub(crate) labels: Vec<String>,
}

/// The plan of a cluster: scripted rules first, then random ones; latencies add up, the first
/// error wins.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    rules: Vec<FaultRule>,
    random: Vec<RandomFaults>,
}

impl FaultPlan {
    /// Adds a scripted rule.
    pub fn add(&mut self, rule: FaultRule) {
        self.rules.push(rule);
    }

    /// Adds a random rule.
    pub fn add_random(&mut self, random: RandomFaults) {
        self.random.push(random);
    }

    /// Removes every rule.
    pub fn clear(&mut self) {
        self.rules.clear();
        self.random.clear();
    }

    /// The scripted rules, with how often each fired.
    pub fn rules(&self) -> &[FaultRule] {
        &self.rules
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.random.is_empty()
    }

    pub(crate) fn decide(&mut self, req: &Request) -> Decision {
        let mut decision = Decision::default();
        let picked: Vec<Fault> = self
            .rules
            .iter_mut()
            .filter_map(|r| r.decide(req))
            .chain(self.random.iter_mut().filter_map(|r| r.decide(req)))
            .collect();
        for fault in picked {
            decision.labels.push(fault.label());
            match fault {
                Fault::Latency(d) => decision.latency += d,
                Fault::Error(e) => {
                    decision.error.get_or_insert(e);
                }
                watch => {
                    decision.watch.get_or_insert(watch);
                }
            }
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(name: &str) -> Request {
        Request::new(Verb::Patch, "kopf.dev", "v1", "kopfexamples").namespace("default").name(name)
    }

    #[test]
    fn the_third_patch_of_an_object_gets_a_conflict_once() {
        let mut plan = FaultPlan::default();
        plan.add(
            FaultRule::new(Fault::conflict())
                .verb(Verb::Patch)
                .resource("kopfexamples")
                .name("ex1")
                .nth(3)
                .once(),
        );
        let codes: Vec<Option<u16>> =
            (0..5).map(|_| plan.decide(&patch("ex1")).error.map(|e| e.code())).collect();
        assert_eq!(codes, vec![None, None, Some(409), None, None]);
        assert!(plan.decide(&patch("ex2")).error.is_none(), "other objects are not hit");
    }

    #[test]
    fn random_faults_repeat_for_the_same_seed() {
        let run = |seed| {
            let mut plan = FaultPlan::default();
            plan.add_random(RandomFaults::new(
                seed,
                0.3,
                vec![Fault::service_unavailable(), Fault::internal_error()],
            ));
            (0..200).map(|_| plan.decide(&patch("x")).error.map(|e| e.code())).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let hits = run(7).iter().filter(|c| c.is_some()).count();
        assert!((30..90).contains(&hits), "about 30% of 200 requests fail, got {hits}");
    }

    #[test]
    fn a_rule_for_one_actor_spares_the_others() {
        let mut plan = FaultPlan::default();
        plan.add(FaultRule::new(Fault::service_unavailable()).actor("kopf"));
        plan.add_random(RandomFaults::new(1, 1.0, vec![Fault::internal_error()]).actor("kopf"));
        let mut test = patch("x");
        test.actor = "test".into();
        assert_eq!(plan.decide(&test), Decision::default());
        let mut kopf = patch("x");
        kopf.actor = "kopf".into();
        assert_eq!(plan.decide(&kopf).error.map(|e| e.code()), Some(503));
    }

    #[test]
    fn watch_faults_only_hit_watches() {
        let mut plan = FaultPlan::default();
        plan.add(FaultRule::new(Fault::watch_gone()));
        assert!(plan.decide(&patch("x")).watch.is_none());
        let watch = Request::new(Verb::Watch, "kopf.dev", "v1", "kopfexamples");
        assert_eq!(plan.decide(&watch).watch, Some(Fault::WatchGone));
    }
}
