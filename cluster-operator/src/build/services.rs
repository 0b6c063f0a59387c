//! The Services of a Kafka cluster: the headless Service that gives every node a DNS name, the
//! bootstrap Service of the internal listeners, and for each `cluster-ip`, `nodeport` and
//! `loadbalancer` listener a bootstrap Service plus one Service per broker. Pure: no I/O.
//!
//! Port names are `tcp-<listener>` (listener names have at most 11 characters, so the name
//! stays within the 15 Kubernetes allows), `tcp-controller` and `tcp-replication`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use shared_crds::common::ResourceTemplate;
use shared_crds::kafka::KafkaListenerType;
use shared_crds::{labels, names};

use super::kafka_config::{CONTROLLER_PORT, REPLICATION_PORT};
use super::meta;
use crate::model::{KafkaNode, ResolvedCluster, ResolvedListener};

/// Name of the port of the KRaft controller listener.
pub const CONTROLLER_PORT_NAME: &str = "tcp-controller";
/// Name of the port of the replication listener.
pub const REPLICATION_PORT_NAME: &str = "tcp-replication";

/// The name of a user listener's port in its Services: `tcp-<listener>`.
pub fn listener_port_name(listener: &ResolvedListener) -> String {
    format!("tcp-{}", listener.name)
}

/// Every Service of `cluster`, in a stable order: the headless brokers Service, the internal
/// bootstrap Service, then per exposed listener (sorted by name) its bootstrap Service followed
/// by one Service per broker (by node ID).
pub fn services(cluster: &ResolvedCluster) -> Vec<Service> {
    let mut out = vec![brokers_service(cluster), bootstrap_service(cluster)];
    let brokers: Vec<KafkaNode> = cluster
        .nodes()
        .into_iter()
        .filter(KafkaNode::is_broker)
        .collect();
    for listener in cluster
        .listeners
        .iter()
        .filter(|l| l.type_.has_per_broker_services())
    {
        out.push(external_bootstrap_service(cluster, listener));
        for node in &brokers {
            out.push(per_broker_service(cluster, listener, node));
        }
    }
    out
}

/// The Kubernetes Service type that exposes a listener of type `type_`.
pub fn service_type(type_: KafkaListenerType) -> &'static str {
    match type_ {
        KafkaListenerType::Internal | KafkaListenerType::ClusterIp => "ClusterIP",
        KafkaListenerType::Nodeport => "NodePort",
        KafkaListenerType::Loadbalancer => "LoadBalancer",
    }
}

fn port(name: String, port: i32, node_port: Option<i32>) -> ServicePort {
    ServicePort {
        name: Some(name),
        port,
        target_port: Some(IntOrString::Int(port)),
        protocol: Some("TCP".to_owned()),
        node_port,
        ..ServicePort::default()
    }
}

fn listener_port(listener: &ResolvedListener, node_port: Option<i32>) -> ServicePort {
    // Node ports only mean something on NodePort Services; elsewhere the API server refuses them.
    let node_port = node_port.filter(|_| listener.type_ == KafkaListenerType::Nodeport);
    port(listener_port_name(listener), listener.port, node_port)
}

fn internal_listener_ports(cluster: &ResolvedCluster) -> impl Iterator<Item = ServicePort> + '_ {
    cluster
        .listeners
        .iter()
        .filter(|l| l.type_ == KafkaListenerType::Internal)
        .map(|l| listener_port(l, None))
}

/// Labels and annotations of a template and of a listener's configuration, the configuration's
/// winning because it is the more specific.
fn merged_metadata(
    template: Option<&ResourceTemplate>,
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let metadata = template.and_then(|t| t.metadata.as_ref());
    let mut all_labels = metadata.and_then(|m| m.labels.clone()).unwrap_or_default();
    let mut all_annotations = metadata
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default();
    all_labels.extend(labels.cloned().unwrap_or_default());
    all_annotations.extend(annotations.cloned().unwrap_or_default());
    (all_labels, all_annotations)
}

