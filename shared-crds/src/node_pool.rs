//! The `KafkaNodePool` custom resource: a group of Kafka nodes of one Kafka cluster sharing roles,
//! storage and resources, and its status. Pure: no I/O.

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{JvmOptions, PodTemplate, ResourceTemplate};
use crate::condition::Condition;

/// The desired state of a node pool. The pool belongs to the Kafka cluster named by its
/// `oxbow.rs/cluster` label.
// Several printer columns share a `type_`; clippy takes the repeated helper arguments for
// duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "kafka.oxbow.rs",
    version = "v1beta1",
    kind = "KafkaNodePool",
    plural = "kafkanodepools",
    namespaced,
    status = "KafkaNodePoolStatus",
    shortname = "knp",
    category = "oxbow",
    derive = "PartialEq",
    doc = "A group of Kafka nodes of the Kafka cluster named by the `oxbow.rs/cluster` label, sharing roles, storage and resources.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.labelSelector"
    ),
    printcolumn(
        name = "Desired replicas",
        type_ = "integer",
        description = "The desired number of nodes",
        json_path = ".spec.replicas"
    ),
    printcolumn(
        name = "Roles",
        type_ = "string",
        description = "The roles of the nodes",
        json_path = ".status.roles"
    ),
    printcolumn(
        name = "NodeIds",
        type_ = "string",
        description = "The node IDs in use",
        json_path = ".status.nodeIds"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaNodePoolSpec {
    /// The number of Kafka nodes in the pool.
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// The roles of the nodes: `controller` (KRaft quorum member), `broker`, or both.
    #[schemars(length(min = 1, max = 2))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub roles: Vec<ProcessRole>,
    /// The nodes' storage (data and KRaft metadata log).
    pub storage: Storage,
    /// CPU and memory of each node's Kafka container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Options of the nodes' JVM. Replaces the Kafka resource's `spec.kafka.jvmOptions`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jvm_options: Option<JvmOptions>,
    /// Customisation of the Kubernetes objects generated for the pool's nodes. Each part given
    /// here replaces the same part of the Kafka resource's `spec.kafka.template`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<KafkaNodePoolTemplate>,
}

/// What a Kafka node does.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
#[schemars(transform = crate::common::field_describes_enum)]
pub enum ProcessRole {
    /// A member of the KRaft controller quorum.
    Controller,
    /// A broker, serving clients.
    Broker,
}

/// Storage of a node pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.type != 'persistent-claim' || has(self.size)",
        "message": "size is required for persistent-claim storage",
        "fieldPath": ".size",
        "reason": "FieldValueRequired",
    },
    {
        "rule": "self.type != 'jbod' || has(self.volumes)",
        "message": "volumes are required for jbod storage",
        "fieldPath": ".volumes",
        "reason": "FieldValueRequired",
    },
    {
        "rule": "self.type == 'jbod' || !has(self.volumes)",
        "message": "volumes are only allowed with jbod storage",
        "fieldPath": ".volumes",
        "reason": "FieldValueForbidden",
    },
]))]
pub struct Storage {
    /// Storage type: `ephemeral` (an emptyDir, lost when the pod goes), `persistent-claim` (a
    /// PersistentVolumeClaim) or `jbod` (several volumes, listed in `volumes`).
    #[serde(rename = "type")]
    pub type_: StorageType,
    /// For `persistent-claim`: the size of the claim, e.g. `100Gi`. Can be increased where the
    /// storage class allows expansion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// For `ephemeral`: the size limit of the emptyDir, e.g. `1Gi`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"))]
    pub size_limit: Option<String>,
    /// For `persistent-claim`: the storage class of the claim. Defaults to the cluster's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// For `persistent-claim`: whether the claim is deleted when the node is removed. Defaults to
    /// false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_claim: Option<bool>,
    /// `shared`: the KRaft metadata log is kept on this volume too. As the only volume, it is
    /// there in any case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kraft_metadata: Option<KraftMetadataStorage>,
    /// For `jbod`: the volumes, each with a unique `id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    #[schemars(extend("x-kubernetes-validations" = [
        {
            "rule": "self.all(v, self.exists_one(w, w.id == v.id))",
            "message": "volume ids must be unique",
        },
        {
            "rule": "self.filter(v, has(v.kraftMetadata)).size() <= 1",
            "message": "at most one volume can hold the KRaft metadata",
        },
    ]))]
    pub volumes: Option<Vec<JbodVolume>>,
}

