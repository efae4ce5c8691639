//! The execution store on a real SQLite file: nothing accepted is lost, a killed manager's
//! executions come back `interrupted` and resume, the cleaner empties store and disk.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use pipeline_manager::execution_cleaner::CleanerConfig;
use pipeline_manager::execution_store::{
    ExecutionStore, ExecutionSummary, ListFilter, Retention, StoreConfig, StoreError, StoreWrite,
    StoredExecution,
};
use pipeline_manager::sqlite_store::SqliteStore;
use pipeline_manager::step_runner::NoopExecutor;
use pipeline_manager::{ExecutionId, ManagerConfig, PipelineError, PipelineManager, Status};

use common::{WAIT, shell};

fn history(dir: &Path) -> SqliteStore {
    SqliteStore::open_read_only(dir)
        .expect("the store opens")
        .expect("there is a store")
}

// Group commit under concurrent writers: 2,000 `run_pipeline`s at once, each returning only
// once its execution is durable; as soon as they have all returned, the history has every
// id, and after the manager stops, a reader of its own finds every final status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_id_returned_is_in_the_store_under_concurrent_callers() {
    const RUNS: usize = 2_000;
    let dir = common::output_dir("store-concurrent");
    let manager = PipelineManager::start(ManagerConfig {
        output_dir: dir.clone(),
        executor: Arc::new(NoopExecutor),
        ..ManagerConfig::default()
    })
    .await
    .expect("manager starts");
    let spec = Arc::new(shell("noop", &[("a", "true"), ("b", "true")]));
    let ids = futures::future::join_all((0..RUNS).map(|_| manager.run_pipeline(spec.clone())))
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .expect("every run starts");
    let stored: HashSet<_> = manager
        .history(ListFilter::default())
        .await
        .expect("history")
        .into_iter()
        .map(|summary| summary.id)
        .collect();
    assert_eq!(stored.len(), RUNS, "rows in the store");
    assert!(ids.iter().all(|id| stored.contains(id)), "an id is missing");
    for id in &ids {
        manager.wait(id, WAIT).await.expect("completes");
    }
    manager.shutdown().await.expect("shutdown");
    let completed = history(&dir)
        .list(&ListFilter {
            status: Some(Status::Completed),
            ..ListFilter::default()
        })
        .expect("list");
    assert_eq!(
        completed.len(),
        RUNS,
        "final statuses committed at shutdown"
    );
}

/// Set for the child process of `accepted_executions_survive_a_sigkill`: its output directory.
const CHILD_DIR: &str = "PM_TEST_ACCEPTING_CHILD_DIR";

// Not a test of its own: the child process of `accepted_executions_survive_a_sigkill` (this
// test binary, run again with `CHILD_DIR` set). Starts executions, which wait for `execute`,
// and prints each id as soon as `start_execution` returns it, until it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_accepting_executions() {
    use std::io::Write;
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let manager = PipelineManager::start(ManagerConfig {
        output_dir: dir.into(),
        executor: Arc::new(NoopExecutor),
        ..ManagerConfig::default()
    })
    .await
    .expect("manager starts");
    let spec = Arc::new(shell("accepted", &[("a", "true")]));
    let mut stdout = std::io::stdout().lock();
    // Bounded: the parent kills it long before.
    for _ in 0..1_000_000 {
        let id = manager.start_execution(spec.clone()).await.expect("start");
        writeln!(stdout, "{id}")
            .and_then(|()| stdout.flush())
            .expect("print");
    }
}

