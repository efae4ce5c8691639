//! The workloads every contender runs the same way, over the [`Server`] trait.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::{Figures, Server};

/// A boxed task body, for contenders that start tasks their own way (otp-core: as processes).
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Starts a task; resolves, once it is started, to a future that ends when the task has.
pub type SpawnTask = fn(Task) -> Pin<Box<dyn Future<Output = Task> + Send>>;

/// Starts a plain tokio task.
// The outer future resolves once the task is started, the inner one when it has finished.
#[allow(clippy::async_yields_async)]
pub fn tokio_task(task: Task) -> Pin<Box<dyn Future<Output = Task> + Send>> {
    let handle = tokio::spawn(task);
    Box::pin(async move {
        Box::pin(async move {
            let _ = handle.await;
        }) as Task
    })
}

/// Counts servers that ran their init, and servers that terminated, without polling.
static INITS: Semaphore = Semaphore::const_new(0);
static STOPS: Semaphore = Semaphore::const_new(0);

/// Every contender's init calls this.
pub fn ran_init() {
    INITS.add_permits(1);
}

/// Every contender's termination hook calls this.
pub fn terminated() {
    STOPS.add_permits(1);
}

async fn await_count(counter: &Semaphore, n: usize) {
    let mut left = n;
    while left > 0 {
        let take = left.min(1 << 20);
        if let Ok(permits) = counter.acquire_many(take as u32).await {
            permits.forget();
        }
        left -= take;
    }
}

/// Waits until `n` more servers ran their init.
pub async fn await_inits(n: usize) {
    await_count(&INITS, n).await;
}

/// Waits until `n` more servers terminated.
pub async fn await_stops(n: usize) {
    await_count(&STOPS, n).await;
}

fn per(elapsed: Duration, n: usize, unit: f64) -> f64 {
    elapsed.as_secs_f64() * unit / n as f64
}

/// The runtime every tokio-based contender runs on: multi-thread, 2 workers; the workload
/// itself runs in a task on a worker, as the definitions say.
pub fn on_tokio<F>(workload: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    benches::runtime().block_on(async move { tokio::spawn(workload).await.expect("workload") })
}

/// Resident set size, from `/proc/self/statm`.
pub fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// W1: 200,000 sequential "add 1" calls to one server, with `idle` other servers alive.
pub async fn call<S: Server>(idle: usize) -> Figures {
    let mut others = Vec::with_capacity(idle);
    for _ in 0..idle {
        others.push(S::spawn().await);
    }
    let server = S::spawn().await;
    await_inits(idle + 1).await;
    for _ in 0..1_000 {
        server.add(1).await;
    }
    const CALLS: usize = 200_000;
    let start = Instant::now();
    for _ in 0..CALLS {
        std::hint::black_box(server.add(1).await);
    }
    let elapsed = start.elapsed();
    drop(others);
    Figures::Measured(vec![("ns_per_call", per(elapsed, CALLS, 1e9))])
}

/// W2: 1,000,000 casts, then one call whose reply must be 1,000,000.
pub async fn cast<S: Server>() -> Figures {
    const CASTS: usize = 1_000_000;
    let server = S::spawn().await;
    await_inits(1).await;
    let start = Instant::now();
    for _ in 0..CASTS {
        server.inc();
    }
    let value = server.get().await;
    let elapsed = start.elapsed();
    assert_eq!(value, CASTS as u64, "every cast was handled");
    Figures::Measured(vec![("ns_per_msg", per(elapsed, CASTS, 1e9))])
}

/// W3: 1,000 servers, 1,000 concurrent callers each making 100 calls to its own server.
pub async fn fan_in<S: Server>(spawn_task: SpawnTask) -> Figures {
    const SERVERS: usize = 1_000;
    const CALLS: usize = 100;
    let mut servers = Vec::with_capacity(SERVERS);
    for _ in 0..SERVERS {
        servers.push(S::spawn().await);
    }
    await_inits(SERVERS).await;
    let start = Instant::now();
    let mut callers = Vec::with_capacity(SERVERS);
    for server in servers {
        let caller = spawn_task(Box::pin(async move {
            for _ in 0..CALLS {
                std::hint::black_box(server.add(1).await);
            }
        }));
        callers.push(caller.await);
    }
    for caller in callers {
        caller.await;
    }
    let elapsed = start.elapsed();
    let calls = (SERVERS * CALLS) as f64;
    Figures::Measured(vec![("calls_per_s", calls / elapsed.as_secs_f64())])
}

