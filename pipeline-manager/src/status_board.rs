//! The status board: every worker publishes a snapshot of its status here on each change, and
//! the same snapshot goes to subscribers.
//!
//! This is what lets `list_executions` answer without calling any worker (seed defect D8: one
//! stuck worker stalled the whole listing for the 5 s call timeout): listing reads the board's
//! partitions, never a worker's mailbox. Like an ETS table next to a process tree in Erlang, it
//! is shared state with no logic; the workers own what it says.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use parking_lot::RwLock;
use rustc_hash::FxBuildHasher;
use tokio::sync::broadcast;

use crate::execution::{ExecutionId, ExecutionStatus, Status};

const PARTITIONS: usize = 16;

// Fx hashing, not SipHash: the keys are ids the manager generated itself, never chosen by a
// client, so there is no hash flooding to defend against, and every publish hashes one.
type Partition = RwLock<HashMap<ExecutionId, Arc<ExecutionStatus>, FxBuildHasher>>;

pub(crate) struct StatusBoard {
    partitions: Box<[Partition]>,
    hasher: FxBuildHasher,
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
            updates: RwLock::new(Some(broadcast::channel(4096).0)),
        }
    }

    fn partition(&self, id: &ExecutionId) -> &Partition {
        // The high half picks the partition: the map inside it indexes by the low bits of the
        // same hash.
        &self.partitions[((self.hasher.hash_one(id) >> 32) % PARTITIONS as u64) as usize]
    }

    pub(crate) fn publish(&self, status: ExecutionStatus) {
        let status = Arc::new(status);
        self.partition(&status.execution_id)
            .write()
            .insert(status.execution_id.clone(), status.clone());
        if let Some(updates) = self.updates.read().as_ref() {
            if updates.receiver_count() > 0 {
                let _ = updates.send(status);
            }
        }
    }

    pub(crate) fn get(&self, id: &ExecutionId) -> Option<Arc<ExecutionStatus>> {
        self.partition(id).read().get(id).cloned()
    }

    pub(crate) fn remove(&self, id: &ExecutionId) {
        self.partition(id).write().remove(id);
    }

    pub(crate) fn clear(&self) {
        for partition in self.partitions.iter() {
            partition.write().clear();
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

    pub(crate) fn live_count(&self) -> usize {
        self.partitions
            .iter()
            .map(|p| p.read().values().filter(|s| !s.status.is_final()).count())
            .sum()
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
