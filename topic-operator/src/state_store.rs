//! The store of last synced states (the base of the 3-way merge), kept in memory and persisted
//! to the sharded ConfigMaps described in [`crate::plan::store`]. Loaded at start and read again
//! at each full reconciliation; each batch of writes, before its statuses, writes only the
//! shards whose entries changed, with one server-side apply per shard, several shards at once.
//! May touch: ConfigMaps labelled as this cluster's topic state, in the operator's namespace.
//!
//! If the ConfigMaps are lost (deleted by hand), the store starts empty: every topic present on
//! both sides is then planned as an adoption (a 2-way merge where Kubernetes wins and partitions
//! take the larger count, reported without warnings), and topics present on one side only are
//! created on the other. The store is rebuilt by that first pass. Nothing is deleted on either
//! side because of a lost store.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

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
}

impl StateStoreError {
    /// Stable reason word.
    pub fn reason(&self) -> &'static str {
        match self {
            StateStoreError::ListStateConfigMaps { .. } => "ListStateConfigMaps",
            StateStoreError::WriteStateConfigMap { .. } => "WriteStateConfigMap",
            StateStoreError::Encode(e) => e.reason(),
        }
    }
}

/// The in-memory store and its persistence: a handle, shared by the sync loop and the task that
/// runs a batch of Kubernetes writes (which writes the store between a batch's spec writes and
/// its statuses, see [`StateStore::flush`]).
#[derive(Clone)]
pub struct StateStore {
    shared: Arc<Shared>,
}

