//! The 3-way merge of one topic: from the last synced state (the base), the `KafkaTopic` spec
//! and the Kafka topic to what to change on each side, what to store as the next base, and what
//! to report. Pure: no I/O, no clock; every input is passed in.
//!
//! # How a topic is decided
//!
//! **Field by field.** Partitions, replicas and each config key are decided on their own by
//! comparing the Kubernetes value `K` and the Kafka value `F` with the base `B`: if `K = F`
//! nothing happens; if only `K` differs from `B` it is a Kubernetes change and goes to Kafka; if
//! only `F` differs from `B` it is a Kafka change and goes to the `KafkaTopic` spec; if both
//! differ from `B` (and from each other) it is a conflict. A config key absent from the base and
//! present on one side was added there; present in the base and absent on one side, removed
//! there. Config values are compared after normalising (see [`crate::plan::config_diff`]), and
//! Kafka's side holds the topic-level overrides only. Independent changes (different fields, or
//! different keys) on both sides are all applied: they merge.
//!
//! **Undeclared fields.** Partitions or replicas left out of the spec are not a change in
//! Kubernetes: they follow Kafka and are not written into the spec. A base that has not seen a
//! value yet (a topic created with the broker default) takes Kafka's value as its baseline.
//!
//! **Conflict rule.** Kubernetes wins for config keys and replicas: the resource is the user's
//! declared intent. For partitions the larger count wins, because Kafka cannot decrease
//! partitions: a larger Kafka count is kept and written back to the spec, a larger Kubernetes
//! count is applied to Kafka. Every conflict is reported naming both values and the winner; the
//! caller turns it into a Warning condition and an Event.
//!
//! **Refusals** (the caller sets `Ready=False` and waits for a change; nothing is overwritten):
//! - a Kubernetes change that lowers partitions below Kafka's count (outside a conflict);
//! - any change of the replication factor coming from Kubernetes, in both modes, including a
//!   conflict that Kubernetes wins: changing it is not supported yet, so Kafka keeps its value
//!   and the spec keeps the user's;
//! - with [`plan_topic_in_cluster`], creating a topic with more replicas than brokers.
//!
//! A refused field's base records Kafka's current value, so the next reconcile sees a plain
//! pending Kubernetes change: the refusal stays, the conflict is not reported twice. A
//! replication factor changed in Kafka (for example by a reassignment) is a Kafka change like
//! any other and, in bidirectional mode, is written back to the spec.
//!
//! **Whole topics (bidirectional mode).**
//! - Present on one side only, no base: created on the other side (a `KafkaTopic` for a Kafka
//!   topic, a topic for a `KafkaTopic`).
//! - Present on both sides, no base (first adoption, or a lost store): the merge is 2-way;
//!   every difference is settled by the conflict rule, but the plan is marked `adopted` and its
//!   conflicts are not warnings (see [`TopicPlan::warnings`]).
//! - Deleted in Kafka: if the `KafkaTopic` is unchanged since the base, the `KafkaTopic` is
//!   deleted; if it changed, the topic is recreated from it and a conflict is reported. A base
//!   that never saw a topic ID proves nothing about Kafka (the topic may never have been
//!   created), so the topic is recreated from the spec without a conflict. Recreation fills
//!   undeclared partitions and replicas from the base.
//! - A `KafkaTopic` deleted the normal way goes through the finalizer, which deletes the topic:
//!   not a 3-way case. A `KafkaTopic` absent while the base and the topic exist went away
//!   without the finalizer (the finalizer removed by hand, the resource lost): the topic is
//!   deleted only if Kafka provably did not change since the base (same topic ID and same
//!   fields); otherwise the `KafkaTopic` is recreated from Kafka and a conflict is reported.
//! - Gone on both sides: the base is forgotten.
//!
//! **Recreated in Kafka.** A topic ID different from the base's means the topic was deleted
//! and recreated. The new topic is still compared field by field with the same base: every
//! difference counts as a Kafka change, so a concurrent Kubernetes change still merges and
//! conflicts follow the rule. The next base carries the new ID.
//!
//! **One-way mode (`kubernetes-to-kafka`).** The `KafkaTopic` is the only truth and the base
//! is not consulted for decisions: topics without a `KafkaTopic` are ignored; drift in Kafka is
//! reverted (config set back, partitions raised back), except what Kafka cannot do (a Kafka
//! partition count above the spec's, a different replication factor), which is a refusal; a
//! topic deleted in Kafka is recreated; a `KafkaTopic` gone without its finalizer makes the
//! topic unmanaged (the base is forgotten, the topic kept), since removing the finalizer by hand
//! is how a user lets go of a topic without deleting it. Nothing is ever written to the spec.
//!
//! **Idempotence.** When nothing differs the plan is empty and its next base equals the base
//! passed in, so a second reconcile of an unchanged topic writes nothing anywhere. The caller
//! must store [`TopicPlan::new_base`] only once every action of the plan has succeeded;
//! otherwise the old base stays and the next reconcile decides again.

