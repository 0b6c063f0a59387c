//! Encoding of the store of last synced states, the base of the 3-way merge. Pure: no I/O; the
//! caller reads and writes the ConfigMaps.
//!
//! Layout, chosen to be boring: the state lives in ordinary ConfigMaps named
//! `<cluster>-topic-state-<shard>`, one data entry per topic. The shard is a stable hash of the
//! topic name (first 4 bytes of its SHA-256, big-endian) modulo [`STATE_SHARDS`]; the data key is
//! the topic name behind the prefix `t.`; the value is the compact JSON of [`TopicState`].
//! Nothing else is kept: no log, no changelog topic, no local state to rebuild, and an entry can
//! be read and fixed with `kubectl`.
//!
//! Keys: ConfigMap keys allow `[-._a-zA-Z0-9]+` up to 253 characters, must not be `.` or `..`
//! and must not start with `..`. Kafka topic names use the same characters, are at most 249
//! long, but may start with `..`. The fixed two-character prefix keeps every valid topic name a
//! valid key (at most 251 characters) and keeps the mapping one-to-one.
//!
//! Sizing: a ConfigMap holds at most 1 MiB. An entry of a typical topic (a 40-character name,
//! a topic ID, partitions, replicas and four config overrides) takes about 226 bytes, so 10,000
//! topics take about 2.3 MB in all. With 32 shards that is about 70 KiB per ConfigMap on
//! average and about 80 KiB for the fullest (the test
//! `ten_thousand_typical_topics_fit_with_room_to_spare` measures it), under a tenth of the
//! limit: room for ten times more overrides per topic, or about 100,000 typical topics, before
//! a shard fills. Small ConfigMaps also keep each write cheap (etcd rewrites the whole object).
//! [`STATE_SHARDS`] is part of the stored format: readers should list every state ConfigMap by
//! label and accept an entry from any shard, so changing the count only needs stale entries
//! removed.

use std::collections::BTreeMap;

use ring::digest;

use super::model::TopicState;
use super::names::is_valid_topic_name;

/// Number of state ConfigMaps per cluster.
pub const STATE_SHARDS: u32 = 32;
/// Largest `data` a ConfigMap may hold.
pub const CONFIG_MAP_MAX_BYTES: usize = 1024 * 1024;
/// Prefix of every data key; see the module doc.
const KEY_PREFIX: &str = "t.";

/// Failures of encoding or decoding store entries.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{topic:?} is not a valid Kafka topic name, so it has no store key")]
    InvalidTopicName { topic: String },
    #[error("{key:?} is not a topic state key")]
    NotAStateKey { key: String },
    #[error("cannot read the stored state of topic {topic:?}: {source}")]
    DecodeState {
        topic: String,
        source: serde_json::Error,
    },
    #[error("cannot write the state of topic {topic:?}: {source}")]
    EncodeState {
        topic: String,
        source: serde_json::Error,
    },
}

impl StoreError {
    /// Stable CamelCase word for conditions, Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            StoreError::InvalidTopicName { .. } => "InvalidTopicName",
            StoreError::NotAStateKey { .. } => "NotAStateKey",
            StoreError::DecodeState { .. } => "DecodeState",
            StoreError::EncodeState { .. } => "EncodeState",
        }
    }
}

/// The shard (`0..STATE_SHARDS`) that holds `topic`'s state.
pub fn shard_of(topic: &str) -> u32 {
    let digest = digest::digest(&digest::SHA256, topic.as_bytes());
    let mut first = [0u8; 4];
    first.copy_from_slice(&digest.as_ref()[..4]);
    u32::from_be_bytes(first) % STATE_SHARDS
}

/// Name of the ConfigMap holding `shard` of `cluster`'s topic states.
pub fn state_config_map_name(cluster: &str, shard: u32) -> String {
    format!("{cluster}-topic-state-{shard}")
}

/// The ConfigMap data key of `topic`.
pub fn state_key(topic: &str) -> Result<String, StoreError> {
    if !is_valid_topic_name(topic) {
        return Err(StoreError::InvalidTopicName {
            topic: topic.to_owned(),
        });
    }
    Ok(format!("{KEY_PREFIX}{topic}"))
}

/// The topic a ConfigMap data key belongs to.
pub fn topic_of_key(key: &str) -> Result<&str, StoreError> {
    key.strip_prefix(KEY_PREFIX)
        .filter(|topic| is_valid_topic_name(topic))
        .ok_or_else(|| StoreError::NotAStateKey {
            key: key.to_owned(),
        })
}

/// The data entry (key, value) storing `state` for `topic`.
pub fn encode_entry(topic: &str, state: &TopicState) -> Result<(String, String), StoreError> {
    let key = state_key(topic)?;
    let value = serde_json::to_string(state).map_err(|source| StoreError::EncodeState {
        topic: topic.to_owned(),
        source,
    })?;
    Ok((key, value))
}

/// The topic and state stored in one data entry. Unknown JSON fields are ignored so a newer
/// operator's entries can be read by an older one during a rollback.
pub fn decode_entry(key: &str, value: &str) -> Result<(String, TopicState), StoreError> {
    let topic = topic_of_key(key)?;
    let state = serde_json::from_str(value).map_err(|source| StoreError::DecodeState {
        topic: topic.to_owned(),
        source,
    })?;
    Ok((topic.to_owned(), state))
}

