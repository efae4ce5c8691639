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

/// The longest timeout or retry backoff a spec may give: 365 days. Longer ones are rejected
/// when the spec is checked, rather than failing as timers when they are used.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// The largest spec file read: 1 MiB (a pipeline is a handful of steps; this bounds what
/// reading a wrong path, `/dev/zero` say, can cost).
pub const MAX_SPEC_BYTES: u64 = 1024 * 1024;

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
        use std::io::Read;
        let file = path.display().to_string();
        let unreadable = |reason: String| SpecError::Unreadable {
            file: file.clone(),
            reason,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|opened| opened.take(MAX_SPEC_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|error| unreadable(error.to_string()))?;
        if bytes.len() as u64 > MAX_SPEC_BYTES {
            return Err(unreadable(format!(
                "larger than {} KiB: not a pipeline spec",
                MAX_SPEC_BYTES / 1024
            )));
        }
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
        let raw: RawPipeline = serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|error| {
                let field = field_path(error.path());
                let error = error.into_inner();
                SpecError::Invalid {
                    file: file.to_string(),
                    line: error.span().map(|span| line_of(text, span.start)),
                    field,
                    message: error.message().trim().to_string(),
                }
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
        if let Some(message) = name_problem(&name) {
            return Err(invalid(
                Some(raw.name.span()),
                "name".into(),
                message.into(),
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
            if let Some(message) = name_problem(&step_name) {
                return Err(invalid(
                    Some(step.name.span()),
                    field("name"),
                    message.into(),
                ));
            }
            if !names.insert(step_name.clone()) {
                return Err(invalid(
                    Some(step.name.span()),
                    field("name"),
                    format!("duplicate step name {step_name:?}"),
                ));
            }
            let run_span = step.run.as_ref().map(Spanned::span);
            let command_span = step.command.as_ref().map(Spanned::span);
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
            if let Some((problem, message)) = action_problem(&action) {
                let span = run_span.clone().or(command_span.clone());
                return Err(invalid(span, field(problem), message));
            }
            let env = step.env.map(|env| (env.span(), env.into_inner()));
            if let Some((span, env)) = &env {
                if let Some(message) = env_problem(env) {
                    return Err(invalid(Some(span.clone()), field("env"), message));
                }
            }
            let step_timeout = match &step.timeout {
                Some(timeout) => Some(duration(timeout, &field("timeout"), &invalid)?),
                None => None,
            };
            let retry_backoff = match &step.retry_backoff {
                Some(backoff) => duration(backoff, &field("retry_backoff"), &invalid)?,
                None => DEFAULT_RETRY_BACKOFF,
            };
            let artifacts = step.artifacts.map(|a| (a.span(), a.into_inner()));
            if let Some((span, artifacts)) = &artifacts {
                if let Some(message) = artifacts
                    .iter()
                    .find_map(|a| artifact_problem(Path::new(a)))
                {
                    return Err(invalid(Some(span.clone()), field("artifacts"), message));
                }
            }
            steps.push(StepSpec {
                name: step_name,
                action,
                timeout: step_timeout,
                retries: step.retries.unwrap_or(0),
                retry_backoff,
                env: env.map(|(_, env)| env).unwrap_or_default(),
                artifacts: artifacts
                    .map(|(_, artifacts)| artifacts)
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
        if let Some(message) = name_problem(self.name.trim()) {
            return Err(invalid("name".into(), message));
        }
        if self.timeout.is_zero() {
            return Err(invalid("timeout".into(), "must be greater than zero"));
        }
        if self.timeout > MAX_DURATION {
            return Err(invalid("timeout".into(), TOO_LONG));
        }
        if self.steps.is_empty() {
            return Err(invalid(
                "steps".into(),
                "a pipeline needs at least one step",
            ));
        }
        for (index, step) in self.steps.iter().enumerate() {
            let field = |name: &str| format!("steps[{index}].{name}");
            if let Some(message) = name_problem(step.name.trim()) {
                return Err(invalid(field("name"), message));
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
            if step.timeout.is_some_and(|t| t > MAX_DURATION) {
                return Err(invalid(field("timeout"), TOO_LONG));
            }
            if step.retry_backoff.is_zero() {
                return Err(invalid(field("retry_backoff"), "must be greater than zero"));
            }
            if step.retry_backoff > MAX_DURATION {
                return Err(invalid(field("retry_backoff"), TOO_LONG));
            }
            if let Some((problem, message)) = action_problem(&step.action) {
                return Err(invalid(field(problem), &message));
            }
            if let Some(message) = env_problem(&step.env) {
                return Err(invalid(field("env"), &message));
            }
            if let Some(message) = step.artifacts.iter().find_map(|a| artifact_problem(a)) {
                return Err(invalid(field("artifacts"), &message));
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

const TOO_LONG: &str = "must be at most 365 days";

/// What is wrong with a pipeline's or a step's name (already trimmed).
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("must not be empty")
    } else if name.contains('\0') {
        Some("must not contain a NUL byte")
    } else {
        None
    }
}

/// The field where deserializing went wrong, as `steps[0].retries`; `None` for the document
/// itself (a syntax error). `Spanned` fields add a private segment of toml's, left out.
fn field_path(path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut field = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => field.push_str(&format!("[{index}]")),
            Segment::Map { key } if key.starts_with("$__") => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !field.is_empty() {
                    field.push('.');
                }
                field.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    (!field.is_empty()).then_some(field)
}

/// What is wrong with a step's command line, as a field (`run` or `command`) and a message.
/// The OS cannot pass a NUL byte in an argument.
fn action_problem(action: &StepAction) -> Option<(&'static str, String)> {
    match action {
        StepAction::Run(line) if line.contains('\0') => {
            Some(("run", "must not contain a NUL byte".into()))
        }
        StepAction::Command(argv) => argv
            .iter()
            .position(|arg| arg.contains('\0'))
            .map(|at| ("command", format!("item {at} must not contain a NUL byte"))),
        StepAction::Run(_) => None,
    }
}

/// What is wrong with an artifact path: it must name something inside the execution's
/// directory, so it is relative, not empty, and has no `..`.
fn artifact_problem(path: &Path) -> Option<String> {
    use std::path::Component;
    if path.as_os_str().is_empty() {
        return Some("an artifact path must not be empty".into());
    }
    let escapes = path
        .components()
        .any(|part| !matches!(part, Component::Normal(_) | Component::CurDir));
    escapes.then(|| {
        format!(
            "{:?} must be a path inside the execution's directory: relative, without `..`",
            path.display().to_string()
        )
    })
}

/// What is wrong with a step's environment: keys must be non-empty and hold no `=` (the OS
/// would split them there) or NUL byte; values hold no NUL byte.
fn env_problem(env: &BTreeMap<String, String>) -> Option<String> {
    env.iter().find_map(|(key, value)| {
        if key.is_empty() {
            Some("a variable name must not be empty".to_string())
        } else if key.contains('=') || key.contains('\0') {
            Some(format!(
                "variable name {key:?} must not contain `=` or a NUL byte"
            ))
        } else if value.contains('\0') {
            Some(format!("the value of {key:?} must not contain a NUL byte"))
        } else {
            None
        }
    })
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
        Ok(duration) if duration > MAX_DURATION => Err(invalid(
            Some(value.span()),
            field.to_string(),
            format!("duration {text:?} {TOO_LONG}"),
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
    env: Option<Spanned<BTreeMap<String, String>>>,
    artifacts: Option<Spanned<Vec<String>>>,
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

    /// A one-step spec whose step has `extra` lines after `run = "true"`.
    fn step_with(extra: &str) -> String {
        format!("name = \"x\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\n{extra}\n")
    }

    // Durations a timer cannot represent used to pass and crash the worker.
    #[test]
    fn durations_too_long_for_a_timer_are_rejected_naming_line_and_field() {
        for text in ["300000000000y", "18446744073709551615s", "366d"] {
            let message = error(&step_with(&format!("timeout = \"{text}\"")));
            assert!(
                message.starts_with("p.toml:5: steps[0].timeout: "),
                "{message}"
            );
            let message = error(&step_with(&format!("retry_backoff = \"{text}\"")));
            assert!(
                message.starts_with("p.toml:5: steps[0].retry_backoff: "),
                "{message}"
            );
            let message = error(&format!(
                "name = \"x\"\ntimeout = \"{text}\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\n"
            ));
            assert!(message.starts_with("p.toml:2: timeout: "), "{message}");
        }
        assert!(PipelineSpec::parse(&step_with("timeout = \"365d\""), "p.toml").is_ok());
        let mut spec = PipelineSpec::parse(&step_with(""), "p.toml").unwrap();
        spec.steps[0].retry_backoff = Duration::MAX;
        assert!(
            spec.validate()
                .unwrap_err()
                .to_string()
                .contains("steps[0].retry_backoff")
        );
    }

    // The OS cannot pass a NUL byte in an argument or the environment, nor a variable name
    // holding `=`: such specs used to pass and fail at spawn.
    #[test]
    fn nul_bytes_and_bad_environment_names_are_rejected() {
        let nul_run = "name = \"x\"\n[[steps]]\nname = \"a\"\nrun = \"a\\u0000b\"\n";
        assert!(error(nul_run).starts_with("p.toml:4: steps[0].run: must not contain a NUL"));
        let nul_arg = "name = \"x\"\n[[steps]]\nname = \"a\"\ncommand = [\"echo\", \"a\\u0000\"]\n";
        assert!(error(nul_arg).starts_with("p.toml:4: steps[0].command: item 1 must not"));
        let message = error(&step_with("env = { \"\" = \"1\" }"));
        assert!(
            message.starts_with("p.toml:5: steps[0].env: a variable name must not be empty"),
            "{message}"
        );
        let message = error(&step_with("env = { \"A=B\" = \"1\" }"));
        assert!(
            message.contains("steps[0].env: variable name \"A=B\" must not contain `=`"),
            "{message}"
        );
        let message = error(&step_with("env = { A = \"x\\u0000\" }"));
        assert!(
            message.contains("steps[0].env: the value of \"A\" must not contain a NUL"),
            "{message}"
        );
        let mut spec = PipelineSpec::parse(&step_with(""), "p.toml").unwrap();
        spec.steps[0].env.insert("K=V".into(), "1".into());
        assert!(
            spec.validate()
                .unwrap_err()
                .to_string()
                .contains("steps[0].env")
        );
    }

    // Reading a wrong path (`/dev/zero`, a huge file) used to grow without bound.
    #[test]
    fn a_spec_file_larger_than_the_limit_is_refused_without_reading_it_all() {
        let error = PipelineSpec::from_file(Path::new("/dev/zero")).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("/dev/zero: cannot read: larger than 1024 KiB"),
            "{error}"
        );
    }

    // A type error used to say only "invalid type: string \"2\", expected u32".
    #[test]
    fn a_type_error_names_its_field() {
        let message = error(&step_with("retries = \"2\""));
        assert!(
            message.starts_with("p.toml:5: steps[0].retries: invalid type"),
            "{message}"
        );
        let message = error("name = 3\n[[steps]]\nname = \"a\"\nrun = \"true\"\n");
        assert!(
            message.starts_with("p.toml:1: name: invalid type"),
            "{message}"
        );
    }

    // Artifacts are paths inside the execution's directory.
    #[test]
    fn artifact_paths_outside_the_execution_directory_are_rejected() {
        for path in ["/etc/passwd", "../x", "a/../../b", ""] {
            let message = error(&step_with(&format!("artifacts = [\"ok.txt\", \"{path}\"]")));
            assert!(
                message.starts_with("p.toml:5: steps[0].artifacts: "),
                "{path}: {message}"
            );
        }
        assert!(
            PipelineSpec::parse(
                &step_with("artifacts = [\"out/report.txt\", \"./a\"]"),
                "p.toml"
            )
            .is_ok()
        );
        let mut spec = PipelineSpec::parse(&step_with(""), "p.toml").unwrap();
        spec.steps[0].artifacts.push("/tmp/x".into());
        assert!(
            spec.validate()
                .unwrap_err()
                .to_string()
                .contains("steps[0].artifacts")
        );
    }

    #[test]
    fn names_with_a_nul_byte_are_rejected() {
        let message = error("name = \"a\\u0000b\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\n");
        assert!(
            message.starts_with("p.toml:1: name: must not contain a NUL byte"),
            "{message}"
        );
        let message = error("name = \"x\"\n[[steps]]\nname = \"a\\u0000\"\nrun = \"true\"\n");
        assert!(
            message.starts_with("p.toml:3: steps[0].name: must not contain a NUL byte"),
            "{message}"
        );
    }
}
