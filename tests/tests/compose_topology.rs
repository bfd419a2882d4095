//! `infra/compose.yaml`, run as plain processes: no Docker engine runs in
//! CI, so this starts the same topology — a `redis-server` with its
//! append-only file on, the gateway binary, the functions' local HTTP
//! server — with exactly the compose file's environment, and checks that
//! it answers and that an event crosses it. Only what a container world
//! provides is translated, and each translation is checked against the
//! compose file itself:
//!
//! - `0.0.0.0:<port>` listen addresses become `127.0.0.1:<free port>`, for
//!   ports the service publishes (on loopback);
//! - `redis://redis:6379` becomes the test's own `redis-server`;
//! - `/run/secrets/<name>` becomes the compose secret's file, for secrets
//!   the service mounts;
//! - `http://functions:3000` (the relay's `FUNCTIONS_URL`) becomes the
//!   functions' loopback address;
//! - outside URLs (the Alpaca API and streams) become a loopback port where
//!   nothing listens: the test never calls the broker, and never leaves the
//!   machine. The relay then reports its trade stream down (`/healthz` 503),
//!   which is what it must say without a broker.
//!
//! The binaries come from `e2e_tests::workspace::binary` (cargo, once per
//! run; a no-op after `cargo test --workspace` has compiled them).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use broker_relay::config::vars as relay;
use e2e_tests::compose::{self, Compose};
use e2e_tests::workspace;
use edge_gateway::auth::{sign_hs256, TokenClaims};
use edge_gateway::config::vars as gateway;
use functions::config::vars as func;
use functions::signature::{now_unix, sign, SIGNATURE_HEADER};
use functions::Function;
use test_support::http;
use test_support::net::free_port;
use test_support::process::Service;
use test_support::redis::RedisServer;

/// Starting a debug build and connecting to Redis takes well under this.
const START_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn the_compose_stack_runs_as_plain_processes() {
    let compose = Compose::load();
    let redis = RedisServer::start();
    let logs = std::env::temp_dir().join(format!("ps-compose-{}", std::process::id()));
    std::fs::create_dir_all(&logs).expect("create the log directory");

    let functions_env = translate(&compose, "functions", &redis, None);
    let gateway_env = translate(&compose, "gateway", &redis, None);
    let functions_addr = listen_addr(&functions_env, func::FUNCTIONS_ADDR);
    let gateway_addr = listen_addr(&gateway_env, gateway::GATEWAY_ADDR);
    let relay_env = translate(&compose, "relay", &redis, Some(functions_addr));
    let relay_addr = listen_addr(&relay_env, relay::RELAY_ADDR);

    let mut functions = Service::spawn("functions", &workspace::binary("functions-local"), &functions_env, &logs);
    let mut gateway = Service::spawn("gateway", &workspace::binary("edge-gateway"), &gateway_env, &logs);
    let mut relay = Service::spawn("relay", &workspace::binary("broker-relay"), &relay_env, &logs);

    // Both answer their health routes, with the event log up.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let health = functions.wait_for("GET /healthz = 200", START_TIMEOUT, || {
        runtime.block_on(http::get(functions_addr, "/healthz", &[])).ok().filter(|r| r.status == 200)
    });
    assert_eq!(health.json()["status"], "ok", "functions /healthz: {:?}", health.json());
    let health = gateway.wait_for("GET /api/health = 200", START_TIMEOUT, || {
        runtime.block_on(http::get(gateway_addr, "/api/health", &[])).ok().filter(|r| r.status == 200)
    });
    let body = health.json();
    assert_eq!(body["status"], "ok", "gateway /api/health: {body}");
    assert_eq!(body["eventLog"], "up", "gateway /api/health: {body}");
    let flag_on = gateway_env.get(gateway::ENABLE_REALTIME_PORTFOLIO).is_some_and(|v| v == "true");
    assert_eq!(body["features"]["realtimePortfolio"], flag_on, "the flag as compose sets it: {body}");

    // An order completion posted to the functions, signed with the compose
    // stack's ingest secret, reaches the gateway's snapshot for that user,
    // read with a token signed with the compose stack's JWT secret: the two
    // share one Redis and agree on the secrets.
    let user = "compose-user";
    let order_id = format!("order-{}", std::process::id());
    let completion = serde_json::json!({
        "jobId": format!("job-{order_id}"),
        "userId": user,
        "orderId": order_id,
        "status": "accepted",
        "order": {"symbol": "AAPL", "side": "buy", "type": "market", "qty": "1"},
    })
    .to_string();
    let ingest_secret = secret_file(&functions_env, func::INGEST_SECRET_FILE);
    let signature = sign(&ingest_secret, now_unix(), completion.as_bytes());
    let posted = runtime
        .block_on(http::post_json(
            functions_addr,
            Function::QueueCompletions.path(),
            &[(SIGNATURE_HEADER, signature.as_str())],
            completion.as_bytes(),
        ))
        .expect("POST the completion");
    assert_eq!(posted.status, 200, "completion refused: {:?}\n{}", posted.json(), functions.output());
    assert_eq!(posted.json()["published"], 1, "{:?}", posted.json());

    let jwt_secret = secret_file(&gateway_env, gateway::JWT_SECRET_FILE);
    let token = sign_hs256(&jwt_secret, &TokenClaims::new(user, now_unix() + 300)).expect("sign a token");
    let bearer = format!("Bearer {token}");
    let snapshot = runtime
        .block_on(http::get(gateway_addr, "/api/portfolio", &[("Authorization", bearer.as_str())]))
        .expect("GET /api/portfolio");
    assert_eq!(snapshot.status, 200, "{:?}\n{}", snapshot.json(), gateway.output());
    let snapshot = snapshot.json();
    assert!(snapshot["orders"].to_string().contains(&order_id), "the order is not in the snapshot: {snapshot}");
    assert_eq!(snapshot["seq"], 1, "{snapshot}");

    // The relay runs with compose's environment and reports that no broker
    // answers (outside URLs point nowhere here).
    let health = relay.wait_for("GET /healthz answers", START_TIMEOUT, || {
        runtime.block_on(http::get(relay_addr, "/healthz", &[])).ok()
    });
    assert_eq!(health.status, 503, "relay /healthz without a broker: {:?}", health.json());
    assert_eq!(health.json()["tradeUpdates"]["connected"], false, "{:?}", health.json());

    drop((relay, gateway, functions));
    let _ = std::fs::remove_dir_all(&logs);
}

