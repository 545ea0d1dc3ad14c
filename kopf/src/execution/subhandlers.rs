//! Sub-handlers (Kopf's `kopf.execute()` / `@kopf.subhandler`): a changing handler runs children
//! created at run time, each with its own progress record under `parent/child`, its own retries and
//! result (`status["parent/child"]`). One pending child runs per cycle (Kopf's `asap`); while some are
//! unfinished the parent is retried after the soonest child delay, and on each retry the finished
//! children are skipped — also after a restart or a crash, since their records are on the object.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use super::progression::{HandlerState, deliver_result};
use super::{Attempt, Runtime};
use crate::client::BoxFuture;
use crate::context::Context;
use crate::error::{ErrorsMode, HandlerError};
use crate::observe::Observation;
use crate::operator::HandlerReturn;
use crate::registry::{DecodeCache, Handler, Invoker};
use crate::structs::ids::HandlerId;

type ChildFn = Arc<dyn Fn(Context) -> BoxFuture<'static, Result<Option<Value>, HandlerError>> + Send + Sync>;

/// A child handler for [`Context::execute`]: an id (unique among its siblings) and a closure.
///
/// ```
/// use kopf::{Context, HandlerError, Subhandler};
/// let child = Subhandler::new("item-1", |ctx: Context| async move {
///     ctx.info("handling item 1");
///     Ok::<_, HandlerError>(())
/// });
/// assert_eq!(child.id(), "item-1");
/// ```
#[derive(Clone)]
pub struct Subhandler {
    id: String,
    run: ChildFn,
}

impl std::fmt::Debug for Subhandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subhandler").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Subhandler {
    /// A child with this id running `f`.
    pub fn new<F, Fut>(id: impl Into<String>, f: F) -> Self
    where
        F: Fn(Context) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerReturn,
    {
        let run: ChildFn = Arc::new(move |ctx: Context| {
            let future = f(ctx);
            Box::pin(async move { future.await.into_outcome() })
        });
        Self { id: id.into(), run }
    }

    /// The child's id (the stored one is `parent/child`).
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// What a parent's attempt knows and collects about its children.
pub(crate) struct Children {
    pub(crate) parent: HandlerId,
    pub(crate) purpose: Option<String>,
    pub(crate) states: Mutex<BTreeMap<String, HandlerState>>,
    pub(crate) subrefs: Mutex<BTreeSet<String>>,
}

impl std::fmt::Debug for Children {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Children").field("parent", &self.parent).finish_non_exhaustive()
    }
}

impl Children {
    pub(crate) fn new(parent: HandlerId, purpose: Option<String>) -> Arc<Self> {
        Arc::new(Self { parent, purpose, states: Mutex::default(), subrefs: Mutex::default() })
    }

    fn lock_states(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, HandlerState>> {
        self.states.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The children's states (for storing) and the parent's subrefs, after the parent's attempt.
    pub(crate) fn take(&self) -> (BTreeMap<String, HandlerState>, Vec<String>) {
        let states = std::mem::take(&mut *self.lock_states());
        let subrefs =
            std::mem::take(&mut *self.subrefs.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        (states, subrefs.into_iter().collect())
    }
}

/// Runs one cycle of the children (see the module docs).
pub(crate) async fn execute(ctx: &Context, children: Vec<Subhandler>) -> Result<(), HandlerError> {
    let Some(family) = ctx.children() else {
        return Err(HandlerError::permanent(
            "sub-handlers can only run inside create/update/delete/resume/field handlers",
        ));
    };
    let rt: &Runtime = ctx.rt();
    let storage = &rt.settings.persistence.progress_storage;
    let now = rt.clock.now();
    let body = Arc::new(ctx.body().clone());
    let mut ids = Vec::new();
    {
        let mut states = family.lock_states();
        let mut subrefs = family.subrefs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for child in &children {
            let id = format!("{}/{}", family.parent.as_str(), child.id);
            if ids.contains(&id) {
                return Err(HandlerError::permanent(format!("duplicate sub-handler id {id:?}")));
            }
            subrefs.insert(id.clone());
            states.entry(id.clone()).or_insert_with(|| match storage.fetch(&id, &body) {
                Some(record) => HandlerState::from_storage(record, now),
                None => {
                    let mut fresh = HandlerState::from_scratch(now, family.purpose.as_deref());
                    fresh.active = false;
                    fresh
                }
            });
            ids.push(id);
        }
    }
    // Kopf's `asap`: the awakened child with the fewest retries, one per cycle.
    let next = {
        let states = family.lock_states();
        children
            .iter()
            .zip(&ids)
            .filter(|(_, id)| states.get(*id).is_some_and(|s| s.awakened(now)))
            .min_by_key(|(_, id)| states.get(*id).map_or(0, |s| s.retries))
            .map(|(child, id)| (child.clone(), id.clone(), states.get(id).cloned()))
    };
    if let Some((child, id, Some(state))) = next {
        let handler = Handler::transient(HandlerId::new(id.clone()), invoker(child.run));
        let runtime = state.runtime(now);
        let child_ctx = ctx.for_child(handler.id.clone(), state.retries, state.started, runtime);
        let outcome = super::execute(
            &handler,
            body.clone(),
            &DecodeCache::default(),
            child_ctx,
            Attempt { retries: state.retries, runtime },
            rt,
            ErrorsMode::Temporary,
        )
        .await;
        let (namespace, name) = crate::reactor::processing::names(&body);
        rt.observe(|| Observation::Handler {
            id: id.clone(),
            namespace,
            name,
            retry: state.retries,
            outcome: outcome.label(),
        });
        if let Some(result) = &outcome.result {
            deliver_result(&id, result, ctx.patch());
        }
        family.lock_states().insert(id, state.with_outcome(&outcome, rt.clock.now()));
    }
    let states = family.lock_states();
    let mine: Vec<&HandlerState> = ids.iter().filter_map(|id| states.get(id)).collect();
    if mine.iter().all(|s| s.finished()) {
        return match mine.iter().filter(|s| s.failure).count() {
            0 => Ok(()),
            failed => Err(HandlerError::permanent(format!("{failed} sub-handler(s) failed."))),
        };
    }
    let after = rt.clock.now();
    let delay = mine
        .iter()
        .filter(|s| !s.finished())
        .map(|s| delay_until(s.delayed, after))
        .min()
        .unwrap_or(Duration::ZERO);
    Err(HandlerError::temporary("sub-handlers are not finished yet").with_delay(delay))
}

fn delay_until(delayed: Option<Timestamp>, now: Timestamp) -> Duration {
    delayed.map_or(Duration::ZERO, |d| Duration::try_from(d.duration_since(now)).unwrap_or(Duration::ZERO))
}

fn invoker(run: ChildFn) -> Invoker {
    Arc::new(move |_body: Arc<Value>, _cache: &DecodeCache, ctx: Context| run(ctx))
}
