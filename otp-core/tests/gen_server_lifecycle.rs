//! GenServer lifecycle: init results, start timeout, continue, terminate rules, graceful stop
//! ordering, tracing spans (specification GS-02..GS-04, GS-10, GS-11).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use otp_core::ExitReason;
use otp_core::gen_server::{Context, GenServer, Init, StartError, StartOptions, StopError};
use otp_core::process::{BoxError, Pid};
use otp_core::testing::{EventLog, await_exit};
use support::{Call, Cast, InitScript, Mutexed, Probe, ProbeArgs, Reply, WAIT, start_probe};
use tokio::sync::oneshot;

// OTP: GS-02; gen_server.erl init/1 doc ({stop, Reason}); gen_server_SUITE start
#[tokio::test]
async fn init_stop_fails_the_start_with_its_reason_and_never_runs_terminate() {
    let log = EventLog::new();
    let args = ProbeArgs::new("p", &log).init(InitScript::Stop(ExitReason::shutdown_with("bad")));
    let result = Probe::start(args).await;
    assert_eq!(
        result.err(),
        Some(StartError::InitFailed(ExitReason::shutdown_with("bad")))
    );
    assert_eq!(log.events(), ["init(p)"]);
}

// OTP: GS-03; gen_server.erl init/1 doc (ignore)
#[tokio::test]
async fn init_ignore_returns_ignored() {
    let log = EventLog::new();
    let result = Probe::start(ProbeArgs::new("p", &log).init(InitScript::Ignore)).await;
    assert_eq!(result.err(), Some(StartError::Ignored));
    assert_eq!(log.events(), ["init(p)"]);
}

// OTP: GS-04; gen_server_SUITE loop_start_fail ({error, {bailout, ST}})
#[tokio::test]
async fn init_that_fails_or_panics_fails_the_start_with_the_reason() {
    let log = EventLog::new();
    let failed = Probe::start(ProbeArgs::new("p", &log).init(InitScript::Fail("no config"))).await;
    support::assert_same(
        failed.err(),
        Some(StartError::InitFailed(ExitReason::error("no config"))),
    );
    let panicked =
        Probe::start(ProbeArgs::new("q", &log).init(InitScript::Panic("init boom"))).await;
    assert_eq!(
        panicked.err(),
        Some(StartError::InitFailed(ExitReason::Panic(
            "init boom".into()
        )))
    );
    // terminate does not run after a failed init (GS-10 g).
    assert_eq!(log.events(), ["init(p)", "init(q)"]);
}

// OTP: GS-04; gen_server_SUITE start ({error, timeout} with {timeout, 100})
#[tokio::test(start_paused = true)]
async fn init_that_takes_too_long_times_out_and_the_process_is_killed() {
    let log = EventLog::new();
    let started = tokio::time::Instant::now();
    let result = Probe::start_with(
        ProbeArgs::new("p", &log).init(InitScript::Block),
        StartOptions::new().timeout(Duration::from_millis(200)),
    )
    .await;
    assert_eq!(result.err(), Some(StartError::Timeout));
    assert_eq!(started.elapsed(), Duration::from_millis(200));
    // No process with the probe's label is left: the only one started was killed.
    assert_eq!(log.events(), ["init(p)"]);
}

#[tokio::test]
async fn a_zero_start_timeout_is_rejected_before_anything_starts() {
    let log = EventLog::new();
    let result = Probe::start_with(
        ProbeArgs::new("p", &log),
        StartOptions::new().timeout(Duration::ZERO),
    )
    .await;
    assert_eq!(result.err(), Some(StartError::InvalidTimeout));
    assert!(log.events().is_empty());
}

#[test]
fn starting_outside_a_runtime_is_an_error_not_a_panic() {
    let log = EventLog::new();
    let result = futures::executor::block_on(Probe::start(ProbeArgs::new("p", &log)));
    assert_eq!(result.err(), Some(StartError::NoRuntime));
}

