//! The user Secret `<secretPrefix><name>`: building it from chosen credentials, and reading an
//! existing one back into the inputs of the password and certificate plans. Pure: no I/O.
//!
//! Labels: `spec.template.secret.metadata.labels` are applied first and the operator's own
//! labels over them, so a template can add labels but never change ours. Ours are how the
//! operator (and `kubectl get -l`) finds the Secrets it manages; letting a template rewrite
//! `oxbow.rs/cluster` or `app.kubernetes.io/managed-by` would orphan the Secret. Annotations
//! come from the template alone.
//!
//! The built `Secret` holds credentials in `data`; k8s-openapi's `Debug` prints them, so never
//! log the Secret itself.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::certificate::{ExistingTlsMaterial, TlsCredentials};
use super::password::{Password, jaas_config};
use super::principal::{Authentication, username};

/// Label naming the Kafka cluster the user belongs to.
pub const LABEL_CLUSTER: &str = "oxbow.rs/cluster";
/// Label naming the kind of resource the Secret was made for.
pub const LABEL_KIND: &str = "oxbow.rs/kind";
pub const LABEL_APP_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_APP_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_APP_PART_OF: &str = "app.kubernetes.io/part-of";
pub const LABEL_APP_MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Value of [`LABEL_KIND`] on user Secrets.
pub const KIND_KAFKA_USER: &str = "KafkaUser";
/// Name of this operator, as `app.kubernetes.io/name` and `app.kubernetes.io/managed-by`.
pub const USER_OPERATOR_NAME: &str = "oxbow-user-operator";

/// SCRAM: the password itself.
pub const KEY_PASSWORD: &str = "password";
/// SCRAM: a ready-made `sasl.jaas.config` client property.
pub const KEY_SASL_JAAS_CONFIG: &str = "sasl.jaas.config";
/// TLS: the clients CA certificate, PEM.
pub const KEY_CA_CRT: &str = "ca.crt";
/// TLS: the user certificate, PEM.
pub const KEY_USER_CRT: &str = "user.crt";
/// TLS: the user private key, PKCS#8 PEM.
pub const KEY_USER_KEY: &str = "user.key";
/// TLS: key, certificate and CA in a PKCS#12 keystore.
pub const KEY_USER_P12: &str = "user.p12";
/// TLS: the keystore's password.
pub const KEY_USER_PASSWORD: &str = "user.password";

/// Longest object name Kubernetes accepts for a Secret (a DNS subdomain).
const MAX_SECRET_NAME_LENGTH: usize = 253;

/// `spec.template.secret.metadata` of the KafkaUser.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretTemplate {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// Where the user Secret goes and how it is labelled.
#[derive(Clone, Debug, PartialEq)]
pub struct UserSecretTarget<'a> {
    /// Name of the KafkaUser, which is also the SCRAM username.
    pub kafka_user_name: &'a str,
    pub namespace: &'a str,
    /// Name of the Kafka cluster (`oxbow.rs/cluster` on the KafkaUser).
    pub cluster: &'a str,
    /// The operator's configured prefix for user Secret names; usually empty.
    pub secret_prefix: &'a str,
    pub template: Option<&'a SecretTemplate>,
    /// Usually the KafkaUser, so deleting it garbage-collects the Secret.
    pub owner: Option<OwnerReference>,
}

/// The credentials the Secret carries.
#[derive(Clone, Copy, Debug)]
pub enum UserSecretContents<'a> {
    Scram { password: &'a Password },
    Tls(&'a TlsCredentials),
}

/// Why the user Secret cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "user Secret name {name} is {length} characters long; Kubernetes allows at most {MAX_SECRET_NAME_LENGTH}: shorten the KafkaUser name or the operator's secret prefix"
    )]
    SecretNameTooLong { name: String, length: usize },
}

impl SecretError {
    /// Stable CamelCase word for condition reasons, Event reasons and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::SecretNameTooLong { .. } => "SecretNameTooLong",
        }
    }
}

/// Name of the user Secret: the operator's prefix followed by the KafkaUser's name.
pub fn user_secret_name(secret_prefix: &str, kafka_user_name: &str) -> String {
    format!("{secret_prefix}{kafka_user_name}")
}