/// The environment of compose service `name`, translated for plain
/// processes on this machine (see the module docs).
/// `functions` is the functions' address, for a service that calls them.
fn translate(
    compose: &Compose,
    name: &str,
    redis: &RedisServer,
    functions: Option<SocketAddr>,
) -> BTreeMap<String, String> {
    let service = compose.service(name);
    let needs = if functions.is_some() { "functions" } else { "redis" };
    assert!(service.depends_on.iter().any(|d| d == needs), "{}: {name} must depend on {needs}", compose::PATH);
    let functions_in_compose = "http://functions:3000";
    let redis_in_compose = "redis://redis:6379";
    assert!(compose.service("redis").publishes(6379), "{}: redis publishes 6379 on loopback", compose::PATH);

    let mut env = BTreeMap::new();
    for (key, value) in &service.environment {
        let translated = if let Some(port) = value.strip_prefix("0.0.0.0:") {
            let port: u16 = port.parse().unwrap_or_else(|_| panic!("{name}: {key}={value}: not a port"));
            assert!(
                service.publishes(port),
                "{}: {name} listens on {port} ({key}) but does not publish it",
                compose::PATH
            );
            format!("127.0.0.1:{}", free_port())
        } else if let Some(rest) = value.strip_prefix(redis_in_compose) {
            format!("{}{rest}", redis.url())
        } else if let Some(secret) = value.strip_prefix(compose::SECRETS_DIR) {
            assert!(
                service.secrets.iter().any(|s| s == secret),
                "{}: {name} reads {secret} without mounting it",
                compose::PATH
            );
            let file =
                compose.secret_files.get(secret).unwrap_or_else(|| panic!("{}: no secret {secret}", compose::PATH));
            assert!(file.exists(), "{}: secret file {} is missing", compose::PATH, file.display());
            file.display().to_string()
        } else if let (Some(addr), true) = (functions, value == functions_in_compose) {
            format!("http://{addr}")
        } else if value.starts_with("https://") || value.starts_with("http://") {
            // Nothing listens there; the test never calls the broker.
            format!("http://127.0.0.1:{}", free_port())
        } else if value.starts_with("wss://") || value.starts_with("ws://") {
            format!("ws://127.0.0.1:{}", free_port())
        } else {
            value.clone()
        };
        env.insert(key.clone(), translated);
    }
    env
}

fn listen_addr(env: &BTreeMap<String, String>, name: &str) -> SocketAddr {
    let addr: SocketAddr = env.get(name).and_then(|a| a.parse().ok()).unwrap_or_else(|| panic!("{name} is not set"));
    assert_eq!(addr.ip(), Ipv4Addr::LOCALHOST, "{name}: tests listen on loopback only");
    addr
}

/// The secret whose path `name` holds, as `common::config::secret` reads it.
fn secret_file(env: &BTreeMap<String, String>, name: &str) -> Vec<u8> {
    let path = env.get(name).unwrap_or_else(|| panic!("{name} is not set"));
    let text = std::fs::read_to_string(Path::new(path)).unwrap_or_else(|e| panic!("{name}: {path}: {e}"));
    text.trim_end_matches(['\n', '\r']).as_bytes().to_vec()
}
