//! [`SqliteStore`]: the execution store in one SQLite file, `<output_dir>/executions.db`.
//!
//! # Schema (`PRAGMA user_version = 1`)
//!
//! ```sql
//! specs      (hash PRIMARY KEY, spec)           -- each distinct spec once, as JSON
//! executions (id PRIMARY KEY, pipeline, status, created_at, completed_at, runs,
//!             spec_hash, spec_source, workdir)  -- one line of the history
//! details    (id PRIMARY KEY,
//!             detail,                           -- the current run's status, as JSON
//!             previous_runs)                    -- earlier runs' final statuses, JSON array
//! ```
//!
//! Ids are UUIDv7, so `ORDER BY id` is the order executions were started in, and each table
//! is one B-tree on `id` (`WITHOUT ROWID`) that serves lookups and listing: a new execution
//! appends to the last page of each, so a commit writes a few pages. The details (steps,
//! output tails) are a table of their own so that listing reads only the short lines. Times
//! are milliseconds since the Unix epoch.
//!
//! # Durability
//!
//! The database is in WAL mode with `synchronous = NORMAL`: a commit is in the operating
//! system's hands when it returns, so it survives the manager being killed (SIGKILL included)
//! at any moment; what the last commits wrote can be lost if the machine itself loses power
//! (the database stays consistent). `synchronous = FULL` would also survive power loss, at an
//! `fsync` per commit. In a manager, each write is made durable first in the
//! [journal](crate::store_journal) (same guarantees), and this store commits batches of them
//! a few milliseconds later. One manager writes to an output directory at a time: it holds an
//! exclusive lock on `executions.db.lock` while its store is open. Readers
//! ([`SqliteStore::open_read_only`]) need no lock; [`SqliteStore::open_history`] (`list`,
//! `show`) takes the journal's and this one for the moment it recovers a stopped manager's
//! journal, and a manager starting in that moment is refused as if one were running.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::execution::{ExecutionId, ExecutionStatus, Status, StepState};
use crate::execution_store::{
    ExecutionStore, ExecutionSummary, ListFilter, Retention, StoreError, StoreWrite,
    StoredExecution, epoch_ms,
};
use crate::pipeline::{PipelineDraft, PipelineSpec};
use crate::store_journal::JournalLock;

