//! Streams into a server: a [`Stream`] (a socket's frames, a channel, a file's
//! lines) whose items arrive in the server's `handle_info`, one at a time, with the mail.
//!
//! Mirrors what an Erlang process gets from a socket in active mode (`{active, once}`): the data
//! arrives as messages in its mailbox, read from the socket only when the process asks for the
//! next one. Kameo calls the same thing `attach_stream`.
//!
//! | Erlang / kameo | otp-core, inside a callback |
//! |---|---|
//! | `inet:setopts(Socket, [{active, once}])`, then `{tcp, Socket, Data}` messages | [`ctx.attach_stream(stream, map)`](crate::gen_server::Context::attach_stream), then `map(StreamEvent::Item(data))` in `handle_info` |
//! | `{tcp_closed, Socket}` | `map(StreamEvent::Ended)`, the last message of the stream |
//! | `inet:setopts(Socket, [{active, false}])` | [`ctx.detach_stream(stream_ref)`](crate::gen_server::Context::detach_stream) |
//! | `actor_ref.attach_stream(stream, …)` (kameo) | the same, from the server itself |
//!
//! # What is guaranteed
//!
//! - **Backpressure.** The server's own receive loop polls the stream, and only when it has
//!   handled every message it had taken from its mailbox. No item is read ahead: a server busy
//!   in a callback reads nothing, so a socket's data stays in the kernel and its sender slows
//!   down, and a bounded channel's sender waits.
//! - **In order with the mailbox.** A stream's items are handled in the stream's order. An item
//!   read from the stream is handled after the messages taken from the mailbox in the same
//!   read, so neither starves the other: a busy mailbox does not keep a stream from being
//!   read, and a stream that always has an item ready does not keep calls, casts or a stop
//!   request from being handled.
//! - **A final message.** When the stream ends, `map(StreamEvent::Ended)` is delivered after
//!   its last item, and the stream is dropped.
//! - **It dies with the server.** The stream is owned by the server's process: when the server
//!   exits (however: a stop, a crash, a kill), the stream is dropped with it, and a socket it
//!   wraps is closed.
//! - **A panic is the server's crash.** A panic in the stream's `poll_next` or in `map` runs in
//!   the server's process, and the server exits with [`ExitReason::Panic`](crate::ExitReason),
//!   after `terminate`, as for any callback.
//!
//! # Differences from Erlang
//!
//! - An item already read when [`detach_stream`](crate::gen_server::Context::detach_stream) is
//!   called (at most one, queued behind the mail taken with it) is still delivered, as data
//!   already in the mailbox is after a socket goes passive. `Ended` is not delivered after a
//!   detach.
//! - Items are read by the server itself, not pushed to it by a port, so an item arrives only
//!   when the server asks: there is no `{active, true}` mode that fills the mailbox.
//!
//! ```
//! use std::convert::Infallible;
//! use otp_core::gen_server::{BoxError, Context, GenServer, Init};
//! use otp_core::stream::StreamEvent;
//!
//! /// Sums the numbers of a stream, then stops.
//! struct Summer { sum: u64, done: Option<tokio::sync::oneshot::Sender<u64>> }
//!
//! enum Info { Number(u64), End }
//!
//! impl GenServer for Summer {
//!     type Args = tokio::sync::oneshot::Sender<u64>;
//!     type Call = Infallible;
//!     type Reply = Infallible;
//!     type Cast = Infallible;
//!     type Info = Info;
//!     type Continue = ();
//!
//!     async fn init(done: Self::Args, ctx: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
//!         let numbers = futures::stream::iter(1..=10);
//!         ctx.attach_stream(numbers, |event| match event {
//!             StreamEvent::Item(n) => Info::Number(n),
//!             StreamEvent::Ended => Info::End,
//!         });
//!         Ok(Init::Ready(Summer { sum: 0, done: Some(done) }))
//!     }
//!
//!     async fn handle_info(&mut self, info: Info, ctx: &mut Context<Self>) -> Result<(), BoxError> {
//!         match info {
//!             Info::Number(n) => self.sum += n,
//!             Info::End => {
//!                 let _ = self.done.take().map(|done| done.send(self.sum));
//!                 ctx.stop(otp_core::ExitReason::Normal);
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (done, sum) = tokio::sync::oneshot::channel();
//! Summer::start(done).await?;
//! assert_eq!(sum.await?, 55);
//! # Ok(())
//! # }
//! ```

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};

