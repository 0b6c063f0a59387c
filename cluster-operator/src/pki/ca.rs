//! The lifecycle of a certificate authority, the cluster CA and the clients CA alike, as pure
//! decisions over the data of its two Secrets: read them ([`ObservedCa::read`]), decide
//! ([`plan_ca`]), and build the Secrets' new data and the CA everything else signs and trusts
//! with ([`build_ca`]). Pure: no I/O; the clock is `now`, randomness the `rng` argument.
//!
//! # The Secrets
//!
//! `<cluster>-cluster-ca` (`<cluster>-clients-ca`) holds the private key, `ca.key` (PKCS#8 PEM).
//! `<cluster>-cluster-ca-cert` (`<cluster>-clients-ca-cert`) holds what clients trust:
//! - `ca.crt`: the current CA certificate, the one `ca.key` belongs to and everything new is
//!   signed under. Only that certificate for generated CAs, because the user operator and
//!   Strimzi-era tooling read `ca.crt` as "the certificate of `ca.key`". A user-supplied
//!   `ca.crt` may continue with the chain above it (intermediate CAs); all of it is trusted.
//! - `ca-<generation>.crt`: an earlier CA certificate, kept after its key was replaced until
//!   every node and operator runs a certificate signed by the new key (`roll_done`), or until
//!   it expires, whichever comes first. The generation is the certificate generation it had.
//! - `ca-bundle.crt`: everything trusted, in one file ([`CaState::trust_bundle_pem`]), for
//!   clients that must keep working across a key replacement. Written for generated CAs only:
//!   Oxbow never writes a user's Secrets, which is why Kafka nodes get their truststores in
//!   their own Secrets (`node_certs::node_secret_data`) rather than from here. Strimzi's
//!   `ca.p12`/`ca.password` are not written.
//!
//! Both Secrets carry `oxbow.rs/ca-cert-generation` and `oxbow.rs/ca-key-generation`. The
//! certificate generation grows with every new CA certificate, the key generation with every
//! new key; the controller compares them with what each pod was started with to decide who
//! restarts. Each generation is on both Secrets so a lost Secret can be recreated with a
//! generation that still differs from every pod's.
//!
//! # Decisions
//!
//! A generated CA is created when neither Secret holds anything usable. Inside the renewal
//! window, when expired, or when renewal is forced (`oxbow.rs/force-renew`), the
//! `certificateExpirationPolicy` decides: `renew-certificate` signs a new certificate for the
//! same key and name (everything issued so far stays valid), `replace-key` makes a new key
//! with a new name (`CN=cluster-ca v<key generation>`), keeping the old certificate trusted.
//! A lost, corrupt or mismatched `ca.key` is a key replacement whatever the policy, a lost or
//! corrupt `ca.crt` a renewal: each keeps what still works. A user-supplied CA
//! (`generateCertificateAuthority: false`) is only read and checked; when it is missing or
//! unusable the error says what to fix. Its owner renews it, bumping the generation
//! annotations so nodes restart, and may keep earlier certificates trusted as `ca-<n>.crt`.

use std::collections::BTreeMap;
use std::fmt;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose, PublicKeyData};
use ring::rand::SecureRandom;
use shared_crds::common::{
    CertificateAuthority, CertificateExpirationPolicy, DEFAULT_CA_RENEWAL_DAYS,
    DEFAULT_CA_VALIDITY_DAYS,
};
use shared_crds::names;
use time::OffsetDateTime;

use super::pem::{self, CERTIFICATE_LABEL, PrivateKeyPem};
use super::{
    CLOCK_SKEW_ALLOWANCE, MAX_VALIDITY_DAYS, days_after, generate_key, random_serial, subject,
};

/// Entry of the key Secret holding the CA's private key (PKCS#8 PEM).
pub const CA_KEY: &str = "ca.key";
/// Entry of the certificate Secret holding the current CA certificate.
pub const CA_CERT: &str = "ca.crt";
/// Entry of the certificate Secret holding every trusted CA certificate in one PEM file.
pub const CA_BUNDLE: &str = "ca-bundle.crt";
/// Annotation on both CA Secrets: the generation of the current CA certificate.
pub const CERT_GENERATION_ANNOTATION: &str = "oxbow.rs/ca-cert-generation";
/// Annotation on both CA Secrets: the generation of the CA key.
pub const KEY_GENERATION_ANNOTATION: &str = "oxbow.rs/ca-key-generation";

/// Entry of the certificate Secret holding the earlier CA certificate of `generation`.
pub fn previous_cert_entry(generation: u32) -> String {
    format!("ca-{generation}.crt")
}

fn previous_cert_generation(entry: &str) -> Option<u32> {
    entry
        .strip_prefix("ca-")?
        .strip_suffix(".crt")?
        .parse()
        .ok()
}

/// Which of a cluster's two CAs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaRole {
    /// Signs the Kafka nodes' and Oxbow's operators' certificates.
    Cluster,
    /// Signs the certificates of KafkaUsers with `tls` authentication.
    Clients,
}

impl CaRole {
    /// Name of the Secret with the key.
    pub fn key_secret(self, cluster: &str) -> String {
        match self {
            Self::Cluster => names::cluster_ca_key_secret(cluster),
            Self::Clients => names::clients_ca_key_secret(cluster),
        }
    }

    /// Name of the Secret with the certificates.
    pub fn cert_secret(self, cluster: &str) -> String {
        match self {
            Self::Cluster => names::cluster_ca_cert_secret(cluster),
            Self::Clients => names::clients_ca_cert_secret(cluster),
        }
    }

    /// The Kafka spec field configuring this CA, for messages.
    pub fn spec_field(self) -> &'static str {
        match self {
            Self::Cluster => "clusterCa",
            Self::Clients => "clientsCa",
        }
    }

    /// Common name of a generated CA certificate. The key generation is part of it so a
    /// replaced key also gets a new name: TLS stacks pick a certificate's issuer by name first,
    /// and two trusted CAs with one name but different keys would make them guess.
    pub fn common_name(self, key_generation: u32) -> String {
        match self {
            Self::Cluster => format!("cluster-ca v{key_generation}"),
            Self::Clients => format!("clients-ca v{key_generation}"),
        }
    }
}

/// A CA's settings from the Kafka spec, defaults applied and checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaSettings {
    /// Oxbow generates and renews the CA (`generateCertificateAuthority`, default true).
    pub generate: bool,
    /// Days a new CA certificate, and each certificate it signs, is valid.
    pub validity_days: u32,
    /// Days before expiry at which a certificate is renewed.
    pub renewal_days: u32,
    /// What renewal of the CA certificate does.
    pub expiration_policy: CertificateExpirationPolicy,
    /// The CA Secrets are owned by the Kafka and deleted with it (`generateSecretOwnerReference`).
    pub secret_owner_reference: bool,
}

impl CaSettings {
    /// The settings of the CA `role` from its spec section (absent: all defaults). A renewal
    /// window as long as the validity would renew every certificate the moment it is issued,
    /// so it is refused as invalid input.
    pub fn from_spec(role: CaRole, spec: Option<&CertificateAuthority>) -> Result<Self, CaError> {
        // The CRD forbids values below 1; a negative one that slipped through counts as 0.
        let days =
            |value: Option<i32>, default: i32| u32::try_from(value.unwrap_or(default)).unwrap_or(0);
        let validity_days = days(spec.and_then(|s| s.validity_days), DEFAULT_CA_VALIDITY_DAYS);
        let renewal_days = days(spec.and_then(|s| s.renewal_days), DEFAULT_CA_RENEWAL_DAYS);
        if validity_days > MAX_VALIDITY_DAYS {
            return Err(CaError::ValidityTooLong {
                field: role.spec_field(),
                validity_days,
            });
        }
        if validity_days == 0 || renewal_days >= validity_days {
            return Err(CaError::RenewalWindowTooLong {
                field: role.spec_field(),
                validity_days,
                renewal_days,
            });
        }
        Ok(Self {
            generate: spec
                .and_then(|s| s.generate_certificate_authority)
                .unwrap_or(true),
            validity_days,
            renewal_days,
            expiration_policy: spec
                .and_then(|s| s.certificate_expiration_policy)
                .unwrap_or(CertificateExpirationPolicy::RenewCertificate),
            secret_owner_reference: spec
                .and_then(|s| s.generate_secret_owner_reference)
                .unwrap_or(true),
        })
    }
}

