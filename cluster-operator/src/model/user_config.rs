//! The user's `spec.kafka.config`: which keys Oxbow manages itself and therefore drops (with a
//! warning naming each), and how the remaining values become `server.properties` text values.
//! Pure: no I/O.
//!
//! The forbidden keys follow Strimzi's list for `spec.kafka.config`, adapted to KRaft-only Kafka 4:
//!
//! - listeners and their security, which Oxbow generates per node: `listeners`, `advertised.*`,
//!   `listener.*` (which includes `listener.security.protocol.map` and every
//!   `listener.name.<l>.*` override), `inter.broker.listener.name`, `ssl.*`, `sasl.*`,
//!   `security.*`, `principal.builder.class`, `early.start.listeners`;
//! - node identity and the KRaft quorum: `node.id`, `broker.id`, `broker.rack`, `process.roles`,
//!   `controller.*`;
//! - authorization: `authorizer.*`, `super.users`;
//! - storage: `log.dir`, `log.dirs`, `metadata.log.dir`;
//! - secrets Oxbow would have to hold: `password.*`;
//! - ZooKeeper settings, which Kafka 4 no longer reads: `zookeeper.*`.
//!
//! Exceptions (allowed although a prefix matches), because they tune rather than wire:
//! `ssl.cipher.suites`, `ssl.protocol`, `ssl.enabled.protocols`,
//! `ssl.secure.random.implementation`, `sasl.server.max.receive.size`, and the quorum timings
//! `controller.quorum.election.backoff.max.ms`, `controller.quorum.election.timeout.ms`,
//! `controller.quorum.fetch.timeout.ms`, `controller.quorum.request.timeout.ms`,
//! `controller.quorum.retry.backoff.ms` and `controller.socket.timeout.ms`.
//!
//! Unlike Strimzi, `broker.*` and `log.dir*` are not forbidden as prefixes: KRaft has tunables
//! there (`broker.heartbeat.interval.ms`, `broker.session.timeout.ms`,
//! `log.dir.failure.timeout.ms`) that users may need.

use std::collections::BTreeMap;

use shared_crds::common::ConfigMap;

/// Keys Oxbow sets itself; forbidden exactly.
pub const FORBIDDEN_KEYS: &[&str] = &[
    "listeners",
    "inter.broker.listener.name",
    "principal.builder.class",
    "early.start.listeners",
    "node.id",
    "broker.id",
    "broker.rack",
    "process.roles",
    "super.users",
    "log.dir",
    "log.dirs",
    "metadata.log.dir",
];

/// Key prefixes Oxbow owns; every key starting with one is forbidden unless it is in
/// [`ALLOWED_EXCEPTIONS`].
pub const FORBIDDEN_PREFIXES: &[&str] = &[
    "advertised.",
    "listener.",
    "ssl.",
    "sasl.",
    "security.",
    "password.",
    "controller.",
    "authorizer.",
    "zookeeper.",
];

/// Keys allowed although a forbidden prefix matches them.
pub const ALLOWED_EXCEPTIONS: &[&str] = &[
    "ssl.cipher.suites",
    "ssl.protocol",
    "ssl.enabled.protocols",
    "ssl.secure.random.implementation",
    "sasl.server.max.receive.size",
    "controller.quorum.election.backoff.max.ms",
    "controller.quorum.election.timeout.ms",
    "controller.quorum.fetch.timeout.ms",
    "controller.quorum.request.timeout.ms",
    "controller.quorum.retry.backoff.ms",
    "controller.socket.timeout.ms",
];

/// True if `key` is managed by Oxbow and must not come from `spec.kafka.config`.
pub fn is_forbidden(key: &str) -> bool {
    if ALLOWED_EXCEPTIONS.contains(&key) {
        return false;
    }
    FORBIDDEN_KEYS.contains(&key) || FORBIDDEN_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Something in `spec.kafka.config` that was dropped. Reported as a `Warning` condition; the
/// cluster is reconciled without it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigWarning {
    /// A key Oxbow manages itself.
    #[error(
        "spec.kafka.config key {key:?} is managed by Oxbow and was ignored; remove it from the Kafka resource"
    )]
    ForbiddenKey {
        /// The dropped key.
        key: String,
    },
    /// A value that is not a string, number or boolean.
    #[error(
        "spec.kafka.config key {key:?} has a {kind} value and was ignored; use a string, number or boolean"
    )]
    UnsupportedValue {
        /// The dropped key.
        key: String,
        /// `null`, `list` or `object`.
        kind: &'static str,
    },
}

