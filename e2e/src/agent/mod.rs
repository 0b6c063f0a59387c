//! The testbed's node agent: it plays the kubelet for one Node, running every Pod the real
//! kube-scheduler binds to that Node as local processes, each pod in its own network namespace
//! (a veth pair on the testbed bridge, an address from the node's pod range) and each container
//! in its own mount namespace with a root built from the host's base system, the pod's image
//! root and its volumes. May touch: processes, network and mount namespaces whose names carry
//! [`NETNS_PREFIX`], veth links, files under the agent's folder and `/etc/netns/<ours>/`.
//!
//! Addresses come from 198.18.0.0/15, the range RFC 2544 sets aside for benchmarking networks,
//! so they never collide with a real network the machine is on:
//!
//! | what | address |
//! |---|---|
//! | bridge [`BRIDGE`], the API server as pods see it | [`GATEWAY`] (198.18.0.1/16) |
//! | the test client namespace [`CLIENT_NETNS`] | [`CLIENT_IP`] (198.18.0.2) |
//! | node `i` (1-based): its InternalIP, also on the bridge | `198.18.<i>.1` |
//! | pods of node `i` | `198.18.<i>.2` to `198.18.<i>.254` |

pub mod hosts;
pub mod net;
pub mod node;
pub mod pods;
pub mod probes;
pub mod provisioner;
pub mod sandbox;
pub mod volumes;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api,
    runtime::{WatchStreamExt, reflector, watcher},
};
use tokio::{sync::watch, task::JoinHandle};
use tracing::{info, warn};

/// The Linux bridge every pod's veth joins; the host holds [`GATEWAY`] on it.
pub const BRIDGE: &str = "oxbow0";
/// The host's address on the bridge: pods' default route and the API server's advertised address.
pub const GATEWAY: &str = "198.18.0.1";
/// Prefix length of the bridge network.
pub const PREFIX_LEN: u8 = 16;
/// Every network namespace the testbed makes starts with this (pods: `oxbow-<node>-<uid>`).
pub const NETNS_PREFIX: &str = "oxbow-";
/// A network namespace tests run Kafka clients in (`ip netns exec oxbow-client ...`), with a
/// hosts file at `/etc/netns/oxbow-client/hosts` that resolves every pod and Service name.
pub const CLIENT_NETNS: &str = "oxbow-client";
/// The client namespace's address.
pub const CLIENT_IP: &str = "198.18.0.2";
/// The testbed's default StorageClass, served by [`provisioner`].
pub const STORAGE_CLASS: &str = "oxbow-local";
/// The provisioner name on the StorageClass and on the PersistentVolumes it makes.
pub const PROVISIONER: &str = "testbed.oxbow.rs/local";
/// The cluster domain pods' hosts files use.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// Name of node `index` (1-based).
pub fn node_name(index: u8) -> String {
    format!("oxbow-node-{index}")
}

/// Node `index`'s own address on the bridge (its InternalIP).
pub fn node_ip(index: u8) -> String {
    format!("198.18.{index}.1")
}

/// What one agent runs with (the `node-agent` flags).
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// 1-based node index.
    pub index: u8,
    /// Admin kubeconfig.
    pub kubeconfig: std::path::PathBuf,
    /// The agent's folder: `pods/<namespace>_<name>_<uid>/` per pod.
    pub dir: std::path::PathBuf,
    /// `<ip>:<port>` of the API server as pods reach it.
    pub api_server: String,
    /// Image reference -> local root folder.
    pub images: std::collections::BTreeMap<String, std::path::PathBuf>,
    /// Run the provisioner with volumes under this folder.
    pub volumes_dir: Option<std::path::PathBuf>,
    /// Keep this hosts file (the client namespace's) current.
    pub client_hosts: Option<std::path::PathBuf>,
}

/// A pod's worker task and the channel that feeds it the Pod's latest state.
type PodWorker = (watch::Sender<Option<Arc<Pod>>>, JoinHandle<()>);

