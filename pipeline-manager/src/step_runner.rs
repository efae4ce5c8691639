//! Running one attempt of a step: the [`StepExecutor`] trait, and [`ShellExecutor`], which runs
//! the step's command as a real OS process, contained with everything it starts.
//!
//! A step attempt runs in a supervised task (the worker starts it under the manager's
//! `TaskSupervisor` and gets the outcome by message), never in the worker itself, so a worker
//! always answers status calls while its steps run.
//!
//! # Containment
//!
//! No process a step starts outlives the step, however it tries to leave (`setsid`, a shell's
//! job control, a double fork, a daemon holding the step's stdout open): [`ShellExecutor`] runs
//! every attempt under `pipeline-step-init` ([`crate::step_init`]), a small init that starts
//! the step's command, passes on the manager's [`StopRequest`]s (SIGTERM, then SIGKILL a kill
//! grace later), and, once the command has exited, ends everything the command left behind
//! before it reports how the command ended. The manager talks to it over a Unix socket, never
//! by signalling a pid: it cannot signal anything it did not start, or a pid that was reaped
//! and reused. When the socket closes (the step's task was dropped, or the manager died,
//! SIGKILL included), the init kills the step's processes and exits.
//!
//! The init contains the step in one of two ways ([`Containment`]):
//!
//! - **A PID namespace per step** (`unshare --pid --fork --kill-child --mount-proc`, from
//!   util-linux), where the machine allows it (root, or CAP_SYS_ADMIN; containers often drop
//!   it). The init is the namespace's pid 1: when it exits, or `unshare` above it is killed,
//!   the kernel kills every process of the namespace, and no process can leave one. Chosen
//!   first because it is atomic and the kernel does it: nothing to sweep, no race with a
//!   process that forks. The step sees its own pids and `/proc`.
//! - **A child subreaper** (`PR_SET_CHILD_SUBREAPER`) otherwise: every orphan the step makes is
//!   re-parented to the init, which, after the command exits, kills its children round after
//!   round until none are left. What it does not cover: SIGTERM reaches only the command's
//!   process group (what left it is SIGKILLed when the command exits, without a SIGTERM first),
//!   and if the init itself is SIGKILLed, what it still had is left to the system's init.
//!
//! Neither holds a process that is root and means to leave (it can join another namespace);
//! cgroups v2 with `cgroup.kill` would, and are not used, since they need a delegated
//! hierarchy most machines do not give a user.
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

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::execution::StepExit;
use crate::pipeline::{StepAction, StepSpec};
use crate::step_init::{self, Report};

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

/// What an attempt is given: where to run, and the manager's requests to stop it.
pub struct StepRun {
    /// The execution's directory (each attempt makes it if it is not there yet).
    pub workdir: Arc<Path>,
    /// Time between [`StopRequest::Terminate`] and [`StopRequest::Kill`] when the attempt is
    /// cancelled or times out; also how long its output is still read after its processes have
    /// ended.
    pub kill_grace: std::time::Duration,
    /// Where the attempt's output goes: `<log_stem>.stdout` and `<log_stem>.stderr` (see
    /// [`log_stem`]).
    pub log_stem: PathBuf,
    /// The manager's requests to stop the attempt.
    pub stop: StopRequests,
}

/// What the manager asks of a running attempt. The manager never signals a process itself: an
/// executor stops what it started, so nothing it did not start can be signalled, and no pid
/// that has been reaped (and perhaps reused) is ever used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StopRequest {
    /// Stop, gracefully: the execution was cancelled or timed out (SIGTERM, for processes).
    Terminate,
    /// Stop now: the kill grace after `Terminate` is over (SIGKILL). An attempt still running a
    /// kill grace after this is ended by dropping its future.
    Kill,
}

/// The stop requests for one attempt, in the order they come.
pub struct StopRequests(watch::Receiver<Option<StopRequest>>);

impl StopRequests {
    /// A sender and the requests it sends.
    pub(crate) fn channel() -> (watch::Sender<Option<StopRequest>>, StopRequests) {
        let (sender, requests) = watch::channel(None);
        (sender, StopRequests(requests))
    }

    /// Waits for the next request. A gone worker can ask nothing more, so its end is a
    /// [`StopRequest::Kill`]; after a `Kill`, stop asking.
    pub async fn next(&mut self) -> StopRequest {
        match self.0.changed().await {
            Ok(()) => self.0.borrow_and_update().unwrap_or(StopRequest::Kill),
            Err(_) => StopRequest::Kill,
        }
    }
}

