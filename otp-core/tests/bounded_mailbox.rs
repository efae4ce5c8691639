//! Bounded mailboxes (`StartOptions::mailbox_capacity`): calls, casts and info messages are
//! admitted only while there is room; `cast`/`send` give the message back as `Full`,
//! `cast_wait` and calls wait (in the order they asked, calls within their timeout); a dropped
//! wait takes no room; senders waiting on a server that exits are told; what the runtime
//! delivers (stops, `Down`s, exit signals, timers, stream items) is never held back and takes
//! no room; the default stays unbounded.

mod support;

use std::num::NonZeroUsize;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::poll;
use otp_core::gen_server::{
    BoxError, CallError, CallResult, Caller, Context, GenServer, Init, SendError, StartOptions,
};
use otp_core::link::Exit;
use otp_core::name::Name;
use otp_core::testing::EventLog;
use otp_core::{ExitReason, Pid, ServerRef};
use tokio::sync::{Semaphore, mpsc};

use support::WAIT;

/// A server whose `Work` messages each wait for a permit of `gate` once taken, logging
/// `taken(n)` as the handler starts and `cast(n)` / `info(n)` / `call(n)` when it is done.
struct Gated {
    log: EventLog,
    gate: Arc<Semaphore>,
}

struct GatedArgs {
    log: EventLog,
    gate: Arc<Semaphore>,
    /// Items of a stream attached in `init`, logged as `item(n)`.
    stream: Option<mpsc::UnboundedReceiver<u32>>,
}

#[derive(Debug, PartialEq)]
enum Cast {
    Work(u32),
    /// `cast_wait`s to itself until its own mailbox is full; logs `self_full_after(n)`.
    FloodSelf,
}

#[derive(Debug, PartialEq)]
enum Info {
    Work(u32),
    Down(ExitReason),
    Exit(ExitReason),
    Tick,
    Item(u32),
    Ended,
    /// A supervised task's result.
    Task(u32),
}

enum Call {
    Work(u32),
    Monitor(Pid),
    Link(Pid),
    TickIn(Duration),
}

impl Gated {
    async fn work(&self, kind: &str, n: u32) {
        self.log.push(format!("taken({n})"));
        self.gate
            .acquire()
            .await
            .expect("the gate is open")
            .forget();
        self.log.push(format!("{kind}({n})"));
    }
}

impl GenServer for Gated {
    type Args = GatedArgs;
    type Call = Call;
    type Reply = u32;
    type Cast = Cast;
    type Info = Info;
    type Continue = ();

    async fn init(args: GatedArgs, ctx: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        ctx.trap_exits(|exit: Exit| Info::Exit(exit.reason));
        if let Some(mut items) = args.stream {
            let items = futures::stream::poll_fn(move |cx| items.poll_recv(cx));
            ctx.attach_stream(items, |event| match event {
                otp_core::stream::StreamEvent::Item(n) => Info::Item(n),
                otp_core::stream::StreamEvent::Ended => Info::Ended,
            });
        }
        Ok(Init::Ready(Gated {
            log: args.log,
            gate: args.gate,
        }))
    }

    async fn handle_call(
        &mut self,
        request: Call,
        _: Caller<'_, u32>,
        ctx: &mut Context<Self>,
    ) -> Result<CallResult<u32>, BoxError> {
        match request {
            Call::Work(n) => {
                self.work("call", n).await;
                Ok(CallResult::Reply(n))
            }
            Call::Monitor(pid) => {
                ctx.monitor(pid, |down| Info::Down(down.reason));
                Ok(CallResult::Reply(0))
            }
            Call::Link(pid) => {
                otp_core::link::link(pid)?;
                Ok(CallResult::Reply(0))
            }
            Call::TickIn(after) => {
                ctx.send_after(after, Info::Tick)?;
                Ok(CallResult::Reply(0))
            }
        }
    }

    async fn handle_cast(
        &mut self,
        message: Cast,
        ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        match message {
            Cast::Work(n) => self.work("cast", n).await,
            Cast::FloodSelf => {
                let me = ctx.server_ref();
                let mut sent = 0;
                while me.cast_wait(Cast::Work(100 + sent)).await.is_ok() {
                    sent += 1;
                }
                self.log.push(format!("self_full_after({sent})"));
            }
        }
        Ok(())
    }

    async fn handle_info(&mut self, info: Info, _: &mut Context<Self>) -> Result<(), BoxError> {
        match info {
            Info::Work(n) => self.work("info", n).await,
            Info::Down(reason) => self.log.push(format!("down({reason})")),
            Info::Exit(reason) => self.log.push(format!("exit({reason})")),
            Info::Tick => self.log.push("tick"),
            Info::Item(n) => self.log.push(format!("item({n})")),
            Info::Ended => self.log.push("ended"),
            Info::Task(n) => self.log.push(format!("task({n})")),
        }
        Ok(())
    }