use std::collections::BTreeSet;
use std::fmt;

use super::batch::AdminOp;
use super::config_diff::{ConfigOp, config_ops, config_values_equal, configs_equivalent};
use super::model::{Configs, Field, Side, SyncMode, TopicState};

/// Raise a topic's partition count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionIncrease {
    pub from: i32,
    pub to: i32,
}

/// What to do to the Kafka topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KafkaAction {
    #[default]
    Nothing,
    /// Create the topic; `None` partitions or replicas take the broker default.
    Create(TopicState),
    /// Change an existing topic; at least one part is present.
    Alter {
        partitions: Option<PartitionIncrease>,
        config: Vec<ConfigOp>,
    },
    /// Delete the topic (`partitions`: its current count, for batching).
    Delete { partitions: Option<i32> },
}

/// New values for the `KafkaTopic` spec; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecUpdate {
    pub partitions: Option<i32>,
    pub replicas: Option<i16>,
    /// The whole new `config` map.
    pub config: Option<Configs>,
}

/// What to do to the `KafkaTopic`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SpecAction {
    #[default]
    Nothing,
    /// Create a `KafkaTopic` for a topic found in Kafka (its `topic_id` is for the status).
    Create(TopicState),
    Update(SpecUpdate),
    Delete,
}

/// Both sides changed the same thing in incompatible ways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// A field changed to different values; `None` = unset (default / removed).
    Value {
        field: Field,
        kube: Option<String>,
        kafka: Option<String>,
        winner: Side,
    },
    /// One side deleted the topic while the other changed it; the change wins and the deleted
    /// side is recreated.
    DeletedWhileChanged { deleted_in: Side },
}

impl Conflict {
    /// Stable CamelCase word for the Warning condition and the Event.
    pub fn reason(&self) -> &'static str {
        match self {
            Conflict::Value { .. } => "ConflictingChanges",
            Conflict::DeletedWhileChanged { .. } => "DeletedWhileChanged",
        }
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |value: &Option<String>| value.clone().unwrap_or_else(|| "unset".to_owned());
        match self {
            Conflict::Value {
                field,
                kube,
                kafka,
                winner,
            } => write!(
                f,
                "{field} changed in both Kubernetes ({}) and Kafka ({}); {winner} wins",
                shown(kube),
                shown(kafka)
            ),
            Conflict::DeletedWhileChanged {
                deleted_in: Side::Kafka,
            } => f.write_str(
                "the topic was deleted in Kafka while its KafkaTopic changed; \
                 the topic is recreated from the KafkaTopic",
            ),
            Conflict::DeletedWhileChanged {
                deleted_in: Side::Kubernetes,
            } => f.write_str(
                "the KafkaTopic went away without its finalizer while the topic changed in \
                 Kafka; the KafkaTopic is recreated from Kafka",
            ),
        }
    }
}