/// Runs steps. Implement it to plug in your own kind of step; [`ShellExecutor`] is the default.
///
/// The future runs in a supervised task: a panic in it makes the execution `crashed`, and
/// stopping the execution drops it at its next `.await`. It should watch
/// [`StepRun::stop`]: an attempt that ignores it is dropped a kill grace after the
/// [`StopRequest::Kill`].
pub trait StepExecutor: Send + Sync + 'static {
    /// Runs one attempt of `step`.
    fn run(
        &self,
        step: &StepSpec,
        run: StepRun,
    ) -> Pin<Box<dyn Future<Output = StepOutcome> + Send>>;
}

/// How a [`ShellExecutor`] keeps a step's processes together (see the
/// [module docs](self#containment)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Containment {
    /// A PID namespace per step where this machine allows one, else a subreaper.
    #[default]
    Auto,
    /// A PID namespace per step; a step fails if none can be made.
    Namespace,
    /// The step's init as a child subreaper, without a namespace.
    Subreaper,
}

/// Runs a step's `run` line with `sh -c`, or its `command` argv, in the execution's directory,
/// under `pipeline-step-init` ([`crate::step_init`]), which keeps its processes contained.
#[derive(Debug, Clone, Default)]
pub struct ShellExecutor {
    /// The init program, and the arguments that come before the step's command.
    init: Option<(PathBuf, Vec<std::ffi::OsString>)>,
    containment: Containment,
}

impl ShellExecutor {
    /// Steps run under the `pipeline-step-init` found next to the running program (or one
    /// directory up, where cargo puts tests), contained by [`Containment::Auto`].
    pub fn new() -> ShellExecutor {
        ShellExecutor::default()
    }

    /// Steps run under the `pipeline-step-init` program at `path`.
    pub fn with_init(mut self, path: impl Into<PathBuf>) -> ShellExecutor {
        self.init = Some((path.into(), Vec::new()));
        self
    }

    /// Steps run under the program at `path` given `args` before the step's command: a
    /// program that is its own init (the `pipeline-manager` binary runs as one given
    /// `__step-init`), so that it needs no `pipeline-step-init` beside it.
    pub fn with_init_command<A: Into<std::ffi::OsString>>(
        mut self,
        path: impl Into<PathBuf>,
        args: impl IntoIterator<Item = A>,
    ) -> ShellExecutor {
        self.init = Some((path.into(), args.into_iter().map(Into::into).collect()));
        self
    }

    /// Steps are contained by `containment`.
    pub fn with_containment(mut self, containment: Containment) -> ShellExecutor {
        self.containment = containment;
        self
    }
}