/// A Secret as observed: its annotations and its decoded data. `Debug` shows the data's entry
/// names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ObservedSecret {
    pub annotations: BTreeMap<String, String>,
    pub data: BTreeMap<String, Vec<u8>>,
}

impl fmt::Debug for ObservedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObservedSecret")
            .field("annotations", &self.annotations)
            .field("data", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What is wrong with one of the two halves of an observed CA.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Defect {
    SecretMissing,
    EntryMissing,
    Invalid(String),
}

/// A parsed CA certificate entry (`ca.crt`): the issuing certificate and the chain after it.
#[derive(Clone, Debug)]
struct ObservedCert {
    der: Vec<u8>,
    chain: Vec<Vec<u8>>,
    not_after: OffsetDateTime,
    is_ca: bool,
    /// The certificate's public key, to match against the key.
    public_key: Vec<u8>,
}

/// A parsed CA key entry (`ca.key`).
#[derive(Clone, Debug)]
struct ObservedKey {
    pem: PrivateKeyPem,
    public_key: Vec<u8>,
}

/// An earlier CA certificate still in the certificate Secret.
#[derive(Clone, Debug)]
struct PreviousCert {
    der: Vec<u8>,
    not_after: OffsetDateTime,
}

/// The two Secrets of one CA, parsed, with whatever is wrong with them recorded rather than
/// returned: what to do about a defect is [`plan_ca`]'s decision.
#[derive(Clone, Debug)]
pub struct ObservedCa {
    role: CaRole,
    cluster: String,
    key: Result<ObservedKey, Defect>,
    cert: Result<ObservedCert, Defect>,
    /// Unparseable `ca-<n>.crt` entries are ignored: they cannot help anyone trust anything.
    previous: BTreeMap<u32, PreviousCert>,
    cert_generation: Option<u32>,
    key_generation: Option<u32>,
}

impl ObservedCa {
    /// Parses the key Secret (`<cluster>-cluster-ca` or `-clients-ca`) and the certificate
    /// Secret (`...-cert`) of CA `role`, either of which may be absent.
    pub fn read(
        role: CaRole,
        cluster: &str,
        key_secret: Option<&ObservedSecret>,
        cert_secret: Option<&ObservedSecret>,
    ) -> Self {
        let key = match key_secret {
            None => Err(Defect::SecretMissing),
            Some(secret) => match secret.data.get(CA_KEY).filter(|v| !v.is_empty()) {
                None => Err(Defect::EntryMissing),
                Some(bytes) => pem::decode_private_key(bytes)
                    .map(|(pem, key)| ObservedKey {
                        pem,
                        public_key: key.der_bytes().to_vec(),
                    })
                    .map_err(|error| Defect::Invalid(error.to_string())),
            },
        };
        let cert = match cert_secret {
            None => Err(Defect::SecretMissing),
            Some(secret) => match secret.data.get(CA_CERT).filter(|v| !v.is_empty()) {
                None => Err(Defect::EntryMissing),
                Some(bytes) => parse_ca_cert(bytes).map_err(Defect::Invalid),
            },
        };
        let previous = cert_secret
            .map(|secret| {
                secret
                    .data
                    .iter()
                    .filter_map(|(entry, bytes)| {
                        let generation = previous_cert_generation(entry)?;
                        let der = pem::decode_certificates(bytes).ok()?.into_iter().next()?;
                        let not_after = not_after(&der)?;
                        Some((generation, PreviousCert { der, not_after }))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let generation = |annotation: &str, first: Option<&ObservedSecret>, second| {
            [first, second]
                .into_iter()
                .flatten()
                .find_map(|secret: &ObservedSecret| {
                    secret.annotations.get(annotation)?.parse().ok()
                })
        };
        Self {
            role,
            cluster: cluster.to_owned(),
            key,
            cert,
            previous,
            cert_generation: generation(CERT_GENERATION_ANNOTATION, cert_secret, key_secret),
            key_generation: generation(KEY_GENERATION_ANNOTATION, key_secret, cert_secret),
        }
    }

    fn key_matches_cert(&self) -> bool {
        match (&self.key, &self.cert) {
            (Ok(key), Ok(cert)) => key.public_key == cert.public_key,
            _ => false,
        }
    }

    fn key_secret(&self) -> String {
        self.role.key_secret(&self.cluster)
    }

    fn cert_secret(&self) -> String {
        self.role.cert_secret(&self.cluster)
    }
}

fn parse_ca_cert(bytes: &[u8]) -> Result<ObservedCert, String> {
    let mut certificates = pem::decode_certificates(bytes)
        .map_err(|error| error.to_string())?
        .into_iter();
    let der = certificates.next().ok_or("no certificate")?;
    let (_, parsed) =
        x509_parser::parse_x509_certificate(&der).map_err(|error| error.to_string())?;
    let cert = ObservedCert {
        not_after: parsed.validity().not_after.to_datetime(),
        is_ca: parsed.is_ca(),
        public_key: parsed.public_key().subject_public_key.data.to_vec(),
        der: der.clone(),
        chain: certificates.collect(),
    };
    Ok(cert)
}

fn not_after(der: &[u8]) -> Option<OffsetDateTime> {
    let (_, parsed) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(parsed.validity().not_after.to_datetime())
}

/// Why a generated CA gets a new certificate or key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaRenewalReason {
    /// The certificate expires within `renewalDays`.
    Expiring,
    /// The certificate has expired.
    Expired,
    /// The certificate Secret is annotated `oxbow.rs/force-renew: "true"`.
    ForceRenew,
    /// `ca.crt` is missing, unreadable or not a CA certificate while the key is fine: a new
    /// certificate for the same key.
    CertificateUnusable,
    /// `ca.key` is missing, unreadable or not the key of `ca.crt` while the certificate is
    /// fine: a new key, with the old certificate still trusted for what it signed.
    KeyUnusable,
}

impl CaRenewalReason {
    /// Stable CamelCase word for Events and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expiring => "CaCertificateExpiring",
            Self::Expired => "CaCertificateExpired",
            Self::ForceRenew => "ForceRenew",
            Self::CertificateUnusable => "CaCertificateUnusable",
            Self::KeyUnusable => "CaKeyUnusable",
        }
    }
}

/// What happens to a CA in this reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaPlan {
    /// Generate a key and a self-signed certificate: there is no usable CA yet.
    Create,
    /// Nothing changes. For a user-supplied CA this is the only outcome besides an error.
    Keep,
    /// A new certificate for the same key and name; the certificate generation grows and
    /// certificates signed so far stay valid.
    RenewCertificate { reason: CaRenewalReason },
    /// A new key and certificate; both generations grow, and the old certificate stays in the
    /// trust bundle until the roll is done.
    ReplaceKey { reason: CaRenewalReason },
    /// Earlier certificates leave the trust bundle: the roll after a key replacement is done,
    /// or they expired. Listed by generation, ascending.
    DropPreviousCertificates { generations: Vec<u32> },
}

impl CaPlan {
    /// True when the Secrets change.
    pub fn changes_secrets(&self) -> bool {
        !matches!(self, Self::Keep)
    }
}

/// Decides what to do with the CA `observed`.
///
/// `force_renew` is the `oxbow.rs/force-renew` annotation of the certificate Secret; it
/// renews according to the expiration policy. `roll_done` tells that earlier certificates are
/// no longer needed: for the cluster CA, every node and operator runs a certificate signed by
/// the current key and trusts the current certificate; for the clients CA, every broker trusts
/// the current certificate. The controller derives it from the generations it put on the pods. Renewal takes precedence over dropping: earlier certificates are then kept one
/// more round, which is never unsafe.
///
/// For a user-supplied CA the result is `Keep` or an error whose message says what to fix.
pub fn plan_ca(
    observed: &ObservedCa,
    settings: &CaSettings,
    now: OffsetDateTime,
    force_renew: bool,
    roll_done: bool,
) -> Result<CaPlan, CaError> {
    if !settings.generate {
        check_user_supplied(observed, now)?;
        return Ok(CaPlan::Keep);
    }
    let key_usable = observed.key.is_ok();
    let cert_usable = observed.cert.as_ref().is_ok_and(|cert| cert.is_ca);
    let policy_plan = |reason| match settings.expiration_policy {
        CertificateExpirationPolicy::RenewCertificate => CaPlan::RenewCertificate { reason },
        CertificateExpirationPolicy::ReplaceKey => CaPlan::ReplaceKey { reason },
    };
    let plan = match (key_usable, cert_usable) {
        (false, false) => CaPlan::Create,
        (false, true) => CaPlan::ReplaceKey {
            reason: CaRenewalReason::KeyUnusable,
        },
        (true, false) => CaPlan::RenewCertificate {
            reason: CaRenewalReason::CertificateUnusable,
        },
        // A key that is not the certificate's is as useless for signing as no key. The
        // certificate is what nodes and clients trust, so it is kept (as an earlier
        // certificate) and the key is the half replaced: trust carries over as for any key
        // replacement.
        (true, true) if !observed.key_matches_cert() => CaPlan::ReplaceKey {
            reason: CaRenewalReason::KeyUnusable,
        },
        (true, true) => {
            let not_after = observed
                .cert
                .as_ref()
                .map(|cert| cert.not_after)
                .unwrap_or(now);
            if now >= not_after {
                policy_plan(CaRenewalReason::Expired)
            } else if days_after(now, settings.renewal_days) >= not_after {
                policy_plan(CaRenewalReason::Expiring)
            } else if force_renew {
                policy_plan(CaRenewalReason::ForceRenew)
            } else {
                let generations: Vec<u32> = observed
                    .previous
                    .iter()
                    .filter(|(_, cert)| roll_done || now >= cert.not_after)
                    .map(|(generation, _)| *generation)
                    .collect();
                if generations.is_empty() {
                    CaPlan::Keep
                } else {
                    CaPlan::DropPreviousCertificates { generations }
                }
            }
        }
    };
    Ok(plan)
}

fn check_user_supplied(observed: &ObservedCa, now: OffsetDateTime) -> Result<(), CaError> {
    let field = observed.role.spec_field();
    let missing = |secret: String, entry: &'static str| CaError::UserSecretMissing {
        field,
        secret,
        entry,
    };
    let key = match &observed.key {
        Ok(key) => key,
        Err(Defect::SecretMissing | Defect::EntryMissing) => {
            return Err(missing(observed.key_secret(), CA_KEY));
        }
        Err(Defect::Invalid(detail)) => {
            return Err(CaError::UserKeyInvalid {
                secret: observed.key_secret(),
                detail: detail.clone(),
            });
        }
    };
    let cert = match &observed.cert {
        Ok(cert) => cert,
        Err(Defect::SecretMissing | Defect::EntryMissing) => {
            return Err(missing(observed.cert_secret(), CA_CERT));
        }
        Err(Defect::Invalid(detail)) => {
            return Err(CaError::UserCertificateInvalid {
                secret: observed.cert_secret(),
                detail: detail.clone(),
            });
        }
    };
    if !cert.is_ca {
        return Err(CaError::UserCertificateNotCa {
            secret: observed.cert_secret(),
        });
    }
    if key.public_key != cert.public_key {
        return Err(CaError::UserKeyMismatch {
            key_secret: observed.key_secret(),
            cert_secret: observed.cert_secret(),
        });
    }
    if now >= cert.not_after {
        return Err(CaError::UserCertificateExpired {
            secret: observed.cert_secret(),
            not_after: cert.not_after,
        });
    }
    Ok(())
}

