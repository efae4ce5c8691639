//! The status board: every worker publishes a snapshot of its status here on each change, and
//! the same snapshot goes to subscribers.
//!
//! This is what lets `list_executions` answer without calling any worker (seed defect D8: one
//! stuck worker stalled the whole listing for the 5 s call timeout): listing reads the board's
//! partitions, never a worker's mailbox. Like an ETS table next to a process tree in Erlang, it
//! is shared state with no logic; the workers own what it says, and [`BoardOwner`], a process
//! beside the worker supervisor, owns the board itself: when the workers are all restarted,
//! so is it, and it starts the board empty, as an ETS table goes with its owner.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::convert::Infallible;

use otp_core::gen_server::{BoxError, Context, GenServer, Init};
use parking_lot::RwLock;
use rustc_hash::FxBuildHasher;
use tokio::sync::broadcast;

use crate::execution::{ExecutionId, ExecutionStatus, Status};
use crate::store_writer::StoreClient;

const PARTITIONS: usize = 16;

/// The process that owns the board (see the [module docs](self)). It handles no message: its
/// `init` empties the board, so each incarnation of the worker supervisor, restarted with it
/// (`one_for_all`), starts from an empty one, without the executions of workers that are gone;
/// those that were live are told to the store, which marks them `interrupted` (resumable).
pub(crate) struct BoardOwner;

impl GenServer for BoardOwner {
    type Args = (Arc<StatusBoard>, StoreClient);
    type Call = Infallible;
    type Reply = Infallible;
    type Cast = Infallible;
    type Info = Infallible;
    type Continue = Infallible;

    async fn init(
        (board, store): (Arc<StatusBoard>, StoreClient),
        _: &mut Context<Self>,
    ) -> Result<Init<Self>, BoxError> {
        if board.live_count() > 0 {
            store.workers_restarted();
        }
        board.clear();
        Ok(Init::Ready(BoardOwner))
    }
}

// Fx hashing, not SipHash: the keys are ids the manager generated itself, never chosen by a
// client, so there is no hash flooding to defend against, and every publish hashes one.
type Partition = RwLock<HashMap<ExecutionId, Arc<ExecutionStatus>, FxBuildHasher>>;

pub(crate) struct StatusBoard {
    partitions: Box<[Partition]>,
    hasher: FxBuildHasher,
    /// How many statuses on the board are live (pending or running), kept by every change
    /// under the changed entry's partition lock, so the live-execution limit is checked
    /// without walking the board.
    live: AtomicUsize,
    /// `None` once the manager has shut down: subscribers then see the stream end.
    updates: RwLock<Option<broadcast::Sender<Arc<ExecutionStatus>>>>,
}

impl StatusBoard {
    pub(crate) fn new() -> StatusBoard {
        StatusBoard {
            partitions: (0..PARTITIONS)
                .map(|_| RwLock::new(HashMap::default()))
                .collect(),
            hasher: FxBuildHasher,
            live: AtomicUsize::new(0),
            updates: RwLock::new(Some(broadcast::channel(4096).0)),
        }
    }

    fn partition(&self, id: &ExecutionId) -> &Partition {
        // The high half picks the partition: the map inside it indexes by the low bits of the
        // same hash.
        &self.partitions[((self.hasher.hash_one(id) >> 32) % PARTITIONS as u64) as usize]
    }

    pub(crate) fn publish(&self, status: Arc<ExecutionStatus>) {
        {
            let mut partition = self.partition(&status.execution_id).write();
            let replaced = partition.insert(status.execution_id.clone(), status.clone());
            self.count_change(replaced.as_deref(), Some(&status));
        }
        if let Some(updates) = self.updates.read().as_ref()
            && updates.receiver_count() > 0
        {
            let _ = updates.send(status);
        }
    }

    pub(crate) fn get(&self, id: &ExecutionId) -> Option<Arc<ExecutionStatus>> {
        self.partition(id).read().get(id).cloned()
    }

    pub(crate) fn remove(&self, id: &ExecutionId) {
        let mut partition = self.partition(id).write();
        let removed = partition.remove(id);
        self.count_change(removed.as_deref(), None);
    }

    pub(crate) fn clear(&self) {
        for partition in self.partitions.iter() {
            let mut partition = partition.write();
            for status in partition.values() {
                self.count_change(Some(status), None);
            }
            partition.clear();
        }
    }

