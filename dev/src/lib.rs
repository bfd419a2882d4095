//! Dev mode: the gateway, the ingest functions' routes and a simulated
//! broker in one process, plus the React dashboard. The simulator enters through the
//! functions' real routes (signed requests to the real router), and the
//! functions fetch positions and balances from the simulated broker through
//! the same `Broker` trait the Alpaca client implements — so dev mode runs
//! the production pipeline end to end.
//!
//! # Layout
//! - [`DevConfig`]: what dev mode reads from the environment.
//! - `broker`: the simulated broker (accounts, positions, prices).
//! - `simulator`: the market (random-walk ticks) and the order flow.
//! - `page`: the React dashboard (built by `build.rs`), the demo sign-in and
//!   the dashboard's order ticket.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use common::config::{self, Secret, Source};
use edge_gateway::auth::JwtKey;
use edge_gateway::config::vars as gateway_vars;
use edge_gateway::GatewayConfig;
use event_log::Role;
use functions::config::vars as functions_vars;
use functions::signature::Verifier;
use functions::{AppState, Deps, Function};

mod broker;
mod page;
mod simulator;

pub use broker::DEMO_USERS;

/// Dev mode's settings: the gateway's, plus the simulator's pace.
#[derive(Debug, Clone)]
pub struct DevConfig {
    /// Where to listen (`GATEWAY_ADDR`, default 127.0.0.1:8080).
    pub addr: SocketAddr,
    /// The gateway's configuration.
    pub gateway: GatewayConfig,
    /// Signs the demo sessions (the gateway validates them).
    pub jwt_secret: Vec<u8>,
    /// Time between price ticks (`DEV_TICK_MS`, default 200).
    pub tick: Duration,
    /// Mean time between new orders (`DEV_ORDER_MS`, default 4000).
    pub order_every: Duration,
    /// Time between one order's broker updates (`DEV_FILL_MS`, default 600).
    pub fill_every: Duration,
    /// Signs the simulator's broker webhooks (`WEBHOOK_SECRET`, random unless set).
    pub webhook_secret: Vec<u8>,
    /// Signs the simulator's completions and price ticks (`INGEST_SECRET`,
    /// random unless set: set it to send your own, e.g. from a test).
    pub ingest_secret: Vec<u8>,
}

/// Dev mode's own variables.
pub mod vars {
    /// Milliseconds between simulated price ticks; default 200.
    pub const DEV_TICK_MS: &str = "DEV_TICK_MS";
    /// Mean milliseconds between simulated orders; default 4000.
    pub const DEV_ORDER_MS: &str = "DEV_ORDER_MS";
    /// Milliseconds between one order's broker updates (new → accepted →
    /// fills); default 600.
    pub const DEV_FILL_MS: &str = "DEV_FILL_MS";
}

impl DevConfig {
    /// Reads the gateway's variables with dev defaults: a random JWT secret
    /// unless `JWT_SECRET` is set.
    pub fn from_source(source: &dyn Source) -> Result<Self, config::ConfigError> {
        let jwt_secret = match config::secret(source, gateway_vars::JWT_SECRET)? {
            Some(secret) => secret.into_bytes(),
            None => random_secret(),
        };
        let overlay = Overlay { source, jwt_secret: String::from_utf8_lossy(&jwt_secret).into_owned() };
        let gateway = GatewayConfig::from_source(&overlay)?;
        Ok(Self {
            addr: gateway.addr,
            gateway,
            jwt_secret,
            tick: config::duration_ms_or(source, vars::DEV_TICK_MS, Duration::from_millis(200))?,
            order_every: config::duration_ms_or(source, vars::DEV_ORDER_MS, Duration::from_millis(4_000))?,
            fill_every: config::duration_ms_or(source, vars::DEV_FILL_MS, Duration::from_millis(600))?,
            webhook_secret: or_random(config::secret(source, functions_vars::WEBHOOK_SECRET)?),
            ingest_secret: or_random(config::secret(source, functions_vars::INGEST_SECRET)?),
        })
    }
}

/// The environment with a generated `JWT_SECRET` when it has none.
struct Overlay<'a> {
    source: &'a dyn Source,
    jwt_secret: String,
}

impl Source for Overlay<'_> {
    fn get(&self, name: &str) -> Option<String> {
        let file = format!("{}{}", gateway_vars::JWT_SECRET, config::FILE_SUFFIX);
        match name {
            n if n == gateway_vars::JWT_SECRET => Some(self.jwt_secret.clone()),
            n if n == file => None,
            _ => self.source.get(name),
        }
    }
}

fn or_random(secret: Option<Secret>) -> Vec<u8> {
    secret.map_or_else(random_secret, Secret::into_bytes)
}

fn random_secret() -> Vec<u8> {
    (0..48).map(|_| char::from(b'a' + rand::random::<u8>() % 26) as u8).collect()
}

/// Runs dev mode on `listener` until `shutdown` resolves.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: DevConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    anyhow::ensure!(matches!(config.gateway.jwt.key(), JwtKey::Hs256(_)), "dev mode signs demo sessions with HS256");
    let store = event_log::open(&config.gateway.backend, Role::Follower).await.context("cannot open the event log")?;
    let log = store.log.clone();
    let deps = Deps::new(store);
    let market = Arc::new(broker::SimBroker::new(&DEMO_USERS));
    let deps = deps.with_broker(market.clone());
    for user in DEMO_USERS {
        let user_id = common::event::UserId::new(user).context("demo user id")?;
        deps.index.link_account(&broker::account_of(user), &user_id).await.context("linking demo accounts")?;
    }
    let webhook_secret = config.webhook_secret.clone();
    let ingest_secret = config.ingest_secret.clone();
    let tolerance = Duration::from_secs(300);
    let functions_state = AppState::new(
        deps,
        &Function::ALL,
        Some(Verifier::new(Secret::new(webhook_secret.clone()), tolerance)),
        Some(Verifier::new(Secret::new(ingest_secret.clone()), tolerance)),
    )?;
    let ingest = functions::app(functions_state);
    let simulator = Arc::new(simulator::Simulator {
        router: ingest.clone(),
        market,
        webhook_secret,
        ingest_secret,
        tick: config.tick,
        order_every: config.order_every,
        fill_every: config.fill_every,
        orders: AtomicU64::new(0),
    });
    let simulation = tokio::spawn(simulator.clone().run());
    let page = page::PageState { secret: Arc::new(config.jwt_secret.clone()), simulator };
    let extra = ingest.merge(page::routes(page));
    let result = edge_gateway::serve(listener, config.gateway, log, extra, shutdown).await;
    simulation.abort();
    result
}
