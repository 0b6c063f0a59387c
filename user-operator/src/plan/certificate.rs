//! TLS client certificates for `tls` users: whether the one in the user Secret can stay, issuing
//! a new one from the clients CA, and the PKCS#12 keystore Java clients load. Pure: no I/O; the
//! clock is the `now` argument and key material comes from the `SecureRandom` passed in.
//!
//! A certificate stays as long as it is parseable, matches its key, was signed by the current
//! clients CA key under the CA's name, and is outside the renewal window. A CA certificate
//! renewed with the same key therefore keeps user certificates (only `ca.crt` and the keystore
//! are refreshed), while a new CA key re-issues them all.

use std::fmt;

use openssl::pkcs12::Pkcs12;
use openssl::pkey::PKey;
use openssl::stack::Stack;
use openssl::x509::X509;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SerialNumber,
};
use ring::rand::SecureRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::pem::Pem;

use super::password::{Password, generate_password};

/// Longest common name X.509 allows (`ub-common-name`). The user's name is the CN, so a longer
/// KafkaUser name cannot have a TLS certificate.
pub const MAX_COMMON_NAME_LENGTH: usize = 64;

/// Bytes of randomness in a serial number: well above the 64 bits CAs are asked for, well
/// below the 20-octet limit.
const SERIAL_NUMBER_LENGTH: usize = 16;

/// How long user certificates live and when they are renewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertificateValidity {
    validity_days: u32,
    renewal_days: u32,
}

impl CertificateValidity {
    /// Strimzi's defaults for the clients CA, which user certificates follow.
    pub const DEFAULT: CertificateValidity = CertificateValidity {
        validity_days: 365,
        renewal_days: 30,
    };

    /// The renewal window must be shorter than the validity, or every new certificate would be
    /// due for renewal at once and re-issued on every reconcile.
    pub fn new(validity_days: u32, renewal_days: u32) -> Result<Self, CertificateError> {
        if renewal_days >= validity_days {
            return Err(CertificateError::RenewalWindowTooLong {
                validity_days,
                renewal_days,
            });
        }
        Ok(Self {
            validity_days,
            renewal_days,
        })
    }

    pub fn validity_days(&self) -> u32 {
        self.validity_days
    }

    pub fn renewal_days(&self) -> u32 {
        self.renewal_days
    }
}

impl Default for CertificateValidity {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A PEM private key. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeyPem(String);

impl PrivateKeyPem {
    pub fn new(pem: impl Into<String>) -> Self {
        Self(pem.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyPem(<redacted>)")
    }
}

/// The clients CA's current certificate and key, as the cluster operator stores them (PEM;
/// the key PKCS#8).
#[derive(Clone, Copy)]
pub struct ClientsCa<'a> {
    pub cert_pem: &'a str,
    pub key_pem: &'a str,
}

impl fmt::Debug for ClientsCa<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientsCa")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// The certificate and key found in an existing user Secret (`user.crt`, `user.key`).
#[derive(Clone, Copy)]
pub struct ExistingCert<'a> {
    pub cert_pem: &'a [u8],
    pub key_pem: &'a [u8],
}

impl fmt::Debug for ExistingCert<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExistingCert")
            .field("cert_pem", &String::from_utf8_lossy(self.cert_pem))
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// What to do with the user's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertDecision {
    Keep,
    Issue(IssueReason),
}

/// Why a new certificate is issued; [`IssueReason::as_str`] is the word for Events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueReason {
    /// No certificate (or no key) yet.
    Missing,
    /// The certificate or key is not PEM the operator can read.
    Unparseable,
    /// The key does not belong to the certificate.
    KeyMismatch,
    /// Renewal was asked for explicitly.
    ForceRenew,
    /// The certificate was not signed by the current clients CA key and name.
    CaChanged,
    /// The certificate has expired.
    Expired,
    /// The certificate expires within the renewal window.
    Expiring,
}

impl IssueReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "Missing",
            Self::Unparseable => "Unparseable",
            Self::KeyMismatch => "KeyMismatch",
            Self::ForceRenew => "ForceRenew",
            Self::CaChanged => "CaChanged",
            Self::Expired => "Expired",
            Self::Expiring => "Expiring",
        }
    }
}

/// A newly issued certificate and its key (PKCS#8 PEM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCert {
    pub cert_pem: String,
    pub key_pem: PrivateKeyPem,
}

/// A DER PKCS#12 keystore. `Debug` shows only its size: it holds the private key.
#[derive(Clone, PartialEq, Eq)]
pub struct Keystore(Vec<u8>);

impl Keystore {
    pub fn new(der: Vec<u8>) -> Self {
        Self(der)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Keystore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keystore(<redacted, {} bytes>)", self.0.len())
    }
}

/// What an existing user Secret holds for TLS; any entry may be absent.
#[derive(Clone, Copy, Default)]
pub struct ExistingTlsMaterial<'a> {
    pub ca_cert: Option<&'a [u8]>,
    pub cert: Option<&'a [u8]>,
    pub key: Option<&'a [u8]>,
    pub keystore: Option<&'a [u8]>,
    pub keystore_password: Option<&'a [u8]>,
}