    /// Keeps `live` in step with one entry changing from `before` to `after`; called with that
    /// entry's partition locked, so changes to one execution are counted in order.
    fn count_change(&self, before: Option<&ExecutionStatus>, after: Option<&ExecutionStatus>) {
        let is_live =
            |status: Option<&ExecutionStatus>| status.is_some_and(|s| !s.status.is_final());
        match (is_live(before), is_live(after)) {
            (false, true) => {
                self.live.fetch_add(1, Ordering::Relaxed);
            }
            (true, false) => {
                self.live.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    pub(crate) fn list(&self, filter: Option<Status>) -> Vec<Arc<ExecutionStatus>> {
        let mut all = Vec::new();
        for partition in self.partitions.iter() {
            all.extend(
                partition
                    .read()
                    .values()
                    .filter(|s| filter.is_none_or(|wanted| s.status == wanted))
                    .cloned(),
            );
        }
        all
    }

    /// How many executions are pending or running.
    pub(crate) fn live_count(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// A receiver of updates; one that is already closed once the manager has shut down.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<ExecutionStatus>> {
        match self.updates.read().as_ref() {
            Some(updates) => updates.subscribe(),
            None => broadcast::channel(1).1,
        }
    }

    /// Ends every subscription and forgets every status.
    pub(crate) fn close(&self) {
        self.updates.write().take();
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn status(id: &str, status: Status) -> ExecutionStatus {
        ExecutionStatus {
            execution_id: ExecutionId::from(id),
            pipeline: "p".into(),
            status,
            started_at: None,
            completed_at: None,
            duration_ms: None,
            result: None,
            error: None,
            ended_by_signal: None,
            running_steps: Vec::new(),
            steps_completed: 0,
            steps_total: 0,
            steps: imbl::Vector::new(),
            artifacts: Vec::new(),
            workdir: Arc::from(Path::new("/tmp")),
            restarted: false,
        }
    }

    fn recount(board: &StatusBoard) -> usize {
        board
            .list(None)
            .iter()
            .filter(|s| !s.status.is_final())
            .count()
    }

    #[test]
    fn the_live_count_follows_every_change_of_an_execution() {
        let board = StatusBoard::new();
        board.publish(Arc::new(status("a", Status::Pending)));
        board.publish(Arc::new(status("b", Status::Pending)));
        assert_eq!(board.live_count(), 2);
        board.publish(Arc::new(status("a", Status::Running)));
        assert_eq!(board.live_count(), 2);
        board.publish(Arc::new(status("a", Status::Completed)));
        assert_eq!(board.live_count(), 1);
        // A late publish of a final status (a step's result after a cancel) changes nothing.
        board.publish(Arc::new(status("a", Status::Completed)));
        assert_eq!(board.live_count(), 1);
        // A restarted worker comes back pending under the same id.
        board.publish(Arc::new(status("b", Status::Running)));
        board.publish(Arc::new(status("b", Status::Pending)));
        assert_eq!(board.live_count(), 1);
        board.remove(&ExecutionId::from("a"));
        assert_eq!(board.live_count(), 1);
        board.remove(&ExecutionId::from("b"));
        assert_eq!(board.live_count(), 0);
        board.remove(&ExecutionId::from("never"));
        assert_eq!(board.live_count(), 0);
        board.publish(Arc::new(status("c", Status::Running)));
        board.publish(Arc::new(status("d", Status::Failed)));
        board.clear();
        assert_eq!(board.live_count(), 0);
    }

    #[test]
    fn the_live_count_matches_a_recount_after_concurrent_publishes() {
        let board = StatusBoard::new();
        std::thread::scope(|scope| {
            for writer in 0..4 {
                let board = &board;
                scope.spawn(move || {
                    for i in 0..500 {
                        let id = format!("{writer}-{i}");
                        board.publish(Arc::new(status(&id, Status::Pending)));
                        board.publish(Arc::new(status(&id, Status::Running)));
                        if i % 3 == 0 {
                            board.publish(Arc::new(status(&id, Status::Cancelled)));
                        }
                        if i % 5 == 0 {
                            board.remove(&ExecutionId::from(id.as_str()));
                        }
                    }
                });
            }
        });
        assert_eq!(board.live_count(), recount(&board));
    }
}
