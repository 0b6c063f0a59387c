//! `server.properties` of one Kafka node, as a pure function of the validated cluster, the node
//! and the advertised addresses observed for external listeners. The text is sorted and
//! deterministic, so that its revision changes exactly when a value does. Pure: no I/O.
//!
//! Every node has the KRaft settings (`process.roles`, `node.id`, the static quorum
//! `controller.quorum.voters`) and the `CONTROLLER` listener's TLS settings, because brokers
//! connect to the controllers as clients. Controllers listen on `CONTROLLER` (9090); brokers
//! listen on `REPLICATION` (9091, inter-broker traffic and Oxbow's operators) and on the user's
//! listeners. Both internal listeners use TLS with client certificates signed by the cluster
//! CA; every node's certificate has the subject `CN=<c>-kafka,O=io.oxbow` (decided in
//! [`crate::pki`]), so all nodes are one super user.
//!
//! Certificates are read from PEM files the pod builder mounts (see the `*_DIR` and `*_PATH`
//! constants): the node's Secret holds its key store (the node's private key followed by its
//! certificate chain), the cluster CA trust bundle and a copy of the clients CA trust bundle. The bundles hold every trusted CA certificate, so that a CA key can be
//! replaced without breaking connections (see [`crate::pki`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use shared_crds::kafka::{KafkaListenerType, ListenerAuthenticationType};
use shared_crds::names;

use crate::model::{KafkaNode, ResolvedCluster, ResolvedListener, SecurityProtocol};

/// Port of the KRaft controller listener (reserved by Oxbow, as in Strimzi).
pub const CONTROLLER_PORT: i32 = 9090;
/// Port of the replication listener (reserved by Oxbow, as in Strimzi).
pub const REPLICATION_PORT: i32 = 9091;
/// Name of the KRaft controller listener.
pub const CONTROLLER_LISTENER: &str = "CONTROLLER";
/// Name of the inter-broker listener, also used by Oxbow's operators.
pub const REPLICATION_LISTENER: &str = "REPLICATION";

/// Where the node's certificate Secret (`<c>-<pool>-<id>`) is mounted.
pub const NODE_CERTS_DIR: &str = "/opt/kafka/certs/node";
/// The node's key store: its PKCS#8 private key, unencrypted, followed by its certificate
/// chain, in PEM (the node Secret's `keystore.pem`).
pub const NODE_KEYSTORE_PATH: &str = "/opt/kafka/certs/node/keystore.pem";
/// The cluster CA trust bundle (the node Secret's `ca.crt`), trusted on `CONTROLLER` and
/// `REPLICATION`.
pub const CLUSTER_CA_TRUSTSTORE_PATH: &str = "/opt/kafka/certs/node/ca.crt";
/// The clients CA trust bundle (the node Secret's `clients-ca.crt`, a copy of the clients CA's
/// bundle), trusted on listeners with `tls` authentication.
pub const CLIENTS_CA_TRUSTSTORE_PATH: &str = "/opt/kafka/certs/node/clients-ca.crt";

/// The authorizer of `authorization.type: simple`.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
/// The SASL mechanism of `scram-sha-512` listeners.
pub const SCRAM_MECHANISM: &str = "SCRAM-SHA-512";
/// The server-side JAAS configuration of SCRAM listeners: credentials live in the cluster
/// metadata (managed by the user operator), so no options are needed.
pub const SCRAM_JAAS_CONFIG: &str =
    "org.apache.kafka.common.security.scram.ScramLoginModule required;";

/// Host and port a broker advertises to clients on one listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdvertisedAddress {
    /// DNS name or IP address.
    pub host: String,
    /// Port.
    pub port: i32,
}

/// Advertised addresses observed for each (listener name, node ID), e.g. node ports and
/// load-balancer addresses read from Services. Listeners of type `internal` and `cluster-ip`
/// need no entry (their in-cluster DNS names are derived); `nodeport` and `loadbalancer`
/// listeners do, unless the spec overrides the broker's address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdvertisedAddresses {
    by_listener_and_node: BTreeMap<(String, i32), AdvertisedAddress>,
}

impl AdvertisedAddresses {
    /// Records the address node `node_id` advertises on listener `listener` (the spec's name).
    pub fn insert(&mut self, listener: &str, node_id: i32, host: impl Into<String>, port: i32) {
        self.by_listener_and_node.insert(
            (listener.to_string(), node_id),
            AdvertisedAddress {
                host: host.into(),
                port,
            },
        );
    }