impl fmt::Debug for ExistingTlsMaterial<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let present = |value: Option<&[u8]>| value.map(|_| "<present>");
        f.debug_struct("ExistingTlsMaterial")
            .field("ca_cert", &present(self.ca_cert))
            .field("cert", &present(self.cert))
            .field("key", &present(self.key))
            .field("keystore", &present(self.keystore))
            .field("keystore_password", &present(self.keystore_password))
            .finish()
    }
}

/// Everything a TLS user Secret holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsCredentials {
    pub ca_cert_pem: String,
    pub cert_pem: String,
    pub key_pem: PrivateKeyPem,
    pub keystore: Keystore,
    pub keystore_password: Password,
}

/// Why TLS credentials could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error(
        "KafkaUser name {name} is {length} characters long; users with TLS authentication may have at most {MAX_COMMON_NAME_LENGTH}, because the name becomes the certificate's common name"
    )]
    UserNameTooLong { name: String, length: usize },
    #[error(
        "the renewal window ({renewal_days} days) must be shorter than the certificate validity ({validity_days} days)"
    )]
    RenewalWindowTooLong {
        validity_days: u32,
        renewal_days: u32,
    },
    #[error("the clients CA certificate cannot be parsed: {detail}")]
    ClientsCaCertificateInvalid { detail: String },
    #[error("the clients CA key cannot be parsed as a PKCS#8 PEM private key: {source}")]
    ClientsCaKeyInvalid { source: rcgen::Error },
    #[error("the clients CA key does not belong to the clients CA certificate")]
    ClientsCaKeyMismatch,
    #[error("the random number source failed while generating key material")]
    RandomSourceFailed,
    #[error("signing the user certificate failed: {source}")]
    SignCertificate { source: rcgen::Error },
    #[error("building the PKCS#12 keystore failed: {source}")]
    BuildKeystore { source: openssl::error::ErrorStack },
}

impl CertificateError {
    /// Stable CamelCase word for condition reasons, Event reasons and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UserNameTooLong { .. } => "UserNameTooLong",
            Self::RenewalWindowTooLong { .. } => "RenewalWindowTooLong",
            Self::ClientsCaCertificateInvalid { .. } => "ClientsCaCertificateInvalid",
            Self::ClientsCaKeyInvalid { .. } => "ClientsCaKeyInvalid",
            Self::ClientsCaKeyMismatch => "ClientsCaKeyMismatch",
            Self::RandomSourceFailed => "RandomSourceFailed",
            Self::SignCertificate { .. } => "SignCertificateFailed",
            Self::BuildKeystore { .. } => "BuildKeystoreFailed",
        }
    }

    /// True when only a change to the KafkaUser can fix it (retrying will not).
    pub fn is_invalid_user_input(&self) -> bool {
        matches!(self, Self::UserNameTooLong { .. })
    }
}

/// The checks a kept certificate must pass, from most to least fundamental.
///
/// `force_renew` ranks below "missing" and "unparseable" so Events name the more basic cause.
pub fn decide_certificate(
    existing: Option<ExistingCert<'_>>,
    ca_cert_pem: &str,
    now: OffsetDateTime,
    renewal_days: u32,
    force_renew: bool,
) -> Result<CertDecision, CertificateError> {
    let ca_pem = parse_pem(ca_cert_pem.as_bytes()).map_err(|detail| {
        CertificateError::ClientsCaCertificateInvalid {
            detail: detail.to_owned(),
        }
    })?;
    let ca = parse_certificate(&ca_pem)
        .map_err(|detail| CertificateError::ClientsCaCertificateInvalid { detail })?;

    let Some(existing) = existing else {
        return Ok(CertDecision::Issue(IssueReason::Missing));
    };
    if existing.cert_pem.is_empty() || existing.key_pem.is_empty() {
        return Ok(CertDecision::Issue(IssueReason::Missing));
    }
    let Ok(cert_pem) = parse_pem(existing.cert_pem) else {
        return Ok(CertDecision::Issue(IssueReason::Unparseable));
    };
    let Ok(cert) = parse_certificate(&cert_pem) else {
        return Ok(CertDecision::Issue(IssueReason::Unparseable));
    };
    let Some(key) = std::str::from_utf8(existing.key_pem)
        .ok()
        .and_then(|pem| KeyPair::from_pem(pem).ok())
    else {
        return Ok(CertDecision::Issue(IssueReason::Unparseable));
    };
    if key.der_bytes() != cert.public_key().subject_public_key.data.as_ref() {
        return Ok(CertDecision::Issue(IssueReason::KeyMismatch));
    }
    if force_renew {
        return Ok(CertDecision::Issue(IssueReason::ForceRenew));
    }
    // Names compare as RFC 4514 strings so equal names in different string encodings match.
    let signed_by_current_ca = cert.issuer().to_string() == ca.subject().to_string()
        && cert.verify_signature(Some(ca.public_key())).is_ok();
    if !signed_by_current_ca {
        return Ok(CertDecision::Issue(IssueReason::CaChanged));
    }
    let not_after = cert.validity().not_after.to_datetime();
    if now >= not_after {
        return Ok(CertDecision::Issue(IssueReason::Expired));
    }
    if now + Duration::days(i64::from(renewal_days)) >= not_after {
        return Ok(CertDecision::Issue(IssueReason::Expiring));
    }
    Ok(CertDecision::Keep)
}

