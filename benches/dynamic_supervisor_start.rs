//! W5 supervised spawn: start N children one after the other under the DynamicSupervisor (each
//! start awaited), µs per child until all ran their init; then shut the supervisor down with
//! them, µs per child. The floor: `tokio::spawn` of a task that reports it is running, awaited.
//! Cost per child should stay flat from 1k to 100k children (Elixir 1.14's shutdown does not).

use std::time::Instant;

use benches::{Counter, runtime};
use otp_core::dynamic_supervisor::{DynamicSupervisor, DynamicSupervisorOptions};
use otp_core::gen_server::{GenServer, Timeout};
use otp_core::supervisor::ChildSpec;

fn main() {
    let rt = runtime();
    for n in [1_000usize, 100_000] {
        let (floor_us, start_us, stop_us) = rt.block_on(async move {
            tokio::spawn(async move {
                let started = Instant::now();
                let mut handles = Vec::with_capacity(n);
                for _ in 0..n {
                    let (ready, running) = tokio::sync::oneshot::channel::<()>();
                    handles.push(tokio::spawn(async move {
                        let _ = ready.send(());
                        std::future::pending::<()>().await
                    }));
                    let _ = running.await;
                }
                let floor = started.elapsed().as_secs_f64() * 1e6 / n as f64;
                for handle in handles {
                    handle.abort();
                }

                let sup = DynamicSupervisor::start(DynamicSupervisorOptions::default())
                    .await
                    .expect("supervisor");
                let spec = ChildSpec::new("counter", || Counter::start(()));
                let started = Instant::now();
                for _ in 0..n {
                    sup.start_child(spec.clone()).await.expect("child");
                }
                let start = started.elapsed().as_secs_f64() * 1e6 / n as f64;
                let stopping = Instant::now();
                sup.stop(Timeout::Infinity).await.expect("stop");
                let stop = stopping.elapsed().as_secs_f64() * 1e6 / n as f64;
                (floor, start, stop)
            })
            .await
            .expect("bench task")
        });
        println!(
            "W5 n={n:>7}: floor spawn {floor_us:.2} µs/child; start_child {start_us:.2} µs/child ({:.2}x floor); shutdown {stop_us:.2} µs/child",
            start_us / floor_us
        );
    }
}
