//! Typed names that follow restarts: the current handle of a supervised child, whichever
//! incarnation is running.
//!
//! Mirrors Erlang's locally registered names (`register/2`, `whereis/1`, a child started with
//! `{local, Name}`) and Elixir's `name:` option. A process's handle ([`ServerRef`],
//! [`Supervisor`](crate::supervisor::Supervisor), [`Registry`](crate::registry::Registry), …)
//! names one incarnation; a [`Name`] names whichever process registered it last and is still
//! running, so the sibling of a restarted child reaches the new one.
//!
//! ```
//! use std::time::Duration;
//! use otp_core::name::Name;
//! use otp_core::supervisor::{ChildSpec, Strategy, SupFlags, Supervisor};
//! use otp_core::task_supervisor::TaskSupervisor;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tasks: Name<TaskSupervisor> = Name::new("tasks");
//! let tree = Supervisor::start(SupFlags::new(Strategy::OneForOne), vec![
//!     ChildSpec::supervisor("tasks", tasks.registering(TaskSupervisor::start)),
//! ]).await?;
//!
//! let first = tasks.get()?;
//! otp_core::process::exit(first.pid(), otp_core::ExitReason::Killed);
//! # let mut events = tree.subscribe();
//! # while !matches!(events.next().await?, otp_core::supervisor::SupervisorEvent::ChildRestarted { .. }) {}
//! // … once the supervisor has restarted it, the name leads to the new incarnation.
//! assert_ne!(tasks.get()?.pid(), first.pid());
//! tree.stop(Duration::from_secs(5)).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Semantics
//!
//! - A name is held by at most one live process. It is released when that process exits, for
//!   any reason, *before* its exit is announced (the process layer's exit hooks, as for a
//!   registry's keys): once a monitor has received its `Down`, [`Name::whereis`] no longer
//!   returns it, and its supervisor can register the restarted child at once.
//! - **A lookup never waits.** While the child is restarting, or after its supervisor gave up,
//!   [`Name::get`] fails at once with [`NameError::Unregistered`], and a call through the name
//!   with [`CallError::NoProc`], as `gen_server:call` to an unregistered name exits `noproc` in
//!   Erlang. Waiting would hide a crash loop from the caller and could wait forever (a temporary
//!   child, a supervisor that gave up); a caller that wants to ride out a restart retries, with
//!   its own deadline.
//!
//! # Differences from Erlang
//!
//! - There is no global name table: a `Name` is a value. Whoever builds the tree makes the
//!   names and hands them to the children that need them (captured by their start functions),
//!   so a name is scoped to the code that holds it, and typed by the handle it leads to.
//! - The name is registered when the start function returns, that is after the child's `init`
//!   (Erlang registers before `init`). A child cannot look itself up by name in its `init`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use crate::gen_server::{
    CallError, GenServer, ReplyTo, SendError, ServerRef, StartError, StopError, Timeout,
};
use crate::monitor::wait_exit;
use crate::supervisor::ChildProcess;
use crate::sync::RwLock;
use crate::{ExitReason, Pid};

/// Why a name could not be looked up or registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// No running process holds the name: it has not started yet, is being restarted, or has
    /// exited for good (Erlang's `noproc`).
    #[error("no process is registered as {0:?}")]
    Unregistered(Arc<str>),
    /// The live process `holder` holds the name (Erlang `{error, {already_started, Pid}}`).
    #[error("{name:?} is already registered by {holder}")]
    Taken {
        /// The name.
        name: Arc<str>,
        /// The process that holds it.
        holder: Pid,
    },
    /// The process to register has already exited; nothing was registered.
    #[error("{name:?}: process {pid} has already exited")]
    Exited {
        /// The name.
        name: Arc<str>,
        /// The process that exited.
        pid: Pid,
    },
}

/// A typed name for one process at a time: see the [module docs](self).
///
/// `T` is the handle the name leads to: [`ServerRef<S>`](ServerRef),
/// [`Supervisor`](crate::supervisor::Supervisor),
/// [`DynamicSupervisor`](crate::dynamic_supervisor::DynamicSupervisor),
/// [`TaskSupervisor`](crate::task_supervisor::TaskSupervisor),
/// [`Registry`](crate::registry::Registry) or [`TaskRef`](crate::task::TaskRef). Cloning a name is
/// cheap, and every clone is the same name.
pub struct Name<T> {
    slot: Arc<Slot<T>>,
}

struct Slot<T> {
    label: Arc<str>,
    holder: RwLock<Option<Holder<T>>>,
}

struct Holder<T> {
    pid: Pid,
    handle: T,
}