/// A CA ready for use: the key and certificate that sign, and the certificates that are trusted.
#[derive(Clone, PartialEq, Eq)]
pub struct CaState {
    role: CaRole,
    user_supplied: bool,
    cert_der: Vec<u8>,
    /// The rest of a user-supplied `ca.crt` (intermediates, root); empty for generated CAs.
    chain_der: Vec<Vec<u8>>,
    key: PrivateKeyPem,
    cert_generation: u32,
    key_generation: u32,
    /// Earlier certificates still trusted, by certificate generation.
    previous: BTreeMap<u32, Vec<u8>>,
    not_after: OffsetDateTime,
}

impl fmt::Debug for CaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaState")
            .field("role", &self.role)
            .field("user_supplied", &self.user_supplied)
            .field("cert_generation", &self.cert_generation)
            .field("key_generation", &self.key_generation)
            .field("previous", &self.previous.keys().collect::<Vec<_>>())
            .field("not_after", &self.not_after)
            .field("key", &self.key)
            .finish()
    }
}

impl CaState {
    pub fn role(&self) -> CaRole {
        self.role
    }

    /// True when the user supplies the CA (Oxbow never writes its Secrets).
    pub fn user_supplied(&self) -> bool {
        self.user_supplied
    }

    pub fn cert_generation(&self) -> u32 {
        self.cert_generation
    }

    pub fn key_generation(&self) -> u32 {
        self.key_generation
    }

    /// Expiry of the current CA certificate.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// True when the current certificate expires within `renewal_days` of `now`: for a
    /// user-supplied CA, which Oxbow does not renew, a reason to warn.
    pub fn renewal_due(&self, renewal_days: u32, now: OffsetDateTime) -> bool {
        days_after(now, renewal_days) >= self.not_after
    }

    /// The current CA certificate (PEM), the issuer of everything signed now.
    pub fn cert_pem(&self) -> String {
        pem::encode(CERTIFICATE_LABEL, &self.cert_der)
    }

    /// The CA's private key.
    pub fn key_pem(&self) -> &PrivateKeyPem {
        &self.key
    }

    /// The generations of the earlier certificates still trusted, ascending.
    pub fn previous_generations(&self) -> Vec<u32> {
        self.previous.keys().copied().collect()
    }

    /// Every trusted certificate as DER, in a fixed order: the current certificate, its chain,
    /// then earlier certificates newest first (so a verifier trying them in order finds the
    /// likeliest issuer first). Duplicates appear once.
    pub fn trusted_der(&self) -> Vec<&[u8]> {
        let mut trusted: Vec<&[u8]> = Vec::new();
        let candidates = std::iter::once(self.cert_der.as_slice())
            .chain(self.chain_der.iter().map(Vec::as_slice))
            .chain(self.previous.values().rev().map(Vec::as_slice));
        for der in candidates {
            if !trusted.contains(&der) {
                trusted.push(der);
            }
        }
        trusted
    }

    /// [`Self::trusted_der`] as one PEM file: Kafka's PEM truststore and `ca-bundle.crt`.
    pub fn trust_bundle_pem(&self) -> String {
        self.trusted_der()
            .into_iter()
            .map(|der| pem::encode(CERTIFICATE_LABEL, der))
            .collect()
    }

    /// The current certificate followed by its chain (DER), what a certificate this CA signs
    /// presents above itself.
    pub(crate) fn issuing_chain_der(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.cert_der.as_slice()).chain(self.chain_der.iter().map(Vec::as_slice))
    }

    /// The earlier certificates still trusted (DER), newest first.
    pub(crate) fn previous_der(&self) -> impl Iterator<Item = &[u8]> {
        self.previous.values().rev().map(Vec::as_slice)
    }

    pub(crate) fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    fn secrets(&self, cluster: &str) -> CaSecrets {
        let annotations: BTreeMap<String, String> = [
            (CERT_GENERATION_ANNOTATION, self.cert_generation),
            (KEY_GENERATION_ANNOTATION, self.key_generation),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_string()))
        .collect();
        let mut cert_data = BTreeMap::from([
            (CA_CERT.to_owned(), self.cert_pem().into_bytes()),
            (CA_BUNDLE.to_owned(), self.trust_bundle_pem().into_bytes()),
        ]);
        for (generation, der) in &self.previous {
            cert_data.insert(
                previous_cert_entry(*generation),
                pem::encode(CERTIFICATE_LABEL, der).into_bytes(),
            );
        }
        CaSecrets {
            key_secret: SecretContent {
                name: self.role.key_secret(cluster),
                annotations: annotations.clone(),
                data: BTreeMap::from([(CA_KEY.to_owned(), self.key.expose().as_bytes().to_vec())]),
            },
            cert_secret: SecretContent {
                name: self.role.cert_secret(cluster),
                annotations,
                data: cert_data,
            },
        }
    }
}