/// A change the operator will not make; the topic is `Ready=False` until the spec changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Kafka cannot decrease partitions.
    PartitionDecrease { from: i32, to: i32 },
    /// Changing the replication factor is not supported yet.
    ReplicationFactorChange { from: i16, to: i16 },
    /// A topic cannot have more replicas than the cluster has brokers.
    ReplicasExceedBrokers { replicas: i16, brokers: u32 },
}

impl Refusal {
    /// Stable CamelCase word for the `Ready=False` condition.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::PartitionDecrease { .. } => "PartitionDecreaseNotSupported",
            Refusal::ReplicationFactorChange { .. } => "ReplicationFactorChangeNotSupported",
            Refusal::ReplicasExceedBrokers { .. } => "ReplicasExceedBrokers",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::PartitionDecrease { from, to } => write!(
                f,
                "cannot decrease partitions from {from} to {to}: Kafka does not support it"
            ),
            Refusal::ReplicationFactorChange { from, to } => write!(
                f,
                "cannot change the replication factor from {from} to {to}: not supported yet"
            ),
            Refusal::ReplicasExceedBrokers { replicas, brokers } => write!(
                f,
                "cannot create {replicas} replicas: the cluster has {brokers} brokers"
            ),
        }
    }
}

/// Everything decided about one topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicPlan {
    pub kafka: KafkaAction,
    pub spec: SpecAction,
    /// The base to store once every action succeeded; `None` = remove the topic's entry.
    pub new_base: Option<TopicState>,
    pub conflicts: Vec<Conflict>,
    pub refusals: Vec<Refusal>,
    /// Both sides existed without a base: `conflicts` only record how differences were settled.
    pub adopted: bool,
    /// Kafka's topic ID differs from the base's: the topic was deleted and recreated.
    pub recreated_in_kafka: bool,
}

impl TopicPlan {
    /// Whether the plan changes Kafka or the `KafkaTopic`.
    pub fn has_actions(&self) -> bool {
        self.kafka != KafkaAction::Nothing || self.spec != SpecAction::Nothing
    }

    /// Conflicts to report as warnings: none when adopting, where differences are expected.
    pub fn warnings(&self) -> &[Conflict] {
        if self.adopted { &[] } else { &self.conflicts }
    }

    /// Whether the store must be written.
    pub fn base_changed(&self, old: Option<&TopicState>) -> bool {
        self.new_base.as_ref() != old
    }
}

impl KafkaAction {
    /// The admin operations that carry out this action on `topic`, for batching.
    pub fn admin_ops(&self, topic: &str) -> Vec<AdminOp> {
        let topic = topic.to_owned();
        match self {
            KafkaAction::Nothing => Vec::new(),
            KafkaAction::Create(state) => vec![AdminOp::CreateTopic {
                topic,
                state: state.clone(),
            }],
            KafkaAction::Alter { partitions, config } => {
                let mut ops = Vec::new();
                if let Some(increase) = partitions {
                    ops.push(AdminOp::CreatePartitions {
                        topic: topic.clone(),
                        increase: *increase,
                    });
                }
                if !config.is_empty() {
                    ops.push(AdminOp::AlterConfigs {
                        topic,
                        ops: config.clone(),
                    });
                }
                ops
            }
            KafkaAction::Delete { partitions } => vec![AdminOp::DeleteTopic {
                topic,
                partitions: *partitions,
            }],
        }
    }
}

/// Plans one topic; see the module doc. `None` for a side means the topic does not exist
/// there (for the base: nothing stored).
pub fn plan_topic(
    base: Option<&TopicState>,
    kube: Option<&TopicState>,
    kafka: Option<&TopicState>,
    mode: SyncMode,
) -> TopicPlan {
    match (base, kube, kafka) {
        (_, Some(kube), Some(kafka)) => merge(base, kube, kafka, mode),
        (None, None, None) | (Some(_), None, None) => TopicPlan::default(),
        (None, Some(kube), None) => create_in_kafka(kube, None),
        (None, None, Some(kafka)) => match mode {
            SyncMode::Bidirectional => TopicPlan {
                spec: SpecAction::Create(kafka.clone()),
                new_base: Some(kafka.clone()),
                ..TopicPlan::default()
            },
            SyncMode::KubernetesToKafka => TopicPlan::default(),
        },
        (Some(base), Some(kube), None) => deleted_in_kafka(base, kube, mode),
        (Some(base), None, Some(kafka)) => gone_from_kubernetes(base, kafka, mode),
    }
}

