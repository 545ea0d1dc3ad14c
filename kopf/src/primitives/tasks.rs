//! Owned tasks: a spawned task belongs to its handle and is aborted when the handle is dropped, so
//! stopping (or crashing) an operator takes every task it started with it.

use std::future::Future;

/// A task aborted when this handle is dropped.
#[derive(Debug)]
pub(crate) struct OwnedTask<T> {
    handle: Option<tokio::task::JoinHandle<T>>,
}

impl<T: Send + 'static> OwnedTask<T> {
    pub(crate) fn spawn(future: impl Future<Output = T> + Send + 'static) -> Self {
        Self { handle: Some(tokio::spawn(future)) }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(tokio::task::JoinHandle::is_finished)
    }

    pub(crate) fn abort(&self) {
        if let Some(h) = &self.handle {
            h.abort();
        }
    }

    /// Waits for the task's end; `None` if it panicked or was aborted.
    pub(crate) async fn join(mut self) -> Option<T> {
        match self.handle.take() {
            Some(handle) => handle.await.ok(),
            None => None,
        }
    }
}

impl<T> Drop for OwnedTask<T> {
    fn drop(&mut self) {
        if let Some(h) = &self.handle {
            h.abort();
        }
    }
}
