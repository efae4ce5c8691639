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
//!   senders. (`gen_server_call.rs`: `casts_then_call_from_one_sender_are_handled_in_order`,
//!   `each_senders_messages_keep_their_order_with_concurrent_senders`.)
//! - **One message at a time.** A callback runs to completion, across all its `.await`s, before
//!   the next message is taken. Callbacks get `&mut self`; state is never shared.
//!   (`gen_server_call.rs`: `a_callback_that_awaits_holds_the_next_message_until_it_finishes`.)
//! - **Continue first.** `handle_continue` runs straight after the callback that asked for it,
//!   before any queued message or due timer. (`gen_server_lifecycle.rs`:
//!   `continue_runs_before_queued_messages`.)
//! - **Timers queue with the mail.** A due timer's message is handled after the messages that
//!   were queued before it fired, as in Erlang. (`monitor_timer.rs`:
//!   `a_due_timer_queues_behind_messages_sent_before_it_fired`, `timers_fire_in_deadline_order`.)
//! - **Graceful stop is in-band.** A stop request (from [`ServerRef::stop`](crate::ServerRef::stop)
//!   or a supervisor) waits behind the messages already queued; they are handled, then
//!   `terminate` runs (GS-11). (`gen_server_lifecycle.rs`:
//!   `messages_queued_before_stop_are_handled_before_terminate`.) A stop request also ends a
//!   `handle_continue` chain, dropping the pending continue; the messages queued before it are
//!   still handled first. (`gen_server_busy.rs`:
//!   `a_handle_continue_loop_can_be_stopped_on_one_thread`,
//!   `a_stop_ends_a_continue_chain_after_the_messages_queued_before_it`.)
//!
//! - **Streams are read when the server is ready.** An attached stream is polled by the
//!   server's own loop, one item at a time, only after the messages taken from the mailbox
//!   have been handled; its items keep their order and end with `Ended`. Nothing is read
//!   ahead, and neither the mailbox nor a stream starves the other. (`streams.rs`:
//!   `nothing_is_read_ahead_of_the_server`,
//!   `items_arrive_in_order_then_ended_then_the_stream_is_dropped`,
//!   `several_streams_each_keep_their_order_and_end`,
//!   `a_stream_that_is_always_ready_does_not_starve_calls_or_a_stop`,
//!   `a_busy_mailbox_does_not_starve_a_stream`.) The stream dies with the server, however it
//!   exits, and a panic in it or its mapping is the server's crash. (`streams.rs`:
//!   `the_stream_is_dropped_when_the_server_stops`, `the_stream_is_dropped_when_the_server_is_killed`,
//!   `the_stream_is_dropped_when_its_supervisor_shuts_the_server_down`,
//!   `a_panic_in_the_mapping_crashes_the_server_and_terminate_runs`,
//!   `a_panic_in_the_stream_crashes_the_server`.)

//! # Mailboxes
//!
//! - **Unbounded by default**, as in Erlang: a `cast` or `send` never waits, and a server sent
//!   more than it handles grows its queue without limit. (`bounded_mailbox.rs`:
//!   `an_unbounded_mailbox_never_fills`.)
//! - **Bounded on request** ([`StartOptions::mailbox_capacity`](crate::gen_server::StartOptions::mailbox_capacity)):
//!   at most that many calls, casts and info messages wait, the one being handled not counted.
//!   On a full mailbox `cast` and `send` give the message back as `SendError::Full`;
//!   `cast_wait` waits for room, and so does a call, within its timeout (a call that times out
//!   waiting was never sent). (`bounded_mailbox.rs`:
//!   `a_full_mailbox_gives_the_message_back_and_counts_casts_infos_and_calls_alike`,
//!   `cast_wait_waits_for_room_and_keeps_the_senders_order`,
//!   `a_call_waits_for_room_within_its_timeout_and_is_not_sent_when_it_expires`,
//!   `a_name_forwards_full_and_waits_for_room`.)
//! - **Waiting senders get room in the order they asked**; a wait dropped before it finished
//!   sends nothing and takes no room; senders waiting on a server that exits are told, with
//!   their message back (a call with the exit reason). (`bounded_mailbox.rs`:
//!   `waiting_senders_get_room_in_the_order_they_asked`,
//!   `a_dropped_cast_wait_sends_nothing_and_leaves_the_capacity_as_it_was`,
//!   `senders_waiting_on_a_server_that_exits_are_told_and_get_their_message_back`.)
//! - **The runtime's own messages are never held back**: stop requests, `Down`s, exit signals,
//!   due timers, stream items and supervised tasks' results take no room and are delivered into a full mailbox; a stop
//!   overtakes senders still waiting for room. A server that `cast_wait`s to itself while its
//!   mailbox is full gets `Full` at once rather than waiting forever. (`bounded_mailbox.rs`:
//!   `a_full_mailbox_does_not_hold_back_downs_exit_signals_timers_or_stream_items`,
//!   `a_stop_is_not_held_back_by_a_full_mailbox_or_by_waiting_senders`,
//!   `a_server_that_fills_its_own_mailbox_is_told_at_once_instead_of_waiting_forever`,
//!   `a_supervised_tasks_result_is_delivered_into_a_full_mailbox_and_takes_no_room`.) A request
//!   whose builder panics takes no room. (`bounded_mailbox.rs`:
//!   `a_request_whose_builder_panics_takes_no_room`.)

