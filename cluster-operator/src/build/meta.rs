//! Metadata every object the cluster operator writes shares: names, labels, the owner reference
//! to the Kafka resource, selectors, and content revisions. The one place these conventions
//! live, so that the orphan sweep (which deletes by label) and the builders agree. Pure: no I/O.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use ring::digest::{SHA256, digest};
use shared_crds::labels;
use shared_crds::names;

use crate::model::{KafkaNode, ResolvedCluster};

/// API version of the Kafka resource, for owner references.
pub const KAFKA_API_VERSION: &str = "kafka.oxbow.rs/v1beta1";
/// Kind of the Kafka resource, for owner references and the `oxbow.rs/kind` label.
pub const KAFKA_KIND: &str = "Kafka";

/// Pod annotation: revision of the node's `server.properties` the pod runs.
pub const CONFIG_REVISION_ANNOTATION: &str = "oxbow.rs/config-revision";
/// Pod annotation: revision of the node's certificate and trusted CAs the pod runs.
pub const CERTIFICATES_REVISION_ANNOTATION: &str = "oxbow.rs/certificates-revision";
/// Pod annotation: revision of the pod spec without the revision annotations themselves.
pub const POD_TEMPLATE_REVISION_ANNOTATION: &str = "oxbow.rs/pod-template-revision";
/// Annotation on Deployments' pod templates: revision of the operator's certificate Secret,
/// so that a renewed certificate rolls the Deployment.
pub const SECRET_REVISION_ANNOTATION: &str = "oxbow.rs/secret-revision";

/// Component (`app.kubernetes.io/component`) of Kafka nodes and their per-node objects.
pub const KAFKA_COMPONENT: &str = "kafka";
/// Component of the topic operator's objects.
pub const TOPIC_OPERATOR_COMPONENT: &str = "topic-operator";
/// Component of the user operator's objects.
pub const USER_OPERATOR_COMPONENT: &str = "user-operator";
/// Component of the CA Secrets.
pub const CERTIFICATE_AUTHORITY_COMPONENT: &str = "certificate-authority";

/// The owner reference that makes the Kafka resource own an object: deleting the Kafka deletes
/// it. `blockOwnerDeletion` stays false, so the operator needs no rights on the Kafka's
/// finalizers.
pub fn owner_reference(cluster: &ResolvedCluster) -> OwnerReference {
    OwnerReference {
        api_version: KAFKA_API_VERSION.to_owned(),
        kind: KAFKA_KIND.to_owned(),
        name: cluster.name.clone(),
        uid: cluster.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(false),
    }
}

/// Labels of every object of `cluster` with `component` and `name` (`oxbow.rs/name`): the
/// standard set from [`labels::standard_labels`]. `oxbow.rs/cluster` is what the orphan sweep
/// selects on.
pub fn cluster_labels(
    cluster: &ResolvedCluster,
    component: &str,
    name: &str,
) -> BTreeMap<String, String> {
    labels::standard_labels(&cluster.name, KAFKA_KIND, component, name)
}

/// Labels an object of `cluster` carries, besides [`cluster_labels`], when it lives in another
/// namespace (and so cannot be owned by the Kafka): the Kafka's namespace, which the sweep of
/// such objects selects on with `oxbow.rs/cluster` (see `crate::observe::elsewhere_selector`).
pub fn elsewhere_labels(cluster: &ResolvedCluster) -> BTreeMap<String, String> {
    BTreeMap::from([(
        labels::CLUSTER_NAMESPACE.to_owned(),
        cluster.namespace.clone(),
    )])
}

/// Labels of a Kafka node's pod and per-node objects: the cluster labels with
/// `oxbow.rs/name: <c>-kafka`, plus the pool and role labels.
pub fn node_labels(cluster: &ResolvedCluster, node: &KafkaNode) -> BTreeMap<String, String> {
    let mut out = cluster_labels(
        cluster,
        KAFKA_COMPONENT,
        &names::kafka_component(&cluster.name),
    );
    out.insert(labels::POOL_NAME.to_owned(), node.pool.clone());
    out.insert(labels::BROKER_ROLE.to_owned(), node.is_broker().to_string());
    out.insert(
        labels::CONTROLLER_ROLE.to_owned(),
        node.is_controller().to_string(),
    );
    out
}

/// Labels selecting every Kafka node pod of `cluster` (for Services, the PDB and the
/// NetworkPolicy).
pub fn kafka_pods_selector_labels(cluster: &ResolvedCluster) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::CLUSTER.to_owned(), cluster.name.clone()),
        (
            labels::NAME.to_owned(),
            names::kafka_component(&cluster.name),
        ),
    ])
}

/// Labels selecting the broker pods of `cluster` (bootstrap and per-listener Services).
pub fn broker_pods_selector_labels(cluster: &ResolvedCluster) -> BTreeMap<String, String> {
    let mut out = kafka_pods_selector_labels(cluster);
    out.insert(labels::BROKER_ROLE.to_owned(), "true".to_owned());
    out
}

