//! `mcp-dust-server`: parse the command line, set up logging, hand over to the library.

use std::{process::ExitCode, time::Duration};

use clap::Parser;
use mcp_dust_server::{
    cli::{Cli, Command},
    config::{self, Config, LogFormat},
    demo, doctor, probe, secret, serve, sim, stdio, telemetry,
};

/// mimalloc, not glibc's malloc: the request path allocates small short-lived objects from
/// several threads, where glibc spent about a quarter of the cycles (docs/PERFORMANCE.md,
/// finding 10).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    mcp_dust_server::dust::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mcp-dust-server: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli));
    // A blocking read of standard input (stdio, after SIGTERM) cannot be interrupted; everything
    // else has finished by now, so do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    // The spans still queued (the last requests of a graceful stop among them) are exported
    // now, outside the runtime: the exporter blocks on its own thread.
    telemetry::shutdown();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mcp-dust-server: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve => {
            let config = Config::load(cli.config.as_deref())?;
            telemetry::init(&config.log_level, config.log_format)?;
            serve::run(config).await
        }
        Command::Demo => {
            let config = Config::load(cli.config.as_deref())?;
            telemetry::init(&config.log_level, config.log_format)?;
            demo::run(config).await
        }
        Command::Stdio => {
            let config = Config::load(cli.config.as_deref())?;
            telemetry::init(&config.log_level, config.log_format)?;
            stdio::run(config).await
        }
        Command::Sim(sim_config) => {
            telemetry::init("info", LogFormat::Pretty)?;
            sim::run_cli(*sim_config).await
        }
        Command::GenSecret => {
            println!("{}", secret::generate());
            Ok(())
        }
        Command::Doctor { url, advisory_db } => {
            let config = Config::load(cli.config.as_deref());
            let options = doctor::Options { url, advisory_db };
            let report = doctor::run(config, &options).await;
            print!("{}", report.render());
            if report.failed() {
                anyhow::bail!("some checks failed; each names its fix above");
            }
            Ok(())
        }
        Command::Probe { url, port } => {
            let url = url.unwrap_or_else(|| format!("http://127.0.0.1:{port}/ready"));
            probe::run(&url).await
        }
        Command::ConfigTable { env } => {
            if env {
                print!("{}", config::env_example());
            } else {
                print!("{}", config::markdown_table());
            }
            Ok(())
        }
    }
}
