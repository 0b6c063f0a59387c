//! Client quotas of users (entity type `user`) through DescribeClientQuotas and
//! AlterClientQuotas, the calls librdkafka lacks. Builds the requests and reads the responses
//! (pure), sends them through a `KafkaProtocolClient`. May touch: the Kafka cluster, through that
//! client only.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::{
    messages::{
        AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
        DescribeClientQuotasResponse, alter_client_quotas_request, describe_client_quotas_request,
    },
    protocol::StrBytes,
};

use super::{ConnectionError, KafkaError, KafkaProtocolClient};

/// The user quota keys Kafka knows.
pub const QUOTA_KEYS: [&str; 4] = [
    "producer_byte_rate",
    "consumer_byte_rate",
    "request_percentage",
    "controller_mutation_rate",
];

/// Quotas per user name, each a map from quota key to value.
pub type UserQuotas = BTreeMap<String, BTreeMap<String, f64>>;

/// The changes for one user: quota key to new value, `None` removing the quota.
pub type QuotaChange = (String, Vec<(String, Option<f64>)>);

const USER: &str = "user";
/// DescribeClientQuotas match types (Kafka's `ClientQuotaFilterComponent`).
const MATCH_EXACT: i8 = 0;
const MATCH_SPECIFIED: i8 = 2;

/// What went wrong reading or changing user quotas. Kafka's error code and message are kept.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    // Boxed: the connection error is large and this enum travels in every per-user result.
    #[error("sending {api} failed: {source}")]
    SendRequest {
        api: &'static str,
        source: Box<ConnectionError>,
    },
    #[error("DescribeClientQuotas failed: {error}")]
    DescribeClientQuotas { error: KafkaError },
    #[error("AlterClientQuotas for user {user:?} failed: {error}")]
    AlterClientQuotas { user: String, error: KafkaError },
    #[error("the AlterClientQuotas response has no result for user {user:?}")]
    ReadAlterResult { user: String },
    #[error("user {user:?} appears more than once in one AlterClientQuotas batch")]
    BatchAlterRequest { user: String },
}

impl QuotaError {
    /// Stable CamelCase word for conditions, Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            QuotaError::SendRequest { source, .. } => source.reason(),
            QuotaError::DescribeClientQuotas { .. } => "DescribeClientQuotas",
            QuotaError::AlterClientQuotas { .. } => "AlterClientQuotas",
            QuotaError::ReadAlterResult { .. } => "AlterClientQuotasResult",
            QuotaError::BatchAlterRequest { .. } => "DuplicateQuotaUser",
        }
    }

    /// The error Kafka returned, with its code and message, when this is one.
    pub fn kafka_error(&self) -> Option<&KafkaError> {
        match self {
            QuotaError::DescribeClientQuotas { error }
            | QuotaError::AlterClientQuotas { error, .. } => Some(error),
            QuotaError::SendRequest { source, .. } => source.kafka_error(),
            _ => None,
        }
    }
}

/// Pure: the DescribeClientQuotas request for one user, or for every named user (`None`).
/// `strict` leaves out entities that combine a user with a client id.
pub fn describe_request(user: Option<&str>) -> DescribeClientQuotasRequest {
    let component = describe_client_quotas_request::ComponentData::default()
        .with_entity_type(StrBytes::from_static_str(USER));
    let component = match user {
        Some(name) => component
            .with_match_type(MATCH_EXACT)
            .with_match(Some(StrBytes::from_string(name.to_string()))),
        // "Specified" matches every named user and leaves out the `<default>` user entity.
        None => component.with_match_type(MATCH_SPECIFIED).with_match(None),
    };
    DescribeClientQuotasRequest::default()
        .with_components(vec![component])
        .with_strict(true)
}

/// Pure: reads a DescribeClientQuotas response into quotas per user.
pub fn read_describe_response(
    response: DescribeClientQuotasResponse,
) -> Result<UserQuotas, QuotaError> {
    if let Some(error) = KafkaError::from_code(response.error_code, response.error_message) {
        return Err(QuotaError::DescribeClientQuotas { error });
    }
    let mut quotas = UserQuotas::new();
    for entry in response.entries.unwrap_or_default() {
        // With strict matching on `user` each entity is exactly one named user.
        let user = match entry.entity.as_slice() {
            [entity] if entity.entity_type.as_str() == USER => match &entity.entity_name {
                Some(name) => name.to_string(),
                None => continue,
            },
            _ => continue,
        };
        let values = entry
            .values
            .into_iter()
            .map(|v| (v.key.to_string(), v.value))
            .collect();
        quotas.insert(user, values);
    }
    Ok(quotas)
}

