//! The CronJob controller (v2): creates a Job per scheduled time on the cluster's clock — named
//! `<cronjob>-<scheduled minute since the epoch>`, 100 ms after the time as the real controller
//! requeues — honouring `timeZone`, `suspend`, `startingDeadlineSeconds` (a run missed by more is
//! skipped) and `concurrencyPolicy` (Allow, Forbid: skip while one runs, Replace: delete the running
//! one first); keeps `status.active`, `lastScheduleTime` and `lastSuccessfulTime`; and deletes
//! finished Jobs beyond `successfulJobsHistoryLimit` (3) and `failedJobsHistoryLimit` (1).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::cron::Schedule;
use super::manager::{Cx, Reconciler};
use super::templates::{condition, owner_ref};
use super::world::{Kind, ObjKey, Object, World};

/// How long after its scheduled time a run is started (`nextScheduleDelta`).
pub(crate) const SCHEDULE_DELTA: Duration = Duration::from_millis(100);
const SCHEDULED_AT: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// The CronJob controller.
#[derive(Debug, Default)]
pub(crate) struct CronJobs;

fn job_finished(job: &Object) -> Option<&'static str> {
    ["Complete", "Failed"]
        .into_iter()
        .find(|kind| condition(job.status(), kind).is_some_and(|c| c["status"] == "True"))
}

fn parse_time(v: &Value) -> Option<Timestamp> {
    v.as_str()?.parse().ok()
}

impl Reconciler for CronJobs {
    fn name(&self) -> &'static str {
        "cronjob-controller"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::CronJob, Kind::Job]
    }

    fn on_change(&mut self, _: &World, kind: Kind, object: &Object, _deleted: bool, out: &mut Vec<ObjKey>) {
        match kind {
            Kind::CronJob => out.push(object.key()),
            _ => {
                if let Some(owner) = object.controller().filter(|o| o["kind"] == "CronJob") {
                    out.push((
                        object.namespace().to_owned(),
                        owner["name"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }
        }
    }

    fn reconcile(&mut self, cx: &mut Cx<'_>, key: &ObjKey) -> Option<Instant> {
        let cj = cx.world.get(Kind::CronJob, &key.0, &key.1)?.clone();
        if cj.deleting() {
            return None;
        }
        let spec = cj.spec();
        let mut jobs: Vec<Arc<Object>> = cx.world.owned(Kind::Job, cj.uid()).cloned().collect();
        jobs.sort_by(|a, b| (a.created(), a.name()).cmp(&(b.created(), b.name())));
        let mut status = cj.status().clone();
        if !status.is_object() {
            status = json!({});
        }

        // The active list follows the Jobs: finished or gone ones leave it, running ones join it.
        let mut active: Vec<Value> = Vec::new();
        let mut last_success = parse_time(&status["lastSuccessfulTime"]);
        for job in &jobs {
            match job_finished(job) {
                None if !job.deleting() => active.push(json!({
                    "apiVersion": "batch/v1", "kind": "Job", "name": job.name(), "namespace": job.namespace(),
                    "uid": job.uid(), "resourceVersion": job.rv.to_string(),
                })),
                Some("Complete") => {
                    if let Some(t) = parse_time(&job.status()["completionTime"]) {
                        last_success = Some(last_success.map_or(t, |l| l.max(t)));
                    }
                }
                _ => {}
            }
        }
        let was: Vec<&Value> =
            status["active"].as_array().map(|a| a.iter().map(|r| &r["uid"]).collect()).unwrap_or_default();
        let now_active: Vec<&Value> = active.iter().map(|r| &r["uid"]).collect();
        if was != now_active {
            status["active"] = if active.is_empty() { Value::Null } else { Value::Array(active.clone()) };
            if status["active"].is_null()
                && let Some(obj) = status.as_object_mut()
            {
                obj.remove("active");
            }
        }
        if let Some(t) = last_success {
            status["lastSuccessfulTime"] = json!(crate::clock::rfc3339_seconds(t));
        }
        // History limits: the oldest finished Jobs beyond them go.
        for (kind, limit) in [
            ("Complete", spec["successfulJobsHistoryLimit"].as_i64().unwrap_or(3)),
            ("Failed", spec["failedJobsHistoryLimit"].as_i64().unwrap_or(1)),
        ] {
            let done: Vec<&Arc<Object>> =
                jobs.iter().filter(|j| job_finished(j) == Some(kind) && !j.deleting()).collect();
            let excess = done.len() as i64 - limit.max(0);
            for job in done.into_iter().take(excess.max(0) as usize) {
                cx.delete_propagating(Kind::Job, job, "Background");
            }
        }

        let schedule: Schedule = match spec["schedule"].as_str().unwrap_or_default().parse() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(cronjob = %cj.name(), error = %e, "unparseable schedule");
                cx.update_status(Kind::CronJob, &cj, status);
                return None;
            }
        };
        let tz = match spec["timeZone"].as_str() {
            Some(name) => match TimeZone::get(name) {
                Ok(tz) => tz,
                Err(_) => {
                    cx.update_status(Kind::CronJob, &cj, status);
                    return None;
                }
            },
            None => TimeZone::UTC,
        };
        let now = cx.clock.now();
        let created = parse_time(&cj.meta()["creationTimestamp"]).unwrap_or(now);
        let mut earliest = parse_time(&status["lastScheduleTime"]).unwrap_or(created);
        let deadline = spec["startingDeadlineSeconds"].as_i64();
        if let Some(d) = deadline {
            earliest = earliest.max(now - jiff::SignedDuration::from_secs(d));
        }
        // The most recent time that has come and not been run.
        let mut due = None;
        let mut t = schedule.next(earliest, &tz);
        while let Some(at) = t.filter(|at| *at <= now) {
            due = Some(at);
            t = schedule.next(at, &tz);
        }
        let next_at =
            schedule.next(due.unwrap_or(now).max(now), &tz).map(|n| cx.instant_at(n) + SCHEDULE_DELTA);
        let Some(at) = due else {
            cx.update_status(Kind::CronJob, &cj, status);
            return next_at;
        };
        let too_late = deadline.is_some_and(|d| at + jiff::SignedDuration::from_secs(d) < now);
        let suspended = spec["suspend"].as_bool() == Some(true);
        if suspended || too_late {
            cx.update_status(Kind::CronJob, &cj, status);
            return next_at;
        }
        match spec["concurrencyPolicy"].as_str().unwrap_or("Allow") {
            "Forbid" if !active.is_empty() => {
                cx.update_status(Kind::CronJob, &cj, status);
                return next_at;
            }
            "Replace" => {
                for job in jobs.iter().filter(|j| job_finished(j).is_none() && !j.deleting()) {
                    cx.delete_propagating(Kind::Job, job, "Background");
                }
            }
            _ => {}
        }
        let template = &spec["jobTemplate"];
        let mut meta = json!({
            "name": format!("{}-{}", cj.name(), at.as_second() / 60),
            "namespace": cj.namespace(),
            "ownerReferences": [owner_ref(Kind::CronJob, &cj)],
        });
        for field in ["labels", "annotations"] {
            if !template["metadata"][field].is_null() {
                meta[field] = template["metadata"][field].clone();
            }
        }
        meta["annotations"][SCHEDULED_AT] =
            json!(at.to_zoned(tz).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string().replace("+00:00", "Z"));
        cx.create(Kind::Job, cj.namespace(), json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": template["spec"].clone()}));
        status["lastScheduleTime"] = json!(crate::clock::rfc3339_seconds(at));
        cx.update_status(Kind::CronJob, &cj, status);
        cx.again = true; // to list the new Job as active
        next_at
    }
}
