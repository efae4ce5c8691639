//! The mailbox: a FIFO queue with one receiver, unbounded unless asked, and why it is built
//! this way.
//!
//! # Why not `tokio::sync::mpsc`
//!
//! A tokio channel allocates its first block of 32 slots when it is created, whether or not a
//! message is ever sent: with a 64-byte envelope that is 2 KiB per idle process, more than the
//! whole per-process budget (≤ 800 bytes per idle server). This mailbox is a `VecDeque` behind a
//! `parking_lot::Mutex` plus the receiver's waker, so an idle mailbox costs about 64 bytes and
//! allocates nothing until the first message.
//!
//! # Unbounded by default, bounded on request
//!
//! Erlang mailboxes are unbounded and a `cast` never blocks; back-pressure in OTP comes from
//! `call`, which waits for the reply. otp-core keeps that model by default. A mailbox made with
//! [`Mailbox::bounded`] also has *room*: a `tokio::sync::Semaphore` with one permit per free
//! slot. A sender [admits](Mailbox::admit) a message (takes a permit) before it sends it, and the
//! receiver [frees the slot](Mailbox::free_slot) when it takes that message out to handle it, so
//! at most `capacity` admitted messages wait, counting those already taken into the receiver's
//! batch. Messages that are not admitted (the runtime's own: stop requests, `Down`s, exit
//! signals) are never held back by a full mailbox. The semaphore is boxed, so an unbounded
//! mailbox pays one pointer for the option; it is tokio's, not hand-written, and fair: senders
//! waiting for room get it in the order they asked.
//!
//! # Invariants
//!
//! - Messages from one sender are received in the order sent: each `send` pushes under the lock.
//! - The receiver takes the whole queue in one lock acquisition ([`Mailbox::poll_take`]) and works
//!   through that batch without touching the lock, so a busy receiver and a busy sender contend
//!   once per batch, not once per message.
//! - A waker is stored only while the receiver is waiting, and a sender takes it out under the
//!   lock, so each wait ends with exactly one wake-up.
//! - Once [`Mailbox::close`] has run, every `send` fails and gives the message back; whatever was
//!   queued is handed to the closer to drop *after* the exit reason has been published, so callers
//!   whose request was dropped can read why. Senders waiting for room wake and fail.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::task::{Context, Poll, Waker};

use tokio::sync::{Semaphore, TryAcquireError};

use crate::sync::Mutex;

pub(crate) struct Mailbox<M> {
    inner: Mutex<Inner<M>>,
    /// One permit per free slot, for a bounded mailbox (see the module docs).
    room: Option<Box<Semaphore>>,
}

/// What [`Mailbox::state`] saw.
pub(crate) struct MailboxState {
    /// Messages queued and not yet taken by the receiver.
    pub(crate) queued: usize,
    /// Whether the receiver is waiting for a message: its waker is stored (see the module
    /// invariants), which it is only while it has nothing to handle.
    pub(crate) receiver_waiting: bool,
}

/// Why a message could not be admitted at once.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotAdmitted {
    /// Every slot of a bounded mailbox is taken.
    Full,
    /// The mailbox is closed.
    Closed,
}

struct Inner<M> {
    queue: VecDeque<M>,
    waker: Option<Waker>,
    closed: bool,
    /// Whether a message sent with [`Mailbox::send_stop_request`] has been queued (it may have
    /// been taken since): lets a receiver that is not reading its mailbox (a server in a chain
    /// of `handle_continue`s) notice a stop request with one lock, without scanning the queue.
    stop_requested: bool,
}

