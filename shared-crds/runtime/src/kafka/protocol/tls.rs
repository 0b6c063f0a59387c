//! TLS client settings for the Kafka protocol client: which CAs verify the brokers (the configured
//! CA file, else the system trust store), the client certificate presented for mTLS, and rustls
//! with the ring provider (the workspace's only crypto backend). May touch: reads the CA,
//! certificate and key files it is given, and the system trust store when no CA file is set.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use tokio_rustls::rustls::{
    self, ClientConfig, RootCertStore,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject},
};

/// What went wrong while preparing TLS. Paths are named; key material never is.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading the CA file {} failed: {detail}", path.display())]
    ReadCaFile { path: PathBuf, detail: String },
    #[error("loading the system trust store failed: {detail}")]
    LoadSystemRoots { detail: String },
    #[error("reading the client certificate {} failed: {detail}", path.display())]
    ReadClientCertificate { path: PathBuf, detail: String },
    #[error("reading the client key {} failed: {detail}", path.display())]
    ReadClientKey { path: PathBuf, detail: String },
    #[error("using the client certificate and key failed: {source}")]
    UseClientCertificate { source: rustls::Error },
    #[error("choosing TLS protocol versions failed: {source}")]
    ChooseProtocolVersions { source: rustls::Error },
    #[error(
        "{host:?} is neither a DNS name nor an IP address, so its certificate cannot be verified"
    )]
    ParseServerName { host: String },
}

impl TlsError {
    /// Stable CamelCase word for conditions, Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            TlsError::ReadCaFile { .. } => "ReadCaFile",
            TlsError::LoadSystemRoots { .. } => "LoadSystemRoots",
            TlsError::ReadClientCertificate { .. } => "ReadClientCertificate",
            TlsError::ReadClientKey { .. } => "ReadClientKey",
            TlsError::UseClientCertificate { .. } => "UseClientCertificate",
            TlsError::ChooseProtocolVersions { .. } => "ChooseTlsVersions",
            TlsError::ParseServerName { .. } => "ParseServerName",
        }
    }
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("it holds no PEM certificate".into());
    }
    Ok(certs)
}

fn trust(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        // The configured CA is the one to trust, alone: the cluster CA of an Oxbow cluster is
        // private, and adding public roots would only widen who can impersonate a broker.
        Some(path) => {
            let read_ca = |detail: String| TlsError::ReadCaFile {
                path: path.to_path_buf(),
                detail,
            };
            for cert in read_certificates(path).map_err(read_ca)? {
                roots.add(cert).map_err(|e| read_ca(e.to_string()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let detail = match found.errors.first() {
                    Some(e) => format!("no usable certificate ({e})"),
                    None => "no usable certificate".to_string(),
                };
                return Err(TlsError::LoadSystemRoots { detail });
            }
        }
    }
    Ok(roots)
}

/// rustls client settings: brokers verified against `ca_file` (system roots when `None`), their
/// host name or IP checked against the certificate's SANs, and the client certificate presented
/// when one is given.
pub fn client_config(
    ca_file: Option<&Path>,
    client_cert: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = trust(ca_file)?;
    // An explicit ring provider, so nothing depends on which provider the process installed.
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::ChooseProtocolVersions { source })?
            .with_root_certificates(roots);
    let config = match client_cert {
        Some((cert, key)) => {
            let chain =
                read_certificates(cert).map_err(|detail| TlsError::ReadClientCertificate {
                    path: cert.to_path_buf(),
                    detail,
                })?;
            let key_der =
                PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::ReadClientKey {
                    path: key.to_path_buf(),
                    detail: e.to_string(),
                })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|source| TlsError::UseClientCertificate { source })?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The name the broker's certificate must carry: a DNS name or an IP address (IP SAN).
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(host.to_string()).map_err(|_| TlsError::ParseServerName {
        host: host.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_and_dns_names_are_server_names() {
        assert!(matches!(
            server_name("127.0.0.1").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("::1").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("kafka-0.kafka.svc").unwrap(),
            ServerName::DnsName(_)
        ));
        assert!(matches!(
            server_name("not a host"),
            Err(TlsError::ParseServerName { .. })
        ));
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let err = client_config(Some(Path::new("/nonexistent/ca.crt")), None).unwrap_err();
        assert_eq!(err.reason(), "ReadCaFile");
        assert!(err.to_string().contains("/nonexistent/ca.crt"), "{err}");
    }

    #[test]
    fn a_file_without_certificates_is_not_a_ca() {
        // /etc/hostname exists everywhere and holds no PEM block.
        let err = client_config(Some(Path::new("/etc/hostname")), None).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
    }
}
