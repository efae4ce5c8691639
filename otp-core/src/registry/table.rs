//! The table behind both kinds of registry: keys spread over read-write-locked partitions,
//! and each owner's keys, removed by the owner's exit hook before its exit is announced.

use hashbrown::{HashTable, hash_table};
use rustc_hash::FxHashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::num::NonZeroUsize;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::RegisterError;
use crate::Pid;
use crate::process::header::ProcessHeader;
use crate::sync::{AtomicBool, Mutex, RwLock};

/// Whether a key is held by one process at most, or by any number (Elixir's `keys:` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keys {
    Unique,
    Duplicate,
}

struct Entry<K, V> {
    key: K,
    owner: Pid,
    value: V,
}

/// Keys are hashed once: the hash picks the partition (from its high bits) and the slot in the
/// partition's table (hashbrown uses its low bits and its top 7 bits).
type KeyPartition<K, V> = RwLock<HashTable<Entry<K, V>>>;
/// The keys each owner holds, for `keys/1` and for clean-up when it exits.
type OwnerPartition<K> = Mutex<FxHashMap<Pid, OwnedKeys<K>>>;

/// One owner's keys, in registration order. Most processes register one name (a via-name),
/// so one key is held inline, without a `Vec`.
enum OwnedKeys<K> {
    One(K),
    Many(Vec<K>),
}

impl<K: Clone + PartialEq> OwnedKeys<K> {
    fn push(&mut self, key: K) {
        let mut keys = std::mem::replace(self, OwnedKeys::Many(Vec::new())).into_vec();
        keys.push(key);
        *self = OwnedKeys::Many(keys);
    }

    /// Takes `key` out, for the caller to drop once it has released its lock. What is left
    /// (maybe nothing) stays, so that the owner's exit hook is not installed twice.
    fn take(&mut self, key: &K) -> Vec<K> {
        let keys = std::mem::replace(self, OwnedKeys::Many(Vec::new())).into_vec();
        let (taken, kept) = keys.into_iter().partition(|k| k == key);
        *self = OwnedKeys::Many(kept);
        taken
    }

    fn to_vec(&self) -> Vec<K> {
        match self {
            OwnedKeys::One(only) => vec![only.clone()],
            OwnedKeys::Many(keys) => keys.clone(),
        }
    }

    fn into_vec(self) -> Vec<K> {
        match self {
            OwnedKeys::One(only) => vec![only],
            OwnedKeys::Many(keys) => keys,
        }
    }
}

/// The table shared by the registry handle, its process and the exit hooks of its owners.
///
/// In `Duplicate` mode a partition holds one entry per registration, several with the same
/// key; an owner's key list holds the key once per registration, so that its exit removes
/// exactly its entries.
pub(super) struct Table<K, V> {
    mode: Keys,
    keys: Box<[KeyPartition<K, V>]>,
    owners: Box<[OwnerPartition<K>]>,
    hasher: RandomState,
    closed: AtomicBool,
}

