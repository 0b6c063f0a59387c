//! The `Kafka` custom resource: one KRaft Kafka cluster (its nodes come from KafkaNodePools),
//! its listeners, authorization, certificate authorities and entity operators, and its status.
//! Pure: no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::{core::v1::ResourceRequirements, networking::v1::NetworkPolicyPeer};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    CertificateAuthority, ConfigMap, JvmOptions, Logging, PodDisruptionBudgetTemplate, PodTemplate,
    Probe, ResourceTemplate, free_form_object,
};
use crate::condition::Condition;

/// The desired state of a Kafka cluster.
// Several printer columns share a `type_`; clippy takes the repeated helper arguments for
// duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "kafka.oxbow.rs",
    version = "v1beta1",
    kind = "Kafka",
    plural = "kafkas",
    namespaced,
    status = "KafkaStatus",
    shortname = "k",
    category = "oxbow",
    derive = "PartialEq",
    doc = "A KRaft Apache Kafka cluster managed by Oxbow. Its nodes are defined by KafkaNodePool resources labelled `oxbow.rs/cluster: <name>`.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Whether the cluster is reconciled and ready",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Warnings",
        type_ = "string",
        description = "Whether the operator reported warnings",
        json_path = r#".status.conditions[?(@.type=="Warning")].status"#
    ),
    printcolumn(
        name = "Kafka version",
        type_ = "string",
        description = "The Kafka version the cluster runs",
        json_path = ".status.kafkaVersion"
    ),
    printcolumn(
        name = "Metadata version",
        type_ = "string",
        description = "The KRaft metadata version the cluster uses",
        json_path = ".status.kafkaMetadataVersion"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaSpec {
    /// The Kafka brokers and controllers: version, listeners, configuration.
    pub kafka: KafkaClusterSpec,
    /// The topic and user operators deployed for this cluster. Absent: none are deployed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_operator: Option<EntityOperatorSpec>,
    /// The cluster CA, which signs the certificates of the Kafka nodes and of Oxbow's own clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_ca: Option<CertificateAuthority>,
    /// The clients CA, which signs the certificates of KafkaUsers with `tls` authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients_ca: Option<CertificateAuthority>,
}

/// Ports Oxbow uses itself on every Kafka node: 9090 (KRaft controllers), 9091 (replication and
/// Oxbow's operators), 9404 (metrics) and 9999 (JMX).
pub const RESERVED_PORTS: [i32; 4] = [9090, 9091, 9404, 9999];

/// The Kafka nodes' configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterSpec {
    /// The Kafka version, e.g. `4.1.0`. Defaults to the newest version this Oxbow release supports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The KRaft metadata version (`metadata.version`), e.g. `4.1-IV1` or `4.1`. Defaults to the
    /// one matching `version`. It can only be raised, and only after `version` is rolled out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_version: Option<String>,
    /// The container image of the Kafka nodes. Overrides the image chosen for `version`, which
    /// must still be the Kafka version inside the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The listeners through which clients reach the brokers. Names and ports must be unique.
    #[schemars(length(min = 1, max = 32))]
    #[schemars(extend("x-kubernetes-validations" = [
        {
            "rule": "self.all(l, self.exists_one(m, m.name == l.name))",
            "message": "listener names must be unique",
        },
        {
            "rule": "self.all(l, self.exists_one(m, m.port == l.port))",
            "message": "listener ports must be unique",
        },
    ]))]
    pub listeners: Vec<GenericKafkaListener>,
    /// Kafka broker and controller configuration (`server.properties` options). Options Oxbow
    /// manages itself (listeners, security, node identity, log directories) are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub config: Option<ConfigMap>,
    /// Authorization of Kafka clients. Absent: every authenticated client may do everything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<KafkaAuthorization>,
    /// Options of the Kafka nodes' JVM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jvm_options: Option<JvmOptions>,
    /// Logging of the Kafka nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
    /// Timing of the Kafka nodes' liveness check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
    /// Timing of the Kafka nodes' readiness check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    /// Customisation of the Kubernetes objects generated for the Kafka nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<KafkaClusterTemplate>,
}

