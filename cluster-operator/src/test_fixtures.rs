//! Test support: loads the YAML fixtures in `cluster-operator/tests/fixtures/`, each a whole
//! cluster as a user would apply it (one `Kafka` and its `KafkaNodePool`s, status included
//! where a test needs one). Reads files; compiled for tests only.

use shared_crds::{Kafka, KafkaNodePool};

use crate::model::{OperatorDefaults, ResolvedCluster, validate_cluster};

/// The resources of one fixture file.
pub struct Fixture {
    /// The Kafka resource.
    pub kafka: Kafka,
    /// The node pools, in file order.
    pub pools: Vec<KafkaNodePool>,
}

/// Loads `tests/fixtures/<name>.yaml`. Panics on a missing file or a document that does not
/// deserialise, naming the file.
pub fn load(name: &str) -> Fixture {
    let path = format!("{}/tests/fixtures/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut kafka = None;
    let mut pools = Vec::new();
    // Documents are separated by `---` lines; splitting here keeps `serde` out of the
    // dependencies.
    let documents = text.split("\n---").filter(|d| !d.trim().is_empty());
    for document in documents {
        let value: serde_yaml::Value =
            serde_yaml::from_str(document).unwrap_or_else(|e| panic!("{path}: {e}"));
        if value.is_null() {
            continue; // only comments
        }
        match value.get("kind").and_then(|k| k.as_str()) {
            Some("Kafka") => {
                kafka =
                    Some(serde_yaml::from_value(value).unwrap_or_else(|e| panic!("{path}: {e}")))
            }
            Some("KafkaNodePool") => {
                pools.push(serde_yaml::from_value(value).unwrap_or_else(|e| panic!("{path}: {e}")))
            }
            other => panic!("{path}: unexpected kind {other:?}"),
        }
    }
    Fixture {
        kafka: kafka.unwrap_or_else(|| panic!("{path}: no Kafka resource")),
        pools,
    }
}

/// Loads fixture `name` and validates it with the default operator settings, returning the
/// resolved cluster. Panics, naming the fixture and the error, when validation fails.
pub fn resolved(name: &str) -> ResolvedCluster {
    let f = load(name);
    validate_cluster(&f.kafka, &f.pools, &OperatorDefaults::default())
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
        .cluster
}