/// The database's file name in the output directory.
pub const DATABASE_FILE: &str = "executions.db";

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS specs (
        hash TEXT PRIMARY KEY,
        spec TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS executions (
        id TEXT PRIMARY KEY,
        pipeline TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        completed_at INTEGER,
        runs INTEGER NOT NULL,
        spec_hash TEXT NOT NULL REFERENCES specs(hash),
        spec_source TEXT,
        workdir TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS details (
        id TEXT PRIMARY KEY REFERENCES executions(id) ON DELETE CASCADE,
        detail TEXT NOT NULL,
        previous_runs TEXT
    ) WITHOUT ROWID;
";

const UPSERT: &str = "
    INSERT INTO executions (id, pipeline, status, created_at, completed_at, runs, spec_hash,
                            spec_source, workdir)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
    ON CONFLICT (id) DO UPDATE SET
        status = excluded.status, completed_at = excluded.completed_at,
        runs = excluded.runs, spec_hash = excluded.spec_hash,
        spec_source = excluded.spec_source";

const UPSERT_DETAIL: &str = "
    INSERT INTO details (id, detail, previous_runs) VALUES (?1, ?2, ?3)
    ON CONFLICT (id) DO UPDATE SET
        detail = excluded.detail, previous_runs = excluded.previous_runs";

/// The execution store in a SQLite database (see the [module docs](self)).
pub struct SqliteStore {
    connection: Connection,
    /// Specs already in `specs`: most executions run a spec that is there.
    known_specs: HashSet<Arc<str>>,
    /// Held while the store is open for writing; `None` for a reader.
    _lock: Option<File>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.connection.path())
            .finish_non_exhaustive()
    }
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

impl SqliteStore {
    /// Opens (creating it and `output_dir` if need be) the store of `output_dir`, to write.
    ///
    /// # Errors
    ///
    /// [`StoreError::InUse`] if another manager has it open; [`StoreError::Backend`] if it
    /// cannot be created or was written by a newer version.
    pub fn open(output_dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(output_dir)
            .map_err(|error| backend(format!("cannot create {}: {error}", output_dir.display())))?;
        let path = output_dir.join(DATABASE_FILE);
        let lock_path = output_dir.join(format!("{DATABASE_FILE}.lock"));
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|error| backend(format!("{}: {error}", lock_path.display())))?;
        lock.try_lock().map_err(|error| match error {
            std::fs::TryLockError::WouldBlock => StoreError::InUse(path.clone()),
            std::fs::TryLockError::Error(error) => {
                backend(format!("{}: {error}", lock_path.display()))
            }
        })?;
        let connection = Connection::open(&path).map_err(backend)?;
        // A checkpoint (copying the WAL back into the database) is where `NORMAL` syncs: every
        // 10,000 pages (40 MiB of WAL) rather than SQLite's 1,000, so that its fsyncs cost each
        // commit a tenth as much (W9 with the store: 10.5k → 12.4k executions/s).
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
                 PRAGMA wal_autocheckpoint = 10000;",
            )
            .map_err(backend)?;
        let version: i64 = connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(backend)?;
        if version > SCHEMA_VERSION {
            return Err(backend(format!(
                "{} was written by a newer pipeline-manager (schema {version})",
                path.display()
            )));
        }
        connection
            .execute_batch(SCHEMA)
            .and_then(|()| connection.pragma_update(None, "user_version", SCHEMA_VERSION))
            .map_err(backend)?;
        Ok(SqliteStore {
            connection,
            known_specs: HashSet::new(),
            _lock: Some(lock),
        })
    }

    /// Opens the store of `output_dir` to read, while a manager may be writing to it; `None`
    /// if there is none.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if it cannot be read.
    pub fn open_read_only(output_dir: &Path) -> Result<Option<SqliteStore>, StoreError> {
        let path = output_dir.join(DATABASE_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let connection = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|error| backend(format!("{}: {error}", path.display())))?;
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(backend)?;
        Ok(Some(SqliteStore {
            connection,
            known_specs: HashSet::new(),
            _lock: None,
        }))
    }

    /// Opens the history of `output_dir` to read; `None` if nothing has run there.
    ///
    /// While a manager runs on the directory, this reads what it has committed, at most a
    /// few milliseconds behind what it has accepted (see
    /// [`store_journal`](crate::store_journal)). Otherwise it first does what the next
    /// manager would: commits what the last one left in its journal and marks what it left
    /// running `interrupted`, so that a killed manager's last executions show.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if the store or its journal cannot be read.
    pub fn open_history(output_dir: &Path) -> Result<Option<SqliteStore>, StoreError> {
        if !output_dir.join(DATABASE_FILE).exists() {
            return Ok(None);
        }
        // Without the lock (a manager holds it, or the directory is not ours to write: then
        // nobody here can recover it), read what is committed.
        if let Ok(journal) = JournalLock::acquire(output_dir) {
            let mut store = SqliteStore::open(output_dir)?;
            journal.recover(&mut store, SystemTime::now())?;
        }
        SqliteStore::open_read_only(output_dir)
    }

    fn put(
        transaction: &rusqlite::Transaction<'_>,
        known_specs: &mut HashSet<Arc<str>>,
        record: &crate::execution_store::ExecutionRecord,
    ) -> rusqlite::Result<()> {
        let spec = &record.spec;
        let hash = spec.hash();
        if !known_specs.contains(hash) {
            let json = serde_json::to_string(&**spec).expect("a spec always serializes");
            transaction
                .prepare_cached("INSERT OR IGNORE INTO specs (hash, spec) VALUES (?1, ?2)")?
                .execute(params![hash, json])?;
            known_specs.insert(hash.into());
        }
        let status = &record.status;
        let detail = serde_json::to_string(&**status).expect("a status always serializes");
        let previous_runs = (!record.previous_runs.is_empty()).then(|| {
            serde_json::to_string(&record.previous_runs).expect("statuses always serialize")
        });
        transaction.prepare_cached(UPSERT)?.execute(params![
            status.execution_id.as_str(),
            &*status.pipeline,
            status.status.as_str(),
            epoch_ms(record.created_at),
            status.completed_at.map(epoch_ms),
            record.previous_runs.len() as i64 + 1,
            hash,
            spec.source().map(|path| path.to_string_lossy()),
            status.workdir.to_string_lossy(),
        ])?;
        transaction.prepare_cached(UPSERT_DETAIL)?.execute(params![
            status.execution_id.as_str(),
            detail,
            previous_runs
        ])?;
        Ok(())
    }
}

