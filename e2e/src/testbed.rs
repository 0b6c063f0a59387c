//! `testbed up` / `down`: starts the control plane and Kafka together, the pod network (the
//! bridge [`agent::BRIDGE`] and the tests' client namespace [`agent::CLIENT_NETNS`]) and one node
//! agent per testbed Node, records what it started in a state folder (so that a later `down`,
//! from another process, can stop it) and renders the shell exports tests read.
//! May touch: processes, the state folder, the bridge, network namespaces named
//! [`agent::NETNS_PREFIX`]`*`, `/etc/netns/oxbow-*` and the bridge's owner mark
//! ([`BRIDGE_OWNER_FILE`]).

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::Node;
use serde::{Deserialize, Serialize};

use crate::{
    agent, cache, images,
    k8s::{self, K8sExports},
    kafka::{self, KafkaExports},
    procs::{self, Started},
    versions,
};

/// Most testbed Nodes `up` starts: node addresses are `198.18.<i>.1` and pod addresses are
/// allotted per node, so the limit keeps names and ranges simple.
pub const MAX_NODES: u8 = 9;

/// Which state folder owns the bridge: one bridge per machine means one testbed with a pod
/// network at a time, and `down` of another testbed must not tear down a live one's pods.
pub const BRIDGE_OWNER_FILE: &str = "/run/oxbow-testbed-bridge-owner";

/// Host end of the client namespace's veth pair (at most 15 bytes, as Linux wants).
const CLIENT_VETH: &str = "oxv0client";

/// Name prefix of the node agents in [`State::procs`]; they get a longer grace on `down`
/// because they stop their pods first.
const AGENT_PROC_PREFIX: &str = "node-agent-";

/// How long a node agent may take to stop its pods.
const AGENT_GRACE: Duration = Duration::from_secs(60);
/// How long the other processes may take to exit on SIGTERM.
const PROC_GRACE: Duration = Duration::from_secs(10);
/// How long a started agent may take until its Node is Ready.
const NODE_READY_DEADLINE: Duration = Duration::from_secs(60);

/// What `up` starts.
#[derive(Clone, Debug)]
pub struct UpOptions {
    /// Kafka nodes: 1, or 3 for replication and ISR tests.
    pub kafka_nodes: usize,
    /// Maximum JVM heap of each Kafka node (`-Xmx`), e.g. `2g` for 10,000 topics.
    pub kafka_heap: String,
    /// Testbed Nodes, each served by a `node-agent` process: 0 (no pods run) to [`MAX_NODES`].
    pub nodes: u8,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            kafka_nodes: 1,
            kafka_heap: kafka::DEFAULT_HEAP.to_owned(),
            nodes: 1,
        }
    }
}

/// A running testbed, as written to `<state>/state.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub procs: Vec<Started>,
    pub kubernetes: K8sExports,
    pub kafka: KafkaExports,
    /// Testbed Nodes (node agents) running.
    #[serde(default)]
    pub nodes: u8,
    /// The state folder.
    #[serde(default)]
    pub dir: PathBuf,
    /// Root folder of the `apache/kafka` image the agents run (when there are agents).
    #[serde(default)]
    pub kafka_image_root: Option<PathBuf>,
}

impl State {
    /// `export NAME='value'` lines for a POSIX shell.
    pub fn shell_exports(&self) -> String {
        let mut out = String::new();
        let mut put = |k: &str, v: &str| {
            let _ = writeln!(out, "export {k}='{}'", v.replace('\'', r"'\''"));
        };
        put(
            "KUBECONFIG",
            &self.kubernetes.kubeconfig.display().to_string(),
        );
        put("KUBECTL", &self.kubernetes.kubectl.display().to_string());
        put("KAFKA_BOOTSTRAP", &self.kafka.bootstrap);
        put("KAFKA_SCRAM_BOOTSTRAP", &self.kafka.scram_bootstrap);
        put("KAFKA_ADMIN_USER", &self.kafka.admin_user);
        put("KAFKA_ADMIN_PASSWORD", &self.kafka.admin_password);
        put("KAFKA_TLS_BOOTSTRAP", &self.kafka.tls_bootstrap);
        put("KAFKA_CA_FILE", &self.kafka.ca_file.display().to_string());
        put(
            "KAFKA_CLIENTS_CA_CERT_FILE",
            &self.kafka.clients_ca_cert_file.display().to_string(),
        );
        put(
            "KAFKA_CLIENTS_CA_KEY_FILE",
            &self.kafka.clients_ca_key_file.display().to_string(),
        );
        put("OXBOW_TESTBED_DIR", &self.state_dir().display().to_string());
        put("OXBOW_TESTBED_NODES", &self.nodes.to_string());
        put("OXBOW_CLIENT_NETNS", agent::CLIENT_NETNS);
        put("OXBOW_OPERATOR_IMAGE", images::OPERATOR_IMAGE);
        if let Some(root) = &self.kafka_image_root {
            put("OXBOW_KAFKA_IMAGE_ROOT", &root.display().to_string());
        }
        for p in &self.procs {
            let _ = writeln!(out, "# log of {} (pid {}): {}", p.name, p.pid, p.log);
        }
        out
    }

