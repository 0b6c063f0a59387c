//! Entry point of the Oxbow topic operator: reads the configuration, starts the metrics and
//! health server, connects to Kubernetes and Kafka, and runs the sync loop.

use anyhow::Context;
use oxbow_runtime::{http, kafka::admin::KafkaAdmin, settings, telemetry};
use prometheus::Registry;
use topic_operator::{config::Config, controller, kafka::KafkaSide};
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
    info!(
        namespace = %cfg.namespace,
        cluster = %cfg.cluster,
        sync = %cfg.sync,
        bootstrap = %cfg.kafka.bootstrap_servers,
        security_protocol = cfg.kafka.security_protocol.as_str(),
        "starting the topic operator"
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
    let admin = KafkaAdmin::new(&cfg.kafka, &registry, cfg.kafka_operation_timeout)?;
    let kafka = KafkaSide {
        admin,
        filter: cfg.topic_filter(),
    };
    let metrics = controller::TopicMetrics::register(&registry)?;
    tokio::select! {
        r = controller::run(cfg, client, kafka, metrics, readiness) => r,
        _ = tokio::signal::ctrl_c() => { info!("interrupted; stopping"); Ok(()) }
    }
}
