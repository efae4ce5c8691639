//! Links between processes, and trapping exits.
//!
//! Mirrors Erlang's `link/1`, `unlink/1`, `process_flag(trap_exit, true)` and the
//! `{'EXIT', Pid, Reason}` message, and `gen_server:start_link`.
//!
//! | Erlang | otp-core |
//! |---|---|
//! | `link(Pid)`, `unlink(Pid)` | [`link(pid)`](link()), [`unlink(pid)`](unlink()), from inside any process |
//! | `process_flag(trap_exit, true)` | [`ctx.trap_exits(\|exit\| ..)`](crate::gen_server::Context::trap_exits) in a server |
//! | `{'EXIT', Pid, Reason}` | [`Exit { pid, reason }`](Exit), mapped to the server's info type |
//! | `gen_server:start_link/3` | [`S::start_link(args)`](crate::gen_server::GenServer::start_link) |
//!
//! A link is a two-way bond between two processes: when one exits, the other gets an *exit
//! signal* with the same reason.
//!
//! - A process that does not trap exits dies of an abnormal signal, with the same reason, at
//!   its next `.await`, without running `terminate` (as an Erlang process that does not trap
//!   exits). A `Normal` signal does nothing to it.
//! - A server that traps exits receives every signal, `Normal` ones included, as an [`Exit`]
//!   message in `handle_info`, and lives on, except for its parent's, which stops it (see
//!   below).
//! - A kill ([`process::exit(pid, ExitReason::Killed)`](crate::process::exit)) cannot be
//!   trapped: the process dies `Killed`. Its linked processes then get a `Killed` signal,
//!   which a trapping process receives as a message, as Erlang turns `kill` into `killed`.
//! - Linking a process that is not alive sends the linker a `NoProc` signal at once: it dies
//!   `NoProc` at its next `.await`, or receives `Exit { pid, reason: NoProc }` if it traps.
//! - Links are a set: linking twice is one link, and one `unlink` removes it. Once `unlink`
//!   returns, no signal comes through that link any more.
//! - A link is set in both processes before [`link`] returns, and the exit fan-out takes a
//!   process's links when it publishes its exit reason: a link racing the other process's
//!   exit either gets its signal or gets `NoProc`, never nothing.
//!
//! # Links and supervisors
//!
//! Supervisors here *monitor* their children and own them (a supervisor's exit stops its
//! children; see the [`supervisor`](crate::supervisor) docs). They do not link to them, but a
//! child whose start function calls [`start_link`] is linked to its supervisor, since the
//! supervisor runs that function, as in Erlang; so supervisors trap exits, and drop the
//! signals: a child's crash reaches its supervisor as a `Down` and is a restart, never the
//! supervisor's death. A trapping server, supervisors included, stops with its **parent's**
//! exit signal (the process that started it), running `terminate`, as Erlang's `gen_server`
//! does: a `start_link`ed child does not outlive its starter. Links are
//! for processes that must live and die together, say a connection's server and the task that
//! writes to its socket: when one crashes, the other dies with it, and their supervisor sees
//! both exits and restarts them as its strategy says. A child that [`start_link`]s a helper
//! makes that helper die with it.
//!
//! [`start_link`]: crate::gen_server::GenServer::start_link
//!
//! # Differences from Erlang
//!
//! - [`process::exit(pid, reason)`](crate::process::exit) is always a kill with that reason: it
//!   is not delivered as a message to a trapping process (Erlang's `exit/2` with any reason but
//!   `kill` is). Stop a trapping server gracefully with
//!   [`ServerRef::stop`](crate::ServerRef::stop).
//! - Only servers trap exits: a [task](crate::task) has no mailbox to receive them in, so a
//!   linked task always dies of an abnormal signal.
//! - A server that stops trapping with an exit message still queued is stopped by it (with
//!   `terminate`) if its reason is abnormal, and ignores it if `Normal`.
//! - `start_link` called outside any process fails with
//!   [`StartError::NotInProcess`](crate::gen_server::StartError::NotInProcess): there is nothing
//!   to link to.
//!
//! ```
//! use std::convert::Infallible;
//! use otp_core::gen_server::{BoxError, Context, GenServer, Init};
//! use otp_core::link::Exit;
//! use otp_core::ExitReason;
//!
//! /// Starts a linked worker and reports how it exited.
//! struct Parent { report: Option<tokio::sync::oneshot::Sender<ExitReason>> }
//! struct Worker;
//!
//! impl GenServer for Worker {
//!     type Args = ();
//!     type Call = Infallible;
//!     type Reply = Infallible;
//!     type Cast = ();
//!     type Info = Infallible;
//!     type Continue = ();
//!     async fn init(_: (), _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
//!         Ok(Init::Ready(Worker))
//!     }
//!     async fn handle_cast(&mut self, _: (), _: &mut Context<Self>) -> Result<(), BoxError> {
//!         Err("worker crashed".into())
//!     }
//! }
//!
//! impl GenServer for Parent {
//!     type Args = tokio::sync::oneshot::Sender<ExitReason>;
//!     type Call = Infallible;
//!     type Reply = Infallible;
//!     type Cast = Infallible;
//!     type Info = Exit;
//!     type Continue = ();
//!     async fn init(report: Self::Args, ctx: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
//!         ctx.trap_exits(|exit| exit);
//!         let worker = Worker::start_link(()).await?;
//!         worker.cast(())?;
//!         Ok(Init::Ready(Parent { report: Some(report) }))
//!     }
//!     async fn handle_info(&mut self, exit: Exit, _: &mut Context<Self>) -> Result<(), BoxError> {
//!         let _ = self.report.take().map(|report| report.send(exit.reason));
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (report, reason) = tokio::sync::oneshot::channel();
//! let parent = Parent::start(report).await?;
//! assert!(matches!(reason.await?, ExitReason::Error(e) if e.to_string() == "worker crashed"));
//! assert!(parent.is_alive(), "a trapping parent lives on");
//! # Ok(())
//! # }
//! ```