fn kafka_service_labels(cluster: &ResolvedCluster) -> BTreeMap<String, String> {
    meta::cluster_labels(
        cluster,
        meta::KAFKA_COMPONENT,
        &names::kafka_component(&cluster.name),
    )
}

fn service(
    cluster: &ResolvedCluster,
    name: String,
    standard_labels: BTreeMap<String, String>,
    (extra_labels, annotations): (BTreeMap<String, String>, BTreeMap<String, String>),
    spec: ServiceSpec,
) -> Service {
    Service {
        metadata: meta::object_meta(
            cluster,
            name,
            standard_labels,
            Some(&extra_labels),
            Some(annotations),
        ),
        spec: Some(spec),
        status: None,
    }
}

/// `<c>-kafka-brokers`: headless, every Kafka node (not-ready ones too, so that nodes find each
/// other while starting), ports 9090, 9091 and every internal listener.
fn brokers_service(cluster: &ResolvedCluster) -> Service {
    let mut ports = vec![
        port(CONTROLLER_PORT_NAME.to_owned(), CONTROLLER_PORT, None),
        port(REPLICATION_PORT_NAME.to_owned(), REPLICATION_PORT, None),
    ];
    ports.extend(internal_listener_ports(cluster));
    service(
        cluster,
        names::brokers_service(&cluster.name),
        kafka_service_labels(cluster),
        merged_metadata(cluster.template.brokers_service.as_ref(), None, None),
        ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            cluster_ip: Some("None".to_owned()),
            publish_not_ready_addresses: Some(true),
            selector: Some(meta::kafka_pods_selector_labels(cluster)),
            ports: Some(ports),
            ..ServiceSpec::default()
        },
    )
}

/// `<c>-kafka-bootstrap`: the brokers, port 9091 (Oxbow's operators) and every internal
/// listener.
fn bootstrap_service(cluster: &ResolvedCluster) -> Service {
    let mut ports = vec![port(
        REPLICATION_PORT_NAME.to_owned(),
        REPLICATION_PORT,
        None,
    )];
    ports.extend(internal_listener_ports(cluster));
    service(
        cluster,
        names::bootstrap_service(&cluster.name),
        kafka_service_labels(cluster),
        merged_metadata(cluster.template.bootstrap_service.as_ref(), None, None),
        ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(meta::broker_pods_selector_labels(cluster)),
            ports: Some(ports),
            ..ServiceSpec::default()
        },
    )
}

/// `<c>-kafka-<listener>-bootstrap`: the brokers on one exposed listener.
fn external_bootstrap_service(cluster: &ResolvedCluster, listener: &ResolvedListener) -> Service {
    let bootstrap = listener.configuration.bootstrap.as_ref();
    service(
        cluster,
        names::external_bootstrap_service(&cluster.name, &listener.name),
        kafka_service_labels(cluster),
        merged_metadata(
            None,
            bootstrap.and_then(|b| b.labels.as_ref()),
            bootstrap.and_then(|b| b.annotations.as_ref()),
        ),
        ServiceSpec {
            type_: Some(service_type(listener.type_).to_owned()),
            selector: Some(meta::broker_pods_selector_labels(cluster)),
            ports: Some(vec![listener_port(
                listener,
                bootstrap.and_then(|b| b.node_port),
            )]),
            ..ServiceSpec::default()
        },
    )
}

