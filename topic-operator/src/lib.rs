//! Oxbow topic operator: keeps `KafkaTopic` resources and Kafka topics in sync, in both
//! directions or from Kubernetes only, deciding every difference by a 3-way diff against the
//! last synced state. This library holds the stages; `main.rs` wires them.
//!
//! - [`plan`]: the pure decisions (3-way merge, config diff, batching, names, state encoding).
//!   No I/O.

pub mod plan;
