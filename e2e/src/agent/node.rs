//! The agent's Node and its heartbeat: registers the Node object with the labels, capacity,
//! conditions, addresses and system info the scheduler and the node lifecycle controller look at,
//! renews its Lease in `kube-node-lease` and refreshes its Ready condition, and removes both on
//! shutdown. The builders are pure; the rest may touch: the Node and Lease named after the node,
//! and a few read-only host facts (`/etc/machine-id`, `/proc/sys/kernel/...`, `/etc/os-release`).

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use k8s_openapi::{
    api::{
        coordination::v1::{Lease, LeaseSpec},
        core::v1::{
            Node, NodeAddress, NodeCondition, NodeSpec as KubeNodeSpec, NodeStatus, NodeSystemInfo,
        },
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{MicroTime, Time},
    },
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{DeleteParams, ObjectMeta, Patch, PatchParams},
};
use serde_json::json;

/// Field manager of everything the node agent writes.
pub const FIELD_MANAGER: &str = "oxbow-node-agent";
/// Namespace of the nodes' Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The Lease's duration, as the kubelet sets it.
const LEASE_DURATION_SECONDS: i32 = 40;
/// How often the Lease is renewed (the kubelet: a quarter of the duration).
const LEASE_RENEW: Duration = Duration::from_secs(10);
/// How often the conditions' `lastHeartbeatTime` is refreshed (the kubelet's status report).
const STATUS_REFRESH: Duration = Duration::from_secs(60);
/// Taints the node lifecycle controller puts on a node it does not (yet) see as Ready.
const UNREADY_TAINTS: [&str; 2] = [
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
];
/// How often a taint update that lost a race with another writer is retried.
const TAINT_ATTEMPTS: usize = 5;

/// What identifies the agent's Node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    /// Node name, e.g. `oxbow-node-1`.
    pub name: String,
    /// InternalIP, e.g. `198.18.1.1`.
    pub ip: String,
    /// The node's pod range, e.g. `198.18.1.0/24`.
    pub pod_cidr: String,
}

/// Facts about the machine the Node reports in `status.nodeInfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFacts {
    pub machine_id: String,
    pub boot_id: String,
    pub kernel_version: String,
    pub os_image: String,
}

impl HostFacts {
    /// Reads them from the host, with placeholders for whatever cannot be read.
    pub fn read() -> Self {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "unknown".to_owned())
        };
        let os_image = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("PRETTY_NAME=")
                        .map(|v| v.trim_matches('"').to_owned())
                })
            })
            .unwrap_or_else(|| "Linux".to_owned());
        Self {
            machine_id: read("/etc/machine-id"),
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            kernel_version: read("/proc/sys/kernel/osrelease"),
            os_image,
        }
    }
}