impl StepExecutor for ShellExecutor {
    fn run(
        &self,
        step: &StepSpec,
        run: StepRun,
    ) -> Pin<Box<dyn Future<Output = StepOutcome> + Send>> {
        let step = step.clone();
        let executor = self.clone();
        Box::pin(async move {
            let started = Instant::now();
            let exit = match executor.command(&step).await {
                Ok(command) => return run_command(command, run, started).await,
                Err(error) => StepExit::Error(error),
            };
            StepOutcome {
                exit,
                output_tail: Vec::new(),
                duration: started.elapsed(),
            }
        })
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

/// The name of the step init program.
const INIT_PROGRAM: &str = "pipeline-step-init";

impl ShellExecutor {
    /// The command that runs `step` under its init, and whether it makes a PID namespace.
    async fn command(&self, step: &StepSpec) -> Result<StepCommand, String> {
        let (init, init_args) = match &self.init {
            Some((init, args)) => (init.clone(), args.as_slice()),
            None => (init_next_to_this_program()?.clone(), &[][..]),
        };
        // Checked here: under `unshare`, a missing init would be only an exit code.
        if !init.is_file() {
            return Err(format!(
                "cannot run steps: no {INIT_PROGRAM} at {}",
                init.display()
            ));
        }
        let namespace = match self.containment {
            Containment::Auto => namespaces_available().await,
            Containment::Namespace if namespaces_available().await => true,
            Containment::Namespace => {
                return Err(
                    "no PID namespace can be made here (it needs CAP_SYS_ADMIN and \
                            util-linux's unshare)"
                        .into(),
                );
            }
            Containment::Subreaper => false,
        };
        let mut command = if namespace {
            let mut unshare = tokio::process::Command::new("unshare");
            unshare.args(UNSHARE).arg(init);
            unshare
        } else {
            tokio::process::Command::new(init)
        };
        command.args(init_args);
        match &step.action {
            StepAction::Run(line) => command.arg("sh").arg("-c").arg(line),
            StepAction::Command(argv) => command.args(argv),
        };
        command.envs(&step.env);
        Ok(StepCommand { command, namespace })
    }
}

/// `unshare`'s options for a step: a PID namespace whose first process (the init) is killed
/// if `unshare` is, with its own `/proc`, so that `$$` and `/proc/self` agree inside.
const UNSHARE: [&str; 5] = ["--pid", "--fork", "--kill-child", "--mount-proc", "--"];

/// Whether this machine lets us make a PID namespace with `unshare`: tried once per process.
async fn namespaces_available() -> bool {
    static AVAILABLE: tokio::sync::OnceCell<bool> = tokio::sync::OnceCell::const_new();
    *AVAILABLE
        .get_or_init(|| async {
            let tried = tokio::process::Command::new("unshare")
                .args(UNSHARE)
                .arg("true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
            let available = matches!(tried, Ok(status) if status.success());
            tracing::info!(
                containment = if available { "namespace" } else { "subreaper" },
                "steps are contained"
            );
            available
        })
        .await
}

/// `pipeline-step-init` next to the running program, or one directory up (cargo runs tests
/// from `target/<profile>/deps/`, beside which it puts the package's programs).
fn init_next_to_this_program() -> Result<&'static PathBuf, String> {
    static FOUND: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let program = std::env::current_exe()
                .map_err(|error| format!("cannot find {INIT_PROGRAM}: {error}"))?;
            let here = program.parent().unwrap_or(Path::new("."));
            [Some(here), here.parent()]
                .into_iter()
                .flatten()
                .map(|dir| dir.join(INIT_PROGRAM))
                .find(|init| init.is_file())
                .ok_or_else(|| {
                    format!(
                        "cannot find {INIT_PROGRAM} next to {}: install it with pipeline-manager \
                         (cargo builds both), or give its path to ShellExecutor::with_init",
                        program.display()
                    )
                })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// A step's command under its init.
struct StepCommand {
    command: tokio::process::Command,
    namespace: bool,
}

async fn run_command(step: StepCommand, run: StepRun, started: Instant) -> StepOutcome {
    let failed = |error: String| StepOutcome {
        exit: StepExit::Error(error),
        output_tail: Vec::new(),
        duration: started.elapsed(),
    };
    if let Err(error) = prepare_workdir(&run.workdir) {
        return failed(error);
    }
    let (control, init_end) = match std::os::unix::net::UnixStream::pair() {
        Ok(pair) => pair,
        Err(error) => return failed(format!("cannot make the step's control socket: {error}")),
    };
    let StepCommand {
        mut command,
        namespace,
    } = step;
    command
        .current_dir(&run.workdir)
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(init_end)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so that a terminal's ctrl-c reaches the manager only, which cancels.
        .process_group(0)
        // In a namespace, killing `unshare` kills the init, and with it the namespace. A
        // subreaper init is never killed: it would leave the step's processes behind. When the
        // step is dropped, the control socket closes, and the init kills them and exits.
        .kill_on_drop(namespace);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            let program = command
                .as_std()
                .get_program()
                .to_string_lossy()
                .into_owned();
            return failed(format!("could not run {program:?}: {error}"));
        }
    };
    // The init's end now lives in the init only: its end of the socket is what it watches.
    drop(command);
    let mut control = match control
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixStream::from_std(control))
    {
        Ok(control) => control,
        Err(error) => return failed(format!("cannot watch the step's control socket: {error}")),
    };
    let tail = Mutex::new(OutputTail::default());
    let drain_stdout = drain(child.stdout.take(), log(&run.log_stem, "stdout"), &tail);
    let drain_stderr = drain(child.stderr.take(), log(&run.log_stem, "stderr"), &tail);
    let mut stop = run.stop;
    let (status, stdout_log, stderr_log) = {
        let mut drains = std::pin::pin!(async { tokio::join!(drain_stdout, drain_stderr) });
        let mut killed = false;
        let mut logs = None;
        // Wait for the init while the output is read and the manager's requests are passed on.
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                request = stop.next(), if !killed => {
                    killed = request == StopRequest::Kill;
                    let byte = match request {
                        StopRequest::Terminate => step_init::TERMINATE,
                        StopRequest::Kill => step_init::KILL,
                    };
                    // If this fails, the init has exited, and `wait` returns next.
                    let _ = control.write_all(&[byte]).await;
                }
                read = &mut drains, if logs.is_none() => logs = Some(read),
            }
        };
        // The init has exited, and every process of the step with it. What is left in the pipes is
        // read for at most the kill grace all the same.
        let (stdout_log, stderr_log) = match logs {
            Some(read) => read,
            None => match tokio::time::timeout(run.kill_grace, &mut drains).await {
                Ok(read) => read,
                Err(_) => {
                    let held = "something outside the step still holds its output open; not read \
                            further"
                        .to_string();
                    (Err(std::io::Error::other(held)), Ok(()))
                }
            },
        };
        (status, stdout_log, stderr_log)
    };
    let mut report = String::new();
    let _ = tokio::time::timeout(run.kill_grace, control.read_to_string(&mut report)).await;
    let exit = match (Report::parse(&report), status) {
        (Some(Report::Exited(0)), _) => StepExit::Success,
        (Some(Report::Exited(code)), _) => StepExit::Code(code),
        (Some(Report::Signaled(signal)), _) => StepExit::Signal(signal),
        (Some(Report::Error(message)), _) => StepExit::Error(message),
        // No report: the init itself was killed, or failed.
        (None, Ok(status)) => match (
            status.code(),
            std::os::unix::process::ExitStatusExt::signal(&status),
        ) {
            (_, Some(signal)) => StepExit::Signal(signal),
            (Some(code), None) => StepExit::Error(format!(
                "{INIT_PROGRAM} failed (exit code {code}); see the step's stderr"
            )),
            (None, None) => StepExit::Error("unknown exit status".into()),
        },
        (None, Err(error)) => StepExit::Error(error.to_string()),
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

/// Makes the execution's directory if it is not there yet (several first steps may start at
/// once; a resumed execution reuses it), then checks that it is a directory and not a symlink
/// planted under its name in a shared output directory: nothing is ever written through one.
/// Called by each attempt, in its task: filesystem calls block, and a pipeline whose steps
/// never run a command gets no directory.
fn prepare_workdir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!("{} is not a directory", dir.display())),
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
        if let Some(file) = &mut log
            && let Err(error) = file.write_all(bytes).await
        {
            failed = Some(error);
            log = None;
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

    use super::{ShellExecutor, StepExecutor, StepRun, StopRequests};
    use crate::execution::StepExit;
    use crate::pipeline::{StepAction, StepSpec};

    /// A first attempt in `workdir`, and the sender of its stop requests (the attempt is killed
    /// once it is dropped).
    fn first_attempt(
        workdir: &Path,
    ) -> (
        StepRun,
        tokio::sync::watch::Sender<Option<super::StopRequest>>,
    ) {
        let (stop, requests) = StopRequests::channel();
        let run = StepRun {
            workdir: Arc::from(workdir),
            kill_grace: std::time::Duration::from_secs(1),
            log_stem: super::log_stem(workdir, 0, "a"),
            stop: requests,
        };
        (run, stop)
    }

    // A symlink planted under an execution directory's name (in a shared output directory) is
    // not used: nothing is written through it.
    #[tokio::test]
    async fn a_step_never_runs_through_a_symlink_at_its_directory() {
        let root = std::env::temp_dir().join(format!("pm-unit-{}-workdir", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let elsewhere = root.join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        let planted = root.join("exec-planted");
        std::os::unix::fs::symlink(&elsewhere, &planted).unwrap();
        let step = StepSpec::new("a", StepAction::Run("echo leaked > leak.txt".into()));
        let executor = ShellExecutor::new();
        let (run, _stop) = first_attempt(&planted);
        let outcome = executor.run(&step, run).await;
        match &outcome.exit {
            StepExit::Error(message) => {
                assert!(message.contains("is not a directory"), "{message}")
            }
            other => panic!("the step ran through a planted symlink: {other:?}"),
        }
        assert!(!elsewhere.join("leak.txt").exists());
        assert!(!elsewhere.join("logs").exists());
        let fresh = root.join("exec-fresh");
        let (run, _stop) = first_attempt(&fresh);
        let outcome = executor.run(&step, run).await;
        assert_eq!(outcome.exit, StepExit::Success, "{:?}", outcome.output_tail);
        assert!(fresh.join("leak.txt").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    // Without its init a step cannot be contained, so it does not run, and says why.
    #[tokio::test]
    async fn a_step_without_its_init_fails_naming_it() {
        let root = std::env::temp_dir().join(format!("pm-unit-{}-noinit", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let step = StepSpec::new("a", StepAction::Run("true".into()));
        let executor = ShellExecutor::new().with_init(root.join("no-such-init"));
        let (run, _stop) = first_attempt(&root.join("exec"));
        let outcome = executor.run(&step, run).await;
        match &outcome.exit {
            StepExit::Error(message) => assert!(message.contains("no-such-init"), "{message}"),
            other => panic!("ran without its init: {other:?}"),
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}
