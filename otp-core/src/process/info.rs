//! [`info`]: what a process is doing, read from outside it (Erlang `process_info/2`).
//!
//! Everything here is read from what the runtime keeps anyway (the process's header and the
//! state of its mailbox's lock), under two short locks and without the process's cooperation,
//! so a process costs nothing more for being observable, and a busy or stuck one can still be
//! observed. The figures are a snapshot: they can be stale by the time they are read.

use super::Pid;
use super::table;

/// What [`info`] reports about a live process.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessInfo {
    /// The process.
    pub pid: Pid,
    /// The label of its `tracing` span: a server's type name or
    /// [`StartOptions::label`](crate::gen_server::StartOptions::label), `"task"`, `"supervisor"`…
    pub name: &'static str,
    /// A server (with a mailbox) or a task (a plain future, without one).
    pub kind: ProcessKind,
    /// What it is doing.
    pub status: ProcessStatus,
    /// Messages in its mailbox that it has not taken yet (0 for a task). A server takes
    /// everything queued at once when it is ready for more, then handles those messages one by
    /// one, so this does not count the ones it has taken and not handled yet.
    pub message_queue_len: usize,
    /// How many monitors watch it (Erlang's `monitored_by`, as a count).
    pub monitored_by: usize,
    /// How many processes it is [linked](crate::link) to.
    pub links: usize,
    /// Whether linked exits reach it as messages ([`Context::trap_exits`](crate::gen_server::Context::trap_exits)).
    pub traps_exits: bool,
    /// The process that started it, if it was started from inside a process: for a supervised
    /// child, its supervisor (Erlang's `$parent`); `None` for a process started from plain
    /// async code.
    pub parent: Option<Pid>,
}

/// The two kinds of process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProcessKind {
    /// A [`GenServer`](crate::gen_server::GenServer) (supervisors and registries are servers).
    Server,
    /// A [task](crate::task): a plain future.
    Task,
}

/// What a process is doing (Erlang's `status` item, without the scheduler's distinctions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProcessStatus {
    /// A server whose `init` is still running.
    Starting,
    /// A server waiting for a message, with nothing left to handle.
    Waiting,
    /// A server running a callback (or woken and about to take its next message); a task,
    /// whatever it is doing, since a task's future does not tell.
    Running,
    /// Killed, or past its last callback: its exit is being published.
    Exiting,
}

/// What the process `pid` is doing, or `None` if it is not alive (Erlang
/// `process_info(Pid)`; `undefined` for a dead pid).
///
/// ```
/// use otp_core::process::{ProcessKind, ProcessStatus};
/// # use otp_core::gen_server::{BoxError, Context, GenServer, Init};
/// # struct Idle;
/// # impl GenServer for Idle {
/// #     type Args = ();
/// #     type Call = ();
/// #     type Reply = ();
/// #     type Cast = ();
/// #     type Info = ();
/// #     type Continue = ();
/// #     async fn init(_: (), _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
/// #         Ok(Init::Ready(Idle))
/// #     }
/// # }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = Idle::start(()).await?;
/// tokio::task::yield_now().await; // let it reach its receive loop
/// let info = otp_core::process::info(server.pid()).expect("alive");
/// assert_eq!(info.kind, ProcessKind::Server);
/// assert_eq!(info.status, ProcessStatus::Waiting);
/// assert_eq!(info.message_queue_len, 0);
/// # Ok(())
/// # }
/// ```
pub fn info(pid: Pid) -> Option<ProcessInfo> {
    let process = table::lookup(pid)?;
    let header = process.header();
    let snapshot = header.snapshot();
    let mailbox = process.mailbox_state();
    let status = if snapshot.exiting {
        ProcessStatus::Exiting
    } else if !snapshot.launched {
        ProcessStatus::Starting
    } else if mailbox
        .as_ref()
        .is_some_and(|mailbox| mailbox.receiver_waiting)
    {
        ProcessStatus::Waiting
    } else {
        ProcessStatus::Running
    };
    Some(ProcessInfo {
        pid,
        name: header.name(),
        kind: match mailbox {
            Some(_) => ProcessKind::Server,
            None => ProcessKind::Task,
        },
        status,
        message_queue_len: mailbox.map_or(0, |mailbox| mailbox.queued),
        monitored_by: snapshot.monitored_by,
        links: snapshot.links,
        traps_exits: snapshot.traps_exits,
        parent: header.parent(),
    })
}
