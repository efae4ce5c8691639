//! The receive loop: take the next envelope, run its callback, apply what the callback asked.
//!
//! # Invariants
//!
//! - One message at a time: a callback runs to completion (across its `.await`s) before the
//!   next message is taken. `&mut self` is never shared.
//! - `handle_continue` runs straight after the callback that asked for it, before any queued
//!   message and before any due timer; only a stop request gets in between two continues.
//! - A due timer's message is queued behind the messages already in the mailbox.
//! - Each work item spends a unit of tokio's cooperative budget (see [`NextWork`]).
//! - A stop request ([`ServerRef::stop`], a supervisor's shutdown) travels through the same
//!   mailbox as every other message, so messages queued before it are handled first, and
//!   `terminate` runs after them (Elixir's `terminate/2` doc; semantics D14).
//! - A panic or `Err` in a callback other than `init` and `terminate` becomes the exit reason,
//!   and `terminate` runs with it. The caller of the failed call sees that reason.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;

use futures::FutureExt;

use super::context::Context;
use super::reply_to::{Caller, ReplyTo};
use super::{CallResult, GenServer, Init, ServerRef, StartError, StartOptions};
use crate::ExitReason;
use crate::monitor::Down;
use crate::process::mailbox::Mailbox;
use crate::process::spawn::{self, AnyProcess, ProcessHeader};
use crate::process::{BoxError, panic_message};

/// Everything a server's mailbox can hold.
pub(crate) enum Envelope<S: GenServer> {
    /// The reply handle is in an `Option` so that the handler can take it in place
    /// ([`Caller::defer`]) without the loop keeping a second copy of it.
    Call(S::Call, Option<ReplyTo<S::Reply>>),
    Cast(S::Cast),
    Info(S::Info),
    /// A monitor fired; handled only if the monitor is still active (see `Context::demonitor`).
    /// The mapping to `Info` runs in the receiving server, not in the exiting process. Boxed:
    /// it is rare, and every envelope is as large as the largest variant.
    Down(Box<(Down, DownToInfo<S>)>),
    /// Stop gracefully with this reason: `terminate` runs, then the process exits.
    Stop(ExitReason),
}

/// Turns a `Down` into the server's `Info` message (given to `Context::monitor`).
pub(crate) type DownToInfo<S> = Box<dyn FnOnce(Down) -> <S as GenServer>::Info + Send>;

/// A server process: the shared header plus its typed mailbox, in one allocation.
pub(crate) struct ServerProcess<S: GenServer> {
    pub(crate) header: ProcessHeader,
    pub(crate) mailbox: Mailbox<Envelope<S>>,
}

impl<S: GenServer> AnyProcess for ServerProcess<S> {
    fn header(&self) -> &ProcessHeader {
        &self.header
    }

    fn close_mailbox(&self) -> Option<Box<dyn Send>> {
        Some(Box::new(self.mailbox.close()))
    }

    fn request_stop(&self, reason: ExitReason) -> bool {
        self.mailbox
            .send_stop_request(Envelope::Stop(reason))
            .is_ok()
    }

    fn interrupt_init(&self) {
        // While `init` runs, its starter waits on the mailbox's waker (see `InitAsProcess`).
        self.mailbox.wake();
    }
}

/// Releases a name claimed for a server whose `init` failed, before the starter hears of it.
pub(crate) type ReleaseName = Box<dyn FnOnce() + Send>;

