//! The examples in `manifests/examples/` against the types and the CRDs: every document is
//! admitted (schema and CEL rules, evaluated offline), loses no field to pruning, deserialises
//! into its Rust type and serialises back to the same document. Reads `manifests/examples/` only.

mod offline;

use serde_json::Value;
use shared_crds::{Kafka, KafkaNodePool, KafkaTopic, KafkaUser, labels};

fn examples() -> Vec<(String, Value)> {
    let dir = offline::workspace().join("manifests/examples");
    offline::yaml_files(&dir)
        .into_iter()
        .flat_map(|file| {
            let name = file.file_name().unwrap().to_str().unwrap().to_string();
            let text = std::fs::read_to_string(&file).unwrap();
            offline::documents(&text)
                .into_iter()
                .map(move |doc| (name.clone(), doc))
        })
        .collect()
}

/// Deserialises into the type of the document's kind and serialises back.
fn round_trip(doc: &Value) -> Value {
    fn via<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) -> Value {
        let typed: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{e}: {doc}"));
        serde_json::to_value(typed).unwrap()
    }
    match doc["kind"].as_str().unwrap() {
        "Kafka" => via::<Kafka>(doc),
        "KafkaNodePool" => via::<KafkaNodePool>(doc),
        "KafkaTopic" => via::<KafkaTopic>(doc),
        "KafkaUser" => via::<KafkaUser>(doc),
        other => panic!("unexpected kind {other}"),
    }
}

#[test]
fn the_expected_examples_exist() {
    let mut found: Vec<(String, String, String)> = examples()
        .into_iter()
        .map(|(file, doc)| {
            (
                file,
                doc["kind"].as_str().unwrap().to_string(),
                doc["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    let expected = [
        ("kafka-node-pools.yaml", "KafkaNodePool", "broker"),
        ("kafka-node-pools.yaml", "KafkaNodePool", "controller"),
        ("kafka-topic.yaml", "KafkaTopic", "my-topic"),
        ("kafka-user-scram.yaml", "KafkaUser", "my-scram-user"),
        ("kafka-user-tls.yaml", "KafkaUser", "my-tls-user"),
        ("kafka.yaml", "Kafka", "my-cluster"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(f, k, n)| (f.to_string(), k.to_string(), n.to_string()))
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn examples_are_admitted_without_pruning() {
    for (file, doc) in examples() {
        let admission = offline::admit(&doc, None);
        assert!(
            admission.rejections.is_empty(),
            "{file}: {:?}",
            admission.rejections
        );
        assert!(
            admission.pruned.is_empty(),
            "{file}: pruned {:?}",
            admission.pruned
        );
    }
}

/// JSON equality where numbers compare by value: `10` read into an `f64` field comes back as
/// `10.0`, which is the same number.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn examples_round_trip_through_the_rust_types() {
    for (file, doc) in examples() {
        let back = round_trip(&doc);
        assert!(same_json(&back, &doc), "{file}: {back} != {doc}");
    }
}

#[test]
fn number_comparison_is_by_value_only() {
    assert!(same_json(
        &serde_json::json!({"a": [10]}),
        &serde_json::json!({"a": [10.0]})
    ));
    assert!(!same_json(
        &serde_json::json!({"a": [10]}),
        &serde_json::json!({"a": [10.5]})
    ));
    assert!(!same_json(
        &serde_json::json!({"a": 1}),
        &serde_json::json!({"a": 1, "b": 2})
    ));
    assert!(!same_json(
        &serde_json::json!({"a": "1"}),
        &serde_json::json!({"a": 1})
    ));
}

#[test]
fn entity_resources_name_their_cluster() {
    for (file, doc) in examples() {
        if doc["kind"] != "Kafka" {
            assert_eq!(
                doc["metadata"]["labels"][labels::CLUSTER],
                "my-cluster",
                "{file}"
            );
        }
    }
}

#[test]
fn kafka_example_has_the_three_listeners_and_both_operators() {
    let (_, doc) = examples()
        .into_iter()
        .find(|(_, d)| d["kind"] == "Kafka")
        .unwrap();
    let kafka: Kafka = serde_json::from_value(doc).unwrap();
    use shared_crds::kafka::ListenerAuthenticationType as Auth;
    let listeners: Vec<(&str, i32, bool, Option<Auth>)> = kafka
        .spec
        .kafka
        .listeners
        .iter()
        .map(|l| {
            (
                l.name.as_str(),
                l.port,
                l.tls,
                l.authentication.as_ref().map(|a| a.type_),
            )
        })
        .collect();
    assert_eq!(
        listeners,
        [
            ("plain", 9092, false, None),
            ("tls", 9093, true, Some(Auth::Tls)),
            ("scram", 9094, true, Some(Auth::ScramSha512)),
        ]
    );
    let eo = kafka.spec.entity_operator.unwrap();
    assert!(eo.topic_operator.is_some() && eo.user_operator.is_some());
    assert!(kafka.spec.kafka.authorization.is_some());
}
