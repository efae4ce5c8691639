//! Shared workloads for the benchmarks (definitions: `shared/bench/WORKLOADS.md`) and the
//! plain-tokio floor they are compared against, so every bench measures the same code.
//!
//! A "server" holds a `u64` counter; `add(n)` is a call returning the new value, `inc` a cast,
//! `get` a call.

pub mod restart;

use std::convert::Infallible;

use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init};
use tokio::sync::{mpsc, oneshot};

/// Requests to the counter server.
#[derive(Debug, Clone, Copy)]
pub enum Request {
    /// Add `n` and reply with the new value.
    Add(u64),
    /// Reply with the value.
    Get,
}

/// The otp-core counter server, with native `async fn` callbacks.
#[derive(Debug)]
pub struct Counter(u64);

impl GenServer for Counter {
    type Args = ();
    type Call = Request;
    type Reply = u64;
    type Cast = ();
    type Info = Infallible;
    type Continue = Infallible;

    async fn init(_: (), _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        Ok(Init::Ready(Counter(0)))
    }

    async fn handle_call(
        &mut self,
        request: Request,
        _: Caller<'_, u64>,
        _: &mut Context<Self>,
    ) -> Result<CallResult<u64>, BoxError> {
        if let Request::Add(n) = request {
            self.0 += n;
        }
        Ok(CallResult::Reply(self.0))
    }

    async fn handle_cast(&mut self, _: (), _: &mut Context<Self>) -> Result<(), BoxError> {
        self.0 += 1;
        Ok(())
    }
}

/// The same counter with every callback future boxed, as `#[async_trait]` would do: measures
/// what the boxing costs on the call and cast paths.
#[derive(Debug)]
pub struct BoxedCounter(u64);

type BoxedFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

impl GenServer for BoxedCounter {
    type Args = ();
    type Call = Request;
    type Reply = u64;
    type Cast = ();
    type Info = Infallible;
    type Continue = Infallible;

    async fn init(_: (), _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        Ok(Init::Ready(BoxedCounter(0)))
    }

    async fn handle_call(
        &mut self,
        request: Request,
        _: Caller<'_, u64>,
        _: &mut Context<Self>,
    ) -> Result<CallResult<u64>, BoxError> {
        // One heap allocation per callback, as `#[async_trait]` makes.
        let boxed: BoxedFuture<'_, Result<CallResult<u64>, BoxError>> = Box::pin(async move {
            if let Request::Add(n) = request {
                self.0 += n;
            }
            Ok(CallResult::Reply(self.0))
        });
        boxed.await
    }

    async fn handle_cast(&mut self, _: (), _: &mut Context<Self>) -> Result<(), BoxError> {
        let boxed: BoxedFuture<'_, Result<(), BoxError>> = Box::pin(async move {
            self.0 += 1;
            Ok(())
        });
        boxed.await
    }
}

/// The plain-tokio floor: a task owning a counter, an unbounded mpsc mailbox, oneshot replies.
#[derive(Debug, Clone)]
pub struct FloorCounter {
    tx: mpsc::UnboundedSender<FloorMessage>,
}

/// A message to the floor counter.
#[derive(Debug)]
pub enum FloorMessage {
    /// A call.
    Call(Request, oneshot::Sender<u64>),
    /// A cast (`inc`).
    Cast,
    /// Panics the server (W6).
    Crash,
}

impl FloorCounter {
    /// Spawns the floor server on the current runtime.
    pub fn spawn() -> FloorCounter {
        FloorCounter::spawn_joinable().0
    }

    /// Spawns the floor server and returns its task handle too, for a supervisor to await.
    pub fn spawn_joinable() -> (FloorCounter, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut value = 0u64;
            while let Some(message) = rx.recv().await {
                match message {
                    FloorMessage::Call(request, reply) => {
                        if let Request::Add(n) = request {
                            value += n;
                        }
                        let _ = reply.send(value);
                    }
                    FloorMessage::Cast => value += 1,
                    FloorMessage::Crash => panic!("crash"),
                }
            }
        });
        (FloorCounter { tx }, task)
    }

    /// A call round trip.
    pub async fn call(&self, request: Request) -> u64 {
        self.try_call(request).await.unwrap_or(0)
    }

    /// A call round trip that reports a dead server as `None`.
    pub async fn try_call(&self, request: Request) -> Option<u64> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(FloorMessage::Call(request, tx)).ok()?;
        rx.await.ok()
    }

    /// A cast.
    pub fn cast(&self) {
        let _ = self.tx.send(FloorMessage::Cast);
    }

    /// Makes the server panic.
    pub fn crash(&self) {
        let _ = self.tx.send(FloorMessage::Crash);
    }
}

