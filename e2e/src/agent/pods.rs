//! One pod's life on the node, as the kubelet lives it: network, volumes, init containers in
//! order, then every container (restarted per `restartPolicy` with back-off), probes driving
//! Ready, status reported when it changes, and on deletion SIGTERM, the grace period, SIGKILL,
//! then the Pod deleted with grace 0. A pod the agent cannot run gets a waiting container status
//! with the reason and message, never a silent hang. May touch: the pod's processes, network
//! namespace and folder; writes the Pod's status and deletes the Pod through the API.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::{ConfigMap, Container, Pod, Secret},
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams, Preconditions},
};
use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use serde_json::{Value, json};
use tokio::sync::watch;
use tracing::{info, warn};

use super::{
    AgentConfig, GATEWAY, hosts,
    net::{self, PodNetwork},
    probes::{self, ExecTarget},
    sandbox::{self, Launch, Mount},
    volumes::{self, Tokens},
};

/// What every pod worker shares.
pub struct Shared {
    pub client: Client,
    pub config: AgentConfig,
    pub node_ip: String,
    pub names: hosts::Names,
    pub addresses: Mutex<net::Addresses>,
}

/// The most recent Pod object, or `None` once it is gone from the API.
pub type PodFeed = watch::Receiver<Option<Arc<Pod>>>;

fn now() -> Value {
    serde_json::to_value(Time(Timestamp::now())).unwrap_or(Value::Null)
}

#[derive(Clone, Debug)]
struct Terminated {
    exit_code: i32,
    reason: String,
    started_at: Value,
    finished_at: Value,
}

impl Terminated {
    fn json(&self) -> Value {
        json!({"exitCode": self.exit_code, "reason": self.reason,
               "startedAt": self.started_at, "finishedAt": self.finished_at})
    }
}

#[derive(Debug, Default)]
struct ProbeState {
    next_at: Option<Instant>,
    successes: u32,
    failures: u32,
}

struct Running {
    child: tokio::process::Child,
    pid: u32,
    started_at: Value,
    since: Instant,
    exec: ExecTarget,
}

struct ContainerRun {
    spec: Container,
    init: bool,
    running: Option<Running>,
    /// Set while the container is not running and will not be restarted.
    terminated: Option<Terminated>,
    last_terminated: Option<Terminated>,
    waiting: Option<(String, String)>,
    /// Starts after the first, counted when they happen (as the kubelet's restartCount).
    restarts: u32,
    /// Whether the container has been started before (its next start is a restart).
    ran_before: bool,
    backoff_step: u32,
    next_start: Instant,
    ready: bool,
    started: bool,
    readiness: ProbeState,
    liveness: ProbeState,
    startup: ProbeState,
    /// Asked to stop by a failed liveness probe (reason for the termination).
    killed_for: Option<String>,
}

impl ContainerRun {
    fn new(spec: Container, init: bool) -> ContainerRun {
        ContainerRun {
            spec,
            init,
            running: None,
            terminated: None,
            last_terminated: None,
            waiting: Some(("ContainerCreating".to_owned(), String::new())),
            restarts: 0,
            ran_before: false,
            backoff_step: 0,
            next_start: Instant::now(),
            ready: false,
            started: false,
            readiness: ProbeState::default(),
            liveness: ProbeState::default(),
            startup: ProbeState::default(),
            killed_for: None,
        }
    }

