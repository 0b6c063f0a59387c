//! SCRAM-SHA-512 passwords: which password a user gets, when Kafka's credential must be
//! rewritten, the salted password Kafka stores, and the JAAS line clients use. Pure: no I/O;
//! randomness comes from the `SecureRandom` the caller passes in.
//!
//! Password-bearing types redact themselves in `Debug`, so a stray `{:?}` in a log line or an
//! error chain never leaks a credential.

use std::fmt;
use std::num::NonZeroU32;

use ring::rand::SecureRandom;

/// Length of a generated password. 32 characters from 62 symbols is about 190 bits.
pub const GENERATED_PASSWORD_LENGTH: usize = 32;

/// Iterations of the SCRAM salted password: 4096 is both Kafka's minimum for SCRAM-SHA-512 and
/// what Kafka's own tools use by default.
pub const SCRAM_ITERATIONS: NonZeroU32 = NonZeroU32::new(4096).expect("4096 is not zero");

/// Length of a generated SCRAM salt, in bytes.
pub const SCRAM_SALT_LENGTH: usize = 32;

/// Generated passwords use only letters and digits, so they survive shells, properties files
/// and JAAS lines without quoting.
const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Bytes at or above this would make some symbols likelier than others (256 % 62 != 0), so
/// they are drawn again rather than folded in.
const UNBIASED_BYTE_LIMIT: u8 = (256 / ALPHANUMERIC.len() * ALPHANUMERIC.len()) as u8;

/// A user's password. `Debug` never shows it; read it with [`Password::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The password itself, for the Secret, the JAAS line and the salted hash only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// What the caller found under `spec.authentication.password.valueFrom.secretKeyRef`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ObservedPasswordSecret<'a> {
    SecretMissing,
    KeyMissing,
    Value(&'a [u8]),
}

impl fmt::Debug for ObservedPasswordSecret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SecretMissing => f.write_str("SecretMissing"),
            Self::KeyMissing => f.write_str("KeyMissing"),
            Self::Value(_) => f.write_str("Value(<redacted>)"),
        }
    }
}

/// A password the user keeps in a Secret of their own, and what was found there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordReference<'a> {
    pub secret_name: &'a str,
    pub key: &'a str,
    pub observed: ObservedPasswordSecret<'a>,
}

/// Everything a SCRAM user's password may come from, in order of precedence.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PasswordSource<'a> {
    /// Set when the KafkaUser names its own password Secret; it then always wins.
    pub reference: Option<PasswordReference<'a>>,
    /// `password` in the user Secret the operator wrote before, if any.
    pub user_secret_password: Option<&'a [u8]>,
}

impl fmt::Debug for PasswordSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordSource")
            .field("reference", &self.reference)
            .field(
                "user_secret_password",
                &self.user_secret_password.map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Where the chosen password came from, for events and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordOrigin {
    ReferencedSecret,
    UserSecret,
    Generated,
}

/// The password a user gets on this reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChosenPassword {
    pub password: Password,
    pub origin: PasswordOrigin,
}

/// Why no password could be chosen. The referenced-Secret failures are the user's to fix, so
/// they wait for a change rather than retry.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error(
        "Secret {secret_name} named in spec.authentication.password.valueFrom.secretKeyRef does not exist; create it with the password under key {key}"
    )]
    PasswordSecretNotFound { secret_name: String, key: String },
    #[error(
        "Secret {secret_name} named in spec.authentication.password.valueFrom.secretKeyRef has no key {key}; add the password under that key or fix the reference"
    )]
    PasswordKeyNotFound { secret_name: String, key: String },
    #[error(
        "key {key} of Secret {secret_name} named in spec.authentication.password.valueFrom.secretKeyRef is empty; put a non-empty password there"
    )]
    PasswordEmpty { secret_name: String, key: String },
    #[error(
        "key {key} of Secret {secret_name} named in spec.authentication.password.valueFrom.secretKeyRef is not valid UTF-8 text; Kafka passwords must be text"
    )]
    PasswordNotUtf8 { secret_name: String, key: String },
    #[error("the random number source failed while generating a password or salt")]
    RandomSourceFailed,
}

