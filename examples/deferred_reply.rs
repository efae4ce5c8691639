//! A call handler that replies later through `ReplyTo` (Erlang's `gen_server:reply/2`).
//!
//! A "gate" server holds callers of `Wait` until someone calls `Open`; meanwhile it keeps
//! serving other requests. One waiter's reply is handed to a supervised task that replies on
//! the server's behalf: a reply handle can move to another process.
//!
//! Run with `cargo run -p examples --example deferred_reply`.

use std::convert::Infallible;

use otp_core::ExitReason;
use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init, ReplyTo};
use otp_core::task_supervisor::TaskSupervisor;

struct Gate {
    waiting: Vec<ReplyTo<String>>,
    tasks: TaskSupervisor,
}

enum Call {
    /// Replies when the gate opens.
    Wait,
    /// Replies at once with how many callers are waiting.
    Count,
    /// Opens the gate: every waiter gets `message`; the last one's reply is sent by a task.
    Open(String),
}

impl GenServer for Gate {
    type Args = TaskSupervisor;
    type Call = Call;
    type Reply = String;
    type Cast = Infallible;
    type Info = Infallible;
    type Continue = ();

    async fn init(tasks: TaskSupervisor, _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        Ok(Init::Ready(Gate {
            waiting: Vec::new(),
            tasks,
        }))
    }

    async fn handle_call(
        &mut self,
        request: Call,
        caller: Caller<'_, String>,
        _: &mut Context<Self>,
    ) -> Result<CallResult<String>, BoxError> {
        match request {
            Call::Wait => {
                // {noreply, State}: keep the caller waiting; its reply handle lives in our state.
                self.waiting.push(caller.defer());
                Ok(CallResult::NoReply)
            }
            Call::Count => Ok(CallResult::Reply(self.waiting.len().to_string())),
            Call::Open(message) => {
                let mut waiting = std::mem::take(&mut self.waiting);
                if let Some(last) = waiting.pop() {
                    // The handle moves into another process, which replies for us.
                    let reply = format!("{message} (from a task)");
                    self.tasks
                        .start_child(async move {
                            let _ = last.reply(reply);
                            Ok(())
                        })
                        .await?;
                }
                for waiter in waiting {
                    // A caller that gave up (timed out) simply does not get it.
                    let _ = waiter.reply(message.clone());
                }
                Ok(CallResult::Reply("opened".into()))
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tasks = TaskSupervisor::start().await?;
    let gate = Gate::start(tasks).await?;

    let mut waiters = Vec::new();
    for i in 0..3 {
        let gate = gate.clone();
        waiters.push(async move { (i, gate.call(Call::Wait).await) });
    }
    let waiters = futures::future::join_all(waiters);

    // The server keeps answering while three calls are parked in its state.
    let opener = async {
        loop {
            if gate.call(Call::Count).await? == "3" {
                break;
            }
            tokio::task::yield_now().await;
        }
        gate.call(Call::Open("welcome".into())).await
    };
    let (replies, opened) = tokio::join!(waiters, opener);
    println!("open: {}", opened?);
    for (i, reply) in replies {
        println!("waiter {i}: {}", reply?);
    }
    gate.stop(ExitReason::Normal, std::time::Duration::from_secs(5))
        .await?;
    Ok(())
}
