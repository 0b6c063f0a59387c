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

struct Mem {
    /// The entries, by shard (index = shard number), so that a shard is encoded without
    /// looking at the others.
    shards: Vec<HashMap<String, TopicState>>,
    /// For topics whose new base assumes a Kubernetes write still in flight: the entry to write
    /// until it lands (`None`: none).
    held: HashMap<String, Option<TopicState>>,
    /// Shards whose entries changed since they were last written.
    dirty: BTreeSet<u32>,
}

impl Default for Mem {
    fn default() -> Self {
        Mem {
            shards: (0..STATE_SHARDS).map(|_| HashMap::new()).collect(),
            held: HashMap::new(),
            dirty: BTreeSet::new(),
        }
    }
}

impl Mem {
    fn from_states(states: HashMap<String, TopicState>, dirty: BTreeSet<u32>) -> Mem {
        let mut mem = Mem {
            dirty,
            ..Mem::default()
        };
        for (topic, state) in states {
            mem.shards[shard_of(&topic) as usize].insert(topic, state);
        }
        mem
    }

    fn get(&self, topic: &str) -> Option<&TopicState> {
        self.shards[shard_of(topic) as usize].get(topic)
    }

    fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }

    fn set(&mut self, topic: &str, state: Option<TopicState>) {
        let shard = shard_of(topic);
        let entries = &mut self.shards[shard as usize];
        let changed = match &state {
            Some(s) => entries.get(topic) != Some(s),
            None => entries.contains_key(topic),
        };
        if !changed {
            return;
        }
        match state {
            Some(s) => entries.insert(topic.to_owned(), s),
            None => entries.remove(topic),
        };
        self.dirty.insert(shard);
    }

    fn set_ahead(&mut self, topic: &str, state: Option<TopicState>) {
        let old = self.get(topic).cloned();
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

    /// The data of `shard` as it is to be written: its entries, with the held-back ones in
    /// place of those set ahead.
    fn shard_data(&self, shard: u32) -> Result<BTreeMap<String, String>, StoreError> {
        let current = self.shards[shard as usize]
            .iter()
            .filter(|(topic, _)| !self.held.contains_key(*topic));
        let held = self
            .held
            .iter()
            .filter(|(topic, _)| shard_of(topic) == shard)
            .filter_map(|(topic, state)| state.as_ref().map(|s| (topic, s)));
        current
            .chain(held)
            .map(|(topic, state)| encode_entry(topic, state))
            .collect()
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
                mem: Mutex::new(Mem::from_states(states, dirty)),
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
            let dirty = dirty.into_iter().chain(mem.dirty.iter().copied()).collect();
            *mem = Mem::from_states(states, dirty);
        }
        Ok(())
    }

    fn mem(&self) -> std::sync::MutexGuard<'_, Mem> {
        self.shared.mem.lock().expect("state store lock")
    }

    /// The last synced state of `topic`.
    pub fn get(&self, topic: &str) -> Option<TopicState> {
        self.mem().get(topic).cloned()
    }

    /// Every topic with a stored state.
    pub fn topics(&self) -> Vec<String> {
        let mem = self.mem();
        mem.shards.iter().flat_map(|e| e.keys().cloned()).collect()
    }

    /// Number of stored topics.
    pub fn len(&self) -> usize {
        self.mem().len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.mem().len() == 0
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
        // Taken as written from here on; a shard whose write fails is marked again. Each shard
        // is encoded just before its write, so a flush holds a few shards' data at once, not the
        // whole store.
        let shards = std::mem::take(&mut self.mem().dirty);
        let results: Vec<(u32, Result<(), StateStoreError>)> = stream::iter(shards)
            .map(|shard| async move {
                let data = self.mem().shard_data(shard);
                let r = match data {
                    Ok(data) => self.write_shard(shard, data).await,
                    Err(e) => Err(e.into()),
                };
                (shard, r)
            })
            .buffer_unordered(FLUSH_CONCURRENCY)
            .collect()
            .await;
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

    /// Writes one shard's whole data map with one server-side apply.
    async fn write_shard(
        &self,
        shard: u32,
        data: BTreeMap<String, String>,
    ) -> Result<(), StateStoreError> {
        let cluster = &self.shared.cluster;
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
        self.shared
            .api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map(drop)
            .map_err(|source| StateStoreError::WriteStateConfigMap { name, source })
    }
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

    fn entries(list: &[(&str, TopicState)]) -> BTreeMap<String, TopicState> {
        list.iter()
            .map(|(t, s)| (t.to_string(), s.clone()))
            .collect()
    }

    /// The decoded entries a flush of every shard of `mem` would write now.
    fn written(mem: &Mem) -> BTreeMap<String, TopicState> {
        let mut out = BTreeMap::new();
        for shard in all_shards() {
            let (decoded, errors) = decode_shard(&mem.shard_data(shard).unwrap());
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
        let mut mem = Mem::default();
        mem.set("kept", Some(state(1)));
        mem.set("changed", Some(state(2)));
        mem.set("removed", Some(state(4)));
        // The spec write that makes 6 true is in flight: 2 is what both sides hold.
        mem.set_ahead("changed", Some(state(6)));
        // A KafkaTopic being created: nothing was stored before.
        mem.set_ahead("new", Some(state(3)));
        // A KafkaTopic being deleted: its entry stays until the deletion lands.
        mem.set_ahead("removed", None);
        assert_eq!(
            written(&mem),
            entries(&[
                ("changed", state(2)),
                ("kept", state(1)),
                ("removed", state(4)),
            ])
        );
        // Planned with the new bases meanwhile.
        assert_eq!(mem.get("changed"), Some(&state(6)));
        assert_eq!(mem.get("new"), Some(&state(3)));
        assert_eq!(mem.get("removed"), None);

        for topic in ["changed", "new", "removed"] {
            mem.landed(topic, true);
        }
        assert_eq!(
            written(&mem),
            entries(&[("changed", state(6)), ("kept", state(1)), ("new", state(3))])
        );
    }

    #[test]
    fn a_failed_write_puts_the_old_base_back_and_every_landing_marks_its_shard() {
        let mut mem = Mem::default();
        mem.set("landing", Some(state(1)));
        mem.set("failing", Some(state(1)));
        mem.dirty.clear();

        mem.set_ahead("landing", Some(state(2)));
        mem.set_ahead("failing", Some(state(2)));
        // Set ahead twice within a batch: the entry to write stays the first one.
        mem.set_ahead("landing", Some(state(3)));
        assert_eq!(
            written(&mem),
            entries(&[("failing", state(1)), ("landing", state(1))])
        );

        mem.dirty.clear();
        mem.landed("landing", true);
        mem.landed("failing", false);
        assert!(mem.held.is_empty());
        let shards: BTreeSet<u32> = [shard_of("landing"), shard_of("failing")].into();
        assert_eq!(mem.dirty, shards);
        assert_eq!(
            written(&mem),
            entries(&[("failing", state(1)), ("landing", state(3))])
        );
        // The failed write's base is the old one in memory too, for the next plan.
        assert_eq!(mem.get("failing"), Some(&state(1)));

        // A topic never set ahead: `landed` changes nothing.
        mem.dirty.clear();
        mem.landed("landing", false);
        assert!(mem.dirty.is_empty());
        assert_eq!(mem.get("landing"), Some(&state(3)));
    }

    #[test]
    fn entries_live_in_their_shard_and_only_changes_mark_it() {
        let mut mem = Mem::default();
        for i in 0..200 {
            mem.set(&format!("t{i}"), Some(state(1)));
        }
        assert_eq!(mem.len(), 200);
        let shard = shard_of("t7");
        let (decoded, _) = decode_shard(&mem.shard_data(shard).unwrap());
        assert!(decoded.contains_key("t7"));
        assert!(decoded.keys().all(|t| shard_of(t) == shard));

        mem.dirty.clear();
        mem.set("t7", Some(state(1)));
        mem.set("absent", None);
        assert!(mem.dirty.is_empty(), "an unchanged entry writes nothing");
        mem.set("t7", None);
        assert_eq!(mem.dirty, [shard].into());
        assert_eq!(mem.len(), 199);

        let loaded = Mem::from_states([("t7".to_string(), state(2))].into(), BTreeSet::new());
        assert_eq!(loaded.get("t7"), Some(&state(2)));
        assert_eq!(loaded.len(), 1);
    }
}
