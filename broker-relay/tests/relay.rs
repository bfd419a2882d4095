//! The broker path end to end: the fake Alpaca's streams → the relay → the
//! functions over signed HTTP → a real `redis-server` → the gateway → a
//! user's WebSocket. Nothing is mocked between the fake broker and the
//! socket.

use std::collections::BTreeMap;
use std::future::pending;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker_alpaca::AlpacaBroker;
use common::config::Secret;
use common::event::{Symbol, UserId};
use common::protocol::{ServerMessage, SNAPSHOT_TRADES};
use edge_gateway::auth::{sign_hs256, TokenClaims};
use edge_gateway::GatewayConfig;
use event_log::redis::RedisLog;
use event_log::{LogSettings, ReadAfter, SharedLog};
use functions::signature::{now_unix, sign, Verifier, SIGNATURE_HEADER};
use functions::{app, AppState, Deps, Function, Limits};
use futures::{SinkExt, StreamExt};
use portfolio_client::PortfolioState;
use serde_json::{json, Value};
use test_support::alpaca::{FakeAlpaca, FakeFill, KEY_ID, SECRET};
use test_support::redis::RedisServer;
use test_support::wait;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const JWT_SECRET: &str = "0123456789abcdef0123456789abcdef-relay-test";
const WEBHOOK_SECRET: &str = "relay-test-webhook-secret-0123456789ab";
const INGEST_SECRET: &str = "relay-test-ingest-secret-0123456789abc";
const WAIT: Duration = Duration::from_secs(10);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Redis, the fake broker, the functions, the gateway and the relay, each
/// on its own loopback port.
struct Stack {
    log: SharedLog,
    alpaca: FakeAlpaca,
    functions: SocketAddr,
    gateway: SocketAddr,
    relay: SocketAddr,
    relay_listener: Option<TcpListener>,
    relay_vars: BTreeMap<String, String>,
    stop_relay: Option<oneshot::Sender<()>>,
    relay_task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _redis: RedisServer,
}

impl Stack {
    async fn start(relay_vars: &[(&str, &str)]) -> Self {
        let redis = RedisServer::start();
        let log: SharedLog = Arc::new(
            RedisLog::connect(&redis.url(), LogSettings::default(), Duration::from_secs(2)).await.expect("redis"),
        );
        let alpaca = FakeAlpaca::start().await;

        let redis_log = RedisLog::connect(&redis.url(), LogSettings::default(), Duration::from_secs(2)).await.unwrap();
        let broker = AlpacaBroker::new(&alpaca.base_url(), KEY_ID, SECRET).expect("broker client");
        let deps = Deps {
            log: log.clone(),
            index: Arc::new(redis_log),
            broker: Some(Arc::new(broker)),
            limits: Limits::default(),
        };
        let tolerance = Duration::from_secs(300);
        let state = AppState::new(
            deps,
            &Function::ALL,
            Some(Verifier::new(Secret::new(WEBHOOK_SECRET), tolerance)),
            Some(Verifier::new(Secret::new(INGEST_SECRET), tolerance)),
        )
        .expect("functions state");
        let (functions, listener) = listen().await;
        tokio::spawn(functions::server::run(listener, app(state), pending()));

        let vars: BTreeMap<String, String> = [("JWT_SECRET".to_owned(), JWT_SECRET.to_owned())].into();
        let gateway_state =
            edge_gateway::AppState::new(GatewayConfig::from_source(&vars).expect("gateway config"), log.clone())
                .expect("gateway state");
        let (gateway, listener) = listen().await;
        tokio::spawn(edge_gateway::serve_state(listener, gateway_state, axum::Router::new(), pending()));

        let (relay, relay_listener) = listen().await;
        Stack {
            log,
            alpaca,
            functions,
            gateway,
            relay,
            relay_listener: Some(relay_listener),
            relay_vars: relay_vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            stop_relay: None,
            relay_task: None,
            _redis: redis,
        }
    }

