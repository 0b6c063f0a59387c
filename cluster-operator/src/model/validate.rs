//! Validation: from a `Kafka` resource and its `KafkaNodePool`s to a [`ResolvedCluster`], or to
//! the one reason the cluster cannot be reconciled. Invalid input is not retried: the error
//! becomes `Ready=False` with its `reason()` and waits for the user to change the resources.
//! What the cluster can run with but the user should hear about (dropped configuration, a lone
//! KRaft controller on ephemeral storage) is not an error but a [`ValidationWarning`], reported
//! in the `Warning` condition next to `Ready`. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use shared_crds::kafka::{
    GenericKafkaListener, KafkaAuthorizationType, ListenerAuthenticationType, RESERVED_PORTS,
};
use shared_crds::node_pool::ProcessRole;
use shared_crds::{Condition, Kafka, KafkaNodePool, labels, names};

use super::node_ids::{self, NodeIdError, PoolNodeIdRequest};
use super::storage::{self, StorageError};
use super::user_config::{self, ConfigWarning};
use super::versions::{self, MetadataVersionError};
use super::{ResolvedAuthorization, ResolvedCluster, ResolvedListener, ResolvedPool};
use crate::pki::node_certs;

/// Settings of the operator deployment that shape every cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperatorDefaults {
    /// Kafka image per version (e.g. from a mirror registry), used when the Kafka resource names
    /// no image; versions missing here use `apache/kafka:<version>`.
    pub kafka_images: BTreeMap<String, String>,
}

/// A valid cluster and what was dropped from its spec on the way.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedCluster {
    /// The model the builders take.
    pub cluster: ResolvedCluster,
    /// What the user should know about, for the `Warning` condition: the storage warning
    /// first, then one entry per dropped `spec.kafka.config` key.
    pub warnings: Vec<ValidationWarning>,
}

/// Something the cluster is reconciled with (or without) that the user should hear about.
/// Reported in the `Warning` condition; it never blocks reconciliation nor makes `Ready` false.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidationWarning {
    /// The quorum is one controller whose KRaft metadata log is on an emptyDir. A restart of that
    /// node (every roll) starts it with an empty log, and with no other voter holding the log
    /// the cluster metadata is gone: the new controller formats an empty log and the brokers
    /// die with "The leader requested truncation to offset N, which is below the current high
    /// watermark". With more controllers the others keep the log and the restarted one catches
    /// up.
    #[error(
        "the only KRaft controller (node {node} of pool {pool}) keeps the cluster metadata on {}: a restart of it (every rolling update) loses the cluster metadata; use persistent-claim storage for it or three controllers, chosen when the cluster is created (the controllers of a running cluster cannot change)",
        ephemeral_storage_description(.jbod_volume)
    )]
    EphemeralSingleController {
        /// The controller's pool.
        pool: String,
        /// The controller's node ID.
        node: i32,
        /// The ephemeral JBOD volume holding the metadata log; `None` for `ephemeral` storage.
        jbod_volume: Option<i32>,
    },
    /// A dropped `spec.kafka.config` entry.
    #[error(transparent)]
    Config(#[from] ConfigWarning),
}

impl ValidationWarning {
    /// Stable CamelCase reason for the `Warning` condition and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            ValidationWarning::EphemeralSingleController { .. } => "EphemeralSingleController",
            ValidationWarning::Config(w) => w.reason(),
        }
    }
}

fn ephemeral_storage_description(jbod_volume: &Option<i32>) -> String {
    match jbod_volume {
        None => "ephemeral storage".to_string(),
        Some(id) => format!("ephemeral jbod volume {id}"),
    }
}

