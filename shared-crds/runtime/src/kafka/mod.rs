//! How an operator connects to Kafka: the `OXBOW_KAFKA_*` settings (bootstrap servers, security
//! protocol, CA, client certificate, SASL SCRAM credentials), validated at start-up and turned
//! into librdkafka client settings. May touch: it checks that the named files are readable.

pub mod admin;
mod ffi;
pub mod protocol;

use std::{fmt, path::PathBuf};

use rdkafka::ClientConfig;

use crate::settings::{SettingError, Settings};

/// The security protocol of the listener the operator connects to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// Kafka's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
    fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
    fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// SASL credentials. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    /// `SCRAM-SHA-512` (default), `SCRAM-SHA-256` or `PLAIN`.
    pub mechanism: &'static str,
    pub username: String,
    pub password: String,
}

impl fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Validated connection settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaConnection {
    pub bootstrap_servers: String,
    pub security_protocol: SecurityProtocol,
    /// CA bundle that verifies the brokers (system roots when unset).
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for mTLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub sasl: Option<SaslCredentials>,
}

fn readable(name: &str, path: String) -> Result<PathBuf, SettingError> {
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(PathBuf::from(path)),
        Ok(_) => Err(SettingError::Invalid {
            name: name.into(),
            value: path,
            expected: "a readable file".into(),
        }),
        Err(e) => Err(SettingError::Invalid {
            name: name.into(),
            value: path,
            expected: format!("a readable file ({e})"),
        }),
    }
}

impl KafkaConnection {
    /// Reads and checks the `OXBOW_KAFKA_*` settings.
    pub fn from_settings<F: Fn(&str) -> Option<String>>(
        s: &Settings<F>,
    ) -> Result<Self, SettingError> {
        let bootstrap_servers = s.required("OXBOW_KAFKA_BOOTSTRAP_SERVERS")?;
        let protocol = match s.one_of(
            "OXBOW_KAFKA_SECURITY_PROTOCOL",
            &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"],
            "PLAINTEXT",
        )? {
            "SSL" => SecurityProtocol::Ssl,
            "SASL_PLAINTEXT" => SecurityProtocol::SaslPlaintext,
            "SASL_SSL" => SecurityProtocol::SaslSsl,
            _ => SecurityProtocol::Plaintext,
        };
        let ca_file = s
            .get("OXBOW_KAFKA_CA_FILE")
            .map(|p| readable("OXBOW_KAFKA_CA_FILE", p))
            .transpose()?;
        let cert = s.get("OXBOW_KAFKA_CERT_FILE");
        let key = s.get("OXBOW_KAFKA_KEY_FILE");
        let client_cert = match (cert, key) {
            (Some(c), Some(k)) => Some((
                readable("OXBOW_KAFKA_CERT_FILE", c)?,
                readable("OXBOW_KAFKA_KEY_FILE", k)?,
            )),
            (None, None) => None,
            (Some(_), None) => {
                return Err(SettingError::Missing {
                    name: "OXBOW_KAFKA_KEY_FILE".into(),
                });
            }
            (None, Some(_)) => {
                return Err(SettingError::Missing {
                    name: "OXBOW_KAFKA_CERT_FILE".into(),
                });
            }
        };
        if client_cert.is_some() && !protocol.tls() {
            return Err(SettingError::Invalid {
                name: "OXBOW_KAFKA_SECURITY_PROTOCOL".into(),
                value: protocol.as_str().into(),
                expected: "SSL or SASL_SSL when OXBOW_KAFKA_CERT_FILE is set".into(),
            });
        }
        let sasl = if protocol.sasl() {
            Some(SaslCredentials {
                mechanism: s.one_of(
                    "OXBOW_KAFKA_SASL_MECHANISM",
                    &["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"],
                    "SCRAM-SHA-512",
                )?,
                username: s.required("OXBOW_KAFKA_SASL_USERNAME")?,
                password: s.required("OXBOW_KAFKA_SASL_PASSWORD")?,
            })
        } else {
            None
        };
        Ok(KafkaConnection {
            bootstrap_servers,
            security_protocol: protocol,
            ca_file,
            client_cert,
            sasl,
        })
    }

