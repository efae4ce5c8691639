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

mod history;
mod logs;
mod output;
mod running;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pipeline_manager::execution_store::ListFilter;
use pipeline_manager::step_runner::Containment;
use pipeline_manager::{ExecutionId, PipelineSpec, Status};

use crate::history::{list, show};
use crate::logs::print_logs;
use crate::output::{REPORT_LOST, errln, outln, shown, shown_lines, steps};
use crate::running::{resume, run};

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

/// `--output-dir`, the same for every command that has one.
#[derive(clap::Args)]
struct OutputDir {
    /// Where executions' directories and their history are.
    #[arg(long, default_value = "runs")]
    output_dir: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run pipeline files concurrently and report their final statuses.
    Run {
        /// Pipeline spec files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        place: OutputDir,
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
        #[command(flatten)]
        place: OutputDir,
        /// Print the final status as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// As for `run`.
        #[arg(long, value_enum, default_value_t = ContainmentArg::Auto)]
        containment: ContainmentArg,
    },
    /// List recent executions from the history, newest first.
    List {
        #[command(flatten)]
        place: OutputDir,
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
        #[command(flatten)]
        place: OutputDir,
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
        #[command(flatten)]
        place: OutputDir,
        /// Print the logs as JSON (`[{"step", "stdout", "stderr"}]`) on stdout.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) const EXIT_FAILED: u8 = 1;
pub(crate) const EXIT_INVALID: u8 = 2;
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// The argument that makes this program a step's init (see [`STEP_INIT`]).
pub(crate) const STEP_INIT: &str = "__step-init";

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
            place: OutputDir { output_dir },
            json,
        } => print_logs(&execution, step.as_deref(), &output_dir, json),
        Command::List {
            place: OutputDir { output_dir },
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
            place: OutputDir { output_dir },
            json,
        } => show(&output_dir, &execution, json),
        Command::Resume {
            execution,
            force,
            place: OutputDir { output_dir },
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
            place: OutputDir { output_dir },
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
