//! The NetworkPolicy guarding a cluster's Kafka nodes (`<c>-network-policy-kafka`): Oxbow's own
//! ports (9090 controller, 9091 replication) are open only to the cluster's own Kafka nodes,
//! its topic and user operators and the cluster operator; each user listener's port to its
//! `networkPolicyPeers`, or to everyone when it has none. Pure: no I/O.
//!
//! Only ingress is restricted; the nodes' outgoing traffic is left alone. The policy takes
//! effect only where the cluster's network plugin enforces NetworkPolicies.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use shared_crds::{labels, names};

use super::entity_operator::{
    topic_operator_pod_selector_labels, user_operator_pod_selector_labels,
};
use super::kafka_config::{CONTROLLER_PORT, REPLICATION_PORT};
use super::meta;
use crate::model::ResolvedCluster;

/// The label (`app.kubernetes.io/name`) and value the cluster operator's own pods must carry
/// (the install bundles set them) for the cluster operator to reach Kafka's ports 9090 and
/// 9091 through the policy. It is matched in every namespace, since the operator usually runs
/// in a namespace of its own. Kept here because nothing else selects the operator's pods.
pub const CLUSTER_OPERATOR_POD_LABEL: (&str, &str) =
    (labels::APP_NAME, labels::APP_MANAGED_BY_VALUE);

/// The NetworkPolicy of `cluster`'s Kafka nodes.
pub fn network_policy(cluster: &ResolvedCluster) -> NetworkPolicy {
    let mut ingress = vec![NetworkPolicyIngressRule {
        ports: Some(vec![tcp(CONTROLLER_PORT), tcp(REPLICATION_PORT)]),
        from: Some(oxbow_peers(cluster)),
    }];
    for listener in &cluster.listeners {
        ingress.push(NetworkPolicyIngressRule {
            ports: Some(vec![tcp(listener.port)]),
            // No peers (absent or an empty list) means everyone, as in Kubernetes itself.
            from: listener
                .network_policy_peers
                .clone()
                .filter(|peers| !peers.is_empty()),
        });
    }
    NetworkPolicy {
        metadata: meta::object_meta(
            cluster,
            names::kafka_network_policy(&cluster.name),
            meta::cluster_labels(
                cluster,
                meta::KAFKA_COMPONENT,
                &names::kafka_component(&cluster.name),
            ),
            None,
            None,
        ),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(meta::selector(meta::kafka_pods_selector_labels(cluster))),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(ingress),
            egress: None,
        }),
    }
}

fn tcp(port: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(port)),
        protocol: Some("TCP".to_owned()),
        end_port: None,
    }
}

