//! A request to the core, as the HTTP front and the typed API both build it: verb, resource,
//! namespace, name, subresource, body and the query parameters the real server honours. Every client
//! path goes through [`crate::Cluster::handle`], where faults and the journal apply.

use std::sync::Arc;

use serde_json::Value;

use crate::auth::Identity;
use crate::resources::ResourceInfo;
use crate::store::objects::StoredObject;
use crate::watch::WatchStream;

/// The API verbs, as the real server's audit log and RBAC name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verb {
    /// Read one object.
    Get,
    /// Read a collection.
    List,
    /// Stream changes.
    Watch,
    /// POST a new object.
    Create,
    /// PUT a whole object.
    Update,
    /// PATCH an object.
    Patch,
    /// DELETE one object.
    Delete,
    /// DELETE a collection.
    DeleteCollection,
}

impl Verb {
    /// The lower-case name (`get`, `deletecollection`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::List => "list",
            Self::Watch => "watch",
            Self::Create => "create",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Delete => "delete",
            Self::DeleteCollection => "deletecollection",
        }
    }

    /// Whether the verb may change state.
    pub fn is_write(self) -> bool {
        matches!(self, Self::Create | Self::Update | Self::Patch | Self::Delete | Self::DeleteCollection)
    }
}

impl std::fmt::Display for Verb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The patch flavours, told apart by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 6902 JSON Patch (`application/json-patch+json`).
    Json,
    /// RFC 7386 merge patch (`application/merge-patch+json`).
    Merge,
    /// Strategic merge patch (`application/strategic-merge-patch+json`), built-ins only.
    Strategic,
    /// Server-side apply (`application/apply-patch+yaml`).
    Apply,
}

impl PatchType {
    /// The patch type for a `Content-Type` header value, if it is one.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        match media {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml"
            | "application/apply-patch+json"
            | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }

    /// The media type of this patch flavour.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json-patch+json",
            Self::Merge => "application/merge-patch+json",
            Self::Strategic => "application/strategic-merge-patch+json",
            Self::Apply => "application/apply-patch+yaml",
        }
    }
}

/// `fieldValidation`: what the server does with fields the schema does not declare.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and say so in a `Warning` header (the default).
    #[default]
    Warn,
    /// Fail the request.
    Strict,
}

/// Delete preconditions (`DeleteOptions.preconditions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    /// The object must have this uid.
    pub uid: Option<String>,
    /// The object must be at this resourceVersion.
    pub resource_version: Option<String>,
}

/// Query parameters (and, for deletes, `DeleteOptions`) the server honours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`.
    pub field_selector: Option<String>,
    /// `limit` for paged lists.
    pub limit: Option<u64>,
    /// `continue` token of a paged list.
    pub continue_token: Option<String>,
    /// `resourceVersion` for reads and watches.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch` (`Exact`, `NotOlderThan`).
    pub resource_version_match: Option<String>,
    /// `timeoutSeconds` of a watch.
    pub timeout_seconds: Option<u64>,
    /// `allowWatchBookmarks`.
    pub allow_watch_bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: Option<bool>,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `fieldManager`.
    pub field_manager: Option<String>,
    /// `force` (server-side apply).
    pub force: bool,
    /// `fieldValidation`.
    pub field_validation: FieldValidation,
    /// `propagationPolicy` (`Background`, `Foreground`, `Orphan`).
    pub propagation_policy: Option<String>,
    /// `gracePeriodSeconds`.
    pub grace_period_seconds: Option<i64>,
    /// Delete preconditions.
    pub preconditions: Preconditions,
    /// `shardSelector` (KEP-5866).
    pub shard_selector: Option<String>,
}

/// One request to the core.
#[derive(Debug, Clone)]
pub struct Request {
    /// The verb.
    pub verb: Verb,
    /// API group, empty for core.
    pub group: String,
    /// API version.
    pub version: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespace from the URL.
    pub namespace: Option<String>,
    /// Object name from the URL.
    pub name: Option<String>,
    /// Subresource (`status`, `scale`, `finalize`).
    pub subresource: Option<String>,
    /// The decoded body (an object, a patch, or `DeleteOptions`).
    pub body: Option<Value>,
    /// For patches, the flavour.
    pub patch_type: Option<PatchType>,
    /// Query parameters.
    pub params: Params,
    /// Who is asking (a field manager or user agent), for the journal.
    pub actor: String,
    /// Who is authenticated: the subject of authorization when the cluster enforces RBAC. `None`
    /// is an in-process caller acting as the loopback identity ([`Identity::loopback`]).
    pub user: Option<Identity>,
}

