//! Batching of Kafka admin operations into requests that a KRaft controller accepts. Pure: no
//! I/O; the caller sends the requests.
//!
//! A KRaft controller refuses a user operation that would write more than 10,000 metadata
//! records (`MAX_RECORDS_PER_USER_OP`; exactly 10,000 is accepted), and one admin request is one
//! such operation. So operations are grouped by admin API and packed greedily, in input order,
//! into requests whose estimated records stay within [`BatchLimits::max_records`] and whose
//! size stays within [`BatchLimits::max_ops`]. Requests come out grouped by kind in the order
//! of [`AdminOpKind`].
//!
//! Cost estimates (records the controller writes):
//! - create topic: 1 topic record + 1 per partition + 1 per config entry;
//! - create partitions: 1 per new partition;
//! - alter configs: 1 per key set or deleted;
//! - delete topic: 1 + 1 per partition (an upper bound).
//!
//! An unknown partition count (broker default) is costed at [`BatchLimits::default_partitions`].
//! A single operation costing more than the budget cannot be split: it is sent alone in a
//! request flagged [`AdminRequest::over_budget`], so the caller can report it if Kafka refuses.

use super::config_diff::ConfigOp;
use super::model::TopicState;
use super::three_way::PartitionIncrease;

/// The largest number of metadata records a KRaft controller accepts from one user operation.
pub const KRAFT_MAX_RECORDS_PER_OP: u64 = 10_000;

/// One Kafka admin operation on one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOp {
    CreateTopic {
        topic: String,
        state: TopicState,
    },
    CreatePartitions {
        topic: String,
        increase: PartitionIncrease,
    },
    AlterConfigs {
        topic: String,
        ops: Vec<ConfigOp>,
    },
    DeleteTopic {
        topic: String,
        /// Current partition count, for the cost; `None` = unknown.
        partitions: Option<i32>,
    },
}

/// The admin API an operation belongs to; a request carries operations of one kind only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AdminOpKind {
    CreateTopics,
    CreatePartitions,
    IncrementalAlterConfigs,
    DeleteTopics,
}

/// Knobs of [`batch_admin_ops`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most metadata records one request may cost.
    pub max_records: u64,
    /// Most operations in one request (bounds request size and the blast radius of one
    /// failed call); at least 1 is used.
    pub max_ops: usize,
    /// Partition count assumed when an operation does not say (the broker's `num.partitions`).
    pub default_partitions: u32,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_records: KRAFT_MAX_RECORDS_PER_OP,
            max_ops: 1000,
            default_partitions: 1,
        }
    }
}

/// One admin request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRequest {
    pub kind: AdminOpKind,
    pub ops: Vec<AdminOp>,
    /// Estimated metadata records of the whole request.
    pub records: u64,
    /// The request holds a single operation that alone costs more than the budget.
    pub over_budget: bool,
}

impl AdminOp {
    /// The admin API this operation is sent with.
    pub fn kind(&self) -> AdminOpKind {
        match self {
            AdminOp::CreateTopic { .. } => AdminOpKind::CreateTopics,
            AdminOp::CreatePartitions { .. } => AdminOpKind::CreatePartitions,
            AdminOp::AlterConfigs { .. } => AdminOpKind::IncrementalAlterConfigs,
            AdminOp::DeleteTopic { .. } => AdminOpKind::DeleteTopics,
        }
    }

    /// The topic the operation acts on.
    pub fn topic(&self) -> &str {
        match self {
            AdminOp::CreateTopic { topic, .. }
            | AdminOp::CreatePartitions { topic, .. }
            | AdminOp::AlterConfigs { topic, .. }
            | AdminOp::DeleteTopic { topic, .. } => topic,
        }
    }

    /// Estimated metadata records; see the module doc.
    pub fn metadata_records(&self, default_partitions: u32) -> u64 {
        let partitions = |count: Option<i32>| match count {
            Some(n) => u64::try_from(n).unwrap_or(0),
            None => u64::from(default_partitions),
        };
        match self {
            AdminOp::CreateTopic { state, .. } => {
                1 + partitions(state.partitions) + state.config.len() as u64
            }
            AdminOp::CreatePartitions { increase, .. } => {
                u64::try_from(increase.to.saturating_sub(increase.from)).unwrap_or(0)
            }
            AdminOp::AlterConfigs { ops, .. } => ops.len() as u64,
            AdminOp::DeleteTopic {
                partitions: count, ..
            } => 1 + partitions(*count),
        }
    }
}

