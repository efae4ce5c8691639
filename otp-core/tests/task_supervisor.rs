//! Supervised one-off tasks (specification TASK-01..TASK-03).

mod support;

use std::time::Duration;

use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init, ServerRef};
use otp_core::supervisor::{Restart, Shutdown};
use otp_core::task_supervisor::{
    ChildNotFound, TaskError, TaskOptions, TaskStartError, TaskSupervisor, TaskSupervisorOptions,
};
use otp_core::testing::{EventLog, assert_down, await_down};
use otp_core::{ExitReason, Pid};
use support::WAIT;

// OTP: TASK-01; Ex task/supervisor_test "start_child/1" — temporary by default
#[tokio::test]
async fn a_crashing_task_is_not_restarted_and_harms_nobody() {
    let tasks = TaskSupervisor::start().await.unwrap();
    let log = EventLog::new();
    let writer = log.clone();
    let pid = tasks
        .start_child(async move {
            writer.push("ran");
            panic!("task boom");
        })
        .await
        .unwrap();
    let reason = await_down(pid, WAIT).await;
    // Either the Down came after the monitor was set (panic reason) or the task was already gone.
    assert!(reason == ExitReason::Panic("task boom".into()) || reason == ExitReason::NoProc);
    // The supervisor is alive, and no second incarnation ran.
    let children = tasks.children().await.unwrap();
    assert!(children.is_empty(), "{children:?}");
    assert_eq!(log.count("ran"), 1);
}

#[tokio::test]
async fn a_task_that_returns_an_error_exits_with_that_error() {
    let tasks = TaskSupervisor::start().await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let pid = tasks
        .start_child(async move {
            let _ = rx.await;
            Err::<(), BoxError>("step failed".into())
        })
        .await
        .unwrap();
    let down = otp_core::monitor::monitor(pid);
    tx.send(()).unwrap();
    assert_down(down, ExitReason::error("step failed"), WAIT).await;
}

// OTP: TASK-01; Ex task/supervisor_test "terminate_child/2"
#[tokio::test]
async fn terminate_child_stops_a_task_then_reports_not_found() {
    let tasks = TaskSupervisor::start().await.unwrap();
    let pid = tasks
        .start_child(async { std::future::pending::<Result<(), BoxError>>().await })
        .await
        .unwrap();
    assert_eq!(tasks.children().await.unwrap(), [pid]);
    let down = otp_core::monitor::monitor(pid);
    assert_eq!(tasks.terminate_child(pid).await, Ok(()));
    assert_down(down, ExitReason::Shutdown, WAIT).await;
    assert_eq!(tasks.terminate_child(pid).await, Err(ChildNotFound));
    assert!(tasks.children().await.unwrap().is_empty());
}

