//! The quota plan: diffs a KafkaUser's `spec.quotas` against the client quotas Kafka holds for
//! the user entity, producing only the alterations needed. Pure: no I/O.
//!
//! A quota missing from the spec is removed from Kafka: the spec owns all four user quotas, so
//! deleting a field must not leave the old limit silently in force.

/// One of the client quotas the operator manages, named as Kafka names its config key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QuotaKey {
    ProducerByteRate,
    ConsumerByteRate,
    RequestPercentage,
    ControllerMutationRate,
}

impl QuotaKey {
    /// Every managed quota, in the order plans list them.
    pub const ALL: [QuotaKey; 4] = [
        QuotaKey::ProducerByteRate,
        QuotaKey::ConsumerByteRate,
        QuotaKey::RequestPercentage,
        QuotaKey::ControllerMutationRate,
    ];

    /// Kafka's client-quota config key (`QuotaConfig`), as AlterClientQuotas expects it.
    pub fn config_key(self) -> &'static str {
        match self {
            Self::ProducerByteRate => "producer_byte_rate",
            Self::ConsumerByteRate => "consumer_byte_rate",
            Self::RequestPercentage => "request_percentage",
            Self::ControllerMutationRate => "controller_mutation_rate",
        }
    }

    /// The key for a Kafka config key, or `None` for a quota the operator does not manage.
    pub fn from_config_key(key: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|quota| quota.config_key() == key)
    }
}

/// The quotas of one user entity; `None` means no quota (unlimited).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Quotas {
    /// Bytes per second a producer of this user may publish, per broker.
    pub producer_byte_rate: Option<f64>,
    /// Bytes per second a consumer of this user may fetch, per broker.
    pub consumer_byte_rate: Option<f64>,
    /// Percentage of a broker's request-handler and network threads the user may use.
    pub request_percentage: Option<f64>,
    /// Partition mutations (create topic, create partitions, delete topic) per second.
    pub controller_mutation_rate: Option<f64>,
}

impl Quotas {
    /// The value of one quota.
    pub fn get(&self, key: QuotaKey) -> Option<f64> {
        match key {
            QuotaKey::ProducerByteRate => self.producer_byte_rate,
            QuotaKey::ConsumerByteRate => self.consumer_byte_rate,
            QuotaKey::RequestPercentage => self.request_percentage,
            QuotaKey::ControllerMutationRate => self.controller_mutation_rate,
        }
    }

    /// Quotas as DescribeClientQuotas reports them (config key, value). Keys the operator does
    /// not manage are ignored, so they are neither compared nor removed.
    pub fn from_config_entries<'a>(entries: impl IntoIterator<Item = (&'a str, f64)>) -> Self {
        let mut quotas = Self::default();
        for (key, value) in entries {
            let slot = match QuotaKey::from_config_key(key) {
                Some(QuotaKey::ProducerByteRate) => &mut quotas.producer_byte_rate,
                Some(QuotaKey::ConsumerByteRate) => &mut quotas.consumer_byte_rate,
                Some(QuotaKey::RequestPercentage) => &mut quotas.request_percentage,
                Some(QuotaKey::ControllerMutationRate) => &mut quotas.controller_mutation_rate,
                None => continue,
            };
            *slot = Some(value);
        }
        quotas
    }
}

/// One alteration of the user entity's quotas.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum QuotaOp {
    Set { key: QuotaKey, value: f64 },
    Remove { key: QuotaKey },
}

/// The alterations that turn `observed` into `desired`; empty when they already agree.
///
/// Values compare exactly: Kafka stores and returns the double it was given, so a value that
/// round-trips is equal, and any other difference is a real change.
pub fn plan_quotas(desired: &Quotas, observed: &Quotas) -> Vec<QuotaOp> {
    QuotaKey::ALL
        .into_iter()
        .filter_map(|key| match (desired.get(key), observed.get(key)) {
            (Some(want), Some(have)) if want == have => None,
            (Some(value), _) => Some(QuotaOp::Set { key, value }),
            (None, Some(_)) => Some(QuotaOp::Remove { key }),
            (None, None) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_set() -> Quotas {
        Quotas {
            producer_byte_rate: Some(1_048_576.0),
            consumer_byte_rate: Some(2_097_152.0),
            request_percentage: Some(55.0),
            controller_mutation_rate: Some(10.0),
        }
    }

    #[test]
    fn equal_quotas_plan_nothing() {
        assert!(plan_quotas(&all_set(), &all_set()).is_empty());
        assert!(plan_quotas(&Quotas::default(), &Quotas::default()).is_empty());
    }

    #[test]
    fn new_quotas_are_set() {
        let desired = Quotas {
            producer_byte_rate: Some(1024.0),
            request_percentage: Some(25.0),
            ..Quotas::default()
        };

        let ops = plan_quotas(&desired, &Quotas::default());

        assert_eq!(
            ops,
            vec![
                QuotaOp::Set {
                    key: QuotaKey::ProducerByteRate,
                    value: 1024.0
                },
                QuotaOp::Set {
                    key: QuotaKey::RequestPercentage,
                    value: 25.0
                },
            ]
        );
    }

    #[test]
    fn a_changed_value_is_set_and_unchanged_ones_are_left_alone() {
        let desired = Quotas {
            consumer_byte_rate: Some(4096.0),
            ..all_set()
        };

        let ops = plan_quotas(&desired, &all_set());

        assert_eq!(
            ops,
            vec![QuotaOp::Set {
                key: QuotaKey::ConsumerByteRate,
                value: 4096.0
            }]
        );
    }

    #[test]
    fn a_removed_field_removes_that_quota() {
        let desired = Quotas {
            controller_mutation_rate: None,
            ..all_set()
        };

        let ops = plan_quotas(&desired, &all_set());

        assert_eq!(
            ops,
            vec![QuotaOp::Remove {
                key: QuotaKey::ControllerMutationRate
            }]
        );
    }

    #[test]
    fn removing_every_field_removes_every_quota() {
        let ops = plan_quotas(&Quotas::default(), &all_set());

        let removed: Vec<_> = ops
            .iter()
            .map(|op| match op {
                QuotaOp::Remove { key } => *key,
                QuotaOp::Set { .. } => panic!("unexpected set: {op:?}"),
            })
            .collect();
        assert_eq!(removed, QuotaKey::ALL.to_vec());
    }

    #[test]
    fn observed_entries_map_by_kafka_config_key_and_ignore_others() {
        let observed = Quotas::from_config_entries([
            ("producer_byte_rate", 100.0),
            ("consumer_byte_rate", 200.0),
            ("request_percentage", 30.0),
            ("controller_mutation_rate", 4.5),
            ("some_future_quota", 1.0),
        ]);

        assert_eq!(
            observed,
            Quotas {
                producer_byte_rate: Some(100.0),
                consumer_byte_rate: Some(200.0),
                request_percentage: Some(30.0),
                controller_mutation_rate: Some(4.5),
            }
        );
    }

    #[test]
    fn config_keys_round_trip() {
        for key in QuotaKey::ALL {
            assert_eq!(QuotaKey::from_config_key(key.config_key()), Some(key));
        }
        assert_eq!(QuotaKey::from_config_key("producer-byte-rate"), None);
    }
}