/// The labels every user Secret carries, before the template's are merged in.
pub fn user_secret_labels(cluster: &str, kafka_user_name: &str) -> BTreeMap<String, String> {
    [
        (LABEL_CLUSTER, cluster.to_owned()),
        (LABEL_KIND, KIND_KAFKA_USER.to_owned()),
        (LABEL_APP_NAME, USER_OPERATOR_NAME.to_owned()),
        (LABEL_APP_INSTANCE, kafka_user_name.to_owned()),
        (LABEL_APP_PART_OF, format!("oxbow-{cluster}")),
        (LABEL_APP_MANAGED_BY, USER_OPERATOR_NAME.to_owned()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect()
}

/// Builds the complete user Secret, ready for server-side apply.
pub fn build_user_secret(
    target: &UserSecretTarget<'_>,
    contents: UserSecretContents<'_>,
) -> Result<Secret, SecretError> {
    let name = user_secret_name(target.secret_prefix, target.kafka_user_name);
    if name.len() > MAX_SECRET_NAME_LENGTH {
        return Err(SecretError::SecretNameTooLong {
            length: name.len(),
            name,
        });
    }

    let mut labels = target
        .template
        .map(|template| template.labels.clone())
        .unwrap_or_default();
    labels.extend(user_secret_labels(target.cluster, target.kafka_user_name));
    let annotations = target
        .template
        .map(|template| template.annotations.clone())
        .filter(|annotations| !annotations.is_empty());

    let data = match contents {
        UserSecretContents::Scram { password } => {
            let scram_username = username(Authentication::ScramSha512, target.kafka_user_name);
            BTreeMap::from([
                entry(KEY_PASSWORD, password.expose().as_bytes()),
                entry(
                    KEY_SASL_JAAS_CONFIG,
                    jaas_config(&scram_username, password).expose().as_bytes(),
                ),
            ])
        }
        UserSecretContents::Tls(credentials) => BTreeMap::from([
            entry(KEY_CA_CRT, credentials.ca_cert_pem.as_bytes()),
            entry(KEY_USER_CRT, credentials.cert_pem.as_bytes()),
            entry(KEY_USER_KEY, credentials.key_pem.expose().as_bytes()),
            entry(KEY_USER_P12, credentials.keystore.expose()),
            entry(
                KEY_USER_PASSWORD,
                credentials.keystore_password.expose().as_bytes(),
            ),
        ]),
    };

    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(target.namespace.to_owned()),
            labels: Some(labels),
            annotations,
            owner_references: target.owner.clone().map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(data),
        ..Secret::default()
    })
}

fn entry(key: &str, value: &[u8]) -> (String, ByteString) {
    (key.to_owned(), ByteString(value.to_vec()))
}

/// Read access to an existing user Secret's data, shaped as the plans' inputs.
#[derive(Clone, Copy)]
pub struct ExistingUserSecret<'a> {
    data: Option<&'a BTreeMap<String, ByteString>>,
}

impl<'a> ExistingUserSecret<'a> {
    pub fn new(secret: &'a Secret) -> Self {
        Self {
            data: secret.data.as_ref(),
        }
    }

