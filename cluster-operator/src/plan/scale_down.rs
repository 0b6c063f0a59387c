//! The broker scale-down check: brokers may only be removed once they hold no partition
//! replicas, because removing them would lose those replicas (and with them the only copy of
//! partitions with one replica). The annotation `oxbow.rs/skip-broker-scaledown-check: "true"`
//! on the Kafka resource overrides the check. Also which broker registrations outlived their
//! removed brokers. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use shared_crds::labels;

use super::partitions::PartitionMap;

/// At most this many topics are named per broker in messages; conditions are read by people.
const TOPICS_NAMED_PER_BROKER: usize = 10;

/// The outcome of a permitted scale-down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScaleDownCheck {
    /// No removed broker holds a replica (or no broker is removed).
    Allowed,
    /// Removed brokers still hold replicas, but the skip annotation lets them go. The topics
    /// are listed so the caller can warn about what is lost.
    AllowedBySkipAnnotation {
        /// The removed brokers with replicas, and the topics of those replicas.
        brokers_holding_replicas: BTreeMap<i32, BTreeSet<String>>,
    },
}

/// A refused scale-down.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScaleDownError {
    /// Removed brokers still hold replicas.
    #[error(
        "cannot remove {}: they still hold partition replicas; move the replicas to the remaining brokers first (e.g. with kafka-reassign-partitions.sh), or set the annotation {}: \"true\" on the Kafka resource to remove them anyway and lose those replicas",
        describe(.brokers),
        labels::SKIP_BROKER_SCALEDOWN_CHECK
    )]
    BrokersHoldReplicas {
        /// The removed brokers with replicas, and the topics of those replicas.
        brokers: BTreeMap<i32, BTreeSet<String>>,
    },
}

impl ScaleDownError {
    /// Stable CamelCase reason for the `Warning` condition, Events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ScaleDownError::BrokersHoldReplicas { .. } => "ScaleDownBrokersHoldReplicas",
        }
    }
}

/// "broker 3 (topics a, b) and broker 4 (topics c)".
fn describe(brokers: &BTreeMap<i32, BTreeSet<String>>) -> String {
    brokers
        .iter()
        .map(|(id, topics)| {
            let mut named: Vec<&str> = topics
                .iter()
                .take(TOPICS_NAMED_PER_BROKER)
                .map(String::as_str)
                .collect();
            let more = topics.len().saturating_sub(TOPICS_NAMED_PER_BROKER);
            let more_text = format!("{more} more");
            if more > 0 {
                named.push(&more_text);
            }
            format!("broker {id} (topics {})", named.join(", "))
        })
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Checks whether the brokers in `removed_brokers` may go, given every partition's replicas.
/// `skip_check` is the Kafka resource's skip annotation.
pub fn check_broker_scale_down(
    removed_brokers: &BTreeSet<i32>,
    partitions: &PartitionMap,
    skip_check: bool,
) -> Result<ScaleDownCheck, ScaleDownError> {
    let mut holding: BTreeMap<i32, BTreeSet<String>> = BTreeMap::new();
    for (tp, state) in partitions {
        for broker in state
            .replicas
            .iter()
            .filter(|b| removed_brokers.contains(b))
        {
            holding.entry(*broker).or_default().insert(tp.topic.clone());
        }
    }
    match (holding.is_empty(), skip_check) {
        (true, _) => Ok(ScaleDownCheck::Allowed),
        (false, true) => Ok(ScaleDownCheck::AllowedBySkipAnnotation {
            brokers_holding_replicas: holding,
        }),
        (false, false) => Err(ScaleDownError::BrokersHoldReplicas { brokers: holding }),
    }
}

/// What to do about broker registrations in the KRaft metadata after brokers were removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaleRegistrations {
    /// Registrations to remove: no longer a broker of the cluster, no pod, fenced.
    pub unregister: Vec<i32>,
    /// Removed brokers still registered unfenced (their process may still be stopping): look
    /// again soon.
    pub wait: Vec<i32>,
}

