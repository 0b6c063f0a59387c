//! PEM text in and out for the certificate modules: certificates and PKCS#8 private keys as the
//! Secrets, Kafka's PEM stores (KIP-651) and Oxbow's operators hold them. Pure: no I/O.
//!
//! Everything Oxbow writes goes through [`encode`], so what it reads back from its own Secrets
//! re-encodes to the same bytes and a steady-state reconcile writes nothing new.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::KeyPair;
use x509_parser::pem::Pem;

/// PEM label of an X.509 certificate.
pub const CERTIFICATE_LABEL: &str = "CERTIFICATE";
/// PEM label of an unencrypted PKCS#8 private key, the only key form Kafka's PEM key store and
/// rcgen both read.
pub const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";

/// Base64 characters per PEM line (RFC 7468).
const LINE_LENGTH: usize = 64;

/// A PEM private key. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeyPem(String);

impl PrivateKeyPem {
    /// The PEM text, for writing into a Secret or key store.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A PKCS#8 DER key as PEM.
    pub(crate) fn from_pkcs8_der(der: &[u8]) -> Self {
        Self(encode(PRIVATE_KEY_LABEL, der))
    }

    /// The key, for signing. Only keys this module produced or [`decode_private_key`] accepted
    /// are ever wrapped, so parsing cannot fail for a reason the caller could act on.
    pub(crate) fn key_pair(&self) -> Result<KeyPair, rcgen::Error> {
        KeyPair::from_pem(&self.0)
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyPem(<redacted>)")
    }
}

/// Why PEM text could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("the value is not text")]
    NotText,
    #[error("the value holds no PEM block labelled {expected}")]
    NoBlock { expected: &'static str },
    #[error("a PEM block is malformed")]
    Malformed,
    #[error("a PEM block labelled {found} was found where only {expected} is accepted")]
    UnexpectedLabel {
        expected: &'static str,
        found: String,
    },
    #[error("a certificate is not valid X.509 DER: {detail}")]
    InvalidCertificate { detail: String },
    #[error(
        "the private key is PEM `{found}`, but only unencrypted PKCS#8 (`BEGIN PRIVATE KEY`) is accepted; convert it with `openssl pkcs8 -topk8 -nocrypt`"
    )]
    NotPkcs8 { found: String },
    #[error(
        "the private key is not a PKCS#8 key of a supported type (ECDSA, RSA, Ed25519): {source}"
    )]
    InvalidKey { source: rcgen::Error },
}

impl PemError {
    /// Stable CamelCase word for condition reasons, Event reasons and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotText => "PemNotText",
            Self::NoBlock { .. } => "PemBlockMissing",
            Self::Malformed => "PemMalformed",
            Self::UnexpectedLabel { .. } => "PemUnexpectedLabel",
            Self::InvalidCertificate { .. } => "CertificateInvalid",
            Self::NotPkcs8 { .. } => "KeyNotPkcs8",
            Self::InvalidKey { .. } => "KeyInvalid",
        }
    }
}

/// DER as one PEM block: 64-character lines, LF line ends, a trailing newline, so that
/// concatenated blocks stay well formed.
pub fn encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out =
        String::with_capacity(body.len() + body.len() / LINE_LENGTH + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    // Base64 output is ASCII, so splitting at any byte index is a char boundary.
    for line in body.as_bytes().chunks(LINE_LENGTH) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Every certificate in `bytes`, in order, as DER; each one is checked to parse as X.509.
/// Text outside PEM blocks is ignored (openssl writes "subject=" lines before blocks), blocks
/// with another label are refused rather than skipped so that a key pasted into a certificate
/// entry is noticed.
pub fn decode_certificates(bytes: &[u8]) -> Result<Vec<Vec<u8>>, PemError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(PemError::NotText);
    }
    let mut certificates = Vec::new();
    for block in Pem::iter_from_buffer(bytes) {
        let block = block.map_err(|_| PemError::Malformed)?;
        if block.label != CERTIFICATE_LABEL {
            return Err(PemError::UnexpectedLabel {
                expected: CERTIFICATE_LABEL,
                found: block.label,
            });
        }
        x509_parser::parse_x509_certificate(&block.contents).map_err(|error| {
            PemError::InvalidCertificate {
                detail: error.to_string(),
            }
        })?;
        certificates.push(block.contents);
    }
    if certificates.is_empty() {
        return Err(PemError::NoBlock {
            expected: CERTIFICATE_LABEL,
        });
    }
    Ok(certificates)
}

