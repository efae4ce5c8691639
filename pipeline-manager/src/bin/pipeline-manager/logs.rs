//! `logs`: an execution's step output, from its log files.

use std::collections::BTreeMap;
use std::process::ExitCode;

use crate::output::{errln, print_json, shown};
use crate::{EXIT_FAILED, EXIT_INVALID};

/// `logs`: copies the selected steps' log files out, in step order. Headers name the steps
/// when there are several.
pub(crate) fn print_logs(
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
pub(crate) fn println_quiet(line: &str) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{line}")
}
