//! [`Context`]: what a callback can ask of its own process.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashSet;

use super::envelope::{DownToInfo, Envelope};
use super::server_process::ServerProcess;
use super::{GenServer, ServerRef};
use crate::link::Exit;
use crate::monitor::{Down, MonitorRef};
use crate::process::header::ProcessHeader;
use crate::process::table;
use crate::stream::{StreamEvent, StreamRef, Streams};
use crate::timer::{TimerError, TimerRef, Timers};
use crate::{ExitReason, Pid};

/// The server's own process, as seen from inside its callbacks.
///
/// Every callback gets `&mut Context<Self>`. Through it a callback can
/// [stop](Self::stop) the server, ask for [`handle_continue`](GenServer::handle_continue),
/// set [timers](crate::timer), [monitor](Self::monitor) other processes,
/// [attach streams](Self::attach_stream), and get its own [`ServerRef`].
pub struct Context<S: GenServer> {
    process: Arc<ServerProcess<S>>,
    pub(super) stop: Option<ExitReason>,
    pub(super) next_continue: Option<S::Continue>,
    /// Timers, monitors and streams, allocated on first use so that an idle server without them
    /// stays small.
    pub(super) extras: Option<Box<Extras<S>>>,
}

pub(super) struct Extras<S: GenServer> {
    pub(super) timers: Timers<S::Info>,
    monitors: FxHashSet<MonitorRef>,
    streams: Streams<S::Info>,
    /// What becomes of exit signals while the server traps exits.
    trap_exits: Option<Trap<S>>,
}

/// How a trapping server takes an exit signal (other than its parent's: see `trapped_exit`).
enum Trap<S: GenServer> {
    /// Mapped to an info message ([`Context::trap_exits`]).
    Deliver(Box<dyn FnMut(Exit) -> <S as GenServer>::Info + Send>),
    /// Dropped: a supervisor learns of its children's exits from its monitors.
    Ignore,
}

impl<S: GenServer> Context<S> {
    pub(super) fn new(process: Arc<ServerProcess<S>>) -> Context<S> {
        Context {
            process,
            stop: None,
            next_continue: None,
            extras: None,
        }
    }

    pub(super) fn mailbox(&self) -> &crate::process::mailbox::Mailbox<Envelope<S>> {
        &self.process.mailbox
    }

    fn extras(&mut self) -> &mut Extras<S> {
        self.extras.get_or_insert_with(|| {
            Box::new(Extras {
                timers: Timers::new(),
                monitors: FxHashSet::default(),
                streams: Streams::new(),
                trap_exits: None,
            })
        })
    }

    /// This server's pid (Erlang `self()`).
    pub fn pid(&self) -> Pid {
        self.process.header.pid()
    }

    /// A handle to this server, to give to other processes.
    ///
    /// Calling it from inside the server's own callbacks fails with
    /// [`CallError::CallingSelf`](super::CallError::CallingSelf); casts and info messages are
    /// fine and are handled after the current callback.
    pub fn server_ref(&self) -> ServerRef<S> {
        ServerRef::from_process(self.process.clone())
    }

    /// Stops the server once the current callback returns (Erlang's `{stop, Reason, …}`).
    ///
    /// In `handle_call`, a reply returned together with a stop is delivered first, then
    /// `terminate(reason)` runs, then the process exits with `reason`. Calling `stop` again
    /// replaces the reason.
    pub fn stop(&mut self, reason: ExitReason) {
        self.stop = Some(reason);
    }

    /// Runs [`handle_continue`](GenServer::handle_continue) with `value` straight after the current
    /// callback returns, before any message still in the mailbox (Erlang's `{continue, Term}`).
    ///
    /// A server may loop by asking for another continue from `handle_continue`. Such a chain
    /// still yields its thread now and then (each continue spends a unit of tokio's cooperative
    /// budget), so a kill ([`process::exit`](crate::process::exit), a supervisor's shutdown
    /// timeout) ends it. A stop request ([`ServerRef::stop`], a supervisor's graceful shutdown)
    /// also ends it, although the chain never reads the mailbox: the pending continue is
    /// dropped, the messages queued before the stop are handled in order (a continue they ask
    /// for is dropped too), then `terminate` runs. Erlang would wait for the chain to end.
    pub fn continue_with(&mut self, value: S::Continue) {
        self.next_continue = Some(value);
    }

    /// Delivers `message` to this server's `handle_info` after `delay` (Erlang
    /// `erlang:send_after/3`). When the timer fires, its message is queued behind the messages
    /// already in the mailbox, as Erlang's timer sends it; a zero delay queues it at once.
    ///
    /// # Errors
    ///
    /// If `delay` cannot be represented as a deadline, returns [`TimerError::DelayTooLong`].
    pub fn send_after(
        &mut self,
        delay: Duration,
        message: S::Info,
    ) -> Result<TimerRef, TimerError> {
        self.extras().timers.send_after(delay, message)
    }

