//! The seed's `pipeline_manager_test.exs`, test for test, same names and the same observable
//! behaviour: the compatibility contract. Waits on `wait` / `subscribe`, never on sleeps.

mod common;

use common::{WAIT, manager, next_update, shell};
use otp_core::ExitReason;
use otp_core::testing::assert_down;
use pipeline_manager::Status;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_and_executes_a_pipeline_successfully() {
    let manager = manager("seed-1").await;
    let spec = shell(
        "test_pipeline",
        &[("one", "true"), ("two", "sleep 0.3"), ("three", "true")],
    );
    let id = manager.start_execution(spec).await.unwrap();
    assert!(id.as_str().starts_with("exec-"));

    let status = manager.status(&id).await.unwrap();
    assert_eq!(status.status, Status::Pending);
    assert_eq!(status.execution_id, id);

    manager.execute(&id).await.unwrap();
    let status = manager.status(&id).await.unwrap();
    assert_eq!(status.status, Status::Running);
    assert!(status.started_at.is_some());

    let done = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(done.status, Status::Completed);
    let final_status = manager.status(&id).await.unwrap();
    assert_eq!(final_status.status, Status::Completed);
    assert!(final_status.result.is_some());
    assert!(final_status.completed_at.is_some());
    assert_eq!(final_status.steps_completed, 3);
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_execution_cancellation_correctly() {
    let manager = manager("seed-2").await;
    let id = manager
        .run_pipeline(shell("long_pipeline", &[("long", "sleep 300")]))
        .await
        .unwrap();
    manager.cancel(&id).await.unwrap();
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_eq!(status.status, Status::Cancelled);
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_crashes_are_handled_gracefully() {
    let manager = manager("seed-3").await;
    let id = manager
        .start_execution(shell("test_pipeline", &[("one", "true")]))
        .await
        .unwrap();
    let mut updates = manager.subscribe();
    let worker = manager.worker_pid(&id).unwrap();
    let down = otp_core::monitor::monitor(worker);
    otp_core::process::exit(worker, ExitReason::Killed);
    assert_down(down, ExitReason::Killed, WAIT).await;
    // The supervisor restarts the worker; wait for its first status instead of polling.
    next_update(&mut updates, &id, |s| s.restarted).await;
    let status = manager.status(&id).await.unwrap();
    assert_eq!(status.status, Status::Pending); // reset to the initial state
    assert!(status.restarted);
    assert_ne!(manager.worker_pid(&id), Some(worker));
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_all_executions_correctly() {
    let manager = manager("seed-4").await;
    let mut ids = Vec::new();
    for i in 1..=3 {
        ids.push(
            manager
                .start_execution(shell(&format!("pipeline_{i}"), &[("one", "true")]))
                .await
                .unwrap(),
        );
    }
    let listed: Vec<_> = manager
        .list_executions(None)
        .iter()
        .map(|s| s.execution_id.clone())
        .collect();
    for id in &ids {
        assert!(listed.contains(id), "{id} missing from {listed:?}");
    }
    assert_eq!(manager.list_executions(Some(Status::Pending)).len(), 3);
    manager.shutdown().await.unwrap();
}

// Ids are `exec-` and a UUIDv7: random, so they cannot collide across processes or machines
// (they were `exec-<seconds>-<os pid>-<n>`: two CLIs that are pid 1 in containers shared
// them) nor be guessed, and they sort by creation time
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_ids_are_random_uuids_that_sort_by_time() {
    let manager = common::manager("ids").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = manager
            .start_execution(common::shell("p", &[("a", "true")]))
            .await
            .unwrap();
        ids.push(id);
    }
    for id in &ids {
        let uuid = id.as_str().strip_prefix("exec-").expect("exec- prefix");
        assert_eq!(uuid.len(), 36, "{id}");
        assert_eq!(&uuid[14..15], "7", "not a UUIDv7: {id}");
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(
        sorted, ids,
        "ids made one after the other sort in that order"
    );
    assert_ne!(ids[0], ids[1]);
    manager.shutdown().await.unwrap();
}