/// W4: start 100,000 idle servers, timed until every one ran its init; then stop them all
/// gracefully, timed until every one terminated.
pub async fn spawn_stop<S: Server>() -> Figures {
    const SERVERS: usize = 100_000;
    let start = Instant::now();
    let mut servers = Vec::with_capacity(SERVERS);
    for _ in 0..SERVERS {
        servers.push(S::spawn().await);
    }
    await_inits(SERVERS).await;
    let spawned = start.elapsed();
    let start = Instant::now();
    for server in &servers {
        server.stop().await;
    }
    drop(servers);
    await_stops(SERVERS).await;
    let stopped = start.elapsed();
    Figures::Measured(vec![
        ("us_per_spawn", per(spawned, SERVERS, 1e6)),
        ("us_per_stop", per(stopped, SERVERS, 1e6)),
    ])
}

/// W7: bytes of resident memory per idle server, over `servers` servers; only the handles kept.
pub async fn memory<S: Server>(servers: usize) -> Figures {
    // Warm the runtime and the allocator so their fixed costs stay out of the delta.
    let mut warm = Vec::with_capacity(1_000);
    for _ in 0..1_000 {
        warm.push(S::spawn().await);
    }
    await_inits(1_000).await;
    for server in &warm {
        server.stop().await;
    }
    drop(warm);
    await_stops(1_000).await;
    let before = rss_bytes();
    let mut handles = Vec::with_capacity(servers);
    for _ in 0..servers {
        handles.push(S::spawn().await);
    }
    await_inits(servers).await;
    let after = rss_bytes();
    std::hint::black_box(&handles);
    Figures::Measured(vec![(
        "bytes_per_server",
        after.saturating_sub(before) as f64 / servers as f64,
    )])
}

/// W8's shape, shared by the contenders that have a registry: 100,000 servers registered as
/// "srv-{i}", then 1,000,000 lookups spread over two tasks (lookup k is for name
/// (k·7919) mod 100,000), then the same with a "get" call after each lookup.
pub async fn registry<S, R, F, L>(register: R, lookup: L, spawn_task: SpawnTask) -> Figures
where
    S: Server,
    R: FnMut(String) -> F,
    F: Future<Output = S>,
    L: Fn(&String) -> Option<S> + Clone + Send + Sync + 'static,
{
    const SERVERS: usize = 100_000;
    const LOOKUPS: usize = 1_000_000;
    let mut register = register;
    let mut servers = Vec::with_capacity(SERVERS);
    for i in 0..SERVERS {
        servers.push(register(format!("srv-{i}")).await);
    }
    await_inits(SERVERS).await;
    let names: std::sync::Arc<Vec<String>> =
        std::sync::Arc::new((0..SERVERS).map(|i| format!("srv-{i}")).collect());
    let mut figures = Vec::new();
    for with_call in [false, true] {
        let start = Instant::now();
        let mut tasks = Vec::with_capacity(2);
        for half in 0..2 {
            let names = names.clone();
            let lookup = lookup.clone();
            let task = spawn_task(Box::pin(async move {
                for k in (half * LOOKUPS / 2)..((half + 1) * LOOKUPS / 2) {
                    let name = &names[(k * 7919) % SERVERS];
                    let server = lookup(name).expect("registered");
                    if with_call {
                        std::hint::black_box(server.get().await);
                    } else {
                        std::hint::black_box(server);
                    }
                }
            }));
            tasks.push(task.await);
        }
        for task in tasks {
            task.await;
        }
        let name = if with_call {
            "ns_per_lookup_call"
        } else {
            "ns_per_lookup"
        };
        figures.push((name, per(start.elapsed(), LOOKUPS, 1e9)));
    }
    drop(servers);
    Figures::Measured(figures)
}

/// Runs the workloads that are written once for every contender; `None` for the others.
pub async fn common<S: Server>(workload: &str, spawn_task: SpawnTask) -> Option<Figures> {
    Some(match workload {
        "w1" => call::<S>(0).await,
        "w2" => cast::<S>().await,
        "w3" => fan_in::<S>(spawn_task).await,
        "w4" => spawn_stop::<S>().await,
        "w7" => memory::<S>(100_000).await,
        "scale-call-idle-1k" => call::<S>(1_000).await,
        "scale-call-idle-100k" => call::<S>(100_000).await,
        "scale-memory-1m" => memory::<S>(1_000_000).await,
        _ => return None,
    })
}
