//! W8 registry: spawn and register 100,000 servers by name "srv-{i}"; then 1,000,000 lookups by
//! name spread over 2 tasks (lookup k is for name (k·7919) mod 100,000); ns per lookup = wall
//! time / 1,000,000; and the same with a "get" call after each lookup.
//! Floor: `parking_lot::RwLock<HashMap<String, handle>>` and the mpsc + oneshot counter.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use benches::{Counter, FloorCounter, Request, runtime};
use otp_core::ServerRef;
use otp_core::gen_server::{GenServer, StartOptions};
use otp_core::registry::Registry;
use otp_core::task_supervisor::TaskSupervisor;
use parking_lot::RwLock;

const SERVERS: usize = 100_000;
const LOOKUPS: usize = 1_000_000;

fn name(k: usize) -> String {
    format!("srv-{}", (k * 7919) % SERVERS)
}

fn main() {
    let rt = runtime();
    let names: Arc<Vec<String>> = Arc::new((0..LOOKUPS / 2).map(name).collect());
    let figures = rt.block_on(async move {
        tokio::spawn(async move {
            // Floor.
            let table: Arc<RwLock<HashMap<String, FloorCounter>>> =
                Arc::new(RwLock::new(HashMap::new()));
            for i in 0..SERVERS {
                table
                    .write()
                    .insert(format!("srv-{i}"), FloorCounter::spawn());
            }
            let floor = |with_call: bool| {
                let table = table.clone();
                let names = names.clone();
                async move {
                    let started = Instant::now();
                    let workers: Vec<_> = (0..2)
                        .map(|_| {
                            let table = table.clone();
                            let names = names.clone();
                            tokio::spawn(async move {
                                for name in names.iter() {
                                    let server = table.read().get(name).cloned();
                                    if with_call {
                                        if let Some(server) = server {
                                            server.call(Request::Get).await;
                                        }
                                    } else {
                                        std::hint::black_box(server);
                                    }
                                }
                            })
                        })
                        .collect();
                    for worker in workers {
                        let _ = worker.await;
                    }
                    started.elapsed().as_secs_f64() * 1e9 / LOOKUPS as f64
                }
            };
            let floor_lookup = floor(false).await;
            let floor_call = floor(true).await;

            // otp-core: servers registered under via-names; lookups from otp-core processes.
            let registry: Registry<String, ServerRef<Counter>> =
                Registry::start().await.expect("registry");
            for i in 0..SERVERS {
                Counter::start_with(
                    (),
                    StartOptions::new().name(registry.via(format!("srv-{i}"))),
                )
                .await
                .expect("server");
            }
            let tasks = TaskSupervisor::start().await.expect("tasks");
            let mut ours = Vec::new();
            for with_call in [false, true] {
                let started = Instant::now();
                let mut workers = Vec::new();
                for _ in 0..2 {
                    let registry = registry.clone();
                    let names = names.clone();
                    workers.push(
                        tasks
                            .async_nolink(async move {
                                for name in names.iter() {
                                    let server = registry.lookup(name).map(|(_, server)| server);
                                    if with_call {
                                        if let Some(server) = server {
                                            let _ = server.call(Request::Get).await;
                                        }
                                    } else {
                                        std::hint::black_box(server);
                                    }
                                }
                            })
                            .await
                            .expect("worker"),
                    );
                }
                for worker in workers {
                    let _ = worker.await;
                }
                ours.push(started.elapsed().as_secs_f64() * 1e9 / LOOKUPS as f64);
            }
            (floor_lookup, floor_call, ours[0], ours[1])
        })
        .await
        .expect("bench task")
    });
    let (floor_lookup, floor_call, lookup, call) = figures;
    println!(
        "W8 lookup: floor {floor_lookup:.0} ns, otp-core {lookup:.0} ns ({:.2}x floor); lookup+call: floor {floor_call:.0} ns, otp-core {call:.0} ns ({:.2}x floor)",
        lookup / floor_lookup,
        call / floor_call
    );
}