    /// Starts the relay, once the test has linked the account: its first
    /// sync then finds the link.
    fn start_relay(&mut self) {
        let mut config: BTreeMap<String, String> = [
            ("FUNCTIONS_URL", format!("http://{}", self.functions)),
            ("WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
            ("INGEST_SECRET", INGEST_SECRET.to_owned()),
            ("APCA_API_BASE_URL", self.alpaca.base_url()),
            ("APCA_API_KEY_ID", KEY_ID.to_owned()),
            ("APCA_API_SECRET_KEY", SECRET.to_owned()),
            ("APCA_DATA_STREAM_URL", self.alpaca.data_stream_url()),
            ("RELAY_TICK_INTERVAL_MS", "50".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        config.extend(self.relay_vars.clone());
        let config = broker_relay::Config::from_source(&config).expect("relay config");
        let listener = self.relay_listener.take().expect("the relay starts once");
        let (stop_relay, stopped) = oneshot::channel();
        self.stop_relay = Some(stop_relay);
        self.relay_task = Some(tokio::spawn(broker_relay::serve(listener, config, async {
            let _ = stopped.await;
        })));
    }

    /// Starts the relay and waits until it is settled: listening on the
    /// trade stream, its backfill done, and its first sync published (the
    /// sync gives `user` the broker's balances). A fill played after this
    /// reaches the relay live, and no sync races it.
    async fn start_relay_settled(&mut self, user: &str) {
        self.start_relay();
        self.relay_listening(1).await;
        wait::until("the first sync", WAIT, || async {
            self.events(user).await.iter().any(|e| e["type"] == "account_update").then_some(())
        })
        .await;
    }

    /// Links the fake's account to `user` through the account-links route.
    async fn link(&self, user: &str) {
        let body = json!({"accountId": self.alpaca.account_id(), "userId": user}).to_string();
        let signature = sign(INGEST_SECRET.as_bytes(), now_unix(), body.as_bytes());
        let headers = [(SIGNATURE_HEADER, signature.as_str())];
        let path = Function::AccountLinks.path();
        let answer =
            test_support::http::post_json(self.functions, path, &headers, body.as_bytes()).await.expect("link");
        assert_eq!(answer.status, 200, "link: {:?}", answer.json());
    }

    /// The relay listening on the trade stream (its backfill done).
    async fn relay_listening(&self, sessions: usize) {
        wait::until("the relay on the trade stream", WAIT, || async {
            (self.alpaca.trade_listeners() == 1 && self.alpaca.trade_sessions() >= sessions).then_some(())
        })
        .await;
    }

    async fn relay_health(&self) -> (u16, Value) {
        let answer = test_support::http::get(self.relay, "/healthz", &[]).await.expect("healthz");
        (answer.status, answer.json())
    }

    async fn events(&self, user: &str) -> Vec<Value> {
        let user = UserId::new(user).unwrap();
        match self.log.read_after(&user, None, 0, 10_000).await.expect("read") {
            ReadAfter::Events { events, .. } => {
                events.iter().map(|e| serde_json::to_value(e.decode().expect("decode")).unwrap()).collect()
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop_relay.take() {
            let _ = stop.send(());
        }
        let task = self.relay_task.take().expect("the relay was started");
        let stopped = tokio::time::timeout(WAIT, task).await;
        assert!(matches!(stopped, Ok(Ok(Ok(())))), "the relay stops cleanly on the signal: {stopped:?}");
    }
}

async fn listen() -> (SocketAddr, TcpListener) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    (listener.local_addr().expect("addr"), listener)
}

/// A user's socket, subscribed to everything, and what it holds.
struct Client {
    socket: Socket,
    state: PortfolioState,
    /// Every trade id delivered, in order (repeats included).
    trades: Vec<String>,
}

impl Client {
    async fn connect(stack: &Stack, user: &str) -> Self {
        let claims = TokenClaims::new(user, chrono::Utc::now().timestamp() + 3_600);
        let token = sign_hs256(JWT_SECRET.as_bytes(), &claims).expect("token");
        let mut request = format!("ws://{}/ws/portfolio", stack.gateway).into_client_request().unwrap();
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request).await.expect("connect");
        let mut client = Client { socket, state: PortfolioState::default(), trades: Vec::new() };
        let subscribe = json!({"type": "subscribe", "channels": ["positions", "orders", "account", "trades"]});
        client.socket.send(Message::text(subscribe.to_string())).await.expect("subscribe");
        client.until("subscribed", |m, _| m["type"] == "subscribed").await;
        client
    }

    /// Applies messages until `done` says so; panics after [`WAIT`].
    async fn until(&mut self, what: &str, mut done: impl FnMut(&Value, &PortfolioState) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}; state {:?}", self.state));
            let text = match frame {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(close))) => panic!("closed ({close:?}) waiting for {what}"),
                Some(Ok(_)) => continue,
                other => panic!("socket failed waiting for {what}: {other:?}"),
            };
            let message: Value = serde_json::from_str(&text).expect("JSON");
            for trade in trades_in(&message) {
                self.trades.push(trade);
            }
            if let Ok(parsed) = serde_json::from_value::<ServerMessage>(message.clone()) {
                self.state.apply(parsed, SNAPSHOT_TRADES);
            }
            if done(&message, &self.state) {
                return;
            }
        }
    }

    fn quantity(&self, symbol: &str) -> Option<String> {
        self.state.positions.get(&Symbol::new(symbol).unwrap()).map(|p| p.quantity.to_string())
    }
}

