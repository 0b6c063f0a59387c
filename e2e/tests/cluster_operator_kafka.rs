//! The cluster operator's Kafka side against the testbed's real Kafka (as the SCRAM super user;
//! in a cluster the operator connects with its own certificate instead): the partition state
//! its restart and scale-down decisions read, and cluster-wide dynamic configuration changes.
//! May touch: topics named `e2e-co-*` (deleted again) and the cluster-wide broker default of
//! `log.cleaner.delete.retention.ms` (restored).

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use cluster_operator::kafka::{apply_dynamic_changes, partition_map};
use cluster_operator::model::{OperatorDefaults, ResolvedCluster, validate_cluster};
use cluster_operator::plan::partitions::TopicPartition;
use cluster_operator::plan::roll::DynamicConfigChange;
use cluster_operator::plan::scale_down::{ScaleDownError, check_broker_scale_down};
use e2e::env::TestEnv;
use oxbow_runtime::kafka::admin::{KafkaAdmin, NewTopicSpec};
use prometheus::Registry;
use serde_json::json;
use shared_crds::{Kafka, KafkaNodePool};

const DEADLINE: Duration = Duration::from_secs(60);

fn admin() -> Result<KafkaAdmin> {
    let env = TestEnv::from_env()?;
    Ok(KafkaAdmin::new(
        &env.scram_admin_connection(),
        &Registry::new(),
        Duration::from_secs(30),
    )?)
}

/// A validated cluster whose `spec.kafka.config` sets `min.insync.replicas` to 1.
fn cluster() -> Result<ResolvedCluster> {
    let kafka: Kafka = serde_json::from_value(json!({
        "apiVersion": "kafka.oxbow.rs/v1beta1", "kind": "Kafka",
        "metadata": {"name": "c", "namespace": "ns", "uid": "u"},
        "spec": {"kafka": {
            "listeners": [{"name": "plain", "port": 9092, "type": "internal", "tls": false}],
            "config": {"min.insync.replicas": 1}
        }}
    }))?;
    let pool: KafkaNodePool = serde_json::from_value(json!({
        "apiVersion": "kafka.oxbow.rs/v1beta1", "kind": "KafkaNodePool",
        "metadata": {"name": "p", "namespace": "ns", "labels": {"oxbow.rs/cluster": "c"}},
        "spec": {"replicas": 1, "roles": ["controller", "broker"], "storage": {"type": "ephemeral"}}
    }))?;
    Ok(validate_cluster(&kafka, &[pool], &OperatorDefaults::default())?.cluster)
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("e2e-co-{prefix}-{}-{nanos}", std::process::id())
}

/// The partition map lists every partition of a new topic with its replicas, ISR and the
/// effective minimum ISR (the topic's override), and the scale-down check refuses to remove
/// the broker holding them, naming the topic.
#[tokio::test]
async fn partition_state_feeds_the_scale_down_check() -> Result<()> {
    let admin = admin()?;
    let cluster = cluster()?;
    let topic = unique("parts");
    admin
        .create_topics(&[NewTopicSpec {
            name: topic.clone(),
            partitions: Some(3),
            replication_factor: Some(1),
            configs: [("min.insync.replicas".to_owned(), "1".to_owned())].into(),
        }])
        .await?
        .into_iter()
        .try_for_each(|(name, result)| {
            result.map_err(|e| anyhow::anyhow!("creating {name}: {e}"))
        })?;
    let start = Instant::now();
    let map = loop {
        let map = partition_map(&admin, &cluster).await?;
        let found = (0..3)
            .filter(|p| map.contains_key(&TopicPartition::new(topic.clone(), *p)))
            .count();
        if found == 3 {
            break map;
        }
        if start.elapsed() > DEADLINE {
            bail!("{topic} not in the partition map within {DEADLINE:?} ({found} of 3 partitions)");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let p0 = &map[&TopicPartition::new(topic.clone(), 0)];
    assert_eq!(p0.replicas.len(), 1);
    assert_eq!(p0.isr, p0.replicas);
    assert_eq!(p0.min_isr, 1);
    let broker = p0.replicas[0];
    match check_broker_scale_down(&BTreeSet::from([broker]), &map, false) {
        Err(ScaleDownError::BrokersHoldReplicas { brokers }) => {
            assert!(brokers[&broker].contains(&topic), "{brokers:?}");
        }
        other => panic!("removing broker {broker} was not refused: {other:?}"),
    }
    // A broker id that holds nothing may go.
    assert!(check_broker_scale_down(&BTreeSet::from([broker + 1000]), &map, false).is_ok());
    admin.delete_topics([topic]).await?;
    Ok(())
}

/// A dynamic change reaches the cluster-wide broker configuration, and removing it restores
/// the default.
#[tokio::test]
async fn dynamic_changes_reach_the_cluster_wide_configuration() -> Result<()> {
    let admin = admin()?;
    let key = "log.cleaner.delete.retention.ms";
    apply_dynamic_changes(
        &admin,
        &[DynamicConfigChange {
            key: key.to_owned(),
            value: Some("86400001".to_owned()),
        }],
    )
    .await?;
    // The broker applies the change from the cluster metadata a moment later.
    wait_for(&admin, key, Some("86400001")).await?;
    apply_dynamic_changes(
        &admin,
        &[DynamicConfigChange {
            key: key.to_owned(),
            value: None,
        }],
    )
    .await?;
    wait_for(&admin, key, None).await?;
    Ok(())
}

/// Waits until the cluster-wide value of `key` is `want` (`None`: not set).
async fn wait_for(admin: &KafkaAdmin, key: &str, want: Option<&str>) -> Result<()> {
    let start = Instant::now();
    loop {
        let defaults = admin.describe_broker_configs(None).await?;
        let value = defaults.get(key).map(|e| e.value.clone());
        let seen = match &value {
            None => None,
            Some(v) => Some(v.as_deref().unwrap_or("")),
        };
        if seen == want {
            return Ok(());
        }
        if start.elapsed() > DEADLINE {
            bail!("{key} is {seen:?}, not {want:?}, after {DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