/// Who may use ports 9090 and 9091: pods in the cluster's namespace (a peer with only a pod
/// selector means the policy's own namespace) and the cluster operator anywhere.
fn oxbow_peers(cluster: &ResolvedCluster) -> Vec<NetworkPolicyPeer> {
    let same_namespace = |selector: BTreeMap<String, String>| NetworkPolicyPeer {
        pod_selector: Some(meta::selector(selector)),
        ..NetworkPolicyPeer::default()
    };
    let (key, value) = CLUSTER_OPERATOR_POD_LABEL;
    vec![
        same_namespace(meta::kafka_pods_selector_labels(cluster)),
        same_namespace(topic_operator_pod_selector_labels(cluster)),
        same_namespace(user_operator_pod_selector_labels(cluster)),
        NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector::default()),
            pod_selector: Some(meta::selector(BTreeMap::from([(
                key.to_owned(),
                value.to_owned(),
            )]))),
            ip_block: None,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures;
    use k8s_openapi::api::networking::v1::IPBlock;
    use rstest::rstest;

    fn rules(policy: &NetworkPolicy) -> &[NetworkPolicyIngressRule] {
        policy.spec.as_ref().unwrap().ingress.as_deref().unwrap()
    }

    fn ports(rule: &NetworkPolicyIngressRule) -> Vec<i32> {
        rule.ports
            .iter()
            .flatten()
            .map(|p| {
                assert_eq!(p.protocol.as_deref(), Some("TCP"));
                match &p.port {
                    Some(IntOrString::Int(port)) => *port,
                    other => panic!("{other:?}"),
                }
            })
            .collect()
    }

    type Labels = Option<BTreeMap<String, String>>;

    fn labels_of(selector: &Option<LabelSelector>) -> Labels {
        selector.as_ref().map(|s| {
            assert!(s.match_expressions.is_none());
            s.match_labels.clone().unwrap_or_default()
        })
    }

    #[test]
    fn name_labels_owner_and_selected_pods() {
        let c = test_fixtures::resolved("external-listeners");
        let policy = network_policy(&c);
        assert_eq!(
            policy.metadata.name.as_deref(),
            Some("ext-network-policy-kafka")
        );
        assert_eq!(policy.metadata.namespace.as_deref(), Some("kafka"));
        assert_eq!(
            policy.metadata.owner_references,
            Some(vec![meta::owner_reference(&c)])
        );
        assert_eq!(
            policy.metadata.labels.as_ref().unwrap()[labels::CLUSTER],
            "ext"
        );
        let spec = policy.spec.as_ref().unwrap();
        assert_eq!(
            labels_of(&spec.pod_selector),
            Some(meta::kafka_pods_selector_labels(&c))
        );
        assert_eq!(spec.policy_types, Some(vec!["Ingress".to_owned()]));
        assert_eq!(spec.egress, None);
    }

    #[test]
    fn oxbow_ports_are_open_only_to_the_cluster_and_its_operators() {
        let c = test_fixtures::resolved("external-listeners");
        let policy = network_policy(&c);
        let rule = &rules(&policy)[0];
        assert_eq!(ports(rule), [9090, 9091]);
        let peers: Vec<(Labels, Labels)> = rule
            .from
            .iter()
            .flatten()
            .map(|p| {
                assert!(p.ip_block.is_none());
                (labels_of(&p.namespace_selector), labels_of(&p.pod_selector))
            })
            .collect();
        let selector = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            )
        };
        assert_eq!(
            peers,
            [
                (
                    None,
                    selector(&[("oxbow.rs/cluster", "ext"), ("oxbow.rs/name", "ext-kafka")])
                ),
                (
                    None,
                    selector(&[
                        ("oxbow.rs/cluster", "ext"),
                        ("oxbow.rs/name", "ext-topic-operator")
                    ])
                ),
                (
                    None,
                    selector(&[
                        ("oxbow.rs/cluster", "ext"),
                        ("oxbow.rs/name", "ext-user-operator")
                    ])
                ),
                (
                    selector(&[]),
                    selector(&[("app.kubernetes.io/name", "oxbow-cluster-operator")])
                ),
            ]
        );
    }

    #[test]
    fn operator_selectors_match_the_operator_pods() {
        let c = test_fixtures::resolved("entity-operators");
        let objects =
            crate::build::entity_operator::entity_operator_objects(&c, &Default::default());
        let policy = network_policy(&c);
        let peers = rules(&policy)[0].from.clone().unwrap();
        for d in &objects.deployments {
            let pod_labels = d
                .spec
                .as_ref()
                .unwrap()
                .template
                .metadata
                .clone()
                .unwrap()
                .labels
                .unwrap();
            let matched = peers
                .iter()
                .filter(|p| p.namespace_selector.is_none())
                .any(|p| {
                    labels_of(&p.pod_selector)
                        .unwrap()
                        .iter()
                        .all(|(k, v)| pod_labels.get(k) == Some(v))
                });
            assert!(matched, "{:?}", d.metadata.name);
        }
    }

    #[rstest]
    #[case::peers_from_the_spec("plain", 9092, Some(vec![
        NetworkPolicyPeer {
            pod_selector: Some(meta::selector(BTreeMap::from([("app".to_owned(), "producer".to_owned())]))),
            ..NetworkPolicyPeer::default()
        },
        NetworkPolicyPeer {
            namespace_selector: Some(meta::selector(BTreeMap::from([("team".to_owned(), "analytics".to_owned())]))),
            ..NetworkPolicyPeer::default()
        },
    ]))]
    #[case::everyone("tls", 9093, None)]
    #[case::nodeport_everyone("node", 9094, None)]
    #[case::ip_block("lb", 9095, Some(vec![NetworkPolicyPeer {
        ip_block: Some(IPBlock { cidr: "10.0.0.0/8".to_owned(), except: None }),
        ..NetworkPolicyPeer::default()
    }]))]
    #[case::cluster_ip_everyone("cip", 9096, None)]
    fn each_listener_port_is_open_to_its_peers(
        #[case] listener: &str,
        #[case] port: i32,
        #[case] from: Option<Vec<NetworkPolicyPeer>>,
    ) {
        let c = test_fixtures::resolved("external-listeners");
        let index = c.listeners.iter().position(|l| l.name == listener).unwrap();
        let policy = network_policy(&c);
        let rule = &rules(&policy)[index + 1];
        assert_eq!(ports(rule), [port]);
        assert_eq!(rule.from, from);
    }

    #[test]
    fn an_empty_peer_list_opens_the_port_to_everyone() {
        let mut c = test_fixtures::resolved("single-node");
        c.listeners[0].network_policy_peers = Some(Vec::new());
        let policy = network_policy(&c);
        assert_eq!(rules(&policy).len(), 2);
        assert_eq!(rules(&policy)[1].from, None);
    }
}