/// The name, annotations and data of a Secret to write; the controller adds labels and owner
/// references. `Debug` shows the data's entry names only.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretContent {
    pub name: String,
    pub annotations: BTreeMap<String, String>,
    pub data: BTreeMap<String, Vec<u8>>,
}

impl fmt::Debug for SecretContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretContent")
            .field("name", &self.name)
            .field("annotations", &self.annotations)
            .field("data", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The two Secrets of a generated CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaSecrets {
    pub key_secret: SecretContent,
    pub cert_secret: SecretContent,
}

/// The result of carrying out a [`CaPlan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaOutcome {
    /// The CA to sign and trust with from now on.
    pub state: CaState,
    /// The Secrets to apply; `None` for a user-supplied CA, whose Secrets are the user's. For a
    /// kept generated CA they reproduce the observed data byte for byte.
    pub secrets: Option<CaSecrets>,
}

/// Carries out `plan` (from [`plan_ca`] over the same `observed`): the CA from now on and the
/// Secrets that hold it.
pub fn build_ca(
    plan: &CaPlan,
    observed: &ObservedCa,
    settings: &CaSettings,
    now: OffsetDateTime,
    rng: &dyn SecureRandom,
) -> Result<CaOutcome, CaError> {
    let mismatch = || CaError::PlanDoesNotMatchObserved {
        plan: format!("{plan:?}"),
    };
    if !settings.generate {
        if *plan != CaPlan::Keep {
            return Err(mismatch());
        }
        check_user_supplied(observed, now)?;
        let (Ok(key), Ok(cert)) = (&observed.key, &observed.cert) else {
            return Err(mismatch());
        };
        let state = CaState {
            role: observed.role,
            user_supplied: true,
            cert_der: cert.der.clone(),
            chain_der: cert.chain.clone(),
            key: key.pem.clone(),
            cert_generation: observed.cert_generation.unwrap_or(0),
            key_generation: observed.key_generation.unwrap_or(0),
            previous: unexpired_previous(observed, now),
            not_after: cert.not_after,
        };
        return Ok(CaOutcome {
            state,
            secrets: None,
        });
    }

    let next = |generation: Option<u32>| generation.map_or(0, |g| g.saturating_add(1));
    let state = match plan {
        CaPlan::Create => {
            let key_generation = next(observed.key_generation);
            let (key, cert_der, not_after) =
                new_ca(observed.role, key_generation, None, settings, now, rng)?;
            CaState {
                role: observed.role,
                user_supplied: false,
                cert_der,
                chain_der: Vec::new(),
                key,
                cert_generation: next(observed.cert_generation),
                key_generation,
                previous: BTreeMap::new(),
                not_after,
            }
        }
        CaPlan::Keep | CaPlan::DropPreviousCertificates { .. } => {
            let (Ok(key), Ok(cert)) = (&observed.key, &observed.cert) else {
                return Err(mismatch());
            };
            let mut previous = unexpired_previous(observed, now);
            if let CaPlan::DropPreviousCertificates { generations } = plan {
                previous.retain(|generation, _| !generations.contains(generation));
            }
            CaState {
                role: observed.role,
                user_supplied: false,
                cert_der: cert.der.clone(),
                chain_der: Vec::new(),
                key: key.pem.clone(),
                cert_generation: observed.cert_generation.unwrap_or(0),
                key_generation: observed.key_generation.unwrap_or(0),
                previous,
                not_after: cert.not_after,
            }
        }
        CaPlan::RenewCertificate { .. } => {
            let Ok(key) = &observed.key else {
                return Err(mismatch());
            };
            let key_generation = observed.key_generation.unwrap_or(0);
            let (key, cert_der, not_after) = new_ca(
                observed.role,
                key_generation,
                Some(&key.pem),
                settings,
                now,
                rng,
            )?;
            CaState {
                role: observed.role,
                user_supplied: false,
                cert_der,
                chain_der: Vec::new(),
                key,
                cert_generation: next(observed.cert_generation),
                key_generation,
                previous: unexpired_previous(observed, now),
                not_after,
            }
        }
        CaPlan::ReplaceKey { .. } => {
            let key_generation = next(observed.key_generation);
            let (key, cert_der, not_after) =
                new_ca(observed.role, key_generation, None, settings, now, rng)?;
            let mut previous = unexpired_previous(observed, now);
            // The retiring certificate keeps vouching for what its key signed until the roll is
            // done; an expired one vouches for nothing and is not kept.
            if let Ok(old) = &observed.cert
                && now < old.not_after
            {
                previous.insert(observed.cert_generation.unwrap_or(0), old.der.clone());
            }
            CaState {
                role: observed.role,
                user_supplied: false,
                cert_der,
                chain_der: Vec::new(),
                key,
                cert_generation: next(observed.cert_generation),
                key_generation,
                previous,
                not_after,
            }
        }
    };
    let secrets = state.secrets(&observed.cluster);
    Ok(CaOutcome {
        state,
        secrets: Some(secrets),
    })
}

fn unexpired_previous(observed: &ObservedCa, now: OffsetDateTime) -> BTreeMap<u32, Vec<u8>> {
    observed
        .previous
        .iter()
        .filter(|(_, cert)| now < cert.not_after)
        .map(|(generation, cert)| (*generation, cert.der.clone()))
        .collect()
}

/// A self-signed CA certificate named for `key_generation`, for `existing_key` or a new key.
fn new_ca(
    role: CaRole,
    key_generation: u32,
    existing_key: Option<&PrivateKeyPem>,
    settings: &CaSettings,
    now: OffsetDateTime,
    rng: &dyn SecureRandom,
) -> Result<(PrivateKeyPem, Vec<u8>, OffsetDateTime), CaError> {
    let (key_pem, key): (PrivateKeyPem, KeyPair) = match existing_key {
        Some(pem) => (
            pem.clone(),
            pem.key_pair()
                .map_err(|source| CaError::SignCertificate { source })?,
        ),
        None => generate_key(rng).ok_or(CaError::RandomSourceFailed)?,
    };
    let mut params = CertificateParams::default();
    params.distinguished_name = subject(&role.common_name(key_generation));
    params.serial_number = Some(random_serial(rng).ok_or(CaError::RandomSourceFailed)?);
    params.not_before = now - CLOCK_SKEW_ALLOWANCE;
    params.not_after = days_after(now, settings.validity_days.min(MAX_VALIDITY_DAYS));
    // Path length 0: this CA signs only end-entity certificates, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params
        .self_signed(&key)
        .map_err(|source| CaError::SignCertificate { source })?;
    let not_after = not_after(cert.der()).unwrap_or(params.not_after);
    Ok((key_pem, cert.der().to_vec(), not_after))
}

