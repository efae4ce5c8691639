//! Monitors: learn, exactly once, that a process has exited and why.
//!
//! Mirrors `erlang:monitor(process, Pid)` / `erlang:demonitor/1` and Elixir's `Process.monitor/1`.
//!
//! | Erlang / Elixir | otp-core |
//! |---|---|
//! | `Ref = monitor(process, Pid)` in plain code | [`monitor(pid)`](monitor) → a [`Monitor`] future |
//! | `receive {'DOWN', Ref, process, Pid, Reason}` | `monitor.await` → [`Down`] |
//! | `demonitor(Ref, [flush])` | [`Monitor::demonitor`] |
//! | `monitor/2` inside a `gen_server` | [`Context::monitor`](crate::gen_server::Context::monitor), delivered to `handle_info` |
//! | `demonitor(Ref, [flush])` inside a `gen_server` | [`Context::demonitor`](crate::gen_server::Context::demonitor) |
//!
//! Guarantees:
//!
//! - A monitor yields exactly one [`Down`], carrying the pid and its [`ExitReason`].
//! - Monitoring a pid that is not alive yields `Down` with [`ExitReason::NoProc`] at once.
//! - After `demonitor` returns, no `Down` for that monitor arrives (it is flushed, as with
//!   Erlang's `[flush]` option).
//! - When a `Down` is delivered, every registry has already dropped the process's keys.
//!
//! # Differences from OTP
//!
//! - In plain async code a monitor is a value you await, not a message in a mailbox; inside a
//!   `GenServer` it is a message, mapped into the server's own `Info` type by a closure you give.
//! - A monitor is one-way and never kills the watcher; for two processes that must die
//!   together, [link](crate::link) them.
//!
//! ```
//! use otp_core::monitor::monitor;
//! use otp_core::{ExitReason, Pid};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let never_lived = Pid::new_unique();
//! let down = monitor(never_lived).await;
//! assert_eq!(down.reason, ExitReason::NoProc);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

pub use crate::process::down::{Down, MonitorRef};
use crate::process::header::ProcessHeader;
use crate::process::table;
use crate::{ExitReason, Pid};

/// Starts monitoring `pid` from plain async code; await the result to get its [`Down`].
///
/// Works from anywhere: inside a process, in a test, in `main`. If `pid` is not alive the
/// `Down` carries [`ExitReason::NoProc`] and is ready at once.
///
/// # Cancel safety
///
/// Dropping the [`Monitor`] before it completes removes the monitor.
pub fn monitor(pid: Pid) -> Monitor {
    let (tx, rx) = oneshot::channel();
    let mref = match table::lookup(pid) {
        Some(process) => process.header().add_monitor(Box::new(move |down| {
            let _ = tx.send(down);
        })),
        None => {
            let mref = MonitorRef::new(pid);
            let _ = tx.send(Down::new(mref, ExitReason::NoProc));
            mref
        }
    };
    Monitor {
        mref,
        rx,
        down: None,
    }
}

/// A pending [`Down`]; created by [`monitor`]. Await it to learn of the exit.
#[must_use = "a monitor does nothing unless awaited"]
pub struct Monitor {
    mref: MonitorRef,
    rx: oneshot::Receiver<Down>,
    /// The `Down`, once received: it can be read again (by `try_down` or by awaiting), while
    /// the channel yields it only once.
    down: Option<Down>,
}

impl Monitor {
    /// This monitor's reference.
    pub fn monitor_ref(&self) -> MonitorRef {
        self.mref
    }

    /// The monitored process.
    pub fn pid(&self) -> Pid {
        self.mref.pid()
    }

    /// Removes the monitor. No `Down` arrives for it afterwards; returns whether the process was
    /// still alive as far as this monitor knew (Erlang `demonitor(Ref, [flush, info])`).
    pub fn demonitor(self) -> bool {
        match table::lookup(self.mref.pid()) {
            Some(process) => process.header().remove_monitor(self.mref),
            None => false,
        }
    }

    /// Returns the `Down` if it has already arrived, without waiting. Once it has, awaiting the
    /// monitor (or calling this again) returns the same `Down`.
    pub fn try_down(&mut self) -> Option<Down> {
        if self.down.is_none() {
            self.down = self.rx.try_recv().ok();
        }
        self.down.clone()
    }
}

impl Future for Monitor {
    type Output = Down;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Down> {
        if let Some(down) = &self.down {
            return Poll::Ready(down.clone());
        }
        let mref = self.mref;
        let down = std::task::ready!(Pin::new(&mut self.rx).poll(cx))
            // The delivery closure is dropped unsent only if the process was never run
            // (spawn failed), which is the same as never having lived.
            .unwrap_or_else(|_| Down::new(mref, ExitReason::NoProc));
        self.down = Some(down.clone());
        Poll::Ready(down)
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        // Keep the monitored process's list short: a dropped monitor can never be delivered.
        if self.down.is_none()
            && matches!(self.rx.try_recv(), Err(oneshot::error::TryRecvError::Empty))
        {
            if let Some(process) = table::lookup(self.mref.pid()) {
                process.header().remove_monitor(self.mref);
            }
        }
    }
}

impl fmt::Debug for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monitor")
            .field("monitor", &self.mref)
            .finish()
    }
}

/// Monitors a process through its header, which outlives the process, so the real exit reason
/// is known even after the process left the table. Used to learn why a call or task ended.
///
/// Dropping the returned future removes the monitor, so abandoned waits (a `stop` that timed
/// out, say) do not pile up on a long-lived process.
pub(crate) fn wait_exit(header: &ProcessHeader) -> ExitWait<'_> {
    let (tx, rx) = oneshot::channel();
    let mref = header.add_monitor(Box::new(move |down: Down| {
        let _ = tx.send(down.reason);
    }));
    ExitWait { header, mref, rx }
}

/// The future returned by [`wait_exit`].
pub(crate) struct ExitWait<'a> {
    header: &'a ProcessHeader,
    mref: MonitorRef,
    rx: oneshot::Receiver<ExitReason>,
}

impl Future for ExitWait<'_> {
    type Output = ExitReason;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ExitReason> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|reason| reason.unwrap_or(ExitReason::NoProc))
    }
}

impl Drop for ExitWait<'_> {
    fn drop(&mut self) {
        if matches!(self.rx.try_recv(), Err(oneshot::error::TryRecvError::Empty)) {
            self.header.remove_monitor(self.mref);
        }
    }
}
