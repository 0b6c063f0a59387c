//! The plain data the topic planner works on: one topic as seen by Kubernetes, by Kafka or by
//! the store of the last synced state, the sync mode, and the names of sides and fields that
//! conflicts and refusals refer to. Pure: no I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

/// A topic's configuration: key to value, in key order, each key once.
///
/// A sorted vector rather than a `BTreeMap`: a map's first entry allocates a whole node (eleven
/// slots, 544 bytes for pairs of `String`s), while topics have few overrides, often one or none,
/// and the operator holds several configurations per topic (the stored base, Kafka's view, the
/// plan). At 10,000 topics those nodes were the largest part of the heap after the watch cache.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Configs(Vec<(String, String)>);

impl Configs {
    pub fn new() -> Self {
        Configs(Vec::new())
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub fn get(&self, key: &str) -> Option<&String> {
        self.position(key).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets `key`, returning the value it replaced.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.position(key).ok().map(|i| self.0.remove(i).1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&String, &String)> + ExactSizeIterator {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.0.iter().map(|(k, _)| k)
    }
}

/// Like a map: when a key comes more than once, the last value wins.
impl FromIterator<(String, String)> for Configs {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut entries: Vec<(String, String)> = iter.into_iter().collect();
        // Stable, so equal keys keep their order and the last one can be kept.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => out.push((k, v)),
            }
        }
        out.shrink_to_fit();
        Configs(out)
    }
}

impl<const N: usize> From<[(String, String); N]> for Configs {
    fn from(entries: [(String, String); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl From<BTreeMap<String, String>> for Configs {
    fn from(map: BTreeMap<String, String>) -> Self {
        // Already sorted and unique.
        Configs(map.into_iter().collect())
    }
}

impl std::ops::Index<&str> for Configs {
    type Output = String;
    /// The value of `key`; panics when it is absent, like a map's index.
    fn index(&self, key: &str) -> &String {
        self.get(key)
            .unwrap_or_else(|| panic!("no config key {key:?}"))
    }
}

impl IntoIterator for Configs {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Configs {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl fmt::Debug for Configs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Configs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Configs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, String>::deserialize(deserializer).map(Configs::from)
    }
}

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

    fn configs(entries: &[(&str, &str)]) -> Configs {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn configs_keep_key_order_and_the_last_value_of_a_key() {
        let c = configs(&[("b", "1"), ("a", "2"), ("b", "3"), ("c", "4")]);
        assert_eq!(
            c.iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
            [("a", "2"), ("b", "3"), ("c", "4")]
        );
        assert_eq!(c.len(), 3);
        assert_eq!(c.get("b").map(String::as_str), Some("3"));
        assert_eq!(c.get("d"), None);
        assert!(c.contains_key("a") && !c.contains_key("d"));
    }

    #[test]
    fn configs_insert_and_remove_like_a_map() {
        let mut c = configs(&[("b", "1")]);
        assert_eq!(c.insert("a".into(), "x".into()), None);
        assert_eq!(c.insert("c".into(), "y".into()), None);
        assert_eq!(c.insert("b".into(), "2".into()), Some("1".into()));
        assert_eq!(c, configs(&[("a", "x"), ("b", "2"), ("c", "y")]));
        assert_eq!(c.remove("b"), Some("2".into()));
        assert_eq!(c.remove("b"), None);
        assert_eq!(c.keys().map(String::as_str).collect::<Vec<_>>(), ["a", "c"]);
    }

    #[test]
    fn configs_read_and_write_json_as_an_object() {
        let c: Configs =
            serde_json::from_str(r#"{"retention.ms":"1000","cleanup.policy":"compact"}"#).unwrap();
        assert_eq!(
            c,
            configs(&[("cleanup.policy", "compact"), ("retention.ms", "1000")])
        );
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"cleanup.policy":"compact","retention.ms":"1000"}"#
        );
        assert_eq!(
            format!("{c:?}"),
            r#"{"cleanup.policy": "compact", "retention.ms": "1000"}"#
        );
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