    fn get(&self, key: &str) -> Option<&'a [u8]> {
        self.data
            .and_then(|data| data.get(key))
            .map(|value| value.0.as_slice())
    }

    /// The SCRAM password the operator stored before, for `PasswordSource::user_secret_password`
    /// and `needs_scram_upsert`.
    pub fn password(&self) -> Option<&'a [u8]> {
        self.get(KEY_PASSWORD)
    }

    /// The TLS entries, for `plan_tls_credentials`.
    pub fn tls_material(&self) -> ExistingTlsMaterial<'a> {
        ExistingTlsMaterial {
            ca_cert: self.get(KEY_CA_CRT),
            cert: self.get(KEY_USER_CRT),
            key: self.get(KEY_USER_KEY),
            keystore: self.get(KEY_USER_P12),
            keystore_password: self.get(KEY_USER_PASSWORD),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::certificate::{Keystore, PrivateKeyPem};

    fn target<'a>(template: Option<&'a SecretTemplate>) -> UserSecretTarget<'a> {
        UserSecretTarget {
            kafka_user_name: "alice",
            namespace: "kafka",
            cluster: "my-cluster",
            secret_prefix: "",
            template,
            owner: None,
        }
    }

    fn tls_credentials() -> TlsCredentials {
        TlsCredentials {
            ca_cert_pem: "CA PEM".to_owned(),
            cert_pem: "CERT PEM".to_owned(),
            key_pem: PrivateKeyPem::new("KEY PEM"),
            keystore: Keystore::new(vec![0x30, 0x82, 0x01]),
            keystore_password: Password::new("keystore-secret"),
        }
    }

    fn data_of(secret: &Secret) -> BTreeMap<&str, &[u8]> {
        secret
            .data
            .as_ref()
            .expect("data")
            .iter()
            .map(|(key, value)| (key.as_str(), value.0.as_slice()))
            .collect()
    }

    #[test]
    fn scram_secret_holds_the_password_and_jaas_config() {
        let password = Password::new("pa\"ss");

        let secret = build_user_secret(
            &target(None),
            UserSecretContents::Scram {
                password: &password,
            },
        )
        .expect("built");

        let data = data_of(&secret);
        assert_eq!(
            data.keys().copied().collect::<Vec<_>>(),
            ["password", "sasl.jaas.config"]
        );
        assert_eq!(data["password"], b"pa\"ss");
        assert_eq!(
            data["sasl.jaas.config"],
            jaas_config("alice", &password).expose().as_bytes()
        );
        assert_eq!(secret.type_.as_deref(), Some("Opaque"));
        assert_eq!(secret.metadata.name.as_deref(), Some("alice"));
        assert_eq!(secret.metadata.namespace.as_deref(), Some("kafka"));
    }

    #[test]
    fn tls_secret_holds_ca_certificate_key_and_keystore() {
        let credentials = tls_credentials();

        let secret =
            build_user_secret(&target(None), UserSecretContents::Tls(&credentials)).expect("built");

        let data = data_of(&secret);
        assert_eq!(
            data.keys().copied().collect::<Vec<_>>(),
            [
                "ca.crt",
                "user.crt",
                "user.key",
                "user.p12",
                "user.password"
            ]
        );
        assert_eq!(data["ca.crt"], b"CA PEM");
        assert_eq!(data["user.crt"], b"CERT PEM");
        assert_eq!(data["user.key"], b"KEY PEM");
        assert_eq!(data["user.p12"], [0x30, 0x82, 0x01]);
        assert_eq!(data["user.password"], b"keystore-secret");
    }

    #[test]
    fn name_carries_the_configured_prefix() {
        let prefixed = UserSecretTarget {
            secret_prefix: "kafka-user-",
            ..target(None)
        };
        let password = Password::new("p");

        let secret = build_user_secret(
            &prefixed,
            UserSecretContents::Scram {
                password: &password,
            },
        )
        .expect("built");

        assert_eq!(secret.metadata.name.as_deref(), Some("kafka-user-alice"));
    }

    #[test]
    fn a_name_kubernetes_would_reject_is_an_error() {
        let long_name = "a".repeat(250);
        let too_long = UserSecretTarget {
            secret_prefix: "user-",
            kafka_user_name: &long_name,
            ..target(None)
        };
        let password = Password::new("p");

        let error = build_user_secret(
            &too_long,
            UserSecretContents::Scram {
                password: &password,
            },
        )
        .expect_err("255 characters");

        assert_eq!(error.reason(), "SecretNameTooLong");
    }

    #[test]
    fn without_a_template_only_our_labels_are_set() {
        let password = Password::new("p");

        let secret = build_user_secret(
            &target(None),
            UserSecretContents::Scram {
                password: &password,
            },
        )
        .expect("built");

        let expected: BTreeMap<String, String> = [
            ("oxbow.rs/cluster", "my-cluster"),
            ("oxbow.rs/kind", "KafkaUser"),
            ("app.kubernetes.io/name", "oxbow-user-operator"),
            ("app.kubernetes.io/instance", "alice"),
            ("app.kubernetes.io/part-of", "oxbow-my-cluster"),
            ("app.kubernetes.io/managed-by", "oxbow-user-operator"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
        assert_eq!(secret.metadata.labels, Some(expected));
        assert_eq!(secret.metadata.annotations, None);
    }

    #[test]
    fn template_metadata_is_merged_and_our_labels_win() {
        let template = SecretTemplate {
            labels: BTreeMap::from([
                ("team".to_owned(), "payments".to_owned()),
                ("oxbow.rs/cluster".to_owned(), "hijacked".to_owned()),
                (
                    "app.kubernetes.io/managed-by".to_owned(),
                    "someone-else".to_owned(),
                ),
            ]),
            annotations: BTreeMap::from([(
                "reflector/allowed-namespaces".to_owned(),
                "apps".to_owned(),
            )]),
        };
        let password = Password::new("p");

        let secret = build_user_secret(
            &target(Some(&template)),
            UserSecretContents::Scram {
                password: &password,
            },
        )
        .expect("built");

        let labels = secret.metadata.labels.expect("labels");
        assert_eq!(labels["team"], "payments");
        assert_eq!(labels["oxbow.rs/cluster"], "my-cluster");
        assert_eq!(
            labels["app.kubernetes.io/managed-by"],
            "oxbow-user-operator"
        );
        assert_eq!(
            secret.metadata.annotations,
            Some(template.annotations.clone())
        );
    }

    #[test]
    fn the_owner_reference_is_attached() {
        let owner = OwnerReference {
            api_version: "kafka.oxbow.rs/v1".to_owned(),
            kind: "KafkaUser".to_owned(),
            name: "alice".to_owned(),
            uid: "0000-1111".to_owned(),
            ..OwnerReference::default()
        };
        let owned = UserSecretTarget {
            owner: Some(owner.clone()),
            ..target(None)
        };
        let password = Password::new("p");

        let secret = build_user_secret(
            &owned,
            UserSecretContents::Scram {
                password: &password,
            },
        )
        .expect("built");

        assert_eq!(secret.metadata.owner_references, Some(vec![owner]));
    }

    #[test]
    fn an_existing_secret_reads_back_what_was_built() {
        let credentials = tls_credentials();
        let tls =
            build_user_secret(&target(None), UserSecretContents::Tls(&credentials)).expect("built");
        let password = Password::new("scram-pw");
        let scram = build_user_secret(
            &target(None),
            UserSecretContents::Scram {
                password: &password,
            },
        )
        .expect("built");

        let material = ExistingUserSecret::new(&tls).tls_material();

        assert_eq!(material.ca_cert, Some(&b"CA PEM"[..]));
        assert_eq!(material.cert, Some(&b"CERT PEM"[..]));
        assert_eq!(material.key, Some(&b"KEY PEM"[..]));
        assert_eq!(material.keystore, Some(&[0x30, 0x82, 0x01][..]));
        assert_eq!(material.keystore_password, Some(&b"keystore-secret"[..]));
        assert_eq!(ExistingUserSecret::new(&tls).password(), None);
        assert_eq!(
            ExistingUserSecret::new(&scram).password(),
            Some(&b"scram-pw"[..])
        );
        assert_eq!(ExistingUserSecret::new(&Secret::default()).password(), None);
    }

    #[test]
    fn debug_of_the_contents_never_shows_credentials() {
        let credentials = tls_credentials();
        let password = Password::new("scram-secret-value");

        for shown in [
            format!(
                "{:?}",
                UserSecretContents::Scram {
                    password: &password
                }
            ),
            format!("{:?}", UserSecretContents::Tls(&credentials)),
        ] {
            assert!(!shown.contains("scram-secret-value"), "{shown}");
            assert!(!shown.contains("keystore-secret"), "{shown}");
            assert!(!shown.contains("KEY PEM"), "{shown}");
            assert!(shown.contains("redacted"), "{shown}");
        }
    }
}