/// Issues a client certificate for `user_name`, signed by the clients CA.
///
/// The subject is `CN=<user_name>` and nothing else, because Kafka's principal is the whole
/// subject DN: any other attribute would turn `User:CN=<name>` into a principal no ACL names.
/// The key is ECDSA P-256, which Java and librdkafka clients both accept, generated from `rng`.
pub fn issue_user_certificate(
    user_name: &str,
    ca: ClientsCa<'_>,
    now: OffsetDateTime,
    validity_days: u32,
    rng: &dyn SecureRandom,
) -> Result<IssuedCert, CertificateError> {
    if user_name.len() > MAX_COMMON_NAME_LENGTH {
        return Err(CertificateError::UserNameTooLong {
            name: user_name.to_owned(),
            length: user_name.len(),
        });
    }
    let ca_key = KeyPair::from_pem(ca.key_pem)
        .map_err(|source| CertificateError::ClientsCaKeyInvalid { source })?;
    ensure_ca_key_matches(ca.cert_pem, &ca_key)?;
    let issuer = Issuer::from_ca_cert_pem(ca.cert_pem, ca_key).map_err(|source| {
        CertificateError::ClientsCaCertificateInvalid {
            detail: source.to_string(),
        }
    })?;

    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, rng)
        .map_err(|_| CertificateError::RandomSourceFailed)?;
    let user_key = KeyPair::try_from(pkcs8.as_ref())
        .map_err(|source| CertificateError::SignCertificate { source })?;

    let mut serial = [0u8; SERIAL_NUMBER_LENGTH];
    rng.fill(&mut serial)
        .map_err(|_| CertificateError::RandomSourceFailed)?;
    // Positive and full length: DER integers are signed, and a leading zero byte would shrink it.
    serial[0] = (serial[0] & 0x7f) | 0x40;

    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, user_name);
    let mut params = CertificateParams::default();
    params.distinguished_name = subject;
    params.not_before = now;
    params.not_after = now + Duration::days(i64::from(validity_days));
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;

    let cert = params
        .signed_by(&user_key, &issuer)
        .map_err(|source| CertificateError::SignCertificate { source })?;
    Ok(IssuedCert {
        cert_pem: cert.pem(),
        key_pem: PrivateKeyPem(user_key.serialize_pem()),
    })
}

/// A PKCS#12 keystore holding the user's key and certificate under `alias`, plus the CA
/// certificate(s) of `ca_cert_pem`, encrypted and MACed with `password`.
///
/// OpenSSL's defaults apply (AES-256-CBC, PBKDF2, SHA-256 MAC), which Java reads since 8u301 and
/// 11.0.12. Each call draws fresh salts, so equal inputs give different bytes: callers keep an
/// existing keystore rather than rebuilding it on every reconcile.
pub fn pkcs12(
    alias: &str,
    cert_pem: &str,
    key_pem: &PrivateKeyPem,
    ca_cert_pem: &str,
    password: &Password,
) -> Result<Keystore, CertificateError> {
    let build = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let cert = X509::from_pem(cert_pem.as_bytes())?;
        let key = PKey::private_key_from_pem(key_pem.expose().as_bytes())?;
        let mut ca_chain = Stack::new()?;
        for ca_cert in X509::stack_from_pem(ca_cert_pem.as_bytes())? {
            ca_chain.push(ca_cert)?;
        }
        Pkcs12::builder()
            .name(alias)
            .pkey(&key)
            .cert(&cert)
            .ca(ca_chain)
            .build2(password.expose())?
            .to_der()
    };
    build()
        .map(Keystore)
        .map_err(|source| CertificateError::BuildKeystore { source })
}

