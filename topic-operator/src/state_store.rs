//! The store of last synced states (the base of the 3-way merge), kept in memory and persisted
//! to the sharded ConfigMaps described in [`crate::plan::store`]. Loaded once at start; each
//! reconcile pass writes only the shards whose entries changed, with one server-side apply per
//! shard, several shards at once. May touch: ConfigMaps labelled as this cluster's topic state, in the operator's
//! namespace.
//!
//! If the ConfigMaps are lost (deleted by hand), the store starts empty: every topic present on
//! both sides is then planned as an adoption (a 2-way merge where Kubernetes wins and partitions
//! take the larger count, reported without warnings), and topics present on one side only are
//! created on the other. The store is rebuilt by that first pass. Nothing is deleted on either
//! side because of a lost store.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams},
};
use serde_json::json;
use shared_crds::labels;
use tracing::warn;

use crate::plan::{
    STATE_SHARDS, StoreError, TopicState, decode_shard, encode_entry, shard_of,
    state_config_map_name,
};

/// Label marking the state ConfigMaps.
pub const STATE_LABEL: &str = "oxbow.rs/topic-state";
/// The operator's field manager.
pub const FIELD_MANAGER: &str = "oxbow-topic-operator";
/// Shards written at once by a flush: one at a time, 32 of them took 1.4 to 6.4 s on a busy
/// API server, a wait every pass sat through.
const FLUSH_CONCURRENCY: usize = 8;

/// Failures of reading or writing the store.
#[derive(Debug, thiserror::Error)]
pub enum StateStoreError {
    #[error("cannot list the topic state ConfigMaps: {source}")]
    ListStateConfigMaps { source: kube::Error },
    #[error("cannot write topic state ConfigMap {name}: {source}")]
    WriteStateConfigMap { name: String, source: kube::Error },
    #[error(transparent)]
    Encode(#[from] StoreError),
    #[error("writing the topic state stopped: {message}")]
    FlushStopped { message: String },
}

impl StateStoreError {
    /// Stable reason word.
    pub fn reason(&self) -> &'static str {
        match self {
            StateStoreError::ListStateConfigMaps { .. } => "ListStateConfigMaps",
            StateStoreError::WriteStateConfigMap { .. } => "WriteStateConfigMap",
            StateStoreError::Encode(e) => e.reason(),
            StateStoreError::FlushStopped { .. } => "FlushStopped",
        }
    }
}

/// The in-memory store and its persistence.
pub struct StateStore {
    api: Api<ConfigMap>,
    cluster: String,
    states: HashMap<String, TopicState>,
    dirty: BTreeSet<u32>,
}

