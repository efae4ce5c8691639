//! [`ReplyTo`] (Erlang's `From`) and [`Caller`]: replying to a call now or later.

use std::fmt;

use tokio::sync::oneshot;

use crate::Pid;

/// Where the reply to one call goes (Erlang's `From`); obtained from [`Caller::defer`].
///
/// A `ReplyTo` can be stored in the server's state, moved into a message to another process, or
/// into a task, and used once with [`reply`](Self::reply) — Erlang's `gen_server:reply/2`.
/// If it is dropped without replying, the caller gets no reply: its call ends with
/// [`CallError::Exited`](super::CallError::Exited) if the server exits meanwhile, and otherwise
/// with [`CallError::Timeout`](super::CallError::Timeout), as in Erlang.
pub struct ReplyTo<R> {
    tx: oneshot::Sender<R>,
    caller: Option<Pid>,
}

impl<R> ReplyTo<R> {
    pub(crate) fn new(tx: oneshot::Sender<R>, caller: Option<Pid>) -> ReplyTo<R> {
        ReplyTo { tx, caller }
    }

    /// Completes the call with `reply`.
    ///
    /// # Errors
    ///
    /// If the caller stopped waiting (its call timed out or its future was dropped), returns
    /// `Err(reply)`. This is not a failure of the server: Erlang drops such late replies too.
    pub fn reply(self, reply: R) -> Result<(), R> {
        self.tx.send(reply)
    }

    /// The calling process, if the call was made from inside a process.
    pub fn caller(&self) -> Option<Pid> {
        self.caller
    }

    /// Whether the caller is still waiting for the reply.
    pub fn is_waiting(&self) -> bool {
        !self.tx.is_closed()
    }
}

impl<R> fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyTo")
            .field("caller", &self.caller)
            .field("waiting", &self.is_waiting())
            .finish()
    }
}

/// The caller of the call being handled, passed to
/// [`handle_call`](super::GenServer::handle_call).
///
/// Return [`CallResult::Reply`](super::CallResult::Reply) to answer now. To answer later, take
/// the reply handle with [`defer`](Self::defer) and return
/// [`CallResult::NoReply`](super::CallResult::NoReply).
pub struct Caller<'a, R> {
    slot: &'a mut Option<ReplyTo<R>>,
}

impl<'a, R> Caller<'a, R> {
    pub(crate) fn new(slot: &'a mut Option<ReplyTo<R>>) -> Caller<'a, R> {
        Caller { slot }
    }

    /// The calling process, if the call was made from inside a process.
    pub fn pid(&self) -> Option<Pid> {
        self.slot.as_ref().and_then(ReplyTo::caller)
    }

    /// Takes the reply handle, to reply later with [`ReplyTo::reply`].
    ///
    /// Once deferred, a [`CallResult::Reply`](super::CallResult::Reply) returned by the handler
    /// is dropped: the reply handle alone decides what the caller gets.
    pub fn defer(self) -> ReplyTo<R> {
        match self.slot.take() {
            Some(reply_to) => reply_to,
            // A `Caller` is only made around a filled slot and `defer` consumes it, so this arm
            // cannot run; a closed handle keeps it panic-free all the same.
            None => ReplyTo::new(oneshot::channel().0, None),
        }
    }
}

impl<R> fmt::Debug for Caller<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller").field("pid", &self.pid()).finish()
    }
}