struct Shared {
    api: Api<ConfigMap>,
    cluster: String,
    mem: Mutex<Mem>,
    /// Held by a flush from its snapshot until its writes are done, so that flushes land in the
    /// order of their snapshots.
    writing: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Mem {
    states: HashMap<String, TopicState>,
    /// For topics whose new base assumes a Kubernetes write still in flight: the entry to write
    /// until it lands (`None`: none).
    held: HashMap<String, Option<TopicState>>,
    /// Shards whose entries changed since they were last written.
    dirty: BTreeSet<u32>,
}

impl Mem {
    fn set(&mut self, topic: &str, state: Option<TopicState>) {
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

    fn set_ahead(&mut self, topic: &str, state: Option<TopicState>) {
        let old = self.states.get(topic).cloned();
        self.held.entry(topic.to_owned()).or_insert(old);
        self.set(topic, state);
    }

    fn landed(&mut self, topic: &str, ok: bool) {
        if let Some(old) = self.held.remove(topic) {
            if !ok {
                self.set(topic, old);
            }
            self.dirty.insert(shard_of(topic));
        }
    }

    /// The data of every changed shard, from here on taken as written.
    fn take_dirty(&mut self) -> Result<BTreeMap<u32, BTreeMap<String, String>>, StoreError> {
        let by_shard = shard_data(&self.states, &self.held, &self.dirty)?;
        self.dirty.clear();
        Ok(by_shard)
    }
}

/// The entries of every state ConfigMap of `cluster`, and the shards to write again (entries
/// found in the wrong shard).
async fn read(
    api: &Api<ConfigMap>,
    cluster: &str,
) -> Result<(HashMap<String, TopicState>, BTreeSet<u32>), StateStoreError> {
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
    Ok((states, dirty))
}

impl StateStore {
    /// Reads every state ConfigMap of `cluster`. Unreadable entries are logged and dropped: that
    /// topic is then planned as an adoption, never deleted.
    pub async fn load(api: Api<ConfigMap>, cluster: &str) -> Result<StateStore, StateStoreError> {
        let (states, dirty) = read(&api, cluster).await?;
        Ok(StateStore {
            shared: Arc::new(Shared {
                api,
                cluster: cluster.to_owned(),
                mem: Mutex::new(Mem {
                    states,
                    held: HashMap::new(),
                    dirty,
                }),
                writing: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Writes what changed, then reads the ConfigMaps again (picking up entries edited or
    /// deleted by hand). Kept as it is when the write or the read fails, or while a base is
    /// held back (a batch of writes is in flight).
    pub async fn reload(&self) -> Result<(), StateStoreError> {
        let _writing = self.shared.writing.lock().await;
        self.write_dirty().await?;
        let (states, dirty) = read(&self.shared.api, &self.shared.cluster).await?;
        let mut mem = self.mem();
        if mem.held.is_empty() {
            mem.states = states;
            mem.dirty.extend(dirty);
        }
        Ok(())
    }

    fn mem(&self) -> std::sync::MutexGuard<'_, Mem> {
        self.shared.mem.lock().expect("state store lock")
    }

    /// The last synced state of `topic`.
    pub fn get(&self, topic: &str) -> Option<TopicState> {
        self.mem().states.get(topic).cloned()
    }

    /// Every topic with a stored state.
    pub fn topics(&self) -> Vec<String> {
        self.mem().states.keys().cloned().collect()
    }

    /// Number of stored topics.
    pub fn len(&self) -> usize {
        self.mem().states.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.mem().states.is_empty()
    }

    /// Records `state` (or its absence) for `topic`; marks the shard for writing if it changed.
    pub fn set(&self, topic: &str, state: Option<TopicState>) {
        self.mem().set(topic, state);
    }

    /// Records `state` for `topic` ahead of the Kubernetes write that makes it true (a spec
    /// change, a `KafkaTopic` created or deleted): until [`StateStore::landed`] says the write
    /// happened, flushes write the entry it replaced. Written before, it would outlive a crash
    /// that lost the write, and the next operator would take the missing spec change for a
    /// change made in Kubernetes and revert Kafka.
    pub fn set_ahead(&self, topic: &str, state: Option<TopicState>) {
        self.mem().set_ahead(topic, state);
    }

    /// The write `topic`'s base was set ahead of has landed (`true`): the new entry is written
    /// by the next flush; or it failed: the entry it replaced is back. Nothing for a topic
    /// without a base set ahead.
    pub fn landed(&self, topic: &str, ok: bool) {
        self.mem().landed(topic, ok);
    }

    /// Whether some entry changed since it was last written.
    pub fn is_dirty(&self) -> bool {
        !self.mem().dirty.is_empty()
    }

    /// Writes every changed shard (its whole data map, one server-side apply per shard, several
    /// shards at once), with the held-back entries in place of the ones set ahead. Returns the
    /// number of writes. Flushes run one at a time, each from a snapshot taken when its turn
    /// comes, so a later flush never lands before an earlier one. A shard whose write fails is
    /// marked again, for the next flush.
    pub async fn flush(&self) -> Result<usize, StateStoreError> {
        let _writing = self.shared.writing.lock().await;
        self.write_dirty().await
    }

    async fn write_dirty(&self) -> Result<usize, StateStoreError> {
        // Taken as written from here on; a shard whose write fails is marked again below.
        let by_shard = self.mem().take_dirty()?;
        if by_shard.is_empty() {
            return Ok(0);
        }
        let results = write_shards(&self.shared.api, &self.shared.cluster, by_shard).await;
        let mut writes = 0;
        let mut first_error = None;
        let mut mem = self.mem();
        for (shard, r) in results {
            match r {
                Ok(()) => writes += 1,
                Err(e) => {
                    mem.dirty.insert(shard);
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

    /// The entries a flush of `mem` would write now (every shard, as `take_dirty` builds them).
    fn flushed(mem: &mut Mem) -> BTreeMap<String, TopicState> {
        mem.dirty.extend(all_shards());
        let mut out = BTreeMap::new();
        for entries in mem.take_dirty().unwrap().into_values() {
            out.extend(decode_shard(&entries).0);
        }
        assert!(mem.dirty.is_empty(), "a flush takes every changed shard");
        out
    }

    #[test]
    fn a_base_set_ahead_is_written_only_once_its_write_landed_and_goes_back_if_it_failed() {
        let mut mem = Mem::default();
        mem.set("landing", Some(state(1)));
        mem.set("failing", Some(state(1)));
        mem.take_dirty().unwrap();

        // Spec writes in flight for both, and a KafkaTopic being created for a third.
        mem.set_ahead("landing", Some(state(2)));
        mem.set_ahead("failing", Some(state(2)));
        mem.set_ahead("created", Some(state(5)));
        // Set ahead twice within a batch: the entry to write stays the first one.
        mem.set_ahead("landing", Some(state(3)));
        assert_eq!(
            flushed(&mut mem),
            [
                ("failing".to_string(), state(1)),
                ("landing".to_string(), state(1)),
            ]
            .into()
        );
        // Planned with the new bases meanwhile.
        assert_eq!(mem.states.get("landing"), Some(&state(3)));

        mem.landed("landing", true);
        mem.landed("failing", false);
        mem.landed("created", true);
        // Nothing held any more, and the shards of all three are marked for the next flush.
        assert!(mem.held.is_empty());
        for topic in ["landing", "failing", "created"] {
            assert!(mem.dirty.contains(&shard_of(topic)), "{topic}");
        }
        assert_eq!(
            flushed(&mut mem),
            [
                ("created".to_string(), state(5)),
                ("failing".to_string(), state(1)),
                ("landing".to_string(), state(3)),
            ]
            .into()
        );
        // The failed write's base is the old one in memory too, for the next plan.
        assert_eq!(mem.states.get("failing"), Some(&state(1)));

        // A topic never set ahead: `landed` changes nothing.
        mem.take_dirty().unwrap();
        mem.landed("landing", false);
        assert!(mem.dirty.is_empty());
        assert_eq!(mem.states.get("landing"), Some(&state(3)));
    }

    #[test]
    fn a_deletion_set_ahead_keeps_the_entry_until_it_landed() {
        let mut mem = Mem::default();
        mem.set("gone", Some(state(4)));
        mem.set_ahead("gone", None);
        assert_eq!(mem.states.get("gone"), None);
        assert_eq!(flushed(&mut mem), [("gone".to_string(), state(4))].into());
        mem.landed("gone", true);
        assert_eq!(flushed(&mut mem), BTreeMap::new());
    }
}
