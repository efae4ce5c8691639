//! A typed name registry with unique keys; entries vanish when their process exits.
//!
//! Mirrors Elixir's [`Registry`](https://hexdocs.pm/elixir/Registry.html) with `keys: :unique`,
//! and the `{via, Module, Name}` names of `gen_server`.
//!
//! | Elixir | otp-core |
//! |---|---|
//! | `Registry.start_link(keys: :unique, name: R, partitions: n)` | [`Registry::start`] / [`Registry::start_partitioned`] |
//! | `Registry.register(R, key, value)` | [`Registry::register`] |
//! | `Registry.lookup(R, key)` | [`Registry::lookup`] |
//! | `Registry.unregister(R, key)` | [`Registry::unregister`] |
//! | `Registry.keys(R, pid)` | [`Registry::keys`] |
//! | `Registry.count(R)` | [`Registry::count`] |
//! | `{:via, Registry, {R, key}}` | [`Registry::via`] → [`Via`], and [`StartOptions::name`] |
//!
//! A registry is a process you start, and can put under a supervisor, not a global: start as
//! many independent registries as you like, each typed by its key `K` and value `V`.
//!
//! # Consistency
//!
//! - A process registers keys for itself ([`register`](Registry::register) uses the calling
//!   process); only it can [`unregister`](Registry::unregister) them.
//! - When a process exits, for any reason, its keys are removed *before* its exit is announced:
//!   once any monitor has received its `Down` (or any call to it has failed), `lookup` no longer
//!   returns it and the key can be registered again at once. This is stronger than Elixir, whose
//!   lookup may briefly return a dead pid (semantics D8).
//! - When the registry process itself exits, every entry is dropped and further registrations
//!   fail with [`RegisterError::RegistryDown`].
//!
//! # Partitions
//!
//! Keys are spread over partitions by hash, each behind its own read-write lock, so concurrent
//! lookups and registrations rarely meet on a lock. Every behaviour is the same for any number
//! of partitions; the default is four per available core.
//!
//! A key's `Hash` and `Eq`, and a value's `Clone` (in [`lookup`](Registry::lookup)), run under
//! a partition's lock, so they must not use the same registry. Keys and values are never
//! *dropped* under a lock: a `Drop` impl may use the registry freely.
//!
//! # Differences from Elixir
//!
//! - Unique keys only: no duplicate-key registries, match specs, `dispatch` or listeners.
//! - A via-name's registry stores the server's [`ServerRef`] as the value, so
//!   [`Via`] calls are typed.
//! - `lookup` returns one `(Pid, V)` pair or `None`, not a list.
//!
//! ```
//! use otp_core::registry::Registry;
//! # use otp_core::gen_server::{BoxError, Context, GenServer, Init};
//! # struct Worker;
//! # impl GenServer for Worker {
//! #     type Args = (); type Call = (); type Reply = (); type Cast = ();
//! #     type Info = (); type Continue = ();
//! #     async fn init(_: (), _: &mut Context<Self>) -> Result<Init<Self>, BoxError> { Ok(Init::Ready(Worker)) }
//! # }
//! use otp_core::gen_server::StartOptions;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = Registry::start().await?;
//! let name = registry.via("worker-1".to_string());
//! let worker = Worker::start_with((), StartOptions::new().name(name.clone())).await?;
//! assert_eq!(name.whereis().map(|w| w.pid()), Some(worker.pid()));
//! # Ok(())
//! # }
//! ```

use hashbrown::{HashTable, hash_table};
use rustc_hash::FxHashMap;
use std::convert::Infallible;
use std::fmt;
use std::hash::{BuildHasher, Hash, RandomState};
use std::num::NonZeroUsize;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use crate::sync::{AtomicBool, Mutex, RwLock};

use crate::gen_server::{
    BoxError, CallError, ClaimName, Context, GenServer, Init, ReleaseName, SendError, ServerRef,
    StartError, StartOptions, StopError, Timeout,
};
use crate::process::header::ProcessHeader;
use crate::process::table;
use crate::{ExitReason, Pid};