impl<K, V> Table<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(super) fn new(partitions: NonZeroUsize, mode: Keys) -> Table<K, V> {
        let n = partitions.get();
        Table {
            mode,
            keys: (0..n).map(|_| RwLock::new(HashTable::new())).collect(),
            owners: (0..n).map(|_| Mutex::new(FxHashMap::default())).collect(),
            hasher: RandomState::new(),
            closed: AtomicBool::new(false),
        }
    }

    fn key_partition(&self, hash: u64) -> &KeyPartition<K, V> {
        &self.keys[((hash >> 32) % self.keys.len() as u64) as usize]
    }

    pub(super) fn partitions(&self) -> usize {
        self.keys.len()
    }

    fn owner_partition(&self, owner: Pid) -> &OwnerPartition<K> {
        &self.owners[(owner.as_u64() % self.owners.len() as u64) as usize]
    }

    /// Registers `key` for `owner`. Only the owner itself (or its starter, before it runs)
    /// calls this, so it never races with the owner's exit hook.
    pub(super) fn insert(
        self: &Arc<Self>,
        owner: &ProcessHeader,
        key: K,
        value: V,
    ) -> Result<(), RegisterError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(RegisterError::RegistryDown);
        }
        let pid = owner.pid();
        {
            let hash = self.hasher.hash_one(&key);
            let mut partition = self.key_partition(hash).write();
            // Checked again under the lock: `close` sets the flag before clearing partitions,
            // so an insert either sees the flag or is cleared by `close`.
            if self.closed.load(Ordering::Acquire) {
                return Err(RegisterError::RegistryDown);
            }
            let hasher = &self.hasher;
            let entry = Entry {
                key: key.clone(),
                owner: pid,
                value,
            };
            match self.mode {
                Keys::Duplicate => {
                    partition.insert_unique(hash, entry, |entry| hasher.hash_one(&entry.key));
                }
                Keys::Unique => match partition.entry(
                    hash,
                    |held| held.key == key,
                    |held| hasher.hash_one(&held.key),
                ) {
                    hash_table::Entry::Occupied(held) => {
                        return Err(RegisterError::AlreadyRegistered(held.get().owner));
                    }
                    hash_table::Entry::Vacant(free) => {
                        free.insert(entry);
                    }
                },
            }
        }
        let mut owners = self.owner_partition(pid).lock();
        if let Some(keys) = owners.get_mut(&pid) {
            keys.push(key);
        } else {
            // One exit hook per (registry, owner), installed with its first key.
            let table = Arc::downgrade(self);
            let hooked = owner.add_exit_hook(Box::new(move |pid| {
                if let Some(table) = Weak::upgrade(&table) {
                    table.remove_owner(pid);
                }
            }));
            if !hooked {
                drop(owners);
                self.remove_key_of(pid, &key);
                return Err(RegisterError::NotAProcess);
            }
            owners.insert(pid, OwnedKeys::One(key));
        }
        Ok(())
    }

    /// Removes one of `owner`'s entries for `key`; returns whether there was one.
    fn remove_key_of(&self, owner: Pid, key: &K) -> bool {
        let hash = self.hasher.hash_one(key);
        let removed = {
            let mut partition = self.key_partition(hash).write();
            match partition.find_entry(hash, |entry| entry.owner == owner && entry.key == *key) {
                Ok(found) => Some(found.remove().0),
                Err(_) => None,
            }
        };
        // Dropped outside the lock: a value's `Drop` may use the registry.
        removed.is_some()
    }

    /// Removes every entry of `owner` for `key`.
    pub(super) fn unregister(&self, owner: Pid, key: &K) {
        let removed = self.remove_key_of(owner, key);
        // A unique key has one entry at most: its release (every via-named server's exit)
        // takes the partition's lock once.
        if removed && self.mode == Keys::Duplicate {
            while self.remove_key_of(owner, key) {}
        }
        if removed {
            // The exit hook stays installed: it finds nothing left to remove, and a later
            // registration must not install a second one. The key is dropped after the lock.
            let taken = self
                .owner_partition(owner)
                .lock()
                .get_mut(&owner)
                .map(|keys| keys.take(key));
            drop(taken);
        }
    }

    fn remove_owner(&self, owner: Pid) {
        let keys = self.owner_partition(owner).lock().remove(&owner);
        for key in keys.map(OwnedKeys::into_vec).into_iter().flatten() {
            self.remove_key_of(owner, &key);
        }
    }

    /// The keys `owner` holds, once per registration, in registration order.
    pub(super) fn keys_of(&self, owner: Pid) -> Vec<K> {
        self.owner_partition(owner)
            .lock()
            .get(&owner)
            .map(OwnedKeys::to_vec)
            .unwrap_or_default()
    }

    /// The number of entries.
    pub(super) fn count(&self) -> usize {
        self.keys
            .iter()
            .map(|partition| partition.read().len())
            .sum()
    }

    /// Every entry for `key` (one at most in `Unique` mode), in no particular order.
    pub(super) fn lookup_all(&self, key: &K) -> Vec<(Pid, V)> {
        let hash = self.hasher.hash_one(key);
        self.key_partition(hash)
            .read()
            .iter_hash(hash)
            .filter(|entry| entry.key == *key)
            .map(|entry| (entry.owner, entry.value.clone()))
            .collect()
    }

    /// The entries that `matches` accepts, partition by partition: each partition is read under
    /// its lock, so an entry of a process whose `Down` has been delivered is never listed.
    pub(super) fn select(&self, matches: impl Fn(&K, Pid, &V) -> bool) -> Vec<(K, Pid, V)> {
        let mut selected = Vec::new();
        for partition in self.keys.iter() {
            let partition = partition.read();
            selected.extend(
                partition
                    .iter()
                    .filter(|entry| matches(&entry.key, entry.owner, &entry.value))
                    .map(|entry| (entry.key.clone(), entry.owner, entry.value.clone())),
            );
        }
        selected
    }

    pub(super) fn lookup(&self, key: &K) -> Option<(Pid, V)> {
        let hash = self.hasher.hash_one(key);
        self.key_partition(hash)
            .read()
            .find(hash, |entry| entry.key == *key)
            .map(|entry| (entry.owner, entry.value.clone()))
    }

    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // Each map is taken out under its lock and dropped after it, as in `remove_key_of`: a
        // `let` of its own, since a guard in the same statement would live until its end.
        for partition in self.keys.iter() {
            let entries = std::mem::take(&mut *partition.write());
            drop(entries);
        }
        for partition in self.owners.iter() {
            let owners = std::mem::take(&mut *partition.lock());
            drop(owners);
        }
    }
}

/// A model of the closed flag's protocol (see `crate::sync` for how to run it).
#[cfg(all(test, otp_loom))]
mod loom_models {
    use std::num::NonZeroUsize;
    use std::sync::Arc;

    use super::{Keys, Table};
    use crate::process::header::ProcessHeader;

    // A registration racing the registry's close is refused, or cleared by the close: no
    // entry outlives it.
    #[test]
    fn loom_a_registration_racing_close_is_refused_or_cleared() {
        loom::model(|| {
            let table: Arc<Table<u32, u32>> = Arc::new(Table::new(NonZeroUsize::MIN, Keys::Unique));
            let owner = Arc::new(ProcessHeader::new("owner"));
            let registering = {
                let (table, owner) = (table.clone(), owner.clone());
                loom::thread::spawn(move || table.insert(&owner, 1, 1).is_ok())
            };
            table.close();
            let _registered = registering.join().unwrap();
            assert!(table.lookup(&1).is_none());
            assert!(table.insert(&owner, 2, 2).is_err());
        });
    }
}
