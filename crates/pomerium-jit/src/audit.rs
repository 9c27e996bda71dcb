//! `pomerium-jit audit`: read the audit trail from outside the web app, for
//! verification after an incident and for shipping to a SIEM.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use jit_domain::Email;
use jit_store::{AuditQuery, Store};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Database: sqlite://path or postgres://… [default: sqlite in DATA_DIR].
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    database_url: Option<String>,
    /// Directory of the default SQLite database.
    #[arg(long, env = "DATA_DIR", default_value = "data", global = true)]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Walk the hash chain; exit status 1 if it is broken.
    Verify,
    /// Print events as JSON lines, oldest first (for a SIEM or an archive).
    Export {
        /// Only events about this email.
        #[arg(long)]
        email: Option<String>,
    },
}

pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    let url = args
        .database_url
        .unwrap_or_else(|| crate::config::default_database_url(&args.data_dir));
    let store = Store::connect(&url).await.context("opening the database")?;
    match args.command {
        AuditCommand::Verify => {
            let report = store.verify_audit_chain().await?;
            match report.first_break {
                None => {
                    println!(
                        "audit trail intact: {} events, head {} ({})",
                        report.verified, report.head_seq, report.head_hash
                    );
                    Ok(())
                }
                Some(b) => bail!(
                    "audit trail broken at event {}: {:?}; {} events before it verified",
                    b.seq,
                    b.problem,
                    report.verified
                ),
            }
        }
        AuditCommand::Export { email } => {
            let subject = email
                .map(|e| Email::from_input(&e))
                .transpose()
                .context("--email")?;
            let mut events = Vec::new();
            let mut before = None;
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
            Ok(())
        }
    }
}
