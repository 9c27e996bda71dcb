//! Wiring: the store, the Zero client, the reconciler, the service and the
//! web edge. Everything that can fail on a setting or the database is done by
//! [`App::open`], before the caller binds the port; [`App::serve`] then runs
//! until a shutdown signal.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use jit_domain::{Resource, ResourceName};
use jit_identity::Verifier;
use jit_ppl::jit::DecodeOptions;
use jit_reconcile::{PolicyApi, Reconciler};
use jit_service::{Desk, Service};
use jit_store::{Store, StoreError};
use jit_web::{WebConfig, router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
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
    metrics: Option<Metrics>,
    slack: Option<jit_web::SlackConfig>,
    notifier: jit_notify::Notifier,
}

/// The Prometheus recorder, and once bound the listener of `METRICS_ADDR`.
struct Metrics {
    addr: SocketAddr,
    handle: PrometheusHandle,
    listener: Option<TcpListener>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("addr", &self.addr)
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
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

        // Installed before anything records (the service sets its gauges as
        // it loads); without METRICS_ADDR there is no recorder and every
        // metric macro is a no-op.
        let metrics = settings
            .metrics
            .map(|addr| {
                Ok::<_, anyhow::Error>(Metrics {
                    addr,
                    handle: install_recorder()?,
                    listener: None,
                })
            })
            .transpose()?;

        let notify_resources = settings.resources.clone();
        let policies = Policies {
            cluster_id: &settings.cluster_id,
            namespace_id: &settings.namespace_id,
            interval: settings.sync_interval,
            apply_changesets: settings.apply_changesets,
            decode: settings.decode,
        };
        let desks: Vec<Desk> = settings
            .resources
            .into_iter()
            .map(|resource| policies.desk(resource, &store, settings.zero.clone()))
            .collect();
        let reconcilers = desks.iter().map(|d| d.reconciler.clone()).collect();

        if settings.admins.is_open() {
            tracing::warn!(
                "ADMIN_EMAILS and ADMIN_GROUPS are not set: anyone Pomerium lets reach /admin can approve requests, \
                 as in the original jit-example; set one of them to check admins in the app too"
            );
        }
        if settings.slack.is_some() {
            tracing::info!(
                "approving from Slack is on at POST /slack/actions; only approvers named by ADMIN_EMAILS, \
                 ADMIN_GROUPS or a resource's approvers can decide there"
            );
        }
        // Runs without channels too: it marks notices handled, so the
        // outbox does not grow, and prunes old ones.
        let notifications = settings.notifications.unwrap_or_default();
        let notification_channels = notifications
            .channels
            .iter()
            .map(|c| (c.name.clone(), c.kind.as_str().to_owned()))
            .collect();
        let admin_emails: Vec<_> = settings.admins.emails().cloned().collect();
        let notifier = jit_notify::Notifier::new(
            store.clone(),
            notifications,
            &notify_resources,
            &admin_emails,
        )
        .map_err(|e| BadSetting(format!("[notifications]: {e}")))?;
        let service = Service::new(
            store,
            desks,
            jit_service::Settings {
                admins: settings.admins,
                apply_wait: settings.apply_wait,
                sync_max_age: settings.sync_max_age,
                ready_sync_grace: settings.ready_sync_grace,
                notification_channels,
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
            metrics,
            slack: settings.slack,
            notifier,
        })
    }

    /// Binds `METRICS_ADDR` when it is set (call it before binding the main
    /// port, so "listening" stays the last start-up line); returns the
    /// address bound.
    pub async fn bind_metrics(&mut self) -> anyhow::Result<Option<SocketAddr>> {
        let Some(metrics) = &mut self.metrics else {
            return Ok(None);
        };
        let listener = TcpListener::bind(metrics.addr)
            .await
            .with_context(|| format!("cannot listen on {} (METRICS_ADDR)", metrics.addr))?;
        let bound = listener.local_addr()?;
        metrics.listener = Some(listener);
        Ok(Some(bound))
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
        tasks.push(tokio::spawn(self.notifier.run(shutdown.child_token())));
        tasks.push(tokio::spawn(crate::memory::give_back_while_serving(
            shutdown.child_token(),
        )));
        let metrics_on = self.metrics.is_some();
        if let Some(metrics) = self.metrics {
            tasks.push(tokio::spawn(upkeep(
                metrics.handle.clone(),
                shutdown.child_token(),
            )));
            if let Some(listener) = metrics.listener {
                tasks.push(tokio::spawn(serve_metrics(
                    listener,
                    metrics.handle,
                    shutdown.child_token(),
                )));
            }
        }
        let app = router(WebConfig {
            verifier: self.verifier,
            service: self.service,
            demo: self.demo,
            slack: self.slack,
            metrics: metrics_on,
        });
        jit_web::serve(listener, app, shutdown.clone().cancelled_owned()).await;
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

/// Where and how the resources' policies are reconciled.
pub struct Policies<'a> {
    pub cluster_id: &'a str,
    /// The namespace of resources whose policy names none.
    pub namespace_id: &'a str,
    pub interval: Duration,
    pub apply_changesets: bool,
    pub decode: DecodeOptions,
}

impl Policies<'_> {
    /// `resource` with the reconciler of its policy: one per resource, as
    /// each policy has its own base, intents and writer lease.
    pub fn desk(&self, resource: Resource, store: &Store, zero: impl PolicyApi) -> Desk {
        let mut rc = jit_reconcile::Config::new(&resource.policy.name, self.cluster_id);
        rc.namespace_id = resource
            .policy
            .namespace
            .clone()
            .unwrap_or_else(|| self.namespace_id.to_owned());
        rc.interval = self.interval;
        rc.apply_changesets = self.apply_changesets;
        rc.decode = self.decode;
        let reconciler = Reconciler::new(rc, store.clone(), zero, resource.rules.clone());
        Desk {
            resource,
            reconciler,
        }
    }
}

/// Latency buckets (seconds) per histogram: web and upstream calls take
/// milliseconds, a sync seconds, a decision minutes to hours.
const BUCKETS: [(&str, &[f64]); 4] = [
    (
        "pomerium_jit_http_request_duration_seconds",
        &[
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ],
    ),
    (
        "pomerium_jit_upstream_request_duration_seconds",
        &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
    ),
    (
        "pomerium_jit_sync_duration_seconds",
        &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0],
    ),
    (
        "pomerium_jit_decision_latency_seconds",
        &[
            10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0, 86400.0,
        ],
    ),
];

/// Installs the process-wide Prometheus recorder, histograms with buckets.
fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    let mut builder = PrometheusBuilder::new();
    for (name, buckets) in BUCKETS {
        builder = builder.set_buckets_for_metric(Matcher::Full(name.into()), buckets)?;
    }
    builder
        .install_recorder()
        .context("installing the metrics recorder")
}

/// Drains histogram samples into their buckets now and then, so memory
/// stays flat however rarely Prometheus scrapes.
async fn upkeep(handle: PrometheusHandle, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => handle.run_upkeep(),
        }
    }
}

/// `GET /metrics` in the Prometheus text format, on its own listener: no
/// identity check, so it must stay off the port Pomerium forwards to.
async fn serve_metrics(
    listener: TcpListener,
    handle: PrometheusHandle,
    shutdown: CancellationToken,
) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || async move {
            handle.run_upkeep();
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                handle.render(),
            )
        }),
    );
    jit_web::serve(listener, app, shutdown.cancelled_owned()).await;
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
