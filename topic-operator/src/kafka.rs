//! The Kafka side of the topic operator: observing the managed topics (IDs, partitions,
//! replication factor, config overrides) in batched requests, and carrying out batched admin
//! requests with per-topic outcomes. May touch: Kafka, through `oxbow_runtime`'s admin client.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use futures::{StreamExt, TryStreamExt, stream};
use oxbow_runtime::kafka::admin::{self as rt, AdminError, KafkaAdmin};

use crate::plan::{AdminOp, AdminOpKind, AdminRequest, ConfigOp, TopicFilter, TopicState};

/// Topics described per DescribeTopics / DescribeConfigs request: keeps each answer small
/// (DescribeConfigs returns every config of a topic, defaults included) while 10,000 topics
/// still take only 20 requests of each kind.
const DESCRIBE_CHUNK: usize = 500;
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

/// Per-topic outcome of an admin request.
pub type TopicOutcomes = Vec<(String, Result<(), Failure>)>;

/// The admin client and the filter of managed topics.
#[derive(Clone)]
pub struct KafkaSide {
    pub admin: KafkaAdmin,
    pub filter: TopicFilter,
}

impl KafkaSide {
    /// Lists every topic, keeps the managed ones and describes them. Returns the view and how
    /// long it took (the cost of one poll).
    pub async fn observe_all(&self) -> Result<(KafkaView, Duration), AdminError> {
        let start = Instant::now();
        let names: Vec<String> = self
            .admin
            .list_topics()
            .await?
            .into_iter()
            .filter(|t| !t.internal && self.filter.is_managed(&t.name))
            .map(|t| t.name)
            .collect();
        let view = self.describe(names).await?;
        Ok((view, start.elapsed()))
    }

    /// Describes the given topics; topics that do not exist are absent from the view.
    pub async fn observe(&self, names: impl IntoIterator<Item = String>) -> Result<KafkaView, AdminError> {
        self.describe(names.into_iter().collect()).await
    }

    async fn describe(&self, names: Vec<String>) -> Result<KafkaView, AdminError> {
        let chunks: Vec<Vec<String>> = names.chunks(DESCRIBE_CHUNK).map(<[String]>::to_vec).collect();
        let parts: Vec<HashMap<String, TopicState>> = stream::iter(chunks)
            .map(|chunk| self.describe_chunk(chunk))
            .buffer_unordered(DESCRIBE_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(KafkaView {
            topics: parts.into_iter().flatten().collect(),
        })
    }

    async fn describe_chunk(&self, names: Vec<String>) -> Result<HashMap<String, TopicState>, AdminError> {
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
                            config: BTreeMap::new(),
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
                        t.config = config;
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
                            configs: state.config.clone(),
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
                                    ConfigOp::Set(key, value) => rt::ConfigOp::Set(key.clone(), value.clone()),
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
        match result {
            Ok(items) => items
                .into_iter()
                .map(|(t, r)| (t, r.map_err(|e| Failure::from_admin(&e))))
                .collect(),
            Err(e) => {
                let failure = Failure::from_admin(&e);
                topics.into_iter().map(|t| (t, Err(failure.clone()))).collect()
            }
        }
    }
}
