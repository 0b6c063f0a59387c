//! The truth table of the 3-way merge, and the convergence property over the same table.

use super::*;
use rstest::rstest;

const BI: SyncMode = SyncMode::Bidirectional;
const ONE_WAY: SyncMode = SyncMode::KubernetesToKafka;

/// The topic as last synced and as Kafka reports it: ID `A`, 3 partitions, 3 replicas, two
/// overrides.
fn topic(id: &str) -> TopicState {
    TopicState {
        topic_id: Some(id.to_owned()),
        partitions: Some(3),
        replicas: Some(3),
        config: [("cleanup.policy", "delete"), ("retention.ms", "1000")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    }
}

/// The same topic as its `KafkaTopic` spec declares it.
fn spec() -> TopicState {
    TopicState {
        topic_id: None,
        ..topic("A")
    }
}

trait Edit: Sized {
    fn partitions(self, n: Option<i32>) -> Self;
    fn replicas(self, n: Option<i16>) -> Self;
    fn set(self, key: &str, value: &str) -> Self;
    fn unset(self, key: &str) -> Self;
    fn no_config(self) -> Self;
}

impl Edit for TopicState {
    fn partitions(mut self, n: Option<i32>) -> Self {
        self.partitions = n;
        self
    }
    fn replicas(mut self, n: Option<i16>) -> Self {
        self.replicas = n;
        self
    }
    fn set(mut self, key: &str, value: &str) -> Self {
        self.config.insert(key.to_owned(), value.to_owned());
        self
    }
    fn unset(mut self, key: &str) -> Self {
        self.config.remove(key);
        self
    }
    fn no_config(mut self) -> Self {
        self.config.clear();
        self
    }
}

fn set(key: &str, value: &str) -> ConfigOp {
    ConfigOp::Set(key.to_owned(), value.to_owned())
}

fn delete(key: &str) -> ConfigOp {
    ConfigOp::Delete(key.to_owned())
}

fn raise(from: i32, to: i32) -> Option<PartitionIncrease> {
    Some(PartitionIncrease { from, to })
}

fn conflict(field: Field, kube: Option<&str>, kafka: Option<&str>, winner: Side) -> Conflict {
    Conflict::Value {
        field,
        kube: kube.map(str::to_owned),
        kafka: kafka.map(str::to_owned),
        winner,
    }
}

fn config_field(key: &str) -> Field {
    Field::Config(key.to_owned())
}

fn nothing_but_base(base: TopicState) -> TopicPlan {
    TopicPlan {
        new_base: Some(base),
        ..TopicPlan::default()
    }
}

struct Case {
    base: Option<TopicState>,
    kube: Option<TopicState>,
    kafka: Option<TopicState>,
    mode: SyncMode,
    expected: TopicPlan,
}

fn case(
    base: Option<TopicState>,
    kube: Option<TopicState>,
    kafka: Option<TopicState>,
    mode: SyncMode,
    expected: TopicPlan,
) -> Case {
    Case {
        base,
        kube,
        kafka,
        mode,
        expected,
    }
}

fn plan_case(c: &Case) -> TopicPlan {
    plan_topic(c.base.as_ref(), c.kube.as_ref(), c.kafka.as_ref(), c.mode)
}

// ---- nothing differs ----

fn in_sync() -> Case {
    let expected = nothing_but_base(topic("A"));
    case(
        Some(topic("A")),
        Some(spec()),
        Some(topic("A")),
        BI,
        expected,
    )
}

fn equal_after_normalising() -> Case {
    let base = topic("A").set("unclean.leader.election.enable", "true");
    let kube = spec()
        .set("retention.ms", " 1000")
        .set("unclean.leader.election.enable", "TRUE");
    let kafka = base.clone();
    case(
        Some(base.clone()),
        Some(kube),
        Some(kafka),
        BI,
        nothing_but_base(base),
    )
}

fn never_existed() -> Case {
    case(None, None, None, BI, TopicPlan::default())
}

// ---- one side changed ----

fn kube_raises_partitions() -> Case {
    let expected = TopicPlan {
        kafka: KafkaAction::Alter {
            partitions: raise(3, 6),
            config: vec![],
        },
        ..nothing_but_base(topic("A").partitions(Some(6)))
    };
    let kube = spec().partitions(Some(6));
    case(Some(topic("A")), Some(kube), Some(topic("A")), BI, expected)
}

fn kube_lowers_partitions() -> Case {
    let expected = TopicPlan {
        refusals: vec![Refusal::PartitionDecrease { from: 3, to: 2 }],
        ..nothing_but_base(topic("A"))
    };
    let kube = spec().partitions(Some(2));
    case(Some(topic("A")), Some(kube), Some(topic("A")), BI, expected)
}

fn kube_changes_replicas() -> Case {
    let expected = TopicPlan {
        refusals: vec![Refusal::ReplicationFactorChange { from: 3, to: 2 }],
        ..nothing_but_base(topic("A"))
    };
    let kube = spec().replicas(Some(2));
    case(Some(topic("A")), Some(kube), Some(topic("A")), BI, expected)
}

fn kube_changes_config_value() -> Case {
    let expected = TopicPlan {
        kafka: KafkaAction::Alter {
            partitions: None,
            config: vec![set("retention.ms", "2000")],
        },
        ..nothing_but_base(topic("A").set("retention.ms", "2000"))
    };
    let kube = spec().set("retention.ms", "2000");
    case(Some(topic("A")), Some(kube), Some(topic("A")), BI, expected)
}

fn kube_adds_config_key() -> Case {
    let expected = TopicPlan {
        kafka: KafkaAction::Alter {
            partitions: None,
            config: vec![set("max.message.bytes", "2097152")],
        },
        ..nothing_but_base(topic("A").set("max.message.bytes", "2097152"))
    };
    let kube = spec().set("max.message.bytes", "2097152");
    case(Some(topic("A")), Some(kube), Some(topic("A")), BI, expected)
}

fn kube_removes_config_key() -> Case {
    let expected = TopicPlan {
        kafka: KafkaAction::Alter {
            partitions: None,
            config: vec![delete("cleanup.policy")],
        },
        ..nothing_but_base(topic("A").unset("cleanup.policy"))
    };
    let kube = spec().unset("cleanup.policy");
    case(Some(topic("A")), Some(kube), Some(topic("A")), BI, expected)
}

fn kafka_raises_partitions() -> Case {
    let kafka = topic("A").partitions(Some(6));
    let expected = TopicPlan {
        spec: SpecAction::Update(SpecUpdate {
            partitions: Some(6),
            ..SpecUpdate::default()
        }),
        ..nothing_but_base(kafka.clone())
    };
    case(Some(topic("A")), Some(spec()), Some(kafka), BI, expected)
}

fn kafka_changes_replicas() -> Case {
    let kafka = topic("A").replicas(Some(4));
    let expected = TopicPlan {
        spec: SpecAction::Update(SpecUpdate {
            replicas: Some(4),
            ..SpecUpdate::default()
        }),
        ..nothing_but_base(kafka.clone())
    };
    case(Some(topic("A")), Some(spec()), Some(kafka), BI, expected)
}

fn kafka_changes_config_value() -> Case {
    let kafka = topic("A").set("retention.ms", "5000");
    let expected = TopicPlan {
        spec: SpecAction::Update(SpecUpdate {
            config: Some(kafka.config.clone()),
            ..SpecUpdate::default()
        }),
        ..nothing_but_base(kafka.clone())
    };
    case(Some(topic("A")), Some(spec()), Some(kafka), BI, expected)
}

fn kafka_adds_config_key() -> Case {
    let kafka = topic("A").set("compression.type", "lz4");
    let expected = TopicPlan {
        spec: SpecAction::Update(SpecUpdate {
            config: Some(kafka.config.clone()),
            ..SpecUpdate::default()
        }),
        ..nothing_but_base(kafka.clone())
    };
    case(Some(topic("A")), Some(spec()), Some(kafka), BI, expected)
}

fn kafka_removes_config_key() -> Case {
    let kafka = topic("A").unset("retention.ms");
    let expected = TopicPlan {
        spec: SpecAction::Update(SpecUpdate {
            config: Some(kafka.config.clone()),
            ..SpecUpdate::default()
        }),
        ..nothing_but_base(kafka.clone())
    };
    case(Some(topic("A")), Some(spec()), Some(kafka), BI, expected)
}

// ---- both changed ----

fn independent_changes_merge() -> Case {
    let kube = spec().set("retention.ms", "2000").unset("cleanup.policy");
    let kafka = topic("A")
        .partitions(Some(6))
        .set("compression.type", "lz4");
    let merged = topic("A")
        .partitions(Some(6))
        .unset("cleanup.policy")
        .set("retention.ms", "2000")
        .set("compression.type", "lz4");
    let expected = TopicPlan {
        kafka: KafkaAction::Alter {
            partitions: None,
            config: vec![delete("cleanup.policy"), set("retention.ms", "2000")],
        },
        spec: SpecAction::Update(SpecUpdate {
            partitions: Some(6),
            replicas: None,
            config: Some(merged.config.clone()),
        }),
        ..nothing_but_base(merged)
    };
    case(Some(topic("A")), Some(kube), Some(kafka), BI, expected)
}

fn same_change_on_both_sides() -> Case {
    let kube = spec().partitions(Some(6)).set("retention.ms", "2000");
    let kafka = topic("A").partitions(Some(6)).set("retention.ms", "2000");
    let expected = nothing_but_base(kafka.clone());
    case(Some(topic("A")), Some(kube), Some(kafka), BI, expected)
}

fn conflicting_config_value() -> Case {
    let kube = spec().set("retention.ms", "2000");
    let kafka = topic("A").set("retention.ms", "5000");
    let expected = TopicPlan {
        kafka: KafkaAction::Alter {
            partitions: None,
            config: vec![set("retention.ms", "2000")],
        },
        conflicts: vec![conflict(
            config_field("retention.ms"),
            Some("2000"),
            Some("5000"),
            Side::Kubernetes,
        )],
        ..nothing_but_base(topic("A").set("retention.ms", "2000"))
    };
    case(Some(topic("A")), Some(kube), Some(kafka), BI, expected)
}

fn conflicting_removal_and_change() -> Case {
    let kube = spec().unset("cleanup.policy");
    let kafka = topic("A").set("cleanup.policy", "compact");
    let expected = TopicPlan {
        kafka: KafkaAction::Alter {
            partitions: None,
            config: vec![delete("cleanup.policy")],
        },
        conflicts: vec![conflict(
            config_field("cleanup.policy"),
            None,
            Some("compact"),
            Side::Kubernetes,
        )],
        ..nothing_but_base(topic("A").unset("cleanup.policy"))
    };
    case(Some(topic("A")), Some(kube), Some(kafka), BI, expected)
}

fn conflicting_additions() -> Case {
    let kube = spec().set("compression.type", "lz4");
    let kafka = topic("A").set("compression.type", "zstd");
    let expected = TopicPlan {
        kafka: KafkaAction::Alter {
            partitions: None,
            config: vec![set("compression.type", "lz4")],
        },
        conflicts: vec![conflict(
            config_field("compression.type"),
            Some("lz4"),
            Some("zstd"),
            Side::Kubernetes,
        )],
        ..nothing_but_base(topic("A").set("compression.type", "lz4"))
    };
    case(Some(topic("A")), Some(kube), Some(kafka), BI, expected)
}

fn conflicting_partitions_kafka_larger() -> Case {
    let kube = spec().partitions(Some(6));
    let kafka = topic("A").partitions(Some(9));
    let expected = TopicPlan {
        spec: SpecAction::Update(SpecUpdate {
            partitions: Some(9),
            ..SpecUpdate::default()
        }),
        conflicts: vec![conflict(
            Field::Partitions,
            Some("6"),
            Some("9"),
            Side::Kafka,
        )],
        ..nothing_but_base(kafka.clone())
    };
    case(Some(topic("A")), Some(kube), Some(kafka), BI, expected)
}

fn conflicting_partitions_kube_larger() -> Case {
    let kube = spec().partitions(Some(9));
    let kafka = topic("A").partitions(Some(6));
    let expected = TopicPlan {
        kafka: KafkaAction::Alter {
            partitions: raise(6, 9),
            config: vec![],
        },
        conflicts: vec![conflict(
            Field::Partitions,
            Some("9"),
            Some("6"),
            Side::Kubernetes,
        )],
        ..nothing_but_base(topic("A").partitions(Some(9)))
    };
    case(Some(topic("A")), Some(kube), Some(kafka), BI, expected)
}

fn kube_lowers_while_kafka_raises_partitions() -> Case {
    // A decrease that meets a Kafka change is a conflict settled by the larger count, not a
    // refusal.
    let kube = spec().partitions(Some(2));
    let kafka = topic("A").partitions(Some(6));
    let expected = TopicPlan {
        spec: SpecAction::Update(SpecUpdate {
            partitions: Some(6),
            ..SpecUpdate::default()
        }),
        conflicts: vec![conflict(
            Field::Partitions,
            Some("2"),
            Some("6"),
            Side::Kafka,
        )],
        ..nothing_but_base(kafka.clone())
    };
    case(Some(topic("A")), Some(kube), Some(kafka), BI, expected)
}

fn conflicting_replicas() -> Case {
    let kube = spec().replicas(Some(2));
    let kafka = topic("A").replicas(Some(4));
    let expected = TopicPlan {
        conflicts: vec![conflict(
            Field::Replicas,
            Some("2"),
            Some("4"),
            Side::Kubernetes,
        )],
        refusals: vec![Refusal::ReplicationFactorChange { from: 4, to: 2 }],
        ..nothing_but_base(kafka.clone())
    };
    case(Some(topic("A")), Some(kube), Some(kafka), BI, expected)
}

// ---- created on one side ----

fn created_in_kube() -> Case {
    let expected = TopicPlan {
        kafka: KafkaAction::Create(spec()),
        ..nothing_but_base(spec())
    };
    case(None, Some(spec()), None, BI, expected)
}

fn created_in_kube_with_defaults() -> Case {
    let kube = spec().partitions(None).replicas(None).no_config();
    let expected = TopicPlan {
        kafka: KafkaAction::Create(kube.clone()),
        ..nothing_but_base(kube.clone())
    };
    case(None, Some(kube), None, BI, expected)
}

fn created_in_kafka() -> Case {
    let expected = TopicPlan {
        spec: SpecAction::Create(topic("A")),
        ..nothing_but_base(topic("A"))
    };
    case(None, None, Some(topic("A")), BI, expected)
}

// ---- deleted on one side ----

fn deleted_in_kafka() -> Case {
    let expected = TopicPlan {
        spec: SpecAction::Delete,
        ..TopicPlan::default()
    };
    case(Some(topic("A")), Some(spec()), None, BI, expected)
}

fn deleted_in_kafka_while_kube_changed() -> Case {
    let kube = spec().set("retention.ms", "2000");
    let expected = TopicPlan {
        kafka: KafkaAction::Create(kube.clone()),
        conflicts: vec![Conflict::DeletedWhileChanged {
            deleted_in: Side::Kafka,
        }],
        ..nothing_but_base(kube.clone())
    };
    case(Some(topic("A")), Some(kube), None, BI, expected)
}

fn recreation_fills_undeclared_fields_from_base() -> Case {
    let kube = spec()
        .partitions(None)
        .replicas(None)
        .set("retention.ms", "2000");
    let created = spec().set("retention.ms", "2000");
    let expected = TopicPlan {
        kafka: KafkaAction::Create(created.clone()),
        conflicts: vec![Conflict::DeletedWhileChanged {
            deleted_in: Side::Kafka,
        }],
        ..nothing_but_base(created)
    };
    case(Some(topic("A")), Some(kube), None, BI, expected)
}

fn deleted_in_kafka_before_ever_observed() -> Case {
    // The base was stored right after asking Kafka to create the topic; no ID seen yet.
    let expected = TopicPlan {
        kafka: KafkaAction::Create(spec()),
        ..nothing_but_base(spec())
    };
    case(Some(spec()), Some(spec()), None, BI, expected)
}

fn kube_gone_kafka_unchanged() -> Case {
    let expected = TopicPlan {
        kafka: KafkaAction::Delete {
            partitions: Some(3),
        },
        ..TopicPlan::default()
    };
    case(Some(topic("A")), None, Some(topic("A")), BI, expected)
}

fn kube_gone_while_kafka_changed() -> Case {
    let kafka = topic("A").partitions(Some(6));
    let expected = TopicPlan {
        spec: SpecAction::Create(kafka.clone()),
        conflicts: vec![Conflict::DeletedWhileChanged {
            deleted_in: Side::Kubernetes,
        }],
        ..nothing_but_base(kafka.clone())
    };
    case(Some(topic("A")), None, Some(kafka), BI, expected)
}

fn kube_gone_while_kafka_recreated() -> Case {
    // Same fields, new topic ID: a different topic, so not provably unchanged.
    let expected = TopicPlan {
        spec: SpecAction::Create(topic("B")),
        conflicts: vec![Conflict::DeletedWhileChanged {
            deleted_in: Side::Kubernetes,
        }],
        recreated_in_kafka: true,
        ..nothing_but_base(topic("B"))
    };
    case(Some(topic("A")), None, Some(topic("B")), BI, expected)
}

fn gone_on_both_sides() -> Case {
    case(Some(topic("A")), None, None, BI, TopicPlan::default())
}

// ---- recreated in Kafka ----

fn recreated_in_kafka() -> Case {
    let kafka = topic("B").partitions(Some(1)).no_config();
    let expected = TopicPlan {
        spec: SpecAction::Update(SpecUpdate {
            partitions: Some(1),
            replicas: None,
            config: Some(Configs::new()),
        }),
        recreated_in_kafka: true,
        ..nothing_but_base(kafka.clone())
    };
    case(Some(topic("A")), Some(spec()), Some(kafka), BI, expected)
}

fn recreated_in_kafka_while_kube_changed() -> Case {
    let kube = spec().partitions(Some(6)).set("retention.ms", "2000");
    let kafka = topic("B").partitions(Some(1)).no_config();
    let merged = topic("B")
        .partitions(Some(6))
        .no_config()
        .set("retention.ms", "2000");
    let expected = TopicPlan {
        kafka: KafkaAction::Alter {
            partitions: raise(1, 6),
            config: vec![set("retention.ms", "2000")],
        },
        // cleanup.policy changed only in Kafka (gone with the old topic): the spec follows.
        spec: SpecAction::Update(SpecUpdate {
            config: Some(merged.config.clone()),
            ..SpecUpdate::default()
        }),
        conflicts: vec![
            conflict(Field::Partitions, Some("6"), Some("1"), Side::Kubernetes),
            conflict(
                config_field("retention.ms"),
                Some("2000"),
                None,
                Side::Kubernetes,
            ),
        ],
        recreated_in_kafka: true,
        ..nothing_but_base(merged)
    };
    case(Some(topic("A")), Some(kube), Some(kafka), BI, expected)
}

// ---- no base: adoption ----

fn adoption_of_identical_topic() -> Case {
    let expected = TopicPlan {
        adopted: true,
        ..nothing_but_base(topic("A"))
    };
    case(None, Some(spec()), Some(topic("A")), BI, expected)
}

fn adoption_settles_differences_by_the_rule() -> Case {
    let kube = spec().partitions(Some(6)).set("retention.ms", "2000");
    let kafka = topic("A").set("compression.type", "lz4");
    let expected = TopicPlan {
        kafka: KafkaAction::Alter {
            partitions: raise(3, 6),
            config: vec![delete("compression.type"), set("retention.ms", "2000")],
        },
        conflicts: vec![
            conflict(Field::Partitions, Some("6"), Some("3"), Side::Kubernetes),
            conflict(
                config_field("compression.type"),
                None,
                Some("lz4"),
                Side::Kubernetes,
            ),
            conflict(
                config_field("retention.ms"),
                Some("2000"),
                Some("1000"),
                Side::Kubernetes,
            ),
        ],
        adopted: true,
        ..nothing_but_base(topic("A").partitions(Some(6)).set("retention.ms", "2000"))
    };
    case(None, Some(kube), Some(kafka), BI, expected)
}

fn adoption_keeps_kafkas_larger_partition_count() -> Case {
    let kafka = topic("A").partitions(Some(6));
    let expected = TopicPlan {
        spec: SpecAction::Update(SpecUpdate {
            partitions: Some(6),
            ..SpecUpdate::default()
        }),
        conflicts: vec![conflict(
            Field::Partitions,
            Some("3"),
            Some("6"),
            Side::Kafka,
        )],
        adopted: true,
        ..nothing_but_base(kafka.clone())
    };
    case(None, Some(spec()), Some(kafka), BI, expected)
}

fn adoption_with_other_replication_factor() -> Case {
    let kafka = topic("A").replicas(Some(2));
    let expected = TopicPlan {
        conflicts: vec![conflict(
            Field::Replicas,
            Some("3"),
            Some("2"),
            Side::Kubernetes,
        )],
        refusals: vec![Refusal::ReplicationFactorChange { from: 2, to: 3 }],
        adopted: true,
        ..nothing_but_base(kafka.clone())
    };
    case(None, Some(spec()), Some(kafka), BI, expected)
}

// ---- undeclared and unobserved fields ----

fn undeclared_partitions_follow_kafka() -> Case {
    let kafka = topic("A").partitions(Some(6));
    let kube = spec().partitions(None);
    case(
        Some(topic("A")),
        Some(kube),
        Some(kafka.clone()),
        BI,
        nothing_but_base(kafka),
    )
}

fn unobserved_base_learns_from_kafka() -> Case {
    let created = spec().partitions(None).replicas(None);
    let expected = nothing_but_base(topic("A"));
    case(
        Some(created.clone()),
        Some(created),
        Some(topic("A")),
        BI,
        expected,
    )
}

fn kube_declares_partitions_after_default_creation() -> Case {
    let created = spec().partitions(None);
    let kube = spec().partitions(Some(6));
    let kafka = topic("A").partitions(Some(1));
    let expected = TopicPlan {
        kafka: KafkaAction::Alter {
            partitions: raise(1, 6),
            config: vec![],
        },
        ..nothing_but_base(topic("A").partitions(Some(6)))
    };
    case(Some(created), Some(kube), Some(kafka), BI, expected)
}

// ---- one-way mode ----

fn one_way_ignores_kafka_only_topic() -> Case {
    case(None, None, Some(topic("A")), ONE_WAY, TopicPlan::default())
}

fn one_way_reverts_config_drift() -> Case {
    let kafka = topic("A")
        .set("retention.ms", "5000")
        .set("compression.type", "lz4");
    let expected = TopicPlan {
        kafka: KafkaAction::Alter {
            partitions: None,
            config: vec![delete("compression.type"), set("retention.ms", "1000")],
        },
        ..nothing_but_base(topic("A"))
    };
    case(
        Some(topic("A")),
        Some(spec()),
        Some(kafka),
        ONE_WAY,
        expected,
    )
}

fn one_way_refuses_to_shrink_raised_partitions() -> Case {
    let kafka = topic("A").partitions(Some(6));
    let expected = TopicPlan {
        refusals: vec![Refusal::PartitionDecrease { from: 6, to: 3 }],
        ..nothing_but_base(kafka.clone())
    };
    case(
        Some(topic("A")),
        Some(spec()),
        Some(kafka),
        ONE_WAY,
        expected,
    )
}

fn one_way_refuses_to_revert_replicas() -> Case {
    let kafka = topic("A").replicas(Some(4));
    let expected = TopicPlan {
        refusals: vec![Refusal::ReplicationFactorChange { from: 4, to: 3 }],
        ..nothing_but_base(kafka.clone())
    };
    case(
        Some(topic("A")),
        Some(spec()),
        Some(kafka),
        ONE_WAY,
        expected,
    )
}

fn one_way_recreates_topic_deleted_in_kafka() -> Case {
    let expected = TopicPlan {
        kafka: KafkaAction::Create(spec()),
        ..nothing_but_base(spec())
    };
    case(Some(topic("A")), Some(spec()), None, ONE_WAY, expected)
}

fn one_way_applies_kube_changes() -> Case {
    let kube = spec().partitions(Some(6)).set("retention.ms", "2000");
    let expected = TopicPlan {
        kafka: KafkaAction::Alter {
            partitions: raise(3, 6),
            config: vec![set("retention.ms", "2000")],
        },
        ..nothing_but_base(topic("A").partitions(Some(6)).set("retention.ms", "2000"))
    };
    case(
        Some(topic("A")),
        Some(kube),
        Some(topic("A")),
        ONE_WAY,
        expected,
    )
}

fn one_way_refuses_kube_replicas_change() -> Case {
    let expected = TopicPlan {
        refusals: vec![Refusal::ReplicationFactorChange { from: 3, to: 2 }],
        ..nothing_but_base(topic("A"))
    };
    let kube = spec().replicas(Some(2));
    case(
        Some(topic("A")),
        Some(kube),
        Some(topic("A")),
        ONE_WAY,
        expected,
    )
}

fn one_way_forgets_topic_whose_kafka_topic_went_away() -> Case {
    case(
        Some(topic("A")),
        None,
        Some(topic("A")),
        ONE_WAY,
        TopicPlan::default(),
    )
}

fn one_way_adoption_applies_the_spec_without_conflicts() -> Case {
    let kube = spec().partitions(Some(6));
    let kafka = topic("A").set("compression.type", "lz4");
    let expected = TopicPlan {
        kafka: KafkaAction::Alter {
            partitions: raise(3, 6),
            config: vec![delete("compression.type")],
        },
        adopted: true,
        ..nothing_but_base(topic("A").partitions(Some(6)))
    };
    case(None, Some(kube), Some(kafka), ONE_WAY, expected)
}

fn one_way_restores_topic_recreated_in_kafka() -> Case {
    let kafka = topic("B").partitions(Some(1)).no_config();
    let expected = TopicPlan {
        kafka: KafkaAction::Alter {
            partitions: raise(1, 3),
            config: vec![set("cleanup.policy", "delete"), set("retention.ms", "1000")],
        },
        recreated_in_kafka: true,
        ..nothing_but_base(topic("B"))
    };
    case(
        Some(topic("A")),
        Some(spec()),
        Some(kafka),
        ONE_WAY,
        expected,
    )
}

/// Expands to an rstest function over every row of the table, so the truth table and the
/// convergence property cannot drift apart.
macro_rules! over_the_table {
    ($(#[$meta:meta])* fn $name:ident($c:ident: Case) $body:block) => {
        #[rstest]
        #[case::in_sync(in_sync())]
        #[case::equal_after_normalising(equal_after_normalising())]
        #[case::never_existed(never_existed())]
        #[case::kube_raises_partitions(kube_raises_partitions())]
        #[case::kube_lowers_partitions(kube_lowers_partitions())]
        #[case::kube_changes_replicas(kube_changes_replicas())]
        #[case::kube_changes_config_value(kube_changes_config_value())]
        #[case::kube_adds_config_key(kube_adds_config_key())]
        #[case::kube_removes_config_key(kube_removes_config_key())]
        #[case::kafka_raises_partitions(kafka_raises_partitions())]
        #[case::kafka_changes_replicas(kafka_changes_replicas())]
        #[case::kafka_changes_config_value(kafka_changes_config_value())]
        #[case::kafka_adds_config_key(kafka_adds_config_key())]
        #[case::kafka_removes_config_key(kafka_removes_config_key())]
        #[case::independent_changes_merge(independent_changes_merge())]
        #[case::same_change_on_both_sides(same_change_on_both_sides())]
        #[case::conflicting_config_value(conflicting_config_value())]
        #[case::conflicting_removal_and_change(conflicting_removal_and_change())]
        #[case::conflicting_additions(conflicting_additions())]
        #[case::conflicting_partitions_kafka_larger(conflicting_partitions_kafka_larger())]
        #[case::conflicting_partitions_kube_larger(conflicting_partitions_kube_larger())]
        #[case::kube_lowers_while_kafka_raises_partitions(kube_lowers_while_kafka_raises_partitions())]
        #[case::conflicting_replicas(conflicting_replicas())]
        #[case::created_in_kube(created_in_kube())]
        #[case::created_in_kube_with_defaults(created_in_kube_with_defaults())]
        #[case::created_in_kafka(created_in_kafka())]
        #[case::deleted_in_kafka(deleted_in_kafka())]
        #[case::deleted_in_kafka_while_kube_changed(deleted_in_kafka_while_kube_changed())]
        #[case::recreation_fills_undeclared_fields_from_base(recreation_fills_undeclared_fields_from_base())]
        #[case::deleted_in_kafka_before_ever_observed(deleted_in_kafka_before_ever_observed())]
        #[case::kube_gone_kafka_unchanged(kube_gone_kafka_unchanged())]
        #[case::kube_gone_while_kafka_changed(kube_gone_while_kafka_changed())]
        #[case::kube_gone_while_kafka_recreated(kube_gone_while_kafka_recreated())]
        #[case::gone_on_both_sides(gone_on_both_sides())]
        #[case::recreated_in_kafka(recreated_in_kafka())]
        #[case::recreated_in_kafka_while_kube_changed(recreated_in_kafka_while_kube_changed())]
        #[case::adoption_of_identical_topic(adoption_of_identical_topic())]
        #[case::adoption_settles_differences_by_the_rule(adoption_settles_differences_by_the_rule())]
        #[case::adoption_keeps_kafkas_larger_partition_count(adoption_keeps_kafkas_larger_partition_count())]
        #[case::adoption_with_other_replication_factor(adoption_with_other_replication_factor())]
        #[case::undeclared_partitions_follow_kafka(undeclared_partitions_follow_kafka())]
        #[case::unobserved_base_learns_from_kafka(unobserved_base_learns_from_kafka())]
        #[case::kube_declares_partitions_after_default_creation(kube_declares_partitions_after_default_creation())]
        #[case::one_way_ignores_kafka_only_topic(one_way_ignores_kafka_only_topic())]
        #[case::one_way_reverts_config_drift(one_way_reverts_config_drift())]
        #[case::one_way_refuses_to_shrink_raised_partitions(one_way_refuses_to_shrink_raised_partitions())]
        #[case::one_way_refuses_to_revert_replicas(one_way_refuses_to_revert_replicas())]
        #[case::one_way_recreates_topic_deleted_in_kafka(one_way_recreates_topic_deleted_in_kafka())]
        #[case::one_way_applies_kube_changes(one_way_applies_kube_changes())]
        #[case::one_way_refuses_kube_replicas_change(one_way_refuses_kube_replicas_change())]
        #[case::one_way_forgets_topic_whose_kafka_topic_went_away(one_way_forgets_topic_whose_kafka_topic_went_away())]
        #[case::one_way_adoption_applies_the_spec_without_conflicts(one_way_adoption_applies_the_spec_without_conflicts())]
        #[case::one_way_restores_topic_recreated_in_kafka(one_way_restores_topic_recreated_in_kafka())]
        $(#[$meta])*
        fn $name(#[case] $c: Case) $body
    };
}

over_the_table! {
    fn plan_matches_the_truth_table(c: Case) {
        assert_eq!(plan_case(&c), c.expected);
    }
}

/// The ID a simulated Kafka gives a topic it creates.
const CREATED_ID: &str = "created";
/// The simulated broker defaults.
const DEFAULT_PARTITIONS: i32 = 1;
const DEFAULT_REPLICAS: i16 = 1;

/// Carries out a plan against simulated Kafka and Kubernetes, as the caller would.
fn apply(
    plan: &TopicPlan,
    kube: Option<TopicState>,
    kafka: Option<TopicState>,
) -> (Option<TopicState>, Option<TopicState>) {
    let kafka = match &plan.kafka {
        KafkaAction::Nothing => kafka,
        KafkaAction::Create(state) => {
            assert!(kafka.is_none(), "create over an existing topic");
            Some(TopicState {
                topic_id: Some(CREATED_ID.to_owned()),
                partitions: Some(state.partitions.unwrap_or(DEFAULT_PARTITIONS)),
                replicas: Some(state.replicas.unwrap_or(DEFAULT_REPLICAS)),
                config: state.config.clone(),
            })
        }
        KafkaAction::Alter { partitions, config } => {
            let mut topic = kafka.expect("alter of a missing topic");
            if let Some(increase) = partitions {
                assert_eq!(topic.partitions, Some(increase.from));
                assert!(increase.to > increase.from);
                topic.partitions = Some(increase.to);
            }
            for op in config {
                match op {
                    ConfigOp::Set(key, value) => {
                        topic.config.insert(key.clone(), value.clone());
                    }
                    ConfigOp::Delete(key) => {
                        topic.config.remove(key);
                    }
                }
            }
            Some(topic)
        }
        KafkaAction::Delete { .. } => {
            assert!(kafka.is_some(), "delete of a missing topic");
            None
        }
    };
    let kube = match &plan.spec {
        SpecAction::Nothing => kube,
        SpecAction::Create(state) => {
            assert!(kube.is_none(), "create over an existing KafkaTopic");
            Some(TopicState {
                topic_id: None,
                ..state.clone()
            })
        }
        SpecAction::Update(update) => {
            let mut spec = kube.expect("update of a missing KafkaTopic");
            if let Some(partitions) = update.partitions {
                spec.partitions = Some(partitions);
            }
            if let Some(replicas) = update.replicas {
                spec.replicas = Some(replicas);
            }
            if let Some(config) = &update.config {
                spec.config = config.clone();
            }
            Some(spec)
        }
        SpecAction::Delete => {
            assert!(kube.is_some(), "delete of a missing KafkaTopic");
            None
        }
    };
    (kube, kafka)
}

over_the_table! {
    /// Applying a plan and planning again changes nothing more on either side and reports no
    /// new conflict (a refusal stays until the spec changes); the reconcile after that does not
    /// even rewrite the store (the one before may, to record an ID or default Kafka assigned).
    fn replanning_after_applying_converges(c: Case) {
        let first = plan_case(&c);
        let (kube, kafka) = apply(&first, c.kube, c.kafka);
        let second = plan_topic(first.new_base.as_ref(), kube.as_ref(), kafka.as_ref(), c.mode);
        assert_eq!(second.kafka, KafkaAction::Nothing);
        assert_eq!(second.spec, SpecAction::Nothing);
        assert_eq!(second.conflicts, vec![]);
        assert_eq!(second.refusals, first.refusals);
        let third = plan_topic(second.new_base.as_ref(), kube.as_ref(), kafka.as_ref(), c.mode);
        assert!(!third.base_changed(second.new_base.as_ref()));
        assert_eq!(third, second);
    }
}

#[test]
fn unchanged_topic_plans_nothing_and_stores_nothing() {
    let base = topic("A");
    let plan = plan_topic(Some(&base), Some(&spec()), Some(&base), BI);
    assert!(!plan.has_actions());
    assert!(!plan.base_changed(Some(&base)));
    assert!(plan.conflicts.is_empty() && plan.refusals.is_empty());
}

#[test]
fn adoption_conflicts_are_not_warnings() {
    let kafka = topic("A").set("retention.ms", "5000");
    let adopted = plan_topic(None, Some(&spec()), Some(&kafka), BI);
    assert_eq!(adopted.conflicts.len(), 1);
    assert!(adopted.warnings().is_empty());

    let synced = plan_topic(
        Some(&topic("A")),
        Some(&spec().set("retention.ms", "2000")),
        Some(&kafka),
        BI,
    );
    assert_eq!(synced.warnings(), synced.conflicts.as_slice());
    assert_eq!(synced.warnings().len(), 1);
}

#[test]
fn creating_more_replicas_than_brokers_is_refused() {
    let kube = spec().replicas(Some(3));
    let plan = plan_topic_in_cluster(None, Some(&kube), None, BI, 2);
    assert_eq!(plan.kafka, KafkaAction::Nothing);
    assert_eq!(
        plan.refusals,
        vec![Refusal::ReplicasExceedBrokers {
            replicas: 3,
            brokers: 2
        }]
    );
    assert_eq!(plan.new_base, None);
}

#[test]
fn recreating_more_replicas_than_brokers_keeps_the_old_base() {
    let kube = spec().set("retention.ms", "2000");
    let plan = plan_topic_in_cluster(Some(&topic("A")), Some(&kube), None, BI, 1);
    assert_eq!(plan.kafka, KafkaAction::Nothing);
    assert_eq!(plan.new_base, Some(topic("A")));
    assert_eq!(plan.refusals[0].reason(), "ReplicasExceedBrokers");
}

#[test]
fn creating_as_many_replicas_as_brokers_goes_ahead() {
    let plan = plan_topic_in_cluster(None, Some(&spec()), None, BI, 3);
    assert_eq!(plan.kafka, KafkaAction::Create(spec()));
    assert!(plan.refusals.is_empty());
}

#[test]
fn broker_count_does_not_touch_other_actions() {
    let kube = spec().partitions(Some(6));
    let in_cluster =
        plan_topic_in_cluster(Some(&topic("A")), Some(&kube), Some(&topic("A")), BI, 1);
    assert_eq!(
        in_cluster,
        plan_topic(Some(&topic("A")), Some(&kube), Some(&topic("A")), BI)
    );
}

#[test]
fn created_config_values_are_trimmed() {
    let kube = spec().set("retention.ms", " 2000 ");
    let plan = plan_topic(None, Some(&kube), None, BI);
    let KafkaAction::Create(state) = plan.kafka else {
        panic!("expected a create, got {:?}", plan.kafka);
    };
    assert_eq!(state.config["retention.ms"], "2000");
}

#[test]
fn conflict_messages_name_both_values_and_the_winner() {
    let c = conflict(
        config_field("retention.ms"),
        Some("2000"),
        None,
        Side::Kubernetes,
    );
    assert_eq!(c.reason(), "ConflictingChanges");
    assert_eq!(
        c.to_string(),
        "config retention.ms changed in both Kubernetes (2000) and Kafka (unset); Kubernetes wins"
    );
    let deleted = Conflict::DeletedWhileChanged {
        deleted_in: Side::Kafka,
    };
    assert_eq!(deleted.reason(), "DeletedWhileChanged");
    assert!(deleted.to_string().contains("deleted in Kafka"));
}

#[test]
fn refusals_have_reasons_and_name_both_values() {
    let cases = [
        (
            Refusal::PartitionDecrease { from: 6, to: 3 },
            "PartitionDecreaseNotSupported",
        ),
        (
            Refusal::ReplicationFactorChange { from: 6, to: 3 },
            "ReplicationFactorChangeNotSupported",
        ),
        (
            Refusal::ReplicasExceedBrokers {
                replicas: 6,
                brokers: 3,
            },
            "ReplicasExceedBrokers",
        ),
    ];
    for (refusal, reason) in cases {
        assert_eq!(refusal.reason(), reason);
        let message = refusal.to_string();
        assert!(message.contains('6') && message.contains('3'), "{message}");
    }
}

#[test]
fn admin_ops_carry_out_each_kafka_action() {
    assert_eq!(KafkaAction::Nothing.admin_ops("t"), vec![]);
    assert_eq!(
        KafkaAction::Create(spec()).admin_ops("t"),
        vec![AdminOp::CreateTopic {
            topic: "t".into(),
            state: spec()
        }]
    );
    let alter = KafkaAction::Alter {
        partitions: raise(3, 6),
        config: vec![delete("x")],
    };
    assert_eq!(
        alter.admin_ops("t"),
        vec![
            AdminOp::CreatePartitions {
                topic: "t".into(),
                increase: PartitionIncrease { from: 3, to: 6 }
            },
            AdminOp::AlterConfigs {
                topic: "t".into(),
                ops: vec![delete("x")]
            },
        ]
    );
    let config_only = KafkaAction::Alter {
        partitions: None,
        config: vec![delete("x")],
    };
    assert_eq!(config_only.admin_ops("t").len(), 1);
    assert_eq!(
        KafkaAction::Delete {
            partitions: Some(3)
        }
        .admin_ops("t"),
        vec![AdminOp::DeleteTopic {
            topic: "t".into(),
            partitions: Some(3)
        }]
    );
}
