//! Servers that always have work: one that casts to itself, one that loops through
//! `handle_continue`, one whose interval is always due. Each must still yield its thread, be
//! killable, answer calls and stop on request, as a BEAM process is preempted after its
//! reductions. The current-thread tests run on a runtime of their own, watched from the test's
//! thread, so that a server that never yields fails the test with a message instead of hanging.

mod support;

use std::future::Future;
use std::time::Duration;

use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init};
use otp_core::testing::{EventLog, assert_down};
use otp_core::{ExitReason, ServerRef};
use support::{WAIT, watched};

#[derive(Clone, Copy)]
enum Busy {
    /// Every cast casts the next one.
    SelfCast,
    /// Every continue asks for the next one.
    Continue,
    /// A 1 ns interval: a tick is due whenever the server looks.
    Interval,
}

struct BusyServer {
    log: EventLog,
    rounds: u64,
}

impl GenServer for BusyServer {
    type Args = (Busy, EventLog);
    type Call = ();
    type Reply = u64;
    type Cast = ();
    type Info = ();
    type Continue = ();

    async fn init(
        (busy, log): Self::Args,
        ctx: &mut Context<Self>,
    ) -> Result<Init<Self>, BoxError> {
        match busy {
            Busy::SelfCast => ctx.server_ref().cast(()).map_err(|_| "mailbox closed")?,
            Busy::Continue => ctx.continue_with(()),
            Busy::Interval => {
                ctx.send_interval(Duration::from_nanos(1), ())?;
            }
        }
        Ok(Init::Ready(BusyServer { log, rounds: 0 }))
    }

    async fn handle_cast(&mut self, (): (), ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.rounds += 1;
        ctx.server_ref().cast(()).map_err(|_| "mailbox closed")?;
        Ok(())
    }

    async fn handle_continue(&mut self, (): (), ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.rounds += 1;
        ctx.continue_with(());
        Ok(())
    }

    async fn handle_info(&mut self, (): (), _: &mut Context<Self>) -> Result<(), BoxError> {
        self.rounds += 1;
        Ok(())
    }

    async fn handle_call(
        &mut self,
        (): (),
        _: Caller<'_, u64>,
        _: &mut Context<Self>,
    ) -> Result<CallResult<u64>, BoxError> {
        Ok(CallResult::Reply(self.rounds))
    }

    async fn terminate(&mut self, reason: &ExitReason, _: &mut Context<Self>) {
        self.log.push(format!("terminate({reason})"));
    }
}

async fn start(busy: Busy, log: &EventLog) -> ServerRef<BusyServer> {
    BusyServer::start((busy, log.clone())).await.unwrap()
}