impl StateStore {
    /// Reads every state ConfigMap of `cluster`. Unreadable entries are logged and dropped: that
    /// topic is then planned as an adoption, never deleted.
    pub async fn load(api: Api<ConfigMap>, cluster: &str) -> Result<StateStore, StateStoreError> {
        let selector = format!("{}={cluster},{STATE_LABEL}=true", labels::CLUSTER);
        let list = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| StateStoreError::ListStateConfigMaps { source })?;
        let mut states = HashMap::new();
        let mut dirty = BTreeSet::new();
        for cm in list {
            let data = cm.data.unwrap_or_default();
            let (entries, errors) = decode_shard(&data);
            for e in errors {
                warn!(error = %e, "dropping an unreadable topic state entry");
            }
            for (topic, state) in entries {
                // An entry in the wrong shard (e.g. after a shard count change) is moved.
                let expected = state_config_map_name(cluster, shard_of(&topic));
                if cm.metadata.name.as_deref() != Some(expected.as_str()) {
                    dirty.insert(shard_of(&topic));
                }
                states.insert(topic, state);
            }
        }
        Ok(StateStore {
            api,
            cluster: cluster.to_owned(),
            states,
            dirty,
        })
    }

    /// The last synced state of `topic`.
    pub fn get(&self, topic: &str) -> Option<&TopicState> {
        self.states.get(topic)
    }

    /// Every topic with a stored state.
    pub fn topics(&self) -> impl Iterator<Item = &String> {
        self.states.keys()
    }

    /// Number of stored topics.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Records `state` (or its absence) for `topic`; marks the shard for writing if it changed.
    pub fn set(&mut self, topic: &str, state: Option<TopicState>) {
        let changed = match &state {
            Some(s) => self.states.get(topic) != Some(s),
            None => self.states.contains_key(topic),
        };
        if !changed {
            return;
        }
        match state {
            Some(s) => self.states.insert(topic.to_owned(), s),
            None => self.states.remove(topic),
        };
        self.dirty.insert(shard_of(topic));
    }

    /// Marks `topic`'s shard for writing: its entry differs from what was last written (it was
    /// held back by a flush, see [`StateStore::start_flush`]).
    pub fn touch(&mut self, topic: &str) {
        self.dirty.insert(shard_of(topic));
    }

    /// Starts writing every changed shard (its whole data map, one server-side apply per
    /// shard) in the background; `None`: none changed. The caller goes on meanwhile and takes
    /// the outcome with [`StateStore::finish_flush`], which it must do before it starts the next
    /// flush, so that a shard's writes land in order. Entries set meanwhile mark their shards
    /// for the next flush; a shard whose write fails is marked again.
    ///
    /// `held_back` gives, for some topics, the entry to write instead of the one in memory:
    /// the base a Kubernetes write still in flight will make true, once it lands. Written
    /// before, it would outlive a crash that lost the write, and the next operator would take
    /// the missing spec change for a change made in Kubernetes. Once the write landed, the
    /// caller touches the topic so that the next flush writes the new entry.
    pub fn start_flush(
        &mut self,
        held_back: &HashMap<String, Option<TopicState>>,
    ) -> Result<Option<Flush>, StateStoreError> {
        if self.dirty.is_empty() {
            return Ok(None);
        }
        let by_shard = shard_data(&self.states, held_back, &self.dirty)?;
        // Written from here on; a shard whose write fails is marked again by `finish_flush`.
        let shards = std::mem::take(&mut self.dirty);
        let (api, cluster) = (self.api.clone(), self.cluster.clone());
        let task = tokio::spawn(async move { write_shards(&api, &cluster, by_shard).await });
        Ok(Some(Flush { shards, task }))
    }

    /// Waits for `flush` and returns the number of shards written. A failed shard is marked
    /// again, for the next flush.
    pub async fn finish_flush(&mut self, flush: Flush) -> Result<usize, StateStoreError> {
        let results = match flush.task.await {
            Ok(results) => results,
            Err(e) => {
                self.dirty.extend(flush.shards);
                return Err(StateStoreError::FlushStopped {
                    message: e.to_string(),
                });
            }
        };
        let mut writes = 0;
        let mut first_error = None;
        for (shard, r) in results {
            match r {
                Ok(()) => writes += 1,
                Err(e) => {
                    self.dirty.insert(shard);
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(writes),
        }
    }
}

/// Shard writes running in the background, from [`StateStore::start_flush`].
pub struct Flush {
    shards: BTreeSet<u32>,
    task: tokio::task::JoinHandle<Vec<(u32, Result<(), StateStoreError>)>>,
}

impl Flush {
    /// Whether every write has finished (`finish_flush` then does not wait).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Writes each shard's whole data map with one server-side apply, a few shards at a time.
async fn write_shards(
    api: &Api<ConfigMap>,
    cluster: &str,
    by_shard: BTreeMap<u32, BTreeMap<String, String>>,
) -> Vec<(u32, Result<(), StateStoreError>)> {
    stream::iter(by_shard)
        .map(|(shard, data)| async move {
            let name = state_config_map_name(cluster, shard);
            let body = json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "labels": {
                        labels::CLUSTER: cluster,
                        STATE_LABEL: "true",
                        labels::APP_MANAGED_BY: FIELD_MANAGER,
                    },
                },
                "data": data,
            });
            let r = api
                .patch(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&body),
                )
                .await
                .map(drop)
                .map_err(|source| StateStoreError::WriteStateConfigMap { name, source });
            (shard, r)
        })
        .buffer_unordered(FLUSH_CONCURRENCY)
        .collect()
        .await
}

