//! What a test needs to reach a running testbed, read from the variables `testbed up` exports
//! (see [`crate::testbed::Exports`]). A missing variable is an error naming it, never a skip.
//! May touch: environment variables, the kubeconfig file.

use std::path::PathBuf;

use anyhow::{Context, Result};
use oxbow_runtime::kafka::{KafkaConnection, SaslCredentials, SecurityProtocol};
use rdkafka::ClientConfig;

/// The exported settings of a running testbed. `Debug` hides the admin password.
#[derive(Clone)]
pub struct TestEnv {
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    /// PLAINTEXT listener: its principal is a super user (for set-up only; ACLs do not apply).
    pub kafka_bootstrap: String,
    /// SASL_SSL listener with SCRAM-SHA-512.
    pub kafka_scram_bootstrap: String,
    pub kafka_admin_user: String,
    pub kafka_admin_password: String,
    /// SSL listener that requires client certificates signed by the clients CA.
    pub kafka_tls_bootstrap: String,
    /// The CA that signed the brokers' certificates.
    pub kafka_ca_file: PathBuf,
    /// The CA the mTLS listener trusts, with its key (tests sign client certificates with it).
    pub kafka_clients_ca_cert_file: PathBuf,
    pub kafka_clients_ca_key_file: PathBuf,
}

impl std::fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnv")
            .field("kubeconfig", &self.kubeconfig)
            .field("kafka_scram_bootstrap", &self.kafka_scram_bootstrap)
            .field("kafka_admin_user", &self.kafka_admin_user)
            .field("kafka_admin_password", &"<redacted>")
            .field("kafka_tls_bootstrap", &self.kafka_tls_bootstrap)
            .finish_non_exhaustive()
    }
}

fn var(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| {
        format!("{name} is not set: start the testbed (`eval \"$(cargo run -p e2e --bin testbed -- up)\"`) or run e2e/test-all.sh")
    })
}

impl TestEnv {
    /// Reads the testbed's exports from the environment.
    ///
    /// ```no_run
    /// let env = e2e::env::TestEnv::from_env().unwrap();
    /// assert!(!format!("{env:?}").contains(&env.kafka_admin_password));
    /// ```
    pub fn from_env() -> Result<TestEnv> {
        Ok(TestEnv {
            kubeconfig: var("KUBECONFIG")?.into(),
            kubectl: var("KUBECTL")?.into(),
            kafka_bootstrap: var("KAFKA_BOOTSTRAP")?,
            kafka_scram_bootstrap: var("KAFKA_SCRAM_BOOTSTRAP")?,
            kafka_admin_user: var("KAFKA_ADMIN_USER")?,
            kafka_admin_password: var("KAFKA_ADMIN_PASSWORD")?,
            kafka_tls_bootstrap: var("KAFKA_TLS_BOOTSTRAP")?,
            kafka_ca_file: var("KAFKA_CA_FILE")?.into(),
            kafka_clients_ca_cert_file: var("KAFKA_CLIENTS_CA_CERT_FILE")?.into(),
            kafka_clients_ca_key_file: var("KAFKA_CLIENTS_CA_KEY_FILE")?.into(),
        })
    }

    /// A Kubernetes client with the testbed's admin credentials.
    pub async fn kube_client(&self) -> Result<kube::Client> {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .with_context(|| format!("reading {}", self.kubeconfig.display()))?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .context("loading the testbed kubeconfig")?;
        kube::Client::try_from(config).context("building a Kubernetes client")
    }

    /// rdkafka settings for the PLAINTEXT listener (super user; set-up only).
    pub fn kafka_plain(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.kafka_bootstrap);
        c
    }

    /// rdkafka settings for the SASL_SSL SCRAM-SHA-512 listener with the given credentials.
    pub fn kafka_scram(&self, user: &str, password: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.kafka_scram_bootstrap)
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanism", "SCRAM-SHA-512")
            .set("sasl.username", user)
            .set("sasl.password", password)
            .set("ssl.ca.location", self.kafka_ca_file.display().to_string());
        c
    }

    /// rdkafka settings for the SCRAM listener as the bootstrapped admin super user.
    pub fn kafka_scram_admin(&self) -> ClientConfig {
        self.kafka_scram(&self.kafka_admin_user, &self.kafka_admin_password)
    }

    /// rdkafka settings for the mTLS listener with a client certificate and key (PEM files).
    pub fn kafka_mtls(
        &self,
        cert_file: &std::path::Path,
        key_file: &std::path::Path,
    ) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.kafka_tls_bootstrap)
            .set("security.protocol", "SSL")
            .set("ssl.ca.location", self.kafka_ca_file.display().to_string())
            .set("ssl.certificate.location", cert_file.display().to_string())
            .set("ssl.key.location", key_file.display().to_string());
        c
    }

    /// The operators' connection settings for the SCRAM listener as `user`.
    pub fn scram_connection(&self, user: &str, password: &str) -> KafkaConnection {
        KafkaConnection {
            bootstrap_servers: self.kafka_scram_bootstrap.clone(),
            security_protocol: SecurityProtocol::SaslSsl,
            ca_file: Some(self.kafka_ca_file.clone()),
            client_cert: None,
            sasl: Some(SaslCredentials {
                mechanism: "SCRAM-SHA-512",
                username: user.to_owned(),
                password: password.to_owned(),
            }),
        }
    }

    /// The operators' connection settings for the SCRAM listener as the admin super user.
    pub fn scram_admin_connection(&self) -> KafkaConnection {
        self.scram_connection(&self.kafka_admin_user, &self.kafka_admin_password)
    }

    /// The clients CA, to sign test client certificates for the mTLS listener.
    pub fn clients_ca(&self) -> Result<crate::pki::Ca> {
        let cert = std::fs::read_to_string(&self.kafka_clients_ca_cert_file)?;
        let key = std::fs::read_to_string(&self.kafka_clients_ca_key_file)?;
        crate::pki::Ca::from_pem(&cert, &key)
    }
}
