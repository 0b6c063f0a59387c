//! What full-stack tests and `bench stack` need on top of the testbed: `kubectl` as a user runs
//! it, Kafka clients run inside the testbed's client network namespace (where pod and Service
//! names resolve), the node agent's view of its pods (container logs, process ids, peak memory),
//! the example cluster's node pools as both change them, and checks of a cluster's state to wait
//! on, with the namespace's pods and their log tails shown when a wait fails.
//! May touch: processes (kubectl, `ip netns exec` clients), files under the testbed folder and
//! `manifests/examples/` (read), the testbed's API server (read).

use std::{
    collections::BTreeMap,
    fmt::Debug,
    future::Future,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::{Api, Resource, api::ListParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use shared_crds::{condition::Condition, kafka::Kafka};

use crate::objects;

/// How many of its last lines a failed wait shows of each container's log.
const LOG_TAIL_LINES: usize = 20;

/// A running testbed with node agents.
#[derive(Clone)]
pub struct Stack {
    pub client: kube::Client,
    pub kubectl: PathBuf,
    pub client_netns: String,
    pub testbed_dir: PathBuf,
    /// The `kafka-client` binary.
    pub kafka_client: PathBuf,
}

fn var(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| {
        format!("{name} is not set: full-stack tests need `testbed up --nodes N` (N >= 1), as e2e/test-all.sh starts it")
    })
}

impl Stack {
    /// The running testbed; an error (never a skip) when it has no node agent.
    pub async fn from_env(kafka_client: &str) -> Result<Stack> {
        let nodes: usize = var("OXBOW_TESTBED_NODES")?.parse()?;
        if nodes == 0 {
            bail!(
                "the testbed runs no node agent (OXBOW_TESTBED_NODES=0); start it with --nodes 1"
            );
        }
        let env = crate::env::TestEnv::from_env()?;
        Ok(Stack {
            client: env.kube_client().await?,
            kubectl: env.kubectl.clone(),
            client_netns: var("OXBOW_CLIENT_NETNS")?,
            testbed_dir: var("OXBOW_TESTBED_DIR")?.into(),
            kafka_client: PathBuf::from(kafka_client),
        })
    }

    /// Runs kubectl with `args` (and `stdin`), returning its standard output.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let mut child = Command::new(&self.kubectl)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting kubectl")?;
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .context("kubectl stdin")?
                .write_all(input.as_bytes())?;
        }
        drop(child.stdin.take());
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "kubectl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `kubectl apply -n <ns> -f -` of a YAML text.
    pub fn apply(&self, ns: &str, yaml: &str) -> Result<String> {
        self.kubectl(&["apply", "-n", ns, "-f", "-"], Some(yaml))
    }

    /// `kubectl apply --server-side -n <ns> -f <path>` of a file or folder, as README has users
    /// apply the install bundle and the examples.
    pub fn apply_path(&self, ns: &str, path: &Path) -> Result<String> {
        let path = path.display().to_string();
        self.kubectl(&["apply", "--server-side", "-n", ns, "-f", &path], None)
    }

    fn client_command(&self, args: &[String]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.client_netns])
            .arg(&self.kafka_client)
            .args(args);
        cmd
    }

    /// Runs `kafka-client` in the client namespace and returns the JSON it printed.
    pub fn client(&self, args: &[String]) -> Result<Value> {
        let out = self
            .client_command(args)
            .output()
            .context("starting kafka-client")?;
        parse_client(&out.stdout, &out.stderr, out.status.success())
    }

    /// Starts `kafka-client` in the client namespace without waiting for it.
    pub fn spawn_client(&self, args: &[String]) -> Result<std::process::Child> {
        self.client_command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting kafka-client")
    }

    /// The folders of a pod on every node (normally one).
    fn pod_dirs(&self, ns: &str, pod: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let prefix = format!("{ns}_{pod}_");
        for node in std::fs::read_dir(self.testbed_dir.join("nodes"))
            .into_iter()
            .flatten()
            .flatten()
        {
            for p in std::fs::read_dir(node.path().join("pods"))
                .into_iter()
                .flatten()
                .flatten()
            {
                if p.file_name().to_string_lossy().starts_with(&prefix) {
                    out.push(p.path());
                }
            }
        }
        out
    }

    /// The log of a container of a running pod, as the node agent keeps it.
    pub fn container_log(&self, ns: &str, pod: &str, container: &str) -> String {
        self.pod_dirs(ns, pod)
            .iter()
            .filter_map(|d| {
                std::fs::read_to_string(d.join("logs").join(format!("{container}.log"))).ok()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The process id of a container of a running pod.
    pub fn container_pid(&self, ns: &str, pod: &str, container: &str) -> Option<u32> {
        self.pod_dirs(ns, pod).iter().find_map(|d| {
            std::fs::read_to_string(d.join("containers").join(container).join("pid"))
                .ok()?
                .trim()
                .parse()
                .ok()
        })
    }

    /// [`eventually`], with the [`Stack::diagnostics`] of namespace `ns` on failure.
    pub async fn wait<T, F, Fut>(
        &self,
        ns: &str,
        what: &str,
        deadline: Duration,
        check: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        match eventually(what, deadline, check).await {
            Ok(v) => Ok(v),
            Err(e) => bail!("{e:#}\n{}", self.diagnostics(ns).await),
        }
    }

    /// What a failed wait should show: every pod of namespace `ns` (phase, Ready, container
    /// statuses), then the log tail of each of its containers, the operators' included.
    pub async fn diagnostics(&self, ns: &str) -> String {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let Ok(list) = pods.list(&ListParams::default()).await else {
            return String::new();
        };
        let mut out = String::new();
        for p in &list.items {
            let name = p.metadata.name.clone().unwrap_or_default();
            let st = p.status.clone().unwrap_or_default();
            out.push_str(&format!(
                "\npod {name}: phase {:?}, ready {}, containers {}",
                st.phase,
                pod_ready(p),
                serde_json::to_string(&st.container_statuses).unwrap_or_default()
            ));
        }
        for p in &list.items {
            let name = p.metadata.name.clone().unwrap_or_default();
            for c in p.spec.iter().flat_map(|s| &s.containers) {
                let log = self.container_log(ns, &name, &c.name);
                let tail: Vec<&str> = log.lines().rev().take(LOG_TAIL_LINES).collect();
                out.push_str(&format!(
                    "\n--- {name}/{} log tail:\n{}",
                    c.name,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
        }
        out
    }
}

fn parse_client(stdout: &[u8], stderr: &[u8], success: bool) -> Result<Value> {
    let text = String::from_utf8_lossy(stdout);
    let last = text.lines().rev().find(|l| l.trim_start().starts_with('{'));
    match last {
        Some(line) => serde_json::from_str(line).context("kafka-client printed invalid JSON"),
        None => bail!(
            "kafka-client {}: {}",
            if success { "printed nothing" } else { "failed" },
            String::from_utf8_lossy(stderr).trim()
        ),
    }
}

/// Waits for a started client (see [`Stack::spawn_client`]) and returns its JSON.
pub fn finish_client(child: std::process::Child) -> Result<Value> {
    let out = child.wait_with_output()?;
    parse_client(&out.stdout, &out.stderr, out.status.success())
}

/// Peak resident memory (VmHWM) of a process, in MiB.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Polls `check` until it returns `Ok`, failing with its last message after `deadline`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => return Ok(v),
            Err(last) if start.elapsed() > deadline => {
                bail!("{what}: not within {deadline:?}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Writes `content` to a private file under `dir` and returns its path.
pub fn private_file(dir: &Path, name: &str, content: &[u8]) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, content)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(path)
}

/// YAML documents as one multi-document text, for `kubectl apply -f -`.
pub fn to_yaml(docs: &[Value]) -> Result<String> {
    let mut out = String::new();
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(doc)?);
    }
    Ok(out)
}

/// The example node pools of `manifests/examples/` with one controller instead of three (four
/// nodes in all, to keep the machine's two cores for the tests) and 1 GiB persistent claims from
/// the testbed's default StorageClass: a lone KRaft controller on ephemeral storage would lose the
/// cluster metadata when it restarts. Whether the controller pool and the other (broker) pool
/// delete their claims with the cluster is the caller's choice.
pub fn example_node_pools(
    controller_delete_claim: bool,
    broker_delete_claim: bool,
) -> Result<String> {
    let mut docs =
        objects::documents(&objects::repo().join("manifests/examples/kafka-node-pools.yaml"))?;
    for doc in &mut docs {
        let controller = doc["metadata"]["name"] == "controller";
        if controller {
            doc["spec"]["replicas"] = json!(1);
        }
        let delete_claim = if controller {
            controller_delete_claim
        } else {
            broker_delete_claim
        };
        doc["spec"]["storage"] =
            json!({"type": "persistent-claim", "size": "1Gi", "deleteClaim": delete_claim});
    }
    to_yaml(&docs)
}

/// The condition of type `kind`, if any: (status, reason, message).
pub fn condition(
    conditions: Option<&Vec<Condition>>,
    kind: &str,
) -> Option<(String, String, String)> {
    conditions?.iter().find(|c| c.type_ == kind).map(|c| {
        (
            format!("{:?}", c.status),
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default(),
        )
    })
}

/// `Ok` once Kafka `cluster` is `Ready=True` for its current generation; else its Ready condition.
pub async fn kafka_ready(api: &Api<Kafka>, cluster: &str) -> Result<(), String> {
    let k = api.get(cluster).await.map_err(|e| e.to_string())?;
    let status = k.status.as_ref();
    match condition(status.and_then(|s| s.conditions.as_ref()), "Ready") {
        Some((s, _, _))
            if s == "True"
                && status.and_then(|s| s.observed_generation) == k.metadata.generation =>
        {
            Ok(())
        }
        other => Err(format!("Ready: {other:?}")),
    }
}

/// `Ok` once the Deployment has a ready replica (the same as an available one: the install and
/// the cluster operator set no `minReadySeconds`).
pub async fn deployment_available(api: &Api<Deployment>, name: &str) -> Result<(), String> {
    let d = api.get(name).await.map_err(|e| e.to_string())?;
    let ready = d
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    if ready >= 1 {
        Ok(())
    } else {
        Err(format!("{name}: {:?}", d.status))
    }
}

/// True if the pod's `Ready` condition is `True`.
pub fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The node pods (controllers and brokers) of Kafka `cluster` not being deleted, by name:
/// (uid, Ready).
pub async fn kafka_pods(
    pods: &Api<Pod>,
    cluster: &str,
) -> Result<BTreeMap<String, (String, bool)>> {
    let selector = format!("oxbow.rs/cluster={cluster},oxbow.rs/name={cluster}-kafka");
    let list = pods.list(&ListParams::default().labels(&selector)).await?;
    Ok(list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            (
                p.metadata.name.clone().unwrap_or_default(),
                (p.metadata.uid.clone().unwrap_or_default(), pod_ready(p)),
            )
        })
        .collect())
}

/// The objects `lp` picks, each named `<kind>/<name>` as kubectl prints them.
pub async fn names<K>(api: &Api<K>, lp: &ListParams, kind: &str) -> Result<Vec<String>, String>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    Ok(api
        .list(lp)
        .await
        .map_err(|e| e.to_string())?
        .items
        .iter()
        .filter_map(|o| o.meta().name.as_ref().map(|n| format!("{kind}/{n}")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_pools_make_four_nodes_and_delete_claims_as_asked() {
        for (controller_delete_claim, broker_delete_claim) in [(false, true), (true, true)] {
            let yaml = example_node_pools(controller_delete_claim, broker_delete_claim).unwrap();
            let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&yaml)
                .map(|d| serde::Deserialize::deserialize(d).unwrap())
                .collect();
            let pool = |name: &str| {
                docs.iter()
                    .find(|d| d["metadata"]["name"] == name)
                    .map(|d| (d["spec"]["replicas"].clone(), d["spec"]["storage"].clone()))
                    .unwrap()
            };
            let storage =
                |delete| json!({"type": "persistent-claim", "size": "1Gi", "deleteClaim": delete});
            assert_eq!(docs.len(), 2);
            assert_eq!(
                pool("controller"),
                (json!(1), storage(controller_delete_claim))
            );
            assert_eq!(pool("broker"), (json!(3), storage(broker_delete_claim)));
        }
    }
}
