//! The pipeline spec: a TOML file of named steps, parsed with serde and checked before anything
//! runs.
//!
//! ```toml
//! name = "demo"
//! timeout = "5m"                 # whole execution, optional, default 5m (the seed's)
//! [[steps]]
//! name = "generate"              # unique within the pipeline
//! run = "seq 1 100000 > numbers.txt"   # a shell line (sh -c) ...
//! # command = ["seq", "1", "100000"]   # ... or an argv array: exactly one of run / command
//! timeout = "30s"                # optional
//! retries = 2                    # optional, default 0
//! retry_backoff = "1s"           # optional, default 1s, doubles per retry
//! env = { LC_ALL = "C" }         # optional
//! artifacts = ["numbers.txt"]    # optional, relative to the execution's directory
//! ```
//!
//! Every way a spec can be wrong is a [`SpecError`] naming the file and, where there is one,
//! the line and the field: TOML syntax, an unknown field, no steps, an empty or missing
//! `run`/`command` (or both), a zero or unparsable duration, a negative `retries`, a duplicate
//! step name, a file that is not UTF-8 or cannot be read.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The whole-execution timeout when the spec sets none: 5 minutes, as the seed's.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// The first retry's delay when a step sets none; it doubles on each further retry.
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(1);

/// A validated pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PipelineSpec {
    /// The pipeline's name.
    pub name: String,
    /// The limit on the whole execution, counted from `execute`.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// The steps, run in order.
    pub steps: Vec<StepSpec>,
}

/// What a step runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepAction {
    /// A shell line, run with `sh -c`.
    Run(String),
    /// A program and its arguments, run without a shell.
    Command(Vec<String>),
}

impl fmt::Display for StepAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepAction::Run(line) => f.write_str(line),
            StepAction::Command(argv) => f.write_str(&argv.join(" ")),
        }
    }
}

/// One validated step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepSpec {
    /// Unique within the pipeline.
    pub name: String,
    /// What it runs.
    pub action: StepAction,
    /// The limit on one attempt, if any.
    #[serde(with = "humantime_serde_compat::option")]
    pub timeout: Option<Duration>,
    /// How many times a failed attempt is retried.
    pub retries: u32,
    /// The delay before the first retry; doubles for each further one.
    #[serde(with = "humantime_serde_compat")]
    pub retry_backoff: Duration,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// Files the step leaves in the execution's directory, collected when the execution ends.
    pub artifacts: Vec<PathBuf>,
}

impl PipelineSpec {
    /// A spec in code (library users and tests): one step per `(name, action)`.
    pub fn new(name: impl Into<String>, steps: Vec<StepSpec>) -> PipelineSpec {
        PipelineSpec {
            name: name.into(),
            timeout: DEFAULT_TIMEOUT,
            steps,
        }
    }

    /// Reads and validates a spec file.
    ///
    /// # Errors
    ///
    /// Any [`SpecError`]; each names the file.
    pub fn from_file(path: &Path) -> Result<PipelineSpec, SpecError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|error| SpecError::Unreadable {
            file: file.clone(),
            reason: error.to_string(),
        })?;
        let text =
            String::from_utf8(bytes).map_err(|_| SpecError::NotUtf8 { file: file.clone() })?;
        PipelineSpec::parse(&text, &file)
    }

    /// Parses and validates spec text; `file` names it in errors.
    ///
    /// # Errors
    ///
    /// [`SpecError::Invalid`] with the line and field where there is one.
    pub fn parse(text: &str, file: &str) -> Result<PipelineSpec, SpecError> {
        let raw: RawPipeline = toml::from_str(text).map_err(|error| SpecError::Invalid {
            file: file.to_string(),
            line: error.span().map(|span| line_of(text, span.start)),
            field: None,
            message: error.message().trim().to_string(),
        })?;
        let invalid = |span: Option<std::ops::Range<usize>>, field: String, message: String| {
            SpecError::Invalid {
                file: file.to_string(),
                line: span.map(|span| line_of(text, span.start)),
                field: Some(field),
                message,
            }
        };

        let name = raw.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(invalid(
                Some(raw.name.span()),
                "name".into(),
                "must not be empty".into(),
            ));
        }
        let timeout = match &raw.timeout {
            Some(timeout) => duration(timeout, "timeout", &invalid)?,
            None => DEFAULT_TIMEOUT,
        };
        let raw_steps = match raw.steps {
            Some(steps) if !steps.is_empty() => steps,
            _ => {
                return Err(invalid(
                    None,
                    "steps".into(),
                    "a pipeline needs at least one step".into(),
                ));
            }
        };

        let mut names = HashSet::new();
        let mut steps = Vec::with_capacity(raw_steps.len());
        for (index, spanned) in raw_steps.into_iter().enumerate() {
            let step_span = spanned.span();
            let step = spanned.into_inner();
            let field = |name: &str| format!("steps[{index}].{name}");
            let step_name = step.name.get_ref().trim().to_string();
            if step_name.is_empty() {
                return Err(invalid(
                    Some(step.name.span()),
                    field("name"),
                    "must not be empty".into(),
                ));
            }
            if !names.insert(step_name.clone()) {
                return Err(invalid(
                    Some(step.name.span()),
                    field("name"),
                    format!("duplicate step name {step_name:?}"),
                ));
            }
            let action = match (step.run, step.command) {
                (Some(_), Some(command)) => {
                    return Err(invalid(
                        Some(command.span()),
                        field("command"),
                        "give exactly one of `run` and `command`, not both".into(),
                    ));
                }
                (None, None) => {
                    return Err(invalid(
                        Some(step_span),
                        field("run"),
                        "give exactly one of `run` (a shell line) and `command` (an argv array)"
                            .into(),
                    ));
                }
                (Some(run), None) => {
                    if run.get_ref().trim().is_empty() {
                        return Err(invalid(
                            Some(run.span()),
                            field("run"),
                            "must not be empty".into(),
                        ));
                    }
                    StepAction::Run(run.into_inner())
                }
                (None, Some(command)) => {
                    let span = command.span();
                    let argv = command.into_inner();
                    if argv.first().is_none_or(|program| program.trim().is_empty()) {
                        return Err(invalid(
                            Some(span),
                            field("command"),
                            "must name a program: a non-empty array whose first item is not empty"
                                .into(),
                        ));
                    }
                    StepAction::Command(argv)
                }
            };
            let step_timeout = match &step.timeout {
                Some(timeout) => Some(duration(timeout, &field("timeout"), &invalid)?),
                None => None,
            };
            let retry_backoff = match &step.retry_backoff {
                Some(backoff) => duration(backoff, &field("retry_backoff"), &invalid)?,
                None => DEFAULT_RETRY_BACKOFF,
            };
            steps.push(StepSpec {
                name: step_name,
                action,
                timeout: step_timeout,
                retries: step.retries.unwrap_or(0),
                retry_backoff,
                env: step.env.unwrap_or_default(),
                artifacts: step
                    .artifacts
                    .unwrap_or_default()
                    .into_iter()
                    .map(PathBuf::from)
                    .collect(),
            });
        }
        Ok(PipelineSpec {
            name,
            timeout,
            steps,
        })
    }
}

