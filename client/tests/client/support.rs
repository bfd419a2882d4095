//! What the client tests share: the real gateway started in process on a
//! loopback port (and restarted on the same port), tokens, a client config
//! with millisecond intervals, and a scriptable fake gateway for the close
//! codes and silences the real one does not produce on demand.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::event::{Event, UserId};
use edge_gateway::auth::{sign_hs256, TokenClaims};
use edge_gateway::GatewayConfig;
use event_log::memory::MemoryLog;
use event_log::{LogSettings, NewEvent, SharedLog};
use futures::{SinkExt, StreamExt};
use portfolio_client::{ClientConfig, Credentials, PortfolioState};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub(crate) const SECRET: &str = "0123456789abcdef0123456789abcdef-test-secret";
/// The longest any awaited condition may take.
pub(crate) const WAIT: Duration = Duration::from_secs(10);
/// Gateway settings that make the delivered state exact and quick: a short
/// throttle window and no held-back price changes.
pub(crate) const EXACT: [(&str, &str); 2] = [("THROTTLE_WINDOW_MS", "50"), ("DIFF_THRESHOLD", "0")];

/// The real gateway, serving in this process.
pub(crate) struct Gateway {
    pub(crate) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Gateway {
    /// Starts a gateway on a free loopback port.
    pub(crate) async fn start(log: SharedLog, extra: &[(&str, &str)]) -> Self {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), log, extra).await
    }

    /// Starts a gateway on `addr` (a restart reuses the old address).
    pub(crate) async fn start_on(addr: SocketAddr, log: SharedLog, extra: &[(&str, &str)]) -> Self {
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        vars.insert("JWT_SECRET".into(), SECRET.into());
        for (key, value) in extra {
            vars.insert((*key).into(), (*value).into());
        }
        let config = GatewayConfig::from_source(&vars).expect("gateway config");
        let listener = TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(error) = edge_gateway::run(listener, config, log, shutdown).await {
                panic!("gateway failed: {error:#}");
            }
        });
        Gateway { addr, stop: Some(stop), task }
    }

    /// Graceful shutdown (every socket gets 1012); returns once the
    /// listener is closed.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, &mut self.task).await.expect("gateway stops in time").expect("gateway task");
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

pub(crate) fn memory_log() -> SharedLog {
    Arc::new(MemoryLog::new(LogSettings::default()))
}

pub(crate) fn user(id: &str) -> UserId {
    UserId::new(id).expect("user id")
}

pub(crate) fn token(user: &str, expires_in: i64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() as i64;
    sign_hs256(SECRET.as_bytes(), &TokenClaims::new(user, now + expires_in)).expect("sign")
}

/// A client config for `user` with millisecond intervals and a fixed jitter
/// seed. Reconcile and ping keep their defaults unless a test lowers them.
pub(crate) fn config(url: &str, user: &str) -> ClientConfig {
    let mut config = ClientConfig::new(url, Credentials::Bearer(token(user, 3_600))).expect("client config");
    config.backoff_base = Duration::from_millis(20);
    config.backoff_cap = Duration::from_millis(200);
    config.backoff_jitter = Duration::from_millis(20);
    config.restart_jitter = Duration::from_millis(50);
    config.poll_interval = Duration::from_millis(50);
    config.connect_timeout = Duration::from_secs(2);
    config.request_timeout = Duration::from_secs(2);
    config.jitter_seed = Some(7);
    config
}

pub(crate) async fn publish(log: &SharedLog, event: Event, id: &str) -> u64 {
    log.publish(&NewEvent::new(event, id)).await.expect("publish").seq()
}

/// The server's state of `user`, as a client holds it.
pub(crate) async fn server_state(log: &SharedLog, user: &UserId) -> PortfolioState {
    PortfolioState::from(log.snapshot(user).await.expect("snapshot"))
}

/// A WebSocket server the test scripts message by message.
pub(crate) struct FakeGateway {
    pub(crate) addr: SocketAddr,
    conns: mpsc::Receiver<FakeConn>,
    _accept: JoinHandle<()>,
}

impl FakeGateway {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, conns) = mpsc::channel(16);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                if let Ok(ws) = tokio_tungstenite::accept_async(stream).await {
                    if tx.send(FakeConn { ws }).await.is_err() {
                        return;
                    }
                }
            }
        });
        FakeGateway { addr, conns, _accept: accept }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next connection the client opens.
    pub(crate) async fn next_conn(&mut self) -> FakeConn {
        tokio::time::timeout(WAIT, self.conns.recv()).await.expect("a connection in time").expect("accept loop")
    }
}

pub(crate) struct FakeConn {
    ws: WebSocketStream<TcpStream>,
}

impl FakeConn {
    /// The next text message as JSON.
    pub(crate) async fn recv(&mut self) -> Value {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.expect("a message in time") {
                Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).expect("JSON"),
                Some(Ok(_)) => continue,
                other => panic!("connection ended: {other:?}"),
            }
        }
    }

    pub(crate) async fn send(&mut self, message: Value) {
        self.ws.send(Message::text(message.to_string())).await.expect("send");
    }

    /// Reads the client's `subscribe`, answers with an empty snapshot at
    /// `seq` (unless it resumes) and `subscribed`; returns the `subscribe`.
    pub(crate) async fn accept_subscribe(&mut self, seq: u64) -> Value {
        let subscribe = self.recv().await;
        assert_eq!(subscribe["type"], "subscribe", "{subscribe}");
        if subscribe.get("since").is_none() {
            self.send(json!({
                "type": "snapshot", "seq": seq, "epoch": "e1", "timestamp": "2026-01-03T15:30:45.123Z",
                "data": {"positions": [], "orders": [], "trades": []}
            }))
            .await;
        }
        self.send(json!({"type": "subscribed", "channels": subscribe["channels"], "seq": seq, "epoch": "e1"})).await;
        subscribe
    }

    pub(crate) async fn close(mut self, close: portfolio_client::Close) {
        let frame = CloseFrame { code: CloseCode::from(close.code()), reason: close.reason().into() };
        let _ = self.ws.close(Some(frame)).await;
    }
}
