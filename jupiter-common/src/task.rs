//! The background tasks a role starts while it serves (a task run, a file
//! being fed on, an appointment), kept so that they end with the role.

use crate::sync::LockExt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::task::JoinSet;

/// A set of background tasks. Closing it aborts them all at once, as a
/// crash would, and any task spawned afterwards is dropped unstarted: a
/// call still in flight on a stopped role must not start work again.
/// Clones share the set.
#[derive(Clone)]
pub struct Tasks(Arc<Mutex<Option<JoinSet<()>>>>);

impl Default for Tasks {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Some(JoinSet::new()))))
    }
}

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.locked().as_ref() {
            Some(set) => write!(f, "Tasks({} running)", set.len()),
            None => f.write_str("Tasks(closed)"),
        }
    }
}

impl Tasks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `task` in the background, unless the set is closed.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        if let Some(set) = self.0.locked().as_mut() {
            // Reap finished tasks so a long-lived role does not pile them up.
            while set.try_join_next().is_some() {}
            set.spawn(task);
        }
    }

    /// Aborts every task and refuses new ones.
    pub fn close(&self) {
        let set = self.0.locked().take();
        // Dropped outside the lock: a task's drop may spawn (and be refused).
        drop(set);
    }

    pub fn is_closed(&self) -> bool {
        self.0.locked().is_none()
    }

    /// Closes the set when dropped: `serve` holds it, so that the tasks end
    /// however `serve` ends, returning or dropped with its task.
    pub fn close_on_drop(&self) -> CloseOnDrop {
        CloseOnDrop(self.clone())
    }
}

/// See [`Tasks::close_on_drop`].
#[must_use = "the tasks are closed when this is dropped"]
#[derive(Debug)]
pub struct CloseOnDrop(Tasks);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::Tasks;
    use std::time::Duration;

    #[tokio::test]
    async fn closing_aborts_running_tasks_and_refuses_new_ones() {
        let tasks = Tasks::new();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (_never_tx, never_rx) = tokio::sync::oneshot::channel::<()>();
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn(async move {
            let _tell_when_dropped = dropped_tx;
            let _ = started_tx.send(());
            let _ = never_rx.await;
        });
        started_rx.await.expect("the task started");
        drop(tasks.close_on_drop());
        assert!(tasks.is_closed());
        // The sender is dropped only when the task is aborted.
        let aborted = tokio::time::timeout(Duration::from_secs(5), dropped_rx).await;
        assert!(matches!(aborted, Ok(Err(_))), "the task was aborted");

        let (ran_tx, ran_rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn(async move {
            let _ = ran_tx.send(());
        });
        assert!(ran_rx.await.is_err(), "a task spawned after close never runs");
    }
}
