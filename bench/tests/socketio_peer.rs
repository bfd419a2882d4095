//! The Socket.IO peer (`bench/peers/socketio`) against a real Redis, through
//! the bench's own Socket.IO client: its two nodes start and say READY, an
//! event published for one user crosses Redis to that user only, a bad token
//! is refused, and both nodes exit cleanly on SIGTERM. Needs `node` and `npm`
//! (skipped, saying so, when `node` is missing); the first run installs the
//! peer's pinned packages with `npm ci`.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bench::socketio::{Error, SocketIo};
use edge_gateway::auth::{sign_hs256, TokenClaims};
use serde_json::{json, Value};
use test_support::redis::RedisServer;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

const JWT_SECRET: &str = "socketio-peer-test-secret-0123456789abcdef";
/// Generous: the first start runs `npm ci`.
const START_TIMEOUT: Duration = Duration::from_secs(300);
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn events_cross_redis_to_their_user_only() {
    if std::process::Command::new("node").arg("--version").output().is_err() {
        eprintln!("SKIPPED: `node` is not installed; the Socket.IO peer needs Node.js 20+ and npm");
        return;
    }
    let redis = RedisServer::start();
    let mut server = Node::start("server", &redis.url()).await;
    let mut publisher = Node::start("publisher", &redis.url()).await;

    let mut alice = connect(server.port, "alice", JWT_SECRET).await.expect("alice connects");
    let mut bob = connect(server.port, "bob", JWT_SECRET).await.expect("bob connects");
    assert!(!alice.sid().is_empty());
    assert_eq!(http(publisher.port, "GET", "/health", "").await.0, 200);

    publish(publisher.port, json!({"users": ["alice"], "event": {"to": "alice", "seq": 1}})).await;
    assert_eq!(next_event(&mut alice).await, ("portfolio".to_owned(), json!({"to": "alice", "seq": 1})));
    // Both events cross the same Redis stream in order: if Bob had been sent
    // Alice's, it would come before his own.
    publish(publisher.port, json!({"users": ["bob"], "event": {"to": "bob", "seq": 2}})).await;
    assert_eq!(next_event(&mut bob).await.1, json!({"to": "bob", "seq": 2}));
    publish(publisher.port, json!({"users": ["alice", "bob"], "event": {"seq": 3}})).await;
    assert_eq!(next_event(&mut alice).await.1, json!({"seq": 3}));
    assert_eq!(next_event(&mut bob).await.1, json!({"seq": 3}));
    assert!(alice.bytes_received() > 0);

    let (status, body) = http(publisher.port, "POST", "/publish", "{not json").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = http(publisher.port, "POST", "/publish", r#"{"event": 1}"#).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("users"), "{body}");

    match connect(server.port, "mallory", "another-secret-0123456789abcdef").await {
        Err(Error::Refused(message)) => assert_eq!(message, "unauthorized"),
        other => panic!("a token signed with another secret must be refused: {other:?}"),
    }

    alice.close().await;
    bob.close().await;
    server.terminate().await;
    publisher.terminate().await;
}

/// One node of the peer, started through `start.sh`.
struct Node {
    role: &'static str,
    child: Child,
    port: u16,
}

impl Node {
    /// Starts `start.sh <role>` and waits for its `READY <port>` line.
    async fn start(role: &'static str, redis_url: &str) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/socketio/start.sh");
        let mut child = Command::new(&script)
            .arg(role)
            .env("PORT", "0")
            .env("REDIS_URL", redis_url)
            .env("JWT_SECRET", JWT_SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let ready = async {
            while let Some(line) = lines.next_line().await.expect("read the node's stdout") {
                if let Some(port) = line.strip_prefix("READY ") {
                    return port.parse::<u16>().unwrap_or_else(|e| panic!("{role}: {line:?}: {e}"));
                }
            }
            panic!("the {role} node exited before printing READY (its stderr is above)")
        };
        let port = tokio::time::timeout(START_TIMEOUT, ready)
            .await
            .unwrap_or_else(|_| panic!("the {role} node printed no READY within {START_TIMEOUT:?}"));
        // Keep reading, so the node never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { role, child, port }
    }

    /// Sends SIGTERM and expects a clean exit.
    async fn terminate(&mut self) {
        let pid = self.child.id().expect("the node is running");
        let status = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -TERM {pid}");
        let exit = tokio::time::timeout(EXIT_TIMEOUT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the {} node did not exit within {EXIT_TIMEOUT:?} of SIGTERM", self.role))
            .expect("wait for the node");
        assert!(exit.success(), "the {} node exited with {exit}", self.role);
    }
}

async fn connect(port: u16, user: &str, secret: &str) -> Result<SocketIo, Error> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
    let expires = i64::try_from(now).expect("seconds fit") + 3600;
    let token = sign_hs256(secret.as_bytes(), &TokenClaims::new(user, expires)).expect("sign");
    let stream = TcpStream::connect(("127.0.0.1", port)).await.expect("TCP connect to the server node");
    SocketIo::connect(stream, &format!("127.0.0.1:{port}"), &token).await
}

async fn next_event(socket: &mut SocketIo) -> (String, Value) {
    tokio::time::timeout(EVENT_TIMEOUT, socket.next_event())
        .await
        .unwrap_or_else(|_| panic!("no event within {EVENT_TIMEOUT:?}"))
        .expect("the connection is open")
        .expect("an event")
}

async fn publish(port: u16, body: Value) {
    let (status, answer) = http(port, "POST", "/publish", &body.to_string()).await;
    assert_eq!(status, 204, "{answer}");
}

/// One HTTP/1.1 exchange with `Connection: close`: (status, body).
async fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.expect("TCP connect to the publisher node");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send the request");
    let mut response = String::new();
    tokio::time::timeout(EVENT_TIMEOUT, stream.read_to_string(&mut response))
        .await
        .expect("the publisher answers in time")
        .expect("read the answer");
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{response:?}"));
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body).to_owned();
    (status, body)
}