/// Pure: the AlterClientQuotas request for a batch of users; each user at most once.
pub fn alter_request(changes: &[QuotaChange]) -> Result<AlterClientQuotasRequest, QuotaError> {
    let mut seen = HashSet::new();
    let mut entries = Vec::with_capacity(changes.len());
    for (user, ops) in changes {
        if !seen.insert(user.as_str()) {
            return Err(QuotaError::BatchAlterRequest { user: user.clone() });
        }
        let entity = alter_client_quotas_request::EntityData::default()
            .with_entity_type(StrBytes::from_static_str(USER))
            .with_entity_name(Some(StrBytes::from_string(user.clone())));
        let ops = ops
            .iter()
            .map(|(key, value)| {
                alter_client_quotas_request::OpData::default()
                    .with_key(StrBytes::from_string(key.clone()))
                    .with_value(value.unwrap_or(0.0))
                    .with_remove(value.is_none())
            })
            .collect();
        entries.push(
            alter_client_quotas_request::EntryData::default()
                .with_entity(vec![entity])
                .with_ops(ops),
        );
    }
    Ok(AlterClientQuotasRequest::default()
        .with_entries(entries)
        .with_validate_only(false))
}

/// Pure: the outcome for each user of the batch, in the batch's order.
pub fn read_alter_response(
    changes: &[QuotaChange],
    response: AlterClientQuotasResponse,
) -> Vec<(String, Result<(), QuotaError>)> {
    let mut by_user: BTreeMap<String, Option<KafkaError>> = BTreeMap::new();
    for entry in response.entries {
        for entity in &entry.entity {
            if entity.entity_type.as_str() == USER
                && let Some(name) = &entity.entity_name
            {
                by_user.insert(
                    name.to_string(),
                    KafkaError::from_code(entry.error_code, entry.error_message.clone()),
                );
            }
        }
    }
    changes
        .iter()
        .map(|(user, _)| {
            let outcome = match by_user.remove(user) {
                Some(None) => Ok(()),
                Some(Some(error)) => Err(QuotaError::AlterClientQuotas {
                    user: user.clone(),
                    error,
                }),
                None => Err(QuotaError::ReadAlterResult { user: user.clone() }),
            };
            (user.clone(), outcome)
        })
        .collect()
}

impl KafkaProtocolClient {
    /// The quotas of `user`, or of every user that has quotas (`None`). A user without quotas
    /// has no entry.
    pub async fn describe_user_quotas(&self, user: Option<&str>) -> Result<UserQuotas, QuotaError> {
        let response =
            self.send(describe_request(user))
                .await
                .map_err(|source| QuotaError::SendRequest {
                    api: "DescribeClientQuotas",
                    source: Box::new(source),
                })?;
        read_describe_response(response)
    }

    /// Sets (`Some`) or removes (`None`) quotas for a batch of users in one request. The outer
    /// error means nothing was learnt about the batch; otherwise each user has its own outcome,
    /// in the order given.
    pub async fn alter_user_quotas(
        &self,
        changes: Vec<QuotaChange>,
    ) -> Result<Vec<(String, Result<(), QuotaError>)>, QuotaError> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let request = alter_request(&changes)?;
        tracing::debug!(users = changes.len(), "altering user quotas");
        let response = self
            .send(request)
            .await
            .map_err(|source| QuotaError::SendRequest {
                api: "AlterClientQuotas",
                source: Box::new(source),
            })?;
        Ok(read_alter_response(&changes, response))
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{alter_client_quotas_response, describe_client_quotas_response};

    use super::*;

    fn change(user: &str, ops: &[(&str, Option<f64>)]) -> QuotaChange {
        (
            user.to_string(),
            ops.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        )
    }

    #[test]
    fn describe_one_user_matches_exactly_and_all_users_by_specified_name() {
        let one = describe_request(Some("alice"));
        assert!(one.strict);
        assert_eq!(one.components.len(), 1);
        assert_eq!(one.components[0].entity_type.as_str(), "user");
        assert_eq!(one.components[0].match_type, MATCH_EXACT);
        assert_eq!(one.components[0]._match.as_deref(), Some("alice"));
        let all = describe_request(None);
        assert_eq!(all.components[0].match_type, MATCH_SPECIFIED);
        assert_eq!(all.components[0]._match, None);
    }

