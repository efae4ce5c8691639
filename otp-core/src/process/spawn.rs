//! Running a process: the process table, the boundary that turns panics into exit reasons, and
//! the exit fan-out to registries and monitors.
//!
//! # Invariants
//!
//! - Every process is in the process table from before its first poll until its exit fan-out.
//! - A process's exit reason is set exactly once, by [`exit_process`], whatever ended it: its body
//!   returning, a panic, or its future being dropped (kill, runtime shutdown). The last case runs
//!   from [`Boundary`]'s `Drop`, so even an aborted task reports an exit.
//! - A process that [killed its children](kill_children) as it was dropped (a supervisor that
//!   was itself killed) starts its fan-out only once they have all exited: whoever learns of its
//!   exit finds its children gone and their names free.
//! - Exit fan-out order, which the rest of the crate relies on:
//!   1. run the exit hooks (registry clean-up), so that no lookup returns the process once any
//!      sign of its exit can be observed, not even a failed send (stronger than Elixir's
//!      registry; see the semantics page, D8). No hook can be added after this step starts;
//!   2. close the mailbox, so that every later send fails at once ("no process");
//!   3. publish the exit reason and take the monitors, under one lock, so a monitor added
//!      concurrently either is taken here or sees the reason at once;
//!   4. remove the process from the table;
//!   5. deliver what the body produced (a task's result): whoever receives it finds the
//!      process gone and its names released, and receives it before any `Down`, as an Elixir
//!      task's reply arrives before its `:DOWN`;
//!   6. deliver one `Down` to every monitor;
//!   7. drop the messages that were still queued. Pending callers learn that their request was
//!      dropped only now, when the reason they will report is already published.
//! - The boundary that runs the fan-out exists before the task is spawned, so a process that is
//!   killed (or whose runtime shuts down) before its first poll still exits properly.
//! - While a process's task is polled or dropped, that process is [current](Current) on the
//!   thread: `process::current()` names it, in its callbacks and in the `Drop` of what it owned.
//! - Nothing in the fan-out may unwind out of it: `finish`, each hook and each delivery run
//!   behind `catch_unwind`, so one faulty callback cannot leave a zombie or swallow other
//!   monitors' `Down`s. The same holds for the drop of what a killed process owned: a panic in
//!   a `Drop` impl of its state is contained, and the fan-out still runs.

use std::cell::Cell;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context as TaskContext, Poll};

use futures::FutureExt;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use thin_vec::ThinVec;
use tokio::task::AbortHandle;

use super::{ExitReason, Pid, panic_message};
use crate::monitor::{Down, MonitorRef};

thread_local! {
    /// The pid of the process being polled on this thread (see [`Current`]).
    static CURRENT_PID: Cell<Option<Pid>> = const { Cell::new(None) };
}

pub(crate) fn current_pid() -> Option<Pid> {
    CURRENT_PID.get()
}

/// Makes a process current on this thread while its task is polled or dropped, for
/// [`current_pid`]. Restores what was current before when dropped, so a poll nested in another
/// (a `block_on` inside a process) stays correct.
///
/// A thread-local set by the process boundary rather than a tokio task-local: the boundary
/// already wraps every poll, and a second wrapper future costs each poll about 50 instructions
/// and each idle process 24 bytes.
pub(crate) struct Current {
    previous_pid: Option<Pid>,
}

impl Current {
    pub(crate) fn enter(pid: Pid) -> Current {
        Current {
            previous_pid: CURRENT_PID.replace(Some(pid)),
        }
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        CURRENT_PID.set(self.previous_pid);
    }
}