/// The Node object without status: labels and pod range. Pure.
pub fn build_node(spec: &NodeSpec) -> Node {
    let labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_owned(), spec.name.clone()),
        ("kubernetes.io/os".to_owned(), "linux".to_owned()),
        ("kubernetes.io/arch".to_owned(), "amd64".to_owned()),
        (
            "node.kubernetes.io/instance-type".to_owned(),
            "oxbow-testbed".to_owned(),
        ),
    ]);
    Node {
        metadata: ObjectMeta {
            name: Some(spec.name.clone()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: Some(KubeNodeSpec {
            pod_cidr: Some(spec.pod_cidr.clone()),
            pod_cidrs: Some(vec![spec.pod_cidr.clone()]),
            ..KubeNodeSpec::default()
        }),
        status: None,
    }
}

/// The Node's status at `now`. A condition whose status is unchanged from `previous` keeps its
/// `lastTransitionTime` (Deployments and the node lifecycle controller read transitions). Pure.
pub fn build_status(
    spec: &NodeSpec,
    facts: &HostFacts,
    previous: Option<&NodeStatus>,
    now: Timestamp,
) -> NodeStatus {
    let resources = BTreeMap::from([
        ("cpu".to_owned(), Quantity("4".to_owned())),
        ("memory".to_owned(), Quantity("16Gi".to_owned())),
        ("pods".to_owned(), Quantity("110".to_owned())),
        ("ephemeral-storage".to_owned(), Quantity("50Gi".to_owned())),
    ]);
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        let transition = previous
            .and_then(|p| p.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
            .filter(|c| c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        NodeCondition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            last_heartbeat_time: Some(Time(now)),
            last_transition_time: Some(transition),
        }
    };
    NodeStatus {
        capacity: Some(resources.clone()),
        allocatable: Some(resources),
        conditions: Some(vec![
            condition(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            condition(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            condition(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            condition(
                "Ready",
                "True",
                "KubeletReady",
                "oxbow node agent is posting ready status",
            ),
        ]),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".to_owned(),
                address: spec.ip.clone(),
            },
            NodeAddress {
                type_: "Hostname".to_owned(),
                address: spec.name.clone(),
            },
        ]),
        node_info: Some(NodeSystemInfo {
            architecture: "amd64".to_owned(),
            operating_system: "linux".to_owned(),
            boot_id: facts.boot_id.clone(),
            machine_id: facts.machine_id.clone(),
            // Several nodes share one machine; the name keeps their UUIDs apart.
            system_uuid: format!("oxbow-{}", spec.name),
            kernel_version: facts.kernel_version.clone(),
            os_image: facts.os_image.clone(),
            container_runtime_version: "oxbow-agent://0.1".to_owned(),
            kubelet_version: crate::versions::kubernetes().to_owned(),
            // Deprecated (KEP-4004) and there is no kube-proxy: the kubelet leaves it empty too.
            kube_proxy_version: String::new(),
            swap: None,
        }),
        ..NodeStatus::default()
    }
}

/// The node's Lease, renewed at `now`. Pure.
pub fn build_lease(name: &str, now: Timestamp) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(LEASE_NAMESPACE.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name.to_owned()),
            lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
            renew_time: Some(MicroTime(now)),
            ..LeaseSpec::default()
        }),
    }
}

/// Creates or updates the Node, posts a Ready status and lifts the not-ready taints the node
/// lifecycle controller put on it meanwhile.
pub async fn register(client: &Client, spec: &NodeSpec) -> Result<()> {
    let nodes = Api::<Node>::all(client.clone());
    nodes
        .patch(&spec.name, &apply_params(), &Patch::Apply(build_node(spec)))
        .await
        .with_context(|| format!("applying Node {}", spec.name))?;
    post_status(&nodes, spec).await?;
    lift_unready_taints(&nodes, &spec.name).await
}

/// Renews the Lease every 10 s and the Ready condition's heartbeat every 60 s, forever. Errors
/// are logged and retried on the next round; a Node deleted behind the agent's back is
/// registered again.
pub async fn heartbeat(client: Client, spec: NodeSpec) {
    let nodes = Api::<Node>::all(client.clone());
    let leases = Api::<Lease>::namespaced(client.clone(), LEASE_NAMESPACE);
    let mut tick = tokio::time::interval(LEASE_RENEW);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut status_posted: Option<Instant> = None;
    loop {
        tick.tick().await;
        if let Err(e) = renew_lease(&leases, &spec.name).await {
            tracing::warn!(node = %spec.name, "{e:#}");
        }
        if status_posted.is_none_or(|t| t.elapsed() >= STATUS_REFRESH) {
            match refresh_status(&client, &nodes, &spec).await {
                Ok(()) => status_posted = Some(Instant::now()),
                Err(e) => tracing::warn!(node = %spec.name, "{e:#}"),
            }
        }
    }
}

