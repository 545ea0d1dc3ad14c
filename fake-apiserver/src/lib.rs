//! # fake-apiserver
//!
//! A faithful, fast, deterministic Kubernetes API server in memory. It keeps what other fakes drop:
//! one cluster-wide resourceVersion, watches that resume without loss, 410 Gone, bookmarks,
//! finalizers and `deletionTimestamp`, garbage collection by owner references, namespace lifecycle,
//! the status and scale subresources, all four patch types, pagination from consistent snapshots,
//! CRDs served the moment they are created, and the real server's `Status` errors. Faults are data
//! and every operation lands in a journal.
//!
//! It is served in-process as a tower `Service`, so `kube::Client` talks to it unchanged:
//!
//! ```
//! use fake_apiserver::FakeApiServer;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::api::{Api, PostParams};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), kube::Error> {
//! let server = FakeApiServer::builder().seed(42).build();
//! let configmaps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
//! let mut cm = ConfigMap::default();
//! cm.metadata.name = Some("settings".into());
//! let created = configmaps.create(&PostParams::default(), &cm).await?;
//! assert!(created.metadata.uid.is_some());
//! assert_eq!(configmaps.get("settings").await?.metadata.resource_version, created.metadata.resource_version);
//! # Ok(())
//! # }
//! ```
//!
//! ## Layers
//! - [`Cluster`] — the core: typed requests ([`Request`]) in, [`Response`]s or [`ApiError`]s out,
//!   through one door ([`Cluster::handle`]) where the [`FaultPlan`] and the [`Journal`] apply.
//! - [`FakeService`] — the tower `Service` over the core (`Error = Infallible`).
//! - [`http`] — the same service on a TCP listener, with optional TLS and bearer token
//!   ([`FakeApiServer::serve`]), and the `fake-apiserver serve` binary.
//! - Time: every timestamp comes from one [`Clock`], a base wall time plus tokio's elapsed time, so
//!   under a paused tokio clock timestamps follow virtual time and repeat from run to run.
//!
//! Module map: `cluster` (state, the one door) → `ops` (read, write, delete + built-in controllers)
//! → `watch`, `crds`, `patching`, `selectors`, `validation` → `store` (objects, history),
//! `resources` + `builtin` (the registry) → `error`, `clock`. `service`, `routing`, `accept`
//! (content negotiation), `discovery` (legacy and aggregated), `openapi` (v2, v3) and `table`
//! (server-side printing) form the HTTP-facing layer.

/// Guides, with every code block compiled as a doc test.
pub mod guides {
    #[doc = include_str!("../docs/serving.md")]
    pub mod serving {}
}

mod accept;
pub mod admission;
mod auth;
mod builtin;
mod clock;
mod cluster;
mod crds;
mod discovery;
mod error;
mod faults;
pub mod http;
mod journal;
pub mod live;
mod metrics;
mod openapi;
mod ops;
mod patching;
mod request;
mod resources;
mod routing;
mod selectors;
mod service;
mod store;
mod structural;
mod table;
mod typed;
mod validation;
mod watch;

pub use self::http::{ServeError, ServeHandle, ServeOptions};
pub use admission::{WebhookCall, WebhookEndpoint};
pub use auth::{AccessAttributes, Identity};
pub use clock::{Clock, DEFAULT_BASE_TIME};
pub use cluster::Cluster;
pub use discovery::KUBERNETES_VERSION;
pub use error::{ApiError, GroupResource, Result, StatusCause};
pub use faults::{Fault, FaultPlan, FaultRule, RandomFaults};
pub use journal::{Delivery, HttpRequest, Journal, Operation, Record, Revision};
pub use metrics::RequestKey;
pub use request::{FieldValidation, ListResult, Params, PatchType, Preconditions, Request, Response, Verb};
pub use resources::{Origin, ResourceInfo, ScaleSpec, StorageKey, version_priority};
pub use selectors::shards::{
    SHARD_SPACE_END, ShardField, ShardRange, ShardSelector, ShardSelectorError, fnv1a_64,
};
pub use service::{Body, FakeService};
pub use store::history::EventType;
pub use store::objects::StoredObject;
pub use typed::TypedApi;
pub use watch::{BOOKMARK_INTERVAL, DEFAULT_WATCH_TIMEOUT, WatchEvent, WatchStream};

/// An in-memory Kubernetes API server: the core plus ways to reach it.
#[derive(Debug, Clone)]
pub struct FakeApiServer {
    cluster: Cluster,
    /// The live cluster's control plane, when it runs ([`Builder::live`]).
    live: Option<std::sync::Arc<live::Running>>,
}

impl Default for FakeApiServer {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeApiServer {
    /// A server with the default options (seed 0, the default base time, namespaces `default`,
    /// `kube-system`, `kube-public` and `kube-node-lease`).
    pub fn new() -> Self {
        Builder::default().build()
    }

    /// A builder for the options.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The core, for direct typed access (no HTTP, no JSON encoding).
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The live cluster's control plane, if [`Builder::live`] turned it on.
    pub fn control_plane(&self) -> Option<&live::ControlPlane> {
        self.live.as_deref().map(|r| &r.control)
    }