use crate::process::current_process::current_pid;
use crate::process::header::{LinkOutcome, ProcessHeader};
use crate::process::{table, termination};
use crate::{ExitReason, Pid};

/// An exit signal received as a message by a server that traps exits (Erlang's
/// `{'EXIT', Pid, Reason}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The linked process that exited (or the process that was not alive when linked).
    pub pid: Pid,
    /// Its exit reason; `NoProc` when it was not alive when linked.
    pub reason: ExitReason,
}

/// Why a link could not be made or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// Called outside any process: only a process can be linked.
    #[error("link called outside any process")]
    NotInProcess,
}

/// Links the current process and `pid` (Erlang `link/1`); see the [module docs](self).
///
/// If `pid` is not alive, the current process gets a `NoProc` exit signal: it exits `NoProc` at
/// its next `.await`, or, if it traps exits, receives `Exit { pid, reason: NoProc }`. Linking a
/// process to itself does nothing.
///
/// # Errors
///
/// Outside any process, returns [`LinkError::NotInProcess`].
pub fn link(pid: Pid) -> Result<(), LinkError> {
    let me = current_pid()
        .and_then(table::lookup)
        .ok_or(LinkError::NotInProcess)?;
    let my_pid = me.header().pid();
    if pid == my_pid {
        return Ok(());
    }
    let target = table::lookup(pid);
    let outcome = me
        .header()
        .link_pair(pid, target.as_ref().map(|t| t.header()));
    if outcome == LinkOutcome::TargetGone {
        termination::exit_signal(&*me, pid, &ExitReason::NoProc);
    }
    Ok(())
}

/// Removes the link between the current process and `pid`, if any (Erlang `unlink/1`). Once it
/// returns, no exit signal comes through that link; an [`Exit`] message already queued for a
/// trapping server stays queued, as in Erlang.
///
/// # Errors
///
/// Outside any process, returns [`LinkError::NotInProcess`].
pub fn unlink(pid: Pid) -> Result<(), LinkError> {
    let me = current_pid()
        .and_then(table::lookup)
        .ok_or(LinkError::NotInProcess)?;
    me.header().remove_link(pid);
    if let Some(target) = table::lookup(pid) {
        target.header().remove_link(me.header().pid());
    }
    Ok(())
}

/// Links a process that is starting (`start_link`) to `starter`, before it runs anything.
pub(crate) fn link_starting(starter: Pid, starting: &ProcessHeader) -> bool {
    let Some(starter_process) = table::lookup(starter) else {
        return false;
    };
    if !starter_process.header().add_link(starting.pid()) {
        return false;
    }
    // The starting process runs nothing yet, so it cannot be exiting.
    starting.add_link(starter)
}

/// Undoes [`link_starting`] for a start that failed: the starter hears of the failure from
/// `start`'s result, not from an exit signal (OTP 26's `proc_lib:init_fail`).
pub(crate) fn unlink_failed_start(starter: Pid, starting: &ProcessHeader) {
    starting.remove_link(starter);
    if let Some(starter_process) = table::lookup(starter) {
        starter_process.header().remove_link(starting.pid());
    }
}
