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
use std::future::{Future, poll_fn};
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
    /// The mapping to `Info` runs in the receiving server, not in the exiting process.
    Down(Down, DownToInfo<S>),
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
    let body = run::<S>(process.clone(), args, started_tx, release);
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
async fn guarded<T>(callback: impl Future<Output = Result<T, BoxError>>) -> Result<T, ExitReason> {
    match AssertUnwindSafe(callback).catch_unwind().await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(ExitReason::Error(Arc::from(error))),
        Err(payload) => Err(ExitReason::Panic(panic_message(&*payload))),
    }
}

enum Next<S: GenServer> {
    Envelope(Envelope<S>),
    Timer(S::Info),
}

async fn run<S: GenServer>(
    process: Arc<ServerProcess<S>>,
    args: S::Args,
    started: oneshot::Sender<Result<(), StartError>>,
    release: Option<ReleaseName>,
) -> ExitReason {
    let mut ctx = Context::new(process.clone());
    let init = guarded(S::init(args, &mut ctx)).await;
    let (result, failure) = match init {
        Ok(Init::Ready(state)) => (Ok(state), None),
        Ok(Init::Ignore) => (Err(StartError::Ignored), Some(ExitReason::Normal)),
        Ok(Init::Stop(reason)) => (Err(StartError::InitFailed(reason.clone())), Some(reason)),
        Err(reason) => (Err(StartError::InitFailed(reason.clone())), Some(reason)),
    };
    let mut state = match result {
        Ok(state) => {
            let _ = started.send(Ok(()));
            state
        }
        Err(error) => {
            // gen_server.erl init_it: the name is released *before* the starter is told, or an
            // immediate retry could get `already_started`.
            if let Some(release) = release {
                release();
            }
            let _ = started.send(Err(error));
            return failure.unwrap_or(ExitReason::Normal);
        }
    };
    drop(release);

    let reason = receive_loop(&mut state, &mut ctx, &process.mailbox).await;
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

async fn receive_loop<S: GenServer>(
    state: &mut S,
    ctx: &mut Context<S>,
    mailbox: &Mailbox<Envelope<S>>,
) -> ExitReason {
    // Messages taken from the mailbox in one lock acquisition, handled in order.
    let mut batch = VecDeque::new();
    loop {
        if let Some(reason) = ctx.stop.take() {
            return reason;
        }
        let outcome = if let Some(value) = ctx.next_continue.take() {
            guarded(state.handle_continue(value, ctx)).await
        } else {
            let next = match ctx.timers().and_then(|timers| timers.pop_due()) {
                Some(info) => Next::Timer(info),
                None => match batch.pop_front() {
                    Some(envelope) => Next::Envelope(envelope),
                    None => {
                        wait_for_work(mailbox, &mut batch, ctx).await;
                        continue;
                    }
                },
            };
            match next {
                Next::Timer(info) => guarded(state.handle_info(info, ctx)).await,
                Next::Envelope(envelope) => match envelope {
                    Envelope::Call(request, reply_to) => {
                        let mut slot = Some(reply_to);
                        let outcome =
                            guarded(state.handle_call(request, Caller::new(&mut slot), ctx)).await;
                        match outcome {
                            Ok(CallResult::Reply(reply)) => {
                                if let Some(reply_to) = slot {
                                    let _ = reply_to.reply(reply);
                                }
                                Ok(())
                            }
                            Ok(CallResult::NoReply) => Ok(()),
                            // `slot` is dropped at the end of this arm; the caller then waits
                            // for the exit reason, which is published after `terminate`.
                            Err(reason) => Err(reason),
                        }
                    }
                    Envelope::Cast(message) => guarded(state.handle_cast(message, ctx)).await,
                    Envelope::Info(info) => guarded(state.handle_info(info, ctx)).await,
                    Envelope::Down(down, to_info) => {
                        if ctx.take_down(down.monitor) {
                            guarded(async {
                                let info = to_info(down);
                                state.handle_info(info, ctx).await
                            })
                            .await
                        } else {
                            Ok(())
                        }
                    }
                    Envelope::Stop(reason) => return reason,
                },
            }
        };
        if let Err(reason) = outcome {
            return reason;
        }
    }
}

/// Waits until the mailbox has messages (moved into `batch`) or a timer is due.
async fn wait_for_work<S: GenServer>(
    mailbox: &Mailbox<Envelope<S>>,
    batch: &mut VecDeque<Envelope<S>>,
    ctx: &mut Context<S>,
) {
    poll_fn(|cx| {
        // Mailbox first: it is the common case. A due timer is not starved by a busy mailbox,
        // because the loop checks timers before taking each message from the batch.
        if mailbox.poll_take(cx, batch).is_ready() {
            return Poll::Ready(());
        }
        match ctx.timers() {
            Some(timers) => timers.poll_due(cx),
            None => Poll::Pending,
        }
    })
    .await
}