    async fn terminate(&mut self, reason: &ExitReason, _: &mut Context<Self>) {
        self.log.push(format!("terminate({reason})"));
    }
}

fn capacity(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).expect("a capacity above zero")
}

struct Fixture {
    server: ServerRef<Gated>,
    log: EventLog,
    gate: Arc<Semaphore>,
}

async fn start(capacity: Option<NonZeroUsize>) -> Fixture {
    start_with_stream(capacity, None).await
}

async fn start_with_stream(
    capacity: Option<NonZeroUsize>,
    stream: Option<mpsc::UnboundedReceiver<u32>>,
) -> Fixture {
    let log = EventLog::new();
    let gate = Arc::new(Semaphore::new(0));
    let mut options = StartOptions::new();
    if let Some(capacity) = capacity {
        options = options.mailbox_capacity(capacity);
    }
    let args = GatedArgs {
        log: log.clone(),
        gate: gate.clone(),
        stream,
    };
    let server = Gated::start_with(args, options).await.expect("start");
    Fixture { server, log, gate }
}

impl Fixture {
    /// Blocks the server in the handler of `Work(0)`, then fills its `capacity` slots with
    /// `Work(1..=capacity)`.
    async fn fill(&self, capacity: u32) {
        self.server.cast(Cast::Work(0)).expect("room for the first");
        self.log.wait_for("taken(0)", WAIT).await;
        for n in 1..=capacity {
            self.server.cast(Cast::Work(n)).expect("room");
        }
        assert!(
            matches!(self.server.cast(Cast::Work(999)), Err(SendError::Full(_))),
            "the mailbox is full after {capacity} messages"
        );
    }

    /// Checks that an idle server of capacity 1 has exactly one slot: it takes `Work(n)` and
    /// blocks, `Work(n + 1)` waits in the slot, `Work(n + 2)` is refused; then lets both through.
    async fn assert_exactly_one_slot(&self, n: u32) {
        self.server.cast(Cast::Work(n)).unwrap();
        self.log.wait_for(&format!("taken({n})"), WAIT).await;
        self.server.cast(Cast::Work(n + 1)).unwrap();
        assert!(matches!(
            self.server.cast(Cast::Work(n + 2)),
            Err(SendError::Full(_))
        ));
        self.open(2);
        self.log.wait_for(&format!("cast({})", n + 1), WAIT).await;
    }

    /// Lets `n` gated messages through.
    fn open(&self, n: usize) {
        self.gate.add_permits(n);
    }

    fn handled(&self) -> Vec<String> {
        self.log
            .events()
            .into_iter()
            .filter(|event| !event.starts_with("taken("))
            .collect()
    }
}

#[tokio::test]
async fn a_full_mailbox_gives_the_message_back_and_counts_casts_infos_and_calls_alike() {
    let f = start(Some(capacity(3))).await;
    f.server.cast(Cast::Work(0)).unwrap();
    f.log.wait_for("taken(0)", WAIT).await;
    // The message being handled takes no room; three more do, whatever their kind.
    f.server.cast(Cast::Work(1)).unwrap();
    f.server.send(Info::Work(2)).unwrap();
    let mut call = pin!(f.server.call(Call::Work(3)));
    assert!(
        poll!(call.as_mut()).is_pending(),
        "the call is sent, not yet answered"
    );

    match f.server.cast(Cast::Work(4)) {
        Err(SendError::Full(message)) => assert_eq!(message, Cast::Work(4)),
        other => panic!("expected Full with the message back, got {other:?}"),
    }
    let full = f.server.send(Info::Work(5)).unwrap_err();
    assert!(matches!(full, SendError::Full(_)));
    assert_eq!(full.into_inner(), Info::Work(5));
    assert_eq!(full_message_text(), "mailbox full");

    f.open(4);
    assert_eq!(call.await, Ok(3));
    assert_eq!(f.handled(), ["cast(0)", "cast(1)", "info(2)", "call(3)"]);
    // Room again once the server has caught up.
    f.server.cast(Cast::Work(6)).unwrap();
    f.open(1);
    f.log.wait_for("cast(6)", WAIT).await;
    assert_eq!(f.log.count("cast(4)") + f.log.count("info(5)"), 0);
}

fn full_message_text() -> String {
    SendError::Full(()).to_string()
}

#[tokio::test]
async fn an_unbounded_mailbox_never_fills() {
    let f = start(None).await;
    f.server.cast(Cast::Work(0)).unwrap();
    f.log.wait_for("taken(0)", WAIT).await;
    for n in 1..=10_000 {
        f.server
            .cast(Cast::Work(n))
            .expect("an unbounded mailbox takes everything");
    }
    f.open(10_001);
    f.log.wait_for("cast(10000)", WAIT).await;
    assert_eq!(f.handled().len(), 10_001);
}

