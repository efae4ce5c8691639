//! W3 fan-in: 1,000 servers (started before the clock), 1,000 concurrent callers each making
//! 100 calls to its own server; aggregate calls per second. Floor: mpsc + oneshot tasks.
//! otp-core's callers run as otp-core processes (supervised tasks), as otp-core code does.

use std::time::Instant;

use benches::{Counter, FloorCounter, Request, runtime};
use otp_core::GenServer;
use otp_core::task_supervisor::TaskSupervisor;

const SERVERS: usize = 1_000;
const CALLS: usize = 100;

fn main() {
    let rt = runtime();
    let (floor, ours) = rt.block_on(async {
        tokio::spawn(async {
            let floors: Vec<_> = (0..SERVERS).map(|_| FloorCounter::spawn()).collect();
            let started = Instant::now();
            let callers: Vec<_> = floors
                .into_iter()
                .map(|server| {
                    tokio::spawn(async move {
                        for _ in 0..CALLS {
                            server.call(Request::Add(1)).await;
                        }
                    })
                })
                .collect();
            for caller in callers {
                let _ = caller.await;
            }
            let floor = (SERVERS * CALLS) as f64 / started.elapsed().as_secs_f64();

            let tasks = TaskSupervisor::start().await.expect("tasks");
            let mut servers = Vec::with_capacity(SERVERS);
            for _ in 0..SERVERS {
                servers.push(Counter::start(()).await.expect("server"));
            }
            let started = Instant::now();
            let mut callers = Vec::with_capacity(SERVERS);
            for server in servers {
                callers.push(
                    tasks
                        .async_nolink(async move {
                            for _ in 0..CALLS {
                                let _ = server.call(Request::Add(1)).await;
                            }
                        })
                        .await
                        .expect("caller"),
                );
            }
            for caller in callers {
                let _ = caller.await;
            }
            let ours = (SERVERS * CALLS) as f64 / started.elapsed().as_secs_f64();
            (floor, ours)
        })
        .await
        .expect("bench task")
    });
    println!(
        "W3 fan-in: floor {:.2} M calls/s, otp-core {:.2} M calls/s ({:.2}x floor)",
        floor / 1e6,
        ours / 1e6,
        ours / floor
    );
}
