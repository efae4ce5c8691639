//! Shared test fixtures: a scriptable `Probe` server that logs what happens to it, and
//! `trace_init()`.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::Duration;

use otp_core::gen_server::{
    BoxError, CallError, CallResult, Caller, Context, GenServer, Init, ReplyTo,
};
use otp_core::monitor::Down;
use otp_core::testing::EventLog;
use otp_core::{ExitReason, ServerRef};
use tokio::sync::oneshot;

/// A generous deadline for waiting on events; with a paused clock it costs no real time.
pub const WAIT: Duration = Duration::from_secs(5);

/// Waits for the first supervisor event that `matches`, failing the test after [`WAIT`].
pub async fn next_event_matching(
    events: &mut otp_core::supervisor::EventStream,
    matches: impl Fn(&otp_core::supervisor::SupervisorEvent) -> bool,
) -> otp_core::supervisor::SupervisorEvent {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events.next().await.expect("the supervisor is running");
            if matches(&event) {
                return event;
            }
        }
    })
    .await
    .expect("the expected supervisor event within the deadline")
}

/// Installs a test subscriber so failing tests show the processes' logs (`RUST_LOG=debug`).
pub fn trace_init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// What `Probe::init` does.
#[derive(Debug, Clone)]
pub enum InitScript {
    Ok,
    OkContinue(String),
    Ignore,
    Stop(ExitReason),
    Fail(&'static str),
    Panic(&'static str),
    /// Never finishes (awaits a future that never resolves).
    Block,
}

pub struct ProbeArgs {
    pub id: String,
    pub log: EventLog,
    pub init: InitScript,
}

impl ProbeArgs {
    pub fn new(id: &str, log: &EventLog) -> ProbeArgs {
        ProbeArgs {
            id: id.to_string(),
            log: log.clone(),
            init: InitScript::Ok,
        }
    }

    pub fn init(mut self, init: InitScript) -> ProbeArgs {
        self.init = init;
        self
    }
}

/// A server that logs `init(id)`, `handled(x)`, `info(x)`, `continue(x)`, `down(reason)` and
/// `terminate(id, reason)` to a shared [`EventLog`], and does what each request says.
pub struct Probe {
    id: String,
    log: EventLog,
    deferred: Vec<ReplyTo<Reply>>,
}

pub enum Call {
    Echo(u64),
    /// Defers the reply until a `Release`.
    Defer,
    /// Replies `v` to every deferred caller, then replies `Ok` itself.
    Release(u64),
    /// Replies after `delay`, through a timer, and logs `replied(v)` when it does.
    SlowEcho(u64, Duration),
    Panic(&'static str),
    Fail(&'static str),
    /// Stops with `reason` without replying.
    StopNoReply(ExitReason),
    /// Replies `v`, then stops with `reason`.
    StopWithReply(ExitReason, u64),
    /// Calls its own handle (`call(self(), …)`) with an infinite timeout and replies with the error it gets.
    Myself,
    /// Never returns (awaits a future that never resolves).
    Block,
    /// Awaits `rx`, then replies.
    WaitFor(Mutexed<oneshot::Receiver<()>>),
    /// Asks for `handle_continue(x)` and replies.
    Continue(String),
    /// Hands its reply handle to a task (another process) that replies `v`.
    ReplyFromTask(u64, otp_core::task_supervisor::TaskSupervisor),
}

/// Wraps a value so `Call` does not need `Debug` or `Clone` for it.
pub struct Mutexed<T>(pub T);

#[derive(Debug, PartialEq)]
pub enum Reply {
    Value(u64),
    Ok,
    Error(CallError),
}

pub enum Cast {
    /// Logs `handled(x)`; if `slow`, yields a few times first (it never sleeps).
    Log(String),
    Panic(&'static str),
    Stop(ExitReason),
    /// Blocks until the receiver resolves (to hold the mailbox while the test queues more).
    Pause(Mutexed<oneshot::Receiver<()>>),
}

pub enum Info {
    Log(String),
    Down(Down),
    Reply(u64),
}

impl GenServer for Probe {
    type Args = ProbeArgs;
    type Call = Call;
    type Reply = Reply;
    type Cast = Cast;
    type Info = Info;
    type Continue = String;

    async fn init(args: ProbeArgs, ctx: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        args.log.push(format!("init({})", args.id));
        let probe = Probe {
            id: args.id,
            log: args.log,
            deferred: Vec::new(),
        };
        match args.init {
            InitScript::Ok => Ok(Init::Ready(probe)),
            InitScript::OkContinue(value) => {
                ctx.continue_with(value);
                Ok(Init::Ready(probe))
            }
            InitScript::Ignore => Ok(Init::Ignore),
            InitScript::Stop(reason) => Ok(Init::Stop(reason)),
            InitScript::Fail(message) => Err(message.into()),
            InitScript::Panic(message) => panic!("{message}"),
            InitScript::Block => std::future::pending().await,
        }
    }

    async fn handle_call(
        &mut self,
        request: Call,
        caller: Caller<'_, Reply>,
        ctx: &mut Context<Self>,
    ) -> Result<CallResult<Reply>, BoxError> {
        match request {
            Call::Echo(v) => Ok(CallResult::Reply(Reply::Value(v))),
            Call::Defer => {
                self.deferred.push(caller.defer());
                Ok(CallResult::NoReply)
            }
            Call::Release(v) => {
                for reply_to in self.deferred.drain(..) {
                    let _ = reply_to.reply(Reply::Value(v));
                }
                Ok(CallResult::Reply(Reply::Ok))
            }
            Call::SlowEcho(v, delay) => {
                self.deferred.push(caller.defer());
                ctx.send_after(delay, Info::Reply(v))?;
                Ok(CallResult::NoReply)
            }
            Call::Panic(message) => panic!("{message}"),
            Call::Fail(message) => Err(message.into()),
            Call::StopNoReply(reason) => {
                ctx.stop(reason);
                Ok(CallResult::NoReply)
            }
            Call::StopWithReply(reason, v) => {
                ctx.stop(reason);
                Ok(CallResult::Reply(Reply::Value(v)))
            }
            Call::Myself => {
                let me = ctx.server_ref();
                let result = me
                    .call_timeout(Call::Echo(1), otp_core::gen_server::Timeout::Infinity)
                    .await;
                Ok(CallResult::Reply(match result {
                    Ok(_) => Reply::Ok,
                    Err(error) => Reply::Error(error),
                }))
            }
            Call::Block => std::future::pending().await,
            Call::WaitFor(Mutexed(rx)) => {
                let _ = rx.await;
                Ok(CallResult::Reply(Reply::Ok))
            }
            Call::Continue(value) => {
                ctx.continue_with(value);
                Ok(CallResult::Reply(Reply::Ok))
            }
            Call::ReplyFromTask(v, tasks) => {
                let reply_to = caller.defer();
                tasks
                    .start_child(async move {
                        let _ = reply_to.reply(Reply::Value(v));
                        Ok(())
                    })
                    .await?;
                Ok(CallResult::NoReply)
            }
        }
    }

    async fn handle_cast(
        &mut self,
        message: Cast,
        ctx: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        match message {
            Cast::Log(x) => {
                // Let other tasks run in between, as real work would; never sleep.
                tokio::task::yield_now().await;
                self.log.push(format!("handled({x})"));
            }
            Cast::Panic(message) => panic!("{message}"),
            Cast::Stop(reason) => ctx.stop(reason),
            Cast::Pause(Mutexed(rx)) => {
                let _ = rx.await;
            }
        }
        Ok(())
    }

    async fn handle_info(&mut self, message: Info, _: &mut Context<Self>) -> Result<(), BoxError> {
        match message {
            Info::Log(x) => self.log.push(format!("info({x})")),
            Info::Down(down) => self.log.push(format!("down({})", down.reason)),
            Info::Reply(v) => {
                let reply_to = self.deferred.remove(0);
                let _ = reply_to.reply(Reply::Value(v));
                self.log.push(format!("replied({v})"));
            }
        }
        Ok(())
    }

    async fn handle_continue(
        &mut self,
        value: String,
        _: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        self.log.push(format!("continue({value})"));
        Ok(())
    }

    async fn terminate(&mut self, reason: &ExitReason, _: &mut Context<Self>) {
        self.log.push(format!("terminate({}, {reason})", self.id));
    }
}

pub async fn start_probe(id: &str, log: &EventLog) -> ServerRef<Probe> {
    Probe::start(ProbeArgs::new(id, log))
        .await
        .expect("probe starts")
}

// ------------------------------------------------------------------------------------------
// The specification's probe worker `P(id, restart, shutdown, script)` for supervisor tests.

pub mod child {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use otp_core::gen_server::{BoxError, Context, GenServer, Init, StartError};
    use otp_core::supervisor::{ChildSpec, Restart, Shutdown};
    use otp_core::testing::EventLog;
    use otp_core::{ExitReason, Pid, ServerRef};
    use parking_lot::Mutex;

    /// What one incarnation's `init` does.
    #[derive(Debug, Clone)]
    pub enum Script {
        Ok,
        Error(&'static str),
        Ignore,
        Panic,
    }

    /// Spends `duration` of (usually paused) clock time: a slow cleanup, not a sleep-based wait.
    pub async fn take_time(duration: Duration) {
        let _ = tokio::time::timeout(duration, std::future::pending::<()>()).await;
    }

    /// The current incarnation of every probe, by id.
    #[derive(Clone, Default)]
    pub struct Probes {
        pub log: EventLog,
        current: Arc<Mutex<HashMap<String, ServerRef<Worker>>>>,
    }

    impl Probes {
        pub fn new() -> Probes {
            Probes::default()
        }

        pub fn worker(&self, id: &str) -> P {
            P {
                id: id.to_string(),
                probes: self.clone(),
                restart: Restart::Permanent,
                shutdown: Shutdown::Timeout(Duration::from_secs(1)),
                cleanup: None,
                script: Arc::new(|_| Script::Ok),
                incarnation: Arc::new(AtomicUsize::new(0)),
            }
        }

        pub fn current(&self, id: &str) -> ServerRef<Worker> {
            self.current
                .lock()
                .get(id)
                .cloned()
                .expect("probe was started")
        }

        pub fn pid(&self, id: &str) -> Pid {
            self.current(id).pid()
        }

        /// `crash(id)`: the current incarnation panics.
        pub fn crash(&self, id: &str) {
            self.current(id).cast(Command::Crash).unwrap_or(());
        }

        /// `exit(id, R)`: the current incarnation stops itself with R.
        pub fn exit(&self, id: &str, reason: ExitReason) {
            self.current(id).cast(Command::Exit(reason)).unwrap_or(());
        }

        /// `kill(id)`: killed from outside.
        pub fn kill(&self, id: &str) {
            otp_core::process::exit(self.pid(id), ExitReason::Killed);
        }

        pub fn events(&self) -> Vec<String> {
            self.log.events()
        }

        pub async fn wait_for(&self, event: &str) -> Vec<String> {
            self.log.wait_for(event, super::WAIT).await
        }
    }

    /// Builder for one probe child.
    #[derive(Clone)]
    pub struct P {
        id: String,
        probes: Probes,
        restart: Restart,
        shutdown: Shutdown,
        cleanup: Option<Option<Duration>>,
        script: Arc<dyn Fn(usize) -> Script + Send + Sync>,
        incarnation: Arc<AtomicUsize>,
    }

    impl P {
        pub fn restart(mut self, restart: Restart) -> P {
            self.restart = restart;
            self
        }
        pub fn shutdown(mut self, shutdown: Shutdown) -> P {
            self.shutdown = shutdown;
            self
        }
        /// Logs `terminate(id#n, reason)` when stopped, after taking `duration`.
        pub fn graceful(mut self, duration: Duration) -> P {
            self.cleanup = Some(Some(duration));
            self
        }
        /// Logs `stopping(id#n, reason)` when asked to stop, and never completes its cleanup.
        pub fn stubborn(mut self) -> P {
            self.cleanup = Some(None);
            self
        }
        /// The init script per incarnation (1-based).
        pub fn script(mut self, script: impl Fn(usize) -> Script + Send + Sync + 'static) -> P {
            self.script = Arc::new(script);
            self
        }

        pub fn spec(self) -> ChildSpec {
            let id = self.id.clone();
            let restart = self.restart;
            let shutdown = self.shutdown;
            ChildSpec::new(id, move || {
                let p = self.clone();
                async move { p.start().await }
            })
            .restart(restart)
            .shutdown(shutdown)
        }

        async fn start(self) -> Result<ServerRef<Worker>, StartError> {
            let n = self.incarnation.fetch_add(1, Ordering::SeqCst) + 1;
            let name = format!("{}#{n}", self.id);
            let args = WorkerArgs {
                name: name.clone(),
                log: self.probes.log.clone(),
                cleanup: self.cleanup,
                script: (self.script)(n),
            };
            let server = Worker::start(args).await?;
            let log = self.probes.log.clone();
            otp_core::testing::on_exit(server.pid(), move |reason| {
                log.push(format!("exit({name}, {reason})"))
            });
            self.probes
                .current
                .lock()
                .insert(self.id.clone(), server.clone());
            Ok(server)
        }
    }

    pub struct WorkerArgs {
        name: String,
        log: EventLog,
        cleanup: Option<Option<Duration>>,
        script: Script,
    }

    impl WorkerArgs {
        /// A plain worker named `name` that logs `start(name)` to `log`.
        pub fn for_test(name: &str, log: &EventLog) -> WorkerArgs {
            WorkerArgs {
                name: name.to_string(),
                log: log.clone(),
                cleanup: None,
                script: Script::Ok,
            }
        }
    }

    pub struct Worker {
        name: String,
        log: EventLog,
        cleanup: Option<Option<Duration>>,
    }

    pub enum Command {
        Crash,
        Exit(ExitReason),
    }

    impl GenServer for Worker {
        type Args = WorkerArgs;
        type Call = ();
        type Reply = String;
        type Cast = Command;
        type Info = ();
        type Continue = ();

        async fn init(args: WorkerArgs, _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
            match args.script {
                Script::Ok => {
                    args.log.push(format!("start({})", args.name));
                    Ok(Init::Ready(Worker {
                        name: args.name,
                        log: args.log,
                        cleanup: args.cleanup,
                    }))
                }
                Script::Error(reason) => {
                    args.log.push(format!("failed({})", args.name));
                    Err(reason.into())
                }
                Script::Ignore => {
                    args.log.push(format!("ignored({})", args.name));
                    Ok(Init::Ignore)
                }
                Script::Panic => {
                    args.log.push(format!("failed({})", args.name));
                    panic!("init crashed")
                }
            }
        }

        async fn handle_call(
            &mut self,
            _: (),
            _: otp_core::gen_server::Caller<'_, String>,
            _: &mut Context<Self>,
        ) -> Result<otp_core::gen_server::CallResult<String>, BoxError> {
            Ok(otp_core::gen_server::CallResult::Reply(self.name.clone()))
        }

        async fn handle_cast(
            &mut self,
            command: Command,
            ctx: &mut Context<Self>,
        ) -> Result<(), BoxError> {
            match command {
                Command::Crash => Err("crash".into()),
                Command::Exit(reason) => {
                    ctx.stop(reason);
                    Ok(())
                }
            }
        }

        async fn terminate(&mut self, reason: &ExitReason, _: &mut Context<Self>) {
            match self.cleanup {
                // Not graceful: nothing to log.
                None => {}
                Some(Some(duration)) => {
                    take_time(duration).await;
                    self.log.push(format!("terminate({}, {reason})", self.name));
                }
                Some(None) => {
                    self.log.push(format!("stopping({}, {reason})", self.name));
                    std::future::pending::<()>().await
                }
            }
        }
    }
}

/// The next supervisor event that `pick` selects, read within [`WAIT`]; fails naming `what`
/// if none comes (or the stream ends) in time, instead of waiting for ever.
pub async fn next_event<T>(
    events: &mut otp_core::supervisor::EventStream,
    what: &str,
    pick: impl Fn(otp_core::supervisor::SupervisorEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .unwrap_or_else(|_| panic!("no {what} event within {WAIT:?}"))
            .unwrap_or_else(|error| panic!("waiting for {what}: {error}"));
        if let Some(picked) = pick(event) {
            return picked;
        }
    }
}

/// Asserts that `actual` and `expected` print the same with `{:?}`. For values that hold an
/// `ExitReason::Error`, which equals only itself and its clones, this compares the error's
/// message.
#[track_caller]
pub fn assert_same<T: std::fmt::Debug>(actual: T, expected: T) {
    assert_eq!(format!("{actual:?}"), format!("{expected:?}"));
}

/// Runs `test` on a runtime built by `builder`, in a thread of its own, and fails with
/// `frozen` rather than hangs if it has not finished within 30 s. For tests of what could
/// freeze the runtime itself (a server that never yields, a deadlock on an internal lock),
/// where the test's own timeouts would never fire.
pub fn watched<F>(
    mut builder: tokio::runtime::Builder,
    frozen: &'static str,
    test: impl FnOnce() -> F + Send + 'static,
) where
    F: Future<Output = ()>,
{
    let (done, finished) = std::sync::mpsc::channel();
    let runner = std::thread::spawn(move || {
        let runtime = builder.enable_all().build().unwrap();
        runtime.block_on(test());
        let _ = done.send(());
    });
    match finished.recv_timeout(Duration::from_secs(30)) {
        Ok(()) => runner.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            // The test panicked: report its panic.
            if let Err(panic) = runner.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("{frozen} (30 s)"),
    }
}

/// [`watched`] on a runtime with two worker threads.
pub fn watched_on_two_threads<F>(frozen: &'static str, test: impl FnOnce() -> F + Send + 'static)
where
    F: Future<Output = ()>,
{
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2);
    watched(builder, frozen, test);
}
