//! Conversions between the `KafkaTopic` resource and the planner's [`TopicState`], and the
//! objects and patches the operator writes for Kafka-side changes. Pure: no I/O.

use serde_json::{Value, json};
use shared_crds::{
    KafkaTopic,
    labels::{self, annotation_is_true},
};

use crate::plan::{SpecUpdate, TopicState, kube_name_for_topic};

/// How the operator treats one `KafkaTopic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// Synced by the 3-way merge.
    Managed,
    /// `oxbow.rs/managed: "false"`: never synced; deleting it keeps the topic.
    Unmanaged,
    /// `oxbow.rs/pause-reconciliation: "true"`: not synced while paused; deleting it keeps the
    /// topic (pausing promises that nothing is done to the topic).
    Paused,
}

/// The handling the resource's annotations ask for.
pub fn handling(kt: &KafkaTopic) -> Handling {
    let annotations = kt.metadata.annotations.as_ref();
    if annotations
        .and_then(|a| a.get(labels::MANAGED))
        .is_some_and(|v| v.eq_ignore_ascii_case("false"))
    {
        Handling::Unmanaged
    } else if annotation_is_true(annotations, labels::PAUSE_RECONCILIATION) {
        Handling::Paused
    } else {
        Handling::Managed
    }
}

/// What the operator keeps of a watched `KafkaTopic`: everything it reads, without what it
/// never reads (managedFields, labels, and annotations other than its own, such as kubectl's
/// `last-applied-configuration`, a copy of the whole object). At 10,000 topics the kept copies
/// are the largest part of the heap, so every byte counts.
pub fn slim(kt: &mut KafkaTopic) {
    let meta = &mut kt.metadata;
    meta.managed_fields = None;
    meta.labels = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.retain(|k, _| k == labels::MANAGED || k == labels::PAUSE_RECONCILIATION);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// Kafka's spelling of a config value written in the resource as a string, number or boolean.
pub fn config_value_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The Kubernetes side of a topic, as the planner sees it. Out-of-range replicas (the schema
/// caps them at 32767) saturate rather than wrap.
pub fn kube_state(kt: &KafkaTopic) -> TopicState {
    TopicState {
        topic_id: None,
        partitions: kt.spec.partitions,
        replicas: kt.spec.replicas.map(|r| r.clamp(1, i16::MAX as i32) as i16),
        config: kt
            .spec
            .config
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), config_value_string(v)))
            .collect(),
    }
}

/// A config value as JSON, keeping the type the user wrote for the key when the new value still
/// fits it (so `retention.ms: 7200000` stays a number), else a string.
fn config_json(previous: Option<&Value>, value: &str) -> Value {
    match previous {
        Some(Value::Number(_)) => value
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| value.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(value.to_owned())),
        Some(Value::Bool(_)) => value
            .parse::<bool>()
            .map(Value::Bool)
            .unwrap_or_else(|_| Value::String(value.to_owned())),
        _ => Value::String(value.to_owned()),
    }
}

/// A JSON merge patch (RFC 7386) bringing the spec to `update`: only the changed fields, with
/// `null` for config keys to remove, and the resource version it was computed from.
///
/// Not server-side apply, on purpose. With apply, a field stays as long as any manager owns
/// it: a config key the user wrote (and so co-owns) could never be removed by the operator
/// when it was removed in Kafka, and every field the operator applied once (its own labels on
/// resources it created) would be deleted by a later apply that leaves it out. The resource
/// version makes the write fail with a conflict, rather than overwrite, when the user changed
/// the resource since it was read; the next pass then decides again on fresh data.
pub fn spec_update_patch(kt: &KafkaTopic, update: &SpecUpdate) -> Value {
    let mut spec = serde_json::Map::new();
    if let Some(p) = update.partitions.filter(|p| kt.spec.partitions != Some(*p)) {
        spec.insert("partitions".into(), json!(p));
    }
    if let Some(r) = update
        .replicas
        .map(i32::from)
        .filter(|r| kt.spec.replicas != Some(*r))
    {
        spec.insert("replicas".into(), json!(r));
    }
    if let Some(new) = &update.config {
        let current = kt.spec.config.clone().unwrap_or_default();
        if new.is_empty() && !current.is_empty() {
            spec.insert("config".into(), Value::Null);
        } else {
            let mut changes = serde_json::Map::new();
            for (key, value) in new {
                let previous = current.get(key);
                if previous.map(config_value_string).as_deref() != Some(value.as_str()) {
                    changes.insert(key.clone(), config_json(previous, value));
                }
            }
            for key in current.keys().filter(|k| !new.contains_key(k)) {
                changes.insert(key.clone(), Value::Null);
            }
            if !changes.is_empty() {
                spec.insert("config".into(), Value::Object(changes));
            }
        }
    }
    json!({
        "metadata": { "resourceVersion": kt.metadata.resource_version },
        "spec": spec,
    })
}