impl<M> Mailbox<M> {
    pub(crate) fn new() -> Mailbox<M> {
        Mailbox {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                waker: None,
                closed: false,
                stop_requested: false,
            }),
            room: None,
        }
    }

    /// A mailbox in which at most `capacity` admitted messages wait.
    pub(crate) fn bounded(capacity: NonZeroUsize) -> Mailbox<M> {
        // A capacity past the semaphore's limit (2^61 permits on 64-bit) is unbounded in
        // practice; clamping beats a panic.
        let permits = capacity.get().min(Semaphore::MAX_PERMITS);
        Mailbox {
            room: Some(Box::new(Semaphore::new(permits))),
            ..Mailbox::new()
        }
    }

    /// Whether this mailbox has a capacity.
    pub(crate) fn is_bounded(&self) -> bool {
        self.room.is_some()
    }

    /// Takes a slot for one message if there is one free (always, when unbounded).
    pub(crate) fn try_admit(&self) -> Result<(), NotAdmitted> {
        let Some(room) = &self.room else {
            return Ok(());
        };
        match room.try_acquire() {
            // The slot is given back by `free_slot`, when the message is taken out to be handled.
            Ok(permit) => {
                permit.forget();
                Ok(())
            }
            Err(TryAcquireError::NoPermits) => Err(NotAdmitted::Full),
            Err(TryAcquireError::Closed) => Err(NotAdmitted::Closed),
        }
    }

    /// Waits for a free slot and takes it (at once, when unbounded). Cancel safe: a wait
    /// dropped before it finished takes no slot.
    ///
    /// # Errors
    ///
    /// [`NotAdmitted::Closed`] if the mailbox is closed before a slot frees up.
    pub(crate) async fn admit(&self) -> Result<(), NotAdmitted> {
        let Some(room) = &self.room else {
            return Ok(());
        };
        match room.acquire().await {
            Ok(permit) => {
                permit.forget();
                Ok(())
            }
            Err(_) => Err(NotAdmitted::Closed),
        }
    }

    /// Frees the slot of an admitted message the receiver has just taken out to handle.
    pub(crate) fn free_slot(&self) {
        if let Some(room) = &self.room {
            room.add_permits(1);
        }
    }

    /// Appends a message, or gives it back if the mailbox is closed.
    pub(crate) fn send(&self, message: M) -> Result<(), M> {
        self.send_as(message, |message| message)
    }

    /// Appends `wrap(message)`, or gives `message` back unwrapped if the mailbox is closed.
    pub(crate) fn send_as<T>(&self, message: T, wrap: impl FnOnce(T) -> M) -> Result<(), T> {
        self.push(message, wrap, false)
    }

    /// Appends a stop request, and marks the mailbox as holding one (see
    /// [`stop_requested`](Self::stop_requested)).
    pub(crate) fn send_stop_request(&self, message: M) -> Result<(), M> {
        self.push(message, |message| message, true)
    }

    fn push<T>(&self, message: T, wrap: impl FnOnce(T) -> M, stop: bool) -> Result<(), T> {
        let waker = {
            let mut inner = self.inner.lock();
            if inner.closed {
                return Err(message);
            }
            inner.queue.push_back(wrap(message));
            inner.stop_requested |= stop;
            inner.waker.take()
        };
        // Wake outside the lock so the receiver does not wake up only to block on it.
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Moves every queued message into `batch` (which must be empty), or registers the waker.
    ///
    /// Swapping the two deques keeps both allocations alive, so a steady stream of messages
    /// does not allocate at all.
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>, batch: &mut VecDeque<M>) -> Poll<()> {
        debug_assert!(batch.is_empty());
        let mut inner = self.inner.lock();
        if inner.queue.is_empty() {
            match &inner.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => inner.waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        std::mem::swap(&mut inner.queue, batch);
        Poll::Ready(())
    }

    /// Moves every queued message to the end of `batch`, without waiting. The receiver has
    /// work now, so a waker it left while it waited is dropped (for [`state`](Self::state)).
    pub(crate) fn append_to(&self, batch: &mut VecDeque<M>) {
        let mut inner = self.inner.lock();
        batch.append(&mut inner.queue);
        inner.waker = None;
    }

    /// How many messages are queued, and whether the receiver waits for one.
    pub(crate) fn state(&self) -> MailboxState {
        let inner = self.inner.lock();
        MailboxState {
            queued: inner.queue.len(),
            receiver_waiting: inner.waker.is_some(),
        }
    }

    /// Whether a stop request was ever sent with [`send_stop_request`](Self::send_stop_request).
    pub(crate) fn stop_requested(&self) -> bool {
        self.inner.lock().stop_requested
    }

    /// Registers `waker` to be woken by the next send, or by [`wake`](Self::wake).
    pub(crate) fn register_waker(&self, waker: &Waker) {
        let mut inner = self.inner.lock();
        match &inner.waker {
            Some(registered) if registered.will_wake(waker) => {}
            _ => inner.waker = Some(waker.clone()),
        }
    }

    /// Forgets a waker registered with [`register_waker`](Self::register_waker).
    pub(crate) fn clear_waker(&self) {
        self.inner.lock().waker = None;
    }

    /// Wakes the registered waker, if any.
    pub(crate) fn wake(&self) {
        let waker = self.inner.lock().waker.take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Closes the mailbox and returns what was still queued, for the caller to drop when it is
    /// safe to do so (see the module invariants).
    pub(crate) fn close(&self) -> VecDeque<M> {
        let mut inner = self.inner.lock();
        inner.closed = true;
        inner.waker = None;
        if let Some(room) = &self.room {
            room.close();
        }
        std::mem::take(&mut inner.queue)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.inner.lock().closed
    }
}

/// Models of the waker hand-off and of close (see `crate::sync` for how to run them).
#[cfg(all(test, otp_loom))]
mod loom_models {
    use std::collections::VecDeque;
    use std::sync::Arc;

    use super::Mailbox;

    // A send racing the receiver's wait: the receiver takes the message at once or is woken
    // for it, never left waiting (the waker is stored and taken under the lock).
    #[test]
    fn loom_a_send_racing_the_receivers_wait_always_wakes_it() {
        loom::model(|| {
            let mailbox = Arc::new(Mailbox::new());
            let sender = mailbox.clone();
            let thread = loom::thread::spawn(move || sender.send(1).unwrap());
            let mut batch = VecDeque::new();
            loom::future::block_on(std::future::poll_fn(|cx| mailbox.poll_take(cx, &mut batch)));
            assert_eq!(batch, [1]);
            thread.join().unwrap();
        });
    }

    // A send racing close: the message is given back to the sender or handed to the closer,
    // exactly one of the two; and after close every send fails.
    #[test]
    fn loom_a_send_racing_close_is_given_back_or_handed_to_the_closer() {
        loom::model(|| {
            let mailbox = Arc::new(Mailbox::new());
            let sender = mailbox.clone();
            let thread = loom::thread::spawn(move || sender.send(1).is_err());
            let queued = mailbox.close();
            let given_back = thread.join().unwrap();
            assert_ne!(given_back, queued.len() == 1);
            assert!(mailbox.send(2).is_err());
        });
    }
}
