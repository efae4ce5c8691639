//! [`Pid`]: the identity of a process.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};

/// The identity of a process: unique for the life of the program, `Copy`, and cheap.
///
/// A `Pid` is only a name. It does not keep the process alive and it cannot be used to send
/// typed messages (use a [`ServerRef`](crate::gen_server::ServerRef) for that), but it can be
/// [monitored](crate::monitor::monitor), compared, hashed, and printed. Pids are never reused,
/// so a pid that refers to a dead process never comes to mean a new one.
///
/// It prints like an Erlang pid: `<0.42.0>`.
///
/// ```
/// # use otp_core::Pid;
/// let a = Pid::new_unique();
/// let b = Pid::new_unique();
/// assert_ne!(a, b);
/// assert!(a.to_string().starts_with("<0."));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid(NonZeroU64);

static NEXT_PID: AtomicU64 = AtomicU64::new(1);

impl Pid {
    /// Allocates a pid that no process has and none ever will.
    ///
    /// The runtime allocates one for every process it starts; this is public so that tests and
    /// foreign code can make a pid that is certain to be dead.
    pub fn new_unique() -> Pid {
        // Relaxed is enough: uniqueness only needs the read-modify-write to be atomic.
        let n = NEXT_PID.fetch_add(1, Ordering::Relaxed);
        // `n` starts at 1 and would need 2^64 allocations to wrap; saturate to a valid value
        // rather than panic if it ever did.
        Pid(NonZeroU64::new(n).unwrap_or(NonZeroU64::MAX))
    }

    /// The pid's number, as used in its `Display` form.
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<0.{}.0>", self.0)
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