/// The floor of a bounded mailbox: the same counter task behind a bounded tokio `mpsc`, whose
/// `send().await` waits for room.
#[derive(Debug, Clone)]
pub struct BoundedFloorCounter {
    tx: mpsc::Sender<FloorMessage>,
}

impl BoundedFloorCounter {
    /// Spawns the floor server on the current runtime, with room for `capacity` messages.
    pub fn spawn(capacity: usize) -> BoundedFloorCounter {
        let (tx, mut rx) = mpsc::channel(capacity);
        tokio::spawn(async move {
            let mut value = 0u64;
            while let Some(message) = rx.recv().await {
                match message {
                    FloorMessage::Call(_, reply) => {
                        let _ = reply.send(value);
                    }
                    FloorMessage::Cast => value += 1,
                    FloorMessage::Crash => panic!("crash"),
                }
            }
        });
        BoundedFloorCounter { tx }
    }

    /// A cast that waits for room.
    pub async fn cast(&self) {
        let _ = self.tx.send(FloorMessage::Cast).await;
    }

    /// A `get` round trip.
    pub async fn get(&self) -> u64 {
        let (tx, rx) = oneshot::channel();
        if self
            .tx
            .send(FloorMessage::Call(Request::Get, tx))
            .await
            .is_err()
        {
            return 0;
        }
        rx.await.unwrap_or(0)
    }
}

/// The names the W6 and W8 floors look servers up by: `parking_lot::RwLock<HashMap>`.
pub type FloorNames =
    std::sync::Arc<parking_lot::RwLock<std::collections::HashMap<String, FloorCounter>>>;

/// The W6 floor: a hand-written minimal supervisor task for one named floor server. It awaits
/// the server's task, and when the task panicked it spawns a new one under the same name; no
/// restart intensity, no shutdown ordering, no events. Returns once the first server is named.
pub fn spawn_floor_supervisor(name: &str, names: FloorNames) {
    let name = name.to_owned();
    let (first, task) = FloorCounter::spawn_joinable();
    names.write().insert(name.clone(), first);
    tokio::spawn(async move {
        let mut task = task;
        while let Err(exit) = task.await {
            if !exit.is_panic() {
                break;
            }
            let (server, next) = FloorCounter::spawn_joinable();
            names.write().insert(name.clone(), server);
            task = next;
        }
    });
}

/// One W6 sample: crash the server named `name`, then look it up and call `get` until a
/// server answers, yielding between attempts. `lookup` and `call` are the contender's own.
pub async fn restart_sample<S, L, C, F>(
    crash: impl FnOnce(),
    lookup: L,
    call: C,
) -> std::time::Duration
where
    L: Fn() -> Option<S>,
    C: Fn(S) -> F,
    F: std::future::Future<Output = bool>,
{
    let crashed = std::time::Instant::now();
    crash();
    loop {
        if let Some(server) = lookup()
            && call(server).await
        {
            return crashed.elapsed();
        }
        tokio::task::yield_now().await;
    }
}

/// p50 and p99 of restart samples, in µs.
pub fn percentiles_us(samples: &mut [std::time::Duration]) -> (f64, f64) {
    samples.sort();
    let at =
        |q: usize| samples[(samples.len() * q / 100).min(samples.len() - 1)].as_secs_f64() * 1e6;
    (at(50), at(99))
}

/// The runtime every workload runs on: multi-thread, 2 workers.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs `calls` iterations of `call` in a task on the runtime's workers and returns the time
/// they took: a caller on a thread outside the runtime would measure thread wake-ups instead.
pub fn time_in_task<C, F>(rt: &tokio::runtime::Runtime, iters: u64, call: C) -> std::time::Duration
where
    C: Fn() -> F + Send + 'static,
    F: std::future::Future + Send,
{
    rt.block_on(async move {
        tokio::spawn(async move {
            let start = std::time::Instant::now();
            for _ in 0..iters {
                std::hint::black_box(call().await);
            }
            start.elapsed()
        })
        .await
        .unwrap_or_default()
    })
}
