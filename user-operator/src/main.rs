//! Entry point of the Oxbow user operator: reads the configuration, starts the metrics and
//! health server, connects to Kubernetes and Kafka, and runs the sync loop.

use std::sync::Arc;

use anyhow::Context;
use oxbow_runtime::{
    http,
    kafka::{
        admin::{AdminMetrics, KafkaAdmin},
        protocol::KafkaProtocolClient,
    },
    settings, telemetry,
};
use prometheus::Registry;
use tracing::info;
use user_operator::{config::Config, controller, kafka::KafkaSide};

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
    info!(
        namespace = %cfg.namespace,
        cluster = %cfg.cluster,
        bootstrap = %cfg.kafka.bootstrap_servers,
        security_protocol = cfg.kafka.security_protocol.as_str(),
        "starting the user operator"
    );
    let registry = Registry::new();
    let readiness = http::Readiness::default();
    let (addr, _server) = http::serve(cfg.http_addr, registry.clone(), readiness.clone())
        .await
        .with_context(|| format!("binding OXBOW_HTTP_ADDR={}", cfg.http_addr))?;
    info!(%addr, "serving /metrics, /healthz and /readyz");
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes")?;
    let admin_metrics = AdminMetrics::register(&registry)?;
    let kafka = KafkaSide {
        admin: KafkaAdmin::with_metrics(
            &cfg.kafka,
            admin_metrics.clone(),
            cfg.kafka_operation_timeout,
        )?,
        protocol: Arc::new(
            KafkaProtocolClient::new(&cfg.kafka).context("preparing the Kafka protocol client")?,
        ),
        metrics: admin_metrics,
    };
    let metrics = controller::UserMetrics::register(&registry)?;
    tokio::select! {
        r = controller::run(cfg, client, kafka, metrics, readiness) => r,
        _ = tokio::signal::ctrl_c() => { info!("interrupted; stopping"); Ok(()) }
    }
}
