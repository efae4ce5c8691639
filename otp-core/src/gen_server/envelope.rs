//! What a server's mailbox holds: one [`Envelope`] per call, cast, info message, monitor
//! `Down` and stop request, as an Erlang process's mailbox holds `'$gen_call'`, `'$gen_cast'`,
//! plain messages, `'DOWN'` and `system` messages.

use super::GenServer;
use super::reply_to::ReplyTo;
use crate::ExitReason;
use crate::link::Exit;
use crate::monitor::Down;

/// Everything a server's mailbox can hold.
///
/// In a bounded mailbox, `Call`, `Cast` and `Info` each took a slot when sent
/// ([`Mailbox::admit`](crate::process::mailbox::Mailbox::admit)) and free it when taken out to
/// be handled; the other variants are the runtime's own and take none, so a full mailbox never
/// holds back a stop, a `Down`, an exit signal, a due timer, a stream's item or a task's result.
pub(crate) enum Envelope<S: GenServer> {
    /// The reply handle is in an `Option` so that the handler can take it in place
    /// ([`Caller::defer`](super::Caller::defer)) without the loop keeping a second copy of it.
    Call(S::Call, Option<ReplyTo<S::Reply>>),
    Cast(S::Cast),
    Info(S::Info),
    /// An info message of the runtime's own, which took no slot: a due timer's or an attached
    /// stream's item (put by the server straight into the batch it is handling), or a
    /// supervised task's result (`TaskSupervisor::async_nolink_to`, through the mailbox).
    Internal(S::Info),
    /// A monitor fired; handled only if the monitor is still active (see `Context::demonitor`).
    /// The mapping to `Info` runs in the receiving server, not in the exiting process. Boxed:
    /// it is rare, and every envelope is as large as the largest variant.
    Down(Box<(Down, DownToInfo<S>)>),
    /// An exit signal from a linked process, for a server that traps exits; mapped to `Info`
    /// when taken. Boxed: it is rare.
    Exit(Box<Exit>),
    /// Stop gracefully with this reason: `terminate` runs, then the process exits.
    Stop(ExitReason),
    /// [`sys::get_state`](crate::sys::get_state): reply with what `format_status` shows.
    GetState(ReplyTo<FormattedState>),
}

/// What `format_status` returned, or the message of its panic.
pub(crate) type FormattedState = Result<Option<String>, std::sync::Arc<str>>;

/// Turns a `Down` into the server's `Info` message (given to `Context::monitor`).
pub(crate) type DownToInfo<S> = Box<dyn FnOnce(Down) -> <S as GenServer>::Info + Send>;
