//! `run` and `resume`: a manager whose tree is the program's application, live progress,
//! ctrl-c, and the summary.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use pipeline_manager::step_runner::{Containment, ShellExecutor};
use pipeline_manager::{
    ExecutionId, ExecutionStatus, ManagerConfig, PipelineError, PipelineManager, PipelineSpec,
    Status, StepProgress, StepState,
};

use crate::output::{errln, outln, shown, steps};
use crate::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, STEP_INIT};

/// Starts a manager on `output_dir` whose steps run under this program as their init.
pub(crate) async fn start_manager(
    output_dir: PathBuf,
    containment: Containment,
) -> Result<PipelineManager, ExitCode> {
    let mut executor = ShellExecutor::new().with_containment(containment);
    if let Ok(this_program) = std::env::current_exe() {
        executor = executor.with_init_command(this_program, [STEP_INIT]);
    }
    let config = ManagerConfig {
        output_dir,
        executor: Arc::new(executor),
        ..ManagerConfig::default()
    };
    PipelineManager::start(config).await.map_err(|error| {
        errln!("error: {}", shown(&error.to_string()));
        ExitCode::from(EXIT_FAILED)
    })
}

/// `resume` (see [`PipelineManager::resume`]: the spec file is read again and compared with
/// what ran).
pub(crate) async fn resume(
    id: ExecutionId,
    force: bool,
    output_dir: PathBuf,
    json: bool,
    containment: Containment,
) -> ExitCode {
    let mut signals = match Signals::install() {
        Ok(signals) => signals,
        Err(code) => return code,
    };
    if !output_dir
        .join(pipeline_manager::sqlite_store::DATABASE_FILE)
        .exists()
    {
        errln!(
            "error: no history in {}: nothing has run there",
            shown(&output_dir.display().to_string())
        );
        return ExitCode::from(EXIT_INVALID);
    }
    let manager = match start_manager(output_dir, containment).await {
        Ok(manager) => manager,
        Err(code) => return code,
    };
    let refused = |manager: PipelineManager, message: String| async move {
        errln!("error: {}", shown(&message));
        let _ = manager.shutdown().await;
        ExitCode::from(EXIT_INVALID)
    };
    let mut updates = manager.subscribe();
    match manager.resume(&id, None, force).await {
        Ok(()) => {}
        Err(PipelineError::NotFound(_)) => {
            return refused(manager, format!("no execution {id} in the history")).await;
        }
        Err(error) => return refused(manager, error.to_string()).await,
    }
    let (name, steps) = match manager.status(&id).await {
        Ok(status) => (status.pipeline.to_string(), status.steps_total),
        Err(error) => return refused(manager, error.to_string()).await,
    };
    let ids = vec![(id, name, steps)];
    as_application(
        &manager,
        watch(&manager, &mut updates, &mut signals, ids, false, json),
    )
    .await
}

/// Shows progress: bars on a terminal, plain lines otherwise.
pub(crate) struct Progress {
    bars: Option<(MultiProgress, BTreeMap<ExecutionId, ProgressBar>)>,
    last: BTreeMap<ExecutionId, (Status, Vec<Arc<str>>)>,
}

impl Progress {
    fn new(ids: &[(ExecutionId, String, usize)]) -> Progress {
        // Bars when a person watches; plain lines when the output goes to a file or a pipe.
        let bars =
            (std::io::stdout().is_terminal() && std::io::stderr().is_terminal()).then(|| {
                let multi = MultiProgress::new();
                let style =
                    ProgressStyle::with_template("{prefix:>20} [{bar:24}] {pos}/{len} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> ");
                let bars = ids
                    .iter()
                    .map(|(id, name, steps)| {
                        let bar = multi.add(ProgressBar::new(*steps as u64));
                        bar.set_style(style.clone());
                        bar.set_prefix(shown(name).into_owned());
                        (id.clone(), bar)
                    })
                    .collect();
                (multi, bars)
            });
        Progress {
            bars,
            last: BTreeMap::new(),
        }
    }

