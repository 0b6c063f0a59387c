//! The validated model of one Kafka cluster: what `validate` makes of a `Kafka` resource and its
//! `KafkaNodePool`s, and what every builder and planner takes instead of the raw spec. Defaults
//! are filled in, forbidden configuration is gone and node IDs are assigned, so builders never
//! re-check the spec. Pure: no I/O.

pub mod node_ids;
pub mod storage;
pub mod user_config;
pub mod validate;
pub mod versions;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::{core::v1::ResourceRequirements, networking::v1::NetworkPolicyPeer};
use shared_crds::common::{
    CertificateAuthority, JvmOptions, Logging, PodTemplate, Probe, ResourceTemplate,
};
use shared_crds::kafka::{
    EntityOperatorSpec, GenericKafkaListenerConfiguration, KafkaClusterTemplate, KafkaListenerType,
    ListenerAuthenticationType, ListenerBrokerConfiguration,
};
use shared_crds::names;
use shared_crds::node_pool::ProcessRole;

pub use node_ids::PoolNodeIds;
pub use storage::{DataVolume, ResolvedStorage, VolumeKind};
pub use validate::{OperatorDefaults, ValidatedCluster, ValidationError, validate_cluster};

/// One Kafka cluster after validation: everything the builders need, with defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedCluster {
    /// Name of the Kafka resource, the prefix of every generated object's name.
    pub name: String,
    /// Namespace of the Kafka resource and of everything generated for it.
    pub namespace: String,
    /// UID of the Kafka resource, for the owner references of generated objects.
    pub uid: String,
    /// `metadata.generation` of the Kafka resource, reported back as `observedGeneration`.
    pub generation: Option<i64>,
    /// The Kafka cluster ID from the status, once the cluster has one.
    pub cluster_id: Option<String>,
    /// The Kafka version the nodes run (`spec.kafka.version` or the newest supported).
    pub kafka_version: String,
    /// The KRaft metadata version (`spec.kafka.metadataVersion` or the version's default).
    pub metadata_version: String,
    /// The container image of the Kafka nodes.
    pub image: String,
    /// The user's listeners, sorted by name.
    pub listeners: Vec<ResolvedListener>,
    /// Client authorization; `None` when every client may do everything.
    pub authorization: Option<ResolvedAuthorization>,
    /// The user's `spec.kafka.config` as `server.properties` values, forbidden keys removed.
    pub config: BTreeMap<String, String>,
    /// The node pools of the cluster, sorted by name.
    pub pools: Vec<ResolvedPool>,
    /// Settings of the cluster CA (defaults when absent from the spec).
    pub cluster_ca: CertificateAuthority,
    /// Settings of the clients CA (defaults when absent from the spec).
    pub clients_ca: CertificateAuthority,
    /// The topic and user operators to deploy, as in the spec.
    pub entity_operator: Option<EntityOperatorSpec>,
    /// Logging of the Kafka nodes, as in the spec.
    pub logging: Option<Logging>,
    /// Liveness probe timing of the Kafka nodes, as in the spec.
    pub liveness_probe: Option<Probe>,
    /// Readiness probe timing of the Kafka nodes, as in the spec.
    pub readiness_probe: Option<Probe>,
    /// Cluster-level templates (Services, PodDisruptionBudget); pod templates are resolved per
    /// pool in [`ResolvedPool::pod_template`].
    pub template: KafkaClusterTemplate,
    /// `oxbow.rs/skip-broker-scaledown-check: "true"` on the Kafka resource.
    pub skip_broker_scaledown_check: bool,
    /// `oxbow.rs/manual-rolling-update: "true"` on the Kafka resource.
    pub manual_rolling_update: bool,
}

/// One user listener.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedListener {
    /// The listener's name from the spec (lower-case letters and digits).
    pub name: String,
    /// The port the brokers listen on.
    pub port: i32,
    /// How the listener is exposed.
    pub type_: KafkaListenerType,
    /// Whether the listener encrypts with TLS.
    pub tls: bool,
    /// How clients authenticate; `None` when they do not.
    pub authentication: Option<ListenerAuthenticationType>,
    /// Service settings and per-broker overrides (empty when absent from the spec).
    pub configuration: GenericKafkaListenerConfiguration,
    /// Who may connect (NetworkPolicy peers); `None` means everyone.
    pub network_policy_peers: Option<Vec<NetworkPolicyPeer>>,
}

/// The wire protocol of a Kafka listener (`listener.security.protocol.map` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// No TLS, no SASL.
    Plaintext,
    /// TLS, optionally with client certificates.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// The protocol's name in Kafka's configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

impl ResolvedListener {
    /// The listener's name inside Kafka's configuration: `<NAME>-<PORT>`, e.g. `PLAIN-9092`.
    /// The port suffix keeps user listeners apart from Oxbow's own `CONTROLLER` and
    /// `REPLICATION` listeners whatever the user names them (as Strimzi does).
    pub fn kafka_listener_name(&self) -> String {
        format!("{}-{}", self.name.to_ascii_uppercase(), self.port)
    }

    /// The protocol that follows from `tls` and the authentication type.
    pub fn security_protocol(&self) -> SecurityProtocol {
        let sasl = matches!(
            self.authentication,
            Some(ListenerAuthenticationType::ScramSha512)
        );
        match (self.tls, sasl) {
            (false, false) => SecurityProtocol::Plaintext,
            (true, false) => SecurityProtocol::Ssl,
            (false, true) => SecurityProtocol::SaslPlaintext,
            (true, true) => SecurityProtocol::SaslSsl,
        }
    }