    /// Delivers a clone of `message` to `handle_info` every `period`, until cancelled or until
    /// the server exits (`timer:send_interval/2`).
    ///
    /// # Errors
    ///
    /// If `period` is zero, returns [`TimerError::ZeroInterval`]; if it cannot be represented as
    /// a deadline, [`TimerError::DelayTooLong`].
    pub fn send_interval(
        &mut self,
        period: Duration,
        message: S::Info,
    ) -> Result<TimerRef, TimerError>
    where
        S::Info: Clone,
    {
        self.extras().timers.send_interval(period, message)
    }

    /// Cancels a timer. Returns `true` if it was still pending: it will never fire. Returns
    /// `false` if it had already fired (its message is queued or was handled), was cancelled
    /// before, or belongs to another server or an earlier incarnation of this one.
    pub fn cancel_timer(&mut self, timer: TimerRef) -> bool {
        self.extras
            .as_mut()
            .is_some_and(|extras| extras.timers.cancel(timer))
    }

    /// Monitors `pid`; when it exits, `to_info(down)` is delivered to `handle_info`, once.
    ///
    /// If `pid` is not alive, the [`Down`] carries [`ExitReason::NoProc`] and arrives at once.
    /// `to_info` runs in this server, when the `Down` is taken from the mailbox.
    pub fn monitor<F>(&mut self, pid: Pid, to_info: F) -> MonitorRef
    where
        F: FnOnce(Down) -> S::Info + Send + 'static,
    {
        match table::lookup(pid) {
            Some(target) => self.monitor_process(target.header(), to_info),
            None => {
                let monitor = MonitorRef::new(pid);
                let to_info: DownToInfo<S> = Box::new(to_info);
                let _ = self.process.mailbox.send(Envelope::Down(Box::new((
                    Down::new(monitor, ExitReason::NoProc),
                    to_info,
                ))));
                self.extras().monitors.insert(monitor);
                monitor
            }
        }
    }

    /// Monitors a process through its header, which knows the exit reason even after the
    /// process has left the table (a supervisor holds its children's headers).
    pub(crate) fn monitor_process<F>(&mut self, target: &ProcessHeader, to_info: F) -> MonitorRef
    where
        F: FnOnce(Down) -> S::Info + Send + 'static,
    {
        let process = self.process.clone();
        let to_info: DownToInfo<S> = Box::new(to_info);
        let monitor = target.add_monitor(Box::new(move |down: Down| {
            let _ = process
                .mailbox
                .send(Envelope::Down(Box::new((down, to_info))));
        }));
        self.extras().monitors.insert(monitor);
        monitor
    }

    /// Removes a monitor. No message for it is handled afterwards, even one already queued
    /// (Erlang `demonitor(Ref, [flush])`). Returns whether it was active.
    pub fn demonitor(&mut self, monitor: MonitorRef) -> bool {
        let was_active = self
            .extras
            .as_mut()
            .is_some_and(|extras| extras.monitors.remove(&monitor));
        if was_active {
            if let Some(target) = table::lookup(monitor.pid()) {
                target.header().remove_monitor(monitor);
            }
        }
        was_active
    }

    /// Attaches `stream`: its items, then its end, arrive in
    /// [`handle_info`](GenServer::handle_info) as `map(StreamEvent::Item(item))` and finally
    /// `map(StreamEvent::Ended)` (an Erlang socket in `{active, once}` mode, kameo's
    /// `attach_stream`).
    ///
    /// The server reads the stream itself, one item at a time, only once it has handled the
    /// messages it had taken from its mailbox: nothing is read ahead (backpressure), and neither
    /// the stream nor the mailbox can starve the other. `map` runs in this server as each item
    /// is read; a panic in it or in the stream crashes the server. The stream is dropped when it
    /// ends, when it is [detached](Self::detach_stream), or when the server exits. See
    /// [`stream`](crate::stream) for the whole contract and an example.
    pub fn attach_stream<St, F>(&mut self, stream: St, map: F) -> StreamRef
    where
        St: futures::Stream + Send + 'static,
        F: FnMut(StreamEvent<St::Item>) -> S::Info + Send + 'static,
    {
        self.extras().streams.attach(stream, map)
    }

