//! The user operator's settings, read once at start from `OXBOW_*` environment variables. A
//! missing or malformed setting stops the operator with a message naming the variable.
//! May touch: nothing but the lookup function (and, through `KafkaConnection`, the existence of
//! the files it names).

use std::{net::SocketAddr, time::Duration};

use oxbow_runtime::{
    kafka::KafkaConnection,
    settings::{SettingError, Settings},
    telemetry::LogFormat,
};
use regex::Regex;

use crate::plan::certificate::CertificateValidity;

/// Where the clients CA (which signs TLS users' certificates) is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientsCaSource {
    /// PEM files (a mounted Secret, or the standalone user's own CA).
    Files { cert: String, key: String },
    /// Secrets in the operator's namespace: the certificate under `ca.crt`, the key under
    /// `ca.key` (the cluster operator's `<cluster>-clients-ca-cert` and `<cluster>-clients-ca`).
    Secrets { cert: String, key: String },
    /// None configured: TLS users are `Ready=False` until one is.
    None,
}

/// Everything the user operator is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    pub namespace: String,
    pub cluster: String,
    pub kafka: KafkaConnection,
    pub http_addr: SocketAddr,
    pub log_format: LogFormat,
    pub full_reconciliation_interval: Duration,
    pub clients_ca: ClientsCaSource,
    /// Prefix of user Secret names: `<prefix><KafkaUser name>`.
    pub secret_prefix: String,
    /// Kafka users never touched (whole-name regex, matched against the Kafka user name).
    pub ignored_users: Option<String>,
    pub certificate_validity: CertificateValidity,
    pub kube_write_concurrency: usize,
    pub kafka_operation_timeout: Duration,
}

fn invalid(name: &str, value: impl Into<String>, expected: impl Into<String>) -> SettingError {
    SettingError::Invalid {
        name: name.into(),
        value: value.into(),
        expected: expected.into(),
    }
}

impl Config {
    pub fn from_settings<F: Fn(&str) -> Option<String>>(
        s: &Settings<F>,
    ) -> Result<Config, SettingError> {
        let ignored_users = s.get("OXBOW_IGNORED_USERS");
        if let Some(p) = &ignored_users {
            Regex::new(&format!("^(?:{p})$")).map_err(|e| {
                invalid(
                    "OXBOW_IGNORED_USERS",
                    p.clone(),
                    format!("a regular expression ({e})"),
                )
            })?;
        }
        let clients_ca = match (
            s.get("OXBOW_CLIENTS_CA_CERT_FILE"),
            s.get("OXBOW_CLIENTS_CA_KEY_FILE"),
            s.get("OXBOW_CLIENTS_CA_CERT_SECRET"),
            s.get("OXBOW_CLIENTS_CA_KEY_SECRET"),
        ) {
            (Some(cert), Some(key), None, None) => {
                for (name, path) in [
                    ("OXBOW_CLIENTS_CA_CERT_FILE", &cert),
                    ("OXBOW_CLIENTS_CA_KEY_FILE", &key),
                ] {
                    if std::fs::metadata(path).is_err() {
                        return Err(invalid(name, path.clone(), "a readable file"));
                    }
                }
                ClientsCaSource::Files { cert, key }
            }
            (None, None, Some(cert), Some(key)) => ClientsCaSource::Secrets { cert, key },
            (None, None, None, None) => ClientsCaSource::None,
            (Some(_), None, None, None) => {
                return Err(SettingError::Missing {
                    name: "OXBOW_CLIENTS_CA_KEY_FILE".into(),
                });
            }
            (None, Some(_), None, None) => {
                return Err(SettingError::Missing {
                    name: "OXBOW_CLIENTS_CA_CERT_FILE".into(),
                });
            }
            (None, None, Some(_), None) => {
                return Err(SettingError::Missing {
                    name: "OXBOW_CLIENTS_CA_KEY_SECRET".into(),
                });
            }
            (None, None, None, Some(_)) => {
                return Err(SettingError::Missing {
                    name: "OXBOW_CLIENTS_CA_CERT_SECRET".into(),
                });
            }
            _ => {
                return Err(invalid(
                    "OXBOW_CLIENTS_CA_CERT_FILE",
                    "(set together with OXBOW_CLIENTS_CA_CERT_SECRET)",
                    "either the two OXBOW_CLIENTS_CA_*_FILE settings or the two OXBOW_CLIENTS_CA_*_SECRET settings, not both",
                ));
            }
        };
        let validity_days: u32 = s.parse_or("OXBOW_CERT_VALIDITY_DAYS", 365)?;
        let renewal_days: u32 = s.parse_or("OXBOW_CERT_RENEWAL_DAYS", 30)?;
        let certificate_validity =
            CertificateValidity::new(validity_days, renewal_days).map_err(|e| {
                invalid(
                    "OXBOW_CERT_RENEWAL_DAYS",
                    renewal_days.to_string(),
                    e.to_string(),
                )
            })?;
        let log_format = match s.one_of("OXBOW_LOG_FORMAT", &["text", "json"], "text")? {
            "json" => LogFormat::Json,
            _ => LogFormat::Text,
        };
        let full_secs: u64 = s.parse_or("OXBOW_FULL_RECONCILIATION_INTERVAL_SECONDS", 120)?;
        if full_secs == 0 {
            return Err(invalid(
                "OXBOW_FULL_RECONCILIATION_INTERVAL_SECONDS",
                "0",
                "a whole number of seconds above 0",
            ));
        }
        let timeout_secs: u64 = s.parse_or("OXBOW_KAFKA_OPERATION_TIMEOUT_SECONDS", 30)?;
        let concurrency: usize = s.parse_or("OXBOW_KUBE_WRITE_CONCURRENCY", 32)?;
        Ok(Config {
            namespace: s.required("OXBOW_NAMESPACE")?,
            cluster: s.required("OXBOW_CLUSTER")?,
            kafka: KafkaConnection::from_settings(s)?,
            http_addr: s.parse_or("OXBOW_HTTP_ADDR", SocketAddr::from(([0, 0, 0, 0], 8081)))?,
            log_format,
            full_reconciliation_interval: Duration::from_secs(full_secs),
            clients_ca,
            secret_prefix: s.get("OXBOW_SECRET_PREFIX").unwrap_or_default(),
            ignored_users,
            certificate_validity,
            kube_write_concurrency: concurrency.max(1),
            kafka_operation_timeout: Duration::from_secs(timeout_secs.max(1)),
        })
    }