/// [`plan_topic`], also refusing to create a topic with more replicas than `brokers`.
pub fn plan_topic_in_cluster(
    base: Option<&TopicState>,
    kube: Option<&TopicState>,
    kafka: Option<&TopicState>,
    mode: SyncMode,
    brokers: u32,
) -> TopicPlan {
    let mut plan = plan_topic(base, kube, kafka, mode);
    if let KafkaAction::Create(state) = &plan.kafka
        && let Some(replicas) = state.replicas
        && i64::from(replicas) > i64::from(brokers)
    {
        plan.kafka = KafkaAction::Nothing;
        plan.refusals
            .push(Refusal::ReplicasExceedBrokers { replicas, brokers });
        // Nothing was created, so nothing new is synced.
        plan.new_base = base.cloned();
    }
    plan
}

fn create_in_kafka(kube: &TopicState, base: Option<&TopicState>) -> TopicPlan {
    let state = TopicState {
        topic_id: None,
        partitions: kube.partitions.or(base.and_then(|b| b.partitions)),
        replicas: kube.replicas.or(base.and_then(|b| b.replicas)),
        config: kube
            .config
            .iter()
            .map(|(key, value)| (key.clone(), value.trim().to_owned()))
            .collect(),
    };
    TopicPlan {
        kafka: KafkaAction::Create(state.clone()),
        new_base: Some(state),
        ..TopicPlan::default()
    }
}

fn deleted_in_kafka(base: &TopicState, kube: &TopicState, mode: SyncMode) -> TopicPlan {
    let never_observed = base.topic_id.is_none();
    if mode == SyncMode::KubernetesToKafka || never_observed {
        return create_in_kafka(kube, Some(base));
    }
    if kube_changed_since(base, kube) {
        let mut plan = create_in_kafka(kube, Some(base));
        plan.conflicts.push(Conflict::DeletedWhileChanged {
            deleted_in: Side::Kafka,
        });
        return plan;
    }
    TopicPlan {
        spec: SpecAction::Delete,
        ..TopicPlan::default()
    }
}

fn gone_from_kubernetes(base: &TopicState, kafka: &TopicState, mode: SyncMode) -> TopicPlan {
    if mode == SyncMode::KubernetesToKafka {
        return TopicPlan::default();
    }
    if kafka_changed_since(base, kafka) {
        return TopicPlan {
            spec: SpecAction::Create(kafka.clone()),
            new_base: Some(kafka.clone()),
            conflicts: vec![Conflict::DeletedWhileChanged {
                deleted_in: Side::Kubernetes,
            }],
            recreated_in_kafka: recreated_in_kafka(Some(base), kafka),
            ..TopicPlan::default()
        };
    }
    TopicPlan {
        kafka: KafkaAction::Delete {
            partitions: kafka.partitions,
        },
        ..TopicPlan::default()
    }
}

/// A declared field different from the base, or a different config. Undeclared partitions or
/// replicas are no change.
fn kube_changed_since(base: &TopicState, kube: &TopicState) -> bool {
    kube.partitions.is_some_and(|p| Some(p) != base.partitions)
        || kube.replicas.is_some_and(|r| Some(r) != base.replicas)
        || !configs_equivalent(&kube.config, &base.config)
}

/// Kafka is unchanged only if provably the same topic with the same fields. Values Kafka did
/// not report are no change.
fn kafka_changed_since(base: &TopicState, kafka: &TopicState) -> bool {
    let same_topic = match (&base.topic_id, &kafka.topic_id) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(was), Some(is)) => was == is,
    };
    !same_topic
        || kafka.partitions.is_some_and(|p| Some(p) != base.partitions)
        || kafka.replicas.is_some_and(|r| Some(r) != base.replicas)
        || !configs_equivalent(&kafka.config, &base.config)
}

