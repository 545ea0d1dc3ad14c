//! The journal: every operation the core ran (verb, resource, namespace/name, result code,
//! resourceVersion, virtual time, who asked), every change stored (one revision per
//! resourceVersion), every event delivered to each watch, and — when the server is reached over TCP
//! (`crate::http`) — the wire details of every HTTP request, in order. Revisions and deliveries
//! together let a test check that every watch was ordered and gap-free.
//! Tests assert on it instead of scripting request order (reference/kubernetes-apiserver.md §6 P2.16).
//! Records serialize to JSON (`serde::Serialize`), one object per record, tagged by `kind`.
//!
//! The journal is bounded: when it holds `capacity` records the oldest are dropped and counted, so a
//! long-running server does not grow without end.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use crate::request::Verb;

/// One operation of the core.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Sequence number of the record in the journal (across all record kinds).
    pub seq: u64,
    /// Virtual time since the cluster started.
    #[serde(serialize_with = "seconds")]
    pub at: Duration,
    /// Who asked: a client's field manager or user agent, or an internal controller
    /// (`garbage-collector`, `namespace-controller`, `apiextensions-controller`).
    pub actor: String,
    /// The verb.
    #[serde(serialize_with = "verb")]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Sequence number of the record in the journal.
    pub seq: u64,
    /// Virtual time since the cluster started.
    #[serde(serialize_with = "seconds")]
    pub at: Duration,
    /// The watch's id, unique within the cluster.
    pub watch: u64,
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`, `ERROR`, or `OPENED`/`CLOSED` for the watch itself.
    pub event: &'static str,
    /// The watched resource: `plural` for core resources, `plural.group` otherwise.
    #[serde(serialize_with = "shared_str")]
    pub resource: std::sync::Arc<str>,
    /// The object's (or bookmark's) resourceVersion; for `OPENED`, the resourceVersion the watch
    /// starts after; for `CLOSED`, the last one it examined.
    pub resource_version: u64,
    /// The object's namespace, empty for cluster-scoped objects and bookmarks; for `OPENED` and
    /// `CLOSED`, the namespace watched (empty: all namespaces).
    #[serde(serialize_with = "shared_str")]
    pub namespace: std::sync::Arc<str>,
    /// The object's name, empty for bookmarks.
    #[serde(serialize_with = "shared_str")]
    pub name: std::sync::Arc<str>,
}

/// One change stored: an object created, changed or removed at a new resourceVersion, as every
/// watch of its resource must see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    /// Sequence number of the record in the journal.
    pub seq: u64,
    /// Virtual time since the cluster started.
    #[serde(serialize_with = "seconds")]
    pub at: Duration,
    /// `plural` for core resources, `plural.group` otherwise.
    pub resource: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub event: &'static str,
    /// The resourceVersion of the change (unique across the cluster, increasing).
    pub resource_version: u64,
    /// The object's namespace, empty for cluster-scoped objects.
    #[serde(serialize_with = "shared_str")]
    pub namespace: std::sync::Arc<str>,
    /// The object's name.
    #[serde(serialize_with = "shared_str")]
    pub name: std::sync::Arc<str>,
}

/// One HTTP request served over TCP, as the wire saw it. Recorded by the HTTP front when the
/// response head is ready (for a watch: when the stream opens), after the core's own records of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRequest {
    /// Sequence number of the record in the journal.
    pub seq: u64,
    /// Virtual time since the cluster started.
    #[serde(serialize_with = "seconds")]
    pub at: Duration,
    /// The method, e.g. `GET`.
    pub method: String,
    /// The path and query, as sent.
    pub path: String,
    /// The status code answered.
    pub code: u16,
    /// Wall time from the request head to the response head.
    #[serde(serialize_with = "seconds")]
    pub latency: Duration,
    /// The client's address.
    pub peer: SocketAddr,
}

/// A journal record. Serialized with a `kind` tag: `operation`, `revision`, `delivery` or `http`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
#[non_exhaustive]
pub enum Record {
    /// An operation.
    Operation(Operation),
    /// A change stored.
    Revision(Revision),
    /// A watch delivery.
    Delivery(Delivery),
    /// An HTTP request served over TCP.
    Http(HttpRequest),
}

impl Record {
    /// The record's sequence number in the journal.
    pub fn seq(&self) -> u64 {
        match self {
            Self::Operation(r) => r.seq,
            Self::Revision(r) => r.seq,
            Self::Delivery(r) => r.seq,
            Self::Http(r) => r.seq,
        }
    }
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn verb<S: serde::Serializer>(v: &Verb, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.as_str())
}

fn shared_str<S: serde::Serializer>(v: &std::sync::Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
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

    pub(crate) fn revision(&mut self, mut revision: Revision) {
        if self.enabled {
            revision.seq = self.seq();
            self.push(Record::Revision(revision));
        }
    }

    pub(crate) fn delivery(&mut self, mut delivery: Delivery) {
        if self.enabled {
            delivery.seq = self.seq();
            self.push(Record::Delivery(delivery));
        }
    }

    pub(crate) fn http(&mut self, mut request: HttpRequest) {
        if self.enabled {
            request.seq = self.seq();
            self.push(Record::Http(request));
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
            _ => None,
        })
    }

    /// The revisions (changes stored) kept, oldest first.
    pub fn revisions(&self) -> impl Iterator<Item = &Revision> {
        self.records.iter().filter_map(|r| match r {
            Record::Revision(r) => Some(r),
            _ => None,
        })
    }

    /// The deliveries kept, oldest first.
    pub fn deliveries(&self) -> impl Iterator<Item = &Delivery> {
        self.records.iter().filter_map(|r| match r {
            Record::Delivery(d) => Some(d),
            _ => None,
        })
    }

    /// The HTTP requests kept (served over TCP), oldest first.
    pub fn http_requests(&self) -> impl Iterator<Item = &HttpRequest> {
        self.records.iter().filter_map(|r| match r {
            Record::Http(h) => Some(h),
            _ => None,
        })
    }

    /// The sequence number of the latest record (0 before any): later records have higher ones.
    pub fn last_seq(&self) -> u64 {
        self.next_seq
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_serialize_as_json_objects_tagged_by_kind_with_times_in_seconds() {
        let mut journal = Journal::new(10);
        journal.http(HttpRequest {
            seq: 0,
            at: Duration::from_millis(1500),
            method: "GET".into(),
            path: "/api/v1/namespaces/default/configmaps?limit=1".into(),
            code: 200,
            latency: Duration::from_micros(250),
            peer: "127.0.0.1:4321".parse().unwrap(),
        });
        journal.delivery(Delivery {
            seq: 0,
            at: Duration::ZERO,
            watch: 3,
            event: "ADDED",
            resource: "configmaps".into(),
            resource_version: 7,
            namespace: "default".into(),
            name: "a".into(),
        });
        let lines: Vec<serde_json::Value> =
            journal.records().map(|r| serde_json::to_value(r).unwrap()).collect();
        assert_eq!(
            lines[0],
            serde_json::json!({
                "kind": "http", "seq": 1, "at": 1.5, "method": "GET",
                "path": "/api/v1/namespaces/default/configmaps?limit=1", "code": 200,
                "latency": 0.00025, "peer": "127.0.0.1:4321",
            })
        );
        assert_eq!((lines[1]["kind"].as_str(), lines[1]["name"].as_str()), (Some("delivery"), Some("a")));
        assert_eq!(journal.http_requests().count(), 1);
        assert_eq!(journal.operations().count(), 0);
    }
}
