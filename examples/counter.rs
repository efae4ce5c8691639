//! The smallest GenServer: init, call, cast, stop (Elixir's `Counter` from the GenServer guide).
//!
//! Run with `cargo run -p examples --example counter`.

use std::convert::Infallible;
use std::time::Duration;

use otp_core::ExitReason;
use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init};

struct Counter {
    value: i64,
}

enum Call {
    Get,
    Add(i64),
}

enum Cast {
    Increment,
}

impl GenServer for Counter {
    type Args = i64;
    type Call = Call;
    type Reply = i64;
    type Cast = Cast;
    type Info = Infallible;
    type Continue = ();

    async fn init(start: i64, ctx: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        println!("counter {} starting at {start}", ctx.pid());
        Ok(Init::Ready(Counter { value: start }))
    }

    async fn handle_call(
        &mut self,
        request: Call,
        _: Caller<'_, i64>,
        _: &mut Context<Self>,
    ) -> Result<CallResult<i64>, BoxError> {
        match request {
            Call::Get => {}
            Call::Add(n) => self.value += n,
        }
        Ok(CallResult::Reply(self.value))
    }

    async fn handle_cast(
        &mut self,
        Cast::Increment: Cast,
        _: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        self.value += 1;
        Ok(())
    }

    async fn terminate(&mut self, reason: &ExitReason, _: &mut Context<Self>) {
        println!("counter stopping ({reason}) at {}", self.value);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let counter = Counter::start(0).await?;
    for _ in 0..3 {
        counter.cast(Cast::Increment)?;
    }
    // Casts from one sender are handled before its later call: this sees all three increments.
    println!("after 3 increments: {}", counter.call(Call::Get).await?);
    println!("after adding 39: {}", counter.call(Call::Add(39)).await?);
    counter
        .stop(ExitReason::Normal, Duration::from_secs(5))
        .await?;
    // A stopped server answers nothing, at once.
    println!("call after stop: {:?}", counter.call(Call::Get).await);
    Ok(())
}
