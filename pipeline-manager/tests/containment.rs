//! No step process outlives its step, however it tries to leave: `setsid`, job control, a
//! double fork, a daemon that keeps the step's output open. Each test runs under both kinds of
//! containment (a PID namespace per step, and the subreaper used where namespaces are not
//! allowed), and finds the step's processes by the mark in their environment, whatever pid
//! namespace they are in.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::{
    WAIT, assert_none_marked, manager_with, marked, processes_marked, shell, wait_for_file,
};
use pipeline_manager::step_runner::{
    Containment, ShellExecutor, StepExecutor, StepOutcome, StepRun,
};
use pipeline_manager::{ExecutionStatus, PipelineSpec, Status, StepAction, StepExit, StepSpec};

/// Four processes that each leave the step's process group or its process tree, and signal
/// that they are up with a file, which the step waits for (bounded) so that each has really
/// escaped before the step goes on: a `setsid` process, an orphan of a double fork, a job of a
/// shell with job control (a group of its own), and a daemon in a session of its own that
/// keeps the step's stdout and stderr open.
const ESCAPES: &str = "\
    setsid sh -c 'echo > setsid.up; exec sleep 301' & \
    ( sh -c 'echo > orphan.up; exec sleep 302' & ) ; \
    bash -c 'set -m; sh -c \"echo > job.up; exec sleep 303\" &' ; \
    setsid sh -c 'echo > daemon.up; exec sleep 304' & \
    i=0; \
    while [ ! -e setsid.up ] || [ ! -e orphan.up ] || [ ! -e job.up ] || [ ! -e daemon.up ]; do \
      i=$((i+1)); [ $i -gt 5000000 ] && { echo 'the escapes never started' >&2; exit 99; }; \
    done; \
    echo ready > ready; ";

/// The processes `ESCAPES` leaves, besides the step's own.
const ESCAPED: usize = 4;

fn executor(containment: Containment) -> Arc<ShellExecutor> {
    Arc::new(
        ShellExecutor::new()
            .with_init(env!("CARGO_BIN_EXE_pipeline-step-init"))
            .with_containment(containment),
    )
}

