//! The status condition shared by every Oxbow resource, and pure functions to build and update
//! condition lists. Pure: no I/O, and no clock (callers pass `now`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition type saying whether the resource is reconciled and usable.
pub const READY: &str = "Ready";
/// Condition type for something the user should look at although reconciliation succeeded
/// (for example a deprecated or ignored setting).
pub const WARNING: &str = "Warning";

/// The state of one aspect of a resource, as observed by its operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The condition's type, unique within the list, e.g. `Ready` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The status of the condition: `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// The reason for the condition's last transition: one CamelCase word.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A human-readable explanation of the condition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the condition last changed status (UTC, `yyyy-MM-ddTHH:mm:ssZ`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

/// Status of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::common::field_describes_enum)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// The operator cannot tell.
    Unknown,
}

impl Condition {
    /// A condition of the given type, status, reason and message, without a transition time
    /// (see [`stamp_transitions`]).
    pub fn new(
        type_: impl Into<String>,
        status: ConditionStatus,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Condition {
        let message = message.into();
        Condition {
            type_: type_.into(),
            status,
            reason: Some(reason.into()),
            message: (!message.is_empty()).then_some(message),
            last_transition_time: None,
        }
    }

    /// `Ready=True` with the given reason and message.
    pub fn ready(reason: impl Into<String>, message: impl Into<String>) -> Condition {
        Condition::new(READY, ConditionStatus::True, reason, message)
    }

    /// `Ready=False` with the given reason (the error's stable `reason()`) and message.
    pub fn not_ready(reason: impl Into<String>, message: impl Into<String>) -> Condition {
        Condition::new(READY, ConditionStatus::False, reason, message)
    }

    /// `Warning=True` with the given reason and message.
    pub fn warning(reason: impl Into<String>, message: impl Into<String>) -> Condition {
        Condition::new(WARNING, ConditionStatus::True, reason, message)
    }

    /// True if this condition is of type `type_` and has status `True`.
    pub fn is_true(&self, type_: &str) -> bool {
        self.type_ == type_ && self.status == ConditionStatus::True
    }
}

/// The condition of the given type, if any.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// True if the list holds `Ready=True`.
pub fn is_ready(conditions: &[Condition]) -> bool {
    find(conditions, READY).is_some_and(|c| c.status == ConditionStatus::True)
}

/// Gives each of the `desired` conditions its `lastTransitionTime`: the previous condition's time
/// when one of the same type had the same status (so the time records the last *change*, not the
/// last reconcile, and repeated status writes stay identical), else `now`.
pub fn stamp_transitions(
    previous: &[Condition],
    desired: Vec<Condition>,
    now: &Time,
) -> Vec<Condition> {
    desired
        .into_iter()
        .map(|mut condition| {
            let kept = find(previous, &condition.type_)
                .filter(|old| old.status == condition.status)
                .and_then(|old| old.last_transition_time.clone());
            condition.last_transition_time = Some(kept.unwrap_or_else(|| now.clone()));
            condition
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> Time {
        Time(rfc3339.parse().unwrap())
    }

    #[test]
    fn builders_set_type_status_reason_and_message() {
        let c = Condition::ready("Reconciled", "all good");
        assert_eq!(c.type_, READY);
        assert_eq!(c.status, ConditionStatus::True);
        assert_eq!(c.reason.as_deref(), Some("Reconciled"));
        assert_eq!(c.message.as_deref(), Some("all good"));
        assert_eq!(c.last_transition_time, None);

        let c = Condition::not_ready("CreateTopics", "broker down");
        assert_eq!(
            (c.type_.as_str(), c.status),
            (READY, ConditionStatus::False)
        );

        let c = Condition::warning("DeprecatedField", "");
        assert_eq!(
            (c.type_.as_str(), c.status),
            (WARNING, ConditionStatus::True)
        );
        assert_eq!(c.message, None, "an empty message is left out");
    }

    #[test]
    fn unchanged_status_keeps_the_previous_transition_time() {
        let previous = vec![Condition {
            last_transition_time: Some(at("2024-01-01T00:00:00Z")),
            ..Condition::ready("Reconciled", "old message")
        }];
        let now = at("2024-06-01T12:00:00Z");
        let out = stamp_transitions(
            &previous,
            vec![Condition::ready("Reconciled", "new message")],
            &now,
        );
        assert_eq!(
            out[0].last_transition_time,
            Some(at("2024-01-01T00:00:00Z"))
        );
        assert_eq!(
            out[0].message.as_deref(),
            Some("new message"),
            "only the time is carried over"
        );
    }

    #[test]
    fn changed_status_takes_now() {
        let previous = vec![Condition {
            last_transition_time: Some(at("2024-01-01T00:00:00Z")),
            ..Condition::ready("Reconciled", "")
        }];
        let now = at("2024-06-01T12:00:00Z");
        let out = stamp_transitions(
            &previous,
            vec![Condition::not_ready("CreateTopics", "x")],
            &now,
        );
        assert_eq!(out[0].last_transition_time, Some(now));
    }

    #[test]
    fn new_condition_type_takes_now_and_others_are_not_mixed_up() {
        let previous = vec![Condition {
            last_transition_time: Some(at("2024-01-01T00:00:00Z")),
            ..Condition::ready("Reconciled", "")
        }];
        let now = at("2024-06-01T12:00:00Z");
        // A Warning=True must not inherit the time of Ready=True.
        let out = stamp_transitions(
            &previous,
            vec![
                Condition::ready("Reconciled", ""),
                Condition::warning("Ignored", "x"),
            ],
            &now,
        );
        assert_eq!(
            out[0].last_transition_time,
            Some(at("2024-01-01T00:00:00Z"))
        );
        assert_eq!(out[1].last_transition_time, Some(now));
    }

    #[test]
    fn previous_condition_without_time_gets_now() {
        let previous = vec![Condition::ready("Reconciled", "")];
        let now = at("2024-06-01T12:00:00Z");
        let out = stamp_transitions(&previous, vec![Condition::ready("Reconciled", "")], &now);
        assert_eq!(out[0].last_transition_time, Some(now));
    }

    #[test]
    fn readiness_is_read_from_the_ready_condition_only() {
        assert!(!is_ready(&[]));
        assert!(
            !is_ready(&[Condition::warning("X", "")]),
            "Warning=True is not readiness"
        );
        assert!(!is_ready(&[Condition::not_ready("X", "")]));
        assert!(is_ready(&[
            Condition::warning("X", ""),
            Condition::ready("Y", "")
        ]));
        assert!(Condition::ready("Y", "").is_true(READY));
        assert!(!Condition::ready("Y", "").is_true(WARNING));
    }

    #[test]
    fn serialises_in_strimzi_shape() {
        let c = Condition {
            last_transition_time: Some(at("2024-01-02T03:04:05Z")),
            ..Condition::not_ready("CreateTopics", "broker down")
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({
                "type": "Ready",
                "status": "False",
                "reason": "CreateTopics",
                "message": "broker down",
                "lastTransitionTime": "2024-01-02T03:04:05Z",
            })
        );
    }
}