//! # Introspection
//!
//! - **[`process::info`](crate::process::info) needs no cooperation and costs an unobserved
//!   process nothing**: it reads the header and the mailbox under their locks. A server is
//!   `Starting` while `init` runs, `Waiting` with nothing to handle, `Running` while it handles
//!   a message, a due timer or a stream item; its mailbox length, monitors, links, trapping and
//!   parent (its supervisor, across restarts) are reported; a dead pid has no info.
//!   (`introspection.rs`: `an_idle_server_is_waiting_with_an_empty_mailbox_and_its_watchers_counted`,
//!   `a_busy_server_is_running_and_shows_what_waits_in_its_mailbox`,
//!   `a_server_handling_a_timer_or_a_stream_item_is_running_not_waiting`,
//!   `a_server_in_init_is_starting_and_a_dead_one_has_no_info`,
//!   `links_trapping_and_a_tasks_info_are_reported`,
//!   `a_supervised_childs_parent_is_its_supervisor_also_after_a_restart`.)
//! - **[`sys::get_state`](crate::sys::get_state) shows only what `format_status` renders**, in
//!   mailbox order; a state is private by default; a panic in `format_status` is the caller's
//!   error, never the server's crash; it fails like a call, and takes no room in a bounded
//!   mailbox. (`introspection.rs`: `get_state_shows_what_format_status_renders_in_mailbox_order`,
//!   `get_state_of_a_private_state_or_a_panicking_format_is_an_error_and_the_server_lives_on`,
//!   `get_state_fails_like_a_call_on_a_stopped_server_or_on_itself`,
//!   `get_state_takes_no_room_in_a_full_bounded_mailbox`.)
//! - **[`observer::tree`](crate::observer::tree)** walks static, dynamic and task supervisors:
//!   ids, pids, types, restart counts (a group restart counts for each child restarted) and
//!   subtrees; anything else is a typed error. (`introspection.rs`:
//!   `the_tree_shows_ids_pids_kinds_restarts_and_nested_supervisors`,
//!   `the_tree_of_a_dead_pid_or_of_a_plain_server_is_a_typed_error`.)

