//! `pipeline-manager`: run pipeline files on the manager, with live progress.
//!
//! ```text
//! pipeline-manager run [--output-dir DIR] [--json] [--containment auto|namespace|subreaper] [-v] FILE...
//! pipeline-manager resume [--output-dir DIR] [--json] [--force] [--containment ...] EXECUTION
//! pipeline-manager list [--output-dir DIR] [--json] [--status STATUS] [--pipeline NAME] [--limit N]
//! pipeline-manager show [--output-dir DIR] [--json] EXECUTION
//! pipeline-manager logs [--output-dir DIR] [--json] EXECUTION [STEP]
//! pipeline-manager validate FILE...
//! ```
//!
//! Exit codes: 0 every execution completed (`run`, `resume`) or the command did what it was
//! asked; 1 any failed, was cancelled, timed out or crashed, or the report could not be
//! written to stdout (a closed pipe is not an error); 2 an invalid spec, usage, an unknown
//! execution, or a resume refused; 130 interrupted by ctrl-c (running executions were
//! cancelled and their processes are gone).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use pipeline_manager::execution_store::{ExecutionStore, ListFilter, StoredExecution};
use pipeline_manager::sqlite_store::SqliteStore;
use pipeline_manager::step_runner::{Containment, ShellExecutor};
use pipeline_manager::{
    ExecutionId, ExecutionStatus, ManagerConfig, PipelineError, PipelineManager, PipelineSpec,
    Status, StepProgress, StepState,
};