/// Splits `ops` into requests; see the module doc for the rule.
pub fn batch_admin_ops(
    ops: impl IntoIterator<Item = AdminOp>,
    limits: &BatchLimits,
) -> Vec<AdminRequest> {
    let max_ops = limits.max_ops.max(1);
    let mut by_kind: Vec<(AdminOpKind, Vec<AdminOp>)> = Vec::new();
    for op in ops {
        let kind = op.kind();
        match by_kind.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, group)) => group.push(op),
            None => by_kind.push((kind, vec![op])),
        }
    }
    by_kind.sort_by_key(|(kind, _)| *kind);

    let mut requests = Vec::new();
    for (kind, group) in by_kind {
        let mut open = AdminRequest {
            kind,
            ops: Vec::new(),
            records: 0,
            over_budget: false,
        };
        for op in group {
            let cost = op.metadata_records(limits.default_partitions);
            if cost > limits.max_records {
                flush(&mut requests, &mut open);
                requests.push(AdminRequest {
                    kind,
                    ops: vec![op],
                    records: cost,
                    over_budget: true,
                });
                continue;
            }
            if open.ops.len() == max_ops || open.records + cost > limits.max_records {
                flush(&mut requests, &mut open);
            }
            open.records += cost;
            open.ops.push(op);
        }
        flush(&mut requests, &mut open);
    }
    requests
}