/// The trade ids a message delivers.
fn trades_in(message: &Value) -> Vec<String> {
    match message["type"].as_str() {
        Some("trade_executed") => vec![message["data"]["tradeId"].as_str().unwrap_or_default().to_owned()],
        Some("batch") => message["data"]["trades"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t["tradeId"].as_str().unwrap_or_default().to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

/// A fill on Alpaca's stream reaches the user's socket — the trade, the
/// position and the account — within 500 ms, and a closing sell carries its
/// realized P&L.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_on_the_stream_reaches_the_socket_within_500_ms_with_pnl_on_the_closing_sell() {
    let mut stack = Stack::start(&[]).await;
    stack.link("alice").await;
    let mut alice = Client::connect(&stack, "alice").await;
    stack.start_relay_settled("alice").await;
    alice.until("the synced account", |_, s| s.account.is_some()).await;

    let mut elapsed = Vec::new();
    for (n, side, price) in [(1, "buy", "100.00"), (2, "sell", "110.00")] {
        let before = alice.trades.len();
        let sent = Instant::now();
        let update = stack.alpaca.fill(&FakeFill::market(n, "AAPL", side, "10", price));
        let cash = stack.alpaca.cash();
        let want = if side == "buy" { Some("10".to_owned()) } else { None };
        alice
            .until(&format!("fill {n}"), |_, s| {
                let traded = s.trades.iter().any(|t| t.trade_id == update["execution_id"].as_str().unwrap_or_default());
                let position = s.positions.get(&Symbol::new("AAPL").unwrap()).map(|p| p.quantity.to_string()) == want;
                let account = s.account.as_ref().is_some_and(|a| a.cash.to_string() == cash);
                traded && position && account
            })
            .await;
        elapsed.push(sent.elapsed());
        assert_eq!(alice.trades.len(), before + 1, "one trade per fill");
    }
    eprintln!("fill on the stream → trade, position and account on the socket: {elapsed:?}");
    assert!(elapsed.iter().all(|e| *e < Duration::from_millis(500)), "fill → socket took {elapsed:?}");
    let closing = alice.state.trades.front().expect("the sell");
    assert_eq!(closing.pnl.map(|p| p.to_string()).as_deref(), Some("100.00"), "(110 − 100) × 10");
    assert_eq!(alice.quantity("AAPL"), None, "closed");

    let (status, health) = stack.relay_health().await;
    assert_eq!((status, &health["status"], &health["tradeUpdates"]["connected"]), (200, &json!("ok"), &json!(true)));
    stack.stop().await;
}

/// The stream is down for 10 s while orders fill: after the reconnect the
/// relay's backfill delivers every missed fill exactly once, in order, and
/// the client's state equals the REST snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_missed_while_the_stream_is_down_are_delivered_exactly_once_after_the_reconnect() {
    let mut stack = Stack::start(&[]).await;
    stack.link("alice").await;
    let mut alice = Client::connect(&stack, "alice").await;
    stack.start_relay_settled("alice").await;
    let live = stack.alpaca.fill(&FakeFill::market(1, "AAPL", "buy", "10", "100.00"));
    alice.until("the live fill", |_, s| s.trades.iter().any(|t| t.trade_id == live["execution_id"])).await;

    stack.alpaca.set_streams_up(false);
    stack.alpaca.drop_streams();
    wait::until("the relay to notice", WAIT, || async {
        let (status, _) = stack.relay_health().await;
        (status == 503).then_some(())
    })
    .await;
    let down = Instant::now();
    let missed = [
        FakeFill::market(2, "MSFT", "buy", "5", "400.00"),
        FakeFill::market(3, "AAPL", "sell", "4", "105.00"),
        FakeFill::market(4, "NVDA", "buy", "2", "120.00"),
    ];
    for fill in &missed {
        stack.alpaca.fill(fill);
    }
    // The outage itself lasts 10 s (the fault, not a wait for a condition).
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(down.elapsed())).await;
    stack.alpaca.set_streams_up(true);
    stack.relay_listening(2).await;

    alice
        .until("the missed fills", |_, s| {
            s.positions.len() == 3
                && s.positions.get(&Symbol::new("AAPL").unwrap()).is_some_and(|p| p.quantity == 6.into())
        })
        .await;
    let executed: Vec<Value> =
        stack.events("alice").await.into_iter().filter(|e| e["type"] == "trade_executed").collect();
    let symbols: Vec<&str> = executed.iter().map(|e| e["data"]["symbol"].as_str().unwrap_or("?")).collect();
    assert_eq!(symbols, ["AAPL", "MSFT", "AAPL", "NVDA"], "each fill published once, in order");
    assert_eq!(executed[2]["data"]["pnl"], "20.00", "(105 − 100) × 4 on the partial sell");
    let mut unique = alice.trades.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), alice.trades.len(), "no trade delivered twice: {:?}", alice.trades);
    assert_eq!(alice.trades.len(), 4);

    // The client holds what the server's snapshot says.
    let snapshot = stack.log.snapshot(&UserId::new("alice").unwrap()).await.expect("snapshot");
    let server = PortfolioState::from(snapshot);
    assert_eq!((&alice.state.positions, &alice.state.orders), (&server.positions, &server.orders));
    let (status, health) = stack.relay_health().await;
    assert_eq!((status, &health["tradeUpdates"]["reconnects"]), (200, &json!(1)), "{health}");
    stack.stop().await;
}