/// Why [`Registry::register`] did not register the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// A live process holds the key: this pid, which is the caller's own if it registered the
    /// key before (Elixir `{:error, {:already_registered, pid}}`). Nothing changed.
    #[error("already registered by {0}")]
    AlreadyRegistered(Pid),
    /// The caller is not running inside a process, so there is no owner whose exit would
    /// remove the entry.
    #[error("register must be called from inside a process")]
    NotAProcess,
    /// The registry process is not running.
    #[error("registry is not running")]
    RegistryDown,
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
struct Table<K, V> {
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
    fn new(partitions: NonZeroUsize) -> Table<K, V> {
        let n = partitions.get();
        Table {
            keys: (0..n).map(|_| RwLock::new(HashTable::new())).collect(),
            owners: (0..n).map(|_| Mutex::new(FxHashMap::default())).collect(),
            hasher: RandomState::new(),
            closed: AtomicBool::new(false),
        }
    }

    fn key_partition(&self, hash: u64) -> &KeyPartition<K, V> {
        &self.keys[((hash >> 32) % self.keys.len() as u64) as usize]
    }

    fn owner_partition(&self, owner: Pid) -> &OwnerPartition<K> {
        &self.owners[(owner.as_u64() % self.owners.len() as u64) as usize]
    }

    /// Registers `key` for `owner`. Only the owner itself (or its starter, before it runs)
    /// calls this, so it never races with the owner's exit hook.
    fn insert(
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
            match partition.entry(
                hash,
                |entry| entry.key == key,
                |entry| hasher.hash_one(&entry.key),
            ) {
                hash_table::Entry::Occupied(held) => {
                    return Err(RegisterError::AlreadyRegistered(held.get().owner));
                }
                hash_table::Entry::Vacant(free) => {
                    free.insert(Entry {
                        key: key.clone(),
                        owner: pid,
                        value,
                    });
                }
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

    fn remove_key_of(&self, owner: Pid, key: &K) -> bool {
        let hash = self.hasher.hash_one(key);
        let removed = {
            let mut partition = self.key_partition(hash).write();
            match partition.find_entry(hash, |entry| entry.key == *key) {
                Ok(found) if found.get().owner == owner => Some(found.remove().0),
                _ => None,
            }
        };
        // Dropped outside the lock: a value's `Drop` may use the registry.
        removed.is_some()
    }

    fn unregister(&self, owner: Pid, key: &K) {
        if self.remove_key_of(owner, key) {
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

    fn lookup(&self, key: &K) -> Option<(Pid, V)> {
        let hash = self.hasher.hash_one(key);
        self.key_partition(hash)
            .read()
            .find(hash, |entry| entry.key == *key)
            .map(|entry| (entry.owner, entry.value.clone()))
    }

    fn close(&self) {
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

/// The registry's own process: it owns the table's lifetime. It is not generic, so that
/// `Registry<K, V>` needs no bounds to be cloned or debugged.
struct RegistryProcess;

/// Drops the table; run when the registry process exits.
type CloseTable = Box<dyn FnOnce() + Send>;

impl GenServer for RegistryProcess {
    type Args = CloseTable;
    type Call = Infallible;
    type Reply = Infallible;
    type Cast = Infallible;
    type Info = Infallible;
    type Continue = Infallible;

    async fn init(close: CloseTable, ctx: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        // An exit hook rather than `terminate`, so the table is dropped on every exit, kills
        // included.
        match table::lookup(ctx.pid()) {
            Some(own) if own.header().add_exit_hook(Box::new(move |_| close())) => {
                Ok(Init::Ready(RegistryProcess))
            }
            _ => Ok(Init::Stop(ExitReason::NoProc)),
        }
    }
}

/// A handle to a registry: cheap to clone, `Send + Sync`. See the [module docs](self).
pub struct Registry<K, V> {
    table: Arc<Table<K, V>>,
    process: ServerRef<RegistryProcess>,
}

impl<K, V> Registry<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Starts a registry with four partitions per available core.
    ///
    /// # Errors
    ///
    /// If no tokio runtime is running, returns [`StartError::NoRuntime`].
    pub async fn start() -> Result<Registry<K, V>, StartError> {
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let partitions = NonZeroUsize::new(cores * 4).unwrap_or(NonZeroUsize::MIN);
        Registry::start_partitioned(partitions).await
    }

    /// Starts a registry with `partitions` partitions (Elixir's `partitions:` option).
    ///
    /// # Errors
    ///
    /// If no tokio runtime is running, returns [`StartError::NoRuntime`].
    pub async fn start_partitioned(partitions: NonZeroUsize) -> Result<Registry<K, V>, StartError> {
        let table = Arc::new(Table::new(partitions));
        let for_close = table.clone();
        let process = RegistryProcess::start_with(
            Box::new(move || for_close.close()),
            StartOptions::new().label("registry"),
        )
        .await?;
        Ok(Registry { table, process })
    }

    /// The registry process's pid, to monitor or supervise it.
    pub fn pid(&self) -> Pid {
        self.process.pid()
    }

    /// Stops the registry process; every entry is dropped.
    ///
    /// # Errors
    ///
    /// As [`ServerRef::stop`].
    pub async fn stop(&self, timeout: impl Into<Timeout>) -> Result<(), StopError> {
        self.process.stop(ExitReason::Normal, timeout).await
    }

    /// Registers `key` with `value` for the calling process.
    ///
    /// The entry is removed when the process exits or calls [`unregister`](Self::unregister).
    ///
    /// # Errors
    ///
    /// - If a live process holds `key` (the caller included), returns
    ///   [`RegisterError::AlreadyRegistered`] with its pid, and changes nothing.
    /// - If called outside a process, returns [`RegisterError::NotAProcess`].
    /// - If the registry is not running, returns [`RegisterError::RegistryDown`].
    pub fn register(&self, key: K, value: V) -> Result<(), RegisterError> {
        let pid = crate::process::current().ok_or(RegisterError::NotAProcess)?;
        let process = table::lookup(pid).ok_or(RegisterError::NotAProcess)?;
        self.table.insert(process.header(), key, value)
    }

    /// The process holding `key` and its value.
    pub fn lookup(&self, key: &K) -> Option<(Pid, V)> {
        self.table.lookup(key)
    }

    /// Removes the calling process's entry for `key`. Does nothing if there is none, or if
    /// another process holds the key. Always succeeds, as in Elixir.
    pub fn unregister(&self, key: &K) {
        if let Some(pid) = crate::process::current() {
            self.table.unregister(pid, key);
        }
    }

    /// The keys `pid` holds in this registry, in registration order.
    pub fn keys(&self, pid: Pid) -> Vec<K> {
        self.table
            .owner_partition(pid)
            .lock()
            .get(&pid)
            .map(OwnedKeys::to_vec)
            .unwrap_or_default()
    }

    /// The number of registered keys.
    pub fn count(&self) -> usize {
        self.table.keys.iter().map(|p| p.read().len()).sum()
    }
}

impl<K, S> Registry<K, ServerRef<S>>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    S: GenServer,
{
    /// A via-name: `key` in this registry, for servers of type `S` (Erlang
    /// `{via, Registry, {R, Key}}`). Start a server under it with [`StartOptions::name`], and
    /// reach whichever process holds it with [`Via::call`] and friends.
    pub fn via(&self, key: K) -> Via<K, S> {
        Via {
            registry: self.clone(),
            key,
        }
    }
}

impl<K, V> From<Registry<K, V>> for crate::supervisor::ChildProcess {
    fn from(registry: Registry<K, V>) -> crate::supervisor::ChildProcess {
        registry.process.into()
    }
}

impl<K, V> Clone for Registry<K, V> {
    fn clone(&self) -> Registry<K, V> {
        Registry {
            table: self.table.clone(),
            process: self.process.clone(),
        }
    }
}

impl<K, V> fmt::Debug for Registry<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("pid", &self.process.pid())
            .field("partitions", &self.table.keys.len())
            .finish()
    }
}

/// A name for a server of type `S`: a key in a [`Registry`] (Erlang's via-name).
///
/// Every operation resolves the name at the moment it is used, so a caller holding a `Via`
/// reaches the current holder, for example a server restarted by its supervisor.
pub struct Via<K, S: GenServer> {
    registry: Registry<K, ServerRef<S>>,
    key: K,
}

impl<K, S> Via<K, S>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    S: GenServer,
{
    /// The key.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The live server holding the name, if any (Erlang `whereis_name/1`). Never returns a
    /// server that has exited.
    pub fn whereis(&self) -> Option<ServerRef<S>> {
        self.registry
            .lookup(&self.key)
            .map(|(_, server)| server)
            .filter(ServerRef::is_alive)
    }

    /// Calls the server holding the name; see [`ServerRef::call`].
    ///
    /// # Errors
    ///
    /// If no live server holds the name, returns [`CallError::NoProc`] at once; otherwise as
    /// [`ServerRef::call_timeout`].
    pub async fn call(&self, request: S::Call) -> Result<S::Reply, CallError> {
        self.whereis().ok_or(CallError::NoProc)?.call(request).await
    }

    /// Calls the server holding the name with a timeout; see [`ServerRef::call_timeout`].
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call).
    pub async fn call_timeout(
        &self,
        request: S::Call,
        timeout: impl Into<Timeout>,
    ) -> Result<S::Reply, CallError> {
        let server = self.whereis().ok_or(CallError::NoProc)?;
        server.call_timeout(request, timeout).await
    }

    /// Casts to the server holding the name; see [`ServerRef::cast`].
    ///
    /// # Errors
    ///
    /// If no live server holds the name, returns [`SendError::NoProc`] with the message.
    pub fn cast(&self, message: S::Cast) -> Result<(), SendError<S::Cast>> {
        match self.whereis() {
            Some(server) => server.cast(message),
            None => Err(SendError::NoProc(message)),
        }
    }

    /// Sends an info message to the server holding the name; see [`ServerRef::send`].
    ///
    /// # Errors
    ///
    /// If no live server holds the name, returns [`SendError::NoProc`] with the message.
    pub fn send(&self, message: S::Info) -> Result<(), SendError<S::Info>> {
        match self.whereis() {
            Some(server) => server.send(message),
            None => Err(SendError::NoProc(message)),
        }
    }

    /// Stops the server holding the name; see [`ServerRef::stop`].
    ///
    /// # Errors
    ///
    /// If no live server holds the name, returns [`StopError::NoProc`]; otherwise as
    /// [`ServerRef::stop`].
    pub async fn stop(
        &self,
        reason: ExitReason,
        timeout: impl Into<Timeout>,
    ) -> Result<(), StopError> {
        let server = self.whereis().ok_or(StopError::NoProc)?;
        server.stop(reason, timeout).await
    }
}

impl<K: Clone, S: GenServer> Clone for Via<K, S> {
    fn clone(&self) -> Via<K, S> {
        Via {
            registry: self.registry.clone(),
            key: self.key.clone(),
        }
    }
}

impl<K: fmt::Debug, S: GenServer> fmt::Debug for Via<K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Via")
            .field("registry", &self.registry.process.pid())
            .field("key", &self.key)
            .finish()
    }
}

