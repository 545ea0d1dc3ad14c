//! Server-side printing: on `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` gets, lists and
//! watches answer a `meta.k8s.io/v1` `Table` — `columnDefinitions`, and one row per object with its
//! `cells` and its `object` (`PartialObjectMetadata` by default; the whole object with
//! `includeObject=Object`; nothing with `includeObject=None`). `kubectl get` prints these tables.
//!
//! The columns are the real server's: a custom resource's `additionalPrinterColumns` (JSONPath,
//! typed cells; `Age` when it declares none), the kube-apiserver printers of the common built-ins
//! (pods, deployments, replica sets, stateful sets, daemon sets, jobs, services, nodes, namespaces,
//! config maps, secrets, service accounts), `Name`/`Created At` for CRDs, and `Name`/`Age` for the
//! other built-ins. Ages are measured against the cluster's clock, so they follow virtual time.
//!
//! A watch sends one single-row table per event, the column definitions only in the first one, as
//! the real server does.

use bytes::Bytes;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::request::ListResult;
use crate::resources::ResourceInfo;
use crate::store::objects::StoredObject;
use crate::watch::{WatchEvent, present_version};

/// What a row carries as its `object` (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Include {
    /// No object.
    None,
    /// The object's `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

/// The options of a Table request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TableOptions {
    /// `includeObject`.
    pub(crate) include: Include,
    /// `meta.k8s.io/v1` or `meta.k8s.io/v1beta1`, as the `Accept` header asked.
    pub(crate) api_version: &'static str,
}

impl TableOptions {
    /// The options for a Table of meta version `v` (`v1`, `v1beta1`), read from the query string.
    ///
    /// # Errors
    /// 400 for an `includeObject` other than `None`, `Metadata` and `Object`.
    pub(crate) fn parse(query: Option<&str>, v: &str) -> Result<Self, ApiError> {
        let mut include = Include::Metadata;
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if key == "includeObject" {
                include = match value.as_ref() {
                    "None" => Include::None,
                    "Metadata" | "" => Include::Metadata,
                    "Object" => Include::Object,
                    other => {
                        return Err(ApiError::BadRequest(format!(
                            "Unable to convert to Table as requested: includeObject: Unsupported value: \"{other}\": supported values: \"Metadata\", \"None\", \"Object\""
                        )));
                    }
                };
            }
        }
        let api_version = if v == "v1beta1" { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" };
        Ok(Self { include, api_version })
    }
}

/// Renders objects of one resource as Tables.
#[derive(Debug)]
pub(crate) struct Printer {
    columns: Columns,
    options: TableOptions,
    /// The version the objects are presented in (`includeObject=Object`).
    api_version: String,
    now: Timestamp,
    /// Whether the next table still carries the column definitions (watches send them once).
    headers: bool,
}

impl Printer {
    /// A printer for a resource, at the cluster's current time.
    pub(crate) fn new(info: &ResourceInfo, options: TableOptions, now: Timestamp) -> Self {
        Self { columns: Columns::of(info), options, api_version: info.api_version(), now, headers: true }
    }

    /// A Table with one row, for a get (or a write answered as a Table).
    pub(crate) fn object(&self, object: &StoredObject) -> Bytes {
        let rows = vec![self.row(object)];
        let resource_version = object.resource_version().to_string();
        to_bytes(&self.table(json!({"resourceVersion": resource_version}), rows, true))
    }

    /// A Table with one row per item, for a list.
    pub(crate) fn list(&self, list: &ListResult) -> Bytes {
        let rows = list.items.iter().map(|item| self.row(item)).collect();
        let mut metadata = json!({"resourceVersion": list.resource_version.to_string()});
        if let Some(token) = &list.continue_token {
            metadata["continue"] = json!(token);
        }
        if let Some(n) = list.remaining_item_count {
            metadata["remainingItemCount"] = json!(n);
        }
        to_bytes(&self.table(metadata, rows, true))
    }

