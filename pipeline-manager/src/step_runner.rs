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
//! its group is killed too. The manager only ever signals a [`ProcessGroup`] a step really
//! started.
//!
//! What this does not contain yet: a process that leaves the group (`setsid`, a shell's job
//! control, which gives each background job a group of its own, a double fork into a new
//! session) outlives its step; after a SIGKILL of the manager itself, running steps are not
//! killed. Such a process cannot hold its step up, though: once the step's process has exited,
//! what is left in its pipes is read for the kill grace at most.
//!
//! # Output
//!
//! A step's stdout and stderr are read while it runs, concurrently with waiting for it (a pipe
//! that nobody reads fills at 64 KiB and blocks the writer), and written in full to its log
//! files, `logs/<n>-<step>.stdout` and `.stderr` in the execution's directory ([`log_stem`]);
//! each attempt appends. In memory a step keeps only its output's last
//! [`OUTPUT_TAIL_BYTES`] bytes, whatever it prints, and its status shows their last
//! [`OUTPUT_TAIL_LINES`] lines. Output is bytes: what is not UTF-8 is shown lossily.

use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid as OsPid;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::execution::StepExit;
use crate::pipeline::{StepAction, StepSpec};

/// How many lines of output a step's status keeps.
pub const OUTPUT_TAIL_LINES: usize = 20;

/// How many bytes of a step's latest output are kept in memory, for its status's tail. The
/// whole output is in the step's log files.
pub const OUTPUT_TAIL_BYTES: usize = 8 * 1024;

/// How many characters of a step's name its log files keep: file names are limited to 255
/// bytes, and the position in front keeps shortened names apart.
const LOG_NAME_CHARS: usize = 100;

/// Where the output of step `index` (0-based) named `name` goes, without its extension:
/// `<workdir>/logs/<index + 1>-<name>`, the name's first 100 characters with every one other
/// than an ASCII letter, digit, `.`, `-` or `_` replaced by `_`, so that no name can lead out
/// of `logs/` or be too long for a file. Add the stream with [`log_file`].
pub fn log_stem(workdir: &Path, index: usize, name: &str) -> PathBuf {
    let name: String = name
        .chars()
        .take(LOG_NAME_CHARS)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    workdir.join("logs").join(format!("{}-{name}", index + 1))
}

/// The log file of `stream` (`stdout` or `stderr`) for a [`log_stem`]: the stream appended,
/// whatever dots the step's name holds (`1-build.release.stdout`).
pub fn log_file(stem: &Path, stream: &str) -> PathBuf {
    let mut file = stem.as_os_str().to_owned();
    file.push(".");
    file.push(stream);
    PathBuf::from(file)
}

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
    /// Time between SIGTERM and SIGKILL when the attempt is cancelled or times out; also how
    /// long its output is still read after its process has exited.
    pub kill_grace: std::time::Duration,
    /// Whether this is the execution's first attempt, which creates `workdir`: fresh, with
    /// `create_dir` (never following a symlink, never reusing a directory that exists). Later
    /// attempts find it made.
    pub creates_workdir: bool,
    /// Where the attempt's output goes: `<log_stem>.stdout` and `<log_stem>.stderr` (see
    /// [`log_stem`]).
    pub log_stem: PathBuf,
    pub(crate) on_spawn: Box<dyn Fn(ProcessGroup) + Send + Sync>,
}

impl StepRun {
    /// Tells the worker the process group this attempt started, so cancel and timeout can
    /// signal it.
    pub fn spawned(&self, group: ProcessGroup) {
        (self.on_spawn)(group);
    }
}

/// A process group an attempt started, the only thing the manager ever signals. It can be
/// made only from a child the attempt spawned that leads a group of its own, so a
/// [`StepExecutor`] cannot make the manager signal pid 0 (its own group), 1 (`kill(-1)`: every
/// process it may signal), or anything else it did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessGroup(i32);

impl ProcessGroup {
    /// The group `child` leads; `None` if it has exited already, or does not lead a group of
    /// its own (spawn it with `process_group(0)`).
    pub fn of(child: &tokio::process::Child) -> Option<ProcessGroup> {
        let pid = i32::try_from(child.id()?).ok()?;
        let group = nix::unistd::getpgid(Some(OsPid::from_raw(pid))).ok()?;
        let leads_its_own = group.as_raw() == pid && group != nix::unistd::getpgrp();
        (pid > 1 && leads_its_own).then_some(ProcessGroup(pid))
    }

