//! The `pipeline-manager` command line (work in progress).

fn main() {
    println!("pipeline-manager: not yet runnable; see `cargo run -p examples --example counter`");
}
