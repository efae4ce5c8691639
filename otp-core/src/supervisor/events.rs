//! Supervision events: structured `tracing` events with fixed names and fields, and the same
//! events as a stream that tests and operators can await.
//!
//! | event | level | fields |
//! |---|---|---|
//! | `child_started` | DEBUG | `supervisor`, `child`, `pid` |
//! | `child_exited` | INFO (clean reason) / WARN | `supervisor`, `child`, `pid`, `reason` |
//! | `child_restarted` | INFO | `supervisor`, `child`, `pid` (new), `old_pid` |
//! | `child_restart_failed` | WARN | `supervisor`, `child`, `reason` |
//! | `supervisor_gave_up` | ERROR | `supervisor`, `child`, `reason` |
//!
//! Every kind of supervisor emits them: static, dynamic and task supervisors. The `tracing`
//! event's message is the event name; `child` is the child id, empty for dynamic children and
//! tasks.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::{ExitReason, Pid};

/// Something a supervisor did. `child` is the child's id (`None` for dynamic children).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SupervisorEvent {
    /// A child was started (at supervisor start, by `start_child` or `restart_child`).
    ChildStarted {
        /// The supervisor.
        supervisor: Pid,
        /// The child's id.
        child: Option<Arc<str>>,
        /// The child's pid.
        pid: Pid,
    },
    /// A child exited, or was stopped by its supervisor.
    ChildExited {
        /// The supervisor.
        supervisor: Pid,
        /// The child's id.
        child: Option<Arc<str>>,
        /// The pid that exited.
        pid: Pid,
        /// Its exit reason.
        reason: ExitReason,
    },
    /// A child was restarted after an exit.
    ChildRestarted {
        /// The supervisor.
        supervisor: Pid,
        /// The child's id.
        child: Option<Arc<str>>,
        /// The pid that exited.
        old_pid: Option<Pid>,
        /// The new incarnation.
        pid: Pid,
    },
    /// A restart attempt failed; it will be retried (and counts toward intensity).
    ChildRestartFailed {
        /// The supervisor.
        supervisor: Pid,
        /// The child's id.
        child: Option<Arc<str>>,
        /// Why the start failed.
        reason: String,
    },
    /// The restart intensity was exceeded: the supervisor stops its children and exits with
    /// `Shutdown`.
    GaveUp {
        /// The supervisor.
        supervisor: Pid,
        /// The child whose restart was one too many.
        child: Option<Arc<str>>,
        /// That child's exit reason.
        reason: ExitReason,
    },
}

/// Why the next event could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventStreamError {
    /// The reader fell behind and this many events were dropped for it.
    #[error("lagged behind by {0} events")]
    Lagged(u64),
    /// The supervisor has exited and every event has been read.
    #[error("supervisor exited")]
    Closed,
}

/// A stream of a supervisor's events, from the moment of subscribing.
#[derive(Debug)]
pub struct EventStream {
    rx: broadcast::Receiver<SupervisorEvent>,
}

impl EventStream {
    /// The next event.
    ///
    /// # Errors
    ///
    /// - If this reader fell more than 1024 events behind, returns
    ///   [`EventStreamError::Lagged`] once; reading then continues with the oldest kept event.
    /// - If the supervisor has exited and all its events were read, returns
    ///   [`EventStreamError::Closed`].
    pub async fn next(&mut self) -> Result<SupervisorEvent, EventStreamError> {
        self.rx.recv().await.map_err(|error| match error {
            broadcast::error::RecvError::Lagged(n) => EventStreamError::Lagged(n),
            broadcast::error::RecvError::Closed => EventStreamError::Closed,
        })
    }
}

/// The sending side, held by the supervisor's state alone: when the supervisor exits it is
/// dropped, and every [`EventStream`] ends with [`EventStreamError::Closed`] once read out.
#[derive(Debug)]
pub(crate) struct Events {
    tx: broadcast::Sender<SupervisorEvent>,
}

/// What a supervisor's handles hold to subscribe without a call. It does not keep the channel
/// open: a handle outliving its supervisor must not keep streams waiting forever.
#[derive(Debug, Clone)]
pub(crate) struct EventSource {
    tx: broadcast::WeakSender<SupervisorEvent>,
}

impl EventSource {
    /// A stream from now on; already closed if the supervisor has exited.
    pub(crate) fn subscribe(&self) -> EventStream {
        let rx = match self.tx.upgrade() {
            Some(tx) => tx.subscribe(),
            // A channel whose sender is gone: the stream reports `Closed` at once.
            None => broadcast::channel(1).1,
        };
        EventStream { rx }
    }
}

impl Events {
    pub(crate) fn new() -> Events {
        Events {
            tx: broadcast::channel(1024).0,
        }
    }

    pub(crate) fn source(&self) -> EventSource {
        EventSource {
            tx: self.tx.downgrade(),
        }
    }

    /// Logs the event and, if anyone listens, sends it. With no subscriber and tracing off,
    /// this is a couple of checks.
    pub(crate) fn emit(&self, event: SupervisorEvent) {
        log(&event);
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(event);
        }
    }
}

fn log(event: &SupervisorEvent) {
    let id = |child: &Option<Arc<str>>| child.as_deref().unwrap_or("").to_string();
    match event {
        SupervisorEvent::ChildStarted {
            supervisor,
            child,
            pid,
        } => {
            tracing::debug!(%supervisor, child = id(child), %pid, "child_started");
        }
        SupervisorEvent::ChildExited {
            supervisor,
            child,
            pid,
            reason,
        } => {
            if reason.is_clean() {
                tracing::info!(%supervisor, child = id(child), %pid, %reason, "child_exited");
            } else {
                tracing::warn!(%supervisor, child = id(child), %pid, %reason, "child_exited");
            }
        }
        SupervisorEvent::ChildRestarted {
            supervisor,
            child,
            old_pid,
            pid,
        } => {
            tracing::info!(%supervisor, child = id(child), %pid, old_pid = ?old_pid, "child_restarted");
        }
        SupervisorEvent::ChildRestartFailed {
            supervisor,
            child,
            reason,
        } => {
            tracing::warn!(%supervisor, child = id(child), %reason, "child_restart_failed");
        }
        SupervisorEvent::GaveUp {
            supervisor,
            child,
            reason,
        } => {
            tracing::error!(%supervisor, child = id(child), %reason, "supervisor_gave_up");
        }
    }
}
