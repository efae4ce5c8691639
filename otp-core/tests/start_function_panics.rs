//! A start function that panics *before* returning its future (while it builds it) is that
//! child's start failure, as OTP's `catch apply(M, F, A)` makes it; never the crash of its
//! supervisor and so of every sibling. Static, dynamic and task supervisors, at the first start
//! and on restart.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use otp_core::ExitReason;
use otp_core::dynamic_supervisor::{
    DynamicStartError, DynamicSupervisor, DynamicSupervisorOptions,
};
use otp_core::gen_server::BoxError;
use otp_core::gen_server::{GenServer, StartError};
use otp_core::supervisor::{
    ChildSpec, ChildStatus, Restart, StartChildError, Strategy, SupFlags, Supervisor,
    SupervisorEvent, SupervisorStartError,
};
use otp_core::task_supervisor::{TaskOptions, TaskStartError, TaskSupervisor};
use otp_core::testing::{EventLog, assert_down};
use support::{Cast, Probe, ProbeArgs, WAIT, start_probe};

const PANIC: &str = "start function panicked";

fn panicked() -> StartError {
    StartError::InitFailed(ExitReason::Panic(PANIC.into()))
}

/// A child whose start function starts a probe for its first `ok_calls` calls, then panics
/// while building the start future.
fn panicking_child(id: &str, ok_calls: usize, log: &EventLog) -> ChildSpec {
    let calls = Arc::new(AtomicUsize::new(0));
    let (id_owned, log) = (id.to_string(), log.clone());
    ChildSpec::new(id, move || {
        if calls.fetch_add(1, Ordering::SeqCst) >= ok_calls {
            panic!("{PANIC}");
        }
        Probe::start(ProbeArgs::new(&id_owned, &log))
    })
}

fn flags() -> SupFlags {
    SupFlags::new(Strategy::OneForOne)
        .intensity(3, Duration::from_secs(5))
        .unwrap()
}

// OTP: supervisor.erl do_start_child: catch apply(M, F, A) → {error, Reason}
#[tokio::test]
async fn a_start_function_that_panics_building_its_future_fails_the_supervisor_start_cleanly() {
    let log = EventLog::new();
    let sibling = ChildSpec::new("sibling", {
        let log = log.clone();
        move || Probe::start(ProbeArgs::new("sibling", &log))
    });
    let started = Supervisor::start(flags(), vec![sibling, panicking_child("bad", 0, &log)]).await;
    match started {
        Err(SupervisorStartError::FailedToStartChild { id, error }) => {
            assert_eq!(id, "bad");
            assert_eq!(error, panicked());
        }
        other => panic!("expected FailedToStartChild, got {other:?}"),
    }
    // The sibling started first was stopped, as for any other start failure.
    log.wait_for("terminate(sibling, shutdown)", WAIT).await;
}

#[tokio::test]
async fn a_start_child_whose_function_panics_leaves_the_supervisor_and_siblings_running() {
    let log = EventLog::new();
    let sup = Supervisor::start(flags(), vec![]).await.unwrap();
    let sibling = start_probe("outside", &log).await;
    sup.start_child(ChildSpec::new("sibling", {
        let log = log.clone();
        move || Probe::start(ProbeArgs::new("sibling", &log))
    }))
    .await
    .unwrap();
    assert_eq!(
        sup.start_child(panicking_child("bad", 0, &log)).await,
        Err(StartChildError::Failed(panicked()))
    );
    assert!(sup.is_alive());
    assert!(sibling.is_alive());
    assert_eq!(sup.count_children().await.unwrap().active, 1);
}

