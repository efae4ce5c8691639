//! Test helpers that wait on events, never on time (feature `test-util`).
//!
//! After Elixir's `assert_receive {:DOWN, ^ref, …}` and tokio's `test-util`: tests, ours and
//! yours, should wait for the thing they expect (an exit, a `Down`, a logged event), with a
//! deadline as a safety net, rather than sleep and then look. Combine them with
//! `#[tokio::test(start_paused = true)]` when the behaviour under test involves timeouts or
//! timers: the deadline then costs no real time.
//!
//! Every helper here **panics** when its expectation fails, like `assert!`: they are for tests.
//!
//! ```
//! use std::time::Duration;
//! use otp_core::testing::EventLog;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let log = EventLog::new();
//! let writer = log.clone();
//! writer.push("started");
//! log.wait_for("started", Duration::from_secs(5)).await;
//! assert_eq!(log.events(), ["started"]);
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::gen_server::{GenServer, ServerRef};
use crate::monitor::{Monitor, monitor, wait_exit};
use crate::{ExitReason, Pid};

/// Waits for `server` to exit and returns its exit reason, even if it has already exited.
///
/// # Panics
///
/// If the server is still running after `within`.
pub async fn await_exit<S: GenServer>(server: &ServerRef<S>, within: Duration) -> ExitReason {
    match tokio::time::timeout(within, wait_exit(server.header())).await {
        Ok(reason) => reason,
        Err(_) => panic!("{server:?} did not exit within {within:?}"),
    }
}

/// Waits for the process `pid` to exit and returns its reason ([`ExitReason::NoProc`] if it was
/// not alive when this was called: monitor first, then act, as in Erlang).
///
/// # Panics
///
/// If the process is still running after `within`.
pub async fn await_down(pid: Pid, within: Duration) -> ExitReason {
    match tokio::time::timeout(within, monitor(pid)).await {
        Ok(down) => down.reason,
        Err(_) => panic!("{pid} did not exit within {within:?}"),
    }
}

/// Runs `f` with the exit reason of process `pid` at the moment it exits, inside its exit
/// fan-out, before any monitor's `Down` is delivered and before any waiter (such as a
/// supervisor stopping it) resumes. A lifecycle probe: log the exit into an [`EventLog`] and
/// its place in the log is exact.
///
/// Returns `false` (and does not run `f`) if `pid` is not alive.
pub fn on_exit(pid: Pid, f: impl FnOnce(ExitReason) + Send + 'static) -> bool {
    match crate::process::table::lookup(pid) {
        Some(process) => {
            process
                .header()
                .add_monitor(Box::new(move |down: crate::monitor::Down| f(down.reason)));
            true
        }
        None => false,
    }
}

/// Asserts that `monitor` fires within `within` with `expected` (Elixir's
/// `assert_receive {:DOWN, ^ref, :process, _, expected}`). An
/// [`ExitReason::Error`] matches by its message, as a pattern on the error's text would:
/// `ExitReason::error("boom")` matches any error exit whose error displays as `boom` (the
/// reasons themselves are equal only to their own clones).
///
/// # Panics
///
/// If no `Down` arrives in time, or it carries another reason.
pub async fn assert_down(monitor: Monitor, expected: ExitReason, within: Duration) {
    let pid = monitor.pid();
    match tokio::time::timeout(within, monitor).await {
        Ok(down) => assert!(
            matches_reason(&down.reason, &expected),
            "{pid} exited with {} instead of {expected}",
            down.reason
        ),
        Err(_) => panic!("no Down from {pid} within {within:?} (expected {expected})"),
    }
}

fn matches_reason(actual: &ExitReason, expected: &ExitReason) -> bool {
    match (actual, expected) {
        (ExitReason::Error(actual), ExitReason::Error(expected)) => {
            actual.to_string() == expected.to_string()
        }
        _ => actual == expected,
    }
}

/// An ordered, shared log of events that tests can wait on.
///
/// Clone it into the servers and tasks under test; they [`push`](Self::push) what happens, the
/// test [`wait_for`](Self::wait_for)s what it expects and then asserts on the whole order.
#[derive(Clone, Default)]
pub struct EventLog {
    inner: Arc<LogInner>,
}

#[derive(Default)]
struct LogInner {
    events: Mutex<Vec<String>>,
    changed: Notify,
}

impl EventLog {
    /// An empty log.
    pub fn new() -> EventLog {
        EventLog::default()
    }

    /// Appends an event.
    pub fn push(&self, event: impl Into<String>) {
        self.inner.events.lock().push(event.into());
        self.inner.changed.notify_waiters();
    }

    /// Every event so far, in order.
    pub fn events(&self) -> Vec<String> {
        self.inner.events.lock().clone()
    }

    /// How many times `event` was logged.
    pub fn count(&self, event: &str) -> usize {
        self.inner
            .events
            .lock()
            .iter()
            .filter(|e| *e == event)
            .count()
    }

    /// Waits until `event` has been logged, and returns the log at that moment.
    ///
    /// # Panics
    ///
    /// If `event` is not logged within `within`.
    pub async fn wait_for(&self, event: &str, within: Duration) -> Vec<String> {
        self.wait_until(|events| events.iter().any(|e| e == event), within)
            .await
            .unwrap_or_else(|events| {
                panic!("{event:?} not logged within {within:?}; log: {events:?}")
            })
    }

    /// Waits until `done(events)` holds; returns the log then, or `Err(log)` after `within`.
    ///
    /// # Errors
    ///
    /// If `done` does not hold within `within`, returns the log as it was then.
    pub async fn wait_until(
        &self,
        mut done: impl FnMut(&[String]) -> bool,
        within: Duration,
    ) -> Result<Vec<String>, Vec<String>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            // Register interest before checking, so a push between the check and the wait is
            // not missed.
            let changed = self.inner.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            {
                let events = self.inner.events.lock();
                if done(&events) {
                    return Ok(events.clone());
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(self.events());
            }
        }
    }
}

impl fmt::Debug for EventLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EventLog").field(&self.events()).finish()
    }
}