/// What the runtime needs from any kind of process, whatever its message type.
pub(crate) trait AnyProcess: Send + Sync + 'static {
    fn header(&self) -> &ProcessHeader;

    /// Closes the mailbox, if the process has one, and returns what was queued (see step 7).
    fn close_mailbox(&self) -> Option<Box<dyn Send>>;

    /// Asks the process to stop with `reason` the way its kind stops gracefully: a server gets an
    /// in-band stop request behind the messages already queued; a task is ended at once.
    /// Returns whether the request was delivered.
    fn request_stop(&self, reason: ExitReason) -> bool;

    /// Wakes whatever runs the process's start-up outside its own task (a server's `init` runs
    /// in its starter's task), so that it notices a kill. Nothing to do by default.
    fn interrupt_init(&self) {}
}

type ExitHook = Box<dyn FnOnce(Pid) + Send>;
type DownDelivery = Box<dyn FnOnce(Down) + Send>;
/// A delivery shared by the monitors of many processes (a supervisor waiting for all its
/// children): one allocation for all of them instead of one each.
pub(crate) type SharedDelivery = Arc<dyn Fn(Down) + Send + Sync>;

/// The part of every process that other processes touch: identity, exit state, monitors.
///
/// Kept small on purpose: there is one per process, and idle servers are meant to cost at most
/// a few hundred bytes in all.
pub(crate) struct ProcessHeader {
    pid: Pid,
    name: &'static str,
    /// The process's span, entered on every poll of its task; `None` when no subscriber wants
    /// it. It lives here rather than in the task's future because tokio sizes task allocations
    /// in 128-byte steps, and its 40 bytes decide the step for a typical server.
    span: Option<Box<tracing::Span>>,
    state: Mutex<ExitState>,
}

#[derive(Default)]
struct ExitState {
    status: Status,
    abort: Option<AbortHandle>,
    /// Exit hooks (registry clean-up) and monitors, in the order added. A `ThinVec` (8 bytes,
    /// its length and capacity live in its allocation) because most processes have at most one
    /// watcher, and this struct is part of every idle process.
    watchers: ThinVec<Watcher>,
}

#[derive(Default)]
enum Status {
    #[default]
    Running,
    /// `exit(pid, reason)` was called; the task is being aborted.
    Forced(ExitReason),
    /// The fan-out has taken the exit hooks: no more can be added.
    Exiting,
    /// Set once, by the fan-out.
    Exited(ExitReason),
}

enum Watcher {
    Hook(ExitHook),
    Monitor(u64, Delivery),
    /// The children this process's exit waits for (see [`kill_children`]); at most one.
    Barrier(Arc<ExitBarrier>),
}

/// What a monitor runs with the `Down`: its own closure, or one shared with other monitors.
enum Delivery {
    Own(DownDelivery),
    Shared(SharedDelivery),
}

impl Delivery {
    fn deliver(self, down: Down) {
        match self {
            Delivery::Own(deliver) => deliver(down),
            Delivery::Shared(deliver) => deliver(down),
        }
    }
}

impl Watcher {
    fn is_monitor(&self, mref: MonitorRef) -> bool {
        matches!(self, Watcher::Monitor(id, _) if *id == mref.id())
    }
}

impl ProcessHeader {
    pub(crate) fn new(name: &'static str) -> ProcessHeader {
        let pid = Pid::new_unique();
        ProcessHeader {
            pid,
            name,
            span: Some(tracing::info_span!("process", pid = %pid, name))
                .filter(|span| !span.is_disabled())
                .map(Box::new),
            state: Mutex::new(ExitState::default()),
        }
    }

    pub(crate) fn pid(&self) -> Pid {
        self.pid
    }

    pub(crate) fn enter_span(&self) -> Option<tracing::span::Entered<'_>> {
        self.span.as_deref().map(tracing::Span::enter)
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// The exit reason, once the process has exited.
    pub(crate) fn exit_reason(&self) -> Option<ExitReason> {
        match &self.state.lock().status {
            Status::Exited(reason) => Some(reason.clone()),
            _ => None,
        }
    }

