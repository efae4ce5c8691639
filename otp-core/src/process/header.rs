//! The process header: the part of every process that other processes touch (its pid, its exit
//! state, its monitors and exit hooks), as the BEAM's process control block, and the
//! [`AnyProcess`] trait every kind of process implements around it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use thin_vec::ThinVec;
use tokio::task::AbortHandle;

use super::down::{Down, MonitorRef};
use super::mailbox::MailboxState;
use super::{ExitReason, Pid};
use crate::sync::Mutex;

/// What the runtime needs from any kind of process, whatever its message type.
pub(crate) trait AnyProcess: Send + Sync + 'static {
    fn header(&self) -> &ProcessHeader;

    /// The process as `Any`, to be downcast to its kind (`observer::tree` finds the
    /// supervisors among a tree's children this way).
    fn into_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync>;

    /// Closes the mailbox, if the process has one, and returns what was queued (see step 7).
    fn close_mailbox(&self) -> Option<Box<dyn Send>>;

    /// Asks the process to stop with `reason` the way its kind stops gracefully: a server gets an
    /// in-band stop request behind the messages already queued; a task is ended at once.
    /// Returns whether the request was delivered.
    fn request_stop(&self, reason: ExitReason) -> bool;

    /// Wakes whatever runs the process's start-up outside its own task (a server's `init` runs
    /// in its starter's task), so that it notices a kill. Nothing to do by default.
    fn interrupt_init(&self) {}

    /// The process's mailbox as [`process::info`](crate::process::info) reports it: `None` for
    /// a process without one (a task).
    fn mailbox_state(&self) -> Option<MailboxState> {
        None
    }
}

type ExitHook = Box<dyn FnOnce(Pid) + Send>;
/// Delivers an exit signal from a linked process as a message (a process that traps exits).
pub(crate) type TrapDelivery = Arc<dyn Fn(Pid, ExitReason) + Send + Sync>;
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
    /// The process that started it (for a supervised child, its supervisor), for
    /// [`process::info`](crate::process::info).
    parent: Option<Pid>,
    /// The process's span, entered on every poll of its task; `None` when no subscriber wants
    /// it. It lives here rather than in the task's future because tokio sizes task allocations
    /// in 128-byte steps, and its 40 bytes decide the step for a typical server.
    span: Option<Box<tracing::Span>>,
    state: Mutex<ExitState>,
}

#[derive(Default)]
struct ExitState {
    status: Status,
    /// Exit hooks (registry clean-up) and monitors, in the order added. A `ThinVec` (8 bytes,
    /// its length and capacity live in its allocation) because most processes have at most one
    /// watcher, and this struct is part of every idle process.
    watchers: ThinVec<Watcher>,
}

/// 24 bytes, as an `ExitReason`: the other variants' payloads fit beside its tag. This struct
/// is part of every idle process, and 8 bytes more put an idle server's allocation in the next
/// size class (`tests/memory_layout.rs`, the peers bench's W7).
enum Status {
    /// With the handle that aborts its task, once it has one (a server whose `init` is running
    /// has none yet).
    Running(Option<AbortHandle>),
    /// `exit(pid, reason)` was called; the task is being aborted. Boxed: rare, and inline it
    /// would make every process 8 bytes larger.
    Forced(Box<ExitReason>),
    /// The fan-out has taken the exit hooks: no more can be added.
    Exiting,
    /// Set once, by the fan-out.
    Exited(ExitReason),
}

impl Default for Status {
    fn default() -> Status {
        Status::Running(None)
    }
}

pub(crate) enum Watcher {
    Hook(ExitHook),
    Monitor(u64, Delivery),
    /// The children this process's exit waits for (see [`kill_children`](super::termination::kill_children)); at most one.
    Barrier(Arc<ExitBarrier>),
    /// A link to this process (Erlang's links are a set: at most one per pair).
    Link(Pid),
    /// The process traps exits: linked exits arrive as messages through this; at most one.
    TrapExits(TrapDelivery),
}

