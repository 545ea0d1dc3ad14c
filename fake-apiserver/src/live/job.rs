//! The Job controller: runs Pods until `completions` of them succeed (or, without completions, one
//! does — a work queue), at most `parallelism` at a time, `Indexed` mode giving each Pod its
//! completion index; replaces failed Pods after a back-off (10 s doubling, at most 6 min) until
//! `backoffLimit` failures (or container restarts, for `OnFailure`) fail the Job; fails it at
//! `activeDeadlineSeconds`; honours `suspend`; and deletes a finished Job after
//! `ttlSecondsAfterFinished` (the TTL-after-finished controller).
//!
//! Pods are tracked with the `batch.kubernetes.io/job-tracking` finalizer, as the real controller
//! does: a finished Pod is first recorded in `status.uncountedTerminatedPods`, then released, then
//! counted in `succeeded`/`failed`, so no Pod is counted twice or lost. The terminal conditions
//! come after the interim ones (`SuccessCriteriaMet` then `Complete`, `FailureTarget` then
//! `Failed`) once no Pod of the Job is left running, with `completionTime` for a completed Job.
//! Pods carry the `batch.kubernetes.io/controller-uid` and `job-name` labels; a Job without a
//! selector is matched by its uid label (the API server would have defaulted one).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::manager::{Cx, Reconciler};
use super::templates::{condition, pod_ready, pod_terminal, set_condition};
use super::world::{Kind, ObjKey, Object, World};

/// The finalizer that keeps a Job's Pods until the Job has counted them.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
const UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
const NAME_LABEL: &str = "batch.kubernetes.io/job-name";
const INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The first delay before a failed Pod is replaced, doubling with each failure.
pub(crate) const POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
/// The longest delay before a failed Pod is replaced.
pub(crate) const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(360);

/// Failures since the last success, for the replacement back-off.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// The Job controller (with the TTL-after-finished controller).
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    failures: HashMap<String, Failures>,
}

fn finished(job: &Object) -> Option<&'static str> {
    ["Complete", "Failed"]
        .into_iter()
        .find(|kind| condition(job.status(), kind).is_some_and(|c| c["status"] == "True"))
}

fn index_of(pod: &Object) -> Option<i64> {
    pod.annotation(INDEX).and_then(|i| i.parse().ok())
}

/// Whether a Pod counts as failed: finished in Failed, or deleted before it succeeded.
fn failed(pod: &Object) -> bool {
    pod.status()["phase"] == "Failed" || (pod.deleting() && pod.status()["phase"] != "Succeeded")
}

/// Whether a Pod is done for the Job's bookkeeping (finished, or deleted and so lost).
fn done(pod: &Object) -> bool {
    pod_terminal(pod) || pod.deleting()
}

/// `1,3-5` for the set {1, 3, 4, 5}.
fn compress(indexes: &BTreeSet<i64>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = indexes.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end { start.to_string() } else { format!("{start}-{end}") });
    }
    parts.join(",")
}

fn expand(text: &str) -> BTreeSet<i64> {
    let mut set = BTreeSet::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i64>(), b.parse::<i64>()) {
                    set.extend(a..=b);
                }
            }
            None => set.extend(part.parse::<i64>().ok()),
        }
    }
    set
}

