//! Introspection: `process::info` (status, mailbox length, monitors, links, trapping, parent),
//! `sys::get_state` through `format_status` (opt-in, redacting, panics contained, in mailbox
//! order, no room taken), and `observer::tree` (ids, pids, kinds, restart counts, nested and
//! dynamic supervisors, task supervisors).

mod support;

use std::num::NonZeroUsize;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::poll;
use otp_core::dynamic_supervisor::{DynamicSupervisor, DynamicSupervisorOptions};
use otp_core::gen_server::{
    BoxError, CallError, CallResult, Caller, Context, GenServer, Init, StartOptions,
};
use otp_core::name::Name;
use otp_core::observer::{self, SupervisorKind, TreeError};
use otp_core::process::{ProcessKind, ProcessStatus, info};
use otp_core::supervisor::{
    ChildSpec, ChildStatus, ChildType, Strategy, SupFlags, Supervisor, SupervisorEvent,
};
use otp_core::sys::{self, GetStateError};
use otp_core::task_supervisor::TaskSupervisor;
use otp_core::testing::EventLog;
use otp_core::{ExitReason, Pid, ServerRef};
use tokio::sync::{Semaphore, mpsc, oneshot};

use support::{WAIT, next_event_matching};

/// A server that counts casts; `Block` casts wait for a permit of `gate`, logging `blocked`.
struct Worker {
    count: u64,
    log: EventLog,
    gate: Arc<Semaphore>,
    /// What `format_status` does.
    show: Show,
}

#[derive(Clone, Copy)]
enum Show {
    Nothing,
    Count,
    Panic,
}

struct WorkerArgs {
    log: EventLog,
    gate: Arc<Semaphore>,
    show: Show,
    /// Sends its pid, then waits for a permit of `gate` in `init`.
    slow_init: Option<oneshot::Sender<Pid>>,
    /// Attached as a stream; each item is handled like a `Block` cast.
    stream: Option<mpsc::UnboundedReceiver<()>>,
    trap_exits: bool,
}

impl WorkerArgs {
    fn new(log: &EventLog, gate: &Arc<Semaphore>) -> WorkerArgs {
        WorkerArgs {
            log: log.clone(),
            gate: gate.clone(),
            show: Show::Count,
            slow_init: None,
            stream: None,
            trap_exits: false,
        }
    }
}

enum Cast {
    Inc,
    Block,
}

enum Info {
    Tick,
    Item,
    Exit,
}

enum Call {
    Get,
    /// `sys::get_state` of itself.
    OwnState,
    /// Sets a timer whose message blocks like a `Block` cast.
    TickIn(Duration),
}

impl Worker {
    async fn block(&self, what: &str) {
        self.log.push(format!("blocked({what})"));
        self.gate.acquire().await.expect("open").forget();
    }
}

impl GenServer for Worker {
    type Args = WorkerArgs;
    type Call = Call;
    type Reply = Result<u64, GetStateError>;
    type Cast = Cast;
    type Info = Info;
    type Continue = ();

    async fn init(args: WorkerArgs, ctx: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        if let Some(pid) = args.slow_init {
            let _ = pid.send(ctx.pid());
            args.gate.acquire().await?.forget();
        }
        if let Some(mut items) = args.stream {
            let items = futures::stream::poll_fn(move |cx| items.poll_recv(cx));
            ctx.attach_stream(items, |_| Info::Item);
        }
        if args.trap_exits {
            ctx.trap_exits(|_| Info::Exit);
        }
        Ok(Init::Ready(Worker {
            count: 0,
            log: args.log,
            gate: args.gate,
            show: args.show,
        }))
    }

    async fn handle_call(
        &mut self,
        request: Call,
        _: Caller<'_, Self::Reply>,
        ctx: &mut Context<Self>,
    ) -> Result<CallResult<Self::Reply>, BoxError> {
        Ok(CallResult::Reply(match request {
            Call::Get => Ok(self.count),
            Call::OwnState => sys::get_state(&ctx.server_ref(), WAIT).await.map(|_| 0),
            Call::TickIn(after) => {
                ctx.send_after(after, Info::Tick)?;
                Ok(0)
            }
        }))
    }