/// Runs the agent until SIGTERM or SIGINT, then stops every pod it runs (their Pods stay in the
/// API, as when a kubelet stops) and returns.
pub async fn run(config: AgentConfig) -> Result<()> {
    let client = crate::k8s::admin_client(&config.kubeconfig).await?;
    let name = node_name(config.index);
    let node_ip = node_ip(config.index);

    // Leftovers of an earlier agent of this node (a crash): its processes and namespaces.
    for ns in net::list(&net::node_prefix(config.index))? {
        warn!(netns = %ns, "removing a leftover pod network namespace");
        let _ = net::teardown(&ns);
    }
    let pods_dir = config.dir.join("pods");
    if pods_dir.exists() {
        std::fs::remove_dir_all(&pods_dir)
            .with_context(|| format!("clearing {}", pods_dir.display()))?;
    }
    std::fs::create_dir_all(&pods_dir)?;

    let spec = node::NodeSpec {
        name: name.clone(),
        ip: node_ip.clone(),
        pod_cidr: format!("198.18.{}.0/24", config.index),
    };
    node::register(&client, &spec).await?;
    tokio::spawn(node::heartbeat(client.clone(), spec));
    if let Some(volumes) = config.volumes_dir.clone() {
        provisioner::ensure_storage_class(&client).await?;
        tokio::spawn(provisioner::run(client.clone(), volumes));
    }
    let names = hosts::Names::spawn(client.clone(), GATEWAY.to_owned());
    names.wait_synced().await;
    if let Some(path) = &config.client_hosts {
        names.register(path.clone(), None);
    }
    let shared = Arc::new(pods::Shared {
        client: client.clone(),
        config: config.clone(),
        node_ip,
        names,
        addresses: Mutex::new(net::Addresses::new(config.index)),
    });

    let api: Api<Pod> = Api::all(client);
    let (store, writer) = reflector::store();
    let events = reflector(
        writer,
        watcher(
            api,
            watcher::Config::default().fields(&format!("spec.nodeName={name}")),
        ),
    )
    .default_backoff();
    let mut events = std::pin::pin!(events);
    let mut workers: BTreeMap<String, PodWorker> = BTreeMap::new();
    let mut finished: BTreeSet<String> = BTreeSet::new();
    let mut listed = false;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    info!(node = %name, "node agent running");
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(watcher::Event::InitDone)) => listed = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => warn!("watching pods: {e}"),
                None => break,
            },
            _ = tick.tick() => {}
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
        if !listed {
            continue;
        }
        let current: BTreeMap<String, Arc<Pod>> = store
            .state()
            .into_iter()
            .filter_map(|p| Some((p.metadata.uid.clone()?, p)))
            .collect();
        for (uid, pod) in &current {
            if finished.contains(uid) {
                continue;
            }
            let terminal = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .is_some_and(|p| p == "Succeeded" || p == "Failed");
            match workers.get(uid) {
                Some((tx, _)) => {
                    tx.send_if_modified(|old| {
                        let same = old.as_ref().is_some_and(|o| {
                            o.metadata.resource_version == pod.metadata.resource_version
                        });
                        if !same {
                            *old = Some(pod.clone());
                        }
                        !same
                    });
                }
                None if terminal && pod.metadata.deletion_timestamp.is_none() => {}
                None => {
                    let (tx, rx) = watch::channel(Some(pod.clone()));
                    let handle = tokio::spawn(pods::run(shared.clone(), rx));
                    workers.insert(uid.clone(), (tx, handle));
                }
            }
        }
        for (uid, (tx, _)) in &workers {
            if !current.contains_key(uid) {
                tx.send_replace(None);
            }
        }
        let done: Vec<String> = workers
            .iter()
            .filter(|(_, (_, h))| h.is_finished())
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in done {
            workers.remove(&uid);
            finished.insert(uid);
        }
    }
    info!(node = %name, pods = workers.len(), "stopping");
    let handles: Vec<JoinHandle<()>> = workers.into_values().map(|(_, h)| h).collect();
    // Dropping the senders tells each worker to stop its pod.
    let _ = tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(handles)).await;
    Ok(())
}
