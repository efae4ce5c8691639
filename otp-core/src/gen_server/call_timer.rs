//! The timers behind call timeouts: a pool per thread, shared by every caller on that thread,
//! plain tokio task and otp-core process alike, so that a call costs the same whoever makes it.
//!
//! Erlang's `gen_server:call` starts a timer in the caller's scheduler, which the BEAM keeps in a
//! timer wheel per scheduler. Registering a fresh tokio timer per call instead takes the lock of
//! tokio's timer wheel, can wake the parked time driver (an eventfd write) and takes the lock
//! again when the timer is dropped: on a 2-core machine, more than the rest of the call. A timer
//! that stays registered and moves to a later deadline costs an atomic update instead, and one
//! whose deadline already lies inside the call's slack costs nothing. So a call borrows a timer
//! from its thread's pool and gives it back when it is done (on whatever thread it finishes):
//! the pool holds about as many timers as calls were pending at once, up to [`MAX_POOLED`] per
//! thread.
//!
//! What this costs: a timer given back stays registered until its deadline, and then wakes the
//! task that polled it last, once, for nothing. Timeouts stay tokio timers, so they follow
//! `tokio::time::pause`.
//!
//! A timer belongs to the runtime that made it, and a thread can run several runtimes one after
//! the other (a test thread's `block_on`s): the pool is emptied when its thread's runtime is not
//! the pool's, and a timer is only given back to a pool of its own runtime. Runtimes are told
//! apart by [`tokio::runtime::Id`]. Its docs allow a finished runtime's id to be reused; tokio
//! 1.54 takes ids from a global 64-bit counter (`runtime/task/list.rs`), so in practice a
//! pool left by a dropped runtime is never taken for a new runtime's. Should tokio start
//! reusing ids, this check must change: polling a timer of a dropped runtime panics.

use std::cell::RefCell;
use std::pin::Pin;
use std::time::Duration;

use tokio::runtime::{Handle, Id};
use tokio::time::{Instant, Sleep};

use crate::process::spawn::NoRuntime;

/// At most this many idle timers are kept per thread.
const MAX_POOLED: usize = 1024;

/// A call's timeout timer, borrowed with [`take`] and given back with [`give_back`].
pub(crate) struct CallTimer {
    sleep: Pin<Box<Sleep>>,
    runtime: Id,
}

impl CallTimer {
    /// The timer, to be awaited.
    pub(crate) fn sleep(&mut self) -> Pin<&mut Sleep> {
        self.sleep.as_mut()
    }
}

struct Pool {
    runtime: Option<Id>,
    timers: Vec<CallTimer>,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool {
            runtime: None,
            timers: Vec::new(),
        })
    };
}

/// A timer due between `deadline` and `deadline + slack`; [`NoRuntime`] where no tokio runtime
/// runs. A pooled timer already due inside that window is left as it is.
pub(crate) fn take(deadline: Instant, slack: Duration) -> Result<CallTimer, NoRuntime> {
    let runtime = Handle::try_current().map_err(|_| NoRuntime)?.id();
    let latest = deadline.checked_add(slack).unwrap_or(deadline);
    let pooled = POOL
        .try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.runtime != Some(runtime) {
                let stale = std::mem::take(&mut pool.timers);
                pool.runtime = Some(runtime);
                drop(pool);
                drop(stale);
                return None;
            }
            pool.timers.pop()
        })
        .ok()
        .flatten();
    match pooled {
        Some(mut timer) => {
            let due = timer.sleep.deadline();
            if due < deadline || due > latest {
                timer.sleep.as_mut().reset(latest);
            }
            Ok(timer)
        }
        None => Ok(CallTimer {
            sleep: Box::pin(tokio::time::sleep_until(latest)),
            runtime,
        }),
    }
}

/// Gives `timer` back to this thread's pool, if the pool is of its runtime and not full.
pub(crate) fn give_back(timer: CallTimer) {
    let _ = POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.runtime == Some(timer.runtime) && pool.timers.len() < MAX_POOLED {
            pool.timers.push(timer);
        }
    });
}
