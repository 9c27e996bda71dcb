//! `pomerium-jit`: just-in-time access for the Pomerium identity-aware proxy.

mod audit;
mod config;
#[cfg(feature = "demo")]
mod demo;
mod doctor;
mod explain;
mod log;
mod memory;
mod ops;
mod resources;
mod serve;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use config::{LogFormat, ServeArgs};
use jit_web::scope::RequestLog;
use tokio_util::sync::CancellationToken;

/// How to try the product without an account, where this binary can.
#[cfg(feature = "demo")]
const DEMO_HINT: &str = "To try pomerium-jit without a Pomerium account: `pomerium-jit demo`.";
#[cfg(not(feature = "demo"))]
const DEMO_HINT: &str = "This binary was built without the demo; to try pomerium-jit without a \
                         Pomerium account, build it with the default features and run `pomerium-jit demo`.";

#[derive(Debug, Parser)]
#[command(
    name = "pomerium-jit",
    version,
    about = "Just-in-time access for Pomerium: users request access, admins approve, \
             and a Pomerium Zero policy grants it until it expires.",
    args_conflicts_with_subcommands = true
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
    #[cfg(feature = "demo")]
    Demo(demo::DemoArgs),
    /// Not in this build: says how to get it.
    #[cfg(not(feature = "demo"))]
    #[command(hide = true, disable_help_flag = true)]
    Demo {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        ignored: Vec<String>,
    },
    /// Check a resources file (CONFIG_FILE) without starting anything.
    Config(ConfigArgs),
    /// Verify or export the audit trail.
    Audit(audit::AuditArgs),
    /// Check a deployment end to end (settings, JWKS, Pomerium Zero, database, audit trail)
    /// without changing anything: one line per check; exit 0 if all passed, 1 if one failed,
    /// 2 if the settings are unusable.
    Doctor(Box<doctor::DoctorArgs>),
    /// List the grants (and pending requests) in the store.
    Grants(ops::GrantsArgs),
    /// End a person's access or pending request now, audited as `cli:<you>`, and apply it.
    Revoke(Box<ops::RevokeArgs>),
    /// Break-glass: grant access at once without approvals, loudly audited, and apply it.
    Grant(Box<ops::GrantArgs>),
    /// Export the history (every decision) as JSON lines or CSV.
    History(ops::HistoryArgs),
    /// Say which rule of the deployed policy lets a person in or not, and whether it matches the store.
    Explain(Box<explain::ExplainArgs>),
    /// Exit 0 if the service on this machine answers /healthz (for container health checks).
    Healthcheck {
        /// The service's port.
        #[arg(long, env = "PORT", default_value = "8000")]
        port: String,
    },
}

#[derive(Debug, Args)]
struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print a summary of FILE's resources (exit 0), or each problem with its line (exit 2).
    Check {
        /// The resources file (TOML).
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    memory::keep_large_blocks_apart();
    let command =
        Cli::command().after_help(format!("With no subcommand, runs `serve`. {DEMO_HINT}"));
    let matches = command.get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli.command {
        Some(Command::Serve(args)) => {
            let serve = matches.subcommand_matches("serve").unwrap_or(&matches);
            serve_cmd(*args, serve)
        }
        None => serve_cmd(cli.serve, &matches),
        #[cfg(feature = "demo")]
        Some(Command::Demo(args)) => {
            init_tracing_with(LogFormat::Text, "warn,pomerium_jit=info", std::io::stderr);
            run(async move { demo::run(args, serve::shutdown_on_signals()).await })
        }
        #[cfg(not(feature = "demo"))]
        Some(Command::Demo { .. }) => {
            eprintln!("error: {DEMO_HINT}");
            ExitCode::from(2)
        }
        Some(Command::Audit(args)) => {
            init_tracing_with(LogFormat::Text, "warn", std::io::stderr);
            run(audit::run(args))
        }
        Some(Command::Grants(args)) => operator_cmd(ops::grants(args)),
        Some(Command::Revoke(args)) => operator_cmd(ops::revoke(*args)),
        Some(Command::Grant(args)) => operator_cmd(ops::grant(*args)),
        Some(Command::History(args)) => operator_cmd(ops::history(args)),
        Some(Command::Explain(args)) => operator_cmd(explain::run(*args)),
        Some(Command::Doctor(args)) => {
            init_tracing_with(LogFormat::Text, "error", std::io::stderr);
            doctor::run(*args)
        }
        Some(Command::Healthcheck { port }) => run(healthcheck(port)),
        Some(Command::Config(ConfigArgs {
            command: ConfigCommand::Check { file },
        })) => config_check(&file),
    }
}