    /// The recorded address of node `node_id` on listener `listener`.
    pub fn get(&self, listener: &str, node_id: i32) -> Option<&AdvertisedAddress> {
        self.by_listener_and_node
            .get(&(listener.to_string(), node_id))
    }
}

/// Why a node's configuration cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KafkaConfigError {
    /// The node is not a desired node of the cluster.
    #[error("node {node_id} is not a node of the cluster")]
    UnknownNode {
        /// The node ID.
        node_id: i32,
    },
    /// An external listener's address is not known yet (e.g. the load balancer has none).
    #[error(
        "the address broker {node_id} advertises on listener {listener} is not known yet; waiting for its Service to get one (or set advertisedHost and advertisedPort for the broker in the listener's configuration)"
    )]
    AdvertisedAddressUnknown {
        /// The listener.
        listener: String,
        /// The broker's node ID.
        node_id: i32,
    },
    /// Text that is not `key=value` lines.
    #[error("line {line} of server.properties is not key=value")]
    UnparsableProperties {
        /// 1-based line number.
        line: usize,
    },
}

impl KafkaConfigError {
    /// Stable CamelCase reason for conditions, Events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            KafkaConfigError::UnknownNode { .. } => "UnknownNode",
            KafkaConfigError::AdvertisedAddressUnknown { .. } => "AdvertisedAddressUnknown",
            KafkaConfigError::UnparsableProperties { .. } => "UnparsableServerProperties",
        }
    }
}

/// The configuration of one node: keys and values, kept sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerProperties {
    entries: BTreeMap<String, String>,
}

/// First line of every generated file.
const HEADER: &str =
    "# server.properties generated by the Oxbow cluster operator; edits are overwritten.";

impl ServerProperties {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// Every entry, sorted by key.
    pub fn entries(&self) -> &BTreeMap<String, String> {
        &self.entries
    }

    /// Every entry, sorted by key.
    pub fn into_entries(self) -> BTreeMap<String, String> {
        self.entries
    }

    /// The file: a header line, then one `key=value` line per entry in key order, escaped as
    /// Java's `Properties.load` reads them (Kafka reads the file as ISO-8859-1, so everything
    /// outside printable ASCII is written as `\uXXXX`).
    pub fn render(&self) -> String {
        let mut text = String::from(HEADER);
        text.push('\n');
        for (key, value) in &self.entries {
            text.push_str(&escape(key, true));
            text.push('=');
            text.push_str(&escape(value, false));
            text.push('\n');
        }
        text
    }

    /// Reads text written by [`ServerProperties::render`] back (comments and blank lines are
    /// skipped), e.g. to compare a node's running configuration with the desired one.
    pub fn parse(text: &str) -> Result<ServerProperties, KafkaConfigError> {
        let mut entries = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
                continue;
            }
            let separator = unescaped_equals(trimmed)
                .ok_or(KafkaConfigError::UnparsableProperties { line: index + 1 })?;
            entries.insert(
                unescape(&trimmed[..separator]),
                unescape(&trimmed[separator + 1..]),
            );
        }
        Ok(ServerProperties { entries })
    }

    /// A short, stable fingerprint of the rendered file, for the pod annotation that records
    /// which configuration a node runs with. FNV-1a rather than `std`'s hasher, whose output may
    /// change between Rust releases and would then restart every node after an upgrade.
    pub fn revision(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.render().bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{hash:016x}")
    }

    fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.entries.insert(key.into(), value.into());
    }
}

fn escape(text: &str, is_key: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            // A leading space would be dropped; in keys, separators and comment markers would
            // end or hide the key.
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            '=' | ':' if is_key => {
                out.push('\\');
                out.push(c);
            }
            '#' | '!' if is_key && i == 0 => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out
}

fn unescaped_equals(line: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, b) in line.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'=' => return Some(i),
            _ => {}
        }
    }
    None
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut units: Vec<u16> = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&'u') {
            chars.next();
            let hex: String = chars.by_ref().take(4).collect();
            if let Ok(unit) = u16::from_str_radix(&hex, 16) {
                units.push(unit);
                continue;
            }
            out.push_str(&hex);
            continue;
        }
        if !units.is_empty() {
            out.push_str(&String::from_utf16_lossy(&units));
            units.clear();
        }
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('f') => out.push('\u{c}'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    if !units.is_empty() {
        out.push_str(&String::from_utf16_lossy(&units));
    }
    out
}

