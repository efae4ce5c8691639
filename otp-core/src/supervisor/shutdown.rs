//! Stopping children: one by its [`Shutdown`] policy, a static supervisor's all in reverse start
//! order, a dynamic supervisor's all concurrently.
//!
//! # Invariants
//!
//! - A child is "stopped" only once it has exited: every function here returns after the exit
//!   has been published, so a supervisor never moves on while a child still runs (SHD-01).
//! - A graceful request is `Shutdown`, delivered the child's own way (a server's mailbox, a
//!   task's next `.await`); the kill after a timeout reports `Killed` (SHD-02).
//! - Concurrent shutdown uses one timer per distinct timeout, not one per child, so its cost
//!   stays linear in the number of children (SHD-07).
//! - A stop abandoned at any await point (the supervisor running it was killed) kills the
//!   children it had not seen exit yet: a child being stopped lives only in the stop's future,
//!   where the supervisor's own kill path cannot see it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

use super::Shutdown;
use crate::ExitReason;
use crate::monitor::wait_exit;
use crate::process::header::{AnyProcess, ProcessHeader, SharedDelivery};
use crate::process::termination;

/// Stops `process` by `shutdown` and returns its exit reason.
pub(crate) async fn stop_child(process: &dyn AnyProcess, shutdown: Shutdown) -> ExitReason {
    let header = process.header();
    let abandoned = KillIfAbandoned(Some(header));
    let exited = wait_exit(header);
    let reason = match shutdown {
        Shutdown::BrutalKill => {
            header.force_exit(ExitReason::Killed);
            exited.await
        }
        Shutdown::Timeout(limit) => {
            process.request_stop(ExitReason::Shutdown);
            let mut exited = std::pin::pin!(exited);
            match tokio::time::timeout(limit, &mut exited).await {
                Ok(reason) => reason,
                Err(_) => {
                    header.force_exit(ExitReason::Killed);
                    exited.await
                }
            }
        }
        Shutdown::Infinity => {
            process.request_stop(ExitReason::Shutdown);
            exited.await
        }
    };
    abandoned.disarm();
    reason
}

/// Kills the child of a [`stop_child`] dropped before the child exited.
struct KillIfAbandoned<'a>(Option<&'a ProcessHeader>);

impl KillIfAbandoned<'_> {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for KillIfAbandoned<'_> {
    fn drop(&mut self) {
        termination::kill_children(self.0);
    }
}

/// Stops all `children` at once, each by its own policy; returns when every one has exited.
pub(crate) async fn stop_concurrently(children: Vec<(Arc<dyn AnyProcess>, Shutdown)>) {
    let mut stopping = Stopping {
        unasked: children.into_iter(),
        by_timeout: BTreeMap::new(),
        done: false,
    };
    // Ask everyone first, grouped by timeout, so that the timers run in parallel.
    loop {
        // Yields every so often (tokio's cooperative budget), so that the children asked so far
        // run while their memory is still in this thread's cache, instead of 100k woken tasks
        // piling up in the run queues. Every request still goes out before any waiting starts.
        tokio::task::coop::consume_budget().await;
        let Some((process, shutdown)) = stopping.unasked.next() else {
            break;
        };
        let by_timeout = &mut stopping.by_timeout;
        match shutdown {
            Shutdown::BrutalKill => {
                process.header().force_exit(ExitReason::Killed);
                by_timeout.entry(None).or_default().push(process);
            }
            Shutdown::Timeout(limit) => {
                process.request_stop(ExitReason::Shutdown);
                by_timeout.entry(Some(limit)).or_default().push(process);
            }
            Shutdown::Infinity => {
                process.request_stop(ExitReason::Shutdown);
                by_timeout.entry(None).or_default().push(process);
            }
        }
    }
    let groups = stopping
        .by_timeout
        .iter()
        .map(|(&limit, group)| wait_group(group, limit));
    futures::future::join_all(groups).await;
    stopping.done = true;
}

/// The children of a [`stop_concurrently`]: if it is dropped before they have all exited, they
/// are killed, asked yet or not.
struct Stopping {
    unasked: std::vec::IntoIter<(Arc<dyn AnyProcess>, Shutdown)>,
    by_timeout: BTreeMap<Option<Duration>, Vec<Arc<dyn AnyProcess>>>,
    done: bool,
}

impl Drop for Stopping {
    fn drop(&mut self) {
        if !self.done {
            let asked = self.by_timeout.values().flatten();
            let unasked = self.unasked.as_slice().iter().map(|(process, _)| process);
            termination::kill_children(asked.chain(unasked).map(|process| process.header()));
        }
    }
}

/// Waits for every process of a group; after `limit`, kills the ones left and waits for them.
///
/// Exits are counted down by a monitor on each process, run synchronously in its exit fan-out,
/// and one `Notify` wakes the waiter when the count reaches zero. No future per child: polling
/// 100k per-child futures (`FuturesUnordered`) runs into tokio's cooperative budget, where ready
/// futures keep re-waking themselves, and the cost per child grew with the number of children.
async fn wait_group(group: &[Arc<dyn AnyProcess>], limit: Option<Duration>) {
    let countdown = Arc::new(Countdown {
        remaining: AtomicUsize::new(group.len()),
        done: Notify::new(),
    });
    // One delivery for the whole group: no allocation per child, and none to free on the
    // child's thread when it exits.
    let exited: SharedDelivery = {
        let countdown = countdown.clone();
        Arc::new(move |_| countdown.exited())
    };
    for process in group {
        process.header().add_shared_monitor(&exited);
    }
    match limit {
        None => countdown.wait().await,
        Some(limit) => {
            if tokio::time::timeout(limit, countdown.wait()).await.is_err() {
                for process in group {
                    process.header().force_exit(ExitReason::Killed);
                }
                countdown.wait().await;
            }
        }
    }
}

struct Countdown {
    remaining: AtomicUsize,
    done: Notify,
}

impl Countdown {
    fn exited(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            // `notify_one` keeps a permit if nobody waits yet, so the wake-up is never lost.
            self.done.notify_one();
        }
    }

    async fn wait(&self) {
        if self.remaining.load(Ordering::Acquire) > 0 {
            self.done.notified().await;
        }
    }
}
