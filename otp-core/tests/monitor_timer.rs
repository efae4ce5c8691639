//! Monitors (exactly one Down; NoProc for the dead; nothing after demonitor) and timers
//! (send_after, send_interval, cancel; they die with their process). Timers run on tokio's
//! paused clock.

mod support;

use std::time::Duration;

use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init};
use otp_core::monitor::{Down, MonitorRef, monitor};
use otp_core::testing::{EventLog, assert_down, await_exit};
use otp_core::timer::{TimerError, TimerRef};
use otp_core::{ExitReason, Pid, ServerRef};
use support::{Call, Cast, Mutexed, WAIT, start_probe};
use tokio::sync::oneshot;

// OTP: erlang:monitor/2 — one Down with the exit reason
#[tokio::test]
async fn a_monitor_gets_exactly_one_down_with_the_exit_reason() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    let first = server.monitor();
    let second = monitor(server.pid());
    assert_ne!(first.monitor_ref(), second.monitor_ref());
    server.cast(Cast::Panic("gone")).unwrap();
    let down = first.await;
    assert_eq!(down.pid, server.pid());
    assert_eq!(down.reason, ExitReason::Panic("gone".into()));
    assert_down(second, ExitReason::Panic("gone".into()), WAIT).await;
}

// OTP: erlang:monitor/2 doc — monitoring a dead process gives DOWN with noproc at once
#[tokio::test]
async fn monitoring_a_dead_or_unknown_pid_yields_noproc_at_once() {
    let mut never = monitor(Pid::new_unique());
    assert_eq!(never.try_down().map(|d| d.reason), Some(ExitReason::NoProc));

    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    server.stop(ExitReason::Normal, WAIT).await.unwrap();
    let mut late = server.monitor();
    assert_eq!(late.try_down().map(|d| d.reason), Some(ExitReason::NoProc));
}

// A Down read with try_down is the monitor's Down: awaiting afterwards returns it again
// (it used to panic: the channel had been read out)
#[tokio::test]
async fn awaiting_a_monitor_after_try_down_returned_its_down_returns_it_again() {
    let mut never = monitor(Pid::new_unique());
    let seen = never.try_down().expect("noproc is delivered at once");
    assert_eq!(never.try_down(), Some(seen.clone()));
    assert_eq!(never.await, seen);

    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    let mut watching = server.monitor();
    assert_eq!(watching.try_down(), None);
    server.stop(ExitReason::Normal, WAIT).await.unwrap();
    let down = tokio::time::timeout(WAIT, &mut watching).await.unwrap();
    assert_eq!(down.reason, ExitReason::Normal);
    assert_eq!(watching.try_down(), Some(down.clone()));
    assert_eq!(watching.await, down);
}

#[tokio::test]
async fn demonitor_reports_whether_the_monitor_was_active() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    let watching = server.monitor();
    assert!(watching.demonitor());
    server.stop(ExitReason::Normal, WAIT).await.unwrap();
    assert!(!monitor(server.pid()).demonitor());
}

/// A server that monitors others on request and logs the Downs it handles.
struct Watcher {
    log: EventLog,
    monitors: Vec<MonitorRef>,
    timers: Vec<TimerRef>,
}

