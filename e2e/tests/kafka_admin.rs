//! Tests of `oxbow_runtime::kafka::admin::KafkaAdmin` against the running testbed Kafka (the
//! `KAFKA_*` variables exported by `testbed up`): cluster and topic descriptions, the topic
//! lifecycle, Kafka's per-item refusals with its own messages, ACLs, SCRAM credentials proven by
//! real logins, an mTLS principal that is not a super user, UnregisterBroker's refusals, and the
//! request metrics.
//! May touch: the testbed's Kafka (topics `e2e-admin-*`, users `e2e-admin-*`, ACLs of principals
//! `User:e2e-admin-*` and `User:CN=e2e-admin-*`, all removed again; UnregisterBroker only of ids
//! that were never registered), temporary files.

use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail};
use e2e::{env::TestEnv, pki};
use oxbow_runtime::kafka::{
    KafkaConnection, SecurityProtocol,
    admin::{
        AclBinding, AclBindingFilter, AclOperation, AclPatternType, AclPermission, AclResourceType,
        AdminError, ConfigEntry, ConfigOp, ConfigSource, KafkaAdmin, NewTopicSpec, ScramAlteration,
        ScramCredentialInfo, ScramMechanism, ScramUpsertion,
    },
};
use prometheus::Registry;
use rdkafka::{
    ClientConfig, ClientContext,
    consumer::{BaseConsumer, Consumer},
    error::{KafkaError, RDKafkaErrorCode},
    producer::{BaseProducer, DeliveryResult, Producer, ProducerContext},
};

/// Long enough for a broker on a busy two-core machine, short enough that a hang fails the test.
const DEADLINE: Duration = Duration::from_secs(30);
/// The admin client's own request timeout.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(20);

fn env() -> TestEnv {
    TestEnv::from_env().expect("testbed exports")
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("e2e-admin-{prefix}-{}-{nanos}", std::process::id())
}

fn scram_connection(env: &TestEnv) -> KafkaConnection {
    env.scram_admin_connection()
}

/// An admin client as the SCRAM super user, with its own registry.
fn scram_admin(env: &TestEnv) -> (KafkaAdmin, Registry) {
    let registry = Registry::new();
    let admin = KafkaAdmin::new(&scram_connection(env), &registry, ADMIN_TIMEOUT).unwrap();
    (admin, registry)
}

/// An admin client over mTLS with a certificate for `CN=<cn>` from the clients CA (a principal
/// with no ACL until a test grants one); the folder keeps its certificate files while the
/// client lives.
fn mtls_admin(env: &TestEnv, cn: &str) -> (KafkaAdmin, Registry, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = env.clients_ca().unwrap().client_cert(cn, None).unwrap();
    let (cert, key) = (tmp.path().join("client.crt"), tmp.path().join("client.key"));
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    pki::write_private(&key, &leaf.key_pem).unwrap();
    let registry = Registry::new();
    let admin = KafkaAdmin::new(
        &KafkaConnection {
            bootstrap_servers: env.kafka_tls_bootstrap.clone(),
            security_protocol: SecurityProtocol::Ssl,
            ca_file: Some(env.kafka_ca_file.clone()),
            client_cert: Some((cert, key)),
            sasl: None,
        },
        &registry,
        ADMIN_TIMEOUT,
    )
    .unwrap();
    (admin, registry, tmp)
}

/// `oxbow_kafka_admin_requests_total{api, outcome}`, checked against the histogram's count.
fn requests(registry: &Registry, api: &str, outcome: &str) -> u64 {
    let families = registry.gather();
    let find = |family: &str| {
        families.iter().find(|f| f.name() == family).and_then(|f| {
            f.get_metric()
                .iter()
                .find(|m| {
                    let labels: BTreeMap<&str, &str> = m
                        .get_label()
                        .iter()
                        .map(|l| (l.name(), l.value()))
                        .collect();
                    labels.get("api") == Some(&api) && labels.get("outcome") == Some(&outcome)
                })
                .cloned()
        })
    };
    let counted =
        find("oxbow_kafka_admin_requests_total").map_or(0, |m| m.get_counter().value() as u64);
    let timed = find("oxbow_kafka_admin_request_duration_seconds")
        .map_or(0, |m| m.get_histogram().get_sample_count());
    assert_eq!(
        counted, timed,
        "{api}/{outcome}: counter and histogram disagree"
    );
    counted
}

/// Re-runs `check` until it holds or the deadline passes (then panics with its last complaint).
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if start.elapsed() > DEADLINE => {
                panic!("{what}: not within {DEADLINE:?}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn kafka_code(e: &AdminError) -> (&'static str, &str) {
    let f = e
        .kafka_failure()
        .unwrap_or_else(|| panic!("not Kafka's refusal: {e}"));
    (f.name(), f.message.as_str())
}

// -------------------------------------------------------------------------------------------
// Cluster
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn describe_cluster_reports_id_controller_and_the_brokers_metadata_lists() {
    let env = env();
    let (admin, registry) = scram_admin(&env);
    let cluster = admin.describe_cluster().await.unwrap();

    let id = cluster
        .cluster_id
        .as_deref()
        .expect("a KRaft cluster has an ID");
    // `StorageTool random-uuid`: URL-safe base64 of 16 bytes.
    assert_eq!(id.len(), 22, "{id}");
    let config = env.kafka_scram_admin();
    let md = tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = config.create().unwrap();
        c.fetch_metadata(None, DEADLINE).unwrap()
    })
    .await
    .unwrap();
    let mut from_metadata: Vec<i32> = md.brokers().iter().map(|b| b.id()).collect();
    from_metadata.sort_unstable();
    assert_eq!(cluster.broker_ids, from_metadata);
    let controller = cluster.controller_id.expect("a controller");
    assert!(cluster.broker_ids.contains(&controller), "{cluster:?}");

    assert_eq!(requests(&registry, "describe_cluster", "success"), 1);
    assert_eq!(requests(&registry, "describe_cluster", "error"), 0);
}