/// Why a Kafka cluster cannot be reconciled until its resources change.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValidationError {
    /// The Kafka resource lacks metadata the API server always sets.
    #[error("the Kafka resource has no metadata.{field}")]
    MissingMetadata {
        /// `name`, `namespace` or `uid`.
        field: &'static str,
    },
    /// No KafkaNodePool carries the cluster label.
    #[error(
        "no KafkaNodePool belongs to Kafka {cluster}; create node pools labelled {label}: {cluster} with the controller and broker roles"
    )]
    NoNodePools {
        /// The cluster.
        cluster: String,
        /// The label key.
        label: &'static str,
    },
    /// A pool with nodes but no roles.
    #[error("node pool {pool} has replicas but no roles; set roles to controller, broker or both")]
    PoolWithoutRoles {
        /// The pool.
        pool: String,
    },
    /// A pool with a negative replica count.
    #[error("node pool {pool} has replicas {replicas}; use 0 or above")]
    NegativeReplicas {
        /// The pool.
        pool: String,
        /// The count.
        replicas: i32,
    },
    /// No pool with nodes has the controller role.
    #[error(
        "no node pool of Kafka {cluster} has nodes with the controller role (pools: {pools}); add the controller role to a pool with replicas, or create a controller pool"
    )]
    NoControllerRole {
        /// The cluster.
        cluster: String,
        /// The pools, comma-separated.
        pools: String,
    },
    /// No pool with nodes has the broker role.
    #[error(
        "no node pool of Kafka {cluster} has nodes with the broker role (pools: {pools}); add the broker role to a pool with replicas, or create a broker pool"
    )]
    NoBrokerRole {
        /// The cluster.
        cluster: String,
        /// The pools, comma-separated.
        pools: String,
    },
    /// `spec.kafka.version` is not supported.
    #[error("Kafka version {version} is not supported; use one of {supported}")]
    UnsupportedKafkaVersion {
        /// The requested version.
        version: String,
        /// The supported versions.
        supported: String,
    },
    /// `spec.kafka.metadataVersion` does not fit the Kafka version.
    #[error(transparent)]
    MetadataVersion(#[from] MetadataVersionError),
    /// A pool's storage is unusable.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Node IDs cannot be assigned.
    #[error(transparent)]
    NodeIds(#[from] NodeIdError),
    /// A listener name that is not 1-11 lower-case letters and digits.
    #[error("listener name {name:?} must be 1 to 11 lower-case letters and digits")]
    InvalidListenerName {
        /// The name.
        name: String,
    },
    /// Two listeners share a name.
    #[error("listener name {name} is used more than once; listener names must be unique")]
    DuplicateListenerName {
        /// The name.
        name: String,
    },
    /// Two listeners share a port.
    #[error("listener port {port} is used more than once; listener ports must be unique")]
    DuplicateListenerPort {
        /// The port.
        port: i32,
    },
    /// A listener port Oxbow uses itself or outside 9092-65535.
    #[error(
        "listener {listener} uses port {port}; use a port from 9092 to 65535 other than 9090, 9091, 9404 and 9999, which Oxbow uses itself"
    )]
    ReservedListenerPort {
        /// The listener.
        listener: String,
        /// The port.
        port: i32,
    },
    /// Mutual TLS on a listener without TLS.
    #[error(
        "listener {listener} has authentication type tls but tls: false; set tls: true or use scram-sha-512"
    )]
    TlsAuthenticationWithoutTls {
        /// The listener.
        listener: String,
    },
    /// An advertised host override that would break the generated configuration.
    #[error(
        "listener {listener}: advertisedHost {host:?} for broker {broker} is not a host name or IP address"
    )]
    InvalidAdvertisedHost {
        /// The listener.
        listener: String,
        /// The broker's node ID.
        broker: i32,
        /// The host.
        host: String,
    },
    /// A super user that cannot be written into `super.users`.
    #[error(
        "super user {super_user:?} is empty or contains ';' or a control character, which super.users cannot hold"
    )]
    InvalidSuperUser {
        /// The super user.
        super_user: String,
    },
    /// A node name longer than a DNS label, so its pod would have no DNS name.
    #[error(
        "node name {node} is longer than 63 characters, so the node would have no DNS name; shorten the Kafka or node pool name"
    )]
    NodeNameTooLong {
        /// The pod name.
        node: String,
    },
    /// The set of KRaft controllers of a running cluster would change.
    #[error(
        "the KRaft controllers of a running cluster cannot change (the quorum is static): the controllers are {current:?} and would become {desired:?}; restore the replicas and roles of the controller pools"
    )]
    ControllerQuorumChange {
        /// The controllers' node IDs now.
        current: Vec<i32>,
        /// The controllers' node IDs the spec asks for.
        desired: Vec<i32>,
    },
}

impl ValidationError {
    /// Stable CamelCase reason for the `Ready=False` condition, Events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ValidationError::MissingMetadata { .. } => "KafkaMetadataMissing",
            ValidationError::NoNodePools { .. } => "NoNodePools",
            ValidationError::PoolWithoutRoles { .. } => "NodePoolWithoutRoles",
            ValidationError::NegativeReplicas { .. } => "NegativeReplicas",
            ValidationError::NoControllerRole { .. } => "NoControllerRole",
            ValidationError::NoBrokerRole { .. } => "NoBrokerRole",
            ValidationError::UnsupportedKafkaVersion { .. } => "UnsupportedKafkaVersion",
            ValidationError::MetadataVersion(e) => e.reason(),
            ValidationError::Storage(e) => e.reason(),
            ValidationError::NodeIds(e) => e.reason(),
            ValidationError::InvalidListenerName { .. } => "InvalidListenerName",
            ValidationError::DuplicateListenerName { .. } => "DuplicateListenerName",
            ValidationError::DuplicateListenerPort { .. } => "DuplicateListenerPort",
            ValidationError::ReservedListenerPort { .. } => "ReservedListenerPort",
            ValidationError::TlsAuthenticationWithoutTls { .. } => "TlsAuthenticationWithoutTls",
            ValidationError::InvalidAdvertisedHost { .. } => "InvalidAdvertisedHost",
            ValidationError::InvalidSuperUser { .. } => "InvalidSuperUser",
            ValidationError::NodeNameTooLong { .. } => "NodeNameTooLong",
            ValidationError::ControllerQuorumChange { .. } => "ControllerQuorumChangeUnsupported",
        }
    }

    /// The `Ready=False` condition reporting this error.
    pub fn condition(&self) -> Condition {
        Condition::not_ready(self.reason(), self.to_string())
    }
}

/// The one `Warning` condition for every validation warning, `None` when there is none. Its
/// reason is the first warning's (see [`ValidatedCluster::warnings`] for the order); its message
/// lists every warning.
pub fn warning_condition(warnings: &[ValidationWarning]) -> Option<Condition> {
    let first = warnings.first()?;
    let message = warnings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    Some(Condition::warning(first.reason(), message))
}