fn flush(requests: &mut Vec<AdminRequest>, open: &mut AdminRequest) {
    if !open.ops.is_empty() {
        let kind = open.kind;
        requests.push(std::mem::replace(
            open,
            AdminRequest {
                kind,
                ops: Vec::new(),
                records: 0,
                over_budget: false,
            },
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(topic: &str, partitions: Option<i32>, config_entries: usize) -> AdminOp {
        AdminOp::CreateTopic {
            topic: topic.to_owned(),
            state: TopicState {
                partitions,
                config: (0..config_entries)
                    .map(|i| (format!("k{i}"), "v".to_owned()))
                    .collect(),
                ..TopicState::default()
            },
        }
    }

    fn alter(topic: &str, keys: usize) -> AdminOp {
        AdminOp::AlterConfigs {
            topic: topic.to_owned(),
            ops: (0..keys)
                .map(|i| ConfigOp::Delete(format!("k{i}")))
                .collect(),
        }
    }

    fn limits(max_records: u64, max_ops: usize) -> BatchLimits {
        BatchLimits {
            max_records,
            max_ops,
            default_partitions: 1,
        }
    }

    fn topics(request: &AdminRequest) -> Vec<&str> {
        request.ops.iter().map(AdminOp::topic).collect()
    }

    #[test]
    fn costs_follow_the_record_counts() {
        assert_eq!(create("t", Some(10), 3).metadata_records(1), 14);
        assert_eq!(create("t", None, 0).metadata_records(6), 7);
        let raise = AdminOp::CreatePartitions {
            topic: "t".into(),
            increase: PartitionIncrease { from: 3, to: 10 },
        };
        assert_eq!(raise.metadata_records(1), 7);
        assert_eq!(alter("t", 4).metadata_records(1), 4);
        let delete = AdminOp::DeleteTopic {
            topic: "t".into(),
            partitions: Some(50),
        };
        assert_eq!(delete.metadata_records(1), 51);
        let delete_unknown = AdminOp::DeleteTopic {
            topic: "t".into(),
            partitions: None,
        };
        assert_eq!(delete_unknown.metadata_records(3), 4);
    }

    #[test]
    fn exactly_the_budget_fits_in_one_request() {
        // 2 creates of 1 + 4999 records each = 10,000.
        let ops = vec![create("a", Some(4999), 0), create("b", Some(4999), 0)];
        let requests = batch_admin_ops(ops, &BatchLimits::default());
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].records, 10_000);
        assert!(!requests[0].over_budget);
    }

    #[test]
    fn one_record_over_the_budget_opens_a_new_request() {
        let ops = vec![create("a", Some(4999), 0), create("b", Some(5000), 0)];
        let requests = batch_admin_ops(ops, &BatchLimits::default());
        assert_eq!(
            requests.iter().map(topics).collect::<Vec<_>>(),
            [["a"], ["b"]]
        );
        assert_eq!(
            requests.iter().map(|r| r.records).collect::<Vec<_>>(),
            [5000, 5001]
        );
    }

    #[test]
    fn an_op_larger_than_the_budget_goes_alone_and_flagged() {
        let ops = vec![
            alter("a", 2),
            alter("huge", 11),
            alter("b", 2),
            alter("c", 2),
        ];
        let requests = batch_admin_ops(ops, &limits(10, 100));
        assert_eq!(
            requests.iter().map(topics).collect::<Vec<_>>(),
            [vec!["a"], vec!["huge"], vec!["b", "c"]]
        );
        assert_eq!(
            requests.iter().map(|r| r.over_budget).collect::<Vec<_>>(),
            [false, true, false]
        );
    }

    #[test]
    fn an_op_costing_exactly_the_budget_is_not_flagged() {
        let requests = batch_admin_ops(vec![alter("a", 10)], &limits(10, 100));
        assert_eq!(requests.len(), 1);
        assert!(!requests[0].over_budget);
    }

    #[test]
    fn max_ops_bounds_each_request() {
        let ops = (0..7).map(|i| alter(&format!("t{i}"), 1));
        let requests = batch_admin_ops(ops, &limits(1000, 3));
        assert_eq!(
            requests.iter().map(|r| r.ops.len()).collect::<Vec<_>>(),
            [3, 3, 1]
        );
    }

    #[test]
    fn zero_max_ops_still_makes_progress() {
        let requests = batch_admin_ops(vec![alter("a", 1), alter("b", 1)], &limits(1000, 0));
        assert_eq!(requests.len(), 2);
    }

    #[test]
    fn requests_hold_one_kind_each_in_kind_order_keeping_input_order() {
        let delete = |topic: &str| AdminOp::DeleteTopic {
            topic: topic.into(),
            partitions: Some(1),
        };
        let ops = vec![
            delete("d1"),
            alter("a1", 1),
            create("c1", Some(1), 0),
            alter("a2", 1),
            delete("d2"),
        ];
        let requests = batch_admin_ops(ops, &BatchLimits::default());
        let summary: Vec<_> = requests.iter().map(|r| (r.kind, topics(r))).collect();
        assert_eq!(
            summary,
            [
                (AdminOpKind::CreateTopics, vec!["c1"]),
                (AdminOpKind::IncrementalAlterConfigs, vec!["a1", "a2"]),
                (AdminOpKind::DeleteTopics, vec!["d1", "d2"]),
            ]
        );
    }

    #[test]
    fn unknown_partitions_are_costed_at_the_default() {
        let ops = vec![create("a", None, 0), create("b", None, 0)];
        let lim = BatchLimits {
            max_records: 20,
            max_ops: 100,
            default_partitions: 10,
        };
        // Each costs 11: two do not fit in 20.
        assert_eq!(batch_admin_ops(ops, &lim).len(), 2);
    }

    #[test]
    fn no_ops_make_no_requests() {
        assert!(batch_admin_ops(Vec::new(), &BatchLimits::default()).is_empty());
    }

    #[test]
    fn every_request_but_flagged_ones_stays_within_budget() {
        // A spread of sizes around the budget.
        let ops: Vec<AdminOp> = (0..500)
            .map(|i| create(&format!("t{i}"), Some((i * 37 % 3000) as i32), i % 7))
            .collect();
        let total: u64 = ops.iter().map(|op| op.metadata_records(1)).sum();
        let requests = batch_admin_ops(ops, &BatchLimits::default());
        assert!(
            requests
                .iter()
                .all(|r| r.records <= KRAFT_MAX_RECORDS_PER_OP)
        );
        assert_eq!(requests.iter().map(|r| r.records).sum::<u64>(), total);
        assert_eq!(requests.iter().map(|r| r.ops.len()).sum::<usize>(), 500);
    }
}
