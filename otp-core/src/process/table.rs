//! The process table: pid → process, sharded so that spawns and exits on different cores rarely
//! meet on one lock (the BEAM's process table).
//!
//! Every process is in the table from before its first poll until its exit fan-out.

use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::Pid;
use super::header::AnyProcess;

const SHARDS: usize = 64;

// Pids are sequential and made here, never chosen by a user, so the fast multiplicative Fx hash
// spreads them well and cannot be attacked.
type Shard = Mutex<FxHashMap<Pid, Arc<dyn AnyProcess>>>;

static TABLE: LazyLock<Vec<Shard>> = LazyLock::new(|| {
    (0..SHARDS)
        .map(|_| Mutex::new(FxHashMap::default()))
        .collect()
});

fn shard(pid: Pid) -> &'static Shard {
    &TABLE[(pid.as_u64() % SHARDS as u64) as usize]
}

pub(crate) fn lookup(pid: Pid) -> Option<Arc<dyn AnyProcess>> {
    shard(pid).lock().get(&pid).cloned()
}

/// Puts a process in the table before it runs, so that its pid can be monitored and exited
/// from the moment anyone can learn it (for example from a registry). Follow with [`launch`](super::spawn::launch),
/// or [`withdraw`] if it will not run after all.
pub(crate) fn admit<P: AnyProcess>(process: &Arc<P>) {
    let pid = process.header().pid();
    shard(pid)
        .lock()
        .insert(pid, process.clone() as Arc<dyn AnyProcess>);
}

/// Takes an admitted process that never ran out of the table. Nobody can hold a monitor on it:
/// its pid was never handed out.
pub(crate) fn withdraw(pid: Pid) {
    // Dropped outside the shard's lock.
    let withdrawn = shard(pid).lock().remove(&pid);
    drop(withdrawn);
}

/// Takes an exited process out of the table (fan-out step 4). What the table held is dropped
/// outside the shard's lock.
pub(crate) fn remove(pid: Pid) {
    let removed = shard(pid).lock().remove(&pid);
    drop(removed);
}
