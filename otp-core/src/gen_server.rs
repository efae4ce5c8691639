//! The generic server: one process that owns its state and handles messages one at a time.
//!
//! Mirrors [`gen_server`](https://www.erlang.org/doc/apps/stdlib/gen_server.html) (Erlang/OTP)
//! and [`GenServer`](https://hexdocs.pm/elixir/GenServer.html) (Elixir).
//!
//! | client (any process or async code) | callback (runs in the server) | Erlang |
//! |---|---|---|
//! | [`S::start(args)`](GenServer::start) | [`init`](GenServer::init) | `gen_server:start/3` → `init/1` |
//! | [`ServerRef::call`] / [`call_timeout`](ServerRef::call_timeout) | [`handle_call`](GenServer::handle_call) | `gen_server:call/2,3` → `handle_call/3` |
//! | [`ServerRef::cast`] | [`handle_cast`](GenServer::handle_cast) | `gen_server:cast/2` → `handle_cast/2` |
//! | [`ServerRef::cast_wait`] (bounded mailbox, waits for room) | [`handle_cast`](GenServer::handle_cast) | — (Erlang mailboxes are unbounded) |
//! | [`ServerRef::send`], timers, monitors | [`handle_info`](GenServer::handle_info) | `Pid ! Msg` → `handle_info/2` |
//! | [`Context::attach_stream`] (a socket, a channel) | [`handle_info`](GenServer::handle_info) | an `{active, once}` socket's messages |
//! | [`Context::continue_with`] | [`handle_continue`](GenServer::handle_continue) | `{continue, C}` → `handle_continue/2` |
//! | [`ServerRef::stop`], [`Context::stop`], a crash | [`terminate`](GenServer::terminate) | `gen_server:stop/3` → `terminate/2` |
//! | [`GenServer::start_link`], [`Context::trap_exits`] | [`handle_info`](GenServer::handle_info) gets [`Exit`](crate::link::Exit) | `gen_server:start_link/3`, `{'EXIT', Pid, Reason}` |
//! | [`ReplyTo::reply`] | — | `gen_server:reply/2` |
//! | [`ServerRef::request`] (reply typed per request) | [`handle_call`](GenServer::handle_call) | `gen_server:call/2` (untyped) |
//!
//! # A counter
//!
//! ```
//! use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init};
//!
//! struct Counter { n: u64 }
//!
//! enum Request { Get, Add(u64) }
//!
//! impl GenServer for Counter {
//!     type Args = u64;
//!     type Call = Request;
//!     type Reply = u64;
//!     type Cast = u64;
//!     type Info = std::convert::Infallible;
//!     type Continue = ();
//!
//!     async fn init(start: u64, _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
//!         Ok(Init::Ready(Counter { n: start }))
//!     }
//!
//!     async fn handle_call(
//!         &mut self,
//!         request: Request,
//!         _: Caller<'_, u64>,
//!         _: &mut Context<Self>,
//!     ) -> Result<CallResult<u64>, BoxError> {
//!         match request {
//!             Request::Get => Ok(CallResult::Reply(self.n)),
//!             Request::Add(k) => {
//!                 self.n += k;
//!                 Ok(CallResult::Reply(self.n))
//!             }
//!         }
//!     }
//!
//!     async fn handle_cast(&mut self, k: u64, _: &mut Context<Self>) -> Result<(), BoxError> {
//!         self.n += k;
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let counter = Counter::start(40).await?;
//! counter.cast(1)?;
//! assert_eq!(counter.call(Request::Add(1)).await?, 42);
//! assert_eq!(counter.call(Request::Get).await?, 42);
//! counter.stop(otp_core::ExitReason::Normal, std::time::Duration::from_secs(5)).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Messages and replies
//!
//! Each kind of message has its own associated type; use [`Infallible`](std::convert::Infallible)
//! for a kind the server never receives. A call handler answers by returning
//! [`CallResult::Reply`], or takes the reply handle with [`Caller::defer`] and returns
//! [`CallResult::NoReply`] to answer later from any callback, process or task with
//! [`ReplyTo::reply`].
//!
//! One `Reply` type serves every call, so when requests answer different things, callers match
//! arms that cannot occur. [`ServerRef::request`] avoids that: each request variant carries its
//! own [`ReplyTo<R>`](ReplyTo) (`Get(String, ReplyTo<Option<String>>)`, `Len(ReplyTo<usize>)`),
//! the caller builds it around the handle (`server.request(Request::Len)`) and gets exactly `R`,
//! and the handler answers through the handle, now or later. Timeouts, ordering and exit
//! reasons are those of `call`; the two styles mix in one server.
//!
//! # Bounded mailboxes
//!
//! A mailbox is unbounded by default, as in Erlang: `cast` and `send` never wait, and a server
//! that is sent more than it handles grows its queue until memory runs out. Where a producer
//! can outrun its server (a fast client feeding its connection's server), start the server
//! with [`StartOptions::mailbox_capacity`]: then at most that many calls, casts and info
//! messages wait. On a full mailbox [`cast`](ServerRef::cast) and [`send`](ServerRef::send)
//! return [`SendError::Full`] at once with the message (shed it, or retry), while
//! [`cast_wait`](ServerRef::cast_wait) waits for room and a call waits for room within its
//! timeout. Stop requests, `Down`s, exit signals, due timers and stream items never wait and
//! take no room, so a flooded server can still be stopped and still sees its monitors fire.
//! For a stream, [`Context::attach_stream`] is the better tool: it reads the next item only
//! when the server is ready for it.
//!
//! To stop, a callback calls [`Context::stop`]; a reply returned by the same
//! call handler is delivered before `terminate` runs (Erlang's `{stop, Reason, Reply, State}`).
//!
//! Callbacks return `Result<_, BoxError>`, so `?` works: an `Err` ends the server with
//! [`ExitReason::Error`], a panic with [`ExitReason::Panic`] (rule 2: let it crash). A supervisor
//! decides what happens next.
//!
//! # When `terminate` runs
//!
//! [`terminate`](GenServer::terminate) runs with the exit reason when:
//! - a callback called [`Context::stop`];
//! - a callback other than `init` returned `Err` or panicked (the reason says which);
//! - [`ServerRef::stop`] was used, or the server's supervisor shut it down gracefully: the stop
//!   request is queued behind the messages already in the mailbox, which are handled first.
//!
//! It does **not** run when:
//! - `init` failed or returned `Ignore` (the server never started);
//! - the process was killed ([`process::exit`](crate::process::exit), a supervisor's brutal kill,
//!   or a shutdown timeout expiring);
//! - the tokio runtime shut down under it;
//! - the program was built with `panic = "abort"` and something panicked.
//!
//! # Differences from OTP
//!
//! - **Graceful shutdown always runs `terminate`.** A supervisor asks a child to stop with an
//!   in-band request rather than an exit signal, so every server behaves like an Erlang server
//!   that traps exits: a shutdown request is handled in mailbox order and `terminate(Shutdown)`
//!   runs (semantics D1, D14). Exit signals from [links](crate::link) are another matter: a
//!   server that does not [trap them](Context::trap_exits) dies of an abnormal one without
//!   `terminate`, as in Erlang.
//! - **A callback that never reaches an `.await` cannot be killed** (D2): a kill takes effect at
//!   the callback's next `.await`. Never block the thread in a callback.
//! - After a panic, `terminate` sees the state as the panicking callback left it, not the state
//!   before that callback.
//! - A reply handle moved to another process keeps the call waiting for that process (or the
//!   timeout) even after the server exited; while the server holds it, the caller learns of the
//!   server's exit at once, as in Erlang.
//! - Casts and info messages to a stopped server return [`SendError::NoProc`] with the message,
//!   where Erlang silently drops it (D13).
//! - **Mailboxes can be bounded** ([`StartOptions::mailbox_capacity`]); Erlang's never are. The
//!   default stays unbounded.
//! - There is no hibernation and no `code_change`. [`format_status`](GenServer::format_status)
//!   renders the state as a `String` for [`sys::get_state`](crate::sys::get_state), which
//!   returns that rendering rather than the state itself (see [`sys`](crate::sys)).
//! - **`init` runs in the starter's task, as the new process.** Erlang spawns the process and
//!   the starter waits for its `init`. Here the starter's task polls `init` itself, with the new
//!   process [current](crate::process::current) and its span entered; a kill
//!   ([`process::exit`](crate::process::exit), the start timeout) ends `init` at its next
//!   `.await` as it would in a task of its own. The process gets its own task once `init`
//!   succeeds. What you can observe is the same, and a start costs two thread hand-offs less;
//!   the one difference is that dropping the `start` future (the starter was cancelled) kills
//!   the starting process, as a linked starter's exit would in Erlang.
//! - **A server that always has work still yields.** Each message, timer and continue spends a
//!   unit of tokio's cooperative budget, so a server that keeps itself busy (say, by messaging
//!   itself) gives its thread up every so often, as a BEAM process is preempted after its
//!   reductions. Tokio's budget is not preemption, though: it only counts at `.await`s.
//!
//! # Why native `async fn` rather than `#[async_trait]`
//!
//! The trait's methods are declared as `fn … -> impl Future<Output = …> + Send` and implemented
//! with plain `async fn`. `#[async_trait]` would box every callback's future: one allocation per
//! message. Measured side by side (`benches/gen_server_cast.rs`, 2-core machine, same run), a
//! cast costs 29 ns with native callbacks and 44 ns with boxed ones (the plain-tokio floor: 70
//! ns); on the call path the allocation is lost in the round trip (`benches/gen_server_call.rs`).
//! The price is that a server's task holds its largest callback future inline, so a callback
//! with a very large future makes every idle server of that type larger; box such a future
//! yourself (`Box::pin(async { … }).await`).