/// Prints of a held symbol on the market-data stream revalue the user's
/// position at the gateway: the relay subscribes to what the account holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prints_of_held_symbols_revalue_the_position_on_the_socket() {
    let mut stack = Stack::start(&[]).await;
    stack.link("alice").await;
    let mut alice = Client::connect(&stack, "alice").await;
    stack.start_relay_settled("alice").await;
    stack.alpaca.fill(&FakeFill::market(1, "AAPL", "buy", "10", "100.00"));
    alice.until("the position", |_, s| s.positions.contains_key(&Symbol::new("AAPL").unwrap())).await;
    wait::until("the relay to follow AAPL", WAIT, || async {
        stack.alpaca.subscribed_symbols().contains("AAPL").then_some(())
    })
    .await;

    let at = |ms: u64| {
        let now = chrono::Utc::now() + chrono::Duration::milliseconds(ms as i64);
        now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    stack.alpaca.print("AAPL", "111.5", &at(1));
    stack.alpaca.print("AAPL", "112.25", &at(2));
    alice
        .until("the position at the newest print", |_, s| {
            s.positions.get(&Symbol::new("AAPL").unwrap()).is_some_and(|p| p.current_price.to_string() == "112.25")
        })
        .await;
    let position = &alice.state.positions[&Symbol::new("AAPL").unwrap()];
    assert_eq!(position.unrealized_pnl.to_string(), "122.50", "(112.25 − 100) × 10");
    let (_, health) = stack.relay_health().await;
    assert_eq!(health["marketData"]["connected"], true, "{health}");
    stack.stop().await;
}

/// After a reconnect the relay syncs the account: a position the broker no
/// longer has is closed on the socket, and one that drifted is corrected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_after_a_reconnect_closes_what_the_broker_lacks_and_corrects_drift() {
    let mut stack = Stack::start(&[]).await;
    stack.link("alice").await;
    stack.start_relay_settled("alice").await;
    // Our view drifted from the broker's: AAPL 10 here, 12 there; MSFT only here.
    let alice = UserId::new("alice").unwrap();
    for (symbol, qty) in [("AAPL", 10), ("MSFT", 5)] {
        let position = common::pnl::position(
            Symbol::new(symbol).unwrap(),
            common::event::PositionSide::Long,
            qty.into(),
            100.into(),
            101.into(),
        )
        .unwrap();
        let event = common::event::Envelope::new(alice.clone(), common::event::Timestamp::now(), position);
        stack.log.publish(&event_log::NewEvent::new(event.into(), format!("drifted:{symbol}"))).await.expect("seed");
    }
    stack.alpaca.set_position("AAPL", "12", "100", "101");
    let mut client = Client::connect(&stack, "alice").await;
    assert_eq!((client.quantity("AAPL").as_deref(), client.quantity("MSFT").as_deref()), (Some("10"), Some("5")));

    stack.alpaca.drop_streams();
    client
        .until("the sync's corrections", |_, s| {
            let qty = |symbol: &str| s.positions.get(&Symbol::new(symbol).unwrap()).map(|p| p.quantity);
            qty("AAPL") == Some(12.into()) && qty("MSFT").is_none()
        })
        .await;
    stack.stop().await;
}