    /// The spec's per-broker settings for `node_id` on this listener, if any.
    pub fn broker_override(&self, node_id: i32) -> Option<&ListenerBrokerConfiguration> {
        self.configuration
            .brokers
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|b| b.broker == node_id)
    }
}

/// Client authorization with Kafka's StandardAuthorizer.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedAuthorization {
    /// The principals that bypass ACLs, each as `User:<name>`: Oxbow's own components first
    /// (the Kafka nodes and the three operators, whose certificate subjects
    /// [`crate::pki::node_certs`] decides), then the spec's `superUsers` in their order, without
    /// duplicates.
    pub super_users: Vec<String>,
}

/// One node pool.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedPool {
    /// Name of the KafkaNodePool.
    pub name: String,
    /// The roles of the pool's nodes.
    pub roles: BTreeSet<ProcessRole>,
    /// The roles recorded in the pool's status at the last reconciliation, if any; differs
    /// from `roles` while a role change is rolled out.
    pub previous_roles: Option<BTreeSet<ProcessRole>>,
    /// The desired number of nodes (`spec.replicas`).
    pub replicas: i32,
    /// The nodes' data volumes.
    pub storage: ResolvedStorage,
    /// CPU and memory of each node's Kafka container.
    pub resources: Option<ResourceRequirements>,
    /// JVM options: the pool's, else the Kafka resource's.
    pub jvm_options: Option<JvmOptions>,
    /// Pod template: the pool's, else the Kafka resource's.
    pub pod_template: Option<PodTemplate>,
    /// Template of the per-broker Services: the pool's, else the Kafka resource's.
    pub per_pod_service_template: Option<ResourceTemplate>,
    /// The pool's node IDs: current, desired, added, removed.
    pub node_ids: PoolNodeIds,
}

impl ResolvedPool {
    /// True if the pool's nodes are brokers.
    pub fn is_broker(&self) -> bool {
        self.roles.contains(&ProcessRole::Broker)
    }

    /// True if the pool's nodes are KRaft controllers.
    pub fn is_controller(&self) -> bool {
        self.roles.contains(&ProcessRole::Controller)
    }

    /// True if the pool's nodes were brokers at the last reconciliation (or are now, when the
    /// pool has no recorded roles yet).
    pub fn was_broker(&self) -> bool {
        self.previous_roles
            .as_ref()
            .unwrap_or(&self.roles)
            .contains(&ProcessRole::Broker)
    }
}

/// One desired Kafka node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaNode {
    /// The node ID (`node.id`), unique in the cluster.
    pub id: i32,
    /// The pool the node belongs to.
    pub pool: String,
    /// The node's roles.
    pub roles: BTreeSet<ProcessRole>,
}

impl KafkaNode {
    /// True if the node is a broker.
    pub fn is_broker(&self) -> bool {
        self.roles.contains(&ProcessRole::Broker)
    }

    /// True if the node is a KRaft controller.
    pub fn is_controller(&self) -> bool {
        self.roles.contains(&ProcessRole::Controller)
    }
}

impl ResolvedCluster {
    /// The pool called `name`.
    pub fn pool(&self, name: &str) -> Option<&ResolvedPool> {
        self.pools.iter().find(|p| p.name == name)
    }

    /// Every desired node, sorted by node ID.
    pub fn nodes(&self) -> Vec<KafkaNode> {
        let mut nodes: Vec<KafkaNode> = self
            .pools
            .iter()
            .flat_map(|pool| {
                pool.node_ids.desired.iter().map(|&id| KafkaNode {
                    id,
                    pool: pool.name.clone(),
                    roles: pool.roles.clone(),
                })
            })
            .collect();
        nodes.sort_by_key(|n| n.id);
        nodes
    }

    /// The desired node with ID `id`.
    pub fn node(&self, id: i32) -> Option<KafkaNode> {
        self.nodes().into_iter().find(|n| n.id == id)
    }

    /// The desired KRaft controllers, sorted by node ID.
    pub fn controllers(&self) -> Vec<KafkaNode> {
        self.nodes()
            .into_iter()
            .filter(KafkaNode::is_controller)
            .collect()
    }

    /// The number of desired brokers.
    pub fn broker_count(&self) -> usize {
        self.nodes().iter().filter(|n| n.is_broker()).count()
    }

    /// The in-cluster DNS name of node `node`: `<pod>.<cluster>-kafka-brokers.<ns>.svc`.
    pub fn node_host(&self, node: &KafkaNode) -> String {
        names::kafka_node_host(&self.name, &node.pool, node.id, &self.namespace)
    }

    /// The brokers that are going away and must first give up their partition replicas: the
    /// removed nodes of pools that were brokers, and the kept nodes of pools that lose the
    /// broker role.
    pub fn brokers_to_remove(&self) -> BTreeSet<i32> {
        let mut ids = BTreeSet::new();
        for pool in self.pools.iter().filter(|p| p.was_broker()) {
            ids.extend(pool.node_ids.removed.iter().copied());
            if !pool.is_broker() {
                ids.extend(pool.node_ids.current.intersection(&pool.node_ids.desired));
            }
        }
        ids
    }

    /// Keeps the nodes that a scale-down would remove from broker pools, for when the
    /// scale-down is refused: those pools keep their current size. Returns the node IDs kept.
    pub fn revert_broker_removals(&mut self) -> BTreeSet<i32> {
        let mut kept = BTreeSet::new();
        for pool in self.pools.iter_mut().filter(|p| p.was_broker()) {
            let removed = std::mem::take(&mut pool.node_ids.removed);
            pool.node_ids.desired.extend(removed.iter().copied());
            kept.extend(removed);
        }
        kept
    }
}
