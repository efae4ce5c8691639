//! A pipeline execution manager built on otp-core: one supervised worker process per
//! execution, a registry to find it, supervised step tasks that run real commands, a periodic
//! cleaner, and a public API.
//!
//! It rebuilds the seed's Elixir pipeline manager (`shared/seed/pipeline-manager-guide.md`)
//! with its intended behaviour and none of its defects (`shared/seed/FINDINGS.md`). The tree
//! and why it is ordered so are in [`manager`].
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

pub mod error;
pub mod execution;
pub mod execution_cleaner;
pub mod manager;
pub mod pipeline;
mod pipeline_worker;
mod status_board;
pub mod step_runner;

pub use error::PipelineError;
pub use execution::{ExecutionId, ExecutionStatus, Status, StepExit};
pub use manager::{ExecutionUpdates, ManagerConfig, PipelineManager};
pub use pipeline::{PipelineSpec, SpecError, StepAction, StepSpec};