/// `config check FILE`: the same checks as the start-up, nothing started.
fn config_check(file: &std::path::Path) -> ExitCode {
    match resources::load(file) {
        Ok(config) => {
            print!(
                "{}: ok\n{}",
                file.display(),
                resources::summary(&config.resources)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            for line in e.lines() {
                eprintln!("error: {line}");
            }
            ExitCode::from(2)
        }
    }
}

/// An operator command: warnings (a break-glass grant) logged to stderr.
fn operator_cmd(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    init_tracing_with(LogFormat::Text, "warn", std::io::stderr);
    run(fut)
}

/// Checks the settings, opens and migrates the store, and only then binds
/// the port: a bad setting exits 2 with nothing listening, and "listening"
/// is the last start-up line.
fn serve_cmd(args: ServeArgs, matches: &ArgMatches) -> ExitCode {
    let settings = match args.settings() {
        Ok(s) => s,
        Err(problems) => {
            for p in &problems {
                eprintln!("error: {p}");
            }
            eprintln!(
                "\nSet these in the environment or as flags (`pomerium-jit --help` lists them all).\n\
                 {DEMO_HINT}"
            );
            return ExitCode::from(2);
        }
    };
    // Before the log writer's thread: see `runtime`.
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    // Kept until exit: dropping it writes out what is left.
    let (_log, dropped) = match init_tracing(args.log_format()) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("error: cannot start the log writer thread: {e}");
            return ExitCode::FAILURE;
        }
    };
    for setting in config::ignored_with_config_file(matches) {
        tracing::warn!(
            setting,
            "{setting} is set but CONFIG_FILE lists the resources, so it is not used; \
             set it per resource in the file and unset it here"
        );
    }
    for setting in config::secrets_given_as_flags(matches) {
        tracing::warn!(
            setting,
            "{setting} was given as a command-line flag, which any user of this machine can read \
             (ps, /proc); set the {setting} environment variable or {setting}_FILE instead"
        );
    }
    finish(runtime.block_on(async move {
        let shutdown = serve::shutdown_on_signals();
        tokio::spawn(report_dropped_lines(dropped, shutdown.child_token()));
        let listen = settings.listen;
        let mut app = serve::App::open(settings, false).await?;
        if let Some(address) = app.bind_metrics().await? {
            tracing::info!(%address, "metrics listening");
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen} (BIND_ADDRESS, PORT)"))?;
        tracing::info!(address = %listener.local_addr()?, "pomerium-jit listening");
        app.serve(listener, shutdown).await
    }))
}

fn run(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    match runtime() {
        Ok(runtime) => finish(runtime.block_on(fut)),
        Err(code) => code,
    }
}

/// The async runtime ([`memory::runtime`]): build it before any other
/// thread starts.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    let workers = worker_threads().map_err(|problem| {
        eprintln!("error: {problem}");
        ExitCode::from(2)
    })?;
    memory::runtime(workers).map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        ExitCode::FAILURE
    })
}

/// Tokio's rule: `TOKIO_WORKER_THREADS` when set, else one per core.
fn worker_threads() -> Result<usize, &'static str> {
    use std::num::NonZeroUsize;
    match std::env::var("TOKIO_WORKER_THREADS") {
        Err(std::env::VarError::NotPresent) => {
            Ok(std::thread::available_parallelism().map_or(1, NonZeroUsize::get))
        }
        Ok(v) => v
            .trim()
            .parse::<NonZeroUsize>()
            .map(NonZeroUsize::get)
            .map_err(|_| {
                "TOKIO_WORKER_THREADS must be a whole number of worker threads, 1 or more; \
             unset it for one per core"
            }),
        Err(std::env::VarError::NotUnicode(_)) => Err("TOKIO_WORKER_THREADS is not valid UTF-8"),
    }
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.is::<serve::BadSetting>() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn healthcheck(port: String) -> anyhow::Result<()> {
    let url = format!(
        "http://127.0.0.1:{}/healthz",
        port.trim().trim_start_matches(':')
    );
    let client = jit_http::client()
        .timeout(std::time::Duration::from_secs(3))
        .build()?;
    let status = client.get(&url).send().await?.status();
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    Ok(())
}

/// Bytes of log lines held in memory while stderr's reader catches up
/// (about 8,000 access-log lines); more are dropped and counted.
const LOG_BUFFER_BYTES: usize = 1 << 20;

/// The serving log (the access log among it): see [`log`]. Keep the
/// flusher until exit: dropping it writes out what is left.
fn init_tracing(format: LogFormat) -> std::io::Result<(log::Flusher, log::LogWriter)> {
    let (writer, flusher) = log::spawn(LOG_BUFFER_BYTES, std::io::stderr())?;
    if init_tracing_with(format, "info", writer.clone()) == RequestLog::Scope {
        // The format reads requests from their scopes: the access log's
        // lines can go straight into the buffer, as the format writes them.
        jit_web::scope::set_access_log(Box::new(log::PlainAccess(writer.clone())));
    }
    Ok((flusher, writer))
}

