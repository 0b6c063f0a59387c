//! Test certificates made with rcgen: certificate authorities, serving certificates with SANs and
//! client certificates, written as PEM. Pure apart from `write_*`, which touch the given paths.

use std::{fs, path::Path};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// A certificate authority: its certificate (PEM) and the key that signs with it.
pub struct Ca {
    pub cert_pem: String,
    pub key: KeyPair,
    issuer: Issuer<'static, KeyPair>,
}

/// A signed certificate and its unencrypted PKCS#8 private key, both PEM.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Leaf {
    /// Key then certificate chain in one PEM file: the layout of Kafka's PEM key store (KIP-651).
    pub fn keystore_pem(&self, ca: &Ca) -> String {
        format!("{}{}{}", self.key_pem, self.cert_pem, ca.cert_pem)
    }
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
}

impl Ca {
    /// A new self-signed CA with the given common name, valid for a year.
    pub fn new(common_name: &str) -> Result<Ca> {
        let key = KeyPair::generate().context("generating CA key")?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "oxbow-testbed");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, 365);
        let cert = params.self_signed(&key).context("self-signing CA")?;
        let issuer_key = KeyPair::from_pem(&key.serialize_pem()).context("copying CA key")?;
        Ok(Ca {
            cert_pem: cert.pem(),
            key,
            issuer: Issuer::new(params, issuer_key),
        })
    }

    /// Loads a CA from its certificate and key PEM.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca> {
        let key = KeyPair::from_pem(key_pem).context("parsing CA key")?;
        let issuer_key = KeyPair::from_pem(key_pem).context("parsing CA key")?;
        let issuer =
            Issuer::from_ca_cert_pem(cert_pem, issuer_key).context("parsing CA certificate")?;
        Ok(Ca {
            cert_pem: cert_pem.to_string(),
            key,
            issuer,
        })
    }

    /// A serving certificate for the given DNS names and IP addresses (both client and server use).
    pub fn server_cert(&self, common_name: &str, sans: &[&str]) -> Result<Leaf> {
        self.sign(common_name, None, sans, true)
    }

    /// A client certificate with subject `CN=<common_name>` (and `O=<org>` when given).
    pub fn client_cert(&self, common_name: &str, org: Option<&str>) -> Result<Leaf> {
        self.sign(common_name, org, &[], false)
    }

    fn sign(&self, cn: &str, org: Option<&str>, sans: &[&str], server: bool) -> Result<Leaf> {
        let key = KeyPair::generate().context("generating key")?;
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .context("building certificate parameters")?;
        params.distinguished_name = DistinguishedName::new();
        if let Some(org) = org {
            params
                .distinguished_name
                .push(DnType::OrganizationName, org);
        }
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = if server {
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ]
        } else {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        };
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, 365);
        let cert = params
            .signed_by(&key, &self.issuer)
            .context("signing certificate")?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Writes `contents` to `path`, readable only by its owner (keys live here).
pub fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_certificate_is_signed_by_its_ca_and_carries_sans() {
        let ca = Ca::new("test-ca").unwrap();
        let leaf = ca
            .server_cert("broker", &["localhost", "127.0.0.1"])
            .unwrap();
        assert!(
            leaf.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"),
            "PKCS#8 key for Kafka's PEM store"
        );
        let (_, pem) = x509_parser::pem::parse_x509_pem(leaf.cert_pem.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        let (_, ca_pem) = x509_parser::pem::parse_x509_pem(ca.cert_pem.as_bytes()).unwrap();
        let ca_cert = ca_pem.parse_x509().unwrap();
        assert_eq!(cert.issuer(), ca_cert.subject());
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
        let sans = cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .len();
        assert_eq!(sans, 2);
    }

    #[test]
    fn ca_round_trips_through_pem() {
        let ca = Ca::new("round-trip").unwrap();
        let again = Ca::from_pem(&ca.cert_pem, &ca.key.serialize_pem()).unwrap();
        let leaf = again.client_cert("alice", None).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(leaf.cert_pem.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        assert_eq!(cert.subject().to_string(), "CN=alice");
    }
}
