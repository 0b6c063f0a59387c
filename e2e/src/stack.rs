//! What full-stack tests need on top of the testbed: `kubectl` as a user runs it, Kafka clients
//! run inside the testbed's client network namespace (where pod and Service names resolve), and
//! the node agent's view of its pods (container logs, process ids, peak memory).
//! May touch: processes (kubectl, `ip netns exec` clients), files under the testbed folder (read).

use std::{
    future::Future,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::Value;

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