// -------------------------------------------------------------------------------------------
// Topics
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn topic_lifecycle_create_describe_alter_grow_delete() {
    let env = env();
    let (admin, registry) = scram_admin(&env);
    let topic = unique("lifecycle");

    let created = admin
        .create_topics(&[NewTopicSpec {
            name: topic.clone(),
            partitions: Some(2),
            replication_factor: Some(1),
            configs: [("retention.ms".to_string(), "86400000".to_string())].into(),
        }])
        .await
        .unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].0, topic);
    created[0].1.as_ref().unwrap();

    let described = admin.describe_topics([&topic]).await.unwrap();
    let d = described[0].1.as_ref().unwrap();
    assert_eq!(
        (d.name.as_str(), d.partitions, d.replication_factor),
        (topic.as_str(), 2, 1)
    );
    assert!(!d.internal);
    let id = d.topic_id.clone().expect("Kafka 4 gives every topic an ID");
    assert_eq!(id.len(), 22, "{id}");
    assert!(
        id.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{id}"
    );

    let listed = admin.list_topics().await.unwrap();
    let mine = listed.iter().find(|t| t.name == topic).expect("listed");
    assert!(!mine.internal);
    assert!(listed.windows(2).all(|w| w[0].name < w[1].name), "sorted");
    let names = admin.list_topic_names().await.unwrap();
    assert!(names.contains(&topic), "{names:?}");
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted");

    // Set two keys, remove the one set at creation: one request, applied atomically.
    let altered = admin
        .incremental_alter_configs([(
            topic.clone(),
            vec![
                ConfigOp::Set("cleanup.policy".into(), "compact".into()),
                ConfigOp::Set("max.message.bytes".into(), "2000000".into()),
                ConfigOp::Delete("retention.ms".into()),
            ],
        )])
        .await
        .unwrap();
    altered[0].1.as_ref().unwrap();
    let want: BTreeMap<String, String> = [
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("max.message.bytes".to_string(), "2000000".to_string()),
    ]
    .into();
    // Only the overrides: no broker defaults, and the deleted key is gone.
    let overrides = eventually("the overrides are described", || async {
        let r = admin
            .describe_topic_configs([&topic])
            .await
            .map_err(|e| e.to_string())?;
        match &r[0].1 {
            Ok(map) if *map == want => Ok(map.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(overrides, want);

    let grown = admin.create_partitions([(topic.clone(), 4)]).await.unwrap();
    grown[0].1.as_ref().unwrap();
    let after = eventually("four partitions are described", || async {
        let r = admin
            .describe_topics([&topic])
            .await
            .map_err(|e| e.to_string())?;
        match &r[0].1 {
            Ok(d) if d.partitions == 4 => Ok(d.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(
        after.topic_id.as_deref(),
        Some(id.as_str()),
        "the ID is stable"
    );

    let deleted = admin.delete_topics([&topic]).await.unwrap();
    deleted[0].1.as_ref().unwrap();
    eventually("the topic is gone", || async {
        let r = admin
            .describe_topics([&topic])
            .await
            .map_err(|e| e.to_string())?;
        match &r[0].1 {
            Err(e) if e.reason() == "UnknownTopicOrPartition" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    for api in [
        "create_topics",
        "incremental_alter_configs",
        "create_partitions",
        "delete_topics",
    ] {
        assert_eq!(requests(&registry, api, "success"), 1, "{api}");
    }
    // list_topics and list_topic_names, under one label.
    assert_eq!(requests(&registry, "list_topics", "success"), 2);
    assert!(requests(&registry, "describe_topics", "success") >= 2);
    // Describing the deleted topic is a refused item, counted as an error.
    assert!(requests(&registry, "describe_topics", "error") >= 1);
}

#[tokio::test]
async fn unknown_config_key_is_refused_with_kafkas_message() {
    let env = env();
    let (admin, registry) = scram_admin(&env);
    let topic = unique("badkey");

    // At creation.
    let created = admin
        .create_topics(&[NewTopicSpec {
            name: topic.clone(),
            partitions: Some(1),
            replication_factor: None,
            configs: [("foo".to_string(), "bar".to_string())].into(),
        }])
        .await
        .unwrap();
    let err = created[0].1.as_ref().unwrap_err();
    assert!(matches!(err, AdminError::CreateTopics { .. }), "{err:?}");
    assert_eq!(err.reason(), "InvalidConfig");
    let (name, message) = kafka_code(err);
    assert_eq!(name, "INVALID_CONFIG");
    assert!(
        message.contains("foo"),
        "Kafka's message names the key: {message}"
    );

    // On an existing topic.
    admin
        .create_topics(&[NewTopicSpec {
            name: topic.clone(),
            partitions: Some(1),
            ..Default::default()
        }])
        .await
        .unwrap()[0]
        .1
        .as_ref()
        .unwrap();
    let altered = admin
        .incremental_alter_configs([(
            topic.clone(),
            vec![ConfigOp::Set("foo".into(), "bar".into())],
        )])
        .await
        .unwrap();
    let err = altered[0].1.as_ref().unwrap_err();
    assert!(
        matches!(err, AdminError::AlterTopicConfigs { .. }),
        "{err:?}"
    );
    assert_eq!(err.reason(), "InvalidConfig");
    let (_, message) = kafka_code(err);
    assert_eq!(message, "Unknown topic config name: foo");

    admin.delete_topics([&topic]).await.unwrap()[0]
        .1
        .as_ref()
        .unwrap();
    assert_eq!(requests(&registry, "incremental_alter_configs", "error"), 1);
    assert_eq!(requests(&registry, "create_topics", "error"), 1);
    assert_eq!(requests(&registry, "create_topics", "success"), 1);
}

#[tokio::test]
async fn creating_an_existing_topic_is_topic_already_exists() {
    let env = env();
    let (admin, _registry) = scram_admin(&env);
    let topic = unique("twice");
    let spec = NewTopicSpec {
        name: topic.clone(),
        partitions: Some(1),
        ..Default::default()
    };
    admin
        .create_topics(std::slice::from_ref(&spec))
        .await
        .unwrap()[0]
        .1
        .as_ref()
        .unwrap();
    let again = admin.create_topics(&[spec]).await.unwrap();
    let err = again[0].1.as_ref().unwrap_err();
    assert_eq!(err.reason(), "TopicAlreadyExists");
    let (name, message) = kafka_code(err);
    assert_eq!(name, "TOPIC_ALREADY_EXISTS");
    assert!(message.contains(&topic), "{message}");
    admin.delete_topics([&topic]).await.unwrap()[0]
        .1
        .as_ref()
        .unwrap();
}

#[tokio::test]
async fn replication_factor_above_the_broker_count_is_invalid_replication_factor() {
    let env = env();
    let (admin, _registry) = scram_admin(&env);
    let brokers = admin.describe_cluster().await.unwrap().broker_ids.len();
    let topic = unique("toowide");
    let created = admin
        .create_topics(&[NewTopicSpec {
            name: topic.clone(),
            partitions: Some(1),
            replication_factor: Some(brokers as i16 + 1),
            ..Default::default()
        }])
        .await
        .unwrap();
    let err = created[0].1.as_ref().unwrap_err();
    assert_eq!(err.reason(), "InvalidReplicationFactor");
    let (name, message) = kafka_code(err);
    assert_eq!(name, "INVALID_REPLICATION_FACTOR");
    assert!(message.contains(&(brokers + 1).to_string()), "{message}");
    // Nothing was created.
    let described = admin.describe_topics([&topic]).await.unwrap();
    assert_eq!(
        described[0].1.as_ref().unwrap_err().reason(),
        "UnknownTopicOrPartition"
    );
}

#[tokio::test]
async fn one_failing_item_leaves_the_rest_of_the_batch_applied() {
    let env = env();
    let (admin, registry) = scram_admin(&env);
    let (a, bad, b) = (unique("batch-a"), unique("batch-bad"), unique("batch-b"));
    let spec = |name: &str, rf| NewTopicSpec {
        name: name.to_string(),
        partitions: Some(1),
        replication_factor: Some(rf),
        ..Default::default()
    };
    let created = admin
        .create_topics(&[spec(&a, 1), spec(&bad, 1000), spec(&b, 1)])
        .await
        .unwrap();
    let names: Vec<&str> = created.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [a.as_str(), bad.as_str(), b.as_str()],
        "request order"
    );
    assert!(created[0].1.is_ok() && created[2].1.is_ok(), "{created:?}");
    assert_eq!(
        created[1].1.as_ref().unwrap_err().reason(),
        "InvalidReplicationFactor"
    );

    let missing = unique("batch-missing");
    let altered = admin
        .incremental_alter_configs([
            (
                a.clone(),
                vec![ConfigOp::Set("retention.ms".into(), "1234567".into())],
            ),
            (
                missing.clone(),
                vec![ConfigOp::Set("retention.ms".into(), "1234567".into())],
            ),
            (
                b.clone(),
                vec![ConfigOp::Set("no.such.key".into(), "1".into())],
            ),
        ])
        .await
        .unwrap();
    altered[0].1.as_ref().unwrap();
    assert_eq!(
        altered[1].1.as_ref().unwrap_err().reason(),
        "UnknownTopicOrPartition"
    );
    assert_eq!(
        kafka_code(altered[2].1.as_ref().unwrap_err()).1,
        "Unknown topic config name: no.such.key"
    );

    let configs = eventually("a's override is described, b has none", || async {
        let r = admin.describe_topic_configs([&a, &b]).await.map_err(|e| e.to_string())?;
        let a_ok = matches!(&r[0].1, Ok(m) if m.get("retention.ms").map(String::as_str) == Some("1234567"));
        let b_ok = matches!(&r[1].1, Ok(m) if m.is_empty());
        if a_ok && b_ok { Ok(r) } else { Err(format!("{r:?}")) }
    })
    .await;
    assert_eq!(configs[0].0, a);

    let deleted = admin.delete_topics([&a, &missing, &b]).await.unwrap();
    deleted[0].1.as_ref().unwrap();
    assert_eq!(
        deleted[1].1.as_ref().unwrap_err().reason(),
        "UnknownTopicOrPartition"
    );
    deleted[2].1.as_ref().unwrap();

    assert_eq!(requests(&registry, "create_topics", "error"), 1);
    assert_eq!(requests(&registry, "incremental_alter_configs", "error"), 1);
    assert_eq!(requests(&registry, "delete_topics", "error"), 1);
}

// -------------------------------------------------------------------------------------------
// Partition state
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn partition_states_name_leader_replicas_and_isr_among_the_brokers() {
    let env = env();
    let (admin, registry) = scram_admin(&env);
    let topic = unique("partitions");
    let brokers = admin.describe_cluster().await.unwrap().broker_ids;

    // The broker's default replication factor: every broker of a 1-node testbed, 3 of 3 nodes.
    admin
        .create_topics(&[NewTopicSpec {
            name: topic.clone(),
            partitions: Some(3),
            replication_factor: None,
            configs: BTreeMap::new(),
        }])
        .await
        .unwrap()[0]
        .1
        .as_ref()
        .unwrap();
    // The broker answering may not know the new topic yet (metadata propagates): retry.
    let rf = eventually("the new topic described", || async {
        let r = admin
            .describe_topics([&topic])
            .await
            .map_err(|e| e.to_string())?;
        r[0].1
            .as_ref()
            .map(|d| d.replication_factor)
            .map_err(|e| e.to_string())
    })
    .await;
    assert!(rf >= 1 && rf <= brokers.len(), "rf {rf} of {brokers:?}");

    // A new partition may report its ISR before every follower caught up: wait for all in sync.
    let states = eventually("every partition has a leader and a full ISR", || async {
        let r = admin
            .describe_partitions([&topic])
            .await
            .map_err(|e| e.to_string())?;
        let states = r[0].1.as_ref().map_err(|e| e.to_string())?.clone();
        let settled = states.iter().all(|p| {
            let mut isr = p.isr.clone();
            let mut replicas = p.replicas.clone();
            isr.sort_unstable();
            replicas.sort_unstable();
            p.leader.is_some() && isr == replicas
        });
        if settled {
            Ok(states)
        } else {
            Err(format!("{states:?}"))
        }
    })
    .await;
    let ids: Vec<i32> = states.iter().map(|p| p.partition).collect();
    assert_eq!(ids, [0, 1, 2], "every partition, sorted");
    for p in &states {
        assert_eq!(p.replicas.len(), rf, "{p:?}");
        assert!(p.replicas.iter().all(|b| brokers.contains(b)), "{p:?}");
        let leader = p.leader.unwrap();
        assert!(p.replicas.contains(&leader), "{p:?}");
        assert!(p.isr.contains(&leader), "{p:?}");
    }
    if brokers.len() == 1 {
        let only = brokers[0];
        for p in &states {
            assert_eq!(
                (p.leader, p.replicas.as_slice(), p.isr.as_slice()),
                (Some(only), [only].as_slice(), [only].as_slice())
            );
        }
    }

    // A missing topic is refused per item; the other is still described. The retries above may
    // have counted errors of their own (a topic not yet known): count from here.
    let errors_before = requests(&registry, "describe_topics", "error");
    let missing = unique("no-such-topic");
    let mixed = admin
        .describe_partitions([topic.clone(), missing.clone()])
        .await
        .unwrap();
    assert_eq!(mixed.len(), 2);
    assert_eq!(mixed[0].1.as_ref().unwrap().len(), 3);
    let err = mixed
        .iter()
        .find(|(n, _)| *n == missing)
        .unwrap()
        .1
        .as_ref()
        .unwrap_err();
    assert!(
        matches!(err, AdminError::DescribePartitions { .. }),
        "{err:?}"
    );
    assert!(err.kafka_failure().unwrap().is_unknown_topic(), "{err:?}");

    admin.delete_topics([&topic]).await.unwrap()[0]
        .1
        .as_ref()
        .unwrap();
    // Counted under Kafka's API name, the same as describe_topics.
    assert!(requests(&registry, "describe_topics", "success") >= 2);
    assert_eq!(
        requests(&registry, "describe_topics", "error"),
        errors_before + 1
    );
}

// -------------------------------------------------------------------------------------------
// Broker configs (each test its own key: the testbed's brokers are shared by every test)
// -------------------------------------------------------------------------------------------

/// The broker's view of `key`, once it shows `want` (`None`: no longer set at run time).
async fn broker_config_becomes(
    admin: &KafkaAdmin,
    broker: Option<i32>,
    key: &str,
    want: Option<(&str, ConfigSource)>,
) -> Option<ConfigEntry> {
    eventually(
        &format!("{key} of broker {broker:?} is {want:?}"),
        || async {
            let configs = admin
                .describe_broker_configs(broker)
                .await
                .map_err(|e| e.to_string())?;
            let entry = configs.get(key).cloned();
            let shown = entry
                .as_ref()
                .filter(|e| e.source.is_dynamic())
                .map(|e| (e.value.as_deref().unwrap_or_default(), e.source));
            if shown == want {
                Ok(entry)
            } else {
                Err(format!("{entry:?}"))
            }
        },
    )
    .await
}

#[tokio::test]
async fn cluster_wide_broker_default_is_set_read_back_and_deleted() {
    let env = env();
    let (admin, registry) = scram_admin(&env);
    let broker = admin.describe_cluster().await.unwrap().broker_ids[0];
    // A topic-config synonym, so dynamic cluster-wide; 1 ms above Kafka's default, harmless.
    let key = "log.cleaner.delete.retention.ms";
    let value = "86400001";

    admin
        .incremental_alter_broker_configs(None, vec![ConfigOp::Set(key.into(), value.into())])
        .await
        .unwrap();
    let default = broker_config_becomes(
        &admin,
        None,
        key,
        Some((value, ConfigSource::DynamicDefaultBroker)),
    )
    .await
    .unwrap();
    assert!(!default.read_only && !default.sensitive, "{default:?}");
    // Each broker reports the default as the source of its value.
    broker_config_becomes(
        &admin,
        Some(broker),
        key,
        Some((value, ConfigSource::DynamicDefaultBroker)),
    )
    .await;

    admin
        .incremental_alter_broker_configs(None, vec![ConfigOp::Delete(key.into())])
        .await
        .unwrap();
    assert_eq!(broker_config_becomes(&admin, None, key, None).await, None);
    let back = broker_config_becomes(&admin, Some(broker), key, None)
        .await
        .expect("the broker still reports the key");
    assert_eq!(back.source, ConfigSource::Default, "{back:?}");
    assert_eq!(back.value.as_deref(), Some("86400000"));

    assert_eq!(
        requests(&registry, "incremental_alter_configs", "success"),
        2
    );
    assert!(requests(&registry, "describe_configs", "success") >= 4);
    assert_eq!(requests(&registry, "describe_configs", "error"), 0);
}

#[tokio::test]
async fn one_brokers_config_is_set_read_back_and_deleted() {
    let env = env();
    let (admin, registry) = scram_admin(&env);
    let broker = admin.describe_cluster().await.unwrap().broker_ids[0];
    let key = "log.cleaner.min.compaction.lag.ms";

    // Before: Kafka's default, and the static settings from server.properties, with sources.
    let before = admin.describe_broker_configs(Some(broker)).await.unwrap();
    assert_eq!(
        before[key].source,
        ConfigSource::Default,
        "{:?}",
        before[key]
    );
    let node_id = &before["node.id"];
    assert_eq!(node_id.source, ConfigSource::StaticBroker, "{node_id:?}");
    assert_eq!(node_id.value.as_deref(), Some(broker.to_string().as_str()));
    assert!(node_id.read_only, "{node_id:?}");
    // Sensitive values are never sent.
    assert!(
        before
            .values()
            .filter(|e| e.sensitive)
            .all(|e| e.value.is_none()),
        "{before:?}"
    );

    admin
        .incremental_alter_broker_configs(Some(broker), vec![ConfigOp::Set(key.into(), "1".into())])
        .await
        .unwrap();
    let set = broker_config_becomes(
        &admin,
        Some(broker),
        key,
        Some(("1", ConfigSource::DynamicBroker)),
    )
    .await
    .unwrap();
    assert!(!set.read_only, "{set:?}");
    // A broker's own value is not the cluster-wide default.
    let defaults = admin.describe_broker_configs(None).await.unwrap();
    assert!(!defaults.contains_key(key), "{defaults:?}");

    admin
        .incremental_alter_broker_configs(Some(broker), vec![ConfigOp::Delete(key.into())])
        .await
        .unwrap();
    let back = broker_config_becomes(&admin, Some(broker), key, None)
        .await
        .unwrap();
    assert_eq!(back.source, ConfigSource::Default, "{back:?}");

    assert_eq!(
        requests(&registry, "incremental_alter_configs", "success"),
        2
    );
    assert_eq!(requests(&registry, "incremental_alter_configs", "error"), 0);
}

#[tokio::test]
async fn broker_config_refusals_carry_kafkas_code_and_message() {
    let env = env();
    let (admin, registry) = scram_admin(&env);
    let broker = admin.describe_cluster().await.unwrap().broker_ids[0];

    // The same refusals for the cluster-wide default (protocol client) and for one broker
    // (librdkafka): Kafka's code and its message verbatim.
    for target in [None, Some(broker)] {
        let refused = [
            (
                ConfigOp::Set("log.dirs".into(), "/tmp/elsewhere".into()),
                "Cannot update these configs dynamically: Set(log.dirs)",
            ),
            (
                ConfigOp::Set("message.max.bytes".into(), "abc".into()),
                "Invalid value abc for configuration message.max.bytes: Not a number of type INT",
            ),
        ];
        for (op, want) in refused {
            let err = admin
                .incremental_alter_broker_configs(target, vec![op.clone()])
                .await
                .unwrap_err();
            assert!(
                matches!(err, AdminError::AlterBrokerConfigs { .. }),
                "{target:?} {op:?}: {err:?}"
            );
            assert_eq!(err.reason(), "InvalidRequest", "{target:?} {op:?}");
            assert_eq!(kafka_code(&err), ("INVALID_REQUEST", want), "{target:?}");
        }
    }
    // Nothing changed.
    let defaults = admin.describe_broker_configs(None).await.unwrap();
    assert!(!defaults.contains_key("log.dirs"), "{defaults:?}");
    assert!(!defaults.contains_key("message.max.bytes"), "{defaults:?}");
    let own = admin.describe_broker_configs(Some(broker)).await.unwrap();
    assert!(!own["message.max.bytes"].source.is_dynamic(), "{own:?}");
    assert_eq!(requests(&registry, "incremental_alter_configs", "error"), 4);
    assert_eq!(
        requests(&registry, "incremental_alter_configs", "success"),
        0
    );
}

/// Unlike topic configs, Kafka 4.1 stores unknown broker config keys without complaint, for a
/// broker and cluster-wide alike, and describes them back as sensitive, without their value:
/// callers must check keys themselves.
#[tokio::test]
async fn unknown_broker_config_keys_are_accepted_and_described_as_sensitive() {
    let env = env();
    let (admin, _registry) = scram_admin(&env);
    let broker = admin.describe_cluster().await.unwrap().broker_ids[0];
    let prefix = "e2e.admin.unknown.";
    let key = format!("{prefix}{}", std::process::id());
    for target in [None, Some(broker)] {
        // Keys left by an interrupted earlier run go first, so they cannot pile up.
        let leftovers: Vec<ConfigOp> = admin
            .describe_broker_configs(target)
            .await
            .unwrap()
            .into_iter()
            .filter(|(k, e)| k.starts_with(prefix) && e.source.is_dynamic())
            .map(|(k, _)| ConfigOp::Delete(k))
            .collect();
        admin
            .incremental_alter_broker_configs(target, leftovers)
            .await
            .unwrap();

        admin
            .incremental_alter_broker_configs(target, vec![ConfigOp::Set(key.clone(), "1".into())])
            .await
            .unwrap();
        let source = match target {
            None => ConfigSource::DynamicDefaultBroker,
            Some(_) => ConfigSource::DynamicBroker,
        };
        let stored = broker_config_becomes(&admin, target, &key, Some(("", source)))
            .await
            .unwrap();
        assert_eq!(
            (stored.value, stored.sensitive),
            (None, true),
            "{target:?}: an unknown key is treated as a secret"
        );
        admin
            .incremental_alter_broker_configs(target, vec![ConfigOp::Delete(key.clone())])
            .await
            .unwrap();
        // No longer set at run time (a broker may go on listing the key, as a default).
        broker_config_becomes(&admin, target, &key, None).await;
    }
}

// -------------------------------------------------------------------------------------------
// ACLs
// -------------------------------------------------------------------------------------------

fn binding(
    principal: &str,
    resource_type: AclResourceType,
    name: &str,
    pattern_type: AclPatternType,
    operation: AclOperation,
    permission: AclPermission,
) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: name.to_string(),
        pattern_type,
        principal: principal.to_string(),
        host: "*".to_string(),
        operation,
        permission,
    }
}

async fn acls_of(admin: &KafkaAdmin, principal: &str) -> Result<BTreeSet<AclBinding>, String> {
    admin
        .describe_acls(&AclBindingFilter::principal(principal))
        .await
        .map(|v| v.into_iter().collect())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn acls_round_trip_create_describe_delete() {
    let env = env();
    let (admin, registry) = scram_admin(&env);
    let principal = format!("User:{}", unique("acl"));
    let read_topic = binding(
        &principal,
        AclResourceType::Topic,
        "orders",
        AclPatternType::Literal,
        AclOperation::Read,
        AclPermission::Allow,
    );
    let wanted = vec![
        read_topic.clone(),
        binding(
            &principal,
            AclResourceType::Group,
            "orders-",
            AclPatternType::Prefixed,
            AclOperation::Read,
            AclPermission::Allow,
        ),
        binding(
            &principal,
            AclResourceType::TransactionalId,
            "tx",
            AclPatternType::Literal,
            AclOperation::Write,
            AclPermission::Deny,
        ),
        binding(
            &principal,
            AclResourceType::Cluster,
            "kafka-cluster",
            AclPatternType::Literal,
            AclOperation::IdempotentWrite,
            AclPermission::Allow,
        ),
    ];
    let created = admin.create_acls(&wanted).await.unwrap();
    assert_eq!(created.len(), wanted.len());
    for (b, r) in &created {
        assert!(r.is_ok(), "{b:?}: {r:?}");
    }
    let want_set: BTreeSet<AclBinding> = wanted.iter().cloned().collect();
    eventually("the principal's ACLs are described", || async {
        let seen = acls_of(&admin, &principal).await?;
        if seen == want_set {
            Ok(())
        } else {
            Err(format!("{seen:?}"))
        }
    })
    .await;

    // Exactly one binding.
    let deleted = admin.delete_acls(&[read_topic.to_filter()]).await.unwrap();
    assert_eq!(deleted[0].1.as_ref().unwrap(), &vec![read_topic.clone()]);
    // The rest, by principal.
    let deleted = admin
        .delete_acls(&[AclBindingFilter::principal(&principal)])
        .await
        .unwrap();
    let rest: BTreeSet<AclBinding> = deleted[0].1.as_ref().unwrap().iter().cloned().collect();
    let mut expected_rest = want_set.clone();
    expected_rest.remove(&read_topic);
    assert_eq!(rest, expected_rest);
    eventually("no ACLs are left", || async {
        let seen = acls_of(&admin, &principal).await?;
        if seen.is_empty() {
            Ok(())
        } else {
            Err(format!("{seen:?}"))
        }
    })
    .await;

    assert_eq!(requests(&registry, "create_acls", "success"), 1);
    assert_eq!(requests(&registry, "delete_acls", "success"), 2);
    assert!(requests(&registry, "describe_acls", "success") >= 2);
}

#[tokio::test]
async fn mtls_principal_is_refused_until_granted_then_describes_acls() {
    let env = env();
    let (scram, _) = scram_admin(&env);
    let cn = unique("mtls");
    let (mtls, registry, _tmp) = mtls_admin(&env, &cn);

    // The connection itself works.
    let cluster = mtls.describe_cluster().await.unwrap();
    assert!(!cluster.broker_ids.is_empty());
    // DescribeAcls needs Describe on the cluster, which `User:CN=...` does not have.
    let principal = format!("User:CN={cn}");
    let refused = mtls
        .describe_acls(&AclBindingFilter::principal(&principal))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, AdminError::DescribeAcls { .. }),
        "{refused:?}"
    );
    assert_eq!(refused.reason(), "ClusterAuthorizationFailed", "{refused}");

    let grant = binding(
        &principal,
        AclResourceType::Cluster,
        "kafka-cluster",
        AclPatternType::Literal,
        AclOperation::Describe,
        AclPermission::Allow,
    );
    scram
        .create_acls(std::slice::from_ref(&grant))
        .await
        .unwrap()[0]
        .1
        .as_ref()
        .unwrap();
    let seen = eventually("the mTLS principal describes its grant", || async {
        acls_of(&mtls, &principal).await
    })
    .await;
    assert_eq!(seen, BTreeSet::from([grant.clone()]));

    scram.delete_acls(&[grant.to_filter()]).await.unwrap()[0]
        .1
        .as_ref()
        .unwrap();
    assert_eq!(requests(&registry, "describe_cluster", "success"), 1);
    assert!(requests(&registry, "describe_acls", "error") >= 1);
    assert!(requests(&registry, "describe_acls", "success") >= 1);
}

// -------------------------------------------------------------------------------------------
// SCRAM credentials
// -------------------------------------------------------------------------------------------

/// A client-level error: its code, if any, and text.
type ClientError = (Option<RDKafkaErrorCode>, String);

/// Records the client-level errors librdkafka reports (they never surface as call results).
#[derive(Clone, Default)]
struct ErrorRecorder(Arc<Mutex<Vec<ClientError>>>);

impl ClientContext for ErrorRecorder {
    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        self.0
            .lock()
            .unwrap()
            .push((code, format!("{error}: {reason}")));
    }
}

impl ProducerContext for ErrorRecorder {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

#[derive(Debug, PartialEq, Eq)]
enum Login {
    Accepted,
    Refused(String),
}

/// Logs in over SASL_SSL SCRAM-SHA-512 with a fresh client: `Accepted` once the broker serves
/// metadata, `Refused` once librdkafka reports an authentication failure.
fn try_login(config: &ClientConfig) -> Result<Login> {
    let recorder = ErrorRecorder::default();
    let producer: BaseProducer<ErrorRecorder> = config
        .create_with_context(recorder.clone())
        .context("creating an rdkafka client")?;
    let start = Instant::now();
    loop {
        if producer
            .client()
            .fetch_metadata(None, Duration::from_millis(500))
            .is_ok()
        {
            return Ok(Login::Accepted);
        }
        producer.poll(Duration::from_millis(100));
        let errors = recorder.0.lock().unwrap().clone();
        if let Some((_, text)) = errors
            .iter()
            .find(|(code, _)| *code == Some(RDKafkaErrorCode::Authentication))
        {
            return Ok(Login::Refused(text.clone()));
        }
        if start.elapsed() > DEADLINE {
            bail!("neither served nor refused within {DEADLINE:?}; errors: {errors:?}");
        }
    }
}

/// Logs in until the outcome is the wanted kind (SCRAM changes reach the brokers through the
/// metadata log: quickly, not instantly).
async fn login_until(env: &TestEnv, user: &str, password: &str, accepted: bool) -> Login {
    let config = env.kafka_scram(user, password);
    eventually(&format!("login of {user} accepted={accepted}"), || {
        let config = config.clone();
        async move {
            let login = tokio::task::spawn_blocking(move || try_login(&config))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            if matches!(login, Login::Accepted) == accepted {
                Ok(login)
            } else {
                Err(format!("{login:?}"))
            }
        }
    })
    .await
}

fn upsert(user: &str, password: &str) -> ScramUpsertion {
    ScramUpsertion {
        user: user.to_string(),
        mechanism: ScramMechanism::Sha512,
        iterations: 4096,
        password: password.as_bytes().to_vec(),
        salt: format!("salt-of-{user}").into_bytes(),
    }
}

#[tokio::test]
async fn scram_upsert_lets_the_user_log_in_and_delete_locks_them_out() {
    let env = env();
    let (admin, registry) = scram_admin(&env);
    let (alice, bob) = (unique("alice"), unique("bob"));
    let (alice_pw, bob_pw) = ("alice-Secret-1", "bob-Secret-2");

    // Two users in one request.
    let altered = admin
        .alter_user_scram_credentials(vec![
            ScramAlteration::Upsert(upsert(&alice, alice_pw)),
            ScramAlteration::Upsert(ScramUpsertion {
                iterations: 8192,
                ..upsert(&bob, bob_pw)
            }),
        ])
        .await
        .unwrap();
    let users: Vec<&str> = altered.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(users, [alice.as_str(), bob.as_str()]);
    assert!(altered.iter().all(|(_, r)| r.is_ok()), "{altered:?}");

    let described = eventually("both credentials are described", || async {
        let users = [alice.clone(), bob.clone()];
        let r = admin
            .describe_user_scram_credentials(Some(&users[..]))
            .await
            .map_err(|e| e.to_string())?;
        if r.iter().all(|(_, c)| c.is_ok()) {
            Ok(r)
        } else {
            Err(format!("{r:?}"))
        }
    })
    .await;
    let by_user: BTreeMap<String, Vec<ScramCredentialInfo>> = described
        .into_iter()
        .map(|(u, r)| (u, r.unwrap()))
        .collect();
    let info = |iterations| {
        vec![ScramCredentialInfo {
            mechanism: ScramMechanism::Sha512,
            iterations,
        }]
    };
    assert_eq!(by_user[&alice], info(4096));
    assert_eq!(by_user[&bob], info(8192));
    // "Every user" includes them too.
    let all = admin.describe_user_scram_credentials(None).await.unwrap();
    assert!(
        all.iter()
            .any(|(u, r)| *u == alice && r.as_ref().is_ok_and(|c| *c == info(4096))),
        "{all:?}"
    );

    // A real client logs in with the password; a wrong one is refused.
    assert_eq!(
        login_until(&env, &alice, alice_pw, true).await,
        Login::Accepted
    );
    let Login::Refused(why) = login_until(&env, &alice, "not-alices-password", false).await else {
        unreachable!()
    };
    assert!(why.contains("SCRAM-SHA-512"), "{why}");

    // Delete alice's credential: describe says it is gone, and she can no longer log in.
    admin
        .delete_scram_credential(&alice, ScramMechanism::Sha512)
        .await
        .unwrap();
    let gone = eventually("alice's credential is gone", || async {
        let users = [alice.clone()];
        let r = admin
            .describe_user_scram_credentials(Some(&users[..]))
            .await
            .map_err(|e| e.to_string())?;
        match &r[0].1 {
            Err(e) if e.reason() == "ResourceNotFound" => Ok(e.to_string()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(gone.contains("RESOURCE_NOT_FOUND"), "{gone}");
    login_until(&env, &alice, alice_pw, false).await;
    // Bob, untouched, still logs in; then clean up.
    assert_eq!(login_until(&env, &bob, bob_pw, true).await, Login::Accepted);
    admin
        .delete_scram_credential(&bob, ScramMechanism::Sha512)
        .await
        .unwrap();

    assert_eq!(
        requests(&registry, "alter_user_scram_credentials", "success"),
        3
    );
    assert!(requests(&registry, "describe_user_scram_credentials", "success") >= 2);
}

#[tokio::test]
async fn scram_alterations_refused_per_user_leave_the_others_applied() {
    let env = env();
    let (admin, registry) = scram_admin(&env);
    let (good, weak) = (unique("good"), unique("weak"));
    let altered = admin
        .alter_user_scram_credentials(vec![
            ScramAlteration::Upsert(upsert(&good, "good-Secret-3")),
            // Kafka's minimum for SCRAM-SHA-512 is 4096 iterations.
            ScramAlteration::Upsert(ScramUpsertion {
                iterations: 1000,
                ..upsert(&weak, "weak-Secret-4")
            }),
            // Refused by the client before sending: no salt.
            ScramAlteration::Upsert(ScramUpsertion {
                salt: Vec::new(),
                ..upsert(&unique("nosalt"), "x")
            }),
        ])
        .await
        .unwrap();
    altered[0].1.as_ref().unwrap();
    let err = altered[1].1.as_ref().unwrap_err();
    assert_eq!(err.reason(), "UnacceptableCredential", "{err}");
    assert_eq!(
        kafka_code(err).1,
        "Too few iterations",
        "Kafka's own message"
    );
    assert_eq!(altered[2].1.as_ref().unwrap_err().reason(), "InvalidArg");

    assert_eq!(
        login_until(&env, &good, "good-Secret-3", true).await,
        Login::Accepted
    );
    admin
        .delete_scram_credential(&good, ScramMechanism::Sha512)
        .await
        .unwrap();
    assert_eq!(
        requests(&registry, "alter_user_scram_credentials", "error"),
        1
    );
    assert_eq!(
        requests(&registry, "alter_user_scram_credentials", "success"),
        1
    );
}

#[tokio::test]
async fn a_refused_login_is_named_in_the_timeout_of_every_call() {
    let env = env();
    let mut connection = scram_connection(&env);
    connection.sasl.as_mut().unwrap().password = "not-the-admin-password".into();
    let registry = Registry::new();
    let admin = KafkaAdmin::new(&connection, &registry, Duration::from_secs(5)).unwrap();
    // librdkafka only says "timed out waiting for the controller"; the reason is in its client
    // errors, and it reports a repeated error once, so the second call must still find it.
    let first = admin.describe_cluster().await.unwrap_err();
    let second = admin
        .create_topics(&[NewTopicSpec {
            name: unique("never"),
            ..Default::default()
        }])
        .await
        .unwrap_err();
    for err in [&first, &second] {
        assert_eq!(err.reason(), "Authentication", "{err}");
        let (name, message) = kafka_code(err);
        assert_eq!(name, "_AUTHENTICATION");
        assert!(message.contains("Timed out"), "{message}");
        assert!(message.contains("SASL authentication error"), "{message}");
        assert!(message.contains("SCRAM-SHA-512"), "{message}");
    }
    assert!(
        matches!(second, AdminError::CreateTopics { .. }),
        "{second:?}"
    );
    assert_eq!(requests(&registry, "describe_cluster", "error"), 1);
    assert_eq!(requests(&registry, "create_topics", "error"), 1);
}

// -------------------------------------------------------------------------------------------
// Broker registrations
// -------------------------------------------------------------------------------------------

/// Kafka 4.1.2 (KRaft) answers UnregisterBroker of an id it holds no registration for with
/// BROKER_ID_NOT_REGISTERED (102) and the message "Broker ID <id> is not currently registered":
/// the controller's `ReplicationControlManager.unregisterBroker` throws
/// `BrokerIdNotRegisteredException` when the id has no registration, and the broker that received
/// the request forwards the controller's code and message unchanged. Asking again gets the same
/// answer, so the call is safe to repeat. The live broker is not asked: unregistering a live
/// broker fences it, which would take the shared testbed's only broker away.
#[tokio::test]
async fn unregistering_a_never_registered_broker_id_is_broker_id_not_registered() {
    let env = env();
    let (admin, registry) = scram_admin(&env);
    let before = admin.describe_cluster().await.unwrap();
    let never_registered = [4242, 4242, -1];
    for id in never_registered {
        assert!(!before.broker_ids.contains(&id), "{before:?}");
        let err = admin.unregister_broker(id).await.unwrap_err();
        assert!(
            matches!(err, AdminError::UnregisterBroker { .. }),
            "{id}: {err:?}"
        );
        assert_eq!(err.reason(), "BrokerIdNotRegistered", "{id}");
        let failure = err.kafka_failure().unwrap();
        assert_eq!(failure.code, 102, "{id}");
        assert!(failure.is_broker_id_not_registered(), "{id}");
        assert_eq!(
            kafka_code(&err),
            (
                "BROKER_ID_NOT_REGISTERED",
                format!("Broker ID {id} is not currently registered").as_str()
            ),
            "{id}"
        );
    }
    // The live brokers are untouched.
    let after = admin.describe_cluster().await.unwrap();
    assert_eq!(after.broker_ids, before.broker_ids);
    assert_eq!(
        requests(&registry, "unregister_broker", "error"),
        never_registered.len() as u64
    );
    assert_eq!(requests(&registry, "unregister_broker", "success"), 0);
}

/// Unregistering needs Alter on the cluster: the controller refuses a principal without it
/// before it looks the id up (CLUSTER_AUTHORIZATION_FAILED, 31, not BROKER_ID_NOT_REGISTERED).
#[tokio::test]
async fn unregister_broker_without_alter_on_the_cluster_is_cluster_authorization_failed() {
    let env = env();
    let (mtls, registry, _tmp) = mtls_admin(&env, &unique("unreg"));

    let err = mtls.unregister_broker(4242).await.unwrap_err();
    assert!(
        matches!(err, AdminError::UnregisterBroker { .. }),
        "{err:?}"
    );
    assert_eq!(err.reason(), "ClusterAuthorizationFailed", "{err}");
    let failure = err.kafka_failure().unwrap();
    assert_eq!(failure.code, 31, "{err}");
    // Kafka's message names the forwarded request (connection ids that change every run), then
    // what is missing.
    assert!(
        failure.message.ends_with("needs ALTER permission."),
        "{failure:?}"
    );
    assert_eq!(requests(&registry, "unregister_broker", "error"), 1);
}

/// DescribeQuorum, spoken directly (librdkafka has no call for it), reaches the active
/// controller through any broker: the testbed's nodes are combined broker-controllers, so the
/// voters are exactly the brokers, the leader is one of them, and no broker is an observer.
/// DescribeCluster version 2 with the fenced brokers lists the same registrations, all
/// unfenced, as librdkafka's DescribeCluster lists the live brokers.
#[tokio::test]
async fn the_metadata_quorum_and_the_registered_brokers_match_the_live_cluster() {
    let env = env();
    let (admin, registry) = scram_admin(&env);
    let cluster = admin.describe_cluster().await.unwrap();
    let mut brokers = cluster.broker_ids.clone();
    brokers.sort_unstable();
    assert!(!brokers.is_empty(), "{cluster:?}");

    let quorum = admin.describe_quorum().await.unwrap();
    assert_eq!(quorum.voters, brokers, "{quorum:?}");
    let leader = quorum
        .leader_id
        .expect("a settled testbed has an active controller");
    assert!(brokers.contains(&leader), "{quorum:?}");
    assert!(quorum.leader_epoch >= 1, "{quorum:?}");
    assert!(
        quorum.observers.iter().all(|o| !brokers.contains(o)),
        "{quorum:?}"
    );

    let registered = admin.registered_brokers().await.unwrap();
    let ids: Vec<i32> = registered.iter().map(|b| b.id).collect();
    assert_eq!(ids, brokers, "{registered:?}");
    assert!(registered.iter().all(|b| !b.fenced), "{registered:?}");

    assert_eq!(requests(&registry, "describe_quorum", "success"), 1);
    // Both DescribeCluster calls (librdkafka's and the direct one) count under Kafka's API name.
    assert_eq!(requests(&registry, "describe_cluster", "success"), 2);
}

/// Describing the quorum needs Describe on the cluster: a principal with no ACLs is refused
/// with CLUSTER_AUTHORIZATION_FAILED, reported as Kafka sent it.
#[tokio::test]
async fn describe_quorum_without_describe_on_the_cluster_is_cluster_authorization_failed() {
    let env = env();
    let (mtls, registry, _tmp) = mtls_admin(&env, &unique("quorum"));
    let err = mtls.describe_quorum().await.unwrap_err();
    assert!(matches!(err, AdminError::DescribeQuorum { .. }), "{err:?}");
    assert_eq!(err.reason(), "ClusterAuthorizationFailed", "{err}");
    assert_eq!(err.kafka_failure().unwrap().code, 31, "{err}");
    assert_eq!(requests(&registry, "describe_quorum", "error"), 1);
}