fn recreated_in_kafka(base: Option<&TopicState>, kafka: &TopicState) -> bool {
    matches!(
        (base.and_then(|b| b.topic_id.as_ref()), kafka.topic_id.as_ref()),
        (Some(was), Some(is)) if was != is
    )
}

/// What the comparison of one numeric field says, before the field's own rule applies.
enum Decision<T> {
    /// Nothing to do; the synced value (unknown if `None`).
    Settled(Option<T>),
    /// Bring Kafka to Kubernetes' value.
    ToKafka { kube: T, kafka: T },
    /// Write Kafka's value to the spec.
    ToSpec(T),
    /// Both changed, or no base to tell which did.
    Conflict { kube: T, kafka: T },
}

/// `base` is `None` when there is no base at all, `Some(None)` when the base has not seen
/// this field.
fn decide<T: Copy + PartialEq>(
    base: Option<Option<T>>,
    kube: Option<T>,
    kafka: Option<T>,
    mode: SyncMode,
) -> Decision<T> {
    let Some(kafka) = kafka else {
        // Kafka did not report the field: keep what was known.
        return Decision::Settled(base.flatten());
    };
    let Some(kube) = kube else {
        return Decision::Settled(Some(kafka));
    };
    if kube == kafka {
        return Decision::Settled(Some(kafka));
    }
    if mode == SyncMode::KubernetesToKafka {
        return Decision::ToKafka { kube, kafka };
    }
    match base {
        None => Decision::Conflict { kube, kafka },
        Some(base) => {
            let base = base.unwrap_or(kafka);
            if kube == base {
                Decision::ToSpec(kafka)
            } else if kafka == base {
                Decision::ToKafka { kube, kafka }
            } else {
                Decision::Conflict { kube, kafka }
            }
        }
    }
}

/// Accumulates one topic's decisions while its fields are merged.
#[derive(Default)]
struct Merged {
    raise: Option<PartitionIncrease>,
    spec: SpecUpdate,
    conflicts: Vec<Conflict>,
    refusals: Vec<Refusal>,
}

impl Merged {
    fn conflict(
        &mut self,
        field: Field,
        kube: Option<String>,
        kafka: Option<String>,
        winner: Side,
    ) {
        self.conflicts.push(Conflict::Value {
            field,
            kube,
            kafka,
            winner,
        });
    }

    fn partitions(&mut self, decision: Decision<i32>) -> Option<i32> {
        match decision {
            Decision::Settled(value) => value,
            Decision::ToKafka { kube, kafka } if kube > kafka => {
                self.raise = Some(PartitionIncrease {
                    from: kafka,
                    to: kube,
                });
                Some(kube)
            }
            Decision::ToKafka { kube, kafka } => {
                self.refusals.push(Refusal::PartitionDecrease {
                    from: kafka,
                    to: kube,
                });
                Some(kafka)
            }
            Decision::ToSpec(kafka) => {
                self.spec.partitions = Some(kafka);
                Some(kafka)
            }
            Decision::Conflict { kube, kafka } => {
                let winner = if kube > kafka {
                    self.raise = Some(PartitionIncrease {
                        from: kafka,
                        to: kube,
                    });
                    Side::Kubernetes
                } else {
                    self.spec.partitions = Some(kafka);
                    Side::Kafka
                };
                let (k, f) = (Some(kube.to_string()), Some(kafka.to_string()));
                self.conflict(Field::Partitions, k, f, winner);
                Some(kube.max(kafka))
            }
        }
    }

