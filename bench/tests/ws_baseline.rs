//! The `ws-baseline` binary (the bench's physical baseline) as a child
//! process: its READY line, fanout to exactly the listed users, `400` on bad
//! JSON, pings, the loopback-only listen address, and a clean SIGTERM exit.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const BINARY: &str = env!("CARGO_BIN_EXE_ws-baseline");
/// Bound on every wait; generous, as CI machines are slow.
const WAIT: Duration = Duration::from_secs(10);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The baseline child, killed when dropped.
struct Baseline {
    child: Child,
    addr: SocketAddr,
}

impl Baseline {
    async fn start() -> Self {
        let mut child =
            Command::new(BINARY).stdout(Stdio::piped()).kill_on_drop(true).spawn().expect("spawn ws-baseline");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        timeout(WAIT, BufReader::new(stdout).read_line(&mut line))
            .await
            .expect("READY line in time")
            .expect("read stdout");
        let addr = line
            .strip_prefix("READY ")
            .and_then(|rest| rest.trim_end().parse().ok())
            .unwrap_or_else(|| panic!("expected `READY <addr>`, got {line:?}"));
        Self { child, addr }
    }

    async fn connect(&self, user: &str) -> Socket {
        let url = format!("ws://{}/ws?user={user}", self.addr);
        let (socket, response) =
            timeout(WAIT, tokio_tungstenite::connect_async(url)).await.expect("handshake in time").expect("handshake");
        assert_eq!(response.status(), 101);
        socket
    }

    /// `POST /publish` over a fresh HTTP/1.1 connection; the status code.
    async fn post(&self, body: &str) -> u16 {
        let request = format!(
            "POST /publish HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        let exchange = async {
            let mut stream = TcpStream::connect(self.addr).await?;
            stream.write_all(request.as_bytes()).await?;
            let mut response = String::new();
            stream.read_to_string(&mut response).await?;
            std::io::Result::Ok(response)
        };
        let response = timeout(WAIT, exchange).await.expect("HTTP answer in time").expect("HTTP exchange");
        response
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP/1.1 response: {response:?}"))
    }
}

/// The next frame, within [`WAIT`].
async fn next(socket: &mut Socket) -> Message {
    timeout(WAIT, socket.next()).await.expect("a frame in time").expect("socket open").expect("a valid frame")
}

/// The next text frame as JSON.
async fn next_json(socket: &mut Socket) -> Value {
    match next(socket).await {
        Message::Text(text) => serde_json::from_str(&text).expect("JSON text frame"),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[tokio::test]
async fn publish_reaches_every_connection_of_the_listed_users_only() {
    let server = Baseline::start().await;
    let mut alice = server.connect("alice").await;
    let mut alice_tab = server.connect("alice").await;
    let mut bob = server.connect("bob").await;

    let first = json!({"type": "order_update", "order": {"id": "o-1", "qty": "1.5"}, "tags": ["a", 1, null]});
    let body = json!({"users": ["alice", "nobody"], "event": first}).to_string();
    assert_eq!(server.post(&body).await, 204);
    assert_eq!(next_json(&mut alice).await, first);
    assert_eq!(next_json(&mut alice_tab).await, first);

    // Bob's first frame is the event published for him after Alice's, so
    // Alice's never reached him.
    let second = json!({"type": "position_update", "n": 2});
    assert_eq!(server.post(&json!({"users": ["bob"], "event": second}).to_string()).await, 204);
    assert_eq!(next_json(&mut bob).await, second);

    // One event for both users: each connection gets it once.
    let third = json!("a bare string is any JSON too");
    assert_eq!(server.post(&json!({"users": ["bob", "alice"], "event": third}).to_string()).await, 204);
    for socket in [&mut alice, &mut alice_tab, &mut bob] {
        assert_eq!(next_json(socket).await, third);
    }

    // Client text is ignored; pings are answered.
    alice.send(Message::text("hello?")).await.expect("send text");
    alice.send(Message::Ping(b"still there".to_vec().into())).await.expect("send ping");
    assert_eq!(next(&mut alice).await, Message::Pong(b"still there".to_vec().into()));
}

#[tokio::test]
async fn bad_json_is_refused_with_400() {
    let server = Baseline::start().await;
    for body in ["{not json", r#"{"users": "alice", "event": 1}"#, r#"{"users": ["alice"]}"#, ""] {
        assert_eq!(server.post(body).await, 400, "{body:?}");
    }
}

#[tokio::test]
async fn sigterm_closes_every_socket_and_exits_cleanly() {
    let mut server = Baseline::start().await;
    let mut alice = server.connect("alice").await;
    let pid = server.child.id().expect("child running").to_string();
    let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
    assert!(status.success(), "kill -TERM {pid}");

    match next(&mut alice).await {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected a close frame, got {other:?}"),
    }
    let exit = timeout(WAIT, server.child.wait()).await.expect("exit in time").expect("wait");
    assert!(exit.success(), "{exit}");
}

#[tokio::test]
async fn non_loopback_listen_address_is_refused() {
    let output = Command::new(BINARY).args(["--listen", "192.0.2.1:0"]).output().await.expect("run ws-baseline");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
    assert!(output.stdout.is_empty(), "no READY line: {:?}", String::from_utf8_lossy(&output.stdout));
}