/// A new `KafkaTopic` for a topic found in Kafka: named by [`kube_name_for_topic`], with
/// `spec.topicName` whenever the resource name differs from the topic name.
pub fn new_topic_resource(
    namespace: &str,
    cluster: &str,
    topic: &str,
    state: &TopicState,
) -> (String, Value) {
    let name = kube_name_for_topic(topic);
    let mut spec = serde_json::Map::new();
    if name != topic {
        spec.insert("topicName".into(), json!(topic));
    }
    if let Some(p) = state.partitions {
        spec.insert("partitions".into(), json!(p));
    }
    if let Some(r) = state.replicas {
        spec.insert("replicas".into(), json!(r));
    }
    if !state.config.is_empty() {
        spec.insert("config".into(), json!(state.config));
    }
    let body = json!({
        "apiVersion": shared_crds::API_VERSION,
        "kind": "KafkaTopic",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": { labels::CLUSTER: cluster },
            // Born guarded: the topic exists already, so deleting the resource must delete it.
            "finalizers": [labels::TOPIC_FINALIZER],
        },
        "spec": spec,
    });
    (name, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(yaml: &str) -> KafkaTopic {
        serde_yaml::from_str(yaml).unwrap()
    }

    const ORDERS: &str = r#"
apiVersion: kafka.oxbow.rs/v1beta1
kind: KafkaTopic
metadata:
  name: orders
  namespace: kafka
  labels: { oxbow.rs/cluster: my-cluster }
spec:
  partitions: 3
  replicas: 1
  config:
    retention.ms: 7200000
    cleanup.policy: delete
    unclean.leader.election.enable: false
"#;

    #[test]
    fn kube_state_reads_numbers_and_booleans_as_kafka_prints_them() {
        let s = kube_state(&topic(ORDERS));
        assert_eq!(s.partitions, Some(3));
        assert_eq!(s.replicas, Some(1));
        assert_eq!(s.config["retention.ms"], "7200000");
        assert_eq!(s.config["unclean.leader.election.enable"], "false");
        assert_eq!(s.config["cleanup.policy"], "delete");
    }

    #[test]
    fn spec_update_is_a_merge_patch_of_the_changes_only() {
        let mut kt = topic(ORDERS);
        kt.metadata.resource_version = Some("42".into());
        let mut config = kube_state(&kt).config;
        config.insert("retention.ms".into(), "3600000".into());
        config.remove("cleanup.policy");
        config.insert("segment.bytes".into(), "1048576".into());
        let patch = spec_update_patch(
            &kt,
            &SpecUpdate {
                partitions: Some(6),
                replicas: None,
                config: Some(config),
            },
        );
        assert_eq!(
            patch,
            json!({
                "metadata": { "resourceVersion": "42" },
                "spec": {
                    "partitions": 6,
                    "config": {
                        "retention.ms": 3600000,
                        "cleanup.policy": null,
                        "segment.bytes": "1048576",
                    },
                },
            }),
            "changed keys keep their JSON type, new keys are strings, removed keys are null, \
             unchanged fields and keys are left out"
        );
    }

    #[test]
    fn spec_update_removing_every_config_key_removes_the_map() {
        let kt = topic(ORDERS);
        let patch = spec_update_patch(
            &kt,
            &SpecUpdate {
                partitions: None,
                replicas: Some(1),
                config: Some(crate::plan::Configs::new()),
            },
        );
        assert_eq!(
            patch["spec"],
            json!({ "config": null }),
            "replicas unchanged, so absent"
        );
    }

    #[test]
    fn resources_for_kafka_topics_keep_the_real_name_when_sanitised() {
        let state = TopicState {
            topic_id: Some("abc".into()),
            partitions: Some(2),
            replicas: Some(1),
            config: [("retention.ms".to_string(), "1000".to_string())].into(),
        };
        let (name, body) = new_topic_resource("kafka", "my-cluster", "Orders_EU", &state);
        assert_ne!(name, "Orders_EU");
        assert_eq!(body["metadata"]["name"], json!(name));
        assert_eq!(body["spec"]["topicName"], json!("Orders_EU"));
        assert_eq!(
            body["metadata"]["labels"]["oxbow.rs/cluster"],
            json!("my-cluster")
        );
        assert_eq!(
            body["metadata"]["finalizers"],
            json!([labels::TOPIC_FINALIZER])
        );
        let (name, body) = new_topic_resource("kafka", "my-cluster", "orders", &state);
        assert_eq!(name, "orders");
        assert!(body["spec"].get("topicName").is_none());
        // The body is a valid KafkaTopic.
        let kt: KafkaTopic = serde_json::from_value(body).unwrap();
        assert_eq!(kube_state(&kt).config["retention.ms"], "1000");
    }

    #[test]
    fn slimming_keeps_what_the_operator_reads_and_nothing_else() {
        let mut kt: KafkaTopic = serde_yaml::from_str(
            r#"
apiVersion: kafka.oxbow.rs/v1
kind: KafkaTopic
metadata:
  name: orders
  namespace: shop
  uid: 0b5a7f36-1c1e-4c59-9d07-2b1f3b7a4c11
  generation: 3
  labels: {oxbow.rs/cluster: my-cluster}
  annotations:
    oxbow.rs/pause-reconciliation: "true"
    kubectl.kubernetes.io/last-applied-configuration: '{"apiVersion":"kafka.oxbow.rs/v1"}'
  finalizers: [kafka.oxbow.rs/topic-operator]
  managedFields: [{manager: kubectl, operation: Update}]
spec:
  partitions: 3
  config: {retention.ms: 7200000}
"#,
        )
        .unwrap();
        let before = (
            kube_state(&kt),
            handling(&kt),
            kt.spec.clone(),
            kt.status.clone(),
        );
        slim(&mut kt);
        assert_eq!(kt.metadata.managed_fields, None);
        assert_eq!(kt.metadata.labels, None);
        assert_eq!(
            kt.metadata
                .annotations
                .as_ref()
                .map(|a| a.keys().cloned().collect::<Vec<_>>()),
            Some(vec![labels::PAUSE_RECONCILIATION.to_string()])
        );
        assert_eq!(
            (
                kube_state(&kt),
                handling(&kt),
                kt.spec.clone(),
                kt.status.clone()
            ),
            before
        );
        assert_eq!(
            kt.metadata.finalizers,
            Some(vec![labels::TOPIC_FINALIZER.to_string()])
        );
        assert_eq!(kt.metadata.generation, Some(3));

        kt.metadata.annotations = Some([("team".to_string(), "a".to_string())].into());
        slim(&mut kt);
        assert_eq!(kt.metadata.annotations, None);
    }

    #[test]
    fn annotations_choose_the_handling() {
        let mut kt = topic(ORDERS);
        assert_eq!(handling(&kt), Handling::Managed);
        kt.metadata.annotations =
            Some([("oxbow.rs/managed".to_string(), "false".to_string())].into());
        assert_eq!(handling(&kt), Handling::Unmanaged);
        kt.metadata.annotations = Some(
            [(
                "oxbow.rs/pause-reconciliation".to_string(),
                "true".to_string(),
            )]
            .into(),
        );
        assert_eq!(handling(&kt), Handling::Paused);
    }
}
