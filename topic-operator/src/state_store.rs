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

    /// Writes every changed shard (whole data map, server-side apply). Returns the number of
    /// writes. A failed shard stays marked and is retried by the next flush.
    pub async fn flush(&mut self) -> Result<usize, StateStoreError> {
        if self.dirty.is_empty() {
            return Ok(0);
        }
        let mut by_shard: BTreeMap<u32, BTreeMap<String, String>> = BTreeMap::new();
        for shard in &self.dirty {
            by_shard.insert(*shard, BTreeMap::new());
        }
        for (topic, state) in &self.states {
            if let Some(data) = by_shard.get_mut(&shard_of(topic)) {
                let (k, v) = encode_entry(topic, state)?;
                data.insert(k, v);
            }
        }
        let api = &self.api;
        let cluster = &self.cluster;
        let results: Vec<(u32, Result<(), StateStoreError>)> = stream::iter(by_shard)
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
            .await;
        let mut writes = 0;
        let mut first_error = None;
        for (shard, r) in results {
            match r {
                Ok(()) => {
                    self.dirty.remove(&shard);
                    writes += 1;
                }
                Err(e) => {
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

/// All shard numbers, for tests and tooling.
pub fn all_shards() -> impl Iterator<Item = u32> {
    0..STATE_SHARDS
}
