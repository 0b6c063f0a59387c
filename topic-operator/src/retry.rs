//! When a topic whose change Kafka refused or failed is sent to Kafka again. Pure: no I/O and
//! no clock; the caller passes `now`.
//!
//! Two kinds of failure, told apart by Kafka's error code ([`classify`]):
//! - **Invalid input** (`InvalidConfig`, `InvalidReplicationFactor`, `PolicyViolation`, ...):
//!   sending the same request again gets the same answer. The topic is held (not sent) until its
//!   input changes: the `KafkaTopic`'s `metadata.generation`, what Kafka shows of the topic, or
//!   the number of brokers. Brokers' settings that may have refused it (a create-topic policy,
//!   limits) cannot be observed, so the operator forgets these holds at each full
//!   reconciliation (`OXBOW_FULL_RECONCILIATION_INTERVAL_SECONDS`) and tries each refused topic
//!   once more then.
//! - **Transient** (timeouts, brokers not available, authorisation not granted yet, anything
//!   else): retried after a growing delay ([`Backoff`]: 2 s doubling up to 5 min), reset by the
//!   first success.
//!
//! A held topic keeps its last failure, so its status keeps saying why (and, being unchanged,
//! is not written again).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use crate::{kafka::Failure, plan::TopicState};

/// How a failure is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The request itself is wrong: wait for a change of its input.
    InvalidInput,
    /// Something that may pass: retry with a growing delay.
    Transient,
}

/// Kafka's error codes that refuse the request itself: `INVALID_TOPIC_EXCEPTION` (17),
/// `INVALID_PARTITIONS` (37), `INVALID_REPLICATION_FACTOR` (38), `INVALID_REPLICA_ASSIGNMENT`
/// (39), `INVALID_CONFIG` (40), `INVALID_REQUEST` (42), `POLICY_VIOLATION` (44),
/// `TOPIC_DELETION_DISABLED` (73).
const INVALID_INPUT_CODES: &[i32] = &[17, 37, 38, 39, 40, 42, 44, 73];

/// Classifies a failure by Kafka's error code (`None`: Kafka did not answer).
pub fn classify(code: Option<i32>) -> FailureClass {
    match code {
        Some(c) if INVALID_INPUT_CODES.contains(&c) => FailureClass::InvalidInput,
        _ => FailureClass::Transient,
    }
}

/// Delays between retries of a transient failure: `first`, doubling, at most `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(2),
            cap: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0 = the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.cap)
    }
}

/// Counts consecutive failures of one thing and tells how long to wait before the next try.
#[derive(Debug, Default, Clone)]
pub struct Attempts {
    failures: u32,
}

impl Attempts {
    /// Records a failure; returns the delay before the next try.
    pub fn failed(&mut self, backoff: &Backoff) -> Duration {
        let d = backoff.delay(self.failures);
        self.failures = self.failures.saturating_add(1);
        d
    }
    /// Records a success: the next failure waits the first delay again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }
}

/// What a topic's Kafka request depended on: when any of it changes, a refused topic is sent
/// again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// `metadata.generation` of the managing `KafkaTopic` (`None`: none manages it).
    pub generation: Option<i64>,
    /// What Kafka showed of the topic (`None`: absent).
    pub kafka: Option<TopicState>,
    pub brokers: u32,
}

#[derive(Debug, Clone)]
enum HoldKind {
    Refused { input: Input },
    Backoff { until: Instant },
}

#[derive(Debug, Clone)]
struct Hold {
    failure: Failure,
    kind: HoldKind,
    /// Consecutive transient failures.
    attempts: Attempts,
}

/// What [`Holds::failed`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Held until its input changes.
    WaitForChange,
    /// Held; retry after this delay.
    RetryAfter(Duration),
}

/// Topics not to send to Kafka for now, with the failure their status keeps showing.
#[derive(Debug, Default)]
pub struct Holds {
    topics: HashMap<String, Hold>,
    backoff: Backoff,
}

impl Holds {
    pub fn new(backoff: Backoff) -> Holds {
        Holds {
            topics: HashMap::new(),
            backoff,
        }
    }