/// Builds `server.properties` for node `node_id` of `cluster`. `advertised` supplies the
/// addresses of `nodeport` and `loadbalancer` listeners; without one (and without an override
/// in the spec) the build fails with [`KafkaConfigError::AdvertisedAddressUnknown`], so the
/// caller waits instead of advertising a wrong address.
pub fn build_server_properties(
    cluster: &ResolvedCluster,
    node_id: i32,
    advertised: &AdvertisedAddresses,
) -> Result<ServerProperties, KafkaConfigError> {
    let node = cluster
        .node(node_id)
        .ok_or(KafkaConfigError::UnknownNode { node_id })?;
    let pool = cluster
        .pool(&node.pool)
        .expect("a desired node's pool exists");
    let host = cluster.node_host(&node);
    let mut props = ServerProperties::default();

    // Defaults for small clusters first, so that the user's configuration overrides them: the
    // internal topics get up to three replicas, as many as there are brokers, and tolerate one
    // replica out of sync (Kafka's own defaults, 3 and 2, fail with fewer than three brokers).
    // They only matter to brokers; keeping them off controllers spares the controllers a
    // restart when the number of brokers changes.
    if node.is_broker() {
        let replication_factor = cluster.broker_count().clamp(1, 3);
        let min_isr = (replication_factor - 1).max(1);
        for (key, value) in [
            ("offsets.topic.replication.factor", replication_factor),
            (
                "transaction.state.log.replication.factor",
                replication_factor,
            ),
            ("transaction.state.log.min.isr", min_isr),
            (
                "share.coordinator.state.topic.replication.factor",
                replication_factor,
            ),
            ("share.coordinator.state.topic.min.isr", min_isr),
        ] {
            props.set(key, value.to_string());
        }
    }
    for (key, value) in &cluster.config {
        props.set(key, value);
    }

    // Everything below is managed by Oxbow; validation removed these keys from the user's
    // configuration, so nothing is overwritten here.
    props.set("node.id", node.id.to_string());
    props.set("process.roles", process_roles(&node));
    props.set("controller.listener.names", CONTROLLER_LISTENER);
    props.set("controller.quorum.voters", quorum_voters(cluster));

    let mut listeners = Vec::new();
    let mut advertised_listeners = Vec::new();
    let mut protocols = vec![format!("{CONTROLLER_LISTENER}:SSL")];
    internal_tls_listener(&mut props, CONTROLLER_LISTENER);
    if node.is_controller() {
        listeners.push(format!("{CONTROLLER_LISTENER}://0.0.0.0:{CONTROLLER_PORT}"));
        // Kafka 3.9+ lets controllers advertise their listener (KIP-853); it makes the address
        // explicit instead of derived from the 0.0.0.0 bind address.
        advertised_listeners.push(format!("{CONTROLLER_LISTENER}://{host}:{CONTROLLER_PORT}"));
    }
    if node.is_broker() {
        protocols.push(format!("{REPLICATION_LISTENER}:SSL"));
        listeners.push(format!(
            "{REPLICATION_LISTENER}://0.0.0.0:{REPLICATION_PORT}"
        ));
        advertised_listeners.push(format!(
            "{REPLICATION_LISTENER}://{host}:{REPLICATION_PORT}"
        ));
        internal_tls_listener(&mut props, REPLICATION_LISTENER);
        props.set("inter.broker.listener.name", REPLICATION_LISTENER);
        for listener in &cluster.listeners {
            let name = listener.kafka_listener_name();
            let address = advertised_address(cluster, &node, listener, advertised)?;
            listeners.push(format!("{name}://0.0.0.0:{}", listener.port));
            advertised_listeners.push(format!("{name}://{}:{}", address.host, address.port));
            protocols.push(format!("{name}:{}", listener.security_protocol().as_str()));
            user_listener_security(&mut props, listener);
        }
    }
    props.set("listeners", listeners.join(","));
    props.set("advertised.listeners", advertised_listeners.join(","));
    props.set("listener.security.protocol.map", protocols.join(","));
    // No SASL mechanism is enabled unless a listener names its own; Kafka's default (GSSAPI)
    // would otherwise be offered on SASL listeners.
    props.set("sasl.enabled.mechanisms", "");
    props.set("ssl.endpoint.identification.algorithm", "HTTPS");

    props.set("log.dirs", pool.storage.log_dirs(node.id).join(","));
    props.set("metadata.log.dir", pool.storage.metadata_log_dir(node.id));

    if let Some(authorization) = &cluster.authorization {
        props.set("authorizer.class.name", STANDARD_AUTHORIZER);
        props.set("super.users", authorization.super_users.join(";"));
    }
    Ok(props)
}

