//! W2 cast: one sender, a batch of casts "inc", then one call "get" that sees them all.
//!
//! The timed loop runs in a task on the runtime's workers, as the workload defines it.

use std::time::Instant;

use benches::{BoxedCounter, Counter, FloorCounter, Request, runtime};
use criterion::{Criterion, criterion_group, criterion_main};
use otp_core::GenServer;

const BATCH: u64 = 10_000;

fn cast(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("W2_cast");
    group.throughput(criterion::Throughput::Elements(BATCH));
    let floor = rt.block_on(async { FloorCounter::spawn() });
    group.bench_function("floor_tokio", |b| {
        b.iter_custom(|iters| {
            let floor = floor.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        for _ in 0..BATCH {
                            floor.cast();
                        }
                        floor.call(Request::Get).await;
                    }
                    start.elapsed()
                })
                .await
                .unwrap_or(std::time::Duration::ZERO)
            })
        })
    });
    let server = rt.block_on(Counter::start(())).expect("start");
    group.bench_function("otp_core", |b| {
        b.iter_custom(|iters| {
            let server = server.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        for _ in 0..BATCH {
                            let _ = server.cast(());
                        }
                        let _ = server.call(Request::Get).await;
                    }
                    start.elapsed()
                })
                .await
                .unwrap_or(std::time::Duration::ZERO)
            })
        })
    });
    let boxed = rt.block_on(BoxedCounter::start(())).expect("start");
    group.bench_function("otp_core_boxed_callbacks", |b| {
        b.iter_custom(|iters| {
            let boxed = boxed.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        for _ in 0..BATCH {
                            let _ = boxed.cast(());
                        }
                        let _ = boxed.call(Request::Get).await;
                    }
                    start.elapsed()
                })
                .await
                .unwrap_or(std::time::Duration::ZERO)
            })
        })
    });
    group.finish();
}

criterion_group!(benches, cast);
criterion_main!(benches);
