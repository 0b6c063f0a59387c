//! The names of the Kubernetes objects Oxbow generates for a Kafka cluster, in one place so that
//! the cluster operator (which creates them), the entity operators and the tests (which read them)
//! agree. They follow Strimzi's naming where Strimzi has an equivalent. Pure: no I/O.

/// Service for bootstrapping clients of the internal listeners: `<cluster>-kafka-bootstrap`.
pub fn bootstrap_service(cluster: &str) -> String {
    format!("{cluster}-kafka-bootstrap")
}

/// Headless Service giving every Kafka node a DNS name: `<cluster>-kafka-brokers`.
pub fn brokers_service(cluster: &str) -> String {
    format!("{cluster}-kafka-brokers")
}

/// Bootstrap Service of an external (`nodeport`, `loadbalancer`, `cluster-ip`) listener:
/// `<cluster>-kafka-<listener>-bootstrap`.
pub fn external_bootstrap_service(cluster: &str, listener: &str) -> String {
    format!("{cluster}-kafka-{listener}-bootstrap")
}

/// Per-broker Service of an external listener: `<cluster>-<pool>-<listener>-<id>`.
pub fn per_broker_service(cluster: &str, pool: &str, listener: &str, node_id: i32) -> String {
    format!("{cluster}-{pool}-{listener}-{node_id}")
}

/// A Kafka node: the name of its pod, of the ConfigMap holding its configuration and of the
/// Secret holding its certificate: `<cluster>-<pool>-<id>`.
pub fn kafka_node(cluster: &str, pool: &str, node_id: i32) -> String {
    format!("{cluster}-{pool}-{node_id}")
}

/// The fully qualified host name of a Kafka node inside the Kubernetes cluster:
/// `<node>.<cluster>-kafka-brokers.<namespace>.svc`.
pub fn kafka_node_host(cluster: &str, pool: &str, node_id: i32, namespace: &str) -> String {
    format!(
        "{}.{}.{namespace}.svc",
        kafka_node(cluster, pool, node_id),
        brokers_service(cluster)
    )
}

/// PersistentVolumeClaim of a Kafka node's data volume: `data-<cluster>-<pool>-<id>`, or
/// `data-<volume>-<cluster>-<pool>-<id>` for a volume of `jbod` storage.
pub fn data_volume_claim(
    cluster: &str,
    pool: &str,
    node_id: i32,
    jbod_volume: Option<i32>,
) -> String {
    match jbod_volume {
        Some(volume) => format!("data-{volume}-{}", kafka_node(cluster, pool, node_id)),
        None => format!("data-{}", kafka_node(cluster, pool, node_id)),
    }
}

/// Selector-level name of the Kafka nodes of a cluster (ServiceAccount, PodDisruptionBudget,
/// NetworkPolicy, and the `oxbow.rs/name` label of the node pods): `<cluster>-kafka`.
pub fn kafka_component(cluster: &str) -> String {
    format!("{cluster}-kafka")
}

/// ServiceAccount of the Kafka node pods: `<cluster>-kafka`. The nodes never call the
/// Kubernetes API; the account exists so that they do not run as the namespace's `default`.
pub fn kafka_service_account(cluster: &str) -> String {
    kafka_component(cluster)
}

/// Secret with the cluster CA's private key: `<cluster>-cluster-ca`.
pub fn cluster_ca_key_secret(cluster: &str) -> String {
    format!("{cluster}-cluster-ca")
}

/// Secret with the cluster CA's certificate, which clients trust: `<cluster>-cluster-ca-cert`.
pub fn cluster_ca_cert_secret(cluster: &str) -> String {
    format!("{cluster}-cluster-ca-cert")
}

/// Secret with the clients CA's private key: `<cluster>-clients-ca`.
pub fn clients_ca_key_secret(cluster: &str) -> String {
    format!("{cluster}-clients-ca")
}

/// Secret with the clients CA's certificate: `<cluster>-clients-ca-cert`.
pub fn clients_ca_cert_secret(cluster: &str) -> String {
    format!("{cluster}-clients-ca-cert")
}