// OTP: TASK-01: a task that finishes normally disappears from the list
#[tokio::test]
async fn a_finished_task_leaves_the_children_list() {
    let tasks = TaskSupervisor::start().await.unwrap();
    let handle = tasks.async_nolink(async { 1 + 1 }).await.unwrap();
    let pid = handle.pid();
    assert_eq!(handle.await, Ok(2));
    // The supervisor learns of the exit through its monitor; a call after that sees it gone.
    await_down(pid, WAIT).await;
    let children = tokio::time::timeout(WAIT, async {
        loop {
            let children = tasks.children().await.unwrap();
            if !children.contains(&pid) {
                return children;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the finished task stayed in the children list");
    assert!(children.is_empty());
}

// OTP: TASK-02; Ex task/supervisor_test "start_child/1 with custom restart"
#[tokio::test]
async fn a_permanent_task_is_restarted_even_after_shutdown_and_a_transient_one_is_not() {
    for (restart, expect_restart) in [(Restart::Permanent, true), (Restart::Transient, false)] {
        let tasks = TaskSupervisor::start().await.unwrap();
        let log = EventLog::new();
        let writer = log.clone();
        let options = TaskOptions {
            restart,
            ..TaskOptions::default()
        };
        let first = tasks
            .start_child_with(options, move || {
                let writer = writer.clone();
                async move {
                    writer.push("ready");
                    std::future::pending::<Result<(), BoxError>>().await
                }
            })
            .await
            .unwrap();
        log.wait_for("ready", WAIT).await;
        let down = otp_core::monitor::monitor(first);
        assert!(otp_core::process::exit(first, ExitReason::Shutdown));
        assert_down(down, ExitReason::Shutdown, WAIT).await;
        if expect_restart {
            log.wait_until(|events| events.len() == 2, WAIT)
                .await
                .unwrap();
        } else {
            // A transient task that exited with shutdown is forgotten, not restarted.
            let children = tasks.children().await.unwrap();
            assert!(children.is_empty(), "{restart:?}: {children:?}");
            assert_eq!(log.count("ready"), 1);
        }
    }
}

// OTP: TASK-02 + intensity: a transient task that keeps crashing exhausts the limit
#[tokio::test]
async fn a_crash_looping_task_makes_the_task_supervisor_give_up() {
    let tasks = TaskSupervisor::start_with(TaskSupervisorOptions {
        max_restarts: 2,
        max_seconds: Duration::from_secs(60),
    })
    .await
    .unwrap();
    let supervisor_down = otp_core::monitor::monitor(tasks.pid());
    let log = EventLog::new();
    let writer = log.clone();
    let survivor = tasks
        .start_child(async { std::future::pending::<Result<(), BoxError>>().await })
        .await
        .unwrap();
    let survivor_down = otp_core::monitor::monitor(survivor);
    let options = TaskOptions {
        restart: Restart::Transient,
        ..TaskOptions::default()
    };
    tasks
        .start_child_with(options, move || {
            let writer = writer.clone();
            async move {
                writer.push("crash");
                Err::<(), BoxError>("always".into())
            }
        })
        .await
        .unwrap();
    assert_down(supervisor_down, ExitReason::Shutdown, WAIT).await;
    // The first run plus two restarts; the third restart is one too many.
    assert_eq!(log.count("crash"), 3);
    // Giving up shuts the other tasks down too.
    assert_down(survivor_down, ExitReason::Shutdown, WAIT).await;
}

/// A caller process that starts a long task and then crashes.
struct Starter;

impl GenServer for Starter {
    type Args = ();
    type Call = TaskSupervisor;
    type Reply = Pid;
    type Cast = ();
    type Info = ();
    type Continue = ();

    async fn init(_: (), _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        Ok(Init::Ready(Starter))
    }

    async fn handle_call(
        &mut self,
        tasks: TaskSupervisor,
        _: Caller<'_, Pid>,
        ctx: &mut Context<Self>,
    ) -> Result<CallResult<Pid>, BoxError> {
        let pid = tasks
            .start_child(async { std::future::pending::<Result<(), BoxError>>().await })
            .await?;
        ctx.stop(ExitReason::error("caller crashed"));
        Ok(CallResult::Reply(pid))
    }
}

// OTP: TASK-03 (1); Ex task/supervisor_test "start_child/1" (refute pid in links)
#[tokio::test]
async fn a_task_outlives_the_caller_that_started_it() {
    let tasks = TaskSupervisor::start().await.unwrap();
    let starter = Starter::start(()).await.unwrap();
    let task = starter.call(tasks.clone()).await.unwrap();
    otp_core::testing::await_exit(&starter, WAIT).await;
    assert!(otp_core::process::is_alive(task));
    assert_eq!(tasks.children().await.unwrap(), [task]);
}

/// A server that starts tasks and gets their outcome in handle_info.
struct Collector {
    log: EventLog,
}

impl GenServer for Collector {
    type Args = EventLog;
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = Result<u32, ExitReason>;
    type Continue = ();

    async fn init(log: EventLog, _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        Ok(Init::Ready(Collector { log }))
    }

    async fn handle_info(
        &mut self,
        outcome: Self::Info,
        _: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        match outcome {
            Ok(value) => self.log.push(format!("ok({value})")),
            Err(reason) => self.log.push(format!("failed({reason})")),
        }
        Ok(())
    }
}

// OTP: TASK-03 (2); Ex task/supervisor_test "async_nolink/1"
#[tokio::test]
async fn async_nolink_delivers_the_result_or_the_crash_to_the_server() {
    let tasks = TaskSupervisor::start().await.unwrap();
    let log = EventLog::new();
    let collector: ServerRef<Collector> = Collector::start(log.clone()).await.unwrap();
    tasks
        .async_nolink_to(&collector, async { 42u32 }, |outcome| outcome)
        .await
        .unwrap();
    log.wait_for("ok(42)", WAIT).await;
    tasks
        .async_nolink_to(
            &collector,
            async { panic!("task crashed") },
            |outcome: Result<u32, ExitReason>| outcome,
        )
        .await
        .unwrap();
    log.wait_for("failed(panic: task crashed)", WAIT).await;
    // The collector kept running through the task's crash.
    assert!(collector.is_alive());
    assert_eq!(log.events().len(), 2);
}

#[tokio::test]
async fn awaiting_a_task_gives_its_value_or_its_exit_reason() {
    let tasks = TaskSupervisor::start().await.unwrap();
    assert_eq!(
        tasks.async_nolink(async { "done" }).await.unwrap().await,
        Ok("done")
    );
    let crashed = tasks.async_nolink(async { panic!("oops") }).await.unwrap();
    assert_eq!(
        crashed.await,
        Err::<(), _>(TaskError::Exited(ExitReason::Panic("oops".into())))
    );
    let stopped = tasks
        .async_nolink(std::future::pending::<u8>())
        .await
        .unwrap();
    tasks.terminate_child(stopped.pid()).await.unwrap();
    assert_eq!(stopped.await, Err(TaskError::Exited(ExitReason::Shutdown)));
}

// OTP: TASK-03 (3); Ex task/supervisor_test "start_child/1 with custom shutdown"
#[tokio::test]
async fn stopping_the_task_supervisor_stops_tasks_by_their_policy() {
    let tasks = TaskSupervisor::start().await.unwrap();
    let brutal = tasks
        .start_child_with(
            TaskOptions {
                shutdown: Shutdown::BrutalKill,
                ..TaskOptions::default()
            },
            || async { std::future::pending::<Result<(), BoxError>>().await },
        )
        .await
        .unwrap();
    let graceful = tasks
        .start_child(async { std::future::pending::<Result<(), BoxError>>().await })
        .await
        .unwrap();
    let brutal_down = otp_core::monitor::monitor(brutal);
    let graceful_down = otp_core::monitor::monitor(graceful);
    tasks.stop(WAIT).await.unwrap();
    assert_down(brutal_down, ExitReason::Killed, WAIT).await;
    assert_down(graceful_down, ExitReason::Shutdown, WAIT).await;
    // A stopped task supervisor refuses new tasks with a typed error.
    assert_eq!(
        tasks.start_child(async { Ok(()) }).await,
        Err(TaskStartError::NoProc)
    );
}

#[tokio::test]
async fn killing_the_task_supervisor_kills_its_tasks() {
    let tasks = TaskSupervisor::start().await.unwrap();
    let task = tasks
        .start_child(async { std::future::pending::<Result<(), BoxError>>().await })
        .await
        .unwrap();
    let down = otp_core::monitor::monitor(task);
    assert!(otp_core::process::exit(tasks.pid(), ExitReason::Killed));
    assert_down(down, ExitReason::Killed, WAIT).await;
}

#[tokio::test]
async fn a_zero_shutdown_timeout_is_rejected() {
    let tasks = TaskSupervisor::start().await.unwrap();
    let result = tasks
        .start_child_with(
            TaskOptions {
                shutdown: Shutdown::Timeout(Duration::ZERO),
                ..TaskOptions::default()
            },
            || async { Ok(()) },
        )
        .await;
    assert_eq!(result, Err(TaskStartError::InvalidShutdown));
    assert!(tasks.children().await.unwrap().is_empty());
}

// Regression: a task stopped before its first poll must still exit (and report it).
#[tokio::test]
async fn a_task_stopped_before_it_first_runs_still_exits() {
    let tasks = TaskSupervisor::start().await.unwrap();
    for _ in 0..20 {
        let pid = tasks
            .start_child(async { std::future::pending::<Result<(), BoxError>>().await })
            .await
            .unwrap();
        // No yield in between on this single-threaded runtime: the task has not run yet.
        let down = otp_core::monitor::monitor(pid);
        assert_eq!(tasks.terminate_child(pid).await, Ok(()));
        assert_down(down, ExitReason::Shutdown, WAIT).await;
    }
}

// Regression: a transient task that finishes before the supervisor monitors it is not restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_task_that_exits_cleanly_at_once_is_never_restarted() {
    let tasks = TaskSupervisor::start().await.unwrap();
    let log = EventLog::new();
    for _ in 0..50 {
        let writer = log.clone();
        tasks
            .start_child_with(
                TaskOptions {
                    restart: Restart::Transient,
                    ..TaskOptions::default()
                },
                move || {
                    writer.push("ran");
                    async { Ok(()) }
                },
            )
            .await
            .unwrap();
    }
    // Wait until every task has been seen to exit, then check none ran twice.
    tokio::time::timeout(WAIT, async {
        while !tasks.children().await.unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("tasks were still running");
    assert_eq!(log.count("ran"), 50);
    assert!(otp_core::process::is_alive(tasks.pid()));
}

// Regression: a panicking result mapper is contained; it becomes the task's exit reason.
#[tokio::test]
async fn a_panicking_result_mapper_becomes_the_tasks_exit_reason() {
    let tasks = TaskSupervisor::start().await.unwrap();
    let log = EventLog::new();
    let collector: ServerRef<Collector> = Collector::start(log.clone()).await.unwrap();
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let pid = tasks
        .async_nolink_to(
            &collector,
            async move {
                let _ = wait.await;
                1u32
            },
            |_: Result<u32, ExitReason>| -> Result<u32, ExitReason> { panic!("mapper broke") },
        )
        .await
        .unwrap();
    let down = otp_core::monitor::monitor(pid);
    go.send(()).unwrap();
    assert_down(down, ExitReason::Panic("mapper broke".into()), WAIT).await;
    assert!(collector.is_alive());
    assert!(otp_core::process::is_alive(tasks.pid()));
}

// "No lookup returns a process once any sign of its exit can be observed": a task's result is
// such a sign, so it is delivered only once the task is gone from the process table and its
// registry keys are released (it used to be sent before the exit fan-out)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_result_arrives_only_once_the_task_has_exited_and_released_its_names() {
    use otp_core::registry::Registry;
    let tasks = TaskSupervisor::start().await.unwrap();
    let names: Registry<u32, ()> = Registry::start().await.unwrap();
    for n in 0..200 {
        let registry = names.clone();
        let handle = tasks
            .async_nolink(async move {
                registry.register(n, ()).unwrap();
                otp_core::process::current().unwrap()
            })
            .await
            .unwrap();
        let pid = tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
        assert!(
            !otp_core::process::is_alive(pid),
            "task {n} alive after its result"
        );
        assert!(
            names.lookup(&n).is_none(),
            "task {n}'s key held after its result"
        );
    }

    let log = EventLog::new();
    let checker = ExitChecker::start((log.clone(), names.clone()))
        .await
        .unwrap();
    for n in 1000..1050 {
        let registry = names.clone();
        tasks
            .async_nolink_to(
                &checker,
                async move {
                    registry.register(n, ()).unwrap();
                    otp_core::process::current().unwrap()
                },
                move |outcome: Result<Pid, ExitReason>| (n, outcome),
            )
            .await
            .unwrap();
    }
    log.wait_until(|events| events.len() == 50, WAIT)
        .await
        .unwrap();
    assert!(
        log.events().iter().all(|event| event == "gone"),
        "{:?}",
        log.events()
    );
}

/// Logs whether the task whose result it receives is gone: out of the process table and its
/// registry key released.
struct ExitChecker {
    log: EventLog,
    names: otp_core::registry::Registry<u32, ()>,
}

impl GenServer for ExitChecker {
    type Args = (EventLog, otp_core::registry::Registry<u32, ()>);
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = (u32, Result<Pid, ExitReason>);
    type Continue = ();

    async fn init((log, names): Self::Args, _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        Ok(Init::Ready(ExitChecker { log, names }))
    }

    async fn handle_info(
        &mut self,
        (key, outcome): Self::Info,
        _: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        let pid = outcome.map_err(|reason| reason.to_string())?;
        let seen = otp_core::process::is_alive(pid) || self.names.lookup(&key).is_some();
        self.log.push(if seen { "still visible" } else { "gone" });
        Ok(())
    }
}

// A TaskSupervisor runs on the same restart engine as the other supervisors: the same events
// (started, exited, restarted with the old pid), and a failed restart is retried through its
// mailbox. A task waiting for its retry is known by the pid that exited: terminate_child with
// it ends the retries, as for a dynamic supervisor's child
#[tokio::test]
async fn a_task_supervisor_reports_restarts_and_a_restarting_task_can_be_terminated() {
    use otp_core::supervisor::SupervisorEvent;
    let tasks = TaskSupervisor::start_with(TaskSupervisorOptions {
        max_restarts: 1_000,
        max_seconds: Duration::from_secs(3600),
    })
    .await
    .unwrap();
    let mut events = tasks.subscribe();
    let (crash, crashed) = tokio::sync::oneshot::channel::<()>();
    let mut crashed = Some(crashed);
    let starts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = starts.clone();
    let first = tasks
        .start_child_with(
            TaskOptions {
                restart: Restart::Permanent,
                ..TaskOptions::default()
            },
            move || {
                let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                // The first incarnation crashes on request; the second starts and exits at
                // once; every later start fails.
                assert!(n <= 2, "start {n} fails");
                let crashed = crashed.take();
                async move {
                    if let Some(crashed) = crashed {
                        let _ = crashed.await;
                        return Err::<(), BoxError>("crash".into());
                    }
                    Ok(())
                }
            },
        )
        .await
        .unwrap();
    let started = support::next_event(&mut events, "child_started", |e| match e {
        SupervisorEvent::ChildStarted { pid, .. } => Some(pid),
        _ => None,
    })
    .await;
    assert_eq!(started, first);
    crash.send(()).unwrap();
    let (exited, reason) = support::next_event(&mut events, "child_exited", |e| match e {
        SupervisorEvent::ChildExited { pid, reason, .. } => Some((pid, reason)),
        _ => None,
    })
    .await;
    assert_eq!(
        (exited, reason.to_string()),
        (first, "error: crash".to_string())
    );
    let (old, second) = support::next_event(&mut events, "child_restarted", |e| match e {
        SupervisorEvent::ChildRestarted { old_pid, pid, .. } => Some((old_pid, pid)),
        _ => None,
    })
    .await;
    assert_eq!(old, Some(first));
    // The second incarnation exits normally; a permanent task is restarted, and that fails.
    support::next_event(&mut events, "child_restart_failed", |e| match e {
        SupervisorEvent::ChildRestartFailed { .. } => Some(()),
        _ => None,
    })
    .await;
    assert!(tasks.children().await.unwrap().is_empty());
    assert_eq!(tasks.terminate_child(second).await, Ok(()));
    assert_eq!(tasks.terminate_child(second).await, Err(ChildNotFound));
    // No retry is left: two round trips later, no new attempt was made.
    let attempts = starts.load(std::sync::atomic::Ordering::SeqCst);
    tasks.children().await.unwrap();
    tasks.children().await.unwrap();
    assert_eq!(starts.load(std::sync::atomic::Ordering::SeqCst), attempts);
    assert!(tasks.monitor().try_down().is_none());
    tasks.stop(WAIT).await.unwrap();
}
