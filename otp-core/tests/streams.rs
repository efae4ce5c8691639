//! Streams into a server (`Context::attach_stream`): items in order, then `Ended`; no read-ahead;
//! no starvation between the mailbox and a stream; the stream dies with the server however it
//! exits; a panic in a stream or its mapping is the server's crash; detach.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init};
use otp_core::stream::{StreamEvent, StreamRef};
use otp_core::supervisor::{ChildSpec, SupFlags, Supervisor};
use otp_core::testing::EventLog;
use otp_core::{ExitReason, ServerRef};
use tokio::sync::{Semaphore, oneshot};

use support::WAIT;

/// A server that attaches the streams it is given in `init`, logs every event as
/// `item(<stream>, <n>)` / `ended(<stream>)`, and waits for a permit of `gate` (when set)
/// before it handles each item.
struct Reader {
    log: EventLog,
    gate: Option<Arc<Semaphore>>,
    /// Streams attached in `init`, by label, to detach from a call.
    attached: Vec<(&'static str, StreamRef)>,
    /// Casts to itself this many more times (a mailbox that is always busy).
    self_casts: usize,
}

struct ReaderArgs {
    log: EventLog,
    gate: Option<Arc<Semaphore>>,
    streams: Vec<(&'static str, BoxStream<'static, u64>)>,
    /// Panics in the mapping of this item.
    panic_on: Option<u64>,
}

impl ReaderArgs {
    fn new(log: &EventLog) -> ReaderArgs {
        ReaderArgs {
            log: log.clone(),
            gate: None,
            streams: Vec::new(),
            panic_on: None,
        }
    }

