//! The certificates the cluster CA signs: one per Kafka node (the server its clients and peers
//! connect to, and a client of its peers) naming every address clients use, and one per Oxbow
//! operator that talks to Kafka (topic, user and cluster operator); their exact Kafka
//! principals; whether an existing certificate can stay; and the PEM key store and truststore
//! Kafka reads (KIP-651). Pure: no I/O; the clock is `now`, randomness the `rng` argument.
//!
//! Certificates follow the cluster CA's `validityDays` and `renewalDays`, as in Strimzi. Node
//! keys are always ECDSA P-256 generated here, whatever key a user-supplied CA has.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use rcgen::{
    CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose, PublicKeyData,
    SanType,
};
use ring::rand::SecureRandom;
use shared_crds::kafka::KafkaListenerType;
use shared_crds::names;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::ca::{CaSettings, CaState};
use super::pem::{self, CERTIFICATE_LABEL, PrivateKeyPem};
use super::{
    CLOCK_SKEW_ALLOWANCE, MAX_VALIDITY_DAYS, days_after, generate_key, random_serial, rfc2253,
    subject, subject_rfc2253,
};

/// The Kubernetes cluster DNS domain unless configured otherwise.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

/// Secret entry: the certificate followed by the chain of the CA that signed it (PEM).
pub const TLS_CERT: &str = "tls.crt";
/// Secret entry: the private key (unencrypted PKCS#8 PEM).
pub const TLS_KEY: &str = "tls.key";
/// Secret entry: the cluster CA trust bundle (PEM), the truststore.
pub const CA_CERT: &str = "ca.crt";
/// Secret entry: the key followed by the certificate chain in one file, Kafka's PEM key store
/// (`ssl.keystore.type=PEM`, no `ssl.key.password` since the key is not encrypted).
pub const KEYSTORE: &str = "keystore.pem";
/// Node Secret entry: the clients CA trust bundle (PEM), trusted on listeners with `tls`
/// authentication. It travels in the node's Secret rather than being read from
/// `<c>-clients-ca-cert`, because a user-supplied clients CA Secret has no `ca-bundle.crt`
/// (Oxbow never writes a user's Secrets) and may hold earlier certificates only as
/// `ca-<n>.crt` entries, while Kafka needs one file.
pub const CLIENTS_CA_CERT: &str = "clients-ca.crt";

/// One subject alternative name. Ordered DNS names first, then IP addresses, so a sorted list
/// is the same list whatever order the names were found in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SubjectAltName {
    Dns(String),
    Ip(IpAddr),
}

impl SubjectAltName {
    /// An address as a user or a Service status writes it: an IP address, or a DNS name
    /// (lower-cased, a trailing dot dropped, a leading `*.` wildcard allowed). `None` when it
    /// is neither.
    pub fn parse(address: &str) -> Option<Self> {
        let address = address.trim();
        if let Ok(ip) = address.parse::<IpAddr>() {
            return Some(Self::Ip(ip));
        }
        let host = address
            .strip_suffix('.')
            .unwrap_or(address)
            .to_ascii_lowercase();
        valid_dns_name(&host).then_some(Self::Dns(host))
    }
}

impl fmt::Display for SubjectAltName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(name) => write!(f, "DNS:{name}"),
            Self::Ip(ip) => write!(f, "IP:{ip}"),
        }
    }
}

/// RFC 1123 host names, plus a wildcard as the whole first label.
fn valid_dns_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = name.split('.').collect();
    labels.iter().enumerate().all(|(index, label)| {
        if index == 0 && *label == "*" {
            return labels.len() > 1;
        }
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

/// The Kafka node a certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KafkaNode<'a> {
    pub cluster: &'a str,
    pub namespace: &'a str,
    /// The Kubernetes cluster DNS domain, usually [`DEFAULT_CLUSTER_DOMAIN`].
    pub cluster_domain: &'a str,
    pub pool: &'a str,
    pub node_id: i32,
    /// The node has the broker role (controllers serve no client listener).
    pub broker: bool,
}

/// What the controller knows about one listener's addresses, from the spec and from the
/// listener's Services.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerAddresses {
    pub name: String,
    pub type_: KafkaListenerType,
    pub tls: bool,
    /// Addresses of the listener's bootstrap other than Service DNS names: load-balancer host
    /// names or IPs, `configuration.bootstrap.host` and `alternativeNames`. Every broker gets
    /// them, since any broker may answer a bootstrap connection.
    pub bootstrap_addresses: Vec<String>,
    /// This node's own addresses on the listener: its load-balancer address, its
    /// `configuration.brokers[].host` and `advertisedHost`, the node address of a `nodeport`
    /// listener.
    pub node_addresses: Vec<String>,
}

/// The four names a Service answers to inside the cluster.
fn service_names(service: &str, namespace: &str, domain: &str) -> [String; 4] {
    [
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.{domain}"),
    ]
}