//! # Calls, timeouts and late replies
//!
//! - A call to a process that is not running fails with `NoProc` at once, not after the
//!   timeout (GS-05). (`gen_server_call.rs`: `call_to_a_stopped_server_fails_with_noproc_at_once`.)
//! - A call times out no earlier than its timeout and at most 1/64 of it later, whoever calls:
//!   its timer comes from a pool per thread shared by plain tasks and processes.
//!   (`gen_server_call.rs`: `a_short_timeout_after_a_long_one_times_out_on_time`,
//!   `calls_on_successive_runtimes_on_one_thread_each_time_out_by_their_own_clock`.)
//! - A call that times out leaves the server running; the server's late reply goes to a one-shot
//!   channel whose receiver is gone, so it is dropped and can never reach a later call (GS-06,
//!   D6). (`gen_server_call.rs`: `call_timeout_leaves_the_server_running`,
//!   `late_reply_after_timeout_never_reaches_the_next_call`.)
//! - A server that exits while a call to it is pending fails that call with its exit reason
//!   (GS-09) — provided the reply handle was still held by the server. A handle deferred to
//!   *another* process keeps the call waiting for that process or the timeout.
//!   (`gen_server_call.rs`: `caller_gets_the_exit_reason_when_the_server_stops_without_replying`,
//!   `caller_gets_the_exit_reason_when_the_server_is_killed_mid_call`,
//!   `queued_calls_fail_with_the_exit_reason_when_the_server_crashes`.)
//! - A process calling itself, by handle or by via-name, fails with `CallingSelf` at once
//!   (GS-07, D7). (`gen_server_call.rs`: `a_server_calling_itself_fails_at_once_with_calling_self`;
//!   `registry.rs`: `calling_yourself_through_a_name_fails_at_once`.)
//! - Outside a tokio runtime, a timed call and `stop` return `NoRuntime`; nothing panics.
//!   (`gen_server_call.rs`: `a_timed_call_or_stop_outside_a_runtime_is_a_typed_error`.)
//! - A request with its own typed reply handle ([`ServerRef::request`](crate::ServerRef::request))
//!   is a call in every respect but the reply's type: per-sender order with casts, `NoProc`,
//!   `CallingSelf`, the exit reason of a server that exits holding the handle, a timeout when
//!   the handle is dropped unanswered, deferred replies. (`typed_requests.rs`:
//!   `each_kind_of_request_gets_its_own_reply_type`,
//!   `requests_and_casts_from_one_sender_are_handled_in_order`,
//!   `a_request_to_a_stopped_server_or_to_itself_fails_at_once`,
//!   `a_caller_whose_handle_the_server_holds_learns_of_its_exit`,
//!   `a_handle_dropped_unanswered_times_the_caller_out_and_the_server_lives_on`,
//!   `a_deferred_typed_reply_arrives_when_the_server_gives_it`.)
//!
//! # Cancel safety
//!
//! - Dropping a `call` future does not un-send the request; the reply is dropped.
//!   (`gen_server_call.rs`: `a_dropped_call_is_still_handled_and_its_reply_dropped`.)
//! - Dropping a start future while `init` runs kills the new process. (`gen_server_lifecycle.rs`:
//!   `dropping_a_start_while_init_runs_kills_the_new_process`.)
//! - Dropping a [`TaskHandle`](crate::task_supervisor::TaskHandle), or ending the process that
//!   started the task, does not stop the task. (`task_supervisor.rs`:
//!   `a_task_outlives_the_caller_that_started_it`.)
//! - Dropping a [`Monitor`](crate::monitor::Monitor) removes the monitor; `demonitor` says
//!   whether it was still active. (`monitor_timer.rs`:
//!   `demonitor_reports_whether_the_monitor_was_active`,
//!   `after_demonitor_no_down_is_handled_even_if_already_queued`.)
//!
//! # Exits
//!
//! - Every process ends with exactly one [`ExitReason`](crate::ExitReason), delivered once to
//!   every monitor. (`monitor_timer.rs`: `a_monitor_gets_exactly_one_down_with_the_exit_reason`,
//!   `monitoring_a_dead_or_unknown_pid_yields_noproc_at_once`.)
//! - A panic in any callback or task is caught at the process boundary. It never reaches a
//!   caller or another process; it becomes [`ExitReason::Panic`](crate::ExitReason::Panic). An
//!   `Err` returned by a callback becomes [`ExitReason::Error`](crate::ExitReason::Error).
//!   (`gen_server_call.rs`: `caller_gets_the_crash_reason_when_the_handler_panics_or_fails`,
//!   `a_crashing_server_does_not_affect_other_servers_or_the_caller`; `task_supervisor.rs`:
//!   `a_crashing_task_is_not_restarted_and_harms_nobody`.)
//! - A panic in a `Drop` of a killed or stopped process's state is contained: the process still
//!   exits, its names are released and its monitors told. (`panicking_drop.rs`, all four.)
//! - Before any monitor receives a `Down`, every registry has dropped the process's names
//!   (REG-05, stronger than Elixir; D8). (`registry.rs`:
//!   `keys_are_gone_before_the_down_is_delivered`.) A task's result is delivered only once its
//!   exit is complete. (`task_supervisor.rs`:
//!   `a_task_result_arrives_only_once_the_task_has_exited_and_released_its_names`.)
//! - A [`Name`](crate::name::Name) is released by its holder's exit before that exit is
//!   announced, so the restarted child can register it at once; a registration racing the
//!   holder's exit is refused or released by it. (`names.rs`:
//!   `a_name_is_released_before_its_holders_down_is_delivered`,
//!   `a_registration_racing_the_holders_exit_never_leaves_a_dead_holder`; loom model
//!   `loom_a_registration_racing_the_holders_exit_never_outlives_it`.) A lookup never waits: while
//!   the child restarts it fails at once. (`names.rs`:
//!   `a_lookup_while_the_child_is_restarting_fails_at_once`.)
//! - A duplicate-key registry's `dispatch` never reaches a subscriber whose `Down` has been
//!   delivered, and calls its closure with no lock held. (`registry_duplicate.rs`:
//!   `dispatch_reaches_every_subscriber_and_never_one_whose_down_was_delivered`,
//!   `dispatch_holds_no_lock_while_it_delivers`.)
//! - **A server's state is dropped before its names are released and its `Down` delivered**,
//!   whether it stopped, crashed or was killed; a restarted child starts after its
//!   predecessor's state was dropped. (`drop_order.rs`, all four.)
//! - User code (a `Down` mapping, a registry key or value) is never dropped under an internal
//!   lock. (`monitor_timer.rs`: `demonitor_drops_a_mapping_that_owns_a_monitor_of_the_same_process`;
//!   `registry.rs`: `keys_and_values_are_dropped_outside_the_registrys_locks`.)
//!
//! # Links
//!
//! - **An abnormal exit kills linked processes with the same reason; `Normal` does not.** A
//!   process that does not trap exits dies at its next `.await`, without `terminate`; the
//!   signal travels along a chain of links, both ways. (`links.rs`:
//!   `an_abnormal_exit_kills_the_linked_process_with_the_same_reason`,
//!   `links_are_two_way_and_propagate_along_a_chain`,
//!   `a_normal_exit_does_not_propagate_and_ends_the_link`,
//!   `a_shutdown_exit_propagates_as_abnormal`, `a_task_linked_to_a_server_dies_with_it`.)
//! - **Trapping turns signals into `Exit` messages; a kill cannot be trapped.** Links of a
//!   killed process get `Killed`, which a trapping server receives as a message. (`links.rs`:
//!   `a_trapping_server_receives_exits_as_messages_and_lives_on`,
//!   `a_kill_cannot_be_trapped_but_reaches_links_as_killed`.)
//! - **Linking a dead pid is `NoProc`**, as a signal or, trapping, as a message. (`links.rs`:
//!   `linking_a_dead_pid_is_noproc`.) After `unlink`, from either side, no signal arrives.
//!   (`links.rs`: `after_unlink_no_signal_arrives`, `the_other_side_can_unlink_too`.)
//! - **A link racing the target's exit gets exactly one signal**: the exit's or `NoProc`.
//!   (Loom model `loom_a_link_racing_the_targets_exit_gets_exactly_one_signal`; `links.rs`:
//!   `a_link_racing_the_targets_exit_gets_exactly_one_signal`, 300 rounds on two threads.)
//! - **`start_link` is atomic, and a failed one leaves no signal** (OTP 26's
//!   `proc_lib:init_fail`). (`links.rs`:
//!   `a_start_linked_server_dies_with_its_starter_and_the_starter_with_it`,
//!   `a_failed_start_link_leaves_no_stray_exit_signal`,
//!   `link_outside_a_process_is_a_typed_error`.)
//! - **Supervisors monitor, they do not link**: linked siblings die together and are both
//!   restarted. (`links.rs`:
//!   `linked_siblings_under_a_supervisor_die_together_and_are_both_restarted`.) A child that
//!   `start_link`s from its start function is linked to its supervisor, which traps exits: the
//!   child's crash, stop or kill is a restart, never the supervisor's death. (`links.rs`:
//!   `start_linked_children_crash_and_stop_without_taking_their_supervisor_down`,
//!   `a_start_linked_dynamic_child_crashes_without_taking_its_supervisor_down`.)
//! - **A trapping server stops with its parent's exit**, with the parent's reason and
//!   `terminate` run (Erlang's `gen_server`); a supervisor linked to its parent shuts its
//!   children down in order. (`links.rs`:
//!   `a_trapping_child_stops_with_its_parents_exit_and_runs_terminate`,
//!   `a_supervisor_linked_to_its_parent_stops_with_it_and_stops_its_children`.) A linked
//!   process's `Killed` signal does not replace a reason already pending; only a kill does.
//!   (Unit test `a_kill_overrides_a_pending_reason_and_a_link_signal_does_not`.)

