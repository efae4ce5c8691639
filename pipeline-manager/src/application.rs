//! The manager's supervision tree (the crate docs draw it): built here, once, from a
//! [`ManagerConfig`]. Each process gets what it works with as arguments, and finds the others
//! by the names the tree gives them, which lead to their current incarnations.
//!
//! # Why this order, and why `rest_for_one`
//!
//! Each child depends only on those before it: workers write to the store and are registered
//! in the registry, step tasks report to workers, the cleaner removes workers and reads the
//! store. With `rest_for_one`, a restart of one child restarts everything after it, so nothing
//! is left holding a handle to a process that is gone: if the registry restarted under
//! `one_for_one` (the seed's choice), every running worker would keep its name in the dead
//! registry and become unreachable. A crash of the step task supervisor or of the cleaner
//! touches no execution; a crash of the store's owner (a failed commit) or of its writer (a
//! failed append to the journal) restarts everything after it, and the new writer first has
//! the owner recover the journal and mark what was running `interrupted`.
//!
//! The board and the worker supervisor are restarted together (`one_for_all` under
//! `executions`): the board's owner starts it empty, so it never lists executions of workers
//! that are gone.
//!
//! # The worker supervisor's restart budget (seed defect D12)
//!
//! Executions are independent, so one worker's crashes must never take the others down. The
//! seed kept `DynamicSupervisor`'s default of 3 restarts in 5 s for all workers together: the
//! fourth crash anywhere wiped every execution. Here the worker supervisor allows `u32::MAX`
//! restarts per second: in practice, never gives up. A worker's `init` cannot fail (it only
//! builds state), so a restart cannot loop.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use otp_core::ServerRef;
use otp_core::dynamic_supervisor::{DynamicSupervisor, DynamicSupervisorOptions};
use otp_core::gen_server::{GenServer, StartOptions};
use otp_core::name::Name;
use otp_core::supervisor::{ChildSpec, Strategy, SupFlags, Supervisor, SupervisorStartError};
use otp_core::task_supervisor::TaskSupervisor;

use crate::error::PipelineError;
use crate::execution_cleaner::{CleanerArgs, ExecutionCleaner};
use crate::execution_store::{ExecutionStore, OpenStore, StoreConfig};
use crate::manager::ManagerConfig;
use crate::pipeline_worker::{WorkerEnv, WorkerRegistry, WorkerSettings};
use crate::sqlite_store::SqliteStore;
use crate::status_board::{BoardOwner, StatusBoard};
use crate::store_owner::{OwnerArgs, StoreOwner};
use crate::store_writer::{OWNER_MAILBOX, StoreClient, StoreWriter, WriterArgs};

/// A running tree: its root, and what the client API needs to reach its processes.
pub(crate) struct Tree {
    pub(crate) root: Supervisor,
    /// What every worker is started with.
    pub(crate) worker_env: WorkerEnv,
    pub(crate) registry: Name<WorkerRegistry>,
    pub(crate) workers: Name<DynamicSupervisor>,
    pub(crate) cleaner: Name<ServerRef<ExecutionCleaner>>,
}

/// How the store's backend is opened, if there is a store.
fn store_opener(config: &ManagerConfig) -> Option<OpenStore> {
    match &config.store {
        StoreConfig::Sqlite => {
            let dir = config.output_dir.clone();
            Some(Arc::new(move || {
                Ok(Box::new(SqliteStore::open(&dir)?) as Box<dyn ExecutionStore>)
            }))
        }
        StoreConfig::Memory => None,
        StoreConfig::Custom(open) => Some(open.clone()),
    }
}

