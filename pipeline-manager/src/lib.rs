//! A pipeline execution manager built on otp-core: one supervised worker process per
//! execution, a registry to find it, supervised step tasks that run real commands, a periodic
//! cleaner, and a public API.
//!
//! It rebuilds the seed's Elixir pipeline manager (`shared/seed/pipeline-manager-guide.md`)
//! with its intended behaviour and none of its defects (`shared/seed/FINDINGS.md`).
//!
//! # The supervision tree
//!
//! ```text
//! root Supervisor (rest_for_one, 3 restarts in 5 s)
//! ├── execution_store      StoreOwner (GenServer)       the history, in SQLite: commits batches
//! ├── store_writer         StoreWriter (GenServer)      journals each write, hands batches over
//! ├── worker_registry      Registry<ExecutionId, worker> finds a worker by execution id
//! ├── executions           Supervisor (one_for_all)
//! │   ├── status_board     BoardOwner (GenServer)        owns the board, starts it empty
//! │   └── worker_supervisor DynamicSupervisor            one PipelineWorker per execution
//! │       └── PipelineWorker × n   (permanent: a crashed worker comes back pending)
//! ├── step_tasks           TaskSupervisor                one task per step attempt
//! │   └── step task × m    runs one contained OS process tree, reports back by message
//! └── execution_cleaner    ExecutionCleaner (GenServer)  removes old finished executions
//! ```
//!
//! Each child depends only on those before it, and the root restarts a failed child together
//! with every child after it, so nothing keeps a handle to a process that is gone; see
//! [`application`] (which builds the tree) for why, and for the worker supervisor's restart
//! budget (seed defect D12). Processes find each other by the names the tree gives them; the
//! client API ([`manager`]) is a call or a cast to one of them. Without a store
//! ([`StoreConfig::Memory`](execution_store::StoreConfig)) there is no `execution_store`
//! nor `store_writer`; see [`store_journal`] for why writing takes two processes.
//!
//! # What the seed's defects became
//!
//! | seed defect | here |
//! |---|---|
//! | D3–D5: the execute crash, results sent to the wrong process, links killing the worker | steps run as supervised tasks that report to their worker by message |
//! | D6: the timeout counted from init | armed at `execute` |
//! | D7: a late result crashed the worker | late results only record how the step ended |
//! | D8: one stuck worker stalled or crashed the listing | listing reads the status board, never a worker |
//! | D9: check-then-act races exited the caller | every function returns a typed `Result`; unknown ids are `NotFound` |
//! | D12: 4 crashes wiped every execution | the worker supervisor never gives up on independent workers |
//! | D13: finished executions counted against the limit | the limit counts live executions only |
//! | D15: ids could collide | ids carry a process-wide counter |
//! | D16: `Process.sleep`, unsupervised `spawn_link` | no sleeps, no bare spawns (clippy `disallowed-methods`) |
//!
//! ```no_run
//! use std::time::Duration;
//! use pipeline_manager::{ManagerConfig, PipelineManager, PipelineSpec};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = PipelineManager::start(ManagerConfig::default()).await?;
//! let spec = PipelineSpec::from_file("pipeline-manager/pipelines/demo.toml".as_ref())?;
//! let id = manager.run_pipeline(spec).await?;
//! let status = manager.wait(&id, Duration::from_secs(600)).await?;
//! println!("{id}: {}", status.status);
//! manager.shutdown().await?;
//! # Ok(())
//! # }
//! ```

pub mod application;
pub mod error;
pub mod execution;
pub mod execution_cleaner;
pub mod execution_store;
pub mod manager;
pub mod pipeline;
mod pipeline_worker;
pub mod sqlite_store;
mod status_board;
pub mod step_init;
pub mod step_runner;
pub mod store_journal;
mod store_owner;
mod store_writer;

pub use error::PipelineError;
pub use execution::{
    AttemptRecord, ExecutionId, ExecutionStatus, Status, StepExit, StepProgress, StepState,
};
pub use manager::{ExecutionUpdates, ManagerConfig, PipelineManager};
pub use pipeline::{OnFailure, PipelineDraft, PipelineSpec, SpecError, StepAction, StepSpec};
