//! A supervised TCP chat and key-value service on loopback: an acceptor task, one server per
//! connection under a `DynamicSupervisor`, a registry of nicknames, a pub/sub lobby, a store
//! with typed replies, idle expiry, and a clean shutdown. The crate docs' guide "Building a
//! service" (`otp_core::guide`) walks through it.
//!
//! Run the demo (two scripted clients, then the tree as `observer` sees it) with
//! `cargo run -p examples --example tcp_server`, or serve until ctrl-c with
//! `cargo run -p examples --example tcp_server -- --serve` and talk to it with `nc`.
//!
//! The tree, `rest_for_one`: each child needs the ones before it, so when one restarts, those
//! after it restart too.
//!
//! ```text
//! root (rest_for_one)
//! ├── users     Registry<String, ()>     unique nicknames; a nickname goes with its connection
//! ├── lobby     DuplicateRegistry        pub/sub: every connection with a nickname
//! ├── store     Store (a GenServer)      the key-value state
//! ├── conns     DynamicSupervisor        one temporary Connection per client, at most `max_connections`
//! └── acceptor  task (permanent)         accepts, and starts a Connection under `conns`
//! ```
//!
//! The protocol is one command per line: `NICK name`, `SAY text`, `SET key value`, `GET key`,
//! `KEYS`, `QUIT`. Replies are `ok`, `value <v>`, `none`, `keys <n>`, `error <why>`; chat
//! arrives as `<nick>: <text>`; the server ends a connection with `bye <why>` (idle, busy, line
//! too long, shutting down, or after `QUIT`), or just closes it if it crashed (a line that is
//! not UTF-8). Lines are at most 64 KiB; commands are case-sensitive.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use otp_core::ExitReason;
use otp_core::application::Application;
use otp_core::dynamic_supervisor::{DynamicSupervisor, DynamicSupervisorOptions};
use otp_core::gen_server::{
    BoxError, CallResult, Caller, Context, GenServer, Init, ReplyTo, SendError, StartOptions,
};
use otp_core::name::Name;
use otp_core::registry::{DuplicateRegistry, RegisterError, Registry};
use otp_core::stream::StreamEvent;
use otp_core::supervisor::{
    ChildSpec, Restart, RestartBackoff, Strategy, SupFlags, Supervisor, SupervisorStartError,
};
use otp_core::timer::TimerRef;
use otp_core::{ServerRef, observer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// The service's settings.
#[derive(Debug, Clone, Copy)]
struct Config {
    /// A connection that sends nothing for this long is closed.
    idle: Duration,
    /// Connections beyond this many are answered `bye busy`.
    max_connections: usize,
    /// Chat messages waiting for a slow client beyond this many are dropped for that client.
    outbox: NonZeroUsize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            idle: Duration::from_secs(60),
            max_connections: 100,
            outbox: NonZeroUsize::new(64).expect("not zero"),
        }
    }
}

/// The lobby everyone with a nickname is subscribed to.
const LOBBY: &str = "lobby";

type Users = Registry<String, ()>;
type Lobby = DuplicateRegistry<&'static str, ServerRef<Connection>>;

/// The names of the tree's children: made once, handed down by value. Each leads to the child's
/// current incarnation, across restarts.
#[derive(Clone)]
struct Names {
    users: Name<Users>,
    lobby: Name<Lobby>,
    store: Name<ServerRef<Store>>,
    conns: Name<DynamicSupervisor>,
}

impl Names {
    fn new() -> Names {
        Names {
            users: Name::new("users"),
            lobby: Name::new("lobby"),
            store: Name::new("store"),
            conns: Name::new("conns"),
        }
    }
}