    /// Whether `topic`'s request must not be sent now; if so, the failure to report again.
    /// `deleting`: the request deletes the topic of a `KafkaTopic` being deleted, which must
    /// never wait for a change that cannot come (only transient delays hold it).
    pub fn held(
        &mut self,
        topic: &str,
        input: &Input,
        deleting: bool,
        now: Instant,
    ) -> Option<Failure> {
        let hold = self.topics.get(topic)?;
        let keep = match &hold.kind {
            HoldKind::Refused { input: was } => !deleting && was == input,
            HoldKind::Backoff { until } => now < *until,
        };
        if keep {
            return Some(hold.failure.clone());
        }
        if let Some(h) = self.topics.get_mut(topic)
            && matches!(h.kind, HoldKind::Refused { .. })
        {
            // A changed input starts afresh.
            self.topics.remove(topic);
        }
        None
    }

    /// Records that Kafka did what was asked for `topic`: it is no longer held, and its next
    /// transient failure waits the first delay again.
    pub fn succeeded(&mut self, topic: &str) {
        self.topics.remove(topic);
    }

    /// Records that `topic`'s request failed; returns when to try again.
    pub fn failed(
        &mut self,
        topic: &str,
        failure: &Failure,
        input: Input,
        deleting: bool,
        now: Instant,
    ) -> Next {
        let class = if deleting {
            FailureClass::Transient
        } else {
            classify(failure.code)
        };
        let mut attempts = self
            .topics
            .remove(topic)
            .map(|h| h.attempts)
            .unwrap_or_default();
        let (kind, next) = match class {
            FailureClass::InvalidInput => {
                attempts.succeeded();
                (HoldKind::Refused { input }, Next::WaitForChange)
            }
            FailureClass::Transient => {
                let delay = attempts.failed(&self.backoff);
                (
                    HoldKind::Backoff { until: now + delay },
                    Next::RetryAfter(delay),
                )
            }
        };
        self.topics.insert(
            topic.to_owned(),
            Hold {
                failure: failure.clone(),
                kind,
                attempts,
            },
        );
        next
    }

    /// Forgets the refusals (not the transient delays): each refused topic is tried once more.
    pub fn forget_refusals(&mut self) {
        self.topics
            .retain(|_, h| matches!(h.kind, HoldKind::Backoff { .. }));
    }

