//! `list` and `show`: the history in the store, read while a manager may be writing it.

use std::process::ExitCode;
use std::time::Duration;

use pipeline_manager::execution_store::{ExecutionStore, ListFilter, StoredExecution};
use pipeline_manager::sqlite_store::SqliteStore;
use pipeline_manager::{ExecutionId, ExecutionStatus, Status};

use crate::output::{errln, outln, print_json, shown, when};
use crate::{EXIT_FAILED, EXIT_INVALID};

/// The history of `output_dir`, to read; exit 2 if there is none.
pub(crate) fn open_history(output_dir: &std::path::Path) -> Result<SqliteStore, ExitCode> {
    match SqliteStore::open_history(output_dir) {
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

/// `list`: the history, newest first.
pub(crate) fn list(output_dir: &std::path::Path, filter: &ListFilter, json: bool) -> ExitCode {
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
pub(crate) fn stored(store: &SqliteStore, id: &str) -> Result<StoredExecution, ExitCode> {
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
pub(crate) fn show(output_dir: &std::path::Path, id: &str, json: bool) -> ExitCode {
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
pub(crate) fn print_run(run: usize, runs: usize, status: &ExecutionStatus) {
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