/// Starts the service's tree, accepting on `listener`; its children register `names`.
async fn service(
    listener: TcpListener,
    config: Config,
    names: Names,
) -> Result<Supervisor, SupervisorStartError> {
    let listener = Arc::new(listener);
    let conns_options = DynamicSupervisorOptions {
        max_children: Some(config.max_connections),
        ..DynamicSupervisorOptions::default()
    };
    let acceptor_names = names.clone();
    Supervisor::start(
        SupFlags::new(Strategy::RestForOne),
        vec![
            ChildSpec::new("users", names.users.registering(Users::start)),
            ChildSpec::new("lobby", names.lobby.registering(Lobby::start)),
            ChildSpec::new("store", names.store.registering(|| Store::start(()))),
            ChildSpec::supervisor(
                "conns",
                names
                    .conns
                    .registering(move || DynamicSupervisor::start(conns_options)),
            ),
            ChildSpec::task("acceptor", move || {
                accept(listener.clone(), acceptor_names.clone(), config)
            })
            .restart(Restart::Permanent)
            // Out of file descriptors, `accept` fails at once again: restarting at once would
            // spend the root's restart budget in a millisecond and stop the whole service.
            // Growing past the 5 s intensity window, the backoff keeps retrying instead.
            .backoff(RestartBackoff {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(10),
                reset_after: Duration::from_secs(30),
            }),
        ],
    )
    .await
}

/// The acceptor: a plain future, supervised as a task child. An error of its own (the listener
/// failed, or `conns` is restarting) crashes it, and its supervisor restarts it; what one client
/// does (reset the connection before it is told `busy`) is not the acceptor's failure.
async fn accept(listener: Arc<TcpListener>, names: Names, config: Config) -> Result<(), BoxError> {
    loop {
        let (socket, peer) = listener.accept().await?;
        // Replies are small writes: without this, Nagle's algorithm and the client's delayed
        // ACK hold the second of two writes (`ok`, then a chat line) for ~40 ms. Failing to set
        // it costs latency, nothing else.
        let _ = socket.set_nodelay(true);
        let args = ConnectionArgs {
            socket,
            peer,
            names: names.clone(),
            idle: config.idle,
        };
        let start = move |args| {
            let options = StartOptions::new()
                .label("connection")
                .mailbox_capacity(config.outbox);
            Connection::start_with(args, options)
        };
        // With `max_connections` running, the socket comes back to be told.
        if let Err(refused) = names.conns.get()?.start_temporary(args, start).await {
            if let Some(mut args) = refused.args {
                if let Err(error) = args.socket.write_all(b"bye busy\n").await {
                    tracing::debug!(peer = %args.peer, %error, "refused client already gone");
                }
            }
        }
    }
}

/// The key-value state, in one server. Each request declares its reply's type.
struct Store(BTreeMap<String, String>);

enum StoreRequest {
    Get(String, ReplyTo<Option<String>>),
    Len(ReplyTo<usize>),
}

impl GenServer for Store {
    type Args = ();
    type Call = StoreRequest;
    type Reply = std::convert::Infallible;
    /// Set a key.
    type Cast = (String, String);
    type Info = std::convert::Infallible;
    type Continue = ();

    async fn init((): (), _: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        Ok(Init::Ready(Store(BTreeMap::new())))
    }

    async fn handle_call(
        &mut self,
        request: StoreRequest,
        _: Caller<'_, Self::Reply>,
        _: &mut Context<Self>,
    ) -> Result<CallResult<Self::Reply>, BoxError> {
        // A reply fails only if the caller stopped waiting; it is dropped, as in Erlang.
        match request {
            StoreRequest::Get(key, reply) => drop(reply.reply(self.0.get(&key).cloned())),
            StoreRequest::Len(reply) => drop(reply.reply(self.0.len())),
        }
        Ok(CallResult::NoReply)
    }

    async fn handle_cast(
        &mut self,
        (key, value): (String, String),
        _: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        self.0.insert(key, value);
        Ok(())
    }

    /// What `sys::get_state` shows: the keys, not the values.
    fn format_status(&self) -> Option<String> {
        Some(format!(
            "Store {{ keys: {:?} }}",
            self.0.keys().collect::<Vec<_>>()
        ))
    }
}

/// One client's connection: reads its lines as a stream, writes its replies.
struct Connection {
    writer: OwnedWriteHalf,
    names: Names,
    nickname: Option<String>,
    idle: Duration,
    /// The pending idle timer, and how many lines arrived when it was set: an `Idle` that
    /// fired before a later line was handled is stale.
    idle_timer: Option<TimerRef>,
    lines_seen: u64,
}

struct ConnectionArgs {
    socket: TcpStream,
    peer: SocketAddr,
    names: Names,
    idle: Duration,
}

