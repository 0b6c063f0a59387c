//! The certificates of a Kafka cluster, as pure decisions and builders: the lifecycle of its two
//! certificate authorities (`ca`), the certificates the cluster CA signs for Kafka nodes and for
//! Oxbow's own operators (`node_certs`), and the PEM text they travel in (`pem`). Pure: no I/O;
//! the clock is a `now` argument and randomness a `SecureRandom` argument.
//!
//! # Replacing a CA key without breaking anyone
//!
//! A CA certificate renewed with the same key and name validates every certificate the key
//! ever signed, so renewal only rolls the nodes to pick up the new CA certificate. A new key is
//! different: a certificate signed by it is rejected by anyone who trusts only the old CA
//! certificate. The key is therefore replaced in three steps, driven by the controller with the
//! inputs these functions take:
//!
//! 1. `ca::plan_ca` says `ReplaceKey`: the Secrets get the new key and certificate, and the
//!    old certificate stays in the trust bundle (`ca-<generation>.crt`, `ca-bundle.crt`).
//! 2. Trust roll: every node restarts with the bundle (old and new) as its truststore, while
//!    `node_certs::decide_certificate` keeps the certificates the old key signed
//!    (`CaTrust::Rolling`), so restarted and not yet restarted nodes still accept each other.
//! 3. Certificate roll: once every node trusts the new certificate (`CaTrust::Established`),
//!    node and operator certificates are re-issued with the new key and the nodes restart again.
//!    When all run new certificates, `roll_done` lets `plan_ca` drop the old certificate
//!    (`DropPreviousCertificates`).
//!
//! The clients CA follows the same steps for the brokers' `clients-ca.crt` truststore. The
//! certificates it signs belong to the user operator, which re-issues them as soon as the key
//! changes: a client that picks up its new certificate before every broker has restarted with
//! the new bundle is refused by the brokers that have not.
//!
//! # Principals
//!
//! Kafka's default principal of a TLS client is `User:` plus the certificate subject as Java's
//! RFC 2253 rendering prints it. Oxbow's certificates are `CN=<name>,O=io.oxbow` in that
//! rendering (encoded `O` first, `CN` last), so the super users are exactly predictable, and no
//! KafkaUser can take one of these principals: the user operator's certificates carry only a
//! `CN`, so `User:CN=my-cluster-kafka` is never `User:CN=my-cluster-kafka,O=io.oxbow`.

pub mod ca;
pub mod node_certs;
pub mod pem;

use rcgen::{DistinguishedName, DnType, KeyPair, SerialNumber};
use ring::rand::SecureRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use time::{Duration, OffsetDateTime, PrimitiveDateTime};
use x509_parser::oid_registry::{
    OID_X509_COMMON_NAME, OID_X509_COUNTRY_NAME, OID_X509_LOCALITY_NAME,
    OID_X509_ORGANIZATION_NAME, OID_X509_ORGANIZATIONAL_UNIT, OID_X509_STATE_OR_PROVINCE_NAME,
};
use x509_parser::x509::X509Name;

use self::pem::PrivateKeyPem;

/// The organisation (`O`) of every certificate Oxbow issues, CAs included.
pub const ORGANIZATION: &str = "io.oxbow";

/// How far `notBefore` is set before `now`: a node whose clock runs a little behind the
/// operator's must not reject a certificate issued a moment ago as not yet valid.
pub(crate) const CLOCK_SKEW_ALLOWANCE: Duration = Duration::minutes(5);

/// The longest validity Oxbow gives a certificate: 100 years. Far beyond any sensible
/// setting, and well inside what X.509's four-digit years and `time`'s arithmetic can hold.
pub const MAX_VALIDITY_DAYS: u32 = 36_500;

/// `now` plus `days`, saturating at the latest instant `time` can represent, so that an
/// absurd renewal window counts as "always due" instead of overflowing.
pub(crate) fn days_after(now: OffsetDateTime, days: u32) -> OffsetDateTime {
    now.checked_add(Duration::days(i64::from(days)))
        .unwrap_or(PrimitiveDateTime::MAX.assume_utc())
}

/// Bytes of randomness in a serial number: well above the 64 bits CAs are asked for, well
/// below the 20-octet limit.
const SERIAL_NUMBER_LENGTH: usize = 16;

/// A new ECDSA P-256 key from `rng`, as PKCS#8 PEM and as a signing key. P-256 because Java
/// (Kafka) and OpenSSL (librdkafka) clients both accept it and ring can generate it (ring cannot
/// generate RSA keys). `None` when the random source fails, the only way this can fail.
pub(crate) fn generate_key(rng: &dyn SecureRandom) -> Option<(PrivateKeyPem, KeyPair)> {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, rng).ok()?;
    let key = KeyPair::try_from(pkcs8.as_ref()).ok()?;
    Some((PrivateKeyPem::from_pkcs8_der(pkcs8.as_ref()), key))
}

