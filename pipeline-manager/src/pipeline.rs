//! The pipeline spec: a TOML file of named steps, parsed with serde and checked, once, into a
//! [`PipelineSpec`] before anything runs.
//!
//! ```toml
//! name = "demo"
//! timeout = "5m"                 # whole execution, optional, default 5m (the seed's)
//! max_parallel = 4               # optional: steps running at once, default the number of cores
//! on_failure = "finish"          # optional: "finish" (default) or "cancel", see below
//! [[steps]]
//! name = "generate"              # unique within the pipeline
//! run = "seq 1 100000 > numbers.txt"   # a shell line (sh -c) ...
//! # command = ["seq", "1", "100000"]   # ... or an argv array: exactly one of run / command
//! needs = []                     # optional: the steps that must complete first, see below
//! timeout = "30s"                # optional
//! retries = 2                    # optional, default 0
//! retry_backoff = "1s"           # optional, default 1s, doubles per retry
//! env = { LC_ALL = "C" }         # optional
//! artifacts = ["numbers.txt"]    # optional, relative to the execution's directory
//! ```
//!
//! # Order and parallelism: `needs`
//!
//! A step starts once every step in its `needs` has completed. A step without `needs` needs
//! the step before it (the first one needs nothing), so a spec that never says `needs` runs its
//! steps one after another, in order, as it always did; `needs = []` starts a step with the
//! execution. Steps whose needs are met run at the same time, at most `max_parallel` at once
//! (a step waiting to retry keeps its place). A `needs` naming a step that does not exist, or
//! needs that go round in a cycle, are rejected; the error names the cycle.
//!
//! When a step fails (after its retries), no further step starts, and the steps that never
//! started are `skipped`. What happens to the steps still running is `on_failure`:
//! - `"finish"` (the default): they run to their end, and the execution ends `failed` once
//!   they have. Their work is kept: a resumed execution does not run them again. This is
//!   what `make -k` and a DAG runner's "let running tasks finish" do.
//! - `"cancel"`: they are stopped at once, as by a cancel (SIGTERM, then SIGKILL after the
//!   grace period), and the execution ends `failed` now.
//!
//! # Parse, don't validate twice
//!
//! A [`PipelineSpec`] has always been checked: it is made by [`PipelineSpec::from_file`] or
//! [`PipelineSpec::parse`] from text, or by [`PipelineDraft::check`] from code, and those go
//! through the same rules. Its fields are read through methods, so nothing changes it once
//! checked, and the manager runs it without checking it again. Every way a spec can be wrong
//! is a [`SpecError`] naming the file and, where there is one, the line and the field: TOML
//! syntax, an unknown field, no steps, an empty or missing `run`/`command` (or both), a zero,
//! too long or unparsable duration, a negative `retries`, a duplicate step name, an unknown
//! or cyclic `needs`, a zero `max_parallel`, a file that is not UTF-8 or cannot be read.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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

/// A checked pipeline: what the manager runs. Made only by parsing a spec
/// ([`from_file`](Self::from_file), [`parse`](Self::parse)) or by checking a
/// [`PipelineDraft`]; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PipelineSpec {
    #[serde(flatten)]
    draft: PipelineDraft,
    /// For each step, the indices of the steps it needs, resolved once.
    #[serde(skip)]
    needs: Vec<Box<[usize]>>,
    /// For each step, the indices of the steps that need it.
    #[serde(skip)]
    dependents: Vec<Box<[usize]>>,
    /// A digest of the draft, to tell whether a spec changed (see [`Self::hash`]).
    #[serde(skip)]
    hash: Arc<str>,
    /// The file it was read from, if it was.
    #[serde(skip)]
    source: Option<Arc<Path>>,
}

/// A pipeline as code writes it, not yet checked: [`check`](Self::check) it into a
/// [`PipelineSpec`] to run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineDraft {
    /// The pipeline's name.
    pub name: String,
    /// The limit on the whole execution, counted from `execute`.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// At most this many steps run at once; `None` for the number of cores.
    pub max_parallel: Option<usize>,
    /// What a step's failure does to the steps still running.
    pub on_failure: OnFailure,
    /// The steps, in the order they are written (and run, where no `needs` says otherwise).
    pub steps: Vec<StepSpec>,
}