/// The longest line a client may send. A longer one ends its connection (`bye line too long`)
/// rather than growing the server's memory while it waits for a newline.
const MAX_LINE: usize = 64 * 1024;

/// What the connection's reader yields.
enum Read {
    Line(String),
    /// More than [`MAX_LINE`] bytes without a newline; nothing more is read.
    TooLong,
}

/// The client's lines, each at most [`MAX_LINE`] bytes, as a stream; a line that is not UTF-8
/// is an error.
fn read_lines(reader: OwnedReadHalf) -> impl futures::Stream<Item = io::Result<Read>> {
    futures::stream::try_unfold(Some(BufReader::new(reader)), |reader| async move {
        let Some(mut reader) = reader else {
            return Ok(None);
        };
        let mut line = Vec::new();
        let limit = MAX_LINE as u64 + 1;
        if (&mut reader)
            .take(limit)
            .read_until(b'\n', &mut line)
            .await?
            == 0
        {
            return Ok(None);
        }
        if line.last() != Some(&b'\n') && line.len() > MAX_LINE {
            return Ok(Some((Read::TooLong, None)));
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        let line = String::from_utf8(line)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
        Ok(Some((Read::Line(line), Some(reader))))
    })
}

enum Info {
    Line(String),
    TooLong,
    Closed,
    ReadFailed(io::Error),
    /// Idle since this many lines.
    Idle(u64),
}

/// A chat line for this client.
struct Chat(Arc<str>);

impl GenServer for Connection {
    type Args = ConnectionArgs;
    type Call = ();
    type Reply = ();
    type Cast = Chat;
    type Info = Info;
    type Continue = ();

    /// Only wiring: the socket's read half becomes a stream of lines, read only when the server
    /// is ready for the next one (backpressure on the client).
    async fn init(args: ConnectionArgs, ctx: &mut Context<Self>) -> Result<Init<Self>, BoxError> {
        tracing::info!(peer = %args.peer, "connected");
        let (reader, writer) = args.socket.into_split();
        ctx.attach_stream(read_lines(reader), |event| match event {
            StreamEvent::Item(Ok(Read::Line(line))) => Info::Line(line),
            StreamEvent::Item(Ok(Read::TooLong)) => Info::TooLong,
            StreamEvent::Item(Err(error)) => Info::ReadFailed(error),
            StreamEvent::Ended => Info::Closed,
        });
        let mut connection = Connection {
            writer,
            names: args.names,
            nickname: None,
            idle: args.idle,
            idle_timer: None,
            lines_seen: 0,
        };
        connection.rearm_idle(ctx)?;
        Ok(Init::Ready(connection))
    }

    async fn handle_info(&mut self, info: Info, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        match info {
            Info::Line(line) => {
                self.lines_seen += 1;
                self.rearm_idle(ctx)?;
                self.command(&line, ctx).await?;
            }
            Info::Closed => ctx.stop(ExitReason::Normal),
            Info::TooLong => {
                self.writer.write_all(b"bye line too long\n").await?;
                ctx.stop(ExitReason::Normal);
            }
            // Not UTF-8, say: let it crash. The reason is in the supervisor's events.
            Info::ReadFailed(error) => return Err(error.into()),
            Info::Idle(seen) if seen == self.lines_seen => {
                self.writer.write_all(b"bye idle\n").await?;
                ctx.stop(ExitReason::Normal);
            }
            Info::Idle(_) => {}
        }
        Ok(())
    }

    async fn handle_cast(
        &mut self,
        Chat(line): Chat,
        _: &mut Context<Self>,
    ) -> Result<(), BoxError> {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .await?;
        Ok(())
    }

    async fn terminate(&mut self, reason: &ExitReason, _: &mut Context<Self>) {
        if *reason == ExitReason::Shutdown {
            // Best effort: the client may be gone already.
            let _ = self.writer.write_all(b"bye shutting down\n").await;
        }
    }
}

impl Connection {
    /// Replaces the idle timer with one from now.
    fn rearm_idle(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        if let Some(timer) = self.idle_timer.take() {
            ctx.cancel_timer(timer);
        }
        self.idle_timer = Some(ctx.send_after(self.idle, Info::Idle(self.lines_seen))?);
        Ok(())
    }

    /// Runs one command and writes its reply.
    async fn command(&mut self, line: &str, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        let reply = match (verb, self.nickname.as_deref()) {
            ("NICK", _) if rest.is_empty() || rest.contains(' ') => "error bad nickname".into(),
            ("NICK", Some(_)) => "error nickname already set".into(),
            ("NICK", None) => self.take_nickname(rest, ctx)?,
            ("SAY", None) => "error NICK first".into(),
            ("SAY", Some(nickname)) => {
                let chat: Arc<str> = format!("{nickname}: {rest}").into();
                // A client whose outbox is full misses this line; nobody waits for it.
                self.names.lobby.get()?.dispatch(&LOBBY, |_, connection| {
                    if let Err(SendError::Full(_)) = connection.cast(Chat(chat.clone())) {
                        tracing::debug!(to = %connection.pid(), "outbox full: chat dropped");
                    }
                });
                "ok".into()
            }
            ("SET", _) => match rest.split_once(' ') {
                Some((key, value)) => {
                    self.names.store.cast((key.into(), value.into()))?;
                    "ok".into()
                }
                None => "error SET needs a key and a value".into(),
            },
            ("GET", _) => {
                let key = rest.to_string();
                match self
                    .names
                    .store
                    .request(|reply| StoreRequest::Get(key, reply))
                    .await?
                {
                    Some(value) => format!("value {value}"),
                    None => "none".into(),
                }
            }
            ("KEYS", _) => format!(
                "keys {}",
                self.names.store.request(StoreRequest::Len).await?
            ),
            ("QUIT", _) => {
                ctx.stop(ExitReason::Normal);
                "bye".into()
            }
            _ => "error unknown command".into(),
        };
        self.writer
            .write_all(format!("{reply}\n").as_bytes())
            .await?;
        Ok(())
    }

    /// Registers `nickname` for this process (released when it exits) and joins the lobby.
    fn take_nickname(
        &mut self,
        nickname: &str,
        ctx: &mut Context<Self>,
    ) -> Result<String, BoxError> {
        match self.names.users.get()?.register(nickname.to_string(), ()) {
            Ok(()) => {}
            Err(RegisterError::AlreadyRegistered(_)) => return Ok("error nickname taken".into()),
            Err(error) => return Err(error.into()),
        }
        self.names.lobby.get()?.register(LOBBY, ctx.server_ref())?;
        self.nickname = Some(nickname.to_string());
        Ok("ok".into())
    }
}

#[tokio::main]
async fn main() -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    if std::env::args().any(|arg| arg == "--serve") {
        println!("listening on {address}; ctrl-c stops the tree in order");
        let outcome = Application::run(|| service(listener, Config::default(), Names::new())).await;
        println!("{outcome}");
        // Failure if the root gave up: a service's exit status must say so.
        return Ok(outcome.exit_code());
    }

    let root = service(listener, Config::default(), Names::new()).await?;
    let mut ada = Client::connect(address).await?;
    let mut bob = Client::connect(address).await?;
    println!("ada> NICK ada: {}", ada.ask("NICK ada").await?);
    println!("bob> NICK bob: {}", bob.ask("NICK bob").await?);
    println!("ada> SAY hello, bob: {}", ada.ask("SAY hello, bob").await?);
    println!("bob hears: {}", bob.line().await?);
    println!("ada hears: {}", ada.line().await?);
    println!(
        "ada> SET lang erlang: {}",
        ada.ask("SET lang erlang").await?
    );
    println!("bob> GET lang: {}", bob.ask("GET lang").await?);
    println!("bob> KEYS: {}", bob.ask("KEYS").await?);
    println!(
        "\n{}",
        observer::tree(root.pid(), Duration::from_secs(5)).await?
    );
    root.stop(Duration::from_secs(5)).await?;
    println!("ada hears, after the shutdown: {}", ada.line().await?);
    Ok(std::process::ExitCode::SUCCESS)
}