impl PasswordError {
    /// Stable CamelCase word for condition reasons, Event reasons and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::PasswordSecretNotFound { .. } => "PasswordSecretNotFound",
            Self::PasswordKeyNotFound { .. } => "PasswordKeyNotFound",
            Self::PasswordEmpty { .. } => "PasswordEmpty",
            Self::PasswordNotUtf8 { .. } => "PasswordNotUtf8",
            Self::RandomSourceFailed => "RandomSourceFailed",
        }
    }

    /// True when the KafkaUser (or the Secret it names) must change before a retry can succeed.
    pub fn is_invalid_user_input(&self) -> bool {
        !matches!(self, Self::RandomSourceFailed)
    }
}

/// Chooses the password: the referenced Secret's value, else the user Secret's existing one,
/// else a newly generated one.
///
/// A referenced password is used exactly as stored (a trailing newline included), because
/// clients read the same Secret and must present the same bytes. A user Secret whose password
/// is empty or not text is treated as having none.
pub fn choose_password(
    source: &PasswordSource<'_>,
    rng: &dyn SecureRandom,
) -> Result<ChosenPassword, PasswordError> {
    if let Some(reference) = &source.reference {
        let secret_name = reference.secret_name.to_owned();
        let key = reference.key.to_owned();
        let value = match reference.observed {
            ObservedPasswordSecret::SecretMissing => {
                return Err(PasswordError::PasswordSecretNotFound { secret_name, key });
            }
            ObservedPasswordSecret::KeyMissing => {
                return Err(PasswordError::PasswordKeyNotFound { secret_name, key });
            }
            ObservedPasswordSecret::Value([]) => {
                return Err(PasswordError::PasswordEmpty { secret_name, key });
            }
            ObservedPasswordSecret::Value(value) => value,
        };
        let text = std::str::from_utf8(value)
            .map_err(|_| PasswordError::PasswordNotUtf8 { secret_name, key })?;
        return Ok(ChosenPassword {
            password: Password::new(text),
            origin: PasswordOrigin::ReferencedSecret,
        });
    }
    if let Some(existing) = source
        .user_secret_password
        .filter(|value| !value.is_empty())
        .and_then(|value| std::str::from_utf8(value).ok())
    {
        return Ok(ChosenPassword {
            password: Password::new(existing),
            origin: PasswordOrigin::UserSecret,
        });
    }
    Ok(ChosenPassword {
        password: generate_password(rng)?,
        origin: PasswordOrigin::Generated,
    })
}

/// A new password of [`GENERATED_PASSWORD_LENGTH`] letters and digits, uniformly drawn.
pub fn generate_password(rng: &dyn SecureRandom) -> Result<Password, PasswordError> {
    let mut password = String::with_capacity(GENERATED_PASSWORD_LENGTH);
    let mut random = [0u8; GENERATED_PASSWORD_LENGTH * 2];
    while password.len() < GENERATED_PASSWORD_LENGTH {
        rng.fill(&mut random)
            .map_err(|_| PasswordError::RandomSourceFailed)?;
        append_alphanumeric(&random, GENERATED_PASSWORD_LENGTH, &mut password);
    }
    Ok(Password(password))
}

/// Maps random bytes onto [`ALPHANUMERIC`] until `password` holds `length` symbols, skipping
/// bytes that would bias the draw.
fn append_alphanumeric(random: &[u8], length: usize, password: &mut String) {
    for &byte in random {
        if password.len() == length {
            break;
        }
        if byte < UNBIASED_BYTE_LIMIT {
            password.push(char::from(
                ALPHANUMERIC[usize::from(byte) % ALPHANUMERIC.len()],
            ));
        }
    }
}

