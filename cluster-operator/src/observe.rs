//! The observe stage: every read of one reconcile of a Kafka cluster, returned as plain data.
//! Children are listed by the labels every object of the cluster carries
//! (`oxbow.rs/cluster=<c>,oxbow.rs/kind=Kafka`), which is also how orphans are found; the CA
//! Secrets are also read by name, since user-supplied ones need not carry the labels.
//! The topic and user operators' Roles and RoleBindings in namespaces other than the Kafka's
//! cannot be owned by it; they are listed across namespaces by `oxbow.rs/cluster` and
//! `oxbow.rs/cluster-namespace` (see [`elsewhere_selector`]), and only when the Kafka may have
//! some (see `plan::rbac_elsewhere`).
//! May touch (read only): the Kafka's namespace's node pools, Secrets, ConfigMaps, Services,
//! Pods, PVCs, ServiceAccounts, Roles, RoleBindings, Deployments, PDBs, NetworkPolicies; Roles
//! and RoleBindings of every namespace by label; the Nodes that pods of `nodeport` listeners
//! run on.

use std::collections::BTreeMap;

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Node, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount},
    networking::v1::NetworkPolicy,
    policy::v1::PodDisruptionBudget,
    rbac::v1::{Role, RoleBinding},
};
use kube::{Api, Client, api::ListParams};
use shared_crds::{Kafka, KafkaNodePool, labels, names};

use crate::act::Object;
use crate::build::meta::KAFKA_KIND;

/// Why an observation failed (always worth a retry: reads fail only for transient reasons or
/// missing rights, which the message names).
#[derive(Debug, thiserror::Error)]
#[error("reading {what}: {source}")]
pub struct ObserveError {
    pub what: String,
    pub source: kube::Error,
}

impl ObserveError {
    /// Stable CamelCase reason.
    pub fn reason(&self) -> &'static str {
        "ObserveFailed"
    }
}

/// Everything the cluster operator owns in one namespace for one cluster.
#[derive(Clone, Debug, Default)]
pub struct Children {
    pub config_maps: Vec<ConfigMap>,
    pub secrets: Vec<Secret>,
    pub services: Vec<Service>,
    /// The Kafka node pods only.
    pub pods: Vec<Pod>,
    pub claims: Vec<PersistentVolumeClaim>,
    pub service_accounts: Vec<ServiceAccount>,
    pub roles: Vec<Role>,
    pub role_bindings: Vec<RoleBinding>,
    pub deployments: Vec<Deployment>,
    pub disruption_budgets: Vec<PodDisruptionBudget>,
    pub network_policies: Vec<NetworkPolicy>,
}

/// The Roles and RoleBindings the cluster operator made for one Kafka in namespaces other than
/// the Kafka's (for a topic or user operator watching there).
#[derive(Clone, Debug, Default)]
pub struct RbacElsewhere {
    pub roles: Vec<Role>,
    pub role_bindings: Vec<RoleBinding>,
}

/// What one reconcile of a Kafka cluster starts from.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Every KafkaNodePool of the namespace labelled with the cluster.
    pub pools: Vec<KafkaNodePool>,
    /// The cluster's children in its own namespace.
    pub children: Children,
    /// The cluster's Roles and RoleBindings in other namespaces.
    pub elsewhere: RbacElsewhere,
    /// The four CA Secrets that exist, by name.
    pub ca_secrets: BTreeMap<String, Secret>,
    /// For `nodeport` listeners: the address of the Kubernetes Node each broker pod runs on,
    /// by pod name.
    pub node_addresses: BTreeMap<String, String>,
}

/// The label selector of every object the cluster operator writes for `cluster`.
pub fn children_selector(cluster: &str) -> String {
    format!(
        "{}={cluster},{}={KAFKA_KIND}",
        labels::CLUSTER,
        labels::KIND
    )
}

/// The label selector of the objects the cluster operator writes for `cluster` of `namespace`
/// in other namespaces: the children's labels plus `oxbow.rs/cluster-namespace`.
pub fn elsewhere_selector(cluster: &str, namespace: &str) -> String {
    format!(
        "{},{}={namespace}",
        children_selector(cluster),
        labels::CLUSTER_NAMESPACE
    )
}

