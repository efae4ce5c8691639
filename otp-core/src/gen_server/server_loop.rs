//! The receive loop: take the next envelope, run its callback, apply what the callback asked.
//!
//! # Invariants
//!
//! - One message at a time: a callback runs to completion (across its `.await`s) before the
//!   next message is taken. `&mut self` is never shared.
//! - `handle_continue` runs straight after the callback that asked for it, before any queued
//!   message and before any due timer; only a stop request gets in between two continues.
//! - A due timer's message is queued behind the messages already in the mailbox.
//! - An attached stream is read only once the batch taken from the mailbox has been handled.
//! - In a bounded mailbox, a call, cast or info message frees its slot as it is taken out of the
//!   batch to be handled; what the server produced itself (timers, stream items) never took one.
//! - Each work item spends a unit of tokio's cooperative budget (see [`NextWork`]).
//! - A stop request ([`ServerRef::stop`](super::ServerRef::stop), a supervisor's shutdown) travels through the same
//!   mailbox as every other message, so messages queued before it are handled first, and
//!   `terminate` runs after them (Elixir's `terminate/2` doc; semantics D14).
//! - A panic or `Err` in a callback other than `init` and `terminate` becomes the exit reason,
//!   and `terminate` runs with it. The caller of the failed call sees that reason.
//!
//! # Memory layout
//!
//! An idle server is its task (the boundary around [`run`]'s future, as large as that future's
//! largest state), its [`ServerProcess`](super::server_process::ServerProcess) (header and
//! mailbox, one allocation) and nothing else. `tests/memory_layout.rs` counts those bytes
//! exactly and fails when they grow past their budget; these are the rules that keep them small,
//! and where each is applied:
//!
//! - **One await point per callback.** Each `.await` in an `async fn` has its own slot in the
//!   state machine, and every server's task is as large as the largest. [`receive_loop`]
//!   dispatches every kind of work in one `match`, and [`Work::Info`] carries info messages,
//!   due timers and mapped `Down`s alike, so `handle_info` is awaited in one place.
//! - **Nothing stored twice.** An `async fn` keeps its arguments and its `mut` bindings as
//!   separate fields: [`run`] is a plain fn around an `async move` block, [`guarded`] wraps a
//!   callback with combinators rather than an `async fn`, [`receive_loop`] dispatches inline
//!   rather than through a helper taking the work item, [`terminate`] borrows the [`Core`]
//!   instead of taking it, and the process boundary (`process::spawn`) is a hand-written future
//!   rather than an `async` block holding the body once captured and once awaited.
//! - **Rare things are boxed or allocated on first use**: an envelope's `Down` (every envelope
//!   is as large as its largest variant), a context's timers and monitors
//!   (`Context::extras`), the process's tracing span (in its header, `None` when no subscriber
//!   wants it), the mailbox's queue (a `VecDeque`, empty until the first message: see
//!   `process::mailbox` for why not a tokio channel), the header's watchers (a `ThinVec`).
//! - **A large callback future is the user's to box**: the task holds it inline (see the
//!   `gen_server` module docs on native `async fn`).

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;

use futures::FutureExt;

use super::context::Context;
use super::envelope::{Envelope, FormattedState};
use super::reply_to::{Caller, ReplyTo};
use super::{CallResult, GenServer};
use crate::ExitReason;
use crate::process::{BoxError, panic_message};

/// Runs a callback with the process boundary around it: a panic or an `Err` becomes a reason.
///
/// Combinators rather than an `async fn`: an async fn would hold the callback's future twice,
/// and every idle server's task is as large as its largest callback future.
pub(super) fn guarded<T>(
    callback: impl Future<Output = Result<T, BoxError>>,
) -> impl Future<Output = Result<T, ExitReason>> {
    AssertUnwindSafe(callback)
        .catch_unwind()
        .map(|outcome| match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(ExitReason::Error(Arc::from(error))),
            Err(payload) => Err(ExitReason::Panic(panic_message(&*payload))),
        })
}

/// What the receive loop owns: the state, the context and the current batch of messages.
/// One `&mut Core` is passed around instead of three references, which keeps every idle
/// server's task smaller (each async fn argument is stored in its future).
pub(super) struct Core<S: GenServer> {
    pub(super) state: S,
    pub(super) ctx: Context<S>,
    /// Messages taken from the mailbox in one lock acquisition, handled in order.
    pub(super) batch: VecDeque<Envelope<S>>,
}

