//! # Building a service
//!
//! This page walks through a real service built on otp-core: the supervised TCP chat and
//! key-value server in `examples/tcp_server.rs` (`cargo run -p examples --example tcp_server`).
//! Each section names the tool, says why it is the right one, and shows where the example
//! uses it. This module holds only documentation.
//!
//! ## The tree
//!
//! ```text
//! root (rest_for_one)
//! ├── users     Registry<String, ()>     unique nicknames
//! ├── lobby     DuplicateRegistry        pub/sub: every connection with a nickname
//! ├── store     Store (a GenServer)      the key-value state
//! ├── conns     DynamicSupervisor        one temporary Connection per client
//! └── acceptor  task (permanent)         accepts, and starts a Connection under `conns`
//! ```
//!
//! Draw the tree first; the strategy follows from who needs whom. Here each child needs the
//! ones before it (a connection registers in `users` and `lobby` and calls `store`; the
//! acceptor starts connections under `conns`), so the root is
//! [`rest_for_one`](crate::supervisor::Strategy::RestForOne): when `store` restarts, every
//! connection (which may hold a reply from the old store) and the acceptor restart after it;
//! when the acceptor restarts, nothing else does. Shutdown runs in reverse: the acceptor stops
//! accepting first, then every connection says goodbye, then the state goes.
//!
//! Supervisors supervise: a start function only starts (`|| Store::start(())`), and a child's
//! `init` only wires (the connection's splits its socket and attaches a stream). Anything that
//! can fail slowly belongs in a callback, where a failure is that process's crash and not its
//! supervisor's start failure.
//!
//! ## Names: finding a sibling after it restarted
//!
//! A handle ([`ServerRef`](crate::ServerRef), [`Registry`](crate::registry::Registry), …) names
//! one incarnation; after a restart it leads to a dead process. A [`Name<T>`](crate::name::Name)
//! leads to whichever incarnation runs now. Make the names where the tree is built, register
//! them by wrapping each start function in [`Name::registering`](crate::name::Name::registering),
//! and hand clones to whoever needs them (the example's `Names` struct, passed by value):
//!
//! ```text
//! ChildSpec::new("store", names.store.registering(|| Store::start(()))),
//! ...
//! names.store.request(|reply| StoreRequest::Get(key, reply)).await?
//! ```
//!
//! Keep the `Name`, not the handle it gave you: look it up at the moment of use. A lookup never
//! waits: while the child restarts, [`Name::get`](crate::name::Name::get) fails at once and a
//! call through the name returns `NoProc` (why: see [`name`](crate::name)). In the example
//! such a failure is a `?` — the connection crashes, which is right, since under
//! `rest_for_one` a restarting `store` restarts the connections anyway.
//!
//! ## Task children: a plain future under a supervisor
//!
//! An accept loop is a future, not a server: it has no messages to handle. Make it a child with
//! [`ChildSpec::task`](crate::supervisor::ChildSpec::task) and
//! [`Restart::Permanent`](crate::supervisor::Restart::Permanent), and let it crash: the
//! example's `accept` returns `Err` when `accept()` fails, and its supervisor starts it again.
//! A task has no mailbox, so a graceful shutdown ends it at its next `.await`, as a kill would:
//! keep a task's cleanup in `Drop`, or make it a server.
//!
//! Each accepted socket becomes a temporary child of `conns` through
//! [`DynamicSupervisor::start_temporary`](crate::dynamic_supervisor::DynamicSupervisor::start_temporary),
//! whose start function consumes its arguments. When `conns` already has `max_children`, the
//! socket comes back in the error, and the acceptor can still answer `bye busy`.
//!
//! ## Streams: a socket feeding a server
//!
//! [`Context::attach_stream`](crate::gen_server::Context::attach_stream) turns any `Stream`
//! into `handle_info` messages, ending with [`StreamEvent::Ended`](crate::stream::StreamEvent).
//! The connection attaches its socket's lines in `init`; a client that closes the connection
//! ends the stream, and the server stops normally; a read error (bytes that are not UTF-8) is
//! an item like any other, and the handler lets it crash. The server reads the next line only
//! when it has handled the messages before it, so a client that sends faster than the server
//! works waits in its own TCP buffer (backpressure), and the stream dies with the server.
//! Backpressure bounds the number of lines, not the size of one: the example's reader caps a
//! line at 64 KiB (`read_lines`) and ends a connection that sends more without a newline, as
//! any service reading untrusted input must.
//!
//! ## Links: processes that must die together
//!
//! Supervisors watch their children with monitors; they do not need links. Use a
//! [link](crate::link) when two processes are one unit of failure: say a connection that starts a
//! helper task to upload a file for it; link them, and if either crashes the other dies with the
//! same reason. A server that must outlive a linked process and be told instead
//! [traps exits](crate::gen_server::Context::trap_exits) and receives an
//! [`Exit`](crate::link::Exit) message. Prefer
//! [`start_link`](crate::gen_server::GenServer::start_link) to starting then linking: it links
//! before `init` runs, so there is no moment where one runs unlinked. A child whose start
//! function calls `start_link` is linked to its supervisor (which runs the start function), as
//! in Erlang; the supervisor traps exits, so the child's crash is a restart, never the
//! supervisor's death. A trapping server stops, `terminate` included, when its parent exits.
//!
//! ## Backpressure: bounded mailboxes
//!
//! Mailboxes are unbounded by default, as in Erlang. A producer that can outrun its consumer
//! needs a bound: the example starts each connection with
//! [`mailbox_capacity`](crate::gen_server::StartOptions::mailbox_capacity), because chat lines
//! for a client arrive from every other client, and a client that reads slowly would otherwise
//! grow its server's mailbox without limit. The broadcast uses `cast`, which returns
//! [`SendError::Full`](crate::gen_server::SendError::Full) for that one slow client (its line is
//! dropped and logged), and nobody waits for it. A producer that should slow down instead
//! uses [`cast_wait`](crate::gen_server::ServerRef::cast_wait). Calls are backpressure already:
//! the caller waits for the reply. Stops, `Down`s, exit signals and timers never wait for room.
//!
//! ## Replies typed per request
//!
//! A server whose calls answer different things gives each request its own
//! [`ReplyTo<R>`](crate::gen_server::ReplyTo) and is called with
//! [`request`](crate::gen_server::ServerRef::request): the example's `Get` answers
//! `Option<String>` and `Len` answers `usize`, and no caller matches an impossible arm.
//!
//! ## Seeing what runs
//!
//! [`observer::tree`](crate::observer::tree) returns the tree as data (the demo prints it),
//! [`process::info`](crate::process::info) what one process is doing and how long its mailbox
//! is, and [`sys::get_state`](crate::sys::get_state) what a server chooses to show of its state
//! through [`format_status`](crate::gen_server::GenServer::format_status) (the example's store
//! shows its keys, never its values). None of it costs a process anything until it is asked.
//!
//! ## Pitfalls
//!
//! - **A `handle_continue` chain does not read the mailbox.** A continue runs straight after
//!   the callback that asked for it, before any queued message; a server that does its work as
//!   a chain of continues answers no call until the chain ends (only a stop request breaks in).
//!   Use a continue for the one step that must run before anything else (loading after `init`);
//!   for a long job in steps, send yourself a message per step
//!   ([`Context::server_ref`](crate::gen_server::Context::server_ref) and `cast`, or
//!   [`send_after`](crate::gen_server::Context::send_after) with a zero delay), so calls are
//!   answered between steps.
//! - **`Drop` runs before the name is released; `terminate` may not run at all.** A server's
//!   state is dropped as the process exits — stopped, crashed or killed — *before* its names are
//!   released and its `Down` delivered (`tests/drop_order.rs`), so a resource freed in `Drop`
//!   (a socket closed, a lock file removed) is free before the restarted child can take the
//!   name. `Drop` cannot `.await`, and must not block: it holds up the exit. Async cleanup (the
//!   example's goodbye line) goes in `terminate`, which runs on a stop or a crash but not on a
//!   kill ([when `terminate` runs](crate::gen_server#when-terminate-runs)).
//! - **Never block a callback.** A kill takes effect at the callback's next `.await`; a callback
//!   that blocks its thread cannot be stopped, and holds up its supervisor's shutdown.
//! - **Don't cache handles across restarts.** Store the [`Name`](crate::name::Name).
//! - **A crash loop that is not a bug needs a backoff.** Out of file descriptors, `accept`
//!   fails at once every time: restarted at once, the acceptor would spend its supervisor's
//!   whole restart budget in a millisecond and take the service down. The example gives it a
//!   [`RestartBackoff`](crate::supervisor::RestartBackoff) that grows past the intensity window.
//! - **Return the application's exit status**
//!   ([`AppExit::exit_code`](crate::application::AppExit::exit_code)): a root that gave up is a
//!   failure for whoever runs the program.
//! - **What the example leaves out**: a write timeout (a client that sends but never reads
//!   blocks its connection in `write_all`, holding a slot until it disconnects or the service
//!   stops; a graceful stop then waits the child's shutdown timeout, 5 s by default, and kills
//!   it), and a configurable port and limits.
