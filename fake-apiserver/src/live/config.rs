//! What a live cluster is made of: which controllers run ([`Controller`]), whether the bootstrap
//! objects exist, which Nodes there are ([`NodeTemplate`]) and how simulated containers behave
//! ([`Rule`]s). [`LiveCluster`] collects it for [`crate::Builder::live`].

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::behaviour::Rule;

/// One built-in control loop of the live cluster, each switchable on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Controller {
    /// kube-scheduler: binds Pods to Nodes (nodeSelector, affinity, taints, capacity).
    Scheduler,
    /// The kubelets of the simulated Nodes: Pod lifecycles, Node status and Lease renewals.
    Kubelet,
    /// The node lifecycle controller: unreachable Nodes, NoSchedule/NoExecute taints, evictions,
    /// and the Pod garbage collection of Pods on vanished Nodes.
    NodeLifecycle,
    /// Deployments → ReplicaSets (rolling updates, revisions, conditions).
    Deployment,
    /// ReplicaSets → Pods.
    ReplicaSet,
    /// StatefulSets → ordered Pods and their PersistentVolumeClaims.
    StatefulSet,
    /// DaemonSets → one Pod per matching Node.
    DaemonSet,
    /// Jobs → Pods (parallelism, completions, backoffLimit, deadlines, TTL after finished).
    Job,
    /// CronJobs → Jobs on the cluster's clock.
    CronJob,
    /// Services → EndpointSlices of their ready Pods.
    EndpointSlice,
    /// The `default` ServiceAccount in every namespace.
    ServiceAccount,
    /// The `kube-root-ca.crt` ConfigMap in every namespace.
    RootCaPublisher,
    /// Binds PersistentVolumeClaims at once to simulated PersistentVolumes.
    VolumeBinder,
}

impl Controller {
    /// Every controller, in the order they act on a batch of changes.
    pub const ALL: [Controller; 13] = [
        Controller::ServiceAccount,
        Controller::RootCaPublisher,
        Controller::CronJob,
        Controller::Job,
        Controller::Deployment,
        Controller::ReplicaSet,
        Controller::StatefulSet,
        Controller::DaemonSet,
        Controller::VolumeBinder,
        Controller::Scheduler,
        Controller::Kubelet,
        Controller::NodeLifecycle,
        Controller::EndpointSlice,
    ];

    /// The name used in journals, on the command line (`--without scheduler`) and in errors.
    pub fn name(self) -> &'static str {
        match self {
            Self::Scheduler => "scheduler",
            Self::Kubelet => "kubelet",
            Self::NodeLifecycle => "node-lifecycle",
            Self::Deployment => "deployment",
            Self::ReplicaSet => "replicaset",
            Self::StatefulSet => "statefulset",
            Self::DaemonSet => "daemonset",
            Self::Job => "job",
            Self::CronJob => "cronjob",
            Self::EndpointSlice => "endpointslice",
            Self::ServiceAccount => "serviceaccount",
            Self::RootCaPublisher => "root-ca-publisher",
            Self::VolumeBinder => "volume-binder",
        }
    }
}

impl std::fmt::Display for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A controller name that is not one of [`Controller::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown controller {0:?}; known: scheduler, kubelet, node-lifecycle, deployment, replicaset, statefulset, daemonset, job, cronjob, endpointslice, serviceaccount, root-ca-publisher, volume-binder"
)]
pub struct UnknownController(pub String);

impl std::str::FromStr for Controller {
    type Err = UnknownController;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|c| c.name() == s).ok_or_else(|| UnknownController(s.to_owned()))
    }
}

/// A Node of the live cluster: name, capacity, labels and taints. The kubelet keeps it Ready and
/// renews its Lease in `kube-node-lease`.
///
/// ```
/// use fake_apiserver::live::NodeTemplate;
/// let gpu = NodeTemplate::new("gpu-1").capacity("cpu", "32").label("accelerator", "a100")
///     .taint("gpu", "true", "NoSchedule");
/// assert_eq!(gpu.name(), "gpu-1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct NodeTemplate {
    name: String,
    capacity: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    taints: Vec<(String, String, String)>,
}