/// Starts the tree.
///
/// # Errors
///
/// [`PipelineError::Unavailable`] if a child cannot start (the store cannot be opened, or
/// there is no tokio runtime), naming it.
pub(crate) async fn start(config: ManagerConfig) -> Result<Tree, PipelineError> {
    let open_store = store_opener(&config);
    let store_name = open_store
        .as_ref()
        .map(|_| Name::<ServerRef<StoreWriter>>::new("store writer"));
    let board = Arc::new(StatusBoard::new());
    let store = StoreClient::new(store_name.clone());
    let registry = Name::<WorkerRegistry>::new("worker registry");
    let workers = Name::<DynamicSupervisor>::new("worker supervisor");
    let tasks = Name::<TaskSupervisor>::new("step task supervisor");
    let cleaner = Name::<ServerRef<ExecutionCleaner>>::new("execution cleaner");

    let mut children = Vec::new();
    if let (Some(open), Some(writer)) = (open_store, &store_name) {
        let owner = Name::<ServerRef<StoreOwner>>::new("execution store");
        let output_dir = config.output_dir.clone();
        let owner_args = move || OwnerArgs {
            open: open.clone(),
            output_dir: output_dir.clone(),
        };
        children.push(ChildSpec::new(
            "execution_store",
            owner.registering(move || {
                StoreOwner::start_with(
                    owner_args(),
                    StartOptions::new()
                        .label("execution_store")
                        .mailbox_capacity(OWNER_MAILBOX),
                )
            }),
        ));
        let output_dir = config.output_dir.clone();
        children.push(ChildSpec::new(
            "store_writer",
            writer.registering(move || {
                StoreWriter::start_with(
                    WriterArgs {
                        output_dir: output_dir.clone(),
                        owner: owner.clone(),
                    },
                    StartOptions::new().label("store_writer"),
                )
            }),
        ));
    }
    children.push(ChildSpec::new(
        "worker_registry",
        registry.registering(WorkerRegistry::start),
    ));
    children.push(ChildSpec::supervisor(
        "executions",
        executions(board.clone(), store.clone(), workers.clone()),
    ));
    children.push(ChildSpec::supervisor(
        "step_tasks",
        tasks.registering(TaskSupervisor::start),
    ));
    let cleaner_args = {
        let (board, store, registry, workers) = (
            board.clone(),
            store.clone(),
            registry.clone(),
            workers.clone(),
        );
        let (policy, output_dir) = (config.cleaner, config.output_dir.clone());
        move || CleanerArgs {
            policy,
            output_dir: output_dir.clone(),
            board: board.clone(),
            store: store.clone(),
            registry: registry.clone(),
            workers: workers.clone(),
        }
    };
    children.push(ChildSpec::new(
        "execution_cleaner",
        cleaner.registering(move || {
            ExecutionCleaner::start_with(
                cleaner_args(),
                StartOptions::new().label("execution_cleaner"),
            )
        }),
    ));
    let flags = SupFlags::new(Strategy::RestForOne)
        .intensity(3, Duration::from_secs(5))
        .map_err(|error| PipelineError::Unavailable(error.to_string()))?;
    let root = Supervisor::start(flags, children)
        .await
        .map_err(|error| PipelineError::Unavailable(error.to_string()))?;
    Ok(Tree {
        root,
        worker_env: WorkerEnv {
            settings: Arc::new(WorkerSettings {
                output_dir: config.output_dir,
                kill_grace: config.kill_grace,
                executor: config.executor,
                max_live_executions: config.max_live_executions,
            }),
            board,
            store,
            tasks,
        },
        registry,
        workers,
        cleaner,
    })
}

/// The `executions` supervisor's start function: the board's owner and the worker
/// supervisor, restarted together (`one_for_all`), so that a new worker supervisor starts
/// with an empty board.
fn executions(
    board: Arc<StatusBoard>,
    store: StoreClient,
    workers: Name<DynamicSupervisor>,
) -> impl Fn() -> BoxFuture<'static, Result<Supervisor, SupervisorStartError>> + Send + Sync + 'static
{
    move || {
        let owner = {
            let (board, store) = (board.clone(), store.clone());
            ChildSpec::new("status_board", move || {
                BoardOwner::start_with(
                    (board.clone(), store.clone()),
                    StartOptions::new().label("status_board"),
                )
            })
        };
        let worker_supervisor = ChildSpec::supervisor(
            "worker_supervisor",
            workers.registering(|| {
                DynamicSupervisor::start(DynamicSupervisorOptions {
                    max_restarts: u32::MAX,
                    max_seconds: Duration::from_secs(1),
                    max_children: None,
                })
            }),
        );
        // The default budget: the worker supervisor itself never gives up on its workers,
        // and the board's owner does nothing that can fail.
        Supervisor::start(
            SupFlags::new(Strategy::OneForAll),
            vec![owner, worker_supervisor],
        )
        .boxed()
    }
}
