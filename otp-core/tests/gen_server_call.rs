//! GenServer calls, casts and info messages: replies, ordering, timeouts, late replies, deferred
//! replies, calling self, dead servers (specification GS-01, GS-05..GS-09).

mod support;

use std::time::Duration;

use otp_core::ExitReason;
use otp_core::gen_server::{CallError, GenServer, SendError, Timeout};
use otp_core::task_supervisor::TaskSupervisor;
use otp_core::testing::{EventLog, await_exit};
use support::{Call, Cast, Info, Mutexed, Probe, ProbeArgs, Reply, WAIT, start_probe};
use tokio::sync::oneshot;
use tokio::time::Instant;

// OTP: gen_server_SUITE call, cast, info; Ex gen_server_test "start_link/2, call/2 and cast/2"
#[tokio::test]
async fn call_cast_and_info_reach_their_handlers() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    assert_eq!(server.call(Call::Echo(7)).await, Ok(Reply::Value(7)));
    server.cast(Cast::Log("c".into())).unwrap();
    server.send(Info::Log("i".into())).unwrap();
    log.wait_for("info(i)", WAIT).await;
    assert_eq!(log.events(), ["init(p)", "handled(c)", "info(i)"]);
}

// OTP: Ex gen_server_test (push :world, then pop returns :world)
#[tokio::test]
async fn casts_then_call_from_one_sender_are_handled_in_order() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    for i in 0..100 {
        server.cast(Cast::Log(i.to_string())).unwrap();
    }
    server.send(Info::Log("last".into())).unwrap();
    // The call is handled after everything this sender queued before it.
    assert_eq!(server.call(Call::Echo(0)).await, Ok(Reply::Value(0)));
    let expected: Vec<String> = std::iter::once("init(p)".to_string())
        .chain((0..100).map(|i| format!("handled({i})")))
        .chain(std::iter::once("info(last)".to_string()))
        .collect();
    assert_eq!(log.events(), expected);
}

// OTP: Ex gen_server.ex cast/2 doc; divergence D13 (the message comes back)
#[tokio::test]
async fn cast_and_send_to_a_stopped_server_give_the_message_back() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    server.stop(ExitReason::Normal, WAIT).await.unwrap();
    match server.cast(Cast::Log("late".into())) {
        Err(SendError::NoProc(Cast::Log(x))) => assert_eq!(x, "late"),
        _ => panic!("cast to a stopped server must return NoProc with the message"),
    }
    assert!(matches!(
        server.send(Info::Log("late".into())),
        Err(SendError::NoProc(Info::Log(_)))
    ));
}

// OTP: GS-05; Ex gen_server_test "call/3 exit messages" (noproc for a stopped pid)
#[tokio::test(start_paused = true)]
async fn call_to_a_stopped_server_fails_with_noproc_at_once() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    let old = server.clone();
    server.stop(ExitReason::Normal, WAIT).await.unwrap();
    let started = Instant::now();
    assert_eq!(
        old.call_timeout(Call::Echo(1), Duration::from_secs(5))
            .await,
        Err(CallError::NoProc)
    );
    // With the clock paused, any wait for the timeout would show as elapsed time.
    assert_eq!(started.elapsed(), Duration::ZERO);
}

// OTP: GS-06; gen_server_SUITE call ({delayed_answer,30} with timeout 1)
#[tokio::test(start_paused = true)]
async fn call_timeout_leaves_the_server_running() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    let result = server
        .call_timeout(
            Call::SlowEcho(1, Duration::from_millis(300)),
            Duration::from_millis(50),
        )
        .await;
    assert_eq!(result, Err(CallError::Timeout));
    assert!(server.is_alive());
    assert_eq!(server.call(Call::Echo(2)).await, Ok(Reply::Value(2)));
}

// OTP: GS-06; gen_server.erl call/3 doc ("late replies will not be received"); divergence D6
#[tokio::test(start_paused = true)]
async fn late_reply_after_timeout_never_reaches_the_next_call() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    let result = server
        .call_timeout(
            Call::SlowEcho(300, Duration::from_millis(300)),
            Duration::from_millis(50),
        )
        .await;
    assert_eq!(result, Err(CallError::Timeout));
    // The server replies to the abandoned call...
    log.wait_for("replied(300)", WAIT).await;
    // ...and the next call gets its own reply, not the stale one.
    assert_eq!(server.call(Call::Echo(7)).await, Ok(Reply::Value(7)));
    assert!(server.is_alive());
}