    async fn handle_cast(&mut self, message: Cast, _: &mut Context<Self>) -> Result<(), BoxError> {
        match message {
            Cast::Inc => self.count += 1,
            Cast::Block => self.block("cast").await,
        }
        Ok(())
    }

    async fn handle_info(&mut self, info: Info, _: &mut Context<Self>) -> Result<(), BoxError> {
        match info {
            Info::Tick => self.block("tick").await,
            Info::Item => self.block("item").await,
            Info::Exit => self.log.push("exit"),
        }
        Ok(())
    }

    fn format_status(&self) -> Option<String> {
        match self.show {
            Show::Nothing => None,
            Show::Count => Some(format!("count = {}", self.count)),
            Show::Panic => panic!("cannot format"),
        }
    }
}

struct Fixture {
    log: EventLog,
    gate: Arc<Semaphore>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            log: EventLog::new(),
            gate: Arc::new(Semaphore::new(0)),
        }
    }

    fn args(&self) -> WorkerArgs {
        WorkerArgs::new(&self.log, &self.gate)
    }

    async fn start(&self) -> ServerRef<Worker> {
        Worker::start(self.args()).await.expect("start")
    }
}

/// Waits, boundedly, until `pid`'s status is `status` (a server reaches its receive loop on its
/// own task, after `start` returned).
async fn status_becomes(pid: Pid, status: ProcessStatus) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = info(pid).map(|info| info.status);
        if now == Some(status) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{pid} did not become {status:?}; it is {now:?}"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn an_idle_server_is_waiting_with_an_empty_mailbox_and_its_watchers_counted() {
    let f = Fixture::new();
    let server = f.start().await;
    status_becomes(server.pid(), ProcessStatus::Waiting).await;
    let _first = server.monitor();
    let _second = otp_core::monitor::monitor(server.pid());
    let info = info(server.pid()).expect("alive");
    assert_eq!(info.pid, server.pid());
    assert_eq!(info.kind, ProcessKind::Server);
    assert!(
        info.name.ends_with("Worker"),
        "named by its type: {}",
        info.name
    );
    assert_eq!(info.message_queue_len, 0);
    assert_eq!(info.monitored_by, 2);
    assert_eq!((info.links, info.traps_exits), (0, false));
    assert_eq!(info.parent, None, "started from a plain task");
}

#[tokio::test]
async fn a_busy_server_is_running_and_shows_what_waits_in_its_mailbox() {
    let f = Fixture::new();
    let server = f.start().await;
    server.cast(Cast::Block).unwrap();
    f.log.wait_for("blocked(cast)", WAIT).await;
    for _ in 0..3 {
        server.cast(Cast::Inc).unwrap();
    }
    let info = info(server.pid()).expect("alive");
    assert_eq!(info.status, ProcessStatus::Running);
    assert_eq!(info.message_queue_len, 3);
    f.gate.add_permits(1);
    assert_eq!(server.call(Call::Get).await, Ok(Ok(3)));
    status_becomes(server.pid(), ProcessStatus::Waiting).await;
}

#[tokio::test]
async fn a_server_handling_a_timer_or_a_stream_item_is_running_not_waiting() {
    let f = Fixture::new();
    let (items, stream) = mpsc::unbounded_channel();
    let mut args = f.args();
    args.stream = Some(stream);
    let server = Worker::start(args).await.unwrap();

    server
        .call(Call::TickIn(Duration::from_millis(1)))
        .await
        .unwrap()
        .unwrap();
    f.log.wait_for("blocked(tick)", WAIT).await;
    assert_eq!(info(server.pid()).unwrap().status, ProcessStatus::Running);
    f.gate.add_permits(1);
    status_becomes(server.pid(), ProcessStatus::Waiting).await;

    items.send(()).unwrap();
    f.log.wait_for("blocked(item)", WAIT).await;
    assert_eq!(info(server.pid()).unwrap().status, ProcessStatus::Running);
    f.gate.add_permits(1);
    status_becomes(server.pid(), ProcessStatus::Waiting).await;
}