    fn status(&self) -> Value {
        let state = if let Some(r) = &self.running {
            json!({"running": {"startedAt": r.started_at}})
        } else if let Some(t) = &self.terminated {
            json!({"terminated": t.json()})
        } else if let Some((reason, message)) = &self.waiting {
            if message.is_empty() {
                json!({"waiting": {"reason": reason}})
            } else {
                json!({"waiting": {"reason": reason, "message": message}})
            }
        } else {
            json!({"waiting": {"reason": "ContainerCreating"}})
        };
        let last = match &self.last_terminated {
            Some(t) => json!({"terminated": t.json()}),
            None => json!({}),
        };
        let image = self.spec.image.clone().unwrap_or_default();
        let mut s = json!({
            "name": self.spec.name,
            "image": image,
            "imageID": format!("oxbow-agent://{image}"),
            "ready": self.ready,
            "started": self.running.is_some() && self.started,
            "restartCount": self.restarts,
            "state": state,
            "lastState": last,
        });
        if let Some(r) = &self.running {
            s["containerID"] = json!(format!("oxbow-agent://{}", r.pid));
        }
        s
    }
}

/// Wait before the restart that follows exit number `exits` (counted from 0 since the last
/// long run): none after the first exit, then 10 s doubling to 5 min, as the kubelet. Pure.
pub fn restart_delay(exits: u32) -> Duration {
    match exits {
        0 => Duration::ZERO,
        n => Duration::from_secs((10u64 << (n - 1).min(5)).min(300)),
    }
}

struct Worker {
    shared: Arc<Shared>,
    uid: String,
    dir: PathBuf,
    network: Option<PodNetwork>,
    volumes: Option<BTreeMap<String, PathBuf>>,
    volumes_at: Instant,
    tokens: Tokens,
    containers: Vec<ContainerRun>,
    start_time: Option<Value>,
    transitions: BTreeMap<&'static str, (bool, Value)>,
    last_status: Option<Value>,
    pod_error: Option<(String, String)>,
}