/// What a failed step does to the other steps still running (see the [module docs](self)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// They run to their end; the execution fails once they have.
    #[default]
    Finish,
    /// They are stopped at once; the execution fails now.
    Cancel,
}

impl fmt::Display for OnFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnFailure::Finish => "finish",
            OnFailure::Cancel => "cancel",
        })
    }
}

/// What a step runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// One step. Inside a [`PipelineSpec`] it has been checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSpec {
    /// Unique within the pipeline.
    pub name: String,
    /// What it runs.
    pub action: StepAction,
    /// The steps that must complete before it starts; `None` for the step before it (none for
    /// the first), `Some(vec![])` to start with the execution.
    pub needs: Option<Vec<String>>,
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

impl StepSpec {
    /// A step in code: `action`, after the step before it, with no timeout, no retries, no
    /// env, no artifacts.
    pub fn new(name: impl Into<String>, action: StepAction) -> StepSpec {
        StepSpec {
            name: name.into(),
            action,
            needs: None,
            timeout: None,
            retries: 0,
            retry_backoff: DEFAULT_RETRY_BACKOFF,
            env: BTreeMap::new(),
            artifacts: Vec::new(),
        }
    }

    /// This step, needing `steps` (none: it starts with the execution).
    #[must_use]
    pub fn needing<S: Into<String>>(mut self, steps: impl IntoIterator<Item = S>) -> StepSpec {
        self.needs = Some(steps.into_iter().map(Into::into).collect());
        self
    }
}

impl PipelineDraft {
    /// A pipeline in code: `steps` with the default timeout, `max_parallel` and `on_failure`.
    pub fn new(name: impl Into<String>, steps: Vec<StepSpec>) -> PipelineDraft {
        PipelineDraft {
            name: name.into(),
            timeout: DEFAULT_TIMEOUT,
            max_parallel: None,
            on_failure: OnFailure::default(),
            steps,
        }
    }

    /// Checks the draft with the rules a spec file is checked with. Errors name the file
    /// `<spec>` and the field.
    ///
    /// # Errors
    ///
    /// [`SpecError::Invalid`] naming the field.
    pub fn check(self) -> Result<PipelineSpec, SpecError> {
        check(self, "<spec>", &Lines::default())
    }
}

impl PipelineSpec {
    /// A pipeline in code, checked: `PipelineDraft::new(name, steps).check()`.
    ///
    /// # Errors
    ///
    /// [`SpecError::Invalid`] naming the field.
    pub fn new(name: impl Into<String>, steps: Vec<StepSpec>) -> Result<PipelineSpec, SpecError> {
        PipelineDraft::new(name, steps).check()
    }

    /// The pipeline's name.
    pub fn name(&self) -> &str {
        &self.draft.name
    }

    /// The limit on the whole execution, counted from `execute`.
    pub fn timeout(&self) -> Duration {
        self.draft.timeout
    }

    /// The steps, in the order they were written.
    pub fn steps(&self) -> &[StepSpec] {
        &self.draft.steps
    }

    /// The indices (in [`steps`](Self::steps)) of the steps step `index` needs.
    ///
    /// # Panics
    ///
    /// If there is no step `index`.
    pub fn needs(&self, index: usize) -> &[usize] {
        &self.needs[index]
    }

    /// The indices of the steps that need step `index`, in the order they are written.
    pub(crate) fn dependents(&self, index: usize) -> &[usize] {
        &self.dependents[index]
    }