    fn update(&mut self, status: &ExecutionStatus) {
        let now = (status.status, status.running_steps.clone());
        if self.last.get(&status.execution_id) == Some(&now) && !status.status.is_final() {
            return;
        }
        self.last.insert(status.execution_id.clone(), now);
        let message = match (&status.status, status.running_steps.as_slice()) {
            (Status::Running, running) if !running.is_empty() => {
                format!("running {}", running.join(", "))
            }
            (Status::Pending, _) if status.restarted => {
                "pending (its worker crashed and restarted)".to_string()
            }
            (state, _) => state.to_string(),
        };
        match &mut self.bars {
            Some((_, bars)) => {
                if let Some(bar) = bars.get(&status.execution_id) {
                    bar.set_position(status.steps_completed as u64);
                    bar.set_message(shown(&message).into_owned());
                    if status.status.is_final() {
                        bar.finish();
                    }
                }
            }
            None => errln!(
                "{} {}: {} ({}/{})",
                shown(&status.pipeline),
                status.execution_id,
                shown(&message),
                status.steps_completed,
                steps(status.steps_total)
            ),
        }
    }
}

/// Completes on SIGINT, SIGTERM or SIGHUP. Installed before anything starts, so a signal at
/// any moment reaches the cleanup below instead of killing the program with steps running.
/// The signals that end a run the way ctrl-c does: cancel the running executions, kill their
/// processes, report, exit 130. SIGQUIT (ctrl-\\) too: its default would leave the steps
/// running.
pub(crate) struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers; exit 1, with a message, if they cannot be.
    fn install() -> Result<Signals, ExitCode> {
        use tokio::signal::unix::{SignalKind, signal};
        let install = || -> std::io::Result<Signals> {
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
                hangup: signal(SignalKind::hangup())?,
                quit: signal(SignalKind::quit())?,
            })
        };
        install().map_err(|error| {
            errln!("error: cannot install signal handlers: {error}");
            ExitCode::from(EXIT_FAILED)
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
            _ = self.hangup.recv() => {}
            _ = self.quit.recv() => {}
        }
    }
}

pub(crate) async fn run(
    specs: Vec<PipelineSpec>,
    output_dir: PathBuf,
    json: bool,
    containment: Containment,
) -> ExitCode {
    let mut signals = match Signals::install() {
        Ok(signals) => signals,
        Err(code) => return code,
    };
    let manager = match start_manager(output_dir, containment).await {
        Ok(manager) => manager,
        Err(code) => return code,
    };
    let mut updates = manager.subscribe();
    let mut ids = Vec::new();
    let mut start_failed = false;
    for spec in specs {
        let (name, steps) = (spec.name().to_string(), spec.steps().len());
        match manager.run_pipeline(spec).await {
            Ok(id) => ids.push((id, name, steps)),
            Err(error) => {
                errln!("error: {}: {}", shown(&name), shown(&error.to_string()));
                start_failed = true;
            }
        }
    }
    let watching = watch(
        &manager,
        &mut updates,
        &mut signals,
        ids,
        start_failed,
        json,
    );
    as_application(&manager, watching).await
}