impl<T> Name<T>
where
    T: Clone + Into<ChildProcess> + Send + Sync + 'static,
{
    /// A new name, held by no process. `label` appears in errors and `Debug` output; two names
    /// with the same label are still different names.
    pub fn new(label: impl Into<Arc<str>>) -> Name<T> {
        Name {
            slot: Arc::new(Slot {
                label: label.into(),
                holder: RwLock::new(None),
            }),
        }
    }

    /// The label given to [`new`](Self::new).
    pub fn label(&self) -> &str {
        &self.slot.label
    }

    /// The handle of the live process holding the name, if any (Erlang `whereis/1`).
    pub fn whereis(&self) -> Option<T> {
        self.slot
            .holder
            .read()
            .as_ref()
            .map(|held| held.handle.clone())
    }

    /// The handle of the live process holding the name.
    ///
    /// # Errors
    ///
    /// If no process holds it now, returns [`NameError::Unregistered`] at once: a lookup never
    /// waits for a restart (see the [module docs](self)).
    pub fn get(&self) -> Result<T, NameError> {
        self.whereis()
            .ok_or_else(|| NameError::Unregistered(self.slot.label.clone()))
    }

    /// Registers the process behind `handle` under this name, until it exits (Erlang
    /// `register/2`).
    ///
    /// # Errors
    ///
    /// - If a live process holds the name (this one included), returns [`NameError::Taken`].
    /// - If the process has already exited, returns [`NameError::Exited`].
    pub fn register(&self, handle: &T) -> Result<(), NameError> {
        let process = handle.clone().into().process;
        let header = process.header();
        let pid = header.pid();
        let mut holder = self.slot.holder.write();
        if let Some(held) = holder.as_ref() {
            return Err(NameError::Taken {
                name: self.slot.label.clone(),
                holder: held.pid,
            });
        }
        // The hook is added under the slot's lock (the order is always slot, then process), so
        // the process cannot exit between the two: its hook finds it registered, or it is
        // refused here because the process is already exiting.
        let slot = Arc::downgrade(&self.slot);
        if !header.add_exit_hook(Box::new(move |pid| release(&slot, pid))) {
            return Err(NameError::Exited {
                name: self.slot.label.clone(),
                pid,
            });
        }
        *holder = Some(Holder {
            pid,
            handle: handle.clone(),
        });
        Ok(())
    }

    /// Wraps a child's start function so that every process it starts registers this name: the
    /// start function for a [`ChildSpec`](crate::supervisor::ChildSpec) whose incarnations the
    /// name follows.
    ///
    /// If another live process holds the name, the process just started is killed and the start
    /// fails with [`StartError::AlreadyStarted`] naming the holder, once it has exited.
    pub fn registering<F, Fut, E>(
        &self,
        start: F,
    ) -> impl Fn() -> Pin<Box<dyn Future<Output = Result<T, StartError>> + Send>> + Send + Sync + 'static
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        E: Into<StartError>,
    {
        let name = self.clone();
        move || {
            let name = name.clone();
            let started = start();
            Box::pin(async move {
                let handle = started.await.map_err(Into::into)?;
                match name.register(&handle) {
                    Err(NameError::Taken { holder, .. }) => {
                        let process = handle.into().process;
                        process.header().force_exit(ExitReason::Killed);
                        process.interrupt_init();
                        wait_exit(process.header()).await;
                        Err(StartError::AlreadyStarted(holder))
                    }
                    // Registered, or the incarnation has already exited: that exit is its
                    // supervisor's to act on, as this child's.
                    Ok(()) | Err(_) => Ok(handle),
                }
            })
        }
    }
}

/// The exit hook of a registered process: frees the name if that process still holds it. The
/// old handle is dropped outside the lock.
fn release<T>(slot: &Weak<Slot<T>>, pid: Pid) {
    let Some(slot) = slot.upgrade() else {
        return;
    };
    let released = {
        let mut holder = slot.holder.write();
        if holder.as_ref().is_some_and(|held| held.pid == pid) {
            holder.take()
        } else {
            None
        }
    };
    drop(released);
}

impl<S: GenServer> Name<ServerRef<S>> {
    /// Calls the server holding the name; see [`ServerRef::call`].
    ///
    /// # Errors
    ///
    /// If no server holds the name, returns [`CallError::NoProc`] at once; otherwise as
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

    /// Sends a request carrying its own typed reply handle to the server holding the name; see
    /// [`ServerRef::request`].
    ///
    /// # Errors
    ///
    /// If no server holds the name, returns [`CallError::NoProc`] at once; otherwise as
    /// [`ServerRef::call_timeout`].
    pub async fn request<R, F>(&self, make: F) -> Result<R, CallError>
    where
        R: Send + 'static,
        F: FnOnce(ReplyTo<R>) -> S::Call + Send + 'static,
    {
        self.whereis().ok_or(CallError::NoProc)?.request(make).await
    }

    /// Casts to the server holding the name; see [`ServerRef::cast`].
    ///
    /// # Errors
    ///
    /// If no server holds the name, returns [`SendError::NoProc`] with the message; otherwise
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
    /// If no server holds the name, returns [`SendError::NoProc`] with the message; otherwise
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
    /// If no server holds the name, returns [`SendError::NoProc`] with the message; otherwise
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
    /// If no server holds the name, returns [`StopError::NoProc`]; otherwise as
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

impl<T> Clone for Name<T> {
    fn clone(&self) -> Name<T> {
        Name {
            slot: self.slot.clone(),
        }
    }
}

impl<T> fmt::Debug for Name<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Name")
            .field("label", &self.slot.label)
            .field(
                "holder",
                &self.slot.holder.read().as_ref().map(|held| held.pid),
            )
            .finish()
    }
}

/// A model of the registration's protocol (see `crate::sync` for how to run it).
#[cfg(all(test, otp_loom))]
mod loom_models {
    use std::sync::Arc;

    use super::Name;
    use crate::process::header::ProcessHeader;
    use crate::process::header::loom_models::exit;
    use crate::supervisor::ChildProcess;
    use crate::task::TaskProcess;

    // A registration racing its process's exit is refused, or released by that exit: the name
    // never outlives its holder.
    #[test]
    fn loom_a_registration_racing_the_holders_exit_never_outlives_it() {
        loom::model(|| {
            let process = Arc::new(TaskProcess {
                header: ProcessHeader::new("model"),
            });
            let name: Name<ChildProcess> = Name::new("model");
            let registering = {
                let name = name.clone();
                let child = ChildProcess {
                    process: process.clone(),
                };
                loom::thread::spawn(move || name.register(&child).is_ok())
            };
            exit(&process.header);
            let _registered = registering.join().unwrap();
            assert!(name.whereis().is_none());
        });
    }
}
