//! `pomerium-jit`: just-in-time access for the Pomerium identity-aware proxy.

mod config;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use config::{LogFormat, ServeArgs};

#[derive(Debug, Parser)]
#[command(
    name = "pomerium-jit",
    version,
    about = "Just-in-time access for Pomerium: users request access, admins approve, \
             and a Pomerium Zero policy grants it until it expires.",
    args_conflicts_with_subcommands = true,
    after_help = "With no subcommand, runs `serve`. To try it without a Pomerium account: `pomerium-jit demo`."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service behind Pomerium (the default).
    Serve(ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Serve(args)) => serve_cmd(args),
        None => serve_cmd(cli.serve),
    }
}

fn serve_cmd(args: ServeArgs) -> ExitCode {
    let settings = match args.settings() {
        Ok(s) => s,
        Err(problems) => {
            for p in &problems {
                eprintln!("error: {p}");
            }
            eprintln!(
                "\nSet these in the environment or as flags (`pomerium-jit --help` lists them all).\n\
                 To try pomerium-jit without a Pomerium account, run `pomerium-jit demo`."
            );
            return ExitCode::from(2);
        }
    };
    init_tracing(args.log_format());
    run(async move {
        let shutdown = serve::shutdown_on_signals();
        let listener = tokio::net::TcpListener::bind(settings.listen).await?;
        tracing::info!(address = %listener.local_addr()?, "pomerium-jit listening");
        serve::serve(settings, listener, false, shutdown).await
    })
}

fn run(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "pomerium-jit stopped");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}