    fn replicas(&mut self, decision: Decision<i16>) -> Option<i16> {
        match decision {
            Decision::Settled(value) => value,
            Decision::ToKafka { kube, kafka } => {
                self.refusals.push(Refusal::ReplicationFactorChange {
                    from: kafka,
                    to: kube,
                });
                Some(kafka)
            }
            Decision::ToSpec(kafka) => {
                self.spec.replicas = Some(kafka);
                Some(kafka)
            }
            Decision::Conflict { kube, kafka } => {
                let (k, f) = (Some(kube.to_string()), Some(kafka.to_string()));
                self.conflict(Field::Replicas, k, f, Side::Kubernetes);
                self.refusals.push(Refusal::ReplicationFactorChange {
                    from: kafka,
                    to: kube,
                });
                Some(kafka)
            }
        }
    }

    /// The config both sides should end with.
    fn config(
        &mut self,
        base: Option<&Configs>,
        kube: &Configs,
        kafka: &Configs,
        mode: SyncMode,
    ) -> Configs {
        if mode == SyncMode::KubernetesToKafka {
            return kube.clone();
        }
        let same = |a: Option<&String>, b: Option<&String>| match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => config_values_equal(a, b),
            _ => false,
        };
        let keys: BTreeSet<&String> = kube
            .keys()
            .chain(kafka.keys())
            .chain(base.into_iter().flat_map(|b| b.keys()))
            .collect();
        let mut target = Configs::new();
        for key in keys {
            let (k, f) = (kube.get(key), kafka.get(key));
            let chosen = if same(k, f) {
                k
            } else {
                match base.map(|b| b.get(key)) {
                    Some(b) if same(k, b) => f,
                    Some(b) if same(f, b) => k,
                    _ => {
                        let field = Field::Config(key.clone());
                        self.conflict(field, k.cloned(), f.cloned(), Side::Kubernetes);
                        k
                    }
                }
            };
            if let Some(value) = chosen {
                target.insert(key.clone(), value.clone());
            }
        }
        target
    }
}

fn merge(
    base: Option<&TopicState>,
    kube: &TopicState,
    kafka: &TopicState,
    mode: SyncMode,
) -> TopicPlan {
    let mut merged = Merged::default();
    let partitions = merged.partitions(decide(
        base.map(|b| b.partitions),
        kube.partitions,
        kafka.partitions,
        mode,
    ));
    let replicas = merged.replicas(decide(
        base.map(|b| b.replicas),
        kube.replicas,
        kafka.replicas,
        mode,
    ));
    let target = merged.config(base.map(|b| &b.config), &kube.config, &kafka.config, mode);

    let config_ops = config_ops(&target, &kafka.config);
    if !configs_equivalent(&target, &kube.config) {
        merged.spec.config = Some(target.clone());
    }
    let kafka_action = if merged.raise.is_some() || !config_ops.is_empty() {
        KafkaAction::Alter {
            partitions: merged.raise,
            config: config_ops,
        }
    } else {
        KafkaAction::Nothing
    };
    let spec_action = if merged.spec == SpecUpdate::default() {
        SpecAction::Nothing
    } else {
        SpecAction::Update(merged.spec)
    };
    let new_base = TopicState {
        topic_id: kafka
            .topic_id
            .clone()
            .or_else(|| base.and_then(|b| b.topic_id.clone())),
        partitions,
        replicas,
        config: keep_stored_spelling(target, base.map(|b| &b.config)),
    };
    TopicPlan {
        kafka: kafka_action,
        spec: spec_action,
        new_base: Some(new_base),
        conflicts: merged.conflicts,
        refusals: merged.refusals,
        adopted: base.is_none(),
        recreated_in_kafka: recreated_in_kafka(base, kafka),
    }
}

/// Keeps the base's spelling of values that did not change, so equal values spelled
/// differently on the two sides do not rewrite the store on every reconcile.
fn keep_stored_spelling(target: Configs, base: Option<&Configs>) -> Configs {
    target
        .into_iter()
        .map(|(key, value)| {
            let value = match base.and_then(|b| b.get(&key)) {
                Some(stored) if config_values_equal(stored, &value) => stored.clone(),
                _ => value,
            };
            (key, value)
        })
        .collect()
}

#[cfg(test)]
mod tests;
