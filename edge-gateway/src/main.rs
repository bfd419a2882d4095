//! The gateway binary: reads the configuration from the environment, sets up
//! logging, binds, and runs until SIGTERM or Ctrl-C.

use anyhow::Context;
use common::config::Env;
use edge_gateway::config::vars;
use edge_gateway::GatewayConfig;
use event_log::Role;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let json_logs = std::env::var(vars::LOG_FORMAT).is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if json_logs {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let config = GatewayConfig::from_source(&Env).context("invalid configuration")?;
    let store = event_log::open(&config.backend, Role::Follower).await.context("cannot open the event log")?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    edge_gateway::run(listener, config, store.log, event_log::shutdown::signal()).await
}
