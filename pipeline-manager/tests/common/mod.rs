//! Shared helpers for pipeline-manager's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use pipeline_manager::{
    ExecutionId, ExecutionStatus, ExecutionUpdates, ManagerConfig, PipelineDraft, PipelineManager,
    PipelineSpec, StepAction, StepSpec,
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

/// A checked spec of shell steps `(name, line)`, each after the one before.
pub fn shell(name: &str, steps: &[(&str, &str)]) -> PipelineSpec {
    PipelineSpec::new(
        name,
        steps
            .iter()
            .map(|(step, line)| StepSpec::new(*step, StepAction::Run((*line).to_string())))
            .collect(),
    )
    .expect("a valid spec")
}

/// `spec`, changed by `edit` and checked again.
pub fn edited(spec: PipelineSpec, edit: impl FnOnce(&mut PipelineDraft)) -> PipelineSpec {
    let mut draft = spec.to_draft();
    edit(&mut draft);
    draft.check().expect("a valid spec")
}

/// The environment variable that marks a test's step processes: every process a step starts
/// inherits it (unless it clears its environment), whichever pid namespace it runs in, so a
/// test finds them all by it in the kernel's process table.
pub const MARK: &str = "PM_TEST_MARK";

/// The mark of test `test` in this run: what an earlier run left behind does not count.
pub fn mark(test: &str) -> String {
    format!("{test}-{}", std::process::id())
}

/// `spec` with every step marked `mark` (see [`MARK`]).
pub fn marked(spec: PipelineSpec, mark: &str) -> PipelineSpec {
    edited(spec, |draft| {
        for step in &mut draft.steps {
            step.env.insert(MARK.to_string(), mark.to_string());
        }
    })
}

/// The pids of the live processes marked `mark` (see [`MARK`]), zombies left out.
pub fn processes_marked(mark: &str) -> Vec<i32> {
    let wanted = format!("{MARK}={mark}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .split(|&byte| byte == 0)
                    .any(|entry| entry == wanted.as_bytes())
            }) && !gone(pid)
        })
        .collect()
}

/// Waits for every process marked `mark` to be gone. The kernel gives no event for the death
/// of a process that is not our child, so this polls the process table, bounded by `WAIT`.
pub async fn assert_none_marked(mark: &str) {
    let result = tokio::time::timeout(WAIT, async {
        while !processes_marked(mark).is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        result.is_ok(),
        "processes marked {mark} outlived their step: {:?}",
        describe(&processes_marked(mark))
    );
}

/// The same, for tests without a runtime: spins with a deadline.
pub fn assert_none_marked_blocking(mark: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while !processes_marked(mark).is_empty() && std::time::Instant::now() < deadline {
        std::hint::spin_loop();
    }
    let left = processes_marked(mark);
    assert!(
        left.is_empty(),
        "processes marked {mark} outlived their step: {:?}",
        describe(&left)
    );
}

/// Each pid with its command line, for a failure message.
fn describe(pids: &[i32]) -> Vec<String> {
    pids.iter()
        .map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            format!(
                "{pid}: {}",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            )
        })
        .collect()
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

/// Waits, yielding (no sleeps), until a step has written `file` in `dir`, not empty; fails
/// after `WAIT`.
pub async fn wait_for_file(dir: &std::path::Path, file: &str) {
    let path = dir.join(file);
    let result = tokio::time::timeout(WAIT, async {
        while std::fs::read_to_string(&path).map_or(true, |text| text.trim().is_empty()) {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(result.is_ok(), "{} never appeared", path.display());
}

/// The first execution directory in output directory `runs`, if there is one yet (the output
/// directory also holds the store, `executions.db`).
pub fn first_execution_dir(runs: &std::path::Path) -> Option<PathBuf> {
    std::fs::read_dir(runs).ok()?.find_map(|entry| {
        entry
            .ok()
            .filter(|entry| entry.file_name().to_string_lossy().starts_with("exec-"))
            .map(|entry| entry.path())
    })
}