/// Every name a client may use to reach `node`, sorted and without duplicates.
///
/// Every node: its pod's names under the headless Service and the headless Service's names
/// (controllers are reached only this way). Brokers also: the bootstrap Service, and for each
/// TLS listener the names of its Services (`cluster-ip`, `nodeport`, `loadbalancer`: the
/// listener's bootstrap Service and the node's own Service, which in-cluster clients may use
/// too) and the addresses the controller found. Listeners without TLS add nothing: their names
/// need no certificate, and leaving them out spares a re-issue and a restart when they change.
pub fn node_sans(
    node: &KafkaNode<'_>,
    listeners: &[ListenerAddresses],
) -> Result<Vec<SubjectAltName>, CertError> {
    let KafkaNode {
        cluster,
        namespace,
        cluster_domain,
        pool,
        node_id,
        broker,
    } = *node;
    let mut dns = BTreeSet::new();
    let headless = names::brokers_service(cluster);
    let pod = names::kafka_node(cluster, pool, node_id);
    dns.insert(format!("{pod}.{headless}.{namespace}.svc"));
    dns.insert(format!("{pod}.{headless}.{namespace}.svc.{cluster_domain}"));
    dns.extend(service_names(&headless, namespace, cluster_domain));
    let mut sans = BTreeSet::new();
    if broker {
        dns.extend(service_names(
            &names::bootstrap_service(cluster),
            namespace,
            cluster_domain,
        ));
        for listener in listeners.iter().filter(|listener| listener.tls) {
            if listener.type_.has_per_broker_services() {
                dns.extend(service_names(
                    &names::external_bootstrap_service(cluster, &listener.name),
                    namespace,
                    cluster_domain,
                ));
                dns.extend(service_names(
                    &names::per_broker_service(cluster, pool, &listener.name, node_id),
                    namespace,
                    cluster_domain,
                ));
            }
            for address in listener
                .bootstrap_addresses
                .iter()
                .chain(&listener.node_addresses)
            {
                let san =
                    SubjectAltName::parse(address).ok_or_else(|| CertError::InvalidAddress {
                        listener: listener.name.clone(),
                        address: address.clone(),
                    })?;
                sans.insert(san);
            }
        }
    }
    sans.extend(dns.into_iter().map(SubjectAltName::Dns));
    Ok(sans.into_iter().collect())
}

/// The common name of every Kafka node's certificate: `<cluster>-kafka`. All nodes share it,
/// so they are one principal, a super user.
pub fn node_common_name(cluster: &str) -> String {
    names::kafka_component(cluster)
}

/// The Kafka principal of the Kafka nodes: `User:CN=<cluster>-kafka,O=io.oxbow`.
pub fn node_principal(cluster: &str) -> String {
    format!("User:{}", subject_rfc2253(&node_common_name(cluster)))
}

/// An Oxbow operator that connects to Kafka with a certificate of the cluster CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OperatorClient {
    TopicOperator,
    UserOperator,
    ClusterOperator,
}

impl OperatorClient {
    pub const ALL: [Self; 3] = [
        Self::TopicOperator,
        Self::UserOperator,
        Self::ClusterOperator,
    ];

    /// `<cluster>-topic-operator`, `<cluster>-user-operator` or `<cluster>-cluster-operator`.
    pub fn common_name(self, cluster: &str) -> String {
        match self {
            Self::TopicOperator => names::topic_operator(cluster),
            Self::UserOperator => names::user_operator(cluster),
            Self::ClusterOperator => format!("{cluster}-cluster-operator"),
        }
    }

    /// The Secret holding the operator's certificate.
    pub fn secret_name(self, cluster: &str) -> String {
        match self {
            Self::TopicOperator => names::topic_operator_certs(cluster),
            Self::UserOperator => names::user_operator_certs(cluster),
            Self::ClusterOperator => names::cluster_operator_certs(cluster),
        }
    }

    /// Its Kafka principal, e.g. `User:CN=my-cluster-topic-operator,O=io.oxbow`.
    pub fn principal(self, cluster: &str) -> String {
        format!("User:{}", subject_rfc2253(&self.common_name(cluster)))
    }
}

/// The principals `super.users` lists: the nodes, then the operators.
pub fn super_user_principals(cluster: &str) -> Vec<String> {
    std::iter::once(node_principal(cluster))
        .chain(OperatorClient::ALL.map(|operator| operator.principal(cluster)))
        .collect()
}

/// What a certificate must say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertRequest {
    common_name: String,
    sans: Vec<SubjectAltName>,
    server: bool,
}

impl CertRequest {
    /// A Kafka node's certificate: server and client (nodes connect to each other), with
    /// `sans` from [`node_sans`].
    pub fn kafka_node(cluster: &str, sans: Vec<SubjectAltName>) -> Self {
        let sans: BTreeSet<_> = sans.into_iter().collect();
        Self {
            common_name: node_common_name(cluster),
            sans: sans.into_iter().collect(),
            server: true,
        }
    }

    /// An operator's client certificate: no names, client use only.
    pub fn operator(operator: OperatorClient, cluster: &str) -> Self {
        Self {
            common_name: operator.common_name(cluster),
            sans: Vec::new(),
            server: false,
        }
    }

    pub fn common_name(&self) -> &str {
        &self.common_name
    }

    /// The subject alternative names, sorted.
    pub fn sans(&self) -> &[SubjectAltName] {
        &self.sans
    }

    /// The Kafka principal a certificate issued for this request authenticates as.
    pub fn principal(&self) -> String {
        format!("User:{}", subject_rfc2253(&self.common_name))
    }
}

/// Whether every node trusts the cluster CA's current certificate yet. After a key
/// replacement nodes restart first with the old and new certificate in their truststore
/// (`Rolling`) and only then (`Established`) get certificates signed by the new key; the
/// controller knows which from the CA key generation each running pod was started with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaTrust {
    Established,
    Rolling,
}

/// A certificate and key found in a Secret (`tls.crt`, `tls.key`).
#[derive(Clone, Copy)]
pub struct ExistingCert<'a> {
    pub cert_pem: &'a [u8],
    pub key_pem: &'a [u8],
}

impl<'a> ExistingCert<'a> {
    /// The certificate and key of a Secret's data, when both entries exist.
    pub fn from_secret_data(data: &'a BTreeMap<String, Vec<u8>>) -> Option<Self> {
        Some(Self {
            cert_pem: data.get(TLS_CERT)?,
            key_pem: data.get(TLS_KEY)?,
        })
    }
}

impl fmt::Debug for ExistingCert<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExistingCert")
            .field("cert_pem", &String::from_utf8_lossy(self.cert_pem))
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// What to do with a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertDecision {
    /// It is signed by the current CA and fine.
    Keep,
    /// It is signed by an earlier CA certificate, after a key replacement, and not every node
    /// trusts the new one yet: it stays until they do, then it is re-issued (`CaChanged`).
    KeepUntilTrusted,
    Issue(IssueReason),
}

