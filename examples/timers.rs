//! Timers are messages: `send_after`, `send_interval` and `cancel_timer` instead of sleeping.
//!
//! A "job watchdog" server runs a heartbeat every 100 ms and gives each job a deadline with
//! `send_after`. A job that reports `Done` in time has its deadline cancelled; one that does
//! not gets a `Timeout` message. Nothing in the server ever sleeps: while it waits it can serve
//! calls.
//!
//! Run with `cargo run -p examples --example timers`.

use std::collections::HashMap;
use std::time::Duration;

use otp_core::ExitReason;
use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init};
use otp_core::timer::TimerRef;

struct Watchdog {
    beats: u32,
    deadlines: HashMap<&'static str, TimerRef>,
    log: Vec<String>,
}

enum Call {
    Start(&'static str, Duration),
    Done(&'static str),
    Report,
}

#[derive(Clone)]
enum Info {
    Heartbeat,
    Timeout(&'static str),
}

impl GenServer for Watchdog {
    type Args = ();
    type Call = Call;
    type Reply = Vec<String>;
    type Cast = std::convert::Infallible;
    type Info = Info;
    type Continue = ();

    async fn init(_: (), ctx: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        ctx.send_interval(Duration::from_millis(100), Info::Heartbeat)?;
        Ok(Init::Ready(Watchdog {
            beats: 0,
            deadlines: HashMap::new(),
            log: Vec::new(),
        }))
    }

    async fn handle_call(
        &mut self,
        request: Call,
        _: Caller<'_, Vec<String>>,
        ctx: &mut Context<Self>,
    ) -> Result<CallResult<Vec<String>>, BoxError> {
        match request {
            Call::Start(job, limit) => {
                let timer = ctx.send_after(limit, Info::Timeout(job))?;
                self.deadlines.insert(job, timer);
                self.log.push(format!(
                    "{job}: started, {} ms to finish",
                    limit.as_millis()
                ));
            }
            Call::Done(job) => {
                let in_time = self
                    .deadlines
                    .remove(job)
                    .is_some_and(|timer| ctx.cancel_timer(timer));
                self.log.push(format!(
                    "{job}: done, deadline cancelled in time: {in_time}"
                ));
            }
            Call::Report => self.log.push(format!("heartbeats so far: {}", self.beats)),
        }
        Ok(CallResult::Reply(self.log.clone()))
    }

    async fn handle_info(&mut self, info: Info, _: &mut Context<Self>) -> Result<(), BoxError> {
        match info {
            Info::Heartbeat => self.beats += 1,
            Info::Timeout(job) => {
                self.deadlines.remove(job);
                self.log.push(format!("{job}: timed out"));
            }
        }
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The clock is paused: tokio jumps straight to the next timer whenever everything is idle,
    // so this example "waits" a second of timers in no real time.
    let watchdog = Watchdog::start(()).await?;
    watchdog
        .call(Call::Start("fast", Duration::from_millis(300)))
        .await?;
    watchdog
        .call(Call::Start("slow", Duration::from_millis(500)))
        .await?;

    // `fast` finishes after 250 ms of (paused) time: its deadline is cancelled.
    tokio::time::sleep(Duration::from_millis(250)).await;
    watchdog.call(Call::Done("fast")).await?;
    // `slow` never reports; after 600 ms its deadline has fired.
    tokio::time::sleep(Duration::from_millis(350)).await;
    for line in watchdog.call(Call::Report).await? {
        println!("{line}");
    }
    watchdog
        .stop(ExitReason::Normal, Duration::from_secs(5))
        .await?;
    Ok(())
}