    /// Detaches a stream and drops it; no `Ended` is delivered for it. Returns whether it was
    /// still attached (`false` once it has ended, or for a stream of another server).
    ///
    /// An item already read from the stream (at most one, queued behind the messages taken
    /// from the mailbox with it) is still delivered, as data already in an Erlang process's
    /// mailbox is after its socket goes passive.
    pub fn detach_stream(&mut self, stream: StreamRef) -> bool {
        self.extras
            .as_mut()
            .is_some_and(|extras| extras.streams.detach(stream))
    }

    pub(super) fn streams(&mut self) -> Option<&mut Streams<S::Info>> {
        self.extras
            .as_mut()
            .map(|extras| &mut extras.streams)
            .filter(|streams| !streams.is_empty())
    }

    /// Traps exits (Erlang `process_flag(trap_exit, true)`): from now on an exit signal from a
    /// [linked](crate::link) process arrives in [`handle_info`](GenServer::handle_info) as
    /// `map(Exit { pid, reason })`, `Normal` ones included, and the server lives on. A kill
    /// ([`process::exit`](crate::process::exit)) still kills it. Calling it again replaces
    /// `map`. `map` runs in this server; a panic in it crashes the server.
    pub fn trap_exits<F>(&mut self, map: F)
    where
        F: FnMut(Exit) -> S::Info + Send + 'static,
    {
        self.trap(Trap::Deliver(Box::new(map)));
    }

    /// Traps exits and drops them, but for the parent's, which stops the server (as every
    /// trapping server's does). For supervisors: a child started with
    /// [`start_link`](GenServer::start_link) from a supervisor's start function is linked to
    /// it, as in Erlang, and its exit must not kill the supervisor; the supervisor learns of it
    /// from its monitor, as of every child's.
    pub(crate) fn trap_exits_ignoring_them(&mut self) {
        self.trap(Trap::Ignore);
    }

    fn trap(&mut self, trap: Trap<S>) {
        self.extras().trap_exits = Some(trap);
        let process = Arc::downgrade(&self.process);
        self.process
            .header
            .set_trap_exits(Some(Arc::new(move |pid, reason| {
                if let Some(process) = process.upgrade() {
                    let exit = Box::new(Exit { pid, reason });
                    let _ = process.mailbox.send(Envelope::Exit(exit));
                }
            })));
    }

    /// Stops trapping exits: an abnormal exit signal from a linked process kills the server
    /// again (see [`link`](crate::link) for a signal already queued).
    pub fn stop_trapping_exits(&mut self) {
        self.process.header.set_trap_exits(None);
        if let Some(extras) = &mut self.extras {
            extras.trap_exits = None;
        }
    }

    /// What a queued exit signal becomes: while trapping, `Some(Ok(info))` (`Err` with the
    /// crash if the mapping panicked), or `None` when ignored; after trapping stopped,
    /// `Some(Err(reason))` for an abnormal reason and `None` for `Normal`.
    ///
    /// An exit signal from the server's parent (the process that started it, and linked to it
    /// with `start_link`) stops a trapping server with the parent's reason, `terminate`
    /// included, as in Erlang's `gen_server`: a child does not outlive the process it was
    /// started for.
    pub(super) fn trapped_exit(&mut self, exit: Exit) -> Option<Result<S::Info, ExitReason>> {
        let trap = self
            .extras
            .as_mut()
            .and_then(|extras| extras.trap_exits.as_mut());
        match trap {
            Some(_) if Some(exit.pid) == self.process.header.parent() => Some(Err(exit.reason)),
            Some(Trap::Deliver(map)) => Some(
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| map(exit)))
                    .map_err(|payload| ExitReason::Panic(crate::process::panic_message(&*payload))),
            ),
            Some(Trap::Ignore) => None,
            None if exit.reason == ExitReason::Normal => None,
            None => Some(Err(exit.reason)),
        }
    }

    /// Whether a `Down` for `monitor` should still be handled; consumes the monitor if so.
    pub(super) fn take_down(&mut self, monitor: MonitorRef) -> bool {
        self.extras
            .as_mut()
            .is_some_and(|extras| extras.monitors.remove(&monitor))
    }

    pub(super) fn timers(&mut self) -> Option<&mut Timers<S::Info>> {
        self.extras
            .as_mut()
            .map(|extras| &mut extras.timers)
            .filter(|timers| !timers.is_empty())
    }
}

impl<S: GenServer> Drop for Context<S> {
    fn drop(&mut self) {
        // Monitors held by an exited server can never be delivered; remove them from their
        // targets so long-lived targets do not keep dead servers' mailboxes alive.
        if let Some(extras) = &self.extras {
            for monitor in &extras.monitors {
                if let Some(target) = table::lookup(monitor.pid()) {
                    target.header().remove_monitor(*monitor);
                }
            }
        }
    }
}

impl<S: GenServer> fmt::Debug for Context<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("pid", &self.pid())
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}