    /// The state folder (states written before it was recorded: the current one).
    pub fn state_dir(&self) -> PathBuf {
        if self.dir.as_os_str().is_empty() {
            cache::state_dir()
        } else {
            self.dir.clone()
        }
    }

    fn all_alive(&self) -> bool {
        self.procs.iter().all(|p| procs::alive(p.pid))
    }

    fn any_alive(&self) -> bool {
        self.procs.iter().any(|p| procs::alive(p.pid))
    }

    fn save(&self) -> Result<()> {
        let path = self.state_dir().join("state.json");
        std::fs::write(&path, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))?;
        crate::pki::write_private(&self.state_dir().join("env.sh"), &self.shell_exports())
    }
}

fn state_file() -> PathBuf {
    cache::state_dir().join("state.json")
}

fn read_state_in(dir: &Path) -> Result<Option<State>> {
    let path = dir.join("state.json");
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(Some(
            serde_json::from_str(&s).with_context(|| format!("parsing {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Reads the state of a running testbed, if any.
pub fn read_state() -> Result<Option<State>> {
    read_state_in(&cache::state_dir())
}

/// Starts the testbed, or returns the running one when every process of it is still alive.
/// Anything else in the state folder or on the bridge (a half-dead testbed, leftovers of a
/// crashed run) is stopped and removed first.
pub async fn up(opts: &UpOptions) -> Result<State> {
    ensure!(
        opts.nodes <= MAX_NODES,
        "the testbed has at most {MAX_NODES} nodes, not {}",
        opts.nodes
    );
    // An unreadable state counts as none: `down` below clears it away.
    if let Ok(Some(state)) = read_state()
        && state.all_alive()
    {
        return Ok(state);
    }
    down()?;
    let dir = cache::state_dir();
    if let Some(owner) = live_bridge_owner(&dir) {
        bail!(
            "the bridge {} belongs to the running testbed in {}; stop it first with \
             `OXBOW_TESTBED_DIR={} testbed down`",
            agent::BRIDGE,
            owner.display(),
            owner.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = std::fs::canonicalize(&dir)?;
    if let Err(e) = network_up(opts.nodes, &dir) {
        let _ = network_down();
        return Err(e.context("setting up the pod network"));
    }

    let k8s_opts = k8s::K8sOptions {
        dir: dir.join("kubernetes"),
        // Pods reach the API server at the host's bridge address.
        extra_ips: vec![agent::GATEWAY.to_owned()],
    };
    let kafka_opts = kafka::KafkaOptions {
        heap: opts.kafka_heap.clone(),
        ..kafka::KafkaOptions::new(opts.kafka_nodes, dir.join("kafka"))
    };
    std::fs::create_dir_all(&k8s_opts.dir)?;
    std::fs::create_dir_all(&kafka_opts.dir)?;
    let (k, f) = tokio::join!(k8s::start(&k8s_opts), kafka::start(&kafka_opts));
    let (k, f) = match (k, f) {
        (Ok(k), Ok(f)) => (k, f),
        (k, f) => {
            // Stop whichever half came up before reporting the failure.
            let mut errors = Vec::new();
            match k {
                Ok(k) => k
                    .procs
                    .iter()
                    .for_each(|p| procs::stop(p, Duration::from_secs(5))),
                Err(e) => errors.push(format!("kubernetes: {e:#}")),
            }
            match f {
                Ok(f) => f
                    .procs
                    .iter()
                    .for_each(|p| procs::stop(p, Duration::from_secs(5))),
                Err(e) => errors.push(format!("kafka: {e:#}")),
            }
            let _ = network_down();
            bail!("testbed up failed: {}", errors.join("; "));
        }
    };
    let mut state = State {
        procs: k.procs.into_iter().chain(f.procs).collect(),
        kubernetes: k.exports,
        kafka: f.exports,
        nodes: opts.nodes,
        dir: dir.clone(),
        kafka_image_root: None,
    };
    // Recorded before the agents start, so that a `down` from elsewhere finds everything.
    state.save()?;
    if opts.nodes > 0
        && let Err(e) = start_nodes(&mut state, opts.nodes).await
    {
        // The logs stay for the post-mortem; only the processes and the network go.
        stop_all(&state);
        let _ = network_down();
        let _ = std::fs::remove_file(state_file());
        return Err(e.context(format!(
            "starting the testbed nodes (logs stay in {})",
            dir.display()
        )));
    }
    state.save()?;
    Ok(state)
}

/// The default StorageClass, the image roots, then `nodes` agents (recorded in `state` as they
/// start), waiting until every Node is Ready.
async fn start_nodes(state: &mut State, nodes: u8) -> Result<()> {
    let dir = state.state_dir();
    let client = k8s::admin_client(&state.kubernetes.kubeconfig).await?;
    agent::provisioner::ensure_storage_class(&client)
        .await
        .context("creating the default StorageClass")?;

    let kafka_version = versions::kafka();
    let kafka_root = tokio::task::spawn_blocking(move || images::kafka_image_root(kafka_version))
        .await
        .context("joining the Kafka image build")??;
    state.kafka_image_root = Some(kafka_root.clone());
    let agent_bin = crate::operator::binary("node-agent")?;
    let bin_dir = agent_bin
        .parent()
        .context("the node-agent binary has no folder")?;
    let operator_root = images::operator_image_root(&dir.join("images/oxbow"), bin_dir)?;

    let api_server = format!("{}:{}", agent::GATEWAY, state.kubernetes.api_port()?);
    let nodes_dir = dir.join("nodes");
    let mut agents = Vec::new();
    for index in 1..=nodes {
        let name = agent::node_name(index);
        let agent_dir = nodes_dir.join(&name);
        std::fs::create_dir_all(&agent_dir)
            .with_context(|| format!("creating {}", agent_dir.display()))?;
        let mut cmd = Command::new(&agent_bin);
        cmd.arg("--index")
            .arg(index.to_string())
            .arg("--kubeconfig")
            .arg(&state.kubernetes.kubeconfig)
            .arg("--dir")
            .arg(&agent_dir)
            .arg("--api-server")
            .arg(&api_server)
            .arg("--image")
            .arg(image_flag(&images::kafka_image(kafka_version), &kafka_root))
            .arg("--image")
            .arg(image_flag(images::OPERATOR_IMAGE, &operator_root));
        if index == 1 {
            let volumes = dir.join("volumes");
            std::fs::create_dir_all(&volumes)
                .with_context(|| format!("creating {}", volumes.display()))?;
            cmd.arg("--volumes-dir")
                .arg(&volumes)
                .arg("--client-hosts")
                .arg(client_hosts_file());
        }
        let started = procs::spawn_detached(
            &format!("{AGENT_PROC_PREFIX}{index}"),
            cmd,
            &nodes_dir.join(format!("{name}.log")),
        )?;
        state.procs.push(started.clone());
        state.save()?;
        agents.push((name, started));
    }
    for (name, started) in &agents {
        wait_node_ready(&client, started, name, NODE_READY_DEADLINE).await?;
    }
    Ok(())
}

fn image_flag(reference: &str, root: &Path) -> String {
    format!("{reference}={}", root.display())
}

fn node_is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn wait_node_ready(
    client: &kube::Client,
    agent_proc: &Started,
    name: &str,
    deadline: Duration,
) -> Result<()> {
    let api: kube::Api<Node> = kube::Api::all(client.clone());
    let start = Instant::now();
    loop {
        if let Some(node) = api.get_opt(name).await?
            && node_is_ready(&node)
        {
            return Ok(());
        }
        if !procs::alive(agent_proc.pid) {
            bail!(
                "{} exited before its Node {name} was Ready; see {}",
                agent_proc.name,
                agent_proc.log
            );
        }
        if start.elapsed() > deadline {
            bail!(
                "Node {name} was not Ready within {deadline:?}; see {}",
                agent_proc.log
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Stops every process the testbed started (the node agents first, which stop their pods, then
/// Kafka, then the control plane in reverse order of start), removes what is left of the pod
/// network (also after a crash: every `oxbow-*` namespace and whatever still runs in it) and
/// removes the state folder.
pub fn down() -> Result<()> {
    let dir = cache::state_dir();
    let state = match read_state() {
        Ok(state) => state,
        Err(e) => {
            eprintln!("testbed down: ignoring an unreadable state: {e:#}");
            None
        }
    };
    if let Some(state) = &state {
        stop_all(state);
    }
    let mut errors = Vec::new();
    match live_bridge_owner(&dir) {
        Some(owner) => eprintln!(
            "testbed down: leaving the pod network alone, it belongs to the running testbed in {}",
            owner.display()
        ),
        None => {
            if let Err(e) = network_down() {
                errors.push(format!("{e:#}"));
            }
        }
    }
    if let Err(e) = remove_state_dir(&dir) {
        errors.push(format!("{e:#}"));
    }
    if !errors.is_empty() {
        bail!("testbed down: {}", errors.join("; "));
    }
    Ok(())
}

fn stop_all(state: &State) {
    for p in state.procs.iter().rev() {
        let grace = if p.name.starts_with(AGENT_PROC_PREFIX) {
            AGENT_GRACE
        } else {
            PROC_GRACE
        };
        procs::stop(p, grace);
    }
}

// The pod network. Every step is an `ip` command, as an administrator would type it.

/// The client namespace's hosts file (`ip netns exec` mounts it over `/etc/hosts`); the first
/// node agent keeps it current with every pod and Service name.
pub fn client_hosts_file() -> PathBuf {
    Path::new("/etc/netns")
        .join(agent::CLIENT_NETNS)
        .join("hosts")
}

/// What the client namespace resolves before the first agent rewrites its hosts file. Pure.
fn initial_client_hosts() -> String {
    format!(
        "# Written by `testbed up`; the node agent of {} rewrites it with pod and Service names.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         {}\t{}\n",
        agent::node_name(1),
        agent::CLIENT_IP,
        agent::CLIENT_NETNS,
    )
}

fn ip(args: &[&str]) -> Result<()> {
    agent::net::ip(args).map(|_| ())
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The bridge with the gateway and every node's address, and the client namespace on it.
fn network_up(nodes: u8, dir: &Path) -> Result<()> {
    let bridge = agent::BRIDGE;
    let netns = agent::CLIENT_NETNS;
    let with_prefix = |addr: &str| format!("{addr}/{}", agent::PREFIX_LEN);
    ip(&["link", "add", bridge, "type", "bridge"])?;
    // The state folder, and the `up` process until the state records the testbed's own.
    std::fs::write(
        BRIDGE_OWNER_FILE,
        format!("{}\n{}\n", dir.display(), std::process::id()),
    )
    .with_context(|| format!("writing {BRIDGE_OWNER_FILE}"))?;
    ip(&["addr", "add", &with_prefix(agent::GATEWAY), "dev", bridge])?;
    for index in 1..=nodes {
        ip(&[
            "addr",
            "add",
            &with_prefix(&agent::node_ip(index)),
            "dev",
            bridge,
        ])?;
    }
    ip(&["link", "set", bridge, "up"])?;

    ip(&["netns", "add", netns])?;
    ip(&[
        "link",
        "add",
        CLIENT_VETH,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        netns,
    ])?;
    ip(&["link", "set", CLIENT_VETH, "master", bridge])?;
    ip(&["link", "set", CLIENT_VETH, "up"])?;
    ip(&["-n", netns, "link", "set", "lo", "up"])?;
    ip(&[
        "-n",
        netns,
        "addr",
        "add",
        &with_prefix(agent::CLIENT_IP),
        "dev",
        "eth0",
    ])?;
    ip(&["-n", netns, "link", "set", "eth0", "up"])?;
    ip(&[
        "-n",
        netns,
        "route",
        "add",
        "default",
        "via",
        agent::GATEWAY,
    ])?;

    let hosts = client_hosts_file();
    let hosts_dir = hosts.parent().context("hosts file without folder")?;
    std::fs::create_dir_all(hosts_dir)
        .with_context(|| format!("creating {}", hosts_dir.display()))?;
    std::fs::write(&hosts, initial_client_hosts())
        .with_context(|| format!("writing {}", hosts.display()))?;
    Ok(())
}

/// Kills what runs in the testbed's namespaces, deletes them, the bridge, their `/etc/netns`
/// folders and the owner mark. Tries every step and reports what failed.
fn network_down() -> Result<()> {
    let mut errors = Vec::new();
    for ns in agent::net::list(agent::NETNS_PREFIX)? {
        agent::net::kill_all_in(&ns);
        if let Err(e) = ip(&["netns", "del", &ns]) {
            errors.push(format!("{e:#}"));
        }
    }
    if link_exists(agent::BRIDGE)
        && let Err(e) = ip(&["link", "del", agent::BRIDGE])
    {
        errors.push(format!("{e:#}"));
    }
    match std::fs::read_dir("/etc/netns") {
        Ok(entries) => {
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(agent::NETNS_PREFIX)
                    && let Err(e) = std::fs::remove_dir_all(entry.path())
                {
                    errors.push(format!("removing {}: {e}", entry.path().display()));
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => errors.push(format!("listing /etc/netns: {e}")),
    }
    match std::fs::remove_file(BRIDGE_OWNER_FILE) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            errors.push(format!("removing {BRIDGE_OWNER_FILE}: {e}"))
        }
        _ => {}
    }
    if !errors.is_empty() {
        bail!("removing the pod network: {}", errors.join("; "));
    }
    Ok(())
}

/// Another state folder than `dir` that owns the bridge and is alive: its `up` is still
/// running, or its state records live processes.
fn live_bridge_owner(dir: &Path) -> Option<PathBuf> {
    let mark = std::fs::read_to_string(BRIDGE_OWNER_FILE).ok()?;
    let mut lines = mark.lines();
    let owner = PathBuf::from(lines.next()?.trim());
    let ours = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if owner == ours || owner == dir {
        return None;
    }
    let starting = lines
        .next()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        .is_some_and(|pid| pid != std::process::id() && procs::alive(pid));
    let running = read_state_in(&owner)
        .ok()
        .flatten()
        .is_some_and(|state| state.any_alive());
    (starting || running).then_some(owner)
}

// Removing the state folder. Pods mount their volumes inside private mount namespaces, so the
// host normally sees no mounts under it; but a folder is never deleted through a mount that is
// still there (that would delete the mounted files), so any such mount is detached first.

/// Undoes the escaping of `/proc/self/mountinfo` (`\040` for a space and so on). Pure.
fn unescape_mount_path(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let code = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |n, b| n * 8 + u32::from(b - b'0'));
            out.push(code as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points at or below `dir` in `mountinfo` text, deepest first. Pure.
fn mounts_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut mounts: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mount_path(m)))
        .filter(|m| m.starts_with(dir))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    mounts.dedup();
    mounts
}

fn detach_mounts_under(dir: &Path) -> Result<()> {
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    for m in mounts_under(&info, dir) {
        let out = Command::new("umount")
            .arg("-l")
            .arg(&m)
            .output()
            .context("running umount")?;
        if !out.status.success() {
            eprintln!(
                "testbed down: umount -l {}: {}",
                m.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let left = mounts_under(&info, dir);
    ensure!(
        left.is_empty(),
        "not removing {}: still mounted under it: {}",
        dir.display(),
        left.iter()
            .map(|m| m.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

fn remove_state_dir(dir: &Path) -> Result<()> {
    let Ok(dir) = std::fs::canonicalize(dir) else {
        return Ok(());
    };
    detach_mounts_under(&dir)?;
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => {
            // A mount appeared meanwhile (a pod still being torn down): detach, then once more.
            detach_mounts_under(&dir)?;
            std::fs::remove_dir_all(&dir)
        }
        other => other,
    }
    .with_context(|| format!("removing {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped_and_filtered() {
        let info = "\
36 35 98:0 / / rw - ext4 /dev/root rw
37 36 0:5 / /tmp/tb/nodes/a\\040b rw - tmpfs tmpfs rw
38 37 0:6 / /tmp/tb/nodes/a\\040b/x rw - tmpfs tmpfs rw
39 36 0:7 / /tmp/tb2 rw - tmpfs tmpfs rw
";
        assert_eq!(
            mounts_under(info, Path::new("/tmp/tb")),
            [
                PathBuf::from("/tmp/tb/nodes/a b/x"),
                PathBuf::from("/tmp/tb/nodes/a b"),
            ]
        );
        assert_eq!(unescape_mount_path("a\\134b\\011"), "a\\b\t");
    }

    #[test]
    fn client_hosts_start_minimal() {
        let hosts = initial_client_hosts();
        assert!(hosts.contains("127.0.0.1\tlocalhost\n"));
        assert!(hosts.contains(&format!("{}\t{}\n", agent::CLIENT_IP, agent::CLIENT_NETNS)));
    }

    #[test]
    fn client_veth_name_fits_linux() {
        assert!(CLIENT_VETH.len() <= 15);
        assert_eq!(
            client_hosts_file(),
            PathBuf::from("/etc/netns/oxbow-client/hosts")
        );
    }
}
