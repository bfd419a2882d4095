//! The broker relay: the long-running process between Alpaca and the
//! ingest functions. Alpaca pushes trade updates and market data over
//! WebSocket streams and calls no webhooks, so without this nothing from
//! the broker would arrive.
//!
//! - Trade updates go, in order, to the broker-webhook function as signed
//!   POSTs (the relay holds no Redis credentials and publishes nothing
//!   itself; the functions stay the one writer). After every reconnect the
//!   fills it missed are backfilled from the REST API.
//! - Prints of the held symbols go to the price-ticks function, conflated
//!   per symbol.
//! - A position sync runs after every reconnect and periodically.
//! - `/healthz` and `/metrics` report each stream's state.
//!
//! # Layout
//! - [`config`]: the variables, defaults and bounds.
//! - `trades`: the trade-updates stream and its backfill.
//! - `market`: the market-data stream and the conflation of prints.
//! - `book`: position syncs and the held symbols.
//! - [`forward`]: signed POSTs to the functions, with retries.
//! - [`health`]: stream state, `/healthz`, `/metrics`.
//! - `reconnect`: backoff between connection attempts.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use broker::AccountId;
use broker_alpaca::AlpacaBroker;
use common::backoff::backoff_delay;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

pub mod config;
pub mod forward;
pub mod health;

mod book;
mod market;
mod reconnect;
mod trades;

pub use config::Config;

use crate::book::Book;
use crate::forward::Functions;
use crate::health::Health;
use crate::market::Market;
use crate::trades::Trades;

/// Runs the relay, its health server on `listener`, until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let secret = String::from_utf8(config.alpaca.secret.expose().to_vec())
        .context("APCA_API_SECRET_KEY: expected text (value not shown)")?;
    let alpaca = Arc::new(
        AlpacaBroker::new(&config.alpaca.base_url, &config.alpaca.key_id, &secret)
            .context("cannot build the Alpaca client")?,
    );
    let health = Health::new(config.data_stream_url.is_some());
    let (stop_tx, stop) = watch::channel(false);
    let server = tokio::spawn({
        let router = health::router(health.clone());
        let mut stop = stop.clone();
        async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    crate::reconnect::stopped(&mut stop).await;
                })
                .await
        }
    });
    let mut shutdown = std::pin::pin!(shutdown);

    let account = tokio::select! {
        account = account_id(&config, &alpaca) => account,
        () = &mut shutdown => {
            // Stopped before the broker ever answered: only the health
            // server runs.
            let _ = stop_tx.send(true);
            return server.await.context("health server task")?.context("health server");
        }
    };
    let account = AccountId::new(account.as_str()).with_context(|| format!("unusable account id {account:?}"))?;
    tracing::info!(%account, functions = %config.functions_url, "Broker relay started.");

    let functions = Functions::new(&config.functions_url, config.webhook_secret.clone(), config.ingest_secret.clone());
    let (sync_now, refresh_symbols) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (symbols_tx, symbols_rx) = watch::channel(BTreeSet::new());
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(
        Trades {
            alpaca: alpaca.clone(),
            url: config.stream_url.clone(),
            key_id: config.alpaca.key_id.clone(),
            secret: secret.clone(),
            account_id: account.as_str().to_owned(),
            functions: functions.clone(),
            health: health.clone(),
            sync_now: sync_now.clone(),
            refresh_symbols: refresh_symbols.clone(),
            lookback: config.backfill_lookback,
        }
        .run(stop.clone()),
    );
    tasks.spawn(
        Book {
            alpaca,
            account_id: account,
            functions: functions.clone(),
            interval: config.sync_interval,
            extra: config.symbols.clone(),
            sync_now,
            refresh_symbols,
            symbols: symbols_tx,
        }
        .run(stop.clone()),
    );
    if let Some(url) = config.data_stream_url.clone() {
        tasks.spawn(
            Market {
                url,
                key_id: config.alpaca.key_id.clone(),
                secret,
                functions,
                health,
                symbols: symbols_rx,
                interval: config.tick_interval,
            }
            .run(stop.clone()),
        );
    }

    shutdown.await;
    tracing::info!("Broker relay stopping.");
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    server.await.context("health server task")?.context("health server")?;
    Ok(())
}

/// The configured account id, or the one the keys trade, asked until the
/// API answers (with backoff).
async fn account_id(config: &Config, alpaca: &AlpacaBroker) -> String {
    if let Some(id) = &config.account_id {
        return id.clone();
    }
    let mut failures = 0;
    loop {
        match alpaca.account_id().await {
            Ok(id) => return id,
            Err(error) => {
                failures += 1;
                let delay = backoff_delay(
                    std::time::Duration::from_secs(1),
                    std::time::Duration::from_secs(30),
                    failures,
                    std::time::Duration::ZERO,
                );
                tracing::warn!(%error, ?delay, "Cannot read the account id from the broker; retrying.");
                tokio::time::sleep(delay).await;
            }
        }
    }
}