    /// At most this many steps run at once: the spec's `max_parallel`, or the number of cores.
    pub fn max_parallel(&self) -> usize {
        // Asked of the system once: on Linux it reads the cgroup's CPU quota from files.
        static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        self.draft.max_parallel.unwrap_or_else(|| {
            *CORES.get_or_init(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            })
        })
    }

    /// What a step's failure does to the steps still running.
    pub fn on_failure(&self) -> OnFailure {
        self.draft.on_failure
    }

    /// A digest of what the spec says (not of where it came from): two specs have the same
    /// hash exactly when they run the same. `resume` compares it with the stored one.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The file the spec was read from ([`from_file`](Self::from_file)); `None` for one
    /// parsed from text or built in code.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The spec as read from `source` (a spec read back from the store's journal).
    pub(crate) fn with_source(mut self, source: Option<PathBuf>) -> PipelineSpec {
        self.source = source.map(Arc::from);
        self
    }

    /// The spec as a draft, to change and check again.
    pub fn to_draft(&self) -> PipelineDraft {
        self.draft.clone()
    }

    /// Reads and checks a spec file.
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
        let mut spec = PipelineSpec::parse(&text, &file)?;
        spec.source = Some(
            std::path::absolute(path)
                .unwrap_or_else(|_| path.to_path_buf())
                .into(),
        );
        Ok(spec)
    }

    /// Parses and checks spec text; `file` names it in errors.
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
        let mut lines = Lines::default();
        let draft = raw
            .into_draft(text, &mut lines)
            .map_err(|(field, message)| SpecError::Invalid {
                file: file.to_string(),
                line: lines.of(&field),
                field: Some(field),
                message,
            })?;
        check(draft, file, &lines)
    }
}

/// The line each field of a spec file is on, by field path (`steps[1].timeout`), to name it
/// in errors; empty for a spec built in code.
#[derive(Default)]
struct Lines(HashMap<String, usize>);

impl Lines {
    fn record<T>(&mut self, text: &str, field: String, value: &Spanned<T>) {
        self.0.insert(field, line_of(text, value.span().start));
    }

    /// The field's line, or else its step's (`run` missing: the step's own line).
    fn of(&self, field: &str) -> Option<usize> {
        self.0.get(field).copied().or_else(|| {
            let step = &field[..field.find('.')?];
            self.0.get(step).copied()
        })
    }
}