// OTP: Bad input: a zero timeout is rejected, not treated as "immediately"
#[tokio::test]
async fn zero_or_unrepresentable_call_timeouts_are_rejected() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    assert_eq!(
        server.call_timeout(Call::Echo(1), Duration::ZERO).await,
        Err(CallError::InvalidTimeout)
    );
    assert_eq!(
        server.call_timeout(Call::Echo(1), Duration::MAX).await,
        Err(CallError::InvalidTimeout)
    );
    assert_eq!(
        server.call_timeout(Call::Echo(1), Timeout::Infinity).await,
        Ok(Reply::Value(1))
    );
    // Rejected calls were never sent.
    assert_eq!(log.events(), ["init(p)"]);
}

// OTP: GS-07; gen_server_SUITE calling_self; Ex gen_server_test "call/3 exit messages"
#[tokio::test(start_paused = true)]
async fn a_server_calling_itself_fails_at_once_with_calling_self() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    let started = Instant::now();
    let reply = server.call(Call::Myself).await;
    assert_eq!(reply, Ok(Reply::Error(CallError::CallingSelf)));
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert!(server.is_alive());
}

// OTP: GS-08; gen_server.erl handle_call/3 doc ({noreply,…} plus reply/2)
#[tokio::test]
async fn deferred_reply_completes_the_call_when_released_by_another_caller() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    let waiting = tokio::spawn({
        let server = server.clone();
        async move { server.call(Call::Defer).await }
    });
    // The server keeps serving while the first call waits.
    tokio::time::timeout(WAIT, async {
        while !(server.call(Call::Release(42)).await == Ok(Reply::Ok) && waiting.is_finished()) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the deferred call was never released");
    assert_eq!(waiting.await.unwrap(), Ok(Reply::Value(42)));
}

// OTP: GS-08 (reply from another process): gen_server:reply/2 from a task
#[tokio::test]
async fn deferred_reply_handle_can_be_moved_to_a_task() {
    let log = EventLog::new();
    let tasks = TaskSupervisor::start().await.unwrap();
    let server = start_probe("p", &log).await;
    assert_eq!(
        server.call(Call::ReplyFromTask(9, tasks)).await,
        Ok(Reply::Value(9))
    );
}

// OTP: GS-08; gen_server_SUITE crash (stop_shutdown_reason replies, then exits)
#[tokio::test]
async fn stop_with_reply_delivers_the_reply_then_runs_terminate() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    let reply = server
        .call(Call::StopWithReply(ExitReason::shutdown_with("done"), 5))
        .await;
    assert_eq!(reply, Ok(Reply::Value(5)));
    assert_eq!(
        await_exit(&server, WAIT).await,
        ExitReason::shutdown_with("done")
    );
    assert_eq!(log.events(), ["init(p)", "terminate(p, shutdown: done)"]);
}

// OTP: GS-09 (a) and (b): stopped without replying
#[tokio::test]
async fn caller_gets_the_exit_reason_when_the_server_stops_without_replying() {
    for reason in [ExitReason::Normal, ExitReason::shutdown_with("x")] {
        let log = EventLog::new();
        let server = start_probe("p", &log).await;
        let result = server.call(Call::StopNoReply(reason.clone())).await;
        assert_eq!(result, Err(CallError::Exited(reason)));
    }
}

// OTP: GS-09 (c): the handler crashes
#[tokio::test]
async fn caller_gets_the_crash_reason_when_the_handler_panics_or_fails() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    let result = server.call(Call::Panic("boom")).await;
    assert_eq!(
        result,
        Err(CallError::Exited(ExitReason::Panic("boom".into())))
    );
    assert_eq!(
        await_exit(&server, WAIT).await,
        ExitReason::Panic("boom".into())
    );

    let server = start_probe("q", &log).await;
    let result = server.call(Call::Fail("bad input")).await;
    support::assert_same(
        result,
        Err(CallError::Exited(ExitReason::error("bad input"))),
    );
    // terminate ran with the crash reason (GS-10 b).
    assert!(
        log.events()
            .contains(&"terminate(q, error: bad input)".to_string())
    );
}

