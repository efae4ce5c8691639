//! W2 cast: one sender, a batch of casts "inc", then one call "get" that sees them all.
//!
//! The timed loop runs in a task on the runtime's workers, as the workload defines it.
//!
//! `cast_bounded` is the same workload on a mailbox bounded to [`CAPACITY`] messages, next to a
//! bounded tokio `mpsc` as its floor: the batch is larger than the capacity, so the sender
//! waits for room (`cast_wait`, `send().await`) for most of it.

use std::num::NonZeroUsize;

use benches::{
    BoundedFloorCounter, BoxedCounter, Counter, FloorCounter, Request, runtime, time_in_task,
};
use criterion::{Criterion, criterion_group, criterion_main};
use otp_core::GenServer;
use otp_core::gen_server::StartOptions;

const BATCH: u64 = 10_000;

/// The bounded mailboxes' capacity: a tenth of the batch.
const CAPACITY: usize = 1_000;

fn cast(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("W2_cast");
    group.throughput(criterion::Throughput::Elements(BATCH));
    let floor = rt.block_on(async { FloorCounter::spawn() });
    group.bench_function("floor_tokio", |b| {
        b.iter_custom(|iters| {
            let floor = floor.clone();
            time_in_task(&rt, iters, move || {
                let floor = floor.clone();
                async move {
                    for _ in 0..BATCH {
                        floor.cast();
                    }
                    floor.call(Request::Get).await
                }
            })
        })
    });
    let server = rt.block_on(Counter::start(())).expect("start");
    group.bench_function("otp_core", |b| {
        b.iter_custom(|iters| {
            let server = server.clone();
            time_in_task(&rt, iters, move || {
                let server = server.clone();
                async move {
                    for _ in 0..BATCH {
                        let _ = server.cast(());
                    }
                    server.call(Request::Get).await
                }
            })
        })
    });
    let boxed = rt.block_on(BoxedCounter::start(())).expect("start");
    group.bench_function("otp_core_boxed_callbacks", |b| {
        b.iter_custom(|iters| {
            let boxed = boxed.clone();
            time_in_task(&rt, iters, move || {
                let boxed = boxed.clone();
                async move {
                    for _ in 0..BATCH {
                        let _ = boxed.cast(());
                    }
                    boxed.call(Request::Get).await
                }
            })
        })
    });
    group.finish();
}

fn cast_bounded(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("W2_cast_bounded");
    group.throughput(criterion::Throughput::Elements(BATCH));
    let floor = rt.block_on(async { BoundedFloorCounter::spawn(CAPACITY) });
    group.bench_function("floor_tokio_bounded_mpsc", |b| {
        b.iter_custom(|iters| {
            let floor = floor.clone();
            time_in_task(&rt, iters, move || {
                let floor = floor.clone();
                async move {
                    for _ in 0..BATCH {
                        floor.cast().await;
                    }
                    floor.get().await
                }
            })
        })
    });
    let capacity = NonZeroUsize::new(CAPACITY).expect("not zero");
    let options = StartOptions::new().mailbox_capacity(capacity);
    let server = rt
        .block_on(Counter::start_with((), options))
        .expect("start");
    group.bench_function("otp_core_cast_wait", |b| {
        b.iter_custom(|iters| {
            let server = server.clone();
            time_in_task(&rt, iters, move || {
                let server = server.clone();
                async move {
                    for _ in 0..BATCH {
                        let _ = server.cast_wait(()).await;
                    }
                    server.call(Request::Get).await
                }
            })
        })
    });
    group.finish();
}

criterion_group!(benches, cast, cast_bounded);
criterion_main!(benches);
