//! More operators on one fake cluster: [`Runner::spawn_operator`] starts another operator — another
//! replica, a peer, a second version — on the runner's cluster, clock and timeline, through the
//! runner's client path. [`Runner::settle`] waits for all of them. The returned [`OperatorHandle`]
//! stops, crashes and starts its operator on its own, so a test can take one replica down, change
//! the cluster meanwhile, and bring it back.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use kopf::{Activity, ApiClient, Operator, RunOptions, RunningOperator};

use crate::runner::{Extras, Runner};
use crate::timeline::{Recording, Timeline};

impl Runner {
    /// Starts another operator on this runner's cluster and waits until it is ready (its watches
    /// listed); then [`Runner::settle`] waits for it as for the runner's own. Its lines in the
    /// timeline start with `[label]`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use kopf::{Operator, Shard};
    /// use kopf_testing::KopfRunner;
    /// let replica = |i| Operator::new().settings(move |s| {
    ///     s.watching.shard_selectors.insert_everything(Shard::new(i, 2).unwrap().selector());
    /// });
    /// let runner = KopfRunner::new(replica(0)).start().await;
    /// let mut second = runner.spawn_operator("replica-1", replica(1)).await;
    /// runner.settle().await;
    /// second.crash().await;           // down until started again
    /// assert!(!second.is_running());
    /// second.start().await;
    /// runner.settle().await;
    /// # }
    /// ```
    ///
    /// # Panics
    /// If the operator's registration is invalid or it does not start (mistakes in the test).
    pub async fn spawn_operator(&self, label: &str, operator: Operator) -> OperatorHandle {
        if let Err(errors) = operator.check() {
            panic!("the operator {label} is misconfigured: {errors:?}");
        }
        let client: Arc<dyn ApiClient> = Arc::new(Recording {
            inner: self.adapter_client.clone(),
            timeline: self.timeline.clone(),
            prefix: format!("[{label}] "),
            forbidden: self.forbidden.clone(),
        });
        let mut handle = OperatorHandle {
            id: self.next_extra.fetch_add(1, Ordering::SeqCst),
            label: label.to_owned(),
            operator,
            client,
            clock: self.clock,
            timeline: self.timeline.clone(),
            namespaces: self.namespaces.clone(),
            extras: self.extras.clone(),
            running: None,
            activity: Activity::default(),
        };
        handle.start().await;
        handle
    }
}

/// An operator started by [`Runner::spawn_operator`]. Dropping it aborts the operator.
pub struct OperatorHandle {
    id: u64,
    label: String,
    operator: Operator,
    client: Arc<dyn ApiClient>,
    clock: kopf::Clock,
    timeline: Timeline,
    namespaces: kopf::Namespaces,
    extras: Extras,
    running: Option<RunningOperator>,
    activity: Activity,
}

impl std::fmt::Debug for OperatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorHandle")
            .field("label", &self.label)
            .field("running", &self.running.is_some())
            .finish_non_exhaustive()
    }
}

impl OperatorHandle {
    /// The label given at the start.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The operator's counters of work in progress (fresh at each start).
    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    /// Whether the operator is running (started and neither stopped nor crashed).
    pub fn is_running(&self) -> bool {
        self.running.as_ref().is_some_and(|r| !r.is_finished())
    }

    /// Starts the operator (again) and waits until it is ready; does nothing if it runs. It does
    /// not settle: call [`Runner::settle`].
    ///
    /// # Panics
    /// If the operator does not start.
    pub async fn start(&mut self) {
        if self.running.is_some() {
            return;
        }
        self.activity = Activity::default();
        self.registry().insert(self.id, self.activity.clone());
        let options = RunOptions {
            namespaces: self.namespaces.clone(),
            clock: Some(self.clock),
            activity: Some(self.activity.clone()),
            observer: Some(Arc::new(self.timeline.labelled(&self.label))),
            connect: Some(Arc::new({
                let client = self.client.clone();
                move |_info: &kopf::ConnectionInfo| Ok(client.clone())
            })),
            // The label is the operator's identity among its peers.
            identity: Some(self.label.clone()),
        };
        let mut running = self
            .operator
            .clone()
            .spawn(self.client.clone(), options)
            .unwrap_or_else(|e| panic!("the operator {} did not start: {e}", self.label));
        running.ready().await;
        self.running = Some(running);
        self.timeline.record("runner", format!("[{}] operator started", self.label));
    }

    /// Stops the operator gracefully (handlers and daemons finish or are cancelled as in
    /// production) and leaves it down until [`OperatorHandle::start`].
    ///
    /// # Panics
    /// If the operator fails while stopping.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop();
            if let Err(e) = running.join().await {
                panic!("the operator {} failed while stopping: {e}", self.label);
            }
        }
        self.registry().remove(&self.id);
        self.timeline.record("runner", format!("[{}] operator stopped gracefully", self.label));
    }

    /// Aborts the operator at its current await point (mid-handler, mid-patch), as a killed
    /// process ends, and leaves it down until [`OperatorHandle::start`]. Unlike
    /// [`Runner::crash`], it does not start it again.
    pub async fn crash(&mut self) {
        if let Some(running) = self.running.take() {
            running.abort();
            let _ = running.join().await;
        }
        self.registry().remove(&self.id);
        self.timeline.record("runner", format!("[{}] operator crashed", self.label));
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<u64, Activity>> {
        self.extras.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for OperatorHandle {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.abort();
        }
        self.registry().remove(&self.id);
    }
}
