//! The partition state the planners read, as plain data: for each topic partition, its replicas,
//! its in-sync replicas and its topic's `min.insync.replicas`. The observe stage fills it from
//! the admin client (describe topics and topic configs). Pure: no I/O.

use std::collections::BTreeMap;
use std::fmt;

/// One partition of one topic.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// The topic name.
    pub topic: String,
    /// The partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// The partition `partition` of `topic`.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// Where one partition's replicas are and which are in sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionReplicas {
    /// Node IDs of the brokers holding a replica.
    pub replicas: Vec<i32>,
    /// Node IDs of the replicas in sync with the leader.
    pub isr: Vec<i32>,
    /// The topic's effective `min.insync.replicas`.
    pub min_isr: i32,
}

/// Every partition of the cluster, keyed by topic and partition.
pub type PartitionMap = BTreeMap<TopicPartition, PartitionReplicas>;