impl ConfigWarning {
    /// Stable CamelCase reason for the `Warning` condition and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            ConfigWarning::ForbiddenKey { .. } => "ForbiddenConfigKey",
            ConfigWarning::UnsupportedValue { .. } => "UnsupportedConfigValue",
        }
    }

    /// The key the warning is about.
    pub fn key(&self) -> &str {
        match self {
            ConfigWarning::ForbiddenKey { key } | ConfigWarning::UnsupportedValue { key, .. } => {
                key
            }
        }
    }
}

/// The user's configuration with forbidden keys and unusable values removed, values rendered as
/// Kafka reads them; plus one warning per dropped key, in key order.
pub fn sanitize_user_config(config: &ConfigMap) -> (BTreeMap<String, String>, Vec<ConfigWarning>) {
    let mut kept = BTreeMap::new();
    let mut warnings = Vec::new();
    for (key, value) in config {
        if is_forbidden(key) {
            warnings.push(ConfigWarning::ForbiddenKey { key: key.clone() });
            continue;
        }
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            other => {
                let kind = match other {
                    serde_json::Value::Null => "null",
                    serde_json::Value::Array(_) => "list",
                    _ => "object",
                };
                warnings.push(ConfigWarning::UnsupportedValue {
                    key: key.clone(),
                    kind,
                });
                continue;
            }
        };
        kept.insert(key.clone(), text);
    }
    (kept, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("listeners")]
    #[case("advertised.listeners")]
    #[case("listener.security.protocol.map")]
    #[case("listener.name.plain-9092.ssl.client.auth")]
    #[case("inter.broker.listener.name")]
    #[case("ssl.keystore.location")]
    #[case("sasl.enabled.mechanisms")]
    #[case("security.inter.broker.protocol")]
    #[case("password.encoder.secret")]
    #[case("principal.builder.class")]
    #[case("node.id")]
    #[case("broker.id")]
    #[case("broker.rack")]
    #[case("process.roles")]
    #[case("controller.quorum.voters")]
    #[case("controller.listener.names")]
    #[case("authorizer.class.name")]
    #[case("super.users")]
    #[case("log.dir")]
    #[case("log.dirs")]
    #[case("metadata.log.dir")]
    #[case("zookeeper.connect")]
    #[case("early.start.listeners")]
    fn managed_keys_are_forbidden(#[case] key: &str) {
        assert!(is_forbidden(key), "{key}");
    }

    #[rstest]
    #[case("min.insync.replicas")]
    #[case("offsets.topic.replication.factor")]
    #[case("ssl.cipher.suites")]
    #[case("ssl.enabled.protocols")]
    #[case("sasl.server.max.receive.size")]
    #[case("controller.quorum.fetch.timeout.ms")]
    #[case("broker.session.timeout.ms")]
    #[case("log.dir.failure.timeout.ms")]
    #[case("log.retention.ms")]
    #[case("allow.everyone.if.no.acl.found")]
    #[case("listenerx")]
    fn tuning_keys_are_allowed(#[case] key: &str) {
        assert!(!is_forbidden(key), "{key}");
    }

    #[test]
    fn sanitizing_drops_forbidden_keys_and_odd_values_with_a_warning_each() {
        let config: ConfigMap = serde_json::from_value(serde_json::json!({
            "min.insync.replicas": 2,
            "log.retention.ms": "7200000",
            "auto.create.topics.enable": false,
            "log.cleaner.min.cleanable.ratio": 0.25,
            "listeners": "PLAINTEXT://:9092",
            "ssl.keystore.location": "/x",
            "num.partitions": null,
            "log.roll.ms": [1],
            "x": {"a": 1},
        }))
        .unwrap();
        let (kept, warnings) = sanitize_user_config(&config);
        assert_eq!(
            kept,
            BTreeMap::from([
                ("auto.create.topics.enable".into(), "false".into()),
                ("log.cleaner.min.cleanable.ratio".into(), "0.25".into()),
                ("log.retention.ms".into(), "7200000".into()),
                ("min.insync.replicas".into(), "2".into()),
            ])
        );
        let described: Vec<(&str, &str)> = warnings.iter().map(|w| (w.key(), w.reason())).collect();
        assert_eq!(
            described,
            [
                ("listeners", "ForbiddenConfigKey"),
                ("log.roll.ms", "UnsupportedConfigValue"),
                ("num.partitions", "UnsupportedConfigValue"),
                ("ssl.keystore.location", "ForbiddenConfigKey"),
                ("x", "UnsupportedConfigValue"),
            ]
        );
        assert!(warnings[0].to_string().contains("\"listeners\""));
        assert!(warnings[1].to_string().contains("list value"));
    }
}