impl ExecutionStore for SqliteStore {
    fn commit(&mut self, batch: &[StoreWrite]) -> Result<(), StoreError> {
        let transaction = self.connection.transaction().map_err(backend)?;
        for write in batch {
            match write {
                StoreWrite::Put(record) => {
                    SqliteStore::put(&transaction, &mut self.known_specs, record)
                }
                StoreWrite::Remove(id) => ["details", "executions"].iter().try_for_each(|table| {
                    transaction
                        .prepare_cached(&format!("DELETE FROM {table} WHERE id = ?1"))
                        .and_then(|mut delete| delete.execute([id.as_str()]))
                        .map(drop)
                }),
            }
            .map_err(backend)?;
        }
        transaction.commit().map_err(backend)
    }

    fn mark_interrupted(&mut self, at: SystemTime) -> Result<usize, StoreError> {
        let transaction = self.connection.transaction().map_err(backend)?;
        let live: Vec<(String, String)> = transaction
            .prepare(
                "SELECT e.id, d.detail FROM executions e JOIN details d ON d.id = e.id
                 WHERE e.status IN ('pending', 'running')",
            )
            .and_then(|mut select| {
                select
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect()
            })
            .map_err(backend)?;
        for (id, detail) in &live {
            let mut status: ExecutionStatus =
                serde_json::from_str(detail).map_err(|error| StoreError::Unreadable {
                    id: id.clone(),
                    message: error.to_string(),
                })?;
            interrupt(&mut status, at);
            let detail = serde_json::to_string(&status).expect("a status always serializes");
            transaction
                .execute(
                    "UPDATE executions SET status = ?2, completed_at = ?3 WHERE id = ?1",
                    params![id, Status::Interrupted.to_string(), epoch_ms(at)],
                )
                .and_then(|_| {
                    transaction.execute(
                        "UPDATE details SET detail = ?2 WHERE id = ?1",
                        params![id, detail],
                    )
                })
                .map_err(backend)?;
        }
        transaction.commit().map_err(backend)?;
        Ok(live.len())
    }

