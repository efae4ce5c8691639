//! Executions: ids that cannot collide, the lifecycle, and the status record.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An execution's id: `exec-<uuid>`, a UUIDv7: 74 random bits after a millisecond
/// timestamp, so ids are unique across processes, machines and containers (seed defect D15:
/// ids that can collide), cannot be predicted (nobody can plant a directory or a symlink
/// under a future execution's name), and sort by creation time.
///
/// Shared text (`Arc<str>`): an id is copied into every status, the registry and the board, and
/// cloning it is a reference count, not an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExecutionId(Arc<str>);

impl ExecutionId {
    pub(crate) fn generate() -> ExecutionId {
        let uuid = uuid::Uuid::now_v7();
        let mut id = String::with_capacity(5 + uuid::fmt::Hyphenated::LENGTH);
        id.push_str("exec-");
        id.push_str(
            uuid.hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer()),
        );
        ExecutionId(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as shared text, for names that take an `Arc<str>` (no copy).
    pub(crate) fn to_shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ExecutionId {
    fn from(id: &str) -> ExecutionId {
        ExecutionId(id.into())
    }
}

/// Where an execution is in its lifecycle: pending → running → one of the final states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Started, waiting for `execute`.
    Pending,
    /// Running its steps.
    Running,
    /// Every step succeeded.
    Completed,
    /// A step failed (after its retries).
    Failed,
    /// Cancelled while running.
    Cancelled,
    /// The execution's timeout expired while running.
    TimedOut,
    /// The step runner itself crashed (not the step's command).
    Crashed,
    /// It was pending or running when its manager stopped without finishing it (killed, or
    /// the machine went down): marked so by the next manager to open the store.
    Interrupted,
}

impl ExecutionStatus {
    /// Whether the execution will not progress by itself: it is final, or its worker crashed
    /// and came back pending (it runs again only if executed again). What `wait` waits for.
    pub fn is_settled(&self) -> bool {
        self.status.is_final() || (self.restarted && self.status == Status::Pending)
    }
}

impl Status {
    /// Whether this is a final state.
    pub fn is_final(self) -> bool {
        !matches!(self, Status::Pending | Status::Running)
    }
}

impl std::str::FromStr for Status {
    type Err = String;

    /// The names [`Display`](fmt::Display) gives: `pending`, `running`, `completed`, …
    fn from_str(text: &str) -> Result<Status, String> {
        Ok(match text {
            "pending" => Status::Pending,
            "running" => Status::Running,
            "completed" => Status::Completed,
            "failed" => Status::Failed,
            "cancelled" => Status::Cancelled,
            "timed_out" => Status::TimedOut,
            "crashed" => Status::Crashed,
            "interrupted" => Status::Interrupted,
            _ => {
                return Err(format!(
                    "unknown status {text:?} (pending, running, completed, failed, cancelled, \
                     timed_out, crashed, interrupted)"
                ));
            }
        })
    }
}

impl Status {
    /// The status's name, as `Display`, serde and the store write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
            Status::TimedOut => "timed_out",
            Status::Crashed => "crashed",
            Status::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one attempt of a step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum StepExit {
    /// Exited with status 0.
    Success,
    /// Exited with a non-zero status.
    Code(i32),
    /// Ended by a signal (number).
    Signal(i32),
    /// Could not be run at all (program not found, …).
    Error(String),
}

impl StepExit {
    /// Whether the step succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self, StepExit::Success)
    }
}

impl fmt::Display for StepExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepExit::Success => f.write_str("exit status 0"),
            StepExit::Code(code) => write!(f, "exit status {code}"),
            StepExit::Signal(signal) => write!(f, "killed by signal {signal}"),
            StepExit::Error(error) => write!(f, "could not run: {error}"),
        }
    }
}