    /// librdkafka settings for this connection.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set("security.protocol", self.security_protocol.as_str());
        if let Some(ca) = &self.ca_file {
            c.set("ssl.ca.location", ca.display().to_string());
        }
        if let Some((cert, key)) = &self.client_cert {
            c.set("ssl.certificate.location", cert.display().to_string())
                .set("ssl.key.location", key.display().to_string());
        }
        if let Some(sasl) = &self.sasl {
            c.set("sasl.mechanism", sasl.mechanism)
                .set("sasl.username", &sasl.username)
                .set("sasl.password", &sasl.password);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::map_settings;

    #[test]
    fn plaintext_needs_only_bootstrap_servers() {
        let s = map_settings(&[("OXBOW_KAFKA_BOOTSTRAP_SERVERS", "k:9092")]);
        let c = KafkaConnection::from_settings(&s).unwrap();
        assert_eq!(c.security_protocol, SecurityProtocol::Plaintext);
        assert_eq!(c.client_config().get("bootstrap.servers"), Some("k:9092"));
    }

    #[test]
    fn missing_bootstrap_servers_is_named() {
        let err = KafkaConnection::from_settings(&map_settings(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "OXBOW_KAFKA_BOOTSTRAP_SERVERS is required but not set"
        );
    }

    #[test]
    fn sasl_requires_username_and_password() {
        let s = map_settings(&[
            ("OXBOW_KAFKA_BOOTSTRAP_SERVERS", "k:9094"),
            ("OXBOW_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("OXBOW_KAFKA_SASL_USERNAME", "op"),
        ]);
        let err = KafkaConnection::from_settings(&s).unwrap_err();
        assert_eq!(
            err.to_string(),
            "OXBOW_KAFKA_SASL_PASSWORD is required but not set"
        );
    }

    #[test]
    fn sasl_settings_reach_librdkafka_and_debug_hides_password() {
        let s = map_settings(&[
            ("OXBOW_KAFKA_BOOTSTRAP_SERVERS", "k:9094"),
            ("OXBOW_KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("OXBOW_KAFKA_SASL_USERNAME", "op"),
            ("OXBOW_KAFKA_SASL_PASSWORD", "s3cret-value"),
        ]);
        let c = KafkaConnection::from_settings(&s).unwrap();
        let cfg = c.client_config();
        assert_eq!(cfg.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(cfg.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(cfg.get("sasl.password"), Some("s3cret-value"));
        assert!(!format!("{c:?}").contains("s3cret-value"));
    }

    #[test]
    fn unreadable_ca_file_is_named() {
        let s = map_settings(&[
            ("OXBOW_KAFKA_BOOTSTRAP_SERVERS", "k:9093"),
            ("OXBOW_KAFKA_SECURITY_PROTOCOL", "SSL"),
            ("OXBOW_KAFKA_CA_FILE", "/nonexistent/ca.crt"),
        ]);
        let err = KafkaConnection::from_settings(&s).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("OXBOW_KAFKA_CA_FILE=\"/nonexistent/ca.crt\" is invalid"),
            "{err}"
        );
    }

    #[test]
    fn certificate_without_key_is_refused() {
        let s = map_settings(&[
            ("OXBOW_KAFKA_BOOTSTRAP_SERVERS", "k:9093"),
            ("OXBOW_KAFKA_SECURITY_PROTOCOL", "SSL"),
            ("OXBOW_KAFKA_CERT_FILE", "/etc/hostname"),
        ]);
        let err = KafkaConnection::from_settings(&s).unwrap_err();
        assert_eq!(
            err.to_string(),
            "OXBOW_KAFKA_KEY_FILE is required but not set"
        );
    }

    #[test]
    fn client_certificate_needs_a_tls_protocol() {
        let s = map_settings(&[
            ("OXBOW_KAFKA_BOOTSTRAP_SERVERS", "k:9092"),
            ("OXBOW_KAFKA_CERT_FILE", "/etc/hostname"),
            ("OXBOW_KAFKA_KEY_FILE", "/etc/hostname"),
        ]);
        let err = KafkaConnection::from_settings(&s).unwrap_err();
        assert!(err.to_string().contains("SSL or SASL_SSL"), "{err}");
    }
}
