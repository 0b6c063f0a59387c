//! The cluster operator's settings, read once at start from `OXBOW_*` environment variables. A
//! missing or malformed setting stops the operator with a message naming the variable.
//! May touch: nothing but the lookup function.

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use oxbow_runtime::{
    settings::{SettingError, Settings},
    telemetry::LogFormat,
};

use crate::model::{OperatorDefaults, versions};

/// The image of the topic and user operators when neither the Kafka resource nor
/// `OXBOW_OPERATOR_IMAGE` names one: the Oxbow image of this build.
pub const DEFAULT_OPERATOR_IMAGE: &str =
    concat!("ghcr.io/oxbow-rs/oxbow:", env!("CARGO_PKG_VERSION"));

/// Which namespaces the operator watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Namespaces {
    /// Every namespace (`OXBOW_NAMESPACES=*`; needs the ClusterRoles bound cluster-wide).
    All,
    /// These namespaces.
    List(Vec<String>),
}

/// Opt-in Lease leader election, so that two replicas can run safely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderElection {
    /// Namespace of the Lease (`OXBOW_LEADER_ELECTION_NAMESPACE`, else `POD_NAMESPACE`).
    pub namespace: String,
    /// Name of the Lease (`OXBOW_LEADER_ELECTION_LEASE_NAME`).
    pub lease_name: String,
    /// This replica's identity (`POD_NAME`, else the host name).
    pub identity: String,
    /// How long a lease lasts without renewal.
    pub lease_duration: Duration,
}

/// Everything the cluster operator is configured with.
#[derive(Clone, Debug)]
pub struct Config {
    pub namespaces: Namespaces,
    pub full_reconciliation_interval: Duration,
    /// Longest wait for one step of a reconcile (a Kafka admin call, a pod to go away).
    pub operation_timeout: Duration,
    pub defaults: OperatorDefaults,
    pub operator_image: String,
    pub http_addr: SocketAddr,
    pub log_format: LogFormat,
    pub leader_election: Option<LeaderElection>,
    /// The cluster DNS domain put in node certificates.
    pub cluster_domain: String,
}

