//! Shared helpers for pipeline-manager's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use pipeline_manager::{
    ExecutionId, ExecutionStatus, ExecutionUpdates, ManagerConfig, PipelineManager, PipelineSpec,
    StepAction, StepSpec,
};

pub const WAIT: Duration = Duration::from_secs(20);

/// A fresh output directory for one test.
pub fn output_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pm-test-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub async fn manager(test: &str) -> PipelineManager {
    manager_with(test, |_| {}).await
}

pub async fn manager_with(
    test: &str,
    configure: impl FnOnce(&mut ManagerConfig),
) -> PipelineManager {
    let mut config = ManagerConfig {
        output_dir: output_dir(test),
        kill_grace: Duration::from_millis(500),
        ..ManagerConfig::default()
    };
    configure(&mut config);
    PipelineManager::start(config)
        .await
        .expect("manager starts")
}

pub fn shell(name: &str, steps: &[(&str, &str)]) -> PipelineSpec {
    PipelineSpec::new(
        name,
        steps
            .iter()
            .map(|(step, line)| StepSpec::new(*step, StepAction::Run((*line).to_string())))
            .collect(),
    )
}

/// Whether process `pid` is gone (no such process, or a zombie nobody has reaped yet).
pub fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// Waits for the kernel to finish killing `pid`. The OS offers no event for the death of a
/// process that is not our child, so this yields (never sleeps) until it is gone, within `WAIT`.
pub async fn assert_gone(pid: i32) {
    let result = tokio::time::timeout(WAIT, async {
        while !gone(pid) {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(result.is_ok(), "process {pid} is still running");
}

/// Reads a pid a step wrote to `file` in its execution's directory.
pub fn read_pid(dir: &std::path::Path, file: &str) -> i32 {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
        .trim()
        .parse()
        .unwrap()
}

/// Waits on a subscription (taken before the change) for the next update of `id` that
/// `matches`, instead of polling the status; fails if none comes within `WAIT`.
pub async fn next_update(
    updates: &mut ExecutionUpdates,
    id: &ExecutionId,
    matches: impl Fn(&ExecutionStatus) -> bool,
) -> std::sync::Arc<ExecutionStatus> {
    let wait = async {
        loop {
            let update = updates.next().await.expect("the manager is running");
            if update.execution_id == *id && matches(&update) {
                return update;
            }
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("no matching update of {id:?} within {WAIT:?}"))
}