    /// One line of a watch: the event's object as a one-row Table; errors stay Status objects.
    pub(crate) fn watch_line(&mut self, event: &WatchEvent, info: &ResourceInfo) -> Bytes {
        let object = match event {
            WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
                let rows = vec![self.row(o)];
                let metadata = json!({"resourceVersion": o.resource_version().to_string()});
                Some(self.table(metadata, rows, self.headers))
            }
            WatchEvent::Bookmark { .. } => {
                // The real server converts the bookmark's (empty) object like any other.
                let bookmark = bookmark_object(event, info);
                let row = self.row_of(&bookmark, None);
                let metadata = json!({"resourceVersion": event.resource_version().to_string()});
                Some(self.table(metadata, vec![row], self.headers))
            }
            WatchEvent::Error(_) => None,
        };
        let Some(table) = object else {
            return event.to_json_line(info, |o| present_version(o, &self.api_version));
        };
        self.headers = false;
        let line = json!({"type": event.type_name(), "object": table});
        let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
        bytes.push(b'\n');
        Bytes::from(bytes)
    }

    fn table(&self, metadata: Value, rows: Vec<Value>, headers: bool) -> Value {
        let columns = if headers { self.columns.definitions() } else { Vec::new() };
        let mut table = json!({"kind": "Table", "apiVersion": self.options.api_version});
        table["metadata"] = metadata;
        table["columnDefinitions"] = Value::Array(columns);
        table["rows"] = Value::Array(rows);
        table
    }

    fn row(&self, object: &StoredObject) -> Value {
        self.row_of(&object.value(), Some(object))
    }

    fn row_of(&self, value: &Value, stored: Option<&StoredObject>) -> Value {
        let (cells, conditions) = self.columns.cells(value, self.now);
        let mut row = json!({"cells": cells});
        if !conditions.is_null() {
            row["conditions"] = conditions;
        }
        let object = match self.options.include {
            Include::None => None,
            Include::Metadata => Some(json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": self.options.api_version,
                "metadata": value["metadata"],
            })),
            Include::Object => Some(match stored {
                Some(stored) => {
                    serde_json::from_slice(&present_version(stored, &self.api_version)).unwrap_or(Value::Null)
                }
                None => value.clone(),
            }),
        };
        if let Some(object) = object {
            row["object"] = object;
        }
        row
    }
}

/// The object a bookmark event carries: kind, apiVersion and the resourceVersion (plus the
/// initial-events-end annotation when it has one).
pub(crate) fn bookmark_object(event: &WatchEvent, info: &ResourceInfo) -> Value {
    let line = event.to_json_line(info, |_| Bytes::new());
    serde_json::from_slice::<Value>(&line).map(|mut v| v["object"].take()).unwrap_or(Value::Null)
}

fn to_bytes(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// One column: its definition and how its cell is computed.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    kind: String,
    format: String,
    description: String,
    priority: i64,
}

/// The columns of a resource and how to fill them.
#[derive(Debug)]
enum Columns {
    /// A built-in printer: its columns and its row function.
    Builtin(&'static [ColumnSpec], RowFn),
    /// A custom resource: Name, then its printer columns (JSONPath, typed).
    Custom(Vec<(Column, Option<JsonPath>)>),
}

/// A built-in column: name, type, priority, description.
type ColumnSpec = (&'static str, &'static str, i64, &'static str);
/// Computes a built-in row's cells (and row conditions, or `Null`).
type RowFn = fn(&Value, Timestamp) -> (Vec<Value>, Value);

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const NAME: ColumnSpec = ("Name", "string", 0, NAME_DESCRIPTION);
const AGE: ColumnSpec = ("Age", "string", 0, AGE_DESCRIPTION);
const CONTAINERS: ColumnSpec = ("Containers", "string", 1, "Names of each container in the template.");
const IMAGES: ColumnSpec = ("Images", "string", 1, "Images referenced by each container in the template.");
const SELECTOR: ColumnSpec =
    ("Selector", "string", 1, "A label query over pods that should match the replica count.");

impl Columns {
    fn of(info: &ResourceInfo) -> Self {
        if info.is_custom() {
            return Self::custom(&info.printer_columns);
        }
        let (columns, row): (&'static [ColumnSpec], RowFn) = match (info.group.as_str(), info.plural.as_str())
        {
            ("", "pods") => (POD_COLUMNS, printers::pod),
            ("", "namespaces") => {
                (&[NAME, ("Status", "string", 0, "The status of the namespace"), AGE], printers::namespace)
            }
            ("", "configmaps") => (
                &[NAME, ("Data", "integer", 0, "Data contains the configuration data."), AGE],
                printers::config_map,
            ),
            ("", "secrets") => (
                &[
                    NAME,
                    ("Type", "string", 0, "Used to facilitate programmatic handling of secret data."),
                    ("Data", "integer", 0, "Data contains the secret data."),
                    AGE,
                ],
                printers::secret,
            ),
            ("", "serviceaccounts") => (
                &[
                    NAME,
                    (
                        "Secrets",
                        "integer",
                        0,
                        "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
                    ),
                    AGE,
                ],
                printers::service_account,
            ),
            ("", "services") => (SERVICE_COLUMNS, printers::service),
            ("", "nodes") => (NODE_COLUMNS, printers::node),
            ("apps", "deployments") => (DEPLOYMENT_COLUMNS, printers::deployment),
            ("apps", "replicasets") => (REPLICA_SET_COLUMNS, printers::replica_set),
            ("apps", "statefulsets") => (
                &[
                    NAME,
                    ("Ready", "string", 0, "Number of the pod with ready state"),
                    AGE,
                    CONTAINERS,
                    IMAGES,
                ],
                printers::stateful_set,
            ),
            ("apps", "daemonsets") => (DAEMON_SET_COLUMNS, printers::daemon_set),
            ("batch", "jobs") => (JOB_COLUMNS, printers::job),
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                (&[NAME, ("Created At", "date", 0, AGE_DESCRIPTION)], printers::created_at)
            }
            _ => (&[NAME, AGE], printers::name_age),
        };
        Self::Builtin(columns, row)
    }

    fn custom(printer_columns: &[Value]) -> Self {
        let mut columns = vec![(
            Column {
                name: "Name".into(),
                kind: "string".into(),
                format: "name".into(),
                description: NAME_DESCRIPTION.into(),
                priority: 0,
            },
            None,
        )];
        let declared: Vec<&Value> = printer_columns.iter().collect();
        let age = json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "description": AGE_DESCRIPTION});
        let declared = if declared.is_empty() { vec![&age] } else { declared };
        for c in declared {
            let path = c["jsonPath"].as_str().unwrap_or_default();
            let description = c["description"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("Custom resource definition column (in JSONPath format): {path}"));
            columns.push((
                Column {
                    name: c["name"].as_str().unwrap_or_default().to_owned(),
                    kind: c["type"].as_str().unwrap_or("string").to_owned(),
                    format: c["format"].as_str().unwrap_or_default().to_owned(),
                    description,
                    priority: c["priority"].as_i64().unwrap_or(0),
                },
                JsonPath::parse(path),
            ));
        }
        Self::Custom(columns)
    }

