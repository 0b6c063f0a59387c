//! The plain data the topic planner works on: one topic as seen by Kubernetes, by Kafka or by
//! the store of the last synced state, the sync mode, and the names of sides and fields that
//! conflicts and refusals refer to. Pure: no I/O.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use shared_crds::SortedMap;

/// One topic as one side sees it.
///
/// The same shape serves the three views of a topic, with one reading of `None` per view:
/// - Kubernetes (the `KafkaTopic` spec): `None` means "not declared, let Kafka decide"; such a
///   field never counts as a change made in Kubernetes.
/// - Kafka: partitions and replicas are always known once observed; `config` holds the
///   topic-level overrides only (see [`crate::plan::config_diff`]).
/// - the store (last synced state): `None` means "not observed yet" (for example a topic created
///   with the broker's default partition count); the next observation of Kafka fills it in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicState {
    /// Kafka's topic ID. It tells a topic from another one deleted and recreated under the same
    /// name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
    /// Number of partitions; `None` = broker default / unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    /// Replication factor; `None` = broker default / unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i16>,
    /// Topic configuration. Absent keys take the broker default.
    #[serde(default, skip_serializing_if = "Configs::is_empty")]
    pub config: Configs,
}

/// A topic's configuration: key to value, in key order, each key once (a sorted vector, not a
/// `BTreeMap`: see [`SortedMap`]).
pub type Configs = SortedMap<String>;

/// Which way the topic operator syncs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SyncMode {
    /// Changes flow both ways; differences are decided by the 3-way merge.
    #[default]
    Bidirectional,
    /// `KafkaTopic` resources are the only source of truth: topics without one are ignored and
    /// drift on managed topics is reverted.
    KubernetesToKafka,
}

impl SyncMode {
    /// The spelling used in the operator's settings.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Bidirectional => "bidirectional",
            SyncMode::KubernetesToKafka => "kubernetes-to-kafka",
        }
    }
}

impl fmt::Display for SyncMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Failures of reading the model from settings.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    #[error("unknown sync mode {value:?}: expected \"bidirectional\" or \"kubernetes-to-kafka\"")]
    UnknownSyncMode { value: String },
}

impl ModelError {
    /// Stable CamelCase word for conditions, Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            ModelError::UnknownSyncMode { .. } => "UnknownSyncMode",
        }
    }
}

impl FromStr for SyncMode {
    type Err = ModelError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "bidirectional" => Ok(SyncMode::Bidirectional),
            "kubernetes-to-kafka" => Ok(SyncMode::KubernetesToKafka),
            other => Err(ModelError::UnknownSyncMode {
                value: other.to_owned(),
            }),
        }
    }
}

/// One of the two systems kept in sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Kubernetes,
    Kafka,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Kubernetes => "Kubernetes",
            Side::Kafka => "Kafka",
        })
    }
}

/// A field of a topic that the 3-way merge decides on its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Partitions,
    Replicas,
    /// One configuration key.
    Config(String),
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Partitions => f.write_str("partitions"),
            Field::Replicas => f.write_str("replicas"),
            Field::Config(key) => write!(f, "config {key}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_mode_parses_its_own_spelling() {
        for mode in [SyncMode::Bidirectional, SyncMode::KubernetesToKafka] {
            assert_eq!(mode.as_str().parse::<SyncMode>(), Ok(mode));
        }
    }

    #[test]
    fn unknown_sync_mode_is_refused_with_a_reason() {
        let err = "kafka-to-kubernetes".parse::<SyncMode>().unwrap_err();
        assert_eq!(err.reason(), "UnknownSyncMode");
        assert!(err.to_string().contains("kafka-to-kubernetes"));
    }

    #[test]
    fn unset_fields_are_left_out_of_the_json() {
        let state = TopicState {
            partitions: Some(3),
            ..TopicState::default()
        };
        assert_eq!(
            serde_json::to_string(&state).unwrap(),
            r#"{"partitions":3}"#
        );
    }
}