mod call_timer;
mod context;
mod envelope;
mod error;
mod reply_to;
mod server_loop;
mod server_process;
mod server_ref;
mod start;

use std::fmt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::time::Duration;

pub use context::Context;
pub use error::{CallError, SendError, StartError, StopError};
pub use reply_to::{Caller, ReplyTo};
pub use server_ref::ServerRef;

use crate::ExitReason;
pub use crate::process::BoxError;
pub(crate) use start::ReleaseName;

/// How long [`ServerRef::call`] waits for a reply: 5 seconds, as Erlang's and Elixir's
/// `call/2` (`gen_server.erl`: `call(ServerRef, Request, 5000)`).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What `init` decided (Erlang's `{ok, State}`, `ignore` and `{stop, Reason}`).
#[derive(Debug)]
pub enum Init<S> {
    /// Start serving with this state.
    Ready(S),
    /// Do not start; `start` returns [`StartError::Ignored`] and the process exits normally.
    Ignore,
    /// Do not start; `start` returns [`StartError::InitFailed`] and the process exits with this
    /// reason. `terminate` does not run.
    Stop(ExitReason),
}

/// What a call handler decided about the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallResult<R> {
    /// Reply now (Erlang `{reply, Reply, State}`).
    Reply(R),
    /// No reply now (Erlang `{noreply, State}`): the handler took the reply handle with
    /// [`Caller::defer`] to reply later, or the caller gets no reply.
    NoReply,
}