/// Pure: which registrations (id, fenced) outlived their broker. A registration is removed only
/// when its id is not a desired broker, no pod of the cluster carries the id, and Kafka has
/// fenced it, so a live or restarting broker is never unregistered.
pub fn stale_registrations(
    registered: &[(i32, bool)],
    desired_brokers: &BTreeSet<i32>,
    pods: &BTreeSet<i32>,
) -> StaleRegistrations {
    let mut out = StaleRegistrations::default();
    for &(id, fenced) in registered {
        if desired_brokers.contains(&id) || pods.contains(&id) {
            continue;
        }
        if fenced {
            out.unregister.push(id);
        } else {
            out.wait.push(id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::partitions::{PartitionReplicas, TopicPartition};

    fn partitions(entries: &[(&str, i32, &[i32])]) -> PartitionMap {
        entries
            .iter()
            .map(|(topic, p, replicas)| {
                (
                    TopicPartition::new(*topic, *p),
                    PartitionReplicas {
                        replicas: replicas.to_vec(),
                        isr: replicas.to_vec(),
                        min_isr: 1,
                    },
                )
            })
            .collect()
    }

    fn ids(ids: &[i32]) -> BTreeSet<i32> {
        ids.iter().copied().collect()
    }

    #[test]
    fn brokers_without_replicas_may_go() {
        let map = partitions(&[("orders", 0, &[0, 1]), ("orders", 1, &[1, 2])]);
        assert_eq!(
            check_broker_scale_down(&ids(&[3]), &map, false),
            Ok(ScaleDownCheck::Allowed)
        );
        assert_eq!(
            check_broker_scale_down(&ids(&[]), &map, false),
            Ok(ScaleDownCheck::Allowed)
        );
    }

    #[test]
    fn brokers_with_replicas_are_refused_naming_brokers_and_topics() {
        let map = partitions(&[
            ("orders", 0, &[0, 3]),
            ("orders", 1, &[3, 4]),
            ("payments", 0, &[4, 1]),
            ("audit", 0, &[0, 1]),
        ]);
        let err = check_broker_scale_down(&ids(&[3, 4]), &map, false).unwrap_err();
        let ScaleDownError::BrokersHoldReplicas { brokers } = &err;
        assert_eq!(brokers[&3], BTreeSet::from(["orders".to_string()]));
        assert_eq!(
            brokers[&4],
            BTreeSet::from(["orders".to_string(), "payments".to_string()])
        );
        assert_eq!(err.reason(), "ScaleDownBrokersHoldReplicas");
        let message = err.to_string();
        assert!(
            message.contains("broker 3 (topics orders) and broker 4 (topics orders, payments)"),
            "{message}"
        );
        assert!(
            message.contains("oxbow.rs/skip-broker-scaledown-check"),
            "{message}"
        );
        assert!(!message.contains("audit"), "{message}");
    }

    #[test]
    fn the_skip_annotation_allows_it_but_still_reports_what_is_lost() {
        let map = partitions(&[("orders", 0, &[3])]);
        assert_eq!(
            check_broker_scale_down(&ids(&[3]), &map, true),
            Ok(ScaleDownCheck::AllowedBySkipAnnotation {
                brokers_holding_replicas: BTreeMap::from([(
                    3,
                    BTreeSet::from(["orders".to_string()])
                )])
            })
        );
    }

    #[test]
    fn long_topic_lists_are_shortened_in_the_message() {
        let names: Vec<String> = (0..13).map(|i| format!("t{i:02}")).collect();
        let entries: Vec<(&str, i32, &[i32])> =
            names.iter().map(|n| (n.as_str(), 0, &[5][..])).collect();
        let err = check_broker_scale_down(&ids(&[5]), &partitions(&entries), false).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("t09, 3 more)"), "{message}");
        assert!(!message.contains("t10"), "{message}");
    }

    #[rstest::rstest]
    // A removed broker, its pod gone and fenced: unregistered.
    #[case(&[(0, false), (1, false), (4, true)], &[0, 1], &[0, 1], &[4], &[])]
    // Its pod still stopping: left alone whatever Kafka says.
    #[case(&[(0, false), (4, true)], &[0], &[0, 4], &[], &[])]
    // Pod gone but not fenced yet (heartbeats time out): wait.
    #[case(&[(0, false), (4, false)], &[0], &[0], &[], &[4])]
    // A desired broker that is fenced (restarting) is never touched.
    #[case(&[(0, true), (1, false)], &[0, 1], &[1], &[], &[])]
    // A desired broker whose pod is not created yet: not touched either.
    #[case(&[(7, true)], &[7], &[], &[], &[])]
    // Nothing registered beyond the brokers: nothing to do.
    #[case(&[(0, false), (1, false)], &[0, 1], &[0, 1], &[], &[])]
    fn stale_registrations_are_fenced_registrations_of_removed_brokers_without_a_pod(
        #[case] registered: &[(i32, bool)],
        #[case] desired: &[i32],
        #[case] pods: &[i32],
        #[case] unregister: &[i32],
        #[case] wait: &[i32],
    ) {
        let set = |ids: &[i32]| ids.iter().copied().collect::<BTreeSet<i32>>();
        assert_eq!(
            stale_registrations(registered, &set(desired), &set(pods)),
            StaleRegistrations {
                unregister: unregister.to_vec(),
                wait: wait.to_vec(),
            }
        );
    }
}