    /// Sends `signal` to every process of the group; a group that is already gone is fine.
    pub(crate) fn signal(self, signal: Signal) {
        let _ = killpg(OsPid::from_raw(self.0), signal);
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

/// Kills the attempt's whole process group when dropped: the task was stopped, or the step's
/// main process exited and left others behind.
struct GroupGuard(ProcessGroup);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.0.signal(Signal::SIGKILL);
    }
}

async fn run_command(step: &StepSpec, run: StepRun) -> StepOutcome {
    let started = Instant::now();
    // Here, in the step's task, rather than in the worker: filesystem calls block.
    if let Err(error) = workdir(&run) {
        return StepOutcome {
            exit: StepExit::Error(error),
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
            let program = match &step.action {
                StepAction::Run(_) => "sh",
                StepAction::Command(argv) => argv[0].as_str(),
            };
            return StepOutcome {
                exit: StepExit::Error(format!("could not run {program:?}: {error}")),
                output_tail: Vec::new(),
                duration: started.elapsed(),
            };
        }
    };
    let group = ProcessGroup::of(&child);
    let _guard = group.map(GroupGuard);
    if let Some(group) = group {
        run.spawned(group);
    }
    let tail = Mutex::new(OutputTail::default());
    let drain_stdout = drain(child.stdout.take(), log(&run.log_stem, "stdout"), &tail);
    let drain_stderr = drain(child.stderr.take(), log(&run.log_stem, "stderr"), &tail);
    let (status, stdout_log, stderr_log) = {
        let mut drains = std::pin::pin!(async { tokio::join!(drain_stdout, drain_stderr) });
        // Wait for the step's process while its output is read.
        let mut logs = None;
        let status = tokio::select! {
            status = child.wait() => status,
            read = &mut drains => {
                logs = Some(read);
                child.wait().await
            }
        };
        // It has exited: kill anything it left in its group, so the pipes close and nothing
        // outlives the step.
        if let Some(group) = group {
            group.signal(Signal::SIGKILL);
        }
        // What is left in the pipes is read for at most the kill grace: a process that left the
        // step's group (`setsid`) and keeps its stdout open must not keep the step from ending.
        let (stdout_log, stderr_log) = match logs {
            Some(read) => read,
            None => match tokio::time::timeout(run.kill_grace, &mut drains).await {
                Ok(read) => read,
                Err(_) => {
                    let held = "a process outside the step's group still holds its output open; \
                                not read further"
                        .to_string();
                    (Err(std::io::Error::other(held)), Ok(()))
                }
            },
        };
        (status, stdout_log, stderr_log)
    };
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
    let mut output_tail = tail.into_inner().lines();
    for error in [stdout_log, stderr_log].into_iter().filter_map(Result::err) {
        output_tail.push(format!("(output log not written: {error})"));
    }
    StepOutcome {
        exit,
        output_tail,
        duration: started.elapsed(),
    }
}

/// Makes the execution's directory on its first attempt, exclusively: `create_dir` fails on
/// anything already there, a symlink planted under the name included (ids cannot be guessed
/// in advance, so that would be an attack or a bug). Later attempts check that it is still a
/// directory, not a symlink that replaced it.
fn workdir(run: &StepRun) -> Result<(), String> {
    let dir = &run.workdir;
    if run.creates_workdir {
        // The output directory itself may be shared, and made on first use.
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|error| format!("cannot create {}: {error}", parent.display()))?;
        }
        return std::fs::create_dir(dir).map_err(|error| match error.kind() {
            std::io::ErrorKind::AlreadyExists => {
                format!(
                    "{} already exists: an execution directory is always new",
                    dir.display()
                )
            }
            _ => format!("cannot create {}: {error}", dir.display()),
        });
    }
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!("{} is no longer a directory", dir.display())),
        Err(error) => Err(format!("{}: {error}", dir.display())),
    }
}

/// Opens (creating it and `logs/` if need be) the log file `<stem>.<stream>`, to append to.
fn log(stem: &Path, stream: &str) -> std::io::Result<tokio::fs::File> {
    if let Some(logs) = stem.parent() {
        std::fs::create_dir_all(logs)?;
    }
    let path = log_file(stem, stream);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|error| {
            std::io::Error::new(error.kind(), format!("{}: {error}", path.display()))
        })?;
    Ok(tokio::fs::File::from_std(file))
}

