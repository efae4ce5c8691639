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
//! | `Registry.select(R, spec)` (match on key, pid, value) | [`Registry::select`], [`DuplicateRegistry::select`] |
//! | `Registry.start_link(keys: :duplicate)`, `register`, `lookup`, `dispatch` | [`DuplicateRegistry`], same names |
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
//! - Two types instead of a `keys:` option: [`Registry`] (unique keys) and
//!   [`DuplicateRegistry`], so that each `lookup` has its own return type. Match specs are a
//!   closure ([`Registry::select`]); there are no listeners.
//! - [`DuplicateRegistry::dispatch`] copies the entries out and calls its closure with no lock
//!   held, once per entry (Elixir calls it once with the list, in the caller too).
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

mod duplicate;
mod table;

pub use duplicate::DuplicateRegistry;

use std::convert::Infallible;
use std::fmt;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::Arc;

use table::{Keys, Table};

use crate::gen_server::{
    BoxError, CallError, ClaimName, Context, GenServer, Init, ReleaseName, SendError, ServerRef,
    StartError, StartOptions, StopError, Timeout,
};
use crate::process::table as process_table;
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

/// The registry's own process: it owns the table's lifetime. It is not generic, so that
/// `Registry<K, V>` needs no bounds to be cloned or debugged.
pub(crate) struct RegistryProcess;

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
        match process_table::lookup(ctx.pid()) {
            Some(own) if own.header().add_exit_hook(Box::new(move |_| close())) => {
                Ok(Init::Ready(RegistryProcess))
            }
            _ => Ok(Init::Stop(ExitReason::NoProc)),
        }
    }
}

/// Starts a registry process that owns a new table.
async fn start_table<K, V>(
    partitions: NonZeroUsize,
    mode: Keys,
) -> Result<(Arc<Table<K, V>>, ServerRef<RegistryProcess>), StartError>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let table = Arc::new(Table::new(partitions, mode));
    let for_close = table.clone();
    let process = RegistryProcess::start_with(
        Box::new(move || for_close.close()),
        StartOptions::new().label("registry"),
    )
    .await?;
    Ok((table, process))
}

/// Registers `key` with `value` in `table` for the calling process.
fn register_caller<K, V>(table: &Arc<Table<K, V>>, key: K, value: V) -> Result<(), RegisterError>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let pid = crate::process::current().ok_or(RegisterError::NotAProcess)?;
    let process = process_table::lookup(pid).ok_or(RegisterError::NotAProcess)?;
    table.insert(process.header(), key, value)
}

/// The default number of partitions: four per available core.
fn default_partitions() -> NonZeroUsize {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    NonZeroUsize::new(cores * 4).unwrap_or(NonZeroUsize::MIN)
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
        Registry::start_partitioned(default_partitions()).await
    }

    /// Starts a registry with `partitions` partitions (Elixir's `partitions:` option).
    ///
    /// # Errors
    ///
    /// If no tokio runtime is running, returns [`StartError::NoRuntime`].
    pub async fn start_partitioned(partitions: NonZeroUsize) -> Result<Registry<K, V>, StartError> {
        let (table, process) = start_table(partitions, Keys::Unique).await?;
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
        register_caller(&self.table, key, value)
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
        self.table.keys_of(pid)
    }

    /// The number of registered keys.
    pub fn count(&self) -> usize {
        self.table.count()
    }

    /// The entries that `matches` accepts, as `(key, pid, value)` (Elixir `Registry.select/2`
    /// with a match on key, pid and value). Partitions are read one at a time, each under its
    /// lock: an entry whose process's `Down` has been delivered is never listed, and `matches`
    /// must not use this registry.
    pub fn select(&self, matches: impl Fn(&K, Pid, &V) -> bool) -> Vec<(K, Pid, V)> {
        self.table.select(matches)
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
            .field("partitions", &self.table.partitions())
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
    /// If no live server holds the name, returns [`SendError::NoProc`] with the message; otherwise
    /// as [`ServerRef::cast`].
    pub fn cast(&self, message: S::Cast) -> Result<(), SendError<S::Cast>> {
        match self.whereis() {
            Some(server) => server.cast(message),
            None => Err(SendError::NoProc(message)),
        }
    }

    /// Casts to the server holding the name, waiting for room in a bounded mailbox; see
    /// [`ServerRef::cast_wait`]. The name is resolved once, before waiting.
    ///
    /// # Errors
    ///
    /// If no live server holds the name, returns [`SendError::NoProc`] with the message; otherwise
    /// as [`ServerRef::cast_wait`].
    pub async fn cast_wait(&self, message: S::Cast) -> Result<(), SendError<S::Cast>> {
        match self.whereis() {
            Some(server) => server.cast_wait(message).await,
            None => Err(SendError::NoProc(message)),
        }
    }

    /// Sends an info message to the server holding the name; see [`ServerRef::send`].
    ///
    /// # Errors
    ///
    /// If no live server holds the name, returns [`SendError::NoProc`] with the message; otherwise
    /// as [`ServerRef::send`].
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
