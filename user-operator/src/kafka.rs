//! The Kafka side of the user operator: one batched read of every ACL, SCRAM credential and
//! user quota (three requests however many users there are), cached between full
//! reconciliations and updated with the operator's own successful writes; and batched writes
//! (one request per API per pass) with per-user outcomes.
//! May touch: Kafka, through `oxbow_runtime`'s admin client and protocol client.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Instant,
};

use oxbow_runtime::kafka::{
    admin::{self as rt, AdminError, AdminMetrics, KafkaAdmin},
    protocol::{KafkaProtocolClient, QuotaChange, QuotaError, UserQuotas},
};

use crate::{convert, plan::acl::AclBinding};

/// Why Kafka did not do what was asked for a user: stable reason word and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: String,
    pub message: String,
    /// The user's SCRAM credential was not written, so Kafka may not hold the planned password
    /// (an ACL or quota refused leaves the credential in place).
    pub credential: bool,
    /// Kafka refused what was asked (see [`refusal_is_lasting`]): asking again will not help
    /// until the KafkaUser or Kafka's configuration changes.
    pub lasting: bool,
}

/// Whether a Kafka error code refuses the request itself rather than reporting a passing
/// condition (a timeout, a controller moving, a broker starting): an invalid value
/// (`INVALID_REQUEST`, `INVALID_CONFIG`, `POLICY_VIOLATION`, `UNACCEPTABLE_CREDENTIAL`), a
/// mechanism or request the cluster does not support, or missing permissions of the operator.
pub fn refusal_is_lasting(code: i32) -> bool {
    const CLUSTER_AUTHORIZATION_FAILED: i32 = 31;
    const UNSUPPORTED_SASL_MECHANISM: i32 = 33;
    const UNSUPPORTED_VERSION: i32 = 35;
    const INVALID_CONFIG: i32 = 40;
    const INVALID_REQUEST: i32 = 42;
    const POLICY_VIOLATION: i32 = 44;
    const UNACCEPTABLE_CREDENTIAL: i32 = 93;
    matches!(
        code,
        CLUSTER_AUTHORIZATION_FAILED
            | UNSUPPORTED_SASL_MECHANISM
            | UNSUPPORTED_VERSION
            | INVALID_CONFIG
            | INVALID_REQUEST
            | POLICY_VIOLATION
            | UNACCEPTABLE_CREDENTIAL
    )
}

impl Failure {
    fn admin(e: &AdminError) -> Failure {
        Failure {
            reason: e.reason().to_owned(),
            message: match e.kafka_failure() {
                Some(f) => f.to_string(),
                None => e.to_string(),
            },
            credential: false,
            lasting: e
                .kafka_failure()
                .is_some_and(|f| refusal_is_lasting(f.code)),
        }
    }
    fn credential(e: &AdminError) -> Failure {
        Failure {
            credential: true,
            ..Failure::admin(e)
        }
    }
    fn quota(e: &QuotaError) -> Failure {
        Failure {
            reason: e.reason().to_owned(),
            message: e.to_string(),
            credential: false,
            lasting: e
                .kafka_error()
                .is_some_and(|k| refusal_is_lasting(i32::from(k.code))),
        }
    }
}

/// What Kafka holds for users, as last read or written by this operator.
#[derive(Debug, Clone, Default)]
pub struct UsersView {
    /// ACL bindings by principal (`User:alice`, `User:CN=bob`).
    pub acls: BTreeMap<String, BTreeSet<AclBinding>>,
    /// Users with a SCRAM-SHA-512 credential.
    pub scram: BTreeSet<String>,
    /// Quotas by user entity name.
    pub quotas: UserQuotas,
}

impl UsersView {
    /// Every Kafka user name the view knows (ACL principals of type `User`, SCRAM users, quota
    /// entities).
    pub fn usernames(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = self
            .acls
            .keys()
            .filter_map(|p| p.strip_prefix("User:"))
            .map(str::to_owned)
            .collect();
        names.extend(self.scram.iter().cloned());
        names.extend(self.quotas.keys().cloned());
        names
    }
}