/// Why a CA could not be planned or built.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error(
        "{field}.renewalDays ({renewal_days}) must be shorter than {field}.validityDays ({validity_days}), or every certificate would be renewed as soon as it is issued"
    )]
    RenewalWindowTooLong {
        field: &'static str,
        validity_days: u32,
        renewal_days: u32,
    },
    #[error(
        "{field}.validityDays ({validity_days}) may be at most {MAX_VALIDITY_DAYS} (100 years)"
    )]
    ValidityTooLong {
        field: &'static str,
        validity_days: u32,
    },
    #[error(
        "{field}.generateCertificateAuthority is false, so Oxbow expects Secret {secret} with entry `{entry}` (PEM); create it, or set generateCertificateAuthority to true to let Oxbow generate the CA"
    )]
    UserSecretMissing {
        field: &'static str,
        secret: String,
        entry: &'static str,
    },
    #[error(
        "`{CA_KEY}` in Secret {secret} cannot be used: {detail}; it must be the CA's unencrypted PKCS#8 private key (`BEGIN PRIVATE KEY`)"
    )]
    UserKeyInvalid { secret: String, detail: String },
    #[error(
        "`{CA_CERT}` in Secret {secret} cannot be used: {detail}; it must hold the CA certificate in PEM, first, followed by any chain above it"
    )]
    UserCertificateInvalid { secret: String, detail: String },
    #[error(
        "the first certificate of `{CA_CERT}` in Secret {secret} is not a CA certificate (basicConstraints CA:TRUE); put the CA certificate first"
    )]
    UserCertificateNotCa { secret: String },
    #[error(
        "`{CA_KEY}` in Secret {key_secret} is not the key of the first certificate of `{CA_CERT}` in Secret {cert_secret}; put the matching key and certificate in place"
    )]
    UserKeyMismatch {
        key_secret: String,
        cert_secret: String,
    },
    #[error(
        "the CA certificate in Secret {secret} expired at {not_after}; renew it (and bump the {CERT_GENERATION_ANNOTATION} annotation) or set generateCertificateAuthority to true"
    )]
    UserCertificateExpired {
        secret: String,
        not_after: OffsetDateTime,
    },
    #[error("the random number source failed while generating CA key material")]
    RandomSourceFailed,
    #[error("signing the CA certificate failed: {source}")]
    SignCertificate { source: rcgen::Error },
    #[error(
        "CA plan {plan} does not fit the observed CA Secrets (a bug: plan and build must see the same Secrets)"
    )]
    PlanDoesNotMatchObserved { plan: String },
}

impl CaError {
    /// Stable CamelCase word for condition reasons, Event reasons and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::RenewalWindowTooLong { .. } => "CaRenewalWindowTooLong",
            Self::ValidityTooLong { .. } => "CaValidityTooLong",
            Self::UserSecretMissing { .. } => "CaSecretMissing",
            Self::UserKeyInvalid { .. } => "CaKeyInvalid",
            Self::UserCertificateInvalid { .. } => "CaCertificateInvalid",
            Self::UserCertificateNotCa { .. } => "CaCertificateNotCa",
            Self::UserKeyMismatch { .. } => "CaKeyMismatch",
            Self::UserCertificateExpired { .. } => "CaCertificateExpired",
            Self::RandomSourceFailed => "RandomSourceFailed",
            Self::SignCertificate { .. } => "SignCaCertificateFailed",
            Self::PlanDoesNotMatchObserved { .. } => "CaPlanMismatch",
        }
    }

    /// True when only a change by the user (spec or Secrets) can fix it: `Ready=False` and wait
    /// rather than retry.
    pub fn is_invalid_user_input(&self) -> bool {
        matches!(
            self,
            Self::RenewalWindowTooLong { .. }
                | Self::ValidityTooLong { .. }
                | Self::UserSecretMissing { .. }
                | Self::UserKeyInvalid { .. }
                | Self::UserCertificateInvalid { .. }
                | Self::UserCertificateNotCa { .. }
                | Self::UserKeyMismatch { .. }
                | Self::UserCertificateExpired { .. }
        )
    }
}

