//! Looking into a running server from outside: Erlang's [`sys`](https://www.erlang.org/doc/apps/stdlib/sys.html)
//! module, the part of it that reads.
//!
//! | Erlang | otp-core |
//! |---|---|
//! | `sys:get_state(Name)` | [`get_state`], showing what [`GenServer::format_status`] returns |
//! | `format_status/1` (OTP 25) | [`GenServer::format_status`] |
//! | `process_info(Pid)` | [`process::info`](crate::process::info) |
//! | `supervisor:which_children/1`, observer's tree | [`observer::tree`](crate::observer::tree) |
//!
//! # Differences from OTP
//!
//! - `sys:get_state` returns the state term itself. Rust has no way to hand an arbitrary
//!   server's state to a caller that does not know its type, so [`get_state`] returns the
//!   `String` the server's [`format_status`](GenServer::format_status) renders, and a server
//!   that does not implement it shows nothing ([`GetStateError::NotShown`]). A server's state
//!   is private unless it opts in.
//! - There is no `replace_state`, `suspend`/`resume`, `trace` or `change_code`.

use std::sync::Arc;

use crate::gen_server::{CallError, GenServer, ServerRef, Timeout};

/// Why [`get_state`] has no state to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GetStateError {
    /// The server did not answer: as for a [`call`](ServerRef::call_timeout) (not running,
    /// exited, timed out, called itself).
    #[error(transparent)]
    Call(#[from] CallError),
    /// The server keeps its state private: its `format_status` returned `None` (the default).
    #[error("the server does not show its state")]
    NotShown,
    /// Its `format_status` panicked with this message; the server carries on.
    #[error("format_status panicked: {0}")]
    FormatPanicked(Arc<str>),
}

/// What `server`'s state looks like, as its [`format_status`](GenServer::format_status) shows
/// it (Erlang `sys:get_state/2`).
///
/// The request travels in the server's mailbox like a call, so it is answered between two
/// messages, after those already queued, within `timeout`. It takes no room in a
/// [bounded](crate::gen_server::StartOptions::mailbox_capacity) mailbox.
///
/// ```
/// use otp_core::gen_server::{BoxError, Context, GenServer, Init};
///
/// struct Counter(u64);
///
/// impl GenServer for Counter {
///     type Args = ();
///     type Call = ();
///     type Reply = ();
///     type Cast = u64;
///     type Info = ();
///     type Continue = ();
///
///     async fn init(_: (), _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
///         Ok(Init::Ready(Counter(0)))
///     }
///
///     async fn handle_cast(&mut self, n: u64, _: &mut Context<Self>) -> Result<(), BoxError> {
///         self.0 += n;
///         Ok(())
///     }
///
///     fn format_status(&self) -> Option<String> {
///         Some(format!("count = {}", self.0))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let counter = Counter::start(()).await?;
/// counter.cast(5)?;
/// let shown = otp_core::sys::get_state(&counter, std::time::Duration::from_secs(1)).await?;
/// assert_eq!(shown, "count = 5");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// - [`GetStateError::Call`] when the server does not answer, as a call would fail.
/// - [`GetStateError::NotShown`] when the server does not implement `format_status`.
/// - [`GetStateError::FormatPanicked`] when `format_status` panicked.
pub async fn get_state<S: GenServer>(
    server: &ServerRef<S>,
    timeout: impl Into<Timeout>,
) -> Result<String, GetStateError> {
    match server.format_status(timeout.into()).await? {
        Ok(Some(shown)) => Ok(shown),
        Ok(None) => Err(GetStateError::NotShown),
        Err(panic) => Err(GetStateError::FormatPanicked(panic)),
    }
}