#[tokio::test]
async fn a_server_in_init_is_starting_and_a_dead_one_has_no_info() {
    let f = Fixture::new();
    let (pid_tx, pid_rx) = oneshot::channel();
    let mut args = f.args();
    args.slow_init = Some(pid_tx);
    let start = tokio::spawn(Worker::start(args));
    let pid = pid_rx.await.unwrap();
    assert_eq!(info(pid).unwrap().status, ProcessStatus::Starting);
    f.gate.add_permits(1);
    let server = start.await.unwrap().unwrap();
    status_becomes(pid, ProcessStatus::Waiting).await;

    server.stop(ExitReason::Normal, WAIT).await.unwrap();
    assert_eq!(info(pid), None);
    assert_eq!(info(Pid::new_unique()), None);
}

#[tokio::test]
async fn links_trapping_and_a_tasks_info_are_reported() {
    let f = Fixture::new();
    let mut args = f.args();
    args.trap_exits = true;
    let server = Worker::start(args).await.unwrap();
    let (linked_tx, linked_rx) = oneshot::channel();
    let (end, ends) = oneshot::channel::<()>();
    let target = server.pid();
    let task = otp_core::task::start(async move {
        otp_core::link::link(target)?;
        let _ = linked_tx.send(());
        let _ = ends.await;
        Ok(())
    })
    .unwrap();
    linked_rx.await.unwrap();

    let server_info = info(server.pid()).unwrap();
    assert_eq!((server_info.links, server_info.traps_exits), (1, true));
    let task_info = info(task.pid()).unwrap();
    assert_eq!(task_info.kind, ProcessKind::Task);
    assert_eq!(task_info.status, ProcessStatus::Running);
    assert_eq!((task_info.links, task_info.message_queue_len), (1, 0));
    end.send(()).unwrap();
}

#[tokio::test]
async fn a_supervised_childs_parent_is_its_supervisor_also_after_a_restart() {
    let f = Fixture::new();
    let (log, gate) = (f.log.clone(), f.gate.clone());
    let supervisor = Supervisor::start(
        SupFlags::new(Strategy::OneForOne),
        vec![ChildSpec::new("worker", move || {
            Worker::start(WorkerArgs::new(&log, &gate))
        })],
    )
    .await
    .unwrap();
    let mut events = supervisor.subscribe();
    let first = running_pid(&supervisor, "worker").await;
    assert_eq!(info(first).unwrap().parent, Some(supervisor.pid()));

    otp_core::process::exit(first, ExitReason::Killed);
    let restarted = next_event_matching(&mut events, |event| {
        matches!(event, SupervisorEvent::ChildRestarted { .. })
    })
    .await;
    let SupervisorEvent::ChildRestarted { pid, .. } = restarted else {
        unreachable!()
    };
    assert_eq!(info(pid).unwrap().parent, Some(supervisor.pid()));
}

async fn running_pid(supervisor: &Supervisor, id: &str) -> Pid {
    let children = supervisor.which_children().await.unwrap();
    let child = children
        .iter()
        .find(|child| child.id.as_deref() == Some(id))
        .expect("the child");
    match child.status {
        ChildStatus::Running(pid) => pid,
        other => panic!("{id} is {other:?}"),
    }
}

#[tokio::test]
async fn get_state_shows_what_format_status_renders_in_mailbox_order() {
    let f = Fixture::new();
    let server = f.start().await;
    for _ in 0..2 {
        server.cast(Cast::Inc).unwrap();
    }
    assert_eq!(
        sys::get_state(&server, WAIT).await,
        Ok("count = 2".to_string())
    );
}

#[tokio::test]
async fn get_state_of_a_private_state_or_a_panicking_format_is_an_error_and_the_server_lives_on() {
    let f = Fixture::new();
    let mut private = f.args();
    private.show = Show::Nothing;
    let private = Worker::start(private).await.unwrap();
    assert_eq!(
        sys::get_state(&private, WAIT).await,
        Err(GetStateError::NotShown)
    );

    let mut panicking = f.args();
    panicking.show = Show::Panic;
    let panicking = Worker::start(panicking).await.unwrap();
    match sys::get_state(&panicking, WAIT).await {
        Err(GetStateError::FormatPanicked(message)) => assert_eq!(&*message, "cannot format"),
        other => panic!("expected FormatPanicked, got {other:?}"),
    }
    assert_eq!(panicking.call(Call::Get).await, Ok(Ok(0)), "it carries on");
}

