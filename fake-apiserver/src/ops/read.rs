//! Reads: get, list (selectors, resourceVersion semantics, pagination from one consistent
//! snapshot) and opening watches.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::cluster::{Shared, State};
use crate::error::{ApiError, Result};
use crate::faults::Fault;
use crate::request::{ListResult, Params, Request, Response};
use crate::resources::{ResourceInfo, StorageKey};
use crate::selectors::fields::FieldSelector;
use crate::selectors::labels::LabelSelector;
use crate::selectors::shards::ShardSelector;
use crate::store::Store;
use crate::store::objects::{ObjectKey, StoredObject};
use crate::watch::{DEFAULT_WATCH_TIMEOUT, Start, WatchEvent, WatchFilter, WatchSpec, WatchStream};

/// Where a list reads from.
#[derive(Debug, Clone, Copy)]
enum ReadAt {
    /// The current state.
    Current,
    /// The state at an older resourceVersion, rebuilt from the history.
    Snapshot(u64),
}

impl State {
    pub(crate) fn get(&mut self, info: &ResourceInfo, req: &Request) -> Result<Arc<StoredObject>> {
        let key = object_key(req);
        self.current(info.storage_key(), &key)
            .ok_or_else(|| ApiError::not_found(&info.group_resource(), &key.1))
    }

    pub(crate) fn list(&mut self, info: &Arc<ResourceInfo>, req: &Request) -> Result<ListResult> {
        let p = &req.params;
        let labels = parse_labels(p)?;
        let fields = parse_fields(info, p)?;
        let shards = self.parse_shards(p)?;
        let (at, start_after) = self.list_position(p)?;
        let rv = match at {
            ReadAt::Current => self.rv,
            ReadAt::Snapshot(rv) => rv,
        };
        let filter = |o: &StoredObject| {
            req.namespace.as_ref().is_none_or(|ns| ns == o.namespace())
                && labels.matches(&o.labels)
                && fields.matches(|path| o.field(path))
                && shards.as_ref().is_none_or(|s| s.matches(&o.uid, o.namespace()))
        };
        let empty = Store::default();
        let current = self.stores.get(&**info.storage_key()).unwrap_or(&empty);
        let snapshot = match at {
            ReadAt::Current => Cow::Borrowed(current),
            ReadAt::Snapshot(rv) => Cow::Owned(self.snapshot(info.storage_key(), current, rv)),
        };
        let candidates: Box<dyn Iterator<Item = &Arc<StoredObject>>> = match &req.namespace {
            Some(ns) => Box::new(snapshot.in_namespace(ns)),
            None => Box::new(snapshot.iter()),
        };
        let mut matching = candidates
            .filter(|o| {
                start_after
                    .as_ref()
                    .is_none_or(|(ns, name)| (o.namespace(), o.name()) > (ns.as_str(), name.as_str()))
            })
            .filter(|o| filter(o));
        let limit = p.limit.filter(|l| *l > 0).map(|l| l as usize);
        let items: Vec<Arc<StoredObject>> = match limit {
            Some(n) => matching.by_ref().take(n).cloned().collect(),
            None => matching.by_ref().cloned().collect(),
        };
        let remaining = matching.count() as u64;
        let (continue_token, remaining_item_count) = match (remaining, items.last()) {
            (0, _) | (_, None) => (None, None),
            (n, Some(last)) => {
                let token = encode_continue(rv, &(last.namespace().to_owned(), last.name().to_owned()));
                let count = (labels.is_empty() && fields.is_empty() && shards.is_none()).then_some(n);
                (Some(token), count)
            }
        };
        Ok(ListResult {
            info: info.clone(),
            items,
            resource_version: rv,
            continue_token,
            remaining_item_count,
            shard_selector: shards.map(|s| s.to_string()),
        })
    }

    /// The `shardSelector` of a list or watch, if the feature gate is on and one is given (an
    /// empty parameter is no selector, as on the real server).
    pub(crate) fn parse_shards(&self, p: &Params) -> Result<Option<ShardSelector>> {
        match p.shard_selector.as_deref() {
            Some(text) if self.sharded_list_and_watch && !text.is_empty() => ShardSelector::parse(text)
                .map(Some)
                .map_err(|e| ApiError::BadRequest(format!("invalid shard selector: {e}"))),
            _ => Ok(None),
        }
    }