async fn list<K: Object>(
    client: &Client,
    namespace: &str,
    selector: &str,
) -> Result<Vec<K>, ObserveError> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.list(&ListParams::default().labels(selector))
        .await
        .map(|l| l.items)
        .map_err(|source| ObserveError {
            what: format!("{}s labelled {selector} in {namespace}", K::KIND),
            source,
        })
}

/// Lists the children of `cluster` in `namespace`.
pub async fn children(
    client: &Client,
    namespace: &str,
    cluster: &str,
) -> Result<Children, ObserveError> {
    let s = children_selector(cluster);
    // Only the Kafka node pods: the topic and user operators' pods carry the cluster's labels
    // too (through their Deployments) but belong to their ReplicaSets.
    let kafka_pods = format!("{s},{}={}", labels::NAME, names::kafka_component(cluster));
    let (config_maps, secrets, services, pods, claims, service_accounts) = futures::try_join!(
        list(client, namespace, &s),
        list(client, namespace, &s),
        list(client, namespace, &s),
        list::<Pod>(client, namespace, &kafka_pods),
        list(client, namespace, &s),
        list(client, namespace, &s),
    )?;
    let (roles, role_bindings, deployments, disruption_budgets, network_policies) = futures::try_join!(
        list(client, namespace, &s),
        list(client, namespace, &s),
        list(client, namespace, &s),
        list(client, namespace, &s),
        list(client, namespace, &s),
    )?;
    Ok(Children {
        config_maps,
        secrets,
        services,
        pods,
        claims,
        service_accounts,
        roles,
        role_bindings,
        deployments,
        disruption_budgets,
        network_policies,
    })
}

async fn list_all<K: Object>(client: &Client, selector: &str) -> Result<Vec<K>, ObserveError> {
    let api: Api<K> = Api::all(client.clone());
    api.list(&ListParams::default().labels(selector))
        .await
        .map(|l| l.items)
        .map_err(|source| ObserveError {
            what: format!("{}s labelled {selector} in every namespace", K::KIND),
            source,
        })
}

/// Lists the Roles and RoleBindings made for `cluster` of `namespace` in other namespaces.
pub async fn rbac_elsewhere(
    client: &Client,
    namespace: &str,
    cluster: &str,
) -> Result<RbacElsewhere, ObserveError> {
    let s = elsewhere_selector(cluster, namespace);
    let (roles, role_bindings): (Vec<Role>, Vec<RoleBinding>) =
        futures::try_join!(list_all(client, &s), list_all(client, &s))?;
    let elsewhere = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        m.namespace.as_deref() != Some(namespace)
    };
    Ok(RbacElsewhere {
        roles: roles
            .into_iter()
            .filter(|o| elsewhere(&o.metadata))
            .collect(),
        role_bindings: role_bindings
            .into_iter()
            .filter(|o| elsewhere(&o.metadata))
            .collect(),
    })
}

/// Reads everything a reconcile of `kafka` needs.
pub async fn observe(client: &Client, kafka: &Kafka) -> Result<Observed, ObserveError> {
    let namespace = kafka.metadata.namespace.clone().unwrap_or_default();
    let cluster = kafka.metadata.name.clone().unwrap_or_default();
    let pools_api: Api<KafkaNodePool> = Api::namespaced(client.clone(), &namespace);
    let pool_selector = format!("{}={cluster}", labels::CLUSTER);
    let pools = pools_api
        .list(&ListParams::default().labels(&pool_selector))
        .await
        .map_err(|source| ObserveError {
            what: format!("KafkaNodePools labelled {pool_selector}"),
            source,
        })?
        .items;
    let children = children(client, &namespace, &cluster).await?;
    let elsewhere = if crate::plan::rbac_elsewhere::may_have_rbac_elsewhere(kafka) {
        rbac_elsewhere(client, &namespace, &cluster).await?
    } else {
        RbacElsewhere::default()
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let mut ca_secrets = BTreeMap::new();
    for name in [
        names::cluster_ca_key_secret(&cluster),
        names::cluster_ca_cert_secret(&cluster),
        names::clients_ca_key_secret(&cluster),
        names::clients_ca_cert_secret(&cluster),
    ] {
        let found = match children
            .secrets
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(&name))
        {
            Some(s) => Some(s.clone()),
            None => secrets
                .get_opt(&name)
                .await
                .map_err(|source| ObserveError {
                    what: format!("Secret {name}"),
                    source,
                })?,
        };
        if let Some(secret) = found {
            ca_secrets.insert(name, secret);
        }
    }
    let node_addresses = if needs_node_addresses(kafka) {
        node_addresses(client, &children.pods).await?
    } else {
        BTreeMap::new()
    };
    Ok(Observed {
        pools,
        children,
        elsewhere,
        ca_secrets,
        node_addresses,
    })
}

