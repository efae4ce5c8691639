//! Tasks: a plain future run as a process, on its own or as a supervised child.
//!
//! Mirrors Elixir's [`Task`](https://hexdocs.pm/elixir/Task.html) started with `Task.start/1`,
//! and a `Task` as a supervisor child (`{Task, fun}` in a child list), the usual way to
//! supervise an acceptor loop. For one-off work whose result someone awaits, use a
//! [`TaskSupervisor`](crate::task_supervisor::TaskSupervisor).
//!
//! A task's body returns `Result<(), BoxError>`, so `?` works: `Ok(())` is a `Normal` exit, an
//! `Err` an abnormal one ([`ExitReason::Error`]), and a panic [`ExitReason::Panic`]. As a
//! supervisor child (see [`ChildSpec::task`](crate::supervisor::ChildSpec::task)) a task is
//! `temporary` by default, as in Elixir; make an acceptor `permanent`:
//!
//! ```
//! use std::time::Duration;
//! use otp_core::supervisor::{ChildSpec, Restart, Strategy, SupFlags, Supervisor};
//! use tokio::net::TcpListener;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = std::sync::Arc::new(TcpListener::bind("127.0.0.1:0").await?);
//! let acceptor = ChildSpec::task("acceptor", move || {
//!     let listener = listener.clone();
//!     async move {
//!         loop {
//!             let (socket, _) = listener.accept().await?;
//!             drop(socket); // hand it to a connection server here
//!         }
//!     }
//! })
//! .restart(Restart::Permanent);
//! let tree = Supervisor::start(SupFlags::new(Strategy::OneForOne), vec![acceptor]).await?;
//! tree.stop(Duration::from_secs(5)).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Differences from Elixir
//!
//! - A task has no mailbox and no exit signals to trap: a graceful stop (its supervisor
//!   shutting down) ends it at its next `.await` with reason `Shutdown`, like a kill; its
//!   shutdown timeout only matters for a task that does not yield (semantics D2). Code that
//!   must clean up does it in `Drop`, which runs as the task is ended.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::gen_server::{BoxError, StartError};
use crate::monitor::{Monitor, monitor};
use crate::process::header::{AnyProcess, ProcessHeader};
use crate::process::spawn::{self, NoRuntime};
use crate::{ExitReason, Pid};

/// A task process: just the header; it has no mailbox.
pub(crate) struct TaskProcess {
    pub(crate) header: ProcessHeader,
}

impl AnyProcess for TaskProcess {
    fn header(&self) -> &ProcessHeader {
        &self.header
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }

    fn close_mailbox(&self) -> Option<Box<dyn Send>> {
        None
    }

    fn request_stop(&self, reason: ExitReason) -> bool {
        self.header.force_exit(reason)
    }
}

/// Spawns `body` as a new task process that ends as `finish` says.
pub(crate) fn spawn_task<F, Fin>(body: F, finish: Fin) -> Result<Arc<TaskProcess>, NoRuntime>
where
    F: Future + Send + 'static,
    Fin: spawn::Finish<F::Output>,
{
    let process = Arc::new(TaskProcess {
        header: ProcessHeader::new("task"),
    });
    spawn::spawn(process.clone(), body, finish)?;
    Ok(process)
}

/// How a task without a result ends: its exit reason, nothing to deliver.
pub(crate) fn task_exit_reason(
    outcome: Result<Result<(), BoxError>, ExitReason>,
) -> (ExitReason, fn()) {
    let reason = match outcome {
        Ok(Ok(())) => ExitReason::Normal,
        Ok(Err(error)) => ExitReason::Error(Arc::from(error)),
        Err(reason) => reason,
    };
    (reason, || {})
}

/// A running (or exited) task: its pid, to monitor or exit it. Dropping it does not stop the
/// task.
#[derive(Clone)]
pub struct TaskRef {
    pub(crate) process: Arc<TaskProcess>,
}

impl TaskRef {
    /// The task's pid.
    pub fn pid(&self) -> Pid {
        self.process.header.pid()
    }

    /// Whether the task is still running. A `true` answer can be stale by the time it is read.
    pub fn is_alive(&self) -> bool {
        self.process.header.exit_reason().is_none()
    }

    /// Monitors the task (see [`monitor`]).
    pub fn monitor(&self) -> Monitor {
        monitor(self.pid())
    }
}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TaskRef").field(&self.pid()).finish()
    }
}

/// Starts `body` as an unsupervised process (Elixir `Task.start/1`). Under a supervisor, use
/// [`ChildSpec::task`](crate::supervisor::ChildSpec::task) instead.
///
/// # Errors
///
/// If no tokio runtime is running, returns [`StartError::NoRuntime`].
pub fn start<F>(body: F) -> Result<TaskRef, StartError>
where
    F: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    let process = spawn_task(body, task_exit_reason).map_err(|NoRuntime| StartError::NoRuntime)?;
    Ok(TaskRef { process })
}