/// Reads `stream` to its end, writing everything to `log` and keeping the latest bytes in
/// `tail`. A log that cannot be opened or written does not stop the reading: the step must
/// never block on a full pipe. Returns the log's error, if it had one.
async fn drain(
    stream: Option<impl AsyncRead + Unpin>,
    log: std::io::Result<tokio::fs::File>,
    tail: &Mutex<OutputTail>,
) -> std::io::Result<()> {
    let Some(mut stream) = stream else {
        return Ok(());
    };
    let (mut log, mut failed) = match log {
        Ok(file) => (Some(file), None),
        Err(error) => (None, Some(error)),
    };
    let mut chunk = vec![0; 64 * 1024];
    // A read error (the pipe broke) ends the output like its end does.
    while let Ok(read) = stream.read(&mut chunk).await {
        if read == 0 {
            break;
        }
        let bytes = &chunk[..read];
        tail.lock().push(bytes);
        if let Some(file) = &mut log {
            if let Err(error) = file.write_all(bytes).await {
                failed = Some(error);
                log = None;
            }
        }
    }
    if let Some(mut file) = log {
        file.flush().await?;
    }
    failed.map_or(Ok(()), Err)
}

/// The latest [`OUTPUT_TAIL_BYTES`] bytes of a step's output, both streams as they came.
#[derive(Default)]
struct OutputTail {
    bytes: VecDeque<u8>,
    /// Whether older bytes were dropped, so that the first line kept may be cut.
    cut: bool,
}

impl OutputTail {
    fn push(&mut self, bytes: &[u8]) {
        let keep = &bytes[bytes.len().saturating_sub(OUTPUT_TAIL_BYTES)..];
        let overflow = (self.bytes.len() + keep.len()).saturating_sub(OUTPUT_TAIL_BYTES);
        self.cut |= overflow > 0 || keep.len() < bytes.len();
        self.bytes.drain(..overflow);
        self.bytes.extend(keep);
    }

    /// The last [`OUTPUT_TAIL_LINES`] lines, non-UTF-8 bytes shown as U+FFFD. A line cut by
    /// the byte limit is left out, unless it is the only one (a single huge line shows its
    /// end).
    fn lines(self) -> Vec<String> {
        let bytes = Vec::from(self.bytes);
        let text = String::from_utf8_lossy(&bytes);
        let mut lines: Vec<&str> = text.lines().collect();
        if self.cut && lines.len() > 1 {
            lines.remove(0);
        }
        let skip = lines.len().saturating_sub(OUTPUT_TAIL_LINES);
        lines[skip..].iter().map(|line| line.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::{StepRun, run_command};
    use crate::execution::StepExit;
    use crate::pipeline::{StepAction, StepSpec};

    fn first_attempt(workdir: &Path) -> StepRun {
        StepRun {
            workdir: Arc::from(workdir),
            creates_workdir: true,
            kill_grace: std::time::Duration::from_secs(1),
            log_stem: super::log_stem(workdir, 0, "a"),
            on_spawn: Box::new(|_| {}),
        }
    }

    // An execution's directory is always new: a directory or a symlink already under its name
    // (planted in a shared output directory) is not used, and nothing is written through it.
    #[tokio::test]
    async fn the_first_attempt_never_uses_what_is_already_at_the_execution_path() {
        let root = std::env::temp_dir().join(format!("pm-unit-{}-workdir", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let elsewhere = root.join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        let planted = root.join("exec-planted");
        std::os::unix::fs::symlink(&elsewhere, &planted).unwrap();
        let step = StepSpec::new("a", StepAction::Run("echo leaked > leak.txt".into()));
        let outcome = run_command(&step, first_attempt(&planted)).await;
        match &outcome.exit {
            StepExit::Error(message) => assert!(message.contains("already exists"), "{message}"),
            other => panic!("the step ran through a planted symlink: {other:?}"),
        }
        assert!(!elsewhere.join("leak.txt").exists());
        assert!(!elsewhere.join("logs").exists());
        let fresh = root.join("exec-fresh");
        let outcome = run_command(&step, first_attempt(&fresh)).await;
        assert_eq!(outcome.exit, StepExit::Success);
        assert!(fresh.join("leak.txt").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    // A custom executor could report any number as its group (`spawned(0)` made a cancel
    // SIGTERM the manager's own group, `spawned(1)` would be `kill(-1)`). Now it can only
    // hand over a child it spawned, and only one that leads its own group counts.
    #[tokio::test]
    async fn only_a_child_that_leads_its_own_group_is_a_process_group() {
        use super::ProcessGroup;
        let mut own_group = tokio::process::Command::new("sleep")
            .arg("30")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        assert_eq!(
            ProcessGroup::of(&own_group),
            None,
            "it shares the manager's group"
        );
        let mut leader = tokio::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let group = ProcessGroup::of(&leader).expect("it leads its own group");
        group.signal(nix::sys::signal::Signal::SIGKILL);
        let status = leader.wait().await.unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        // Once it has exited, there is no group to hand over.
        assert_eq!(ProcessGroup::of(&leader), None);
        own_group.kill().await.unwrap();
    }
}
