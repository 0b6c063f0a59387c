//! Who a KafkaUser is inside Kafka: the ACL principal, the quota entity and the username shown
//! in status, all derived from the authentication type. Pure: no I/O.

/// How a KafkaUser authenticates (`spec.authentication.type`, or none at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Authentication {
    /// `scram-sha-512`: the operator manages a SCRAM-SHA-512 credential.
    ScramSha512,
    /// `tls`: the operator issues a client certificate signed by the clients CA.
    Tls,
    /// `tls-external`: the client brings a certificate with subject `CN=<name>`; the operator
    /// manages only ACLs and quotas.
    TlsExternal,
    /// No `spec.authentication`: the user is authenticated some other way (OAuth, for
    /// instance) and the operator manages only ACLs and quotas.
    None,
}

impl Authentication {
    /// True when Kafka sees this user through a certificate, so its name is a distinguished name.
    pub fn uses_certificate(self) -> bool {
        matches!(self, Self::Tls | Self::TlsExternal)
    }
}

/// The name Kafka knows the user by, which the operator reports as `status.username`.
///
/// Certificate users are `CN=<name>` because Kafka's default principal builder turns the
/// certificate subject into the RFC 2253 string of its distinguished name, and our certificates
/// carry nothing but the common name. The same string is the user entity of client quotas.
pub fn username(authentication: Authentication, kafka_user_name: &str) -> String {
    if authentication.uses_certificate() {
        format!("CN={kafka_user_name}")
    } else {
        kafka_user_name.to_owned()
    }
}

/// The principal ACL bindings are written for: `User:` followed by [`username`].
pub fn kafka_principal(authentication: Authentication, kafka_user_name: &str) -> String {
    format!("User:{}", username(authentication, kafka_user_name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(Authentication::ScramSha512, "alice", "User:alice")]
    #[case(Authentication::None, "alice", "User:alice")]
    #[case(Authentication::Tls, "alice", "User:CN=alice")]
    #[case(Authentication::TlsExternal, "alice", "User:CN=alice")]
    fn principal_follows_the_authentication_type(
        #[case] authentication: Authentication,
        #[case] name: &str,
        #[case] expected: &str,
    ) {
        assert_eq!(kafka_principal(authentication, name), expected);
    }

    #[rstest]
    #[case(Authentication::ScramSha512, "bob", "bob")]
    #[case(Authentication::None, "bob", "bob")]
    #[case(Authentication::Tls, "bob", "CN=bob")]
    #[case(Authentication::TlsExternal, "bob", "CN=bob")]
    fn username_for_status_matches_the_principal_without_its_type(
        #[case] authentication: Authentication,
        #[case] name: &str,
        #[case] expected: &str,
    ) {
        assert_eq!(username(authentication, name), expected);
        assert_eq!(
            kafka_principal(authentication, name),
            format!("User:{expected}")
        );
    }
}
