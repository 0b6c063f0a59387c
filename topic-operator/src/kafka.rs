//! The Kafka side of the topic operator: observing the managed topics (IDs, partitions,
//! replication factor, config overrides) in batched requests, and carrying out batched admin
//! requests with per-topic outcomes. May touch: Kafka, through `oxbow_runtime`'s admin client.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use futures::{StreamExt, TryStreamExt, stream};
use oxbow_runtime::kafka::admin::{self as rt, AdminError, KafkaAdmin};

use crate::plan::{
    AdminOp, AdminOpKind, AdminRequest, ConfigOp, Configs, TopicFilter, TopicState,
    configs_equivalent,
};

/// Topics described per DescribeTopics / DescribeConfigs request: keeps each answer small
/// (DescribeConfigs returns every config of a topic, defaults included: about 35 entries, each
/// its own allocations in librdkafka) while 10,000 topics still take only 40 requests of each
/// kind. With 500, the answers in flight were 4.9 MiB of the heap's peak at 10,000 topics.
const DESCRIBE_CHUNK: usize = 250;
/// Describe requests in flight at once during a full observation.
const DESCRIBE_CONCURRENCY: usize = 4;

/// What Kafka holds, for the topics observed.
#[derive(Debug, Clone, Default)]
pub struct KafkaView {
    /// Existing managed topics.
    pub topics: HashMap<String, TopicState>,
}

/// Why Kafka did not do what was asked for one topic: the stable reason word (Kafka's error
/// code in CamelCase, e.g. `InvalidConfig`) and the message users see in the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: String,
    pub message: String,
    /// Kafka's error code, when Kafka answered.
    pub code: Option<i32>,
}

/// Kafka's `UNKNOWN_TOPIC_OR_PARTITION`.
pub const UNKNOWN_TOPIC_OR_PARTITION: i32 = 3;
/// Kafka's `TOPIC_DELETION_DISABLED` (`delete.topic.enable=false`).
pub const TOPIC_DELETION_DISABLED: i32 = 73;
/// Kafka's `TOPIC_ALREADY_EXISTS`.
pub const TOPIC_ALREADY_EXISTS: i32 = 36;
/// Kafka's `INVALID_REQUEST`.
pub const INVALID_REQUEST: i32 = 42;

/// Reads a failed topic deletion. Brokers with `delete.topic.enable=false` answer DeleteTopics
/// requests older than version 3 with `INVALID_REQUEST` instead of `TOPIC_DELETION_DISABLED`,
/// and librdkafka sends version 1 (without error messages), so the answer says only "Invalid
/// request". A DeleteTopics request carries nothing else that Kafka could find invalid: this
/// operator names each topic once, by name. So the failure is read as what it means.
pub fn deletion_failure(f: Failure) -> Failure {
    if f.code != Some(INVALID_REQUEST) {
        return f;
    }
    Failure {
        reason: "TopicDeletionDisabled".into(),
        message: format!(
            "Kafka refused to delete the topic ({}), as brokers with delete.topic.enable=false do",
            f.message
        ),
        code: Some(TOPIC_DELETION_DISABLED),
    }
}

/// How long a topic this operator deleted may still show in a lagging broker's metadata.
const TOMBSTONE_TTL: Duration = Duration::from_secs(60);

/// Topics this operator deleted whose deletion Kafka did not show yet, by topic ID.
///
/// A broker's copy of the metadata can lag the controller by seconds under load. Until it
/// catches up, a deleted topic still shows, and a pass would take it for a topic created in
/// Kafka and make a `KafkaTopic` for it. The topic ID tells the stale copy of the deleted
/// topic from a new topic with the same name, which is shown as usual.
#[derive(Debug, Default)]
pub struct Tombstones {
    deleted: HashMap<String, (String, Instant)>,
}

impl Tombstones {
    /// Records that `topic` with `topic_id` was deleted at `now`.
    pub fn record(&mut self, topic: &str, topic_id: &str, now: Instant) {
        self.deleted
            .insert(topic.to_owned(), (topic_id.to_owned(), now));
    }