fn invalid(name: &str, value: impl Into<String>, expected: impl Into<String>) -> SettingError {
    SettingError::Invalid {
        name: name.into(),
        value: value.into(),
        expected: expected.into(),
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl Config {
    pub fn from_settings<F: Fn(&str) -> Option<String>>(
        s: &Settings<F>,
    ) -> Result<Config, SettingError> {
        let namespaces = match s.get("OXBOW_NAMESPACES").as_deref().map(str::trim) {
            None | Some("") => {
                // Without a list, the operator's own namespace (as in Strimzi's default install).
                match s.get("POD_NAMESPACE") {
                    Some(ns) => Namespaces::List(vec![ns]),
                    None => {
                        return Err(SettingError::Missing {
                            name: "OXBOW_NAMESPACES".into(),
                        });
                    }
                }
            }
            Some("*") => Namespaces::All,
            Some(list) => {
                let names: Vec<String> = list
                    .split(',')
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty())
                    .collect();
                if let Some(bad) = names.iter().find(|n| !is_dns_label(n)) {
                    return Err(invalid(
                        "OXBOW_NAMESPACES",
                        list,
                        format!(
                            "`*` or a comma-separated list of namespace names ({bad:?} is not one)"
                        ),
                    ));
                }
                Namespaces::List(names)
            }
        };
        let full_secs: u64 = s.parse_or("OXBOW_FULL_RECONCILIATION_INTERVAL_SECONDS", 120)?;
        if full_secs == 0 {
            return Err(invalid(
                "OXBOW_FULL_RECONCILIATION_INTERVAL_SECONDS",
                "0",
                "a whole number of seconds above 0",
            ));
        }
        let timeout_secs: u64 = s.parse_or("OXBOW_OPERATION_TIMEOUT_SECONDS", 300)?;
        if timeout_secs == 0 {
            return Err(invalid(
                "OXBOW_OPERATION_TIMEOUT_SECONDS",
                "0",
                "a whole number of seconds above 0",
            ));
        }
        let mut defaults = OperatorDefaults::default();
        if let Some(repository) = s.get("OXBOW_KAFKA_IMAGE") {
            // A repository (a mirror of apache/kafka); the tag is the Kafka version.
            if repository.is_empty() || repository.contains(char::is_whitespace) {
                return Err(invalid(
                    "OXBOW_KAFKA_IMAGE",
                    repository,
                    "an image repository without tag, e.g. mirror.example.com/apache/kafka",
                ));
            }
            defaults.kafka_images = versions::SUPPORTED_KAFKA_VERSIONS
                .iter()
                .map(|v| (v.version.to_owned(), format!("{repository}:{}", v.version)))
                .collect::<BTreeMap<_, _>>();
        }
        let log_format = match s.one_of("OXBOW_LOG_FORMAT", &["text", "json"], "text")? {
            "json" => LogFormat::Json,
            _ => LogFormat::Text,
        };
        let leader_election =
            match s.one_of("OXBOW_LEADER_ELECTION", &["true", "false"], "false")? {
                "true" => {
                    let namespace = s
                        .get("OXBOW_LEADER_ELECTION_NAMESPACE")
                        .or_else(|| s.get("POD_NAMESPACE"))
                        .ok_or_else(|| SettingError::Missing {
                            name: "OXBOW_LEADER_ELECTION_NAMESPACE".into(),
                        })?;
                    let identity =
                        s.get("POD_NAME")
                            .or_else(|| s.get("HOSTNAME"))
                            .ok_or_else(|| SettingError::Missing {
                                name: "POD_NAME".into(),
                            })?;
                    let lease_secs: u64 = s.parse_or("OXBOW_LEADER_ELECTION_LEASE_SECONDS", 15)?;
                    if lease_secs < 2 {
                        return Err(invalid(
                            "OXBOW_LEADER_ELECTION_LEASE_SECONDS",
                            lease_secs.to_string(),
                            "2 or more seconds",
                        ));
                    }
                    Some(LeaderElection {
                        namespace,
                        lease_name: s
                            .get("OXBOW_LEADER_ELECTION_LEASE_NAME")
                            .unwrap_or_else(|| "oxbow-cluster-operator".to_owned()),
                        identity,
                        lease_duration: Duration::from_secs(lease_secs),
                    })
                }
                _ => None,
            };
        Ok(Config {
            namespaces,
            full_reconciliation_interval: Duration::from_secs(full_secs),
            operation_timeout: Duration::from_secs(timeout_secs),
            defaults,
            operator_image: s
                .get("OXBOW_OPERATOR_IMAGE")
                .unwrap_or_else(|| DEFAULT_OPERATOR_IMAGE.to_owned()),
            http_addr: s.parse_or("OXBOW_HTTP_ADDR", SocketAddr::from(([0, 0, 0, 0], 8080)))?,
            log_format,
            leader_election,
            cluster_domain: s
                .get("OXBOW_CLUSTER_DOMAIN")
                .unwrap_or_else(|| "cluster.local".to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxbow_runtime::settings::map_settings as settings;

    #[test]
    fn defaults_watch_the_operators_own_namespace() {
        let c = Config::from_settings(&settings(&[("POD_NAMESPACE", "kafka")])).unwrap();
        assert_eq!(c.namespaces, Namespaces::List(vec!["kafka".into()]));
        assert_eq!(c.full_reconciliation_interval, Duration::from_secs(120));
        assert_eq!(c.operation_timeout, Duration::from_secs(300));
        assert_eq!(c.http_addr.port(), 8080);
        assert_eq!(c.operator_image, DEFAULT_OPERATOR_IMAGE);
        assert!(c.leader_election.is_none());
        assert!(c.defaults.kafka_images.is_empty());
    }

    #[test]
    fn namespaces_list_or_star() {
        let c = Config::from_settings(&settings(&[("OXBOW_NAMESPACES", "a, b")])).unwrap();
        assert_eq!(c.namespaces, Namespaces::List(vec!["a".into(), "b".into()]));
        let c = Config::from_settings(&settings(&[("OXBOW_NAMESPACES", "*")])).unwrap();
        assert_eq!(c.namespaces, Namespaces::All);
        let e = Config::from_settings(&settings(&[("OXBOW_NAMESPACES", "a,B_c")])).unwrap_err();
        assert!(e.to_string().contains("OXBOW_NAMESPACES"), "{e}");
    }

    #[test]
    fn no_namespace_at_all_names_the_setting() {
        let e = Config::from_settings(&settings(&[])).unwrap_err();
        assert!(e.to_string().contains("OXBOW_NAMESPACES"), "{e}");
    }

    #[test]
    fn kafka_image_repository_gets_the_version_as_tag() {
        let c = Config::from_settings(&settings(&[
            ("OXBOW_NAMESPACES", "a"),
            ("OXBOW_KAFKA_IMAGE", "mirror.example/kafka"),
        ]))
        .unwrap();
        for v in versions::SUPPORTED_KAFKA_VERSIONS {
            assert_eq!(
                c.defaults.kafka_images[v.version],
                format!("mirror.example/kafka:{}", v.version)
            );
        }
    }

    #[test]
    fn leader_election_needs_an_identity_and_a_namespace() {
        let e = Config::from_settings(&settings(&[
            ("OXBOW_NAMESPACES", "a"),
            ("OXBOW_LEADER_ELECTION", "true"),
        ]))
        .unwrap_err();
        assert!(
            e.to_string().contains("OXBOW_LEADER_ELECTION_NAMESPACE"),
            "{e}"
        );
        let c = Config::from_settings(&settings(&[
            ("OXBOW_NAMESPACES", "a"),
            ("OXBOW_LEADER_ELECTION", "true"),
            ("POD_NAMESPACE", "ops"),
            ("POD_NAME", "op-1"),
        ]))
        .unwrap();
        let le = c.leader_election.unwrap();
        assert_eq!(le.namespace, "ops");
        assert_eq!(le.identity, "op-1");
        assert_eq!(le.lease_name, "oxbow-cluster-operator");
    }

    #[test]
    fn zero_intervals_are_refused_by_name() {
        for key in [
            "OXBOW_FULL_RECONCILIATION_INTERVAL_SECONDS",
            "OXBOW_OPERATION_TIMEOUT_SECONDS",
        ] {
            let e = Config::from_settings(&settings(&[("OXBOW_NAMESPACES", "a"), (key, "0")]))
                .unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
        }
    }
}
