//! The broker relay binary: configuration from the environment
//! (docs/functions.md, "Broker relay"), logs to stdout, health and metrics
//! on `RELAY_ADDR`, stopped by SIGTERM or Ctrl-C.

use anyhow::Context as _;
use broker_relay::config::vars;
use broker_relay::Config;
use common::config::Env;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_source(&Env).context("invalid configuration")?;
    let filter =
        EnvFilter::try_new(&config.log_filter).with_context(|| format!("{}: not a tracing filter", vars::RELAY_LOG))?;
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).init();
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    broker_relay::serve(listener, config, event_log::shutdown::signal()).await
}
