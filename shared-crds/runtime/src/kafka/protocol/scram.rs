//! The client side of a SCRAM-SHA-256 / SCRAM-SHA-512 exchange (RFC 5802, RFC 7677) as Kafka's
//! SaslAuthenticate carries it: client-first, server-first, client-final with the proof, and the
//! check of the server's signature. Pure: no I/O; `ScramClient::new` draws its nonce from the
//! system random number generator, nothing else touches the outside world.
//!
//! Kafka does not apply SASLprep to passwords (its `ScramFormatter` hashes the UTF-8 bytes as they
//! are), so neither do we: a password that SASLprep would change must still match the broker.

use std::{fmt, num::NonZeroU32};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use ring::{
    digest, hmac, pbkdf2,
    rand::{SecureRandom, SystemRandom},
};

/// Fewer iterations than this make stolen credentials cheap to brute-force; RFC 7677 and Kafka's
/// broker both refuse them, so a server asking for fewer is not to be trusted.
pub const MIN_ITERATIONS: u32 = 4096;
/// Kafka refuses to store credentials above this count; a server asking for more is either not
/// Kafka or trying to make us burn CPU.
pub const MAX_ITERATIONS: u32 = 16384;

/// The two SCRAM mechanisms Kafka offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    /// The mechanism named as in `sasl.mechanism` (`SCRAM-SHA-256`, `SCRAM-SHA-512`).
    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        match name {
            "SCRAM-SHA-256" => Some(ScramMechanism::Sha256),
            "SCRAM-SHA-512" => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    /// Kafka's name of the mechanism.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    /// `SaltedPassword := Hi(password, salt, i)`, the PBKDF2 output as long as the hash.
    pub fn salted_password(self, password: &str, salt: &[u8], iterations: NonZeroU32) -> Vec<u8> {
        let mut out = vec![0u8; self.digest().output_len()];
        pbkdf2::derive(
            self.pbkdf2(),
            iterations,
            salt,
            password.as_bytes(),
            &mut out,
        );
        out
    }

    fn hmac_sign(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac(), key), data)
            .as_ref()
            .to_vec()
    }
}

/// What went wrong in a SCRAM exchange. Messages never contain the password or derived keys.
#[derive(Debug, thiserror::Error)]
pub enum ScramError {
    #[error("generating the SCRAM client nonce failed")]
    GenerateNonce,
    #[error("the SCRAM server-first message is malformed: {detail}")]
    ParseServerFirst { detail: String },
    #[error("the SCRAM server nonce does not extend the client nonce")]
    CheckServerNonce,
    #[error(
        "the SCRAM server asks for {iterations} iterations; {MIN_ITERATIONS} to {MAX_ITERATIONS} are accepted"
    )]
    CheckIterations { iterations: u32 },
    #[error("the SCRAM server-final message is malformed: {detail}")]
    ParseServerFinal { detail: String },
    #[error("the SCRAM server ended the exchange with an error: {message}")]
    Authenticate { message: String },
    #[error("the SCRAM server signature does not match: the server does not know the credentials")]
    VerifyServerSignature,
}

impl ScramError {
    /// Stable CamelCase word for conditions, Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            ScramError::GenerateNonce => "ScramNonce",
            ScramError::ParseServerFirst { .. } => "ScramServerFirstInvalid",
            ScramError::CheckServerNonce => "ScramServerNonceInvalid",
            ScramError::CheckIterations { .. } => "ScramIterationsRefused",
            ScramError::ParseServerFinal { .. } => "ScramServerFinalInvalid",
            ScramError::Authenticate { .. } => "ScramServerError",
            ScramError::VerifyServerSignature => "ScramServerSignatureInvalid",
        }
    }
}

/// The client half of one SCRAM exchange, before the server has answered. `Debug` hides the
/// password.
pub struct ScramClient {
    mechanism: ScramMechanism,
    username: String,
    password: String,
    nonce: String,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What the client keeps between sending client-final and reading server-final: enough to check
/// the server's signature, nothing that would let anyone log in.
pub struct ScramServerCheck {
    server_key: hmac::Key,
    auth_message: String,
}

impl fmt::Debug for ScramServerCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramServerCheck").finish_non_exhaustive()
    }
}

/// RFC 5802 `saslname`: `,` and `=` would otherwise end or re-start an attribute.
fn escape_username(username: &str) -> String {
    username.replace('=', "=3D").replace(',', "=2C")
}

