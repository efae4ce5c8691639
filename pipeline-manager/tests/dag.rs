//! Steps with `needs`: steps whose needs are met run in parallel, up to `max_parallel`; a
//! failure stops new steps and is handled as `on_failure` says; the rest are skipped.

mod common;

use std::time::Duration;

use common::{WAIT, assert_none_marked, edited, manager, marked};
use pipeline_manager::{
    OnFailure, PipelineDraft, PipelineSpec, Status, StepAction, StepExit, StepSpec, StepState,
};

/// A shell step that needs `needs`.
fn step(name: &str, line: &str, needs: &[&str]) -> StepSpec {
    StepSpec::new(name, StepAction::Run(line.to_string())).needing(needs.iter().copied())
}

fn dag(steps: Vec<StepSpec>, edit: impl FnOnce(&mut PipelineDraft)) -> PipelineSpec {
    let mut draft = PipelineDraft::new("dag", steps);
    edit(&mut draft);
    draft.check().expect("a valid spec")
}

/// Says it is here, then waits (at most `seconds`) for `other` to say so too: succeeds only if
/// both run at the same time.
fn meets(me: &str, other: &str, seconds: u32) -> String {
    let tries = seconds * 20;
    format!(
        "touch {me}.here; i=0; while [ ! -e {other}.here ]; do i=$((i+1)); \
         [ $i -gt {tries} ] && exit 7; sleep 0.05; done"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_whose_needs_are_met_run_at_the_same_time() {
    let manager = manager("dag-parallel").await;
    let spec = dag(
        vec![
            step("setup", "touch setup.done", &[]),
            step("left", &meets("left", "right", 10), &["setup"]),
            step("right", &meets("right", "left", 10), &["setup"]),
            step(
                "join",
                "test -e left.here && test -e right.here && test -e setup.done",
                &["left", "right"],
            ),
        ],
        |draft| draft.max_parallel = Some(2),
    );
    let id = manager.run_pipeline(spec).await.unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Completed, "{:?}", status.error);
    assert!(
        status
            .steps
            .iter()
            .all(|s| s.exit == Some(StepExit::Success))
    );
    manager.shutdown().await.unwrap();
}

// The same two steps with room for one at a time: each waits for the other in vain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_parallel_caps_the_steps_running_at_once() {
    let manager = manager("dag-cap").await;
    let spec = dag(
        vec![
            step("left", &meets("left", "right", 1), &[]),
            step("right", &meets("right", "left", 1), &[]),
        ],
        |draft| draft.max_parallel = Some(1),
    );
    let id = manager.run_pipeline(spec).await.unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Failed);
    assert_eq!(status.steps[0].exit, Some(StepExit::Code(7)));
    // The failure came first: the other never started.
    assert_eq!(status.steps[1].state, StepState::Skipped);

    // Six independent steps, two at a time: no status ever shows more than two running, and
    // each step's start and end, logged by the steps themselves, never overlap three deep.
    let log = "echo start >> ../events; sleep 0.2; echo end >> ../events";
    let steps = (0..6)
        .map(|i| step(&format!("s{i}"), log, &[]))
        .collect::<Vec<_>>();
    let mut updates = manager.subscribe();
    let id = manager
        .run_pipeline(dag(steps, |draft| draft.max_parallel = Some(2)))
        .await
        .unwrap();
    let mut most = 0;
    let events = loop {
        let update = tokio::time::timeout(WAIT, updates.next())
            .await
            .expect("an update")
            .expect("the manager runs");
        if update.execution_id == id {
            most = most.max(update.running_steps.len());
            if update.status.is_final() {
                assert_eq!(update.status, Status::Completed, "{:?}", update.error);
                break update.workdir.with_file_name("events");
            }
        }
    };
    assert_eq!(most, 2, "two steps at a time, and two did run at once");
    let events = std::fs::read_to_string(events).unwrap();
    let mut running = 0;
    let mut deepest = 0;
    for event in events.lines() {
        running += if event == "start" { 1 } else { -1 };
        deepest = deepest.max(running);
    }
    assert_eq!(events.lines().count(), 12);
    assert!(deepest <= 2, "{deepest} steps ran at once:\n{events}");
    manager.shutdown().await.unwrap();
}