/// Deletes the Node and its Lease; failures are logged (the agent is shutting down anyway).
pub async fn deregister(client: &Client, name: &str) {
    let nodes = Api::<Node>::all(client.clone());
    let leases = Api::<Lease>::namespaced(client.clone(), LEASE_NAMESPACE);
    if let Err(e) = nodes.delete(name, &DeleteParams::default()).await
        && !is_not_found(&e)
    {
        tracing::warn!(node = name, "deleting Node: {e}");
    }
    if let Err(e) = leases.delete(name, &DeleteParams::default()).await
        && !is_not_found(&e)
    {
        tracing::warn!(node = name, "deleting Lease: {e}");
    }
}

fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

async fn renew_lease(leases: &Api<Lease>, name: &str) -> Result<()> {
    leases
        .patch(
            name,
            &apply_params(),
            &Patch::Apply(build_lease(name, Timestamp::now())),
        )
        .await
        .with_context(|| format!("renewing Lease {LEASE_NAMESPACE}/{name}"))?;
    Ok(())
}

/// Posts the status again (fresh heartbeat times), or registers the Node if it is gone.
async fn refresh_status(client: &Client, nodes: &Api<Node>, spec: &NodeSpec) -> Result<()> {
    match post_status(nodes, spec).await {
        Ok(()) => Ok(()),
        Err(e) if e.downcast_ref::<kube::Error>().is_some_and(is_not_found) => {
            tracing::info!(node = %spec.name, "Node is gone; registering it again");
            register(client, spec).await
        }
        Err(e) => Err(e),
    }
}

async fn post_status(nodes: &Api<Node>, spec: &NodeSpec) -> Result<()> {
    let current = nodes
        .get(&spec.name)
        .await
        .with_context(|| format!("reading Node {}", spec.name))?;
    let status = build_status(
        spec,
        &HostFacts::read(),
        current.status.as_ref(),
        Timestamp::now(),
    );
    let patch = Node {
        metadata: ObjectMeta {
            name: Some(spec.name.clone()),
            ..ObjectMeta::default()
        },
        spec: None,
        status: Some(status),
    };
    nodes
        .patch_status(&spec.name, &apply_params(), &Patch::Apply(patch))
        .await
        .with_context(|| format!("posting the status of Node {}", spec.name))?;
    Ok(())
}