/// Runs `test` on a current-thread runtime.
fn on_one_thread<F>(test: impl FnOnce() -> F + Send + 'static)
where
    F: Future<Output = ()>,
{
    watched(
        tokio::runtime::Builder::new_current_thread(),
        "the runtime froze: a busy server never yielded its thread",
        test,
    );
}

/// Runs `test` on a runtime with two worker threads.
fn on_two_threads<F>(test: impl FnOnce() -> F + Send + 'static)
where
    F: Future<Output = ()>,
{
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2);
    watched(
        builder,
        "the runtime froze: a busy server never yielded its thread",
        test,
    );
}

/// Other tasks and the runtime's timers still run beside the busy server. The timer is what is
/// tested here (a server that never yielded stalled the timer wheel), not a way to wait: an
/// interval's second tick, due 5 ms after its first, must come within `WAIT`.
async fn the_runtime_still_runs() {
    let mut ticks = tokio::time::interval(Duration::from_millis(5));
    ticks.tick().await;
    tokio::time::timeout(WAIT, ticks.tick())
        .await
        .expect("a 5 ms timer did not fire within 5 s beside a busy server");
    tokio::time::timeout(WAIT, tokio::task::yield_now())
        .await
        .expect("yield_now did not return beside a busy server");
}

async fn kill_and_confirm(server: &ServerRef<BusyServer>) {
    let down = server.monitor();
    assert!(otp_core::process::exit(server.pid(), ExitReason::Killed));
    assert_down(down, ExitReason::Killed, WAIT).await;
}

// OTP: the BEAM preempts a process after its reductions; a self-casting server yields
#[test]
fn a_server_that_casts_to_itself_yields_and_can_be_killed_on_one_thread() {
    on_one_thread(|| async {
        let log = EventLog::new();
        let server = start(Busy::SelfCast, &log).await;
        the_runtime_still_runs().await;
        kill_and_confirm(&server).await;
    });
}

#[test]
fn a_server_that_casts_to_itself_answers_calls_and_stops_on_request_on_one_thread() {
    on_one_thread(|| async {
        let log = EventLog::new();
        let server = start(Busy::SelfCast, &log).await;
        // The call and the stop each queue behind one pending self-cast.
        let first = server.call(()).await.unwrap();
        assert!(server.call(()).await.unwrap() > first);
        server.stop(ExitReason::Normal, WAIT).await.unwrap();
        assert_eq!(log.events(), ["terminate(normal)"]);
    });
}

#[test]
fn a_server_that_casts_to_itself_can_be_killed_on_a_multi_thread_runtime() {
    on_two_threads(|| async {
        let log = EventLog::new();
        let server = start(Busy::SelfCast, &log).await;
        the_runtime_still_runs().await;
        kill_and_confirm(&server).await;
    });
}

// OTP: a handle_continue loop is preempted like any other process
#[test]
fn a_handle_continue_loop_yields_and_can_be_killed_on_one_thread() {
    on_one_thread(|| async {
        let log = EventLog::new();
        let server = start(Busy::Continue, &log).await;
        the_runtime_still_runs().await;
        kill_and_confirm(&server).await;
        assert_eq!(log.events(), Vec::<String>::new());
    });
}

// Beyond OTP (Erlang would wait for the chain to end): a stop request ends a continue chain
#[test]
fn a_handle_continue_loop_can_be_stopped_on_one_thread() {
    on_one_thread(|| async {
        let log = EventLog::new();
        let server = start(Busy::Continue, &log).await;
        server
            .stop(ExitReason::Normal, Duration::from_millis(500))
            .await
            .unwrap();
        assert_eq!(log.events(), ["terminate(normal)"]);
    });
}

#[test]
fn a_handle_continue_loop_can_be_stopped_on_a_multi_thread_runtime() {
    on_two_threads(|| async {
        let log = EventLog::new();
        let server = start(Busy::Continue, &log).await;
        server
            .stop(ExitReason::Shutdown, Duration::from_millis(500))
            .await
            .unwrap();
        assert_eq!(log.events(), ["terminate(shutdown)"]);
    });
}

// A stop request ends a continue chain, but it is still in-band: a call queued before it is
// answered first, then terminate runs (it used to be taken out of order, failing the call)
#[test]
fn a_stop_ends_a_continue_chain_after_the_messages_queued_before_it() {
    on_one_thread(|| async {
        let log = EventLog::new();
        let server = start(Busy::Continue, &log).await;
        let (answered, stopped) = tokio::join!(
            server.call(()),
            server.stop(ExitReason::Normal, Duration::from_millis(500))
        );
        assert!(answered.is_ok(), "{answered:?}");
        assert_eq!(stopped, Ok(()));
        assert_eq!(log.events(), ["terminate(normal)"]);
    });
}

// OTP: a timer's message queues behind the mailbox, so an always-due interval starves nothing
#[test]
fn an_interval_that_is_always_due_does_not_starve_calls_or_stop_on_one_thread() {
    on_one_thread(|| async {
        let log = EventLog::new();
        let server = start(Busy::Interval, &log).await;
        the_runtime_still_runs().await;
        let first = tokio::time::timeout(WAIT, server.call(()))
            .await
            .expect("a call starved behind an always-due interval")
            .unwrap();
        let second = server.call(()).await.unwrap();
        assert!(second > first, "ticks are handled between calls");
        server
            .stop(ExitReason::Normal, Duration::from_millis(500))
            .await
            .unwrap();
        assert_eq!(log.events(), ["terminate(normal)"]);
    });
}

#[test]
fn an_interval_that_is_always_due_can_be_killed_on_one_thread() {
    on_one_thread(|| async {
        let log = EventLog::new();
        let server = start(Busy::Interval, &log).await;
        kill_and_confirm(&server).await;
    });
}