#[tokio::test]
async fn get_state_fails_like_a_call_on_a_stopped_server_or_on_itself() {
    let f = Fixture::new();
    let server = f.start().await;
    assert_eq!(
        server.call(Call::OwnState).await,
        Ok(Err(GetStateError::Call(CallError::CallingSelf)))
    );
    server.stop(ExitReason::Normal, WAIT).await.unwrap();
    assert_eq!(
        sys::get_state(&server, WAIT).await,
        Err(GetStateError::Call(CallError::NoProc))
    );
}

#[tokio::test]
async fn get_state_takes_no_room_in_a_full_bounded_mailbox() {
    let f = Fixture::new();
    let capacity = NonZeroUsize::new(1).unwrap();
    let server = Worker::start_with(f.args(), StartOptions::new().mailbox_capacity(capacity))
        .await
        .unwrap();
    server.cast(Cast::Block).unwrap();
    f.log.wait_for("blocked(cast)", WAIT).await;
    server.cast(Cast::Inc).unwrap();
    assert!(server.cast(Cast::Inc).is_err(), "full");
    let mut state = pin!(sys::get_state(&server, WAIT));
    assert!(poll!(state.as_mut()).is_pending(), "queued behind the Inc");
    f.gate.add_permits(1);
    assert_eq!(state.await, Ok("count = 1".to_string()));
    // Its answer freed no slot it had not taken: exactly one again.
    server.cast(Cast::Block).unwrap();
    f.log
        .wait_until(|events| events.len() == 2, WAIT)
        .await
        .expect("blocked again");
    server.cast(Cast::Inc).unwrap();
    assert!(server.cast(Cast::Inc).is_err(), "full again after one");
    f.gate.add_permits(1);
}

#[tokio::test]
async fn the_tree_shows_ids_pids_kinds_restarts_and_nested_supervisors() {
    let f = Fixture::new();
    let (log, gate) = (f.log.clone(), f.gate.clone());
    let (log2, gate2) = (f.log.clone(), f.gate.clone());
    // The tree gives pids; the test adds children through the supervisors' names.
    let conns_name: Name<DynamicSupervisor> = Name::new("conns");
    let tasks_name: Name<TaskSupervisor> = Name::new("tasks");
    let root = Supervisor::start(
        SupFlags::new(Strategy::OneForAll),
        vec![
            ChildSpec::new("a", move || Worker::start(WorkerArgs::new(&log, &gate))),
            ChildSpec::new("b", move || Worker::start(WorkerArgs::new(&log2, &gate2))),
            ChildSpec::supervisor(
                "conns",
                conns_name
                    .registering(|| DynamicSupervisor::start(DynamicSupervisorOptions::default())),
            ),
            ChildSpec::supervisor("tasks", tasks_name.registering(TaskSupervisor::start)),
        ],
    )
    .await
    .unwrap();
    let mut events = root.subscribe();

    // b crashes: one_for_all restarts a and b (and the two supervisors).
    let b = running_pid(&root, "b").await;
    assert!(otp_core::process::exit(b, ExitReason::error("crash")));
    for _ in 0..4 {
        next_event_matching(&mut events, |event| {
            matches!(event, SupervisorEvent::ChildRestarted { .. })
        })
        .await;
    }

    let tree = observer::tree(root.pid(), WAIT).await.unwrap();
    assert_eq!((tree.pid, tree.kind), (root.pid(), SupervisorKind::Static));
    let ids: Vec<_> = tree
        .children
        .iter()
        .map(|child| child.child.id.as_deref().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "conns", "tasks"]);
    for child in &tree.children {
        assert_eq!(
            child.child.restarts, 1,
            "{:?} restarted with the group",
            child.child.id
        );
        let ChildStatus::Running(pid) = child.child.status else {
            panic!("{:?} is running", child.child.id)
        };
        let process = child.process.as_ref().expect("running");
        assert_eq!(process.pid, pid);
        assert_eq!(process.parent, Some(root.pid()));
    }
    assert_eq!(tree.children[0].child.child_type, ChildType::Worker);
    assert!(tree.children[0].subtree.is_none());

    // The dynamic supervisor gets children, the task supervisor a task.
    let ChildStatus::Running(conns) = tree.children[2].child.status else {
        unreachable!()
    };
    let ChildStatus::Running(tasks) = tree.children[3].child.status else {
        unreachable!()
    };
    assert_eq!(
        tree.children[2]
            .subtree
            .as_ref()
            .map(|t| (t.kind, t.children.len())),
        Some((SupervisorKind::Dynamic, 0))
    );
    assert_eq!(
        tree.children[3]
            .subtree
            .as_ref()
            .map(|t| (t.kind, t.children.len())),
        Some((SupervisorKind::Task, 0))
    );
    let conns_handle = conns_name.get().unwrap();
    assert_eq!(conns_handle.pid(), conns);
    for _ in 0..2 {
        let (log, gate) = (f.log.clone(), f.gate.clone());
        conns_handle
            .start_child(ChildSpec::new("conn", move || {
                Worker::start(WorkerArgs::new(&log, &gate))
            }))
            .await
            .unwrap();
    }
    let tasks_handle = tasks_name.get().unwrap();
    assert_eq!(tasks_handle.pid(), tasks);
    let (end, ends) = oneshot::channel::<()>();
    let task = tasks_handle
        .start_child(async move {
            let _ = ends.await;
            Ok(())
        })
        .await
        .unwrap();

    let tree = observer::tree(root.pid(), WAIT).await.unwrap();
    let dynamic = tree.children[2].subtree.as_ref().unwrap();
    assert_eq!(dynamic.children.len(), 2);
    assert!(dynamic.children.iter().all(|child| {
        child.child.id.is_none()
            && child
                .process
                .as_ref()
                .is_some_and(|p| p.kind == ProcessKind::Server)
    }));
    let task_tree = tree.children[3].subtree.as_ref().unwrap();
    assert_eq!(task_tree.children.len(), 1);
    assert_eq!(
        task_tree.children[0].child.status,
        ChildStatus::Running(task)
    );
    assert_eq!(
        task_tree.children[0].process.as_ref().map(|p| p.kind),
        Some(ProcessKind::Task)
    );

    let drawn = tree.to_string();
    assert!(
        drawn.starts_with(&format!("{} supervisor (static)", root.pid())),
        "{drawn}"
    );
    assert!(drawn.contains("├── a <0."), "{drawn}");
    assert!(drawn.contains("└── tasks <0."), "{drawn}");
    assert!(
        drawn.contains("│   ├── <0."),
        "the dynamic supervisor's children: {drawn}"
    );
    end.send(()).unwrap();
    root.stop(WAIT).await.unwrap();
}

