//! Handler states across cycles (Kopf's `progression`): read from the progress records, updated
//! with outcomes, written back only when changed, purged when the cause is done. Also the results'
//! delivery into `status.<id>`.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::Outcome;
use crate::persistence::{ProgressRecord, ProgressStorage};
use crate::primitives::clock::{format_micros, parse_iso};
use crate::structs::patch::Patch;

/// One handler's state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HandlerState {
    /// Used by the current cause (selected), as opposed to carried over for counting and purging.
    pub(crate) active: bool,
    pub(crate) started: Timestamp,
    pub(crate) stopped: Option<Timestamp>,
    pub(crate) delayed: Option<Timestamp>,
    pub(crate) purpose: Option<String>,
    pub(crate) retries: u32,
    pub(crate) success: bool,
    pub(crate) failure: bool,
    pub(crate) message: Option<String>,
    pub(crate) subrefs: Vec<String>,
    /// The record as read, to write only what changed.
    origin: Option<ProgressRecord>,
}

impl HandlerState {
    pub(crate) fn from_scratch(now: Timestamp, purpose: Option<&str>) -> Self {
        Self {
            active: true,
            started: now,
            stopped: None,
            delayed: None,
            purpose: purpose.map(str::to_owned),
            retries: 0,
            success: false,
            failure: false,
            message: None,
            subrefs: Vec::new(),
            origin: None,
        }
    }

    pub(crate) fn from_storage(record: ProgressRecord, now: Timestamp) -> Self {
        let parse = |v: &Option<String>| v.as_deref().and_then(parse_iso);
        Self {
            active: false,
            started: parse(&record.started).unwrap_or(now),
            stopped: parse(&record.stopped),
            delayed: parse(&record.delayed),
            purpose: record.purpose.clone().filter(|p| !p.is_empty()),
            retries: record.retries.unwrap_or(0),
            success: record.success.unwrap_or(false),
            failure: record.failure.unwrap_or(false),
            message: record.message.clone(),
            subrefs: record.subrefs.clone().unwrap_or_default(),
            origin: Some(record),
        }
    }

    pub(crate) fn for_storage(&self) -> ProgressRecord {
        let mut subrefs = self.subrefs.clone();
        subrefs.sort();
        subrefs.dedup();
        ProgressRecord {
            started: Some(format_micros(self.started)),
            stopped: self.stopped.map(format_micros),
            delayed: self.delayed.map(format_micros),
            purpose: self.purpose.clone(),
            retries: Some(self.retries),
            success: Some(self.success),
            failure: Some(self.failure),
            message: self.message.clone(),
            subrefs: (!subrefs.is_empty()).then_some(subrefs),
        }
    }

    pub(crate) fn finished(&self) -> bool {
        self.success || self.failure
    }

    /// Not finished and not sleeping.
    pub(crate) fn awakened(&self, now: Timestamp) -> bool {
        !self.finished() && self.delayed.is_none_or(|d| d <= now)
    }

    pub(crate) fn runtime(&self, now: Timestamp) -> Duration {
        Duration::try_from(now.duration_since(self.started)).unwrap_or_default()
    }

    pub(crate) fn with_outcome(&self, outcome: &Outcome, now: Timestamp) -> Self {
        let delay = outcome.delay.and_then(|d| jiff::SignedDuration::try_from(d).ok());
        Self {
            active: self.active,
            started: self.started,
            stopped: self.stopped.or(outcome.final_.then_some(now)),
            delayed: delay.and_then(|d| now.checked_add(d).ok()),
            purpose: self.purpose.clone(),
            retries: self.retries.saturating_add(1), // the count may come from any annotation
            success: outcome.final_ && outcome.error.is_none(),
            failure: outcome.final_ && outcome.error.is_some(),
            message: outcome.error.clone(),
            subrefs: self.subrefs.clone(),
            origin: self.origin.clone(),
        }
    }
}

/// The states of all of a resource's handlers found on an object, plus those the cause selects.
#[derive(Debug, Clone, Default)]
pub(crate) struct State {
    pub(crate) states: BTreeMap<String, HandlerState>,
    pub(crate) purpose: Option<String>,
}

/// Success, failure, still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) success: usize,
    pub(crate) failure: usize,
    pub(crate) running: usize,
}

