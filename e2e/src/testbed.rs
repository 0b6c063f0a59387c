//! `testbed up` / `down`: starts the control plane and Kafka together, records what it started in
//! a state folder (so that a later `down`, from another process, can stop it) and renders the
//! shell exports tests read. May touch: processes and the state folder.

use std::{fmt::Write as _, path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::{
    cache,
    k8s::{self, K8sExports},
    kafka::{self, KafkaExports},
    procs::{self, Started},
};

/// What `up` starts.
#[derive(Clone, Debug)]
pub struct UpOptions {
    /// Kafka nodes: 1, or 3 for replication and ISR tests.
    pub kafka_nodes: usize,
    /// Maximum JVM heap of each Kafka node (`-Xmx`), e.g. `2g` for 10,000 topics.
    pub kafka_heap: String,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            kafka_nodes: 1,
            kafka_heap: kafka::DEFAULT_HEAP.to_owned(),
        }
    }
}

/// A running testbed, as written to `<state>/state.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub procs: Vec<Started>,
    pub kubernetes: K8sExports,
    pub kafka: KafkaExports,
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
        for p in &self.procs {
            let _ = writeln!(out, "# log of {} (pid {}): {}", p.name, p.pid, p.log);
        }
        out
    }

    fn all_alive(&self) -> bool {
        self.procs.iter().all(|p| procs::alive(p.pid))
    }
}

fn state_file() -> PathBuf {
    cache::state_dir().join("state.json")
}

/// Reads the state of a running testbed, if any.
pub fn read_state() -> Result<Option<State>> {
    let path = state_file();
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(Some(
            serde_json::from_str(&s).with_context(|| format!("parsing {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Starts the testbed, or returns the running one when every process of it is still alive.
/// A half-dead testbed from an earlier run is stopped and replaced.
pub async fn up(opts: &UpOptions) -> Result<State> {
    if let Some(state) = read_state()? {
        if state.all_alive() {
            return Ok(state);
        }
        down()?;
    }
    let dir = cache::state_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let k8s_opts = k8s::K8sOptions {
        dir: dir.join("kubernetes"),
        extra_ips: Vec::new(),
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
            bail!("testbed up failed: {}", errors.join("; "));
        }
    };
    let state = State {
        procs: k.procs.into_iter().chain(f.procs).collect(),
        kubernetes: k.exports,
        kafka: f.exports,
    };
    std::fs::write(state_file(), serde_json::to_string_pretty(&state)?)?;
    crate::pki::write_private(&dir.join("env.sh"), &state.shell_exports())?;
    Ok(state)
}

/// Stops every process the testbed started (Kafka first, then the control plane in reverse order
/// of start) and removes its state folder.
pub fn down() -> Result<()> {
    if let Some(state) = read_state()? {
        for p in state.procs.iter().rev() {
            procs::stop(p, Duration::from_secs(10));
        }
    }
    let dir = cache::state_dir();
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(())
}