/// The data of each shard in `shards`: the entries of `states`, where `held_back` gives (for some
/// topics) the entry to write instead, `None` for none.
fn shard_data(
    states: &HashMap<String, TopicState>,
    held_back: &HashMap<String, Option<TopicState>>,
    shards: &BTreeSet<u32>,
) -> Result<BTreeMap<u32, BTreeMap<String, String>>, StoreError> {
    let mut by_shard: BTreeMap<u32, BTreeMap<String, String>> =
        shards.iter().map(|s| (*s, BTreeMap::new())).collect();
    let current = states
        .iter()
        .filter(|(topic, _)| !held_back.contains_key(*topic));
    let held = held_back
        .iter()
        .filter_map(|(topic, state)| state.as_ref().map(|s| (topic, s)));
    for (topic, state) in current.chain(held) {
        if let Some(data) = by_shard.get_mut(&shard_of(topic)) {
            let (k, v) = encode_entry(topic, state)?;
            data.insert(k, v);
        }
    }
    Ok(by_shard)
}

/// All shard numbers, for tests and tooling.
pub fn all_shards() -> impl Iterator<Item = u32> {
    0..STATE_SHARDS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(partitions: i32) -> TopicState {
        TopicState {
            partitions: Some(partitions),
            ..Default::default()
        }
    }

    /// The decoded entries of every shard written.
    fn written(
        states: &HashMap<String, TopicState>,
        held_back: &HashMap<String, Option<TopicState>>,
    ) -> BTreeMap<String, TopicState> {
        let shards: BTreeSet<u32> = all_shards().collect();
        let data = shard_data(states, held_back, &shards).unwrap();
        let mut out = BTreeMap::new();
        for (shard, entries) in data {
            let (decoded, errors) = decode_shard(&entries);
            assert!(errors.is_empty(), "{errors:?}");
            for topic in decoded.keys() {
                assert_eq!(shard_of(topic), shard, "{topic} in its own shard");
            }
            out.extend(decoded);
        }
        out
    }

    #[test]
    fn held_back_entries_replace_removals_and_changes_until_their_write_lands() {
        let states: HashMap<String, TopicState> = [
            ("kept".to_string(), state(1)),
            ("changed".to_string(), state(6)),
            ("new".to_string(), state(3)),
        ]
        .into();
        let held_back: HashMap<String, Option<TopicState>> = [
            // The spec write that makes 6 true is in flight: 2 is what both sides hold.
            ("changed".to_string(), Some(state(2))),
            // A KafkaTopic being created: nothing was stored before.
            ("new".to_string(), None),
            // A KafkaTopic being deleted: its entry stays until the deletion lands.
            ("removed".to_string(), Some(state(4))),
        ]
        .into();
        let expected: BTreeMap<String, TopicState> = [
            ("changed".to_string(), state(2)),
            ("kept".to_string(), state(1)),
            ("removed".to_string(), state(4)),
        ]
        .into();
        assert_eq!(written(&states, &held_back), expected);

        // Nothing held back: the entries in memory.
        let expected: BTreeMap<String, TopicState> = states.clone().into_iter().collect();
        assert_eq!(written(&states, &HashMap::new()), expected);
    }

    #[test]
    fn only_the_shards_asked_for_are_built() {
        let states: HashMap<String, TopicState> =
            (0..200).map(|i| (format!("t{i}"), state(1))).collect();
        let shard = shard_of("t7");
        let data = shard_data(&states, &HashMap::new(), &[shard].into()).unwrap();
        assert_eq!(data.keys().copied().collect::<Vec<_>>(), [shard]);
        let (decoded, _) = decode_shard(&data[&shard]);
        assert!(decoded.contains_key("t7"));
        assert!(decoded.keys().all(|t| shard_of(t) == shard));
    }
}
