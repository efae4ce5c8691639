//! A name registry: start servers under names, call them by name, and watch names vanish when
//! their process exits.
//!
//! Run with `cargo run -p examples --example registry`.

use std::time::Duration;

use otp_core::ServerRef;
use otp_core::gen_server::{
    BoxError, CallError, CallResult, Caller, Context, GenServer, Init, StartError, StartOptions,
};
use otp_core::registry::Registry;

/// A tiny key-value "account" server.
struct Account {
    balance: i64,
}

enum Call {
    Deposit(i64),
    Crash,
}

impl GenServer for Account {
    type Args = i64;
    type Call = Call;
    type Reply = i64;
    type Cast = std::convert::Infallible;
    type Info = std::convert::Infallible;
    type Continue = ();

    async fn init(balance: i64, _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        Ok(Init::Ready(Account { balance }))
    }

    async fn handle_call(
        &mut self,
        request: Call,
        _: Caller<'_, i64>,
        _: &mut Context<Self>,
    ) -> Result<CallResult<i64>, BoxError> {
        match request {
            Call::Deposit(amount) => {
                self.balance += amount;
                Ok(CallResult::Reply(self.balance))
            }
            // Let it crash: the registry forgets the name by itself.
            Call::Crash => Err("account corrupted".into()),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let accounts: Registry<String, ServerRef<Account>> = Registry::start().await?;

    for (name, balance) in [("alice", 100), ("bob", 20)] {
        Account::start_with(
            balance,
            StartOptions::new().name(accounts.via(name.to_string())),
        )
        .await?;
    }
    println!("registered accounts: {}", accounts.count());

    // Names are unique: a second "alice" is refused and its init never runs.
    match Account::start_with(
        0,
        StartOptions::new().name(accounts.via("alice".to_string())),
    )
    .await
    {
        Err(StartError::AlreadyStarted(pid)) => println!("alice already started as {pid}"),
        other => println!("unexpected: {other:?}"),
    }

    let alice = accounts.via("alice".to_string());
    println!(
        "alice after deposit: {}",
        alice.call(Call::Deposit(5)).await?
    );

    // Crash bob; once his exit is observable, his name is gone.
    let bob = accounts.via("bob".to_string());
    let bob_pid = bob.whereis().map(|b| b.pid());
    let down = otp_core::monitor::monitor(bob_pid.ok_or("bob is not running")?);
    println!(
        "bob's crash, as his caller sees it: {:?}",
        bob.call(Call::Crash).await
    );
    println!("bob exited: {}", down.await.reason);
    println!(
        "lookup bob after his exit: {:?}",
        accounts.lookup(&"bob".to_string()).map(|(pid, _)| pid)
    );
    assert_eq!(bob.call(Call::Deposit(1)).await, Err(CallError::NoProc));

    // The name is free again at once.
    Account::start_with(0, StartOptions::new().name(accounts.via("bob".to_string()))).await?;
    println!("new bob: {}", bob.call(Call::Deposit(1)).await?);

    accounts.stop(Duration::from_secs(5)).await?;
    println!("after the registry stopped: {} names", accounts.count());
    Ok(())
}
