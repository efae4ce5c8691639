//! What a monitor is and what it delivers: [`MonitorRef`] and [`Down`] (Erlang's monitor
//! reference and `{'DOWN', Ref, process, Pid, Reason}`). The process layer keeps them, since
//! every process's header holds its monitors; [`monitor`](crate::monitor) is the API.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{ExitReason, Pid};

/// Identifies one monitor (Erlang's monitor reference).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MonitorRef {
    pid: Pid,
    id: u64,
}

static NEXT_MONITOR: AtomicU64 = AtomicU64::new(1);

impl MonitorRef {
    pub(crate) fn new(pid: Pid) -> MonitorRef {
        MonitorRef {
            pid,
            id: NEXT_MONITOR.fetch_add(1, Ordering::Relaxed),
        }
    }

    pub(crate) fn from_parts(pid: Pid, id: u64) -> MonitorRef {
        MonitorRef { pid, id }
    }

    pub(crate) fn id(self) -> u64 {
        self.id
    }

    /// The monitored process.
    pub fn pid(self) -> Pid {
        self.pid
    }
}

impl fmt::Debug for MonitorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#Ref<{}.{}>", self.pid.as_u64(), self.id)
    }
}

/// A monitored process has exited (Erlang `{'DOWN', Ref, process, Pid, Reason}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Down {
    /// The monitor that fired.
    pub monitor: MonitorRef,
    /// The process that exited.
    pub pid: Pid,
    /// Why it exited; [`ExitReason::NoProc`] if it was not alive when the monitor was set up.
    pub reason: ExitReason,
}

impl Down {
    pub(crate) fn new(monitor: MonitorRef, reason: ExitReason) -> Down {
        Down {
            pid: monitor.pid,
            monitor,
            reason,
        }
    }
}