// OTP: GS-09 (d): the server is stopped from outside while the handler blocks
#[tokio::test]
async fn caller_gets_the_exit_reason_when_the_server_is_killed_mid_call() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    let pending = tokio::spawn({
        let server = server.clone();
        async move { server.call_timeout(Call::Block, Timeout::Infinity).await }
    });
    // Wait until the call is being handled: a later call would queue behind it.
    tokio::task::yield_now().await;
    tokio::time::timeout(WAIT, async {
        while log.events().is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the blocking call was never handled");
    let killed = otp_core::process::exit(server.pid(), ExitReason::Shutdown);
    assert!(killed);
    assert_eq!(
        pending.await.unwrap(),
        Err(CallError::Exited(ExitReason::Shutdown))
    );
    // A kill does not run terminate (GS-10 f).
    assert_eq!(log.events(), ["init(p)"]);
}

// OTP: rule 1 — a panic in one process never takes another down
#[tokio::test]
async fn a_crashing_server_does_not_affect_other_servers_or_the_caller() {
    let log = EventLog::new();
    let a = start_probe("a", &log).await;
    let b = start_probe("b", &log).await;
    a.cast(Cast::Panic("a fails")).unwrap();
    assert_eq!(
        await_exit(&a, WAIT).await,
        ExitReason::Panic("a fails".into())
    );
    assert_eq!(b.call(Call::Echo(3)).await, Ok(Reply::Value(3)));
}

// OTP: per-sender ordering under concurrency: each sender's messages stay in its own order
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_senders_messages_keep_their_order_with_concurrent_senders() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    let senders: Vec<_> = (0..4)
        .map(|s| {
            let server = server.clone();
            tokio::spawn(async move {
                for i in 0..200 {
                    server.cast(Cast::Log(format!("{s}-{i}"))).unwrap();
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    log.wait_until(|events| events.len() == 801, WAIT)
        .await
        .unwrap();
    for s in 0..4 {
        let prefix = format!("handled({s}-");
        let seen: Vec<u32> = log
            .events()
            .iter()
            .filter_map(|e| e.strip_prefix(&prefix))
            .map(|rest| rest.trim_end_matches(')').parse().unwrap())
            .collect();
        assert_eq!(seen, (0..200).collect::<Vec<_>>(), "sender {s}");
    }
}

// OTP: GS-09 — a call queued behind the crashing message fails with the crash reason
#[tokio::test]
async fn queued_calls_fail_with_the_exit_reason_when_the_server_crashes() {
    use futures::FutureExt;
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    let (release, hold) = oneshot::channel();
    server.cast(Cast::Pause(Mutexed(hold))).unwrap();
    server.cast(Cast::Panic("late crash")).unwrap();
    // Polling the call once queues it, behind the panic.
    let mut queued = Box::pin(server.call(Call::Echo(1)));
    assert!((&mut queued).now_or_never().is_none());
    release.send(()).unwrap();
    assert_eq!(
        queued.await,
        Err(CallError::Exited(ExitReason::Panic("late crash".into())))
    );
}

#[tokio::test]
async fn start_options_label_names_the_process_span() {
    let log = EventLog::new();
    let server = Probe::start_with(
        ProbeArgs::new("p", &log),
        otp_core::gen_server::StartOptions::new().label("probe"),
    )
    .await
    .unwrap();
    assert_eq!(server.call(Call::Echo(1)).await, Ok(Reply::Value(1)));
    assert!(format!("{server:?}").contains("probe"));
}

// Bad input: a call or stop with a finite timeout polled where no tokio runtime runs (here,
// futures' executor) is a typed error, and nothing is sent; it used to panic in tokio's timer
#[test]
fn a_timed_call_or_stop_outside_a_runtime_is_a_typed_error() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let log = EventLog::new();
    let server = runtime.block_on(start_probe("p", &log));
    assert_eq!(
        futures::executor::block_on(server.call(Call::Echo(1))),
        Err(CallError::NoRuntime)
    );
    assert_eq!(
        futures::executor::block_on(server.call_timeout(Call::Echo(1), WAIT)),
        Err(CallError::NoRuntime)
    );
    assert_eq!(
        futures::executor::block_on(server.stop(ExitReason::Normal, WAIT)),
        Err(otp_core::gen_server::StopError::NoRuntime)
    );
    // Nothing was sent, and an untimed call still works from anywhere.
    assert_eq!(
        futures::executor::block_on(server.call_timeout(Call::Echo(2), Timeout::Infinity)),
        Ok(Reply::Value(2))
    );
    assert_eq!(log.events(), ["init(p)"]);
    runtime
        .block_on(server.stop(ExitReason::Normal, WAIT))
        .unwrap();
}

// Call timeouts borrow timers from a pool per thread. A call that moves a pooled timer to an
// earlier deadline (a short timeout after a default one) still times out on time, by the
// paused clock
#[tokio::test(start_paused = true)]
async fn a_short_timeout_after_a_long_one_times_out_on_time() {
    let server = start_probe("p", &EventLog::new()).await;
    assert_eq!(server.call(Call::Echo(1)).await, Ok(Reply::Value(1)));
    let t0 = Instant::now();
    let timed_out = server
        .call_timeout(Call::Defer, Duration::from_millis(100))
        .await;
    assert_eq!(timed_out, Err(CallError::Timeout));
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(100) && waited <= Duration::from_millis(102),
        "{waited:?}"
    );
    // And a long one after the short one does not fire early.
    let t0 = Instant::now();
    let timed_out = server
        .call_timeout(Call::Defer, Duration::from_secs(2))
        .await;
    assert_eq!(timed_out, Err(CallError::Timeout));
    assert!(t0.elapsed() >= Duration::from_secs(2), "{:?}", t0.elapsed());
}

// A timer pooled by one runtime is never used by the next runtime on the same thread (it
// would be driven by a shut-down timer driver: tokio panics)
#[test]
fn calls_on_successive_runtimes_on_one_thread_each_time_out_by_their_own_clock() {
    for _ in 0..3 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let server = start_probe("p", &EventLog::new()).await;
            assert_eq!(server.call(Call::Echo(1)).await, Ok(Reply::Value(1)));
            let t0 = Instant::now();
            let timed_out = server
                .call_timeout(Call::Defer, Duration::from_millis(50))
                .await;
            assert_eq!(timed_out, Err(CallError::Timeout));
            assert!(t0.elapsed() >= Duration::from_millis(50));
        });
        drop(runtime);
    }
}