enum WatchCall {
    Monitor(Pid),
    /// Monitors with a mapping from `Down` to info that panics.
    MonitorBadly(Pid),
    /// Monitors with a mapping that owns a plain `Monitor` of the same process.
    MonitorHolding(Pid),
    DemonitorAll,
    SendAfter(Duration, &'static str),
    SendInterval(Duration, &'static str),
    Cancel(usize),
    /// Cancels a timer reference from anywhere (another server's, an earlier incarnation's).
    CancelRef(TimerRef),
    /// Sends the reference of the last timer set.
    LastTimer(oneshot::Sender<TimerRef>),
    Sync,
}

#[derive(Clone)]
enum WatchInfo {
    Down(Pid, ExitReason),
    Tick(&'static str),
}

impl GenServer for Watcher {
    type Args = EventLog;
    type Call = WatchCall;
    type Reply = Result<bool, TimerError>;
    type Cast = Mutexed<oneshot::Receiver<()>>;
    type Info = WatchInfo;
    type Continue = ();

    async fn init(log: EventLog, _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        Ok(Init::Ready(Watcher {
            log,
            monitors: Vec::new(),
            timers: Vec::new(),
        }))
    }

    async fn handle_call(
        &mut self,
        request: WatchCall,
        _: Caller<'_, Self::Reply>,
        ctx: &mut Context<Self>,
    ) -> Result<CallResult<Self::Reply>, BoxError> {
        let reply = match request {
            WatchCall::Monitor(pid) => {
                let monitor = ctx.monitor(pid, |down: Down| WatchInfo::Down(down.pid, down.reason));
                self.monitors.push(monitor);
                Ok(true)
            }
            WatchCall::MonitorBadly(pid) => {
                let monitor = ctx.monitor(pid, |_: Down| -> WatchInfo {
                    panic!("cannot map this down")
                });
                self.monitors.push(monitor);
                Ok(true)
            }
            WatchCall::MonitorHolding(pid) => {
                let held = monitor(pid);
                let monitor = ctx.monitor(pid, move |down: Down| {
                    drop(held);
                    WatchInfo::Down(down.pid, down.reason)
                });
                self.monitors.push(monitor);
                Ok(true)
            }
            WatchCall::DemonitorAll => {
                let all = self.monitors.drain(..).collect::<Vec<_>>();
                Ok(all.into_iter().all(|m| ctx.demonitor(m)))
            }
            WatchCall::SendAfter(delay, tag) => {
                ctx.send_after(delay, WatchInfo::Tick(tag)).map(|timer| {
                    self.timers.push(timer);
                    true
                })
            }
            WatchCall::SendInterval(period, tag) => ctx
                .send_interval(period, WatchInfo::Tick(tag))
                .map(|timer| {
                    self.timers.push(timer);
                    true
                }),
            WatchCall::Cancel(index) => Ok(ctx.cancel_timer(self.timers[index])),
            WatchCall::CancelRef(timer) => Ok(ctx.cancel_timer(timer)),
            WatchCall::LastTimer(to) => Ok(self.timers.last().is_some_and(|t| to.send(*t).is_ok())),
            WatchCall::Sync => Ok(true),
        };
        Ok(CallResult::Reply(reply))
    }

    async fn handle_cast(
        &mut self,
        Mutexed(hold): Self::Cast,
        _: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        let _ = hold.await;
        Ok(())
    }

    async fn handle_info(
        &mut self,
        info: WatchInfo,
        _: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        match info {
            WatchInfo::Down(pid, reason) => self.log.push(format!("down({pid}, {reason})")),
            WatchInfo::Tick(tag) => self.log.push(format!("tick({tag})")),
        }
        Ok(())
    }
}

async fn watcher(log: &EventLog) -> ServerRef<Watcher> {
    Watcher::start(log.clone()).await.unwrap()
}

// OTP: monitor/2 inside a gen_server: the DOWN arrives in handle_info
#[tokio::test]
async fn a_server_monitor_delivers_down_to_handle_info() {
    let log = EventLog::new();
    let watcher = watcher(&log).await;
    let target = start_probe("t", &EventLog::new()).await;
    watcher
        .call(WatchCall::Monitor(target.pid()))
        .await
        .unwrap()
        .unwrap();
    target
        .stop(ExitReason::shutdown_with("bye"), WAIT)
        .await
        .unwrap();
    log.wait_for(&format!("down({}, shutdown: bye)", target.pid()), WAIT)
        .await;
    // A dead pid: NoProc at once.
    watcher
        .call(WatchCall::Monitor(target.pid()))
        .await
        .unwrap()
        .unwrap();
    log.wait_for(&format!("down({}, noproc)", target.pid()), WAIT)
        .await;
    assert_eq!(log.events().len(), 2);
}

// Rule 1: a panic while mapping a Down to the server's info type is a crash of that server,
// with the panic as its exit reason, not of the process that exited.
#[tokio::test]
async fn a_panicking_down_mapping_crashes_the_monitoring_server() {
    let log = EventLog::new();
    let watcher = watcher(&log).await;
    let watcher_exit = monitor(watcher.pid());
    let target = start_probe("t", &EventLog::new()).await;
    watcher
        .call(WatchCall::MonitorBadly(target.pid()))
        .await
        .unwrap()
        .unwrap();
    target.stop(ExitReason::Normal, WAIT).await.unwrap();
    assert_down(
        watcher_exit,
        ExitReason::Panic("cannot map this down".into()),
        WAIT,
    )
    .await;
    assert!(log.events().is_empty());
}

// OTP: demonitor(Ref, [flush]) — no DOWN after demonitor, even one already queued
#[tokio::test]
async fn after_demonitor_no_down_is_handled_even_if_already_queued() {
    let log = EventLog::new();
    let watcher = watcher(&log).await;
    let target = start_probe("t", &EventLog::new()).await;
    watcher
        .call(WatchCall::Monitor(target.pid()))
        .await
        .unwrap()
        .unwrap();
    // Hold the watcher, let the target die (its Down is queued behind the hold), then queue
    // the demonitor behind the Down.
    let (release, hold) = oneshot::channel();
    watcher.cast(Mutexed(hold)).unwrap();
    target.stop(ExitReason::Normal, WAIT).await.unwrap();
    let demonitor = {
        use futures::FutureExt;
        let mut call = Box::pin(watcher.call(WatchCall::DemonitorAll));
        assert!((&mut call).now_or_never().is_none());
        call
    };
    release.send(()).unwrap();
    // The Down was handled before the demonitor (it was queued first)...
    assert_eq!(demonitor.await.unwrap(), Ok(false));
    assert_eq!(log.events(), [format!("down({}, normal)", target.pid())]);

    // ...whereas a demonitor that runs before the Down is handled flushes it.
    let log = EventLog::new();
    let watcher = self::watcher(&log).await;
    let target = start_probe("t2", &EventLog::new()).await;
    watcher
        .call(WatchCall::Monitor(target.pid()))
        .await
        .unwrap()
        .unwrap();
    let (release, hold) = oneshot::channel();
    watcher.cast(Mutexed(hold)).unwrap();
    let demonitor = {
        use futures::FutureExt;
        let mut call = Box::pin(watcher.call(WatchCall::DemonitorAll));
        assert!((&mut call).now_or_never().is_none());
        call
    };
    target.stop(ExitReason::Normal, WAIT).await.unwrap();
    release.send(()).unwrap();
    assert_eq!(demonitor.await.unwrap(), Ok(true));
    watcher.call(WatchCall::Sync).await.unwrap().unwrap();
    assert!(log.events().is_empty(), "{:?}", log.events());
}

// OTP: erlang:send_after/3
#[tokio::test(start_paused = true)]
async fn send_after_delivers_to_handle_info_after_the_delay() {
    let log = EventLog::new();
    let watcher = watcher(&log).await;
    let started = tokio::time::Instant::now();
    watcher
        .call(WatchCall::SendAfter(Duration::from_millis(250), "a"))
        .await
        .unwrap()
        .unwrap();
    log.wait_for("tick(a)", WAIT).await;
    assert_eq!(started.elapsed(), Duration::from_millis(250));
    // It fired, so cancelling it now reports false (erlang:cancel_timer/1 returns false).
    assert_eq!(watcher.call(WatchCall::Cancel(0)).await.unwrap(), Ok(false));
}

// OTP: erlang:cancel_timer/1 — a cancelled timer never fires
#[tokio::test(start_paused = true)]
async fn a_cancelled_timer_never_fires() {
    let log = EventLog::new();
    let watcher = watcher(&log).await;
    watcher
        .call(WatchCall::SendAfter(
            Duration::from_millis(100),
            "cancelled",
        ))
        .await
        .unwrap()
        .unwrap();
    watcher
        .call(WatchCall::SendAfter(Duration::from_millis(200), "kept"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(watcher.call(WatchCall::Cancel(0)).await.unwrap(), Ok(true));
    assert_eq!(watcher.call(WatchCall::Cancel(0)).await.unwrap(), Ok(false));
    log.wait_for("tick(kept)", WAIT).await;
    assert_eq!(log.events(), ["tick(kept)"]);
}

// OTP: timer:send_interval/2
#[tokio::test(start_paused = true)]
async fn send_interval_repeats_until_cancelled() {
    let log = EventLog::new();
    let watcher = watcher(&log).await;
    let started = tokio::time::Instant::now();
    watcher
        .call(WatchCall::SendInterval(Duration::from_secs(1), "beat"))
        .await
        .unwrap()
        .unwrap();
    log.wait_until(|events| events.len() == 3, WAIT)
        .await
        .unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(watcher.call(WatchCall::Cancel(0)).await.unwrap(), Ok(true));
    // Nothing more arrives: advance well past further ticks and check.
    tokio::time::advance(Duration::from_secs(10)).await;
    watcher.call(WatchCall::Sync).await.unwrap().unwrap();
    assert_eq!(log.count("tick(beat)"), 3);
}

// Once every timer has fired or been cancelled the server frees its timer queue; new timers
// must work as before, and a reference to an old timer must never cancel a new one, even one
// with the very same deadline (time is paused here, so equal delays give equal deadlines).
#[tokio::test(start_paused = true)]
async fn timers_set_after_all_others_ended_fire_and_old_refs_do_not_cancel_them() {
    let log = EventLog::new();
    let watcher = watcher(&log).await;
    let started = tokio::time::Instant::now();
    let delay = Duration::from_millis(100);
    watcher
        .call(WatchCall::SendAfter(delay, "first"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(watcher.call(WatchCall::Cancel(0)).await.unwrap(), Ok(true));
    watcher
        .call(WatchCall::SendAfter(delay, "second"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(watcher.call(WatchCall::Cancel(0)).await.unwrap(), Ok(false));
    log.wait_for("tick(second)", WAIT).await;
    assert_eq!(started.elapsed(), delay);
    watcher
        .call(WatchCall::SendAfter(Duration::from_millis(50), "third"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(watcher.call(WatchCall::Cancel(1)).await.unwrap(), Ok(false));
    log.wait_for("tick(third)", WAIT).await;
    assert_eq!(started.elapsed(), Duration::from_millis(150));
    assert_eq!(log.events(), ["tick(second)", "tick(third)"]);
}

async fn last_timer(watcher: &ServerRef<Watcher>) -> TimerRef {
    let (to, timer) = oneshot::channel();
    assert_eq!(
        watcher.call(WatchCall::LastTimer(to)).await.unwrap(),
        Ok(true)
    );
    timer.await.unwrap()
}

// OTP: erlang:cancel_timer/1 with a reference that is not one of this process's timers
// returns false and cancels nothing (timer ids used to restart at 1 in every server)
#[tokio::test(start_paused = true)]
async fn a_foreign_or_stale_timer_ref_cancels_nothing() {
    let log = EventLog::new();
    let first = watcher(&log).await;
    let second = watcher(&log).await;
    let delay = Duration::from_millis(100);
    for (server, tag) in [(&first, "first"), (&second, "second")] {
        server
            .call(WatchCall::SendAfter(delay, tag))
            .await
            .unwrap()
            .unwrap();
    }
    // Same delay, same paused clock: the two timers have the same deadline.
    let foreign = last_timer(&first).await;
    assert_eq!(
        second.call(WatchCall::CancelRef(foreign)).await.unwrap(),
        Ok(false)
    );
    // A reference from an earlier incarnation of the same server type.
    let earlier = watcher(&EventLog::new()).await;
    earlier
        .call(WatchCall::SendAfter(delay, "earlier"))
        .await
        .unwrap()
        .unwrap();
    let stale = last_timer(&earlier).await;
    earlier.stop(ExitReason::Normal, WAIT).await.unwrap();
    assert_eq!(
        second.call(WatchCall::CancelRef(stale)).await.unwrap(),
        Ok(false)
    );
    log.wait_until(|events| events.len() == 2, WAIT)
        .await
        .unwrap();
    let mut events = log.events();
    events.sort();
    assert_eq!(events, ["tick(first)", "tick(second)"]);
}

#[tokio::test(start_paused = true)]
async fn timers_fire_in_deadline_order() {
    let log = EventLog::new();
    let watcher = watcher(&log).await;
    for (ms, tag) in [(300, "c"), (100, "a"), (200, "b")] {
        watcher
            .call(WatchCall::SendAfter(Duration::from_millis(ms), tag))
            .await
            .unwrap()
            .unwrap();
    }
    log.wait_for("tick(c)", WAIT).await;
    assert_eq!(log.events(), ["tick(a)", "tick(b)", "tick(c)"]);
}

// OTP: Bad input — a zero interval or an unrepresentable delay is a typed error
#[tokio::test]
async fn zero_interval_and_absurd_delays_are_rejected() {
    let log = EventLog::new();
    let watcher = watcher(&log).await;
    assert_eq!(
        watcher
            .call(WatchCall::SendInterval(Duration::ZERO, "x"))
            .await
            .unwrap(),
        Err(TimerError::ZeroInterval)
    );
    assert_eq!(
        watcher
            .call(WatchCall::SendAfter(Duration::MAX, "x"))
            .await
            .unwrap(),
        Err(TimerError::DelayTooLong)
    );
}

// OTP: a process's timers die with it
#[tokio::test(start_paused = true)]
async fn timers_die_with_their_process() {
    let log = EventLog::new();
    let watcher = watcher(&log).await;
    watcher
        .call(WatchCall::SendInterval(Duration::from_millis(10), "t"))
        .await
        .unwrap()
        .unwrap();
    log.wait_for("tick(t)", WAIT).await;
    watcher.stop(ExitReason::Normal, WAIT).await.unwrap();
    let ticks = log.count("tick(t)");
    tokio::time::advance(Duration::from_secs(1)).await;
    tokio::task::yield_now().await;
    assert_eq!(log.count("tick(t)"), ticks);
    assert_eq!(await_exit(&watcher, WAIT).await, ExitReason::Normal);
}

// OTP: erlang:send_after/3 sends its message when the timer fires, so it queues behind the
// messages already in the mailbox (this test asserted the opposite before defect 6 was fixed)
#[tokio::test(start_paused = true)]
async fn a_due_timer_queues_behind_messages_sent_before_it_fired() {
    let log = EventLog::new();
    let watcher = watcher(&log).await;
    watcher
        .call(WatchCall::SendAfter(Duration::from_millis(10), "due"))
        .await
        .unwrap()
        .unwrap();
    let (release, hold) = oneshot::channel();
    watcher.cast(Mutexed(hold)).unwrap();
    // Queued while the timer is pending; still waiting when it comes due.
    watcher.send(WatchInfo::Tick("queued")).unwrap();
    tokio::time::advance(Duration::from_millis(20)).await;
    release.send(()).unwrap();
    watcher.call(WatchCall::Sync).await.unwrap().unwrap();
    assert_eq!(log.events(), ["tick(queued)", "tick(due)"]);
}

// OTP: process::exit(pid, shutdown) on a non-trapping process
#[tokio::test]
async fn exit_ends_a_process_with_the_given_reason() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    let down = server.monitor();
    assert!(otp_core::process::is_alive(server.pid()));
    assert!(otp_core::process::exit(server.pid(), ExitReason::Shutdown));
    assert_down(down, ExitReason::Shutdown, WAIT).await;
    assert!(!otp_core::process::is_alive(server.pid()));
    assert_eq!(
        server.call(Call::Echo(1)).await,
        Err(otp_core::gen_server::CallError::NoProc)
    );
}

// The mapping closure given to Context::monitor is user code: demonitor drops it outside the
// target's lock (it used to deadlock when the closure owned a Monitor of the same process)
#[test]
fn demonitor_drops_a_mapping_that_owns_a_monitor_of_the_same_process() {
    support::watched_on_two_threads("demonitor deadlocked", || async {
        let log = EventLog::new();
        let watcher = watcher(&log).await;
        let target = start_probe("t", &EventLog::new()).await;
        watcher
            .call(WatchCall::MonitorHolding(target.pid()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            watcher.call(WatchCall::DemonitorAll).await,
            Ok(Ok(true)),
            "demonitor deadlocked"
        );
        // Both monitors are gone: the target exits with nobody told.
        target.stop(ExitReason::Normal, WAIT).await.unwrap();
        watcher.call(WatchCall::Sync).await.unwrap().unwrap();
        assert!(log.events().is_empty());
    });
}