/// Storage types of a node pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(transform = crate::common::field_describes_enum)]
pub enum StorageType {
    /// An emptyDir volume.
    Ephemeral,
    /// A PersistentVolumeClaim.
    PersistentClaim,
    /// Several volumes ("just a bunch of disks").
    Jbod,
}

/// One volume of `jbod` storage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.type != 'persistent-claim' || has(self.size)",
        "message": "size is required for persistent-claim storage",
        "fieldPath": ".size",
        "reason": "FieldValueRequired",
    },
]))]
pub struct JbodVolume {
    /// The volume's ID, unique in the pool; part of the claim name `data-<id>-...`.
    #[schemars(range(min = 0))]
    pub id: i32,
    /// Volume type: `ephemeral` or `persistent-claim`.
    #[serde(rename = "type")]
    pub type_: VolumeType,
    /// For `persistent-claim`: the size of the claim, e.g. `100Gi`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// For `ephemeral`: the size limit of the emptyDir, e.g. `1Gi`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"))]
    pub size_limit: Option<String>,
    /// For `persistent-claim`: the storage class of the claim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// For `persistent-claim`: whether the claim is deleted when the node is removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_claim: Option<bool>,
    /// `shared`: the KRaft metadata log is kept on this volume. At most one volume may say so;
    /// when none does, Oxbow picks the volume with the lowest ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kraft_metadata: Option<KraftMetadataStorage>,
}

/// Types of a single volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(transform = crate::common::field_describes_enum)]
pub enum VolumeType {
    /// An emptyDir volume.
    Ephemeral,
    /// A PersistentVolumeClaim.
    PersistentClaim,
}

/// Where the KRaft metadata log lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(transform = crate::common::field_describes_enum)]
pub enum KraftMetadataStorage {
    /// On this volume, next to the partition data.
    Shared,
}

/// Customisation of the Kubernetes objects generated for a pool's nodes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaNodePoolTemplate {
    /// The node pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodTemplate>,
    /// The per-broker Services of `cluster-ip`, `nodeport` and `loadbalancer` listeners.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_pod_service: Option<ResourceTemplate>,
}

/// The observed state of a node pool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaNodePoolStatus {
    /// The status conditions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// The `metadata.generation` the operator last reconciled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The node IDs of the pool's nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_ids: Option<Vec<i32>>,
    /// The Kafka cluster ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// The roles the nodes have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<ProcessRole>>,
    /// The number of nodes (for the scale subresource).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// The label selector of the pool's pods (for the scale subresource).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
}

impl KafkaNodePoolSpec {
    /// True if the pool's nodes are brokers.
    pub fn is_broker(&self) -> bool {
        self.roles.contains(&ProcessRole::Broker)
    }

    /// True if the pool's nodes are KRaft controllers.
    pub fn is_controller(&self) -> bool {
        self.roles.contains(&ProcessRole::Controller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(roles: Vec<ProcessRole>) -> KafkaNodePoolSpec {
        KafkaNodePoolSpec {
            replicas: 1,
            roles,
            storage: Storage {
                type_: StorageType::Ephemeral,
                size: None,
                size_limit: None,
                class: None,
                delete_claim: None,
                kraft_metadata: None,
                volumes: None,
            },
            resources: None,
            jvm_options: None,
            template: None,
        }
    }

    #[test]
    fn roles_are_read_from_the_list() {
        let broker = spec(vec![ProcessRole::Broker]);
        assert!(broker.is_broker() && !broker.is_controller());
        let controller = spec(vec![ProcessRole::Controller]);
        assert!(!controller.is_broker() && controller.is_controller());
        let both = spec(vec![ProcessRole::Controller, ProcessRole::Broker]);
        assert!(both.is_broker() && both.is_controller());
    }

    #[test]
    fn storage_types_use_strimzi_spelling() {
        let json = serde_json::to_value([
            StorageType::Ephemeral,
            StorageType::PersistentClaim,
            StorageType::Jbod,
        ]);
        assert_eq!(
            json.unwrap(),
            serde_json::json!(["ephemeral", "persistent-claim", "jbod"])
        );
    }
}