/// Runs one pod until it is deleted (or vanishes from the API).
pub async fn run(shared: Arc<Shared>, mut feed: PodFeed) {
    let Some(first) = feed.borrow().clone() else {
        return;
    };
    let uid = first.metadata.uid.clone().unwrap_or_default();
    let ns = first.metadata.namespace.clone().unwrap_or_default();
    let name = first.metadata.name.clone().unwrap_or_default();
    let dir = shared
        .config
        .dir
        .join("pods")
        .join(format!("{ns}_{name}_{}", &uid[..uid.len().min(8)]));
    let spec = first.spec.clone().unwrap_or_default();
    let mut containers: Vec<ContainerRun> = spec
        .init_containers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|c| ContainerRun::new(c, true))
        .collect();
    containers.extend(
        spec.containers
            .into_iter()
            .map(|c| ContainerRun::new(c, false)),
    );
    let mut w = Worker {
        shared,
        uid,
        dir,
        network: None,
        volumes: None,
        volumes_at: Instant::now(),
        tokens: Tokens::default(),
        containers,
        start_time: None,
        transitions: BTreeMap::new(),
        last_status: None,
        pod_error: None,
    };
    info!(pod = %format!("{ns}/{name}"), "pod assigned");
    loop {
        let pod = feed.borrow_and_update().clone();
        let Some(pod) = pod else {
            w.stop_all(Duration::from_secs(2)).await;
            w.teardown();
            info!(pod = %format!("{ns}/{name}"), "pod gone from the API; stopped");
            return;
        };
        if pod.metadata.deletion_timestamp.is_some() {
            let grace = pod
                .metadata
                .deletion_grace_period_seconds
                .unwrap_or(30)
                .clamp(0, 300) as u64;
            w.stop_all(Duration::from_secs(grace)).await;
            w.teardown();
            w.delete(&pod).await;
            info!(pod = %format!("{ns}/{name}"), "pod deleted");
            return;
        }
        w.step(&pod).await;
        w.report(&pod).await;
        tokio::select! {
            r = feed.changed() => if r.is_err() {
                // The agent is shutting down: stop quickly, leave the Pod to the API.
                w.stop_all(Duration::from_secs(5)).await;
                w.teardown();
                return;
            },
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

impl Worker {
    fn pod_key(pod: &Pod) -> String {
        format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.name.as_deref().unwrap_or_default()
        )
    }

    async fn step(&mut self, pod: &Pod) {
        if self.start_time.is_none() {
            self.start_time = Some(now());
        }
        let spec = pod.spec.clone().unwrap_or_default();
        if spec.host_network == Some(true) {
            self.pod_error = Some((
                "CreateContainerConfigError".to_owned(),
                "hostNetwork pods are not supported by the testbed node agent".to_owned(),
            ));
            return;
        }
        if self.network.is_none() {
            if let Err(e) = std::fs::create_dir_all(self.dir.join("logs")) {
                self.pod_error = Some(("ContainerCreating".to_owned(), e.to_string()));
                return;
            }
            let address = self
                .shared
                .addresses
                .lock()
                .map_err(|e| e.to_string())
                .and_then(|mut a| a.take(&Self::pod_key(pod)).map_err(|e| e.to_string()));
            let result = address.and_then(|ip| {
                net::setup(self.shared.config.index, &self.uid, &ip).map_err(|e| {
                    if let Ok(mut a) = self.shared.addresses.lock() {
                        a.release(&ip);
                    }
                    format!("{e:#}")
                })
            });
            match result {
                Ok(n) => {
                    let hosts = self.dir.join("hosts");
                    let hostname = spec
                        .hostname
                        .clone()
                        .or(pod.metadata.name.clone())
                        .unwrap_or_default();
                    self.shared.names.register(
                        hosts,
                        Some(hosts::HostsOwner {
                            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                            ip: n.ip.clone(),
                            hostname,
                            subdomain: spec.subdomain.clone(),
                        }),
                    );
                    self.network = Some(n);
                }
                Err(e) => {
                    self.pod_error = Some(("FailedCreatePodSandBox".to_owned(), e));
                    return;
                }
            }
        }
        let ip = self
            .network
            .as_ref()
            .map(|n| n.ip.clone())
            .unwrap_or_default();
        let refresh = self.volumes.is_none() || self.volumes_at.elapsed() > Duration::from_secs(10);
        if refresh {
            match volumes::prepare(&self.shared.client, pod, &ip, &self.dir, &mut self.tokens).await
            {
                Ok(v) => {
                    self.volumes = Some(v);
                    self.volumes_at = Instant::now();
                    self.pod_error = None;
                }
                Err(e) => {
                    if self.volumes.is_none() {
                        self.pod_error = Some((e.reason().to_owned(), e.to_string()));
                        return;
                    }
                    warn!(pod = %Self::pod_key(pod), "refreshing volumes: {e}");
                }
            }
        }
        let policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".to_owned());
        // Init containers one at a time, each to success, before the app containers.
        let mut init_done = true;
        for i in 0..self.containers.len() {
            if !self.containers[i].init {
                continue;
            }
            let done = matches!(&self.containers[i].terminated, Some(t) if t.exit_code == 0);
            if done {
                continue;
            }
            init_done = false;
            let init_policy = if policy == "Never" {
                "Never"
            } else {
                "OnFailure"
            };
            self.tend(pod, i, init_policy).await;
            break;
        }
        if !init_done {
            return;
        }
        for i in 0..self.containers.len() {
            if !self.containers[i].init {
                self.tend(pod, i, &policy).await;
            }
        }
        for i in 0..self.containers.len() {
            if !self.containers[i].init {
                self.probe(pod, i).await;
            }
        }
    }

    /// Notices exits, restarts per policy, starts what is due.
    async fn tend(&mut self, pod: &Pod, i: usize, policy: &str) {
        let c = &mut self.containers[i];
        if let Some(r) = c.running.as_mut()
            && let Ok(Some(status)) = r.child.try_wait()
        {
            use std::os::unix::process::ExitStatusExt;
            let code = status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
            let reason = c.killed_for.take().unwrap_or_else(|| {
                if code == 0 {
                    "Completed".to_owned()
                } else {
                    "Error".to_owned()
                }
            });
            let t = Terminated {
                exit_code: code,
                reason,
                started_at: r.started_at.clone(),
                finished_at: now(),
            };
            let ran = r.since.elapsed();
            info!(pod = %Self::pod_key(pod), container = %c.spec.name, code, "container exited");
            c.running = None;
            c.ready = false;
            c.started = false;
            c.readiness = ProbeState::default();
            c.liveness = ProbeState::default();
            c.startup = ProbeState::default();
            let restart = match policy {
                "Always" => true,
                "OnFailure" => code != 0,
                _ => false,
            };
            if restart {
                // A container that ran for ten minutes starts its back-off afresh.
                if ran > Duration::from_secs(600) {
                    c.backoff_step = 0;
                }
                // As the kubelet: the first restart is immediate, then 10 s doubling to 5 min.
                let wait = restart_delay(c.backoff_step);
                c.next_start = Instant::now() + wait;
                c.backoff_step += 1;
                c.last_terminated = Some(t);
                c.terminated = None;
                c.waiting = Some(if wait.is_zero() {
                    ("ContainerCreating".to_owned(), String::new())
                } else {
                    (
                        "CrashLoopBackOff".to_owned(),
                        format!(
                            "back-off {}s restarting failed container={}",
                            wait.as_secs(),
                            c.spec.name
                        ),
                    )
                });
            } else {
                c.terminated = Some(t);
                c.waiting = None;
            }
        }
        let c = &self.containers[i];
        if c.running.is_some() || c.terminated.is_some() || Instant::now() < c.next_start {
            return;
        }
        match self.start(pod, i).await {
            Ok(()) => {}
            Err((reason, message)) => {
                let c = &mut self.containers[i];
                warn!(pod = %Self::pod_key(pod), container = %c.spec.name, "{reason}: {message}");
                c.waiting = Some((reason, message));
                c.next_start = Instant::now() + Duration::from_secs(5);
            }
        }
    }

    async fn start(&mut self, pod: &Pod, i: usize) -> Result<(), (String, String)> {
        let config_error = |m: String| ("CreateContainerConfigError".to_owned(), m);
        let spec = pod.spec.clone().unwrap_or_default();
        let container = self.containers[i].spec.clone();
        let reference = container.image.clone().unwrap_or_default();
        let image = sandbox::image(&self.shared.config.images, &reference)
            .map_err(|m| ("ErrImagePull".to_owned(), m))?;
        let network = self
            .network
            .clone()
            .ok_or_else(|| config_error("no network".into()))?;
        let volumes = self.volumes.clone().unwrap_or_default();
        let psc = spec.security_context.clone().unwrap_or_default();
        let csc = container.security_context.clone().unwrap_or_default();
        let uid = csc
            .run_as_user
            .or(psc.run_as_user)
            .or(image.user)
            .unwrap_or(0);
        let non_root = csc.run_as_non_root.or(psc.run_as_non_root).unwrap_or(false);
        if non_root && uid == 0 {
            return Err(config_error(
                "container has runAsNonRoot and image will run as root".to_owned(),
            ));
        }
        let gid = csc.run_as_group.or(psc.run_as_group).unwrap_or(0);
        let mut groups: Vec<u32> = psc.fs_group.into_iter().map(|g| g as u32).collect();
        groups.extend(
            psc.supplemental_groups
                .unwrap_or_default()
                .into_iter()
                .map(|g| g as u32),
        );

        let env = self
            .env(pod, &container, &image, &network.ip)
            .await
            .map_err(config_error)?;
        let mut argv: Vec<String> = match &container.command {
            Some(cmd) if !cmd.is_empty() => cmd.clone(),
            _ => image.entrypoint.clone(),
        };
        argv.extend(container.args.clone().unwrap_or_default());
        let argv: Vec<String> = argv.iter().map(|a| sandbox::expand(a, &env)).collect();
        if argv.is_empty() {
            return Err(config_error(format!(
                "container {} has no command and image {reference} has no entrypoint",
                container.name
            )));
        }
        let mut mounts = Vec::new();
        for m in container.volume_mounts.clone().unwrap_or_default() {
            let source = volumes.get(&m.name).ok_or_else(|| {
                config_error(format!(
                    "volumeMount {:?} names no volume of the pod",
                    m.name
                ))
            })?;
            let source = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                Some(sub) if sub.split('/').any(|c| c == "..") => {
                    return Err(config_error(format!(
                        "subPath {sub:?} must not contain '..'"
                    )));
                }
                Some(sub) => source.join(sub),
                None => source.clone(),
            };
            let volume_read_only = spec
                .volumes
                .iter()
                .flatten()
                .find(|v| v.name == m.name)
                .is_some_and(|v| {
                    v.config_map.is_some()
                        || v.secret.is_some()
                        || v.projected.is_some()
                        || v.downward_api.is_some()
                });
            mounts.push(Mount {
                source,
                target: m.mount_path.clone(),
                read_only: m.read_only == Some(true) || volume_read_only,
            });
        }
        let hostname = spec
            .hostname
            .clone()
            .or(pod.metadata.name.clone())
            .unwrap_or_default();
        let launch = Launch {
            netns: network.netns.clone(),
            root: self
                .dir
                .join("containers")
                .join(&container.name)
                .join("root"),
            image: image.root.clone(),
            hosts: self.dir.join("hosts"),
            mounts,
            read_only_root: csc.read_only_root_filesystem == Some(true),
            hostname,
            uid: uid as u32,
            gid: gid as u32,
            groups,
            env: env.clone(),
            working_dir: container
                .working_dir
                .clone()
                .or(image.working_dir.clone())
                .unwrap_or_else(|| "/".to_owned()),
            argv,
        };
        let overlays =
            sandbox::prepare_root(&launch).map_err(|e| config_error(format!("{e:#}")))?;
        let script_path = self
            .dir
            .join("containers")
            .join(&container.name)
            .join("start.sh");
        std::fs::write(&script_path, sandbox::script(&launch, &overlays))
            .map_err(|e| config_error(e.to_string()))?;
        let log = self
            .dir
            .join("logs")
            .join(format!("{}.log", container.name));
        let out = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| config_error(format!("{}: {e}", log.display())))?;
        let err = out.try_clone().map_err(|e| config_error(e.to_string()))?;
        let mut cmd = tokio::process::Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", network.netns))
            .args([
                "--",
                "unshare",
                "--mount",
                "--uts",
                "--propagation",
                "private",
                "--",
                "/bin/sh",
            ])
            .arg(&script_path)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd.spawn().map_err(|e| {
            (
                "RunContainerError".to_owned(),
                format!("starting container: {e}"),
            )
        })?;
        let pid = child.id().unwrap_or_default();
        let _ = std::fs::write(
            self.dir
                .join("containers")
                .join(&container.name)
                .join("pid"),
            pid.to_string(),
        );
        info!(pod = %Self::pod_key(pod), container = %container.name, pid, "container started");
        let c = &mut self.containers[i];
        c.running = Some(Running {
            child,
            pid,
            started_at: now(),
            since: Instant::now(),
            exec: ExecTarget {
                pid,
                uid: uid as u32,
                gid: gid as u32,
                env,
            },
        });
        c.waiting = None;
        c.started = c.spec.startup_probe.is_none();
        if c.ran_before {
            c.restarts += 1;
        }
        c.ran_before = true;
        Ok(())
    }

    async fn env(
        &self,
        pod: &Pod,
        container: &Container,
        image: &sandbox::Image,
        ip: &str,
    ) -> Result<BTreeMap<String, String>, String> {
        let client = &self.shared.client;
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let mut env = BTreeMap::new();
        for line in &image.env {
            if let Some((k, v)) = line.split_once('=') {
                env.insert(k.to_owned(), v.to_owned());
            }
        }
        let hostname = pod
            .spec
            .as_ref()
            .and_then(|s| s.hostname.clone())
            .or(pod.metadata.name.clone())
            .unwrap_or_default();
        env.insert("HOSTNAME".to_owned(), hostname);
        let (host, port) = self
            .shared
            .config
            .api_server
            .rsplit_once(':')
            .unwrap_or((GATEWAY, "443"));
        env.insert("KUBERNETES_SERVICE_HOST".to_owned(), host.to_owned());
        env.insert("KUBERNETES_SERVICE_PORT".to_owned(), port.to_owned());
        env.insert("KUBERNETES_SERVICE_PORT_HTTPS".to_owned(), port.to_owned());
        env.insert("KUBERNETES_PORT".to_owned(), format!("tcp://{host}:{port}"));
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
        for from in container.env_from.iter().flatten() {
            let prefix = from.prefix.clone().unwrap_or_default();
            if let Some(r) = &from.config_map_ref {
                match cms.get_opt(&r.name).await.map_err(|e| e.to_string())? {
                    Some(cm) => {
                        for (k, v) in cm.data.unwrap_or_default() {
                            env.insert(format!("{prefix}{k}"), v);
                        }
                    }
                    None if r.optional == Some(true) => {}
                    None => return Err(format!("configmap {:?} not found", r.name)),
                }
            }
            if let Some(r) = &from.secret_ref {
                match secrets.get_opt(&r.name).await.map_err(|e| e.to_string())? {
                    Some(s) => {
                        for (k, v) in s.data.unwrap_or_default() {
                            env.insert(
                                format!("{prefix}{k}"),
                                String::from_utf8_lossy(&v.0).into_owned(),
                            );
                        }
                    }
                    None if r.optional == Some(true) => {}
                    None => return Err(format!("secret {:?} not found", r.name)),
                }
            }
        }
        for var in container.env.iter().flatten() {
            let value = if let Some(from) = &var.value_from {
                if let Some(f) = &from.field_ref {
                    volumes::field_value(pod, ip, &f.field_path).ok_or_else(|| {
                        format!("env {}: unsupported fieldPath {:?}", var.name, f.field_path)
                    })?
                } else if let Some(r) = &from.config_map_key_ref {
                    let cm = cms.get_opt(&r.name).await.map_err(|e| e.to_string())?;
                    match cm.and_then(|c| c.data).and_then(|d| d.get(&r.key).cloned()) {
                        Some(v) => v,
                        None if r.optional == Some(true) => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in ConfigMap {ns}/{}",
                                r.key, r.name
                            ));
                        }
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    let s = secrets.get_opt(&r.name).await.map_err(|e| e.to_string())?;
                    match s.and_then(|s| s.data).and_then(|d| d.get(&r.key).cloned()) {
                        Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                        None if r.optional == Some(true) => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in Secret {ns}/{}",
                                r.key, r.name
                            ));
                        }
                    }
                } else {
                    return Err(format!(
                        "env {}: resourceFieldRef is not supported by the testbed node agent",
                        var.name
                    ));
                }
            } else {
                sandbox::expand(var.value.as_deref().unwrap_or_default(), &env)
            };
            env.insert(var.name.clone(), value);
        }
        Ok(env)
    }

    async fn probe(&mut self, pod: &Pod, i: usize) {
        let ip = self
            .network
            .as_ref()
            .map(|n| n.ip.clone())
            .unwrap_or_default();
        let c = &mut self.containers[i];
        let Some(running) = c.running.as_ref() else {
            return;
        };
        let since = running.since;
        let exec = running.exec.clone();
        let ports = c.spec.ports.clone().unwrap_or_default();
        let now = Instant::now();
        // Startup probe first; liveness and readiness wait for it.
        if let Some(p) = c.spec.startup_probe.clone()
            && !c.started
        {
            let t = probes::timing(&p);
            let due = *c.startup.next_at.get_or_insert(since + t.initial_delay);
            if now >= due {
                c.startup.next_at = Some(now + t.period);
                match probes::run(&p, &ip, &ports, Some(&exec)).await {
                    Ok(()) => c.started = true,
                    Err(e) => {
                        c.startup.failures += 1;
                        if c.startup.failures >= t.failure_threshold {
                            Self::kill(c, format!("startup probe failed: {e}"));
                        }
                    }
                }
            }
            return;
        }
        c.started = true;
        match c.spec.readiness_probe.clone() {
            None => c.ready = true,
            Some(p) => {
                let t = probes::timing(&p);
                let due = *c.readiness.next_at.get_or_insert(since + t.initial_delay);
                if now >= due {
                    c.readiness.next_at = Some(now + t.period);
                    match probes::run(&p, &ip, &ports, Some(&exec)).await {
                        Ok(()) => {
                            c.readiness.failures = 0;
                            c.readiness.successes += 1;
                            if c.readiness.successes >= t.success_threshold {
                                c.ready = true;
                            }
                        }
                        Err(_) => {
                            c.readiness.successes = 0;
                            c.readiness.failures += 1;
                            if c.readiness.failures >= t.failure_threshold {
                                c.ready = false;
                            }
                        }
                    }
                }
            }
        }
        if let Some(p) = c.spec.liveness_probe.clone() {
            let t = probes::timing(&p);
            let due = *c.liveness.next_at.get_or_insert(since + t.initial_delay);
            if now >= due {
                c.liveness.next_at = Some(now + t.period);
                match probes::run(&p, &ip, &ports, Some(&exec)).await {
                    Ok(()) => c.liveness.failures = 0,
                    Err(e) => {
                        c.liveness.failures += 1;
                        if c.liveness.failures >= t.failure_threshold {
                            warn!(pod = %Self::pod_key(pod), container = %c.spec.name, "liveness probe failed: {e}");
                            Self::kill(c, format!("liveness probe failed: {e}"));
                        }
                    }
                }
            }
        }
    }

    fn kill(c: &mut ContainerRun, why: String) {
        if let Some(r) = &c.running {
            let _ = killpg(Pid::from_raw(r.pid as i32), Signal::SIGKILL);
        }
        warn!(container = %c.spec.name, "killing the container: {why}");
        c.killed_for = Some("Unhealthy".to_owned());
    }

    /// SIGTERM to every running container, up to `grace` for them to exit, then SIGKILL.
    async fn stop_all(&mut self, grace: Duration) {
        for c in &self.containers {
            if let Some(r) = &c.running {
                let _ = killpg(Pid::from_raw(r.pid as i32), Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        loop {
            let mut alive = false;
            for c in &mut self.containers {
                if let Some(r) = c.running.as_mut() {
                    match r.child.try_wait() {
                        Ok(Some(_)) | Err(_) => c.running = None,
                        Ok(None) => alive = true,
                    }
                }
            }
            if !alive || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for c in &mut self.containers {
            if let Some(mut r) = c.running.take() {
                let _ = killpg(Pid::from_raw(r.pid as i32), Signal::SIGKILL);
                let _ = r.child.wait().await;
            }
        }
    }

    fn teardown(&mut self) {
        self.shared.names.unregister(&self.dir.join("hosts"));
        if let Some(n) = self.network.take() {
            if let Err(e) = net::teardown(&n.netns) {
                warn!("removing network namespace {}: {e:#}", n.netns);
            }
            if let Ok(mut a) = self.shared.addresses.lock() {
                a.release(&n.ip);
            }
        }
        // Logs stay (as the kubelet keeps a dead pod's logs for a while); the rest goes.
        for part in ["containers", "volumes", "hosts"] {
            let path = self.dir.join(part);
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }

    async fn delete(&self, pod: &Pod) {
        let api: Api<Pod> = Api::namespaced(
            self.shared.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        if let Err(e) = api.delete(&name, &params).await {
            warn!(pod = %Self::pod_key(pod), "deleting the pod: {e}");
        }
    }

    fn condition(&mut self, kind: &'static str, status: bool) -> Value {
        let entry = self
            .transitions
            .entry(kind)
            .or_insert_with(|| (status, now()));
        if entry.0 != status {
            *entry = (status, now());
        }
        json!({"type": kind, "status": if status { "True" } else { "False" },
               "lastProbeTime": null, "lastTransitionTime": entry.1})
    }

    async fn report(&mut self, pod: &Pod) {
        let apps: Vec<&ContainerRun> = self.containers.iter().filter(|c| !c.init).collect();
        let inits: Vec<&ContainerRun> = self.containers.iter().filter(|c| c.init).collect();
        let init_done = inits
            .iter()
            .all(|c| matches!(&c.terminated, Some(t) if t.exit_code == 0));
        let all_ready = !apps.is_empty() && apps.iter().all(|c| c.ready && c.running.is_some());
        let any_running = apps
            .iter()
            .any(|c| c.running.is_some() || c.last_terminated.is_some());
        let all_done = apps.iter().all(|c| c.terminated.is_some());
        let phase = if all_done && !apps.is_empty() {
            if apps
                .iter()
                .all(|c| c.terminated.as_ref().is_some_and(|t| t.exit_code == 0))
            {
                "Succeeded"
            } else {
                "Failed"
            }
        } else if any_running {
            "Running"
        } else {
            "Pending"
        };
        let mut container_statuses: Vec<Value> = apps.iter().map(|c| c.status()).collect();
        let init_statuses: Vec<Value> = inits.iter().map(|c| c.status()).collect();
        if let Some((reason, message)) = &self.pod_error {
            for s in &mut container_statuses {
                if s["state"].get("running").is_none() {
                    s["state"] = json!({"waiting": {"reason": reason, "message": message}});
                }
            }
        }
        let sandbox = self.network.is_some();
        let mut conditions = vec![
            self.condition("PodReadyToStartContainers", sandbox),
            self.condition("Initialized", init_done),
            self.condition("ContainersReady", all_ready),
            self.condition("Ready", all_ready),
        ];
        if let Some(scheduled) = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
        {
            conditions.push(serde_json::to_value(scheduled).unwrap_or_default());
        }
        let node_ip = self.shared.node_ip.clone();
        let mut status = json!({
            "phase": phase,
            "conditions": conditions,
            "hostIP": node_ip,
            "hostIPs": [{"ip": node_ip}],
            "startTime": self.start_time,
            "containerStatuses": container_statuses,
        });
        if !init_statuses.is_empty() {
            status["initContainerStatuses"] = json!(init_statuses);
        }
        if let Some(n) = &self.network {
            status["podIP"] = json!(n.ip);
            status["podIPs"] = json!([{"ip": n.ip}]);
        }
        if self.last_status.as_ref() == Some(&status) {
            return;
        }
        let api: Api<Pod> = Api::namespaced(
            self.shared.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let name = pod.metadata.name.clone().unwrap_or_default();
        let patch = json!({"status": status});
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            Ok(_) => self.last_status = Some(status),
            Err(e) => warn!(pod = %Self::pod_key(pod), "writing pod status: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_restart_is_immediate_then_back_off_doubles_from_ten_seconds_to_five_minutes() {
        let secs: Vec<u64> = (0..9).map(|n| restart_delay(n).as_secs()).collect();
        assert_eq!(secs, [0, 10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn a_waiting_container_reports_its_reason_and_message() {
        let mut c = ContainerRun::new(
            Container {
                name: "kafka".into(),
                image: Some("apache/kafka:9.9.9".into()),
                ..Container::default()
            },
            false,
        );
        c.waiting = Some(("ErrImagePull".into(), "image not available".into()));
        let s = c.status();
        assert_eq!(s["state"]["waiting"]["reason"], "ErrImagePull");
        assert_eq!(s["state"]["waiting"]["message"], "image not available");
        assert_eq!(s["ready"], false);
        assert_eq!(s["restartCount"], 0);
    }
}