    /// Registers `hook` to run in step 1 of the fan-out. Returns `false` (and drops the hook)
    /// if the process is already exiting.
    pub(crate) fn add_exit_hook(&self, hook: ExitHook) -> bool {
        let mut state = self.state.lock();
        if matches!(state.status, Status::Exiting | Status::Exited(_)) {
            return false;
        }
        state.watchers.push(Watcher::Hook(hook));
        true
    }

    /// Adds a monitor. If the process has already exited, `deliver` runs at once with its reason.
    pub(crate) fn add_monitor(&self, deliver: DownDelivery) -> MonitorRef {
        self.watch(Delivery::Own(deliver))
    }

    /// As [`add_monitor`](Self::add_monitor), with a delivery shared with other monitors.
    pub(crate) fn add_shared_monitor(&self, deliver: &SharedDelivery) -> MonitorRef {
        self.watch(Delivery::Shared(deliver.clone()))
    }

    fn watch(&self, delivery: Delivery) -> MonitorRef {
        let mref = MonitorRef::new(self.pid);
        let mut state = self.state.lock();
        match &state.status {
            Status::Exited(reason) => {
                let down = Down::new(mref, reason.clone());
                drop(state);
                delivery.deliver(down);
            }
            _ => state.watchers.push(Watcher::Monitor(mref.id(), delivery)),
        }
        mref
    }

    /// Removes a monitor; returns whether it was still active (no `Down` delivered or in flight).
    pub(crate) fn remove_monitor(&self, mref: MonitorRef) -> bool {
        let removed = {
            let mut state = self.state.lock();
            let at = state.watchers.iter().position(|w| w.is_monitor(mref));
            at.map(|at| state.watchers.remove(at))
        };
        // Dropped outside the lock: a delivery owns user code (a server's `Down` mapping), and
        // its `Drop` may touch this very process (say, by dropping a `Monitor` of it).
        removed.is_some()
    }

    /// Ends the process with `reason` at its next `.await`. Returns whether it was still alive.
    ///
    /// A first reason sticks, except that `Killed` overrides a pending graceful one: a kill after
    /// a shutdown timeout reports `Killed`.
    pub(crate) fn force_exit(&self, reason: ExitReason) -> bool {
        let mut state = self.state.lock();
        match state.status {
            Status::Exiting | Status::Exited(_) => return false,
            Status::Forced(_) if reason != ExitReason::Killed => {}
            _ => state.status = Status::Forced(reason),
        }
        // If the abort handle is not set yet, `set_abort` sees `Forced` and aborts then.
        if let Some(abort) = &state.abort {
            abort.abort();
        }
        true
    }

    fn set_abort(&self, abort: AbortHandle) {
        let mut state = self.state.lock();
        if matches!(state.status, Status::Forced(_)) {
            abort.abort();
        }
        state.abort = Some(abort);
    }

    /// The reason the process was [forced](Self::force_exit) to exit with, if it was.
    pub(crate) fn forced_reason(&self) -> Option<ExitReason> {
        match &self.state.lock().status {
            Status::Forced(reason) => Some(reason.clone()),
            _ => None,
        }
    }

    /// The reason a killed process exits with: the forced one, or `Killed`.
    pub(crate) fn take_forced(&self) -> ExitReason {
        let mut state = self.state.lock();
        match std::mem::take(&mut state.status) {
            Status::Forced(reason) => reason,
            other => {
                state.status = other;
                ExitReason::Killed
            }
        }
    }

    /// The barrier this process's exit waits on, made on first use; `None` once it is exiting.
    fn exit_barrier(&self) -> Option<Arc<ExitBarrier>> {
        let mut state = self.state.lock();
        if matches!(state.status, Status::Exiting | Status::Exited(_)) {
            return None;
        }
        let existing = state.watchers.iter().find_map(|watcher| match watcher {
            Watcher::Barrier(barrier) => Some(barrier.clone()),
            _ => None,
        });
        Some(existing.unwrap_or_else(|| {
            let barrier = Arc::new(ExitBarrier::new());
            state.watchers.push(Watcher::Barrier(barrier.clone()));
            barrier
        }))
    }