/// The server's task: the receive loop, then `terminate`.
///
/// A plain fn around an `async move` block, as [`terminate`] is.
// An `async fn` would store `core` twice: as its argument and as its `mut` binding.
#[allow(clippy::manual_async_fn)]
pub(super) fn run<S: GenServer>(mut core: Core<S>) -> impl Future<Output = ExitReason> {
    async move {
        let reason = receive_loop(&mut core).await;
        terminate(&mut core, reason).await
    }
}

/// Runs `terminate`; returns the reason the process exits with. The state is dropped after it,
/// with the rest of the task.
///
/// Borrows the core: taking it by value would store the state a second time in every server's
/// task, beside the copy `run` keeps.
async fn terminate<S: GenServer>(core: &mut Core<S>, reason: ExitReason) -> ExitReason {
    let Core { state, ctx, .. } = core;
    let terminated = guarded(async {
        state.terminate(&reason, ctx).await;
        Ok(())
    });
    match terminated.await {
        Ok(()) => reason,
        // As in Erlang, a crash in terminate replaces the exit reason.
        Err(crash) => crash,
    }
}

/// The next thing the loop runs a callback for.
enum Work<S: GenServer> {
    Continue(S::Continue),
    /// An info message, a due timer's message, or an active monitor's `Down` already mapped
    /// to the server's info type (by [`NextWork`], so that `handle_info` has a single await
    /// point: each await point has its own slot in the task of every server).
    Info(S::Info),
    Call(S::Call, Option<ReplyTo<S::Reply>>),
    Cast(S::Cast),
    /// A stop request, or a `Down` whose mapping panicked.
    Stop(ExitReason),
    GetState(ReplyTo<FormattedState>),
}

async fn receive_loop<S: GenServer>(core: &mut Core<S>) -> ExitReason {
    loop {
        if let Some(reason) = core.ctx.stop.take() {
            return reason;
        }
        // Dispatched here rather than in a helper async fn: the work item would then be stored
        // twice (as the helper's argument and as its mutable binding), in every idle server.
        let mut work = NextWork { core }.await;
        let Core { state, ctx, .. } = &mut *core;
        let outcome = match work {
            Work::Continue(value) => guarded(state.handle_continue(value, ctx)).await,
            Work::Info(info) => guarded(state.handle_info(info, ctx)).await,
            Work::Call(request, ref mut slot) => {
                let result = guarded(state.handle_call(request, Caller::new(slot), ctx)).await;
                // No handle is left if the handler deferred: that handle alone answers. On `Err`
                // the handle is dropped with the work item; the caller then waits for the exit
                // reason, published after `terminate`.
                result.map(|result| {
                    if let (CallResult::Reply(reply), Some(reply_to)) = (result, slot.take()) {
                        let _ = reply_to.reply(reply);
                    }
                })
            }
            Work::Cast(message) => guarded(state.handle_cast(message, ctx)).await,
            Work::Stop(reason) => Err(reason),
            Work::GetState(reply_to) => {
                // Introspection never crashes the server: a panic is the caller's answer.
                let formatted =
                    std::panic::catch_unwind(AssertUnwindSafe(|| state.format_status()))
                        .map_err(|payload| panic_message(&*payload));
                let _ = reply_to.reply(formatted);
                Ok(())
            }
        };
        if let Err(reason) = outcome {
            return reason;
        }
    }
}