fn needs_node_addresses(kafka: &Kafka) -> bool {
    kafka
        .spec
        .kafka
        .listeners
        .iter()
        .any(|l| l.type_ == shared_crds::kafka::KafkaListenerType::Nodeport)
}

/// The address of each pod's Kubernetes Node: its `ExternalDNS`, `ExternalIP`, `InternalDNS`
/// or `InternalIP` address, in that order of preference (as clients outside the cluster most
/// likely reach the first).
async fn node_addresses(
    client: &Client,
    pods: &[Pod],
) -> Result<BTreeMap<String, String>, ObserveError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut by_node: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for pod in pods {
        let (Some(pod_name), Some(node_name)) = (
            pod.metadata.name.clone(),
            pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        ) else {
            continue;
        };
        if !by_node.contains_key(&node_name) {
            let node = nodes
                .get_opt(&node_name)
                .await
                .map_err(|source| ObserveError {
                    what: format!("Node {node_name}"),
                    source,
                })?;
            by_node.insert(node_name.clone(), node.as_ref().and_then(preferred_address));
        }
        if let Some(Some(address)) = by_node.get(&node_name) {
            out.insert(pod_name, address.clone());
        }
    }
    Ok(out)
}

fn preferred_address(node: &Node) -> Option<String> {
    let addresses = node.status.as_ref()?.addresses.as_ref()?;
    ["ExternalDNS", "ExternalIP", "InternalDNS", "InternalIP"]
        .iter()
        .find_map(|t| addresses.iter().find(|a| a.type_ == *t))
        .map(|a| a.address.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeAddress, NodeStatus};

    #[test]
    fn selector_names_cluster_and_kind() {
        assert_eq!(
            children_selector("my-cluster"),
            "oxbow.rs/cluster=my-cluster,oxbow.rs/kind=Kafka"
        );
    }

    #[test]
    fn the_elsewhere_selector_adds_the_kafkas_namespace() {
        assert_eq!(
            elsewhere_selector("my-cluster", "kafka"),
            "oxbow.rs/cluster=my-cluster,oxbow.rs/kind=Kafka,oxbow.rs/cluster-namespace=kafka"
        );
    }

    #[test]
    fn external_addresses_are_preferred() {
        let node = |addrs: &[(&str, &str)]| Node {
            status: Some(NodeStatus {
                addresses: Some(
                    addrs
                        .iter()
                        .map(|(t, a)| NodeAddress {
                            type_: (*t).into(),
                            address: (*a).into(),
                        })
                        .collect(),
                ),
                ..NodeStatus::default()
            }),
            ..Node::default()
        };
        assert_eq!(
            preferred_address(&node(&[
                ("InternalIP", "10.0.0.1"),
                ("ExternalIP", "1.2.3.4")
            ])),
            Some("1.2.3.4".into())
        );
        assert_eq!(
            preferred_address(&node(&[("Hostname", "n1"), ("InternalIP", "10.0.0.1")])),
            Some("10.0.0.1".into())
        );
        assert_eq!(preferred_address(&node(&[("Hostname", "n1")])), None);
    }
}