    fn list(&self, filter: &ListFilter) -> Result<Vec<ExecutionSummary>, StoreError> {
        let limit = filter
            .limit
            .map_or(-1, |limit| i64::try_from(limit).unwrap_or(i64::MAX));
        let mut select = self
            .connection
            .prepare_cached(
                "SELECT id, pipeline, status, created_at, completed_at, runs FROM executions
                 WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR pipeline = ?2)
                 ORDER BY id DESC LIMIT ?3",
            )
            .map_err(backend)?;
        let rows = select
            .query_map(
                params![
                    filter.status.map(|status| status.to_string()),
                    filter.pipeline,
                    limit
                ],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, Option<i64>>(4)?,
                        row.get::<_, u32>(5)?,
                    ))
                },
            )
            .map_err(backend)?;
        let mut summaries = Vec::new();
        for row in rows {
            let (id, pipeline, status, created_at_ms, completed_at_ms, runs) =
                row.map_err(backend)?;
            let status = status
                .parse::<Status>()
                .map_err(|message| StoreError::Unreadable {
                    id: id.clone(),
                    message,
                })?;
            summaries.push(ExecutionSummary {
                id: ExecutionId::from(id.as_str()),
                pipeline,
                status,
                created_at_ms,
                completed_at_ms,
                runs,
            });
        }
        Ok(summaries)
    }

    fn get(&self, id: &ExecutionId) -> Result<Option<StoredExecution>, StoreError> {
        let row = self
            .connection
            .prepare_cached(
                "SELECT d.detail, s.spec, e.spec_hash, e.spec_source, e.created_at,
                        d.previous_runs
                 FROM executions e JOIN details d ON d.id = e.id
                      JOIN specs s ON s.hash = e.spec_hash
                 WHERE e.id = ?1",
            )
            .and_then(|mut select| {
                select
                    .query_row([id.as_str()], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, Option<String>>(3)?,
                            row.get::<_, i64>(4)?,
                            row.get::<_, Option<String>>(5)?,
                        ))
                    })
                    .optional()
            })
            .map_err(backend)?;
        let Some((detail, spec, spec_hash, spec_source, created_at_ms, previous_runs)) = row else {
            return Ok(None);
        };
        let unreadable = |message: String| StoreError::Unreadable {
            id: id.to_string(),
            message,
        };
        let status = serde_json::from_str(&detail).map_err(|e| unreadable(e.to_string()))?;
        let draft: PipelineDraft =
            serde_json::from_str(&spec).map_err(|e| unreadable(e.to_string()))?;
        let spec: PipelineSpec = draft.check().map_err(|e| unreadable(e.to_string()))?;
        let previous_runs = match previous_runs {
            Some(json) => serde_json::from_str(&json).map_err(|e| unreadable(e.to_string()))?,
            None => Vec::new(),
        };
        Ok(Some(StoredExecution {
            status,
            spec,
            spec_hash,
            spec_source: spec_source.map(PathBuf::from),
            created_at_ms,
            previous_runs,
        }))
    }

    fn expired(
        &self,
        retention: Retention,
        now: SystemTime,
    ) -> Result<Vec<(ExecutionId, PathBuf)>, StoreError> {
        let finished: Vec<(String, String, Option<i64>)> = self
            .connection
            .prepare_cached(
                "SELECT id, workdir, completed_at FROM executions
                 WHERE status NOT IN ('pending', 'running') ORDER BY completed_at, id",
            )
            .and_then(|mut select| {
                select
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                    .collect()
            })
            .map_err(backend)?;
        let max_age = i64::try_from(retention.max_age.as_millis()).unwrap_or(i64::MAX);
        let oldest_kept = epoch_ms(now).saturating_sub(max_age);
        let excess = finished.len().saturating_sub(retention.max_finished);
        Ok(finished
            .into_iter()
            .enumerate()
            .filter(|(index, (_, _, completed_at))| {
                *index < excess || completed_at.is_some_and(|at| at < oldest_kept)
            })
            .map(|(_, (id, workdir, _))| (ExecutionId::from(id.as_str()), PathBuf::from(workdir)))
            .collect())
    }
}

/// `status` as it is once its manager is gone: `interrupted` at `at`, its running steps
/// failed (they were killed with it), its other steps as they were, so that `resume` runs
/// the ones that did not complete.
fn interrupt(status: &mut ExecutionStatus, at: SystemTime) {
    status.status = Status::Interrupted;
    status.completed_at = Some(at);
    status.error = Some(format!(
        "interrupted: its manager stopped at {} while it was pending or running",
        humantime::format_rfc3339_seconds(at)
    ));
    status.running_steps.clear();
    for step in status.steps.iter_mut() {
        if step.state == StepState::Running {
            Arc::make_mut(step).state = StepState::Failed;
        }
    }
}
