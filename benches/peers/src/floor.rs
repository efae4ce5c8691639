//! The plain-tokio floor: a hand-written task with an unbounded mpsc mailbox and oneshot
//! replies; for W5 and W6 a hand-written minimal supervisor task (a child table, restart on
//! panic, no intensity, no shutdown ordering); for W8 a `parking_lot::RwLock<HashMap>`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use benches::percentiles_us;
use parking_lot::RwLock;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::workloads::{self, await_inits, on_tokio, ran_init, terminated, tokio_task};
use crate::{Figures, Server};

enum Message {
    Add(u64, oneshot::Sender<u64>),
    Get(oneshot::Sender<u64>),
    Inc,
    Stop,
}

/// A floor server's address.
#[derive(Clone)]
pub struct Floor(mpsc::UnboundedSender<Message>);

impl Floor {
    fn start() -> (Floor, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            ran_init();
            let mut value = 0u64;
            while let Some(message) = rx.recv().await {
                match message {
                    Message::Add(n, reply) => {
                        value += n;
                        let _ = reply.send(value);
                    }
                    Message::Get(reply) => {
                        let _ = reply.send(value);
                    }
                    Message::Inc => value += 1,
                    Message::Stop => break,
                }
            }
            terminated();
        });
        (Floor(tx), task)
    }

    async fn request(&self, message: impl FnOnce(oneshot::Sender<u64>) -> Message) -> u64 {
        let (tx, rx) = oneshot::channel();
        let _ = self.0.send(message(tx));
        rx.await.unwrap_or(0)
    }
}

impl Server for Floor {
    async fn spawn() -> Floor {
        Floor::start().0
    }

    async fn add(&self, n: u64) -> u64 {
        self.request(|reply| Message::Add(n, reply)).await
    }

    fn inc(&self) {
        let _ = self.0.send(Message::Inc);
    }

    async fn get(&self) -> u64 {
        self.request(Message::Get).await
    }

    async fn stop(&self) {
        let _ = self.0.send(Message::Stop);
    }
}

/// W5's floor supervisor: a task owning the child table, started children awaited one by one.
enum SupervisorMessage {
    StartChild(oneshot::Sender<Floor>),
    Shutdown(oneshot::Sender<()>),
}

fn start_supervisor() -> mpsc::UnboundedSender<SupervisorMessage> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut children: Vec<(Floor, JoinHandle<()>)> = Vec::new();
        while let Some(message) = rx.recv().await {
            match message {
                SupervisorMessage::StartChild(reply) => {
                    let (child, task) = Floor::start();
                    let _ = reply.send(child.clone());
                    children.push((child, task));
                }
                SupervisorMessage::Shutdown(done) => {
                    // Reverse start order, each child stopped and awaited.
                    for (child, task) in children.drain(..).rev() {
                        child.stop().await;
                        let _ = task.await;
                    }
                    let _ = done.send(());
                    break;
                }
            }
        }
    });
    tx
}

async fn supervised_start(children: usize) -> Figures {
    let supervisor = start_supervisor();
    let start = Instant::now();
    for _ in 0..children {
        let (tx, rx) = oneshot::channel();
        let _ = supervisor.send(SupervisorMessage::StartChild(tx));
        let _ = rx.await;
    }
    await_inits(children).await;
    let started = start.elapsed();
    let start = Instant::now();
    let (tx, rx) = oneshot::channel();
    let _ = supervisor.send(SupervisorMessage::Shutdown(tx));
    let _ = rx.await;
    let stopped = start.elapsed();
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / children as f64;
    Figures::Measured(vec![
        ("us_per_start_child", per(started)),
        ("us_per_child_shutdown", per(stopped)),
    ])
}

async fn restart() -> Figures {
    let mut samples = benches::restart::floor().await;
    let (p50, p99) = percentiles_us(&mut samples);
    Figures::Measured(vec![("p50_us", p50), ("p99_us", p99)])
}

async fn registry() -> Figures {
    let names: Arc<RwLock<HashMap<String, Floor>>> = Arc::default();
    let table = names.clone();
    workloads::registry(
        move |name| {
            let table = table.clone();
            async move {
                let server = Floor::spawn().await;
                table.write().insert(name, server.clone());
                server
            }
        },
        move |name: &String| names.read().get(name).cloned(),
        tokio_task,
    )
    .await
}

pub fn run(workload: &str) -> Option<Figures> {
    let workload = workload.to_owned();
    on_tokio(async move {
        match workload.as_str() {
            "w5" | "scale-dynsup-100k" => Some(supervised_start(100_000).await),
            "scale-dynsup-1k" => Some(supervised_start(1_000).await),
            "scale-dynsup-1m" => Some(supervised_start(1_000_000).await),
            "w6" => Some(restart().await),
            "w8" => Some(registry().await),
            other => workloads::common::<Floor>(other, tokio_task).await,
        }
    })
}