pub(super) async fn start<S: GenServer>(
    args: S::Args,
    options: StartOptions<S>,
) -> Result<ServerRef<S>, StartError> {
    let deadline = options
        .timeout
        .deadline()
        .map_err(|_| StartError::InvalidTimeout)?;
    // Checked before claiming a name, so that a claimed name always belongs to a running process.
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;

    let process = Arc::new(ServerProcess::<S> {
        header: ProcessHeader::new(options.label.unwrap_or(std::any::type_name::<S>())),
        mailbox: Mailbox::new(),
    });
    let server = ServerRef::from_process(process.clone());
    // In the table first, so that whoever finds the pid through the name can monitor it.
    spawn::admit(&process);
    // The name is claimed for the new pid before the process runs: if it is taken, the newcomer
    // never runs, so its `init` never runs (GS-13).
    let release = match options.name {
        Some(claim) => match claim.claim(&server) {
            Ok(release) => Some(release),
            Err(error) => {
                spawn::withdraw(server.pid());
                return Err(error);
            }
        },
        None => None,
    };

    // Erlang runs `init` in the new process while the starter waits for it (`proc_lib`'s
    // synchronous start). Here `init` runs in the starter's task *as* the new process: its pid
    // is current, its span entered, a kill ends it. The process gets a task of its own only once
    // `init` has succeeded, which saves two thread hand-offs per start.
    let abandoned = AbandonedInit(Some(&*process));
    let mut ctx = Context::new(process.clone());
    let init = InitAsProcess {
        process: &process,
        init: Some(guarded(S::init(args, &mut ctx))),
        waiting: false,
    };
    let outcome = match deadline {
        None => init.await,
        Some(deadline) => {
            // Should `init` finish at the deadline, its result stands: `timeout_at` polls it
            // first. A statement of its own, so that what the abandoned `init` owned is dropped
            // (as the process) before the process's exit is published.
            let timed = tokio::time::timeout_at(deadline, init).await;
            match timed {
                Ok(outcome) => outcome,
                Err(_) => {
                    drop(ctx);
                    abandoned.exit(ExitReason::Killed);
                    return Err(StartError::Timeout);
                }
            }
        }
    };
    let (error, reason) = match outcome {
        Ok(Init::Ready(state)) => {
            let core = Core {
                state,
                ctx,
                batch: VecDeque::new(),
            };
            abandoned.disarm();
            spawn::launch(
                &runtime,
                process.clone(),
                run(core),
                |outcome: Result<ExitReason, ExitReason>| (outcome.unwrap_or_else(|r| r), || {}),
            );
            return Ok(server);
        }
        Ok(Init::Ignore) => (StartError::Ignored, ExitReason::Normal),
        Ok(Init::Stop(reason)) => (StartError::InitFailed(reason.clone()), reason),
        // A failed or panicking `init`, or a kill from outside while it ran.
        Err(reason) => (StartError::InitFailed(reason.clone()), reason),
    };
    drop(ctx);
    // gen_server.erl init_it: the name is released *before* the starter is told, or an
    // immediate retry could get `already_started`.
    if let Some(release) = release {
        release();
    }
    // Erlang: "If start_link returns ignore or {error, _}, the started gen_server process has
    // terminated." The exit fan-out runs here, so the caller never sees it alive.
    abandoned.exit(reason);
    Err(error)
}

pin_project_lite::pin_project! {
    /// A server's `init`, run in its starter's task as the server's process: inside its span,
    /// with it current, and ended with the forced reason as soon as the process is exited.
    /// An `init` abandoned before it finished (a start timeout, a dropped start) is dropped
    /// the same way, as the process, with a panic in a `Drop` of what it owned contained: the
    /// starter must still run the process's exit.
    struct InitAsProcess<'a, S: GenServer, F> {
        process: &'a ServerProcess<S>,
        // `None` once dropped.
        #[pin]
        init: Option<F>,
        // Whether this future's waker is in the mailbox's waker slot.
        waiting: bool,
    }

    impl<'a, S: GenServer, F> PinnedDrop for InitAsProcess<'a, S, F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            let header = &this.process.header;
            let _entered = header.enter_span();
            let _current = spawn::Current::enter(header.pid());
            spawn::contained(|| this.init.set(None));
        }
    }
}

impl<S: GenServer, F, T> Future for InitAsProcess<'_, S, F>
where
    F: Future<Output = Result<T, ExitReason>>,
{
    type Output = Result<T, ExitReason>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let header = &this.process.header;
        let _entered = header.enter_span();
        let _current = spawn::Current::enter(header.pid());
        if let Some(reason) = header.forced_reason() {
            return Poll::Ready(Err(reason));
        }
        let Some(init) = this.init.as_pin_mut() else {
            return Poll::Pending;
        };
        let Poll::Ready(outcome) = init.poll(cx) else {
            // Only an `init` that waits needs waking by a kill (`AnyProcess::interrupt_init`):
            // the waker first, then the check again, so a kill in between is not missed.
            this.process.mailbox.register_waker(cx.waker());
            *this.waiting = true;
            return match header.forced_reason() {
                Some(reason) => Poll::Ready(Err(reason)),
                None => Poll::Pending,
            };
        };
        if *this.waiting {
            // The process's own task takes the slot over from here.
            this.process.mailbox.clear_waker();
        }
        Poll::Ready(outcome)
    }
}

