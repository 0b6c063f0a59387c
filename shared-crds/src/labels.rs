//! The label and annotation keys Oxbow reads and writes, the finalizer name, and the standard label
//! set of generated objects. Strimzi's `strimzi.io/` keys become `oxbow.rs/`. Pure: no I/O.

use std::collections::BTreeMap;

/// Label on KafkaNodePool, KafkaTopic and KafkaUser resources naming the Kafka cluster they belong
/// to; also set on every object Oxbow generates for a cluster.
pub const CLUSTER: &str = "oxbow.rs/cluster";
/// Label on generated objects: the kind of the resource that caused them (`Kafka`, ...).
pub const KIND: &str = "oxbow.rs/kind";
/// Label on generated objects: the name of the component, e.g. `my-cluster-kafka`.
pub const NAME: &str = "oxbow.rs/name";
/// Label on Kafka node pods: the KafkaNodePool they belong to.
pub const POOL_NAME: &str = "oxbow.rs/pool-name";
/// Label on Kafka node pods: `"true"` when the node is a broker.
pub const BROKER_ROLE: &str = "oxbow.rs/broker-role";
/// Label on Kafka node pods: `"true"` when the node is a KRaft controller.
pub const CONTROLLER_ROLE: &str = "oxbow.rs/controller-role";
/// Label on the objects Oxbow generates for a cluster in a namespace other than the cluster's
/// (the topic and user operators' Role and RoleBinding in the namespace they watch): the
/// namespace of the Kafka resource. Owner references cannot cross namespaces, so this label,
/// with [`CLUSTER`], is how those objects are found again and deleted. A namespace name is a
/// DNS label, so it is always a valid label value.
pub const CLUSTER_NAMESPACE: &str = "oxbow.rs/cluster-namespace";

/// Annotation on a KafkaTopic: `"false"` stops the topic operator from changing (or deleting)
/// the Kafka topic; the resource is then only a record.
pub const MANAGED: &str = "oxbow.rs/managed";
/// Annotation on any Oxbow resource: `"true"` pauses its reconciliation.
pub const PAUSE_RECONCILIATION: &str = "oxbow.rs/pause-reconciliation";
/// Annotation on a CA Secret: `"true"` asks for the CA certificate to be renewed now.
pub const FORCE_RENEW: &str = "oxbow.rs/force-renew";
/// Annotation on a Kafka node pod (or a KafkaNodePool): `"true"` asks for a rolling restart.
pub const MANUAL_ROLLING_UPDATE: &str = "oxbow.rs/manual-rolling-update";
/// Annotation on a Kafka resource: `"true"` lets brokers be removed although they still hold
/// partition replicas.
pub const SKIP_BROKER_SCALEDOWN_CHECK: &str = "oxbow.rs/skip-broker-scaledown-check";
/// Annotation on a KafkaNodePool: node IDs (e.g. `[10-12]`) to use first when scaling up.
pub const NEXT_NODE_IDS: &str = "oxbow.rs/next-node-ids";
/// Annotation on a KafkaNodePool: node IDs to remove first when scaling down.
pub const REMOVE_NODE_IDS: &str = "oxbow.rs/remove-node-ids";

/// Standard label: the application, always [`APP_NAME_VALUE`].
pub const APP_NAME: &str = "app.kubernetes.io/name";
/// Standard label: the instance, the Kafka cluster's name.
pub const APP_INSTANCE: &str = "app.kubernetes.io/instance";
/// Standard label: the component within the application (`kafka`, `topic-operator`, ...).
pub const APP_COMPONENT: &str = "app.kubernetes.io/component";
/// Standard label: the larger application this is part of, `oxbow-<cluster>`.
pub const APP_PART_OF: &str = "app.kubernetes.io/part-of";
/// Standard label: the tool managing the object, always [`APP_MANAGED_BY_VALUE`].
pub const APP_MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Value of [`APP_NAME`] on every object Oxbow generates.
pub const APP_NAME_VALUE: &str = "kafka";
/// Value of [`APP_MANAGED_BY`] on every object Oxbow generates.
pub const APP_MANAGED_BY_VALUE: &str = "oxbow-cluster-operator";

