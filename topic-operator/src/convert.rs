//! Conversions between the `KafkaTopic` resource and the planner's [`TopicState`], and the
//! applied objects the operator writes for Kafka-side changes. Pure: no I/O.

use std::collections::BTreeMap;

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

/// The whole spec after applying `update` to the current resource, as a server-side-apply
/// patch body. The whole spec is applied (not only the changed fields) so that the operator's
/// field ownership never drops a field it applied before.
pub fn spec_update_patch(kt: &KafkaTopic, update: &SpecUpdate) -> Value {
    let mut spec = serde_json::Map::new();
    if let Some(name) = &kt.spec.topic_name {
        spec.insert("topicName".into(), json!(name));
    }
    if let Some(p) = update.partitions.or(kt.spec.partitions) {
        spec.insert("partitions".into(), json!(p));
    }
    if let Some(r) = update.replicas.map(i32::from).or(kt.spec.replicas) {
        spec.insert("replicas".into(), json!(r));
    }
    let current = kt.spec.config.clone().unwrap_or_default();
    let config: BTreeMap<String, Value> = match &update.config {
        Some(new) => new
            .iter()
            .map(|(k, v)| (k.clone(), config_json(current.get(k), v)))
            .collect(),
        None => current,
    };
    if !config.is_empty() {
        spec.insert("config".into(), json!(config));
    }
    json!({
        "apiVersion": shared_crds::API_VERSION,
        "kind": "KafkaTopic",
        "metadata": { "name": kt.metadata.name, "namespace": kt.metadata.namespace },
        "spec": spec,
    })
}

/// A new `KafkaTopic` for a topic found in Kafka: named by [`kube_name_for_topic`], with
/// `spec.topicName` whenever the resource name differs from the topic name.
pub fn new_topic_resource(namespace: &str, cluster: &str, topic: &str, state: &TopicState) -> (String, Value) {
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
    fn spec_update_keeps_value_types_and_undeclared_fields() {
        let kt = topic(ORDERS);
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
        assert_eq!(patch["spec"]["partitions"], json!(6));
        assert_eq!(patch["spec"]["replicas"], json!(1), "unchanged fields are still applied");
        assert_eq!(patch["spec"]["config"]["retention.ms"], json!(3600000), "stays a number");
        assert_eq!(patch["spec"]["config"]["segment.bytes"], json!("1048576"), "new keys are strings");
        assert_eq!(patch["spec"]["config"]["unclean.leader.election.enable"], json!(false));
        assert!(patch["spec"]["config"].get("cleanup.policy").is_none());
        assert!(patch["spec"].get("topicName").is_none());
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
        assert_eq!(body["metadata"]["labels"]["oxbow.rs/cluster"], json!("my-cluster"));
        let (name, body) = new_topic_resource("kafka", "my-cluster", "orders", &state);
        assert_eq!(name, "orders");
        assert!(body["spec"].get("topicName").is_none());
        // The body is a valid KafkaTopic.
        let kt: KafkaTopic = serde_json::from_value(body).unwrap();
        assert_eq!(kube_state(&kt).config["retention.ms"], "1000");
    }

    #[test]
    fn annotations_choose_the_handling() {
        let mut kt = topic(ORDERS);
        assert_eq!(handling(&kt), Handling::Managed);
        kt.metadata.annotations = Some([("oxbow.rs/managed".to_string(), "false".to_string())].into());
        assert_eq!(handling(&kt), Handling::Unmanaged);
        kt.metadata.annotations =
            Some([("oxbow.rs/pause-reconciliation".to_string(), "true".to_string())].into());
        assert_eq!(handling(&kt), Handling::Paused);
    }
}