/// Checks `draft` into a spec: every rule a spec follows, for files and code alike.
fn check(mut draft: PipelineDraft, file: &str, lines: &Lines) -> Result<PipelineSpec, SpecError> {
    let invalid = |field: String, message: String| SpecError::Invalid {
        file: file.to_string(),
        line: lines.of(&field),
        field: Some(field),
        message,
    };
    draft.name = draft.name.trim().to_string();
    if let Some(message) = name_problem(&draft.name) {
        return Err(invalid("name".into(), message.into()));
    }
    if let Some(message) = duration_problem(draft.timeout) {
        return Err(invalid("timeout".into(), message));
    }
    if draft.max_parallel == Some(0) {
        return Err(invalid("max_parallel".into(), "must be at least 1".into()));
    }
    if draft.steps.is_empty() {
        return Err(invalid(
            "steps".into(),
            "a pipeline needs at least one step".into(),
        ));
    }
    let mut index_of = HashMap::with_capacity(draft.steps.len());
    for (index, step) in draft.steps.iter_mut().enumerate() {
        let field = |name: &str| format!("steps[{index}].{name}");
        step.name = step.name.trim().to_string();
        if let Some(message) = name_problem(&step.name) {
            return Err(invalid(field("name"), message.into()));
        }
        if index_of.insert(step.name.clone(), index).is_some() {
            return Err(invalid(
                field("name"),
                format!("duplicate step name {:?}", step.name),
            ));
        }
        match &step.action {
            StepAction::Run(line) if line.trim().is_empty() => {
                return Err(invalid(field("run"), "must not be empty".into()));
            }
            StepAction::Command(argv) if argv.first().is_none_or(|p| p.trim().is_empty()) => {
                return Err(invalid(
                    field("command"),
                    "must name a program: a non-empty array whose first item is not empty".into(),
                ));
            }
            _ => {}
        }
        if let Some((problem, message)) = action_problem(&step.action) {
            return Err(invalid(field(problem), message));
        }
        if let Some(message) = step.timeout.and_then(duration_problem) {
            return Err(invalid(field("timeout"), message));
        }
        if let Some(message) = duration_problem(step.retry_backoff) {
            return Err(invalid(field("retry_backoff"), message));
        }
        if let Some(message) = env_problem(&step.env) {
            return Err(invalid(field("env"), message));
        }
        if let Some(message) = step.artifacts.iter().find_map(|a| artifact_problem(a)) {
            return Err(invalid(field("artifacts"), message));
        }
    }
    let mut needs = Vec::with_capacity(draft.steps.len());
    for (index, step) in draft.steps.iter().enumerate() {
        let resolved: Box<[usize]> = match &step.needs {
            None => index.checked_sub(1).into_iter().collect(),
            Some(names) => {
                let mut resolved = Vec::with_capacity(names.len());
                for name in names {
                    let Some(&needed) = index_of.get(name.trim()) else {
                        return Err(invalid(
                            format!("steps[{index}].needs"),
                            format!("no step is named {name:?}"),
                        ));
                    };
                    if !resolved.contains(&needed) {
                        resolved.push(needed);
                    }
                }
                resolved.into()
            }
        };
        needs.push(resolved);
    }
    if let Some(cycle) = find_cycle(&needs) {
        let path: Vec<&str> = cycle
            .iter()
            .map(|&index| draft.steps[index].name.as_str())
            .collect();
        return Err(invalid(
            format!("steps[{}].needs", cycle[0]),
            format!(
                "the steps' needs go round in a cycle: {} (each needs the next)",
                path.join(" → ")
            ),
        ));
    }
    let mut dependents = vec![Vec::new(); needs.len()];
    for (index, needed) in needs.iter().enumerate() {
        for &needed in needed {
            dependents[needed].push(index);
        }
    }
    let hash = digest(&draft);
    Ok(PipelineSpec {
        draft,
        needs,
        dependents: dependents.into_iter().map(Vec::into_boxed_slice).collect(),
        hash,
        source: None,
    })
}

/// The first 128 bits of the SHA-256 of the draft's JSON, in hex: the same for the same
/// pipeline on every machine and Rust version (JSON fields are in declaration order, `env` is
/// a sorted map), so a stored hash can be compared with a spec read again later.
fn digest(draft: &PipelineDraft) -> Arc<str> {
    use sha2::Digest;
    use std::fmt::Write;
    let json = serde_json::to_vec(draft).expect("a draft always serializes");
    let sum = sha2::Sha256::digest(&json);
    let mut hex = String::with_capacity(32);
    for byte in &sum[..16] {
        let _ = write!(hex, "{byte:02x}");
    }
    hex.into()
}

/// A cycle in the graph where step `i` points at each step in `needs[i]`, as the steps on it
/// with the first repeated at the end (`[a, b, a]`); `None` if there is none.
///
/// A depth-first walk with an explicit stack: a spec may hold thousands of steps, each needing
/// the one before, and a recursive walk would use the thread's stack that deep.
fn find_cycle(needs: &[Box<[usize]>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Unseen,
        OnPath,
        Done,
    }
    let mut marks = vec![Mark::Unseen; needs.len()];
    for start in 0..needs.len() {
        if marks[start] != Mark::Unseen {
            continue;
        }
        // The path from `start`: each step with the index of the next need to follow.
        let mut path = vec![(start, 0)];
        marks[start] = Mark::OnPath;
        while let Some((step, next)) = path.last_mut() {
            let step = *step;
            match needs[step].get(*next) {
                None => {
                    marks[step] = Mark::Done;
                    path.pop();
                }
                Some(&needed) => {
                    *next += 1;
                    match marks[needed] {
                        Mark::Unseen => {
                            marks[needed] = Mark::OnPath;
                            path.push((needed, 0));
                        }
                        Mark::OnPath => {
                            let from = path.iter().position(|&(s, _)| s == needed)?;
                            let mut cycle: Vec<usize> =
                                path[from..].iter().map(|&(s, _)| s).collect();
                            cycle.push(needed);
                            return Some(cycle);
                        }
                        Mark::Done => {}
                    }
                }
            }
        }
    }
    None
}

