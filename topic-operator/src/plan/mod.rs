//! The plan stage of the topic operator: pure decisions from observed data to actions. Pure:
//! no I/O, no clock, no randomness; everything is passed in.
//!
//! - [`model`]: the data a topic is described with.
//! - [`three_way`]: the 3-way merge of base, `KafkaTopic` and Kafka topic.
//! - [`config_diff`]: config comparison and `IncrementalAlterConfigs` operations.
//! - [`batch`]: admin operations packed into requests a KRaft controller accepts.
//! - [`names`]: managed topics and `KafkaTopic` names for Kafka topic names.
//! - [`store`]: encoding of the last-synced-state ConfigMaps.

pub mod batch;
pub mod config_diff;
pub mod model;
pub mod names;
pub mod store;
pub mod three_way;

pub use batch::{
    AdminOp, AdminOpKind, AdminRequest, BatchLimits, KRAFT_MAX_RECORDS_PER_OP, batch_admin_ops,
};
pub use config_diff::{ConfigOp, config_ops, configs_equivalent, normalise_config_value};
pub use model::{Configs, Field, ModelError, Side, SyncMode, TopicState};
pub use names::{
    NamesError, TopicFilter, is_internal_topic, is_valid_kube_name, is_valid_topic_name,
    kube_name_for_topic,
};
pub use store::{
    STATE_SHARDS, StoreError, decode_entry, decode_shard, encode_entry, shard_of,
    state_config_map_name,
};
pub use three_way::{
    Conflict, KafkaAction, PartitionIncrease, Refusal, SpecAction, SpecUpdate, TopicPlan,
    plan_topic, plan_topic_in_cluster,
};
