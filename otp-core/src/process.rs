//! Processes: [`Pid`], [`ExitReason`] and the process boundary.
//!
//! Mirrors Erlang's processes as created by `proc_lib` (`spawn_link`, `exit/2`, `is_process_alive/1`).
//! Every [`GenServer`](crate::gen_server::GenServer), registry and supervised task is a *process*:
//! a tokio task started by this module, the only place in the workspace that calls
//! `tokio::spawn`. A process
//!
//! - has a [`Pid`], unique for the life of the program;
//! - runs inside a `tracing` span named `process` with fields `pid` and `name`;
//! - ends with exactly one [`ExitReason`], which every [monitor](crate::monitor) receives once;
//! - catches any panic at its boundary and turns it into [`ExitReason::Panic`]: a panic never
//!   reaches the caller of a `call` or any other process.
//!
//! # Differences from OTP
//!
//! - Supervision is ownership (a supervisor holds its children) and observation is by
//!   [monitor](crate::monitor); [links](crate::link) are there for processes that must die
//!   together. [`exit`] plays the part of `exit(Pid, Reason)` sent to a process that does not
//!   trap exits, whether it traps or not: the process stops at its next `.await` and reports
//!   `reason`, without running any cleanup callback.
//! - A process that never reaches an `.await` (a CPU-bound loop, a blocking call) cannot be
//!   stopped: tokio can only cancel a task where it yields. The kill takes effect when it next
//!   yields, or never. Keep blocking work on `spawn_blocking`-style threads outside processes.
//! - Under `panic = "abort"` there is no process boundary: a panic aborts the whole program.

pub(crate) mod current_process;
pub(crate) mod down;
mod exit_reason;
pub(crate) mod header;
mod info;
pub(crate) mod mailbox;
mod pid;
pub(crate) mod spawn;
pub(crate) mod table;
pub(crate) mod termination;

pub(crate) use exit_reason::panic_message;
pub use exit_reason::{BoxError, ExitReason};
pub use info::{ProcessInfo, ProcessKind, ProcessStatus, info};
pub use pid::Pid;

/// The pid of the process the caller runs in, or `None` outside any process.
///
/// Inside a [`GenServer`](crate::gen_server::GenServer) callback, a supervised task, or code
/// awaited by them, this is that process's pid (Erlang's `self()`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(otp_core::process::current(), None);
/// # }
/// ```
pub fn current() -> Option<Pid> {
    current_process::current_pid()
}

/// Whether the process `pid` is still running (Erlang `is_process_alive/1`).
///
/// A `true` answer can be stale by the time it is read; use a [monitor](crate::monitor) to learn
/// about an exit.
pub fn is_alive(pid: Pid) -> bool {
    table::lookup(pid).is_some_and(|process| process.header().exit_reason().is_none())
}

/// Ends the process `pid` with `reason` at its next `.await`, without running any cleanup
/// callback (Erlang `exit(Pid, Reason)` to a process that does not trap exits; `exit(Pid, kill)`
/// is `exit(pid, ExitReason::Killed)`).
///
/// As in Erlang, `ExitReason::Normal` does nothing. Returns whether the process was alive; it
/// then exits with `reason` at its next `.await`, unless it finishes first with its own reason.
/// A later `ExitReason::Killed` overrides an earlier reason that has not taken effect yet.
///
/// To stop a [`GenServer`](crate::gen_server::GenServer) gracefully, so that it finishes the
/// messages already in its mailbox and runs `terminate`, use
/// [`ServerRef::stop`](crate::gen_server::ServerRef::stop) instead.
pub fn exit(pid: Pid, reason: ExitReason) -> bool {
    if reason == ExitReason::Normal {
        return false;
    }
    table::lookup(pid).is_some_and(|process| {
        let alive = process.header().force_exit(reason);
        if alive {
            process.interrupt_init();
        }
        alive
    })
}