//! # Supervision
//!
//! - **Ordered start** (STR-01): children start one at a time in spec order; `Supervisor::start`
//!   returns after the last `init`. A failure stops the started ones in reverse order (INIT-01).
//!   (`supervisor_strategies.rs`: `children_start_in_spec_order_each_init_finishing_before_the_next`;
//!   `supervisor_start_stop.rs`: `a_failing_child_tears_down_the_started_ones_in_reverse_and_fails_the_start`.)
//! - **A start function that panics** is that child's start failure, never the supervisor's
//!   crash, whether it panics building its future or while it runs. (`start_function_panics.rs`,
//!   all seven.)
//! - **Restart decisions** follow `supervisor.erl` `do_restart/3` exactly, for every exit reason
//!   (RST-01..05, DYN-04): one `match` in `supervisor::after_exit`.
//!   (`supervisor_restart_types.rs`, all five; `dynamic_supervisor.rs`:
//!   `restart_types_on_dynamic_children`.)
//! - **Strategies** (STR-02..08): one_for_all and rest_for_one stop the group in reverse and
//!   restart it in order; a retry after a failed start keeps what rest_for_one restarted before
//!   the failed child. (`supervisor_strategies.rs`: `one_for_all_stops_the_others_in_reverse_then_starts_all_in_order`,
//!   `rest_for_one_restarts_the_failed_child_and_those_after_it`,
//!   `one_for_all_retries_the_whole_group_when_a_sibling_fails_to_restart`,
//!   `rest_for_one_keeps_the_restarted_children_when_a_later_one_fails_to_restart`.)
//! - **Intensity** (INT-01..08): one sliding window per supervisor; a group restart counts once;
//!   failed restarts count and are retried through the mailbox; administrative operations never
//!   count. Giving up stops the children in reverse order and exits `Shutdown`, which the parent
//!   treats like any child exit (NEST-01..04). The window is a deque of instants with expired
//!   stamps popped from the front: a restart costs the same with 0 or 10,000 restarts in it.
//!   (`supervisor_intensity.rs`: `one_restart_more_than_allowed_stops_the_children_in_reverse_and_exits_shutdown`,
//!   `one_group_restart_counts_once`, `failed_restarts_count_are_retried_and_the_supervisor_gives_up`,
//!   `administrative_operations_neither_count_nor_trigger_restarts`;
//!   `supervisor_nested.rs`: `escalation_propagates_to_the_root`.)
//! - **Shutdown** (SHD-01..08): static children in reverse start order, one at a time, each fully
//!   exited before the next; dynamic children concurrently, with one timer per distinct timeout.
//!   `stop` returns when the whole tree has exited. (`supervisor_start_stop.rs`:
//!   `shutdown_stops_children_in_reverse_start_order_one_at_a_time`,
//!   `a_child_that_outlives_its_shutdown_timeout_is_killed_and_shutdown_continues`,
//!   `a_child_supervisor_stops_its_subtree_before_the_parent_continues`;
//!   `dynamic_supervisor.rs`: `shutdown_stops_all_children_concurrently_each_by_its_policy`.)
//! - **No orphans**: a supervisor that is killed kills its children (it does not link to them;
//!   its state does it when dropped), at every await point: also the child it is stopping
//!   at that moment. (`supervisor_start_stop.rs`: `killing_a_supervisor_kills_its_children`;
//!   `supervisor_killed.rs`: `a_supervisor_killed_while_terminating_a_child_kills_that_child`,
//!   `a_supervisor_killed_during_its_shutdown_kills_the_child_it_was_stopping` and the two
//!   dynamic ones.)
//! - **A supervisor exits after its children** (stronger than OTP): its exit, and so its `Down`,
//!   is published only once all its children have exited, however it ends, kill included. A
//!   parent restarting it finds their names free. (`supervisor_killed.rs`:
//!   `a_killed_supervisors_down_comes_after_all_its_children_have_exited`,
//!   `a_parent_restarting_a_killed_subtree_of_named_workers_never_gives_up`.)
//! - **A dynamic child waiting for its restart** is known by the pid that exited:
//!   `terminate_child` with it ends the retries and frees the `max_children` slot (DYN-03).
//!   (`dynamic_supervisor.rs`: `a_child_whose_restart_keeps_failing_is_terminated_by_its_old_pid`.)
//! - **Names survive restarts** (REG-09): a child started under a via-name is registered again by
//!   its restart, and the old entry is gone before the supervisor even sees the exit.
//!   (`supervisor_nested.rs`: `a_named_child_is_found_under_the_same_name_after_a_restart`.)
//! - **Event streams end**: once a supervisor has exited and its last events are read, its
//!   stream returns `Closed`. (`supervisor_admin.rs`:
//!   `an_event_stream_is_closed_after_its_supervisor_exits`.)
//!
//! # What cannot be guaranteed on tokio
//!
//! - **Kill needs an `.await`** (D2). `Shutdown::BrutalKill`, a shutdown timeout and
//!   [`process::exit`](crate::process::exit) cancel the process's task at its next `.await`. A
//!   callback that loops without yielding, or blocks its thread, cannot be stopped; the kill takes
//!   effect when it yields, or never. Since a supervisor's exit waits for its children's, such
//!   a child also holds up the exit of its killed supervisor, and of the tree above it.
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
//! | D1, GS-10 (e) | a server that does not trap exits dies at once on shutdown | every server handles the shutdown request in order and runs `terminate` | supervisors stop children with an in-band request, not an exit signal; running cleanup is the useful default |
//! | D3 | exit reasons are any term | a typed [`ExitReason`](crate::ExitReason) | matching on variants is what the restart rules need |
//! | D4 | tagged tuples | typed errors, one per operation | |
//! | D13 | `cast` to a dead process returns `ok` | `Err(SendError::NoProc(message))` | the message is given back, not lost silently |
//! | `sys:get_state` | returns the state term | returns the `String` that [`format_status`](crate::gen_server::GenServer::format_status) renders; `NotShown` by default | a caller cannot receive a state whose type it does not know; private by default is the safe side |
//! | mailboxes | always unbounded | unbounded by default; opt-in capacity, with `SendError::Full` and `cast_wait` | a fast producer (a client's socket) needs back-pressure a call-per-message cannot give cheaply |
//! | GS-02/03 | `{error, R}` exits `normal`, `{stop, R}` exits `R` | [`Init::Stop`](crate::gen_server::Init::Stop) exits with its reason; an `Err` from `init` with `Error` | one shape for "init failed"; the reason tells the cause |
//! | REG | one `Registry` type, `keys: :unique \| :duplicate`; `lookup` returns a list | [`Registry`](crate::registry::Registry) (unique, `lookup` returns an `Option`) and [`DuplicateRegistry`](crate::registry::DuplicateRegistry) (a `Vec`) | each lookup gets its own type |
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
//! | names | `register/2` puts an atom in one global table; `{local, Name}` registers before `init` | a [`Name<T>`](crate::name::Name) is a typed value handed down the tree, registered when the start function returns | no untyped global namespace; the handle a name leads to is typed |
//! | links: `exit/2` | `exit(Pid, R)` to a trapping process is an `{'EXIT', From, R}` message | [`process::exit`](crate::process::exit) always kills, with its reason; only link signals can be trapped | `exit` is the runtime's kill; a graceful stop is [`ServerRef::stop`](crate::ServerRef::stop) |
//! | links: tasks | any process can trap exits | only servers trap; a linked task dies of an abnormal signal | a task has no mailbox to receive `Exit` in |
//! | D10 | supervisors link to their children | supervisors monitor and own their children; [links](crate::link) are for processes that die together; a supervisor traps and drops the signals of children that `start_link`ed to it | ownership stops a subtree without exit signals |
//! | backoff | none | opt-in [`RestartBackoff`](crate::supervisor::RestartBackoff) per child | crash loops should not burn the budget in microseconds |