    /// The compiled ignore pattern (checked in [`Config::from_settings`]).
    pub fn ignored_users_regex(&self) -> Option<Regex> {
        self.ignored_users
            .as_ref()
            .map(|p| Regex::new(&format!("^(?:{p})$")).expect("checked when the config was read"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use oxbow_runtime::settings::map_settings as settings;

    const MINIMAL: &[(&str, &str)] = &[
        ("OXBOW_NAMESPACE", "kafka"),
        ("OXBOW_CLUSTER", "my-cluster"),
        (
            "OXBOW_KAFKA_BOOTSTRAP_SERVERS",
            "my-cluster-kafka-bootstrap:9093",
        ),
    ];

    #[test]
    fn defaults() {
        let c = Config::from_settings(&settings(MINIMAL)).unwrap();
        assert_eq!(c.http_addr.port(), 8081);
        assert_eq!(c.clients_ca, ClientsCaSource::None);
        assert_eq!(c.secret_prefix, "");
        assert_eq!(c.certificate_validity.validity_days(), 365);
    }

    #[test]
    fn each_required_setting_is_named_when_missing() {
        for missing in [
            "OXBOW_NAMESPACE",
            "OXBOW_CLUSTER",
            "OXBOW_KAFKA_BOOTSTRAP_SERVERS",
        ] {
            let pairs: Vec<_> = MINIMAL
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            let err = Config::from_settings(&settings(&pairs)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("{missing} is required but not set")
            );
        }
    }

    #[test]
    fn half_a_clients_ca_is_refused_by_name() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("OXBOW_CLIENTS_CA_CERT_SECRET", "my-cluster-clients-ca-cert"));
        let err = Config::from_settings(&settings(&pairs)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "OXBOW_CLIENTS_CA_KEY_SECRET is required but not set"
        );
    }

    #[test]
    fn missing_ca_file_is_named() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("OXBOW_CLIENTS_CA_CERT_FILE", "/nonexistent/ca.crt"));
        pairs.push(("OXBOW_CLIENTS_CA_KEY_FILE", "/nonexistent/ca.key"));
        let err = Config::from_settings(&settings(&pairs)).unwrap_err();
        assert!(
            err.to_string().starts_with("OXBOW_CLIENTS_CA_CERT_FILE="),
            "{err}"
        );
    }

    #[test]
    fn bad_values_are_named() {
        for (name, value) in [
            ("OXBOW_IGNORED_USERS", "("),
            ("OXBOW_CERT_VALIDITY_DAYS", "-1"),
            ("OXBOW_LOG_FORMAT", "xml"),
        ] {
            let mut pairs = MINIMAL.to_vec();
            pairs.push((name, value));
            let err = Config::from_settings(&settings(&pairs)).unwrap_err();
            assert!(
                err.to_string().starts_with(&format!("{name}=")),
                "{name}: {err}"
            );
        }
    }
}
