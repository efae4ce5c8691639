//! Erlang/OTP's process model on tokio: generic servers, monitors, timers, a name registry,
//! supervised tasks and supervisors, with OTP's semantics.
//!
//! The mental model is Erlang's: work happens in **processes** (tokio tasks started by this
//! crate), each owning its state and handling one message at a time; a panic or `?` ends only
//! the process it happens in, with an [`ExitReason`] that others can [`monitor`] and
//! supervisors act on.
//!
//! # Quick start
//!
//! ```
//! use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init};
//! use otp_core::ExitReason;
//!
//! /// A stack server (Elixir's `GenServer` docs example).
//! struct Stack(Vec<String>);
//!
//! enum Call { Pop }
//! enum Cast { Push(String) }
//!
//! impl GenServer for Stack {
//!     type Args = Vec<String>;
//!     type Call = Call;
//!     type Reply = Option<String>;
//!     type Cast = Cast;
//!     type Info = std::convert::Infallible;
//!     type Continue = ();
//!
//!     async fn init(items: Vec<String>, _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
//!         Ok(Init::Ready(Stack(items)))
//!     }
//!
//!     async fn handle_call(&mut self, _: Call, _: Caller<'_, Option<String>>, _: &mut Context<Self>)
//!         -> Result<CallResult<Option<String>>, BoxError> {
//!         Ok(CallResult::Reply(self.0.pop()))
//!     }
//!
//!     async fn handle_cast(&mut self, Cast::Push(item): Cast, _: &mut Context<Self>) -> Result<(), BoxError> {
//!         self.0.push(item);
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let stack = Stack::start(vec!["hello".into()]).await?;
//! stack.cast(Cast::Push("world".into()))?;
//! assert_eq!(stack.call(Call::Pop).await?, Some("world".into()));
//! assert_eq!(stack.call(Call::Pop).await?, Some("hello".into()));
//! stack.stop(ExitReason::Normal, std::time::Duration::from_secs(5)).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # From Erlang and Elixir
//!
//! | Erlang / Elixir | otp-core |
//! |---|---|
//! | `pid()`, `self()` | [`Pid`], [`process::current`] |
//! | exit reasons `normal`, `shutdown`, `{shutdown, T}`, `killed`, crashes | [`ExitReason`] |
//! | `exit(Pid, Reason)`, `is_process_alive/1` | [`process::exit`], [`process::is_alive`] |
//! | `gen_server` / `GenServer` | [`gen_server::GenServer`], [`gen_server::ServerRef`] |
//! | `gen_server:reply/2`, `From` | [`gen_server::ReplyTo`] |
//! | a call whose reply type depends on the request | [`gen_server::ServerRef::request`] |
//! | a socket in `{active, once}` mode | [`gen_server::Context::attach_stream`], [`stream`] |
//! | (none: Erlang mailboxes are unbounded) | [`gen_server::StartOptions::mailbox_capacity`], [`gen_server::ServerRef::cast_wait`], [`gen_server::SendError::Full`] |
//! | `process_info/2`, `sys:get_state/2`, `format_status/1`, observer's tree | [`process::info`], [`sys::get_state`], [`gen_server::GenServer::format_status`], [`observer::tree`] |
//! | `link/1`, `unlink/1`, `trap_exit`, `{'EXIT', …}`, `start_link` | [`link::link`], [`link::unlink`], [`gen_server::Context::trap_exits`], [`link::Exit`], [`gen_server::GenServer::start_link`] |
//! | `erlang:monitor/2`, `{'DOWN', …}` | [`monitor::monitor`], [`monitor::Down`] |
//! | `erlang:send_after/3`, `timer:send_interval/2`, `cancel_timer/1` | [`gen_server::Context::send_after`], [`send_interval`](gen_server::Context::send_interval), [`cancel_timer`](gen_server::Context::cancel_timer) |
//! | `Registry` (unique keys), `{via, Registry, Name}` | [`registry::Registry`], [`registry::Via`] |
//! | `Registry` with `keys: :duplicate`, `dispatch` | [`registry::DuplicateRegistry`] |
//! | `Task.Supervisor` | [`task_supervisor::TaskSupervisor`] |
//! | `register/2`, `whereis/1`, `{local, Name}`, Elixir's `name:` | [`name::Name`] |
//! | `Task.start/1`, a `{Task, fun}` child | [`task::start`], [`supervisor::ChildSpec::task`] |
//! | `supervisor` / `Supervisor`: `start_link`, `start_child`, `terminate_child`, `restart_child`, `delete_child`, `which_children`, `count_children` | [`supervisor::Supervisor`], same names |
//! | child spec (`id`, `start`, `restart`, `shutdown`, `type`) | [`supervisor::ChildSpec`], [`supervisor::Restart`], [`supervisor::Shutdown`], [`supervisor::ChildType`] |
//! | supervisor flags (`strategy`, `intensity`, `period`) | [`supervisor::SupFlags`], [`supervisor::Strategy`] |
//! | `DynamicSupervisor` (`simple_one_for_one`) | [`dynamic_supervisor::DynamicSupervisor`] |
//! | `application` (start the root, stop on signal) | [`application::Application`] |
//!
//! [`semantics`] lists the guarantees in one place, and every deliberate difference from OTP.
//! [`guide`] ("Building a service") walks through a real service built on all of it: names,
//! task children, streams, links, backpressure, and the pitfalls.
//!
//! # Feature flags
//!
//! - `test-util`: the `testing` module, helpers for tests that wait on events instead of sleeping.

#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::mod_module_files
)]
#![doc(test(attr(deny(warnings))))]

pub mod application;
pub mod dynamic_supervisor;
pub mod gen_server;
pub mod guide;
pub mod link;
pub mod monitor;
pub mod name;
pub mod observer;
pub mod process;
pub mod registry;
pub mod semantics;
pub mod stream;
pub mod supervisor;
mod sync;
pub mod sys;
pub mod task;
pub mod task_supervisor;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod timer;

pub use gen_server::{GenServer, ServerRef};

// The README's Rust snippets are compiled and run as doctests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}
pub use process::{ExitReason, Pid};