// Nothing accepted is lost: a manager SIGKILLed while it accepts executions as fast as it
// can (so that its last ones are only in the journal, not yet in SQLite) comes back with
// every id it returned, marked `interrupted`: seen by `list` (which recovers the journal when
// no manager runs) and by the next manager.
#[test]
fn accepted_executions_survive_a_sigkill() {
    use std::io::BufRead;
    const SEEN: usize = 500;
    let dir = common::output_dir("store-accepted-sigkill");
    let mut child = Command::new(std::env::current_exe().expect("this test binary"))
        .args(["--exact", "child_accepting_executions", "--nocapture"])
        .env(CHILD_DIR, &dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("child starts");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut accepted = Vec::new();
    while accepted.len() < SEEN {
        let line = lines
            .next()
            .expect("the child stopped before accepting enough")
            .expect("read");
        if line.starts_with("exec-") {
            accepted.push(line);
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");

    let listed = cli("store-accepted-sigkill", &dir)
        .args([
            "list",
            "--output-dir",
            dir.to_str().unwrap(),
            "--json",
            "--limit",
            "1000000",
        ])
        .output()
        .expect("list runs");
    assert_eq!(listed.status.code(), Some(0), "{listed:?}");
    let listed = json(&listed);
    let statuses: std::collections::HashMap<&str, &str> = listed
        .as_array()
        .expect("an array")
        .iter()
        .map(|row| (row["id"].as_str().unwrap(), row["status"].as_str().unwrap()))
        .collect();
    for id in &accepted {
        assert_eq!(statuses.get(id.as_str()), Some(&"interrupted"), "{id}");
    }

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let manager = PipelineManager::start(ManagerConfig {
            output_dir: dir.clone(),
            executor: Arc::new(NoopExecutor),
            ..ManagerConfig::default()
        })
        .await
        .expect("the next manager starts");
        let history = manager
            .history(ListFilter::default())
            .await
            .expect("history");
        let found: HashSet<_> = history.iter().map(|row| row.id.as_str()).collect();
        assert!(accepted.iter().all(|id| found.contains(id.as_str())));
        manager.shutdown().await.expect("shutdown");
    });
}

/// Kills the root's child `child` and waits until the root has restarted everything after
/// it (`execution_cleaner` is the last child).
async fn kill_child_and_wait(manager: &PipelineManager, child: &str) {
    use otp_core::supervisor::{ChildStatus, SupervisorEvent};
    let found = manager
        .root()
        .which_children()
        .await
        .expect("children")
        .into_iter()
        .find(|found| found.id.as_deref() == Some(child))
        .unwrap_or_else(|| panic!("no child {child}"));
    let ChildStatus::Running(pid) = found.status else {
        panic!("{child} is not running: {found:?}");
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
    .unwrap_or_else(|_| panic!("the tree after {child} was killed"));
}

// Killing the store's writer (with writes in its journal segment, not yet in SQLite) or its
// owner loses nothing accepted: the restarted writer has the owner recover the journal, and
// the executions the restart took down come back `interrupted`. The store works on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_store_writer_or_owner_loses_nothing_accepted() {
    const STARTED: usize = 300;
    let dir = common::output_dir("store-killed-processes");
    let manager = PipelineManager::start(ManagerConfig {
        output_dir: dir.clone(),
        executor: Arc::new(NoopExecutor),
        ..ManagerConfig::default()
    })
    .await
    .expect("manager starts");
    let spec = Arc::new(shell("pending", &[("a", "true")]));
    for child in ["store_writer", "execution_store"] {
        let mut accepted = Vec::new();
        for _ in 0..STARTED {
            accepted.push(manager.start_execution(spec.clone()).await.expect("start"));
        }
        kill_child_and_wait(&manager, child).await;
        let history = manager
            .history(ListFilter::default())
            .await
            .expect("history");
        let statuses: std::collections::HashMap<_, _> = history
            .iter()
            .map(|row| (row.id.clone(), row.status))
            .collect();
        for id in &accepted {
            assert_eq!(
                statuses.get(id),
                Some(&Status::Interrupted),
                "{id} after {child} was killed"
            );
        }
    }
    let id = manager.run_pipeline(spec).await.expect("run");
    assert_eq!(
        manager.wait(&id, WAIT).await.unwrap().status,
        Status::Completed
    );
    manager.shutdown().await.expect("shutdown");
    let completed = history(&dir)
        .list(&ListFilter {
            status: Some(Status::Completed),
            ..ListFilter::default()
        })
        .expect("list");
    assert_eq!(completed.len(), 1);
}

// A status nobody waits to be durable (an execution starting to run) still reaches SQLite
// within the commit delay, on an idle manager too, and reads through the manager see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_execution_shows_running_in_the_history() {
    let test = "store-running";
    let dir = common::output_dir(test);
    let manager = PipelineManager::start(ManagerConfig {
        output_dir: dir.clone(),
        ..ManagerConfig::default()
    })
    .await
    .expect("manager starts");
    let release = dir.join("release");
    let id = manager
        .run_pipeline(shell(
            "waits",
            &[(
                "wait",
                &format!("test -f {} || sleep 60", release.display()),
            )],
        ))
        .await
        .expect("run");
    let status_in = |listed: Vec<ExecutionSummary>| {
        listed
            .into_iter()
            .find(|row| row.id == id)
            .map(|row| row.status)
    };
    // The worker starts running right after `run_pipeline` returns (bounded polls).
    let deadline = std::time::Instant::now() + WAIT;
    while status_in(
        manager
            .history(ListFilter::default())
            .await
            .expect("history"),
    ) != Some(Status::Running)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "never running in the history"
        );
    }
    // A reader of its own sees it too, once the batch is committed.
    while status_in(history_of(&dir)) != Some(Status::Running) {
        assert!(
            std::time::Instant::now() < deadline,
            "never committed running"
        );
        std::hint::spin_loop();
    }
    std::fs::write(&release, "").unwrap();
    assert_eq!(
        manager.wait(&id, WAIT).await.unwrap().status,
        Status::Completed
    );
    manager.shutdown().await.expect("shutdown");
}