fn process_roles(node: &KafkaNode) -> &'static str {
    match (node.is_broker(), node.is_controller()) {
        (true, true) => "broker,controller",
        (true, false) => "broker",
        _ => "controller",
    }
}

/// `<id>@<host>:9090` for every controller, by node ID.
fn quorum_voters(cluster: &ResolvedCluster) -> String {
    cluster
        .controllers()
        .iter()
        .map(|c| format!("{}@{}:{CONTROLLER_PORT}", c.id, cluster.node_host(c)))
        .collect::<Vec<_>>()
        .join(",")
}

/// TLS with required client certificates from the cluster CA, for `CONTROLLER` and
/// `REPLICATION`. The same settings serve the node as a client of these listeners.
fn internal_tls_listener(props: &mut ServerProperties, listener: &str) {
    let prefix = format!("listener.name.{}.", listener.to_ascii_lowercase());
    props.set(format!("{prefix}ssl.client.auth"), "required");
    props.set(format!("{prefix}ssl.keystore.type"), "PEM");
    props.set(format!("{prefix}ssl.keystore.location"), NODE_KEYSTORE_PATH);
    props.set(format!("{prefix}ssl.truststore.type"), "PEM");
    props.set(
        format!("{prefix}ssl.truststore.location"),
        CLUSTER_CA_TRUSTSTORE_PATH,
    );
}

fn user_listener_security(props: &mut ServerProperties, listener: &ResolvedListener) {
    let prefix = format!(
        "listener.name.{}.",
        listener.kafka_listener_name().to_ascii_lowercase()
    );
    if listener.tls {
        props.set(format!("{prefix}ssl.keystore.type"), "PEM");
        props.set(format!("{prefix}ssl.keystore.location"), NODE_KEYSTORE_PATH);
    }
    match listener.authentication {
        Some(ListenerAuthenticationType::Tls) => {
            props.set(format!("{prefix}ssl.client.auth"), "required");
            props.set(format!("{prefix}ssl.truststore.type"), "PEM");
            props.set(
                format!("{prefix}ssl.truststore.location"),
                CLIENTS_CA_TRUSTSTORE_PATH,
            );
        }
        Some(ListenerAuthenticationType::ScramSha512) => {
            debug_assert!(matches!(
                listener.security_protocol(),
                SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
            ));
            props.set(format!("{prefix}sasl.enabled.mechanisms"), SCRAM_MECHANISM);
            props.set(
                format!(
                    "{prefix}{}.sasl.jaas.config",
                    SCRAM_MECHANISM.to_ascii_lowercase()
                ),
                SCRAM_JAAS_CONFIG,
            );
        }
        None => {}
    }
}

