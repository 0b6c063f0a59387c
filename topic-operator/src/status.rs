//! The status the operator reports on a `KafkaTopic`: built from the outcome of a reconcile,
//! with condition transition times kept when nothing changed, so that an unchanged topic's
//! status is byte-for-byte the same and is not written again. Pure: `now` is passed in.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use shared_crds::{
    Condition, ConditionStatus, KafkaTopic, KafkaTopicStatus,
    condition::{WARNING, stamp_transitions},
};

/// What the reconcile concluded for one `KafkaTopic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Kafka and the resource agree.
    Synced,
    /// Not synced; `reason` is a stable CamelCase word, `message` says what to do.
    NotReady { reason: String, message: String },
    /// Another `KafkaTopic` manages the same topic.
    Conflict { owner: String },
    /// `oxbow.rs/managed: "false"`.
    Unmanaged,
    /// `oxbow.rs/pause-reconciliation: "true"`.
    Paused,
}

/// A warning to show (a conflict settled by the merge rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub reason: String,
    pub message: String,
}

/// What to do with the `Warning` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningUpdate {
    /// Show these (replacing any earlier warning).
    Set(Vec<Warning>),
    /// Keep whatever warning is shown: nothing happened that supersedes it.
    Keep,
    /// The topic changed since: the warning is stale.
    Clear,
}

/// The status for `kt` after a reconcile.
pub fn build_status(
    kt: &KafkaTopic,
    outcome: &Outcome,
    topic_id: Option<&str>,
    warnings: WarningUpdate,
    now: &Time,
) -> KafkaTopicStatus {
    let previous = kt
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut conditions = match outcome {
        Outcome::Synced => vec![Condition::ready("TopicSynced", "")],
        Outcome::NotReady { reason, message } => {
            vec![Condition::not_ready(reason.clone(), message.clone())]
        }
        Outcome::Conflict { owner } => vec![Condition::not_ready(
            "ResourceConflict",
            format!(
                "KafkaTopic {owner} already manages topic {:?}; delete one of the two resources",
                kt.topic_name()
            ),
        )],
        Outcome::Unmanaged => vec![Condition::new(
            "Unmanaged",
            ConditionStatus::True,
            "Unmanaged",
            "oxbow.rs/managed is \"false\": the topic is not synced, and deleting this KafkaTopic keeps it",
        )],
        Outcome::Paused => vec![Condition::new(
            "ReconciliationPaused",
            ConditionStatus::True,
            "ReconciliationPaused",
            "oxbow.rs/pause-reconciliation is \"true\": the topic is not synced until it is removed",
        )],
    };
    match warnings {
        WarningUpdate::Set(list) if !list.is_empty() => {
            let reason = list[0].reason.clone();
            let message = list
                .iter()
                .map(|w| w.message.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            conditions.push(Condition::warning(reason, message));
        }
        WarningUpdate::Keep => {
            if let Some(w) = previous.iter().find(|c| c.type_ == WARNING) {
                conditions.push(Condition {
                    last_transition_time: None,
                    ..w.clone()
                });
            }
        }
        _ => {}
    }
    let topic_name = kt.topic_name().to_owned();
    let kept_id = kt.status.as_ref().and_then(|s| s.topic_id.clone());
    KafkaTopicStatus {
        conditions: Some(stamp_transitions(&previous, conditions, now)),
        observed_generation: kt.metadata.generation,
        topic_name: Some(topic_name),
        topic_id: match outcome {
            Outcome::Synced | Outcome::NotReady { .. } => topic_id.map(str::to_owned).or(kept_id),
            _ => kept_id,
        },
    }
}

/// Whether `new` differs from what the resource shows (so a write is needed).
pub fn status_changed(kt: &KafkaTopic, new: &KafkaTopicStatus) -> bool {
    kt.status.as_ref() != Some(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic() -> KafkaTopic {
        serde_yaml::from_str(
            r#"
apiVersion: kafka.oxbow.rs/v1beta1
kind: KafkaTopic
metadata: { name: orders, namespace: kafka, generation: 4 }
spec: { partitions: 3 }
"#,
        )
        .unwrap()
    }

    fn at(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn synced_topic_is_ready_with_generation_name_and_id() {
        let s = build_status(
            &topic(),
            &Outcome::Synced,
            Some("id-1"),
            WarningUpdate::Clear,
            &at("2026-01-01T00:00:00Z"),
        );
        assert_eq!(s.observed_generation, Some(4));
        assert_eq!(s.topic_name.as_deref(), Some("orders"));
        assert_eq!(s.topic_id.as_deref(), Some("id-1"));
        let c = &s.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.type_.as_str(), c.status),
            ("Ready", ConditionStatus::True)
        );
    }

    #[test]
    fn second_build_of_an_unchanged_topic_is_identical() {
        let mut kt = topic();
        let first = build_status(
            &kt,
            &Outcome::Synced,
            Some("id-1"),
            WarningUpdate::Clear,
            &at("2026-01-01T00:00:00Z"),
        );
        kt.status = Some(first.clone());
        let second = build_status(
            &kt,
            &Outcome::Synced,
            Some("id-1"),
            WarningUpdate::Keep,
            &at("2026-02-01T00:00:00Z"),
        );
        assert_eq!(first, second);
        assert!(!status_changed(&kt, &second));
    }

    #[test]
    fn refusal_is_ready_false_with_reason_and_message() {
        let outcome = Outcome::NotReady {
            reason: "PartitionDecreaseNotSupported".into(),
            message: "cannot decrease partitions from 6 to 3".into(),
        };
        let s = build_status(
            &topic(),
            &outcome,
            None,
            WarningUpdate::Clear,
            &at("2026-01-01T00:00:00Z"),
        );
        let c = &s.conditions.unwrap()[0];
        assert_eq!(c.status, ConditionStatus::False);
        assert_eq!(c.reason.as_deref(), Some("PartitionDecreaseNotSupported"));
        assert!(c.message.as_deref().unwrap().contains("6 to 3"));
    }

    #[test]
    fn warnings_are_set_kept_and_cleared() {
        let mut kt = topic();
        let w = Warning {
            reason: "ConflictingChanges".into(),
            message:
                "config retention.ms changed in both Kubernetes (1) and Kafka (2); Kubernetes wins"
                    .into(),
        };
        let s = build_status(
            &kt,
            &Outcome::Synced,
            None,
            WarningUpdate::Set(vec![w]),
            &at("2026-01-01T00:00:00Z"),
        );
        assert_eq!(s.conditions.as_ref().unwrap().len(), 2);
        kt.status = Some(s.clone());
        let kept = build_status(
            &kt,
            &Outcome::Synced,
            None,
            WarningUpdate::Keep,
            &at("2026-01-02T00:00:00Z"),
        );
        assert_eq!(kept, s, "a quiet reconcile keeps the warning unchanged");
        let cleared = build_status(
            &kt,
            &Outcome::Synced,
            None,
            WarningUpdate::Clear,
            &at("2026-01-02T00:00:00Z"),
        );
        assert_eq!(cleared.conditions.unwrap().len(), 1);
    }

    #[test]
    fn conflict_names_the_owner() {
        let s = build_status(
            &topic(),
            &Outcome::Conflict {
                owner: "kafka/orders-old".into(),
            },
            None,
            WarningUpdate::Clear,
            &at("2026-01-01T00:00:00Z"),
        );
        let c = &s.conditions.unwrap()[0];
        assert_eq!(c.reason.as_deref(), Some("ResourceConflict"));
        assert!(c.message.as_deref().unwrap().contains("kafka/orders-old"));
    }
}