#[tokio::test]
async fn cast_wait_waits_for_room_and_keeps_the_senders_order() {
    let f = start(Some(capacity(1))).await;
    f.fill(1).await;
    let mut second = pin!(f.server.cast_wait(Cast::Work(2)));
    assert!(
        poll!(second.as_mut()).is_pending(),
        "waits while the mailbox is full"
    );
    f.open(1);
    second.await.expect("room once the server takes Work(1)");
    f.open(3);
    f.server.cast_wait(Cast::Work(3)).await.expect("room");
    f.log.wait_for("cast(3)", WAIT).await;
    assert_eq!(f.handled(), ["cast(0)", "cast(1)", "cast(2)", "cast(3)"]);
}

#[tokio::test]
async fn waiting_senders_get_room_in_the_order_they_asked() {
    let f = start(Some(capacity(1))).await;
    f.fill(1).await;
    let mut first = pin!(f.server.cast_wait(Cast::Work(10)));
    let mut second = pin!(f.server.cast_wait(Cast::Work(20)));
    assert!(poll!(first.as_mut()).is_pending());
    assert!(poll!(second.as_mut()).is_pending());
    // One slot frees (the server takes Work(1)): it is the first waiter's, even though the
    // second is polled first.
    f.open(1);
    f.log.wait_for("taken(1)", WAIT).await;
    assert!(
        poll!(second.as_mut()).is_pending(),
        "the second still waits"
    );
    assert!(poll!(first.as_mut()).is_ready(), "the first has the slot");
    f.open(3);
    second.await.expect("room");
    f.log.wait_for("cast(20)", WAIT).await;
    assert_eq!(f.handled(), ["cast(0)", "cast(1)", "cast(10)", "cast(20)"]);
}

