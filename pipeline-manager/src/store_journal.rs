//! The store's journal: writes the store has accepted and its backend has not committed yet,
//! appended to files in `<output_dir>/executions.journal/`.
//!
//! A commit to the backend costs tens of microseconds (SQLite's, measured in
//! `benches/RESULTS.md`, W9), and `run_pipeline` may only return an id once its execution
//! would survive the manager being killed. Appending a line to a file is a few microseconds
//! and survives a SIGKILL just as well (the kernel has it once `write` returns), so the
//! manager's store writer process makes writes durable here and hands them to the
//! backend in batches, every few milliseconds. This is the write-ahead log idea, in front of
//! a backend that has its own.
//!
//! # Segments
//!
//! The journal is a sequence of segment files, `<n>.jsonl`, one JSON object per line. Each
//! holds the journaled writes of one batch (a batch of step starts only has none): when the
//! writer hands a batch to the backend, it seals the segment and starts the next, and the
//! backend deletes the sealed segment once the batch is committed. A segment is self-contained: a spec is written into it (once) before the first
//! record that runs it, and records name the spec by its number in the segment.
//!
//! Whatever segments are left when a writer starts (the manager was killed, or the writer
//! crashed) are replayed into the backend, in order, before anything else is written
//! ([`JournalLock::recover`]). A line that cannot be read (the tail of a segment cut short by a power
//! loss) is skipped and counted, never a reason not to start.
//!
//! # Durability
//!
//! As SQLite's `synchronous = NORMAL` (the backend's own setting): nothing is `fsync`ed, so a
//! write survives the manager being killed at any moment, and the last writes can be lost if
//! the machine loses power.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::execution::{ExecutionId, ExecutionStatus};
use crate::execution_store::{ExecutionRecord, ExecutionStore, StoreError, StoreWrite, epoch_ms};
use crate::pipeline::{PipelineDraft, PipelineSpec};

/// The journal's directory in an output directory.
pub const JOURNAL_DIR: &str = "executions.journal";

/// One line of a segment, as written.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum LineOut<'a> {
    /// A spec that records further on in the segment run, as number `number`.
    Spec {
        number: usize,
        source: Option<&'a Path>,
        spec: &'a PipelineSpec,
    },
    /// [`StoreWrite::Put`].
    Put {
        spec: usize,
        created_at_ms: i64,
        status: &'a ExecutionStatus,
        previous_runs: &'a [Arc<ExecutionStatus>],
    },
    /// [`StoreWrite::Remove`].
    Remove { id: &'a ExecutionId },
}

/// One line of a segment, as read back: [`LineOut`]'s fields, owned.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum LineIn {
    Spec {
        number: usize,
        source: Option<PathBuf>,
        spec: PipelineDraft,
    },
    Put {
        spec: usize,
        created_at_ms: i64,
        status: Arc<ExecutionStatus>,
        previous_runs: Vec<Arc<ExecutionStatus>>,
    },
    Remove {
        id: ExecutionId,
    },
}

/// The writer's end of the journal: appends to the current segment, seals it.
pub(crate) struct Journal {
    dir: PathBuf,
    /// The current segment's number, and its file once something was appended to it.
    number: u64,
    file: Option<File>,
    /// The specs written to the current segment; a spec's number is its index. A segment
    /// holds a few milliseconds of writes, so a few specs: found by a linear search.
    specs: Vec<Arc<PipelineSpec>>,
    /// What one append writes, reused.
    buffer: Vec<u8>,
}

impl Journal {
    /// Opens the journal in `output_dir` to append to it (its [`JournalLock`] is held by the
    /// store's owner). Creates no segment: those an earlier writer left are the owner's to
    /// recover first, and new ones are numbered after them.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if the directory cannot be read.
    pub(crate) fn open(output_dir: &Path) -> Result<Journal, StoreError> {
        let dir = output_dir.join(JOURNAL_DIR);
        let number = segments(&dir)
            .map_err(|error| failed_at(&dir, error))?
            .last()
            .map_or(0, |(number, _)| number + 1);
        Ok(Journal {
            dir,
            number,
            file: None,
            specs: Vec::new(),
            buffer: Vec::new(),
        })
    }