/// An execution's memory is allocated on one runtime thread (where the supervisor starts its
/// worker) and freed on either: glibc malloc serialises such cross-thread frees behind an arena
/// lock, and jemalloc's per-thread caches take them without one (W9 in the README's
/// Performance: 134k executions/s against 113k).
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "pipeline-manager",
    version,
    about = "Run pipelines on a supervised pipeline manager"
)]
struct Cli {
    /// Log what the manager does (repeat for more); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// `--containment`: see [`pipeline_manager::step_runner::Containment`].
#[derive(Clone, Copy, clap::ValueEnum)]
enum ContainmentArg {
    Auto,
    Namespace,
    Subreaper,
}

impl From<ContainmentArg> for Containment {
    fn from(arg: ContainmentArg) -> Containment {
        match arg {
            ContainmentArg::Auto => Containment::Auto,
            ContainmentArg::Namespace => Containment::Namespace,
            ContainmentArg::Subreaper => Containment::Subreaper,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run pipeline files concurrently and report their final statuses.
    Run {
        /// Pipeline spec files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where executions' directories are made.
        #[arg(long, default_value = "runs")]
        output_dir: PathBuf,
        /// Print the final statuses as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// How each step's processes are kept together and ended with it: a PID namespace
        /// per step where the machine allows one (auto), always (namespace: steps fail where
        /// none can be made), or a subreaper without a namespace.
        #[arg(long, value_enum, default_value_t = ContainmentArg::Auto)]
        containment: ContainmentArg,
    },
    /// Check pipeline files without running them.
    Validate {
        /// Pipeline spec files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a failed, cancelled, timed-out, crashed or interrupted execution again from the
    /// steps that did not complete, in the same directory; completed steps are kept.
    Resume {
        /// The execution's id.
        execution: String,
        /// Resume even if its spec file has changed since it ran (the new spec runs).
        #[arg(long)]
        force: bool,
        /// Where executions' directories and their history are.
        #[arg(long, default_value = "runs")]
        output_dir: PathBuf,
        /// Print the final status as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// As for `run`.
        #[arg(long, value_enum, default_value_t = ContainmentArg::Auto)]
        containment: ContainmentArg,
    },
    /// List recent executions from the history, newest first.
    List {
        /// Where executions' directories and their history are.
        #[arg(long, default_value = "runs")]
        output_dir: PathBuf,
        /// Only those in this state (pending, running, completed, failed, cancelled,
        /// timed_out, crashed, interrupted).
        #[arg(long)]
        status: Option<Status>,
        /// Only those of this pipeline.
        #[arg(long)]
        pipeline: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one execution from the history: its steps, attempts, exit statuses, durations,
    /// artifacts, and its earlier runs.
    Show {
        /// The execution's id.
        execution: String,
        /// Where executions' directories and their history are.
        #[arg(long, default_value = "runs")]
        output_dir: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the output of an execution's steps: each step's stdout log to stdout, its stderr
    /// log to stderr.
    Logs {
        /// The execution: its directory, or its id (looked up in --output-dir).
        execution: PathBuf,
        /// Only this step (by name); every step, in order, when left out.
        step: Option<String>,
        /// Where executions' directories are made.
        #[arg(long, default_value = "runs")]
        output_dir: PathBuf,
        /// Print the logs as JSON (`[{"step", "stdout", "stderr"}]`) on stdout.
        #[arg(long)]
        json: bool,
    },
}

const EXIT_FAILED: u8 = 1;
const EXIT_INVALID: u8 = 2;
const EXIT_INTERRUPTED: u8 = 130;

/// `println!` that never panics: a closed stdout (`run ... | head -1`) drops the rest of the
/// output, and the exit code still says how the executions ended. Any other write error (a
/// full disk) is remembered: the report was lost, and the CLI then exits 1.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        note_write(writeln!(std::io::stdout().lock(), $($arg)*));
    }};
}

/// Set when writing the report to stdout failed, other than by a closed pipe.
static REPORT_LOST: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn note_write(written: std::io::Result<()>) {
    if let Err(error) = written
        && error.kind() != std::io::ErrorKind::BrokenPipe
    {
        REPORT_LOST.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `eprintln!` that never panics, for the same reason.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// `text` as it is safe to print on a terminal: control characters (an escape sequence in a
/// pipeline name or in a step's output, say) are shown escaped, tabs aside.
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// [`shown`], line by line: for messages that span lines (a TOML error's excerpt).
fn shown_lines(text: &str) -> String {
    text.lines().map(shown).collect::<Vec<_>>().join("\n")
}

/// "1 step", "2 steps".
fn steps(n: usize) -> String {
    format!("{n} {}", if n == 1 { "step" } else { "steps" })
}

/// The argument that makes this program a step's init (see [`STEP_INIT`]).
const STEP_INIT: &str = "__step-init";

fn main() -> ExitCode {
    // `pipeline-manager __step-init PROGRAM [ARGS...]`: this program is also its steps' init
    // (what `pipeline-step-init` does), so that `cargo run`, which builds only this program,
    // and a copy of it alone run steps. Checked before any parsing: everything after it is the
    // step's command, as it is.
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|first| first == STEP_INIT) {
        return pipeline_manager::step_init::main(args.collect());
    }
    let code = run_cli();
    if REPORT_LOST.load(std::sync::atomic::Ordering::Relaxed) {
        errln!("error: could not write the report to stdout");
        return ExitCode::from(EXIT_FAILED);
    }
    code
}

fn run_cli() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(EXIT_INVALID)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_tracing(cli.verbose);
    match cli.command {
        Command::Validate { files } => match load(&files) {
            Ok(specs) => {
                for (file, spec) in files.iter().zip(&specs) {
                    outln!(
                        "{}: ok ({})",
                        shown(&file.display().to_string()),
                        steps(spec.steps().len())
                    );
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Logs {
            execution,
            step,
            output_dir,
            json,
        } => print_logs(&execution, step.as_deref(), &output_dir, json),
        Command::List {
            output_dir,
            status,
            pipeline,
            limit,
            json,
        } => list(
            &output_dir,
            &ListFilter {
                status,
                pipeline,
                limit: Some(limit),
            },
            json,
        ),
        Command::Show {
            execution,
            output_dir,
            json,
        } => show(&output_dir, &execution, json),
        Command::Resume {
            execution,
            force,
            output_dir,
            json,
            containment,
        } => match runtime() {
            Ok(runtime) => runtime.block_on(resume(
                ExecutionId::from(execution.as_str()),
                force,
                output_dir,
                json,
                containment.into(),
            )),
            Err(code) => code,
        },
        Command::Run {
            files,
            output_dir,
            json,
            containment,
        } => {
            let specs = match load(&files) {
                Ok(specs) => specs,
                Err(code) => return code,
            };
            if let Err(error) = check_output_dir(&output_dir) {
                errln!("error: {}", shown(&error));
                return ExitCode::from(EXIT_INVALID);
            }
            match runtime() {
                Ok(runtime) => runtime.block_on(run(specs, output_dir, json, containment.into())),
                Err(code) => code,
            }
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            errln!("error: cannot start the runtime: {error}");
            ExitCode::from(EXIT_FAILED)
        })
}

/// The history of `output_dir`, to read; exit 2 if there is none.
fn open_history(output_dir: &std::path::Path) -> Result<SqliteStore, ExitCode> {
    match SqliteStore::open_read_only(output_dir) {
        Ok(Some(store)) => Ok(store),
        Ok(None) => {
            errln!(
                "error: no history in {}: nothing has run there",
                shown(&output_dir.display().to_string())
            );
            Err(ExitCode::from(EXIT_INVALID))
        }
        Err(error) => {
            errln!("error: {}", shown(&error.to_string()));
            Err(ExitCode::from(EXIT_FAILED))
        }
    }
}

/// Prints `value` as pretty JSON on stdout.
fn print_json(value: &impl serde::Serialize) -> ExitCode {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            outln!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            errln!("error: {error}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// A time in milliseconds since the Unix epoch, as RFC 3339 to the second.
fn when(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// `list`: the history, newest first.
fn list(output_dir: &std::path::Path, filter: &ListFilter, json: bool) -> ExitCode {
    let store = match open_history(output_dir) {
        Ok(store) => store,
        Err(code) => return code,
    };
    let executions = match store.list(filter) {
        Ok(executions) => executions,
        Err(error) => {
            errln!("error: {}", shown(&error.to_string()));
            return ExitCode::from(EXIT_FAILED);
        }
    };
    if json {
        return print_json(&executions);
    }
    outln!(
        "{:<41} {:<20} {:<11} {:<20} {:>4}",
        "execution",
        "pipeline",
        "status",
        "started",
        "runs"
    );
    for execution in &executions {
        outln!(
            "{:<41} {:<20} {:<11} {:<20} {:>4}",
            execution.id,
            shown(&execution.pipeline),
            execution.status,
            when(execution.created_at_ms),
            execution.runs
        );
    }
    ExitCode::SUCCESS
}

/// The stored execution `id`; exit 2 if there is none.
fn stored(store: &SqliteStore, id: &str) -> Result<StoredExecution, ExitCode> {
    match store.get(&ExecutionId::from(id)) {
        Ok(Some(execution)) => Ok(execution),
        Ok(None) => {
            errln!("error: no execution {} in the history", shown(id));
            Err(ExitCode::from(EXIT_INVALID))
        }
        Err(error) => {
            errln!("error: {}", shown(&error.to_string()));
            Err(ExitCode::from(EXIT_FAILED))
        }
    }
}

/// `show`: one execution, its steps and its runs.
fn show(output_dir: &std::path::Path, id: &str, json: bool) -> ExitCode {
    let execution = match open_history(output_dir).and_then(|store| stored(&store, id)) {
        Ok(execution) => execution,
        Err(code) => return code,
    };
    if json {
        return print_json(&execution);
    }
    let runs = execution.previous_runs.len() + 1;
    outln!("execution  {}", execution.status.execution_id);
    outln!("pipeline   {}", shown(&execution.status.pipeline));
    outln!("started    {}", when(execution.created_at_ms));
    outln!(
        "directory  {}",
        shown(&execution.status.workdir.display().to_string())
    );
    if let Some(source) = &execution.spec_source {
        outln!("spec       {}", shown(&source.display().to_string()));
    }
    for (run, status) in execution
        .previous_runs
        .iter()
        .chain(std::iter::once(&execution.status))
        .enumerate()
    {
        outln!();
        print_run(run + 1, runs, status);
    }
    ExitCode::SUCCESS
}

/// One run of an execution, for `show`.
fn print_run(run: usize, runs: usize, status: &ExecutionStatus) {
    let detail = match status.status {
        Status::Completed => status.result.clone().unwrap_or_default(),
        _ => status.error.clone().unwrap_or_default(),
    };
    outln!("run {run} of {runs}: {}  {}", status.status, shown(&detail));
    outln!(
        "  {:<24} {:<10} {:>8} {:<24} {:>10}",
        "step",
        "state",
        "attempts",
        "last exit",
        "duration"
    );
    for step in &status.steps {
        let exit = step
            .exit
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let duration = step
            .duration_ms
            .map(|ms| humantime::format_duration(Duration::from_millis(ms)).to_string())
            .unwrap_or_default();
        let state = serde_json::to_value(step.state)
            .ok()
            .and_then(|value| value.as_str().map(str::to_string))
            .unwrap_or_default();
        outln!(
            "  {:<24} {:<10} {:>8} {:<24} {:>10}",
            shown(&step.name),
            state,
            step.attempts,
            shown(&exit),
            duration
        );
        // Retried: every attempt, oldest first.
        if step.past_attempts.len() > 1 {
            for (number, attempt) in step.past_attempts.iter().enumerate() {
                outln!(
                    "  {:<24} attempt {}: {} after {}",
                    "",
                    number + 1,
                    attempt.exit,
                    humantime::format_duration(Duration::from_millis(attempt.duration_ms))
                );
            }
        }
    }
    for artifact in &status.artifacts {
        match artifact.bytes {
            Some(bytes) => outln!("  artifact {} ({bytes} bytes)", artifact.path.display()),
            None => outln!("  artifact {} (missing)", artifact.path.display()),
        }
    }
}

/// Starts a manager on `output_dir` whose steps run under this program as their init.
async fn start_manager(
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
async fn resume(
    id: ExecutionId,
    force: bool,
    output_dir: PathBuf,
    json: bool,
    containment: Containment,
) -> ExitCode {
    let mut signals = match Signals::install() {
        Ok(signals) => signals,
        Err(error) => {
            errln!("error: cannot install signal handlers: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
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

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal only, and never under NO_COLOR (no-color.org).
        .with_ansi(
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty()),
        )
        .try_init();
}

/// `logs`: copies the selected steps' log files out, in step order. Headers name the steps
/// when there are several.
fn print_logs(
    execution: &std::path::Path,
    step: Option<&str>,
    output_dir: &std::path::Path,
    json: bool,
) -> ExitCode {
    let dir = if execution.is_dir() {
        execution.to_path_buf()
    } else if execution.exists() {
        errln!(
            "error: {}: give an execution's directory or its id, not a file",
            shown(&execution.display().to_string())
        );
        return ExitCode::from(EXIT_INVALID);
    } else {
        output_dir.join(execution)
    };
    let logs = dir.join("logs");
    let entries = match std::fs::read_dir(&logs) {
        Ok(entries) => entries,
        Err(error) => {
            errln!("error: no logs in {}: {error}", logs.display());
            return ExitCode::from(EXIT_INVALID);
        }
    };
    // `<n>-<name>.stdout` / `.stderr`, grouped by their stem, in step order.
    let mut stems = BTreeMap::new();
    for entry in entries.flatten() {
        let file = entry.file_name();
        let stem = file.to_str().and_then(|file| {
            file.strip_suffix(".stdout")
                .or_else(|| file.strip_suffix(".stderr"))
        });
        let Some(stem) = stem else {
            continue;
        };
        let Some((position, name)) = stem.split_once('-') else {
            continue;
        };
        if let Ok(position) = position.parse::<usize>() {
            stems.insert(position, (name.to_string(), logs.join(stem)));
        }
    }
    let wanted = step.map(|step| {
        let stem = pipeline_manager::step_runner::log_stem(&dir, 0, step);
        let name = stem
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        // The stem of step 1; only the part after the position is compared.
        name.and_then(|name| name.split_once('-').map(|(_, name)| name.to_string()))
            .unwrap_or_default()
    });
    let selected: Vec<_> = stems
        .values()
        .filter(|(name, _)| wanted.as_ref().is_none_or(|wanted| wanted == name))
        .collect();
    if selected.is_empty() {
        match step {
            Some(step) => errln!("error: no step {step:?} in {}", logs.display()),
            None => errln!("error: no step logs in {}", logs.display()),
        }
        return ExitCode::from(EXIT_INVALID);
    }
    if json {
        let read = |stem: &std::path::Path, stream: &str| {
            let path = pipeline_manager::step_runner::log_file(stem, stream);
            std::fs::read(path)
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default()
        };
        let logs: Vec<serde_json::Value> = selected
            .iter()
            .map(|(name, stem)| {
                serde_json::json!({
                    "step": name,
                    "stdout": read(stem, "stdout"),
                    "stderr": read(stem, "stderr"),
                })
            })
            .collect();
        return print_json(&logs);
    }
    let headers = selected.len() > 1;
    for (name, stem) in selected {
        if headers && println_quiet(&format!("==> {name} <==")).is_err() {
            return ExitCode::SUCCESS;
        }
        for (extension, mut out) in [
            (
                "stdout",
                Box::new(std::io::stdout().lock()) as Box<dyn std::io::Write>,
            ),
            ("stderr", Box::new(std::io::stderr().lock())),
        ] {
            let path = pipeline_manager::step_runner::log_file(stem, extension);
            let Ok(mut file) = std::fs::File::open(&path) else {
                continue;
            };
            match std::io::copy(&mut file, &mut out) {
                Ok(_) => {}
                // A closed stdout (`logs ... | head`): stop quietly.
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                    return ExitCode::SUCCESS;
                }
                Err(error) => {
                    errln!("error: {}: {error}", path.display());
                    return ExitCode::from(EXIT_FAILED);
                }
            }
        }
    }
    ExitCode::SUCCESS
}

/// `println!`, but a closed stdout is an error to return rather than a panic.
fn println_quiet(line: &str) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{line}")
}

/// Checks `--output-dir` before anything runs: a directory (made if missing) in which this
/// process can make the executions' directories.
fn check_output_dir(dir: &std::path::Path) -> Result<(), String> {
    let shown = dir.display();
    if dir.exists() && !dir.is_dir() {
        return Err(format!("--output-dir {shown}: not a directory"));
    }
    std::fs::create_dir_all(dir).map_err(|error| format!("--output-dir {shown}: {error}"))?;
    let probe = dir.join(format!(".pipeline-manager-check-{}", std::process::id()));
    std::fs::create_dir(&probe)
        .and_then(|()| std::fs::remove_dir(&probe))
        .map_err(|error| format!("--output-dir {shown}: cannot make directories in it: {error}"))
}

/// Parses every file first: nothing runs unless all are valid.
fn load(files: &[PathBuf]) -> Result<Vec<PipelineSpec>, ExitCode> {
    let mut specs = Vec::new();
    let mut failed = false;
    for file in files {
        match PipelineSpec::from_file(file) {
            Ok(spec) => specs.push(spec),
            Err(error) => {
                errln!("error: {}", shown_lines(&error.to_string()));
                failed = true;
            }
        }
    }
    if failed {
        Err(ExitCode::from(EXIT_INVALID))
    } else {
        Ok(specs)
    }
}

/// Shows progress: bars on a terminal, plain lines otherwise.
struct Progress {
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
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
            quit: signal(SignalKind::quit())?,
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

async fn run(
    specs: Vec<PipelineSpec>,
    output_dir: PathBuf,
    json: bool,
    containment: Containment,
) -> ExitCode {
    let mut signals = match Signals::install() {
        Ok(signals) => signals,
        Err(error) => {
            errln!("error: cannot install signal handlers: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
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
async fn as_application(
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
async fn watch(
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

fn print_summary(statuses: &[Arc<ExecutionStatus>]) {
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
fn step_ended(step: &StepProgress) -> String {
    match &step.exit {
        Some(exit) => exit.to_string(),
        None => "stopped before it ended".to_string(),
    }
}
