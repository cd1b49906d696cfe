//! `pitwall`: the Pitwall console binary.

mod cli;
mod console;
mod http;
mod site;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PITWALL_LOG")
                .unwrap_or_else(|_| "info,sqlx=error,tower_http=info".into()),
        )
        .with_target(false)
        .init();
    let cli = cli::Cli::parse();
    match cli.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
