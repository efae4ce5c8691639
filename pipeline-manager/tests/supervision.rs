//! Real work under supervision: cancel, timeout and shutdown kill whole process trees; failing
//! steps, retries, crash isolation, the cleaner, typed errors for unknown ids.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    WAIT, assert_none_marked, manager, manager_with, marked, next_update, processes_marked, shell,
    wait_for_file,
};
use otp_core::ExitReason;
use pipeline_manager::execution::StepState;
use pipeline_manager::{
    ExecutionId, PipelineError, PipelineSpec, Status, StepAction, StepExit, StepSpec,
};

/// A step that starts a background grandchild, says it is ready, and waits forever. Run it
/// `marked`, to find its processes.
const TREE: &str = "sleep 300 & echo ready > ready; wait";

/// Waits until the worker has recorded the signal that ended its step, and returns the status.
async fn ended_by_signal(
    manager: &pipeline_manager::PipelineManager,
    id: &ExecutionId,
) -> pipeline_manager::ExecutionStatus {
    let mut updates = manager.subscribe();
    let status = manager.status(id).await.unwrap();
    if status.ended_by_signal.is_some() {
        return status;
    }
    (*next_update(&mut updates, id, |status| status.ended_by_signal.is_some()).await).clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_the_step_and_its_grandchildren() {
    let mark = common::mark("cancel_kills_the_step_and_its_grandchildren");
    let manager = manager("cancel-tree").await;
    let id = manager
        .run_pipeline(marked(shell("tree", &[("tree", TREE)]), &mark))
        .await
        .unwrap();
    let dir = manager.status(&id).await.unwrap().workdir;
    wait_for_file(&dir, "ready").await;
    assert!(!processes_marked(&mark).is_empty());
    manager.cancel(&id).await.unwrap();
    let status = ended_by_signal(&manager, &id).await;
    assert_eq!(status.status, Status::Cancelled);
    assert_eq!(
        status.ended_by_signal,
        Some(15),
        "SIGTERM ends a cooperative step"
    );
    assert_none_marked(&mark).await;
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let mark = common::mark("a_step_that_ignores_sigterm_is_killed_after_the_grace_period");
    let manager = manager("cancel-stubborn").await;
    let stubborn = "trap '' TERM; echo ready > ready; while true; do sleep 1; done";
    let spec = marked(shell("stubborn", &[("stubborn", stubborn)]), &mark);
    let id = manager.run_pipeline(spec).await.unwrap();
    let dir = manager.status(&id).await.unwrap().workdir;
    wait_for_file(&dir, "ready").await;
    assert!(!processes_marked(&mark).is_empty());
    manager.cancel(&id).await.unwrap();
    let status = ended_by_signal(&manager, &id).await;
    assert_eq!(
        status.ended_by_signal,
        Some(9),
        "SIGKILL after the grace period"
    );
    assert_none_marked(&mark).await;
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_execution_timeout_counts_from_execute_and_kills_the_step() {
    let mark = common::mark("the_execution_timeout_counts_from_execute_and_kills_the_step");
    let manager = manager("timeout").await;
    let spec = common::edited(marked(shell("slow", &[("tree", TREE)]), &mark), |draft| {
        draft.timeout = Duration::from_millis(700)
    });
    let id = manager.start_execution(spec).await.unwrap();
    // Seed D6: a pending execution does not time out, however long it waits.
    let pending = manager.wait(&id, Duration::from_millis(900)).await;
    assert_eq!(pending.unwrap_err(), PipelineError::WaitTimeout(id.clone()));
    manager.execute(&id).await.unwrap();
    let dir = manager.status(&id).await.unwrap().workdir;
    wait_for_file(&dir, "ready").await;
    assert!(!processes_marked(&mark).is_empty());
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::TimedOut);
    assert!(status.error.as_deref().unwrap().contains("timed out"));
    assert_none_marked(&mark).await;
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_timeout_fails_the_step() {
    let manager = manager("step-timeout").await;
    let mut step = StepSpec::new("slow", StepAction::Run("sleep 300".into()));
    step.timeout = Some(Duration::from_millis(300));
    let id = manager
        .run_pipeline(PipelineSpec::new("p", vec![step]).unwrap())
        .await
        .unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Failed);
    assert!(
        status
            .error
            .as_deref()
            .unwrap()
            .contains("timed out after 300ms"),
        "{:?}",
        status.error
    );
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_the_manager_down_leaves_no_process_behind() {
    let mark = common::mark("shutting_the_manager_down_leaves_no_process_behind");
    let manager = manager("shutdown").await;
    let id = manager
        .run_pipeline(marked(shell("tree", &[("tree", TREE)]), &mark))
        .await
        .unwrap();
    let dir = manager.status(&id).await.unwrap().workdir;
    wait_for_file(&dir, "ready").await;
    assert!(!processes_marked(&mark).is_empty());
    manager.shutdown().await.unwrap();
    assert_none_marked(&mark).await;
    assert!(matches!(
        manager.status(&id).await,
        Err(PipelineError::Unavailable(_) | PipelineError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_fails_the_execution_with_its_exit_status() {
    let manager = manager("failing").await;
    let id = manager
        .run_pipeline(shell(
            "p",
            &[
                ("ok", "echo fine"),
                ("bad", "echo oops >&2; exit 3"),
                ("never", "true"),
            ],
        ))
        .await
        .unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Failed);
    assert_eq!(
        status.error.as_deref(),
        Some("step \"bad\" failed: exit status 3")
    );
    assert_eq!(status.steps[1].exit, Some(StepExit::Code(3)));
    assert_eq!(status.steps[1].output_tail, ["oops"]);
    assert_eq!(status.steps[2].state, StepState::Skipped);
    assert_eq!(status.steps[0].output_tail, ["fine"]);
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_program_fails_the_step_with_a_clear_error() {
    let manager = manager("missing").await;
    let step = StepSpec::new(
        "ghost",
        StepAction::Command(vec!["/nonexistent/program".into()]),
    );
    let id = manager
        .run_pipeline(PipelineSpec::new("p", vec![step]).unwrap())
        .await
        .unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Failed);
    // The error names the program (it used to say only "No such file or directory").
    match &status.steps[0].exit {
        Some(StepExit::Error(message)) => assert!(
            message.starts_with("could not run \"/nonexistent/program\": "),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attempt_is_retried_after_its_backoff() {
    let manager = manager("retry").await;
    let mut step = StepSpec::new(
        "flaky",
        StepAction::Run("test -f marker || { touch marker; exit 1; }".into()),
    );
    step.retries = 2;
    step.retry_backoff = Duration::from_millis(50);
    let id = manager
        .run_pipeline(PipelineSpec::new("p", vec![step]).unwrap())
        .await
        .unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Completed);
    assert_eq!(status.steps[0].attempts, 2);

    let mut always = StepSpec::new("always", StepAction::Run("exit 1".into()));
    always.retries = 2;
    always.retry_backoff = Duration::from_millis(10);
    let id = manager
        .run_pipeline(PipelineSpec::new("p", vec![always]).unwrap())
        .await
        .unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Failed);
    assert_eq!(status.steps[0].attempts, 3);
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_worker_crashes_never_take_the_other_executions_down() {
    // Seed defect D12: the fourth crash within 5 s wiped every execution.
    let manager = manager("isolation").await;
    let bystander = manager
        .start_execution(shell("bystander", &[("one", "true")]))
        .await
        .unwrap();
    for _ in 0..10 {
        let id = manager
            .start_execution(shell("victim", &[("one", "true")]))
            .await
            .unwrap();
        let worker = manager.worker_pid(&id).unwrap();
        let down = otp_core::monitor::monitor(worker);
        otp_core::process::exit(worker, ExitReason::Killed);
        down.await;
    }
    let status = manager.status(&bystander).await.unwrap();
    assert_eq!(status.status, Status::Pending);
    assert!(!status.restarted);
    manager.shutdown().await.unwrap();
}

// `run_pipeline` executes in the worker right after its start; only that first incarnation
// does: a restarted worker comes back pending, as with `start_execution` (seed test 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_pipeline_worker_restarted_after_a_crash_comes_back_pending() {
    let manager = manager("rerun").await;
    let mut updates = manager.subscribe();
    let id = manager
        .run_pipeline(shell("p", &[("long", "sleep 300")]))
        .await
        .unwrap();
    next_update(&mut updates, &id, |s| s.status == Status::Running).await;
    let worker = manager.worker_pid(&id).unwrap();
    let down = otp_core::monitor::monitor(worker);
    otp_core::process::exit(worker, ExitReason::Killed);
    down.await;
    next_update(&mut updates, &id, |s| s.restarted).await;
    // A call is handled after anything the worker did on its own at start.
    let status = manager.status(&id).await.unwrap();
    assert_eq!(status.status, Status::Pending);
    assert!(status.restarted);
    assert_eq!(status.steps[0].attempts, 0);
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_are_not_found_errors() {
    let manager = manager("unknown").await;
    let nobody = ExecutionId::from("exec-nobody");
    assert_eq!(
        manager.status(&nobody).await.unwrap_err(),
        PipelineError::NotFound(nobody.clone())
    );
    assert_eq!(
        manager.execute(&nobody).await.unwrap_err(),
        PipelineError::NotFound(nobody.clone())
    );
    assert_eq!(
        manager.cancel(&nobody).await.unwrap_err(),
        PipelineError::NotFound(nobody.clone())
    );
    assert_eq!(
        manager.wait(&nobody, WAIT).await.unwrap_err(),
        PipelineError::NotFound(nobody.clone())
    );
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_and_cancel_in_the_wrong_state_are_ignored() {
    let manager = manager("ignored").await;
    let id = manager
        .start_execution(shell("p", &[("one", "true")]))
        .await
        .unwrap();
    manager.cancel(&id).await.unwrap();
    assert_eq!(manager.status(&id).await.unwrap().status, Status::Pending);
    manager.execute(&id).await.unwrap();
    assert_eq!(
        manager.wait(&id, WAIT).await.unwrap().status,
        Status::Completed
    );
    manager.execute(&id).await.unwrap();
    manager.cancel(&id).await.unwrap();
    assert_eq!(manager.status(&id).await.unwrap().status, Status::Completed);
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cleaner_removes_finished_executions_beyond_its_limits() {
    let manager = manager_with("cleaner", |config| config.cleaner.max_finished = 1).await;
    let live = manager
        .start_execution(shell("live", &[("one", "true")]))
        .await
        .unwrap();
    let mut finished = Vec::new();
    for _ in 0..3 {
        let id = manager
            .run_pipeline(shell("done", &[("one", "true")]))
            .await
            .unwrap();
        manager.wait(&id, WAIT).await.unwrap();
        finished.push(id);
    }
    assert_eq!(manager.clean_now().await.unwrap(), 2);
    let left: Vec<_> = manager
        .list_executions(None)
        .iter()
        .map(|s| s.execution_id.clone())
        .collect();
    assert!(left.contains(&live), "live executions are never removed");
    assert!(
        left.contains(&finished[2]),
        "the newest finished one is kept"
    );
    assert_eq!(left.len(), 2);
    assert_eq!(
        manager.status(&finished[0]).await.unwrap_err(),
        PipelineError::NotFound(finished[0].clone())
    );

    // max_age: everything finished goes once it is older than the limit.
    let manager2 = manager_with("cleaner-age", |config| {
        config.cleaner.max_age = Duration::from_millis(1)
    })
    .await;
    let id = manager2
        .run_pipeline(shell("done", &[("one", "true")]))
        .await
        .unwrap();
    manager2.wait(&id, WAIT).await.unwrap();
    let aged = tokio::time::timeout(WAIT, async {
        loop {
            if manager2.clean_now().await.unwrap() == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(aged.is_ok());
    manager.shutdown().await.unwrap();
    manager2.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_execution_limit_counts_live_executions_only() {
    // Seed D13: finished executions counted against the limit.
    let manager = manager_with("limit", |config| config.max_live_executions = Some(2)).await;
    let a = manager
        .run_pipeline(shell("p", &[("one", "true")]))
        .await
        .unwrap();
    manager.wait(&a, WAIT).await.unwrap();
    let _b = manager
        .start_execution(shell("p", &[("one", "true")]))
        .await
        .unwrap();
    let _c = manager
        .start_execution(shell("p", &[("one", "true")]))
        .await
        .unwrap();
    assert_eq!(
        manager
            .start_execution(shell("p", &[("one", "true")]))
            .await
            .unwrap_err(),
        PipelineError::TooManyExecutions(2)
    );
    manager.shutdown().await.unwrap();
}

// The limit used to be a check in the client: 4 concurrent starts at limit 1 were all accepted
// most of the time. Admission is now one decision per start inside the worker supervisor
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_execution_limit_is_exact_under_concurrent_starts() {
    let manager = manager_with("limit-race", |config| config.max_live_executions = Some(1)).await;
    for round in 0..20 {
        let spec = Arc::new(shell("p", &[("one", "true")]));
        let start = || manager.start_execution(spec.clone());
        let results = futures::future::join_all([start(), start(), start(), start()]).await;
        let admitted: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(admitted.len(), 1, "round {round}: {results:?}");
        for refused in results.iter().filter(|r| r.is_err()) {
            assert_eq!(refused, &Err(PipelineError::TooManyExecutions(1)));
        }
        // Finish it, so the next round starts from no live execution.
        let id = admitted[0].clone();
        manager.execute(&id).await.unwrap();
        manager.wait(&id, WAIT).await.unwrap();
    }
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_are_collected_when_an_execution_completes() {
    let manager = manager("artifacts").await;
    let mut step = StepSpec::new("make", StepAction::Run("printf hello > out.txt".into()));
    step.artifacts = vec!["out.txt".into(), "absent.txt".into()];
    let id = manager
        .run_pipeline(PipelineSpec::new("p", vec![step]).unwrap())
        .await
        .unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.artifacts[0].bytes, Some(5));
    assert_eq!(status.artifacts[1].bytes, None);
    manager.shutdown().await.unwrap();
}

/// A buggy plug-in: building the step's future blocks the worker's thread until released.
struct BlockingExecutor {
    gate: std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
    entered: std::sync::Arc<tokio::sync::Notify>,
}

impl pipeline_manager::step_runner::StepExecutor for BlockingExecutor {
    fn run(
        &self,
        step: &StepSpec,
        run: pipeline_manager::step_runner::StepRun,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = pipeline_manager::step_runner::StepOutcome> + Send>,
    > {
        if step.name == "stuck" {
            self.entered.notify_one();
            let (lock, released) = &*self.gate;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = released.wait(open).unwrap();
            }
        }
        pipeline_manager::step_runner::NoopExecutor.run(step, run)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_worker_does_not_stall_listing() {
    // Seed defect D8: listing called every worker in turn and stalled 5 s on a stuck one.
    let gate = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let entered = std::sync::Arc::new(tokio::sync::Notify::new());
    let executor = BlockingExecutor {
        gate: gate.clone(),
        entered: entered.clone(),
    };
    let manager = manager_with("stuck", |config| {
        config.executor = std::sync::Arc::new(executor)
    })
    .await;
    let others: Vec<_> = futures::future::join_all(
        (0..3).map(|_| manager.start_execution(shell("other", &[("one", "true")]))),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    let stuck = manager
        .start_execution(shell("stuck", &[("stuck", "true")]))
        .await
        .unwrap();
    // Release the worker whatever happens below, so the runtime can always shut down.
    struct Release(std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);
    impl Drop for Release {
        fn drop(&mut self) {
            *self.0.0.lock().unwrap() = true;
            self.0.1.notify_all();
        }
    }
    let release = Release(gate.clone());
    manager.execute(&stuck).await.unwrap();
    // Only once the worker is really stuck inside its handler.
    tokio::time::timeout(WAIT, entered.notified())
        .await
        .expect("the worker reached the stuck step");
    let listed = tokio::time::timeout(Duration::from_secs(1), async {
        manager.list_executions(None)
    })
    .await
    .expect("listing returned while a worker is stuck");
    assert_eq!(listed.len(), 4);
    for id in &others {
        assert!(listed.iter().any(|s| &s.execution_id == id));
    }
    drop(release);
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_worker_mid_step_kills_its_step_processes() {
    let mark = common::mark("killing_a_worker_mid_step_kills_its_step_processes");
    let manager = manager("kill-worker").await;
    let id = manager
        .run_pipeline(marked(shell("tree", &[("tree", TREE)]), &mark))
        .await
        .unwrap();
    let dir = manager.status(&id).await.unwrap().workdir;
    wait_for_file(&dir, "ready").await;
    assert!(!processes_marked(&mark).is_empty());
    let worker = manager.worker_pid(&id).unwrap();
    otp_core::process::exit(worker, ExitReason::Killed);
    assert_none_marked(&mark).await;
    manager.shutdown().await.unwrap();
}

// A spec built in code is checked by the rules a file is, before it can reach the manager:
// there is no unchecked spec to run.
#[test]
fn specs_built_in_code_are_checked_before_they_can_run() {
    let field = |result: Result<PipelineSpec, pipeline_manager::SpecError>| match result {
        Err(pipeline_manager::SpecError::Invalid { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        field(PipelineSpec::new("p", vec![])).as_deref(),
        Some("steps")
    );
    let no_program = StepSpec::new("s", StepAction::Command(vec![]));
    assert_eq!(
        field(PipelineSpec::new("p", vec![no_program])).as_deref(),
        Some("steps[0].command")
    );
    let twice = ["a", "a"].map(|name| StepSpec::new(name, StepAction::Run("true".into())));
    assert_eq!(
        field(PipelineSpec::new("p", twice.to_vec())).as_deref(),
        Some("steps[1].name")
    );
    let unknown = StepSpec::new("a", StepAction::Run("true".into())).needing(["b"]);
    assert_eq!(
        field(PipelineSpec::new("p", vec![unknown])).as_deref(),
        Some("steps[0].needs")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shared_spec_runs_as_independent_executions() {
    let manager = manager("shared-spec").await;
    let spec = std::sync::Arc::new(shell("p", &[("a", "echo $PWD")]));
    let first = manager.run_pipeline(spec.clone()).await.unwrap();
    let second = manager.run_pipeline(spec).await.unwrap();
    assert_ne!(first, second);
    let first = manager.wait(&first, WAIT).await.unwrap();
    let second = manager.wait(&second, WAIT).await.unwrap();
    for status in [&first, &second] {
        assert_eq!(status.status, Status::Completed);
        assert_eq!(&*status.pipeline, "p");
        // Each ran in its own directory.
        assert!(status.steps[0].output_tail[0].ends_with(status.execution_id.as_str()));
    }
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_shutdown_every_call_is_unavailable_and_subscriptions_end() {
    let manager = manager("after-shutdown").await;
    let id = manager
        .start_execution(shell("p", &[("a", "true")]))
        .await
        .unwrap();
    let mut updates = manager.subscribe();
    manager.shutdown().await.unwrap();
    assert!(matches!(
        manager.status(&id).await,
        Err(PipelineError::Unavailable(_))
    ));
    assert!(matches!(
        manager.execute(&id).await,
        Err(PipelineError::Unavailable(_))
    ));
    assert!(matches!(
        manager.start_execution(shell("p", &[("a", "true")])).await,
        Err(PipelineError::Unavailable(_))
    ));
    assert!(manager.list_executions(None).is_empty());
    // The stream ends once what was already sent has been read.
    tokio::time::timeout(WAIT, async { while updates.next().await.is_some() {} })
        .await
        .expect("the update stream of a stopped manager did not end");
    assert!(manager.subscribe().next().await.is_none());
}

// The output "directory" is a regular file, so neither the store nor an execution directory
// fits under it: a manager with a store does not start, naming the path; one without fails
// the execution, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_directory_that_cannot_be_created_is_an_error_naming_it() {
    let blocker = common::output_dir("blocked");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let with_store = pipeline_manager::PipelineManager::start(pipeline_manager::ManagerConfig {
        output_dir: blocker.clone(),
        ..pipeline_manager::ManagerConfig::default()
    })
    .await;
    match with_store {
        Err(PipelineError::Unavailable(message)) => assert!(
            message.contains("cannot create") && message.contains(&*blocker.to_string_lossy()),
            "{message}"
        ),
        other => panic!("a manager started without its store: {other:?}"),
    }
    let manager = manager_with("blocked-manager", |config| {
        config.output_dir = blocker.clone();
        config.store = pipeline_manager::execution_store::StoreConfig::Memory;
    })
    .await;
    let id = manager
        .run_pipeline(shell("blocked", &[("echo", "echo hi")]))
        .await
        .unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Failed);
    let error = status.error.clone().unwrap_or_default();
    assert!(error.contains("cannot create"), "error: {error}");
    manager.shutdown().await.unwrap();
    let _ = std::fs::remove_file(&blocker);
}

// `kill_grace = Duration::MAX` in code used to pass and crash the worker at its first cancel
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durations_no_timer_can_hold_are_a_config_error_at_start() {
    use pipeline_manager::ManagerConfig;
    let config = ManagerConfig {
        kill_grace: Duration::MAX,
        ..ManagerConfig::default()
    };
    let started = pipeline_manager::PipelineManager::start(config).await;
    assert!(
        matches!(&started, Err(PipelineError::InvalidConfig(message)) if message.contains("kill_grace")),
        "{started:?}"
    );
    let mut config = ManagerConfig::default();
    config.cleaner.check_every = Duration::ZERO;
    let started = pipeline_manager::PipelineManager::start(config).await;
    assert!(
        matches!(&started, Err(PipelineError::InvalidConfig(message)) if message.contains("cleaner.check_every"))
    );
}

// A symlink a step leaves as an artifact is not followed out of the execution's directory
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artifact_symlink_leading_outside_is_not_followed() {
    let manager = manager("artifact-symlink").await;
    let mut step = StepSpec::new(
        "links",
        StepAction::Run(
            "ln -s /etc/hostname outside; printf abc > real.txt; ln -s real.txt inside".into(),
        ),
    );
    step.artifacts = vec!["outside".into(), "inside".into()];
    let id = manager
        .run_pipeline(PipelineSpec::new("p", vec![step]).unwrap())
        .await
        .unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Completed, "{:?}", status.error);
    assert_eq!(
        status.artifacts[0].bytes, None,
        "followed a symlink out: {:?}",
        status.artifacts
    );
    assert_eq!(status.artifacts[1].bytes, Some(3));
    manager.shutdown().await.unwrap();
}

// `wait` used to wait for ever for an execution whose worker crashed and came back pending:
// it will not run again unless executed again, so wait returns it, saying why
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_returns_an_execution_whose_worker_crashed_and_came_back_pending() {
    let manager = manager("wait-crashed").await;
    let mut updates = manager.subscribe();
    let id = manager
        .run_pipeline(shell("p", &[("long", "sleep 300")]))
        .await
        .unwrap();
    next_update(&mut updates, &id, |s| s.status == Status::Running).await;
    let worker = manager.worker_pid(&id).unwrap();
    otp_core::process::exit(worker, ExitReason::Killed);
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Pending);
    assert!(status.restarted);
    assert_eq!(
        status.error.as_deref(),
        Some("its worker stopped unexpectedly and was restarted")
    );
    manager.shutdown().await.unwrap();
}

/// An executor whose `run` panics (in the worker, which calls it) the first time.
struct PanicsOnce(std::sync::atomic::AtomicBool);

impl pipeline_manager::step_runner::StepExecutor for PanicsOnce {
    fn run(
        &self,
        step: &StepSpec,
        run: pipeline_manager::step_runner::StepRun,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = pipeline_manager::step_runner::StepOutcome> + Send>,
    > {
        if !self.0.swap(true, std::sync::atomic::Ordering::SeqCst) {
            panic!("executor bug");
        }
        pipeline_manager::step_runner::NoopExecutor.run(step, run)
    }
}

// A worker that crashes says why: its restarted, pending status carries the crash's reason
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_workers_reason_is_in_its_restarted_status() {
    let manager = manager_with("crash-reason", |config| {
        config.executor = Arc::new(PanicsOnce(std::sync::atomic::AtomicBool::new(false)));
    })
    .await;
    let id = manager
        .run_pipeline(shell("p", &[("one", "true")]))
        .await
        .unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Pending);
    assert!(status.restarted);
    assert_eq!(
        status.error.as_deref(),
        Some("its worker crashed (panic: executor bug) and was restarted")
    );
    manager.shutdown().await.unwrap();
}

// The board and the worker supervisor restart together: after the `executions` supervisor is
// killed and restarted, the board no longer lists the executions of the workers that went with
// it, the store has them `interrupted`, they resume, and new executions run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_supervisor_starts_with_an_empty_board() {
    use otp_core::supervisor::{ChildStatus, SupervisorEvent};
    let manager = manager("board-restart").await;
    let release = common::output_dir("board-restart-release");
    let id = manager
        .run_pipeline(shell(
            "long",
            &[(
                "wait",
                &format!("test -f {} || sleep 60", release.display()),
            )],
        ))
        .await
        .unwrap();
    assert_eq!(manager.list_executions(None).len(), 1);
    let executions = manager
        .root()
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .find(|child| child.id.as_deref() == Some("executions"))
        .expect("an executions supervisor");
    let ChildStatus::Running(pid) = executions.status else {
        panic!("executions is not running: {executions:?}");
    };
    let mut events = manager.root().subscribe();
    assert!(otp_core::process::exit(pid, otp_core::ExitReason::Killed));
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(SupervisorEvent::ChildRestarted { child, .. }) = events.next().await
                && child.as_deref() == Some("execution_cleaner")
            {
                break;
            }
        }
    })
    .await
    .expect("the tree after executions restarted");
    assert!(
        manager.list_executions(None).is_empty(),
        "stale executions listed"
    );
    assert!(matches!(
        manager.status(&id).await,
        Err(PipelineError::NotFound(_))
    ));
    let stored = manager.stored(&id).await.unwrap();
    assert_eq!(stored.status.status, Status::Interrupted);
    std::fs::write(&release, "").unwrap();
    manager.resume(&id, None, false).await.unwrap();
    let resumed = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(resumed.status, Status::Completed);
    let again = manager
        .run_pipeline(shell("short", &[("ok", "true")]))
        .await
        .unwrap();
    let status = manager.wait(&again, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Completed);
    manager.shutdown().await.unwrap();
    let _ = std::fs::remove_file(&release);
}