    #[test]
    fn alter_request_sets_and_removes() {
        let request = alter_request(&[change(
            "alice",
            &[
                ("producer_byte_rate", Some(1024.0)),
                ("consumer_byte_rate", None),
            ],
        )])
        .unwrap();
        assert!(!request.validate_only);
        let entry = &request.entries[0];
        assert_eq!(entry.entity[0].entity_type.as_str(), "user");
        assert_eq!(entry.entity[0].entity_name.as_deref(), Some("alice"));
        assert_eq!(entry.ops[0].key.as_str(), "producer_byte_rate");
        assert_eq!((entry.ops[0].value, entry.ops[0].remove), (1024.0, false));
        assert_eq!(entry.ops[1].key.as_str(), "consumer_byte_rate");
        assert!(entry.ops[1].remove);
    }

    #[test]
    fn a_user_twice_in_one_batch_is_refused() {
        let err =
            alter_request(&[change("a", &[]), change("b", &[]), change("a", &[])]).unwrap_err();
        assert!(
            matches!(&err, QuotaError::BatchAlterRequest { user } if user == "a"),
            "{err:?}"
        );
    }

    fn user_entity(name: Option<&str>) -> describe_client_quotas_response::EntityData {
        describe_client_quotas_response::EntityData::default()
            .with_entity_type(StrBytes::from_static_str("user"))
            .with_entity_name(name.map(|n| StrBytes::from_string(n.to_string())))
    }

    fn value(key: &'static str, v: f64) -> describe_client_quotas_response::ValueData {
        describe_client_quotas_response::ValueData::default()
            .with_key(StrBytes::from_static_str(key))
            .with_value(v)
    }

    #[test]
    fn describe_response_is_read_per_user_and_skips_the_default_user() {
        let response = DescribeClientQuotasResponse::default().with_entries(Some(vec![
            describe_client_quotas_response::EntryData::default()
                .with_entity(vec![user_entity(Some("alice"))])
                .with_values(vec![
                    value("producer_byte_rate", 1024.0),
                    value("request_percentage", 55.5),
                ]),
            describe_client_quotas_response::EntryData::default()
                .with_entity(vec![user_entity(None)])
                .with_values(vec![value("producer_byte_rate", 1.0)]),
        ]));
        let quotas = read_describe_response(response).unwrap();
        let expected: UserQuotas = [(
            "alice".to_string(),
            [
                ("producer_byte_rate".to_string(), 1024.0),
                ("request_percentage".to_string(), 55.5),
            ]
            .into(),
        )]
        .into();
        assert_eq!(quotas, expected);
    }

    #[test]
    fn describe_error_keeps_kafkas_code_and_message() {
        let response = DescribeClientQuotasResponse::default()
            .with_error_code(31)
            .with_error_message(Some(StrBytes::from_static_str(
                "Cluster authorization failed.",
            )));
        let err = read_describe_response(response).unwrap_err();
        assert_eq!(err.reason(), "DescribeClientQuotas");
        let kafka = err.kafka_error().unwrap();
        assert_eq!(kafka.code, 31);
        assert_eq!(
            kafka.error(),
            kafka_protocol::ResponseError::ClusterAuthorizationFailed
        );
        assert_eq!(
            err.to_string(),
            "DescribeClientQuotas failed: CLUSTER_AUTHORIZATION_FAILED (error code 31): Cluster authorization failed."
        );
    }

    #[test]
    fn alter_results_follow_the_batch_order_with_per_user_errors() {
        let entry = |name: &str, code: i16, message: Option<&'static str>| {
            alter_client_quotas_response::EntryData::default()
                .with_error_code(code)
                .with_error_message(message.map(StrBytes::from_static_str))
                .with_entity(vec![
                    alter_client_quotas_response::EntityData::default()
                        .with_entity_type(StrBytes::from_static_str("user"))
                        .with_entity_name(Some(StrBytes::from_string(name.to_string()))),
                ])
        };
        let response = AlterClientQuotasResponse::default().with_entries(vec![
            entry("bob", 42, Some("Invalid configuration key nope")),
            entry("alice", 0, None),
        ]);
        let changes = [
            change("alice", &[]),
            change("bob", &[("nope", Some(1.0))]),
            change("carol", &[]),
        ];
        let results = read_alter_response(&changes, response);
        let users: Vec<&str> = results.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(users, ["alice", "bob", "carol"]);
        assert!(results[0].1.is_ok());
        let bob = results[1].1.as_ref().unwrap_err();
        assert_eq!(
            bob.kafka_error().map(|e| (e.code, e.message.as_deref())),
            Some((42, Some("Invalid configuration key nope")))
        );
        assert!(matches!(
            results[2].1,
            Err(QuotaError::ReadAlterResult { .. })
        ));
    }
}