/// A random positive serial number of full length from `rng`. rcgen would otherwise derive it
/// from the public key, which gives every certificate renewed for the same key the same serial.
pub(crate) fn random_serial(rng: &dyn SecureRandom) -> Option<SerialNumber> {
    let mut serial = [0u8; SERIAL_NUMBER_LENGTH];
    rng.fill(&mut serial).ok()?;
    // Positive and full length: DER integers are signed, and a leading zero byte would shrink it.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    Some(SerialNumber::from_slice(&serial))
}

/// The subject `CN=<common_name>,O=io.oxbow` (RFC 2253 order). X.509 encodes the RDNs in the
/// reverse of the order RFC 2253 prints them, so `O` goes in first.
pub(crate) fn subject(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, ORGANIZATION);
    name.push(DnType::CommonName, common_name);
    name
}

/// `CN=<common_name>,O=io.oxbow`, the RFC 2253 form of [`subject`].
pub(crate) fn subject_rfc2253(common_name: &str) -> String {
    format!(
        "CN={},O={}",
        escape_rfc2253(common_name),
        escape_rfc2253(ORGANIZATION)
    )
}

/// A name as Java's `X500Principal.getName()` (RFC 2253) prints it, which is what Kafka's
/// default principal builder puts after `User:`: RDNs last to first, joined by `,`, the
/// attributes of a multi-valued RDN joined by `+`. Only string-valued attributes with the
/// keywords RFC 2253 knows are rendered; `None` for anything else, which no Oxbow certificate
/// contains.
pub(crate) fn rfc2253(name: &X509Name<'_>) -> Option<String> {
    let keyword = |oid: &x509_parser::der_parser::oid::Oid<'_>| {
        [
            (&OID_X509_COMMON_NAME, "CN"),
            (&OID_X509_ORGANIZATION_NAME, "O"),
            (&OID_X509_ORGANIZATIONAL_UNIT, "OU"),
            (&OID_X509_COUNTRY_NAME, "C"),
            (&OID_X509_LOCALITY_NAME, "L"),
            (&OID_X509_STATE_OR_PROVINCE_NAME, "ST"),
        ]
        .into_iter()
        .find(|(known, _)| *known == oid)
        .map(|(_, keyword)| keyword)
    };
    let mut rdns = Vec::new();
    for rdn in name.iter_rdn() {
        let mut attributes = Vec::new();
        for attribute in rdn.iter() {
            let keyword = keyword(attribute.attr_type())?;
            let value = attribute.as_str().ok()?;
            attributes.push(format!("{keyword}={}", escape_rfc2253(value)));
        }
        rdns.push(attributes.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// RFC 2253 section 2.4 escaping of an attribute value.
fn escape_rfc2253(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (index, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (index == 0 && (c == ' ' || c == '#'))
            || (index == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::CertificateParams;
    use ring::rand::SystemRandom;

    #[test]
    fn subjects_print_common_name_first_as_java_does() {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.distinguished_name = subject("my-cluster-kafka");
        let cert = params.self_signed(&key).expect("signed");
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.der()).expect("parsed");

        let printed = rfc2253(parsed.subject()).expect("printable");

        assert_eq!(printed, "CN=my-cluster-kafka,O=io.oxbow");
        assert_eq!(printed, subject_rfc2253("my-cluster-kafka"));
    }

    #[test]
    fn days_after_saturates_instead_of_overflowing() {
        let now = OffsetDateTime::UNIX_EPOCH;

        assert_eq!(days_after(now, 2), now + Duration::days(2));
        assert_eq!(
            days_after(now, u32::MAX),
            PrimitiveDateTime::MAX.assume_utc()
        );
    }

    #[test]
    fn special_characters_are_escaped() {
        assert_eq!(escape_rfc2253("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rfc2253(" #x "), "\\ #x\\ ");
        assert_eq!(escape_rfc2253("#x"), "\\#x");
        assert_eq!(escape_rfc2253("plain-name"), "plain-name");
    }

    #[test]
    fn serials_are_positive_full_length_and_random() {
        let rng = SystemRandom::new();

        let first = random_serial(&rng).expect("serial").to_bytes();
        let second = random_serial(&rng).expect("serial").to_bytes();

        assert_eq!(first.len(), SERIAL_NUMBER_LENGTH);
        assert_eq!(first[0] & 0xc0, 0x40);
        assert_ne!(first, second);
    }

    #[test]
    fn generated_keys_are_pkcs8_p256() {
        let (pem, key) = generate_key(&SystemRandom::new()).expect("key");

        assert!(pem.expose().starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert_eq!(key.algorithm(), &rcgen::PKCS_ECDSA_P256_SHA256);
        assert_eq!(
            pem.key_pair().expect("parses").public_key_raw(),
            key.public_key_raw()
        );
    }
}