/// Labels selecting the one pod of `node` (`statefulset.kubernetes.io/pod-name` has no
/// equivalent for own pods, so the pod's name is a label too).
pub fn node_pod_selector_labels(
    cluster: &ResolvedCluster,
    node: &KafkaNode,
) -> BTreeMap<String, String> {
    let mut out = kafka_pods_selector_labels(cluster);
    out.insert(
        POD_NAME_LABEL.to_owned(),
        names::kafka_node(&cluster.name, &node.pool, node.id),
    );
    out
}

/// Label carrying a Kafka node pod's own name, for per-node Services.
pub const POD_NAME_LABEL: &str = "oxbow.rs/pod-name";

/// A label selector from `labels` (`matchLabels` only).
pub fn selector(labels: BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels),
        match_expressions: None,
    }
}

/// Metadata of an object of `cluster` in its namespace: name, labels (merged with `extra`
/// labels, which cannot override the standard ones), annotations and the owner reference.
pub fn object_meta(
    cluster: &ResolvedCluster,
    name: impl Into<String>,
    labels: BTreeMap<String, String>,
    extra_labels: Option<&BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
) -> ObjectMeta {
    let mut all_labels: BTreeMap<String, String> = extra_labels.cloned().unwrap_or_default();
    all_labels.extend(labels);
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(cluster.namespace.clone()),
        labels: Some(all_labels),
        annotations: annotations.filter(|a| !a.is_empty()),
        owner_references: Some(vec![owner_reference(cluster)]),
        ..ObjectMeta::default()
    }
}

/// A short, stable revision of `bytes`: the first 16 hex digits of their SHA-256. Revisions are
/// compared for equality only; 64 bits make an accidental match negligible.
pub fn revision(bytes: &[u8]) -> String {
    digest(&SHA256, bytes).as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The revision of a map of named byte strings (a Secret's or ConfigMap's data): entries in key
/// order, each length-prefixed so that no two different maps hash the same input.
pub fn data_revision<'a>(entries: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut input = Vec::new();
    for (key, value) in entries {
        input.extend_from_slice(&(key.len() as u64).to_be_bytes());
        input.extend_from_slice(key.as_bytes());
        input.extend_from_slice(&(value.len() as u64).to_be_bytes());
        input.extend_from_slice(value);
    }
    revision(&input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OperatorDefaults, validate_cluster};
    use crate::test_fixtures;

    fn cluster() -> ResolvedCluster {
        let f = test_fixtures::load("separate-roles");
        validate_cluster(&f.kafka, &f.pools, &OperatorDefaults::default())
            .expect("valid")
            .cluster
    }

    #[test]
    fn owner_reference_points_at_the_kafka_without_blocking_deletion() {
        let c = cluster();
        let o = owner_reference(&c);
        assert_eq!(o.kind, "Kafka");
        assert_eq!(o.api_version, "kafka.oxbow.rs/v1beta1");
        assert_eq!(o.name, c.name);
        assert_eq!(o.uid, c.uid);
        assert_eq!(o.controller, Some(true));
        assert_eq!(o.block_owner_deletion, Some(false));
    }

    #[test]
    fn node_labels_carry_pool_and_roles_and_select_with_the_cluster_selector() {
        let c = cluster();
        for node in c.nodes() {
            let l = node_labels(&c, &node);
            assert_eq!(l[labels::POOL_NAME], node.pool);
            assert_eq!(l[labels::BROKER_ROLE], node.is_broker().to_string());
            assert_eq!(l[labels::CONTROLLER_ROLE], node.is_controller().to_string());
            for (k, v) in kafka_pods_selector_labels(&c) {
                assert_eq!(l.get(&k), Some(&v), "{k}");
            }
        }
    }

    #[test]
    fn extra_labels_cannot_override_standard_ones() {
        let c = cluster();
        let extra = BTreeMap::from([
            (labels::CLUSTER.to_owned(), "other".to_owned()),
            ("team".to_owned(), "a".to_owned()),
        ]);
        let m = object_meta(
            &c,
            "x",
            cluster_labels(&c, "kafka", "x"),
            Some(&extra),
            None,
        );
        let l = m.labels.unwrap();
        assert_eq!(l[labels::CLUSTER], c.name);
        assert_eq!(l["team"], "a");
        assert_eq!(m.namespace.as_deref(), Some(c.namespace.as_str()));
        assert!(m.annotations.is_none());
    }

    #[test]
    fn revisions_are_stable_and_tell_data_apart() {
        assert_eq!(revision(b"abc"), revision(b"abc"));
        assert_eq!(revision(b"abc").len(), 16);
        assert_ne!(revision(b"abc"), revision(b"abd"));
        let a = data_revision([("ab", b"c".as_slice())]);
        let b = data_revision([("a", b"bc".as_slice())]);
        assert_ne!(a, b);
    }
}