impl PipelineSpec {
    /// Checks a spec built in code with the rules a file is checked with (files are checked
    /// when parsed). The error's `file` is `<spec>`.
    ///
    /// # Errors
    ///
    /// [`SpecError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), SpecError> {
        let invalid = |field: String, message: &str| SpecError::Invalid {
            file: "<spec>".into(),
            line: None,
            field: Some(field),
            message: message.to_string(),
        };
        if self.name.trim().is_empty() {
            return Err(invalid("name".into(), "must not be empty"));
        }
        if self.timeout.is_zero() {
            return Err(invalid("timeout".into(), "must be greater than zero"));
        }
        if self.steps.is_empty() {
            return Err(invalid(
                "steps".into(),
                "a pipeline needs at least one step",
            ));
        }
        for (index, step) in self.steps.iter().enumerate() {
            let field = |name: &str| format!("steps[{index}].{name}");
            if step.name.trim().is_empty() {
                return Err(invalid(field("name"), "must not be empty"));
            }
            // Pipelines have a handful of steps: comparing with those before is cheaper than
            // hashing, and allocates nothing (specs are checked on every start).
            if self.steps[..index]
                .iter()
                .any(|before| before.name == step.name)
            {
                return Err(invalid(field("name"), "duplicate step name"));
            }
            match &step.action {
                StepAction::Run(line) if line.trim().is_empty() => {
                    return Err(invalid(field("run"), "must not be empty"));
                }
                StepAction::Command(argv) if argv.first().is_none_or(|p| p.trim().is_empty()) => {
                    return Err(invalid(field("command"), "must name a program"));
                }
                _ => {}
            }
            if step.timeout.is_some_and(|t| t.is_zero()) {
                return Err(invalid(field("timeout"), "must be greater than zero"));
            }
            if step.retry_backoff.is_zero() {
                return Err(invalid(field("retry_backoff"), "must be greater than zero"));
            }
        }
        Ok(())
    }
}

impl StepSpec {
    /// A step in code: `action` with no timeout, no retries, no env, no artifacts.
    pub fn new(name: impl Into<String>, action: StepAction) -> StepSpec {
        StepSpec {
            name: name.into(),
            action,
            timeout: None,
            retries: 0,
            retry_backoff: DEFAULT_RETRY_BACKOFF,
            env: BTreeMap::new(),
            artifacts: Vec::new(),
        }
    }
}