    /// Appends `writes` to the current segment in one `write`: once it returns, they survive
    /// the manager being killed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if the segment cannot be created or written (a full disk).
    pub(crate) fn append<'a>(
        &mut self,
        writes: impl IntoIterator<Item = &'a StoreWrite>,
    ) -> Result<(), StoreError> {
        self.buffer.clear();
        for write in writes {
            let line = match write {
                StoreWrite::Put(record) => {
                    let spec = self.spec_number(record)?;
                    LineOut::Put {
                        spec,
                        created_at_ms: epoch_ms(record.created_at),
                        status: &record.status,
                        previous_runs: &record.previous_runs,
                    }
                }
                StoreWrite::Remove(id) => LineOut::Remove { id },
            };
            self.push_line(&line)?;
        }
        if self.buffer.is_empty() {
            return Ok(());
        }
        let path = self.segment_path();
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(
                File::options()
                    .create_new(true)
                    .append(true)
                    .open(&path)
                    .map_err(|error| failed_at(&path, error))?,
            ),
        };
        file.write_all(&self.buffer)
            .map_err(|error| failed_at(&path, error))
    }

    /// Ends the current segment and returns its path, for the backend to delete once it has
    /// committed what it holds; the next append starts a new one. `None` if nothing was
    /// appended since the last seal.
    pub(crate) fn seal(&mut self) -> Option<PathBuf> {
        self.file.take()?;
        let sealed = self.segment_path();
        self.number += 1;
        self.specs.clear();
        Some(sealed)
    }

    /// The number a record of `record`'s spec refers to in this segment, writing the spec
    /// first if it is not in it yet.
    fn spec_number(&mut self, record: &ExecutionRecord) -> Result<usize, StoreError> {
        let spec = &record.spec;
        let known = self.specs.iter().position(|known| {
            Arc::ptr_eq(known, spec)
                || (known.hash() == spec.hash() && known.source() == spec.source())
        });
        if let Some(number) = known {
            return Ok(number);
        }
        let number = self.specs.len();
        self.push_line(&LineOut::Spec {
            number,
            source: spec.source(),
            spec,
        })?;
        self.specs.push(spec.clone());
        Ok(number)
    }

    fn push_line(&mut self, line: &LineOut<'_>) -> Result<(), StoreError> {
        serde_json::to_writer(&mut self.buffer, line)
            .map_err(|error| StoreError::Backend(format!("journal: {error}")))?;
        self.buffer.push(b'\n');
        Ok(())
    }

    fn segment_path(&self) -> PathBuf {
        self.dir.join(format!("{}.jsonl", self.number))
    }
}

fn failed_at(path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Backend(format!("journal {}: {error}", path.display()))
}

/// The exclusive right to an output directory's journal: one manager (or one CLI command
/// recovering a stopped manager's journal) at a time. Released when dropped.
#[derive(Debug)]
pub struct JournalLock {
    output_dir: PathBuf,
    _file: File,
}

impl JournalLock {
    /// Takes the lock on the journal of `output_dir` (`executions.journal/lock`), creating
    /// the directories.
    ///
    /// # Errors
    ///
    /// [`StoreError::InUse`] if a running manager holds it (or a CLI command recovering the
    /// journal, for the moment it takes); [`StoreError::Backend`] if the
    /// directory cannot be created or locked.
    pub fn acquire(output_dir: &Path) -> Result<JournalLock, StoreError> {
        let dir = output_dir.join(JOURNAL_DIR);
        let failed = |error| failed_at(&dir, error);
        std::fs::create_dir_all(&dir).map_err(|error| {
            StoreError::Backend(format!("cannot create {}: {error}", dir.display()))
        })?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(failed)?;
        file.try_lock().map_err(|error| match error {
            std::fs::TryLockError::WouldBlock => StoreError::InUse(dir.clone()),
            std::fs::TryLockError::Error(error) => failed(error),
        })?;
        Ok(JournalLock {
            output_dir: output_dir.to_path_buf(),
            _file: file,
        })
    }

    /// Commits to `store` what earlier writers left in the journal, in the order they wrote
    /// it, deletes it, then marks what `store` shows pending or running `interrupted` at
    /// `now` (no writer runs, so no worker does either). Returns how many it marked.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if the journal cannot be read or deleted, or `store` fails.
    pub fn recover(
        &self,
        store: &mut dyn ExecutionStore,
        now: SystemTime,
    ) -> Result<usize, StoreError> {
        let leftovers = read_leftovers(&self.output_dir)?;
        if leftovers.unreadable_lines > 0 {
            tracing::warn!(
                lines = leftovers.unreadable_lines,
                "unreadable journal lines skipped (cut short by a crash of the machine?)"
            );
        }
        if !leftovers.writes.is_empty() {
            store.commit(&leftovers.writes)?;
            tracing::info!(writes = leftovers.writes.len(), "journal recovered");
        }
        for segment in &leftovers.segments {
            std::fs::remove_file(segment).map_err(|error| failed_at(segment, error))?;
        }
        store.mark_interrupted(now)
    }
}

/// The segments in `dir`, oldest first.
fn segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let number = path
            .extension()
            .filter(|extension| *extension == "jsonl")
            .and(path.file_stem())
            .and_then(|stem| stem.to_str()?.parse::<u64>().ok());
        if let Some(number) = number {
            found.push((number, path));
        }
    }
    found.sort();
    Ok(found)
}

