//! The watch history: a bounded, resourceVersion-ordered log of every change, shared by all watches
//! (the real server's watch cache plus etcd's compaction). A watch from a resourceVersion older than
//! what the log still holds gets 410 Gone, as a real one does after compaction.

use std::collections::VecDeque;
use std::sync::Arc;

use super::objects::StoredObject;
use crate::resources::StorageKey;

/// The kind of a change, as watch events name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// An object was created.
    Added,
    /// An object was changed.
    Modified,
    /// An object was removed from storage.
    Deleted,
}

impl EventType {
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change of one object at one resourceVersion.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub(crate) rv: u64,
    pub(crate) key: Arc<StorageKey>,
    pub(crate) kind: EventType,
    /// The new state; for deletions, the last state at the deletion's resourceVersion.
    pub(crate) object: Arc<StoredObject>,
    /// The state before the change, if the object existed (selectors use it to turn a change into
    /// ADDED or DELETED when an object enters or leaves them).
    pub(crate) prev: Option<Arc<StoredObject>>,
}

/// The bounded change log.
#[derive(Debug)]
pub(crate) struct History {
    changes: VecDeque<Change>,
    capacity: usize,
    /// Every change at or below this resourceVersion has been dropped.
    compacted: u64,
}

impl History {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { changes: VecDeque::new(), capacity: capacity.max(1), compacted: 0 }
    }

    pub(crate) fn push(&mut self, change: Change) {
        if self.changes.len() >= self.capacity
            && let Some(dropped) = self.changes.pop_front()
        {
            self.compacted = dropped.rv;
        }
        self.changes.push_back(change);
    }

    /// The changes after `rv`, or `None` if some of them were already dropped.
    pub(crate) fn after(&self, rv: u64) -> Option<impl Iterator<Item = &Change>> {
        if rv < self.compacted {
            return None;
        }
        let start = self.changes.partition_point(|c| c.rv <= rv);
        Some(self.changes.range(start..))
    }

    /// The oldest resourceVersion a watch may still start from.
    pub(crate) fn compacted(&self) -> u64 {
        self.compacted
    }

    /// Drops every change up to and including `rv` (a test's forced compaction).
    pub(crate) fn compact(&mut self, rv: u64) {
        while self.changes.front().is_some_and(|c| c.rv <= rv) {
            self.changes.pop_front();
        }
        self.compacted = self.compacted.max(rv);
    }

    pub(crate) fn len(&self) -> usize {
        self.changes.len()
    }
}