/// `<c>-<pool>-<listener>-<id>`: one broker on one exposed listener, so that clients reach the
/// broker that leads a partition. The template is the pool's (else the Kafka's) `perPodService`.
fn per_broker_service(
    cluster: &ResolvedCluster,
    listener: &ResolvedListener,
    node: &KafkaNode,
) -> Service {
    let broker = listener.broker_override(node.id);
    let template = cluster
        .pool(&node.pool)
        .and_then(|p| p.per_pod_service_template.as_ref());
    let mut standard_labels = kafka_service_labels(cluster);
    standard_labels.insert(labels::POOL_NAME.to_owned(), node.pool.clone());
    service(
        cluster,
        names::per_broker_service(&cluster.name, &node.pool, &listener.name, node.id),
        standard_labels,
        merged_metadata(
            template,
            broker.and_then(|b| b.labels.as_ref()),
            broker.and_then(|b| b.annotations.as_ref()),
        ),
        ServiceSpec {
            type_: Some(service_type(listener.type_).to_owned()),
            selector: Some(meta::node_pod_selector_labels(cluster, node)),
            ports: Some(vec![listener_port(
                listener,
                broker.and_then(|b| b.node_port),
            )]),
            ..ServiceSpec::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures;
    use rstest::rstest;

    fn find<'a>(services: &'a [Service], name: &str) -> &'a Service {
        services
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no Service {name}"))
    }

    fn spec(s: &Service) -> &ServiceSpec {
        s.spec.as_ref().expect("spec")
    }

    /// (name, port, nodePort) of each port.
    fn ports(s: &Service) -> Vec<(String, i32, Option<i32>)> {
        spec(s)
            .ports
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|p| {
                assert_eq!(p.target_port, Some(IntOrString::Int(p.port)));
                assert_eq!(p.protocol.as_deref(), Some("TCP"));
                (p.name.clone().unwrap_or_default(), p.port, p.node_port)
            })
            .collect()
    }

    fn label<'a>(s: &'a Service, key: &str) -> Option<&'a str> {
        s.metadata.labels.as_ref()?.get(key).map(String::as_str)
    }

    fn annotation<'a>(s: &'a Service, key: &str) -> Option<&'a str> {
        s.metadata
            .annotations
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    #[rstest]
    #[case::single_node("single-node", &[
        "tiny-kafka-brokers",
        "tiny-kafka-bootstrap",
    ])]
    #[case::external("external-listeners", &[
        "ext-kafka-brokers",
        "ext-kafka-bootstrap",
        "ext-kafka-cip-bootstrap",
        "ext-broker-cip-0",
        "ext-broker-cip-1",
        "ext-kafka-lb-bootstrap",
        "ext-broker-lb-0",
        "ext-broker-lb-1",
        "ext-kafka-node-bootstrap",
        "ext-broker-node-0",
        "ext-broker-node-1",
    ])]
    fn one_service_per_purpose_in_a_stable_order(#[case] fixture: &str, #[case] expected: &[&str]) {
        let c = test_fixtures::resolved(fixture);
        let built = services(&c);
        let names: Vec<&str> = built
            .iter()
            .map(|s| s.metadata.name.as_deref().unwrap())
            .collect();
        assert_eq!(names, expected);
        for s in &built {
            assert_eq!(s.metadata.namespace.as_deref(), Some(c.namespace.as_str()));
            assert_eq!(
                s.metadata.owner_references,
                Some(vec![meta::owner_reference(&c)])
            );
            assert_eq!(label(s, labels::CLUSTER), Some(c.name.as_str()));
            assert_eq!(label(s, labels::APP_COMPONENT), Some(meta::KAFKA_COMPONENT));
        }
    }

    #[test]
    fn the_headless_service_reaches_every_node_on_internal_ports() {
        let c = test_fixtures::resolved("external-listeners");
        let built = services(&c);
        let s = find(&built, "ext-kafka-brokers");
        assert_eq!(spec(s).cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec(s).publish_not_ready_addresses, Some(true));
        assert_eq!(spec(s).selector, Some(meta::kafka_pods_selector_labels(&c)));
        assert_eq!(
            ports(s),
            [
                ("tcp-controller".to_owned(), 9090, None),
                ("tcp-replication".to_owned(), 9091, None),
                ("tcp-plain".to_owned(), 9092, None),
                ("tcp-tls".to_owned(), 9093, None),
            ]
        );
        assert_eq!(annotation(s, "template/brokers"), Some("true"));
    }

    #[test]
    fn the_bootstrap_service_reaches_brokers_on_replication_and_internal_listeners() {
        let c = test_fixtures::resolved("external-listeners");
        let built = services(&c);
        let s = find(&built, "ext-kafka-bootstrap");
        assert_eq!(spec(s).type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec(s).cluster_ip, None);
        assert_eq!(
            spec(s).selector,
            Some(meta::broker_pods_selector_labels(&c))
        );
        assert_eq!(
            ports(s),
            [
                ("tcp-replication".to_owned(), 9091, None),
                ("tcp-plain".to_owned(), 9092, None),
                ("tcp-tls".to_owned(), 9093, None),
            ]
        );
        assert_eq!(annotation(s, "template/bootstrap"), Some("true"));
        assert_eq!(label(s, "template-bootstrap"), Some("true"));
    }

    #[rstest]
    #[case::cluster_ip("cip", "ClusterIP", 9096, None, &[None, None])]
    #[case::nodeport("node", "NodePort", 9094, Some(32100), &[Some(32000), None])]
    #[case::loadbalancer("lb", "LoadBalancer", 9095, None, &[None, None])]
    fn exposed_listeners_get_a_bootstrap_and_a_service_per_broker(
        #[case] listener: &str,
        #[case] type_: &str,
        #[case] port: i32,
        #[case] bootstrap_node_port: Option<i32>,
        #[case] broker_node_ports: &[Option<i32>],
    ) {
        let c = test_fixtures::resolved("external-listeners");
        let built = services(&c);
        let port_name = format!("tcp-{listener}");

        let bootstrap = find(&built, &format!("ext-kafka-{listener}-bootstrap"));
        assert_eq!(spec(bootstrap).type_.as_deref(), Some(type_));
        assert_eq!(
            spec(bootstrap).selector,
            Some(meta::broker_pods_selector_labels(&c))
        );
        assert_eq!(
            ports(bootstrap),
            [(port_name.clone(), port, bootstrap_node_port)]
        );
        // Templates of the internal bootstrap Service do not apply here.
        assert_eq!(annotation(bootstrap, "template/bootstrap"), None);

        for (node_id, node_port) in [0, 1].into_iter().zip(broker_node_ports) {
            let node = c.node(node_id).unwrap();
            let s = find(&built, &format!("ext-broker-{listener}-{node_id}"));
            assert_eq!(spec(s).type_.as_deref(), Some(type_));
            assert_eq!(
                spec(s).selector,
                Some(meta::node_pod_selector_labels(&c, &node))
            );
            assert_eq!(ports(s), [(port_name.clone(), port, *node_port)]);
            assert_eq!(label(s, labels::POOL_NAME), Some("broker"));
            assert_eq!(annotation(s, "template/per-pod"), Some("true"));
            assert_eq!(label(s, "template-per-pod"), Some("true"));
        }
    }

    #[test]
    fn listener_configuration_labels_and_annotations_apply_and_win_over_templates() {
        let c = test_fixtures::resolved("external-listeners");
        let built = services(&c);
        let bootstrap = find(&built, "ext-kafka-node-bootstrap");
        assert_eq!(annotation(bootstrap, "bootstrap/annotation"), Some("yes"));
        assert_eq!(label(bootstrap, "bootstrap-label"), Some("node"));

        let broker0 = find(&built, "ext-broker-node-0");
        assert_eq!(annotation(broker0, "broker/annotation"), Some("zero"));
        assert_eq!(label(broker0, "broker-label"), Some("zero"));
        let broker1 = find(&built, "ext-broker-node-1");
        assert_eq!(annotation(broker1, "broker/annotation"), Some("template"));
        assert_eq!(label(broker1, "broker-label"), None);
        // Another listener's overrides stay on their listener.
        let lb0 = find(&built, "ext-broker-lb-0");
        assert_eq!(annotation(lb0, "broker/annotation"), Some("template"));
    }

    #[test]
    fn controllers_get_no_per_broker_services() {
        let c = test_fixtures::resolved("external-listeners");
        let controller = c.controllers()[0].clone();
        assert!(!controller.is_broker());
        let built = services(&c);
        assert!(built.iter().all(|s| {
            !s.metadata
                .name
                .as_deref()
                .unwrap()
                .ends_with(&format!("-{}", controller.id))
        }));
    }

    #[test]
    fn a_cluster_without_templates_has_no_annotations() {
        let built = services(&test_fixtures::resolved("single-node"));
        assert!(built.iter().all(|s| s.metadata.annotations.is_none()));
    }
}