/// The TLS credentials the user Secret should hold, and whether a certificate was issued.
///
/// A kept certificate keeps its keystore too while `ca.crt` is unchanged, so a steady state
/// writes identical bytes; when only the CA certificate changed, the keystore is rebuilt around
/// the same key. The keystore password survives re-issues: clients that copied it elsewhere keep
/// working once they pick up the new keystore.
pub fn plan_tls_credentials(
    user_name: &str,
    existing: &ExistingTlsMaterial<'_>,
    ca: ClientsCa<'_>,
    now: OffsetDateTime,
    validity: CertificateValidity,
    force_renew: bool,
    rng: &dyn SecureRandom,
) -> Result<(CertDecision, TlsCredentials), CertificateError> {
    let existing_cert = match (existing.cert, existing.key) {
        (Some(cert_pem), Some(key_pem)) => Some(ExistingCert { cert_pem, key_pem }),
        _ => None,
    };
    let decision = decide_certificate(
        existing_cert,
        ca.cert_pem,
        now,
        validity.renewal_days,
        force_renew,
    )?;
    let existing_password = existing
        .keystore_password
        .filter(|password| !password.is_empty())
        .and_then(|password| std::str::from_utf8(password).ok())
        .map(Password::new);

    let (cert_pem, key_pem) = match (decision, existing_cert) {
        (CertDecision::Keep, Some(kept)) => {
            // decide_certificate parsed both as PEM, so they are text.
            let cert_pem = String::from_utf8_lossy(kept.cert_pem).into_owned();
            let key_pem = PrivateKeyPem(String::from_utf8_lossy(kept.key_pem).into_owned());
            let ca_unchanged = existing.ca_cert == Some(ca.cert_pem.as_bytes());
            if let (true, Some(keystore), Some(password)) =
                (ca_unchanged, existing.keystore, &existing_password)
                && !keystore.is_empty()
            {
                return Ok((
                    decision,
                    TlsCredentials {
                        ca_cert_pem: ca.cert_pem.to_owned(),
                        cert_pem,
                        key_pem,
                        keystore: Keystore(keystore.to_vec()),
                        keystore_password: password.clone(),
                    },
                ));
            }
            (cert_pem, key_pem)
        }
        _ => {
            let issued = issue_user_certificate(user_name, ca, now, validity.validity_days, rng)?;
            (issued.cert_pem, issued.key_pem)
        }
    };
    let keystore_password = match existing_password {
        Some(password) => password,
        None => generate_password(rng).map_err(|_| CertificateError::RandomSourceFailed)?,
    };
    let keystore = pkcs12(
        user_name,
        &cert_pem,
        &key_pem,
        ca.cert_pem,
        &keystore_password,
    )?;
    Ok((
        decision,
        TlsCredentials {
            ca_cert_pem: ca.cert_pem.to_owned(),
            cert_pem,
            key_pem,
            keystore,
            keystore_password,
        },
    ))
}

/// A CA key that does not match the CA certificate would sign certificates nobody can verify;
/// refuse instead of handing those out.
fn ensure_ca_key_matches(ca_cert_pem: &str, ca_key: &KeyPair) -> Result<(), CertificateError> {
    let pem = parse_pem(ca_cert_pem.as_bytes()).map_err(|detail| {
        CertificateError::ClientsCaCertificateInvalid {
            detail: detail.to_owned(),
        }
    })?;
    let ca = parse_certificate(&pem)
        .map_err(|detail| CertificateError::ClientsCaCertificateInvalid { detail })?;
    if ca.public_key().subject_public_key.data.as_ref() != ca_key.der_bytes() {
        return Err(CertificateError::ClientsCaKeyMismatch);
    }
    Ok(())
}

/// The first PEM block, which must be a certificate.
fn parse_pem(pem: &[u8]) -> Result<Pem, &'static str> {
    let (_, block) =
        x509_parser::pem::parse_x509_pem(pem).map_err(|_| "no PEM certificate block found")?;
    if block.label != "CERTIFICATE" {
        return Err("the PEM block is not a CERTIFICATE");
    }
    Ok(block)
}