/// One listener of the Kafka brokers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!has(self.authentication) || self.authentication.type != 'tls' || self.tls",
        "message": "authentication type tls (mutual TLS) needs a listener with tls: true",
        "fieldPath": ".authentication.type",
        "reason": "FieldValueForbidden",
    },
]))]
pub struct GenericKafkaListener {
    /// Name of the listener: up to 11 lower-case letters and digits, unique in the cluster. It
    /// is part of the names of the listener's Services.
    #[schemars(length(min = 1, max = 11), regex(pattern = r"^[a-z0-9]{1,11}$"))]
    pub name: String,
    /// Port of the listener inside the cluster: 9092 or above, unique, and not one of the ports
    /// Oxbow uses itself (9090, 9091, 9404, 9999).
    #[schemars(range(min = 9092, max = 65535))]
    #[schemars(extend("x-kubernetes-validations" = [
        {
            "rule": "!(self in [9090, 9091, 9404, 9999])",
            "message": "ports 9090, 9091, 9404 and 9999 are reserved by Oxbow",
        },
    ]))]
    pub port: i32,
    /// How the listener is exposed: `internal` (inside the Kubernetes cluster, through the
    /// headless brokers Service), `cluster-ip` (a ClusterIP Service per broker), `nodeport` or
    /// `loadbalancer`.
    #[serde(rename = "type")]
    pub type_: KafkaListenerType,
    /// Whether the listener encrypts traffic with TLS.
    pub tls: bool,
    /// How clients authenticate on this listener. Absent: they do not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication: Option<KafkaListenerAuthentication>,
    /// Host names, ports, annotations and labels of the listener's Services.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<GenericKafkaListenerConfiguration>,
    /// Who may connect to the listener (NetworkPolicy peers). Absent: everyone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_policy_peers: Option<Vec<NetworkPolicyPeer>>,
}

/// How a listener is exposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(transform = crate::common::field_describes_enum)]
pub enum KafkaListenerType {
    /// Inside the Kubernetes cluster only, through the headless brokers Service.
    Internal,
    /// Inside the Kubernetes cluster, through a ClusterIP Service per broker.
    ClusterIp,
    /// Outside the Kubernetes cluster, through NodePort Services.
    Nodeport,
    /// Outside the Kubernetes cluster, through LoadBalancer Services.
    Loadbalancer,
}

impl KafkaListenerType {
    /// True for the types that create a bootstrap Service and a Service per broker.
    pub fn has_per_broker_services(self) -> bool {
        !matches!(self, KafkaListenerType::Internal)
    }
}

/// Client authentication on a listener.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KafkaListenerAuthentication {
    /// Authentication type: `tls` (mutual TLS with certificates signed by the clients CA;
    /// needs `tls: true`) or `scram-sha-512` (SASL SCRAM-SHA-512).
    #[serde(rename = "type")]
    pub type_: ListenerAuthenticationType,
}

/// Client authentication mechanisms of a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(transform = crate::common::field_describes_enum)]
pub enum ListenerAuthenticationType {
    /// Mutual TLS: clients present certificates signed by the clients CA.
    Tls,
    /// SASL SCRAM-SHA-512 user names and passwords.
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
}

/// Service settings of a listener.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenericKafkaListenerConfiguration {
    /// The listener's bootstrap Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<ListenerBootstrapConfiguration>,
    /// Per-broker overrides, matched by node ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brokers: Option<Vec<ListenerBrokerConfiguration>>,
}

/// Settings of a listener's bootstrap Service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerBootstrapConfiguration {
    /// Extra DNS names or IP addresses added to the brokers' TLS certificates, for clients that
    /// reach the bootstrap Service through another name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alternative_names: Option<Vec<String>>,
    /// The bootstrap host name, added to the brokers' TLS certificates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The node port of the bootstrap Service (`nodeport` listeners).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub node_port: Option<i32>,
    /// Annotations added to the bootstrap Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Labels added to the bootstrap Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// Settings of one broker on a listener.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerBrokerConfiguration {
    /// The node ID of the broker these settings apply to.
    #[schemars(range(min = 0))]
    pub broker: i32,
    /// The host name or IP address the broker advertises to clients on this listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertised_host: Option<String>,
    /// The port the broker advertises to clients on this listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub advertised_port: Option<i32>,
    /// The broker's host name, added to its TLS certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The node port of the broker's Service (`nodeport` listeners).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub node_port: Option<i32>,
    /// Annotations added to the broker's Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Labels added to the broker's Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// Authorization of Kafka clients.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaAuthorization {
    /// Authorization type. Only `simple` is supported: Kafka's built-in ACL authorizer
    /// (StandardAuthorizer), with ACLs managed through KafkaUser resources.
    #[serde(rename = "type")]
    pub type_: KafkaAuthorizationType,
    /// Principals that bypass ACLs, e.g. `CN=admin` (a TLS user) or `admin` (a SCRAM user).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub super_users: Option<Vec<String>>,
}

/// Authorization mechanisms of a Kafka cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(transform = crate::common::field_describes_enum)]
pub enum KafkaAuthorizationType {
    /// Kafka's built-in ACL authorizer.
    Simple,
}