/// Runs the exit fan-out of a process whose `init` did not succeed, or was abandoned because
/// its starter's future was dropped: then the process exits as if killed.
struct AbandonedInit<'a>(Option<&'a dyn AnyProcess>);

impl AbandonedInit<'_> {
    fn exit(mut self, reason: ExitReason) {
        if let Some(process) = self.0.take() {
            spawn::exit_unlaunched(process, reason);
        }
    }

    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for AbandonedInit<'_> {
    fn drop(&mut self) {
        if let Some(process) = self.0.take() {
            spawn::exit_unlaunched(process, process.header().take_forced());
        }
    }
}

/// Runs a callback with the process boundary around it: a panic or an `Err` becomes a reason.
///
/// Combinators rather than an `async fn`: an async fn would hold the callback's future twice,
/// and every idle server's task is as large as its largest callback future.
fn guarded<T>(
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
struct Core<S: GenServer> {
    state: S,
    ctx: Context<S>,
    /// Messages taken from the mailbox in one lock acquisition, handled in order.
    batch: VecDeque<Envelope<S>>,
}

/// The server's task: the receive loop, then `terminate`.
///
/// A plain fn around an `async move` block, as [`terminate`] is.
// An `async fn` would store `core` twice: as its argument and as its `mut` binding.
#[allow(clippy::manual_async_fn)]
fn run<S: GenServer>(mut core: Core<S>) -> impl Future<Output = ExitReason> {
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
            Envelope::Call(request, reply_to) => Work::Call(request, reply_to),
            Envelope::Cast(message) => Work::Cast(message),
            Envelope::Info(info) => Work::Info(info),
            Envelope::Stop(reason) => Work::Stop(reason),
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
/// message; waits for the mailbox or a timer when there is none.
///
/// - Every work item spends one unit of tokio's cooperative budget, and the loop yields when the
///   budget runs out. A server that always has work (it casts to itself, loops through
///   `handle_continue`, has a timer that is always due) still gives its thread up, so the
///   runtime's timers and other tasks run, and a kill, which takes effect where a task yields,
///   gets in.
/// - A due timer's message goes to the back of the mailbox, behind every message already
///   there, as an Erlang timer sends its message when it fires: a tick never overtakes a call
///   that arrived before it, however often the timer is due.
/// - A chain of `handle_continue`s does not read the mailbox, so a stop request queued there
///   ends the chain: the server stops before the next continue.
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
                break match core.take_stop_request() {
                    Some(reason) => Work::Stop(reason),
                    None => Work::Continue(value),
                };
            }
            if let Some(info) = core.ctx.timers().and_then(|timers| timers.pop_due()) {
                core.ctx.mailbox().append_to(&mut core.batch);
                core.batch.push_back(Envelope::Info(info));
            }
            if let Some(envelope) = core.batch.pop_front() {
                match Work::from_envelope(envelope, &mut core.ctx) {
                    Some(work) => break work,
                    None => continue,
                }
            }
            // Mailbox first: it is the common case.
            if core
                .ctx
                .mailbox()
                .poll_take(cx, &mut core.batch)
                .is_pending()
            {
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

impl<S: GenServer> Core<S> {
    /// Takes a stop request out of the mailbox, if one was sent, wherever it is queued.
    fn take_stop_request(&mut self) -> Option<ExitReason> {
        let mailbox = self.ctx.mailbox();
        if !mailbox.stop_requested() {
            return None;
        }
        mailbox.append_to(&mut self.batch);
        let at = self
            .batch
            .iter()
            .position(|envelope| matches!(envelope, Envelope::Stop(_)))?;
        match self.batch.remove(at) {
            Some(Envelope::Stop(reason)) => Some(reason),
            _ => None,
        }
    }
}