/// Whether Kafka's SCRAM credential must be (re)written.
///
/// Only when the password differs from the one the user Secret holds, or Kafka has no
/// credential for the user: hashing runs 4096 rounds of HMAC, and rewriting an unchanged
/// credential on every reconcile would also churn Kafka's metadata log.
///
/// Because this trusts the user Secret as the record of what Kafka holds, the Secret must be
/// written only after the upsert succeeded; otherwise a failed upsert would look done forever.
pub fn needs_scram_upsert(
    previous_password_in_user_secret: Option<&[u8]>,
    chosen: &Password,
    kafka_has_credential: bool,
) -> bool {
    !kafka_has_credential || previous_password_in_user_secret != Some(chosen.expose().as_bytes())
}

/// A SCRAM-SHA-512 credential as Kafka stores it (AlterUserScramCredentials).
///
/// The salted password lets anyone log in as the user, so `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub iterations: NonZeroU32,
    pub salt: Vec<u8>,
    pub salted_password: Vec<u8>,
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .field("salt_len", &self.salt.len())
            .field("salted_password", &"<redacted>")
            .finish()
    }
}

/// A new random salt of [`SCRAM_SALT_LENGTH`] bytes.
pub fn new_scram_salt(rng: &dyn SecureRandom) -> Result<Vec<u8>, PasswordError> {
    let mut salt = vec![0u8; SCRAM_SALT_LENGTH];
    rng.fill(&mut salt)
        .map_err(|_| PasswordError::RandomSourceFailed)?;
    Ok(salt)
}

/// The SCRAM-SHA-512 salted password: `Hi(password, salt, iterations)` of RFC 5802, which is
/// PBKDF2 with HMAC-SHA-512 and one hash-length (64-byte) block.
///
/// The password's UTF-8 bytes are used without SASLprep, as Kafka's broker and Java client do;
/// normalising here would make the stored hash disagree with what clients compute.
pub fn scram_sha512_credential(
    password: &Password,
    salt: &[u8],
    iterations: NonZeroU32,
) -> ScramCredential {
    let mut salted_password = vec![0u8; ring::digest::SHA512_OUTPUT_LEN];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA512,
        iterations,
        salt,
        password.expose().as_bytes(),
        &mut salted_password,
    );
    ScramCredential {
        iterations,
        salt: salt.to_vec(),
        salted_password,
    }
}

/// The `sasl.jaas.config` line clients use for SCRAM. It holds the password, so `Debug`
/// redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct JaasConfig(String);

impl JaasConfig {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for JaasConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JaasConfig(<redacted>)")
    }
}

/// `ScramLoginModule required username="…" password="…";` with both values quoted so Kafka's
/// JAAS parser reads them back unchanged.
pub fn jaas_config(username: &str, password: &Password) -> JaasConfig {
    JaasConfig(format!(
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{}\" password=\"{}\";",
        escape_jaas_value(username),
        escape_jaas_value(password.expose()),
    ))
}