/// All writes of one pass.
#[derive(Debug, Default)]
pub struct Writes {
    pub scram: Vec<rt::ScramAlteration>,
    pub create_acls: Vec<AclBinding>,
    pub delete_acls: Vec<AclBinding>,
    /// (user entity, key -> value or removal).
    pub quotas: Vec<QuotaChange>,
}

impl Writes {
    pub fn is_empty(&self) -> bool {
        self.scram.is_empty()
            && self.create_acls.is_empty()
            && self.delete_acls.is_empty()
            && self.quotas.is_empty()
    }
}

/// Failures of a pass's writes, by Kafka user name (principal without `User:`, or SCRAM user,
/// or quota entity).
pub type WriteFailures = BTreeMap<String, Failure>;

/// The clients and the metrics they report to.
#[derive(Clone)]
pub struct KafkaSide {
    pub admin: KafkaAdmin,
    pub protocol: std::sync::Arc<KafkaProtocolClient>,
    pub metrics: AdminMetrics,
}

impl KafkaSide {
    /// Reads every ACL, SCRAM credential and user quota: three requests.
    pub async fn observe(&self) -> Result<UsersView, Failure> {
        let bindings = self
            .admin
            .describe_acls(&rt::AclBindingFilter::all())
            .await
            .map_err(|e| Failure::admin(&e))?;
        let mut acls: BTreeMap<String, BTreeSet<AclBinding>> = BTreeMap::new();
        for b in &bindings {
            acls.entry(b.principal.clone())
                .or_default()
                .insert(convert::from_admin(b));
        }
        let mut scram = BTreeSet::new();
        for (user, result) in self
            .admin
            .describe_user_scram_credentials(None)
            .await
            .map_err(|e| Failure::admin(&e))?
        {
            match result {
                Ok(infos)
                    if infos
                        .iter()
                        .any(|i| i.mechanism == rt::ScramMechanism::Sha512) =>
                {
                    scram.insert(user);
                }
                Ok(_) => {}
                // A user without credentials is reported as an item error (RESOURCE_NOT_FOUND).
                Err(_) => {}
            }
        }
        let start = Instant::now();
        let quotas = self.protocol.describe_user_quotas(None).await;
        self.metrics
            .observe("describe_client_quotas", quotas.is_ok(), start.elapsed());
        let quotas = quotas.map_err(|e| Failure::quota(&e))?;
        Ok(UsersView {
            acls,
            scram,
            quotas,
        })
    }