const TOO_LONG: &str = "must be at most 365 days";

/// What is wrong with a timeout or backoff: zero, or too long for a timer.
fn duration_problem(duration: Duration) -> Option<String> {
    if duration.is_zero() {
        Some("must be greater than zero".into())
    } else if duration > MAX_DURATION {
        Some(format!(
            "{TOO_LONG}, not {}",
            humantime::format_duration(duration)
        ))
    } else {
        None
    }
}

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
    max_parallel: Option<Spanned<usize>>,
    on_failure: Option<Spanned<OnFailure>>,
    steps: Option<Vec<Spanned<RawStep>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: Spanned<String>,
    run: Option<Spanned<String>>,
    command: Option<Spanned<Vec<String>>>,
    needs: Option<Spanned<Vec<String>>>,
    timeout: Option<Spanned<String>>,
    retries: Option<u32>,
    retry_backoff: Option<Spanned<String>>,
    env: Option<Spanned<BTreeMap<String, String>>>,
    artifacts: Option<Spanned<Vec<String>>>,
}

/// A field that cannot even become a draft: its path and what is wrong.
type RawError = (String, String);

impl RawPipeline {
    /// The draft the file describes, noting each field's line in `lines`. Only what a draft
    /// cannot hold is an error here (a duration that does not parse, both or neither of
    /// `run` and `command`); every other rule is [`check`]'s.
    fn into_draft(self, text: &str, lines: &mut Lines) -> Result<PipelineDraft, RawError> {
        lines.record(text, "name".into(), &self.name);
        let timeout = match &self.timeout {
            Some(timeout) => {
                lines.record(text, "timeout".into(), timeout);
                parse_duration(timeout, "timeout")?
            }
            None => DEFAULT_TIMEOUT,
        };
        if let Some(max_parallel) = &self.max_parallel {
            lines.record(text, "max_parallel".into(), max_parallel);
        }
        if let Some(on_failure) = &self.on_failure {
            lines.record(text, "on_failure".into(), on_failure);
        }
        let mut steps = Vec::new();
        for (index, step) in self.steps.unwrap_or_default().into_iter().enumerate() {
            lines.record(text, format!("steps[{index}]"), &step);
            steps.push(step.into_inner().into_step(index, text, lines)?);
        }
        Ok(PipelineDraft {
            name: self.name.into_inner(),
            timeout,
            max_parallel: self.max_parallel.map(Spanned::into_inner),
            on_failure: self.on_failure.map(Spanned::into_inner).unwrap_or_default(),
            steps,
        })
    }
}

impl RawStep {
    fn into_step(self, index: usize, text: &str, lines: &mut Lines) -> Result<StepSpec, RawError> {
        let field = |name: &str| format!("steps[{index}].{name}");
        lines.record(text, field("name"), &self.name);
        if let Some(run) = &self.run {
            lines.record(text, field("run"), run);
        }
        if let Some(command) = &self.command {
            lines.record(text, field("command"), command);
        }
        let action = match (self.run, self.command) {
            (Some(_), Some(_)) => {
                return Err((
                    field("command"),
                    "give exactly one of `run` and `command`, not both".into(),
                ));
            }
            (None, None) => {
                return Err((
                    field("run"),
                    "give exactly one of `run` (a shell line) and `command` (an argv array)".into(),
                ));
            }
            (Some(run), None) => StepAction::Run(run.into_inner()),
            (None, Some(command)) => StepAction::Command(command.into_inner()),
        };
        let timeout = match &self.timeout {
            Some(timeout) => {
                lines.record(text, field("timeout"), timeout);
                Some(parse_duration(timeout, &field("timeout"))?)
            }
            None => None,
        };
        let retry_backoff = match &self.retry_backoff {
            Some(backoff) => {
                lines.record(text, field("retry_backoff"), backoff);
                parse_duration(backoff, &field("retry_backoff"))?
            }
            None => DEFAULT_RETRY_BACKOFF,
        };
        for (name, value) in [("needs", &self.needs), ("artifacts", &self.artifacts)] {
            if let Some(value) = value {
                lines.record(text, field(name), value);
            }
        }
        if let Some(env) = &self.env {
            lines.record(text, field("env"), env);
        }
        Ok(StepSpec {
            name: self.name.into_inner(),
            action,
            needs: self.needs.map(Spanned::into_inner),
            timeout,
            retries: self.retries.unwrap_or(0),
            retry_backoff,
            env: self.env.map(Spanned::into_inner).unwrap_or_default(),
            artifacts: self
                .artifacts
                .map(Spanned::into_inner)
                .unwrap_or_default()
                .into_iter()
                .map(PathBuf::from)
                .collect(),
        })
    }
}

