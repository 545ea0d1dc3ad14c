//! Operator settings, grouped and named as Kopf's `OperatorSettings`, with Kopf's defaults. Each
//! field is read by the code it configures; change them before the operator runs
//! (`Operator::settings`).

use std::time::Duration;

use crate::persistence::{DiffBaseStorage, ProgressStorage};
use crate::structs::references::SelectorMapping;

/// All settings of an operator.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Settings {
    /// Kubernetes Events posted by the framework and by handlers.
    pub posting: PostingSettings,
    /// Watch streams.
    pub watching: WatchingSettings,
    /// Per-object workers.
    pub queueing: QueueingSettings,
    /// Handler execution.
    pub execution: ExecutionSettings,
    /// API request retries.
    pub networking: NetworkingSettings,
    /// What kopf stores on objects.
    pub persistence: PersistenceSettings,
    /// Daemons and timers.
    pub background: BackgroundSettings,
    /// Peering: which operators pause in favour of which (see [`PeeringSettings`]).
    pub peering: PeeringSettings,
    /// The liveness endpoint with the probes' results and the metrics.
    pub liveness: LivenessSettings,
    /// Admission webhooks.
    pub admission: AdmissionSettings,
}

/// `settings.liveness` (Kopf's `--liveness` / `run(liveness_endpoint=...)`).
#[derive(Debug, Clone, Default)]
pub struct LivenessSettings {
    /// `http://host:port/path`: `GET path` answers the probe handlers' results as JSON (run at
    /// most every 10 s), `GET /metrics` the metrics in Prometheus' text format (default: none).
    pub endpoint: Option<String>,
}

/// `settings.admission`: where admission handlers are served, and whether the operator manages
/// the webhook configurations.
///
/// ```
/// let operator = kopf::Operator::new().settings(|s| {
///     s.admission.server = Some(std::sync::Arc::new(kopf::WebhookServer::new().port(9443)));
///     s.admission.managed = Some("auto.kopf.dev".into());
/// });
/// # let _ = operator;
/// ```
#[derive(Debug, Clone, Default)]
pub struct AdmissionSettings {
    /// The webhook server or tunnel (required when there are admission handlers).
    pub server: Option<std::sync::Arc<dyn crate::engines::admission::AdmissionServer>>,
    /// The name of the `ValidatingWebhookConfiguration` and `MutatingWebhookConfiguration` the
    /// operator creates and keeps up to date (Kopf's convention: `auto.kopf.dev`); `None`: the
    /// configurations are the user's business.
    pub managed: Option<String>,
}

/// The severity of a log message or Kubernetes Event (Kopf's levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warning.
    Warning,
    /// Error.
    Error,
    /// Critical.
    Critical,
}

impl Level {
    /// The Event type Kopf derives from a level: `Debug`, `Normal`, `Warning`, `Error`, `Fatal`.
    pub fn event_type(self) -> &'static str {
        match self {
            Self::Debug => "Debug",
            Self::Info => "Normal",
            Self::Warning => "Warning",
            Self::Error => "Error",
            Self::Critical => "Fatal",
        }
    }
}

/// `settings.posting`.
#[derive(Debug, Clone)]
pub struct PostingSettings {
    /// Post Events at all (default: true).
    pub enabled: bool,
    /// Also post the handlers' log messages as Events (default: false, as in Kopf 1.45).
    pub loggers: bool,
    /// The lowest level posted (default: Info).
    pub level: Level,
    /// `reportingComponent` and `source.component` (default: `kopf`).
    pub reporting_component: String,
    /// `reportingInstance` (default: `dev`).
    pub reporting_instance: String,
    /// `generateName` of the Events (default: `kopf-event-`).
    pub event_name_prefix: String,
}

impl Default for PostingSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            loggers: false,
            level: Level::Info,
            reporting_component: "kopf".into(),
            reporting_instance: "dev".into(),
            event_name_prefix: "kopf-event-".into(),
        }
    }
}

/// `settings.watching`.
#[derive(Debug, Clone)]
pub struct WatchingSettings {
    /// Sent as `timeoutSeconds` on watches (default: none).
    pub server_timeout: Option<Duration>,
    /// Pause between watch requests (default: 0.1 s).
    pub reconnect_backoff: Duration,
    /// Reconnect when no event or bookmark arrives for this long (default: 70 s).
    pub inactivity_timeout: Option<Duration>,
    /// `shardSelector`s per resource (Kopf 1.45's `settings.watching.shard_selectors`), passed to
    /// every list and watch of the resources they apply to — the first inserted that applies.
    /// With a selector, an API server with the `ShardedListAndWatch` feature gate (Kubernetes
    /// 1.36+) sends this operator only the objects whose uid (or namespace) hashes into its
    /// ranges; one without it ignores the parameter and sends everything, which the operator
    /// reports as a warning. [`crate::Shard`] makes the selector of replica `i` of `n`.
    ///
    /// It is the operators' business that their ranges cover the whole hash space: objects in a
    /// range no running replica owns are not handled until one does. Peers of the same priority
    /// do not pause each other while any selector is set (see Kopf's peering).
    pub shard_selectors: SelectorMapping<String>,
}

impl Default for WatchingSettings {
    fn default() -> Self {
        Self {
            server_timeout: None,
            reconnect_backoff: Duration::from_millis(100),
            inactivity_timeout: Some(Duration::from_secs(70)),
            shard_selectors: SelectorMapping::default(),
        }
    }
}