/// Deployment (and ServiceAccount, Role, RoleBinding) of the topic operator:
/// `<cluster>-topic-operator`.
pub fn topic_operator(cluster: &str) -> String {
    format!("{cluster}-topic-operator")
}

/// Deployment (and ServiceAccount, Role, RoleBinding) of the user operator:
/// `<cluster>-user-operator`.
pub fn user_operator(cluster: &str) -> String {
    format!("{cluster}-user-operator")
}

/// Secret with the topic operator's client certificate: `<cluster>-topic-operator-certs`.
pub fn topic_operator_certs(cluster: &str) -> String {
    format!("{}-certs", topic_operator(cluster))
}

/// Secret with the user operator's client certificate: `<cluster>-user-operator-certs`.
pub fn user_operator_certs(cluster: &str) -> String {
    format!("{}-certs", user_operator(cluster))
}

/// Secret with the cluster operator's client certificate for this cluster:
/// `<cluster>-cluster-operator-certs`.
pub fn cluster_operator_certs(cluster: &str) -> String {
    format!("{cluster}-cluster-operator-certs")
}

/// Secret holding a KafkaUser's credentials: `<secretPrefix><user>` (no prefix by default).
pub fn user_secret(secret_prefix: Option<&str>, user: &str) -> String {
    format!("{}{user}", secret_prefix.unwrap_or(""))
}

/// The Kafka principal name of a KafkaUser with `tls` or `tls-external` authentication:
/// `CN=<user>`; users with `scram-sha-512` authentication are known by their plain name.
pub fn tls_user_principal_name(user: &str) -> String {
    format!("CN={user}")
}

/// NetworkPolicy that guards the Kafka nodes of a cluster: `<cluster>-network-policy-kafka`.
pub fn kafka_network_policy(cluster: &str) -> String {
    format!("{cluster}-network-policy-kafka")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_level_names() {
        assert_eq!(
            bootstrap_service("my-cluster"),
            "my-cluster-kafka-bootstrap"
        );
        assert_eq!(brokers_service("my-cluster"), "my-cluster-kafka-brokers");
        assert_eq!(kafka_component("my-cluster"), "my-cluster-kafka");
        assert_eq!(kafka_service_account("my-cluster"), "my-cluster-kafka");
        assert_eq!(
            external_bootstrap_service("c", "ext"),
            "c-kafka-ext-bootstrap"
        );
        assert_eq!(topic_operator("c"), "c-topic-operator");
        assert_eq!(user_operator("c"), "c-user-operator");
        assert_eq!(topic_operator_certs("c"), "c-topic-operator-certs");
        assert_eq!(user_operator_certs("c"), "c-user-operator-certs");
        assert_eq!(cluster_operator_certs("c"), "c-cluster-operator-certs");
        assert_eq!(kafka_network_policy("c"), "c-network-policy-kafka");
    }

    #[test]
    fn ca_secret_names() {
        assert_eq!(cluster_ca_key_secret("c"), "c-cluster-ca");
        assert_eq!(cluster_ca_cert_secret("c"), "c-cluster-ca-cert");
        assert_eq!(clients_ca_key_secret("c"), "c-clients-ca");
        assert_eq!(clients_ca_cert_secret("c"), "c-clients-ca-cert");
    }

    #[test]
    fn node_level_names() {
        assert_eq!(kafka_node("my-cluster", "broker", 3), "my-cluster-broker-3");
        assert_eq!(
            kafka_node_host("my-cluster", "broker", 3, "kafka"),
            "my-cluster-broker-3.my-cluster-kafka-brokers.kafka.svc"
        );
        assert_eq!(
            per_broker_service("c", "broker", "ext", 7),
            "c-broker-ext-7"
        );
        assert_eq!(data_volume_claim("c", "pool", 2, None), "data-c-pool-2");
        assert_eq!(
            data_volume_claim("c", "pool", 2, Some(0)),
            "data-0-c-pool-2"
        );
    }

    #[test]
    fn user_names() {
        assert_eq!(user_secret(None, "alice"), "alice");
        assert_eq!(user_secret(Some("kafka-"), "alice"), "kafka-alice");
        assert_eq!(tls_user_principal_name("alice"), "CN=alice");
    }
}