/// Validates `kafka` with the pools among `node_pools` that belong to it (same namespace, label
/// `oxbow.rs/cluster: <name>`; others are ignored, so callers may pass every pool they list).
pub fn validate_cluster(
    kafka: &Kafka,
    node_pools: &[KafkaNodePool],
    defaults: &OperatorDefaults,
) -> Result<ValidatedCluster, ValidationError> {
    let meta = &kafka.metadata;
    let name = meta
        .name
        .clone()
        .ok_or(ValidationError::MissingMetadata { field: "name" })?;
    let namespace = meta
        .namespace
        .clone()
        .ok_or(ValidationError::MissingMetadata { field: "namespace" })?;
    let uid = meta
        .uid
        .clone()
        .ok_or(ValidationError::MissingMetadata { field: "uid" })?;
    let spec = &kafka.spec.kafka;

    let version = spec
        .version
        .clone()
        .unwrap_or_else(|| versions::DEFAULT_KAFKA_VERSION.to_string());
    let supported = versions::supported_version(&version).ok_or_else(|| {
        ValidationError::UnsupportedKafkaVersion {
            version: version.clone(),
            supported: versions::supported_versions_list(),
        }
    })?;
    let metadata_version = match &spec.metadata_version {
        Some(requested) => versions::check_metadata_version(requested, supported)?,
        None => supported.metadata_version.to_string(),
    };
    let image = spec
        .image
        .clone()
        .or_else(|| defaults.kafka_images.get(&version).cloned())
        .unwrap_or_else(|| versions::default_image(&version));

    let listeners = resolve_listeners(&spec.listeners)?;
    let authorization = match &spec.authorization {
        Some(authz) => match authz.type_ {
            KafkaAuthorizationType::Simple => Some(ResolvedAuthorization {
                super_users: super_users(&name, authz.super_users.as_deref().unwrap_or_default())?,
            }),
        },
        None => None,
    };
    let (config, config_warnings) =
        user_config::sanitize_user_config(&spec.config.clone().unwrap_or_default());

    let pools = resolve_pools(kafka, &name, &namespace, node_pools)?;
    // Losing the cluster metadata outweighs an ignored key, so it names the condition.
    let warnings: Vec<ValidationWarning> = ephemeral_single_controller(&pools)
        .into_iter()
        .chain(config_warnings.into_iter().map(ValidationWarning::from))
        .collect();

    let annotations = meta.annotations.as_ref();
    let cluster = ResolvedCluster {
        name,
        namespace,
        uid,
        generation: meta.generation,
        cluster_id: kafka.status.as_ref().and_then(|s| s.cluster_id.clone()),
        kafka_version: version,
        metadata_version,
        image,
        listeners,
        authorization,
        config,
        pools,
        cluster_ca: kafka.spec.cluster_ca.clone().unwrap_or_default(),
        clients_ca: kafka.spec.clients_ca.clone().unwrap_or_default(),
        entity_operator: kafka.spec.entity_operator.clone(),
        logging: spec.logging.clone(),
        liveness_probe: spec.liveness_probe.clone(),
        readiness_probe: spec.readiness_probe.clone(),
        template: spec.template.clone().unwrap_or_default(),
        skip_broker_scaledown_check: labels::annotation_is_true(
            annotations,
            labels::SKIP_BROKER_SCALEDOWN_CHECK,
        ),
        manual_rolling_update: labels::annotation_is_true(
            annotations,
            labels::MANUAL_ROLLING_UPDATE,
        ),
    };
    Ok(ValidatedCluster { cluster, warnings })
}

fn resolve_listeners(
    listeners: &[GenericKafkaListener],
) -> Result<Vec<ResolvedListener>, ValidationError> {
    let mut names = BTreeSet::new();
    let mut ports = BTreeSet::new();
    let mut resolved = Vec::with_capacity(listeners.len());
    for l in listeners {
        // The name becomes part of configuration keys and Service names: only the schema's
        // alphabet is safe there.
        let valid_name = (1..=11).contains(&l.name.len())
            && l.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid_name {
            return Err(ValidationError::InvalidListenerName {
                name: l.name.clone(),
            });
        }
        if !names.insert(l.name.clone()) {
            return Err(ValidationError::DuplicateListenerName {
                name: l.name.clone(),
            });
        }
        if !ports.insert(l.port) {
            return Err(ValidationError::DuplicateListenerPort { port: l.port });
        }
        if RESERVED_PORTS.contains(&l.port) || !(9092..=65535).contains(&l.port) {
            return Err(ValidationError::ReservedListenerPort {
                listener: l.name.clone(),
                port: l.port,
            });
        }
        let authentication = l.authentication.as_ref().map(|a| a.type_);
        if authentication == Some(ListenerAuthenticationType::Tls) && !l.tls {
            return Err(ValidationError::TlsAuthenticationWithoutTls {
                listener: l.name.clone(),
            });
        }
        let configuration = l.configuration.clone().unwrap_or_default();
        for broker in configuration.brokers.as_deref().unwrap_or_default() {
            if let Some(host) = &broker.advertised_host {
                // The host goes into `advertised.listeners`, a comma-separated list of URLs.
                let bad = host.is_empty()
                    || host.chars().any(|c| {
                        c.is_whitespace() || c.is_control() || matches!(c, ',' | '/' | '@')
                    });
                if bad {
                    return Err(ValidationError::InvalidAdvertisedHost {
                        listener: l.name.clone(),
                        broker: broker.broker,
                        host: host.clone(),
                    });
                }
            }
        }
        resolved.push(ResolvedListener {
            name: l.name.clone(),
            port: l.port,
            type_: l.type_,
            tls: l.tls,
            authentication,
            configuration,
            network_policy_peers: l.network_policy_peers.clone(),
        });
    }
    resolved.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(resolved)
}

