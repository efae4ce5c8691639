//! The restart engine every supervisor shares: what happens once [`after_exit`](super::after_exit)
//! has decided that a child is restarted (`supervisor.erl` `restart/2`, `add_restart/3` and
//! `try_again_restart`).
//!
//! The static [`Supervisor`](super::Supervisor), the
//! [`DynamicSupervisor`](crate::dynamic_supervisor::DynamicSupervisor) and the
//! [`TaskSupervisor`](crate::task_supervisor::TaskSupervisor) keep their children their own way
//! (in start order, by pid); the engine owns what they have in common:
//!
//! - the intensity window: every restart attempt, a failed one too, first [`allow`s](Engine::allow)
//!   one stamp (INT-03); one too many emits [`GaveUp`](SupervisorEvent::GaveUp) and stops the
//!   supervisor with `Shutdown`, whose `terminate` then stops the children;
//! - the events: [`restarted`](Engine::restarted), [`failed`](Engine::failed);
//! - retries: a failed restart, or one delayed by a backoff, is a message the supervisor sends
//!   itself ([`retry`]), so that it serves calls in between and `terminate_child` can cancel it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::events::{Events, SupervisorEvent};
use super::restart_intensity::RestartIntensity;
use crate::gen_server::{Context, GenServer};
use crate::{ExitReason, Pid};

/// Why a child that is to be restarted is not running yet.
#[derive(Debug, Clone)]
pub(crate) enum Restarting {
    /// Waiting out its backoff after it exited: the restart is counted when it is performed.
    Delayed {
        /// The pid that exited.
        old_pid: Pid,
        /// Why it exited, for the give-up event should this restart be one too many.
        reason: ExitReason,
    },
    /// Its restart failed (and was counted); it is retried at once, through the mailbox.
    Retrying,
}

impl Restarting {
    /// The pid and reason of the exit that started this restart, where still known.
    pub(crate) fn exit(&self) -> (Option<Pid>, ExitReason) {
        match self {
            Restarting::Delayed { old_pid, reason } => (Some(*old_pid), reason.clone()),
            Restarting::Retrying => (None, ExitReason::shutdown_with("restart failed")),
        }
    }
}

/// One supervisor's restart state: its intensity window and its event channel.
#[derive(Debug)]
pub(crate) struct Engine {
    intensity: RestartIntensity,
    events: Events,
}

impl Engine {
    pub(crate) fn new(max_restarts: u32, max_seconds: Duration, events: Events) -> Engine {
        Engine {
            intensity: RestartIntensity::new(max_restarts, max_seconds),
            events,
        }
    }

    pub(crate) fn events(&self) -> &Events {
        &self.events
    }

    /// Counts one restart attempt of `child`, which exited with `reason`. Over the intensity
    /// limit, emits [`GaveUp`](SupervisorEvent::GaveUp), asks the supervisor to stop with
    /// `Shutdown` and returns `false`: the caller restarts nothing.
    pub(crate) fn allow<S: GenServer>(
        &mut self,
        child: Option<Arc<str>>,
        reason: ExitReason,
        ctx: &mut Context<S>,
    ) -> bool {
        if self.intensity.add_restart(tokio::time::Instant::now()) {
            return true;
        }
        self.events.emit(SupervisorEvent::GaveUp {
            supervisor: ctx.pid(),
            child,
            reason,
        });
        ctx.stop(ExitReason::Shutdown);
        false
    }

    /// `child` was restarted: `old_pid` (where known) is now `pid`.
    pub(crate) fn restarted(
        &self,
        supervisor: Pid,
        child: Option<Arc<str>>,
        old_pid: Option<Pid>,
        pid: Pid,
    ) {
        self.events.emit(SupervisorEvent::ChildRestarted {
            supervisor,
            child,
            old_pid,
            pid,
        });
    }

    /// A restart attempt of `child` failed with `error`; the caller marks the child
    /// [`Restarting::Retrying`] and schedules the retry with [`retry`].
    pub(crate) fn failed(
        &self,
        supervisor: Pid,
        child: Option<Arc<str>>,
        error: &dyn fmt::Display,
    ) {
        self.events.emit(SupervisorEvent::ChildRestartFailed {
            supervisor,
            child,
            reason: error.to_string(),
        });
    }
}

/// Has the supervisor send itself `message()` after `delay`, or at once: the next attempt of a
/// restart comes through the mailbox, behind the calls already queued.
pub(crate) fn retry<S: GenServer>(
    delay: Option<Duration>,
    message: impl Fn() -> S::Info,
    ctx: &mut Context<S>,
) {
    if let Some(delay) = delay {
        // At most `RestartBackoff::MAX_DELAY` (validated), which a timer can always represent;
        // were it not, the retry would go at once rather than never.
        if ctx.send_after(delay, message()).is_ok() {
            return;
        }
    }
    // Fails only once the supervisor is exiting, when no retry is wanted.
    let _ = ctx.server_ref().send(message());
}
