//! [`ServerRef`]: the typed handle through which other code talks to a server.

use std::fmt;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::call_timer;
use super::envelope::{Envelope, FormattedState};
use super::reply_to::ReplyTo;
use super::server_process::ServerProcess;
use super::{CallError, DEFAULT_CALL_TIMEOUT, GenServer, SendError, StopError, Timeout};
use crate::monitor::{Monitor, monitor, wait_exit};
use crate::process::current_process::current_pid;
use crate::process::header::AnyProcess;
use crate::process::mailbox::NotAdmitted;
use crate::{ExitReason, Pid};

/// A handle to a running (or exited) server: cheap to clone, `Send + Sync`.
///
/// A `ServerRef` names one incarnation of a server. After that server exits, every operation
/// fails at once with "no process"; to reach whatever process holds a *name* now (for example
/// after a supervisor restarted it), address it through a
/// [`Via`](crate::registry::Via) name.
///
/// Holding a `ServerRef` does not keep the server running: as in Erlang, a server runs until it
/// stops or is stopped.
pub struct ServerRef<S: GenServer> {
    process: Arc<ServerProcess<S>>,
}

impl<S: GenServer> ServerRef<S> {
    pub(crate) fn from_process(process: Arc<ServerProcess<S>>) -> ServerRef<S> {
        ServerRef { process }
    }

    /// The live server `pid`, if it is a server of type `S`.
    pub(crate) fn lookup(pid: Pid) -> Option<ServerRef<S>> {
        let process = crate::process::table::lookup(pid)?.into_any();
        let process = process.downcast::<ServerProcess<S>>().ok()?;
        Some(ServerRef::from_process(process))
    }

    pub(crate) fn header(&self) -> &crate::process::header::ProcessHeader {
        &self.process.header
    }

    pub(crate) fn process(&self) -> Arc<dyn AnyProcess> {
        self.process.clone()
    }

    /// The server's pid.
    pub fn pid(&self) -> Pid {
        self.process.header.pid()
    }

    /// Whether the server is still running. A `true` answer can be stale by the time it is read.
    pub fn is_alive(&self) -> bool {
        !self.process.mailbox.is_closed()
    }

