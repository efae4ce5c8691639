//! Pub/sub: one cast to each of 1,000 subscribers of a topic, through a duplicate-key
//! registry's `dispatch`, next to the same 1,000 casts sent by hand from a `Vec` of handles.
//!
//! The subscribers are `Counter` servers; one process holds the 1,000 registrations (their
//! owner), with the servers' handles as values. Only the sending is timed: the servers drain
//! their mailboxes concurrently, as they would in use.

use benches::{Counter, runtime, time_in_task};
use criterion::{Criterion, criterion_group, criterion_main};
use otp_core::registry::DuplicateRegistry;
use otp_core::{GenServer, ServerRef};

const SUBSCRIBERS: usize = 1_000;

fn dispatch(c: &mut Criterion) {
    let rt = runtime();
    let (topics, servers) = rt.block_on(async {
        let topics: DuplicateRegistry<&'static str, ServerRef<Counter>> =
            DuplicateRegistry::start().await.expect("registry");
        let mut servers = Vec::with_capacity(SUBSCRIBERS);
        for _ in 0..SUBSCRIBERS {
            servers.push(Counter::start(()).await.expect("start"));
        }
        let (registered, done) = tokio::sync::oneshot::channel();
        let (for_owner, to_register) = (topics.clone(), servers.clone());
        otp_core::task::start(async move {
            for server in to_register {
                for_owner.register("topic", server)?;
            }
            let _ = registered.send(());
            std::future::pending::<()>().await;
            Ok(())
        })
        .expect("owner");
        done.await.expect("registered");
        (topics, servers)
    });
    let mut group = c.benchmark_group("registry_dispatch_1000");
    group.throughput(criterion::Throughput::Elements(SUBSCRIBERS as u64));
    group.bench_function("casts_by_hand", |b| {
        b.iter_custom(|iters| {
            let servers = servers.clone();
            time_in_task(&rt, iters, move || {
                let servers = servers.clone();
                async move {
                    for server in &servers {
                        let _ = server.cast(());
                    }
                }
            })
        })
    });
    group.bench_function("otp_core_dispatch", |b| {
        b.iter_custom(|iters| {
            let topics = topics.clone();
            time_in_task(&rt, iters, move || {
                let topics = topics.clone();
                async move {
                    topics.dispatch(&"topic", |_, server| {
                        let _ = server.cast(());
                    })
                }
            })
        })
    });
    group.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