/// Customisation of the Kubernetes objects generated for the Kafka nodes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterTemplate {
    /// The Kafka node pods. A KafkaNodePool's own `template.pod` replaces this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodTemplate>,
    /// The bootstrap Service of the internal listeners.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap_service: Option<ResourceTemplate>,
    /// The headless Service of the Kafka nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brokers_service: Option<ResourceTemplate>,
    /// The per-broker Services of `cluster-ip`, `nodeport` and `loadbalancer` listeners.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_pod_service: Option<ResourceTemplate>,
    /// The PodDisruptionBudget of the Kafka nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<PodDisruptionBudgetTemplate>,
}

/// The topic and user operators of a cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntityOperatorSpec {
    /// The topic operator, which manages Kafka topics from KafkaTopic resources. Absent: not
    /// deployed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_operator: Option<EntityTopicOperatorSpec>,
    /// The user operator, which manages Kafka users, credentials and ACLs from KafkaUser
    /// resources. Absent: not deployed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_operator: Option<EntityUserOperatorSpec>,
}

/// Settings of the topic operator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntityTopicOperatorSpec {
    /// The namespace whose KafkaTopics are watched. Defaults to the Kafka resource's namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watched_namespace: Option<String>,
    /// The container image of the topic operator. Defaults to the one of this Oxbow release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Milliseconds between periodic reconciliations of all topics. Defaults to 120000.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub reconciliation_interval_ms: Option<i64>,
    /// CPU and memory of the topic operator container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Timing of the topic operator's liveness check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
    /// Timing of the topic operator's readiness check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
}

/// Settings of the user operator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntityUserOperatorSpec {
    /// The namespace whose KafkaUsers are watched. Defaults to the Kafka resource's namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watched_namespace: Option<String>,
    /// The container image of the user operator. Defaults to the one of this Oxbow release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Milliseconds between periodic reconciliations of all users. Defaults to 120000.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub reconciliation_interval_ms: Option<i64>,
    /// CPU and memory of the user operator container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Timing of the user operator's liveness check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
    /// Timing of the user operator's readiness check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    /// Prefix of the names of the Secrets holding the users' credentials. Defaults to none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_prefix: Option<String>,
}

/// The observed state of a Kafka cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaStatus {
    /// The status conditions; `Ready` says whether the cluster is reconciled and usable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// The `metadata.generation` the operator last reconciled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// How clients reach each listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listeners: Option<Vec<ListenerStatus>>,
    /// The KafkaNodePools that make up the cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_node_pools: Option<Vec<UsedNodePoolStatus>>,
    /// The Kafka cluster ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// The Kafka version the cluster runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_version: Option<String>,
    /// The KRaft metadata version the cluster uses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_metadata_version: Option<String>,
    /// The version of the Oxbow operator that last reconciled the cluster successfully.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_last_successful_version: Option<String>,
}

/// How clients reach one listener.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerStatus {
    /// The name of the listener.
    pub name: String,
    /// The bootstrap addresses of the listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<ListenerAddress>>,
    /// Comma-separated `host:port` pairs to use as `bootstrap.servers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap_servers: Option<String>,
    /// PEM certificates of the CA that signed the listener's certificates (TLS listeners only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificates: Option<Vec<String>>,
}

/// One bootstrap address of a listener.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerAddress {
    /// The DNS name or IP address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

/// A KafkaNodePool that is part of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsedNodePoolStatus {
    /// The name of the KafkaNodePool.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_internal_listeners_lack_per_broker_services() {
        assert!(!KafkaListenerType::Internal.has_per_broker_services());
        for t in [
            KafkaListenerType::ClusterIp,
            KafkaListenerType::Nodeport,
            KafkaListenerType::Loadbalancer,
        ] {
            assert!(t.has_per_broker_services(), "{t:?}");
        }
    }

    #[test]
    fn enum_values_use_strimzi_spelling() {
        assert_eq!(
            serde_json::to_value([KafkaListenerType::ClusterIp, KafkaListenerType::Nodeport])
                .unwrap(),
            serde_json::json!(["cluster-ip", "nodeport"])
        );
        assert_eq!(
            serde_json::to_value(ListenerAuthenticationType::ScramSha512).unwrap(),
            serde_json::json!("scram-sha-512")
        );
    }

    #[test]
    fn reserved_ports_match_the_schema_rule() {
        let crd = serde_json::to_string(&crate::crds()[0]).unwrap();
        let listed = RESERVED_PORTS.map(|p| p.to_string()).join(", ");
        assert!(
            crd.contains(&format!("!(self in [{listed}])")),
            "the CEL rule lists {listed}"
        );
    }
}
