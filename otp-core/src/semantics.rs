//! The guarantees otp-core makes, and every deliberate difference from Erlang/OTP and Elixir.
//!
//! This module contains only documentation. Each guarantee names the test that pins it
//! (`otp-core/tests/…`). Case ids (GS-06, REG-05, D1, …) refer to the specification kept
//! beside the code, `otp-core/SPEC.md`; `tests/spec_ids.rs` checks that every id cited in the
//! code is defined there.
//!
//! # Ordering
//!
//! - **Per-sender FIFO.** Messages (calls, casts, info messages, stop requests) sent from one
//!   sender to one server are handled in the order sent. Nothing is promised between different
//!   senders. (`gen_server_call.rs`: `casts_then_call_from_one_sender_are_handled_in_order`.)
//! - **One message at a time.** A callback runs to completion, across all its `.await`s, before
//!   the next message is taken. Callbacks get `&mut self`; state is never shared.
//! - **Continue first.** `handle_continue` runs straight after the callback that asked for it,
//!   before any queued message or due timer. (`gen_server_lifecycle.rs`:
//!   `continue_runs_before_queued_messages`.)
//! - **Graceful stop is in-band.** A stop request (from [`ServerRef::stop`](crate::ServerRef::stop)
//!   or a supervisor) waits behind the messages already queued; they are handled, then
//!   `terminate` runs (GS-11). (`gen_server_lifecycle.rs`:
//!   `messages_queued_before_stop_are_handled_before_terminate`.)
//!
//! # Calls, timeouts and late replies
//!
//! - A call to a process that is not running fails with `NoProc` at once, not after the
//!   timeout (GS-05).
//! - A call times out no earlier than its timeout and at most 1/64 of it later (its timer is
//!   shared by the calling process's successive calls; see `ServerRef::call_timeout`).
//! - A call that times out leaves the server running; the server's late reply goes to a one-shot
//!   channel whose receiver is gone, so it is dropped and can never reach a later call (GS-06,
//!   D6). (`gen_server_call.rs`: `late_reply_after_timeout_never_reaches_the_next_call`.)
//! - A server that exits while a call to it is pending fails that call with its exit reason
//!   (GS-09) — provided the reply handle was still held by the server. A handle deferred to
//!   *another* process keeps the call waiting for that process or the timeout.
//! - A process calling itself, by handle or by via-name, fails with `CallingSelf` at once
//!   (GS-07, D7).
//!
//! # Cancel safety
//!
//! - Dropping a `call` future does not un-send the request; the reply is dropped.
//! - Dropping a [`Monitor`](crate::monitor::Monitor) removes the monitor.
//! - Dropping a [`TaskHandle`](crate::task_supervisor::TaskHandle) does not stop the task.
//!
//! # Exits
//!
//! - Every process ends with exactly one [`ExitReason`](crate::ExitReason), delivered once to
//!   every monitor (`monitor_timer.rs`).
//! - A panic in any callback or task is caught at the process boundary. It never reaches a
//!   caller or another process; it becomes [`ExitReason::Panic`](crate::ExitReason::Panic). An
//!   `Err` returned by a callback becomes [`ExitReason::Error`](crate::ExitReason::Error).
//! - Before any monitor receives a `Down`, every registry has dropped the process's names
//!   (REG-05, stronger than Elixir; D8). (`registry.rs`:
//!   `keys_are_gone_before_the_down_is_delivered`.)
//!
//! # Supervision
//!
//! - **Ordered start** (STR-01): children start one at a time in spec order; `Supervisor::start`
//!   returns after the last `init`. A failure stops the started ones in reverse order (INIT-01).
//!   (`supervisor_strategies.rs`, `supervisor_start_stop.rs`.)
//! - **Restart decisions** follow `supervisor.erl` `do_restart/3` exactly, for every exit reason
//!   (RST-01..05, DYN-04): one `match` in `supervisor::after_exit`.
//!   (`supervisor_restart_types.rs`, `dynamic_supervisor.rs`.)
//! - **Intensity** (INT-01..08): one sliding window per supervisor; a group restart counts once;
//!   failed restarts count and are retried through the mailbox; administrative operations never
//!   count. Giving up stops the children in reverse order and exits `Shutdown`, which the parent
//!   treats like any child exit (NEST-01..04). The window is a deque of instants with expired
//!   stamps popped from the front: a restart costs the same with 0 or 10,000 restarts in it.
//!   (`supervisor_intensity.rs`, `supervisor_nested.rs`.)
//! - **Shutdown** (SHD-01..08): static children in reverse start order, one at a time, each fully
//!   exited before the next; dynamic children concurrently, with one timer per distinct timeout.
//!   `stop` returns when the whole tree has exited. (`supervisor_start_stop.rs`,
//!   `dynamic_supervisor.rs`.)
//! - **No orphans**: a supervisor that is killed kills its children (there are no links to do it,
//!   so its state does it when dropped), at every await point: also the child it is stopping
//!   at that moment. (`supervisor_start_stop.rs`: `killing_a_supervisor_kills_its_children`;
//!   `supervisor_killed.rs`: `a_supervisor_killed_while_terminating_a_child_kills_that_child`,
//!   `a_supervisor_killed_during_its_shutdown_kills_the_child_it_was_stopping` and the two
//!   dynamic ones.)
//! - **A supervisor exits after its children** (stronger than OTP): its exit, and so its `Down`,
//!   is published only once all its children have exited, however it ends, kill included. A
//!   parent restarting it finds their names free. (`supervisor_killed.rs`:
//!   `a_killed_supervisors_down_comes_after_all_its_children_have_exited`,
//!   `a_parent_restarting_a_killed_subtree_of_named_workers_never_gives_up`.)
//! - **Names survive restarts** (REG-09): a child started under a via-name is registered again by
//!   its restart, and the old entry is gone before the supervisor even sees the exit.
//!   (`supervisor_nested.rs`: `a_named_child_is_found_under_the_same_name_after_a_restart`.)
//!
//! # What cannot be guaranteed on tokio
//!
//! - **Kill needs an `.await`** (D2). `Shutdown::BrutalKill`, a shutdown timeout and
//!   [`process::exit`](crate::process::exit) cancel the process's task at its next `.await`. A
//!   callback that loops without yielding, or blocks its thread, cannot be stopped; the kill takes
//!   effect when it yields, or never.
//! - **`panic = "abort"`** removes the process boundary: a panic anywhere aborts the program,
//!   with no exit reason, no `terminate`, no restart. Build with unwinding (the default) to get
//!   OTP's isolation.
//! - **Runtime shutdown** drops every process's task: each reports `Killed` to its monitors, and
//!   no `terminate` runs.
//!
//! # Deliberate differences
//!
//! | case | Erlang / Elixir | otp-core | why |
//! |---|---|---|---|
//! | D1, GS-10 (e) | a server that does not trap exits dies at once on shutdown | every server handles the shutdown request in order and runs `terminate` | there are no exit signals; running cleanup is the useful default |
//! | D3 | exit reasons are any term | a typed [`ExitReason`](crate::ExitReason) | matching on variants is what the restart rules need |
//! | D4 | tagged tuples | typed errors, one per operation | |
//! | D13 | `cast` to a dead process returns `ok` | `Err(SendError::NoProc(message))` | the message is given back, not lost silently |
//! | GS-02/03 | `{error, R}` exits `normal`, `{stop, R}` exits `R` | [`Init::Stop`](crate::gen_server::Init::Stop) exits with its reason; an `Err` from `init` with `Error` | one shape for "init failed"; the reason tells the cause |
//! | REG | `Registry.lookup` returns a list; duplicate keys exist | unique keys only, `lookup` returns an `Option` | scope |
//! | timers | anyone can `send_after` to any pid | a server sets timers for itself | timers are driven by the owner's loop: no task per timer, exact cancel |
//! | D5 | intensity stamps in whole seconds, inclusive | monotonic `Instant`s; a stamp older than `max_seconds` no longer counts | precision |
//! | D9 | `which_children` newest first | start order | readability; documented on the method |
//! | D12 | spec errors such as `invalid_mfa` | typed specs; duplicate ids, zero period, zero shutdown timeout and bad backoffs are [`SpecError`](crate::supervisor::SpecError)s before anything starts | the type system does the rest |
//! | D15 | default intensity 1 in 5 s (Erlang) / 3 in 5 s (Elixir) | 3 in 5 s | Elixir's, the more forgiving; tests always set it |
//! | D16 | dynamic `ignore` → `:ignore` / `{ok, undefined}` | [`DynamicStartError::Ignored`](crate::dynamic_supervisor::DynamicStartError::Ignored); static `start_child`/`restart_child` → `Ok(None)` | a distinct outcome |
//! | DYN-06 | `extra_arguments` | none: start closures capture their arguments | closures are Rust's way to bind arguments |
//! | GS-04 | `init` runs in the spawned process; the starter waits | `init` runs in the starter's task *as* the new process (its pid current, its span entered, a kill or the start timeout ends it); the process gets a task once `init` succeeds. Dropping the start future kills the starting process | two thread hand-offs less per start; what a process can observe is the same |
//! | preemption | the BEAM preempts a process after its reductions | a server spends a unit of tokio's cooperative budget per message, timer and continue, and yields when it runs out | tokio cannot preempt; a server that keeps itself busy still lets others run, answers calls, stops on request and can be killed (`gen_server_busy.rs`) |
//! | kill of a supervisor | its `EXIT`/`DOWN` can arrive before its children have died of their links | published only once its children have exited | the restarted subtree must find its names free |
//! | backoff | none | opt-in [`RestartBackoff`](crate::supervisor::RestartBackoff) per child | crash loops should not burn the budget in microseconds |
