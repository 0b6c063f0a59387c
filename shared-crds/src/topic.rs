//! The `KafkaTopic` custom resource: one Kafka topic of the cluster named by the resource's
//! `oxbow.rs/cluster` label, and its status. Pure: no I/O.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::free_form_object;
use crate::condition::Condition;
use crate::sorted_map::SortedMap;

/// The desired state of a Kafka topic.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "kafka.oxbow.rs",
    version = "v1beta1",
    kind = "KafkaTopic",
    plural = "kafkatopics",
    namespaced,
    status = "KafkaTopicStatus",
    shortname = "kt",
    category = "oxbow",
    derive = "PartialEq",
    doc = "A Kafka topic of the Kafka cluster named by the `oxbow.rs/cluster` label.",
    // The topic name is `spec.topicName`, or `metadata.name` when that is absent; a rename would
    // silently point the resource at another topic, so the effective name may never change.
    validation = kube::core::Rule::new(
        "(has(self.spec.topicName) ? self.spec.topicName : self.metadata.name) == (has(oldSelf.spec.topicName) ? oldSelf.spec.topicName : oldSelf.metadata.name)"
    )
    .message("spec.topicName cannot be changed: the topic name (spec.topicName, else metadata.name) is fixed once the KafkaTopic exists")
    .field_path(".spec.topicName"),
    printcolumn(
        name = "Cluster",
        type_ = "string",
        description = "The Kafka cluster the topic belongs to",
        json_path = r".metadata.labels.oxbow\.rs/cluster"
    ),
    printcolumn(
        name = "Partitions",
        type_ = "integer",
        description = "The desired number of partitions",
        json_path = ".spec.partitions"
    ),
    printcolumn(
        name = "Replication factor",
        type_ = "integer",
        description = "The desired number of replicas of each partition",
        json_path = ".spec.replicas"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Whether the topic is in sync with Kafka",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopicSpec {
    /// The name of the Kafka topic. Defaults to `metadata.name`; set it only when the topic name
    /// is not a valid Kubernetes name (upper case, underscores). Cannot be changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    pub topic_name: Option<String>,
    /// The number of partitions. Can be increased, never decreased. Defaults to the brokers'
    /// `num.partitions`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub partitions: Option<i32>,
    /// The number of replicas of each partition. Defaults to the brokers'
    /// `default.replication.factor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32767))]
    pub replicas: Option<i32>,
    /// Topic configuration, e.g. `retention.ms: 7200000`. Values may be strings, numbers or
    /// booleans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub config: Option<TopicConfig>,
}

/// A topic's configuration as the resource holds it: the same JSON object as the free-form
/// `ConfigMap` of other resources, kept in a [`SortedMap`] because the topic operator holds one
/// per `KafkaTopic` in its watch cache (10,000 topics: 10,000 maps).
pub type TopicConfig = SortedMap<serde_json::Value>;

/// The observed state of a Kafka topic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopicStatus {
    /// The status conditions; `Ready` says whether Kafka matches the spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// The `metadata.generation` the operator last reconciled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The name of the Kafka topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
    /// The Kafka topic ID; it changes only when the topic is deleted and created again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
}

impl KafkaTopic {
    /// The Kafka topic name: `spec.topicName`, else `metadata.name`.
    pub fn topic_name(&self) -> &str {
        self.spec
            .topic_name
            .as_deref()
            .or(self.metadata.name.as_deref())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, topic_name: Option<&str>) -> KafkaTopic {
        KafkaTopic::new(
            name,
            KafkaTopicSpec {
                topic_name: topic_name.map(String::from),
                partitions: None,
                replicas: None,
                config: None,
            },
        )
    }

    #[test]
    fn topic_name_prefers_the_spec() {
        assert_eq!(topic("orders", None).topic_name(), "orders");
        assert_eq!(topic("orders", Some("Orders_V1")).topic_name(), "Orders_V1");
    }
}
