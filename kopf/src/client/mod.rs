//! The only door to Kubernetes: the [`ApiClient`] trait. It works on dynamic objects (JSON plus a
//! [`Resource`]), so one reactor serves typed and untyped resources. [`KubeApiClient`] implements it
//! over any `kube::Client`; kopf-testing adds a direct adapter over the fake API server's core.

mod error;
mod kube;
pub(crate) mod retrying;
mod typed;

use std::future::Future;
use std::pin::Pin;

use futures::stream::BoxStream;
use serde_json::Value;

pub use self::error::Error;
pub use self::kube::KubeApiClient;
pub use self::typed::{Api, Typed};
use crate::structs::references::Resource;

/// A boxed, sendable future (the trait is object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The result of a client call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A listed collection.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectList {
    /// The objects.
    pub items: Vec<Value>,
    /// The resourceVersion to watch from.
    pub resource_version: String,
    /// `metadata.shardInfo.selector`: the shard selector the server applied, if it applied one
    /// (a server without sharded list and watch leaves it out and sends everything).
    pub shard_info: Option<String>,
}

/// What a list or watch asks the server to filter by (from `settings.watching`).
///
/// ```
/// let mut selectors = kopf::Selectors::default();
/// selectors.shard = Some(kopf::Shard::new(0, 2)?.selector());
/// assert!(!selectors.is_empty());
/// # Ok::<(), kopf::ShardError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Selectors {
    /// The `shardSelector` query parameter.
    pub shard: Option<String>,
}

impl Selectors {
    /// Whether nothing is selected (every object is wanted).
    pub fn is_empty(&self) -> bool {
        self.shard.is_none()
    }
}

/// One raw watch event.
#[derive(Debug, Clone, PartialEq)]
pub enum RawEvent {
    /// An object was added.
    Added(Value),
    /// An object was modified.
    Modified(Value),
    /// An object was deleted (its last state).
    Deleted(Value),
    /// The watch has seen everything up to this resourceVersion.
    Bookmark {
        /// The resourceVersion.
        resource_version: String,
    },
    /// An `ERROR` event (410 Gone means: list again).
    Error {
        /// The HTTP code in the Status.
        code: u16,
        /// The Status message.
        message: String,
    },
}

/// A patch as sent to the API.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchBody {
    /// RFC 7386 merge patch.
    Merge(Value),
    /// RFC 6902 JSON patch (an array of operations).
    Json(Value),
}

/// Everything the reactor asks of the Kubernetes API.
pub trait ApiClient: Send + Sync + std::fmt::Debug + 'static {
    /// Every served resource (all versions; the preferred ones marked).
    fn discover(&self) -> BoxFuture<'_, Result<Vec<Resource>>>;

    /// Lists a collection (in a namespace, or cluster-wide with `None`), filtered on the server by
    /// `selectors`.
    fn list<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        selectors: &'a Selectors,
    ) -> BoxFuture<'a, Result<ObjectList>>;

    /// Watches a collection from a resourceVersion, with bookmarks, filtered on the server by
    /// `selectors`.
    fn watch<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        resource_version: &'a str,
        timeout_seconds: Option<u64>,
        selectors: &'a Selectors,
    ) -> BoxFuture<'a, Result<BoxStream<'static, Result<RawEvent>>>>;

    /// Reads one object.
    fn get<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Value>>;

    /// Creates an object.
    fn create<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        body: &'a Value,
    ) -> BoxFuture<'a, Result<Value>>;

    /// Patches an object or one of its subresources (`status`).
    fn patch<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        name: &'a str,
        patch: &'a PatchBody,
        subresource: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Value>>;

    /// Deletes an object.
    fn delete<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        name: &'a str,
    ) -> BoxFuture<'a, Result<()>>;
}