/// Why a certificate is issued; [`IssueReason::as_str`] is the word for Events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueReason {
    /// No certificate or no key.
    Missing,
    /// The certificate or key cannot be read, or the key is not the certificate's.
    Unusable,
    /// Not signed by the current CA (or by an earlier one still being rolled out).
    CaChanged,
    /// The subject is not the one asked for.
    SubjectChanged,
    /// The names differ from the ones asked for.
    SansChanged,
    /// The certificate has expired.
    Expired,
    /// The certificate expires within the renewal window.
    Expiring,
}

impl IssueReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "Missing",
            Self::Unusable => "Unusable",
            Self::CaChanged => "CaChanged",
            Self::SubjectChanged => "SubjectChanged",
            Self::SansChanged => "SansChanged",
            Self::Expired => "Expired",
            Self::Expiring => "Expiring",
        }
    }
}

/// A certificate chain (the certificate, then the chain of the CA that signed it) and its
/// key. `Debug` hides the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertAndKey {
    pub chain_pem: String,
    pub key_pem: PrivateKeyPem,
}

impl CertAndKey {
    /// Kafka's PEM key store: the unencrypted PKCS#8 key first, then the chain, in one file.
    pub fn keystore_pem(&self) -> String {
        format!("{}{}", self.key_pem.expose(), self.chain_pem)
    }
}

/// Which trusted CA certificate signed an existing certificate.
enum SignedBy<'a> {
    Current,
    Previous(&'a [u8]),
}

/// Whether the existing certificate can stay, checked from most to least fundamental so that
/// Events name the most basic cause.
pub fn decide_certificate(
    existing: Option<ExistingCert<'_>>,
    request: &CertRequest,
    ca: &CaState,
    now: OffsetDateTime,
    renewal_days: u32,
    trust: CaTrust,
) -> CertDecision {
    assess(existing, request, ca, now, renewal_days, trust).0
}

/// The decision, and for a certificate that stays, the certificate (DER) and key and the CA
/// certificate that signed it.
fn assess<'ca>(
    existing: Option<ExistingCert<'_>>,
    request: &CertRequest,
    ca: &'ca CaState,
    now: OffsetDateTime,
    renewal_days: u32,
    trust: CaTrust,
) -> (
    CertDecision,
    Option<(Vec<u8>, PrivateKeyPem, SignedBy<'ca>)>,
) {
    let issue = |reason| (CertDecision::Issue(reason), None);
    let Some(existing) = existing.filter(|e| !e.cert_pem.is_empty() && !e.key_pem.is_empty())
    else {
        return issue(IssueReason::Missing);
    };
    let Some(leaf_der) = pem::decode_certificates(existing.cert_pem)
        .ok()
        .and_then(|certs| certs.into_iter().next())
    else {
        return issue(IssueReason::Unusable);
    };
    let Ok((_, leaf)) = x509_parser::parse_x509_certificate(&leaf_der) else {
        return issue(IssueReason::Unusable);
    };
    let Ok((key_pem, key)) = pem::decode_private_key(existing.key_pem) else {
        return issue(IssueReason::Unusable);
    };
    if key.der_bytes() != leaf.public_key().subject_public_key.data.as_ref() {
        return issue(IssueReason::Unusable);
    }
    let signed_by = if is_signed_by(&leaf, ca.cert_der()) {
        SignedBy::Current
    } else {
        match ca.previous_der().find(|der| is_signed_by(&leaf, der)) {
            Some(previous) if trust == CaTrust::Rolling => SignedBy::Previous(previous),
            _ => return issue(IssueReason::CaChanged),
        }
    };
    if rfc2253(leaf.subject()) != Some(subject_rfc2253(&request.common_name)) {
        return issue(IssueReason::SubjectChanged);
    }
    match sans_of(&leaf) {
        Some(sans) if sans == request.sans => {}
        _ => return issue(IssueReason::SansChanged),
    }
    let not_after = leaf.validity().not_after.to_datetime();
    if now >= not_after {
        return issue(IssueReason::Expired);
    }
    if days_after(now, renewal_days) >= not_after {
        return issue(IssueReason::Expiring);
    }
    let decision = match signed_by {
        SignedBy::Current => CertDecision::Keep,
        SignedBy::Previous(_) => CertDecision::KeepUntilTrusted,
    };
    (decision, Some((leaf_der.clone(), key_pem, signed_by)))
}

/// True when `ca_der` is the certificate of the key that signed `leaf` under its name. Names
/// compare as encoded bytes: Oxbow's issuers copy the CA's subject verbatim.
fn is_signed_by(leaf: &X509Certificate<'_>, ca_der: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(ca_der).is_ok_and(|(_, ca)| {
        leaf.issuer().as_raw() == ca.subject().as_raw()
            && leaf.verify_signature(Some(ca.public_key())).is_ok()
    })
}

/// The names of a certificate, sorted; `None` if it has names of a kind Oxbow never asks for,
/// which makes it differ from any request.
fn sans_of(cert: &X509Certificate<'_>) -> Option<Vec<SubjectAltName>> {
    let Ok(extension) = cert.subject_alternative_name() else {
        return None;
    };
    let mut sans = BTreeSet::new();
    for name in extension
        .map(|ext| ext.value.general_names.as_slice())
        .unwrap_or_default()
    {
        let san = match name {
            GeneralName::DNSName(dns) => SubjectAltName::Dns(dns.to_ascii_lowercase()),
            GeneralName::IPAddress(octets) => match octets.len() {
                4 => SubjectAltName::Ip(IpAddr::from(<[u8; 4]>::try_from(*octets).ok()?)),
                16 => SubjectAltName::Ip(IpAddr::from(<[u8; 16]>::try_from(*octets).ok()?)),
                _ => return None,
            },
            _ => return None,
        };
        sans.insert(san);
    }
    Some(sans.into_iter().collect())
}

