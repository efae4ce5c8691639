//! Starting a server (`gen_server:start/4` and `proc_lib`'s synchronous start): claim the name,
//! run `init` as the new process in the starter's task, then give the process its own task and
//! the receive loop, or run its exit if `init` did not succeed.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;

use super::context::Context;
use super::server_loop::{Core, guarded, run};
use super::server_process::ServerProcess;
use super::{GenServer, Init, ServerRef, StartError, StartOptions};
use crate::ExitReason;
use crate::link;
use crate::process::current_process::{Current, current_pid};
use crate::process::header::{AnyProcess, ProcessHeader};
use crate::process::mailbox::Mailbox;
use crate::process::{spawn, table, termination};

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
    let starter = match options.link {
        true => Some(current_pid().ok_or(StartError::NotInProcess)?),
        false => None,
    };

    let process = Arc::new(ServerProcess::<S> {
        header: ProcessHeader::new(options.label.unwrap_or(std::any::type_name::<S>())),
        mailbox: match options.mailbox_capacity {
            None => Mailbox::new(),
            Some(capacity) => Mailbox::bounded(capacity),
        },
    });
    let server = ServerRef::from_process(process.clone());
    // In the table first, so that whoever finds the pid through the name can monitor it.
    table::admit(&process);
    // The name is claimed for the new pid before the process runs: if it is taken, the newcomer
    // never runs, so its `init` never runs (GS-13).
    let release = match options.name {
        Some(claim) => match claim.claim(&server) {
            Ok(release) => Some(release),
            Err(error) => {
                table::withdraw(server.pid());
                return Err(error);
            }
        },
        None => None,
    };
    // Linked before `init` runs, so the new process cannot exit unlinked (start_link is atomic).
    if let Some(starter) = starter {
        if !link::link_starting(starter, &process.header) {
            // The starter is exiting: nothing to link to.
            if let Some(release) = release {
                release();
            }
            table::withdraw(server.pid());
            return Err(StartError::NotInProcess);
        }
    }

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
                    if let Some(starter) = starter {
                        link::unlink_failed_start(starter, &process.header);
                    }
                    abandoned.exit(ExitReason::Killed);
                    exited(&process).await;
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
    // OTP 26 (`proc_lib:init_fail`): the starter learns of the failure from the result alone,
    // never from an exit signal.
    if let Some(starter) = starter {
        link::unlink_failed_start(starter, &process.header);
    }
    // Erlang: "If start_link returns ignore or {error, _}, the started gen_server process has
    // terminated." The exit fan-out runs here, so the caller never sees it alive.
    abandoned.exit(reason);
    exited(&process).await;
    Err(error)
}

/// Waits until a process whose `init` did not succeed has exited. At once, unless its exit
/// waits for children it killed (a supervisor whose `init` was ended while it had started
/// some): the starter must not see it, or them, alive after its start failed, or a restart
/// would find their names taken.
async fn exited<S: GenServer>(process: &ServerProcess<S>) {
    crate::monitor::wait_exit(&process.header).await;
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
            let _current = Current::enter(header.pid());
            termination::contained(|| this.init.set(None));
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
        let _current = Current::enter(header.pid());
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
            termination::exit_unlaunched(process, reason);
        }
    }

    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for AbandonedInit<'_> {
    fn drop(&mut self) {
        if let Some(process) = self.0.take() {
            termination::exit_unlaunched(process, process.header().take_forced());
            // The start was dropped, so nothing can wait here for an exit that waits for
            // children (see `exited`): the starter's own exit waits for it instead, when the
            // starter is a process being dropped (a supervisor killed while starting a child).
            termination::kill_children(std::iter::once(process.header()));
        }
    }
}