/// A line-based test client (plain tokio: it is outside the service).
struct Client {
    lines: tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    writer: OwnedWriteHalf,
}

impl Client {
    async fn connect(address: SocketAddr) -> io::Result<Client> {
        let (reader, writer) = TcpStream::connect(address).await?.into_split();
        Ok(Client {
            lines: BufReader::new(reader).lines(),
            writer,
        })
    }

    async fn send(&mut self, line: &str) -> io::Result<()> {
        self.writer.write_all(format!("{line}\n").as_bytes()).await
    }

    /// The next line from the server; an error if none comes within 5 s or the server closed.
    async fn line(&mut self) -> io::Result<String> {
        match tokio::time::timeout(Duration::from_secs(5), self.lines.next_line()).await {
            Ok(Ok(Some(line))) => Ok(line),
            Ok(Ok(None)) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }

    async fn ask(&mut self, line: &str) -> io::Result<String> {
        self.send(line).await?;
        self.line().await
    }
}

#[cfg(test)]
impl Client {
    /// Whether the server closed the connection (within 5 s).
    async fn closed(&mut self) -> bool {
        matches!(self.line().await, Err(error) if error.kind() == io::ErrorKind::UnexpectedEof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn start(config: Config) -> (Supervisor, SocketAddr) {
        let (root, address, _) = start_named(config).await;
        (root, address)
    }

    async fn start_named(config: Config) -> (Supervisor, SocketAddr, Names) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let names = Names::new();
        let root = service(listener, config, names.clone()).await.unwrap();
        (root, address, names)
    }

    #[tokio::test]
    async fn clients_chat_and_share_the_store() {
        let (root, address) = start(Config::default()).await;
        let mut ada = Client::connect(address).await.unwrap();
        let mut bob = Client::connect(address).await.unwrap();
        assert_eq!(ada.ask("NICK ada").await.unwrap(), "ok");
        assert_eq!(bob.ask("NICK bob").await.unwrap(), "ok");
        assert_eq!(ada.ask("SAY hi").await.unwrap(), "ok");
        assert_eq!(bob.line().await.unwrap(), "ada: hi");
        assert_eq!(
            ada.line().await.unwrap(),
            "ada: hi",
            "the sender is in the lobby too"
        );
        assert_eq!(ada.ask("SET k v").await.unwrap(), "ok");
        assert_eq!(ada.ask("GET k").await.unwrap(), "value v");
        assert_eq!(bob.ask("GET k").await.unwrap(), "value v");
        assert_eq!(bob.ask("GET nope").await.unwrap(), "none");
        assert_eq!(bob.ask("KEYS").await.unwrap(), "keys 1");
        root.stop(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test]
    async fn bad_commands_get_errors_and_the_connection_lives_on() {
        let (root, address) = start(Config::default()).await;
        let mut client = Client::connect(address).await.unwrap();
        for (command, reply) in [
            ("SAY hi", "error NICK first"),
            ("NICK", "error bad nickname"),
            ("NICK two words", "error bad nickname"),
            ("SET only-a-key", "error SET needs a key and a value"),
            ("DANCE", "error unknown command"),
            ("", "error unknown command"),
        ] {
            assert_eq!(client.ask(command).await.unwrap(), reply, "{command:?}");
        }
        assert_eq!(client.ask("QUIT").await.unwrap(), "bye");
        assert!(client.closed().await);
        root.stop(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test]
    async fn a_nickname_is_unique_and_freed_when_its_connection_ends() {
        let (root, address) = start(Config::default()).await;
        let mut first = Client::connect(address).await.unwrap();
        let mut second = Client::connect(address).await.unwrap();
        assert_eq!(first.ask("NICK ada").await.unwrap(), "ok");
        assert_eq!(
            second.ask("NICK ada").await.unwrap(),
            "error nickname taken"
        );
        assert_eq!(first.ask("QUIT").await.unwrap(), "bye");
        assert!(first.closed().await);
        // The name is released by the first connection's exit, which may still be under way:
        // retry, boundedly (each try is a round trip, not a spin).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match second.ask("NICK ada").await.unwrap().as_str() {
                "ok" => break,
                "error nickname taken" if tokio::time::Instant::now() < deadline => {}
                other => panic!("the nickname was never freed: {other}"),
            }
        }
        root.stop(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test]
    async fn a_crashing_connection_harms_no_other() {
        let (root, address) = start(Config::default()).await;
        let mut healthy = Client::connect(address).await.unwrap();
        assert_eq!(healthy.ask("NICK bob").await.unwrap(), "ok");
        let mut broken = Client::connect(address).await.unwrap();
        // Not UTF-8: the read fails, the connection crashes.
        broken.writer.write_all(b"\xff\xfe\n").await.unwrap();
        assert!(broken.closed().await);
        assert_eq!(healthy.ask("KEYS").await.unwrap(), "keys 0");
        root.stop(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test]
    async fn a_line_past_the_limit_ends_that_connection_only() {
        let (root, address) = start(Config::default()).await;
        let mut healthy = Client::connect(address).await.unwrap();
        let mut flooding = Client::connect(address).await.unwrap();
        let long = vec![b'x'; MAX_LINE + 1];
        flooding.writer.write_all(&long).await.unwrap();
        assert_eq!(flooding.line().await.unwrap(), "bye line too long");
        assert!(flooding.closed().await);
        // A line of exactly the limit is a line.
        let key = "k".repeat(MAX_LINE - "SET  v".len());
        assert_eq!(healthy.ask(&format!("SET {key} v")).await.unwrap(), "ok");
        assert_eq!(healthy.ask("KEYS").await.unwrap(), "keys 1");
        root.stop(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_and_an_active_one_is_not() {
        let config = Config {
            idle: Duration::from_millis(300),
            ..Config::default()
        };
        let (root, address) = start(config).await;
        let mut idle = Client::connect(address).await.unwrap();
        let mut active = Client::connect(address).await.unwrap();
        // The active client keeps talking until the idle one has been told; its own timer is
        // re-armed by every line, so it outlives the other's expiry.
        let told = {
            let mut told = std::pin::pin!(idle.line());
            loop {
                tokio::select! {
                    biased;
                    line = &mut told => break line.unwrap(),
                    reply = active.ask("KEYS") => assert_eq!(reply.unwrap(), "keys 0"),
                }
            }
        };
        assert_eq!(told, "bye idle");
        assert!(idle.closed().await);
        assert_eq!(active.ask("KEYS").await.unwrap(), "keys 0");
        root.stop(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_are_told_busy() {
        let config = Config {
            max_connections: 1,
            ..Config::default()
        };
        let (root, address) = start(config).await;
        let mut first = Client::connect(address).await.unwrap();
        assert_eq!(first.ask("KEYS").await.unwrap(), "keys 0");
        let mut second = Client::connect(address).await.unwrap();
        assert_eq!(second.line().await.unwrap(), "bye busy");
        assert!(second.closed().await);
        assert_eq!(first.ask("KEYS").await.unwrap(), "keys 0");
        root.stop(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test]
    async fn a_shutdown_says_goodbye_to_every_client_and_stops_accepting() {
        let (root, address) = start(Config::default()).await;
        let mut clients = Vec::new();
        for _ in 0..3 {
            let mut client = Client::connect(address).await.unwrap();
            assert_eq!(client.ask("KEYS").await.unwrap(), "keys 0");
            clients.push(client);
        }
        root.stop(Duration::from_secs(5)).await.unwrap();
        for client in &mut clients {
            assert_eq!(client.line().await.unwrap(), "bye shutting down");
            assert!(client.closed().await);
        }
        assert!(
            TcpStream::connect(address).await.is_err(),
            "the listener is closed"
        );
    }

    #[tokio::test]
    async fn the_tree_shows_the_connections_and_the_store_shows_its_keys() {
        let (root, address, names) = start_named(Config::default()).await;
        let mut client = Client::connect(address).await.unwrap();
        assert_eq!(
            client.ask("SET secret-key hidden-value").await.unwrap(),
            "ok"
        );
        let tree = observer::tree(root.pid(), Duration::from_secs(5))
            .await
            .unwrap();
        let conns = tree.children[3]
            .subtree
            .as_ref()
            .expect("conns is a supervisor");
        assert_eq!(conns.children.len(), 1);
        assert_eq!(
            conns.children[0]
                .process
                .as_ref()
                .map(|process| process.name),
            Some("connection")
        );
        let store = names.store.get().unwrap();
        let shown = otp_core::sys::get_state(&store, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(shown, r#"Store { keys: ["secret-key"] }"#);
        root.stop(Duration::from_secs(5)).await.unwrap();
    }
}