fn history_of(dir: &Path) -> Vec<ExecutionSummary> {
    history(dir).list(&ListFilter::default()).expect("list")
}

/// A SQLite store whose first commit panics (a backend bug), then works.
struct PanicsOnce {
    store: SqliteStore,
    panicked: Arc<std::sync::atomic::AtomicBool>,
}

impl ExecutionStore for PanicsOnce {
    fn commit(&mut self, batch: &[StoreWrite]) -> Result<(), StoreError> {
        if !batch.is_empty()
            && !self
                .panicked
                .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            panic!("the backend's first commit");
        }
        self.store.commit(batch)
    }

    fn mark_interrupted(&mut self, at: std::time::SystemTime) -> Result<usize, StoreError> {
        self.store.mark_interrupted(at)
    }

    fn list(&self, filter: &ListFilter) -> Result<Vec<ExecutionSummary>, StoreError> {
        self.store.list(filter)
    }

    fn get(&self, id: &ExecutionId) -> Result<Option<StoredExecution>, StoreError> {
        self.store.get(id)
    }

    fn expired(
        &self,
        retention: Retention,
        now: std::time::SystemTime,
    ) -> Result<Vec<(ExecutionId, std::path::PathBuf)>, StoreError> {
        self.store.expired(retention, now)
    }
}

// A backend that panics in a commit crashes the store's owner, not the manager: the root
// restarts it and what comes after it, the batch it lost is recovered from the journal, and
// the executions come back `interrupted`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_panics_in_a_commit_loses_nothing_accepted() {
    let dir = common::output_dir("store-panicking-backend");
    let panicked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let open = {
        let (dir, panicked) = (dir.clone(), panicked.clone());
        Arc::new(move || {
            Ok(Box::new(PanicsOnce {
                store: SqliteStore::open(&dir)?,
                panicked: panicked.clone(),
            }) as Box<dyn ExecutionStore>)
        })
    };
    let manager = PipelineManager::start(ManagerConfig {
        output_dir: dir.clone(),
        executor: Arc::new(NoopExecutor),
        store: StoreConfig::Custom(open),
        ..ManagerConfig::default()
    })
    .await
    .expect("manager starts");
    let spec = Arc::new(shell("pending", &[("a", "true")]));
    let mut events = manager.root().subscribe();
    let mut accepted = Vec::new();
    for _ in 0..100 {
        accepted.push(manager.start_execution(spec.clone()).await.expect("start"));
    }
    // The first batch reaches the backend within `COMMIT_DELAY`, and panics.
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(otp_core::supervisor::SupervisorEvent::ChildRestarted { child, .. }) =
                events.next().await
                && child.as_deref() == Some("execution_cleaner")
            {
                break;
            }
        }
    })
    .await
    .expect("the tree after the owner panicked");
    assert!(panicked.load(std::sync::atomic::Ordering::SeqCst));
    let history = manager
        .history(ListFilter::default())
        .await
        .expect("history");
    let statuses: std::collections::HashMap<_, _> = history
        .iter()
        .map(|row| (row.id.clone(), row.status))
        .collect();
    for id in &accepted {
        assert_eq!(statuses.get(id), Some(&Status::Interrupted), "{id}");
    }
    let id = manager.run_pipeline(spec).await.expect("run");
    assert_eq!(
        manager.wait(&id, WAIT).await.unwrap().status,
        Status::Completed
    );
    manager.shutdown().await.expect("shutdown");
}

