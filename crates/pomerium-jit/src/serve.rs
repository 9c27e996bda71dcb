//! Wiring: the store, the Zero client, the reconciler, the service and the
//! web edge. Everything that can fail on a setting or the database is done by
//! [`App::open`], before the caller binds the port; [`App::serve`] then runs
//! until a shutdown signal.

use std::fmt;

use anyhow::Context;
use jit_domain::{Resource, ResourceName};
use jit_identity::Verifier;
use jit_reconcile::Reconciler;
use jit_service::{Desk, Service};
use jit_store::{Store, StoreError};
use jit_web::{WebConfig, router};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;

/// A start-up failure caused by a setting (exit status 2, as for the
/// settings checked before start-up), not by the environment.
#[derive(Debug)]
pub struct BadSetting(pub String);

impl fmt::Display for BadSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadSetting {}

/// The service, opened and ready to listen.
#[derive(Debug)]
pub struct App {
    verifier: Verifier,
    service: Service,
    reconcilers: Vec<Reconciler>,
    demo: bool,
}

impl App {
    /// Opens and migrates the store and loads it. A `DATABASE_URL` the
    /// store cannot parse is a [`BadSetting`].
    pub async fn open(settings: Settings, demo: bool) -> anyhow::Result<App> {
        let store = Store::connect(settings.database_url.expose_secret())
            .await
            .map_err(|e| match e {
                StoreError::UnsupportedScheme { .. } | StoreError::InvalidUrl { .. } => {
                    anyhow::Error::new(BadSetting(format!("DATABASE_URL: {e}")))
                }
                e => anyhow::Error::new(e).context("opening the database (DATABASE_URL)"),
            })?;

        refuse_orphans(&store, &settings.resources).await?;

        // One reconciler per resource: each policy has its own base,
        // intents and writer lease.
        let desks: Vec<Desk> = settings
            .resources
            .into_iter()
            .map(|resource| {
                let mut rc =
                    jit_reconcile::Config::new(&resource.policy.name, &settings.cluster_id);
                rc.namespace_id = resource
                    .policy
                    .namespace
                    .clone()
                    .unwrap_or_else(|| settings.namespace_id.clone());
                rc.interval = settings.sync_interval;
                rc.apply_changesets = settings.apply_changesets;
                rc.decode = settings.decode;
                let reconciler = Reconciler::new(
                    rc,
                    store.clone(),
                    settings.zero.clone(),
                    resource.rules.clone(),
                );
                Desk {
                    resource,
                    reconciler,
                }
            })
            .collect();
        let reconcilers = desks.iter().map(|d| d.reconciler.clone()).collect();

        if settings.admins.is_open() {
            tracing::warn!(
                "ADMIN_EMAILS and ADMIN_GROUPS are not set: anyone Pomerium lets reach /admin can approve requests, \
                 as in the original jit-example; set one of them to check admins in the app too"
            );
        }
        let service = Service::new(
            store,
            desks,
            jit_service::Settings {
                admins: settings.admins,
                apply_wait: settings.apply_wait,
                sync_max_age: settings.sync_max_age,
                ready_sync_grace: settings.ready_sync_grace,
                ..Default::default()
            },
        )
        .await
        .context("loading requests from the database")?;
        Ok(App {
            verifier: settings.verifier,
            service,
            reconcilers,
            demo,
        })
    }

    /// Serves on `listener` until `shutdown` is cancelled, then drains
    /// in-flight requests and stops the background tasks.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut tasks: Vec<_> = self
            .reconcilers
            .into_iter()
            .map(|r| tokio::spawn(r.run(shutdown.child_token())))
            .collect();
        tasks.push(tokio::spawn(
            self.service.clone().watch_store(shutdown.child_token()),
        ));
        let app = router(WebConfig {
            verifier: self.verifier,
            service: self.service,
            demo: self.demo,
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .await?;
        shutdown.cancel();
        let stopped = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        if tokio::time::timeout(std::time::Duration::from_secs(5), stopped)
            .await
            .is_err()
        {
            tracing::warn!(
                "background tasks did not stop within 5 s; exiting anyway (the next start converges)"
            );
        }
        tracing::info!("pomerium-jit stopped");
        Ok(())
    }
}

/// Refuses to start when the store holds pending or active requests on a
/// resource the configuration no longer lists: nothing would ever end those
/// grants or decide those requests.
async fn refuse_orphans(store: &Store, resources: &[Resource]) -> anyhow::Result<()> {
    let orphans: Vec<String> = store
        .open_resources()
        .await
        .context("reading which resources hold open requests")?
        .into_iter()
        .filter(|(name, _)| !resources.iter().any(|r| r.name.as_str() == name))
        .map(|(name, n)| {
            format!(
                "`{name}` ({n} open request{})",
                if n == 1 { "" } else { "s" }
            )
        })
        .collect();
    if orphans.is_empty() {
        return Ok(());
    }
    Err(BadSetting(format!(
        "the database holds pending or active requests on {} that the configuration no longer \
         lists, so nothing would decide them or end their grants. Add the resource back \
         (CONFIG_FILE; without a file the only resource is `{}`), or start once with the \
         previous configuration and revoke them first (/admin: revoke all on the resource)",
        orphans.join(", "),
        ResourceName::DEFAULT
    ))
    .into())
}

/// A token cancelled on SIGTERM (what Docker and Kubernetes send) or SIGINT.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("installing the SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
        cancel.cancel();
    });
    token
}
