//! Memos: per-object typed containers kept across handler calls (Kopf's `memo`), and the
//! operator-wide one copied into each object's at first sight.

use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

type Entry = Box<dyn CloneAny>;

trait CloneAny: Any + Send + Sync {
    fn clone_box(&self) -> Entry;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Clone + Send + Sync> CloneAny for T {
    fn clone_box(&self) -> Entry {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A typed memo: at most one value per type. Cheap to clone (clones share the values).
///
/// ```
/// let memo = kopf::Memo::default();
/// memo.insert(3u32);
/// memo.update(|n: &mut u32| *n += 1);
/// assert_eq!(memo.get::<u32>(), Some(4));
/// ```
#[derive(Default, Clone)]
pub struct Memo {
    values: Arc<Mutex<BTreeMap<TypeId, Entry>>>,
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memo").field("entries", &self.lock().len()).finish()
    }
}

impl Memo {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<TypeId, Entry>> {
        self.values.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores a value, replacing any of the same type.
    pub fn insert<T: Any + Clone + Send + Sync>(&self, value: T) {
        self.lock().insert(TypeId::of::<T>(), Box::new(value));
    }

    /// A copy of the value of type `T`, if any.
    pub fn get<T: Any + Clone + Send + Sync>(&self) -> Option<T> {
        self.lock().get(&TypeId::of::<T>()).and_then(|v| (**v).as_any().downcast_ref::<T>().cloned())
    }

    /// Changes the value of type `T` in place (inserting `T::default()` first if absent); returns
    /// what `f` returns.
    pub fn update<T: Any + Clone + Default + Send + Sync, R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut values = self.lock();
        let entry = values.entry(TypeId::of::<T>()).or_insert_with(|| Box::new(T::default()));
        match (**entry).as_any_mut().downcast_mut::<T>() {
            Some(value) => f(value),
            None => f(&mut T::default()), // unreachable: entries are keyed by their type
        }
    }

    /// Removes the value of type `T`.
    pub fn remove<T: Any>(&self) {
        self.lock().remove(&TypeId::of::<T>());
    }

    /// An independent copy: values are cloned (Kopf's `copy.copy(memo)` for each object).
    #[must_use]
    pub fn deep_copy(&self) -> Self {
        let copied = self.lock().iter().map(|(k, v)| (*k, (**v).clone_box())).collect();
        Self { values: Arc::new(Mutex::new(copied)) }
    }
}
