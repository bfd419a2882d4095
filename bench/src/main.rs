//! `bench`: parses the command line, runs one scenario, prints its table and
//! optionally writes its JSON. Everything else is in the `bench` library.

use std::path::PathBuf;

use anyhow::Context as _;
use bench::scenario::Scenario;
use clap::Parser;

/// The project's benchmark tool (docs/benchmarks.md).
#[derive(Debug, Parser)]
#[command(name = "bench", version, about)]
struct Cli {
    /// Also write the report as JSON to this file (its directory is created).
    #[arg(long, global = true, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Worker threads of the bench's own runtime (default: one per CPU).
    /// On a small machine the load generator competes with Redis for cores.
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    #[command(subcommand)]
    scenario: Scenario,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = cli.threads {
        runtime.worker_threads(usize::from(threads));
    }
    let runtime = runtime.enable_all().build().context("starting the runtime")?;
    // A signal drops the running scenario, so every child process it
    // started (gateways, Redis servers, peers) is killed on the way out
    // instead of outliving the bench.
    let report = runtime.block_on(async {
        tokio::select! {
            report = cli.scenario.run() => report.map_err(anyhow::Error::from),
            () = event_log::shutdown::signal() => Err(anyhow::anyhow!("interrupted: the scenario's processes were stopped")),
        }
    })?;
    print!("{}", report.to_table());
    if let Some(path) = &cli.json {
        report.write_json(path).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("Wrote {}.", path.display());
    }
    Ok(())
}
