//! `pomerium-jit audit`: read the audit trail from outside the web app, for
//! verification after an incident and for shipping to a SIEM.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use jit_domain::Email;
use jit_store::{AuditQuery, Store};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Database: sqlite://path or postgres://… [default: sqlite in DATA_DIR].
    // The same type as `serve`'s: clap shares one argument id between them.
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        global = true,
        value_parser = crate::config::secret_arg
    )]
    database_url: Option<SecretString>,
    /// Directory of the default SQLite database.
    #[arg(long, env = "DATA_DIR", default_value = "data", global = true)]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Walk the hash chain and replay it against the requests table; exit
    /// status 1 if an event or a request was altered, added or removed.
    Verify {
        /// A head hash kept from earlier (an `audit head` log line, or what
        /// `audit export` printed): fail unless the chain still contains it,
        /// which shows whether the newest events were removed.
        #[arg(long, value_name = "HASH")]
        anchor: Option<String>,
    },
    /// Print events as JSON lines, oldest first (for a SIEM or an archive);
    /// the head hash goes to stderr, to keep as an anchor.
    Export {
        /// Only events about this email.
        #[arg(long)]
        email: Option<String>,
    },
}

/// Opens the database read-only (never creating or migrating it) and
/// refuses one without events: that is never the database `serve` uses.
pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    let url = args.database_url.map_or_else(
        || crate::config::default_database_url(&args.data_dir),
        |url| url.expose_secret().to_owned(),
    );
    let store = Store::open_read_only(&url).await?;
    let (head_seq, head_hash) = store.audit_head().await?;
    if head_seq == 0 {
        bail!(
            "the database holds no audit events: point DATABASE_URL (or DATA_DIR) at the database \
             `serve` uses"
        );
    }
    match args.command {
        AuditCommand::Verify { anchor } => verify(&store, anchor.as_deref()).await,
        AuditCommand::Export { email } => export(&store, email, head_seq, &head_hash).await,
    }
}

async fn verify(store: &Store, anchor: Option<&str>) -> anyhow::Result<()> {
    let report = store.verify_audit_chain().await?;
    if let Some(problem) = report.problem() {
        bail!(
            "audit trail not intact: {problem}; {} events verified before it. Restore from a \
             backup and investigate",
            report.verified
        );
    }
    let anchored = match anchor {
        None => String::new(),
        Some(hash) => match store.find_audit_hash(hash).await? {
            Some(seq) => format!("; anchor found at event {seq}"),
            None => bail!(
                "audit anchor {hash} is not in the chain: events after it were removed and the \
                 head rewritten, or it is from another database"
            ),
        },
    };
    println!(
        "audit trail intact: {} events, {} requests match, head {} ({}){anchored}",
        report.verified, report.requests_checked, report.head_seq, report.head_hash
    );
    Ok(())
}

async fn export(
    store: &Store,
    email: Option<String>,
    head_seq: u64,
    head_hash: &str,
) -> anyhow::Result<()> {
    let subject = email
        .map(|e| Email::from_input(&e))
        .transpose()
        .context("--email")?;
    let mut events = Vec::new();
    // Up to the head read above, so the anchor printed matches the export.
    let mut before = Some(head_seq + 1);
    loop {
        let page = store
            .audit(AuditQuery {
                subject: subject.clone(),
                before,
                limit: 1000,
            })
            .await?;
        let Some(last) = page.last() else { break };
        before = Some(last.seq);
        events.extend(page);
    }
    let mut out = std::io::stdout().lock();
    for r in events.iter().rev() {
        let e = &r.event;
        let line = json!({
            "seq": r.seq,
            "at": e.at.format(&Rfc3339)?,
            "actor": e.actor.to_string(),
            "action": e.action.as_str(),
            "subject": e.subject.as_str(),
            "request_id": e.request_id.to_string(),
            "details": e.details,
            "hash": r.hash,
        });
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    eprintln!(
        "audit head: event {head_seq}, hash {head_hash}; keep it to check later with \
         `pomerium-jit audit verify --anchor {head_hash}`"
    );
    Ok(())
}
