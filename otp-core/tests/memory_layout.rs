//! The footprint of an idle server, counted exactly by a counting allocator: the rules of the
//! "Memory layout" section of `gen_server` keep it small, and this test fails when one of them
//! is broken (a second await point in a callback's slot, a field stored twice in the task, a
//! task that no longer fits its size class, an allocation an idle server did not need).
//!
//! One test in this binary, so that no other test allocates while it counts. The counting
//! allocator is `dhat`'s, in its testing mode.

use otp_core::gen_server::{BoxError, CallResult, Caller, Context, GenServer, Init};
use otp_core::{ExitReason, ServerRef};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// The bytes allocated now.
fn live_bytes() -> isize {
    dhat::HeapStats::get().curr_bytes as isize
}

/// The benchmarks' counter server (W7): a `u64` of state, a call, a cast.
struct Counter(u64);

impl GenServer for Counter {
    type Args = ();
    type Call = u64;
    type Reply = u64;
    type Cast = ();
    type Info = ();
    type Continue = ();

    async fn init(_: (), _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        Ok(Init::Ready(Counter(0)))
    }

    async fn handle_call(
        &mut self,
        n: u64,
        _: Caller<'_, u64>,
        _: &mut Context<Self>,
    ) -> Result<CallResult<u64>, BoxError> {
        self.0 += n;
        Ok(CallResult::Reply(self.0))
    }

    async fn handle_cast(&mut self, (): (), _: &mut Context<Self>) -> Result<(), BoxError> {
        self.0 += 1;
        Ok(())
    }
}

/// What one idle server costs on the heap: 552 bytes on x86-64 with rustc 1.95 when this was
/// written, and room for a compiler laying a future out a little differently. The server's
/// shared part (`ServerProcess`, 152 bytes) sits just under an allocator size class: at 160 or
/// 168 bytes the peers bench's W7 measured 800–809 B of RSS per server instead of 749.
/// Raise it only with a reason; the peers bench's W7 target is 800 bytes of RSS per server.
const MAX_BYTES_PER_IDLE_SERVER: isize = 576;

#[test]
fn an_idle_server_costs_at_most_its_budget_on_the_heap() {
    const SERVERS: usize = 2_000;
    let _profiler = dhat::Profiler::builder().testing().build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Warm the runtime (its timer, its task lists) with servers that then stop.
        for _ in 0..2 {
            let warm: Vec<ServerRef<Counter>> = {
                let mut servers = Vec::with_capacity(SERVERS);
                for _ in 0..SERVERS {
                    servers.push(Counter::start(()).await.unwrap());
                }
                servers
            };
            for server in &warm {
                server
                    .stop(ExitReason::Normal, std::time::Duration::from_secs(5))
                    .await
                    .unwrap();
            }
        }
        let mut servers = Vec::with_capacity(SERVERS);
        let before = live_bytes();
        for _ in 0..SERVERS {
            servers.push(Counter::start(()).await.unwrap());
        }
        // Every server has run until it waits on its empty mailbox.
        tokio::task::yield_now().await;
        let per_server = (live_bytes() - before) / SERVERS as isize;
        println!("{per_server} bytes per idle server");
        assert!(
            per_server <= MAX_BYTES_PER_IDLE_SERVER,
            "an idle server now takes {per_server} bytes of heap, over its budget of \
             {MAX_BYTES_PER_IDLE_SERVER}: see gen_server's \"Memory layout\" section"
        );
        assert_eq!(servers[0].call(1).await, Ok(1));
    });
}