// on_failure = "finish" (the default): the step running beside the failed one runs to its end
// and its work is kept; what needed the failed step never starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_lets_running_steps_finish_and_skips_the_rest() {
    let manager = manager("dag-finish").await;
    let spec = dag(
        vec![
            step("slow", "sleep 0.5; echo kept > slow.out", &[]),
            step("broken", "echo no >&2; exit 3", &[]),
            step("after", "touch after.ran", &["broken"]),
            step("last", "touch last.ran", &["slow", "after"]),
        ],
        |draft| assert_eq!(draft.on_failure, OnFailure::Finish),
    );
    let id = manager.run_pipeline(spec).await.unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Failed);
    assert_eq!(
        status.error.as_deref(),
        Some("step \"broken\" failed: exit status 3")
    );
    let states: Vec<StepState> = status.steps.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [
            StepState::Completed,
            StepState::Failed,
            StepState::Skipped,
            StepState::Skipped
        ]
    );
    assert_eq!(
        std::fs::read_to_string(status.workdir.join("slow.out")).unwrap(),
        "kept\n"
    );
    assert!(!status.workdir.join("after.ran").exists());
    assert!(status.running_steps.is_empty());
    manager.shutdown().await.unwrap();
}

// on_failure = "cancel": the step running beside the failed one is stopped at once, and its
// processes are gone when the execution reports its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_under_cancel_stops_the_running_steps() {
    let mark = common::mark("a_failure_under_cancel_stops_the_running_steps");
    let manager = manager("dag-cancel").await;
    let spec = dag(
        vec![
            step("forever", "sleep 300 & echo up > up; wait", &[]),
            step(
                "broken",
                "while [ ! -e up ]; do sleep 0.05; done; exit 4",
                &[],
            ),
            step("after", "true", &["forever", "broken"]),
        ],
        |draft| draft.on_failure = OnFailure::Cancel,
    );
    let started = std::time::Instant::now();
    let id = manager.run_pipeline(marked(spec, &mark)).await.unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(status.status, Status::Failed);
    assert_eq!(
        status.error.as_deref(),
        Some("step \"broken\" failed: exit status 4")
    );
    assert_eq!(status.steps[0].state, StepState::Failed);
    assert_eq!(status.steps[0].exit, Some(StepExit::Signal(15)));
    assert_eq!(status.steps[2].state, StepState::Skipped);
    assert_none_marked(&mark).await;
    manager.shutdown().await.unwrap();
}

// A cancel stops every running step; a step waiting to retry stops there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_every_running_step() {
    let mark = common::mark("cancel_stops_every_running_step");
    let manager = manager("dag-cancel-all").await;
    let mut flaky = step("flaky", "exit 1", &[]);
    flaky.retries = 5;
    flaky.retry_backoff = Duration::from_secs(60);
    let spec = dag(
        vec![
            step("one", "sleep 300 & echo up > one.up; wait", &[]),
            step("two", "sleep 300 & echo up > two.up; wait", &[]),
            flaky,
            step("after", "true", &["one", "two"]),
        ],
        |draft| draft.max_parallel = Some(3),
    );
    let mut updates = manager.subscribe();
    let id = manager.run_pipeline(marked(spec, &mark)).await.unwrap();
    // Flaky has failed once and waits to retry, still in progress beside the other two.
    let running = common::next_update(&mut updates, &id, |s| s.steps[2].exit.is_some()).await;
    for file in ["one.up", "two.up"] {
        common::wait_for_file(&running.workdir, file).await;
    }
    assert_eq!(
        running
            .running_steps
            .iter()
            .map(|s| &**s)
            .collect::<Vec<_>>(),
        ["one", "two", "flaky"]
    );
    manager.cancel(&id).await.unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Cancelled);
    let states: Vec<StepState> = status.steps.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [
            StepState::Failed,
            StepState::Failed,
            StepState::Failed,
            StepState::Skipped
        ]
    );
    assert_eq!(status.steps[2].attempts, 1);
    assert_none_marked(&mark).await;
    manager.shutdown().await.unwrap();
}

// Without `needs`, each step needs the one before: the order of old specs holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_without_needs_run_one_after_another() {
    let manager = manager("dag-sequence").await;
    let spec = edited(
        common::shell(
            "seq",
            &[
                ("a", "echo a >> order; sleep 0.2"),
                ("b", "echo b >> order"),
                ("c", "echo c >> order"),
            ],
        ),
        |draft| draft.max_parallel = Some(8),
    );
    let id = manager.run_pipeline(spec).await.unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Completed);
    let order = std::fs::read_to_string(status.workdir.join("order")).unwrap();
    assert_eq!(order, "a\nb\nc\n");
    manager.shutdown().await.unwrap();
}