// OTP: Ex gen_server.ex handle_continue/2 ({:continue, c} runs before the next message)
#[tokio::test]
async fn continue_runs_before_queued_messages() {
    let log = EventLog::new();
    let server =
        Probe::start(ProbeArgs::new("p", &log).init(InitScript::OkContinue("from-init".into())))
            .await
            .unwrap();
    let (release, hold) = oneshot::channel();
    server.cast(Cast::Pause(Mutexed(hold))).unwrap();
    let continued = {
        use futures::FutureExt;
        let mut call = Box::pin(server.call(Call::Continue("from-call".into())));
        assert!((&mut call).now_or_never().is_none());
        call
    };
    server.cast(Cast::Log("queued".into())).unwrap();
    release.send(()).unwrap();
    assert_eq!(continued.await, Ok(Reply::Ok));
    log.wait_for("handled(queued)", WAIT).await;
    assert_eq!(
        log.events(),
        [
            "init(p)",
            "continue(from-init)",
            "continue(from-call)",
            "handled(queued)"
        ]
    );
}

// OTP: GS-10 (c); gen_server.erl stop/3 doc (synchronous, returns after terminate)
#[tokio::test]
async fn stop_is_synchronous_and_runs_terminate_with_the_reason() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    server
        .stop(ExitReason::shutdown_with("bye"), WAIT)
        .await
        .unwrap();
    // terminate has run by the time stop returns.
    assert_eq!(log.events(), ["init(p)", "terminate(p, shutdown: bye)"]);
    assert!(!server.is_alive());
    // Stopping a server that is gone fails with noproc.
    assert_eq!(
        server.stop(ExitReason::Normal, WAIT).await,
        Err(StopError::NoProc)
    );
}

// OTP: GS-10 (a): a callback asks to stop
#[tokio::test]
async fn terminate_runs_when_a_callback_stops_the_server() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    server.cast(Cast::Stop(ExitReason::Normal)).unwrap();
    assert_eq!(await_exit(&server, WAIT).await, ExitReason::Normal);
    assert_eq!(log.events(), ["init(p)", "terminate(p, normal)"]);
}

// OTP: GS-10 (b): a callback other than init crashes
#[tokio::test]
async fn terminate_runs_with_the_panic_as_reason_when_a_cast_handler_panics() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    server.cast(Cast::Panic("cast boom")).unwrap();
    assert_eq!(
        await_exit(&server, WAIT).await,
        ExitReason::Panic("cast boom".into())
    );
    assert_eq!(log.events(), ["init(p)", "terminate(p, panic: cast boom)"]);
}

// OTP: GS-10 (f): a kill never runs terminate
#[tokio::test]
async fn a_killed_server_does_not_run_terminate() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    assert!(otp_core::process::exit(server.pid(), ExitReason::Killed));
    assert_eq!(await_exit(&server, WAIT).await, ExitReason::Killed);
    assert_eq!(log.events(), ["init(p)"]);
    // As in Erlang, exit(pid, normal) does nothing, and a dead pid cannot be exited again.
    assert!(!otp_core::process::exit(server.pid(), ExitReason::Normal));
    assert!(!otp_core::process::exit(server.pid(), ExitReason::Killed));
}

// OTP: GS-11; Ex gen_server.ex terminate/2 doc (messages before the exit signal are handled first)
#[tokio::test]
async fn messages_queued_before_stop_are_handled_before_terminate() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    for i in 1..=5 {
        server.cast(Cast::Log(i.to_string())).unwrap();
    }
    server.stop(ExitReason::Shutdown, WAIT).await.unwrap();
    assert_eq!(
        log.events(),
        [
            "init(p)",
            "handled(1)",
            "handled(2)",
            "handled(3)",
            "handled(4)",
            "handled(5)",
            "terminate(p, shutdown)"
        ]
    );
}