/// Helpers shared by the tests of the certificate modules.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use ring::rand::SystemRandom;
    use time::Duration;

    /// A fixed instant, so tests can count days from it.
    pub(crate) fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_750_000_000).expect("valid timestamp")
    }

    pub(crate) fn settings(policy: CertificateExpirationPolicy) -> CaSettings {
        CaSettings::from_spec(
            CaRole::Cluster,
            Some(&CertificateAuthority {
                certificate_expiration_policy: Some(policy),
                ..CertificateAuthority::default()
            }),
        )
        .expect("valid settings")
    }

    /// What the controller would observe after applying `content`.
    pub(crate) fn observed(content: &SecretContent) -> ObservedSecret {
        ObservedSecret {
            annotations: content.annotations.clone(),
            data: content.data.clone(),
        }
    }

    /// Plans and builds the cluster CA of cluster `c` over the Secrets of `previous` (none:
    /// no Secrets yet).
    pub(crate) fn reconcile(
        previous: Option<&CaOutcome>,
        settings: &CaSettings,
        now: OffsetDateTime,
        force_renew: bool,
        roll_done: bool,
    ) -> (CaPlan, CaOutcome) {
        let secrets = previous.and_then(|outcome| outcome.secrets.as_ref());
        let key = secrets.map(|s| observed(&s.key_secret));
        let cert = secrets.map(|s| observed(&s.cert_secret));
        let ca = ObservedCa::read(CaRole::Cluster, "c", key.as_ref(), cert.as_ref());
        let plan = plan_ca(&ca, settings, now, force_renew, roll_done).expect("planned");
        let outcome = build_ca(&plan, &ca, settings, now, &SystemRandom::new()).expect("built");
        (plan, outcome)
    }

    /// A freshly generated cluster CA, created at [`t0`] with the default settings.
    pub(crate) fn generated_ca() -> CaOutcome {
        reconcile(
            None,
            &settings(CertificateExpirationPolicy::RenewCertificate),
            t0(),
            false,
            false,
        )
        .1
    }

    /// The generated CA of [`generated_ca`] after a forced key replacement at [`t0`] + 10 days.
    pub(crate) fn replaced_key_ca(original: &CaOutcome) -> CaOutcome {
        let (plan, outcome) = reconcile(
            Some(original),
            &settings(CertificateExpirationPolicy::ReplaceKey),
            t0() + Duration::days(10),
            true,
            false,
        );
        assert_eq!(
            plan,
            CaPlan::ReplaceKey {
                reason: CaRenewalReason::ForceRenew
            }
        );
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{generated_ca, observed, reconcile, settings, t0};
    use super::*;
    use rcgen::{DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer};
    use ring::rand::SystemRandom;
    use time::Duration;
    use x509_parser::certificate::X509Certificate;

    const RENEW: CertificateExpirationPolicy = CertificateExpirationPolicy::RenewCertificate;
    const REPLACE: CertificateExpirationPolicy = CertificateExpirationPolicy::ReplaceKey;

    fn parse(der: &[u8]) -> X509Certificate<'_> {
        x509_parser::parse_x509_certificate(der)
            .expect("certificate")
            .1
    }

    fn cert_entry<'a>(outcome: &'a CaOutcome, entry: &str) -> &'a [u8] {
        &outcome.secrets.as_ref().expect("secrets").cert_secret.data[entry]
    }

    fn key_entry(outcome: &CaOutcome) -> &[u8] {
        &outcome.secrets.as_ref().expect("secrets").key_secret.data[CA_KEY]
    }

    fn single_der(pem_bytes: &[u8]) -> Vec<u8> {
        let mut certs = pem::decode_certificates(pem_bytes).expect("PEM");
        assert_eq!(certs.len(), 1);
        certs.remove(0)
    }

    fn annotation(content: &SecretContent, key: &str) -> String {
        content.annotations[key].clone()
    }

    /// A leaf certificate signed by `ca`, as the node certificates will be.
    fn leaf_signed_by(ca: &CaState) -> Vec<u8> {
        let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem(), ca.key_pem().key_pair().unwrap())
            .expect("issuer");
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, "leaf");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params
            .signed_by(&key, &issuer)
            .expect("signed")
            .der()
            .to_vec()
    }

    fn verifies_under(leaf_der: &[u8], ca_der: &[u8]) -> bool {
        let leaf = parse(leaf_der);
        let ca = parse(ca_der);
        leaf.issuer().as_raw() == ca.subject().as_raw()
            && leaf.verify_signature(Some(ca.public_key())).is_ok()
    }

    #[test]
    fn no_secrets_create_a_ca() {
        let (plan, outcome) = reconcile(None, &settings(RENEW), t0(), false, false);

        assert_eq!(plan, CaPlan::Create);
        let secrets = outcome.secrets.as_ref().expect("generated CAs are written");
        assert_eq!(secrets.key_secret.name, "c-cluster-ca");
        assert_eq!(secrets.cert_secret.name, "c-cluster-ca-cert");
        for content in [&secrets.key_secret, &secrets.cert_secret] {
            assert_eq!(annotation(content, CERT_GENERATION_ANNOTATION), "0");
            assert_eq!(annotation(content, KEY_GENERATION_ANNOTATION), "0");
        }
        assert!(key_entry(&outcome).starts_with(b"-----BEGIN PRIVATE KEY-----\n"));
        let der = single_der(cert_entry(&outcome, CA_CERT));
        let cert = parse(&der);
        assert!(cert.is_ca());
        assert_eq!(
            super::super::rfc2253(cert.subject()).as_deref(),
            Some("CN=cluster-ca v0,O=io.oxbow")
        );
        assert!(verifies_under(&der, &der), "self-signed");
        assert_eq!(
            cert.validity().not_after.to_datetime(),
            t0() + Duration::days(365)
        );
        assert!(cert.validity().not_before.to_datetime() < t0());
        assert_eq!(
            cert_entry(&outcome, CA_BUNDLE),
            cert_entry(&outcome, CA_CERT)
        );
        let (_, key) = pem::decode_private_key(key_entry(&outcome)).expect("key");
        assert_eq!(
            key.der_bytes(),
            cert.public_key().subject_public_key.data.as_ref()
        );
        assert!(!outcome.state.user_supplied());
    }

    #[test]
    fn the_clients_ca_has_its_own_names() {
        let ca = ObservedCa::read(CaRole::Clients, "c", None, None);
        let settings = CaSettings::from_spec(CaRole::Clients, None).expect("defaults");

        let plan = plan_ca(&ca, &settings, t0(), false, false).expect("planned");
        let outcome = build_ca(&plan, &ca, &settings, t0(), &SystemRandom::new()).expect("built");

        let secrets = outcome.secrets.expect("written");
        assert_eq!(secrets.key_secret.name, "c-clients-ca");
        assert_eq!(secrets.cert_secret.name, "c-clients-ca-cert");
        let der = single_der(&secrets.cert_secret.data[CA_CERT]);
        assert_eq!(
            super::super::rfc2253(parse(&der).subject()).as_deref(),
            Some("CN=clients-ca v0,O=io.oxbow")
        );
    }

    #[test]
    fn a_ca_within_its_validity_is_kept_byte_for_byte() {
        let created = generated_ca();

        let (plan, kept) = reconcile(
            Some(&created),
            &settings(RENEW),
            t0() + Duration::days(334),
            false,
            false,
        );

        assert_eq!(plan, CaPlan::Keep);
        assert!(!plan.changes_secrets());
        assert_eq!(kept, created);
    }

    #[test]
    fn renewal_inside_the_window_keeps_the_key_and_bumps_the_certificate_generation() {
        let created = generated_ca();
        let now = t0() + Duration::days(336);

        let (plan, renewed) = reconcile(Some(&created), &settings(RENEW), now, false, false);

        assert_eq!(
            plan,
            CaPlan::RenewCertificate {
                reason: CaRenewalReason::Expiring
            }
        );
        assert_eq!(key_entry(&renewed), key_entry(&created));
        assert_ne!(cert_entry(&renewed, CA_CERT), cert_entry(&created, CA_CERT));
        assert_eq!(renewed.state.cert_generation(), 1);
        assert_eq!(renewed.state.key_generation(), 0);
        let secrets = renewed.secrets.as_ref().expect("written");
        assert_eq!(
            annotation(&secrets.cert_secret, CERT_GENERATION_ANNOTATION),
            "1"
        );
        assert_eq!(
            annotation(&secrets.key_secret, KEY_GENERATION_ANNOTATION),
            "0"
        );
        let old = single_der(cert_entry(&created, CA_CERT));
        let new = single_der(cert_entry(&renewed, CA_CERT));
        assert_eq!(
            parse(&new).subject().as_raw(),
            parse(&old).subject().as_raw()
        );
        assert_eq!(
            parse(&new).validity().not_after.to_datetime(),
            now + Duration::days(365)
        );
        assert_ne!(parse(&new).raw_serial(), parse(&old).raw_serial());
        // Same key and name: what the old certificate signed verifies under the new one, so
        // nothing needs to stay in the bundle.
        let leaf = leaf_signed_by(&created.state);
        assert!(verifies_under(&leaf, &new));
        assert_eq!(renewed.state.previous_generations(), Vec::<u32>::new());
        assert_eq!(
            cert_entry(&renewed, CA_BUNDLE),
            cert_entry(&renewed, CA_CERT)
        );
    }

    #[test]
    fn replace_key_policy_makes_a_new_key_and_trusts_both_certificates() {
        let created = generated_ca();

        let (plan, replaced) = reconcile(
            Some(&created),
            &settings(REPLACE),
            t0() + Duration::days(336),
            false,
            false,
        );

        assert_eq!(
            plan,
            CaPlan::ReplaceKey {
                reason: CaRenewalReason::Expiring
            }
        );
        assert_ne!(key_entry(&replaced), key_entry(&created));
        assert_eq!(replaced.state.cert_generation(), 1);
        assert_eq!(replaced.state.key_generation(), 1);
        let new = single_der(cert_entry(&replaced, CA_CERT));
        assert_eq!(
            super::super::rfc2253(parse(&new).subject()).as_deref(),
            Some("CN=cluster-ca v1,O=io.oxbow")
        );
        assert_eq!(
            cert_entry(&replaced, &previous_cert_entry(0)),
            cert_entry(&created, CA_CERT)
        );
        let old = single_der(cert_entry(&created, CA_CERT));
        assert_eq!(
            replaced.state.trusted_der(),
            vec![new.as_slice(), old.as_slice()]
        );
        let bundle = pem::decode_certificates(cert_entry(&replaced, CA_BUNDLE)).expect("PEM");
        assert_eq!(bundle, vec![new.clone(), old.clone()]);
        // Certificates the old key signed still verify under a trusted certificate.
        let leaf = leaf_signed_by(&created.state);
        assert!(!verifies_under(&leaf, &new));
        assert!(bundle.iter().any(|ca| verifies_under(&leaf, ca)));
    }

    #[test]
    fn the_old_certificate_stays_until_the_roll_is_done() {
        let created = generated_ca();
        let replaced = testing::replaced_key_ca(&created);
        let later = t0() + Duration::days(20);

        let (waiting, kept) = reconcile(Some(&replaced), &settings(REPLACE), later, false, false);
        let (done, dropped) = reconcile(Some(&replaced), &settings(REPLACE), later, false, true);

        assert_eq!(waiting, CaPlan::Keep);
        assert_eq!(kept, replaced);
        assert_eq!(
            done,
            CaPlan::DropPreviousCertificates {
                generations: vec![0]
            }
        );
        let secrets = dropped.secrets.as_ref().expect("written");
        assert!(
            !secrets
                .cert_secret
                .data
                .contains_key(&previous_cert_entry(0))
        );
        assert_eq!(
            cert_entry(&dropped, CA_BUNDLE),
            cert_entry(&dropped, CA_CERT)
        );
        assert_eq!(key_entry(&dropped), key_entry(&replaced));
        assert_eq!(dropped.state.cert_generation(), 1);
        assert_eq!(dropped.state.key_generation(), 1);
    }

    #[test]
    fn an_expired_previous_certificate_is_dropped_without_waiting_for_the_roll() {
        let created = generated_ca();
        let replaced = testing::replaced_key_ca(&created);
        // A one-day window, so the new certificate (expiring 10 days after the old one) is not
        // being renewed when the old one expires.
        let short_window = CaSettings {
            renewal_days: 1,
            ..settings(RENEW)
        };

        let (plan, _) = reconcile(
            Some(&replaced),
            &short_window,
            t0() + Duration::days(365),
            false,
            false,
        );

        assert_eq!(
            plan,
            CaPlan::DropPreviousCertificates {
                generations: vec![0]
            }
        );
    }

    #[test]
    fn an_expired_ca_is_renewed_or_replaced_by_policy() {
        let created = generated_ca();
        let now = t0() + Duration::days(400);

        let (renew_plan, renewed) = reconcile(Some(&created), &settings(RENEW), now, false, false);
        let (replace_plan, replaced) =
            reconcile(Some(&created), &settings(REPLACE), now, false, false);

        assert_eq!(
            renew_plan,
            CaPlan::RenewCertificate {
                reason: CaRenewalReason::Expired
            }
        );
        assert_eq!(key_entry(&renewed), key_entry(&created));
        assert_eq!(
            replace_plan,
            CaPlan::ReplaceKey {
                reason: CaRenewalReason::Expired
            }
        );
        assert_ne!(key_entry(&replaced), key_entry(&created));
        // An expired certificate vouches for nothing, so it does not stay in the bundle.
        assert_eq!(replaced.state.previous_generations(), Vec::<u32>::new());
        assert_eq!(replaced.state.key_generation(), 1);
    }

    #[test]
    fn force_renew_follows_the_policy() {
        let created = generated_ca();

        let (renew, _) = reconcile(Some(&created), &settings(RENEW), t0(), true, false);
        let (replace, _) = reconcile(Some(&created), &settings(REPLACE), t0(), true, false);

        assert_eq!(
            renew,
            CaPlan::RenewCertificate {
                reason: CaRenewalReason::ForceRenew
            }
        );
        assert_eq!(
            replace,
            CaPlan::ReplaceKey {
                reason: CaRenewalReason::ForceRenew
            }
        );
    }

    #[test]
    fn a_lost_key_is_replaced_and_the_certificate_kept_trusted() {
        let created = generated_ca();
        let secrets = created.secrets.as_ref().expect("written");
        let cert = observed(&secrets.cert_secret);
        let ca = ObservedCa::read(CaRole::Cluster, "c", None, Some(&cert));

        let plan = plan_ca(&ca, &settings(RENEW), t0(), false, false).expect("planned");
        let outcome =
            build_ca(&plan, &ca, &settings(RENEW), t0(), &SystemRandom::new()).expect("built");

        assert_eq!(
            plan,
            CaPlan::ReplaceKey {
                reason: CaRenewalReason::KeyUnusable
            }
        );
        assert_eq!(outcome.state.key_generation(), 1);
        assert_eq!(outcome.state.cert_generation(), 1);
        assert_eq!(outcome.state.previous_generations(), vec![0]);
        assert_eq!(
            cert_entry(&outcome, &previous_cert_entry(0)),
            cert_entry(&created, CA_CERT)
        );
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_replaced() {
        let created = generated_ca();
        let other = generated_ca();
        let secrets = created.secrets.as_ref().expect("written");
        let foreign_key = observed(&other.secrets.as_ref().expect("written").key_secret);
        let cert = observed(&secrets.cert_secret);
        let ca = ObservedCa::read(CaRole::Cluster, "c", Some(&foreign_key), Some(&cert));

        let plan = plan_ca(&ca, &settings(RENEW), t0(), false, false).expect("planned");

        assert_eq!(
            plan,
            CaPlan::ReplaceKey {
                reason: CaRenewalReason::KeyUnusable
            }
        );
    }

    #[test]
    fn a_lost_certificate_is_renewed_for_the_same_key_with_a_new_generation() {
        let created = generated_ca();
        let (_, renewed) = reconcile(Some(&created), &settings(RENEW), t0(), true, false);
        let key = observed(&renewed.secrets.as_ref().expect("written").key_secret);
        let ca = ObservedCa::read(CaRole::Cluster, "c", Some(&key), None);

        let plan = plan_ca(&ca, &settings(RENEW), t0(), false, false).expect("planned");
        let outcome =
            build_ca(&plan, &ca, &settings(RENEW), t0(), &SystemRandom::new()).expect("built");

        assert_eq!(
            plan,
            CaPlan::RenewCertificate {
                reason: CaRenewalReason::CertificateUnusable
            }
        );
        assert_eq!(key_entry(&outcome), key_entry(&created));
        // The key Secret remembered generation 1, so the new certificate is generation 2 and
        // differs from what every pod was started with.
        assert_eq!(outcome.state.cert_generation(), 2);
        assert_eq!(outcome.state.key_generation(), 0);
    }

    #[test]
    fn unusable_secrets_are_recreated_with_later_generations() {
        let garbage = ObservedSecret {
            annotations: BTreeMap::from([
                (CERT_GENERATION_ANNOTATION.to_owned(), "4".to_owned()),
                (KEY_GENERATION_ANNOTATION.to_owned(), "2".to_owned()),
            ]),
            data: BTreeMap::from([
                (CA_KEY.to_owned(), b"garbage".to_vec()),
                (CA_CERT.to_owned(), b"garbage".to_vec()),
            ]),
        };
        let ca = ObservedCa::read(CaRole::Cluster, "c", Some(&garbage), Some(&garbage));

        let plan = plan_ca(&ca, &settings(RENEW), t0(), false, false).expect("planned");
        let outcome =
            build_ca(&plan, &ca, &settings(RENEW), t0(), &SystemRandom::new()).expect("built");

        assert_eq!(plan, CaPlan::Create);
        assert_eq!(outcome.state.cert_generation(), 5);
        assert_eq!(outcome.state.key_generation(), 3);
    }

    /// A user's CA: key and self-signed CA certificate, or a leaf when `is_ca` is false.
    fn user_ca(is_ca: bool, not_after: OffsetDateTime) -> (String, String) {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("key");
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "Acme Kafka CA");
        params.not_before = t0() - Duration::days(1);
        params.not_after = not_after;
        if is_ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        let cert = params.self_signed(&key).expect("signed");
        (cert.pem(), key.serialize_pem())
    }

    fn user_secrets(cert_pem: &str, key_pem: &str) -> (ObservedSecret, ObservedSecret) {
        let annotations = BTreeMap::from([
            (CERT_GENERATION_ANNOTATION.to_owned(), "3".to_owned()),
            (KEY_GENERATION_ANNOTATION.to_owned(), "2".to_owned()),
        ]);
        (
            ObservedSecret {
                annotations: annotations.clone(),
                data: BTreeMap::from([(CA_KEY.to_owned(), key_pem.as_bytes().to_vec())]),
            },
            ObservedSecret {
                annotations,
                data: BTreeMap::from([(CA_CERT.to_owned(), cert_pem.as_bytes().to_vec())]),
            },
        )
    }

    fn user_settings() -> CaSettings {
        CaSettings::from_spec(
            CaRole::Cluster,
            Some(&CertificateAuthority {
                generate_certificate_authority: Some(false),
                ..CertificateAuthority::default()
            }),
        )
        .expect("valid")
    }

    fn plan_user(
        key: Option<&ObservedSecret>,
        cert: Option<&ObservedSecret>,
    ) -> Result<CaPlan, CaError> {
        let ca = ObservedCa::read(CaRole::Cluster, "c", key, cert);
        plan_ca(&ca, &user_settings(), t0(), false, false)
    }

    #[test]
    fn a_valid_user_supplied_ca_is_used_and_never_written() {
        let (cert_pem, key_pem) = user_ca(true, t0() + Duration::days(1000));
        let (key, cert) = user_secrets(&cert_pem, &key_pem);
        let ca = ObservedCa::read(CaRole::Cluster, "c", Some(&key), Some(&cert));

        let plan = plan_ca(&ca, &user_settings(), t0(), true, true).expect("planned");
        let outcome =
            build_ca(&plan, &ca, &user_settings(), t0(), &SystemRandom::new()).expect("built");

        assert_eq!(plan, CaPlan::Keep);
        assert_eq!(outcome.secrets, None);
        assert!(outcome.state.user_supplied());
        assert_eq!(outcome.state.cert_pem(), cert_pem);
        assert_eq!(outcome.state.key_pem().expose(), key_pem);
        assert_eq!(outcome.state.cert_generation(), 3);
        assert_eq!(outcome.state.key_generation(), 2);
        assert!(!outcome.state.renewal_due(30, t0()));
        assert!(outcome.state.renewal_due(30, t0() + Duration::days(980)));
    }

    #[test]
    fn a_user_supplied_chain_is_trusted_in_order() {
        let (root_pem, root_key_pem) = user_ca(true, t0() + Duration::days(3000));
        let root_key = KeyPair::from_pem(&root_key_pem).expect("key");
        let root = Issuer::from_ca_cert_pem(&root_pem, root_key).expect("issuer");
        let intermediate_key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "Acme Kafka intermediate");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.not_after = t0() + Duration::days(1000);
        let intermediate = params.signed_by(&intermediate_key, &root).expect("signed");
        let chain = format!("{}{root_pem}", intermediate.pem());
        let (key, cert) = user_secrets(&chain, &intermediate_key.serialize_pem());
        let ca = ObservedCa::read(CaRole::Cluster, "c", Some(&key), Some(&cert));

        let plan = plan_ca(&ca, &user_settings(), t0(), false, false).expect("planned");
        let outcome =
            build_ca(&plan, &ca, &user_settings(), t0(), &SystemRandom::new()).expect("built");

        let root_der = single_der(root_pem.as_bytes());
        assert_eq!(
            outcome.state.trusted_der(),
            vec![intermediate.der().as_ref(), root_der.as_slice()]
        );
        assert_eq!(outcome.state.cert_pem(), intermediate.pem());
    }

    #[test]
    fn missing_user_supplied_secrets_say_what_to_create() {
        let (cert_pem, key_pem) = user_ca(true, t0() + Duration::days(1000));
        let (key, cert) = user_secrets(&cert_pem, &key_pem);
        let empty = ObservedSecret::default();

        for (key, cert, secret, entry) in [
            (None, Some(&cert), "c-cluster-ca", "ca.key"),
            (Some(&empty), Some(&cert), "c-cluster-ca", "ca.key"),
            (Some(&key), None, "c-cluster-ca-cert", "ca.crt"),
            (Some(&key), Some(&empty), "c-cluster-ca-cert", "ca.crt"),
        ] {
            let error = plan_user(key, cert).expect_err("missing");

            assert_eq!(error.reason(), "CaSecretMissing");
            assert!(error.is_invalid_user_input());
            let message = error.to_string();
            assert!(message.contains(&format!("Secret {secret} ")), "{message}");
            assert!(message.contains(&format!("`{entry}`")), "{message}");
            assert!(
                message.contains("clusterCa.generateCertificateAuthority"),
                "{message}"
            );
        }
    }

    #[test]
    fn invalid_user_supplied_cas_are_refused_with_the_reason() {
        let (cert_pem, key_pem) = user_ca(true, t0() + Duration::days(1000));
        let (_, other_key_pem) = user_ca(true, t0() + Duration::days(1000));
        let (leaf_pem, leaf_key_pem) = user_ca(false, t0() + Duration::days(1000));
        let (expired_pem, expired_key_pem) = user_ca(true, t0() - Duration::hours(1));
        let sec1_key = pem::encode("EC PRIVATE KEY", b"not really");

        for (cert, key, reason, hint) in [
            (
                cert_pem.as_str(),
                other_key_pem.as_str(),
                "CaKeyMismatch",
                "c-cluster-ca",
            ),
            (
                cert_pem.as_str(),
                sec1_key.as_str(),
                "CaKeyInvalid",
                "openssl pkcs8",
            ),
            (
                "not PEM",
                key_pem.as_str(),
                "CaCertificateInvalid",
                "c-cluster-ca-cert",
            ),
            (
                leaf_pem.as_str(),
                leaf_key_pem.as_str(),
                "CaCertificateNotCa",
                "CA:TRUE",
            ),
            (
                expired_pem.as_str(),
                expired_key_pem.as_str(),
                "CaCertificateExpired",
                "expired",
            ),
        ] {
            let (key_secret, cert_secret) = user_secrets(cert, key);

            let error = plan_user(Some(&key_secret), Some(&cert_secret)).expect_err(reason);

            assert_eq!(error.reason(), reason);
            assert!(error.is_invalid_user_input());
            assert!(error.to_string().contains(hint), "{error}");
        }
    }

    #[test]
    fn trust_bundle_order_is_current_then_newest_previous_and_without_duplicates() {
        let created = generated_ca();
        let mut certs = Vec::new();
        for _ in 0..3 {
            certs.push(single_der(cert_entry(&generated_ca(), CA_CERT)));
        }
        let secrets = created.secrets.as_ref().expect("written");
        let mut cert = observed(&secrets.cert_secret);
        // As strings "ca-10.crt" < "ca-2.crt" < "ca-9.crt"; as generations 2 < 9 < 10.
        for (generation, der) in [(2, &certs[0]), (10, &certs[1]), (9, &certs[2])] {
            cert.data.insert(
                previous_cert_entry(generation),
                pem::encode(CERTIFICATE_LABEL, der).into_bytes(),
            );
        }
        // A copy of the current certificate among the previous ones is listed once.
        cert.data.insert(
            previous_cert_entry(1),
            cert_entry(&created, CA_CERT).to_vec(),
        );
        let key = observed(&secrets.key_secret);
        let ca = ObservedCa::read(CaRole::Cluster, "c", Some(&key), Some(&cert));

        let outcome = build_ca(
            &CaPlan::Keep,
            &ca,
            &settings(RENEW),
            t0(),
            &SystemRandom::new(),
        )
        .expect("built");

        let current = single_der(cert_entry(&created, CA_CERT));
        assert_eq!(
            outcome.state.trusted_der(),
            vec![
                current.as_slice(),
                certs[1].as_slice(),
                certs[2].as_slice(),
                certs[0].as_slice()
            ]
        );
        assert_eq!(
            pem::decode_certificates(outcome.state.trust_bundle_pem().as_bytes()).expect("PEM"),
            vec![
                current.clone(),
                certs[1].clone(),
                certs[2].clone(),
                certs[0].clone()
            ]
        );
        assert_eq!(outcome.state.previous_generations(), vec![1, 2, 9, 10]);
    }

    #[test]
    fn settings_defaults_and_checks() {
        let defaults = CaSettings::from_spec(CaRole::Cluster, None).expect("defaults");
        assert_eq!(
            defaults,
            CaSettings {
                generate: true,
                validity_days: 365,
                renewal_days: 30,
                expiration_policy: RENEW,
                secret_owner_reference: true,
            }
        );

        let error = CaSettings::from_spec(
            CaRole::Clients,
            Some(&CertificateAuthority {
                validity_days: Some(30),
                ..CertificateAuthority::default()
            }),
        )
        .expect_err("renewal window as long as the validity");

        assert_eq!(error.reason(), "CaRenewalWindowTooLong");
        assert!(error.is_invalid_user_input());
        assert!(
            error.to_string().contains("clientsCa.renewalDays"),
            "{error}"
        );

        let error = CaSettings::from_spec(
            CaRole::Cluster,
            Some(&CertificateAuthority {
                validity_days: Some(100_000),
                ..CertificateAuthority::default()
            }),
        )
        .expect_err("past 100 years");
        assert_eq!(error.reason(), "CaValidityTooLong");
        assert!(error.is_invalid_user_input());
        assert!(
            error.to_string().contains("clusterCa.validityDays"),
            "{error}"
        );
    }

    #[test]
    fn a_plan_for_other_secrets_is_refused() {
        let ca = ObservedCa::read(CaRole::Cluster, "c", None, None);

        let error = build_ca(
            &CaPlan::Keep,
            &ca,
            &settings(RENEW),
            t0(),
            &SystemRandom::new(),
        )
        .expect_err("nothing to keep");

        assert_eq!(error.reason(), "CaPlanMismatch");
        assert!(!error.is_invalid_user_input());
    }

    #[test]
    fn debug_output_never_contains_the_key() {
        let created = generated_ca();
        let key_pem = String::from_utf8(key_entry(&created).to_vec()).expect("text");
        let key_body = key_pem.lines().nth(1).expect("a base64 line").to_owned();
        let secrets = created.secrets.as_ref().expect("written");
        let key_secret = observed(&secrets.key_secret);
        let ca = ObservedCa::read(CaRole::Cluster, "c", Some(&key_secret), None);

        for shown in [
            format!("{created:?}"),
            format!("{key_secret:?}"),
            format!("{ca:?}"),
        ] {
            assert!(!shown.contains(&key_body), "{shown}");
            assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        }
    }
}
