//! The validation rules of the CRDs, in both directions, evaluated offline (schema checks and
//! CEL rules through kube-cel): what each rule lets through matters as much as what it refuses.
//! Pure apart from reading the generated CRDs.

mod offline;

use serde_json::{Value, json};

fn kafka(listeners: Value, extra_spec: Value) -> Value {
    let mut spec = json!({"kafka": {"listeners": listeners}});
    spec.as_object_mut()
        .unwrap()
        .extend(extra_spec.as_object().unwrap().clone());
    json!({"apiVersion": "kafka.oxbow.rs/v1beta1", "kind": "Kafka", "metadata": {"name": "c"}, "spec": spec})
}

fn plain_listener() -> Value {
    json!([{"name": "plain", "port": 9092, "type": "internal", "tls": false}])
}

fn with(kind: &str, spec: Value) -> Value {
    json!({"apiVersion": "kafka.oxbow.rs/v1beta1", "kind": kind, "metadata": {"name": "x"}, "spec": spec})
}

fn accepted(object: &Value) -> bool {
    offline::admit(object, None).rejections.is_empty()
}

fn rejected_at(object: &Value, path: &str) -> bool {
    offline::admit(object, None)
        .rejections
        .iter()
        .any(|r| r.path == path)
}

#[test]
fn ca_renewal_must_come_before_expiry_counting_defaults() {
    let ca = |ca: Value| kafka(plain_listener(), json!({"clusterCa": ca}));
    assert!(accepted(&ca(json!({}))));
    assert!(
        accepted(&ca(json!({"renewalDays": 364}))),
        "364 < default validity 365"
    );
    assert!(!accepted(&ca(json!({"renewalDays": 365}))));
    assert!(accepted(&ca(
        json!({"renewalDays": 400, "validityDays": 500})
    )));
    assert!(
        accepted(&ca(json!({"validityDays": 31}))),
        "default renewal 30 < 31"
    );
    assert!(rejected_at(
        &ca(json!({"validityDays": 30})),
        "spec.clusterCa.renewalDays"
    ));
    let clients = kafka(
        plain_listener(),
        json!({"clientsCa": {"renewalDays": 10, "validityDays": 10}}),
    );
    assert!(rejected_at(&clients, "spec.clientsCa.renewalDays"));
}

#[test]
fn listener_names_and_ports_must_be_unique_but_may_differ() {
    let two = |a: (&str, i32), b: (&str, i32)| {
        kafka(
            json!([
                {"name": a.0, "port": a.1, "type": "internal", "tls": false},
                {"name": b.0, "port": b.1, "type": "internal", "tls": true},
            ]),
            json!({}),
        )
    };
    assert!(accepted(&two(("a", 9092), ("b", 9093))));
    assert!(rejected_at(
        &two(("a", 9092), ("a", 9093)),
        "spec.kafka.listeners"
    ));
    assert!(rejected_at(
        &two(("a", 9092), ("b", 9092)),
        "spec.kafka.listeners"
    ));
}

#[test]
fn reserved_and_low_ports_are_refused() {
    for port in [9090, 9091, 9404, 9999, 80] {
        let k = kafka(
            json!([{"name": "p", "port": port, "type": "internal", "tls": false}]),
            json!({}),
        );
        assert!(
            rejected_at(&k, "spec.kafka.listeners[0].port"),
            "port {port}"
        );
    }
    for port in [9092, 9405, 10000, 65535] {
        let k = kafka(
            json!([{"name": "p", "port": port, "type": "internal", "tls": false}]),
            json!({}),
        );
        assert!(accepted(&k), "port {port}");
    }
}

#[test]
fn mutual_tls_needs_a_tls_listener() {
    let listener = |tls: bool, auth: &str| {
        kafka(
            json!([{"name": "p", "port": 9093, "type": "internal", "tls": tls, "authentication": {"type": auth}}]),
            json!({}),
        )
    };
    assert!(accepted(&listener(true, "tls")));
    assert!(rejected_at(
        &listener(false, "tls"),
        "spec.kafka.listeners[0].authentication.type"
    ));
    assert!(
        accepted(&listener(false, "scram-sha-512")),
        "SCRAM over plaintext is allowed, as in Strimzi"
    );
}

#[test]
fn external_logging_needs_its_source() {
    let logging = |l: Value| {
        let mut k = kafka(plain_listener(), json!({}));
        k["spec"]["kafka"]["logging"] = l;
        k
    };
    assert!(accepted(&logging(
        json!({"type": "inline", "loggers": {"rootLogger.level": "INFO"}})
    )));
    assert!(accepted(&logging(
        json!({"type": "external", "valueFrom": {"configMapKeyRef": {"name": "logs", "key": "log4j2.properties"}}})
    )));
    assert!(rejected_at(
        &logging(json!({"type": "external"})),
        "spec.kafka.logging.valueFrom"
    ));
}

#[test]
fn free_form_config_keeps_any_value() {
    let mut k = kafka(plain_listener(), json!({}));
    k["spec"]["kafka"]["config"] =
        json!({"num.partitions": 3, "auto.create.topics.enable": false, "x": "y"});
    let admission = offline::admit(&k, None);
    assert!(
        admission.rejections.is_empty() && admission.pruned.is_empty(),
        "{admission:?}"
    );
}