/// Logs to `writer` (stderr for the one-shot commands); `RUST_LOG`
/// overrides `default`. Target-and-level directives (`info`,
/// `jit_web=debug,warn`) go through `Targets`; only directives on spans or
/// fields need `EnvFilter`, whose bookkeeping on every span enter and exit
/// held `GET /` at 18,700 req/s where `Targets` gives 21,300 (load test).
/// Says how requests' fields reach their lines.
fn init_tracing_with<W>(format: LogFormat, default: &str, writer: W) -> RequestLog
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{Layer, Registry};
    let spec = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| default.to_owned());
    let filter = log_filter(&spec, default);
    // Colour only for people at a terminal, not in files and collectors.
    let terminal = std::io::stderr().is_terminal();
    let how = request_log(format, &filter, terminal);
    jit_web::scope::set_request_log(how);
    let filter: Box<dyn Layer<Registry> + Send + Sync> = match filter {
        LogFilter::Targets(targets) => Box::new(targets),
        LogFilter::Env(env) => Box::new(env),
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(terminal)
        .with_writer(writer);
    let layer = match format {
        LogFormat::Json => layer.json().flatten_event(true).boxed(),
        LogFormat::Text if terminal => layer.boxed(),
        LogFormat::Text => layer
            .event_format(log::Plain)
            .fmt_fields(log::PlainFields)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .init();
    how
}

/// A request's fields reach its lines through the request scope where the
/// format is [`log::Plain`] (text, not at a terminal) and the filter does
/// not look for spans; through a span otherwise (see [`jit_web::scope`]).
fn request_log(format: LogFormat, filter: &LogFilter, terminal: bool) -> RequestLog {
    match (format, filter) {
        (LogFormat::Text, LogFilter::Targets(_)) if !terminal => RequestLog::Scope,
        _ => RequestLog::Span,
    }
}

/// How `RUST_LOG` is applied: see [`init_tracing_with`].
#[derive(Debug)]
#[allow(clippy::large_enum_variant, reason = "made once, at start-up")]
enum LogFilter {
    Targets(tracing_subscriber::filter::Targets),
    Env(tracing_subscriber::EnvFilter),
}

/// `Targets` for level and target directives; `EnvFilter` only for those
/// it cannot express (spans, fields), and `default` when neither parses.
/// `Targets` would take `[request]=debug` as a target named `[request]`,
/// so span and field syntax is looked for first.
fn log_filter(spec: &str, default: &str) -> LogFilter {
    use tracing_subscriber::EnvFilter;
    let env =
        || LogFilter::Env(EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new(default)));
    if spec.contains(['[', '{']) {
        return env();
    }
    match spec.parse() {
        Ok(targets) => LogFilter::Targets(targets),
        Err(_) => env(),
    }
}

/// Says, in the log and as a metric, when log lines were dropped because
/// the writer fell behind (a stalled log pipe, a flood of requests).
async fn report_dropped_lines(dropped: log::LogWriter, shutdown: CancellationToken) {
    let mut reported = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
        }
        let now = dropped.dropped_lines();
        if now > reported {
            metrics::counter!("pomerium_jit_log_lines_dropped_total").absolute(now);
            tracing::warn!(
                dropped = now - reported,
                "log lines dropped: the log writer fell behind (is stderr's reader keeping up?)"
            );
            reported = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;
    use tracing_subscriber::filter::LevelFilter;

    use super::*;

    #[test]
    fn only_the_plain_text_log_without_span_directives_reads_the_request_scope() {
        let targets = || log_filter("info", "info");
        let spans = || log_filter("info,[request]=debug", "info");
        assert_eq!(
            request_log(LogFormat::Text, &targets(), false),
            RequestLog::Scope
        );
        for (format, filter, terminal) in [
            (LogFormat::Text, targets(), true),
            (LogFormat::Text, spans(), false),
            (LogFormat::Json, targets(), false),
            (LogFormat::Json, spans(), false),
        ] {
            assert_eq!(request_log(format, &filter, terminal), RequestLog::Span);
        }
    }

    #[test]
    fn plain_directives_use_targets_and_span_directives_envfilter() {
        for spec in ["info", "warn", "jit_web=debug,warn", "off"] {
            let filter = log_filter(spec, "info");
            assert!(
                matches!(filter, LogFilter::Targets(_)),
                "{spec}: {filter:?}"
            );
        }
        let LogFilter::Targets(targets) = log_filter("jit_web=debug,warn", "info") else {
            unreachable!()
        };
        assert!(targets.would_enable("jit_web::layers", &Level::DEBUG));
        assert!(!targets.would_enable("jit_store", &Level::INFO));
        for spec in ["[request]=debug", "info,[request{path}]=trace"] {
            let filter = log_filter(spec, "info");
            assert!(matches!(filter, LogFilter::Env(_)), "{spec}: {filter:?}");
        }
        // Neither parses: the default applies, not silence.
        let LogFilter::Env(env) = log_filter("[=", "warn") else {
            panic!("an unparsable spec falls back to EnvFilter with the default")
        };
        assert_eq!(env.max_level_hint(), Some(LevelFilter::WARN));
    }
}
