//! `pipeline-step-init PROGRAM [ARGS...]`: the first process of every step the pipeline manager
//! runs; see [`pipeline_manager::step_init`]. Not meant to be run by hand.

fn main() -> std::process::ExitCode {
    pipeline_manager::step_init::main(std::env::args_os().skip(1).collect())
}
