//! [`DuplicateRegistry`]: many processes under one key, for pub/sub (Elixir's
//! `Registry` with `keys: :duplicate`).

use std::fmt;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::Arc;

use super::table::{Keys, Table};
use super::{RegisterError, RegistryProcess, default_partitions, register_caller, start_table};
use crate::gen_server::{ServerRef, StartError, StopError, Timeout};
use crate::{ExitReason, Pid};

/// A registry whose keys any number of processes can register, each any number of times
/// (Elixir `Registry.start_link(keys: :duplicate)`): the building block of pub/sub. A process
/// subscribes to a topic by registering the topic as a key; [`dispatch`](Self::dispatch)
/// reaches every subscriber.
///
/// Entries follow the same rules as a unique [`Registry`](super::Registry)'s: a process
/// registers for itself, and its entries are removed when it exits, before its exit is
/// announced.
///
/// ```
/// use otp_core::registry::DuplicateRegistry;
/// use otp_core::gen_server::{BoxError, Context, GenServer, Init};
///
/// /// Subscribes to a topic in `init` and counts what it receives.
/// struct Subscriber(u32);
///
/// impl GenServer for Subscriber {
///     type Args = DuplicateRegistry<&'static str, otp_core::ServerRef<Subscriber>>;
///     type Call = ();
///     type Reply = u32;
///     type Cast = &'static str;
///     type Info = ();
///     type Continue = ();
///
///     async fn init(topics: Self::Args, ctx: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
///         topics.register("news", ctx.server_ref())?;
///         Ok(Init::Ready(Subscriber(0)))
///     }
///
///     async fn handle_call(&mut self, _: (), _: otp_core::gen_server::Caller<'_, u32>, _: &mut Context<Self>)
///         -> Result<otp_core::gen_server::CallResult<u32>, BoxError> {
///         Ok(otp_core::gen_server::CallResult::Reply(self.0))
///     }
///
///     async fn handle_cast(&mut self, _: &'static str, _: &mut Context<Self>) -> Result<(), BoxError> {
///         self.0 += 1;
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let topics = DuplicateRegistry::start().await?;
/// let a = Subscriber::start(topics.clone()).await?;
/// let b = Subscriber::start(topics.clone()).await?;
/// let reached = topics.dispatch(&"news", |_pid, subscriber| {
///     let _ = subscriber.cast("hello");
/// });
/// assert_eq!(reached, 2);
/// assert_eq!((a.call(()).await?, b.call(()).await?), (1, 1));
/// # Ok(())
/// # }
/// ```
pub struct DuplicateRegistry<K, V> {
    table: Arc<Table<K, V>>,
    process: ServerRef<RegistryProcess>,
}

impl<K, V> DuplicateRegistry<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Starts a duplicate-key registry with four partitions per available core.
    ///
    /// # Errors
    ///
    /// If no tokio runtime is running, returns [`StartError::NoRuntime`].
    pub async fn start() -> Result<DuplicateRegistry<K, V>, StartError> {
        DuplicateRegistry::start_partitioned(default_partitions()).await
    }

    /// Starts a duplicate-key registry with `partitions` partitions.
    ///
    /// # Errors
    ///
    /// If no tokio runtime is running, returns [`StartError::NoRuntime`].
    pub async fn start_partitioned(
        partitions: NonZeroUsize,
    ) -> Result<DuplicateRegistry<K, V>, StartError> {
        let (table, process) = start_table(partitions, Keys::Duplicate).await?;
        Ok(DuplicateRegistry { table, process })
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

    /// Adds an entry `key` → `value` for the calling process, whoever else holds `key` (the
    /// caller too: registering twice makes two entries).
    ///
    /// # Errors
    ///
    /// - If called outside a process, returns [`RegisterError::NotAProcess`].
    /// - If the registry is not running, returns [`RegisterError::RegistryDown`].
    pub fn register(&self, key: K, value: V) -> Result<(), RegisterError> {
        register_caller(&self.table, key, value)
    }

    /// Removes every entry of the calling process for `key`. Always succeeds, as in Elixir.
    pub fn unregister(&self, key: &K) {
        if let Some(pid) = crate::process::current() {
            self.table.unregister(pid, key);
        }
    }

    /// Every entry for `key`, in no particular order.
    pub fn lookup(&self, key: &K) -> Vec<(Pid, V)> {
        self.table.lookup_all(key)
    }

    /// Calls `deliver` with each entry for `key` and returns how many there were (Elixir
    /// `Registry.dispatch/3`). The entries are copied out first, so `deliver` runs with no lock
    /// held and may use the registry.
    pub fn dispatch(&self, key: &K, mut deliver: impl FnMut(Pid, &V)) -> usize {
        let entries = self.table.lookup_all(key);
        for (pid, value) in &entries {
            deliver(*pid, value);
        }
        entries.len()
    }

    /// The keys `pid` holds, once per registration, in registration order.
    pub fn keys(&self, pid: Pid) -> Vec<K> {
        self.table.keys_of(pid)
    }

    /// The number of entries.
    pub fn count(&self) -> usize {
        self.table.count()
    }

    /// The entries that `matches` accepts, as `(key, pid, value)`; see
    /// [`Registry::select`](super::Registry::select).
    pub fn select(&self, matches: impl Fn(&K, Pid, &V) -> bool) -> Vec<(K, Pid, V)> {
        self.table.select(matches)
    }
}

impl<K, V> From<DuplicateRegistry<K, V>> for crate::supervisor::ChildProcess {
    fn from(registry: DuplicateRegistry<K, V>) -> crate::supervisor::ChildProcess {
        registry.process.into()
    }
}

impl<K, V> Clone for DuplicateRegistry<K, V> {
    fn clone(&self) -> DuplicateRegistry<K, V> {
        DuplicateRegistry {
            table: self.table.clone(),
            process: self.process.clone(),
        }
    }
}

impl<K, V> fmt::Debug for DuplicateRegistry<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DuplicateRegistry")
            .field("pid", &self.process.pid())
            .finish()
    }
}