/// The one private key in `bytes`: an unencrypted PKCS#8 key rcgen can sign with, re-encoded
/// canonically. Other key encodings get an error naming the conversion.
pub fn decode_private_key(bytes: &[u8]) -> Result<(PrivateKeyPem, KeyPair), PemError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(PemError::NotText);
    }
    let Some(block) = Pem::iter_from_buffer(bytes).next() else {
        return Err(PemError::NoBlock {
            expected: PRIVATE_KEY_LABEL,
        });
    };
    let block = block.map_err(|_| PemError::Malformed)?;
    if block.label != PRIVATE_KEY_LABEL {
        return Err(PemError::NotPkcs8 { found: block.label });
    }
    let key = KeyPair::try_from(block.contents.as_slice())
        .map_err(|source| PemError::InvalidKey { source })?;
    Ok((PrivateKeyPem::from_pkcs8_der(&block.contents), key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_wraps_at_64_characters() {
        let der: Vec<u8> = (0..=255u8).collect();

        let text = encode(CERTIFICATE_LABEL, &der);

        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.first(), Some(&"-----BEGIN CERTIFICATE-----"));
        assert_eq!(lines.last(), Some(&"-----END CERTIFICATE-----"));
        assert!(lines[1..lines.len() - 1].iter().all(|l| l.len() <= 64));
        assert_eq!(lines[1].len(), 64);
        assert!(text.ends_with("-----\n"));
        let block = Pem::iter_from_buffer(text.as_bytes())
            .next()
            .expect("a block")
            .expect("well formed");
        assert_eq!(block.contents, der);
    }

    #[test]
    fn a_key_is_re_encoded_to_the_same_text() {
        let key = KeyPair::generate().expect("key");
        let text = encode(PRIVATE_KEY_LABEL, &key.serialize_der());

        let (pem, parsed) = decode_private_key(text.as_bytes()).expect("decoded");

        assert_eq!(pem.expose(), text);
        assert_eq!(parsed.public_key_raw(), key.public_key_raw());
    }

    #[test]
    fn keys_other_than_pkcs8_are_refused_with_the_conversion_named() {
        let text = encode("EC PRIVATE KEY", b"whatever");

        let error = decode_private_key(text.as_bytes()).expect_err("not PKCS#8");

        assert_eq!(error.reason(), "KeyNotPkcs8");
        assert!(error.to_string().contains("openssl pkcs8 -topk8 -nocrypt"));
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(
            decode_certificates(b"nothing here").unwrap_err().reason(),
            "PemBlockMissing"
        );
        assert_eq!(
            decode_certificates(&[0xff, 0xfe]).unwrap_err().reason(),
            "PemNotText"
        );
        assert_eq!(
            decode_certificates(encode(CERTIFICATE_LABEL, b"not DER").as_bytes())
                .unwrap_err()
                .reason(),
            "CertificateInvalid"
        );
        assert_eq!(
            decode_certificates(encode(PRIVATE_KEY_LABEL, b"x").as_bytes())
                .unwrap_err()
                .reason(),
            "PemUnexpectedLabel"
        );
        assert_eq!(
            decode_private_key(b"").unwrap_err().reason(),
            "PemBlockMissing"
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let key = KeyPair::generate().expect("key");
        let pem = PrivateKeyPem::from_pkcs8_der(&key.serialize_der());

        let shown = format!("{pem:?}");

        assert!(!shown.contains("PRIVATE KEY"));
        assert_eq!(shown, "PrivateKeyPem(<redacted>)");
    }
}