/// A timeout for calls, stops and starts: a duration or none at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// Give up after this long. Must be greater than zero.
    After(Duration),
    /// Wait as long as it takes (Erlang `infinity`).
    Infinity,
}

impl From<Duration> for Timeout {
    fn from(duration: Duration) -> Timeout {
        Timeout::After(duration)
    }
}

/// A timeout that cannot be used: zero, or too long to be represented as a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidTimeout;

impl Timeout {
    /// The deadline, `None` for infinity.
    pub(crate) fn deadline(self) -> Result<Option<tokio::time::Instant>, InvalidTimeout> {
        match self {
            Timeout::Infinity => Ok(None),
            Timeout::After(duration) if duration.is_zero() => Err(InvalidTimeout),
            Timeout::After(duration) => tokio::time::Instant::now()
                .checked_add(duration)
                .map(Some)
                .ok_or(InvalidTimeout),
        }
    }
}

/// Registers a server under a name for [`StartOptions::name`]; implemented by
/// [`Registry`](crate::registry::Registry)'s via-names.
pub(crate) trait ClaimName<S: GenServer>: Send {
    /// Registers `server` under the name. On success, returns how to release the name early
    /// (when `init` fails); otherwise the name is released when the process exits.
    fn claim(self: Box<Self>, server: &ServerRef<S>) -> Result<ReleaseName, StartError>;
}

/// Options for [`GenServer::start_with`]: a name, a start timeout, a label for logs, a link to
/// the starter, a bounded mailbox.
pub struct StartOptions<S: GenServer> {
    pub(crate) name: Option<Box<dyn ClaimName<S>>>,
    pub(crate) timeout: Timeout,
    pub(crate) label: Option<&'static str>,
    pub(crate) link: bool,
    pub(crate) mailbox_capacity: Option<NonZeroUsize>,
}

impl<S: GenServer> StartOptions<S> {
    /// No name, no start timeout (Erlang's default is `infinity`), the type name as label.
    pub fn new() -> StartOptions<S> {
        StartOptions {
            name: None,
            timeout: Timeout::Infinity,
            label: None,
            link: false,
            mailbox_capacity: None,
        }
    }

    /// Gives up if `init` has not finished within `timeout`; the process is then killed and
    /// `start` returns [`StartError::Timeout`] (Erlang's `{timeout, T}` start option).
    pub fn timeout(mut self, timeout: impl Into<Timeout>) -> StartOptions<S> {
        self.timeout = timeout.into();
        self
    }