use futures::Stream;

use crate::ExitReason;
use crate::process::panic_message;

/// What an attached stream delivers to the function that maps it to the server's info type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent<T> {
    /// The stream's next item.
    Item(T),
    /// The stream has ended; nothing follows.
    Ended,
}

/// Identifies a stream attached with
/// [`attach_stream`](crate::gen_server::Context::attach_stream), to detach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamRef {
    id: u64,
}

/// Unique in the program, as timer ids are: a `StreamRef` from another server never detaches
/// one of this server's streams.
static NEXT_STREAM_ID: AtomicU64 = AtomicU64::new(1);

/// A stream with its mapping, the item type erased.
trait Source<I>: Send {
    /// The next mapped event, and whether it was the last.
    fn poll_event(&mut self, cx: &mut TaskContext<'_>) -> Poll<(I, bool)>;
}

struct Mapped<St, F> {
    stream: Pin<Box<St>>,
    map: F,
}

impl<St, F, I> Source<I> for Mapped<St, F>
where
    St: Stream + Send,
    F: FnMut(StreamEvent<St::Item>) -> I + Send,
{
    fn poll_event(&mut self, cx: &mut TaskContext<'_>) -> Poll<(I, bool)> {
        match self.stream.as_mut().poll_next(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(((self.map)(StreamEvent::Item(item)), false)),
            Poll::Ready(None) => Poll::Ready(((self.map)(StreamEvent::Ended), true)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// One server's attached streams, polled by its receive loop.
pub(crate) struct Streams<I> {
    attached: Vec<(u64, Box<dyn Source<I>>)>,
}

impl<I> Streams<I> {
    pub(crate) fn new() -> Streams<I> {
        Streams {
            attached: Vec::new(),
        }
    }

    pub(crate) fn attach<St, F>(&mut self, stream: St, map: F) -> StreamRef
    where
        St: Stream + Send + 'static,
        F: FnMut(StreamEvent<St::Item>) -> I + Send + 'static,
        I: 'static,
    {
        let id = NEXT_STREAM_ID.fetch_add(1, Ordering::Relaxed);
        let source = Mapped {
            stream: Box::pin(stream),
            map,
        };
        self.attached.push((id, Box::new(source)));
        StreamRef { id }
    }

    /// Drops the stream; returns whether it was attached.
    pub(crate) fn detach(&mut self, stream: StreamRef) -> bool {
        let before = self.attached.len();
        self.attached.retain(|(id, _)| *id != stream.id);
        self.attached.len() != before
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.attached.is_empty()
    }

    /// Polls every stream once, in the order attached, and passes each ready event to `deliver`;
    /// an ended stream is dropped after its `Ended`. Returns whether anything was delivered.
    ///
    /// # Errors
    ///
    /// A panic in a stream or its mapping is returned as the server's exit reason, and that
    /// stream is dropped.
    pub(crate) fn poll_each(
        &mut self,
        cx: &mut TaskContext<'_>,
        mut deliver: impl FnMut(I),
    ) -> Result<bool, ExitReason> {
        let mut delivered = false;
        let mut index = 0;
        while let Some((_, source)) = self.attached.get_mut(index) {
            match std::panic::catch_unwind(AssertUnwindSafe(|| source.poll_event(cx))) {
                Ok(Poll::Ready((event, ended))) => {
                    deliver(event);
                    delivered = true;
                    if ended {
                        self.attached.remove(index);
                        continue;
                    }
                }
                Ok(Poll::Pending) => {}
                Err(payload) => {
                    self.attached.remove(index);
                    return Err(ExitReason::Panic(panic_message(&*payload)));
                }
            }
            index += 1;
        }
        Ok(delivered)
    }
}