/// The address `node` advertises on `listener`: the spec's per-broker override, else the
/// observed address, else (for in-cluster listener types) the node's or its Service's DNS name.
fn advertised_address(
    cluster: &ResolvedCluster,
    node: &KafkaNode,
    listener: &ResolvedListener,
    observed: &AdvertisedAddresses,
) -> Result<AdvertisedAddress, KafkaConfigError> {
    let overridden = listener.broker_override(node.id);
    let observed = observed.get(&listener.name, node.id);
    let derived = match listener.type_ {
        KafkaListenerType::Internal => Some(cluster.node_host(node)),
        KafkaListenerType::ClusterIp => Some(format!(
            "{}.{}.svc",
            names::per_broker_service(&cluster.name, &node.pool, &listener.name, node.id),
            cluster.namespace
        )),
        KafkaListenerType::Nodeport | KafkaListenerType::Loadbalancer => None,
    };
    let host = overridden
        .and_then(|o| o.advertised_host.clone())
        .or_else(|| observed.map(|a| a.host.clone()))
        .or(derived);
    let port = overridden
        .and_then(|o| o.advertised_port)
        .or_else(|| observed.map(|a| a.port))
        .or_else(|| {
            matches!(
                listener.type_,
                KafkaListenerType::Internal | KafkaListenerType::ClusterIp
            )
            .then_some(listener.port)
        });
    match (host, port) {
        (Some(host), Some(port)) => Ok(AdvertisedAddress { host, port }),
        _ => Err(KafkaConfigError::AdvertisedAddressUnknown {
            listener: listener.name.clone(),
            node_id: node.id,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures;
    use rstest::rstest;

    /// Addresses for the external listeners of `all-listeners` (brokers 0 and 1).
    fn external_addresses() -> AdvertisedAddresses {
        let mut a = AdvertisedAddresses::default();
        for id in [0, 1] {
            a.insert("node", id, format!("10.0.0.{id}"), 32000 + id);
            a.insert("lb", id, format!("lb-{id}.example.com"), 9097);
        }
        a
    }

    fn build(fixture: &str, node_id: i32) -> ServerProperties {
        build_server_properties(
            &test_fixtures::resolved(fixture),
            node_id,
            &external_addresses(),
        )
        .unwrap()
    }

    #[test]
    fn controller_only_node() {
        // separate-roles: brokers 0-2 (ephemeral), controllers 3-5 (persistent claims).
        let expected = "\
# server.properties generated by the Oxbow cluster operator; edits are overwritten.
advertised.listeners=CONTROLLER://my-cluster-controller-3.my-cluster-kafka-brokers.kafka.svc:9090
controller.listener.names=CONTROLLER
controller.quorum.voters=3@my-cluster-controller-3.my-cluster-kafka-brokers.kafka.svc:9090,4@my-cluster-controller-4.my-cluster-kafka-brokers.kafka.svc:9090,5@my-cluster-controller-5.my-cluster-kafka-brokers.kafka.svc:9090
listener.name.controller.ssl.client.auth=required
listener.name.controller.ssl.keystore.location=/opt/kafka/certs/node/keystore.pem
listener.name.controller.ssl.keystore.type=PEM
listener.name.controller.ssl.truststore.location=/opt/kafka/certs/node/ca.crt
listener.name.controller.ssl.truststore.type=PEM
listener.security.protocol.map=CONTROLLER:SSL
listeners=CONTROLLER://0.0.0.0:9090
log.dirs=/var/lib/kafka/data/kafka-log3
metadata.log.dir=/var/lib/kafka/data/kafka-log3
min.insync.replicas=2
node.id=3
process.roles=controller
sasl.enabled.mechanisms=
ssl.endpoint.identification.algorithm=HTTPS
";
        assert_eq!(build("separate-roles", 3).render(), expected);
    }

    #[test]
    fn broker_only_node() {
        let expected = "\
# server.properties generated by the Oxbow cluster operator; edits are overwritten.
advertised.listeners=REPLICATION://my-cluster-broker-1.my-cluster-kafka-brokers.kafka.svc:9091,PLAIN-9092://my-cluster-broker-1.my-cluster-kafka-brokers.kafka.svc:9092
controller.listener.names=CONTROLLER
controller.quorum.voters=3@my-cluster-controller-3.my-cluster-kafka-brokers.kafka.svc:9090,4@my-cluster-controller-4.my-cluster-kafka-brokers.kafka.svc:9090,5@my-cluster-controller-5.my-cluster-kafka-brokers.kafka.svc:9090
inter.broker.listener.name=REPLICATION
listener.name.controller.ssl.client.auth=required
listener.name.controller.ssl.keystore.location=/opt/kafka/certs/node/keystore.pem
listener.name.controller.ssl.keystore.type=PEM
listener.name.controller.ssl.truststore.location=/opt/kafka/certs/node/ca.crt
listener.name.controller.ssl.truststore.type=PEM
listener.name.replication.ssl.client.auth=required
listener.name.replication.ssl.keystore.location=/opt/kafka/certs/node/keystore.pem
listener.name.replication.ssl.keystore.type=PEM
listener.name.replication.ssl.truststore.location=/opt/kafka/certs/node/ca.crt
listener.name.replication.ssl.truststore.type=PEM
listener.security.protocol.map=CONTROLLER:SSL,REPLICATION:SSL,PLAIN-9092:PLAINTEXT
listeners=REPLICATION://0.0.0.0:9091,PLAIN-9092://0.0.0.0:9092
log.dirs=/var/lib/kafka/data/kafka-log1
metadata.log.dir=/var/lib/kafka/data/kafka-log1
min.insync.replicas=2
node.id=1
offsets.topic.replication.factor=3
process.roles=broker
sasl.enabled.mechanisms=
share.coordinator.state.topic.min.isr=2
share.coordinator.state.topic.replication.factor=3
ssl.endpoint.identification.algorithm=HTTPS
transaction.state.log.min.isr=2
transaction.state.log.replication.factor=3
";
        assert_eq!(build("separate-roles", 1).render(), expected);
    }

    #[rstest]
    #[case::roles("combined", 1, "process.roles", "broker,controller")]
    #[case::voters(
        "combined",
        1,
        "controller.quorum.voters",
        "0@small-dual-0.small-kafka-brokers.dev.svc:9090,1@small-dual-1.small-kafka-brokers.dev.svc:9090,2@small-dual-2.small-kafka-brokers.dev.svc:9090"
    )]
    #[case::listeners(
        "combined",
        1,
        "listeners",
        "CONTROLLER://0.0.0.0:9090,REPLICATION://0.0.0.0:9091,PLAIN-9092://0.0.0.0:9092"
    )]
    #[case::advertised(
        "combined",
        2,
        "advertised.listeners",
        "CONTROLLER://small-dual-2.small-kafka-brokers.dev.svc:9090,REPLICATION://small-dual-2.small-kafka-brokers.dev.svc:9091,PLAIN-9092://small-dual-2.small-kafka-brokers.dev.svc:9092"
    )]
    #[case::protocols(
        "combined",
        1,
        "listener.security.protocol.map",
        "CONTROLLER:SSL,REPLICATION:SSL,PLAIN-9092:PLAINTEXT"
    )]
    #[case::jbod_log_dirs(
        "combined",
        0,
        "log.dirs",
        "/var/lib/kafka/data-0/kafka-log0,/var/lib/kafka/data-1/kafka-log0"
    )]
    #[case::jbod_metadata_dir(
        "combined",
        0,
        "metadata.log.dir",
        "/var/lib/kafka/data-1/kafka-log0"
    )]
    #[case::small_cluster_rf("single-node", 0, "offsets.topic.replication.factor", "1")]
    #[case::small_cluster_min_isr("single-node", 0, "transaction.state.log.min.isr", "1")]
    #[case::two_brokers_rf("all-listeners", 0, "transaction.state.log.replication.factor", "2")]
    #[case::two_brokers_min_isr("all-listeners", 0, "share.coordinator.state.topic.min.isr", "1")]
    #[case::plain_protocol(
        "all-listeners",
        0,
        "listener.security.protocol.map",
        "CONTROLLER:SSL,REPLICATION:SSL,CLUSTERIP-9098:SSL,LB-9097:SASL_SSL,MTLS-9094:SSL,NODE-9096:SSL,PLAIN-9092:PLAINTEXT,SCRAM-9095:SASL_PLAINTEXT,TLS-9093:SSL"
    )]
    #[case::tls_keystore(
        "all-listeners",
        0,
        "listener.name.tls-9093.ssl.keystore.location",
        NODE_KEYSTORE_PATH
    )]
    #[case::tls_keystore_type(
        "all-listeners",
        0,
        "listener.name.tls-9093.ssl.keystore.type",
        "PEM"
    )]
    #[case::mtls_client_auth(
        "all-listeners",
        0,
        "listener.name.mtls-9094.ssl.client.auth",
        "required"
    )]
    #[case::mtls_truststore(
        "all-listeners",
        0,
        "listener.name.mtls-9094.ssl.truststore.location",
        CLIENTS_CA_TRUSTSTORE_PATH
    )]
    #[case::mtls_truststore_type(
        "all-listeners",
        0,
        "listener.name.mtls-9094.ssl.truststore.type",
        "PEM"
    )]
    #[case::scram_mechanism(
        "all-listeners",
        0,
        "listener.name.scram-9095.sasl.enabled.mechanisms",
        "SCRAM-SHA-512"
    )]
    #[case::scram_jaas(
        "all-listeners",
        0,
        "listener.name.scram-9095.scram-sha-512.sasl.jaas.config",
        "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    )]
    #[case::scram_tls_mechanism(
        "all-listeners",
        0,
        "listener.name.lb-9097.sasl.enabled.mechanisms",
        "SCRAM-SHA-512"
    )]
    #[case::scram_tls_keystore(
        "all-listeners",
        0,
        "listener.name.lb-9097.ssl.keystore.location",
        NODE_KEYSTORE_PATH
    )]
    #[case::authorizer("all-listeners", 0, "authorizer.class.name", STANDARD_AUTHORIZER)]
    #[case::authorizer_on_controllers(
        "all-listeners",
        2,
        "authorizer.class.name",
        STANDARD_AUTHORIZER
    )]
    #[case::super_users(
        "all-listeners",
        2,
        "super.users",
        "User:CN=my-cluster-kafka,O=io.oxbow;User:CN=my-cluster-topic-operator,O=io.oxbow;User:CN=my-cluster-user-operator,O=io.oxbow;User:CN=my-cluster-cluster-operator,O=io.oxbow;User:CN=admin;User:alice"
    )]
    #[case::user_config_kept("forbidden-config", 0, "min.insync.replicas", "2")]
    #[case::allowed_exception_kept(
        "forbidden-config",
        0,
        "ssl.cipher.suites",
        "TLS_AES_256_GCM_SHA384"
    )]
    #[case::forbidden_node_id_ignored("forbidden-config", 1, "node.id", "1")]
    #[case::forbidden_listeners_ignored(
        "forbidden-config",
        0,
        "listeners",
        "CONTROLLER://0.0.0.0:9090,REPLICATION://0.0.0.0:9091,PLAIN-9092://0.0.0.0:9092"
    )]
    #[case::forbidden_authorizer_ignored("forbidden-config", 0, "authorizer.class.name", "")]
    #[case::forbidden_log_dirs_ignored(
        "forbidden-config",
        0,
        "log.dirs",
        "/var/lib/kafka/data/kafka-log0"
    )]
    fn config_lines(
        #[case] fixture: &str,
        #[case] node_id: i32,
        #[case] key: &str,
        #[case] expected: &str,
    ) {
        let props = build(fixture, node_id);
        // An empty expectation means "absent".
        let expected = (!expected.is_empty()).then_some(expected);
        assert_eq!(
            props.get(key),
            expected,
            "{key} of node {node_id} in {fixture}"
        );
    }

    #[rstest]
    #[case::plain(
        "plain",
        "PLAIN-9092://my-cluster-broker-0.my-cluster-kafka-brokers.kafka.svc:9092"
    )]
    #[case::internal_tls(
        "tls",
        "TLS-9093://my-cluster-broker-0.my-cluster-kafka-brokers.kafka.svc:9093"
    )]
    #[case::cluster_ip(
        "clusterip",
        "CLUSTERIP-9098://my-cluster-broker-clusterip-0.kafka.svc:9098"
    )]
    #[case::nodeport_overridden_in_spec("node", "NODE-9096://node0.example.com:31000")]
    #[case::loadbalancer_observed("lb", "LB-9097://lb-0.example.com:9097")]
    fn advertised_addresses_per_listener_type(#[case] listener: &str, #[case] entry: &str) {
        let props = build("all-listeners", 0);
        let advertised: Vec<&str> = props
            .get("advertised.listeners")
            .unwrap()
            .split(',')
            .collect();
        assert!(advertised.contains(&entry), "{listener}: {advertised:?}");
    }

    #[test]
    fn observed_nodeport_address_is_used_without_an_override() {
        let props = build("all-listeners", 1);
        let advertised = props.get("advertised.listeners").unwrap();
        assert!(
            advertised.contains("NODE-9096://10.0.0.1:32001"),
            "{advertised}"
        );
    }

    #[test]
    fn an_unknown_external_address_fails_instead_of_guessing() {
        let c = test_fixtures::resolved("all-listeners");
        let err = build_server_properties(&c, 1, &AdvertisedAddresses::default()).unwrap_err();
        // Broker 0 has an override for "node"; broker 1 has nothing for "lb" or "node".
        assert_eq!(
            err,
            KafkaConfigError::AdvertisedAddressUnknown {
                listener: "lb".into(),
                node_id: 1
            }
        );
        assert_eq!(err.reason(), "AdvertisedAddressUnknown");
        // Controllers have no user listeners, so they need no address.
        assert!(build_server_properties(&c, 2, &AdvertisedAddresses::default()).is_ok());
    }

    #[test]
    fn controller_only_nodes_have_no_broker_settings() {
        let props = build("all-listeners", 2);
        for key in [
            "inter.broker.listener.name",
            "listener.name.replication.ssl.keystore.location",
            "listener.name.plain-9092.ssl.keystore.location",
            "listener.name.scram-9095.sasl.enabled.mechanisms",
            "offsets.topic.replication.factor",
        ] {
            assert_eq!(props.get(key), None, "{key}");
        }
        assert_eq!(props.get("listeners"), Some("CONTROLLER://0.0.0.0:9090"));
    }

    #[test]
    fn brokers_carry_the_controller_listener_settings_as_clients() {
        let props = build("separate-roles", 0);
        assert_eq!(props.get("controller.listener.names"), Some("CONTROLLER"));
        assert_eq!(
            props.get("listener.name.controller.ssl.truststore.location"),
            Some(CLUSTER_CA_TRUSTSTORE_PATH)
        );
        assert!(!props.get("listeners").unwrap().contains("CONTROLLER"));
        assert!(
            !props
                .get("controller.quorum.voters")
                .unwrap()
                .contains("0@")
        );
    }

    #[test]
    fn without_authorization_there_is_no_authorizer_and_no_super_users() {
        let props = build("separate-roles", 0);
        assert_eq!(props.get("authorizer.class.name"), None);
        assert_eq!(props.get("super.users"), None);
    }

    #[test]
    fn the_users_config_overrides_the_small_cluster_defaults() {
        let mut c = test_fixtures::resolved("single-node");
        c.config
            .insert("offsets.topic.replication.factor".into(), "5".into());
        let props = build_server_properties(&c, 0, &AdvertisedAddresses::default()).unwrap();
        assert_eq!(props.get("offsets.topic.replication.factor"), Some("5"));
        assert_eq!(
            props.get("transaction.state.log.replication.factor"),
            Some("1")
        );
    }

    #[test]
    fn unknown_nodes_are_refused() {
        let err = build_server_properties(
            &test_fixtures::resolved("combined"),
            7,
            &AdvertisedAddresses::default(),
        )
        .unwrap_err();
        assert_eq!(err.reason(), "UnknownNode");
    }

    #[test]
    fn rendering_is_sorted_and_deterministic() {
        let first = build("all-listeners", 0).render();
        assert_eq!(first, build("all-listeners", 0).render());
        let keys: Vec<&str> = first
            .lines()
            .skip(1)
            .map(|l| l.split('=').next().unwrap())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn rendering_escapes_what_properties_files_would_misread() {
        let mut props = ServerProperties::default();
        props.set("a key:with=odd", " leading space\\back\nnew line");
        props.set("unicode", "é€😀");
        let text = props.render();
        assert!(
            text.contains("a\\ key\\:with\\=odd=\\ leading space\\\\back\\nnew line\n"),
            "{text}"
        );
        assert!(
            text.contains("unicode=\\u00e9\\u20ac\\ud83d\\ude00\n"),
            "{text}"
        );
        assert!(text.is_ascii());
        assert_eq!(ServerProperties::parse(&text).unwrap(), props);
    }

    #[test]
    fn built_configurations_parse_back_unchanged() {
        for (fixture, node) in [("all-listeners", 0), ("all-listeners", 2), ("combined", 1)] {
            let props = build(fixture, node);
            assert_eq!(ServerProperties::parse(&props.render()).unwrap(), props);
        }
        assert_eq!(
            ServerProperties::parse("# c\nno separator\n").unwrap_err(),
            KafkaConfigError::UnparsableProperties { line: 2 }
        );
    }

    #[test]
    fn certificate_paths_name_the_entries_of_the_pki_secrets() {
        use crate::pki::node_certs;
        assert_eq!(
            NODE_KEYSTORE_PATH,
            format!("{NODE_CERTS_DIR}/{}", node_certs::KEYSTORE)
        );
        assert_eq!(
            CLUSTER_CA_TRUSTSTORE_PATH,
            format!("{NODE_CERTS_DIR}/{}", node_certs::CA_CERT)
        );
        assert_eq!(
            CLIENTS_CA_TRUSTSTORE_PATH,
            format!("{NODE_CERTS_DIR}/{}", node_certs::CLIENTS_CA_CERT)
        );
    }

    #[test]
    fn the_revision_follows_the_content() {
        let props = build("separate-roles", 0);
        assert_eq!(props.revision(), build("separate-roles", 0).revision());
        assert_eq!(props.revision().len(), 16);
        let mut changed = props.clone();
        changed.set("min.insync.replicas", "1");
        assert_ne!(props.revision(), changed.revision());
    }
}