    /// The `name` field of the process's `tracing` span (default: the server's type name).
    pub fn label(mut self, label: &'static str) -> StartOptions<S> {
        self.label = Some(label);
        self
    }

    /// Links the new server to the calling process before `init` runs (Erlang's
    /// `start_link`); see [`GenServer::start_link`].
    pub fn link(mut self) -> StartOptions<S> {
        self.link = true;
        self
    }

    /// Bounds the mailbox: at most `capacity` calls, casts and info messages wait in it (the
    /// one being handled is not counted). The default is unbounded, as in Erlang.
    ///
    /// On a full mailbox, [`ServerRef::cast`] and [`ServerRef::send`] return
    /// [`SendError::Full`] with the message at once, [`ServerRef::cast_wait`] waits for room,
    /// and a call waits for room within its timeout. What the runtime itself delivers (stop
    /// requests, monitors' `Down`s, exit signals, the server's own timers and streams) is never
    /// held back by a full mailbox and takes no room. Senders waiting for room get it in the
    /// order they asked.
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// # use otp_core::gen_server::{BoxError, Context, GenServer, Init, StartOptions};
    /// # struct Sink;
    /// # impl GenServer for Sink {
    /// #     type Args = ();
    /// #     type Call = ();
    /// #     type Reply = ();
    /// #     type Cast = u32;
    /// #     type Info = ();
    /// #     type Continue = ();
    /// #     async fn init(_: (), _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
    /// #         Ok(Init::Ready(Sink))
    /// #     }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let capacity = NonZeroUsize::new(64).expect("not zero");
    /// let sink = Sink::start_with((), StartOptions::new().mailbox_capacity(capacity)).await?;
    /// // Waits while 64 messages are already waiting; `cast` would return `SendError::Full`.
    /// sink.cast_wait(7).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn mailbox_capacity(mut self, capacity: NonZeroUsize) -> StartOptions<S> {
        self.mailbox_capacity = Some(capacity);
        self
    }

    pub(crate) fn with_name(mut self, claim: Box<dyn ClaimName<S>>) -> StartOptions<S> {
        self.name = Some(claim);
        self
    }
}

impl<S: GenServer> Default for StartOptions<S> {
    fn default() -> StartOptions<S> {
        StartOptions::new()
    }
}

impl<S: GenServer> fmt::Debug for StartOptions<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartOptions")
            .field("named", &self.name.is_some())
            .field("timeout", &self.timeout)
            .field("label", &self.label)
            .field("link", &self.link)
            .field("mailbox_capacity", &self.mailbox_capacity)
            .finish()
    }
}

