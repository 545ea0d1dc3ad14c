//! Toggles (Kopf's `aiotoggles`): named on/off switches grouped in a [`ToggleSet`] that is "on"
//! while any of its toggles is on. The operator's pause is one: a peering conflict per peering
//! object, and the absence of a mandatory peering resource, each hold a toggle; watch streams and
//! per-object workers follow the set's aggregate state through a `watch` channel.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

/// A set of toggles, on while any toggle in it is on. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct ToggleSet {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    toggles: Mutex<Toggles>,
    state: watch::Sender<bool>,
}

/// The toggles by id, with their names and states.
#[derive(Debug, Default)]
struct Toggles {
    next: u64,
    states: BTreeMap<u64, (String, bool)>,
}

/// One switch of a [`ToggleSet`]; removed from the set when dropped.
#[derive(Debug)]
pub(crate) struct Toggle {
    set: ToggleSet,
    id: u64,
}

impl Default for ToggleSet {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                toggles: Mutex::new(Toggles::default()),
                state: watch::channel(false).0,
            }),
        }
    }
}

impl ToggleSet {
    /// A new toggle in the set, initially `on` or off.
    pub(crate) fn make_toggle(&self, on: bool, name: impl Into<String>) -> Toggle {
        let id = {
            let mut toggles = self.lock();
            toggles.next += 1;
            let id = toggles.next;
            toggles.states.insert(id, (name.into(), on));
            id
        };
        self.publish();
        Toggle { set: self.clone(), id }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Toggles> {
        self.inner.toggles.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self) {
        let on = self.lock().states.values().any(|(_, on)| *on);
        self.inner.state.send_if_modified(|state| std::mem::replace(state, on) != on);
    }

    /// Whether any toggle is on.
    pub(crate) fn is_on(&self) -> bool {
        *self.inner.state.borrow()
    }

    /// The names of the toggles that are on (the blockers of a pause).
    pub(crate) fn names_on(&self) -> Vec<String> {
        self.lock().states.values().filter(|(_, on)| *on).map(|(name, _)| name.clone()).collect()
    }

    /// Follows the aggregate state.
    pub(crate) fn subscribe(&self) -> watch::Receiver<bool> {
        self.inner.state.subscribe()
    }
}

impl Toggle {
    /// Switches the toggle.
    pub(crate) fn turn_to(&self, on: bool) {
        if let Some(entry) = self.set.lock().states.get_mut(&self.id) {
            entry.1 = on;
        }
        self.set.publish();
    }
}

impl Drop for Toggle {
    fn drop(&mut self) {
        self.set.lock().states.remove(&self.id);
        self.set.publish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_is_on_while_any_toggle_is_on_and_a_dropped_toggle_counts_no_more() {
        let set = ToggleSet::default();
        let rx = set.subscribe();
        let a = set.make_toggle(false, "a");
        let b = set.make_toggle(true, "b");
        assert!(set.is_on() && *rx.borrow());
        assert_eq!(set.names_on(), vec!["b".to_owned()]);
        b.turn_to(false);
        assert!(!set.is_on());
        a.turn_to(true);
        assert!(set.is_on());
        drop(a);
        assert!(!set.is_on() && !*rx.borrow());
        drop(b);
    }
}