/// Removes the not-ready and unreachable taints (both effects). The update carries the
/// resourceVersion it was computed from, so it cannot drop a taint someone added meanwhile.
async fn lift_unready_taints(nodes: &Api<Node>, name: &str) -> Result<()> {
    for _ in 0..TAINT_ATTEMPTS {
        let node = nodes
            .get(name)
            .await
            .with_context(|| format!("reading Node {name}"))?;
        let taints = node.spec.and_then(|s| s.taints).unwrap_or_default();
        let kept: Vec<_> = taints
            .iter()
            .filter(|t| !UNREADY_TAINTS.contains(&t.key.as_str()))
            .collect();
        if kept.len() == taints.len() {
            return Ok(());
        }
        let patch = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"taints": kept},
        });
        match nodes
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if is_conflict(&e) => continue,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("removing not-ready taints from Node {name}"));
            }
        }
    }
    anyhow::bail!(
        "removing not-ready taints from Node {name}: still conflicting after {TAINT_ATTEMPTS} attempts"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NodeSpec {
        NodeSpec {
            name: "oxbow-node-1".into(),
            ip: "198.18.1.1".into(),
            pod_cidr: "198.18.1.0/24".into(),
        }
    }

    fn facts() -> HostFacts {
        HostFacts {
            machine_id: "m".into(),
            boot_id: "b".into(),
            kernel_version: "6.1.0".into(),
            os_image: "Debian GNU/Linux 12 (bookworm)".into(),
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn condition<'a>(status: &'a NodeStatus, type_: &str) -> &'a NodeCondition {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_)
            .expect("condition present")
    }

    #[test]
    fn node_has_the_labels_and_range_the_scheduler_reads() {
        let node = serde_json::to_value(build_node(&spec())).expect("serialises");
        assert_eq!(node["apiVersion"], "v1");
        assert_eq!(node["kind"], "Node");
        assert_eq!(
            node["metadata"]["labels"]["kubernetes.io/hostname"],
            "oxbow-node-1"
        );
        assert_eq!(node["metadata"]["labels"]["kubernetes.io/os"], "linux");
        assert_eq!(node["metadata"]["labels"]["kubernetes.io/arch"], "amd64");
        assert_eq!(
            node["metadata"]["labels"]["node.kubernetes.io/instance-type"],
            "oxbow-testbed"
        );
        assert_eq!(node["spec"]["podCIDR"], "198.18.1.0/24");
        assert_eq!(node["spec"]["podCIDRs"], json!(["198.18.1.0/24"]));
        assert!(
            node["spec"].get("taints").is_none(),
            "taints are not ours to own"
        );
    }

    #[test]
    fn status_is_ready_with_capacity_addresses_and_info() {
        let now = at("2025-01-01T00:00:00Z");
        let status = build_status(&spec(), &facts(), None, now);
        for key in ["capacity", "allocatable"] {
            let v = serde_json::to_value(&status).expect("serialises");
            assert_eq!(
                v[key],
                json!({"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "50Gi"})
            );
        }
        let ready = condition(&status, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("True", Some("KubeletReady"))
        );
        for type_ in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            let c = condition(&status, type_);
            assert_eq!(c.status, "False");
            assert_eq!(c.last_heartbeat_time, Some(Time(now)));
            assert_eq!(c.last_transition_time, Some(Time(now)));
        }
        let addresses: Vec<_> = status
            .addresses
            .iter()
            .flatten()
            .map(|a| (a.type_.as_str(), a.address.as_str()))
            .collect();
        assert_eq!(
            addresses,
            [("InternalIP", "198.18.1.1"), ("Hostname", "oxbow-node-1")]
        );
        let info = status.node_info.expect("nodeInfo");
        assert_eq!(info.kubelet_version, crate::versions::kubernetes());
        assert_eq!(info.container_runtime_version, "oxbow-agent://0.1");
        assert_eq!(
            (info.operating_system.as_str(), info.architecture.as_str()),
            ("linux", "amd64")
        );
        assert_eq!(info.system_uuid, "oxbow-oxbow-node-1");
    }

    #[test]
    fn heartbeat_keeps_transition_times_of_unchanged_conditions() {
        let first = at("2025-01-01T00:00:00Z");
        let later = at("2025-01-01T00:01:00Z");
        let mut previous = build_status(&spec(), &facts(), None, first);
        // The node lifecycle controller marked Ready Unknown meanwhile: that one transitions.
        for c in previous.conditions.iter_mut().flatten() {
            if c.type_ == "Ready" {
                c.status = "Unknown".into();
            }
        }
        let status = build_status(&spec(), &facts(), Some(&previous), later);
        let memory = condition(&status, "MemoryPressure");
        assert_eq!(memory.last_transition_time, Some(Time(first)));
        assert_eq!(memory.last_heartbeat_time, Some(Time(later)));
        let ready = condition(&status, "Ready");
        assert_eq!(ready.last_transition_time, Some(Time(later)));
    }

    #[test]
    fn lease_is_held_by_the_node() {
        let now = at("2025-01-01T00:00:00Z");
        let lease = serde_json::to_value(build_lease("oxbow-node-1", now)).expect("serialises");
        assert_eq!(lease["apiVersion"], "coordination.k8s.io/v1");
        assert_eq!(lease["metadata"]["namespace"], "kube-node-lease");
        assert_eq!(lease["spec"]["holderIdentity"], "oxbow-node-1");
        assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
        assert!(
            lease["spec"]["renewTime"]
                .as_str()
                .is_some_and(|t| t.starts_with("2025-01-01T00:00:00"))
        );
    }
}
