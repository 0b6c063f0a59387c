//! The cluster operator's view of a running Kafka cluster, through the admin client: the
//! partition state that decides whether a broker may restart or be removed, and cluster-wide
//! dynamic configuration changes. The operator connects to `<c>-kafka-bootstrap:9091` (the
//! replication listener) over mTLS with its own certificate (`<c>-cluster-operator-certs`,
//! signed by the cluster CA, a super user), written to files under `$TMPDIR` because librdkafka
//! reads PEM files. A client is made only when a decision needs Kafka, and dropped after.
//! May touch: files under `$TMPDIR/oxbow-cluster-operator/`, the Kafka cluster (reads; the
//! cluster-wide broker configuration).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use oxbow_runtime::kafka::admin::{AdminError, AdminMetrics, ConfigOp, KafkaAdmin};
use oxbow_runtime::kafka::{KafkaConnection, SecurityProtocol};
use shared_crds::names;

use crate::build::kafka_config::REPLICATION_PORT;
use crate::model::ResolvedCluster;
use crate::pki::node_certs::{CA_CERT, TLS_CERT, TLS_KEY};
use crate::plan::partitions::{PartitionMap, PartitionReplicas, TopicPartition};
use crate::plan::roll::DynamicConfigChange;

/// Topics per describe request.
const DESCRIBE_CHUNK: usize = 500;

/// Why Kafka could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("the operator's certificate Secret has no {entry}")]
    CertificateMissing { entry: &'static str },
    #[error("writing the operator's certificate files under {path}: {source}")]
    WriteFiles {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Admin(#[from] AdminError),
    #[error("topic {topic}: {message}")]
    Topic { topic: String, message: String },
}

impl KafkaError {
    /// Stable CamelCase reason.
    pub fn reason(&self) -> &'static str {
        match self {
            KafkaError::CertificateMissing { .. } => "OperatorCertificateMissing",
            KafkaError::WriteFiles { .. } => "OperatorCertificateFiles",
            KafkaError::Admin(_) | KafkaError::Topic { .. } => "KafkaUnavailable",
        }
    }
}

/// The address of the replication listener's bootstrap Service.
pub fn bootstrap_address(cluster: &ResolvedCluster) -> String {
    format!(
        "{}.{}.svc:{REPLICATION_PORT}",
        names::bootstrap_service(&cluster.name),
        cluster.namespace
    )
}

fn write_private(path: &PathBuf, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

/// An admin client for `cluster`, authenticated with the operator's certificate Secret data
/// (`tls.crt`, `tls.key`, `ca.crt`). `bootstrap` overrides the in-cluster address (tests).
pub fn connect(
    cluster: &ResolvedCluster,
    secret: &BTreeMap<String, Vec<u8>>,
    bootstrap: Option<&str>,
    metrics: AdminMetrics,
    timeout: Duration,
) -> Result<KafkaAdmin, KafkaError> {
    let dir = std::env::temp_dir()
        .join("oxbow-cluster-operator")
        .join(format!("{}-{}", cluster.namespace, cluster.name));
    let files = [
        (CA_CERT, "ca.crt"),
        (TLS_CERT, "tls.crt"),
        (TLS_KEY, "tls.key"),
    ];
    std::fs::create_dir_all(&dir).map_err(|source| KafkaError::WriteFiles {
        path: dir.display().to_string(),
        source,
    })?;
    let mut paths = Vec::new();
    for (entry, file) in files {
        let bytes = secret
            .get(entry)
            .ok_or(KafkaError::CertificateMissing { entry })?;
        let path = dir.join(file);
        write_private(&path, bytes).map_err(|source| KafkaError::WriteFiles {
            path: path.display().to_string(),
            source,
        })?;
        paths.push(path);
    }
    let connection = KafkaConnection {
        bootstrap_servers: bootstrap
            .map(str::to_owned)
            .unwrap_or_else(|| bootstrap_address(cluster)),
        security_protocol: SecurityProtocol::Ssl,
        ca_file: Some(paths[0].clone()),
        client_cert: Some((paths[1].clone(), paths[2].clone())),
        sasl: None,
    };
    Ok(KafkaAdmin::with_metrics(&connection, metrics, timeout)?)
}

/// The effective `min.insync.replicas` of a topic: its override, else the cluster's setting
/// (from `spec.kafka.config`, which Oxbow puts in every broker's `server.properties`), else
/// Kafka's default, 1.
pub fn effective_min_isr(
    topic_overrides: Option<&BTreeMap<String, String>>,
    cluster_config: &BTreeMap<String, String>,
) -> i32 {
    topic_overrides
        .and_then(|c| c.get("min.insync.replicas"))
        .or_else(|| cluster_config.get("min.insync.replicas"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1)
}

/// Every partition of the cluster with its replicas, ISR and effective minimum ISR.
pub async fn partition_map(
    admin: &KafkaAdmin,
    cluster: &ResolvedCluster,
) -> Result<PartitionMap, KafkaError> {
    let topics: Vec<String> = admin
        .list_topics()
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect();
    let mut map = PartitionMap::new();
    for chunk in topics.chunks(DESCRIBE_CHUNK) {
        let partitions = admin.describe_partitions(chunk.iter().cloned()).await?;
        let configs: BTreeMap<String, BTreeMap<String, String>> = admin
            .describe_topic_configs(chunk.iter().cloned())
            .await?
            .into_iter()
            .filter_map(|(t, r)| r.ok().map(|c| (t, c)))
            .collect();
        for (topic, result) in partitions {
            let states = match result {
                Ok(s) => s,
                // Deleted between the list and the describe: it holds nothing any more.
                Err(e) if e.kafka_failure().is_some_and(|f| f.is_unknown_topic()) => continue,
                Err(e) => {
                    return Err(KafkaError::Topic {
                        topic,
                        message: e.to_string(),
                    });
                }
            };
            let min_isr = effective_min_isr(configs.get(&topic), &cluster.config);
            for p in states {
                map.insert(
                    TopicPartition::new(topic.clone(), p.partition),
                    PartitionReplicas {
                        replicas: p.replicas,
                        isr: p.isr,
                        min_isr,
                    },
                );
            }
        }
    }
    Ok(map)
}

/// Applies cluster-wide dynamic configuration changes in one request.
pub async fn apply_dynamic_changes(
    admin: &KafkaAdmin,
    changes: &[DynamicConfigChange],
) -> Result<(), KafkaError> {
    let ops: Vec<ConfigOp> = changes
        .iter()
        .map(|c| match &c.value {
            Some(v) => ConfigOp::Set(c.key.clone(), v.clone()),
            None => ConfigOp::Delete(c.key.clone()),
        })
        .collect();
    admin.incremental_alter_broker_configs(None, ops).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_isr_prefers_the_topic_then_the_cluster_then_one() {
        let cluster = BTreeMap::from([("min.insync.replicas".to_owned(), "2".to_owned())]);
        let topic = BTreeMap::from([("min.insync.replicas".to_owned(), "3".to_owned())]);
        assert_eq!(effective_min_isr(Some(&topic), &cluster), 3);
        assert_eq!(effective_min_isr(None, &cluster), 2);
        assert_eq!(
            effective_min_isr(Some(&BTreeMap::new()), &BTreeMap::new()),
            1
        );
    }
}