/// Splits a SCRAM message into its `k=value` attributes, in order.
fn attributes(message: &str) -> Result<Vec<(char, &str)>, String> {
    message
        .split(',')
        .map(|attr| {
            let mut chars = attr.chars();
            match (chars.next(), chars.next()) {
                (Some(k), Some('=')) if k.is_ascii_alphabetic() => Ok((k, &attr[2..])),
                _ => Err(format!("attribute {attr:?} is not of the form k=value")),
            }
        })
        .collect()
}

impl ScramClient {
    /// A new exchange with a fresh random nonce.
    pub fn new(
        mechanism: ScramMechanism,
        username: &str,
        password: &str,
    ) -> Result<ScramClient, ScramError> {
        // 24 random bytes give a 32-character base64 nonce: printable and free of ','.
        let mut raw = [0u8; 24];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| ScramError::GenerateNonce)?;
        Ok(ScramClient::with_nonce(
            mechanism,
            username,
            password,
            &BASE64.encode(raw),
        ))
    }

    /// An exchange with a given nonce: for test vectors only, a fixed nonce allows replay.
    pub fn with_nonce(
        mechanism: ScramMechanism,
        username: &str,
        password: &str,
        nonce: &str,
    ) -> ScramClient {
        ScramClient {
            mechanism,
            username: username.to_string(),
            password: password.to_string(),
            nonce: nonce.to_string(),
        }
    }

    fn client_first_bare(&self) -> String {
        format!("n={},r={}", escape_username(&self.username), self.nonce)
    }

    /// The client-first message: GS2 header `n,,` (no channel binding, no authorisation identity)
    /// then the bare message.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare())
    }

    /// Reads server-first and answers with client-final (carrying the proof), plus what is needed
    /// to check server-final.
    pub fn client_final(
        &self,
        server_first: &str,
    ) -> Result<(String, ScramServerCheck), ScramError> {
        let parse = |detail: String| ScramError::ParseServerFirst { detail };
        let attrs = attributes(server_first).map_err(parse)?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for (key, value) in attrs {
            match key {
                // RFC 5802: a mandatory extension we do not know means we must give up.
                'm' => return Err(parse("it demands a mandatory extension".into())),
                'r' if nonce.is_none() => nonce = Some(value),
                's' if salt.is_none() => salt = Some(value),
                'i' if iterations.is_none() => iterations = Some(value),
                'r' | 's' | 'i' => return Err(parse(format!("attribute {key} appears twice"))),
                _ => {} // optional extensions are ignored, as RFC 5802 allows
            }
        }
        let nonce = nonce.ok_or_else(|| parse("it has no nonce (r=)".into()))?;
        let salt = salt.ok_or_else(|| parse("it has no salt (s=)".into()))?;
        let iterations =
            iterations.ok_or_else(|| parse("it has no iteration count (i=)".into()))?;
        if !(nonce.starts_with(&self.nonce) && nonce.len() > self.nonce.len()) {
            return Err(ScramError::CheckServerNonce);
        }
        let salt = BASE64
            .decode(salt)
            .map_err(|e| parse(format!("the salt is not base64 ({e})")))?;
        let iterations: u32 = iterations.parse().map_err(|_| {
            parse(format!(
                "the iteration count {iterations:?} is not a number"
            ))
        })?;
        let checked = NonZeroU32::new(iterations)
            .filter(|_| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations))
            .ok_or(ScramError::CheckIterations { iterations })?;

        let m = self.mechanism;
        let salted = m.salted_password(&self.password, &salt, checked);
        let client_key = m.hmac_sign(&salted, b"Client Key");
        let stored_key = digest::digest(m.digest(), &client_key);
        // "biws" is base64("n,,"): the GS2 header repeated, as no channel binding is used.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!(
            "{},{server_first},{without_proof}",
            self.client_first_bare()
        );
        let client_signature = m.hmac_sign(stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac::Key::new(m.hmac(), &m.hmac_sign(&salted, b"Server Key"));
        Ok((
            format!("{without_proof},p={}", BASE64.encode(proof)),
            ScramServerCheck {
                server_key,
                auth_message,
            },
        ))
    }
}