#[tokio::test]
async fn the_tree_of_a_dead_pid_or_of_a_plain_server_is_a_typed_error() {
    let f = Fixture::new();
    let server = f.start().await;
    assert_eq!(
        observer::tree(server.pid(), WAIT).await,
        Err(TreeError::NotASupervisor)
    );
    assert_eq!(
        observer::tree(Pid::new_unique(), WAIT).await,
        Err(TreeError::NoProc)
    );
}

#[tokio::test]
async fn the_tree_of_a_supervisor_that_does_not_answer_in_time_is_a_timeout() {
    let f = Fixture::new();
    let dynamic = DynamicSupervisor::start(DynamicSupervisorOptions::default())
        .await
        .unwrap();
    // The supervisor is busy with a child whose `init` waits for the gate.
    let (pid_tx, pid_rx) = oneshot::channel();
    let pid_tx = std::sync::Mutex::new(Some(pid_tx));
    let (log, gate) = (f.log.clone(), f.gate.clone());
    let starting = {
        let dynamic = dynamic.clone();
        tokio::spawn(async move {
            dynamic
                .start_child(ChildSpec::new("slow", move || {
                    let mut args = WorkerArgs::new(&log, &gate);
                    args.slow_init = pid_tx.lock().unwrap().take();
                    Worker::start(args)
                }))
                .await
        })
    };
    pid_rx.await.unwrap();
    assert_eq!(
        observer::tree(dynamic.pid(), Duration::from_millis(50)).await,
        Err(TreeError::Call(CallError::Timeout))
    );
    f.gate.add_permits(1);
    starting.await.unwrap().unwrap();
    let tree = observer::tree(dynamic.pid(), WAIT).await.unwrap();
    assert_eq!(tree.children.len(), 1);
}