/// Whether this machine lets us make PID namespaces; where it does not, the namespace tests
/// check that such a step fails and says why, instead of running uncontained.
fn namespaces_available() -> bool {
    std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", "--mount-proc", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs `spec` (marked `mark`) contained by `containment`, with a kill grace of `grace`; calls
/// `act` once the step has written `ready`, and returns the final status once none of the
/// step's processes is left. `None` where `containment` is a namespace and none can be made
/// (after checking that the step failed saying so).
async fn contained_run<F: Future<Output = ()>>(
    test: &str,
    containment: Containment,
    grace: Duration,
    spec: PipelineSpec,
    act: impl FnOnce(pipeline_manager::PipelineManager, pipeline_manager::ExecutionId) -> F,
) -> Option<Arc<ExecutionStatus>> {
    let mark = common::mark(&format!("{test}-{containment:?}"));
    let manager = manager_with(&mark, |config| {
        config.executor = executor(containment);
        config.kill_grace = grace;
    })
    .await;
    let id = manager.run_pipeline(marked(spec, &mark)).await.unwrap();
    if containment == Containment::Namespace && !namespaces_available() {
        let status = manager.wait(&id, WAIT).await.unwrap();
        let error = format!("{:?}", status.steps[0].exit);
        assert!(error.contains("no PID namespace"), "{error}");
        eprintln!("{test}: no PID namespaces on this machine; checked the refusal only");
        return None;
    }
    let dir = manager.status(&id).await.unwrap().workdir;
    wait_for_file(&dir, "ready").await;
    act(manager.clone(), id.clone()).await;
    let status = manager.wait(&id, WAIT).await.unwrap();
    assert_none_marked(&mark).await;
    manager.shutdown().await.unwrap();
    Some(status)
}

async fn a_step_that_exits_takes_its_escaped_processes_with_it(containment: Containment) {
    // A long grace: the step must end as its command does, not when the grace runs out on a
    // daemon still holding its output.
    let grace = Duration::from_secs(30);
    let spec = shell("escapes", &[("escapes", &format!("{ESCAPES} echo done"))]);
    let test = "exits";
    let Some(status) = contained_run(test, containment, grace, spec, |_, _| async {}).await else {
        return;
    };
    assert_eq!(status.status, Status::Completed, "{:?}", status.error);
    let step = &status.steps[0];
    assert_eq!(step.output_tail, ["done"], "nothing held its output open");
    assert!(
        step.duration_ms.unwrap() < grace.as_millis() as u64,
        "the step waited out the grace: {:?} ms",
        step.duration_ms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_exits_takes_its_escaped_processes_with_it_in_a_namespace() {
    a_step_that_exits_takes_its_escaped_processes_with_it(Containment::Namespace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_exits_takes_its_escaped_processes_with_it_under_a_subreaper() {
    a_step_that_exits_takes_its_escaped_processes_with_it(Containment::Subreaper).await;
}

async fn cancel_ends_every_process_of_the_step(containment: Containment) {
    let grace = Duration::from_secs(30);
    let spec = shell("escapes", &[("escapes", &format!("{ESCAPES} sleep 300"))]);
    let test = "cancel";
    let act = |manager: pipeline_manager::PipelineManager, id| async move {
        let mark = common::mark(&format!("{test}-{containment:?}"));
        assert!(processes_marked(&mark).len() > ESCAPED, "all are running");
        manager.cancel(&id).await.unwrap();
    };
    let Some(status) = contained_run(test, containment, grace, spec, act).await else {
        return;
    };
    assert_eq!(status.status, Status::Cancelled);
    // SIGTERM ended it: the step did not wait out the 30 s grace for the SIGKILL.
    assert_eq!(status.steps[0].exit, Some(StepExit::Signal(15)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_every_process_of_the_step_in_a_namespace() {
    cancel_ends_every_process_of_the_step(Containment::Namespace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_every_process_of_the_step_under_a_subreaper() {
    cancel_ends_every_process_of_the_step(Containment::Subreaper).await;
}

async fn a_step_timeout_ends_a_step_that_ignores_sigterm(containment: Containment) {
    let grace = Duration::from_millis(300);
    let mut step = StepSpec::new(
        "stubborn",
        StepAction::Run(format!(
            "trap '' TERM; {ESCAPES} while true; do sleep 1; done"
        )),
    );
    step.timeout = Some(Duration::from_secs(2));
    let spec = PipelineSpec::new("stubborn", vec![step]).unwrap();
    let test = "timeout";
    let Some(status) = contained_run(test, containment, grace, spec, |_, _| async {}).await else {
        return;
    };
    assert_eq!(status.status, Status::Failed);
    assert!(
        status.error.as_deref().unwrap().contains("timed out"),
        "{:?}",
        status.error
    );
    assert_eq!(
        status.steps[0].exit,
        Some(StepExit::Signal(9)),
        "SIGKILL after the grace"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_timeout_ends_a_step_that_ignores_sigterm_in_a_namespace() {
    a_step_timeout_ends_a_step_that_ignores_sigterm(Containment::Namespace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_timeout_ends_a_step_that_ignores_sigterm_under_a_subreaper() {
    a_step_timeout_ends_a_step_that_ignores_sigterm(Containment::Subreaper).await;
}

async fn shutting_down_ends_every_process_of_a_running_step(containment: Containment) {
    let spec = shell("escapes", &[("escapes", &format!("{ESCAPES} sleep 300"))]);
    let test = "shutdown";
    let mark = common::mark(&format!("{test}-{containment:?}"));
    let manager = manager_with(&mark, |config| config.executor = executor(containment)).await;
    if containment == Containment::Namespace && !namespaces_available() {
        return;
    }
    let id = manager.run_pipeline(marked(spec, &mark)).await.unwrap();
    let dir = manager.status(&id).await.unwrap().workdir;
    wait_for_file(&dir, "ready").await;
    manager.shutdown().await.unwrap();
    assert_none_marked(&mark).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_ends_every_process_of_a_running_step_in_a_namespace() {
    shutting_down_ends_every_process_of_a_running_step(Containment::Namespace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_ends_every_process_of_a_running_step_under_a_subreaper() {
    shutting_down_ends_every_process_of_a_running_step(Containment::Subreaper).await;
}

/// A SIGKILL of the CLI closes every step's control socket: each init kills its step's
/// processes and exits.
fn a_sigkill_of_the_cli_leaves_no_step_process(containment: &str) {
    let test = format!("cli-sigkill-{containment}");
    let mark = common::mark(&test);
    let dir = common::output_dir(&test);
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("escapes.toml");
    let line = format!("{ESCAPES} sleep 300")
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    std::fs::write(
        &spec,
        format!("name = \"escapes\"\n[[steps]]\nname = \"escapes\"\nrun = \"{line}\"\n"),
    )
    .unwrap();
    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_pipeline-manager"))
        .args(["run", "--containment", containment])
        .arg(&spec)
        .current_dir(&dir)
        .env(common::MARK, &mark)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    let ready = loop {
        let ready = common::first_execution_dir(&dir.join("runs"))
            .map(|run| run.join("ready"))
            .filter(|ready| ready.exists());
        if ready.is_some() || std::time::Instant::now() > deadline {
            break ready;
        }
        std::hint::spin_loop();
    };
    assert!(ready.is_some(), "{test}: the step never got ready");
    assert!(processes_marked(&mark).len() > ESCAPED, "all are running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(cli.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    cli.wait().unwrap();
    common::assert_none_marked_blocking(&mark);
}

#[test]
fn a_sigkill_of_the_cli_leaves_no_step_process_in_a_namespace() {
    if namespaces_available() {
        a_sigkill_of_the_cli_leaves_no_step_process("namespace");
    }
}

#[test]
fn a_sigkill_of_the_cli_leaves_no_step_process_under_a_subreaper() {
    a_sigkill_of_the_cli_leaves_no_step_process("subreaper");
}

/// An executor whose steps never end and ignore every stop request; it says when a step's
/// future is dropped.
struct Deaf(tokio::sync::mpsc::UnboundedSender<()>);

struct SaysWhenDropped(tokio::sync::mpsc::UnboundedSender<()>);

impl Drop for SaysWhenDropped {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

impl StepExecutor for Deaf {
    fn run(&self, _: &StepSpec, _: StepRun) -> Pin<Box<dyn Future<Output = StepOutcome> + Send>> {
        let dropped = SaysWhenDropped(self.0.clone());
        Box::pin(async move {
            let _dropped = dropped;
            std::future::pending().await
        })
    }
}

// The manager never signals anything itself; an executor that ignores its stop requests is
// dropped a grace after the kill request, and the execution still ends cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_that_ignores_stop_requests_is_dropped_after_the_kill_grace() {
    let (dropped, mut drops) = tokio::sync::mpsc::unbounded_channel();
    let manager = manager_with("deaf", |config| {
        config.executor = Arc::new(Deaf(dropped));
        config.kill_grace = Duration::from_millis(100);
    })
    .await;
    let spec = shell("deaf", &[("deaf", "true")]);
    let id = manager.run_pipeline(spec).await.unwrap();
    let mut updates = manager.subscribe();
    manager.cancel(&id).await.unwrap();
    tokio::time::timeout(WAIT, drops.recv())
        .await
        .expect("the step's future was dropped")
        .unwrap();
    let status = common::next_update(&mut updates, &id, |status| status.status.is_final()).await;
    assert_eq!(status.status, Status::Cancelled);
    manager.shutdown().await.unwrap();
}