impl NodeTemplate {
    /// A node with the default capacity (8 CPUs, 16 GiB of memory, 100 GiB of ephemeral storage,
    /// 110 Pods), the well-known labels and no taints.
    pub fn new(name: impl Into<String>) -> Self {
        let capacity = [("cpu", "8"), ("memory", "16Gi"), ("ephemeral-storage", "100Gi"), ("pods", "110")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self { name: name.into(), capacity, labels: BTreeMap::new(), taints: Vec::new() }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets one capacity (and allocatable) entry, e.g. `("cpu", "4")`, `("pods", "250")`.
    pub fn capacity(mut self, resource: impl Into<String>, quantity: impl Into<String>) -> Self {
        self.capacity.insert(resource.into(), quantity.into());
        self
    }

    /// Adds a label (beside `kubernetes.io/hostname`, `kubernetes.io/os` and `kubernetes.io/arch`).
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Adds a taint; `effect` is `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub fn taint(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
        effect: impl Into<String>,
    ) -> Self {
        self.taints.push((key.into(), value.into(), effect.into()));
        self
    }

    /// The Node object as the kubelet registers it; `index` numbers its addresses and Pod CIDR.
    pub(crate) fn to_node(&self, index: usize, now: &str) -> Value {
        let mut labels: BTreeMap<String, String> = [
            ("beta.kubernetes.io/arch", "amd64"),
            ("beta.kubernetes.io/os", "linux"),
            ("kubernetes.io/arch", "amd64"),
            ("kubernetes.io/hostname", self.name.as_str()),
            ("kubernetes.io/os", "linux"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        labels.extend(self.labels.clone());
        let taints: Vec<Value> =
            self.taints.iter().map(|(k, v, e)| json!({"key": k, "value": v, "effect": e})).collect();
        let mut node = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": labels,
                "annotations": {"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
            },
            "spec": {
                "podCIDR": pod_cidr(index),
                "podCIDRs": [pod_cidr(index)],
                "providerID": format!("fake://{}", self.name),
            },
            "status": {
                "capacity": self.capacity,
                "allocatable": self.capacity,
                "addresses": [
                    {"type": "InternalIP", "address": node_ip(index)},
                    {"type": "Hostname", "address": self.name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "architecture": "amd64",
                    "bootID": format!("00000000-0000-4000-8000-{index:012x}"),
                    "containerRuntimeVersion": "fake://1.0.0",
                    "kernelVersion": "6.1.0-fake",
                    "kubeProxyVersion": "",
                    "kubeletVersion": format!("v{}.{}.0", crate::KUBERNETES_VERSION.0, crate::KUBERNETES_VERSION.1),
                    "machineID": format!("{index:032x}"),
                    "operatingSystem": "linux",
                    "osImage": "fake-apiserver simulated node",
                    "systemUUID": format!("00000000-0000-4000-8000-{index:012x}"),
                },
                "conditions": super::nodes::conditions(true, now, now),
                "phase": "Running",
            },
        });
        if !taints.is_empty() {
            node["spec"]["taints"] = Value::Array(taints);
        }
        node
    }
}

/// The Pod CIDR of the node with this index: `10.244.<index>.0/24`, as kind and flannel assign.
pub(crate) fn pod_cidr(index: usize) -> String {
    format!("10.244.{}.0/24", index % 256)
}

/// The InternalIP of the node with this index (`172.18.0.<index + 2>`, as on kind's network).
pub(crate) fn node_ip(index: usize) -> String {
    format!("172.18.{}.{}", (index + 2) / 256, (index + 2) % 256)
}

/// The configuration of a live cluster: bootstrap objects, controllers, Nodes and container
/// behaviour rules. [`LiveCluster::new`] turns everything on; remove what a test does not want.
///
/// ```
/// use fake_apiserver::FakeApiServer;
/// use fake_apiserver::live::{Controller, LiveCluster, NodeTemplate};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let server = FakeApiServer::builder()
///     .live(LiveCluster::new().nodes(3).without(Controller::CronJob))
///     .build();
/// let nodes = server.cluster().objects("", "nodes");
/// assert_eq!(nodes.iter().map(|n| n.name()).collect::<Vec<_>>(), ["node-1", "node-2", "node-3"]);
/// assert!(server.control_plane().is_some());
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct LiveCluster {
    pub(crate) controllers: BTreeSet<Controller>,
    pub(crate) bootstrap: bool,
    pub(crate) nodes: Vec<NodeTemplate>,
    pub(crate) rules: Vec<Rule>,
    pub(crate) root_ca: Option<String>,
}

impl Default for LiveCluster {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveCluster {
    /// Everything on: the bootstrap objects, every [`Controller`], one Node (`node-1`) and the
    /// default behaviour rules ([`Rule::defaults`]).
    pub fn new() -> Self {
        Self {
            controllers: Controller::ALL.into_iter().collect(),
            bootstrap: true,
            nodes: vec![NodeTemplate::new("node-1")],
            rules: Rule::defaults(),
            root_ca: None,
        }
    }

    /// The bootstrap objects and Nodes, but no controller; add them with [`LiveCluster::with`].
    pub fn without_controllers() -> Self {
        Self { controllers: BTreeSet::new(), ..Self::new() }
    }

    /// Turns a controller on.
    pub fn with(mut self, controller: Controller) -> Self {
        self.controllers.insert(controller);
        self
    }

    /// Turns a controller off.
    pub fn without(mut self, controller: Controller) -> Self {
        self.controllers.remove(&controller);
        self
    }

    /// Whether the fresh cluster's objects (the `kubernetes` Service, RBAC roles, priority classes,
    /// the default StorageClass, ServiceAccounts and CA ConfigMaps) are created (default: yes).
    pub fn bootstrap(mut self, on: bool) -> Self {
        self.bootstrap = on;
        self
    }

    /// `count` default Nodes named `node-1` … `node-<count>`, replacing the Nodes so far.
    pub fn nodes(mut self, count: usize) -> Self {
        self.nodes = (1..=count).map(|i| NodeTemplate::new(format!("node-{i}"))).collect();
        self
    }

    /// Adds a Node.
    pub fn node(mut self, node: NodeTemplate) -> Self {
        self.nodes.push(node);
        self
    }

    /// Adds a behaviour rule after the ones so far (later rules override earlier ones).
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Replaces the behaviour rules (including the defaults).
    pub fn rules(mut self, rules: impl IntoIterator<Item = Rule>) -> Self {
        self.rules = rules.into_iter().collect();
        self
    }

    /// The CA certificate (PEM) the root-CA publisher puts in every `kube-root-ca.crt`; by default
    /// a deterministic self-signed CA of the cluster's seed.
    pub fn root_ca(mut self, pem: impl Into<String>) -> Self {
        self.root_ca = Some(pem.into());
        self
    }

    /// Whether a controller is on.
    pub fn has(&self, controller: Controller) -> bool {
        self.controllers.contains(&controller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_parse_from_their_names_and_reject_others() {
        for c in Controller::ALL {
            assert_eq!(c.name().parse::<Controller>(), Ok(c));
        }
        assert_eq!("kube-proxy".parse::<Controller>(), Err(UnknownController("kube-proxy".into())));
    }

    #[test]
    fn nodes_are_numbered_and_replace_the_default_node() {
        let live = LiveCluster::new().nodes(2).node(NodeTemplate::new("extra"));
        let names: Vec<&str> = live.nodes.iter().map(NodeTemplate::name).collect();
        assert_eq!(names, ["node-1", "node-2", "extra"]);
        assert!(!LiveCluster::new().without(Controller::Job).has(Controller::Job));
    }
}