    /// Sends the pass's writes, one request per API, and applies what succeeded to `view`.
    pub async fn write(&self, writes: Writes, view: &mut UsersView) -> WriteFailures {
        let mut failures = WriteFailures::new();
        // The first failure names the user's condition; a failed credential is never forgotten.
        let mut fail = |user: &str, f: Failure| {
            let credential = f.credential;
            failures
                .entry(user.to_owned())
                .and_modify(|first| first.credential |= credential)
                .or_insert(f);
        };

        if !writes.scram.is_empty() {
            let users: Vec<(String, bool)> = writes
                .scram
                .iter()
                .map(|a| {
                    (
                        a.user().to_owned(),
                        matches!(a, rt::ScramAlteration::Upsert(_)),
                    )
                })
                .collect();
            match self.admin.alter_user_scram_credentials(writes.scram).await {
                Ok(items) => {
                    for (user, result) in items {
                        match result {
                            Ok(()) => {
                                if users.iter().any(|(u, upsert)| *u == user && *upsert) {
                                    view.scram.insert(user);
                                } else {
                                    view.scram.remove(&user);
                                }
                            }
                            Err(e) => fail(&user, Failure::credential(&e)),
                        }
                    }
                }
                Err(e) => users
                    .iter()
                    .for_each(|(u, _)| fail(u, Failure::credential(&e))),
            }
        }

        if !writes.delete_acls.is_empty() {
            let filters: Vec<rt::AclBindingFilter> = writes
                .delete_acls
                .iter()
                .map(|b| convert::to_admin(b).to_filter())
                .collect();
            match self.admin.delete_acls(&filters).await {
                Ok(items) => {
                    for ((_, result), binding) in items.into_iter().zip(&writes.delete_acls) {
                        match result {
                            Ok(_) => {
                                if let Some(set) = view.acls.get_mut(&binding.principal) {
                                    set.remove(binding);
                                }
                            }
                            Err(e) => fail(principal_user(&binding.principal), Failure::admin(&e)),
                        }
                    }
                }
                Err(e) => writes
                    .delete_acls
                    .iter()
                    .for_each(|b| fail(principal_user(&b.principal), Failure::admin(&e))),
            }
        }

        if !writes.create_acls.is_empty() {
            let bindings: Vec<rt::AclBinding> =
                writes.create_acls.iter().map(convert::to_admin).collect();
            match self.admin.create_acls(&bindings).await {
                Ok(items) => {
                    for ((_, result), binding) in items.into_iter().zip(&writes.create_acls) {
                        match result {
                            Ok(()) => {
                                view.acls
                                    .entry(binding.principal.clone())
                                    .or_default()
                                    .insert(binding.clone());
                            }
                            Err(e) => fail(principal_user(&binding.principal), Failure::admin(&e)),
                        }
                    }
                }
                Err(e) => writes
                    .create_acls
                    .iter()
                    .for_each(|b| fail(principal_user(&b.principal), Failure::admin(&e))),
            }
        }

        if !writes.quotas.is_empty() {
            let changes = writes.quotas.clone();
            let start = Instant::now();
            let result = self.protocol.alter_user_quotas(changes).await;
            let all_ok = matches!(&result, Ok(items) if items.iter().all(|(_, r)| r.is_ok()));
            self.metrics
                .observe("alter_client_quotas", all_ok, start.elapsed());
            match result {
                Ok(items) => {
                    for (user, r) in items {
                        match r {
                            Ok(()) => {
                                if let Some((_, ops)) =
                                    writes.quotas.iter().find(|(u, _)| *u == user)
                                {
                                    let entry = view.quotas.entry(user.clone()).or_default();
                                    for (k, v) in ops {
                                        match v {
                                            Some(v) => entry.insert(k.clone(), *v),
                                            None => entry.remove(k),
                                        };
                                    }
                                    if entry.is_empty() {
                                        view.quotas.remove(&user);
                                    }
                                }
                            }
                            Err(e) => fail(&user, Failure::quota(&e)),
                        }
                    }
                }
                Err(e) => writes
                    .quotas
                    .iter()
                    .for_each(|(u, _)| fail(u, Failure::quota(&e))),
            }
        }
        failures
    }
}

/// `User:alice` -> `alice`; `User:CN=bob` -> `CN=bob`.
pub fn principal_user(principal: &str) -> &str {
    principal.strip_prefix("User:").unwrap_or(principal)
}

#[cfg(test)]
mod tests {
    use oxbow_runtime::kafka::protocol::KafkaError;

    use super::*;

    #[test]
    fn refusals_of_the_request_are_lasting_and_passing_conditions_are_not() {
        // INVALID_REQUEST (a quota of 0), POLICY_VIOLATION, CLUSTER_AUTHORIZATION_FAILED.
        for code in [42, 44, 31, 40, 93] {
            assert!(refusal_is_lasting(code), "{code}");
        }
        // REQUEST_TIMED_OUT, NOT_CONTROLLER, NETWORK_EXCEPTION, RESOURCE_NOT_FOUND (a stale view,
        // which the full pass of the retry reads again), THROTTLING_QUOTA_EXCEEDED.
        for code in [7, 41, 13, 91, 89] {
            assert!(!refusal_is_lasting(code), "{code}");
        }
    }

    #[test]
    fn a_quota_kafka_refuses_is_a_lasting_failure_that_keeps_the_credential() {
        let refused = Failure::quota(&QuotaError::AlterClientQuotas {
            user: "alice".into(),
            error: KafkaError {
                code: 42,
                message: Some("Quota producer_byte_rate must be greater than 0".into()),
            },
        });
        assert!(refused.lasting);
        assert!(!refused.credential);
        assert_eq!(refused.reason, "AlterClientQuotas");
        assert!(
            refused.message.contains("greater than 0"),
            "{}",
            refused.message
        );

        let timed_out = Failure::quota(&QuotaError::AlterClientQuotas {
            user: "alice".into(),
            error: KafkaError {
                code: 7,
                message: None,
            },
        });
        assert!(!timed_out.lasting);
    }
}
