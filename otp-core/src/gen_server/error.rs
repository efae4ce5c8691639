//! Errors of the [`gen_server`](super) operations, one type per operation.

use std::fmt;

use crate::{ExitReason, Pid};

/// Why [`GenServer::start`](super::GenServer::start) did not give a running server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// `init` returned [`Init::Ignore`](super::Init::Ignore) (Erlang `ignore`). The process
    /// exited normally and any name it claimed is free again.
    #[error("init returned ignore")]
    Ignored,
    /// `init` returned [`Init::Stop`](super::Init::Stop), returned `Err`, or panicked; this is
    /// the process's exit reason (Erlang `{error, Reason}`). Any name it claimed is free again.
    #[error("init failed: {0}")]
    InitFailed(ExitReason),
    /// The name is held by the live process `0` (Erlang `{error, {already_started, Pid}}`).
    /// The new server's `init` never ran.
    #[error("already started as {0}")]
    AlreadyStarted(Pid),
    /// `init` did not finish within the start timeout; the process was killed.
    #[error("init timed out")]
    Timeout,
    /// The start timeout was zero, or too long to be represented as a deadline.
    #[error("invalid start timeout")]
    InvalidTimeout,
    /// The registry named in the options is not running.
    #[error("registry is not running")]
    RegistryDown,
    /// No tokio runtime is running on this thread.
    #[error("no tokio runtime is running on this thread")]
    NoRuntime,
    /// [`start_link`](super::GenServer::start_link) was called outside any running process:
    /// there is nothing to link the new server to. Nothing was started.
    #[error("start_link called outside any process")]
    NotInProcess,
}

/// Why a [`call`](super::ServerRef::call) got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No reply within the timeout. The server keeps running; if it replies later, the reply is
    /// dropped and never reaches a later call.
    #[error("call timed out")]
    Timeout,
    /// The server was not running when the call was made (Erlang `noproc`): it had exited, or
    /// the name was not registered. Returned at once, without waiting for the timeout.
    #[error("no process")]
    NoProc,
    /// The server exited before replying; this is its exit reason.
    #[error("server exited: {0}")]
    Exited(ExitReason),
    /// A process called itself, which could only deadlock (Erlang `calling_self`).
    #[error("process called itself")]
    CallingSelf,
    /// The timeout was zero, or too long to be represented as a deadline; use
    /// [`Timeout::Infinity`](super::Timeout::Infinity) to wait forever.
    #[error("invalid call timeout")]
    InvalidTimeout,
    /// A call with a finite timeout was made where no tokio runtime runs (its timer needs one).
    /// Nothing was sent.
    #[error("no tokio runtime is running on this thread")]
    NoRuntime,
}

/// Why a message could not be queued; carries the message back.
///
/// Erlang's `cast` and `!` always succeed. otp-core tells you when the mailbox is known to be
/// closed, or is [bounded](super::StartOptions::mailbox_capacity) and full, and gives the
/// message back so nothing is lost silently.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError<M> {
    /// The server is not running (it exited, or the name is not registered).
    #[error("no process")]
    NoProc(M),
    /// The server's mailbox is bounded and every slot is taken; the server is running. Retry
    /// later, shed the message, or wait for room with [`cast_wait`](super::ServerRef::cast_wait).
    #[error("mailbox full")]
    Full(M),
}

impl<M> SendError<M> {
    /// The message that could not be sent.
    pub fn into_inner(self) -> M {
        match self {
            SendError::NoProc(message) | SendError::Full(message) => message,
        }
    }
}

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NoProc(_) => f.write_str("NoProc(..)"),
            SendError::Full(_) => f.write_str("Full(..)"),
        }
    }
}

/// Why a synchronous [`stop`](super::ServerRef::stop) did not confirm the exit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StopError {
    /// The server was not running (Erlang `noproc`).
    #[error("no process")]
    NoProc,
    /// The server had not exited when the timeout expired. It is still running, and will stop
    /// when it reaches the stop request in its mailbox.
    #[error("stop timed out")]
    Timeout,
    /// A server tried to stop itself synchronously, which could only deadlock.
    #[error("process tried to stop itself")]
    CallingSelf,
    /// The server exited, but with another reason than the one requested (for example its
    /// `terminate` panicked, or it was killed meanwhile).
    #[error("server exited with another reason: {0}")]
    Exited(ExitReason),
    /// The timeout was zero, or too long to be represented as a deadline.
    #[error("invalid stop timeout")]
    InvalidTimeout,
    /// `stop` was called where no tokio runtime runs (waiting for the exit needs one). No stop
    /// was requested.
    #[error("no tokio runtime is running on this thread")]
    NoRuntime,
}