impl ScramServerCheck {
    /// Checks server-final: the server must prove it knows the credentials too, otherwise anyone
    /// in the middle could accept our login.
    pub fn verify(&self, server_final: &str) -> Result<(), ScramError> {
        let parse = |detail: String| ScramError::ParseServerFinal { detail };
        let attrs = attributes(server_final).map_err(parse)?;
        match attrs.first() {
            Some(('e', message)) => Err(ScramError::Authenticate {
                message: message.to_string(),
            }),
            Some(('v', signature)) => {
                let signature = BASE64
                    .decode(signature)
                    .map_err(|e| parse(format!("the signature is not base64 ({e})")))?;
                // hmac::verify compares in constant time.
                hmac::verify(&self.server_key, self.auth_message.as_bytes(), &signature)
                    .map_err(|_| ScramError::VerifyServerSignature)
            }
            _ => Err(parse("it carries neither v= nor e=".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7677 section 3: the SCRAM-SHA-256 example exchange.
    const RFC_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const RFC_SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const RFC_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                    p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const RFC_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc_client() -> ScramClient {
        ScramClient::with_nonce(ScramMechanism::Sha256, "user", "pencil", RFC_NONCE)
    }

    #[test]
    fn rfc7677_client_first_matches() {
        assert_eq!(
            rfc_client().client_first(),
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
        );
    }

    #[test]
    fn rfc7677_client_final_carries_the_expected_proof() {
        let (client_final, _) = rfc_client().client_final(RFC_SERVER_FIRST).unwrap();
        assert_eq!(client_final, RFC_CLIENT_FINAL);
    }

    #[test]
    fn rfc7677_server_signature_is_accepted() {
        let (_, check) = rfc_client().client_final(RFC_SERVER_FIRST).unwrap();
        check.verify(RFC_SERVER_FINAL).unwrap();
    }

    #[test]
    fn a_forged_server_signature_is_refused() {
        let (_, check) = rfc_client().client_final(RFC_SERVER_FIRST).unwrap();
        // Same length, first byte differs.
        let forged = "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
        assert!(matches!(
            check.verify(forged),
            Err(ScramError::VerifyServerSignature)
        ));
    }

    #[test]
    fn a_server_error_is_reported_with_its_message() {
        let (_, check) = rfc_client().client_final(RFC_SERVER_FIRST).unwrap();
        match check.verify("e=invalid-proof") {
            Err(ScramError::Authenticate { message }) => assert_eq!(message, "invalid-proof"),
            other => panic!("expected a server error, got {other:?}"),
        }
    }

    #[test]
    fn too_few_iterations_are_refused() {
        let server_first = "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095";
        let err = rfc_client().client_final(server_first).unwrap_err();
        assert!(
            matches!(err, ScramError::CheckIterations { iterations: 4095 }),
            "{err:?}"
        );
        assert_eq!(err.reason(), "ScramIterationsRefused");
    }

    #[test]
    fn too_many_iterations_are_refused() {
        let server_first = "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=100000000";
        let err = rfc_client().client_final(server_first).unwrap_err();
        assert!(
            matches!(
                err,
                ScramError::CheckIterations {
                    iterations: 100_000_000
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_server_nonce_that_does_not_extend_ours_is_refused() {
        let server_first = "r=someoneElsesNonce123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let err = rfc_client().client_final(server_first).unwrap_err();
        assert!(matches!(err, ScramError::CheckServerNonce), "{err:?}");
        // The server must add its own part: echoing ours alone is refused too.
        let echoed = format!("r={RFC_NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
        assert!(matches!(
            rfc_client().client_final(&echoed),
            Err(ScramError::CheckServerNonce)
        ));
    }

    #[test]
    fn malformed_server_first_messages_are_refused() {
        for bad in [
            "",
            "r=rOprNGfwEbeRWgbNEkqOx,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==",
            "m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOx,s=not base64!,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=many",
        ] {
            let err = rfc_client().client_final(bad).unwrap_err();
            assert!(
                matches!(err, ScramError::ParseServerFirst { .. }),
                "{bad:?} gave {err:?}"
            );
        }
    }

    #[test]
    fn usernames_with_separators_are_escaped() {
        let c = ScramClient::with_nonce(ScramMechanism::Sha512, "a=b,c", "pw", "n0nce");
        assert_eq!(c.client_first(), "n,,n=a=3Db=2Cc,r=n0nce");
    }

    #[test]
    fn debug_hides_the_password() {
        let c = ScramClient::with_nonce(ScramMechanism::Sha512, "u", "hunter2-secret", "n");
        assert!(!format!("{c:?}").contains("hunter2-secret"));
    }

    /// The server side of SCRAM as RFC 5802 section 3 describes it, from the stored credentials a
    /// broker keeps (StoredKey, ServerKey), not from the password: it recovers ClientKey from the
    /// proof and checks that its hash is StoredKey.
    struct TestServer {
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        iterations: u32,
        stored_key: Vec<u8>,
        server_key: Vec<u8>,
    }

    impl TestServer {
        fn new(mechanism: ScramMechanism, password: &str) -> TestServer {
            let salt = b"a fixed test salt".to_vec();
            let iterations = 4096;
            let salted =
                mechanism.salted_password(password, &salt, NonZeroU32::new(iterations).unwrap());
            let client_key = mechanism.hmac_sign(&salted, b"Client Key");
            TestServer {
                mechanism,
                stored_key: digest::digest(mechanism.digest(), &client_key)
                    .as_ref()
                    .to_vec(),
                server_key: mechanism.hmac_sign(&salted, b"Server Key"),
                salt,
                iterations,
            }
        }

        fn server_first(&self, client_first: &str) -> (String, String) {
            let bare = client_first.strip_prefix("n,,").unwrap().to_string();
            let client_nonce = bare.split(',').find_map(|a| a.strip_prefix("r=")).unwrap();
            let first = format!(
                "r={client_nonce}ServerPart,s={},i={}",
                BASE64.encode(&self.salt),
                self.iterations
            );
            (bare, first)
        }

        fn server_final(
            &self,
            bare: &str,
            first: &str,
            client_final: &str,
        ) -> Result<String, &'static str> {
            let (without_proof, proof) = client_final.rsplit_once(",p=").unwrap();
            let auth_message = format!("{bare},{first},{without_proof}");
            let signature = self
                .mechanism
                .hmac_sign(&self.stored_key, auth_message.as_bytes());
            let proof = BASE64.decode(proof).unwrap();
            let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
            if digest::digest(self.mechanism.digest(), &client_key).as_ref()
                != self.stored_key.as_slice()
            {
                return Err("invalid proof");
            }
            let server_signature = self
                .mechanism
                .hmac_sign(&self.server_key, auth_message.as_bytes());
            Ok(format!("v={}", BASE64.encode(server_signature)))
        }
    }

    #[test]
    fn sha512_round_trip_with_a_server_that_knows_only_stored_keys() {
        let server = TestServer::new(ScramMechanism::Sha512, "correct horse");
        let client = ScramClient::new(ScramMechanism::Sha512, "alice", "correct horse").unwrap();
        let (bare, first) = server.server_first(&client.client_first());
        let (client_final, check) = client.client_final(&first).unwrap();
        let server_final = server.server_final(&bare, &first, &client_final).unwrap();
        check.verify(&server_final).unwrap();
        // A 64-byte proof: SHA-512 really was used.
        let proof = client_final.rsplit_once(",p=").unwrap().1;
        assert_eq!(BASE64.decode(proof).unwrap().len(), 64);
    }

    #[test]
    fn sha512_server_refuses_a_wrong_password() {
        let server = TestServer::new(ScramMechanism::Sha512, "correct horse");
        let client = ScramClient::new(ScramMechanism::Sha512, "alice", "battery staple").unwrap();
        let (bare, first) = server.server_first(&client.client_first());
        let (client_final, _) = client.client_final(&first).unwrap();
        assert_eq!(
            server.server_final(&bare, &first, &client_final),
            Err("invalid proof")
        );
    }

    #[test]
    fn a_server_with_other_credentials_cannot_forge_its_signature() {
        // The client knows "pw"; an impostor server holds keys for another password.
        let impostor = TestServer::new(ScramMechanism::Sha512, "other");
        let client = ScramClient::new(ScramMechanism::Sha512, "alice", "pw").unwrap();
        let (bare, first) = impostor.server_first(&client.client_first());
        let (client_final, check) = client.client_final(&first).unwrap();
        let without_proof = client_final.rsplit_once(",p=").unwrap().0;
        let auth_message = format!("{bare},{first},{without_proof}");
        let forged = impostor
            .mechanism
            .hmac_sign(&impostor.server_key, auth_message.as_bytes());
        let err = check
            .verify(&format!("v={}", BASE64.encode(forged)))
            .unwrap_err();
        assert!(matches!(err, ScramError::VerifyServerSignature));
    }

    #[test]
    fn fresh_nonces_differ() {
        let a = ScramClient::new(ScramMechanism::Sha256, "u", "p")
            .unwrap()
            .client_first();
        let b = ScramClient::new(ScramMechanism::Sha256, "u", "p")
            .unwrap()
            .client_first();
        assert_ne!(a, b);
    }

    #[test]
    fn mechanism_names_round_trip() {
        for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            assert_eq!(ScramMechanism::from_name(m.name()), Some(m));
        }
        assert_eq!(ScramMechanism::from_name("PLAIN"), None);
    }
}