    /// Removes the deleted topics' stale entries from `view`. `observed` tells whether a topic
    /// was asked for in that view (its absence then shows the deletion, ending the tombstone).
    pub fn hide(&mut self, view: &mut KafkaView, observed: impl Fn(&str) -> bool, now: Instant) {
        self.deleted.retain(|topic, (id, at)| {
            if now.duration_since(*at) > TOMBSTONE_TTL {
                return false;
            }
            match view.topics.get(topic) {
                Some(t) if t.topic_id.as_deref() == Some(id.as_str()) => {
                    view.topics.remove(topic);
                    true
                }
                // A new topic under the same name: the deletion is visible.
                Some(_) => false,
                None => !observed(topic),
            }
        });
    }

    pub fn is_empty(&self) -> bool {
        self.deleted.is_empty()
    }
}

/// Topics the operator knew (a base with a topic ID) that Kafka's metadata stopped showing, by
/// when that was first seen.
///
/// Deleting a topic's `KafkaTopic` deletes the topic through the finalizer, so a wrong "deleted
/// in Kafka" loses data. One read is not proof: while brokers restart (a rolling update), a
/// broker can answer UNKNOWN_TOPIC_OR_PARTITION for a topic that exists, and the full stack saw
/// exactly that turn into the deletion of a live topic. So an absence counts only once it has
/// lasted `OXBOW_KAFKA_DELETION_CONFIRM_SECONDS` (10 s by default) and a fresh listing and description, made then, agree.
#[derive(Debug, Default)]
pub struct Absences {
    first_seen: HashMap<String, Instant>,
}

impl Absences {
    /// Records `topic` as missing (from `now` if it was not already) and tells whether it has
    /// been missing for at least `after`.
    pub fn lasted(&mut self, topic: &str, now: Instant, after: Duration) -> bool {
        let since = *self.first_seen.entry(topic.to_owned()).or_insert(now);
        now.duration_since(since) >= after
    }

    /// Forgets `topic` (seen again, or its absence acted on).
    pub fn forget(&mut self, topic: &str) {
        self.first_seen.remove(topic);
    }

    /// Keeps only the topics for which `keep` holds.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.first_seen.retain(|t, _| keep(t));
    }

    pub fn len(&self) -> usize {
        self.first_seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first_seen.is_empty()
    }
}

impl Failure {
    pub fn from_admin(e: &AdminError) -> Failure {
        Failure {
            reason: e.reason().to_owned(),
            message: match e.kafka_failure() {
                Some(f) => f.message.clone(),
                None => e.to_string(),
            },
            code: e.kafka_failure().map(|f| f.code),
        }
    }
}

/// What a topic should look like once a change Kafka accepted is visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// The topic exists with at least these partitions (any count when `None`) and this config.
    Present {
        partitions: Option<i32>,
        config: Configs,
    },
    /// The topic is gone.
    Absent,
}

impl Expected {
    /// Whether `observed` (`None`: the topic does not exist) shows the change.
    pub fn is_met(&self, observed: Option<&TopicState>) -> bool {
        match (self, observed) {
            (Expected::Absent, observed) => observed.is_none(),
            (Expected::Present { .. }, None) => false,
            (Expected::Present { partitions, config }, Some(t)) => {
                partitions.is_none_or(|p| t.partitions.is_some_and(|seen| seen >= p))
                    && configs_equivalent(&t.config, config)
            }
        }
    }
}

/// Reads after a change: for how long, and how far apart, before giving up on seeing it. A
/// second was not enough for a broker under load to show 1,000 new topics (277 were still
/// missing, and their statuses waited for the next pass, 6 s later).
const CONFIRM_FOR: Duration = Duration::from_secs(2);
const CONFIRM_INTERVAL: Duration = Duration::from_millis(100);

/// Per-topic outcome of an admin request.
pub type TopicOutcomes = Vec<(String, Result<(), Failure>)>;

