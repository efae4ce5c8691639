//! W4 spawn/stop: start 100,000 idle servers (unsupervised), µs per spawn until every one ran
//! its init; then stop all gracefully, µs per stop until every one has terminated.
//! Floor: tokio tasks that signal they are running, then end when their mailbox closes.

use std::time::{Duration, Instant};

use benches::{Counter, runtime};
use otp_core::ExitReason;
use otp_core::gen_server::{GenServer, Timeout};

const SERVERS: usize = 100_000;

fn main() {
    let rt = runtime();
    let figures = rt.block_on(async {
        tokio::spawn(async {
            // Floor: spawn, each reports running; stop = close the mailbox, await the task.
            let started = Instant::now();
            let mut floor = Vec::with_capacity(SERVERS);
            for _ in 0..SERVERS {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
                let (ready, running) = tokio::sync::oneshot::channel::<()>();
                let handle = tokio::spawn(async move {
                    let _ = ready.send(());
                    while rx.recv().await.is_some() {}
                });
                floor.push((tx, handle, running));
            }
            for (_, _, running) in &mut floor {
                let _ = running.await;
            }
            let floor_spawn = started.elapsed();
            let stopping = Instant::now();
            let handles: Vec<_> = floor
                .into_iter()
                .map(|(tx, handle, _)| {
                    drop(tx);
                    handle
                })
                .collect();
            for handle in handles {
                let _ = handle.await;
            }
            let floor_stop = stopping.elapsed();

            // otp-core: `start` returns once init ran.
            let started = Instant::now();
            let mut servers = Vec::with_capacity(SERVERS);
            for _ in 0..SERVERS {
                servers.push(Counter::start(()).await.expect("server"));
            }
            let spawn = started.elapsed();
            // One task per stop, as the floor has one task per server: awaiting 100k stop
            // futures in one `join_all` would measure `FuturesUnordered` under tokio's
            // cooperative budget (see otp-core's supervisor/shutdown.rs), not the stops.
            let stopping = Instant::now();
            let stops: Vec<_> = servers
                .into_iter()
                .map(|server| {
                    tokio::spawn(
                        async move { server.stop(ExitReason::Normal, Timeout::Infinity).await },
                    )
                })
                .collect();
            for stop in stops {
                let _ = stop.await;
            }
            let stop = stopping.elapsed();
            [floor_spawn, floor_stop, spawn, stop]
        })
        .await
        .expect("bench task")
    });
    let per = |d: Duration| d.as_secs_f64() * 1e6 / SERVERS as f64;
    let [floor_spawn, floor_stop, spawn, stop] = figures;
    println!(
        "W4 spawn: floor {:.2} µs, otp-core {:.2} µs ({:.2}x floor); stop: floor {:.2} µs, otp-core {:.2} µs ({:.2}x floor)",
        per(floor_spawn),
        per(spawn),
        per(spawn) / per(floor_spawn),
        per(floor_stop),
        per(stop),
        per(stop) / per(floor_stop)
    );
}
