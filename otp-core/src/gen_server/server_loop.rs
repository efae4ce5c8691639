//! The receive loop: take the next envelope, run its callback, apply what the callback asked.
//!
//! # Invariants
//!
//! - One message at a time: a callback runs to completion (across its `.await`s) before the
//!   next message is taken. `&mut self` is never shared.
//! - `handle_continue` runs straight after the callback that asked for it, before any queued
//!   message and before any due timer.
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
use tokio::sync::oneshot;

use super::context::Context;
use super::reply_to::{Caller, ReplyTo};
use super::{CallResult, GenServer, Init, ServerRef, StartError, StartOptions};
use crate::ExitReason;
use crate::monitor::{Down, wait_exit};
use crate::process::mailbox::Mailbox;
use crate::process::spawn::{self, AnyProcess, ProcessHeader};
use crate::process::{BoxError, panic_message};

/// Everything a server's mailbox can hold.
pub(crate) enum Envelope<S: GenServer> {
    Call(S::Call, ReplyTo<S::Reply>),
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
        self.mailbox.send(Envelope::Stop(reason)).is_ok()
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

    let (started_tx, mut started_rx) = oneshot::channel();
    let handshake = Box::new(Handshake {
        started: started_tx,
        release,
    });
    let body = run::<S>(process.clone(), args, handshake);
    spawn::launch(&runtime, process.clone(), body, |outcome| {
        outcome.unwrap_or_else(|reason| reason)
    });

    let started = match deadline {
        None => started_rx.await,
        Some(deadline) => match tokio::time::timeout_at(deadline, &mut started_rx).await {
            Ok(started) => started,
            // Too late, unless init finished in the meantime: then its own result stands.
            Err(_) if process.header.force_exit(ExitReason::Killed) => {
                wait_exit(&process.header).await;
                return Err(StartError::Timeout);
            }
            Err(_) => started_rx.await,
        },
    };
    match started {
        Ok(Ok(())) => Ok(server),
        Ok(Err(error)) => {
            // Erlang: "If start_link returns ignore or {error, _}, the started gen_server
            // process has terminated." Wait for that, so the caller never sees it alive.
            wait_exit(&process.header).await;
            Err(error)
        }
        // The process ended during `init` without reporting: it was killed from outside.
        Err(_) => Err(StartError::InitFailed(wait_exit(&process.header).await)),
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

/// What `init` reports through; boxed because it is needed only until `init` returns, and the
/// server's task keeps room for its arguments for as long as it lives.
struct Handshake {
    started: oneshot::Sender<Result<(), StartError>>,
    release: Option<ReleaseName>,
}

async fn run<S: GenServer>(
    process: Arc<ServerProcess<S>>,
    args: S::Args,
    handshake: Box<Handshake>,
) -> ExitReason {
    let mut core = match init(process, args, handshake).await {
        Ok(core) => core,
        Err(reason) => return reason,
    };
    let reason = receive_loop(&mut core).await;
    let Core {
        mut state, mut ctx, ..
    } = core;
    match guarded(async {
        state.terminate(&reason, &mut ctx).await;
        Ok(())
    })
    .await
    {
        Ok(()) => reason,
        // As in Erlang, a crash in terminate replaces the exit reason.
        Err(crash) => crash,
    }
}

/// Runs `init` and tells the starter; returns the loop's core, or the exit reason.
async fn init<S: GenServer>(
    process: Arc<ServerProcess<S>>,
    args: S::Args,
    handshake: Box<Handshake>,
) -> Result<Core<S>, ExitReason> {
    let Handshake { started, release } = *handshake;
    let mut ctx = Context::new(process);
    let (error, reason) = match guarded(S::init(args, &mut ctx)).await {
        Ok(Init::Ready(state)) => {
            let _ = started.send(Ok(()));
            return Ok(Core {
                state,
                ctx,
                batch: VecDeque::new(),
            });
        }
        Ok(Init::Ignore) => (StartError::Ignored, ExitReason::Normal),
        Ok(Init::Stop(reason)) => (StartError::InitFailed(reason.clone()), reason),
        Err(reason) => (StartError::InitFailed(reason.clone()), reason),
    };
    // gen_server.erl init_it: the name is released *before* the starter is told, or an
    // immediate retry could get `already_started`.
    if let Some(release) = release {
        release();
    }
    let _ = started.send(Err(error));
    Err(reason)
}

async fn receive_loop<S: GenServer>(core: &mut Core<S>) -> ExitReason {
    loop {
        if let Some(reason) = core.ctx.stop.take() {
            return reason;
        }
        let outcome = if let Some(value) = core.ctx.next_continue.take() {
            guarded(core.state.handle_continue(value, &mut core.ctx)).await
        } else if let Some(info) = core.ctx.timers().and_then(|timers| timers.pop_due()) {
            guarded(core.state.handle_info(info, &mut core.ctx)).await
        } else if let Some(envelope) = core.batch.pop_front() {
            match envelope {
                Envelope::Call(request, reply_to) => handle_call(core, request, reply_to).await,
                Envelope::Cast(message) => {
                    guarded(core.state.handle_cast(message, &mut core.ctx)).await
                }
                Envelope::Info(info) => guarded(core.state.handle_info(info, &mut core.ctx)).await,
                Envelope::Down(down) => {
                    let (down, to_info) = *down;
                    if core.ctx.take_down(down.monitor) {
                        match std::panic::catch_unwind(AssertUnwindSafe(|| to_info(down))) {
                            Ok(info) => guarded(core.state.handle_info(info, &mut core.ctx)).await,
                            Err(payload) => Err(ExitReason::Panic(panic_message(&*payload))),
                        }
                    } else {
                        Ok(())
                    }
                }
                Envelope::Stop(reason) => return reason,
            }
        } else {
            WaitForWork { core }.await;
            continue;
        };
        if let Err(reason) = outcome {
            return reason;
        }
    }
}

async fn handle_call<S: GenServer>(
    core: &mut Core<S>,
    request: S::Call,
    reply_to: ReplyTo<S::Reply>,
) -> Result<(), ExitReason> {
    let mut slot = Some(reply_to);
    let outcome = guarded(
        core.state
            .handle_call(request, Caller::new(&mut slot), &mut core.ctx),
    )
    .await;
    match outcome {
        Ok(CallResult::Reply(reply)) => {
            if let Some(reply_to) = slot {
                let _ = reply_to.reply(reply);
            }
            Ok(())
        }
        Ok(CallResult::NoReply) => Ok(()),
        // `slot` is dropped on return; the caller then waits for the exit reason, which is
        // published after `terminate`.
        Err(reason) => Err(reason),
    }
}

/// Ready when the mailbox had messages (now moved into the batch) or a timer is due.
struct WaitForWork<'a, S: GenServer> {
    core: &'a mut Core<S>,
}

impl<S: GenServer> Future for WaitForWork<'_, S> {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let core = &mut *self.core;
        // Mailbox first: it is the common case. A due timer is not starved by a busy mailbox,
        // because the loop checks timers before taking each message from the batch.
        if core.ctx.mailbox().poll_take(cx, &mut core.batch).is_ready() {
            return Poll::Ready(());
        }
        match core.ctx.timers() {
            Some(timers) => timers.poll_due(cx),
            None => Poll::Pending,
        }
    }
}