/// A duration as written (`"30s"`, `"1h 30m"`); whether it is in range is [`check`]'s.
fn parse_duration(value: &Spanned<String>, field: &str) -> Result<Duration, RawError> {
    let text = value.get_ref().trim();
    humantime::parse_duration(text).map_err(|error| {
        (
            field.to_string(),
            format!("invalid duration {text:?}: {error} (examples: \"30s\", \"5m\", \"1h 30m\")"),
        )
    })
}

/// Durations serialised as humantime strings ("5m"), for `--json`.
mod humantime_serde_compat {
    use std::time::Duration;

    pub(crate) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Duration, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
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

        pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Duration>, D::Error> {
            match <Option<String> as serde::Deserialize>::deserialize(d)? {
                Some(text) => humantime::parse_duration(&text)
                    .map(Some)
                    .map_err(serde::de::Error::custom),
                None => Ok(None),
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
        assert_eq!(spec.timeout(), DEFAULT_TIMEOUT);
        assert_eq!(spec.on_failure(), OnFailure::Finish);
        assert_eq!(spec.steps()[0].action, StepAction::Run("true".into()));
        assert_eq!(spec.steps()[1].timeout, Some(Duration::from_secs(30)));
        assert_eq!(spec.steps()[1].retries, 2);
        assert_eq!(spec.steps()[1].env["LC_ALL"], "C");
        // Without `needs`, each step needs the one before.
        assert_eq!(spec.needs(0), &[] as &[usize]);
        assert_eq!(spec.needs(1), &[0]);
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
                .starts_with("p.toml:5: steps[0].timeout: must be greater than zero")
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
        let mut draft = PipelineSpec::parse(&step_with(""), "p.toml")
            .unwrap()
            .to_draft();
        draft.steps[0].retry_backoff = Duration::MAX;
        assert!(
            draft
                .check()
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
        let mut draft = PipelineSpec::parse(&step_with(""), "p.toml")
            .unwrap()
            .to_draft();
        draft.steps[0].env.insert("K=V".into(), "1".into());
        assert!(
            draft
                .check()
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
        let mut draft = PipelineSpec::parse(&step_with(""), "p.toml")
            .unwrap()
            .to_draft();
        draft.steps[0].artifacts.push("/tmp/x".into());
        assert!(
            draft
                .check()
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

    /// A spec of steps `(name, needs)`; `None` leaves `needs` out.
    fn dag(steps: &[(&str, Option<&str>)]) -> String {
        let mut text = String::from("name = \"x\"\n");
        for (name, needs) in steps {
            text.push_str(&format!("[[steps]]\nname = \"{name}\"\nrun = \"true\"\n"));
            if let Some(needs) = needs {
                text.push_str(&format!("needs = [{needs}]\n"));
            }
        }
        text
    }

    #[test]
    fn needs_resolve_to_step_indices_and_default_to_the_step_before() {
        let spec = PipelineSpec::parse(
            &dag(&[
                ("fetch", None),
                ("lint", Some("")),
                ("build", Some("\"fetch\", \"lint\", \"fetch\"")),
                ("test", None),
                ("docs", Some("\"report\"")),
                ("report", Some("\"test\"")),
            ]),
            "p.toml",
        )
        .unwrap();
        assert_eq!(spec.needs(0), &[] as &[usize]);
        assert_eq!(spec.needs(1), &[] as &[usize]);
        // Listed twice, needed once.
        assert_eq!(spec.needs(2), &[0, 1]);
        assert_eq!(spec.needs(3), &[2]);
        // A step may need one written after it.
        assert_eq!(spec.needs(4), &[5]);
        assert_eq!(spec.needs(5), &[3]);
    }

    #[test]
    fn unknown_needs_are_rejected_naming_line_and_field() {
        let message = error(&dag(&[("a", None), ("b", Some("\"a\", \"c\""))]));
        assert_eq!(message, "p.toml:8: steps[1].needs: no step is named \"c\"");
    }

    #[test]
    fn cycles_are_rejected_naming_the_cycle() {
        let message = error(&dag(&[("a", Some("\"c\"")), ("b", None), ("c", None)]));
        assert_eq!(
            message,
            "p.toml:5: steps[0].needs: the steps' needs go round in a cycle: a → c → b → a (each needs the next)"
        );
        let message = error(&dag(&[("a", None), ("b", Some("\"b\""))]));
        assert!(
            message.ends_with("cycle: b → b (each needs the next)"),
            "{message}"
        );
        // A cycle reached from a step outside it names only the cycle.
        let message = error(&dag(&[
            ("a", Some("\"b\"")),
            ("b", Some("\"c\"")),
            ("c", Some("\"b\"")),
        ]));
        assert!(message.contains("cycle: b → c → b "), "{message}");
        // Drafts in code are checked by the same rules.
        let draft = PipelineDraft::new(
            "x",
            vec![
                StepSpec::new("a", StepAction::Run("true".into())).needing(["b"]),
                StepSpec::new("b", StepAction::Run("true".into())),
            ],
        );
        assert_eq!(
            draft.check().unwrap_err().to_string(),
            "<spec>: steps[0].needs: the steps' needs go round in a cycle: a → b → a (each needs the next)"
        );
    }

    // A long chain is walked without recursion: this would overflow a test thread's stack
    // with a recursive walk.
    #[test]
    fn a_chain_of_many_steps_is_checked_without_deep_recursion() {
        let steps = (0..200_000)
            .map(|i| StepSpec::new(format!("s{i}"), StepAction::Run("true".into())))
            .collect();
        let spec = PipelineSpec::new("long", steps).unwrap();
        assert_eq!(spec.needs(199_999), &[199_998]);
    }

    #[test]
    fn max_parallel_and_on_failure_are_read_and_checked() {
        let spec = PipelineSpec::parse(
            "name = \"x\"\nmax_parallel = 3\non_failure = \"cancel\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\n",
            "p.toml",
        )
        .unwrap();
        assert_eq!(spec.max_parallel(), 3);
        assert_eq!(spec.on_failure(), OnFailure::Cancel);
        assert!(
            PipelineSpec::new(
                "x",
                vec![StepSpec::new("a", StepAction::Run("true".into()))]
            )
            .unwrap()
            .max_parallel()
                >= 1
        );
        assert!(
            error("name = \"x\"\nmax_parallel = 0\n[[steps]]\nname = \"a\"\nrun = \"true\"\n")
                .starts_with("p.toml:2: max_parallel: must be at least 1")
        );
        assert!(
            error("name = \"x\"\nmax_parallel = -1\n[[steps]]\nname = \"a\"\nrun = \"true\"\n")
                .starts_with("p.toml:2: max_parallel: ")
        );
        let message = error(
            "name = \"x\"\non_failure = \"ignore\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\n",
        );
        assert!(
            message.starts_with("p.toml:2: on_failure: unknown variant"),
            "{message}"
        );
    }
}