/// A process's header as [`ProcessHeader::snapshot`] read it.
pub(crate) struct HeaderSnapshot {
    /// Killed, or past its last callback.
    pub(crate) exiting: bool,
    /// Has a task of its own (a server whose `init` is running has not).
    pub(crate) launched: bool,
    pub(crate) monitored_by: usize,
    pub(crate) links: usize,
    pub(crate) traps_exits: bool,
}

/// How [`ProcessHeader::link_pair`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkOutcome {
    Linked,
    /// The target is not alive: the linker gets a `NoProc` signal.
    TargetGone,
    /// The linker itself is exiting: nothing was linked.
    LinkerExiting,
}

/// What a monitor runs with the `Down`: its own closure, or one shared with other monitors.
pub(crate) enum Delivery {
    Own(DownDelivery),
    Shared(SharedDelivery),
}

impl Delivery {
    pub(crate) fn deliver(self, down: Down) {
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
            parent: super::current_process::current_pid(),
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

    pub(crate) fn parent(&self) -> Option<Pid> {
        self.parent
    }

    /// What [`process::info`](crate::process::info) reports from the header, read under one
    /// lock.
    pub(crate) fn snapshot(&self) -> HeaderSnapshot {
        let state = self.state.lock();
        let mut snapshot = HeaderSnapshot {
            exiting: !matches!(state.status, Status::Running(_)),
            launched: matches!(state.status, Status::Running(Some(_))),
            monitored_by: 0,
            links: 0,
            traps_exits: false,
        };
        for watcher in &state.watchers {
            match watcher {
                Watcher::Monitor(..) => snapshot.monitored_by += 1,
                Watcher::Link(_) => snapshot.links += 1,
                Watcher::TrapExits(_) => snapshot.traps_exits = true,
                Watcher::Hook(_) | Watcher::Barrier(_) => {}
            }
        }
        snapshot
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

    /// Adds a link to `other` (nothing if there is one). Returns `false` if this process is
    /// already exiting: its fan-out would never see the link.
    pub(crate) fn add_link(&self, other: Pid) -> bool {
        let mut state = self.state.lock();
        if matches!(state.status, Status::Exiting | Status::Exited(_)) {
            return false;
        }
        if !state
            .watchers
            .iter()
            .any(|w| matches!(w, Watcher::Link(p) if *p == other))
        {
            state.watchers.push(Watcher::Link(other));
        }
        true
    }

    /// Links this process (the caller's) and `target`, the process `target_pid` if it is still
    /// in the table. On [`LinkOutcome::TargetGone`] this side still holds its half, for the
    /// `NoProc` signal to take ([`take_link_for_signal`](Self::take_link_for_signal)).
    ///
    /// This side first: should `target` exit as soon as it holds its half, its fan-out finds
    /// this half and signals through it. The other order would lose that signal (the loom model
    /// `loom_a_link_racing_the_targets_exit_gets_exactly_one_signal` fails with it).
    pub(crate) fn link_pair(&self, target_pid: Pid, target: Option<&ProcessHeader>) -> LinkOutcome {
        if !self.add_link(target_pid) {
            return LinkOutcome::LinkerExiting;
        }
        match target {
            Some(target) if target.add_link(self.pid) => LinkOutcome::Linked,
            _ => LinkOutcome::TargetGone,
        }
    }

    /// Removes the link to `other`; returns whether there was one.
    pub(crate) fn remove_link(&self, other: Pid) -> bool {
        let mut state = self.state.lock();
        let at = state
            .watchers
            .iter()
            .position(|w| matches!(w, Watcher::Link(p) if *p == other));
        at.map(|at| state.watchers.remove(at)).is_some()
    }

    /// Starts or stops trapping exits. Delivery handles dropped outside the lock.
    pub(crate) fn set_trap_exits(&self, trap: Option<TrapDelivery>) {
        let replaced = {
            let mut state = self.state.lock();
            let at = state
                .watchers
                .iter()
                .position(|w| matches!(w, Watcher::TrapExits(_)));
            let replaced = at.map(|at| state.watchers.remove(at));
            if let Some(trap) = trap {
                state.watchers.push(Watcher::TrapExits(trap));
            }
            replaced
        };
        drop(replaced);
    }

    /// Takes the link to `from` for an exit signal coming through it. `None` if there is no
    /// such link (it was removed: an unlinked process gets no signal) or this process is
    /// exiting; otherwise how to deliver the signal: `Some(Some(trap))` as a message,
    /// `Some(None)` as an exit.
    pub(crate) fn take_link_for_signal(&self, from: Pid) -> Option<Option<TrapDelivery>> {
        let mut state = self.state.lock();
        if matches!(state.status, Status::Exiting | Status::Exited(_)) {
            return None;
        }
        let at = state
            .watchers
            .iter()
            .position(|w| matches!(w, Watcher::Link(p) if *p == from))?;
        state.watchers.remove(at);
        Some(state.watchers.iter().find_map(|w| match w {
            Watcher::TrapExits(trap) => Some(trap.clone()),
            _ => None,
        }))
    }

    /// Ends the process with `reason` at its next `.await`. Returns whether it was still alive.
    ///
    /// A first reason sticks, except that `Killed` overrides a pending graceful one: a kill after
    /// a shutdown timeout reports `Killed`.
    pub(crate) fn force_exit(&self, reason: ExitReason) -> bool {
        let overrides = reason == ExitReason::Killed;
        self.force(reason, overrides)
    }

    /// As [`force_exit`](Self::force_exit), for an exit signal from a link: a reason already
    /// pending stands, whatever this one is (the first signal to take effect wins; a linked
    /// process's `Killed` is not a kill).
    pub(crate) fn signal_exit(&self, reason: ExitReason) -> bool {
        self.force(reason, false)
    }

    fn force(&self, reason: ExitReason, overrides_pending: bool) -> bool {
        let mut state = self.state.lock();
        match &mut state.status {
            Status::Exiting | Status::Exited(_) => false,
            Status::Forced(_) if !overrides_pending => true,
            Status::Forced(pending) => {
                // Already aborted when it was first forced.
                **pending = reason;
                true
            }
            Status::Running(abort) => {
                // Without a handle yet, `set_abort` sees `Forced` and aborts then.
                if let Some(abort) = abort.take() {
                    abort.abort();
                }
                state.status = Status::Forced(Box::new(reason));
                true
            }
        }
    }

    pub(super) fn set_abort(&self, abort: AbortHandle) {
        let mut state = self.state.lock();
        match &mut state.status {
            Status::Running(slot) => *slot = Some(abort),
            Status::Forced(_) => abort.abort(),
            Status::Exiting | Status::Exited(_) => {}
        }
    }

    /// The reason the process was [forced](Self::force_exit) to exit with, if it was.
    pub(crate) fn forced_reason(&self) -> Option<ExitReason> {
        match &self.state.lock().status {
            Status::Forced(reason) => Some(ExitReason::clone(reason)),
            _ => None,
        }
    }

    /// The reason a killed process exits with: the forced one, or `Killed`.
    pub(crate) fn take_forced(&self) -> ExitReason {
        let mut state = self.state.lock();
        match std::mem::take(&mut state.status) {
            Status::Forced(reason) => *reason,
            other => {
                state.status = other;
                ExitReason::Killed
            }
        }
    }

    /// The barrier this process's exit waits on, made on first use; `None` once it is exiting.
    pub(super) fn exit_barrier(&self) -> Option<Arc<ExitBarrier>> {
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

    /// Fan-out step 1: marks the process as exiting and takes its exit hooks. If its exit
    /// waits for children it killed, takes that barrier instead and changes nothing else: the
    /// fan-out starts again once they have exited. One lock either way.
    ///
    /// Allocates nothing unless there are hooks: every process exits through here.
    pub(super) fn begin_exit(&self) -> Result<Vec<ExitHook>, Arc<ExitBarrier>> {
        let mut state = self.state.lock();
        let barrier = state
            .watchers
            .iter()
            .position(|watcher| matches!(watcher, Watcher::Barrier(_)));
        if let Some(at) = barrier {
            if let Watcher::Barrier(barrier) = state.watchers.remove(at) {
                return Err(barrier);
            }
        }
        state.status = Status::Exiting;
        if !state.watchers.iter().any(|w| matches!(w, Watcher::Hook(_))) {
            return Ok(Vec::new());
        }
        let (hooks, monitors): (ThinVec<_>, ThinVec<_>) = std::mem::take(&mut state.watchers)
            .into_iter()
            .partition(|watcher| matches!(watcher, Watcher::Hook(_)));
        state.watchers = monitors;
        Ok(hooks
            .into_iter()
            .filter_map(|watcher| match watcher {
                Watcher::Hook(hook) => Some(hook),
                Watcher::Monitor(..)
                | Watcher::Barrier(_)
                | Watcher::Link(_)
                | Watcher::TrapExits(_) => None,
            })
            .collect())
    }

    /// Fan-out step 3: publishes the exit reason and takes the monitors (all that is left once
    /// step 1 has taken the hooks).
    pub(super) fn publish_exit(&self, reason: &ExitReason) -> ThinVec<Watcher> {
        let mut state = self.state.lock();
        state.status = Status::Exited(reason.clone());
        std::mem::take(&mut state.watchers)
    }
}

/// What a process's exit waits for: the children it [killed](super::termination::kill_children), plus the process
/// itself until its fan-out is ready to run. Whoever arrives last runs the fan-out: the owner
/// if its children were already gone, otherwise the last child, from its own fan-out.
pub(crate) struct ExitBarrier {
    remaining: AtomicUsize,
    exit: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl ExitBarrier {
    pub(super) fn new() -> ExitBarrier {
        ExitBarrier {
            remaining: AtomicUsize::new(1),
            exit: Mutex::new(None),
        }
    }

    /// Waits for `child` too. The owner has not arrived yet, so the count is above zero.
    pub(super) fn hold(self: &Arc<Self>, child: &ProcessHeader) {
        self.remaining.fetch_add(1, Ordering::AcqRel);
        let barrier = self.clone();
        // Delivered at once if the child has already exited.
        child.add_monitor(Box::new(move |_| barrier.arrive()));
    }

    /// The owner arrives, with its fan-out.
    pub(super) fn exit_when_released(&self, exit: Box<dyn FnOnce() + Send>) {
        *self.exit.lock() = Some(exit);
        self.arrive();
    }

    /// One arrives; the last one queues the owner's fan-out to run on this thread once the
    /// fan-out in progress here is complete (see [`run_exits_due`]), so that a child's `Down`s
    /// all go out before its supervisor's.
    fn arrive(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let exit = self.exit.lock().take();
            if let Some(exit) = exit {
                EXITS_DUE.with_borrow_mut(|due| due.push(exit));
            }
        }
    }
}

thread_local! {
    /// Fan-outs released by an [`ExitBarrier`] on this thread, to run once the fan-out that
    /// released them is complete.
    static EXITS_DUE: std::cell::RefCell<Vec<Box<dyn FnOnce() + Send>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs the fan-outs released on this thread, and those they release in turn.
pub(crate) fn run_exits_due() {
    while let Some(exit) = EXITS_DUE.with_borrow_mut(Vec::pop) {
        exit();
    }
}

/// Models of the exit state's protocol (see `crate::sync` for how to run them).
#[cfg(all(test, not(otp_loom)))]
mod tests {
    use super::ProcessHeader;
    use crate::ExitReason;

    #[test]
    fn a_kill_overrides_a_pending_reason_and_a_link_signal_does_not() {
        let header = ProcessHeader::new("test");
        assert!(header.force_exit(ExitReason::error("boom")));
        assert!(
            header.signal_exit(ExitReason::Killed),
            "still alive: the signal counts"
        );
        assert_eq!(
            header.forced_reason().map(|r| r.to_string()),
            Some("error: boom".into())
        );
        assert!(header.force_exit(ExitReason::Killed));
        assert_eq!(header.forced_reason(), Some(ExitReason::Killed));
    }
}

#[cfg(all(test, otp_loom))]
pub(crate) mod loom_models {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{LinkOutcome, ProcessHeader, Watcher};
    use crate::ExitReason;
    use crate::process::down::{Down, MonitorRef};

    /// Runs the fan-out's steps 1 and 3 and delivers the monitors taken, as `termination` does.
    pub(crate) fn exit(header: &ProcessHeader) {
        for hook in header.begin_exit().unwrap_or_default() {
            hook(header.pid());
        }
        for watcher in header.publish_exit(&ExitReason::Normal) {
            if let Watcher::Monitor(id, delivery) = watcher {
                let mref = MonitorRef::from_parts(header.pid(), id);
                delivery.deliver(Down::new(mref, ExitReason::Normal));
            }
        }
    }

    // A monitor added while the process exits is taken by the fan-out or sees the reason at
    // once: exactly one Down.
    #[test]
    fn loom_a_monitor_added_during_the_exit_gets_exactly_one_down() {
        loom::model(|| {
            let header = Arc::new(ProcessHeader::new("model"));
            let downs = Arc::new(AtomicUsize::new(0));
            let watcher = {
                let (header, downs) = (header.clone(), downs.clone());
                loom::thread::spawn(move || {
                    header.add_monitor(Box::new(move |_| {
                        downs.fetch_add(1, Ordering::SeqCst);
                    }));
                })
            };
            exit(&header);
            watcher.join().unwrap();
            assert_eq!(downs.load(Ordering::SeqCst), 1);
        });
    }

    // A link set while its target exits gets exactly one signal: through the target's fan-out,
    // or `NoProc` when the target was already exiting. Never none, never two.
    #[test]
    fn loom_a_link_racing_the_targets_exit_gets_exactly_one_signal() {
        loom::model(|| {
            let linker = Arc::new(ProcessHeader::new("linker"));
            let target = Arc::new(ProcessHeader::new("target"));
            let signals = Arc::new(AtomicUsize::new(0));
            let exiting = {
                let (linker, target, signals) = (linker.clone(), target.clone(), signals.clone());
                loom::thread::spawn(move || {
                    let _ = target.begin_exit();
                    for watcher in target.publish_exit(&ExitReason::Killed) {
                        if let Watcher::Link(pid) = watcher {
                            assert_eq!(pid, linker.pid());
                            if linker.take_link_for_signal(target.pid()).is_some() {
                                signals.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                })
            };
            let outcome = linker.link_pair(target.pid(), Some(&target));
            if outcome == LinkOutcome::TargetGone
                && linker.take_link_for_signal(target.pid()).is_some()
            {
                signals.fetch_add(1, Ordering::SeqCst);
            }
            exiting.join().unwrap();
            assert_eq!(signals.load(Ordering::SeqCst), 1);
        });
    }

    // An exit hook (a registry's clean-up) added while the process exits either runs or is
    // refused, so that the registry can undo the registration: never accepted and lost.
    #[test]
    fn loom_an_exit_hook_added_during_the_exit_runs_or_is_refused() {
        loom::model(|| {
            let header = Arc::new(ProcessHeader::new("model"));
            let ran = Arc::new(AtomicUsize::new(0));
            let registering = {
                let (header, ran) = (header.clone(), ran.clone());
                loom::thread::spawn(move || {
                    header.add_exit_hook(Box::new(move |_| {
                        ran.fetch_add(1, Ordering::SeqCst);
                    }))
                })
            };
            exit(&header);
            let accepted = registering.join().unwrap();
            assert_eq!(ran.load(Ordering::SeqCst), usize::from(accepted));
        });
    }
}
