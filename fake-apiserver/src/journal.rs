//! The journal: every operation the core ran (verb, resource, namespace/name, result code,
//! resourceVersion, virtual time, who asked) and every event delivered to each watch, in order.
//! Tests assert on it instead of scripting request order (reference/kubernetes-apiserver.md §6 P2.16).
//!
//! The journal is bounded: when it holds `capacity` records the oldest are dropped and counted, so a
//! long-running server does not grow without end.

use std::collections::VecDeque;
use std::time::Duration;

use crate::request::Verb;

/// One operation of the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Sequence number of the record in the journal (across all record kinds).
    pub seq: u64,
    /// Virtual time since the cluster started.
    pub at: Duration,
    /// Who asked: a client's field manager or user agent, or an internal controller
    /// (`garbage-collector`, `namespace-controller`, `apiextensions-controller`).
    pub actor: String,
    /// The verb.
    pub verb: Verb,
    /// `plural` for core resources, `plural.group` otherwise.
    pub resource: String,
    /// The subresource, if any.
    pub subresource: Option<String>,
    /// The namespace, if any.
    pub namespace: Option<String>,
    /// The name, if any.
    pub name: Option<String>,
    /// The HTTP status code of the outcome.
    pub code: u16,
    /// The resourceVersion of the object (or list) returned, if any.
    pub resource_version: Option<u64>,
    /// The injected fault that decided the outcome, if any.
    pub fault: Option<String>,
}

/// One event delivered to one watch (or the watch opening or closing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Sequence number of the record in the journal.
    pub seq: u64,
    /// Virtual time since the cluster started.
    pub at: Duration,
    /// The watch's id, unique within the cluster.
    pub watch: u64,
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`, `ERROR`, or `OPENED`/`CLOSED` for the watch itself.
    pub event: &'static str,
    /// The object's (or bookmark's) resourceVersion.
    pub resource_version: u64,
    /// The object's namespace, empty for cluster-scoped objects and bookmarks.
    pub namespace: std::sync::Arc<str>,
    /// The object's name, empty for bookmarks.
    pub name: std::sync::Arc<str>,
}

/// A journal record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// An operation.
    Operation(Operation),
    /// A watch delivery.
    Delivery(Delivery),
}

/// The bounded journal of a cluster.
#[derive(Debug)]
pub struct Journal {
    records: VecDeque<Record>,
    capacity: usize,
    next_seq: u64,
    dropped: u64,
    enabled: bool,
}

impl Journal {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { records: VecDeque::new(), capacity, next_seq: 0, dropped: 0, enabled: capacity > 0 }
    }

    fn push(&mut self, record: Record) {
        if self.records.len() >= self.capacity {
            self.records.pop_front();
            self.dropped += 1;
        }
        self.records.push_back(record);
    }

    pub(crate) fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    pub(crate) fn operation(&mut self, mut op: Operation) {
        if self.enabled {
            op.seq = self.seq();
            self.push(Record::Operation(op));
        }
    }

    pub(crate) fn delivery(&mut self, mut delivery: Delivery) {
        if self.enabled {
            delivery.seq = self.seq();
            self.push(Record::Delivery(delivery));
        }
    }

    /// All records kept, oldest first.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.records.iter()
    }

    /// The operations kept, oldest first.
    pub fn operations(&self) -> impl Iterator<Item = &Operation> {
        self.records.iter().filter_map(|r| match r {
            Record::Operation(op) => Some(op),
            Record::Delivery(_) => None,
        })
    }

    /// The deliveries kept, oldest first.
    pub fn deliveries(&self) -> impl Iterator<Item = &Delivery> {
        self.records.iter().filter_map(|r| match r {
            Record::Delivery(d) => Some(d),
            Record::Operation(_) => None,
        })
    }

    /// How many records were dropped because the journal was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Forgets every record kept so far.
    pub fn clear(&mut self) {
        self.records.clear();
    }
}