    /// Keeps only the topics `keep` accepts (drops those no longer anywhere).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.topics.retain(|t, _| keep(t));
    }

    pub fn len(&self) -> usize {
        self.topics.len()
    }

    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: Option<i32>, reason: &str) -> Failure {
        Failure {
            reason: reason.into(),
            message: format!("{reason} message"),
            code,
        }
    }

    fn input(generation: i64, kafka: Option<TopicState>) -> Input {
        Input {
            generation: Some(generation),
            kafka,
            brokers: 1,
        }
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn refusals_of_the_request_itself_are_invalid_input() {
        for (code, name) in [
            (17, "InvalidTopicException"),
            (37, "InvalidPartitions"),
            (38, "InvalidReplicationFactor"),
            (39, "InvalidReplicaAssignment"),
            (40, "InvalidConfig"),
            (42, "InvalidRequest"),
            (44, "PolicyViolation"),
            (73, "TopicDeletionDisabled"),
        ] {
            assert_eq!(classify(Some(code)), FailureClass::InvalidInput, "{name}");
        }
    }

    #[test]
    fn timeouts_unavailability_and_unknown_failures_are_transient() {
        for (code, name) in [
            (Some(-185), "librdkafka _TIMED_OUT"),
            (Some(-187), "librdkafka _ALL_BROKERS_DOWN"),
            (Some(-195), "librdkafka _TRANSPORT"),
            (Some(-1), "UNKNOWN_SERVER_ERROR"),
            (Some(7), "REQUEST_TIMED_OUT"),
            (Some(8), "BROKER_NOT_AVAILABLE"),
            (
                Some(29),
                "TOPIC_AUTHORIZATION_FAILED: ACLs may be granted later",
            ),
            (Some(41), "NOT_CONTROLLER"),
            (None, "no answer from Kafka"),
        ] {
            assert_eq!(classify(code), FailureClass::Transient, "{name}");
        }
    }

    #[test]
    fn the_backoff_doubles_from_two_seconds_up_to_five_minutes() {
        let b = Backoff::default();
        let delays: Vec<u64> = (0..10).map(|a| b.delay(a).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(b.delay(40), b.cap, "no overflow however many failures");
        assert_eq!(b.delay(u32::MAX), b.cap);
    }

    #[test]
    fn attempts_grow_the_delay_and_a_success_resets_it() {
        let b = Backoff::default();
        let mut a = Attempts::default();
        assert_eq!(a.failed(&b), 2 * S);
        assert_eq!(a.failed(&b), 4 * S);
        assert_eq!(a.failed(&b), 8 * S);
        a.succeeded();
        assert_eq!(a.failed(&b), 2 * S);
    }

    #[test]
    fn a_refused_topic_is_held_until_its_generation_changes() {
        let now = Instant::now();
        let mut holds = Holds::default();
        let bad = failure(Some(40), "InvalidConfig");
        assert_eq!(
            holds.failed("t", &bad, input(1, None), false, now),
            Next::WaitForChange
        );
        // However much later: the same input is never sent again.
        let later = now + Duration::from_secs(3600);
        assert_eq!(holds.held("t", &input(1, None), false, later), Some(bad));
        // The user edits the KafkaTopic.
        assert_eq!(holds.held("t", &input(2, None), false, later), None);
        assert!(holds.is_empty(), "a changed input starts afresh");
    }

    #[test]
    fn a_refused_topic_is_sent_again_when_kafka_or_the_brokers_change() {
        let now = Instant::now();
        let mut holds = Holds::default();
        let bad = failure(Some(38), "InvalidReplicationFactor");
        holds.failed("t", &bad, input(1, None), false, now);
        let grown = Input {
            brokers: 3,
            ..input(1, None)
        };
        assert_eq!(holds.held("t", &grown, false, now), None, "a broker added");

        holds.failed("t", &bad, input(1, None), false, now);
        let created = input(
            1,
            Some(TopicState {
                partitions: Some(1),
                ..TopicState::default()
            }),
        );
        assert_eq!(
            holds.held("t", &created, false, now),
            None,
            "created in Kafka meanwhile"
        );
    }

    #[test]
    fn a_transient_failure_is_held_for_a_growing_delay_and_reset_by_success() {
        let t0 = Instant::now();
        let mut holds = Holds::default();
        let slow = failure(Some(-185), "TimedOut");
        let i = input(1, None);
        assert_eq!(
            holds.failed("t", &slow, i.clone(), false, t0),
            Next::RetryAfter(2 * S)
        );
        assert_eq!(holds.held("t", &i, false, t0 + S), Some(slow.clone()));
        assert_eq!(holds.held("t", &i, false, t0 + 2 * S), None, "due");
        let t1 = t0 + 2 * S;
        assert_eq!(
            holds.failed("t", &slow, i.clone(), false, t1),
            Next::RetryAfter(4 * S)
        );
        assert_eq!(holds.held("t", &i, false, t1 + 3 * S), Some(slow.clone()));
        let t2 = t1 + 4 * S;
        assert_eq!(holds.held("t", &i, false, t2), None);
        assert_eq!(
            holds.failed("t", &slow, i.clone(), false, t2),
            Next::RetryAfter(8 * S)
        );
        holds.succeeded("t");
        assert_eq!(holds.held("t", &i, false, t2), None);
        assert_eq!(
            holds.failed("t", &slow, i, false, t2),
            Next::RetryAfter(2 * S),
            "reset by the success"
        );
    }

    #[test]
    fn a_failed_deletion_of_a_kafkatopic_being_deleted_is_always_retried() {
        let now = Instant::now();
        let mut holds = Holds::default();
        let bad = failure(Some(42), "InvalidRequest");
        assert_eq!(
            holds.failed("t", &bad, input(1, None), true, now),
            Next::RetryAfter(2 * S),
            "never waits for a change that cannot come"
        );
        // An earlier refusal of a create does not hold the deletion.
        let mut holds = Holds::default();
        holds.failed("t", &bad, input(1, None), false, now);
        assert_eq!(holds.held("t", &input(1, None), true, now), None);
    }

    #[test]
    fn full_reconciliation_forgets_refusals_but_not_delays() {
        let now = Instant::now();
        let mut holds = Holds::default();
        holds.failed(
            "refused",
            &failure(Some(44), "PolicyViolation"),
            input(1, None),
            false,
            now,
        );
        holds.failed(
            "slow",
            &failure(Some(7), "RequestTimedOut"),
            input(1, None),
            false,
            now,
        );
        holds.forget_refusals();
        assert_eq!(holds.held("refused", &input(1, None), false, now), None);
        assert!(holds.held("slow", &input(1, None), false, now).is_some());
        assert_eq!(holds.len(), 1);
    }
}