fn duration(
    value: &Spanned<String>,
    field: &str,
    invalid: &impl Fn(Option<std::ops::Range<usize>>, String, String) -> SpecError,
) -> Result<Duration, SpecError> {
    let text = value.get_ref().trim();
    match humantime::parse_duration(text) {
        Ok(duration) if duration.is_zero() => Err(invalid(
            Some(value.span()),
            field.to_string(),
            format!("duration {text:?} must be greater than zero"),
        )),
        Ok(duration) => Ok(duration),
        Err(error) => Err(invalid(
            Some(value.span()),
            field.to_string(),
            format!("invalid duration {text:?}: {error} (examples: \"30s\", \"5m\", \"1h 30m\")"),
        )),
    }
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Why a spec was rejected. Nothing runs from a rejected spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The file could not be read (missing, unreadable).
    #[error("{file}: cannot read: {reason}")]
    Unreadable {
        /// The file.
        file: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The file is not UTF-8.
    #[error("{file}: not UTF-8 text")]
    NotUtf8 {
        /// The file.
        file: String,
    },
    /// The TOML is malformed or a value is invalid.
    #[error("{file}{}: {}{message}", line.map(|l| format!(":{l}")).unwrap_or_default(), field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
    Invalid {
        /// The file.
        file: String,
        /// The 1-based line, where there is one.
        line: Option<usize>,
        /// The field, such as `steps[1].timeout`, where there is one.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    name: Spanned<String>,
    timeout: Option<Spanned<String>>,
    steps: Option<Vec<Spanned<RawStep>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: Spanned<String>,
    run: Option<Spanned<String>>,
    command: Option<Spanned<Vec<String>>>,
    timeout: Option<Spanned<String>>,
    retries: Option<u32>,
    retry_backoff: Option<Spanned<String>>,
    env: Option<BTreeMap<String, String>>,
    artifacts: Option<Vec<String>>,
}

/// Durations serialised as humantime strings ("5m"), for `--json`.
mod humantime_serde_compat {
    use std::time::Duration;

    pub(crate) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub(crate) mod option {
        use std::time::Duration;

        pub(crate) fn serialize<S: serde::Serializer>(
            d: &Option<Duration>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        PipelineSpec::parse(text, "p.toml").unwrap_err().to_string()
    }

    #[test]
    fn a_full_spec_parses_with_defaults() {
        let spec = PipelineSpec::parse(
            "name = \"demo\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\n[[steps]]\nname = \"b\"\ncommand = [\"echo\", \"hi\"]\ntimeout = \"30s\"\nretries = 2\nretry_backoff = \"1s\"\nenv = { LC_ALL = \"C\" }\nartifacts = [\"out.txt\"]\n",
            "p.toml",
        )
        .unwrap();
        assert_eq!(spec.timeout, DEFAULT_TIMEOUT);
        assert_eq!(spec.steps[0].action, StepAction::Run("true".into()));
        assert_eq!(spec.steps[1].timeout, Some(Duration::from_secs(30)));
        assert_eq!(spec.steps[1].retries, 2);
        assert_eq!(spec.steps[1].env["LC_ALL"], "C");
    }

    #[test]
    fn every_kind_of_bad_spec_names_the_file_line_and_field() {
        assert!(error("name = \"x\"\n[[steps]\n").starts_with("p.toml:2: "));
        assert_eq!(
            error("name = \"x\"\ncolour = 1\n[[steps]]\nname=\"a\"\nrun=\"true\"\n")
                .split(':')
                .nth(1),
            Some("2")
        );
        assert!(error("name = \"x\"\n").contains("at least one step"));
        assert_eq!(
            error("name = \"x\"\n[[steps]]\nname = \"a\"\n"),
            "p.toml:2: steps[0].run: give exactly one of `run` (a shell line) and `command` (an argv array)"
        );
        assert!(
            error("name = \"x\"\n[[steps]]\nname = \"a\"\nrun = \"  \"\n")
                .starts_with("p.toml:4: steps[0].run: must not be empty")
        );
        assert!(
            error("name = \"x\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\ncommand = [\"true\"]\n")
                .contains("steps[0].command: give exactly one")
        );
        assert!(
            error("name = \"x\"\n[[steps]]\nname = \"a\"\ncommand = []\n")
                .contains("steps[0].command: must name a program")
        );
        assert!(
            error("name = \"x\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\ntimeout = \"0s\"\n")
                .starts_with(
                    "p.toml:5: steps[0].timeout: duration \"0s\" must be greater than zero"
                )
        );
        assert!(
            error("name = \"x\"\ntimeout = \"soon\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\n")
                .starts_with("p.toml:2: timeout: invalid duration \"soon\"")
        );
        assert!(
            error("name = \"x\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\nretries = -1\n")
                .starts_with("p.toml:5: ")
        );
        assert!(error("name = \"x\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\n").starts_with("p.toml:6: steps[1].name: duplicate step name \"a\""));
    }

    #[test]
    fn unreadable_and_non_utf8_files_are_typed_errors() {
        let missing = PipelineSpec::from_file(Path::new("/nonexistent/p.toml")).unwrap_err();
        assert!(matches!(missing, SpecError::Unreadable { .. }));
        let dir = std::env::temp_dir().join(format!("pm-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("latin1.toml");
        std::fs::write(&path, b"name = \"caf\xe9\"\n").unwrap();
        assert!(matches!(
            PipelineSpec::from_file(&path).unwrap_err(),
            SpecError::NotUtf8 { .. }
        ));
    }
}