/// `settings.queueing`.
#[derive(Debug, Clone)]
pub struct QueueingSettings {
    /// At most this many objects processed at once per watched resource (default: unlimited).
    pub worker_limit: Option<usize>,
    /// A worker exits after this long with nothing to do (default: 5 s).
    pub idle_timeout: Duration,
    /// Delays of the per-object throttler after framework errors (the last repeats).
    pub error_delays: Vec<Duration>,
}

impl Default for QueueingSettings {
    fn default() -> Self {
        Self {
            worker_limit: None,
            idle_timeout: Duration::from_secs(5),
            error_delays: [1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610]
                .map(Duration::from_secs)
                .to_vec(),
        }
    }
}

/// `settings.execution`.
#[derive(Debug, Clone)]
pub struct ExecutionSettings {
    /// Retry delay after an arbitrary error (default: 60 s).
    pub default_backoff: Duration,
    /// At most this many blocking handlers run at once (default: unlimited).
    pub max_workers: Option<usize>,
}

impl Default for ExecutionSettings {
    fn default() -> Self {
        Self { default_backoff: Duration::from_secs(60), max_workers: None }
    }
}

/// `settings.networking`.
#[derive(Debug, Clone)]
pub struct NetworkingSettings {
    /// Waits between retries of failed requests (connection errors, 5xx, 403, 429).
    pub error_backoffs: Vec<Duration>,
    /// With a 429, wait exactly `Retry-After` instead of `max(backoff, Retry-After)`.
    pub enforce_retry_after: bool,
    /// A request taking longer fails (default: 300 s).
    pub request_timeout: Option<Duration>,
}

impl Default for NetworkingSettings {
    fn default() -> Self {
        Self {
            error_backoffs: [1, 1, 2, 3, 5, 8, 13, 21].map(Duration::from_secs).to_vec(),
            enforce_retry_after: false,
            request_timeout: Some(Duration::from_secs(300)),
        }
    }
}

/// `settings.background`: how daemons are stopped.
#[derive(Debug, Clone)]
pub struct BackgroundSettings {
    /// How often a stopping blocking daemon without `cancellation_timeout` is reported as still
    /// running (Kopf: 60 s).
    pub cancellation_polling: Duration,
    /// How long a stopped daemon may take to exit by itself before the cancellation sequence
    /// (Kopf: none — zero-time cycles instead).
    pub instant_exit_timeout: Option<Duration>,
    /// How many zero-time cycles a stopped daemon gets to exit by itself (Kopf: 10).
    pub instant_exit_zero_time_cycles: u32,
}

impl Default for BackgroundSettings {
    fn default() -> Self {
        Self {
            cancellation_polling: Duration::from_secs(60),
            instant_exit_timeout: None,
            instant_exit_zero_time_cycles: 10,
        }
    }
}

/// `settings.persistence`.
#[derive(Debug, Clone)]
pub struct PersistenceSettings {
    /// The finalizer kopf puts on objects that need it.
    pub finalizer: String,
    /// Where handler progress is kept.
    pub progress_storage: ProgressStorage,
    /// Where the diff-base is kept.
    pub diffbase_storage: DiffBaseStorage,
    /// How long to wait for the watch echo of our own patch (0 disables waiting).
    pub consistency_timeout: Duration,
}

impl Default for PersistenceSettings {
    fn default() -> Self {
        Self {
            finalizer: "kopf.zalando.org/KopfFinalizerMarker".into(),
            progress_storage: ProgressStorage::default(),
            diffbase_storage: DiffBaseStorage::default(),
            consistency_timeout: Duration::from_secs(5),
        }
    }
}

/// `settings.peering`: how this operator finds its peers and yields to them (Kopf's peering).
///
/// Operators that share a peering object (`KopfPeering` in each served namespace, or
/// `ClusterKopfPeering` for cluster-wide operators, named [`PeeringSettings::name`]) write a
/// keep-alive record there every `lifetime - 5..10` seconds; one that sees a live peer of a higher
/// priority — or the same one — pauses: its watch streams close and no handler, daemon or timer
/// runs until that peer leaves or its record expires.
#[derive(Debug, Clone)]
pub struct PeeringSettings {
    /// The peering object's name (default: `default`); peers of one name see only each other.
    pub name: String,
    /// This operator's priority (default: 0); `--dev` is 666.
    pub priority: i64,
    /// For how long this operator's record counts as alive, in seconds (default: 60).
    pub lifetime: u64,
    /// Whether keep-alives are logged quietly (default: false).
    pub stealth: bool,
    /// Whether peering is required (default: false, set by `--peering NAME`): the operator stays
    /// paused while the peering resource or object is absent. Otherwise peering is used only if the
    /// peering resource is served (Kopf's auto-detection).
    pub mandatory: bool,
    /// Whether peering is off (default: false; `--standalone`).
    pub standalone: bool,
    /// Whether the cluster-wide peering is used (`ClusterKopfPeering`) rather than the namespaced
    /// one; set by the run from the namespaces it serves (all namespaces: cluster-wide).
    pub clusterwide: bool,
}

impl Default for PeeringSettings {
    fn default() -> Self {
        Self {
            name: "default".into(),
            priority: 0,
            lifetime: 60,
            stealth: false,
            mandatory: false,
            standalone: false,
            clusterwide: false,
        }
    }
}

impl Settings {
    /// Sets the prefix of progress and diff-base annotations and the finalizer together — the
    /// operator's identity, so two operators on one resource keep apart (Kopf's advice).
    #[must_use]
    pub fn with_identity(mut self, prefix: &str) -> Self {
        self.persistence.progress_storage.prefix = prefix.to_owned();
        self.persistence.diffbase_storage.prefix = prefix.to_owned();
        self.persistence.finalizer = format!("{prefix}/KopfFinalizerMarker");
        self
    }
}