/// Kafka parses JAAS options with Java's `StreamTokenizer`: inside quotes a backslash escapes
/// the next character and a raw line break ends the string, so those are the characters to
/// escape.
fn escape_jaas_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    fn referenced(observed: ObservedPasswordSecret<'_>) -> PasswordSource<'_> {
        PasswordSource {
            reference: Some(PasswordReference {
                secret_name: "alice-password",
                key: "pw",
                observed,
            }),
            user_secret_password: Some(b"old-password"),
        }
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("valid hex"))
            .collect()
    }

    #[test]
    fn the_referenced_secret_wins_over_the_user_secret() {
        let chosen = choose_password(
            &referenced(ObservedPasswordSecret::Value(b"from-ref")),
            &SystemRandom::new(),
        )
        .expect("a value is present");

        assert_eq!(chosen.password.expose(), "from-ref");
        assert_eq!(chosen.origin, PasswordOrigin::ReferencedSecret);
    }

    #[test]
    fn a_missing_referenced_secret_is_an_error_naming_it() {
        let error = choose_password(
            &referenced(ObservedPasswordSecret::SecretMissing),
            &SystemRandom::new(),
        )
        .expect_err("the Secret is missing");

        assert_eq!(error.reason(), "PasswordSecretNotFound");
        assert!(error.is_invalid_user_input());
        let message = error.to_string();
        assert!(message.contains("alice-password"), "{message}");
        assert!(message.contains("pw"), "{message}");
    }

    #[test]
    fn a_missing_key_is_an_error_naming_secret_and_key() {
        let error = choose_password(
            &referenced(ObservedPasswordSecret::KeyMissing),
            &SystemRandom::new(),
        )
        .expect_err("the key is missing");

        assert_eq!(error.reason(), "PasswordKeyNotFound");
        let message = error.to_string();
        assert!(message.contains("Secret alice-password"), "{message}");
        assert!(message.contains("key pw"), "{message}");
    }

    #[test]
    fn an_empty_referenced_value_is_an_error() {
        let error = choose_password(
            &referenced(ObservedPasswordSecret::Value(b"")),
            &SystemRandom::new(),
        )
        .expect_err("the value is empty");

        assert_eq!(error.reason(), "PasswordEmpty");
        assert!(error.to_string().contains("alice-password"));
    }

    #[test]
    fn a_binary_referenced_value_is_an_error() {
        let error = choose_password(
            &referenced(ObservedPasswordSecret::Value(&[0xff, 0xfe])),
            &SystemRandom::new(),
        )
        .expect_err("the value is not UTF-8");

        assert_eq!(error.reason(), "PasswordNotUtf8");
    }

    #[test]
    fn without_a_reference_the_user_secret_password_is_kept() {
        let source = PasswordSource {
            reference: None,
            user_secret_password: Some(b"kept"),
        };

        let chosen = choose_password(&source, &SystemRandom::new()).expect("kept");

        assert_eq!(chosen.password.expose(), "kept");
        assert_eq!(chosen.origin, PasswordOrigin::UserSecret);
    }

    #[test]
    fn without_any_password_a_new_one_is_generated() {
        for user_secret_password in [None, Some(&b""[..])] {
            let source = PasswordSource {
                reference: None,
                user_secret_password,
            };

            let chosen = choose_password(&source, &SystemRandom::new()).expect("generated");

            assert_eq!(chosen.origin, PasswordOrigin::Generated);
            assert_eq!(chosen.password.expose().len(), GENERATED_PASSWORD_LENGTH);
        }
    }

    #[test]
    fn generated_passwords_are_alphanumeric_and_differ() {
        let rng = SystemRandom::new();

        let first = generate_password(&rng).expect("random");
        let second = generate_password(&rng).expect("random");

        assert_eq!(first.expose().len(), 32);
        assert!(first.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(first, second);
    }

    #[test]
    fn random_bytes_map_onto_the_alphabet_and_biasing_bytes_are_skipped() {
        let mut password = String::new();

        append_alphanumeric(&[0, 248, 25, 26, 255, 61, 62, 247], 10, &mut password);

        // 248 and 255 are skipped; 62 wraps to 'A'; 247 = 3 * 62 + 61 maps to '9'.
        assert_eq!(password, "AZa9A9");
    }

    #[test]
    fn appending_stops_at_the_requested_length() {
        let mut password = String::new();

        append_alphanumeric(&[1, 2, 3, 4], 2, &mut password);

        assert_eq!(password, "BC");
    }

    #[test]
    fn scram_upsert_only_when_the_password_changed_or_kafka_lacks_it() {
        let chosen = Password::new("same");

        assert!(!needs_scram_upsert(Some(b"same"), &chosen, true));
        assert!(needs_scram_upsert(Some(b"same"), &chosen, false));
        assert!(needs_scram_upsert(Some(b"other"), &chosen, true));
        assert!(needs_scram_upsert(None, &chosen, true));
    }

    #[test]
    fn scram_salted_password_matches_pbkdf2_hmac_sha512() {
        // Expected values from Python's hashlib.pbkdf2_hmac('sha512', password, salt, 4096).
        let credential = scram_sha512_credential(&Password::new("pw"), b"salt", SCRAM_ITERATIONS);
        assert_eq!(
            credential.salted_password,
            hex(
                "e010097e86661ec7326a829a0c03ed85ca7e8904690363b0fdf77e9a73fef090\
                 91db0dd6c1770a017915cf6c3eb3454106243ab73d26a8eb0a7f9dd212d91e09"
            )
        );
        assert_eq!(credential.salt, b"salt");
        assert_eq!(credential.iterations.get(), 4096);

        // RFC 7677's example password and salt, hashed with SHA-512 instead of SHA-256.
        let salt = hex("5b6d99689d12358eeca04b141236fa81");
        let credential = scram_sha512_credential(&Password::new("pencil"), &salt, SCRAM_ITERATIONS);
        assert_eq!(
            credential.salted_password,
            hex(
                "f16efe1be67f1d09502ebd5ed9262fddffba5a377ab4f0b687e5ed5ba0f50686\
                 b8a4ae166476da8ab3b951d2fa9238b63998f45461bc33a464814949cec9631d"
            )
        );
    }

    #[test]
    fn scram_iterations_change_the_salted_password() {
        let salt = hex("5b6d99689d12358eeca04b141236fa81");
        let iterations = NonZeroU32::new(8192).expect("not zero");

        let credential = scram_sha512_credential(&Password::new("pencil"), &salt, iterations);

        assert_eq!(
            credential.salted_password,
            hex(
                "fa259bd2f801c0e8f7c699de3c0d112f1af47a38b1d0d6af5a8cc7f473d90061\
                 b1b81c0a1402d14c6caedf77e7055f944f0fd19c776e47e15a485dc733b49494"
            )
        );
    }

    #[test]
    fn new_salts_have_the_configured_length_and_differ() {
        let rng = SystemRandom::new();

        let first = new_scram_salt(&rng).expect("random");
        let second = new_scram_salt(&rng).expect("random");

        assert_eq!(first.len(), SCRAM_SALT_LENGTH);
        assert_ne!(first, second);
    }

    #[test]
    fn jaas_config_quotes_username_and_password() {
        let config = jaas_config("alice", &Password::new("s3cret"));

        assert_eq!(
            config.expose(),
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"s3cret\";"
        );
    }

    #[test]
    fn jaas_config_escapes_quotes_backslashes_and_line_breaks() {
        let config = jaas_config("alice", &Password::new("a\"b\\c\nd"));

        assert!(
            config.expose().ends_with(r#"password="a\"b\\c\nd";"#),
            "{}",
            config.expose()
        );
    }

    #[test]
    fn debug_output_never_contains_the_password() {
        let password = Password::new("hunter2-very-secret");
        let credential = scram_sha512_credential(&password, b"salt", SCRAM_ITERATIONS);
        let chosen = ChosenPassword {
            password: password.clone(),
            origin: PasswordOrigin::Generated,
        };
        let source = PasswordSource {
            reference: Some(PasswordReference {
                secret_name: "s",
                key: "k",
                observed: ObservedPasswordSecret::Value(b"hunter2-very-secret"),
            }),
            user_secret_password: Some(b"hunter2-very-secret"),
        };
        let salted_fragment = format!("{:?}", &credential.salted_password[..6]);
        let salted_fragment = salted_fragment.trim_matches(['[', ']']);

        for shown in [
            format!("{password:?}"),
            format!("{chosen:?}"),
            format!("{source:?}"),
            format!("{:?}", jaas_config("alice", &password)),
            format!("{credential:?}"),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(!shown.contains(salted_fragment), "{shown}");
            assert!(shown.contains("redacted"), "{shown}");
        }
    }
}