impl Reconciler for Jobs {
    fn name(&self) -> &'static str {
        "job-controller"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Job, Kind::Pod]
    }

    fn on_change(&mut self, _: &World, kind: Kind, object: &Object, deleted: bool, out: &mut Vec<ObjKey>) {
        match kind {
            Kind::Job if deleted => {
                self.failures.remove(object.uid());
            }
            Kind::Job => out.push(object.key()),
            _ => {
                if let Some(owner) = object.controller().filter(|o| o["kind"] == "Job") {
                    out.push((
                        object.namespace().to_owned(),
                        owner["name"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }
        }
    }

    fn reconcile(&mut self, cx: &mut Cx<'_>, key: &ObjKey) -> Option<Instant> {
        let job = cx.world.get(Kind::Job, &key.0, &key.1)?.clone();
        let pods: Vec<Arc<Object>> = cx.world.owned(Kind::Pod, job.uid()).cloned().collect();
        let spec = job.spec();
        let mut status = job.status().clone();
        if !status.is_object() {
            status = json!({});
        }
        let now = cx.time();

        // 1. Finished Pods still carrying the finalizer are recorded as uncounted first …
        let uncounted = |status: &Value, which: &str| -> BTreeSet<String> {
            status["uncountedTerminatedPods"][which]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|u| u.as_str().map(str::to_owned))
                .collect()
        };
        let (mut uncounted_ok, mut uncounted_failed) =
            (uncounted(&status, "succeeded"), uncounted(&status, "failed"));
        let tracked = |p: &&Arc<Object>| {
            p.meta()["finalizers"].as_array().is_some_and(|f| f.iter().any(|x| x == TRACKING_FINALIZER))
        };
        let newly: Vec<&Arc<Object>> = pods
            .iter()
            .filter(tracked)
            .filter(|p| done(p))
            .filter(|p| !uncounted_ok.contains(p.uid()) && !uncounted_failed.contains(p.uid()))
            .collect();
        if !newly.is_empty() {
            for p in newly {
                if failed(p) { &mut uncounted_failed } else { &mut uncounted_ok }.insert(p.uid().to_owned());
            }
            status["uncountedTerminatedPods"] =
                json!({"succeeded": uncounted_ok, "failed": uncounted_failed});
            cx.update_status(Kind::Job, &job, status);
            cx.again = true;
            return None;
        }
        // … then released …
        let release: Vec<&Arc<Object>> = pods
            .iter()
            .filter(tracked)
            .filter(|p| uncounted_ok.contains(p.uid()) || uncounted_failed.contains(p.uid()))
            .collect();
        if !release.is_empty() {
            for p in release {
                let finalizers: Vec<&Value> = p.meta()["finalizers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|f| *f != TRACKING_FINALIZER)
                    .collect();
                cx.patch(Kind::Pod, p, json!({"metadata": {"finalizers": if finalizers.is_empty() { Value::Null } else { json!(finalizers) }}}));
            }
            cx.again = true;
            return None;
        }
        // … then counted.
        if !uncounted_ok.is_empty() || !uncounted_failed.is_empty() {
            let add = |status: &mut Value, field: &str, n: usize| {
                status[field] = json!(status[field].as_i64().unwrap_or(0) + n as i64);
            };
            add(&mut status, "succeeded", uncounted_ok.len());
            add(&mut status, "failed", uncounted_failed.len());
            if spec["completionMode"] == "Indexed" {
                let mut completed = expand(status["completedIndexes"].as_str().unwrap_or_default());
                for p in pods.iter().filter(|p| uncounted_ok.contains(p.uid())) {
                    completed.extend(index_of(p));
                }
                status["completedIndexes"] = json!(compress(&completed));
            }
            let entry =
                self.failures.entry(job.uid().to_owned()).or_insert(Failures { count: 0, last: cx.now });
            if !uncounted_ok.is_empty() {
                entry.count = 0;
            }
            if !uncounted_failed.is_empty() {
                entry.count += uncounted_failed.len() as u32;
                entry.last = cx.now;
            }
            status["uncountedTerminatedPods"] = json!({});
            cx.update_status(Kind::Job, &job, status);
            cx.again = true;
            return None;
        }

        let active: Vec<&Arc<Object>> = pods.iter().filter(|p| !done(p)).collect();
        let terminating = pods.iter().filter(|p| p.deleting() && !pod_terminal(p)).count();
        let succeeded = status["succeeded"].as_i64().unwrap_or(0);
        let failed_count = status["failed"].as_i64().unwrap_or(0);
        let mut conditions = status["conditions"].as_array().cloned().unwrap_or_default();

        if let Some(kind) = finished(&job) {
            // A finished Job: deleted after its TTL.
            let ttl = spec["ttlSecondsAfterFinished"].as_i64()?;
            let since = if kind == "Complete" { status["completionTime"].as_str() } else { None }
                .or_else(|| condition(&status, kind)?["lastTransitionTime"].as_str())
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())?;
            let at = since + jiff::SignedDuration::from_secs(ttl);
            if at <= cx.clock.now() {
                if !job.deleting() {
                    cx.delete_propagating(Kind::Job, &job, "Background");
                }
                return None;
            }
            return Some(cx.instant_at(at));
        }
        if job.deleting() {
            return None;
        }
        if status["startTime"].is_null() && spec["suspend"].as_bool() != Some(true) {
            status["startTime"] = json!(now);
        }
        let parallelism = spec["parallelism"].as_i64().unwrap_or(1).max(0);
        let completions = spec["completions"].as_i64();
        let indexed = spec["completionMode"] == "Indexed";
        let backoff_limit = spec["backoffLimit"].as_i64().unwrap_or(6);

        // Failure: too many failed Pods or restarts, or the deadline.
        let failure_target = condition(&status, "FailureTarget").is_some_and(|c| c["status"] == "True");
        let mut failure: Option<(&str, &str)> = None;
        if !failure_target {
            let restarts: i64 = active
                .iter()
                .flat_map(|p| p.status()["containerStatuses"].as_array().into_iter().flatten())
                .map(|c| c["restartCount"].as_i64().unwrap_or(0))
                .sum();
            let on_failure = spec["template"]["spec"]["restartPolicy"] == "OnFailure";
            let past_restarts =
                on_failure && (if backoff_limit == 0 { restarts > 0 } else { restarts >= backoff_limit });
            if failed_count > backoff_limit || past_restarts {
                failure = Some(("BackoffLimitExceeded", "Job has reached the specified backoff limit"));
            } else if let Some(deadline) = spec["activeDeadlineSeconds"].as_i64()
                && let Some(start) =
                    status["startTime"].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok())
                && start + jiff::SignedDuration::from_secs(deadline) <= cx.clock.now()
            {
                failure = Some(("DeadlineExceeded", "Job was active longer than specified deadline"));
            }
        }
        if let Some((reason, message)) = failure {
            set_condition(
                &mut conditions,
                "FailureTarget",
                "True",
                reason,
                message,
                &now,
                &["lastProbeTime"],
            );
        }
        let failing = condition(&json!({"conditions": conditions}), "FailureTarget").cloned();
        // Success: enough completions (or one, for a work queue).
        let complete_indexes = expand(status["completedIndexes"].as_str().unwrap_or_default());
        let success = failing.is_none()
            && match (completions, indexed) {
                (Some(n), true) => (0..n).all(|i| complete_indexes.contains(&i)),
                (Some(n), false) => succeeded >= n,
                (None, _) => succeeded > 0 && active.is_empty(),
            };
        if success && condition(&status, "SuccessCriteriaMet").is_none() {
            set_condition(
                &mut conditions,
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                &now,
                &["lastProbeTime"],
            );
        }
        let ending = failing.is_some() || success;
        let suspended = spec["suspend"].as_bool() == Some(true);
        if ending || suspended {
            for p in &active {
                cx.delete(Kind::Pod, p, None);
            }
        }
        let mut next = None;
        if ending {
            if active.is_empty() && terminating == 0 {
                if let Some(f) = &failing {
                    let (reason, message) =
                        (f["reason"].as_str().unwrap_or_default(), f["message"].as_str().unwrap_or_default());
                    set_condition(
                        &mut conditions,
                        "Failed",
                        "True",
                        reason,
                        message,
                        &now,
                        &["lastProbeTime"],
                    );
                } else {
                    set_condition(
                        &mut conditions,
                        "Complete",
                        "True",
                        "CompletionsReached",
                        "Reached expected number of succeeded pods",
                        &now,
                        &["lastProbeTime"],
                    );
                    status["completionTime"] = json!(now);
                }
                if let Some(ttl) = spec["ttlSecondsAfterFinished"].as_i64() {
                    next = Some(cx.now + Duration::from_secs(ttl.max(0) as u64));
                }
            }
        } else if suspended {
            set_condition(
                &mut conditions,
                "Suspended",
                "True",
                "JobSuspended",
                "Job suspended",
                &now,
                &["lastProbeTime"],
            );
        } else {
            if condition(&status, "Suspended").is_some_and(|c| c["status"] == "True") {
                set_condition(
                    &mut conditions,
                    "Suspended",
                    "False",
                    "JobResumed",
                    "Job resumed",
                    &now,
                    &["lastProbeTime"],
                );
                status["startTime"] = json!(now);
            }
            // How many Pods should run now.
            let want = match (completions, indexed) {
                (Some(n), false) => parallelism.min(n - succeeded).max(0),
                (Some(n), true) => parallelism.min(n - complete_indexes.len() as i64).max(0),
                (None, _) if succeeded > 0 => 0,
                (None, _) => parallelism,
            };
            let missing = (want - active.len() as i64).max(0);
            if missing > 0 {
                let backoff = self.failures.get(job.uid()).filter(|f| f.count > 0).map(|f| {
                    let delay = POD_FAILURE_BACKOFF
                        .saturating_mul(1 << (f.count - 1).min(16))
                        .min(MAX_POD_FAILURE_BACKOFF);
                    f.last + delay
                });
                match backoff {
                    Some(at) if at > cx.now => next = Some(at),
                    _ => {
                        let busy: BTreeSet<i64> = active.iter().filter_map(|p| index_of(p)).collect();
                        let mut free = (0..completions.unwrap_or(0))
                            .filter(|i| !complete_indexes.contains(i) && !busy.contains(i));
                        for _ in 0..missing {
                            let index = if indexed { free.next() } else { None };
                            if indexed && index.is_none() {
                                break;
                            }
                            cx.create(Kind::Pod, job.namespace(), job_pod(&job, index));
                        }
                    }
                }
            }
            if let Some(deadline) = spec["activeDeadlineSeconds"].as_i64()
                && let Some(start) =
                    status["startTime"].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok())
            {
                let at = cx.instant_at(start + jiff::SignedDuration::from_secs(deadline));
                next = Some(next.map_or(at, |n: Instant| n.min(at)));
            }
        }
        status["active"] = json!(active.len());
        status["ready"] = json!(active.iter().filter(|p| pod_ready(p)).count());
        status["terminating"] = json!(terminating);
        if status["succeeded"].is_null() && succeeded == 0 && !status["failed"].is_null() {
            status["succeeded"] = json!(0);
        }
        status["uncountedTerminatedPods"] = json!({});
        if conditions.is_empty() {
            if let Some(obj) = status.as_object_mut() {
                obj.remove("conditions");
            }
        } else {
            status["conditions"] = Value::Array(conditions);
        }
        cx.update_status(Kind::Job, &job, status);
        next
    }
}