/// Oxbow's components, then the spec's super users as `User:<name>` (a name already written
/// as `User:<name>` is kept as it is), without duplicates. The components are listed even when
/// the entity operators are not deployed, so that enabling them later does not change (and
/// roll) the nodes.
fn super_users(cluster: &str, from_spec: &[String]) -> Result<Vec<String>, ValidationError> {
    let mut all = node_certs::super_user_principals(cluster);
    for user in from_spec {
        let user = user.trim();
        // `super.users` is `;`-separated.
        if user.is_empty() || user.contains(';') || user.chars().any(char::is_control) {
            return Err(ValidationError::InvalidSuperUser {
                super_user: user.to_string(),
            });
        }
        let principal = if user.starts_with("User:") {
            user.to_string()
        } else {
            format!("User:{user}")
        };
        if !all.contains(&principal) {
            all.push(principal);
        }
    }
    Ok(all)
}

fn resolve_pools(
    kafka: &Kafka,
    cluster: &str,
    namespace: &str,
    node_pools: &[KafkaNodePool],
) -> Result<Vec<ResolvedPool>, ValidationError> {
    let mut mine: Vec<&KafkaNodePool> = node_pools
        .iter()
        .filter(|p| {
            let labelled = p
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::CLUSTER))
                .is_some_and(|c| c == cluster);
            let same_namespace = p
                .metadata
                .namespace
                .as_deref()
                .is_none_or(|ns| ns == namespace);
            labelled && same_namespace && p.metadata.name.is_some()
        })
        .collect();
    mine.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    if mine.is_empty() {
        return Err(ValidationError::NoNodePools {
            cluster: cluster.to_string(),
            label: labels::CLUSTER,
        });
    }
    let pool_name = |p: &KafkaNodePool| p.metadata.name.clone().unwrap_or_default();

    for p in &mine {
        if p.spec.replicas < 0 {
            return Err(ValidationError::NegativeReplicas {
                pool: pool_name(p),
                replicas: p.spec.replicas,
            });
        }
        if p.spec.replicas > 0 && p.spec.roles.is_empty() {
            return Err(ValidationError::PoolWithoutRoles { pool: pool_name(p) });
        }
    }
    let pool_list = mine
        .iter()
        .map(|p| pool_name(p))
        .collect::<Vec<_>>()
        .join(", ");
    let has_nodes_with = |role: ProcessRole| {
        mine.iter()
            .any(|p| p.spec.replicas > 0 && p.spec.roles.contains(&role))
    };
    if !has_nodes_with(ProcessRole::Controller) {
        return Err(ValidationError::NoControllerRole {
            cluster: cluster.to_string(),
            pools: pool_list,
        });
    }
    if !has_nodes_with(ProcessRole::Broker) {
        return Err(ValidationError::NoBrokerRole {
            cluster: cluster.to_string(),
            pools: pool_list,
        });
    }

    let mut requests = Vec::with_capacity(mine.len());
    for p in &mine {
        let name = pool_name(p);
        let annotation = |key: &'static str| {
            p.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(key))
                .map(|value| node_ids::parse_annotation(&name, key, value))
                .transpose()
        };
        requests.push(PoolNodeIdRequest {
            pool: name.clone(),
            current: p
                .status
                .as_ref()
                .and_then(|s| s.node_ids.clone())
                .unwrap_or_default()
                .into_iter()
                .collect(),
            replicas: usize::try_from(p.spec.replicas).unwrap_or(0),
            next_node_ids: annotation(labels::NEXT_NODE_IDS)?,
            remove_node_ids: annotation(labels::REMOVE_NODE_IDS)?,
        });
    }
    let mut assigned = node_ids::assign_node_ids(&requests)?;

    let kafka_template = kafka.spec.kafka.template.as_ref();
    let mut pools = Vec::with_capacity(mine.len());
    for p in mine {
        let name = pool_name(p);
        let ids = assigned.remove(&name).unwrap_or_default();
        for &id in &ids.desired {
            let node = names::kafka_node(cluster, &name, id);
            if node.len() > 63 {
                return Err(ValidationError::NodeNameTooLong { node });
            }
        }
        let pool_template = p.spec.template.as_ref();
        pools.push(ResolvedPool {
            storage: storage::resolve_storage(&name, &p.spec.storage)?,
            roles: p.spec.roles.iter().copied().collect(),
            previous_roles: p
                .status
                .as_ref()
                .and_then(|s| s.roles.as_ref())
                .map(|r| r.iter().copied().collect()),
            replicas: p.spec.replicas,
            resources: p.spec.resources.clone(),
            // Each part the pool gives replaces the Kafka resource's, as documented on the CRDs.
            jvm_options: p
                .spec
                .jvm_options
                .clone()
                .or_else(|| kafka.spec.kafka.jvm_options.clone()),
            pod_template: pool_template
                .and_then(|t| t.pod.clone())
                .or_else(|| kafka_template.and_then(|t| t.pod.clone())),
            per_pod_service_template: pool_template
                .and_then(|t| t.per_pod_service.clone())
                .or_else(|| kafka_template.and_then(|t| t.per_pod_service.clone())),
            node_ids: ids,
            name,
        });
    }
    check_quorum_unchanged(&pools)?;
    Ok(pools)
}

