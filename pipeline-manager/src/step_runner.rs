//! Running one attempt of a step: the [`StepExecutor`] trait, and [`ShellExecutor`], which runs
//! the step's command as a real OS process in its own process group.
//!
//! A step attempt runs in a supervised task (the worker starts it under the manager's
//! `TaskSupervisor` and gets the outcome by message), never in the worker itself, so a worker
//! always answers status calls while its steps run.
//!
//! # Process groups
//!
//! Each attempt's process is the leader of a new process group, so that cancel, timeout and
//! shutdown can signal the whole tree it started (`sh -c 'a | b &'` included): SIGTERM first,
//! SIGKILL after a grace period. When the attempt's process exits, whatever it left running in
//! its group is killed too: no OS process outlives its step.

use std::collections::VecDeque;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid as OsPid;
use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::execution::StepExit;
use crate::pipeline::{StepAction, StepSpec};

/// How many lines of output a step's status keeps.
pub const OUTPUT_TAIL_LINES: usize = 20;

/// What an attempt produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    /// How it ended.
    pub exit: StepExit,
    /// The last lines of its output.
    pub output_tail: Vec<String>,
    /// How long it ran.
    pub duration: std::time::Duration,
}

/// What an attempt is given: where to run, and how to say which process group it started.
pub struct StepRun {
    /// The execution's directory.
    pub workdir: Arc<Path>,
    pub(crate) on_spawn: Box<dyn Fn(i32) + Send + Sync>,
}

impl StepRun {
    /// Tells the worker the process group this attempt started, so cancel and timeout can
    /// signal it.
    pub fn spawned(&self, process_group: i32) {
        (self.on_spawn)(process_group);
    }
}

/// Runs steps. Implement it to plug in your own kind of step; [`ShellExecutor`] is the default.
///
/// The future runs in a supervised task: a panic in it makes the execution `crashed`, and
/// stopping the execution drops it at its next `.await`.
pub trait StepExecutor: Send + Sync + 'static {
    /// Runs one attempt of `step`.
    fn run(
        &self,
        step: &StepSpec,
        run: StepRun,
    ) -> Pin<Box<dyn Future<Output = StepOutcome> + Send>>;
}

/// Runs a step's `run` line with `sh -c`, or its `command` argv, in the execution's directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShellExecutor;

impl StepExecutor for ShellExecutor {
    fn run(
        &self,
        step: &StepSpec,
        run: StepRun,
    ) -> Pin<Box<dyn Future<Output = StepOutcome> + Send>> {
        let step = step.clone();
        Box::pin(async move { run_command(&step, run).await })
    }
}

/// Runs no process: every step succeeds at once. For benchmarks and tests of the manager itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopExecutor;

impl StepExecutor for NoopExecutor {
    fn run(&self, _: &StepSpec, _: StepRun) -> Pin<Box<dyn Future<Output = StepOutcome> + Send>> {
        Box::pin(std::future::ready(StepOutcome {
            exit: StepExit::Success,
            output_tail: Vec::new(),
            duration: std::time::Duration::ZERO,
        }))
    }
}

/// Sends `signal` to process group `group`; a group that is already gone is fine.
pub(crate) fn signal_group(group: i32, signal: Signal) {
    let _ = killpg(OsPid::from_raw(group), signal);
}

/// Kills the attempt's whole process group when dropped: the task was stopped, or the step's
/// main process exited and left others behind.
struct GroupGuard(i32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        signal_group(self.0, Signal::SIGKILL);
    }
}

async fn run_command(step: &StepSpec, run: StepRun) -> StepOutcome {
    let started = Instant::now();
    // Here, in the step's task, rather than in the worker: filesystem calls block.
    if let Err(error) = std::fs::create_dir_all(&run.workdir) {
        return StepOutcome {
            exit: StepExit::Error(format!("cannot create {}: {error}", run.workdir.display())),
            output_tail: Vec::new(),
            duration: started.elapsed(),
        };
    }
    let mut command = match &step.action {
        StepAction::Run(line) => {
            let mut command = tokio::process::Command::new("sh");
            command.arg("-c").arg(line);
            command
        }
        StepAction::Command(argv) => {
            let mut command = tokio::process::Command::new(&argv[0]);
            command.args(&argv[1..]);
            command
        }
    };
    command
        .current_dir(&run.workdir)
        .envs(&step.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return StepOutcome {
                exit: StepExit::Error(error.to_string()),
                output_tail: Vec::new(),
                duration: started.elapsed(),
            };
        }
    };
    let group = child.id().and_then(|id| i32::try_from(id).ok());
    let _guard = group.map(GroupGuard);
    if let Some(group) = group {
        run.spawned(group);
    }
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(OUTPUT_TAIL_LINES)));
    let stdout = child.stdout.take().map(|out| collect(out, tail.clone()));
    let stderr = child.stderr.take().map(|err| collect(err, tail.clone()));
    let status = child.wait().await;
    // The step's process has exited: kill anything it left in its group, so the pipes close
    // and nothing outlives the step.
    if let Some(group) = group {
        signal_group(group, Signal::SIGKILL);
    }
    if let Some(stdout) = stdout {
        stdout.await;
    }
    if let Some(stderr) = stderr {
        stderr.await;
    }
    let exit = match status {
        Ok(status) if status.success() => StepExit::Success,
        Ok(status) => match (
            status.code(),
            std::os::unix::process::ExitStatusExt::signal(&status),
        ) {
            (Some(code), _) => StepExit::Code(code),
            (None, Some(signal)) => StepExit::Signal(signal),
            (None, None) => StepExit::Error("unknown exit status".into()),
        },
        Err(error) => StepExit::Error(error.to_string()),
    };
    let output_tail = tail.lock().iter().cloned().collect();
    StepOutcome {
        exit,
        output_tail,
        duration: started.elapsed(),
    }
}

/// Reads `stream` line by line into the shared tail of the last lines.
async fn collect(stream: impl AsyncRead + Unpin, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut tail = tail.lock();
        if tail.len() == OUTPUT_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}