    fn definitions(&self) -> Vec<Value> {
        let definition = |name: &str, kind: &str, format: &str, priority: i64, description: &str| json!({"name": name, "type": kind, "format": format, "description": description, "priority": priority});
        match self {
            Self::Builtin(columns, _) => columns
                .iter()
                .map(|(name, kind, priority, description)| {
                    let format = if *name == "Name" { "name" } else { "" };
                    definition(name, kind, format, *priority, description)
                })
                .collect(),
            Self::Custom(columns) => columns
                .iter()
                .map(|(c, _)| definition(&c.name, &c.kind, &c.format, c.priority, &c.description))
                .collect(),
        }
    }

    fn cells(&self, object: &Value, now: Timestamp) -> (Vec<Value>, Value) {
        match self {
            Self::Builtin(_, row) => row(object, now),
            Self::Custom(columns) => {
                let cells = columns
                    .iter()
                    .map(|(column, path)| match path {
                        None => object["metadata"]["name"].clone(),
                        Some(path) => {
                            path.first(object).map_or(Value::Null, |v| typed_cell(&column.kind, v, now))
                        }
                    })
                    .collect();
                (cells, Value::Null)
            }
        }
    }
}

/// A printer column's cell for a JSONPath result, typed as the real server types it.
fn typed_cell(kind: &str, value: &Value, now: Timestamp) -> Value {
    match (kind, value) {
        (_, Value::Null) => Value::Null,
        ("integer", Value::Number(n)) => {
            n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).map_or(Value::Null, Value::from)
        }
        ("number", Value::Number(n)) => n.as_f64().map_or(Value::Null, Value::from),
        ("boolean", Value::Bool(b)) => Value::Bool(*b),
        ("date", Value::String(s)) => match s.parse::<Timestamp>() {
            Ok(t) => Value::String(human_duration(now.duration_since(t).as_secs())),
            Err(_) => Value::String("<invalid>".into()),
        },
        ("string", Value::String(s)) => Value::String(s.clone()),
        ("string", other) => Value::String(other.to_string()),
        _ => Value::Null,
    }
}

/// `kubectl`'s human-readable durations (`duration.HumanDuration`): `45s`, `3m12s`, `5h2m`, `4d`, `2y`.
pub(crate) fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{}d", hours / 24) } else { format!("{}d{h}h", hours / 24) };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{days}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The age of a timestamp field (`translateTimestampSince`): `<unknown>` when it is missing.
fn since(value: &Value, now: Timestamp) -> String {
    match value.as_str().and_then(|s| s.parse::<Timestamp>().ok()) {
        Some(t) => human_duration(now.duration_since(t).as_secs()),
        None => "<unknown>".into(),
    }
}

/// The subset of JSONPath printer columns use: `.a.b`, `['a.b']`, `[0]`, `[*]` and filters
/// `[?(@.type=="Ready")]`. A path it cannot read gives empty cells, never an error.
#[derive(Debug, Clone, PartialEq)]
struct JsonPath(Vec<Step>);

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    /// `[?(@.path == value)]` (or `!=`).
    Filter {
        path: Vec<String>,
        equal: bool,
        value: Value,
    },
}