impl<K, S> ClaimName<S> for Via<K, S>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    S: GenServer,
{
    fn claim(self: Box<Self>, server: &ServerRef<S>) -> Result<ReleaseName, StartError> {
        let table = self.registry.table.clone();
        table
            .insert(server.header(), self.key.clone(), server.clone())
            .map_err(|error| match error {
                RegisterError::AlreadyRegistered(holder) => StartError::AlreadyStarted(holder),
                RegisterError::NotAProcess | RegisterError::RegistryDown => {
                    StartError::RegistryDown
                }
            })?;
        let owner = server.pid();
        Ok(Box::new(move || table.unregister(owner, &self.key)))
    }
}

impl<S: GenServer> StartOptions<S> {
    /// Registers the server under `name` before `init` runs (Erlang's `{via, Registry, Name}`).
    ///
    /// If a live process holds the name, `start` returns
    /// [`StartError::AlreadyStarted`] with its pid and the new server's `init` never runs. If
    /// `init` fails, the name is free again before `start` returns.
    pub fn name<K>(self, name: Via<K, S>) -> StartOptions<S>
    where
        K: Eq + Hash + Clone + Send + Sync + 'static,
    {
        self.with_name(Box::new(name))
    }
}

/// A model of the closed flag's protocol (see `crate::sync` for how to run it).
#[cfg(all(test, otp_loom))]
mod loom_models {
    use std::num::NonZeroUsize;
    use std::sync::Arc;

    use super::Table;
    use crate::process::header::ProcessHeader;

    // A registration racing the registry's close is refused, or cleared by the close: no
    // entry outlives it.
    #[test]
    fn loom_a_registration_racing_close_is_refused_or_cleared() {
        loom::model(|| {
            let table: Arc<Table<u32, u32>> = Arc::new(Table::new(NonZeroUsize::MIN));
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
