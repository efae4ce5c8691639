//! A process's exit: the fan-out that tells the rest of the system (Erlang's exit signals and
//! `'DOWN'` messages), and the kill of a supervisor's children that its exit waits for.
//!
//! # Invariants
//!
//! - A process's exit reason is set exactly once, by the fan-out, whatever ended it: its body
//!   returning, a panic, or its future being dropped (kill, runtime shutdown).
//! - A process that [killed its children](kill_children) as it was dropped (a supervisor that
//!   was itself killed) starts its fan-out only once they have all exited: whoever learns of its
//!   exit finds its children gone and their names free.
//! - Fan-out order, which the rest of the crate relies on:
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
//!   6. deliver one `Down` to every monitor, and an exit signal to every linked process, in
//!      the order they were set up;
//!   7. drop the messages that were still queued. Pending callers learn that their request was
//!      dropped only now, when the reason they will report is already published.
//! - Nothing in the fan-out may unwind out of it: each hook and each delivery run behind
//!   `catch_unwind` ([`contained`]), so one faulty callback cannot leave a zombie or swallow other
//!   monitors' `Down`s.

use std::panic::AssertUnwindSafe;

use super::current_process::{Current, current_pid};
use super::down::{Down, MonitorRef};
use super::header::{AnyProcess, ProcessHeader, Watcher, run_exits_due};
use super::{ExitReason, Pid, table};

/// An exit signal from `from`, which exited with `reason`, through its link to `target`
/// (Erlang's exit signals between linked processes). Nothing if the link is gone (it was
/// unlinked) or `target` is exiting. A target that traps exits gets the signal as a message;
/// any other exits with `reason`, at its next `.await`, unless `reason` is `Normal`.
pub(crate) fn exit_signal(target: &dyn AnyProcess, from: Pid, reason: &ExitReason) {
    match target.header().take_link_for_signal(from) {
        None => {}
        Some(Some(trap)) => trap(from, reason.clone()),
        Some(None) if *reason == ExitReason::Normal => {}
        Some(None) if target.header().signal_exit(reason.clone()) => target.interrupt_init(),
        Some(None) => {}
    }
}

/// Kills `children` (each exits `Killed` at its next `.await`) and holds the exit of the
/// current process until they have all exited.
///
/// For a supervisor dropped with children still running (it was killed, or its own code
/// panicked) or with a stop still in flight: its children die with it, as linked children do
/// in Erlang, and beyond Erlang its `Down` comes after theirs, so that a parent restarting it
/// finds their names free.
pub(crate) fn kill_children<'a>(children: impl IntoIterator<Item = &'a ProcessHeader>) {
    let mut children = children.into_iter().peekable();
    // No barrier for nothing: a supervisor that stopped its children is dropped with none.
    if children.peek().is_none() {
        return;
    }
    let barrier = current_pid()
        .and_then(table::lookup)
        .and_then(|owner| owner.header().exit_barrier());
    for child in children {
        if let Some(barrier) = &barrier {
            barrier.hold(child);
        }
        child.force_exit(ExitReason::Killed);
    }
}

/// Runs the exit fan-out of an [admitted](table::admit) process that never got a task (a server whose
/// `init` failed or was abandoned).
pub(crate) fn exit_unlaunched(process: &dyn AnyProcess, reason: ExitReason) {
    let _entered = process.header().enter_span();
    exit_process(process, reason, || {});
}

/// Runs one step of the fan-out, or a drop of what a process owned; a panic in it is
/// contained (and the step is skipped).
pub(crate) fn contained(step: impl FnOnce()) {
    let _ = std::panic::catch_unwind(AssertUnwindSafe(step));
}

/// The exit fan-out; see the module invariants for the order of its steps. `delivery` is what
/// the body produced (a task's result), delivered in step 5.
pub(super) fn exit_process(
    process: &dyn AnyProcess,
    reason: ExitReason,
    delivery: impl FnOnce() + Send + 'static,
) {
    let header = process.header();
    let pid = header.pid();

    let hooks = match header.begin_exit() {
        Ok(hooks) => hooks,
        // Children it killed still running: the last of them to exit runs this fan-out, after
        // its own, as this process (its span entered, it current).
        Err(barrier) => match table::lookup(pid) {
            Some(owner) => {
                barrier.exit_when_released(Box::new(move || {
                    let header = owner.header();
                    let _entered = header.enter_span();
                    let _current = Current::enter(header.pid());
                    exit_process(&*owner, reason, delivery);
                }));
                // Released at once if the children were already gone.
                run_exits_due();
                return;
            }
            // Not in the table, so nobody can be told later: exit now.
            None => header.begin_exit().unwrap_or_default(),
        },
    };
    for hook in hooks {
        contained(|| hook(pid));
    }
    let queued = process.close_mailbox();

    let monitors = header.publish_exit(&reason);
    // Not the last reference: the caller holds one.
    table::remove(pid);
    contained(delivery);

    contained(|| {
        if reason.is_clean() {
            tracing::debug!(%pid, %reason, "process exited");
        } else {
            tracing::warn!(%pid, %reason, "process exited");
        }
    });
    for watcher in monitors {
        match watcher {
            Watcher::Monitor(id, delivery) => {
                let down = Down::new(MonitorRef::from_parts(pid, id), reason.clone());
                contained(|| delivery.deliver(down));
            }
            Watcher::Link(linked) => {
                if let Some(linked) = table::lookup(linked) {
                    contained(|| exit_signal(&*linked, pid, &reason));
                }
            }
            Watcher::Hook(_) | Watcher::Barrier(_) | Watcher::TrapExits(_) => {}
        }
    }
    contained(|| drop(queued));
    // The fan-outs of supervisors whose last child this was.
    run_exits_due();
}