// One manager writes to an output directory at a time; a second is refused, naming it.
#[tokio::test]
async fn a_second_manager_on_the_same_output_directory_is_refused() {
    let dir = common::output_dir("store-in-use");
    let config = ManagerConfig {
        output_dir: dir.clone(),
        executor: Arc::new(NoopExecutor),
        ..ManagerConfig::default()
    };
    let first = PipelineManager::start(config.clone()).await.expect("first");
    let second = PipelineManager::start(config.clone()).await;
    match second {
        Err(PipelineError::Unavailable(message)) => {
            assert!(message.contains("in use by another"), "{message}")
        }
        other => panic!("a second manager started: {other:?}"),
    }
    first.shutdown().await.expect("shutdown");
    let again = PipelineManager::start(config)
        .await
        .expect("once the first has stopped");
    again.shutdown().await.expect("shutdown");
}

// The cleaner removes what its policy says from the store and from disk (each execution's
// directory), also executions an earlier manager ran, and keeps the newest.
#[tokio::test]
async fn the_cleaner_removes_old_executions_from_the_store_and_their_directories() {
    let dir = common::output_dir("store-cleaner");
    let config = ManagerConfig {
        output_dir: dir.clone(),
        cleaner: CleanerConfig {
            max_finished: 1,
            ..CleanerConfig::default()
        },
        ..ManagerConfig::default()
    };
    let spec = Arc::new(shell("files", &[("a", "echo made > made.txt")]));
    let earlier = PipelineManager::start(config.clone())
        .await
        .expect("manager");
    let first = earlier.run_pipeline(spec.clone()).await.expect("run");
    earlier.wait(&first, WAIT).await.expect("completes");
    earlier.shutdown().await.expect("shutdown");
    let manager = PipelineManager::start(config).await.expect("manager");
    let mut ids = vec![first];
    for _ in 0..2 {
        let id = manager.run_pipeline(spec.clone()).await.expect("run");
        manager.wait(&id, WAIT).await.expect("completes");
        ids.push(id);
    }
    for id in &ids {
        assert!(dir.join(id.as_str()).join("made.txt").exists());
    }
    assert_eq!(manager.clean_now().await.expect("clean"), 2);
    let kept: Vec<_> = manager
        .history(ListFilter::default())
        .await
        .expect("history")
        .into_iter()
        .map(|summary| summary.id)
        .collect();
    assert_eq!(kept, vec![ids[2].clone()]);
    assert!(
        !dir.join(ids[0].as_str()).exists(),
        "the earlier manager's directory"
    );
    assert!(!dir.join(ids[1].as_str()).exists());
    assert!(dir.join(ids[2].as_str()).exists());
    manager.shutdown().await.expect("shutdown");
}

/// The CLI in `dir`, marked as the test's.
fn cli(test: &str, dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pipeline-manager"));
    command
        .current_dir(dir)
        .env(common::MARK, common::mark(test))
        .stdin(Stdio::null());
    command
}

/// Waits (bounded, no sleeping) until `path` exists.
fn wait_for_path(path: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::hint::spin_loop();
    }
}

fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