// One message at a time: while a callback awaits, the next messages wait for it, casts and
// calls alike (gen_server's receive loop handles one message to completion)
#[tokio::test(start_paused = true)]
async fn a_callback_that_awaits_holds_the_next_message_until_it_finishes() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    let (release, paused) = oneshot::channel();
    server.cast(Cast::Pause(Mutexed(paused))).unwrap();
    server.cast(Cast::Log("a".into())).unwrap();
    let mut call = std::pin::pin!(server.call(Call::Echo(1)));
    let waited = tokio::time::timeout(Duration::from_secs(1), &mut call).await;
    assert!(
        waited.is_err(),
        "the call was answered during another callback"
    );
    assert_eq!(log.events(), ["init(p)"]);
    release.send(()).unwrap();
    assert_eq!(call.await, Ok(Reply::Value(1)));
    assert_eq!(log.events(), ["init(p)", "handled(a)"]);
}

// Cancel safety: dropping a call future does not un-send its request; the server handles it
// and its reply is dropped, reaching no later call
#[tokio::test(start_paused = true)]
async fn a_dropped_call_is_still_handled_and_its_reply_dropped() {
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    let dropped = tokio::time::timeout(
        Duration::from_millis(10),
        server.call(Call::SlowEcho(5, Duration::from_millis(100))),
    )
    .await;
    assert!(dropped.is_err());
    log.wait_for("replied(5)", WAIT).await;
    assert_eq!(server.call(Call::Echo(3)).await, Ok(Reply::Value(3)));
}