    /// Sends `request` and waits up to [`DEFAULT_CALL_TIMEOUT`] (5 s) for the reply
    /// (Erlang `gen_server:call/2`).
    ///
    /// # Errors
    ///
    /// See [`call_timeout`](Self::call_timeout).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future does not un-send the request: the server still handles it, and its
    /// reply is dropped.
    // Returns `call_timeout`'s future itself: an `async fn` here would wrap it in a second
    // state machine, about 65 instructions more per call.
    pub fn call(
        &self,
        request: S::Call,
    ) -> impl Future<Output = Result<S::Reply, CallError>> + Send + '_ {
        self.call_timeout(request, DEFAULT_CALL_TIMEOUT)
    }

    /// Sends `request` and waits up to `timeout` for the reply (Erlang `gen_server:call/3`).
    ///
    /// Requests from one sender are handled in the order sent, after that sender's earlier
    /// casts and info messages.
    ///
    /// The timeout is a tokio timer (so it follows `tokio::time::pause`), borrowed from a pool
    /// per thread that every caller shares, plain task or process: a call costs the same
    /// whoever makes it. [`Timeout::Infinity`] uses no timer at all.
    ///
    /// # Errors
    ///
    /// - If no reply arrives in time, returns [`CallError::Timeout`] (no earlier than
    ///   `timeout`, at most 1/64 of it later). The server keeps running; its late reply is
    ///   dropped and never reaches a later call.
    /// - If the server is not running, returns [`CallError::NoProc`] at once.
    /// - If the server exits before replying (it crashed, stopped, or was shut down), returns
    ///   [`CallError::Exited`] with its exit reason.
    /// - If a server calls itself, returns [`CallError::CallingSelf`] at once.
    /// - If `timeout` is zero or too long to be a deadline, returns [`CallError::InvalidTimeout`].
    /// - If `timeout` is finite and no tokio runtime runs on this thread (the call is polled by
    ///   another executor), returns [`CallError::NoRuntime`] without sending the request.
    ///
    /// On a full [bounded](super::StartOptions::mailbox_capacity) mailbox the call first waits
    /// for room, within the same timeout; if the timeout expires while it waits, the request is
    /// not sent (the error is [`CallError::Timeout`] either way), and a server that exits
    /// meanwhile gives [`CallError::Exited`].
    ///
    /// # Cancel safety
    ///
    /// As [`call`](Self::call); dropped while it waits for room, nothing was sent.
    pub fn call_timeout(
        &self,
        request: S::Call,
        timeout: impl Into<Timeout>,
    ) -> impl Future<Output = Result<S::Reply, CallError>> + Send + '_ {
        self.round_trip(
            move |reply_to| Envelope::Call(request, Some(reply_to)),
            timeout.into(),
            Room::Taken,
        )
    }

    /// Sends a request that carries its own typed reply handle, and waits up to
    /// [`DEFAULT_CALL_TIMEOUT`] (5 s) for the reply: replies typed per request.
    ///
    /// `make` builds the request around the [`ReplyTo`] for this one call, so each kind of
    /// request declares the type of its reply, and a caller gets exactly that type:
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use std::convert::Infallible;
    /// use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init, ReplyTo};
    ///
    /// struct Store(HashMap<String, String>);
    ///
    /// enum Request {
    ///     Get(String, ReplyTo<Option<String>>),
    ///     Len(ReplyTo<usize>),
    /// }
    ///
    /// impl GenServer for Store {
    ///     type Args = ();
    ///     type Call = Request;
    ///     // Replies travel in the requests' own handles.
    ///     type Reply = Infallible;
    ///     type Cast = (String, String);
    ///     type Info = Infallible;
    ///     type Continue = ();
    ///
    ///     async fn init(_: (), _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
    ///         Ok(Init::Ready(Store(HashMap::new())))
    ///     }
    ///
    ///     async fn handle_call(
    ///         &mut self,
    ///         request: Request,
    ///         _: Caller<'_, Infallible>,
    ///         _: &mut Context<Self>,
    ///     ) -> Result<CallResult<Infallible>, BoxError> {
    ///         // `reply` fails only if the caller stopped waiting; the late reply is dropped,
    ///         // as in Erlang.
    ///         match request {
    ///             Request::Get(key, reply) => drop(reply.reply(self.0.get(&key).cloned())),
    ///             Request::Len(reply) => drop(reply.reply(self.0.len())),
    ///         }
    ///         Ok(CallResult::NoReply)
    ///     }
    ///
    ///     async fn handle_cast(&mut self, (k, v): (String, String), _: &mut Context<Self>) -> Result<(), BoxError> {
    ///         self.0.insert(k, v);
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Store::start(()).await?;
    /// store.cast(("lang".into(), "erlang".into()))?;
    /// let value: Option<String> = store.request(|reply| Request::Get("lang".into(), reply)).await?;
    /// let len: usize = store.request(Request::Len).await?;
    /// assert_eq!((value.as_deref(), len), (Some("erlang"), 1));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// The handler answers through the handle (at once, or later from anywhere: it is a
    /// [`ReplyTo`], as [`Caller::defer`](super::Caller::defer) returns) and returns
    /// [`CallResult::NoReply`](super::CallResult::NoReply). A server can mix both styles:
    /// requests with their own handle and requests answered through
    /// [`Reply`](GenServer::Reply); a server that only has the first kind sets
    /// `type Reply = Infallible`.
    ///
    /// # Errors
    ///
    /// As [`call_timeout`](Self::call_timeout): the same ordering, timeouts, and errors. A
    /// handle dropped unanswered ends the call with [`CallError::Exited`] if the server exits,
    /// and with [`CallError::Timeout`] otherwise.
    ///
    /// # Cancel safety
    ///
    /// As [`call`](Self::call).
    pub fn request<R, F>(&self, make: F) -> impl Future<Output = Result<R, CallError>> + Send + '_
    where
        R: Send + 'static,
        F: FnOnce(ReplyTo<R>) -> S::Call + Send + 'static,
    {
        self.request_timeout(make, DEFAULT_CALL_TIMEOUT)
    }

    /// As [`request`](Self::request), waiting up to `timeout` for the reply.
    ///
    /// # Errors
    ///
    /// As [`call_timeout`](Self::call_timeout).
    pub fn request_timeout<R, F>(
        &self,
        make: F,
        timeout: impl Into<Timeout>,
    ) -> impl Future<Output = Result<R, CallError>> + Send + '_
    where
        R: Send + 'static,
        F: FnOnce(ReplyTo<R>) -> S::Call + Send + 'static,
    {
        self.round_trip(
            move |reply_to| Envelope::Call(make(reply_to), None),
            timeout.into(),
            Room::Taken,
        )
    }

    /// One call: queues the envelope `make` builds around a fresh reply handle, then waits for
    /// the reply, the server's exit or the deadline. Shared by [`call_timeout`](Self::call_timeout)
    /// (the handle in the envelope's slot) and [`request_timeout`](Self::request_timeout) (the
    /// handle inside the request).
    ///
    /// A request of the runtime's own (`Room::Exempt`) is never held back by a full mailbox.
    async fn round_trip<R>(
        &self,
        make: impl FnOnce(ReplyTo<R>) -> Envelope<S>,
        timeout: Timeout,
        room: Room,
    ) -> Result<R, CallError> {
        let deadline = timeout.deadline().map_err(|_| CallError::InvalidTimeout)?;
        let caller = current_pid();
        if caller == Some(self.pid()) {
            return Err(CallError::CallingSelf);
        }
        // The timer is taken before the request is sent: without a runtime, nothing is sent.
        let timer = match deadline {
            None => None,
            Some(deadline) => {
                // Fires at most 1/64 of the timeout late, so quick successive calls can share
                // the timer without moving it.
                let slack = match timeout {
                    Timeout::After(duration) => duration / 64,
                    Timeout::Infinity => std::time::Duration::ZERO,
                };
                Some(call_timer::take(deadline, slack).map_err(|_| CallError::NoRuntime)?)
            }
        };
        let mut timer = timer;
        // Built before a slot is taken: a `make` that panics takes none.
        let (tx, rx) = oneshot::channel();
        let envelope = make(ReplyTo::new(tx, caller));
        let mailbox = &self.process.mailbox;
        // A bounded mailbox admits the call as it admits a cast (within the call's deadline);
        // an unbounded one admits it at once, without a timer or an await.
        if room == Room::Taken && mailbox.is_bounded() {
            if let Err(error) = self.admit_call(timer.as_mut(), deadline).await {
                if let Some(timer) = timer {
                    call_timer::give_back(timer);
                }
                return Err(error);
            }
        }
        if mailbox.send(envelope).is_err() {
            if let Some(timer) = timer {
                call_timer::give_back(timer);
            }
            return Err(CallError::NoProc);
        }
        let mut rx = rx;
        let received = match timer {
            None => rx.await,
            Some(mut timer) => {
                // Biased towards the reply: a reply and the deadline in the same poll is a reply.
                let received = tokio::select! {
                    biased;
                    received = &mut rx => Some(received),
                    () = timer.sleep() => None,
                };
                call_timer::give_back(timer);
                match received {
                    Some(received) => received,
                    None => return Err(CallError::Timeout),
                }
            }
        };
        match received {
            Ok(reply) => Ok(reply),
            // The reply handle was dropped unanswered. If the server is exiting, report why; if
            // it lives on (a handler dropped a deferred reply), the caller waits out its
            // timeout, as in Erlang.
            Err(_) => Err(self.exited_before(deadline).await),
        }
    }

    /// Asks the server for what its `format_status` shows, as a call that takes no room in a
    /// bounded mailbox (see [`sys::get_state`](crate::sys::get_state)).
    pub(crate) fn format_status(
        &self,
        timeout: Timeout,
    ) -> impl Future<Output = Result<FormattedState, CallError>> + Send + '_ {
        self.round_trip(Envelope::GetState, timeout, Room::Exempt)
    }

    /// Waits for room in a bounded mailbox until the timer (if any) fires.
    async fn admit_call(
        &self,
        timer: Option<&mut call_timer::CallTimer>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(), CallError> {
        let admitted = match timer {
            None => self.process.mailbox.admit().await,
            Some(timer) => tokio::select! {
                biased;
                admitted = self.process.mailbox.admit() => admitted,
                () = timer.sleep() => return Err(CallError::Timeout),
            },
        };
        match admitted {
            Ok(()) => Ok(()),
            // The server exited while the call waited for room: the caller learns why.
            Err(_) => Err(self.exited_before(deadline).await),
        }
    }

    /// The error of a call whose server is exiting: its exit reason, or a timeout if that is
    /// not published by the deadline.
    async fn exited_before(&self, deadline: Option<tokio::time::Instant>) -> CallError {
        let exit = wait_exit(&self.process.header);
        match deadline {
            None => CallError::Exited(exit.await),
            Some(deadline) => match tokio::time::timeout_at(deadline, exit).await {
                Ok(reason) => CallError::Exited(reason),
                Err(_) => CallError::Timeout,
            },
        }
    }

    /// Queues `message` for [`handle_cast`](GenServer::handle_cast) and returns at once
    /// (Erlang `gen_server:cast/2`). Never waits, even on a full
    /// [bounded](super::StartOptions::mailbox_capacity) mailbox: use
    /// [`cast_wait`](Self::cast_wait) to wait for room.
    ///
    /// # Errors
    ///
    /// - If the server is not running, returns [`SendError::NoProc`] with the message.
    /// - If its mailbox is bounded and full, returns [`SendError::Full`] with the message.
    pub fn cast(&self, message: S::Cast) -> Result<(), SendError<S::Cast>> {
        self.admit_now(message)
            .and_then(|message| self.queue(message, Envelope::Cast))
    }

    /// Queues `message` for [`handle_cast`](GenServer::handle_cast), first waiting for room if
    /// the server's mailbox is [bounded](super::StartOptions::mailbox_capacity) and full: the
    /// back-pressure of a bounded channel's `send().await`. On an unbounded mailbox it is
    /// [`cast`](Self::cast) and returns at once.
    ///
    /// Senders waiting for room get it in the order they started waiting; messages from one
    /// sender are handled in the order sent.
    ///
    /// # Errors
    ///
    /// - If the server is not running, or exits while this waits, returns
    ///   [`SendError::NoProc`] with the message.
    /// - If a server casts to itself this way while its mailbox is full, returns
    ///   [`SendError::Full`] at once: only the server itself could make room, so waiting
    ///   would never end.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped while it waits, the future sends nothing and takes no room (the
    /// message is dropped with it).
    pub async fn cast_wait(&self, message: S::Cast) -> Result<(), SendError<S::Cast>> {
        let mailbox = &self.process.mailbox;
        match mailbox.try_admit() {
            Ok(()) => {}
            Err(NotAdmitted::Closed) => return Err(SendError::NoProc(message)),
            Err(NotAdmitted::Full) if current_pid() == Some(self.pid()) => {
                return Err(SendError::Full(message));
            }
            Err(NotAdmitted::Full) => {
                if mailbox.admit().await.is_err() {
                    return Err(SendError::NoProc(message));
                }
            }
        }
        self.queue(message, Envelope::Cast)
    }

    /// Queues `message` for [`handle_info`](GenServer::handle_info) (Erlang `Pid ! Message`).
    /// Never waits, as [`cast`](Self::cast).
    ///
    /// # Errors
    ///
    /// - If the server is not running, returns [`SendError::NoProc`] with the message.
    /// - If its mailbox is bounded and full, returns [`SendError::Full`] with the message.
    pub fn send(&self, message: S::Info) -> Result<(), SendError<S::Info>> {
        self.admit_now(message)
            .and_then(|message| self.queue(message, Envelope::Info))
    }

    /// Queues `info` as a message of the runtime's own (a supervised task's result): it takes
    /// no room in a bounded mailbox, and a full one does not refuse it. Gives it back if the
    /// server is not running.
    pub(crate) fn send_internal(&self, info: S::Info) -> Result<(), S::Info> {
        self.process.mailbox.send_as(info, Envelope::Internal)
    }

    /// Takes a slot for `message` if its mailbox is bounded; gives it back if there is none.
    fn admit_now<M>(&self, message: M) -> Result<M, SendError<M>> {
        match self.process.mailbox.try_admit() {
            Ok(()) => Ok(message),
            Err(NotAdmitted::Full) => Err(SendError::Full(message)),
            Err(NotAdmitted::Closed) => Err(SendError::NoProc(message)),
        }
    }

    /// Queues an admitted message.
    fn queue<M>(&self, message: M, wrap: fn(M) -> Envelope<S>) -> Result<(), SendError<M>> {
        self.process
            .mailbox
            .send_as(message, wrap)
            .map_err(SendError::NoProc)
    }

    /// Stops the server with `reason` and waits until it has exited (Erlang `gen_server:stop/3`).
    ///
    /// The stop request is queued behind the messages already in the mailbox; they are handled
    /// first, then `terminate(reason)` runs, then the process exits.
    ///
    /// # Errors
    ///
    /// - If the server is not running, returns [`StopError::NoProc`].
    /// - If it has not exited within `timeout`, returns [`StopError::Timeout`]; it keeps running
    ///   until it reaches the request.
    /// - If a server tries to stop itself this way, returns [`StopError::CallingSelf`]; use
    ///   [`Context::stop`](super::Context::stop) instead.
    /// - If it exited with another reason (for example `terminate` panicked), returns
    ///   [`StopError::Exited`] with that reason.
    /// - If `timeout` is zero or too long to be a deadline, returns [`StopError::InvalidTimeout`].
    /// - If `timeout` is finite and no tokio runtime runs on this thread, returns
    ///   [`StopError::NoRuntime`] without asking the server to stop.
    pub async fn stop(
        &self,
        reason: ExitReason,
        timeout: impl Into<Timeout>,
    ) -> Result<(), StopError> {
        let deadline = timeout
            .into()
            .deadline()
            .map_err(|_| StopError::InvalidTimeout)?;
        if current_pid() == Some(self.pid()) {
            return Err(StopError::CallingSelf);
        }
        if deadline.is_some() && tokio::runtime::Handle::try_current().is_err() {
            return Err(StopError::NoRuntime);
        }
        if !self.process.request_stop(reason.clone()) {
            return Err(StopError::NoProc);
        }
        let exit = wait_exit(&self.process.header);
        let exited = match deadline {
            None => exit.await,
            Some(deadline) => tokio::time::timeout_at(deadline, exit)
                .await
                .map_err(|_| StopError::Timeout)?,
        };
        if exited == reason {
            Ok(())
        } else {
            Err(StopError::Exited(exited))
        }
    }

    /// Monitors this server (see [`monitor`](crate::monitor::monitor)).
    pub fn monitor(&self) -> Monitor {
        monitor(self.pid())
    }
}

/// Whether a request takes a slot of a bounded mailbox.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Room {
    /// A call: admitted as casts are.
    Taken,
    /// A request of the runtime's own, never held back.
    Exempt,
}

impl<S: GenServer> Clone for ServerRef<S> {
    fn clone(&self) -> ServerRef<S> {
        ServerRef {
            process: self.process.clone(),
        }
    }
}

impl<S: GenServer> PartialEq for ServerRef<S> {
    fn eq(&self, other: &ServerRef<S>) -> bool {
        Arc::ptr_eq(&self.process, &other.process)
    }
}

impl<S: GenServer> Eq for ServerRef<S> {}

impl<S: GenServer> fmt::Debug for ServerRef<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerRef")
            .field("pid", &self.pid())
            .field("server", &self.process.header.name())
            .finish()
    }
}