    fn take_exit_barrier(&self) -> Option<Arc<ExitBarrier>> {
        let mut state = self.state.lock();
        let at = state
            .watchers
            .iter()
            .position(|watcher| matches!(watcher, Watcher::Barrier(_)))?;
        match state.watchers.remove(at) {
            Watcher::Barrier(barrier) => Some(barrier),
            _ => None,
        }
    }

    /// Fan-out step 1: marks the process as exiting and takes its exit hooks.
    ///
    /// Allocates nothing unless there are hooks: every process exits through here.
    fn begin_exit(&self) -> Vec<ExitHook> {
        let mut state = self.state.lock();
        state.status = Status::Exiting;
        if !state.watchers.iter().any(|w| matches!(w, Watcher::Hook(_))) {
            return Vec::new();
        }
        let (hooks, monitors): (ThinVec<_>, ThinVec<_>) = std::mem::take(&mut state.watchers)
            .into_iter()
            .partition(|watcher| matches!(watcher, Watcher::Hook(_)));
        state.watchers = monitors;
        hooks
            .into_iter()
            .filter_map(|watcher| match watcher {
                Watcher::Hook(hook) => Some(hook),
                Watcher::Monitor(..) | Watcher::Barrier(_) => None,
            })
            .collect()
    }

    /// Fan-out step 3: publishes the exit reason and takes the monitors (all that is left once
    /// step 1 has taken the hooks).
    fn publish_exit(&self, reason: &ExitReason) -> ThinVec<Watcher> {
        let mut state = self.state.lock();
        state.status = Status::Exited(reason.clone());
        state.abort = None;
        std::mem::take(&mut state.watchers)
    }
}

// ---------------------------------------------------------------------------------------------
// The process table: pid → process, sharded so that spawns and exits on different cores rarely
// meet on one lock.

const SHARDS: usize = 64;

// Pids are sequential and made here, never chosen by a user, so the fast multiplicative Fx hash
// spreads them well and cannot be attacked.
type Shard = Mutex<FxHashMap<Pid, Arc<dyn AnyProcess>>>;

static TABLE: LazyLock<Vec<Shard>> = LazyLock::new(|| {
    (0..SHARDS)
        .map(|_| Mutex::new(FxHashMap::default()))
        .collect()
});

fn shard(pid: Pid) -> &'static Shard {
    &TABLE[(pid.as_u64() % SHARDS as u64) as usize]
}

pub(crate) fn lookup(pid: Pid) -> Option<Arc<dyn AnyProcess>> {
    shard(pid).lock().get(&pid).cloned()
}

// ---------------------------------------------------------------------------------------------

/// Why a process could not be spawned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no tokio runtime is running on this thread")]
pub(crate) struct NoRuntime;

/// Puts a process in the table before it runs, so that its pid can be monitored and exited
/// from the moment anyone can learn it (for example from a registry). Follow with [`launch`],
/// or [`withdraw`] if it will not run after all.
pub(crate) fn admit<P: AnyProcess>(process: &Arc<P>) {
    let pid = process.header().pid();
    shard(pid)
        .lock()
        .insert(pid, process.clone() as Arc<dyn AnyProcess>);
}

/// Takes an admitted process that never ran out of the table. Nobody can hold a monitor on it:
/// its pid was never handed out.
pub(crate) fn withdraw(pid: Pid) {
    // Dropped outside the shard's lock.
    let withdrawn = shard(pid).lock().remove(&pid);
    drop(withdrawn);
}