    fn stream(mut self, label: &'static str, stream: BoxStream<'static, u64>) -> ReaderArgs {
        self.streams.push((label, stream));
        self
    }
}

enum Info {
    Item(&'static str, u64),
    Ended(&'static str),
}

enum Call {
    Ping,
    Detach(&'static str),
    /// Detaches a stream ref from another server.
    DetachForeign(StreamRef),
    Attached(&'static str),
}

enum Cast {
    /// Casts to itself `n` times, one after another.
    Spin(usize),
}

impl GenServer for Reader {
    type Args = ReaderArgs;
    type Call = Call;
    type Reply = Option<StreamRef>;
    type Cast = Cast;
    type Info = Info;
    type Continue = ();

    async fn init(args: ReaderArgs, ctx: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        let mut attached = Vec::new();
        for (label, stream) in args.streams {
            let panic_on = args.panic_on;
            let stream_ref = ctx.attach_stream(stream, move |event| match event {
                StreamEvent::Item(n) if Some(n) == panic_on => panic!("mapping item {n}"),
                StreamEvent::Item(n) => Info::Item(label, n),
                StreamEvent::Ended => Info::Ended(label),
            });
            attached.push((label, stream_ref));
        }
        Ok(Init::Ready(Reader {
            log: args.log,
            gate: args.gate,
            attached,
            self_casts: 0,
        }))
    }

    async fn handle_call(
        &mut self,
        call: Call,
        _: Caller<'_, Option<StreamRef>>,
        ctx: &mut Context<Self>,
    ) -> Result<CallResult<Option<StreamRef>>, BoxError> {
        let reply = match call {
            Call::Ping => None,
            Call::Detach(label) => {
                let stream_ref = self.stream_ref(label);
                let detached = ctx.detach_stream(stream_ref);
                self.log.push(format!("detached({label}, {detached})"));
                None
            }
            Call::DetachForeign(stream_ref) => {
                let detached = ctx.detach_stream(stream_ref);
                self.log.push(format!("detached(foreign, {detached})"));
                None
            }
            Call::Attached(label) => Some(self.stream_ref(label)),
        };
        Ok(CallResult::Reply(reply))
    }

    async fn handle_cast(&mut self, cast: Cast, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let Cast::Spin(n) = cast;
        self.self_casts = n;
        if n > 0 {
            ctx.server_ref().cast(Cast::Spin(n - 1)).ok();
        } else {
            self.log.push("spun");
        }
        Ok(())
    }

    async fn handle_info(&mut self, info: Info, _: &mut Context<Self>) -> Result<(), BoxError> {
        match info {
            Info::Item(label, n) => {
                if let Some(gate) = &self.gate {
                    gate.acquire().await?.forget();
                }
                self.log.push(format!("item({label}, {n})"));
            }
            Info::Ended(label) => self.log.push(format!("ended({label})")),
        }
        Ok(())
    }

    async fn terminate(&mut self, reason: &ExitReason, _: &mut Context<Self>) {
        self.log.push(format!("terminate({reason})"));
    }
}

impl Reader {
    fn stream_ref(&self, label: &str) -> StreamRef {
        self.attached
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, stream_ref)| *stream_ref)
            .expect("a stream attached under this label")
    }
}

/// A stream that counts the items taken from it and tells `dropped` when it is dropped.
fn counted(
    items: impl futures::Stream<Item = u64> + Send + 'static,
) -> (
    BoxStream<'static, u64>,
    Arc<AtomicUsize>,
    oneshot::Receiver<()>,
) {
    let pulled = Arc::new(AtomicUsize::new(0));
    let (dropped_tx, dropped) = oneshot::channel::<()>();
    let counter = pulled.clone();
    let stream = items
        .inspect(move |_| {
            // Keeps the sender alive exactly as long as the stream.
            let _ = &dropped_tx;
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .boxed();
    (stream, pulled, dropped)
}

async fn assert_dropped(dropped: oneshot::Receiver<()>) {
    tokio::time::timeout(WAIT, dropped)
        .await
        .expect("the stream is dropped within the deadline")
        .expect_err("the stream never sends, only drops its sender");
}

fn items(log: &EventLog) -> Vec<String> {
    log.events()
        .into_iter()
        .filter(|e| e.starts_with("item") || e.starts_with("ended"))
        .collect()
}

#[tokio::test]
async fn items_arrive_in_order_then_ended_then_the_stream_is_dropped() {
    let log = EventLog::new();
    let (stream, _, dropped) = counted(stream::iter(0..50));
    let reader = Reader::start(ReaderArgs::new(&log).stream("s", stream))
        .await
        .unwrap();
    log.wait_for("ended(s)", WAIT).await;
    let mut expected: Vec<String> = (0..50).map(|n| format!("item(s, {n})")).collect();
    expected.push("ended(s)".into());
    assert_eq!(items(&log), expected);
    assert_dropped(dropped).await;
    assert!(reader.is_alive(), "the server outlives its stream");
}

#[tokio::test]
async fn several_streams_each_keep_their_order_and_end() {
    let log = EventLog::new();
    let args = ReaderArgs::new(&log)
        .stream("a", stream::iter(0..20).boxed())
        .stream("b", stream::iter(100..110).boxed());
    let _reader = Reader::start(args).await.unwrap();
    log.wait_until(
        |events| events.contains(&"ended(a)".into()) && events.contains(&"ended(b)".into()),
        WAIT,
    )
    .await
    .unwrap();
    let of = |label: &str| -> Vec<String> {
        items(&log)
            .into_iter()
            .filter(|e| e.contains(&format!("({label}")))
            .collect()
    };
    let mut a: Vec<String> = (0..20).map(|n| format!("item(a, {n})")).collect();
    a.push("ended(a)".into());
    let mut b: Vec<String> = (100..110).map(|n| format!("item(b, {n})")).collect();
    b.push("ended(b)".into());
    assert_eq!((of("a"), of("b")), (a, b));
}

#[tokio::test(flavor = "current_thread")]
async fn nothing_is_read_ahead_of_the_server() {
    let log = EventLog::new();
    let gate = Arc::new(Semaphore::new(0));
    let (stream, pulled, _dropped) = counted(stream::iter(0..));
    let mut args = ReaderArgs::new(&log).stream("s", stream);
    args.gate = Some(gate.clone());
    let _reader = Reader::start(args).await.unwrap();
    for handled in 0..20 {
        // Let the server run as far as it can: it is waiting for a permit in `handle_info`.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            pulled.load(Ordering::SeqCst),
            handled + 1,
            "after {handled} handled items the server has read exactly the one it handles"
        );
        gate.add_permits(1);
        log.wait_for(&format!("item(s, {handled})"), WAIT).await;
    }
}

#[tokio::test]
async fn a_stream_that_is_always_ready_does_not_starve_calls_or_a_stop() {
    let log = EventLog::new();
    let reader = Reader::start(ReaderArgs::new(&log).stream("s", stream::repeat(7).boxed()))
        .await
        .unwrap();
    for _ in 0..10 {
        tokio::time::timeout(WAIT, reader.call(Call::Ping))
            .await
            .expect("a call is answered although the stream is always ready")
            .unwrap();
    }
    tokio::time::timeout(WAIT, reader.stop(ExitReason::Shutdown, WAIT))
        .await
        .expect("the stop is reached")
        .unwrap();
    assert!(log.count("item(s, 7)") > 0, "the stream was read");
}

#[tokio::test]
async fn a_busy_mailbox_does_not_starve_a_stream() {
    let log = EventLog::new();
    let gate = Arc::new(Semaphore::new(0));
    let mut args = ReaderArgs::new(&log).stream("s", stream::iter(0..5).boxed());
    args.gate = Some(gate.clone());
    let reader = Reader::start(args).await.unwrap();
    // The server keeps casting to itself; the stream's items still get their turn.
    reader.cast(Cast::Spin(1_000_000)).ok().unwrap();
    gate.add_permits(5);
    let events = log.wait_for("ended(s)", WAIT).await;
    assert!(
        !events.contains(&"spun".to_string()),
        "the stream ended before the spin did"
    );
}

#[tokio::test]
async fn the_stream_is_dropped_when_the_server_stops() {
    let log = EventLog::new();
    let (stream, _, dropped) = counted(stream::pending());
    let reader = Reader::start(ReaderArgs::new(&log).stream("s", stream))
        .await
        .unwrap();
    reader.stop(ExitReason::Normal, WAIT).await.unwrap();
    assert_dropped(dropped).await;
}

#[tokio::test]
async fn the_stream_is_dropped_when_the_server_is_killed() {
    let log = EventLog::new();
    let (stream, _, dropped) = counted(stream::pending());
    let reader = Reader::start(ReaderArgs::new(&log).stream("s", stream))
        .await
        .unwrap();
    otp_core::process::exit(reader.pid(), ExitReason::Killed);
    assert_eq!(
        otp_core::testing::await_exit(&reader, WAIT).await,
        ExitReason::Killed
    );
    assert_dropped(dropped).await;
}

#[tokio::test]
async fn the_stream_is_dropped_when_its_supervisor_shuts_the_server_down() {
    let log = EventLog::new();
    let (stream, _, dropped) = counted(stream::pending());
    let stream = Arc::new(parking_lot::Mutex::new(Some(stream)));
    let child_log = log.clone();
    let spec = ChildSpec::new("reader", move || {
        let stream = stream
            .lock()
            .take()
            .unwrap_or_else(|| stream::pending().boxed());
        Reader::start(ReaderArgs::new(&child_log).stream("s", stream))
    });
    let supervisor = Supervisor::start(SupFlags::default(), vec![spec])
        .await
        .unwrap();
    supervisor.stop(WAIT).await.unwrap();
    assert_dropped(dropped).await;
    assert_eq!(log.count("terminate(shutdown)"), 1);
}

#[tokio::test]
async fn a_panic_in_the_mapping_crashes_the_server_and_terminate_runs() {
    let log = EventLog::new();
    let mut args = ReaderArgs::new(&log).stream("s", stream::iter(0..10).boxed());
    args.panic_on = Some(3);
    let reader = Reader::start(args).await.unwrap();
    let reason = otp_core::testing::await_exit(&reader, WAIT).await;
    assert!(
        matches!(&reason, ExitReason::Panic(m) if m.contains("mapping item 3")),
        "{reason:?}"
    );
    let events = log.events();
    assert_eq!(
        items(&log),
        vec!["item(s, 0)", "item(s, 1)", "item(s, 2)"],
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e.starts_with("terminate(")),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_panic_in_the_stream_crashes_the_server() {
    let log = EventLog::new();
    let exploding = stream::iter(0..5u64)
        .map(|n| {
            if n == 2 {
                panic!("stream broke at {n}")
            } else {
                n
            }
        })
        .boxed();
    let reader = Reader::start(ReaderArgs::new(&log).stream("s", exploding))
        .await
        .unwrap();
    let reason = otp_core::testing::await_exit(&reader, WAIT).await;
    assert!(
        matches!(&reason, ExitReason::Panic(m) if m.contains("stream broke at 2")),
        "{reason:?}"
    );
    assert_eq!(items(&log), vec!["item(s, 0)", "item(s, 1)"]);
}

#[tokio::test]
async fn a_detached_stream_is_dropped_without_ended() {
    let log = EventLog::new();
    let (stream, _, dropped) = counted(stream::pending());
    let reader = Reader::start(ReaderArgs::new(&log).stream("s", stream))
        .await
        .unwrap();
    reader.call(Call::Detach("s")).await.unwrap();
    assert_dropped(dropped).await;
    reader.call(Call::Detach("s")).await.unwrap();
    assert_eq!(
        log.events(),
        vec!["detached(s, true)", "detached(s, false)"]
    );
}

#[tokio::test]
async fn a_stream_ref_of_another_server_detaches_nothing() {
    let log = EventLog::new();
    let other_log = EventLog::new();
    let reader = Reader::start(ReaderArgs::new(&log).stream("s", stream::pending().boxed()))
        .await
        .unwrap();
    let other: ServerRef<Reader> =
        Reader::start(ReaderArgs::new(&other_log).stream("t", stream::pending().boxed()))
            .await
            .unwrap();
    let foreign = other.call(Call::Attached("t")).await.unwrap().unwrap();
    reader.call(Call::DetachForeign(foreign)).await.unwrap();
    assert_eq!(log.events(), vec!["detached(foreign, false)"]);
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_waits_between_items_wakes_the_server() {
    // Between items the stream is pending; each item wakes the server (the paused clock makes
    // the waits instant and the order deterministic).
    let log = EventLog::new();
    let ticks = stream::unfold(0u64, |n| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        (n < 3).then_some((n, n + 1))
    })
    .boxed();
    let _reader = Reader::start(ReaderArgs::new(&log).stream("s", ticks))
        .await
        .unwrap();
    log.wait_for("ended(s)", WAIT).await;
    assert_eq!(
        items(&log),
        vec!["item(s, 0)", "item(s, 1)", "item(s, 2)", "ended(s)"]
    );
}
