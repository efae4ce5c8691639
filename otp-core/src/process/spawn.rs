//! Spawning a process: its task, and the boundary around it that turns panics, kills and a
//! runtime shutdown into the process's exit.
//!
//! # Invariants
//!
//! - Every process is [admitted](table::admit) to the table before its first poll.
//! - The exit fan-out runs exactly once: from the boundary's `poll` when the body ends, or from
//!   its `Drop` when the task is dropped first (a kill, a runtime shutdown), so even an aborted
//!   task reports an exit. The boundary exists before the task is spawned, so a process killed
//!   before its first poll still exits properly.
//! - While a process's task is polled or dropped, that process is [current](Current) on the
//!   thread: `process::current()` names it, in its callbacks and in the `Drop` of what it owned.
//! - `finish` runs behind `catch_unwind`, and so does the drop of what a killed process owned: a
//!   panic in a `Drop` impl of its state is contained, and the fan-out still runs.

use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures::FutureExt;

use super::current_process::Current;
use super::header::AnyProcess;
use super::termination::{contained, exit_process};
use super::{ExitReason, panic_message, table};

/// Why a process could not be spawned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no tokio runtime is running on this thread")]
pub(crate) struct NoRuntime;

/// How a process's body ends: turns the body's outcome (its output, or the reason it ended
/// early: a panic, a kill or the runtime shutting down) into the process's exit reason, and
/// into what is delivered once the exit is complete, in fan-out step 5 (a task's result, to
/// whoever awaits it). Runs exactly once, before the exit fan-out.
///
/// Implemented by closures `FnOnce(Result<T, ExitReason>) -> (ExitReason, impl FnOnce())`.
pub(crate) trait Finish<T>: Send + 'static {
    type Delivery: FnOnce() + Send + 'static;
    fn finish(self, outcome: Result<T, ExitReason>) -> (ExitReason, Self::Delivery);
}

impl<T, F, D> Finish<T> for F
where
    F: FnOnce(Result<T, ExitReason>) -> (ExitReason, D) + Send + 'static,
    D: FnOnce() + Send + 'static,
{
    type Delivery = D;

    fn finish(self, outcome: Result<T, ExitReason>) -> (ExitReason, D) {
        self(outcome)
    }
}

/// Spawns `body` as the process `process`, ending as `finish` says.
pub(crate) fn spawn<P, F, Fin>(process: Arc<P>, body: F, finish: Fin) -> Result<(), NoRuntime>
where
    P: AnyProcess,
    F: Future + Send + 'static,
    Fin: Finish<F::Output>,
{
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| NoRuntime)?;
    table::admit(&process);
    launch(&runtime, process, body, finish);
    Ok(())
}

/// Spawns an [admitted](table::admit) process on `runtime`.
pub(crate) fn launch<P, F, Fin>(
    runtime: &tokio::runtime::Handle,
    process: Arc<P>,
    body: F,
    finish: Fin,
) where
    P: AnyProcess,
    F: Future + Send + 'static,
    Fin: Finish<F::Output>,
{
    let for_abort = process.clone();
    // A hand-written future rather than an `async` block: an async block would hold the body
    // twice (once captured, once being awaited), doubling every idle process.
    let boundary = Boundary {
        body: Some(AssertUnwindSafe(body).catch_unwind()),
        process,
        finish: Some(finish),
        output: PhantomData,
    };
    let task = runtime.spawn(boundary);
    for_abort.header().set_abort(task.abort_handle());
}

pin_project_lite::pin_project! {
    /// The process boundary: polls the body with panics caught and the process
    /// [current](Current), then runs the exit fan-out. It runs the fan-out from its `Drop` too,
    /// so a process whose task is dropped before its body finished (it was killed, or the runtime
    /// is shutting down, maybe before its first poll) still exits properly.
    struct Boundary<B, P, T, Fin>
    where
        P: AnyProcess,
        Fin: Finish<T>,
    {
        // In an `Option` so that `drop` can drop it while the process is still current.
        #[pin]
        body: Option<B>,
        process: Arc<P>,
        // `Some` until the fan-out has run.
        finish: Option<Fin>,
        output: PhantomData<fn(T)>,
    }

    impl<B, P, T, Fin> PinnedDrop for Boundary<B, P, T, Fin>
    where
        P: AnyProcess,
        Fin: Finish<T>,
    {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            let header = this.process.header();
            let _entered = header.enter_span();
            let _current = Current::enter(header.pid());
            // What the process owned is dropped as it ran: inside its span, as the current
            // process. A panic in a `Drop` there must not skip the fan-out below (the process
            // would be a zombie: no `Down`, its names held, its mailbox open); the process
            // exits with the reason it was killed with.
            contained(|| this.body.set(None));
            if this.finish.is_some() {
                let reason = header.take_forced();
                complete(&**this.process, this.finish, Err(reason));
            }
        }
    }
}

impl<B, P, T, Fin> Future for Boundary<B, P, T, Fin>
where
    B: Future<Output = std::thread::Result<T>>,
    P: AnyProcess,
    Fin: Finish<T>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.project();
        let header = this.process.header();
        // As `tracing::Instrument` does, with the span kept in the process header.
        let _entered = header.enter_span();
        let _current = Current::enter(header.pid());
        let Some(body) = this.body.as_pin_mut() else {
            return Poll::Ready(());
        };
        let outcome = std::task::ready!(body.poll(cx));
        let outcome = outcome.map_err(|payload| ExitReason::Panic(panic_message(&*payload)));
        complete(&**this.process, this.finish, outcome);
        Poll::Ready(())
    }
}

/// Runs `finish` (once) and the exit fan-out.
fn complete<T, Fin>(
    process: &dyn AnyProcess,
    finish: &mut Option<Fin>,
    outcome: Result<T, ExitReason>,
) where
    Fin: Finish<T>,
{
    if let Some(finish) = finish.take() {
        match std::panic::catch_unwind(AssertUnwindSafe(|| finish.finish(outcome))) {
            Ok((reason, delivery)) => exit_process(process, reason, delivery),
            Err(payload) => {
                exit_process(process, ExitReason::Panic(panic_message(&*payload)), || {});
            }
        }
    }
}