#[tokio::test]
async fn a_dropped_cast_wait_sends_nothing_and_leaves_the_capacity_as_it_was() {
    let f = start(Some(capacity(1))).await;
    f.fill(1).await;
    {
        let mut abandoned = pin!(f.server.cast_wait(Cast::Work(9)));
        assert!(poll!(abandoned.as_mut()).is_pending());
    }
    f.open(2);
    f.log.wait_for("cast(1)", WAIT).await;
    f.assert_exactly_one_slot(3).await;
    assert_eq!(
        f.log.count("cast(9)"),
        0,
        "the dropped message was never sent"
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_waits_for_room_within_its_timeout_and_is_not_sent_when_it_expires() {
    let f = start(Some(capacity(1))).await;
    f.fill(1).await;
    let timed_out = f
        .server
        .call_timeout(Call::Work(7), Duration::from_millis(100))
        .await;
    assert_eq!(timed_out, Err(CallError::Timeout));

    let mut admitted = pin!(
        f.server
            .call_timeout(Call::Work(8), Duration::from_secs(60))
    );
    assert!(poll!(admitted.as_mut()).is_pending());
    f.open(3);
    assert_eq!(admitted.await, Ok(8));
    assert_eq!(f.handled(), ["cast(0)", "cast(1)", "call(8)"]);
    assert_eq!(
        f.log.count("call(7)"),
        0,
        "the timed-out call was never sent"
    );
}

#[tokio::test]
async fn senders_waiting_on_a_server_that_exits_are_told_and_get_their_message_back() {
    let f = start(Some(capacity(1))).await;
    f.fill(1).await;
    let mut cast = pin!(f.server.cast_wait(Cast::Work(5)));
    let mut call = pin!(f.server.call(Call::Work(6)));
    assert!(poll!(cast.as_mut()).is_pending());
    assert!(poll!(call.as_mut()).is_pending());
    otp_core::process::exit(f.server.pid(), ExitReason::Killed);
    match cast.await {
        Err(SendError::NoProc(message)) => assert_eq!(message, Cast::Work(5)),
        other => panic!("expected NoProc with the message, got {other:?}"),
    }
    assert_eq!(call.await, Err(CallError::Exited(ExitReason::Killed)));
    assert!(matches!(
        f.server.cast_wait(Cast::Work(7)).await,
        Err(SendError::NoProc(_))
    ));
}

#[tokio::test]
async fn a_stop_is_not_held_back_by_a_full_mailbox_or_by_waiting_senders() {
    let f = start(Some(capacity(1))).await;
    f.fill(1).await;
    let mut waiting = pin!(f.server.cast_wait(Cast::Work(9)));
    assert!(poll!(waiting.as_mut()).is_pending());
    let mut stop = pin!(f.server.stop(ExitReason::Normal, WAIT));
    assert!(
        poll!(stop.as_mut()).is_pending(),
        "the stop request is queued"
    );
    f.open(2);
    let (stopped, _) = tokio::join!(stop, waiting);
    assert_eq!(stopped, Ok(()));
    // The stop was queued behind Work(1) but ahead of the sender that was waiting for room.
    assert_eq!(f.handled(), ["cast(0)", "cast(1)", "terminate(normal)"]);
}

#[tokio::test]
async fn a_full_mailbox_does_not_hold_back_downs_exit_signals_timers_or_stream_items() {
    let (items, stream) = mpsc::unbounded_channel();
    let f = start_with_stream(Some(capacity(1)), Some(stream)).await;
    let (end_watched, watched_ends) = tokio::sync::oneshot::channel::<()>();
    let watched = otp_core::task::start(async move {
        let _ = watched_ends.await;
        Ok(())
    })
    .unwrap();
    let (end_linked, linked_ends) = tokio::sync::oneshot::channel::<()>();
    let linked = otp_core::task::start(async move {
        let _ = linked_ends.await;
        Err("linked task failed".into())
    })
    .unwrap();
    f.server.call(Call::Monitor(watched.pid())).await.unwrap();
    f.server.call(Call::Link(linked.pid())).await.unwrap();
    f.server
        .call(Call::TickIn(Duration::from_millis(1)))
        .await
        .unwrap();

    f.fill(1).await;
    // While the mailbox is full: a monitored process exits, a linked one fails, the timer is
    // due, and the stream has an item.
    end_watched.send(()).unwrap();
    end_linked.send(()).unwrap();
    items.send(1).unwrap();
    otp_core::testing::await_down(watched.pid(), WAIT).await;
    otp_core::testing::await_down(linked.pid(), WAIT).await;

    f.open(2);
    for event in ["down(normal)", "tick", "item(1)"] {
        f.log.wait_for(event, WAIT).await;
    }
    f.log
        .wait_until(|events| events.iter().any(|e| e.starts_with("exit(")), WAIT)
        .await
        .expect("the exit signal arrives as a message");
    // None of them took room: the capacity is exactly one slot still.
    f.log.wait_for("cast(1)", WAIT).await;
    f.assert_exactly_one_slot(50).await;
}

#[tokio::test]
async fn a_server_that_fills_its_own_mailbox_is_told_at_once_instead_of_waiting_forever() {
    let f = start(Some(capacity(2))).await;
    f.server.cast(Cast::FloodSelf).unwrap();
    f.log.wait_for("self_full_after(2)", WAIT).await;
    f.open(2);
    f.log.wait_for("cast(101)", WAIT).await;
}

#[tokio::test]
async fn a_name_forwards_full_and_waits_for_room() {
    let f = start(Some(capacity(1))).await;
    let name: Name<ServerRef<Gated>> = Name::new("gated");
    name.register(&f.server).unwrap();
    f.fill(1).await;
    assert!(matches!(name.cast(Cast::Work(2)), Err(SendError::Full(_))));
    let mut waiting = pin!(name.cast_wait(Cast::Work(3)));
    assert!(poll!(waiting.as_mut()).is_pending());
    f.open(3);
    waiting.await.expect("room");
    f.log.wait_for("cast(3)", WAIT).await;
}

#[tokio::test]
async fn a_capacity_past_what_a_semaphore_holds_is_unbounded_in_practice() {
    let f = start(Some(NonZeroUsize::MAX)).await;
    for n in 0..1_000 {
        f.server.cast(Cast::Work(n)).unwrap();
    }
    f.open(1_000);
    f.log.wait_for("cast(999)", WAIT).await;
}

#[tokio::test]
async fn a_supervised_tasks_result_is_delivered_into_a_full_mailbox_and_takes_no_room() {
    let f = start(Some(capacity(1))).await;
    f.fill(1).await;
    let tasks = otp_core::task_supervisor::TaskSupervisor::start()
        .await
        .unwrap();
    let task = tasks
        .async_nolink_to(&f.server, async { 7 }, |result| {
            Info::Task(result.expect("the task returns"))
        })
        .await
        .unwrap();
    otp_core::testing::await_down(task, WAIT).await;
    f.open(2);
    f.log.wait_for("task(7)", WAIT).await;
    f.assert_exactly_one_slot(50).await;
}

#[tokio::test]
async fn a_request_whose_builder_panics_takes_no_room() {
    use futures::FutureExt;
    let f = start(Some(capacity(1))).await;
    let panicked = std::panic::AssertUnwindSafe(f.server.request(
        |_: otp_core::gen_server::ReplyTo<u32>| -> Call {
            panic!("the request could not be built")
        },
    ))
    .catch_unwind()
    .await;
    assert!(panicked.is_err());
    // The one slot is still free: the server takes Work(0), Work(1) fits, Work(2) does not.
    f.fill(1).await;
    f.open(2);
    f.log.wait_for("cast(1)", WAIT).await;
}