impl State {
    pub(crate) fn from_storage<'a>(
        body: &Value,
        storage: &ProgressStorage,
        ids: impl Iterator<Item = &'a str>,
        now: Timestamp,
    ) -> Self {
        let states = ids
            .filter_map(|id| {
                storage.fetch(id, body).map(|record| (id.to_owned(), HandlerState::from_storage(record, now)))
            })
            .collect();
        Self { states, purpose: None }
    }

    /// Sets the purpose, re-purposing the named handlers' states.
    pub(crate) fn with_purpose<'a>(mut self, purpose: &str, handlers: impl Iterator<Item = &'a str>) -> Self {
        for id in handlers {
            if let Some(state) = self.states.get_mut(id) {
                state.purpose = Some(purpose.to_owned());
            }
        }
        self.purpose = Some(purpose.to_owned());
        self
    }

    /// Marks the selected handlers active, creating fresh states for new ones.
    pub(crate) fn with_handlers<'a>(
        mut self,
        handlers: impl Iterator<Item = &'a str>,
        now: Timestamp,
    ) -> Self {
        for id in handlers {
            match self.states.get_mut(id) {
                Some(state) => state.active = true,
                None => {
                    self.states
                        .insert(id.to_owned(), HandlerState::from_scratch(now, self.purpose.as_deref()));
                }
            }
        }
        self
    }

    pub(crate) fn with_outcome(mut self, id: &str, outcome: &Outcome, now: Timestamp) -> Self {
        if let Some(state) = self.states.get(id) {
            let updated = state.with_outcome(outcome, now);
            self.states.insert(id.to_owned(), updated);
        }
        self
    }

    /// Purposes of inactive states other than the current one, with their counts (superseded causes).
    pub(crate) fn extras(&self) -> BTreeMap<String, Counts> {
        let mut out: BTreeMap<String, Counts> = BTreeMap::new();
        for state in self.states.values() {
            if let Some(p) = &state.purpose
                && Some(p) != self.purpose.as_ref()
            {
                let c = out.entry(p.clone()).or_insert(Counts { success: 0, failure: 0, running: 0 });
                c.success += usize::from(state.success);
                c.failure += usize::from(state.failure);
                c.running += usize::from(!state.finished());
            }
        }
        out
    }

    /// Counts of the states of the current purpose.
    pub(crate) fn counts(&self) -> Counts {
        let mut c = Counts { success: 0, failure: 0, running: 0 };
        for state in self
            .states
            .values()
            .filter(|s| self.purpose.is_none() || s.purpose.is_none() || s.purpose == self.purpose)
        {
            c.success += usize::from(state.success);
            c.failure += usize::from(state.failure);
            c.running += usize::from(!state.finished());
        }
        c
    }

    /// All active handlers finished (true when there are none).
    pub(crate) fn done(&self) -> bool {
        self.states.values().filter(|s| s.active).all(HandlerState::finished)
    }

    /// Delays of the active, unfinished handlers (zero for those due now).
    pub(crate) fn delays(&self, now: Timestamp) -> Vec<Duration> {
        self.states
            .values()
            .filter(|s| s.active && !s.finished())
            .map(|s| {
                s.delayed.map_or(Duration::ZERO, |d| {
                    Duration::try_from(d.duration_since(now)).unwrap_or(Duration::ZERO)
                })
            })
            .collect()
    }

    /// Writes changed records into the patch.
    pub(crate) fn store(&self, body: &Value, patch: &Patch, storage: &ProgressStorage) {
        for (id, state) in &self.states {
            let record = state.for_storage();
            if state.origin.as_ref() != Some(&record) {
                storage.store(id, &record, body, patch);
            }
        }
    }

    /// Purges the records of the resource's handlers, of any other states read, and of sub-handlers.
    pub(crate) fn purge<'a>(
        &self,
        body: &Value,
        patch: &Patch,
        storage: &ProgressStorage,
        owned: impl Iterator<Item = &'a str>,
    ) {
        let owned: Vec<&str> = owned.collect();
        for id in &owned {
            storage.purge(id, body, patch);
        }
        for (id, state) in &self.states {
            if !owned.contains(&id.as_str()) {
                storage.purge(id, body, patch);
            }
            for sub in &state.subrefs {
                storage.purge(sub, body, patch);
            }
        }
    }
}

/// Delivers results into `status.<id>`: mappings are merged, other values replace.
pub(crate) fn deliver_result(id: &str, result: &Value, patch: &Patch) {
    patch.merge(json!({"status": {id: result}}));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_retried_state_counts_every_attempt_and_keeps_the_message() {
        let state = HandlerState::from_scratch(now(), Some("create"));
        let failed = state.with_outcome(
            &Outcome {
                final_: false,
                result: None,
                error: Some("boom".into()),
                delay: Some(Duration::from_secs(10)),
            },
            now(),
        );
        assert_eq!((failed.retries, failed.finished()), (1, false));
        assert_eq!(
            failed.for_storage().encode(),
            r#"{"started":"2026-01-01T00:00:00.000000+00:00","delayed":"2026-01-01T00:00:10.000000+00:00","purpose":"create","retries":1,"success":false,"failure":false,"message":"boom"}"#
        );
        let ok =
            failed.with_outcome(&Outcome { final_: true, result: None, error: None, delay: None }, now());
        assert_eq!(
            ok.for_storage().encode(),
            r#"{"started":"2026-01-01T00:00:00.000000+00:00","stopped":"2026-01-01T00:00:00.000000+00:00","purpose":"create","retries":2,"success":true,"failure":false}"#
        );
    }

    #[test]
    fn unchanged_records_are_not_rewritten() {
        let storage = ProgressStorage::default();
        let record = HandlerState::from_scratch(now(), Some("create")).for_storage();
        let body = json!({"metadata": {"annotations": {"kopf.zalando.org/fn": record.encode()}}});
        let state = State::from_storage(&body, &storage, ["fn"].into_iter(), now());
        let patch = Patch::default();
        state.store(&body, &patch, &storage);
        assert!(patch.is_empty());
    }
}