/// A Pod of a Job (with its completion index in Indexed mode).
fn job_pod(job: &Object, index: Option<i64>) -> Value {
    let template = &job.spec()["template"];
    let mut pod = super::templates::pod_from_template(template, job.namespace(), Kind::Job, job);
    let meta = &mut pod["metadata"];
    for (k, v) in [
        (UID_LABEL, job.uid()),
        (NAME_LABEL, job.name()),
        ("controller-uid", job.uid()),
        ("job-name", job.name()),
    ] {
        meta["labels"][k] = json!(v);
    }
    let mut finalizers = meta["finalizers"].as_array().cloned().unwrap_or_default();
    finalizers.push(json!(TRACKING_FINALIZER));
    meta["finalizers"] = json!(finalizers);
    if let Some(i) = index {
        meta["generateName"] = json!(format!("{}-{i}-", job.name()));
        meta["annotations"][INDEX] = json!(i.to_string());
        meta["labels"][INDEX] = json!(i.to_string());
        pod["spec"]["hostname"] = json!(format!("{}-{i}", job.name()));
    }
    pod
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_indexes_compress_to_ranges_and_back() {
        let set: BTreeSet<i64> = [0, 1, 2, 4, 6, 7].into_iter().collect();
        assert_eq!(compress(&set), "0-2,4,6-7");
        assert_eq!(expand("0-2,4,6-7"), set);
        assert!(expand("").is_empty());
    }
}