    /// The in-process tower `Service`.
    pub fn service(&self) -> FakeService {
        FakeService::new(self.cluster.clone())
    }

    /// A `kube::Client` talking to this server in-process, with `default` as its namespace.
    ///
    /// # Panics
    /// Outside a tokio runtime, as `kube::Client::new` does (reference/kube-rs.md G6).
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.service(), "default")
    }

    /// The in-process tower `Service`, making every request as `identity` (authorized when the
    /// cluster enforces RBAC, [`Builder::rbac`]).
    pub fn service_as(&self, identity: Identity) -> FakeService {
        self.service().for_identity(identity)
    }

    /// A `kube::Client` making every request as `identity`, with `default` as its namespace.
    ///
    /// # Panics
    /// Outside a tokio runtime, as `kube::Client::new` does.
    pub fn client_as(&self, identity: Identity) -> kube::Client {
        kube::Client::new(self.service_as(identity), "default")
    }

    /// Serves this server over HTTP(S) on a TCP listener ([`http::serve`]).
    ///
    /// # Errors
    /// As [`http::serve`].
    pub async fn serve(&self, options: ServeOptions) -> Result<ServeHandle, ServeError> {
        self::http::serve(self, options).await
    }
}

/// Options of a [`FakeApiServer`].
#[derive(Debug, Clone)]
#[must_use]
pub struct Builder {
    config: cluster::Config,
    live: Option<live::LiveCluster>,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            config: cluster::Config {
                seed: 0,
                base_time: DEFAULT_BASE_TIME.parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH),
                history: 100_000,
                journal: 100_000,
                namespaces: ["default", "kube-system", "kube-public", "kube-node-lease"]
                    .map(String::from)
                    .to_vec(),
                sharded_list_and_watch: true,
                rbac: false,
            },
            live: None,
        }
    }
}

impl Builder {
    /// Seeds uids and generated names, so a test's ids repeat.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// The wall time the cluster's clock starts at.
    pub fn base_time(mut self, base: jiff::Timestamp) -> Self {
        self.config.base_time = base;
        self
    }

    /// How many changes the watch history keeps (older watches get 410 Gone).
    pub fn history(mut self, changes: usize) -> Self {
        self.config.history = changes;
        self
    }

    /// How many records the journal keeps; 0 turns it off.
    pub fn journal(mut self, records: usize) -> Self {
        self.config.journal = records;
        self
    }

    /// The namespaces that exist at start.
    pub fn namespaces<I, S>(mut self, namespaces: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.namespaces = namespaces.into_iter().map(Into::into).collect();
        self
    }

    /// The feature gate `ShardedListAndWatch` (Kubernetes 1.36, alpha; KEP-5866): on (the default
    /// here), lists and watches honour `shardSelector` — a malformed one is a 400 — and sharded
    /// lists carry `metadata.shardInfo`; off, the parameter is ignored as by a server without the
    /// gate, and every client gets everything.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let server = fake_apiserver::FakeApiServer::builder().sharded_list_and_watch(false).build();
    /// assert!(!server.cluster().sharded_list_and_watch());
    /// # }
    /// ```
    pub fn sharded_list_and_watch(mut self, enabled: bool) -> Self {
        self.config.sharded_list_and_watch = enabled;
        self
    }

    /// Enforces RBAC ([`Cluster::enforce_rbac`]): requests made as an [`Identity`] — through
    /// [`FakeApiServer::service_as`], [`FakeApiServer::client_as`], the HTTP front's tokens, or a
    /// [`Request::user`] — are allowed only what the cluster's Roles, ClusterRoles and bindings grant,
    /// and refused with the real server's 403 otherwise. The bootstrap ClusterRoles and bindings are
    /// created. Off by default (everything is allowed).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use fake_apiserver::{FakeApiServer, Identity};
    /// use k8s_openapi::api::core::v1::ConfigMap;
    /// use kube::api::Api;
    /// let server = FakeApiServer::builder().rbac(true).build();
    /// let as_sa: Api<ConfigMap> = Api::namespaced(server.client_as(Identity::service_account("ns", "sa")), "ns");
    /// let err = as_sa.get("x").await.unwrap_err();
    /// assert!(err.to_string().contains(
    ///     r#"configmaps "x" is forbidden: User "system:serviceaccount:ns:sa" cannot get resource "configmaps" in API group "" in the namespace "ns""#
    /// ));
    /// # }
    /// ```
    pub fn rbac(mut self, enforce: bool) -> Self {
        self.config.rbac = enforce;
        self
    }

    /// Makes it a live cluster ([`live`]): bootstrap objects, built-in controllers, simulated
    /// Nodes and kubelets, on the cluster's clock. Off by default.
    pub fn live(mut self, live: live::LiveCluster) -> Self {
        self.live = Some(live);
        self
    }

    /// Builds the server. Call it inside the tokio runtime whose clock it should follow (a live
    /// cluster starts its controllers there).
    ///
    /// # Panics
    /// With [`Builder::live`], outside a tokio runtime (the controllers are a tokio task).
    pub fn build(self) -> FakeApiServer {
        let cluster = Cluster::new(&self.config);
        let live = self.live.map(|l| live::start(&cluster, &l, self.config.seed));
        FakeApiServer { cluster, live }
    }
}
