//! Entry point of the Oxbow cluster operator: reads the configuration, starts the metrics and
//! health server, takes the leader Lease when leader election is on, and runs the controllers.

use std::sync::Arc;

use anyhow::Context as _;
use cluster_operator::{
    config::Config,
    context::{ClusterMetrics, Context},
    controller, leader,
};
use oxbow_runtime::{http, settings, telemetry};
use prometheus::Registry;
use tracing::info;

// jemalloc for every allocation, librdkafka's included (see `oxbow_runtime::allocator`).
oxbow_runtime::use_jemalloc!();

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--version") {
        println!("{} {}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let cfg = Config::from_settings(&settings::from_env()).context("invalid configuration")?;
    telemetry::init(cfg.log_format);
    info!(namespaces = ?cfg.namespaces, "starting the cluster operator");
    let registry = Registry::new();
    let readiness = http::Readiness::default();
    let (addr, _server) = http::serve(cfg.http_addr, registry.clone(), readiness.clone())
        .await
        .with_context(|| format!("binding OXBOW_HTTP_ADDR={}", cfg.http_addr))?;
    info!(%addr, "serving /metrics, /healthz and /readyz");
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes")?;
    let metrics = ClusterMetrics::register(&registry)?;
    let _lease = match &cfg.leader_election {
        Some(le) => Some(leader::acquire(client.clone(), le.clone()).await?),
        None => None,
    };
    let ctx = Arc::new(Context::new(client, cfg, metrics));
    controller::run(ctx, readiness).await;
    info!("stopped");
    Ok(())
}
