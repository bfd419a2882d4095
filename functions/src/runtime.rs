//! What every function binary does: read the configuration, set up logging,
//! connect to the event log and the broker, then serve Lambda events when
//! `AWS_LAMBDA_RUNTIME_API` is set and local HTTP on `FUNCTIONS_ADDR`
//! otherwise.
//!
//! The binaries run this on a current-thread runtime: Lambda hands an
//! instance one event at a time, and even locally a request is mostly
//! waiting on Redis. One thread saves the cross-thread wake-ups (futex,
//! epoll) between the HTTP connection, fred's router and its socket reader:
//! about 15 % of the function's CPU per event (docs/benchmarks.md, "Ingest
//! CPU per event").

use std::sync::Arc;

use anyhow::Context as _;
use broker::{Broker, Deferred};
use broker_alpaca::AlpacaBroker;
use common::config::Env;
use event_log::Role;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::app::{app, AppState};
use crate::config::Config;
use crate::deps::Deps;
use crate::function::Function;
use crate::signature::Verifier;
use crate::{lambda, server};

/// Runs a binary serving `functions` until it is stopped.
pub async fn main(functions: &[Function]) -> anyhow::Result<()> {
    let config = Config::from_source(&Env, functions).context("invalid configuration")?;
    let filter = EnvFilter::try_new(&config.log_filter)
        .with_context(|| format!("{}: not a tracing filter", crate::config::vars::FUNCTIONS_LOG))?;
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(!config.lambda).with_target(false).init();

    let deps = connect(&config).await?;
    let verifier = |secret: &Option<_>| secret.clone().map(|s| Verifier::new(s, config.signature_tolerance));
    let (webhook, ingest) = (verifier(&config.webhook_secret), verifier(&config.ingest_secret));
    let names: Vec<_> = functions.iter().map(|f| f.name()).collect();

    if config.lambda {
        tracing::info!(functions = ?names, "Serving Lambda events.");
        let served = match functions {
            [Function::QueueCompletions] => lambda::run_sqs(Arc::new(deps)).await,
            [_] => lambda::run_http(app(AppState::new(deps, functions, webhook, ingest)?)).await,
            _ => anyhow::bail!("a Lambda function serves exactly one function; use a per-function binary"),
        };
        return served.map_err(anyhow::Error::from_boxed);
    }
    let router = app(AppState::new(deps, functions, webhook, ingest)?);
    let listener = TcpListener::bind(config.addr).await.with_context(|| format!("cannot listen on {}", config.addr))?;
    tracing::info!(functions = ?names, "Serving local HTTP.");
    server::run(listener, router, event_log::shutdown::signal()).await.context("server failed")
}

async fn connect(config: &Config) -> anyhow::Result<Deps> {
    let store = event_log::open(&config.backend, Role::Publisher)
        .await
        .with_context(|| format!("cannot open the event log ({:?})", config.backend))?;
    let mut deps = Deps::new(store);
    if config.alpaca.is_none() && !config.lambda {
        tracing::warn!(
            "No-broker mode (APCA_API_KEY_ID is not set): completions and ticks work; broker fills answer 503 \
             broker_not_configured."
        );
    }
    if let Some(alpaca) = config.alpaca.clone() {
        let secret = String::from_utf8(alpaca.secret.into_bytes())
            .map_err(|_| anyhow::anyhow!("APCA_API_SECRET_KEY: expected text (value not shown)"))?;
        // Built in the background: see `broker::Deferred`.
        let broker = Deferred::spawn(move || {
            let broker = AlpacaBroker::new(&alpaca.base_url, &alpaca.key_id, &secret)?;
            Ok(Arc::new(broker) as Arc<dyn Broker>)
        });
        deps = deps.with_broker(Arc::new(broker));
    }
    Ok(deps.with_limits(config.limits))
}