// OTP: GS-11: messages sent after the stop request are not handled
#[tokio::test]
async fn messages_sent_after_the_stop_request_are_not_handled() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    let (release, hold) = oneshot::channel();
    server.cast(Cast::Pause(Mutexed(hold))).unwrap();
    // Polling the stop once queues the stop request (behind the pause).
    let mut stopping = Box::pin(server.stop(ExitReason::Shutdown, WAIT));
    assert!(futures::FutureExt::now_or_never(&mut stopping).is_none());
    let _ = server.cast(Cast::Log("after".into()));
    release.send(()).unwrap();
    stopping.await.unwrap();
    assert_eq!(log.events(), ["init(p)", "terminate(p, shutdown)"]);
}

// OTP: gen_server.erl terminate/2: a crash in terminate becomes the exit reason
#[tokio::test]
async fn stop_reports_a_different_exit_reason() {
    struct BadTerminate;
    impl otp_core::GenServer for BadTerminate {
        type Args = ();
        type Call = ();
        type Reply = ();
        type Cast = ();
        type Info = ();
        type Continue = ();
        async fn init(
            _: (),
            _: &mut otp_core::gen_server::Context<Self>,
        ) -> Result<otp_core::gen_server::Init<Self>, otp_core::gen_server::BoxError> {
            Ok(otp_core::gen_server::Init::Ready(BadTerminate))
        }
        async fn terminate(&mut self, _: &ExitReason, _: &mut otp_core::gen_server::Context<Self>) {
            panic!("cleanup failed");
        }
    }
    let server = BadTerminate::start(()).await.unwrap();
    assert_eq!(
        server.stop(ExitReason::Normal, WAIT).await,
        Err(StopError::Exited(ExitReason::Panic(
            "cleanup failed".into()
        )))
    );
}

/// A server whose `init` reports its pid, then waits forever; `dropped` is set when what its
/// `init` held is dropped.
struct Stuck;

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl GenServer for Stuck {
    type Args = (oneshot::Sender<Pid>, Arc<AtomicBool>);
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();

    async fn init(
        (pid_to, dropped): Self::Args,
        ctx: &mut Context<Self>,
    ) -> Result<Init<Self>, BoxError> {
        let _held = SetOnDrop(dropped);
        let _ = pid_to.send(ctx.pid());
        std::future::pending::<()>().await;
        Ok(Init::Ready(Stuck))
    }
}

// OTP: GS-04; proc_lib:start_link ("If the process is killed before it calls init_ack, the
// starter gets its exit reason"). `init` runs in the starter's task, and a kill still ends it.
#[tokio::test]
async fn a_server_exited_while_its_init_waits_fails_to_start_with_that_reason() {
    let (pid_to, pid) = oneshot::channel();
    let dropped = Arc::new(AtomicBool::new(false));
    let killing = async {
        let pid = pid.await.unwrap();
        let down = otp_core::monitor::monitor(pid);
        assert!(otp_core::process::exit(
            pid,
            ExitReason::shutdown_with("bye")
        ));
        down.await
    };
    let (started, down) = tokio::join!(Stuck::start((pid_to, dropped.clone())), killing);
    assert_eq!(
        started.err(),
        Some(StartError::InitFailed(ExitReason::shutdown_with("bye")))
    );
    assert_eq!(down.reason, ExitReason::shutdown_with("bye"));
    assert!(dropped.load(Ordering::SeqCst));
}

// As a linked starter's exit would (proc_lib), abandoning a start ends the starting process.
#[tokio::test]
async fn dropping_a_start_while_init_runs_kills_the_new_process() {
    let (pid_to, pid) = oneshot::channel();
    let dropped = Arc::new(AtomicBool::new(false));
    let mut starting = Box::pin(Stuck::start((pid_to, dropped.clone())));
    let pid = tokio::select! {
        _ = &mut starting => panic!("Stuck's init never returns"),
        pid = pid => pid.unwrap(),
    };
    let down = otp_core::monitor::monitor(pid);
    assert!(otp_core::process::is_alive(pid));
    drop(starting);
    assert_eq!(down.await.reason, ExitReason::Killed);
    assert!(dropped.load(Ordering::SeqCst));
    assert!(!otp_core::process::is_alive(pid));
}