    /// The resourceVersion rules of a list (and where a continued list resumes).
    fn list_position(&self, p: &Params) -> Result<(ReadAt, Option<ObjectKey>)> {
        if let Some(token) = p.continue_token.as_deref().filter(|t| !t.is_empty()) {
            if p.resource_version.as_deref().is_some_and(|rv| !rv.is_empty()) {
                return Err(ApiError::BadRequest(
                    "specifying resource version is not allowed when using continue".to_owned(),
                ));
            }
            let (rv, start) = decode_continue(token)?;
            if rv < self.history.compacted() {
                return Err(ApiError::Expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start \
                     a new list without the continue parameter, or use the continue value from the response to \
                     resume paging from the current state."
                        .to_owned(),
                ));
            }
            return Ok((self.at(rv), Some(start)));
        }
        let requested = match p.resource_version.as_deref() {
            None | Some("") => {
                if p.resource_version_match.as_deref().is_some_and(|m| !m.is_empty()) {
                    return Err(ApiError::BadRequest(
                        "resourceVersionMatch is forbidden unless resourceVersion is provided".to_owned(),
                    ));
                }
                return Ok((ReadAt::Current, None));
            }
            Some(rv) => parse_rv(rv)?,
        };
        match p.resource_version_match.as_deref() {
            Some("Exact") => {
                if requested == 0 {
                    return Err(ApiError::BadRequest(
                        "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"".to_owned(),
                    ));
                }
                if requested > self.rv {
                    return Err(too_large(requested, self.rv));
                }
                if requested < self.history.compacted() {
                    return Err(ApiError::Expired(format!(
                        "too old resource version: {requested} ({})",
                        self.history.compacted() + 1
                    )));
                }
                Ok((self.at(requested), None))
            }
            None | Some("" | "NotOlderThan") => {
                if requested > self.rv {
                    return Err(too_large(requested, self.rv));
                }
                Ok((ReadAt::Current, None))
            }
            Some(other) => Err(ApiError::BadRequest(format!(
                "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
            ))),
        }
    }

    fn at(&self, rv: u64) -> ReadAt {
        if rv >= self.rv { ReadAt::Current } else { ReadAt::Snapshot(rv) }
    }

    /// The objects of a resource as they were at `rv`: the current ones with every later change
    /// undone (the first change after `rv` of each object knows its state then).
    fn snapshot(&self, key: &StorageKey, current: &Store, rv: u64) -> Store {
        let mut objects = current.clone();
        let mut undone = BTreeMap::<(Arc<str>, Arc<str>), Option<Arc<StoredObject>>>::new();
        for change in self.history.after(rv).into_iter().flatten().filter(|c| *c.key == *key) {
            undone.entry(change.object.names()).or_insert_with(|| change.prev.clone());
        }
        for ((namespace, name), before) in undone {
            objects.remove(&namespace, &name);
            if let Some(version) = before {
                objects.insert(version);
            }
        }
        objects
    }

    pub(crate) fn watch(
        &mut self,
        shared: &Arc<Shared>,
        info: &Arc<ResourceInfo>,
        req: &Request,
        fault: Option<Fault>,
    ) -> Result<Response> {
        let p = &req.params;
        let labels = parse_labels(p)?;
        let fields = parse_fields(info, p)?;
        let shards = self.parse_shards(p)?;
        let start = match (p.send_initial_events, p.resource_version.as_deref()) {
            (Some(true), _) => {
                if !p.allow_watch_bookmarks {
                    return Err(ApiError::BadRequest(
                        "allowWatchBookmarks: Required value: sendInitialEvents requires setting allowWatchBookmarks to true"
                            .to_owned(),
                    ));
                }
                if p.resource_version_match.as_deref() != Some("NotOlderThan") {
                    return Err(ApiError::BadRequest(
                        "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
                            .to_owned(),
                    ));
                }
                Start::Initial { bookmark: true }
            }
            (Some(false), None | Some("")) => Start::From(self.rv),
            (_, None | Some("" | "0")) => Start::Initial { bookmark: false },
            (_, Some(rv)) => {
                let rv = parse_rv(rv)?;
                if rv < self.history.compacted() {
                    let error = ApiError::Expired(format!(
                        "too old resource version: {rv} ({})",
                        self.history.compacted() + 1
                    ));
                    return Ok(Response::Watch(WatchStream::single(info.clone(), WatchEvent::Error(error))));
                }
                Start::From(rv)
            }
        };
        let timeout = p.timeout_seconds.map(Duration::from_secs).unwrap_or(DEFAULT_WATCH_TIMEOUT);
        let key = info.storage_key().clone();
        let spec = WatchSpec {
            info: info.clone(),
            filter: WatchFilter { key, namespace: req.namespace.clone(), labels, fields, shards },
            start,
            timeout,
            bookmarks: p.allow_watch_bookmarks,
            fault,
        };
        Ok(Response::Watch(WatchStream::open(shared, self, spec)))
    }

    pub(crate) fn get_scale(&mut self, info: &ResourceInfo, req: &Request) -> Result<Response> {
        let object = self.get(info, req)?;
        Ok(Response::Status(scale_of(info, &object.value())))
    }
}