/// Issues a certificate for `request`, signed by the current key of `ca`, valid from `now`
/// (less a little clock skew) for `validity_days`, with a new key from `rng`.
pub fn issue_certificate(
    request: &CertRequest,
    ca: &CaState,
    now: OffsetDateTime,
    validity_days: u32,
    rng: &dyn SecureRandom,
) -> Result<CertAndKey, CertError> {
    let ca_key = ca
        .key_pem()
        .key_pair()
        .map_err(|source| CertError::CaUnusable { source })?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem(), ca_key)
        .map_err(|source| CertError::CaUnusable { source })?;
    let (key_pem, key) = generate_key(rng).ok_or(CertError::RandomSourceFailed)?;

    let mut params = CertificateParams::default();
    params.distinguished_name = subject(&request.common_name);
    params.serial_number = Some(random_serial(rng).ok_or(CertError::RandomSourceFailed)?);
    params.not_before = now - CLOCK_SKEW_ALLOWANCE;
    // Clamped: a caller's absurd validity must not overflow the clock arithmetic.
    params.not_after = days_after(now, validity_days.min(MAX_VALIDITY_DAYS));
    params.is_ca = IsCa::ExplicitNoCa;
    // ECDSA keys only sign; key encipherment would be an RSA-only usage.
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = if request.server {
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ]
    } else {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    };
    params.use_authority_key_identifier_extension = true;
    params.subject_alt_names = request
        .sans
        .iter()
        .map(|san| match san {
            SubjectAltName::Dns(name) => name
                .as_str()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|source| CertError::SignCertificate { source }),
            SubjectAltName::Ip(ip) => Ok(SanType::IpAddress(*ip)),
        })
        .collect::<Result<_, _>>()?;

    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|source| CertError::SignCertificate { source })?;
    let chain_pem = std::iter::once(cert.der().as_ref())
        .chain(ca.issuing_chain_der())
        .map(|der| pem::encode(CERTIFICATE_LABEL, der))
        .collect();
    Ok(CertAndKey { chain_pem, key_pem })
}

/// The data of an operator's certificate Secret: [`TLS_CERT`], [`TLS_KEY`], [`KEYSTORE`] and
/// the cluster CA's trust bundle as [`CA_CERT`].
pub fn cert_secret_data(cert: &CertAndKey, cluster_ca: &CaState) -> BTreeMap<String, Vec<u8>> {
    BTreeMap::from([
        (TLS_CERT.to_owned(), cert.chain_pem.clone().into_bytes()),
        (
            TLS_KEY.to_owned(),
            cert.key_pem.expose().as_bytes().to_vec(),
        ),
        (KEYSTORE.to_owned(), cert.keystore_pem().into_bytes()),
        (
            CA_CERT.to_owned(),
            cluster_ca.trust_bundle_pem().into_bytes(),
        ),
    ])
}

/// The data of a Kafka node's certificate Secret: what [`cert_secret_data`] holds, plus the
/// clients CA's trust bundle as [`CLIENTS_CA_CERT`].
pub fn node_secret_data(
    cert: &CertAndKey,
    cluster_ca: &CaState,
    clients_ca: &CaState,
) -> BTreeMap<String, Vec<u8>> {
    let mut data = cert_secret_data(cert, cluster_ca);
    data.insert(
        CLIENTS_CA_CERT.to_owned(),
        clients_ca.trust_bundle_pem().into_bytes(),
    );
    data
}

/// The decision for the certificate in an existing Secret's data, and the certificate and key
/// the Secret should hold (for [`cert_secret_data`] or [`node_secret_data`]). A certificate that
/// stays is re-encoded with the chain of the CA certificate that signed it, so a steady state
/// reproduces the Secret byte for byte and a CA certificate renewed for the same key reaches
/// the chain and truststore without a new certificate.
pub fn plan_certificate(
    existing: Option<&BTreeMap<String, Vec<u8>>>,
    request: &CertRequest,
    cluster_ca: &CaState,
    settings: &CaSettings,
    now: OffsetDateTime,
    trust: CaTrust,
    rng: &dyn SecureRandom,
) -> Result<(CertDecision, CertAndKey), CertError> {
    let existing = existing.and_then(ExistingCert::from_secret_data);
    let (decision, kept) = assess(
        existing,
        request,
        cluster_ca,
        now,
        settings.renewal_days,
        trust,
    );
    let cert = match kept {
        Some((leaf_der, key_pem, signed_by)) => {
            let issuers: Vec<&[u8]> = match signed_by {
                SignedBy::Current => cluster_ca.issuing_chain_der().collect(),
                SignedBy::Previous(der) => vec![der],
            };
            let chain_pem = std::iter::once(leaf_der.as_slice())
                .chain(issuers)
                .map(|der| pem::encode(CERTIFICATE_LABEL, der))
                .collect();
            CertAndKey { chain_pem, key_pem }
        }
        None => issue_certificate(request, cluster_ca, now, settings.validity_days, rng)?,
    };
    Ok((decision, cert))
}

/// Why a certificate could not be named or issued.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error(
        "listener {listener}: {address:?} is neither an IP address nor a DNS name, so it cannot be put in the brokers' certificates"
    )]
    InvalidAddress { listener: String, address: String },
    #[error("the cluster CA cannot sign: {source}")]
    CaUnusable { source: rcgen::Error },
    #[error("the random number source failed while generating key material")]
    RandomSourceFailed,
    #[error("signing the certificate failed: {source}")]
    SignCertificate { source: rcgen::Error },
}