impl JsonPath {
    fn parse(path: &str) -> Option<Self> {
        let path = path.trim();
        let path = path.strip_prefix('{').and_then(|p| p.strip_suffix('}')).unwrap_or(path);
        let mut rest = path.strip_prefix('$').unwrap_or(path);
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                if end > 0 {
                    steps.push(Step::Field(after[..end].to_owned()));
                }
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = closing_bracket(after)?;
                steps.push(Self::bracket(after[..end].trim())?);
                rest = &after[end + 1..];
            } else {
                return None;
            }
        }
        Some(Self(steps))
    }

    fn bracket(inner: &str) -> Option<Step> {
        if inner == "*" {
            return Some(Step::All);
        }
        if let Some(quoted) = unquote(inner) {
            return Some(Step::Field(quoted.to_owned()));
        }
        if let Ok(n) = inner.parse::<i64>() {
            return Some(Step::Index(n));
        }
        let filter = inner.strip_prefix("?(")?.strip_suffix(')')?.trim();
        let (lhs, rhs, equal) = match filter.split_once("==") {
            Some((l, r)) => (l, r, true),
            None => filter.split_once("!=").map(|(l, r)| (l, r, false))?,
        };
        let path: Vec<String> =
            lhs.trim().strip_prefix('@')?.split('.').filter(|s| !s.is_empty()).map(str::to_owned).collect();
        let rhs = rhs.trim();
        let value = match unquote(rhs) {
            Some(s) => Value::String(s.to_owned()),
            None => serde_json::from_str(rhs).ok()?,
        };
        Some(Step::Filter { path, equal, value })
    }

    /// The first value the path selects.
    fn first<'v>(&self, object: &'v Value) -> Option<&'v Value> {
        let mut current = vec![object];
        for step in &self.0 {
            let mut next = Vec::new();
            for v in current {
                match step {
                    Step::Field(name) => next.extend(v.get(name)),
                    Step::Index(i) => {
                        let items = v.as_array()?;
                        let index = if *i < 0 {
                            items.len().checked_sub(i.unsigned_abs() as usize)
                        } else {
                            Some(*i as usize)
                        };
                        next.extend(index.and_then(|i| items.get(i)));
                    }
                    Step::All => match v {
                        Value::Array(items) => next.extend(items),
                        Value::Object(map) => next.extend(map.values()),
                        _ => {}
                    },
                    Step::Filter { path, equal, value } => {
                        for item in v.as_array().into_iter().flatten() {
                            let found = path.iter().try_fold(item, |v, k| v.get(k));
                            if (found == Some(value)) == *equal {
                                next.push(item);
                            }
                        }
                    }
                }
            }
            current = next;
        }
        current.into_iter().next()
    }
}