// A manager SIGKILLed in the middle of a run leaves its execution `running` in the store; the
// next manager marks it `interrupted`, and `resume` runs it again from the step that did not
// complete, in the same directory, keeping the completed step's output. A changed spec is
// refused (exit 2) unless `--force`. The history shows both runs.
#[test]
fn a_killed_managers_execution_is_interrupted_then_resumed() {
    let test = "store-sigkill";
    let dir = common::output_dir(test);
    std::fs::create_dir_all(&dir).unwrap();
    let release = dir.join("release");
    let spec = dir.join("two.toml");
    let write_spec = |second_echo: &str| {
        std::fs::write(
            &spec,
            format!(
                "name = \"two\"\n\
                 [[steps]]\nname = \"first\"\nrun = \"echo once >> first.txt\"\n\
                 [[steps]]\nname = \"second\"\n\
                 run = \"test -f {} || {{ touch started; sleep 60; }}; echo {second_echo}\"\n",
                release.display()
            ),
        )
        .unwrap();
    };
    write_spec("done");
    let mut running = cli(test, &dir)
        .args(["run", "two.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the second step to be running, found through the store.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let id = loop {
        let listed = cli(test, &dir).args(["list", "--json"]).output().unwrap();
        if listed.status.success()
            && let Some(id) = json(&listed)[0]["id"].as_str()
        {
            break id.to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no execution listed");
    };
    let workdir = dir.join("runs").join(&id);
    wait_for_path(&workdir.join("started"));
    // A step's end is committed as soon as the store gets to it, not before the next step
    // starts: wait (bounded) until it is, so that the kill lands mid-run with it recorded.
    loop {
        let shown = json(
            &cli(test, &dir)
                .args(["show", "--json", &id])
                .output()
                .unwrap(),
        );
        if shown["status"]["steps"][0]["state"] == "completed" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "first step never recorded: {shown}"
        );
    }
    running.kill().unwrap(); // SIGKILL
    running.wait().unwrap();
    common::assert_none_marked_blocking(&common::mark(test));

    // The spec changed: refused, and nothing runs.
    write_spec("changed");
    std::fs::write(&release, "").unwrap();
    let refused = cli(test, &dir).args(["resume", &id]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    let shown = json(
        &cli(test, &dir)
            .args(["show", "--json", &id])
            .output()
            .unwrap(),
    );
    assert_eq!(shown["status"]["status"], "interrupted", "{shown}");

    // Forced: the second step runs again, the first is kept.
    let resumed = cli(test, &dir)
        .args(["resume", "--force", "--json", &id])
        .output()
        .unwrap();
    assert_eq!(resumed.status.code(), Some(0), "{resumed:?}");
    assert_eq!(
        std::fs::read_to_string(workdir.join("first.txt")).unwrap(),
        "once\n",
        "the completed step ran again"
    );
    let shown = json(
        &cli(test, &dir)
            .args(["show", "--json", &id])
            .output()
            .unwrap(),
    );
    assert_eq!(shown["status"]["status"], "completed", "{shown}");
    assert_eq!(
        shown["previous_runs"][0]["status"], "interrupted",
        "{shown}"
    );
    assert_eq!(shown["status"]["steps"][1]["state"], "completed");
    let logs = json(
        &cli(test, &dir)
            .args(["logs", "--json", &id, "second"])
            .output()
            .unwrap(),
    );
    assert_eq!(logs[0]["stdout"], "changed\n", "{logs}");
    // Completed: nothing left to resume.
    let again = cli(test, &dir).args(["resume", &id]).output().unwrap();
    assert_eq!(again.status.code(), Some(2), "{again:?}");
    let listed = json(
        &cli(test, &dir)
            .args([
                "list",
                "--json",
                "--status",
                "completed",
                "--pipeline",
                "two",
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(listed[0]["runs"], 2, "{listed}");
}

// Each attempt of a retried step is recorded, with how it ended and how long it ran.
#[tokio::test]
async fn every_attempt_of_a_retried_step_is_in_the_store() {
    use pipeline_manager::StepExit;
    let dir = common::output_dir("store-attempts");
    let manager = PipelineManager::start(ManagerConfig {
        output_dir: dir.clone(),
        ..ManagerConfig::default()
    })
    .await
    .expect("manager");
    let spec = common::edited(
        shell(
            "retried",
            &[("flaky", "test -f n && exit 0; touch n; exit 4")],
        ),
        |draft| {
            draft.steps[0].retries = 2;
            draft.steps[0].retry_backoff = Duration::from_millis(10);
        },
    );
    let id = manager.run_pipeline(spec).await.expect("run");
    assert_eq!(
        manager.wait(&id, WAIT).await.unwrap().status,
        Status::Completed
    );
    let stored = manager.stored(&id).await.expect("stored");
    let exits: Vec<_> = stored.status.steps[0]
        .past_attempts
        .iter()
        .map(|attempt| attempt.exit.clone())
        .collect();
    assert_eq!(exits, vec![StepExit::Code(4), StepExit::Success]);
    manager.shutdown().await.expect("shutdown");
}