/// Progress of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepProgress {
    /// The step's name.
    pub name: Arc<str>,
    /// `pending`, `running`, `completed`, `failed` or `skipped`.
    pub state: StepState,
    /// Attempts made so far (1 + retries used).
    pub attempts: u32,
    /// How the last attempt ended.
    pub exit: Option<StepExit>,
    /// How long the last attempt took, in milliseconds.
    pub duration_ms: Option<u64>,
    /// The last lines of its output (stdout and stderr).
    pub output_tail: Vec<String>,
    /// Every attempt that has ended, in order: how it ended and how long it ran. The last is
    /// the one `exit` and `duration_ms` describe.
    #[serde(default)]
    pub past_attempts: Vec<AttemptRecord>,
}

/// One ended attempt of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// How it ended.
    pub exit: StepExit,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
}

/// A step's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Not started.
    Pending,
    /// An attempt is running, or a retry is scheduled.
    Running,
    /// Succeeded.
    Completed,
    /// Failed for good, or stopped by cancel / timeout.
    Failed,
    /// Never started: the execution failed, or was cancelled or timed out, first.
    Skipped,
}

/// A collected artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Its path.
    pub path: PathBuf,
    /// Its size in bytes, or `None` if the step did not leave it.
    pub bytes: Option<u64>,
}

/// An execution's status: the seed's fields (`execution_id, status, started_at, completed_at,
/// duration, result, error`) plus step progress, artifacts and the restart flag.
///
/// The parts that never change during an execution (its pipeline's name, step names, its
/// directory) are shared `Arc`s, so that publishing a status on each change copies little.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionStatus {
    /// The id.
    pub execution_id: ExecutionId,
    /// The pipeline's name.
    pub pipeline: Arc<str>,
    /// Where it is in its lifecycle.
    pub status: Status,
    /// When `execute` started it.
    #[serde(serialize_with = "rfc3339", deserialize_with = "from_rfc3339")]
    pub started_at: Option<SystemTime>,
    /// When it reached a final state.
    #[serde(serialize_with = "rfc3339", deserialize_with = "from_rfc3339")]
    pub completed_at: Option<SystemTime>,
    /// Running time in milliseconds (so far, while running).
    pub duration_ms: Option<u64>,
    /// A summary of a completed execution.
    pub result: Option<String>,
    /// Why it did not complete.
    pub error: Option<String>,
    /// The signal that ended the running step after a cancel or a timeout.
    pub ended_by_signal: Option<i32>,
    /// The steps running now (or waiting to retry), in the order they started.
    pub running_steps: Vec<Arc<str>>,
    /// How many steps completed.
    pub steps_completed: usize,
    /// How many steps there are.
    pub steps_total: usize,
    /// Each step's progress. A persistent vector: successive statuses of an execution share
    /// the steps that did not change, so publishing an update does not copy every step.
    pub steps: imbl::Vector<Arc<StepProgress>>,
    /// Artifacts, collected when it completes.
    pub artifacts: Vec<Artifact>,
    /// Its directory.
    pub workdir: Arc<Path>,
    /// Whether its worker crashed and was restarted (which resets it to pending).
    pub restarted: bool,
}

fn rfc3339<S: Serializer>(time: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => s.collect_str(&humantime::format_rfc3339_millis(*time)),
        None => s.serialize_none(),
    }
}

fn from_rfc3339<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(text) => humantime::parse_rfc3339(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
        None => Ok(None),
    }
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::Status;

    // The store and the CLI parse what `Display` and serde write: the three must agree.
    #[test]
    fn every_status_parses_from_its_name() {
        for status in [
            Status::Pending,
            Status::Running,
            Status::Completed,
            Status::Failed,
            Status::Cancelled,
            Status::TimedOut,
            Status::Crashed,
            Status::Interrupted,
        ] {
            assert_eq!(status.to_string().parse::<Status>(), Ok(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::Value::String(status.to_string())
            );
        }
        assert!(
            "done"
                .parse::<Status>()
                .unwrap_err()
                .contains("unknown status")
        );
    }
}
