//! `pomerium-jit`: just-in-time access for the Pomerium identity-aware proxy.

mod audit;
mod config;
mod demo;
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
    Serve(Box<ServeArgs>),
    /// Try it locally in one command: simulated Pomerium and Pomerium Zero, nothing to configure.
    Demo(demo::DemoArgs),
    /// Verify or export the audit trail.
    Audit(audit::AuditArgs),
    /// Exit 0 if the service on this machine answers /healthz (for container health checks).
    Healthcheck {
        /// The service's port.
        #[arg(long, env = "PORT", default_value = "8000")]
        port: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Serve(args)) => serve_cmd(*args),
        None => serve_cmd(cli.serve),
        Some(Command::Demo(args)) => {
            init_tracing_with(LogFormat::Text, "warn,pomerium_jit=info");
            run(async move { demo::run(args, serve::shutdown_on_signals()).await })
        }
        Some(Command::Audit(args)) => {
            init_tracing_with(LogFormat::Text, "warn");
            run(audit::run(args))
        }
        Some(Command::Healthcheck { port }) => run(healthcheck(port)),
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn healthcheck(port: String) -> anyhow::Result<()> {
    let url = format!(
        "http://127.0.0.1:{}/healthz",
        port.trim().trim_start_matches(':')
    );
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()?;
    let status = client.get(&url).send().await?.status();
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    Ok(())
}

fn init_tracing(format: LogFormat) {
    init_tracing_with(format, "info");
}

/// Logs to stderr; `RUST_LOG` overrides `default`.
fn init_tracing_with(format: LogFormat, default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}