/// Every readable entry of one ConfigMap's data, plus the entries that could not be read. A bad
/// entry costs only its own topic its base (it is then planned as an adoption), never the shard.
pub fn decode_shard(
    data: &BTreeMap<String, String>,
) -> (BTreeMap<String, TopicState>, Vec<StoreError>) {
    let mut states = BTreeMap::new();
    let mut errors = Vec::new();
    for (key, value) in data {
        match decode_entry(key, value) {
            Ok((topic, state)) => {
                states.insert(topic, state);
            }
            Err(err) => errors.push(err),
        }
    }
    (states, errors)
}

/// Bytes a ConfigMap's data takes against [`CONFIG_MAP_MAX_BYTES`] (keys plus values), for the
/// caller to warn well before a shard fills.
pub fn data_bytes(data: &BTreeMap<String, String>) -> usize {
    data.iter()
        .map(|(key, value)| key.len() + value.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typical_state(i: usize) -> TopicState {
        TopicState {
            // Kafka topic IDs print as 22 characters of URL-safe base64.
            topic_id: Some(format!("{i:0>22}")),
            partitions: Some(12),
            replicas: Some(3),
            config: [
                ("cleanup.policy", "delete"),
                ("min.insync.replicas", "2"),
                ("retention.ms", "604800000"),
                ("segment.bytes", "1073741824"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        }
    }

    fn typical_topic(i: usize) -> String {
        format!("team-{:02}.service-{i:05}.events-by-customer", i % 40)
    }

    #[test]
    fn entries_round_trip() {
        let state = typical_state(7);
        let (key, value) = encode_entry("orders", &state).unwrap();
        assert_eq!(
            decode_entry(&key, &value).unwrap(),
            ("orders".to_owned(), state)
        );
    }

    #[test]
    fn empty_state_round_trips_as_an_empty_object() {
        let (key, value) = encode_entry("t", &TopicState::default()).unwrap();
        assert_eq!(value, "{}");
        assert_eq!(decode_entry(&key, &value).unwrap().1, TopicState::default());
    }

    #[test]
    fn value_is_compact_json() {
        let (_, value) = encode_entry("orders", &typical_state(1)).unwrap();
        assert!(!value.contains([' ', '\n']), "{value}");
    }

    #[test]
    fn unknown_fields_are_ignored_when_decoding() {
        let (_, state) =
            decode_entry("t.orders", r#"{"partitions":3,"futureField":true}"#).unwrap();
        assert_eq!(state.partitions, Some(3));
    }

    #[test]
    fn every_valid_topic_name_makes_a_valid_config_map_key() {
        let longest = "Z".repeat(249);
        for topic in ["..x", ".x", "a", "A_b-c.d", longest.as_str()] {
            let key = state_key(topic).unwrap();
            assert!(key.len() <= 253, "{key}");
            assert!(!key.starts_with(".."), "{key}");
            assert!(
                key.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            );
            assert_eq!(topic_of_key(&key).unwrap(), topic);
        }
    }

    #[test]
    fn invalid_topic_names_have_no_key() {
        for topic in ["", ".", "..", "a/b", &"a".repeat(250)] {
            let err = state_key(topic).unwrap_err();
            assert_eq!(err.reason(), "InvalidTopicName", "{topic}");
        }
    }

    #[test]
    fn foreign_keys_are_reported_not_decoded() {
        for key in ["orders", "t.", "x.orders"] {
            assert_eq!(
                decode_entry(key, "{}").unwrap_err().reason(),
                "NotAStateKey"
            );
        }
    }

    #[test]
    fn a_corrupt_entry_spoils_only_its_own_topic() {
        let mut data = BTreeMap::new();
        let (key, value) = encode_entry("good", &typical_state(1)).unwrap();
        data.insert(key, value);
        data.insert("t.bad".to_owned(), "{not json".to_owned());
        let (states, errors) = decode_shard(&data);
        assert_eq!(states.keys().collect::<Vec<_>>(), ["good"]);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].reason(), "DecodeState");
        assert!(errors[0].to_string().contains("\"bad\""));
    }

    #[test]
    fn shard_is_pinned_to_sha256() {
        // First 4 bytes of `printf %s NAME | sha256sum`, as an integer, modulo 32, computed
        // outside Rust: the shard must not move when Rust or a crate changes.
        assert_eq!(shard_of("orders"), 0x1c16_8adb_u32 % 32);
        assert_eq!(shard_of("__consumer_offsets"), 0x189f_e61b_u32 % 32);
    }

    #[test]
    fn shards_are_in_range_and_spread_evenly() {
        let mut counts = [0usize; STATE_SHARDS as usize];
        for i in 0..10_000 {
            counts[shard_of(&typical_topic(i)) as usize] += 1;
        }
        let mean = 10_000 / STATE_SHARDS as usize;
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*max < mean * 5 / 4 && *min > mean * 3 / 4, "{counts:?}");
    }

    #[test]
    fn config_map_names_carry_cluster_and_shard() {
        assert_eq!(
            state_config_map_name("my-cluster", 7),
            "my-cluster-topic-state-7"
        );
    }

    #[test]
    fn ten_thousand_typical_topics_fit_with_room_to_spare() {
        let mut shards: Vec<BTreeMap<String, String>> =
            vec![BTreeMap::new(); STATE_SHARDS as usize];
        for i in 0..10_000 {
            let topic = typical_topic(i);
            let (key, value) = encode_entry(&topic, &typical_state(i)).unwrap();
            shards[shard_of(&topic) as usize].insert(key, value);
        }
        let total: usize = shards.iter().map(data_bytes).sum();
        let largest = shards.iter().map(data_bytes).max().unwrap();
        // The module doc quotes these figures; keep them in step.
        assert!((2_100_000..2_400_000).contains(&total), "total {total}");
        assert!(
            largest < CONFIG_MAP_MAX_BYTES / 10,
            "largest shard {largest}"
        );
    }
}