/// The admin client and the filter of managed topics.
#[derive(Clone)]
pub struct KafkaSide {
    pub admin: KafkaAdmin,
    pub filter: TopicFilter,
}

impl KafkaSide {
    /// The names of the managed topics in Kafka's metadata, sorted (internal topics are never
    /// managed: their names start with `__`).
    pub async fn list_managed(&self) -> Result<Vec<String>, AdminError> {
        let mut names = self.admin.list_topic_names().await?;
        names.retain(|t| self.filter.is_managed(t));
        Ok(names)
    }

    /// Describes the given topics; topics that do not exist are absent from the view.
    pub async fn observe(
        &self,
        names: impl IntoIterator<Item = String>,
    ) -> Result<KafkaView, AdminError> {
        self.describe(names.into_iter().collect()).await
    }

    async fn describe(&self, names: Vec<String>) -> Result<KafkaView, AdminError> {
        let chunks: Vec<Vec<String>> = names
            .chunks(DESCRIBE_CHUNK)
            .map(<[String]>::to_vec)
            .collect();
        let parts: Vec<HashMap<String, TopicState>> = stream::iter(chunks)
            .map(|chunk| self.describe_chunk(chunk))
            .buffer_unordered(DESCRIBE_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(KafkaView {
            topics: parts.into_iter().flatten().collect(),
        })
    }

    async fn describe_chunk(
        &self,
        names: Vec<String>,
    ) -> Result<HashMap<String, TopicState>, AdminError> {
        let mut topics = HashMap::new();
        for (name, result) in self.admin.describe_topics(names).await? {
            match result {
                Ok(d) => {
                    topics.insert(
                        name,
                        TopicState {
                            topic_id: d.topic_id,
                            partitions: Some(d.partitions as i32),
                            replicas: Some(d.replication_factor as i16),
                            config: Configs::new(),
                        },
                    );
                }
                Err(e) if e.kafka_failure().is_some_and(|f| f.is_unknown_topic()) => {}
                Err(e) => return Err(e),
            }
        }
        let existing: Vec<String> = topics.keys().cloned().collect();
        for (name, result) in self.admin.describe_topic_configs(existing).await? {
            match result {
                Ok(config) => {
                    if let Some(t) = topics.get_mut(&name) {
                        t.config = config.into();
                    }
                }
                // Deleted between the two requests.
                Err(e) if e.kafka_failure().is_some_and(|f| f.is_unknown_topic()) => {
                    topics.remove(&name);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(topics)
    }

    /// Reads the changed topics back until each shows its change, for at most about two seconds.
    ///
    /// Kafka answers a change once its controller committed it, but describe requests are
    /// served from a broker's copy of the metadata, which can lag behind. A pass that read such
    /// a stale copy right after a change would take the old value for a change made in Kafka
    /// and write it back to the spec, undoing the user's change. So the caller stores a new
    /// base only for the topics confirmed here, and the rest are decided again later (the
    /// change is then either seen or, harmlessly, sent again). Returns what was read of the
    /// confirmed topics and the names of the unconfirmed ones.
    pub async fn confirm(&self, expected: Vec<(String, Expected)>) -> (KafkaView, HashSet<String>) {
        let mut waiting: HashMap<String, Expected> = expected.into_iter().collect();
        let mut seen = KafkaView::default();
        let started = tokio::time::Instant::now();
        let mut first = true;
        while !waiting.is_empty() && (first || started.elapsed() < CONFIRM_FOR) {
            if !first {
                tokio::time::sleep(CONFIRM_INTERVAL).await;
            }
            first = false;
            let Ok(view) = self.observe(waiting.keys().cloned()).await else {
                continue;
            };
            waiting.retain(|topic, expected| {
                let observed = view.topics.get(topic);
                if !expected.is_met(observed) {
                    return true;
                }
                if let Some(t) = observed {
                    seen.topics.insert(topic.clone(), t.clone());
                }
                false
            });
        }
        (seen, waiting.into_keys().collect())
    }

    /// Number of brokers in the cluster.
    pub async fn brokers(&self) -> Result<u32, AdminError> {
        Ok(self.admin.describe_cluster().await?.broker_ids.len() as u32)
    }

    /// Sends one batched request; every topic of it gets an outcome. A failure of the whole
    /// call is given to each of its topics.
    pub async fn execute(&self, request: &AdminRequest) -> TopicOutcomes {
        let topics: Vec<String> = request.ops.iter().map(|op| op.topic().to_owned()).collect();
        let result = match request.kind {
            AdminOpKind::CreateTopics => {
                let specs: Vec<rt::NewTopicSpec> = request
                    .ops
                    .iter()
                    .filter_map(|op| match op {
                        AdminOp::CreateTopic { topic, state } => Some(rt::NewTopicSpec {
                            name: topic.clone(),
                            partitions: state.partitions,
                            replication_factor: state.replicas,
                            configs: state
                                .config
                                .iter()
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                        }),
                        _ => None,
                    })
                    .collect();
                self.admin.create_topics(&specs).await
            }
            AdminOpKind::CreatePartitions => {
                let totals: Vec<(String, usize)> = request
                    .ops
                    .iter()
                    .filter_map(|op| match op {
                        AdminOp::CreatePartitions { topic, increase } => {
                            Some((topic.clone(), increase.to.max(0) as usize))
                        }
                        _ => None,
                    })
                    .collect();
                self.admin.create_partitions(totals).await
            }
            AdminOpKind::IncrementalAlterConfigs => {
                let changes: Vec<(String, Vec<rt::ConfigOp>)> = request
                    .ops
                    .iter()
                    .filter_map(|op| match op {
                        AdminOp::AlterConfigs { topic, ops } => Some((
                            topic.clone(),
                            ops.iter()
                                .map(|o| match o {
                                    ConfigOp::Set(key, value) => {
                                        rt::ConfigOp::Set(key.clone(), value.clone())
                                    }
                                    ConfigOp::Delete(key) => rt::ConfigOp::Delete(key.clone()),
                                })
                                .collect(),
                        )),
                        _ => None,
                    })
                    .collect();
                self.admin.incremental_alter_configs(changes).await
            }
            AdminOpKind::DeleteTopics => self.admin.delete_topics(topics.clone()).await,
        };
        let read = |f: Failure| match request.kind {
            AdminOpKind::DeleteTopics => deletion_failure(f),
            _ => f,
        };
        match result {
            Ok(items) => items
                .into_iter()
                .map(|(t, r)| (t, r.map_err(|e| read(Failure::from_admin(&e)))))
                .collect(),
            Err(e) => {
                let failure = read(Failure::from_admin(&e));
                topics
                    .into_iter()
                    .map(|t| (t, Err(failure.clone())))
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(partitions: i32, config: &[(&str, &str)]) -> TopicState {
        TopicState {
            topic_id: Some("id".into()),
            partitions: Some(partitions),
            replicas: Some(1),
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_change_is_confirmed_only_when_every_part_of_it_shows() {
        let expected = Expected::Present {
            partitions: Some(3),
            config: [("retention.ms".to_string(), "1000".to_string())].into(),
        };
        assert!(expected.is_met(Some(&topic(3, &[("retention.ms", "1000")]))));
        assert!(
            expected.is_met(Some(&topic(4, &[("retention.ms", "1000")]))),
            "raised further meanwhile"
        );
        assert!(
            !expected.is_met(Some(&topic(2, &[("retention.ms", "1000")]))),
            "partitions not raised yet"
        );
        assert!(
            !expected.is_met(Some(&topic(3, &[("retention.ms", "2000")]))),
            "old value"
        );
        assert!(
            !expected.is_met(Some(&topic(3, &[("retention.ms", "1000"), ("x", "1")]))),
            "a key not removed yet"
        );
        assert!(!expected.is_met(None), "not created yet");
        let any_count = Expected::Present {
            partitions: None,
            config: Configs::new(),
        };
        assert!(any_count.is_met(Some(&topic(1, &[]))));
        assert!(Expected::Absent.is_met(None));
        assert!(
            !Expected::Absent.is_met(Some(&topic(1, &[]))),
            "not deleted yet"
        );
    }

    #[test]
    fn invalid_request_to_a_deletion_means_deletion_is_disabled() {
        let answered = Failure {
            reason: "InvalidRequest".into(),
            message: "Broker: Invalid request".into(),
            code: Some(INVALID_REQUEST),
        };
        let read = deletion_failure(answered);
        assert_eq!(read.code, Some(TOPIC_DELETION_DISABLED));
        assert_eq!(read.reason, "TopicDeletionDisabled");
        assert!(
            read.message.contains("Broker: Invalid request")
                && read.message.contains("delete.topic.enable=false"),
            "{}",
            read.message
        );
        let denied = Failure {
            reason: "TopicAuthorizationFailed".into(),
            message: "denied".into(),
            code: Some(29),
        };
        assert_eq!(deletion_failure(denied.clone()), denied, "others unchanged");
    }

    #[test]
    fn a_deleted_topic_is_hidden_until_kafka_stops_showing_it() {
        let start = Instant::now();
        let mut tombstones = Tombstones::default();
        tombstones.record("t", "old-id", start);
        let mut stale = KafkaView::default();
        stale.topics.insert(
            "t".into(),
            TopicState {
                topic_id: Some("old-id".into()),
                ..topic(1, &[])
            },
        );
        tombstones.hide(&mut stale, |_| true, start);
        assert!(stale.topics.is_empty(), "the stale copy is hidden");
        // A view that did not ask for the topic proves nothing.
        tombstones.hide(&mut KafkaView::default(), |_| false, start);
        assert!(!tombstones.is_empty());
        // Kafka no longer shows it: done.
        tombstones.hide(&mut KafkaView::default(), |_| true, start);
        assert!(tombstones.is_empty());
    }

    #[test]
    fn a_new_topic_under_a_deleted_name_is_shown() {
        let start = Instant::now();
        let mut tombstones = Tombstones::default();
        tombstones.record("t", "old-id", start);
        let mut view = KafkaView::default();
        view.topics.insert(
            "t".into(),
            TopicState {
                topic_id: Some("new-id".into()),
                ..topic(1, &[])
            },
        );
        tombstones.hide(&mut view, |_| true, start);
        assert!(view.topics.contains_key("t"));
        assert!(tombstones.is_empty());
    }

    #[test]
    fn tombstones_expire() {
        let start = Instant::now();
        let mut tombstones = Tombstones::default();
        tombstones.record("t", "old-id", start);
        let mut view = KafkaView::default();
        view.topics.insert(
            "t".into(),
            TopicState {
                topic_id: Some("old-id".into()),
                ..topic(1, &[])
            },
        );
        tombstones.hide(
            &mut view,
            |_| true,
            start + TOMBSTONE_TTL + Duration::from_secs(1),
        );
        assert!(
            view.topics.contains_key("t"),
            "after the TTL Kafka is believed again"
        );
        assert!(tombstones.is_empty());
    }

    #[test]
    fn an_absence_counts_only_once_it_has_lasted() {
        let mut a = Absences::default();
        let t0 = Instant::now();
        let after = Duration::from_secs(10);
        assert!(!a.lasted("t", t0, after), "first sighting");
        assert!(!a.lasted("t", t0 + Duration::from_secs(9), after));
        assert!(a.lasted("t", t0 + Duration::from_secs(10), after));
        // Seen again: the clock starts over.
        a.forget("t");
        assert!(!a.lasted("t", t0 + Duration::from_secs(11), after));
        assert!(a.lasted("t", t0 + Duration::from_secs(21), after));
        a.retain(|t| t != "t");
        assert!(a.is_empty());
    }
}
