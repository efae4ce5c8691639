//! The current process: which process a thread is running (Erlang's `self()`), set by the
//! process boundary while a process's task is polled or dropped.

use std::cell::Cell;

use super::Pid;

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
