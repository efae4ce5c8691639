//! actix 0.13: an `Actor` with one `Handler` per message, on actix's own single-threaded
//! `System` (so its figures are single-thread figures, below the 2-worker floor's parallelism).
//! W5, W6 and W8 do not fit actix: its `Supervisor` restarts one actor in place when it stops
//! and not at all after a panic, it has no dynamic supervisor, and its `Registry` is keyed by
//! actor type, not by name.

use actix::prelude::*;

use crate::workloads::{self, ran_init, terminated, tokio_task};
use crate::{Figures, Server};

pub struct Counter(u64);

impl Actor for Counter {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        ran_init();
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        terminated();
    }
}

#[derive(Message)]
#[rtype(result = "u64")]
pub struct Add(u64);

#[derive(Message)]
#[rtype(result = "u64")]
pub struct Get;

#[derive(Message)]
#[rtype(result = "()")]
pub struct Inc;

#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Add> for Counter {
    type Result = u64;

    fn handle(&mut self, Add(n): Add, _: &mut Context<Self>) -> u64 {
        self.0 += n;
        self.0
    }
}

impl Handler<Get> for Counter {
    type Result = u64;

    fn handle(&mut self, _: Get, _: &mut Context<Self>) -> u64 {
        self.0
    }
}

impl Handler<Inc> for Counter {
    type Result = ();

    fn handle(&mut self, _: Inc, _: &mut Context<Self>) {
        self.0 += 1;
    }
}

impl Handler<Stop> for Counter {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Server for Addr<Counter> {
    async fn spawn() -> Self {
        Counter(0).start()
    }

    async fn add(&self, n: u64) -> u64 {
        self.send(Add(n)).await.expect("send")
    }

    fn inc(&self) {
        self.do_send(Inc);
    }

    async fn get(&self) -> u64 {
        self.send(Get).await.expect("send")
    }

    async fn stop(&self) {
        self.do_send(Stop);
    }
}

pub fn run(workload: &str) -> Option<Figures> {
    let workload = workload.to_owned();
    System::new().block_on(async move {
        match workload.as_str() {
            "w5" => Some(Figures::DoesNotFit(
                "actix has no dynamic supervisor; its Supervisor restarts one actor in place",
            )),
            "w6" => Some(Figures::DoesNotFit(
                "actix's Supervisor does not restart an actor after a panic",
            )),
            "w8" => Some(Figures::DoesNotFit(
                "actix's Registry is keyed by actor type, not by name",
            )),
            other => workloads::common::<Addr<Counter>>(other, tokio_task).await,
        }
    })
}
