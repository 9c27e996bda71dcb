//! Wiring: the store, the Zero client, the reconciler, the service and the
//! web edge, run until a shutdown signal.

use anyhow::Context;
use jit_identity::Verifier;
use jit_reconcile::Reconciler;
use jit_service::Service;
use jit_store::Store;
use jit_web::{WebConfig, router};
use jit_zero::ZeroClient;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;

/// Runs the service on `listener` until `shutdown` is cancelled, then drains
/// in-flight requests and stops the background tasks.
pub async fn serve(
    settings: Settings,
    listener: TcpListener,
    demo: bool,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = Store::connect(&settings.database_url)
        .await
        .context("opening the database (DATABASE_URL)")?;
    let zero = ZeroClient::new(settings.zero).context("configuring the Pomerium Zero client")?;
    let verifier = Verifier::new(settings.verifier)
        .context("configuring the assertion verifier (JWKS_ENDPOINT)")?;

    let mut rc = jit_reconcile::Config::new(settings.policy_name, settings.cluster_id);
    rc.namespace_id = settings.namespace_id;
    rc.interval = settings.sync_interval;
    rc.apply_changesets = settings.apply_changesets;
    rc.decode = settings.decode;
    let reconciler = Reconciler::new(rc, store.clone(), zero, settings.rules.clone());

    if settings.admins.is_open() {
        tracing::warn!(
            "ADMIN_EMAILS and ADMIN_GROUPS are not set: anyone Pomerium lets reach /admin can approve requests, \
             as in the original jit-example; set one of them to check admins in the app too"
        );
    }
    let service = Service::new(
        store,
        reconciler.clone(),
        jit_service::Settings {
            rules: settings.rules,
            admins: settings.admins,
            apply_wait: settings.apply_wait,
            ..Default::default()
        },
    )
    .await
    .context("loading requests from the database")?;

    let tasks = [
        tokio::spawn(reconciler.run(shutdown.child_token())),
        tokio::spawn(service.clone().watch_store(shutdown.child_token())),
    ];
    let app = router(WebConfig {
        verifier,
        service,
        demo,
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