#[test]
fn unsupported_strimzi_fields_are_pruned_not_rejected() {
    let mut k = kafka(plain_listener(), json!({"cruiseControl": {}}));
    k["spec"]["kafka"]["rack"] = json!({"topologyKey": "zone"});
    let admission = offline::admit(&k, None);
    assert!(
        admission.rejections.is_empty(),
        "{:?}",
        admission.rejections
    );
    assert_eq!(admission.pruned, ["spec.cruiseControl", "spec.kafka.rack"]);
}

#[test]
fn storage_rules() {
    let pool = |storage: Value| {
        with(
            "KafkaNodePool",
            json!({"replicas": 1, "roles": ["broker"], "storage": storage}),
        )
    };
    assert!(accepted(&pool(
        json!({"type": "ephemeral", "sizeLimit": "1Gi"})
    )));
    assert!(accepted(&pool(
        json!({"type": "persistent-claim", "size": "10Gi", "deleteClaim": true})
    )));
    assert!(rejected_at(
        &pool(json!({"type": "persistent-claim"})),
        "spec.storage.size"
    ));
    assert!(rejected_at(
        &pool(json!({"type": "jbod"})),
        "spec.storage.volumes"
    ));
    assert!(rejected_at(
        &pool(json!({"type": "ephemeral", "volumes": [{"id": 0, "type": "ephemeral"}]})),
        "spec.storage.volumes"
    ));
    let jbod = |volumes: Value| pool(json!({"type": "jbod", "volumes": volumes}));
    assert!(accepted(&jbod(json!([
        {"id": 0, "type": "persistent-claim", "size": "1Gi", "kraftMetadata": "shared"},
        {"id": 1, "type": "ephemeral"},
    ]))));
    assert!(rejected_at(
        &jbod(json!([{"id": 0, "type": "persistent-claim"}])),
        "spec.storage.volumes[0].size"
    ));
    assert!(rejected_at(
        &jbod(json!([
            {"id": 0, "type": "ephemeral", "kraftMetadata": "shared"},
            {"id": 1, "type": "ephemeral", "kraftMetadata": "shared"},
        ])),
        "spec.storage.volumes"
    ));
    assert!(rejected_at(
        &jbod(json!([{"id": 0, "type": "jbod"}])),
        "spec.storage.volumes[0].type"
    ));
}

#[test]
fn roles_are_a_non_empty_set() {
    let pool = |roles: Value| {
        with(
            "KafkaNodePool",
            json!({"replicas": 1, "roles": roles, "storage": {"type": "ephemeral"}}),
        )
    };
    assert!(accepted(&pool(json!(["controller", "broker"]))));
    assert!(rejected_at(&pool(json!([])), "spec.roles"));
    assert!(rejected_at(
        &pool(json!(["broker", "broker"])),
        "spec.roles[1]"
    ));
}

#[test]
fn topic_name_is_fixed_once_created() {
    let topic = |name: Option<&str>| {
        let mut spec = json!({"partitions": 1});
        if let Some(n) = name {
            spec["topicName"] = json!(n);
        }
        json!({"apiVersion": "kafka.oxbow.rs/v1beta1", "kind": "KafkaTopic", "metadata": {"name": "orders"}, "spec": spec})
    };
    let update = |old: &Value, new: &Value| offline::admit(new, Some(old)).rejections;
    assert!(update(&topic(Some("Orders")), &topic(Some("Orders"))).is_empty());
    assert!(
        update(&topic(None), &topic(Some("orders"))).is_empty(),
        "spelling out metadata.name is no rename"
    );
    assert!(update(&topic(Some("orders")), &topic(None)).is_empty());
    let renamed = update(&topic(Some("Orders")), &topic(Some("Orders2")));
    assert!(
        renamed.iter().any(|r| r.path == "spec.topicName"),
        "{renamed:?}"
    );
    let renamed = update(&topic(None), &topic(Some("other")));
    assert!(
        renamed.iter().any(|r| r.path == "spec.topicName"),
        "{renamed:?}"
    );
    let mut more_partitions = topic(Some("Orders"));
    more_partitions["spec"]["partitions"] = json!(6);
    assert!(update(&topic(Some("Orders")), &more_partitions).is_empty());
}

#[test]
fn acl_resources_need_a_name_unless_cluster() {
    let user = |resource: Value| {
        with(
            "KafkaUser",
            json!({"authorization": {"type": "simple", "acls": [{"resource": resource, "operations": ["Describe"]}]}}),
        )
    };
    assert!(accepted(&user(json!({"type": "cluster"}))));
    for t in ["topic", "group", "transactionalId"] {
        assert!(accepted(&user(json!({"type": t, "name": "*"}))), "{t}");
        assert!(
            rejected_at(
                &user(json!({"type": t})),
                "spec.authorization.acls[0].resource.name"
            ),
            "{t}"
        );
    }
}

#[test]
fn passwords_only_with_scram() {
    let user = |auth: &str| {
        with(
            "KafkaUser",
            json!({"authentication": {"type": auth, "password": {"valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}}}),
        )
    };
    assert!(accepted(&user("scram-sha-512")));
    assert!(rejected_at(&user("tls"), "spec.authentication.password"));
    assert!(rejected_at(
        &user("tls-external"),
        "spec.authentication.password"
    ));
}