impl<S: GenServer> Work<S> {
    /// The work for a message taken from the mailbox; `None` for a `Down` whose monitor was
    /// removed since it was sent (it is dropped, as `demonitor(Ref, [flush])` would).
    fn from_envelope(envelope: Envelope<S>, ctx: &mut Context<S>) -> Option<Work<S>> {
        Some(match envelope {
            // The three kinds of message a sender admitted: each frees its slot as it is taken.
            Envelope::Call(request, reply_to) => {
                ctx.mailbox().free_slot();
                Work::Call(request, reply_to)
            }
            Envelope::Cast(message) => {
                ctx.mailbox().free_slot();
                Work::Cast(message)
            }
            Envelope::Info(info) => {
                ctx.mailbox().free_slot();
                Work::Info(info)
            }
            Envelope::Internal(info) => Work::Info(info),
            Envelope::Stop(reason) => Work::Stop(reason),
            Envelope::GetState(reply_to) => Work::GetState(reply_to),
            Envelope::Exit(exit) => match ctx.trapped_exit(*exit)? {
                Ok(info) => Work::Info(info),
                Err(reason) => Work::Stop(reason),
            },
            Envelope::Down(down) => {
                let (down, to_info) = *down;
                if !ctx.take_down(down.monitor) {
                    return None;
                }
                // The mapping runs in this server: a panic in it is this server's crash.
                match std::panic::catch_unwind(AssertUnwindSafe(|| to_info(down))) {
                    Ok(info) => Work::Info(info),
                    Err(payload) => Work::Stop(ExitReason::Panic(panic_message(&*payload))),
                }
            }
        })
    }
}

/// Takes the next work item, in priority order: a requested `handle_continue`, then the next
/// message; waits for the mailbox, a timer or an attached stream when there is none.
///
/// - Every work item spends one unit of tokio's cooperative budget, and the loop yields when the
///   budget runs out. A server that always has work (it casts to itself, loops through
///   `handle_continue`, has a timer that is always due) still gives its thread up, so the
///   runtime's timers and other tasks run, and a kill, which takes effect where a task yields,
///   gets in.
/// - A due timer's message goes to the back of the mailbox, behind every message already
///   there, as an Erlang timer sends its message when it fires: a tick never overtakes a call
///   that arrived before it, however often the timer is due.
/// - An attached stream is read only when the batch taken from the mailbox has been handled,
///   one item per stream, queued behind the mail taken with it: nothing is read ahead
///   (backpressure), and neither the mailbox nor a stream that is always ready starves the
///   other.
/// - A chain of `handle_continue`s does not read the mailbox, so a stop request queued there
///   ends the chain: the pending continue is dropped, and the mailbox is read in order again,
///   so the messages queued before the stop are handled, then `terminate` runs (a stop stays
///   in-band, as every stop does).
struct NextWork<'a, S: GenServer> {
    core: &'a mut Core<S>,
}

impl<S: GenServer> Future for NextWork<'_, S> {
    type Output = Work<S>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Work<S>> {
        // Restored if nothing is ready, spent once something is.
        let budget = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let core = &mut *self.core;
        let work = loop {
            if let Some(value) = core.ctx.next_continue.take() {
                if !core.ctx.mailbox().stop_requested() {
                    break Work::Continue(value);
                }
                // A stop is queued: the chain ends here (the continue is dropped).
            }
            if let Some(info) = core.ctx.timers().and_then(|timers| timers.pop_due()) {
                core.ctx.mailbox().append_to(&mut core.batch);
                core.batch.push_back(Envelope::Internal(info));
            }
            if let Some(envelope) = core.batch.pop_front() {
                match Work::from_envelope(envelope, &mut core.ctx) {
                    Some(work) => break work,
                    None => continue,
                }
            }
            // Mailbox first: it is the common case.
            let mailed = core.ctx.mailbox().poll_take(cx, &mut core.batch).is_ready();
            let mut has_work = mailed;
            // Streams are read only now, with the batch handled: one item each at most, queued
            // behind the mail just taken (backpressure, and no starvation either way).
            if let Some(streams) = core.ctx.streams() {
                let batch = &mut core.batch;
                match streams.poll_each(cx, |info| batch.push_back(Envelope::Internal(info))) {
                    Ok(streamed) => {
                        if streamed && !mailed {
                            // Busy with an item while the mailbox holds the waker: drop it, so
                            // `process::info` does not report the server as waiting.
                            core.ctx.mailbox().clear_waker();
                        }
                        has_work |= streamed;
                    }
                    Err(crash) => {
                        // Stopping, not waiting (for `process::info`).
                        core.ctx.mailbox().clear_waker();
                        break Work::Stop(crash);
                    }
                }
            }
            if !has_work {
                match core.ctx.timers() {
                    Some(timers) => std::task::ready!(timers.poll_due(cx)),
                    None => return Poll::Pending,
                }
            }
        };
        budget.made_progress();
        Poll::Ready(work)
    }
}