/// Refuses to change the controllers of a running cluster. The generated configuration uses
/// static voters (`controller.quorum.voters`), and Kafka cannot move a static quorum to another
/// voter set: nodes restarted with different voter lists could elect two leaders. A new cluster
/// (no current nodes) may have any controllers.
fn check_quorum_unchanged(pools: &[ResolvedPool]) -> Result<(), ValidationError> {
    let was_controller = |p: &ResolvedPool| {
        p.previous_roles
            .as_ref()
            .unwrap_or(&p.roles)
            .contains(&ProcessRole::Controller)
    };
    let current: BTreeSet<i32> = pools
        .iter()
        .filter(|p| was_controller(p))
        .flat_map(|p| p.node_ids.current.iter().copied())
        .collect();
    let desired: BTreeSet<i32> = pools
        .iter()
        .filter(|p| p.is_controller())
        .flat_map(|p| p.node_ids.desired.iter().copied())
        .collect();
    if current.is_empty() || current == desired {
        return Ok(());
    }
    Err(ValidationError::ControllerQuorumChange {
        current: current.into_iter().collect(),
        desired: desired.into_iter().collect(),
    })
}

/// The warning for a quorum of exactly one controller (over all pools) whose KRaft metadata
/// volume is ephemeral: plain `ephemeral` storage, or the `jbod` volume holding the metadata.
fn ephemeral_single_controller(pools: &[ResolvedPool]) -> Option<ValidationWarning> {
    let mut controllers = pools
        .iter()
        .filter(|p| p.is_controller())
        .flat_map(|p| p.node_ids.desired.iter().map(move |&id| (p, id)));
    let (pool, node) = controllers.next()?;
    if controllers.next().is_some() {
        return None;
    }
    let metadata = pool.storage.metadata_volume();
    metadata
        .is_ephemeral()
        .then(|| ValidationWarning::EphemeralSingleController {
            pool: pool.name.clone(),
            node,
            jbod_volume: metadata.jbod_id,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures;
    use rstest::rstest;
    use shared_crds::kafka::KafkaListenerType;

    fn validate(fixture: &str) -> Result<ValidatedCluster, ValidationError> {
        let f = test_fixtures::load(fixture);
        validate_cluster(&f.kafka, &f.pools, &OperatorDefaults::default())
    }

    fn ids(cluster: &ResolvedCluster, pool: &str) -> Vec<i32> {
        cluster
            .pool(pool)
            .unwrap()
            .node_ids
            .desired
            .iter()
            .copied()
            .collect()
    }

    #[test]
    fn separate_roles_resolve_with_defaults() {
        let v = validate("separate-roles").unwrap();
        let c = &v.cluster;
        assert!(v.warnings.is_empty());
        assert_eq!(c.name, "my-cluster");
        assert_eq!(c.namespace, "kafka");
        assert_eq!(c.uid, "0e3b1f3a-0000-4000-8000-000000000001");
        assert_eq!(c.kafka_version, "4.1.2");
        assert_eq!(c.metadata_version, "4.1-IV1");
        assert_eq!(c.image, "apache/kafka:4.1.2");
        assert!(c.authorization.is_none());
        assert_eq!(
            c.pools.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["broker", "controller"]
        );
        assert_eq!(ids(c, "broker"), [0, 1, 2]);
        assert_eq!(ids(c, "controller"), [3, 4, 5]);
        assert_eq!(
            c.controllers().iter().map(|n| n.id).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        assert_eq!(c.broker_count(), 3);
        assert_eq!(
            c.node_host(&c.node(3).unwrap()),
            "my-cluster-controller-3.my-cluster-kafka-brokers.kafka.svc"
        );
        // The Kafka-level JVM options apply to pools without their own.
        assert_eq!(
            c.pool("broker")
                .unwrap()
                .jvm_options
                .as_ref()
                .unwrap()
                .xmx
                .as_deref(),
            Some("256m")
        );
    }

    #[test]
    fn pools_of_other_clusters_or_namespaces_are_ignored() {
        let mut f = test_fixtures::load("separate-roles");
        let mut stranger = f.pools[0].clone();
        stranger.metadata.name = Some("stranger".into());
        stranger
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(labels::CLUSTER.into(), "other".into());
        let mut elsewhere = f.pools[0].clone();
        elsewhere.metadata.name = Some("elsewhere".into());
        elsewhere.metadata.namespace = Some("other-namespace".into());
        f.pools.push(stranger);
        f.pools.push(elsewhere);
        let v = validate_cluster(&f.kafka, &f.pools, &OperatorDefaults::default()).unwrap();
        assert_eq!(v.cluster.pools.len(), 2);
    }

    #[test]
    fn existing_node_ids_come_from_the_pool_status() {
        let c = validate("scale-with-status").unwrap().cluster;
        let pool = c.pool("pool-a").unwrap();
        // status.nodeIds [0, 1, 2, 10], replicas 5, next-node-ids [20-29].
        assert_eq!(c.cluster_id.as_deref(), Some("Ab3dEfGhIjKlMnOpQrStUw"));
        assert_eq!(
            pool.node_ids.current.iter().copied().collect::<Vec<_>>(),
            [0, 1, 2, 10]
        );
        assert_eq!(
            pool.node_ids.added.iter().copied().collect::<Vec<_>>(),
            [20]
        );
        // pool-b: status [3, 4, 5], replicas 2, remove-node-ids [3].
        let pool = c.pool("pool-b").unwrap();
        assert_eq!(
            pool.node_ids.removed.iter().copied().collect::<Vec<_>>(),
            [3]
        );
        assert_eq!(ids(&c, "pool-b"), [4, 5]);
    }

    #[test]
    fn removed_and_demoted_brokers_must_give_up_their_replicas() {
        let mut c = validate("scale-with-status").unwrap().cluster;
        // pool-b (broker) drops node 3.
        assert_eq!(c.brokers_to_remove(), BTreeSet::from([3]));
        let kept = c.revert_broker_removals();
        assert_eq!(kept, BTreeSet::from([3]));
        assert_eq!(ids(&c, "pool-b"), [3, 4, 5]);
        assert!(c.brokers_to_remove().is_empty());

        // A combined pool turned controller-only: its nodes stay but stop being brokers.
        let mut f = test_fixtures::load("scale-with-status");
        let ctrl = f
            .pools
            .iter_mut()
            .find(|p| p.metadata.name.as_deref() == Some("ctrl"));
        let ctrl = ctrl.unwrap();
        ctrl.status.as_mut().unwrap().roles =
            Some(vec![ProcessRole::Controller, ProcessRole::Broker]);
        let c = validate_cluster(&f.kafka, &f.pools, &OperatorDefaults::default())
            .unwrap()
            .cluster;
        assert_eq!(c.brokers_to_remove(), BTreeSet::from([3, 6, 7, 8]));
    }

    #[test]
    fn the_controllers_of_a_running_cluster_cannot_change() {
        let scaled = |replicas: i32, roles: Vec<ProcessRole>, pool: &str| {
            let mut f = test_fixtures::load("scale-with-status");
            let p = f
                .pools
                .iter_mut()
                .find(|p| p.metadata.name.as_deref() == Some(pool));
            let p = p.unwrap();
            p.spec.replicas = replicas;
            p.spec.roles = roles;
            validate_cluster(&f.kafka, &f.pools, &OperatorDefaults::default())
        };
        let err = scaled(4, vec![ProcessRole::Controller], "ctrl").unwrap_err();
        assert_eq!(
            err,
            ValidationError::ControllerQuorumChange {
                current: vec![6, 7, 8],
                desired: vec![6, 7, 8, 9]
            }
        );
        assert_eq!(err.reason(), "ControllerQuorumChangeUnsupported");
        assert!(scaled(2, vec![ProcessRole::Controller], "ctrl").is_err());
        // A broker pool taking the controller role changes the quorum too.
        let err = scaled(
            2,
            vec![ProcessRole::Broker, ProcessRole::Controller],
            "pool-b",
        );
        assert_eq!(
            err.unwrap_err().reason(),
            "ControllerQuorumChangeUnsupported"
        );
        // Adding the broker role to the controllers keeps the quorum.
        assert!(
            scaled(
                3,
                vec![ProcessRole::Controller, ProcessRole::Broker],
                "ctrl"
            )
            .is_ok()
        );
        // A new cluster may start with any controllers.
        assert!(validate("separate-roles").is_ok());
    }

    #[test]
    fn image_precedence_spec_then_operator_then_official() {
        let f = test_fixtures::load("separate-roles");
        let defaults = OperatorDefaults {
            kafka_images: BTreeMap::from([("4.1.2".into(), "mirror.local/kafka:4.1.2".into())]),
        };
        let c = validate_cluster(&f.kafka, &f.pools, &defaults)
            .unwrap()
            .cluster;
        assert_eq!(c.image, "mirror.local/kafka:4.1.2");
        let mut kafka = f.kafka.clone();
        kafka.spec.kafka.image = Some("my/kafka:custom".into());
        let c = validate_cluster(&kafka, &f.pools, &defaults)
            .unwrap()
            .cluster;
        assert_eq!(c.image, "my/kafka:custom");
    }

    #[test]
    fn listeners_are_resolved_and_sorted() {
        let c = validate("all-listeners").unwrap().cluster;
        let described: Vec<(String, String, &str)> = c
            .listeners
            .iter()
            .map(|l| {
                (
                    l.name.clone(),
                    l.kafka_listener_name(),
                    l.security_protocol().as_str(),
                )
            })
            .collect();
        let expected = [
            ("clusterip", "CLUSTERIP-9098", "SSL"),
            ("lb", "LB-9097", "SASL_SSL"),
            ("mtls", "MTLS-9094", "SSL"),
            ("node", "NODE-9096", "SSL"),
            ("plain", "PLAIN-9092", "PLAINTEXT"),
            ("scram", "SCRAM-9095", "SASL_PLAINTEXT"),
            ("tls", "TLS-9093", "SSL"),
        ];
        let expected: Vec<(String, String, &str)> = expected
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
            .collect();
        assert_eq!(described, expected);
        assert_eq!(c.listeners[1].type_, KafkaListenerType::Loadbalancer);
        assert_eq!(
            c.listeners[3]
                .broker_override(0)
                .unwrap()
                .advertised_host
                .as_deref(),
            Some("node0.example.com")
        );
        assert!(c.listeners[3].broker_override(1).is_none());
    }

    #[test]
    fn super_users_list_components_then_the_spec() {
        let c = validate("all-listeners").unwrap().cluster;
        assert_eq!(
            c.authorization.unwrap().super_users,
            [
                "User:CN=my-cluster-kafka,O=io.oxbow",
                "User:CN=my-cluster-topic-operator,O=io.oxbow",
                "User:CN=my-cluster-user-operator,O=io.oxbow",
                "User:CN=my-cluster-cluster-operator,O=io.oxbow",
                "User:CN=admin",
                "User:alice",
            ]
        );
    }

    #[test]
    fn forbidden_config_is_dropped_with_a_warning_per_key() {
        let v = validate("forbidden-config").unwrap();
        let dropped: Vec<&str> = v
            .warnings
            .iter()
            .map(|w| match w {
                ValidationWarning::Config(c) => c.key(),
                other => panic!("unexpected warning {other}"),
            })
            .collect();
        assert_eq!(
            dropped,
            [
                "advertised.listeners",
                "authorizer.class.name",
                "broker.id",
                "controller.quorum.voters",
                "inter.broker.listener.name",
                "listener.security.protocol.map",
                "listeners",
                "log.dirs",
                "node.id",
                "process.roles",
                "sasl.enabled.mechanisms",
                "ssl.keystore.location",
                "super.users",
            ]
        );
        assert_eq!(
            v.cluster.config.keys().collect::<Vec<_>>(),
            [
                "controller.quorum.fetch.timeout.ms",
                "min.insync.replicas",
                "ssl.cipher.suites"
            ]
        );
        let condition = warning_condition(&v.warnings).unwrap();
        assert_eq!(condition.reason.as_deref(), Some("ForbiddenConfigKey"));
        let message = condition.message.unwrap();
        for key in dropped {
            assert!(
                message.contains(&format!("\"{key}\"")),
                "{key} in {message}"
            );
        }
        assert!(warning_condition(&[]).is_none());
    }

    #[rstest]
    #[case::single_ephemeral_controller(
        "single-ephemeral-controller",
        Some(("controller", 3, None))
    )]
    #[case::single_combined_ephemeral_node("single-node", Some(("solo", 0, None)))]
    #[case::single_controller_ephemeral_jbod_metadata(
        "single-controller-jbod",
        Some(("solo", 0, Some(1)))
    )]
    #[case::single_persistent_controller("single-persistent-controller", None)]
    #[case::three_ephemeral_controllers("scale-with-status", None)]
    #[case::three_combined_ephemeral_nodes("forbidden-config", None)]
    #[case::three_persistent_controllers("separate-roles", None)]
    fn a_lone_controller_on_ephemeral_storage_is_warned_about(
        #[case] fixture: &str,
        #[case] expected: Option<(&str, i32, Option<i32>)>,
    ) {
        let v = validate(fixture).unwrap();
        let found: Vec<(&str, i32, Option<i32>)> = v
            .warnings
            .iter()
            .filter_map(|w| match w {
                ValidationWarning::EphemeralSingleController {
                    pool,
                    node,
                    jbod_volume,
                } => Some((pool.as_str(), *node, *jbod_volume)),
                ValidationWarning::Config(_) => None,
            })
            .collect();
        assert_eq!(found, Vec::from_iter(expected));
    }

    #[test]
    fn a_lone_controller_whose_jbod_metadata_volume_is_persistent_is_not_warned_about() {
        let mut f = test_fixtures::load("single-controller-jbod");
        let volumes = f.pools[0].spec.storage.volumes.as_mut().unwrap();
        volumes[0].kraft_metadata = volumes[1].kraft_metadata.take();
        let v = validate_cluster(&f.kafka, &f.pools, &OperatorDefaults::default()).unwrap();
        assert_eq!(v.warnings, []);
    }

    #[test]
    fn the_ephemeral_controller_warning_says_what_to_do_and_leads_the_one_warning_condition() {
        let v = validate("single-ephemeral-controller").unwrap();
        let condition = warning_condition(&v.warnings).unwrap();
        assert_eq!(condition.type_, shared_crds::condition::WARNING);
        assert_eq!(
            condition.reason.as_deref(),
            Some("EphemeralSingleController")
        );
        let message = condition.message.unwrap();
        for part in [
            "the only KRaft controller (node 3 of pool controller)",
            "ephemeral storage",
            "loses the cluster metadata",
            "persistent-claim",
            "three controllers",
        ] {
            assert!(message.contains(part), "{part:?} in {message}");
        }
        let jbod = validate("single-controller-jbod").unwrap();
        let message = jbod.warnings[0].to_string();
        assert!(message.contains("ephemeral jbod volume 1"), "{message}");

        // Dropped configuration joins the same condition, after the storage warning.
        let mut f = test_fixtures::load("single-node");
        f.kafka.spec.kafka.config = Some(
            serde_json::from_value(serde_json::json!({"broker.id": 7, "num.io.threads": 4}))
                .unwrap(),
        );
        let v = validate_cluster(&f.kafka, &f.pools, &OperatorDefaults::default()).unwrap();
        let reasons: Vec<&str> = v.warnings.iter().map(ValidationWarning::reason).collect();
        assert_eq!(reasons, ["EphemeralSingleController", "ForbiddenConfigKey"]);
        let condition = warning_condition(&v.warnings).unwrap();
        assert_eq!(
            condition.reason.as_deref(),
            Some("EphemeralSingleController")
        );
        let message = condition.message.unwrap();
        assert!(message.contains("node 0 of pool solo"), "{message}");
        assert!(message.contains("\"broker.id\""), "{message}");
        assert_eq!(
            v.cluster.config.keys().collect::<Vec<_>>(),
            ["num.io.threads"]
        );
    }

    #[test]
    fn annotations_on_the_kafka_are_read() {
        let mut f = test_fixtures::load("separate-roles");
        let annotations = f.kafka.metadata.annotations.get_or_insert_default();
        annotations.insert(labels::SKIP_BROKER_SCALEDOWN_CHECK.into(), "true".into());
        annotations.insert(labels::MANUAL_ROLLING_UPDATE.into(), "True".into());
        let c = validate_cluster(&f.kafka, &f.pools, &OperatorDefaults::default())
            .unwrap()
            .cluster;
        assert!(c.skip_broker_scaledown_check && c.manual_rolling_update);
    }

    #[rstest]
    #[case::no_pools("invalid-no-pools", "NoNodePools", "oxbow.rs/cluster")]
    #[case::no_controller("invalid-no-controller", "NoControllerRole", "controller role")]
    #[case::controllers_scaled_to_zero(
        "invalid-controllers-zero",
        "NoControllerRole",
        "controller role"
    )]
    #[case::no_broker("invalid-no-broker", "NoBrokerRole", "broker role")]
    #[case::pool_without_roles("invalid-pool-without-roles", "NodePoolWithoutRoles", "pool empty")]
    #[case::duplicate_ids("invalid-duplicate-ids", "DuplicateNodeIds", "node ID 1")]
    #[case::unsupported_version("invalid-version", "UnsupportedKafkaVersion", "4.1.2")]
    #[case::metadata_too_new("invalid-metadata-version", "MetadataVersionTooNew", "4.2-IV0")]
    #[case::jbod_without_volumes("invalid-jbod", "JbodWithoutVolumes", "pool broker")]
    #[case::tls_auth_without_tls("invalid-tls-auth", "TlsAuthenticationWithoutTls", "tls: true")]
    #[case::reserved_port("invalid-reserved-port", "ReservedListenerPort", "9091")]
    #[case::bad_annotation("invalid-node-id-annotation", "InvalidNodeIdAnnotation", "broker")]
    #[case::bad_super_user("invalid-super-user", "InvalidSuperUser", "a;b")]
    fn invalid_clusters_are_refused_with_a_reason(
        #[case] fixture: &str,
        #[case] reason: &str,
        #[case] message_mentions: &str,
    ) {
        let err = validate(fixture).unwrap_err();
        assert_eq!(err.reason(), reason, "{err}");
        let condition = err.condition();
        assert_eq!(condition.reason.as_deref(), Some(reason));
        let message = condition.message.unwrap();
        assert!(message.contains(message_mentions), "{message}");
    }

    #[test]
    fn missing_uid_is_reported() {
        let mut f = test_fixtures::load("separate-roles");
        f.kafka.metadata.uid = None;
        let err = validate_cluster(&f.kafka, &f.pools, &OperatorDefaults::default()).unwrap_err();
        assert_eq!(err, ValidationError::MissingMetadata { field: "uid" });
    }

    #[test]
    fn duplicate_listener_names_and_ports_and_bad_names_are_refused() {
        let f = test_fixtures::load("separate-roles");
        let mut kafka = f.kafka.clone();
        let first = kafka.spec.kafka.listeners[0].clone();
        kafka.spec.kafka.listeners.push(first.clone());
        let err = validate_cluster(&kafka, &f.pools, &OperatorDefaults::default()).unwrap_err();
        assert_eq!(err.reason(), "DuplicateListenerName");

        let mut kafka = f.kafka.clone();
        let mut other = first.clone();
        other.name = "other".into();
        kafka.spec.kafka.listeners.push(other);
        let err = validate_cluster(&kafka, &f.pools, &OperatorDefaults::default()).unwrap_err();
        assert_eq!(err.reason(), "DuplicateListenerPort");

        let mut kafka = f.kafka.clone();
        kafka.spec.kafka.listeners[0].name = "Plain\nx".into();
        let err = validate_cluster(&kafka, &f.pools, &OperatorDefaults::default()).unwrap_err();
        assert_eq!(err.reason(), "InvalidListenerName");
    }

    #[test]
    fn advertised_host_overrides_that_would_break_the_config_are_refused() {
        let f = test_fixtures::load("all-listeners");
        let mut kafka = f.kafka.clone();
        let node = kafka
            .spec
            .kafka
            .listeners
            .iter_mut()
            .find(|l| l.name == "node")
            .unwrap();
        node.configuration
            .as_mut()
            .unwrap()
            .brokers
            .as_mut()
            .unwrap()[0]
            .advertised_host = Some("a.example.com,EVIL://x".into());
        let err = validate_cluster(&kafka, &f.pools, &OperatorDefaults::default()).unwrap_err();
        assert_eq!(err.reason(), "InvalidAdvertisedHost");
    }

    #[test]
    fn node_names_longer_than_a_dns_label_are_refused() {
        let mut f = test_fixtures::load("separate-roles");
        f.kafka.metadata.name = Some("c".repeat(55));
        for p in &mut f.pools {
            p.metadata
                .labels
                .as_mut()
                .unwrap()
                .insert(labels::CLUSTER.into(), "c".repeat(55));
        }
        let err = validate_cluster(&f.kafka, &f.pools, &OperatorDefaults::default()).unwrap_err();
        assert_eq!(err.reason(), "NodeNameTooLong");
    }
}