impl Request {
    /// A request with no namespace, name, body or parameters.
    pub fn new(verb: Verb, group: &str, version: &str, plural: &str) -> Self {
        Self {
            verb,
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
            namespace: None,
            name: None,
            subresource: None,
            body: None,
            patch_type: None,
            params: Params::default(),
            actor: String::new(),
            user: None,
        }
    }

    /// Sets the namespace.
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets the name.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the subresource.
    #[must_use]
    pub fn subresource(mut self, subresource: impl Into<String>) -> Self {
        self.subresource = Some(subresource.into());
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Sets the patch type.
    #[must_use]
    pub fn patch_type(mut self, patch_type: PatchType) -> Self {
        self.patch_type = Some(patch_type);
        self
    }

    /// Sets the authenticated user.
    #[must_use]
    pub fn user(mut self, user: Identity) -> Self {
        self.user = Some(user);
        self
    }

    /// Replaces the parameters.
    #[must_use]
    pub fn params(mut self, params: Params) -> Self {
        self.params = params;
        self
    }
}

/// A page of a list.
#[derive(Debug, Clone)]
pub struct ListResult {
    /// The resource listed (its version decides `apiVersion` and the list kind).
    pub info: Arc<ResourceInfo>,
    /// The objects, in key order.
    pub items: Vec<Arc<StoredObject>>,
    /// The revision the list was served at.
    pub resource_version: u64,
    /// The token for the next page, if there is one.
    pub continue_token: Option<String>,
    /// How many items are left after this page, when known.
    pub remaining_item_count: Option<u64>,
    /// The shard selector the list was filtered by, echoed in `metadata.shardInfo`.
    pub shard_selector: Option<String>,
}

impl ListResult {
    /// The list as the JSON bytes the server sends, concatenating the items' stored bytes.
    pub fn to_json(&self) -> Vec<u8> {
        let mut metadata = serde_json::json!({"resourceVersion": self.resource_version.to_string()});
        if let Some(token) = &self.continue_token {
            metadata["continue"] = Value::String(token.clone());
        }
        if let Some(n) = self.remaining_item_count {
            metadata["remainingItemCount"] = Value::from(n);
        }
        if let Some(selector) = &self.shard_selector {
            metadata["shardInfo"] = serde_json::json!({"selector": selector});
        }
        let head = serde_json::json!({
            "kind": self.info.list_kind,
            "apiVersion": self.info.api_version(),
            "metadata": metadata,
        });
        let head = serde_json::to_vec(&head).unwrap_or_default();
        let size = self.items.iter().map(|i| i.json().len() + 1).sum::<usize>();
        let mut out = Vec::with_capacity(head.len() + size + 16);
        out.extend_from_slice(&head[..head.len() - 1]);
        out.extend_from_slice(b",\"items\":[");
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(item.json());
        }
        out.extend_from_slice(b"]}");
        out
    }

    /// The list as a JSON value.
    pub fn to_value(&self) -> Value {
        serde_json::from_slice(&self.to_json()).unwrap_or(Value::Null)
    }
}

/// What the core answers.
#[derive(Debug)]
pub enum Response {
    /// One object (get, create, update, patch, and deletes that leave the object in place).
    Object(Arc<StoredObject>),
    /// A list (list, deletecollection).
    List(ListResult),
    /// A `meta/v1 Status` of success (deletes that removed the object at once).
    Status(Value),
    /// A watch stream.
    Watch(WatchStream),
}

impl Response {
    /// The HTTP status code of a successful response: 201 for creates, 200 otherwise (the real
    /// server answers 202 only to the deprecated `orphanDependents=false`).
    pub fn code(&self, verb: Verb) -> u16 {
        if verb == Verb::Create { 201 } else { 200 }
    }
}
