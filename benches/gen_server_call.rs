//! W1 call: one caller, one server, sequential "add 1" calls. The plain-tokio floor (mpsc +
//! oneshot) and otp-core's `ServerRef::call`, native callbacks and boxed (as `#[async_trait]`).
//!
//! The timed loop runs in a task on the runtime's workers, as the workload defines it: a caller
//! on a thread outside the runtime would measure thread wake-ups, not the framework.

use std::time::{Duration, Instant};

use benches::{BoxedCounter, Counter, FloorCounter, Request, runtime, time_in_task};
use criterion::{Criterion, criterion_group, criterion_main};
use otp_core::GenServer;
use otp_core::gen_server::Timeout;

fn call(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("W1_call");
    let floor = rt.block_on(async { FloorCounter::spawn() });
    group.bench_function("floor_tokio", |b| {
        b.iter_custom(|iters| {
            let floor = floor.clone();
            time_in_task(&rt, iters, move || {
                let floor = floor.clone();
                async move { floor.call(Request::Add(1)).await }
            })
        })
    });
    let server = rt.block_on(Counter::start(())).expect("start");
    group.bench_function("otp_core", |b| {
        b.iter_custom(|iters| {
            let server = server.clone();
            time_in_task(&rt, iters, move || {
                let server = server.clone();
                async move { server.call(Request::Add(1)).await }
            })
        })
    });
    group.bench_function("otp_core_no_timeout", |b| {
        b.iter_custom(|iters| {
            let server = server.clone();
            time_in_task(&rt, iters, move || {
                let server = server.clone();
                async move {
                    server
                        .call_timeout(Request::Add(1), Timeout::Infinity)
                        .await
                }
            })
        })
    });
    // The second row: the caller as an otp-core process (a supervised task). Its calls borrow
    // their timers from the same per-thread pool as a plain task's, so the two rows should match.
    let tasks = rt
        .block_on(otp_core::task_supervisor::TaskSupervisor::start())
        .expect("task supervisor");
    let from_process = server.clone();
    group.bench_function("otp_core_caller_is_a_process", |b| {
        b.iter_custom(|iters| {
            let server = from_process.clone();
            let tasks = tasks.clone();
            rt.block_on(async move {
                let timed = tasks
                    .async_nolink(async move {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let _ = std::hint::black_box(server.call(Request::Add(1)).await);
                        }
                        start.elapsed()
                    })
                    .await
                    .expect("task");
                timed.await.unwrap_or(Duration::ZERO)
            })
        })
    });
    let boxed = rt.block_on(BoxedCounter::start(())).expect("start");
    group.bench_function("otp_core_boxed_callbacks", |b| {
        b.iter_custom(|iters| {
            let boxed = boxed.clone();
            time_in_task(&rt, iters, move || {
                let boxed = boxed.clone();
                async move { boxed.call(Request::Add(1)).await }
            })
        })
    });
    group.finish();
}

criterion_group!(benches, call);
criterion_main!(benches);
