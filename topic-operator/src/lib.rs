//! Oxbow topic operator: keeps `KafkaTopic` resources and Kafka topics in sync, in both
//! directions or from Kubernetes only, deciding every difference by a 3-way diff against the
//! last synced state. This library holds the stages; `main.rs` wires them.
//!
//! - [`config`]: the `OXBOW_*` settings.
//! - [`plan`]: the pure decisions (3-way merge, config diff, batching, names, state encoding).
//! - [`convert`], [`status`]: pure mapping between resources, planner state and status.
//! - [`kafka`]: batched observation of Kafka and batched admin requests.
//! - [`retry`]: which failed topics are sent to Kafka again, and when (pure).
//! - [`state_store`]: the last synced state, persisted in ConfigMaps.
//! - [`controller`]: the sync loop (watch, passes, writes, Events).

pub mod config;
pub mod controller;
pub mod convert;
pub mod kafka;
pub mod plan;
pub mod retry;
pub mod state_store;
pub mod status;