/// Runs `work` with the manager's tree as this program's application
/// ([`Application`](otp_core::application::Application)): once `work` is done the tree is
/// stopped in order, every step's OS processes with it; if the tree's root gives up first,
/// the run has failed.
pub(crate) async fn as_application(
    manager: &PipelineManager,
    work: impl std::future::Future<Output = ExitCode>,
) -> ExitCode {
    use otp_core::application::{AppExit, Application};
    let mut code = None;
    let root = manager.root().clone();
    let outcome = Application::run_until(|| std::future::ready(Ok(root)), async {
        code = Some(work.await)
    })
    .await;
    match (outcome, code) {
        (AppExit::Stopped, Some(code)) => code,
        (outcome, _) => {
            errln!("error: the pipeline manager stopped: {outcome}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Shows the executions' progress until each has settled (ctrl-c cancels them), prints
/// their final statuses, and returns the exit code.
pub(crate) async fn watch(
    manager: &PipelineManager,
    updates: &mut pipeline_manager::ExecutionUpdates,
    signals: &mut Signals,
    ids: Vec<(ExecutionId, String, usize)>,
    start_failed: bool,
    json: bool,
) -> ExitCode {
    let mut progress = Progress::new(&ids);
    // The subscription predates every start, so it sees each execution's updates; a periodic
    // re-read of the board covers any it dropped by falling behind.
    let mut finals: BTreeMap<ExecutionId, Arc<ExecutionStatus>> = BTreeMap::new();
    let mut refresh = tokio::time::interval(Duration::from_secs(1));
    let mut interrupted = false;
    while finals.len() < ids.len() {
        tokio::select! {
            update = updates.next() => match update {
                Some(status) => {
                    if ids.iter().any(|(id, _, _)| id == &status.execution_id) {
                        progress.update(&status);
                        if status.is_settled() {
                            finals.insert(status.execution_id.clone(), status);
                        }
                    }
                }
                None => break,
            },
            _ = refresh.tick() => {
                for status in manager.list_executions(None) {
                    if ids.iter().any(|(id, _, _)| id == &status.execution_id) && status.is_settled() {
                        progress.update(&status);
                        finals.insert(status.execution_id.clone(), status);
                    }
                }
            }
            () = signals.next() => {
                if interrupted {
                    errln!("interrupted again: stopping now");
                    break;
                }
                interrupted = true;
                errln!("interrupted: cancelling running executions (again to stop at once)");
                for (id, _, _) in &ids {
                    let _ = manager.cancel(id).await;
                }
            }
        }
    }
    // After a second ctrl-c some executions have no final status yet: list them with their
    // last known one (from the board, which never waits for a worker).
    let last_known: BTreeMap<ExecutionId, Arc<ExecutionStatus>> = manager
        .list_executions(None)
        .into_iter()
        .map(|status| (status.execution_id.clone(), status))
        .collect();
    let statuses: Vec<Arc<ExecutionStatus>> = ids
        .iter()
        .filter_map(|(id, _, _)| finals.get(id).or_else(|| last_known.get(id)).cloned())
        .collect();
    if json {
        let plain: Vec<&ExecutionStatus> = statuses.iter().map(|s| s.as_ref()).collect();
        match serde_json::to_string_pretty(&plain) {
            Ok(text) => outln!("{text}"),
            Err(error) => errln!("error: {error}"),
        }
    } else {
        print_summary(&statuses);
    }
    let all_completed = !start_failed
        && !ids.is_empty()
        && statuses.len() == ids.len()
        && statuses.iter().all(|s| s.status == Status::Completed);
    if interrupted {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if all_completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

pub(crate) fn print_summary(statuses: &[Arc<ExecutionStatus>]) {
    outln!(
        "{:<20} {:<41} {:<10} {:>10}  detail",
        "pipeline",
        "execution",
        "status",
        "duration"
    );
    for status in statuses {
        let duration = status
            .duration_ms
            .map(|ms| humantime::format_duration(Duration::from_millis(ms)).to_string())
            .unwrap_or_default();
        let detail = match status.status {
            Status::Completed => status.result.clone().unwrap_or_default(),
            _ => status.error.clone().unwrap_or_default(),
        };
        outln!(
            "{:<20} {:<41} {:<10} {:>10}  {}",
            shown(&status.pipeline),
            status.execution_id,
            status.status,
            duration,
            shown(&detail)
        );
        for artifact in &status.artifacts {
            match artifact.bytes {
                Some(bytes) => outln!(
                    "{:<20} artifact {} ({bytes} bytes)",
                    "",
                    artifact.path.display()
                ),
                None => outln!("{:<20} artifact {} (missing)", "", artifact.path.display()),
            }
        }
        // The output of the steps that failed, which says why.
        for step in status.steps.iter().filter(|s| s.state == StepState::Failed) {
            outln!("{:<20} {} ({}):", "", shown(&step.name), step_ended(step));
            for line in &step.output_tail {
                outln!("{:<20} | {}", "", shown(line));
            }
        }
    }
}

/// How a step's last attempt ended, for the summary: "exit status 3", "killed by signal 15".
pub(crate) fn step_ended(step: &StepProgress) -> String {
    match &step.exit {
        Some(exit) => exit.to_string(),
        None => "stopped before it ended".to_string(),
    }
}