/// What an earlier writer left in the journal of `output_dir`: its writes in the order they
/// were appended, the segments they came from (to delete once the writes are committed), and
/// how many lines could not be read.
#[derive(Debug, Default)]
struct Leftovers {
    writes: Vec<StoreWrite>,
    segments: Vec<PathBuf>,
    unreadable_lines: usize,
}

/// Reads every segment left in the journal of `output_dir` (none if it has no journal).
///
/// # Errors
///
/// [`StoreError::Backend`] if the directory or a segment cannot be read at all.
fn read_leftovers(output_dir: &Path) -> Result<Leftovers, StoreError> {
    let dir = output_dir.join(JOURNAL_DIR);
    let mut leftovers = Leftovers::default();
    let found = match segments(&dir) {
        Ok(found) => found,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(leftovers),
        Err(error) => return Err(failed_at(&dir, error)),
    };
    for (_, path) in found {
        let file = File::open(&path).map_err(|error| failed_at(&path, error))?;
        // Spec numbers are per segment.
        let mut specs: HashMap<usize, Arc<PipelineSpec>> = HashMap::new();
        let mut reader = BufReader::new(file);
        let mut line = Vec::new();
        loop {
            line.clear();
            // Bytes, not `lines()`: a line cut short inside a character is not UTF-8, and is
            // one unreadable line, not an unreadable journal.
            if reader
                .read_until(b'\n', &mut line)
                .map_err(|error| failed_at(&path, error))?
                == 0
            {
                break;
            }
            match serde_json::from_slice::<LineIn>(&line) {
                Ok(LineIn::Spec {
                    number,
                    source,
                    spec,
                }) => match spec.check() {
                    Ok(spec) => {
                        specs.insert(number, Arc::new(spec.with_source(source)));
                    }
                    Err(_) => {
                        // Every record that runs it is dropped with it.
                        tracing::warn!(segment = %path.display(), number, "unreadable spec in the journal");
                        leftovers.unreadable_lines += 1;
                    }
                },
                Ok(LineIn::Put {
                    spec,
                    created_at_ms,
                    status,
                    previous_runs,
                }) => match specs.get(&spec) {
                    Some(spec) => leftovers.writes.push(StoreWrite::Put(ExecutionRecord {
                        status,
                        spec: spec.clone(),
                        created_at: SystemTime::UNIX_EPOCH
                            + Duration::from_millis(u64::try_from(created_at_ms).unwrap_or(0)),
                        previous_runs: previous_runs.into(),
                    })),
                    None => leftovers.unreadable_lines += 1,
                },
                Ok(LineIn::Remove { id }) => leftovers.writes.push(StoreWrite::Remove(id)),
                Err(_) => leftovers.unreadable_lines += 1,
            }
        }
        leftovers.segments.push(path);
    }
    Ok(leftovers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{StepAction, StepSpec};

    /// A fresh directory for one test.
    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pm-journal-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn record(id: &str, spec: &Arc<PipelineSpec>) -> StoreWrite {
        let status = ExecutionStatus {
            execution_id: ExecutionId::from(id),
            pipeline: spec.name().into(),
            status: crate::execution::Status::Pending,
            started_at: None,
            completed_at: None,
            duration_ms: None,
            result: None,
            error: Some(format!("record of {id}")),
            ended_by_signal: None,
            running_steps: Vec::new(),
            steps_completed: 0,
            steps_total: 0,
            steps: imbl::Vector::new(),
            artifacts: Vec::new(),
            workdir: Arc::from(Path::new("/w")),
            restarted: false,
        };
        StoreWrite::Put(ExecutionRecord {
            status: Arc::new(status),
            spec: spec.clone(),
            created_at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_234),
            previous_runs: Arc::from([]),
        })
    }

    fn spec(name: &str) -> Arc<PipelineSpec> {
        Arc::new(
            PipelineSpec::new(
                name,
                vec![StepSpec::new("s", StepAction::Run("true".into()))],
            )
            .expect("a valid spec"),
        )
    }

    fn ids(writes: &[StoreWrite]) -> Vec<String> {
        writes.iter().map(|write| write.id().to_string()).collect()
    }

    #[test]
    fn leftovers_replay_every_segment_in_order() {
        let dir = scratch("leftovers_replay_every_segment_in_order");
        let (a, b) = (spec("a"), spec("b"));
        let _lock = JournalLock::acquire(&dir).expect("lock");
        let mut journal = Journal::open(&dir).expect("open");
        journal
            .append(&[record("e1", &a), record("e2", &b)])
            .expect("append");
        let first = journal.seal().expect("a sealed segment");
        assert_eq!(journal.seal(), None, "nothing appended since");
        journal
            .append(&[
                record("e1", &a),
                StoreWrite::Remove(ExecutionId::from("e2")),
            ])
            .expect("append");
        drop(journal);

        let leftovers = read_leftovers(&dir).expect("read");
        assert_eq!(ids(&leftovers.writes), ["e1", "e2", "e1", "e2"]);
        assert_eq!(leftovers.segments.len(), 2);
        assert_eq!(leftovers.segments[0], first);
        assert_eq!(leftovers.unreadable_lines, 0);
        let StoreWrite::Put(replayed) = &leftovers.writes[1] else {
            panic!("a put");
        };
        assert_eq!(replayed.spec.name(), "b");
        assert_eq!(replayed.spec.hash(), b.hash());
        assert_eq!(replayed.status.error.as_deref(), Some("record of e2"));
        assert_eq!(epoch_ms(replayed.created_at), 1_234);
        assert!(matches!(&leftovers.writes[3], StoreWrite::Remove(_)));
    }

    #[test]
    fn a_new_journal_appends_after_the_leftovers() {
        let dir = scratch("a_new_journal_appends_after_the_leftovers");
        let a = spec("a");
        let _lock = JournalLock::acquire(&dir).expect("lock");
        let mut journal = Journal::open(&dir).expect("open");
        journal.append(&[record("old", &a)]).expect("append");
        drop(journal);
        let mut journal = Journal::open(&dir).expect("reopen");
        journal.append(&[record("new", &a)]).expect("append");
        assert_eq!(
            ids(&read_leftovers(&dir).expect("read").writes),
            ["old", "new"]
        );
    }

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused() {
        let dir = scratch("a_second_lock_on_the_same_directory_is_refused");
        let lock = JournalLock::acquire(&dir).expect("lock");
        assert!(matches!(
            JournalLock::acquire(&dir),
            Err(StoreError::InUse(_))
        ));
        drop(lock);
        JournalLock::acquire(&dir).expect("once released");
    }

    #[test]
    fn unreadable_lines_are_skipped_and_counted() {
        let dir = scratch("unreadable_lines_are_skipped_and_counted");
        let a = spec("a");
        let _lock = JournalLock::acquire(&dir).expect("lock");
        let mut journal = Journal::open(&dir).expect("open");
        journal.append(&[record("e1", &a)]).expect("append");
        let segment = journal.seal().expect("sealed");
        drop(journal);
        // A line cut short (a power loss), garbage, a record that does not parse.
        let mut file = File::options().append(true).open(&segment).expect("open");
        file.write_all(b"{\"put\":{\"spec\":0,\"crea\nnot json\n{\"put\":{\"spec\":7,\"created_at_ms\":0,\"status\":{},\"previous_runs\":[]}}\n")
            .expect("write");
        // And a last line cut inside a two-byte character ("é" is C3 A9).
        file.write_all(b"{\"remove\":{\"id\":\"caf\xC3")
            .expect("write");
        let leftovers = read_leftovers(&dir).expect("read");
        assert_eq!(ids(&leftovers.writes), ["e1"]);
        assert_eq!(leftovers.unreadable_lines, 4);
    }

    // What a killed manager left only in its journal reaches the store, pending executions
    // marked interrupted, and the journal is emptied: recovering twice changes nothing.
    #[test]
    fn recover_commits_the_leftovers_then_marks_them_interrupted() {
        use crate::execution_store::ListFilter;
        use crate::sqlite_store::SqliteStore;
        let dir = scratch("recover_commits_the_leftovers_then_marks_them_interrupted");
        let a = spec("a");
        let lock = JournalLock::acquire(&dir).expect("lock");
        let mut journal = Journal::open(&dir).expect("open");
        journal
            .append(&[record("e1", &a), record("e2", &a)])
            .expect("append");
        journal.seal();
        journal
            .append(&[StoreWrite::Remove(ExecutionId::from("e1"))])
            .expect("append");
        drop(journal);

        let mut store = SqliteStore::open(&dir).expect("store");
        assert_eq!(
            lock.recover(&mut store, SystemTime::now())
                .expect("recover"),
            1
        );
        let listed = store.list(&ListFilter::default()).expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id.as_str(), "e2");
        assert_eq!(listed[0].status, crate::execution::Status::Interrupted);
        assert!(read_leftovers(&dir).expect("read").segments.is_empty());
        assert_eq!(
            lock.recover(&mut store, SystemTime::now()).expect("again"),
            0
        );
    }

    #[test]
    fn no_journal_means_no_leftovers() {
        let dir = scratch("no_journal_means_no_leftovers");
        let leftovers = read_leftovers(&dir).expect("read");
        assert!(leftovers.writes.is_empty() && leftovers.segments.is_empty());
    }
}