fn closing_bracket(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') if depth == 0 => return Some(i),
            (None, ']') => depth -= 1,
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<&str> {
    s.strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
}

const POD_COLUMNS: &[ColumnSpec] = &[
    NAME,
    ("Ready", "string", 0, "The aggregate readiness state of this pod for accepting traffic."),
    ("Status", "string", 0, "The aggregate status of the containers in this pod."),
    (
        "Restarts",
        "string",
        0,
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    (
        "IP",
        "string",
        1,
        "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
    ),
    ("Node", "string", 1, "NodeName indicates in which node this pod is scheduled."),
    (
        "Nominated Node",
        "string",
        1,
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.",
    ),
    (
        "Readiness Gates",
        "string",
        1,
        "If specified, all readiness gates will be evaluated for pod readiness.",
    ),
];
const DEPLOYMENT_COLUMNS: &[ColumnSpec] = &[
    NAME,
    ("Ready", "string", 0, "Number of the pod with ready state"),
    (
        "Up-to-date",
        "integer",
        0,
        "Total number of non-terminating pods targeted by this deployment that have the desired template spec.",
    ),
    (
        "Available",
        "integer",
        0,
        "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    (
        "Selector",
        "string",
        1,
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
    ),
];
const REPLICA_SET_COLUMNS: &[ColumnSpec] = &[
    NAME,
    ("Desired", "integer", 0, "Replicas is the number of desired pods."),
    ("Current", "integer", 0, "Replicas is the most recently observed number of non-terminating pods."),
    (
        "Ready",
        "integer",
        0,
        "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];
const DAEMON_SET_COLUMNS: &[ColumnSpec] = &[
    NAME,
    (
        "Desired",
        "integer",
        0,
        "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod).",
    ),
    (
        "Current",
        "integer",
        0,
        "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
    ),
    (
        "Ready",
        "integer",
        0,
        "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.",
    ),
    ("Up-to-date", "integer", 0, "The total number of nodes that are running updated daemon pod"),
    (
        "Available",
        "integer",
        0,
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
    ),
    (
        "Node Selector",
        "string",
        0,
        "NodeSelector is a selector which must be true for the pod to fit on a node.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];
const JOB_COLUMNS: &[ColumnSpec] = &[
    NAME,
    ("Status", "string", 0, "Status of the job."),
    ("Completions", "string", 0, "The number of pods which reached phase Succeeded."),
    ("Duration", "string", 0, "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];
const SERVICE_COLUMNS: &[ColumnSpec] = &[
    NAME,
    ("Type", "string", 0, "type determines how the Service is exposed."),
    (
        "Cluster-IP",
        "string",
        0,
        "clusterIP is the IP address of the service and is usually assigned randomly.",
    ),
    (
        "External-IP",
        "string",
        0,
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
    ),
    ("Port(s)", "string", 0, "The list of ports that are exposed by this service."),
    AGE,
    (
        "Selector",
        "string",
        1,
        "Route service traffic to pods with label keys and values matching this selector.",
    ),
];
const NODE_COLUMNS: &[ColumnSpec] = &[
    NAME,
    ("Status", "string", 0, "The status of the node"),
    ("Roles", "string", 0, "The roles of the node"),
    AGE,
    ("Version", "string", 0, "Kubelet Version reported by the node."),
    ("Internal-IP", "string", 1, "List of addresses reachable to the node."),
    ("External-IP", "string", 1, "List of addresses reachable to the node."),
    (
        "OS-Image",
        "string",
        1,
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
    ),
    (
        "Kernel-Version",
        "string",
        1,
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    ),
    (
        "Container-Runtime",
        "string",
        1,
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    ),
];

/// The kube-apiserver printers of the common built-ins, on JSON objects.
mod printers {
    use jiff::Timestamp;
    use serde_json::{Value, json};

    use super::{human_duration, since};

    type Row = (Vec<Value>, Value);

    fn name(o: &Value) -> Value {
        o["metadata"]["name"].clone()
    }

    fn age(o: &Value, now: Timestamp) -> Value {
        Value::String(since(&o["metadata"]["creationTimestamp"], now))
    }

    fn int(v: &Value) -> i64 {
        v.as_i64().unwrap_or(0)
    }

    fn text(v: &Value) -> &str {
        v.as_str().unwrap_or_default()
    }

    fn or_none(s: String) -> Value {
        Value::String(if s.is_empty() { "<none>".into() } else { s })
    }

    fn count(v: &Value) -> i64 {
        match v {
            Value::Object(m) => m.len() as i64,
            Value::Array(a) => a.len() as i64,
            _ => 0,
        }
    }

    fn items(v: &Value) -> &[Value] {
        v.as_array().map_or(&[], Vec::as_slice)
    }

    fn condition_true(conditions: &Value, kind: &str) -> bool {
        items(conditions).iter().any(|c| c["type"] == kind && c["status"] == "True")
    }

    /// Container names and images of a pod template, comma-separated.
    fn containers_images(template: &Value) -> (Value, Value) {
        let containers = items(&template["spec"]["containers"]);
        let names: Vec<&str> = containers.iter().map(|c| text(&c["name"])).collect();
        let images: Vec<&str> = containers.iter().map(|c| text(&c["image"])).collect();
        (Value::String(names.join(",")), Value::String(images.join(",")))
    }

    /// A `LabelSelector` as `labels.Selector.String()` prints it.
    fn selector(s: &Value) -> Value {
        if s.is_null() {
            return Value::String("<none>".into());
        }
        let mut requirements: Vec<(String, String)> = Vec::new();
        for (k, v) in s["matchLabels"].as_object().into_iter().flatten() {
            requirements.push((k.clone(), format!("{k}={}", text(v))));
        }
        for e in items(&s["matchExpressions"]) {
            let key = text(&e["key"]);
            let mut values: Vec<&str> = items(&e["values"]).iter().map(text).collect();
            values.sort_unstable();
            let requirement = match text(&e["operator"]) {
                "In" => format!("{key} in ({})", values.join(",")),
                "NotIn" => format!("{key} notin ({})", values.join(",")),
                "Exists" => key.to_owned(),
                "DoesNotExist" => format!("!{key}"),
                _ => continue,
            };
            requirements.push((key.to_owned(), requirement));
        }
        requirements.sort();
        Value::String(requirements.into_iter().map(|(_, r)| r).collect::<Vec<_>>().join(","))
    }

    /// A plain label map as `labels.SelectorFromSet(...).String()` prints it.
    fn label_map(m: &Value) -> Value {
        let mut pairs: Vec<String> =
            m.as_object().into_iter().flatten().map(|(k, v)| format!("{k}={}", text(v))).collect();
        pairs.sort();
        or_none(pairs.join(","))
    }

    pub(super) fn name_age(o: &Value, now: Timestamp) -> Row {
        (vec![name(o), age(o, now)], Value::Null)
    }

    /// The generic printer: the creation time as RFC 3339, typed `date`.
    pub(super) fn created_at(o: &Value, _now: Timestamp) -> Row {
        (vec![name(o), o["metadata"]["creationTimestamp"].clone()], Value::Null)
    }

    pub(super) fn namespace(o: &Value, now: Timestamp) -> Row {
        (vec![name(o), o["status"]["phase"].clone(), age(o, now)], Value::Null)
    }

    pub(super) fn config_map(o: &Value, now: Timestamp) -> Row {
        (vec![name(o), json!(count(&o["data"]) + count(&o["binaryData"])), age(o, now)], Value::Null)
    }

    pub(super) fn secret(o: &Value, now: Timestamp) -> Row {
        (vec![name(o), o["type"].clone(), json!(count(&o["data"])), age(o, now)], Value::Null)
    }

    pub(super) fn service_account(o: &Value, now: Timestamp) -> Row {
        (vec![name(o), json!(count(&o["secrets"])), age(o, now)], Value::Null)
    }

    pub(super) fn deployment(o: &Value, now: Timestamp) -> Row {
        let (spec, status) = (&o["spec"], &o["status"]);
        let desired = spec["replicas"].as_i64().unwrap_or(1);
        let (containers, images) = containers_images(&spec["template"]);
        let cells = vec![
            name(o),
            json!(format!("{}/{desired}", int(&status["readyReplicas"]))),
            json!(int(&status["updatedReplicas"])),
            json!(int(&status["availableReplicas"])),
            age(o, now),
            containers,
            images,
            selector(&spec["selector"]),
        ];
        (cells, Value::Null)
    }

    pub(super) fn replica_set(o: &Value, now: Timestamp) -> Row {
        let (spec, status) = (&o["spec"], &o["status"]);
        let (containers, images) = containers_images(&spec["template"]);
        let cells = vec![
            name(o),
            json!(spec["replicas"].as_i64().unwrap_or(1)),
            json!(int(&status["replicas"])),
            json!(int(&status["readyReplicas"])),
            age(o, now),
            containers,
            images,
            selector(&spec["selector"]),
        ];
        (cells, Value::Null)
    }

    pub(super) fn stateful_set(o: &Value, now: Timestamp) -> Row {
        let (spec, status) = (&o["spec"], &o["status"]);
        let (containers, images) = containers_images(&spec["template"]);
        let ready = format!("{}/{}", int(&status["readyReplicas"]), spec["replicas"].as_i64().unwrap_or(1));
        (vec![name(o), json!(ready), age(o, now), containers, images], Value::Null)
    }

    pub(super) fn daemon_set(o: &Value, now: Timestamp) -> Row {
        let (spec, status) = (&o["spec"], &o["status"]);
        let (containers, images) = containers_images(&spec["template"]);
        let cells = vec![
            name(o),
            json!(int(&status["desiredNumberScheduled"])),
            json!(int(&status["currentNumberScheduled"])),
            json!(int(&status["numberReady"])),
            json!(int(&status["updatedNumberScheduled"])),
            json!(int(&status["numberAvailable"])),
            label_map(&spec["template"]["spec"]["nodeSelector"]),
            age(o, now),
            containers,
            images,
            selector(&spec["selector"]),
        ];
        (cells, Value::Null)
    }

    pub(super) fn job(o: &Value, now: Timestamp) -> Row {
        let (spec, status) = (&o["spec"], &o["status"]);
        let succeeded = int(&status["succeeded"]);
        let completions = match spec["completions"].as_i64() {
            Some(c) => format!("{succeeded}/{c}"),
            None => match spec["parallelism"].as_i64().unwrap_or(0) {
                p if p > 1 => format!("{succeeded}/1 of {p}"),
                _ => format!("{succeeded}/1"),
            },
        };
        let time = |v: &Value| v.as_str().and_then(|s| s.parse::<Timestamp>().ok());
        let duration = match (time(&status["startTime"]), time(&status["completionTime"])) {
            (None, _) => String::new(),
            (Some(start), None) => human_duration(now.duration_since(start).as_secs()),
            (Some(start), Some(end)) => human_duration(end.duration_since(start).as_secs()),
        };
        let conditions = &status["conditions"];
        let state = if condition_true(conditions, "Complete") {
            "Complete"
        } else if condition_true(conditions, "Failed") {
            "Failed"
        } else if !o["metadata"]["deletionTimestamp"].is_null() {
            "Terminating"
        } else if condition_true(conditions, "Suspended") {
            "Suspended"
        } else if condition_true(conditions, "FailureTarget") {
            "FailureTarget"
        } else if condition_true(conditions, "SuccessCriteriaMet") {
            "SuccessCriteriaMet"
        } else {
            "Running"
        };
        let (containers, images) = containers_images(&spec["template"]);
        let cells = vec![
            name(o),
            json!(state),
            json!(completions),
            json!(duration),
            age(o, now),
            containers,
            images,
            selector(&spec["selector"]),
        ];
        (cells, Value::Null)
    }

    pub(super) fn service(o: &Value, now: Timestamp) -> Row {
        let spec = &o["spec"];
        let kind = spec["type"].as_str().unwrap_or("ClusterIP");
        let external_ips: Vec<&str> = items(&spec["externalIPs"]).iter().map(text).collect();
        let external = match kind {
            "ClusterIP" | "NodePort" => or_none(external_ips.join(",")),
            "LoadBalancer" => {
                let mut ips: Vec<&str> = items(&o["status"]["loadBalancer"]["ingress"])
                    .iter()
                    .map(|i| i["ip"].as_str().or_else(|| i["hostname"].as_str()).unwrap_or_default())
                    .filter(|s| !s.is_empty())
                    .collect();
                ips.extend(&external_ips);
                Value::String(if ips.is_empty() { "<pending>".into() } else { ips.join(",") })
            }
            "ExternalName" => spec["externalName"].clone(),
            _ => Value::String("<unknown>".into()),
        };
        let ports: Vec<String> = items(&spec["ports"])
            .iter()
            .map(|p| {
                let protocol = p["protocol"].as_str().unwrap_or("TCP");
                match int(&p["nodePort"]) {
                    0 => format!("{}/{protocol}", int(&p["port"])),
                    node => format!("{}:{node}/{protocol}", int(&p["port"])),
                }
            })
            .collect();
        let cluster_ip = or_none(text(&spec["clusterIP"]).to_owned());
        let cells = vec![
            name(o),
            json!(kind),
            cluster_ip,
            external,
            or_none(ports.join(",")),
            age(o, now),
            label_map(&spec["selector"]),
        ];
        (cells, Value::Null)
    }

    pub(super) fn node(o: &Value, now: Timestamp) -> Row {
        let status = &o["status"];
        let mut state: Vec<&str> = Vec::new();
        if let Some(ready) = items(&status["conditions"]).iter().find(|c| c["type"] == "Ready") {
            state.push(if ready["status"] == "True" { "Ready" } else { "NotReady" });
        }
        if state.is_empty() {
            state.push("Unknown");
        }
        if o["spec"]["unschedulable"] == true {
            state.push("SchedulingDisabled");
        }
        let mut roles: Vec<&str> = Vec::new();
        for (k, v) in o["metadata"]["labels"].as_object().into_iter().flatten() {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.push(role);
                }
            } else if k == "kubernetes.io/role" && !text(v).is_empty() {
                roles.push(text(v));
            }
        }
        roles.sort_unstable();
        roles.dedup();
        let address = |kind: &str| {
            or_none(
                items(&status["addresses"])
                    .iter()
                    .find(|a| a["type"] == kind)
                    .map(|a| text(&a["address"]).to_owned())
                    .unwrap_or_default(),
            )
        };
        let info = &status["nodeInfo"];
        let unknown =
            |v: &Value| Value::String(v.as_str().filter(|s| !s.is_empty()).unwrap_or("<unknown>").to_owned());
        let cells = vec![
            name(o),
            json!(state.join(",")),
            or_none(roles.join(",")),
            age(o, now),
            info["kubeletVersion"].as_str().map_or(json!(""), |v| json!(v)),
            address("InternalIP"),
            address("ExternalIP"),
            unknown(&info["osImage"]),
            unknown(&info["kernelVersion"]),
            unknown(&info["containerRuntimeVersion"]),
        ];
        (cells, Value::Null)
    }

    /// `printPod`: READY, STATUS (the reason kubectl shows), RESTARTS and the wide columns.
    pub(super) fn pod(o: &Value, now: Timestamp) -> Row {
        let (spec, status) = (&o["spec"], &o["status"]);
        let phase = text(&status["phase"]);
        let mut reason = status["reason"].as_str().filter(|r| !r.is_empty()).unwrap_or(phase).to_owned();
        if items(&status["conditions"])
            .iter()
            .any(|c| c["type"] == "PodScheduled" && c["reason"] == "SchedulingGated")
        {
            reason = "SchedulingGated".into();
        }
        let init_specs = items(&spec["initContainers"]);
        let restartable =
            |name: &Value| init_specs.iter().any(|c| c["name"] == *name && c["restartPolicy"] == "Always");
        let total = items(&spec["containers"]).len()
            + init_specs.iter().filter(|c| c["restartPolicy"] == "Always").count();
        let mut ready = 0;
        let mut restarts = 0;
        let mut sidecar_restarts = 0;
        let mut last_restart: Option<Timestamp> = None;
        let mut last_sidecar_restart: Option<Timestamp> = None;
        let finished = |c: &Value| {
            c["lastState"]["terminated"]["finishedAt"].as_str().and_then(|s| s.parse::<Timestamp>().ok())
        };
        let mut initializing = false;
        for (i, c) in items(&status["initContainerStatuses"]).iter().enumerate() {
            restarts += int(&c["restartCount"]);
            last_restart = last_restart.max(finished(c));
            if restartable(&c["name"]) {
                sidecar_restarts += int(&c["restartCount"]);
                last_sidecar_restart = last_sidecar_restart.max(finished(c));
            }
            let terminated = &c["state"]["terminated"];
            let waiting = &c["state"]["waiting"];
            if terminated.is_object() && int(&terminated["exitCode"]) == 0 {
                continue;
            }
            if restartable(&c["name"]) && c["started"] == true {
                if c["ready"] == true {
                    ready += 1;
                }
                continue;
            }
            reason = if terminated.is_object() {
                match terminated["reason"].as_str().filter(|r| !r.is_empty()) {
                    Some(r) => format!("Init:{r}"),
                    None if int(&terminated["signal"]) != 0 => {
                        format!("Init:Signal:{}", int(&terminated["signal"]))
                    }
                    None => format!("Init:ExitCode:{}", int(&terminated["exitCode"])),
                }
            } else if let Some(r) =
                waiting["reason"].as_str().filter(|r| !r.is_empty() && *r != "PodInitializing")
            {
                format!("Init:{r}")
            } else {
                format!("Init:{i}/{}", init_specs.len())
            };
            initializing = true;
            break;
        }
        if !initializing || condition_true(&status["conditions"], "Initialized") {
            restarts = sidecar_restarts;
            last_restart = last_sidecar_restart;
            let mut running = false;
            for c in items(&status["containerStatuses"]).iter().rev() {
                restarts += int(&c["restartCount"]);
                last_restart = last_restart.max(finished(c));
                let (waiting, terminated) = (&c["state"]["waiting"], &c["state"]["terminated"]);
                if let Some(r) = waiting["reason"].as_str().filter(|r| !r.is_empty()) {
                    reason = r.to_owned();
                } else if let Some(r) = terminated["reason"].as_str().filter(|r| !r.is_empty()) {
                    reason = r.to_owned();
                } else if terminated.is_object() {
                    reason = match int(&terminated["signal"]) {
                        0 => format!("ExitCode:{}", int(&terminated["exitCode"])),
                        signal => format!("Signal:{signal}"),
                    };
                } else if c["ready"] == true && c["state"]["running"].is_object() {
                    running = true;
                    ready += 1;
                }
            }
            if reason == "Completed" && running {
                reason = if condition_true(&status["conditions"], "Ready") {
                    "Running".into()
                } else {
                    "NotReady".into()
                };
            }
        }
        if !o["metadata"]["deletionTimestamp"].is_null() {
            if status["reason"] == "NodeLost" {
                reason = "Unknown".into();
            } else if phase != "Succeeded" && phase != "Failed" {
                reason = "Terminating".into();
            }
        }
        let restarts = match last_restart {
            Some(t) if restarts != 0 => {
                format!("{restarts} ({} ago)", human_duration(now.duration_since(t).as_secs()))
            }
            _ => restarts.to_string(),
        };
        let pod_ip =
            items(&status["podIPs"]).first().map(|ip| text(&ip["ip"]).to_owned()).unwrap_or_default();
        let gates = items(&spec["readinessGates"]);
        let readiness_gates = if gates.is_empty() {
            "<none>".to_owned()
        } else {
            let passed = gates
                .iter()
                .filter(|g| {
                    items(&status["conditions"])
                        .iter()
                        .find(|c| c["type"] == g["conditionType"])
                        .is_some_and(|c| c["status"] == "True")
                })
                .count();
            format!("{passed}/{}", gates.len())
        };
        let cells = vec![
            name(o),
            json!(format!("{ready}/{total}")),
            json!(reason),
            json!(restarts),
            age(o, now),
            or_none(pod_ip),
            or_none(text(&spec["nodeName"]).to_owned()),
            or_none(text(&status["nominatedNodeName"]).to_owned()),
            json!(readiness_gates),
        ];
        let conditions = match phase {
            "Succeeded" => {
                json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}])
            }
            "Failed" => {
                json!([{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}])
            }
            _ => Value::Null,
        };
        (cells, conditions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_kubectl_prints_them() {
        let cases = [
            (5, "5s"),
            (119, "119s"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600 + 120, "3h2m"),
            (9 * 3600, "9h"),
            (50 * 3600, "2d2h"),
            (10 * 86400, "10d"),
            (800 * 86400, "2y70d"),
        ];
        for (seconds, text) in cases {
            assert_eq!(human_duration(seconds), text, "{seconds}s");
        }
    }

    #[test]
    fn printer_column_paths_select_fields_indexes_and_filtered_items() {
        let object = json!({"spec": {"items": ["a", "b"], "x.y": 1}, "status": {"conditions": [
            {"type": "Ready", "status": "False"}, {"type": "Synced", "status": "True"}]}});
        let first = |p: &str| JsonPath::parse(p).and_then(|p| p.first(&object).cloned());
        assert_eq!(first(".spec.items[1]"), Some(json!("b")));
        assert_eq!(first(".spec['x.y']"), Some(json!(1)));
        assert_eq!(first(r#".status.conditions[?(@.type=="Synced")].status"#), Some(json!("True")));
        assert_eq!(first(".status.missing"), None);
        assert_eq!(first(".spec.items[*]"), Some(json!("a")));
    }

    #[test]
    fn cells_are_typed_as_the_column_declares() {
        let now: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        assert_eq!(typed_cell("integer", &json!(3.7), now), json!(3));
        assert_eq!(typed_cell("boolean", &json!("yes"), now), Value::Null);
        assert_eq!(typed_cell("date", &json!("2026-01-01T00:00:00Z"), now), json!("60m"));
        assert_eq!(typed_cell("string", &json!(5), now), json!("5"));
    }
}