impl CertError {
    /// Stable CamelCase word for condition reasons, Event reasons and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidAddress { .. } => "InvalidListenerAddress",
            Self::CaUnusable { .. } => "ClusterCaUnusable",
            Self::RandomSourceFailed => "RandomSourceFailed",
            Self::SignCertificate { .. } => "SignCertificateFailed",
        }
    }

    /// True when only a change to the Kafka resource can fix it.
    pub fn is_invalid_user_input(&self) -> bool {
        matches!(self, Self::InvalidAddress { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ca::testing::{generated_ca, reconcile, replaced_key_ca, settings, t0};
    use crate::pki::ca::{CaOutcome, CaPlan};
    use rcgen::KeyPair;
    use ring::rand::SystemRandom;
    use shared_crds::common::CertificateExpirationPolicy;
    use time::Duration;
    use x509_parser::extensions::ParsedExtension;
    use x509_parser::pem::Pem;

    const RENEW: CertificateExpirationPolicy = CertificateExpirationPolicy::RenewCertificate;

    fn node(broker: bool) -> KafkaNode<'static> {
        KafkaNode {
            cluster: "my-cluster",
            namespace: "kafka",
            cluster_domain: DEFAULT_CLUSTER_DOMAIN,
            pool: "pool-a",
            node_id: 3,
            broker,
        }
    }

    fn listener(
        name: &str,
        type_: KafkaListenerType,
        tls: bool,
        bootstrap: &[&str],
        node: &[&str],
    ) -> ListenerAddresses {
        ListenerAddresses {
            name: name.to_owned(),
            type_,
            tls,
            bootstrap_addresses: bootstrap.iter().map(|a| a.to_string()).collect(),
            node_addresses: node.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn dns(names: &[&str]) -> Vec<SubjectAltName> {
        names
            .iter()
            .map(|n| SubjectAltName::Dns(n.to_string()))
            .collect()
    }

    fn sorted(mut sans: Vec<SubjectAltName>) -> Vec<SubjectAltName> {
        sans.sort();
        sans
    }

    const POD_AND_HEADLESS: [&str; 6] = [
        "my-cluster-pool-a-3.my-cluster-kafka-brokers.kafka.svc",
        "my-cluster-pool-a-3.my-cluster-kafka-brokers.kafka.svc.cluster.local",
        "my-cluster-kafka-brokers",
        "my-cluster-kafka-brokers.kafka",
        "my-cluster-kafka-brokers.kafka.svc",
        "my-cluster-kafka-brokers.kafka.svc.cluster.local",
    ];

    const BOOTSTRAP: [&str; 4] = [
        "my-cluster-kafka-bootstrap",
        "my-cluster-kafka-bootstrap.kafka",
        "my-cluster-kafka-bootstrap.kafka.svc",
        "my-cluster-kafka-bootstrap.kafka.svc.cluster.local",
    ];

    #[test]
    fn a_controller_is_named_by_its_pod_and_the_headless_service_only() {
        let listeners = [listener(
            "ext",
            KafkaListenerType::Loadbalancer,
            true,
            &["lb.example.com"],
            &["10.0.0.7"],
        )];

        let sans = node_sans(&node(false), &listeners).expect("names");

        assert_eq!(sans, sorted(dns(&POD_AND_HEADLESS)));
    }

    #[test]
    fn a_broker_on_an_internal_listener_adds_the_bootstrap_service() {
        let listeners = [listener("tls", KafkaListenerType::Internal, true, &[], &[])];

        let sans = node_sans(&node(true), &listeners).expect("names");

        let expected: Vec<&str> = POD_AND_HEADLESS.iter().chain(&BOOTSTRAP).copied().collect();
        assert_eq!(sans, sorted(dns(&expected)));
        assert!(sans.is_sorted());
    }

    #[test]
    fn a_tls_cluster_ip_listener_adds_its_services_and_a_plain_one_nothing() {
        let listeners = [
            listener("ext", KafkaListenerType::ClusterIp, true, &[], &[]),
            listener(
                "plain",
                KafkaListenerType::ClusterIp,
                false,
                &["x.example.com"],
                &[],
            ),
        ];

        let sans = node_sans(&node(true), &listeners).expect("names");

        let expected: Vec<&str> = POD_AND_HEADLESS
            .iter()
            .chain(&BOOTSTRAP)
            .chain(&[
                "my-cluster-kafka-ext-bootstrap",
                "my-cluster-kafka-ext-bootstrap.kafka",
                "my-cluster-kafka-ext-bootstrap.kafka.svc",
                "my-cluster-kafka-ext-bootstrap.kafka.svc.cluster.local",
                "my-cluster-pool-a-ext-3",
                "my-cluster-pool-a-ext-3.kafka",
                "my-cluster-pool-a-ext-3.kafka.svc",
                "my-cluster-pool-a-ext-3.kafka.svc.cluster.local",
            ])
            .copied()
            .collect();
        assert_eq!(sans, sorted(dns(&expected)));
    }

    #[test]
    fn external_addresses_are_added_normalised_once_with_ips_last() {
        let listeners = [
            listener(
                "lb",
                KafkaListenerType::Loadbalancer,
                true,
                &["LB.Example.COM.", "203.0.113.9"],
                &["10.0.0.7", "broker-3.example.com", "2001:db8::1"],
            ),
            listener(
                "np",
                KafkaListenerType::Nodeport,
                true,
                &["*.kafka.example.com", "lb.example.com"],
                &["10.0.0.7"],
            ),
        ];

        let sans = node_sans(&node(true), &listeners).expect("names");

        let names: Vec<String> = sans.iter().map(ToString::to_string).collect();
        assert!(names.contains(&"DNS:lb.example.com".to_owned()));
        assert!(names.contains(&"DNS:broker-3.example.com".to_owned()));
        assert!(names.contains(&"DNS:*.kafka.example.com".to_owned()));
        assert!(names.contains(&"DNS:my-cluster-pool-a-np-3.kafka.svc".to_owned()));
        assert!(names.contains(&"DNS:my-cluster-kafka-lb-bootstrap".to_owned()));
        assert_eq!(
            names[names.len() - 3..],
            ["IP:10.0.0.7", "IP:203.0.113.9", "IP:2001:db8::1"]
        );
        assert_eq!(
            names.iter().filter(|n| *n == "DNS:lb.example.com").count(),
            1
        );
        assert_eq!(names.iter().filter(|n| *n == "IP:10.0.0.7").count(), 1);
        // 6 pod/headless + 4 bootstrap + 2 listeners x 8 Service names + 3 host names + 3 IPs.
        assert_eq!(sans.len(), 6 + 4 + 16 + 3 + 3);
    }

    #[test]
    fn another_cluster_domain_is_used_for_the_long_forms() {
        let node = KafkaNode {
            cluster_domain: "corp.internal",
            ..node(false)
        };

        let sans = node_sans(&node, &[]).expect("names");

        assert!(sans.contains(&SubjectAltName::Dns(
            "my-cluster-pool-a-3.my-cluster-kafka-brokers.kafka.svc.corp.internal".to_owned()
        )));
        assert!(
            !sans
                .iter()
                .any(|san| san.to_string().ends_with("cluster.local"))
        );
    }

    #[test]
    fn an_address_that_is_no_host_is_refused() {
        let listeners = [listener(
            "ext",
            KafkaListenerType::Loadbalancer,
            true,
            &[],
            &["not a host!"],
        )];

        let error = node_sans(&node(true), &listeners).expect_err("invalid");

        assert_eq!(error.reason(), "InvalidListenerAddress");
        assert!(error.is_invalid_user_input());
        assert!(error.to_string().contains("listener ext"), "{error}");
        for bad in [
            "",
            "-a.com",
            "a..b",
            "*",
            "a.*.com",
            "a_b.com",
            &"a".repeat(64),
        ] {
            assert_eq!(SubjectAltName::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            SubjectAltName::parse("::1"),
            Some(SubjectAltName::Ip("::1".parse().expect("IP")))
        );
    }

    #[test]
    fn principals_are_exact() {
        assert_eq!(
            node_principal("my-cluster"),
            "User:CN=my-cluster-kafka,O=io.oxbow"
        );
        assert_eq!(
            OperatorClient::TopicOperator.principal("c"),
            "User:CN=c-topic-operator,O=io.oxbow"
        );
        assert_eq!(
            super_user_principals("c"),
            [
                "User:CN=c-kafka,O=io.oxbow",
                "User:CN=c-topic-operator,O=io.oxbow",
                "User:CN=c-user-operator,O=io.oxbow",
                "User:CN=c-cluster-operator,O=io.oxbow",
            ]
        );
        assert_eq!(
            OperatorClient::ClusterOperator.secret_name("c"),
            "c-cluster-operator-certs"
        );
    }

    fn issue(request: &CertRequest, ca: &CaOutcome, now: OffsetDateTime) -> CertAndKey {
        issue_certificate(request, &ca.state, now, 365, &SystemRandom::new()).expect("issued")
    }

    fn blocks(text: &str) -> Vec<(String, Vec<u8>)> {
        Pem::iter_from_buffer(text.as_bytes())
            .map(|block| {
                let block = block.expect("PEM");
                (block.label, block.contents)
            })
            .collect()
    }

    fn leaf_der(cert: &CertAndKey) -> Vec<u8> {
        blocks(&cert.chain_pem).remove(0).1
    }

    fn node_request() -> CertRequest {
        let sans = node_sans(
            &node(true),
            &[listener(
                "lb",
                KafkaListenerType::Loadbalancer,
                true,
                &[],
                &["10.0.0.7"],
            )],
        )
        .expect("names");
        CertRequest::kafka_node("my-cluster", sans)
    }

    fn ekus(cert: &X509Certificate<'_>) -> (bool, bool) {
        let eku = cert
            .extended_key_usage()
            .expect("parses")
            .expect("present")
            .value;
        (eku.server_auth, eku.client_auth)
    }

    #[test]
    fn a_node_certificate_verifies_against_the_cluster_ca_and_names_every_address() {
        let ca = generated_ca();
        let request = node_request();

        let cert = issue(&request, &ca, t0());

        let leaf = leaf_der(&cert);
        let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).expect("X.509");
        let ca_der = ca.state.cert_der();
        let (_, ca_cert) = x509_parser::parse_x509_certificate(ca_der).expect("X.509");
        assert!(parsed.verify_signature(Some(ca_cert.public_key())).is_ok());
        assert_eq!(parsed.issuer().as_raw(), ca_cert.subject().as_raw());
        assert_eq!(sans_of(&parsed).as_deref(), Some(request.sans()));
        assert!(
            request
                .sans()
                .contains(&SubjectAltName::Ip("10.0.0.7".parse().expect("IP")))
        );
        assert!(!parsed.is_ca());
        assert_eq!(ekus(&parsed), (true, true));
        assert_eq!(
            format!("User:{}", rfc2253(parsed.subject()).expect("printable")),
            node_principal("my-cluster")
        );
        assert_eq!(
            parsed.validity().not_after.to_datetime(),
            t0() + Duration::days(365)
        );
        assert!(parsed.iter_extensions().any(|ext| matches!(
            ext.parsed_extension(),
            ParsedExtension::AuthorityKeyIdentifier(_)
        )));
        // The chain is the certificate, then the CA certificate.
        let chain = blocks(&cert.chain_pem);
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[1].1, ca_der);
        let (_, key) = pem::decode_private_key(cert.key_pem.expose().as_bytes()).expect("key");
        assert_eq!(
            key.der_bytes(),
            parsed.public_key().subject_public_key.data.as_ref()
        );
    }

    #[test]
    fn operator_certificates_are_client_only_without_names() {
        let ca = generated_ca();

        for operator in OperatorClient::ALL {
            let request = CertRequest::operator(operator, "my-cluster");
            let cert = issue(&request, &ca, t0());

            let leaf = leaf_der(&cert);
            let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).expect("X.509");
            let (_, ca_cert) =
                x509_parser::parse_x509_certificate(ca.state.cert_der()).expect("X.509");
            assert!(parsed.verify_signature(Some(ca_cert.public_key())).is_ok());
            assert!(parsed.subject_alternative_name().expect("parses").is_none());
            assert_eq!(ekus(&parsed), (false, true));
            assert_eq!(
                format!("User:{}", rfc2253(parsed.subject()).expect("printable")),
                operator.principal("my-cluster")
            );
        }
    }

    fn existing(cert: &CertAndKey) -> Option<ExistingCert<'_>> {
        Some(ExistingCert {
            cert_pem: cert.chain_pem.as_bytes(),
            key_pem: cert.key_pem.expose().as_bytes(),
        })
    }

    fn decide(
        cert: Option<ExistingCert<'_>>,
        request: &CertRequest,
        ca: &CaOutcome,
        now: OffsetDateTime,
        trust: CaTrust,
    ) -> CertDecision {
        decide_certificate(cert, request, &ca.state, now, 30, trust)
    }

    #[test]
    fn missing_and_unusable_certificates_are_issued() {
        let ca = generated_ca();
        let request = node_request();
        let first = issue(&request, &ca, t0());
        let second = issue(&request, &ca, t0());
        let crossed = ExistingCert {
            cert_pem: first.chain_pem.as_bytes(),
            key_pem: second.key_pem.expose().as_bytes(),
        };
        let garbage = ExistingCert {
            cert_pem: b"garbage",
            key_pem: first.key_pem.expose().as_bytes(),
        };
        let empty = ExistingCert {
            cert_pem: b"",
            key_pem: b"",
        };

        let at = |cert| decide(cert, &request, &ca, t0(), CaTrust::Established);

        assert_eq!(at(None), CertDecision::Issue(IssueReason::Missing));
        assert_eq!(at(Some(empty)), CertDecision::Issue(IssueReason::Missing));
        assert_eq!(
            at(Some(garbage)),
            CertDecision::Issue(IssueReason::Unusable)
        );
        assert_eq!(
            at(Some(crossed)),
            CertDecision::Issue(IssueReason::Unusable)
        );
        assert_eq!(at(existing(&first)), CertDecision::Keep);
    }

    #[test]
    fn changed_names_or_subject_are_issued() {
        let ca = generated_ca();
        let request = node_request();
        let cert = issue(&request, &ca, t0());
        let mut more_sans = request.sans().to_vec();
        more_sans.push(SubjectAltName::Dns("new.example.com".to_owned()));
        let wider = CertRequest::kafka_node("my-cluster", more_sans);
        let topic = issue(
            &CertRequest::operator(OperatorClient::TopicOperator, "c"),
            &ca,
            t0(),
        );
        let user_request = CertRequest::operator(OperatorClient::UserOperator, "c");

        assert_eq!(
            decide(existing(&cert), &wider, &ca, t0(), CaTrust::Established),
            CertDecision::Issue(IssueReason::SansChanged)
        );
        assert_eq!(
            decide(
                existing(&topic),
                &user_request,
                &ca,
                t0(),
                CaTrust::Established
            ),
            CertDecision::Issue(IssueReason::SubjectChanged)
        );
    }

    #[test]
    fn expiring_and_expired_certificates_are_issued() {
        let ca = generated_ca();
        let request = node_request();
        let cert = issue(&request, &ca, t0());

        let at = |days| {
            decide(
                existing(&cert),
                &request,
                &ca,
                t0() + Duration::days(days),
                CaTrust::Established,
            )
        };

        assert_eq!(at(334), CertDecision::Keep);
        assert_eq!(
            decide_certificate(
                existing(&cert),
                &request,
                &ca.state,
                t0(),
                u32::MAX,
                CaTrust::Established
            ),
            CertDecision::Issue(IssueReason::Expiring)
        );
        assert_eq!(at(336), CertDecision::Issue(IssueReason::Expiring));
        assert_eq!(at(366), CertDecision::Issue(IssueReason::Expired));
    }

    #[test]
    fn a_certificate_of_another_ca_is_issued() {
        let ca = generated_ca();
        let other = generated_ca();
        let request = node_request();
        let cert = issue(&request, &other, t0());

        assert_eq!(
            decide(existing(&cert), &request, &ca, t0(), CaTrust::Rolling),
            CertDecision::Issue(IssueReason::CaChanged)
        );
    }

    #[test]
    fn a_ca_renewed_for_the_same_key_keeps_certificates() {
        let ca = generated_ca();
        let (plan, renewed) = reconcile(Some(&ca), &settings(RENEW), t0(), true, false);
        assert!(matches!(plan, CaPlan::RenewCertificate { .. }));
        let request = node_request();
        let cert = issue(&request, &ca, t0());

        assert_eq!(
            decide(
                existing(&cert),
                &request,
                &renewed,
                t0(),
                CaTrust::Established
            ),
            CertDecision::Keep
        );
    }

    #[test]
    fn after_a_key_replacement_certificates_wait_for_the_trust_roll() {
        let ca = generated_ca();
        let request = node_request();
        let cert = issue(&request, &ca, t0());
        let replaced = replaced_key_ca(&ca);
        let (_, dropped) = reconcile(
            Some(&replaced),
            &settings(RENEW),
            t0() + Duration::days(11),
            false,
            true,
        );
        let now = t0() + Duration::days(11);

        assert_eq!(
            decide(existing(&cert), &request, &replaced, now, CaTrust::Rolling),
            CertDecision::KeepUntilTrusted
        );
        assert_eq!(
            decide(
                existing(&cert),
                &request,
                &replaced,
                now,
                CaTrust::Established
            ),
            CertDecision::Issue(IssueReason::CaChanged)
        );
        // Once the old certificate has left the bundle nothing vouches for the certificate.
        assert_eq!(
            decide(existing(&cert), &request, &dropped, now, CaTrust::Rolling),
            CertDecision::Issue(IssueReason::CaChanged)
        );
    }

    #[test]
    fn the_keystore_is_the_pkcs8_key_then_the_chain() {
        let ca = generated_ca();
        let cert = issue(&node_request(), &ca, t0());

        let keystore = cert.keystore_pem();

        assert!(keystore.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(!keystore.contains("ENCRYPTED"));
        let blocks = blocks(&keystore);
        let labels: Vec<&str> = blocks.iter().map(|(label, _)| label.as_str()).collect();
        assert_eq!(labels, ["PRIVATE KEY", "CERTIFICATE", "CERTIFICATE"]);
        assert_eq!(blocks[1].1, leaf_der(&cert));
        assert_eq!(blocks[2].1, ca.state.cert_der());
        assert!(KeyPair::try_from(blocks[0].1.as_slice()).is_ok());
    }

    fn plan(
        data: Option<&BTreeMap<String, Vec<u8>>>,
        ca: &CaOutcome,
        now: OffsetDateTime,
        trust: CaTrust,
    ) -> (CertDecision, BTreeMap<String, Vec<u8>>) {
        let (decision, cert) = plan_certificate(
            data,
            &node_request(),
            &ca.state,
            &settings(RENEW),
            now,
            trust,
            &SystemRandom::new(),
        )
        .expect("planned");
        (decision, cert_secret_data(&cert, &ca.state))
    }

    fn text(data: &BTreeMap<String, Vec<u8>>, entry: &str) -> String {
        String::from_utf8(data[entry].clone()).expect("PEM text")
    }

    #[test]
    fn a_secret_is_issued_once_then_reproduced_byte_for_byte() {
        let ca = generated_ca();

        let (first_decision, first) = plan(None, &ca, t0(), CaTrust::Established);
        let (second_decision, second) = plan(
            Some(&first),
            &ca,
            t0() + Duration::days(1),
            CaTrust::Established,
        );

        assert_eq!(first_decision, CertDecision::Issue(IssueReason::Missing));
        assert_eq!(
            first.keys().map(String::as_str).collect::<Vec<_>>(),
            ["ca.crt", "keystore.pem", "tls.crt", "tls.key"]
        );
        assert_eq!(text(&first, CA_CERT), ca.state.trust_bundle_pem());
        assert_eq!(
            text(&first, KEYSTORE),
            format!("{}{}", text(&first, TLS_KEY), text(&first, TLS_CERT))
        );
        assert_eq!(second_decision, CertDecision::Keep);
        assert_eq!(second, first);
    }

    #[test]
    fn a_node_secret_also_carries_the_clients_ca_bundle() {
        let cluster_ca = generated_ca();
        let clients_ca = generated_ca();
        let cert = issue(&node_request(), &cluster_ca, t0());

        let data = node_secret_data(&cert, &cluster_ca.state, &clients_ca.state);

        assert_eq!(
            data.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "ca.crt",
                "clients-ca.crt",
                "keystore.pem",
                "tls.crt",
                "tls.key"
            ]
        );
        assert_eq!(text(&data, CA_CERT), cluster_ca.state.trust_bundle_pem());
        assert_eq!(
            text(&data, CLIENTS_CA_CERT),
            clients_ca.state.trust_bundle_pem()
        );
        assert_ne!(data[CA_CERT], data[CLIENTS_CA_CERT]);
    }

    #[test]
    fn a_renewed_ca_certificate_reaches_chain_and_truststore_without_a_new_key() {
        let ca = generated_ca();
        let (_, first) = plan(None, &ca, t0(), CaTrust::Established);
        let (_, renewed) = reconcile(Some(&ca), &settings(RENEW), t0(), true, false);

        let (decision, second) = plan(Some(&first), &renewed, t0(), CaTrust::Established);

        assert_eq!(decision, CertDecision::Keep);
        assert_eq!(second[TLS_KEY], first[TLS_KEY]);
        let chain = blocks(&text(&second, TLS_CERT));
        assert_eq!(chain[0], blocks(&text(&first, TLS_CERT))[0]);
        assert_eq!(chain[1].1, renewed.state.cert_der());
        assert_eq!(text(&second, CA_CERT), renewed.state.trust_bundle_pem());
    }

    #[test]
    fn during_the_trust_roll_the_old_chain_stays_and_both_cas_are_trusted() {
        let ca = generated_ca();
        let (_, first) = plan(None, &ca, t0(), CaTrust::Established);
        let replaced = replaced_key_ca(&ca);
        let now = t0() + Duration::days(11);

        let (rolling, during) = plan(Some(&first), &replaced, now, CaTrust::Rolling);
        let (established, after) = plan(Some(&during), &replaced, now, CaTrust::Established);

        assert_eq!(rolling, CertDecision::KeepUntilTrusted);
        assert_eq!(during[TLS_CERT], first[TLS_CERT]);
        assert_eq!(during[TLS_KEY], first[TLS_KEY]);
        let trusted: Vec<Vec<u8>> = blocks(&text(&during, CA_CERT))
            .into_iter()
            .map(|(_, der)| der)
            .collect();
        assert_eq!(trusted, [replaced.state.cert_der(), ca.state.cert_der()]);
        assert_eq!(established, CertDecision::Issue(IssueReason::CaChanged));
        assert_ne!(after[TLS_KEY], first[TLS_KEY]);
        let chain = blocks(&text(&after, TLS_CERT));
        let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0].1).expect("X.509");
        assert!(is_signed_by(&leaf, replaced.state.cert_der()));
        assert_eq!(chain[1].1, replaced.state.cert_der());
    }

    #[test]
    fn debug_output_never_contains_private_keys() {
        let ca = generated_ca();
        let cert = issue(&node_request(), &ca, t0());
        let body = cert
            .key_pem
            .expose()
            .lines()
            .nth(1)
            .expect("a base64 line")
            .to_owned();

        for shown in [format!("{cert:?}"), format!("{:?}", existing(&cert))] {
            assert!(!shown.contains(&body), "{shown}");
            assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        }
    }
}