/// The `autoscaling/v1 Scale` view of an object.
pub(crate) fn scale_of(info: &ResourceInfo, object: &Value) -> Value {
    let Some(scale) = &info.scale else {
        return Value::Null;
    };
    let read = |path: &str| pointer(object, path).cloned().unwrap_or(Value::Null);
    let meta = &object["metadata"];
    let selector = scale.label_selector_path.as_deref().map(&read).unwrap_or(Value::Null);
    let selector = match selector {
        Value::Object(_) => crate::selectors::labels::from_label_selector_json(&selector)
            .map(|s| Value::String(s.to_string()))
            .unwrap_or(Value::Null),
        other => other,
    };
    let mut status = json!({"replicas": read(&scale.status_replicas_path).as_i64().unwrap_or(0)});
    if let Value::String(s) = selector {
        status["selector"] = Value::String(s);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": read(&scale.spec_replicas_path).as_i64().unwrap_or(0)},
        "status": status,
    })
}

/// Reads a dotted JSON path (`.spec.replicas`).
pub(crate) fn pointer<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    path.trim_start_matches('.').split('.').filter(|s| !s.is_empty()).try_fold(object, |v, seg| v.get(seg))
}

pub(crate) fn object_key(req: &Request) -> ObjectKey {
    (req.namespace.clone().unwrap_or_default(), req.name.clone().unwrap_or_default())
}

pub(crate) fn parse_labels(p: &Params) -> Result<LabelSelector> {
    LabelSelector::parse(p.label_selector.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

pub(crate) fn parse_fields(info: &ResourceInfo, p: &Params) -> Result<FieldSelector> {
    let selector = FieldSelector::parse(p.field_selector.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    for field in selector.fields() {
        let known = matches!(field, "metadata.name" | "metadata.namespace")
            || info.selectable_fields.iter().any(|f| f == field);
        if !known {
            return Err(ApiError::BadRequest(format!("field label not supported: {field}")));
        }
    }
    Ok(selector)
}

fn parse_rv(rv: &str) -> Result<u64> {
    rv.parse().map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv:?}")))
}

fn too_large(requested: u64, current: u64) -> ApiError {
    ApiError::Timeout(format!("Too large resource version: {requested}, current: {current}"))
}

fn encode_continue(rv: u64, last: &ObjectKey) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": [last.0, last.1]});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(u64, ObjectKey)> {
    let invalid = || {
        ApiError::BadRequest("continue key is not valid: incorrect encoded start resourceVersion".to_owned())
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| invalid())?;
    let rv = v["rv"].as_u64().ok_or_else(invalid)?;
    let ns = v["start"][0].as_str().ok_or_else(invalid)?;
    let name = v["start"][1].as_str().ok_or_else(invalid)?;
    Ok((rv, (ns.to_owned(), name.to_owned())))
}