/// Kills `children` (each exits `Killed` at its next `.await`) and holds the exit of the
/// current process until they have all exited.
///
/// For a supervisor dropped with children still running (it was killed, or its own code
/// panicked) or with a stop still in flight: its children die with it, as linked children do
/// in Erlang, and beyond Erlang its `Down` comes after theirs, so that a parent restarting it
/// finds their names free.
pub(crate) fn kill_children<'a>(children: impl IntoIterator<Item = &'a ProcessHeader>) {
    let barrier = current_pid()
        .and_then(lookup)
        .and_then(|owner| owner.header().exit_barrier());
    for child in children {
        if let Some(barrier) = &barrier {
            barrier.hold(child);
        }
        child.force_exit(ExitReason::Killed);
    }
}

/// What a process's exit waits for: the children it [killed](kill_children), plus the process
/// itself until its fan-out is ready to run. Whoever arrives last runs the fan-out: the owner
/// if its children were already gone, otherwise the last child, from its own fan-out.
struct ExitBarrier {
    remaining: AtomicUsize,
    exit: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl ExitBarrier {
    fn new() -> ExitBarrier {
        ExitBarrier {
            remaining: AtomicUsize::new(1),
            exit: Mutex::new(None),
        }
    }

    /// Waits for `child` too. The owner has not arrived yet, so the count is above zero.
    fn hold(self: &Arc<Self>, child: &ProcessHeader) {
        self.remaining.fetch_add(1, Ordering::AcqRel);
        let barrier = self.clone();
        // Delivered at once if the child has already exited.
        child.add_monitor(Box::new(move |_| barrier.arrive()));
    }

    /// The owner arrives, with its fan-out.
    fn exit_when_released(&self, exit: Box<dyn FnOnce() + Send>) {
        *self.exit.lock() = Some(exit);
        self.arrive();
    }

    fn arrive(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let exit = self.exit.lock().take();
            if let Some(exit) = exit {
                exit();
            }
        }
    }
}

/// Runs the exit fan-out of an [admitted](admit) process that never got a task (a server whose
/// `init` failed or was abandoned).
pub(crate) fn exit_unlaunched(process: &dyn AnyProcess, reason: ExitReason) {
    let _entered = process.header().enter_span();
    exit_process(process, reason, || {});
}

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
    admit(&process);
    launch(&runtime, process, body, finish);
    Ok(())
}

/// Spawns an [admitted](admit) process on `runtime`.
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

/// Runs one step of the fan-out, or a drop of what a process owned; a panic in it is
/// contained (and the step is skipped).
pub(crate) fn contained(step: impl FnOnce()) {
    let _ = std::panic::catch_unwind(AssertUnwindSafe(step));
}

/// The exit fan-out; see the module invariants for the order of its steps. `delivery` is what
/// the body produced (a task's result), delivered in step 5.
fn exit_process(
    process: &dyn AnyProcess,
    reason: ExitReason,
    delivery: impl FnOnce() + Send + 'static,
) {
    let header = process.header();
    let pid = header.pid();

    // Children it killed still running: the last of them to exit runs this fan-out.
    if let Some(barrier) = header.take_exit_barrier() {
        if let Some(owner) = lookup(pid) {
            barrier.exit_when_released(Box::new(move || {
                let _entered = owner.header().enter_span();
                exit_process(&*owner, reason, delivery);
            }));
            return;
        }
    }

    let hooks = header.begin_exit();
    for hook in hooks {
        contained(|| hook(pid));
    }
    let queued = process.close_mailbox();

    let monitors = header.publish_exit(&reason);
    // Dropped outside the shard's lock (not the last reference: the caller holds one).
    let removed = shard(pid).lock().remove(&pid);
    drop(removed);
    contained(delivery);

    contained(|| {
        if reason.is_clean() {
            tracing::debug!(%pid, %reason, "process exited");
        } else {
            tracing::warn!(%pid, %reason, "process exited");
        }
    });
    for watcher in monitors {
        if let Watcher::Monitor(id, delivery) = watcher {
            let down = Down::new(MonitorRef::from_parts(pid, id), reason.clone());
            contained(|| delivery.deliver(down));
        }
    }
    contained(|| drop(queued));
}