/// A generic server: implement the callbacks, start it with [`GenServer::start`], talk to it
/// through its [`ServerRef`]. See the [module docs](self) for the whole picture.
///
/// `Self` is the server's state; [`init`](Self::init) builds it from [`Args`](Self::Args).
/// Every callback except `init` has a default, so a server implements only what it receives.
pub trait GenServer: Sized + Send + 'static {
    /// What [`init`](Self::init) is started with.
    type Args: Send + 'static;
    /// Requests handled by [`handle_call`](Self::handle_call).
    type Call: Send + 'static;
    /// Replies to calls.
    type Reply: Send + 'static;
    /// Messages handled by [`handle_cast`](Self::handle_cast).
    type Cast: Send + 'static;
    /// Messages handled by [`handle_info`](Self::handle_info): sent with [`ServerRef::send`],
    /// from timers, and from monitors.
    type Info: Send + 'static;
    /// Values passed from a callback to [`handle_continue`](Self::handle_continue).
    type Continue: Send + 'static;

    /// Builds the state (Erlang `init/1`). Runs as the new process before `start` returns (in
    /// the starter's task: see [Differences from OTP](self#differences-from-otp)).
    ///
    /// Return [`Init::Ready`] to start serving, [`Init::Ignore`] or [`Init::Stop`] not to start.
    /// An `Err` or a panic also fails the start, with that reason. Call
    /// [`Context::continue_with`] to run `handle_continue` before the first message.
    fn init(
        args: Self::Args,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<Init<Self>, BoxError>> + Send;

    /// Handles a call (Erlang `handle_call/3`). The default crashes the server, as Elixir's does.
    fn handle_call(
        &mut self,
        request: Self::Call,
        caller: Caller<'_, Self::Reply>,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<CallResult<Self::Reply>, BoxError>> + Send {
        let _ = (request, caller, ctx);
        async { Err(unexpected::<Self>("call")) }
    }

    /// Handles a cast (Erlang `handle_cast/2`). The default crashes the server, as Elixir's does.
    fn handle_cast(
        &mut self,
        message: Self::Cast,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = (message, ctx);
        async { Err(unexpected::<Self>("cast")) }
    }

    /// Handles any other message (Erlang `handle_info/2`). The default logs it and carries on,
    /// as Elixir's does.
    fn handle_info(
        &mut self,
        message: Self::Info,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = message;
        tracing::warn!(pid = %ctx.pid(), server = std::any::type_name::<Self>(), "unhandled info message");
        async { Ok(()) }
    }

    /// Continues work asked for with [`Context::continue_with`] (Erlang `handle_continue/2`),
    /// before any queued message. The default crashes the server, as Elixir's does.
    fn handle_continue(
        &mut self,
        value: Self::Continue,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = (value, ctx);
        async { Err(unexpected::<Self>("continue")) }
    }

    /// Cleans up before the process exits with `reason` (Erlang `terminate/2`). See
    /// [when it runs](self#when-terminate-runs). The default does nothing.
    fn terminate(
        &mut self,
        reason: &ExitReason,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (reason, ctx);
        async {}
    }

    /// What [`sys::get_state`](crate::sys::get_state) shows of the state (OTP 25's
    /// `format_status/1`). The default, `None`, keeps the state private; a server opts in by
    /// returning a rendering of it, leaving out what must not be shown (passwords, tokens):
    ///
    /// ```
    /// # use otp_core::gen_server::{BoxError, Context, GenServer, Init};
    /// struct Session { user: String, token: String }
    ///
    /// impl GenServer for Session {
    /// #   type Args = ();
    /// #   type Call = ();
    /// #   type Reply = ();
    /// #   type Cast = ();
    /// #   type Info = ();
    /// #   type Continue = ();
    /// #   async fn init(_: (), _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
    /// #       Ok(Init::Ready(Session { user: "ada".into(), token: "s3cr3t".into() }))
    /// #   }
    ///     // ...
    ///     fn format_status(&self) -> Option<String> {
    ///         let _secret = &self.token; // never shown
    ///         Some(format!("Session {{ user: {:?}, token: <redacted> }}", self.user))
    ///     }
    /// }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let session = Session::start(()).await?;
    /// let shown = otp_core::sys::get_state(&session, std::time::Duration::from_secs(1)).await?;
    /// assert_eq!(shown, r#"Session { user: "ada", token: <redacted> }"#);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// It runs in the server, between two messages, in mailbox order. A panic in it is caught:
    /// the caller of `get_state` gets it as an error and the server carries on.
    fn format_status(&self) -> Option<String> {
        None
    }

    /// Starts the server and waits for `init` (Erlang `gen_server:start/3`).
    ///
    /// # Errors
    ///
    /// - If `init` returns [`Init::Ignore`], returns [`StartError::Ignored`].
    /// - If `init` returns [`Init::Stop`], returns `Err`, or panics, returns
    ///   [`StartError::InitFailed`] with the reason.
    /// - If no tokio runtime is running, returns [`StartError::NoRuntime`].
    fn start(args: Self::Args) -> impl Future<Output = Result<ServerRef<Self>, StartError>> + Send {
        start::start(args, StartOptions::new())
    }

    /// Starts the server linked to the calling process, and waits for `init` (Erlang
    /// `gen_server:start_link/3`; see [`link`](crate::link)).
    ///
    /// The link is set before `init` runs, so the two can never be unlinked while both run. If
    /// the start fails, the link is removed before this returns: the caller learns of the
    /// failure from the result, never from an exit signal (as OTP 26's `proc_lib:init_fail`).
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start), and if the caller is not a running process, returns
    /// [`StartError::NotInProcess`] without starting anything.
    fn start_link(
        args: Self::Args,
    ) -> impl Future<Output = Result<ServerRef<Self>, StartError>> + Send {
        start::start(args, StartOptions::new().link())
    }

    /// Starts the server with options: a name, a start timeout, a link.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start), and:
    /// - If the name is held by a live process, returns [`StartError::AlreadyStarted`] with its
    ///   pid; `init` never runs.
    /// - If `init` does not finish within the timeout, returns [`StartError::Timeout`] after
    ///   killing the process; a zero timeout is [`StartError::InvalidTimeout`].
    /// - If the registry of the name is not running, returns [`StartError::RegistryDown`].
    fn start_with(
        args: Self::Args,
        options: StartOptions<Self>,
    ) -> impl Future<Output = Result<ServerRef<Self>, StartError>> + Send {
        start::start(args, options)
    }
}

fn unexpected<S>(kind: &str) -> BoxError {
    format!(
        "{} received a {kind} but does not implement handle_{kind}",
        std::any::type_name::<S>()
    )
    .into()
}