/// Finalizer the topic operator puts on KafkaTopics, so the Kafka topic is deleted before the
/// resource goes away.
pub const TOPIC_FINALIZER: &str = "kafka.oxbow.rs/topic-operator";

/// Finalizer the cluster operator puts on a Kafka while it has objects of the cluster in other
/// namespaces (labelled [`CLUSTER_NAMESPACE`]), so that they are deleted before the Kafka goes
/// away.
pub const CLUSTER_FINALIZER: &str = "kafka.oxbow.rs/cluster-operator";

/// The labels every object generated for cluster `cluster` by a resource of kind `kind` carries,
/// with `component` naming the part (e.g. `kafka`) and `name` the object group (e.g.
/// `my-cluster-kafka`).
pub fn standard_labels(
    cluster: &str,
    kind: &str,
    component: &str,
    name: &str,
) -> BTreeMap<String, String> {
    [
        (CLUSTER, cluster.to_string()),
        (KIND, kind.to_string()),
        (NAME, name.to_string()),
        (APP_NAME, APP_NAME_VALUE.to_string()),
        (APP_INSTANCE, cluster.to_string()),
        (APP_COMPONENT, component.to_string()),
        (APP_PART_OF, format!("oxbow-{cluster}")),
        (APP_MANAGED_BY, APP_MANAGED_BY_VALUE.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// True when the annotation `key` is present with the value `"true"` (case-insensitive, as
/// users write `True` too).
pub fn annotation_is_true(annotations: Option<&BTreeMap<String, String>>, key: &str) -> bool {
    annotations
        .and_then(|a| a.get(key))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oxbow_keys_use_the_oxbow_prefix() {
        for key in [
            CLUSTER,
            KIND,
            NAME,
            POOL_NAME,
            BROKER_ROLE,
            CONTROLLER_ROLE,
            CLUSTER_NAMESPACE,
            MANAGED,
            PAUSE_RECONCILIATION,
            FORCE_RENEW,
            MANUAL_ROLLING_UPDATE,
            SKIP_BROKER_SCALEDOWN_CHECK,
            NEXT_NODE_IDS,
            REMOVE_NODE_IDS,
        ] {
            assert!(key.starts_with("oxbow.rs/"), "{key}");
        }
    }

    #[test]
    fn standard_labels_name_cluster_kind_and_component() {
        let labels = standard_labels("my-cluster", "Kafka", "kafka", "my-cluster-kafka");
        assert_eq!(labels[CLUSTER], "my-cluster");
        assert_eq!(labels[KIND], "Kafka");
        assert_eq!(labels[NAME], "my-cluster-kafka");
        assert_eq!(labels[APP_INSTANCE], "my-cluster");
        assert_eq!(labels[APP_COMPONENT], "kafka");
        assert_eq!(labels[APP_PART_OF], "oxbow-my-cluster");
        assert_eq!(labels[APP_MANAGED_BY], APP_MANAGED_BY_VALUE);
        assert_eq!(labels.len(), 8);
    }

    #[test]
    fn annotation_truth() {
        let mut a = BTreeMap::new();
        assert!(!annotation_is_true(None, PAUSE_RECONCILIATION));
        assert!(!annotation_is_true(Some(&a), PAUSE_RECONCILIATION));
        a.insert(PAUSE_RECONCILIATION.to_string(), "True".to_string());
        assert!(annotation_is_true(Some(&a), PAUSE_RECONCILIATION));
        a.insert(PAUSE_RECONCILIATION.to_string(), "false".to_string());
        assert!(!annotation_is_true(Some(&a), PAUSE_RECONCILIATION));
    }
}
