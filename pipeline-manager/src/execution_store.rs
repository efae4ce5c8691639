//! The execution store: the history of every execution, kept where it survives the manager.
//!
//! [`ExecutionStore`] is what a backend implements: writes in batches, and the reads the CLI
//! and the cleaner need. [`SqliteStore`](crate::sqlite_store::SqliteStore), one file in the
//! output directory, is the default; a second backend (PostgreSQL, say) implements the same
//! trait and nothing else changes: workers never see the backend, only the store's writer
//! process, which makes their writes durable in a [journal](crate::store_journal) and hands
//! them in batches to the owner process that commits them to the backend.
//!
//! The seed kept executions in its workers' memory only: a restart of the manager forgot them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::execution::{ExecutionId, ExecutionStatus, Status};
use crate::pipeline::PipelineSpec;

/// Something the store was asked to write. Writes are applied in order, in one transaction
/// per batch.
#[derive(Debug, Clone)]
pub enum StoreWrite {
    /// Record the execution as it is now (inserting it, or replacing what was recorded).
    Put(ExecutionRecord),
    /// Forget the execution (the cleaner removed it).
    Remove(ExecutionId),
}

impl StoreWrite {
    /// The execution the write is about.
    pub fn id(&self) -> &ExecutionId {
        match self {
            StoreWrite::Put(record) => &record.status.execution_id,
            StoreWrite::Remove(id) => id,
        }
    }
}

/// An execution as recorded: its current run's status, and what it needs to be resumed.
#[derive(Debug, Clone)]
pub struct ExecutionRecord {
    /// The current run's status (steps, attempts, exit statuses, artifacts, its directory).
    pub status: Arc<ExecutionStatus>,
    /// What it runs.
    pub spec: Arc<PipelineSpec>,
    /// When it was started (`start_execution` / `run_pipeline`).
    pub created_at: SystemTime,
    /// The final statuses of its earlier runs, oldest first: empty unless it was resumed.
    pub previous_runs: Arc<[Arc<ExecutionStatus>]>,
}

/// Which executions [`ExecutionStore::list`] returns: newest first, at most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only those in this state.
    pub status: Option<Status>,
    /// Only those of the pipeline with this name.
    pub pipeline: Option<String>,
    /// At most this many; `None` for all.
    pub limit: Option<usize>,
}

/// One line of the history: what `pipeline-manager list` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecutionSummary {
    /// The id.
    pub id: ExecutionId,
    /// The pipeline's name.
    pub pipeline: String,
    /// Where it is (or ended).
    pub status: Status,
    /// When it was started, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// When it reached its final state, in milliseconds since the Unix epoch.
    pub completed_at_ms: Option<i64>,
    /// How many times it ran: 1, plus one per resume.
    pub runs: u32,
}

/// An execution as read back from the store: what `show` and `resume` use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredExecution {
    /// The current (latest) run's status.
    pub status: ExecutionStatus,
    /// The spec it ran.
    pub spec: PipelineSpec,
    /// The spec's hash when it was started ([`PipelineSpec::hash`]).
    pub spec_hash: String,
    /// The file the spec was read from, if it was.
    pub spec_source: Option<PathBuf>,
    /// When it was started, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// The final statuses of its earlier runs, oldest first.
    pub previous_runs: Vec<ExecutionStatus>,
}

/// What the cleaner removes: finished executions older than `max_age`, and the oldest
/// finished ones beyond `max_finished`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Finished longer ago than this.
    pub max_age: Duration,
    /// At most this many finished executions are kept.
    pub max_finished: usize,
}

/// Why the store could not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Another manager has the store open for writing.
    #[error("{0} is in use by another pipeline-manager")]
    InUse(PathBuf),
    /// The backend failed (I/O, a full disk, a database error).
    #[error("execution store: {0}")]
    Backend(String),
    /// A record could not be read back (written by an incompatible version, or damaged).
    #[error("execution store: the record of {id} cannot be read: {message}")]
    Unreadable {
        /// The execution.
        id: String,
        /// What is wrong with it.
        message: String,
    },
}

/// A backend for the execution store. Its methods block (a database call); the store's
/// owner process calls them.
pub trait ExecutionStore: Send + 'static {
    /// Applies `batch` in order, all or nothing. When it returns `Ok`, the writes survive the
    /// manager being killed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if nothing was written.
    fn commit(&mut self, batch: &[StoreWrite]) -> Result<(), StoreError>;

    /// Marks every execution still recorded as pending or running `interrupted`, finished
    /// `at`: what a manager does as it opens the store, since no worker is running them any
    /// more. Returns how many it marked.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`].
    fn mark_interrupted(&mut self, at: SystemTime) -> Result<usize, StoreError>;

    /// The executions `filter` selects, newest first.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`].
    fn list(&self, filter: &ListFilter) -> Result<Vec<ExecutionSummary>, StoreError>;

    /// One execution, if it is recorded.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`], or [`StoreError::Unreadable`] for a damaged record.
    fn get(&self, id: &ExecutionId) -> Result<Option<StoredExecution>, StoreError>;

    /// The finished executions `retention` says to remove as of `now`, with their
    /// directories. Never a pending or running one.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`].
    fn expired(
        &self,
        retention: Retention,
        now: SystemTime,
    ) -> Result<Vec<(ExecutionId, PathBuf)>, StoreError>;
}

/// Opens a store's backend; called by each incarnation of the process that writes to it.
pub type OpenStore = Arc<dyn Fn() -> Result<Box<dyn ExecutionStore>, StoreError> + Send + Sync>;

/// Where a manager keeps its executions' history
/// ([`ManagerConfig::store`](crate::ManagerConfig::store)).
#[derive(Clone, Default)]
pub enum StoreConfig {
    /// In [`SqliteStore`](crate::sqlite_store::SqliteStore), `<output_dir>/executions.db`.
    #[default]
    Sqlite,
    /// Nowhere: executions live in memory and are forgotten when the manager stops.
    Memory,
    /// In the backend this opens.
    Custom(OpenStore),
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoreConfig::Sqlite => "Sqlite",
            StoreConfig::Memory => "Memory",
            StoreConfig::Custom(_) => "Custom",
        })
    }
}

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn epoch_ms(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}