fn parse_certificate(pem: &Pem) -> Result<X509Certificate<'_>, String> {
    pem.parse_x509().map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::rsa::Rsa;
    use ring::rand::SystemRandom;

    /// 2026-03-01T00:00:00Z, a fixed "now" for every test.
    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_772_323_200).expect("valid timestamp")
    }

    struct TestCa {
        cert_pem: String,
        key_pem: String,
    }

    impl TestCa {
        fn clients_ca(&self) -> ClientsCa<'_> {
            ClientsCa {
                cert_pem: &self.cert_pem,
                key_pem: &self.key_pem,
            }
        }
    }

    fn ca_with_key(common_name: &str, key: KeyPair, not_after: OffsetDateTime) -> TestCa {
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "io.oxbow");
        name.push(DnType::CommonName, common_name);
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now() - Duration::days(10);
        params.not_after = not_after;
        let cert = params.self_signed(&key).expect("self-signed CA");
        TestCa {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    fn test_ca() -> TestCa {
        ca_with_key(
            "clients-ca",
            KeyPair::generate().expect("CA key"),
            now() + Duration::days(1000),
        )
    }

    fn issue(ca: &TestCa, name: &str, at: OffsetDateTime, validity_days: u32) -> IssuedCert {
        issue_user_certificate(
            name,
            ca.clients_ca(),
            at,
            validity_days,
            &SystemRandom::new(),
        )
        .expect("issued")
    }

    fn existing(issued: &IssuedCert) -> ExistingCert<'_> {
        ExistingCert {
            cert_pem: issued.cert_pem.as_bytes(),
            key_pem: issued.key_pem.expose().as_bytes(),
        }
    }

    fn decide(issued: &IssuedCert, ca: &TestCa, at: OffsetDateTime) -> CertDecision {
        decide_certificate(Some(existing(issued)), &ca.cert_pem, at, 30, false).expect("decided")
    }

    #[test]
    fn issued_certificate_has_only_the_user_cn_and_verifies_against_the_ca() {
        let ca = test_ca();

        let issued = issue(&ca, "alice", now(), 365);

        let (_, pem) = x509_parser::pem::parse_x509_pem(issued.cert_pem.as_bytes()).expect("pem");
        let cert = pem.parse_x509().expect("certificate");
        assert_eq!(cert.subject().to_string(), "CN=alice");
        assert_eq!(cert.issuer().to_string(), "O=io.oxbow, CN=clients-ca");
        let (_, ca_pem) = x509_parser::pem::parse_x509_pem(ca.cert_pem.as_bytes()).expect("pem");
        let ca_cert = ca_pem.parse_x509().expect("CA certificate");
        cert.verify_signature(Some(ca_cert.public_key()))
            .expect("signed by the clients CA");
        let eku = cert
            .extended_key_usage()
            .expect("parseable")
            .expect("present");
        assert!(eku.value.client_auth);
        assert!(!eku.value.server_auth);
        assert!(!cert.is_ca());
        assert_eq!(cert.validity().not_before.to_datetime(), now());
        assert_eq!(
            cert.validity().not_after.to_datetime(),
            now() + Duration::days(365)
        );

        // OpenSSL, an independent implementation, agrees on the signature.
        let ca_public_key = X509::from_pem(ca.cert_pem.as_bytes())
            .expect("CA")
            .public_key()
            .expect("CA key");
        let user_cert = X509::from_pem(issued.cert_pem.as_bytes()).expect("user cert");
        assert!(user_cert.verify(&ca_public_key).expect("verifiable"));
    }

    #[test]
    fn issued_key_is_pkcs8_and_belongs_to_the_certificate() {
        let ca = test_ca();

        let issued = issue(&ca, "alice", now(), 365);

        assert!(
            issued
                .key_pem
                .expose()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        let key = PKey::private_key_from_pem(issued.key_pem.expose().as_bytes()).expect("key");
        let cert = X509::from_pem(issued.cert_pem.as_bytes()).expect("cert");
        assert!(cert.public_key().expect("public key").public_eq(&key));
    }

    #[test]
    fn each_issue_has_a_fresh_key_and_serial() {
        let ca = test_ca();

        let first = issue(&ca, "alice", now(), 365);
        let second = issue(&ca, "alice", now(), 365);

        assert_ne!(first.key_pem, second.key_pem);
        let serial = |issued: &IssuedCert| {
            X509::from_pem(issued.cert_pem.as_bytes())
                .expect("cert")
                .serial_number()
                .to_bn()
                .expect("serial")
                .to_hex_str()
                .expect("hex")
                .to_string()
        };
        assert_ne!(serial(&first), serial(&second));
    }

    #[test]
    fn an_rsa_clients_ca_signs_too() {
        let rsa_pem = PKey::from_rsa(Rsa::generate(2048).expect("RSA key"))
            .expect("pkey")
            .private_key_to_pem_pkcs8()
            .expect("pkcs8");
        let key = KeyPair::from_pem(std::str::from_utf8(&rsa_pem).expect("pem text"))
            .expect("rcgen reads RSA PKCS#8");
        let ca = ca_with_key("rsa-clients-ca", key, now() + Duration::days(1000));

        let issued = issue(&ca, "alice", now(), 365);

        assert_eq!(decide(&issued, &ca, now()), CertDecision::Keep);
    }

    #[test]
    fn an_rsa_user_certificate_made_by_openssl_is_kept() {
        // What a user Secret carried over from Strimzi looks like: an RSA key and a certificate
        // OpenSSL signed with the same clients CA.
        use openssl::asn1::Asn1Time;
        use openssl::bn::BigNum;
        use openssl::hash::MessageDigest;
        use openssl::x509::X509NameBuilder;

        let ca = test_ca();
        let ca_cert = X509::from_pem(ca.cert_pem.as_bytes()).expect("CA");
        let ca_key = PKey::private_key_from_pem(ca.key_pem.as_bytes()).expect("CA key");
        let user_key = PKey::from_rsa(Rsa::generate(2048).expect("RSA")).expect("pkey");
        let mut subject = X509NameBuilder::new().expect("name");
        subject.append_entry_by_text("CN", "alice").expect("CN");
        let subject = subject.build();
        let mut builder = X509::builder().expect("builder");
        builder.set_version(2).expect("v3");
        builder
            .set_serial_number(
                &BigNum::from_u32(7)
                    .expect("bn")
                    .to_asn1_integer()
                    .expect("serial"),
            )
            .expect("serial");
        builder.set_subject_name(&subject).expect("subject");
        builder
            .set_issuer_name(ca_cert.subject_name())
            .expect("issuer");
        builder.set_pubkey(&user_key).expect("public key");
        let not_before = Asn1Time::from_unix(now().unix_timestamp()).expect("time");
        let not_after =
            Asn1Time::from_unix((now() + Duration::days(365)).unix_timestamp()).expect("time");
        builder.set_not_before(&not_before).expect("not before");
        builder.set_not_after(&not_after).expect("not after");
        builder
            .sign(&ca_key, MessageDigest::sha256())
            .expect("signed");
        let cert_pem = builder.build().to_pem().expect("pem");
        let key_pem = user_key.private_key_to_pem_pkcs8().expect("pkcs8");

        let decision = decide_certificate(
            Some(ExistingCert {
                cert_pem: &cert_pem,
                key_pem: &key_pem,
            }),
            &ca.cert_pem,
            now() + Duration::days(1),
            30,
            false,
        )
        .expect("decided");

        assert_eq!(decision, CertDecision::Keep);
    }

    #[test]
    fn names_longer_than_a_common_name_are_rejected() {
        let ca = test_ca();
        let name = "a".repeat(65);

        let error =
            issue_user_certificate(&name, ca.clients_ca(), now(), 365, &SystemRandom::new())
                .expect_err("too long");

        assert_eq!(error.reason(), "UserNameTooLong");
        assert!(error.is_invalid_user_input());
        assert!(
            issue_user_certificate(
                &"a".repeat(64),
                ca.clients_ca(),
                now(),
                365,
                &SystemRandom::new()
            )
            .is_ok()
        );
    }

    #[test]
    fn a_ca_key_that_does_not_match_the_ca_certificate_is_refused() {
        let ca = test_ca();
        let other = test_ca();
        let mismatched = ClientsCa {
            cert_pem: &ca.cert_pem,
            key_pem: &other.key_pem,
        };

        let error = issue_user_certificate("alice", mismatched, now(), 365, &SystemRandom::new())
            .expect_err("mismatch");

        assert_eq!(error.reason(), "ClientsCaKeyMismatch");
    }

    #[test]
    fn a_missing_certificate_is_issued() {
        let ca = test_ca();

        let decision = decide_certificate(None, &ca.cert_pem, now(), 30, false).expect("decided");
        let empty = decide_certificate(
            Some(ExistingCert {
                cert_pem: b"",
                key_pem: b"",
            }),
            &ca.cert_pem,
            now(),
            30,
            false,
        )
        .expect("decided");

        assert_eq!(decision, CertDecision::Issue(IssueReason::Missing));
        assert_eq!(empty, CertDecision::Issue(IssueReason::Missing));
    }

    #[test]
    fn a_valid_certificate_is_kept() {
        let ca = test_ca();
        let issued = issue(&ca, "alice", now(), 365);

        assert_eq!(
            decide(&issued, &ca, now() + Duration::days(300)),
            CertDecision::Keep
        );
    }

    #[test]
    fn a_certificate_within_the_renewal_window_is_renewed() {
        let ca = test_ca();
        let issued = issue(&ca, "alice", now(), 365);

        assert_eq!(
            decide(&issued, &ca, now() + Duration::days(336)),
            CertDecision::Issue(IssueReason::Expiring)
        );
    }

    #[test]
    fn an_expired_certificate_is_renewed() {
        let ca = test_ca();
        let issued = issue(&ca, "alice", now(), 365);

        assert_eq!(
            decide(&issued, &ca, now() + Duration::days(365)),
            CertDecision::Issue(IssueReason::Expired)
        );
    }

    #[test]
    fn a_certificate_from_another_ca_key_is_reissued() {
        let old_ca = test_ca();
        let new_ca = test_ca();
        let issued = issue(&old_ca, "alice", now(), 365);

        assert_eq!(
            decide(&issued, &new_ca, now()),
            CertDecision::Issue(IssueReason::CaChanged)
        );
    }

    #[test]
    fn a_ca_renewed_with_the_same_key_keeps_certificates() {
        let key_pem = KeyPair::generate().expect("key").serialize_pem();
        let reload = || KeyPair::from_pem(&key_pem).expect("key");
        let old_ca = ca_with_key("clients-ca", reload(), now() + Duration::days(100));
        let renewed_ca = ca_with_key("clients-ca", reload(), now() + Duration::days(465));
        let issued = issue(&old_ca, "alice", now(), 365);

        assert_eq!(decide(&issued, &renewed_ca, now()), CertDecision::Keep);
    }

    #[test]
    fn a_ca_renamed_under_the_same_key_reissues() {
        let key_pem = KeyPair::generate().expect("key").serialize_pem();
        let reload = || KeyPair::from_pem(&key_pem).expect("key");
        let old_ca = ca_with_key("clients-ca", reload(), now() + Duration::days(1000));
        let renamed_ca = ca_with_key("clients-ca-v2", reload(), now() + Duration::days(1000));
        let issued = issue(&old_ca, "alice", now(), 365);

        assert_eq!(
            decide(&issued, &renamed_ca, now()),
            CertDecision::Issue(IssueReason::CaChanged)
        );
    }

    #[test]
    fn force_renew_reissues_a_valid_certificate() {
        let ca = test_ca();
        let issued = issue(&ca, "alice", now(), 365);

        let decision = decide_certificate(Some(existing(&issued)), &ca.cert_pem, now(), 30, true)
            .expect("decided");

        assert_eq!(decision, CertDecision::Issue(IssueReason::ForceRenew));
    }

    #[test]
    fn garbage_is_reissued() {
        let ca = test_ca();
        let issued = issue(&ca, "alice", now(), 365);

        for (cert_pem, key_pem) in [
            (
                &b"not a certificate"[..],
                issued.key_pem.expose().as_bytes(),
            ),
            (
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                issued.key_pem.expose().as_bytes(),
            ),
            (issued.cert_pem.as_bytes(), b"not a key"),
            (issued.cert_pem.as_bytes(), &[0xff, 0xfe, 0x00]),
        ] {
            let decision = decide_certificate(
                Some(ExistingCert { cert_pem, key_pem }),
                &ca.cert_pem,
                now(),
                30,
                false,
            )
            .expect("decided");

            assert_eq!(decision, CertDecision::Issue(IssueReason::Unparseable));
        }
    }

    #[test]
    fn a_key_from_another_certificate_is_reissued() {
        let ca = test_ca();
        let first = issue(&ca, "alice", now(), 365);
        let second = issue(&ca, "alice", now(), 365);
        let crossed = ExistingCert {
            cert_pem: first.cert_pem.as_bytes(),
            key_pem: second.key_pem.expose().as_bytes(),
        };

        let decision =
            decide_certificate(Some(crossed), &ca.cert_pem, now(), 30, false).expect("decided");

        assert_eq!(decision, CertDecision::Issue(IssueReason::KeyMismatch));
    }

    #[test]
    fn an_unparseable_clients_ca_is_an_error() {
        let error = decide_certificate(None, "garbage", now(), 30, false).expect_err("bad CA");

        assert_eq!(error.reason(), "ClientsCaCertificateInvalid");
        assert!(!error.is_invalid_user_input());
    }

    #[test]
    fn keystore_opens_with_its_password_and_holds_key_cert_and_ca() {
        let ca = test_ca();
        let issued = issue(&ca, "alice", now(), 365);
        let password = Password::new("keystore-password");

        let keystore = pkcs12(
            "alice",
            &issued.cert_pem,
            &issued.key_pem,
            &ca.cert_pem,
            &password,
        )
        .expect("built");

        let parsed = Pkcs12::from_der(keystore.expose())
            .expect("DER")
            .parse2("keystore-password")
            .expect("opens with its password");
        let cert = parsed.cert.expect("user certificate");
        assert_eq!(
            cert.to_pem().expect("pem"),
            X509::from_pem(issued.cert_pem.as_bytes())
                .expect("cert")
                .to_pem()
                .expect("pem")
        );
        assert!(
            cert.public_key()
                .expect("public key")
                .public_eq(&parsed.pkey.expect("private key"))
        );
        let ca_certs = parsed.ca.expect("CA chain");
        assert_eq!(ca_certs.len(), 1);
        assert_eq!(
            ca_certs[0].to_pem().expect("pem"),
            X509::from_pem(ca.cert_pem.as_bytes())
                .expect("CA")
                .to_pem()
                .expect("pem")
        );
        let alias = cert.alias().map(|alias| alias.to_vec());
        assert_eq!(alias.as_deref(), Some(&b"alice"[..]));
    }

    #[test]
    fn keystore_does_not_open_with_another_password() {
        let ca = test_ca();
        let issued = issue(&ca, "alice", now(), 365);

        let keystore = pkcs12(
            "alice",
            &issued.cert_pem,
            &issued.key_pem,
            &ca.cert_pem,
            &Password::new("right"),
        )
        .expect("built");

        assert!(
            Pkcs12::from_der(keystore.expose())
                .expect("DER")
                .parse2("wrong")
                .is_err()
        );
    }

    fn plan(
        existing: &ExistingTlsMaterial<'_>,
        ca: &TestCa,
        at: OffsetDateTime,
    ) -> (CertDecision, TlsCredentials) {
        plan_tls_credentials(
            "alice",
            existing,
            ca.clients_ca(),
            at,
            CertificateValidity::DEFAULT,
            false,
            &SystemRandom::new(),
        )
        .expect("planned")
    }

    fn material(credentials: &TlsCredentials) -> ExistingTlsMaterial<'_> {
        ExistingTlsMaterial {
            ca_cert: Some(credentials.ca_cert_pem.as_bytes()),
            cert: Some(credentials.cert_pem.as_bytes()),
            key: Some(credentials.key_pem.expose().as_bytes()),
            keystore: Some(credentials.keystore.expose()),
            keystore_password: Some(credentials.keystore_password.expose().as_bytes()),
        }
    }

    #[test]
    fn first_plan_issues_everything() {
        let ca = test_ca();

        let (decision, credentials) = plan(&ExistingTlsMaterial::default(), &ca, now());

        assert_eq!(decision, CertDecision::Issue(IssueReason::Missing));
        assert_eq!(credentials.ca_cert_pem, ca.cert_pem);
        assert_eq!(credentials.keystore_password.expose().len(), 32);
        assert!(
            Pkcs12::from_der(credentials.keystore.expose())
                .expect("DER")
                .parse2(credentials.keystore_password.expose())
                .is_ok()
        );
    }

    #[test]
    fn steady_state_plan_reproduces_the_existing_secret_byte_for_byte() {
        let ca = test_ca();
        let (_, first) = plan(&ExistingTlsMaterial::default(), &ca, now());

        let (decision, second) = plan(&material(&first), &ca, now() + Duration::days(1));

        assert_eq!(decision, CertDecision::Keep);
        assert_eq!(second, first);
    }

    #[test]
    fn a_renewed_ca_certificate_rebuilds_the_keystore_around_the_same_key() {
        let key_pem = KeyPair::generate().expect("key").serialize_pem();
        let reload = || KeyPair::from_pem(&key_pem).expect("key");
        let old_ca = ca_with_key("clients-ca", reload(), now() + Duration::days(400));
        let renewed_ca = ca_with_key("clients-ca", reload(), now() + Duration::days(800));
        let (_, first) = plan(&ExistingTlsMaterial::default(), &old_ca, now());

        let (decision, second) = plan(&material(&first), &renewed_ca, now());

        assert_eq!(decision, CertDecision::Keep);
        assert_eq!(second.cert_pem, first.cert_pem);
        assert_eq!(second.key_pem, first.key_pem);
        assert_eq!(second.keystore_password, first.keystore_password);
        assert_eq!(second.ca_cert_pem, renewed_ca.cert_pem);
        let parsed = Pkcs12::from_der(second.keystore.expose())
            .expect("DER")
            .parse2(second.keystore_password.expose())
            .expect("opens");
        let ca_in_keystore = parsed.ca.expect("CA chain")[0].to_pem().expect("pem");
        assert_eq!(
            ca_in_keystore,
            X509::from_pem(renewed_ca.cert_pem.as_bytes())
                .expect("CA")
                .to_pem()
                .expect("pem")
        );
    }

    #[test]
    fn a_reissue_keeps_the_keystore_password() {
        let ca = test_ca();
        let (_, first) = plan(&ExistingTlsMaterial::default(), &ca, now());

        let (decision, second) = plan(&material(&first), &ca, now() + Duration::days(340));

        assert_eq!(decision, CertDecision::Issue(IssueReason::Expiring));
        assert_ne!(second.cert_pem, first.cert_pem);
        assert_ne!(second.key_pem, first.key_pem);
        assert_eq!(second.keystore_password, first.keystore_password);
    }

    #[test]
    fn a_missing_keystore_is_rebuilt_for_a_kept_certificate() {
        let ca = test_ca();
        let (_, first) = plan(&ExistingTlsMaterial::default(), &ca, now());
        let without_keystore = ExistingTlsMaterial {
            keystore: None,
            keystore_password: None,
            ..material(&first)
        };

        let (decision, second) = plan(&without_keystore, &ca, now());

        assert_eq!(decision, CertDecision::Keep);
        assert_eq!(second.cert_pem, first.cert_pem);
        assert_ne!(second.keystore_password, first.keystore_password);
        assert!(
            Pkcs12::from_der(second.keystore.expose())
                .expect("DER")
                .parse2(second.keystore_password.expose())
                .is_ok()
        );
    }

    #[test]
    fn renewal_window_must_be_shorter_than_validity() {
        assert!(CertificateValidity::new(365, 30).is_ok());
        let error = CertificateValidity::new(30, 30).expect_err("window too long");
        assert_eq!(error.reason(), "RenewalWindowTooLong");
    }

    #[test]
    fn debug_output_never_contains_private_material() {
        let ca = test_ca();
        let (_, credentials) = plan(&ExistingTlsMaterial::default(), &ca, now());
        let key_body: String = credentials
            .key_pem
            .expose()
            .lines()
            .nth(1)
            .expect("a base64 line")
            .to_owned();

        for shown in [
            format!("{credentials:?}"),
            format!("{:?}", ca.clients_ca()),
            format!("{:?}", material(&credentials)),
        ] {
            assert!(!shown.contains(&key_body), "{shown}");
            assert!(
                !shown.contains(credentials.keystore_password.expose()),
                "{shown}"
            );
            assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        }
        let ca_key_body = ca.key_pem.lines().nth(1).expect("a base64 line");
        assert!(!format!("{:?}", ca.clients_ca()).contains(ca_key_body));
    }
}