// OTP: a failed restart is retried and counts toward intensity; the supervisor gives up with
// `shutdown`, it does not crash with the panic
#[tokio::test]
async fn a_restart_whose_function_panics_is_retried_until_the_supervisor_gives_up() {
    let log = EventLog::new();
    let sup = Supervisor::start(flags(), vec![panicking_child("bad", 1, &log)])
        .await
        .unwrap();
    let mut events = sup.subscribe();
    let down = sup.monitor();
    let children = sup.which_children().await.unwrap();
    let ChildStatus::Running(bad) = children[0].status else {
        panic!("the first start succeeded: {children:?}");
    };
    assert!(otp_core::process::exit(bad, ExitReason::error("crash")));
    assert_down(down, ExitReason::Shutdown, WAIT).await;
    let mut failed = 0;
    while let Ok(event) = tokio::time::timeout(WAIT, events.next()).await.unwrap() {
        match event {
            SupervisorEvent::ChildRestartFailed { reason, .. } => {
                assert!(reason.contains(PANIC), "{reason}");
                failed += 1;
            }
            SupervisorEvent::GaveUp { .. } => break,
            _ => {}
        }
    }
    assert!(failed >= 1, "the panicking restarts were reported");
}

#[tokio::test]
async fn a_dynamic_child_whose_function_panics_is_a_start_failure() {
    let log = EventLog::new();
    let sup = DynamicSupervisor::start(DynamicSupervisorOptions::default())
        .await
        .unwrap();
    let sibling = sup
        .start_child(ChildSpec::new("sibling", {
            let log = log.clone();
            move || Probe::start(ProbeArgs::new("sibling", &log))
        }))
        .await
        .unwrap();
    assert_eq!(
        sup.start_child(panicking_child("bad", 0, &log)).await,
        Err(DynamicStartError::Failed(panicked()))
    );
    assert!(sup.is_alive());
    assert!(otp_core::process::is_alive(sibling));
}

#[tokio::test]
async fn a_dynamic_restart_whose_function_panics_does_not_crash_the_supervisor() {
    let log = EventLog::new();
    let sup = DynamicSupervisor::start(DynamicSupervisorOptions::default())
        .await
        .unwrap();
    let down = sup.monitor();
    let bad = sup
        .start_child(panicking_child("bad", 1, &log))
        .await
        .unwrap();
    assert!(otp_core::process::exit(bad, ExitReason::error("crash")));
    // Intensity runs out on the failed restarts: a give-up, not a crash.
    assert_down(down, ExitReason::Shutdown, WAIT).await;
}

/// A task whose closure runs and fails for its first `ok_calls` calls, then panics while
/// building the next task.
fn panicking_task(
    ok_calls: usize,
) -> impl FnMut() -> std::future::Ready<Result<(), BoxError>> + Send + 'static {
    let mut calls = 0;
    move || {
        calls += 1;
        if calls > ok_calls {
            panic!("{PANIC}");
        }
        std::future::ready(Err("task failed".into()))
    }
}

// Elixir: Task.Supervisor is a DynamicSupervisor; its start is the same catch
#[tokio::test]
async fn a_task_whose_function_panics_is_a_start_failure_of_that_task() {
    let tasks = TaskSupervisor::start().await.unwrap();
    let log = EventLog::new();
    let server = start_probe("p", &log).await;
    let options = TaskOptions {
        restart: Restart::Permanent,
        ..TaskOptions::default()
    };
    assert_eq!(
        tasks.start_child_with(options, panicking_task(0)).await,
        Err(TaskStartError::Failed(ExitReason::Panic(PANIC.into())))
    );
    assert!(tasks.children().await.unwrap().is_empty());
    assert!(server.is_alive());
    server.cast(Cast::Log("still here".into())).unwrap();
    log.wait_for("handled(still here)", WAIT).await;
}

#[tokio::test]
async fn a_task_restart_whose_function_panics_is_retried_until_the_supervisor_gives_up() {
    let tasks = TaskSupervisor::start().await.unwrap();
    let down = otp_core::monitor::monitor(tasks.pid());
    let options = TaskOptions {
        restart: Restart::Permanent,
        ..TaskOptions::default()
    };
    tasks
        .start_child_with(options, panicking_task(1))
        .await
        .unwrap();
    assert_down(down, ExitReason::Shutdown, WAIT).await;
}
