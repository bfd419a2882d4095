//! `portfolio-dev`: the whole system in one process with a simulated broker.
//! Reads the environment like the gateway (REDIS_URL for Redis, else the
//! in-memory log), binds, prints where to look, and runs until Ctrl-C or
//! SIGTERM.

use anyhow::Context;
use common::config::Env;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,portfolio_dev=info,edge_gateway=info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let config = portfolio_dev::DevConfig::from_source(&Env).context("invalid configuration")?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    let addr = listener.local_addr()?;
    let backend = match config.gateway.backend {
        event_log::Backend::Redis(_) => "Redis",
        event_log::Backend::Memory(_) => "the in-memory event log",
    };
    // The one thing this binary prints for people: where to look.
    #[allow(clippy::print_stdout)]
    {
        println!("\n  Portfolio stream (dev mode, {backend}, simulated broker)\n");
        println!("  Open   http://{addr}/   and pick a demo user ({}).", portfolio_dev::DEMO_USERS.join(", "));
        println!("  Or     curl -X POST 'http://{addr}/dev/signin?user=alice' -c cookies.txt");
        println!(
            "  Then   the socket is ws://{addr}/ws/portfolio (cookie `session`), REST http://{addr}/api/portfolio"
        );
        println!("  Ctrl-C stops everything.\n");
    }
    portfolio_dev::run(listener, config, event_log::shutdown::signal()).await
}
