//! `bench`: measures the topic and user operators against the running testbed and prints the
//! figures next to the named floor. `bench topics` times creating, changing and deleting N
//! KafkaTopics through a release-built topic operator, then the same N changes made directly by
//! a batched admin client (the floor), then the single-topic latency. `bench users` times N
//! KafkaUsers becoming Ready and counts what one full resync with nothing changed costs.
//! `bench clusters` times the cluster operator over N Kafka clusters and reads its peak memory.
//! `bench stack` installs Oxbow from `manifests/install/` into namespace `oxbow-bench` and, per
//! run, times the example cluster (run by the node agent) to Ready and through a rolling restart
//! of its four nodes, and reads the three operators' peak memory.
//! Every figure printed is measured in this run; waits are on conditions, with deadlines.
//! May touch: the testbed's API server (the CRDs, one fresh namespace per run), Kafka topics,
//! ACLs, SCRAM credentials and quotas named with the run's unique prefix, operator child
//! processes it starts; `bench stack` also namespace `oxbow-bench`, ClusterRoleBindings
//! `*-oxbow-bench` and the bundle's CRDs and ClusterRoles (left in place). It removes all of them
//! at the end, also when a phase fails.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt::Debug,
    future::Future,
    panic::AssertUnwindSafe,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use e2e::{
    env::TestEnv,
    objects::{TestNamespace, install_crds},
    operator::{Metrics, OperatorEnv, OperatorProcess},
};
use futures::{FutureExt, StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use oxbow_runtime::kafka::{
    KafkaConnection,
    admin::{AclBindingFilter, ConfigOp, KafkaAdmin, NewTopicSpec, ScramAlteration},
    protocol::{KafkaProtocolClient, QuotaChange},
};
use prometheus::{Encoder, Registry, TextEncoder};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use shared_crds::{KafkaTopic, KafkaTopicSpec, KafkaUser, condition::is_ready, labels};
use tokio::sync::watch;

/// The `oxbow.rs/cluster` label of the bench's resources and the operators' `OXBOW_CLUSTER`.
const CLUSTER: &str = "bench";
/// Deadline of one admin request of the bench's own clients.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Topics per describe request when checking Kafka (the operator uses the same size).
const DESCRIBE_CHUNK: usize = 500;
/// Topics per create / alter / delete request of the floor (Kafka accepts more; 1000 keeps
/// each request well inside the admin timeout).
const FLOOR_BATCH: usize = 1000;
/// Topics per incremental_alter_configs request of the floor. The broker applies one large
/// config change much more slowly than several smaller ones, unlike creates and deletes, which
/// are fastest in one request. Measured here for 1000 topics (until Kafka showed the change):
/// 1 request of 1000: 8.5 s, 2 of 500: 4.3 s, 4 of 250: 3.5 s, 10 of 100: 3.5 s; creates
/// took 1.5 s in 1 request and 14.8 s in 10. The floor uses the fastest batching of each.
const FLOOR_ALTER_BATCH: usize = 250;
/// Pause between two rounds of checking Kafka: the resolution of Kafka-side end times.
const KAFKA_POLL: Duration = Duration::from_millis(250);
/// Pause between two reads of an operator's `/metrics` while waiting on a counter.
const METRICS_POLL: Duration = Duration::from_millis(100);
/// How long an operator gets to list everything and pass `/readyz`.
const READY_DEADLINE: Duration = Duration::from_secs(180);
/// How long cleanup waits for Kafka and the namespace to be empty.
const CLEANUP_DEADLINE: Duration = Duration::from_secs(300);
/// The config key the topic bench sets and changes, and its two values.
const CONFIG_KEY: &str = "retention.ms";
const CONFIG_BEFORE: u64 = 3_600_000;
const CONFIG_AFTER: u64 = 7_200_000;
/// Admin API labels of the user operator's Kafka writes.
const USER_WRITE_APIS: &[&str] = &[
    "alter_user_scram_credentials",
    "create_acls",
    "delete_acls",
    "alter_client_quotas",
];

#[derive(Parser)]
#[command(
    about = "Benchmarks of the Oxbow operators against the running testbed (source the testbed's env.sh first)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create, change and delete N KafkaTopics through the topic operator; the floor; latency.
    Topics(TopicsArgs),
    /// N KafkaUsers through the user operator; the cost of one full resync.
    Users(UsersArgs),
    /// N Kafka clusters of three nodes through the cluster operator: time and peak memory.
    Clusters(ClustersArgs),
    /// Oxbow installed from manifests/install/, the example cluster run by the node agent
    /// (`testbed up --nodes 1`): time to Ready, a 4-node rolling restart, operators' peak memory.
    Stack(StackArgs),
    /// Remove what a killed run left behind: Kafka topics, ACLs, SCRAM credentials and quotas
    /// named with its prefix, and (if given) its namespace with its KafkaTopics and KafkaUsers.
    Cleanup(CleanupArgs),
}

#[derive(Args)]
struct CleanupArgs {
    /// The run's prefix as the run printed it, `bench-<hex>-`.
    #[arg(long)]
    prefix: String,
    /// The run's namespace.
    #[arg(long)]
    namespace: Option<String>,
}

#[derive(Args)]
struct TopicsArgs {
    /// Number of KafkaTopics. Kafka must hold them twice over in turn (operator, then floor):
    /// the testbed's single broker (-Xmx512m) went into back-to-back full GCs at about 5,600
    /// partitions in all, so 10,000 needs a broker with a larger heap
    /// (`testbed up --kafka-heap 2g`).
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Kubernetes requests of the bench in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Single-topic latency samples.
    #[arg(long, default_value_t = 20)]
    latency_samples: usize,
    /// The operator's OXBOW_KAFKA_POLL_INTERVAL_SECONDS.
    #[arg(long, default_value_t = 10)]
    poll_seconds: u64,
    /// Topics per create and delete request of the floor's admin client (at most 1000).
    #[arg(long, default_value_t = FLOOR_BATCH)]
    floor_batch: usize,
    /// Topics per incremental_alter_configs request of the floor (at most 1000).
    #[arg(long, default_value_t = FLOOR_ALTER_BATCH)]
    floor_alter_batch: usize,
    /// Measure only the floor (no operator, no latency).
    #[arg(long)]
    floor_only: bool,
    /// An extra setting of the operator process, `NAME=VALUE` (repeatable), e.g.
    /// `OXBOW_KUBE_WRITE_CONCURRENCY=64`.
    #[arg(long = "operator-env", value_parser = parse_assignment)]
    operator_env: Vec<(String, String)>,
    /// The broker's `log.dirs` folder, when it is on this machine: before the floor creates its
    /// topics, wait until Kafka has removed the files of the topics deleted before (their
    /// `*-delete` folders), so 2×N partitions never hold files at once (the testbed broker's
    /// open-file limit is 20,000).
    #[arg(long)]
    kafka_data_dir: Option<PathBuf>,
    /// Deadline of each phase.
    #[arg(long, default_value_t = 1200)]
    phase_deadline_seconds: u64,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct ClustersArgs {
    /// Number of Kafka clusters (three nodes each).
    #[arg(long, default_value_t = 10)]
    count: usize,
    /// Deadline of each phase.
    #[arg(long, default_value_t = 600)]
    deadline_seconds: u64,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct StackArgs {
    /// Number of runs; each creates the example cluster, rolls it and deletes it.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Deadline of the Kafka becoming Ready after the apply.
    #[arg(long, default_value_t = 600)]
    ready_deadline_seconds: u64,
    /// Deadline of the rolling restart of all nodes.
    #[arg(long, default_value_t = 900)]
    roll_deadline_seconds: u64,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct UsersArgs {
    /// Number of KafkaUsers (half scram-sha-512, half tls).
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Kubernetes requests of the bench in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// The operator's OXBOW_FULL_RECONCILIATION_INTERVAL_SECONDS.
    #[arg(long, default_value_t = 20)]
    full_resync_seconds: u64,
    /// Deadline of each phase.
    #[arg(long, default_value_t = 1200)]
    phase_deadline_seconds: u64,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// `NAME=VALUE` of `--operator-env`.
fn parse_assignment(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("{s:?}: expected NAME=VALUE")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Topics(args) => topics::run(args).await,
        Command::Users(args) => users::run(args).await,
        Command::Clusters(args) => clusters::run(args).await,
        Command::Stack(args) => stack::run(args).await,
        Command::Cleanup(args) => cleanup(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `bench cleanup`: what the end of a run does, for a run that never got there.
async fn cleanup(args: CleanupArgs) -> Result<()> {
    let hex = args
        .prefix
        .strip_prefix("bench-")
        .and_then(|p| p.strip_suffix('-'))
        .unwrap_or_default();
    if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!(
            "--prefix must be a run's prefix, bench-<hex>-, not {:?}",
            args.prefix
        );
    }
    let env = TestEnv::from_env()?;
    let client = env.kube_client().await?;
    let (observer, _) = admin_client(&env)?;
    let run = Run {
        env,
        client,
        namespace: args.namespace.clone().unwrap_or_default(),
        prefix: args.prefix.clone(),
        observer,
    };
    clean_kafka_topics(&run.observer, &run.prefix).await?;
    users::clean_kafka(&run, &format!("{}u-", run.prefix)).await?;
    if args.namespace.is_some() {
        let topics: Api<KafkaTopic> = Api::namespaced(run.client.clone(), &run.namespace);
        let users: Api<KafkaUser> = Api::namespaced(run.client.clone(), &run.namespace);
        force_delete_all(&topics).await?;
        force_delete_all(&users).await?;
        run.delete_namespace().await?;
    }
    println!("cleanup of {} done", args.prefix);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// What both benchmarks share
// ---------------------------------------------------------------------------------------------

/// One run's testbed access, namespace and unique name prefix.
struct Run {
    env: TestEnv,
    client: Client,
    namespace: String,
    /// `bench-<unique>-`: every Kafka topic and user of the run starts with it.
    prefix: String,
    /// The bench's own admin client for checks and cleanup (never counted as operator work).
    observer: KafkaAdmin,
}

impl Run {
    async fn start(kind: &str) -> Result<Run> {
        let env = TestEnv::from_env()?;
        let client = env.kube_client().await?;
        install_crds(&client).await?;
        let ns = TestNamespace::create(&client, &format!("bench-{kind}"), &[]).await?;
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let prefix = format!(
            "bench-{:x}-",
            (nanos as u64 ^ u64::from(std::process::id()) << 24) & 0xff_ffff_ffff
        );
        let (observer, _) = admin_client(&env)?;
        Ok(Run {
            env,
            client,
            namespace: ns.name,
            prefix,
            observer,
        })
    }

    /// Deletes the namespace and waits until it is gone.
    async fn delete_namespace(&self) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        match api.delete(&self.namespace, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
            Err(e) => return Err(e).context("deleting the namespace"),
        }
        let start = Instant::now();
        loop {
            match api.get_opt(&self.namespace).await {
                Ok(None) => return Ok(()),
                Ok(Some(_)) | Err(_) if start.elapsed() < CLEANUP_DEADLINE => {
                    tokio::time::sleep(Duration::from_millis(500)).await
                }
                Ok(Some(_)) => bail!(
                    "namespace {} still terminating after {CLEANUP_DEADLINE:?}",
                    self.namespace
                ),
                Err(e) => return Err(e).context("reading the namespace"),
            }
        }
    }
}

/// The testbed's SCRAM super-user connection.
fn admin_connection(env: &TestEnv) -> KafkaConnection {
    env.scram_admin_connection()
}

/// An admin client with its own registry, so its requests can be counted apart.
fn admin_client(env: &TestEnv) -> Result<(KafkaAdmin, Registry)> {
    let registry = Registry::new();
    let admin = KafkaAdmin::new(&admin_connection(env), &registry, ADMIN_TIMEOUT)?;
    Ok((admin, registry))
}

/// A registry's current samples, in the same form as an operator's `/metrics`.
fn registry_metrics(registry: &Registry) -> Result<Metrics> {
    let mut text = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut text)?;
    Metrics::parse(std::str::from_utf8(&text)?)
}

/// `oxbow_kafka_admin_requests_total` summed by `api` (both outcomes).
fn admin_requests(m: &Metrics) -> BTreeMap<String, f64> {
    let mut by_api = BTreeMap::new();
    for s in m
        .samples
        .iter()
        .filter(|s| s.name == "oxbow_kafka_admin_requests_total")
    {
        let api = s.labels.get("api").cloned().unwrap_or_default();
        *by_api.entry(api).or_insert(0.0) += s.value;
    }
    by_api
}

/// Requests per API made between two readings (APIs with none left out).
fn requests_between(before: &Metrics, after: &Metrics) -> BTreeMap<String, u64> {
    let before = admin_requests(before);
    admin_requests(after)
        .into_iter()
        .map(|(api, n)| {
            let delta = n - before.get(&api).copied().unwrap_or(0.0);
            (api, delta.round() as u64)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn total(by_api: &BTreeMap<String, u64>) -> u64 {
    by_api.values().sum()
}

fn show_by_api(by_api: &BTreeMap<String, u64>) -> String {
    if by_api.is_empty() {
        return "none".into();
    }
    by_api
        .iter()
        .map(|(api, n)| format!("{api}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A `/proc/<pid>/status` field in KiB (`VmHWM`: peak resident set; `VmRSS`: current).
fn proc_status_kib(pid: u32, field: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .with_context(|| format!("{path} has no {field}"))?;
    line.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("unreadable {line:?}"))
}

/// Peak and current RSS of a running operator, read from `/proc` (before it is stopped).
fn peak_rss(op: &OperatorProcess) -> Result<Memory> {
    let pid = op.pid().context("the operator is not running")?;
    Ok(Memory {
        peak_rss_kib: proc_status_kib(pid, "VmHWM")?,
        rss_kib: proc_status_kib(pid, "VmRSS")?,
    })
}

#[derive(Debug, Clone, Serialize)]
struct Memory {
    peak_rss_kib: u64,
    rss_kib: u64,
}

/// The machine the figures were measured on.
#[derive(Debug, Clone, Serialize)]
struct Machine {
    cpus: usize,
    loadavg_at_start: String,
    loadavg_at_end: String,
    note: &'static str,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unreadable ({e})"))
}

fn machine(loadavg_at_start: String) -> Machine {
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg_at_start,
        loadavg_at_end: loadavg(),
        note: "cores shared with the testbed (API server, etcd, Kafka JVM) and other engineers' builds and tests",
    }
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Runs `body`, turning a panic or Ctrl-C into an error so that cleanup still runs.
async fn guarded<T>(body: impl Future<Output = Result<T>>) -> Result<T> {
    let body = AssertUnwindSafe(body).catch_unwind();
    tokio::select! {
        r = body => match r {
            Ok(r) => r,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(anyhow!("panicked: {msg}"))
            }
        },
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted (Ctrl-C)")),
    }
}

fn write_json<T: Serialize>(path: &Option<PathBuf>, value: &T) -> Result<()> {
    if let Some(path) = path {
        let text = serde_json::to_string_pretty(value)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        println!("summary written to {}", path.display());
    }
    Ok(())
}

/// Retries a Kubernetes write on throttling, server errors and transport errors (a busy
/// two-core API server times out now and then); `retried` tells the call it is a retry, so an
/// `AlreadyExists` / `NotFound` from the first, timed-out attempt can count as done.
async fn kube_retry<T, F, Fut>(what: &str, mut call: F) -> Result<T>
where
    F: FnMut(bool) -> Fut,
    Fut: Future<Output = kube::Result<T>>,
{
    let mut attempt = 0u32;
    loop {
        match call(attempt > 0).await {
            Ok(v) => return Ok(v),
            Err(kube::Error::Api(e)) if e.code < 500 && e.code != 429 => {
                return Err(kube::Error::Api(e)).context(what.to_owned());
            }
            Err(e) if attempt >= 5 => return Err(e).context(what.to_owned()),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200) * attempt).await;
            }
        }
    }
}

/// Creates the objects with at most `concurrency` requests in flight.
async fn create_all<K>(api: &Api<K>, objects: Vec<K>, concurrency: usize) -> Result<()>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
{
    stream::iter(objects)
        .map(|o| {
            let api = api.clone();
            async move {
                let name = o.name_any();
                kube_retry(&format!("creating {name}"), |retried| {
                    let (api, o) = (api.clone(), o.clone());
                    async move {
                        match api.create(&PostParams::default(), &o).await {
                            Err(kube::Error::Api(e)) if retried && e.code == 409 => Ok(()),
                            r => r.map(|_| ()),
                        }
                    }
                })
                .await
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Deletes the named objects (absent ones are fine) with at most `concurrency` in flight.
async fn delete_all<K>(api: &Api<K>, names: Vec<String>, concurrency: usize) -> Result<()>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    stream::iter(names)
        .map(|name| {
            let api = api.clone();
            async move {
                kube_retry(&format!("deleting {name}"), |_| {
                    let (api, name) = (api.clone(), name.clone());
                    async move {
                        match api.delete(&name, &DeleteParams::default()).await {
                            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                            r => r.map(|_| ()),
                        }
                    }
                })
                .await
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Removes every finalizer of every object of the kind in the namespace, then deletes them:
/// cleanup when no operator is left to release them.
async fn force_delete_all<K>(api: &Api<K>) -> Result<usize>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let objects = api.list(&ListParams::default()).await?;
    let names: Vec<String> = objects.items.iter().map(|o| o.name_any()).collect();
    let finalized: Vec<String> = objects
        .items
        .iter()
        .filter(|o| !o.finalizers().is_empty())
        .map(|o| o.name_any())
        .collect();
    stream::iter(finalized)
        .map(|name| {
            let api = api.clone();
            async move {
                kube_retry(&format!("removing the finalizers of {name}"), |_| {
                    let (api, name) = (api.clone(), name.clone());
                    async move {
                        let patch = json!({ "metadata": { "finalizers": null } });
                        match api
                            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await
                        {
                            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                            r => r.map(|_| ()),
                        }
                    }
                })
                .await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    delete_all(api, names.clone(), 16).await?;
    Ok(names.len())
}

// ---------------------------------------------------------------------------------------------
// Watching resources' readiness
// ---------------------------------------------------------------------------------------------

/// What the bench needs of one watched resource.
#[derive(Debug, Clone, Copy, Default)]
struct Obs {
    generation: Option<i64>,
    observed_generation: Option<i64>,
    ready: bool,
    /// When the watch first delivered it `Ready=True` for its current generation.
    synced_at: Option<Instant>,
}

impl Obs {
    fn synced(&self) -> bool {
        self.ready && self.generation.is_some() && self.observed_generation == self.generation
    }
    fn synced_at_least(&self, generation: i64) -> bool {
        self.ready && self.observed_generation.is_some_and(|g| g >= generation)
    }
}

#[derive(Debug, Default)]
struct Seen {
    objects: HashMap<String, Obs>,
    listed: bool,
    last_error: Option<String>,
}

/// A watch of one kind in the namespace, kept as a map of [`Obs`]; waiters are woken on every
/// event.
struct Tracker {
    seen: Arc<Mutex<Seen>>,
    changed: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Tracker {
    fn start<K>(api: Api<K>, obs: fn(&K) -> Obs) -> Tracker
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let (tx, rx) = watch::channel(0u64);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = seen.clone();
        let task = tokio::spawn(async move {
            let events = watcher(api, watcher::Config::default()).default_backoff();
            let mut events = std::pin::pin!(events);
            // Names delivered since the (re)list began: what the list did not return is gone.
            let mut relisting: Option<HashSet<String>> = None;
            while let Some(event) = events.next().await {
                let now = Instant::now();
                {
                    let mut guard = shared.lock().expect("tracker lock");
                    let s: &mut Seen = &mut guard;
                    let apply = |s: &mut Seen, o: &K| {
                        let mut new = obs(o);
                        let old = s.objects.get(&o.name_any()).copied().unwrap_or_default();
                        if new.synced() {
                            new.synced_at = if old.synced() && old.generation == new.generation {
                                old.synced_at
                            } else {
                                Some(now)
                            };
                        }
                        s.objects.insert(o.name_any(), new);
                    };
                    match event {
                        Ok(watcher::Event::Init) => relisting = Some(HashSet::new()),
                        Ok(watcher::Event::InitApply(o)) => {
                            if let Some(r) = relisting.as_mut() {
                                r.insert(o.name_any());
                            }
                            apply(s, &o);
                        }
                        Ok(watcher::Event::InitDone) => {
                            if let Some(keep) = relisting.take() {
                                s.objects.retain(|k, _| keep.contains(k));
                            }
                            s.listed = true;
                        }
                        Ok(watcher::Event::Apply(o)) => apply(s, &o),
                        Ok(watcher::Event::Delete(o)) => {
                            s.objects.remove(&o.name_any());
                        }
                        Err(e) => s.last_error = Some(e.to_string()),
                    }
                }
                tx.send_modify(|v| *v += 1);
            }
        });
        Tracker {
            seen,
            changed: rx,
            task,
        }
    }

    /// Waits until `check` returns `Ok` (checked on every watch event) or the deadline passes.
    async fn wait<T>(
        &self,
        what: &str,
        deadline: Duration,
        check: impl Fn(&Seen) -> Result<T, String>,
    ) -> Result<T> {
        let mut changed = self.changed.clone();
        let end = tokio::time::Instant::now() + deadline;
        loop {
            changed.borrow_and_update();
            let last = {
                let seen = self.seen.lock().expect("tracker lock");
                match check(&seen) {
                    Ok(v) => return Ok(v),
                    Err(last) => match &seen.last_error {
                        Some(e) => format!("{last} (last watch error: {e})"),
                        None => last,
                    },
                }
            };
            match tokio::time::timeout_at(end, changed.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => bail!("{what}: the watch ended; last seen: {last}"),
                Err(_) => bail!("{what}: not within {deadline:?}; last seen: {last}"),
            }
        }
    }

    async fn wait_listed(&self) -> Result<()> {
        self.wait("initial list", Duration::from_secs(60), |s| {
            s.listed.then_some(()).ok_or_else(|| "not listed".into())
        })
        .await
    }
}

fn topic_obs(kt: &KafkaTopic) -> Obs {
    let status = kt.status.as_ref();
    Obs {
        generation: kt.metadata.generation,
        observed_generation: status.and_then(|s| s.observed_generation),
        ready: status
            .and_then(|s| s.conditions.as_deref())
            .is_some_and(is_ready),
        synced_at: None,
    }
}

fn user_obs(ku: &KafkaUser) -> Obs {
    let status = ku.status.as_ref();
    Obs {
        generation: ku.metadata.generation,
        observed_generation: status.and_then(|s| s.observed_generation),
        ready: status
            .and_then(|s| s.conditions.as_deref())
            .is_some_and(is_ready),
        synced_at: None,
    }
}

/// `Ok` when every name satisfies `ok`; else how many do not, with one example.
fn all_of(
    seen: &Seen,
    names: &[String],
    ok: impl Fn(&str, Option<&Obs>) -> bool,
) -> Result<(), String> {
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !ok(n, seen.objects.get(*n)))
        .collect();
    match missing.first() {
        None => Ok(()),
        Some(first) => Err(format!(
            "{} of {} not yet, e.g. {first}: {:?}",
            missing.len(),
            names.len(),
            seen.objects.get(*first)
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Waiting on Kafka
// ---------------------------------------------------------------------------------------------

/// What the bench waits for Kafka to show about a set of topics.
enum Expect {
    /// The topic exists and its override `key` is `value`.
    Config { key: &'static str, value: String },
    /// The topic does not exist.
    Absent,
}

/// When Kafka showed the expected state for every topic, and what finding out cost: the
/// end time is only as precise as one round of describe requests.
#[derive(Debug, Clone, Copy)]
struct KafkaWait {
    done: Instant,
    rounds: u32,
    slowest_round: Duration,
}

/// Re-describes the topics not yet as expected, in batches, every [`KAFKA_POLL`], until all
/// are or the deadline passes. Returns when the last one was seen as expected.
async fn wait_kafka(
    admin: &KafkaAdmin,
    names: &[String],
    expect: &Expect,
    deadline: Duration,
) -> Result<KafkaWait> {
    let start = Instant::now();
    let mut pending: Vec<String> = names.to_vec();
    let mut last = String::new();
    let mut rounds = 0;
    let mut slowest_round = Duration::ZERO;
    loop {
        let round = Instant::now();
        rounds += 1;
        let mut still = Vec::new();
        for chunk in pending.chunks(DESCRIBE_CHUNK) {
            let mut done: HashSet<String> = HashSet::new();
            match expect {
                Expect::Config { key, value } => {
                    match admin.describe_topic_configs(chunk.iter().cloned()).await {
                        Ok(items) => {
                            for (name, r) in items {
                                match r {
                                    Ok(config) if config.get(*key) == Some(value) => {
                                        done.insert(name);
                                    }
                                    Ok(config) => {
                                        last = format!("{name}: {key}={:?}", config.get(*key))
                                    }
                                    Err(e) => last = format!("{name}: {e}"),
                                }
                            }
                        }
                        Err(e) => last = format!("describe_configs: {e}"),
                    }
                }
                Expect::Absent => match admin.describe_topics(chunk.iter().cloned()).await {
                    Ok(items) => {
                        for (name, r) in items {
                            match r {
                                Err(e)
                                    if e.kafka_failure().is_some_and(|f| f.is_unknown_topic()) =>
                                {
                                    done.insert(name);
                                }
                                Ok(_) => last = format!("{name} still exists"),
                                Err(e) => last = format!("{name}: {e}"),
                            }
                        }
                    }
                    Err(e) => last = format!("describe_topics: {e}"),
                },
            }
            still.extend(chunk.iter().filter(|n| !done.contains(*n)).cloned());
        }
        slowest_round = slowest_round.max(round.elapsed());
        if still.is_empty() {
            return Ok(KafkaWait {
                done: Instant::now(),
                rounds,
                slowest_round,
            });
        }
        if start.elapsed() > deadline {
            bail!(
                "{} of {} topics not as expected in Kafka within {deadline:?}; last: {last}",
                still.len(),
                names.len()
            );
        }
        pending = still;
        tokio::time::sleep(KAFKA_POLL).await;
    }
}

/// Waits until no folder in the broker's data folder starts with `prefix` and ends with
/// `-delete`: Kafka removes a deleted partition's files only after `file.delete.delay.ms`, and
/// until then they hold file descriptors and memory maps of the broker.
async fn wait_deleted_files(dir: &Path, prefix: &str, deadline: Duration) -> Result<Duration> {
    let start = Instant::now();
    loop {
        let pending = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with(prefix) && name.ends_with("-delete")
            })
            .count();
        if pending == 0 {
            return Ok(start.elapsed());
        }
        if start.elapsed() > deadline {
            bail!(
                "{pending} deleted partitions of {prefix}* still on disk in {} after {deadline:?}",
                dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Kafka topics whose names start with `prefix`.
async fn kafka_topics_with_prefix(admin: &KafkaAdmin, prefix: &str) -> Result<Vec<String>> {
    Ok(admin
        .list_topics()
        .await?
        .into_iter()
        .map(|t| t.name)
        .filter(|n| n.starts_with(prefix))
        .collect())
}

/// Deletes every Kafka topic whose name starts with `prefix`, listing again until none is left:
/// creations Kafka accepted before a failure may still be arriving while the first ones go.
async fn clean_kafka_topics(admin: &KafkaAdmin, prefix: &str) -> Result<()> {
    let start = Instant::now();
    loop {
        let left = kafka_topics_with_prefix(admin, prefix).await?;
        if left.is_empty() {
            return Ok(());
        }
        if start.elapsed() > CLEANUP_DEADLINE {
            bail!(
                "{} Kafka topics {prefix}* still there after {CLEANUP_DEADLINE:?}",
                left.len()
            );
        }
        println!("cleanup: deleting {} leftover Kafka topics", left.len());
        delete_kafka_topics(admin, &left).await?;
    }
}

/// Deletes the Kafka topics in batches and waits until they are gone.
async fn delete_kafka_topics(admin: &KafkaAdmin, names: &[String]) -> Result<()> {
    for chunk in names.chunks(FLOOR_BATCH) {
        for (name, r) in admin.delete_topics(chunk.iter().cloned()).await? {
            if let Err(e) = r
                && !e.kafka_failure().is_some_and(|f| f.is_unknown_topic())
            {
                bail!("deleting topic {name}: {e}");
            }
        }
    }
    wait_kafka(admin, names, &Expect::Absent, CLEANUP_DEADLINE).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// bench topics
// ---------------------------------------------------------------------------------------------

#[path = "../bench/clusters.rs"]
mod clusters;

#[path = "../bench/stack.rs"]
mod stack;

mod topics {
    use super::*;

    #[derive(Debug, Clone, Serialize)]
    struct Phase {
        name: String,
        seconds: f64,
        /// Of a change: when Kafka showed it everywhere, and when every status did.
        #[serde(skip_serializing_if = "Option::is_none")]
        kafka_seconds: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        status_seconds: Option<f64>,
        /// When the last write request returned: the bench's Kubernetes writes for the
        /// operator, the admin client's requests for the floor.
        #[serde(skip_serializing_if = "Option::is_none")]
        requests_seconds: Option<f64>,
        /// Rounds of describe requests until Kafka showed the change, and the slowest round
        /// (the precision of the Kafka-side end time).
        #[serde(skip_serializing_if = "Option::is_none")]
        kafka_check_rounds: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        kafka_check_slowest_round_seconds: Option<f64>,
        admin_requests: u64,
        admin_requests_by_api: BTreeMap<String, u64>,
    }

    #[derive(Debug, Clone, Serialize)]
    struct Latency {
        samples: usize,
        samples_ms: Vec<f64>,
        median_ms: f64,
        min_ms: f64,
        max_ms: f64,
    }

    #[derive(Debug, Clone, Serialize)]
    struct Report {
        benchmark: &'static str,
        count: usize,
        kube_concurrency: usize,
        operator_poll_interval_seconds: u64,
        operator: Vec<Phase>,
        operator_memory: Option<Memory>,
        floor: Vec<Phase>,
        /// Topics per request of the floor: create and delete, incremental_alter_configs.
        floor_batch: usize,
        floor_alter_batch: usize,
        /// operator seconds / floor seconds, per phase.
        ratio: BTreeMap<String, f64>,
        latency: Option<Latency>,
        machine: Machine,
    }

    pub(super) async fn run(args: TopicsArgs) -> Result<()> {
        let load_start = loadavg();
        let run = Run::start("topics").await?;
        println!(
            "bench topics: count={} namespace={} prefix={} concurrency={} poll={}s",
            args.count, run.namespace, run.prefix, args.concurrency, args.poll_seconds
        );
        let mut report = Report {
            benchmark: "topics",
            count: args.count,
            kube_concurrency: args.concurrency,
            operator_poll_interval_seconds: args.poll_seconds,
            operator: Vec::new(),
            operator_memory: None,
            floor: Vec::new(),
            floor_batch: args.floor_batch.clamp(1, FLOOR_BATCH),
            floor_alter_batch: args.floor_alter_batch.clamp(1, FLOOR_BATCH),
            ratio: BTreeMap::new(),
            latency: None,
            machine: machine(load_start.clone()),
        };
        let outcome = guarded(body(&run, &args, &mut report)).await;
        let cleanup = cleanup(&run).await;
        report.machine = machine(load_start);
        if outcome.is_ok() {
            print_summary(&report);
            write_json(&args.json, &report)?;
        }
        match (outcome, cleanup) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(e), Ok(())) => Err(e),
            (Ok(()), Err(c)) => Err(c.context("cleanup failed")),
            (Err(e), Err(c)) => Err(e.context(format!("cleanup failed too: {c:#}"))),
        }
    }

    fn topic_names(prefix: &str, count: usize) -> Vec<String> {
        (0..count).map(|i| format!("{prefix}{i:05}")).collect()
    }

    fn kafka_topic(name: &str) -> KafkaTopic {
        let mut kt = KafkaTopic::new(
            name,
            KafkaTopicSpec {
                topic_name: None,
                partitions: Some(1),
                replicas: Some(1),
                config: Some(BTreeMap::from([(
                    CONFIG_KEY.to_string(),
                    Value::from(CONFIG_BEFORE),
                )])),
            },
        );
        kt.metadata.labels = Some(BTreeMap::from([(
            labels::CLUSTER.to_string(),
            CLUSTER.to_string(),
        )]));
        kt
    }

    /// A phase from `start` until the later of Kafka showing the change (`kafka`) and every
    /// status showing it (`status`), or until `end` when neither is given.
    fn phase(
        name: &str,
        start: Instant,
        end: Instant,
        before: &Metrics,
        after: &Metrics,
        kafka: Option<KafkaWait>,
        status: Option<Instant>,
    ) -> Phase {
        let by_api = requests_between(before, after);
        let end = [kafka.map(|k| k.done), status]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(end);
        Phase {
            name: name.into(),
            seconds: secs(end - start),
            kafka_seconds: status.and(kafka).map(|k| secs(k.done - start)),
            status_seconds: status.map(|s| secs(s - start)),
            requests_seconds: None,
            kafka_check_rounds: kafka.map(|k| k.rounds),
            kafka_check_slowest_round_seconds: kafka.map(|k| secs(k.slowest_round)),
            admin_requests: total(&by_api),
            admin_requests_by_api: by_api,
        }
    }

    /// Seconds from the last write request's return to the end of the phase.
    fn after_writes(p: &Phase) -> Option<f64> {
        p.requests_seconds.map(|r| (p.seconds - r).max(0.0))
    }

    fn print_phase(who: &str, p: &Phase) {
        let mut parts = Vec::new();
        if let Some(r) = p.requests_seconds {
            parts.push(format!("writes returned at {r:.2} s"));
        }
        if let Some(k) = p.kafka_seconds {
            parts.push(format!("Kafka all changed at {k:.2} s"));
        }
        if let Some(s) = p.status_seconds {
            parts.push(format!("statuses at {s:.2} s"));
        }
        let detail = if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        };
        let check = match (p.kafka_check_rounds, p.kafka_check_slowest_round_seconds) {
            (Some(n), Some(slowest)) => {
                format!(" [Kafka checked in {n} round(s), slowest {slowest:.2} s]")
            }
            _ => String::new(),
        };
        println!(
            "{who} {:<7} {:>9.2} s{detail}{check}; Kafka admin requests {} [{}]",
            p.name,
            p.seconds,
            p.admin_requests,
            show_by_api(&p.admin_requests_by_api)
        );
    }

    async fn body(run: &Run, args: &TopicsArgs, report: &mut Report) -> Result<()> {
        if !args.floor_only {
            operator_phases(run, args, report).await?;
        }
        floor_phases(run, args, report).await?;
        for (o, f) in report.operator.iter().zip(&report.floor) {
            if f.seconds > 0.0 {
                let ratio = (o.seconds / f.seconds * 100.0).round() / 100.0;
                report.ratio.insert(o.name.clone(), ratio);
            }
        }
        Ok(())
    }

    async fn operator_phases(run: &Run, args: &TopicsArgs, report: &mut Report) -> Result<()> {
        let deadline = Duration::from_secs(args.phase_deadline_seconds);
        let n = args.count;
        let op_prefix = format!("{}op-", run.prefix);
        let api: Api<KafkaTopic> = Api::namespaced(run.client.clone(), &run.namespace);
        let tracker = Tracker::start(api.clone(), topic_obs);
        tracker.wait_listed().await?;

        let mut env = OperatorEnv::topic_operator_scram(&run.env, &run.namespace, CLUSTER)
            .set("OXBOW_TOPIC_INCLUDE_PATTERN", format!("{op_prefix}.*"))
            .set(
                "OXBOW_KAFKA_POLL_INTERVAL_SECONDS",
                args.poll_seconds.to_string(),
            );
        for (name, value) in &args.operator_env {
            env = env.set(name, value);
        }
        if !args.operator_env.is_empty() {
            let names: Vec<&str> = args.operator_env.iter().map(|(n, _)| n.as_str()).collect();
            println!("operator settings added: {}", names.join(", "));
        }
        let mut op = OperatorProcess::start("bench-topic-operator", "topic-operator", env)?;
        op.wait_ready(READY_DEADLINE).await?;
        println!("topic operator ready; log {}", op.log_path().display());
        let names = topic_names(&op_prefix, n);

        // (a) create N KafkaTopics, until all are Ready for their generation.
        let m0 = op.metrics().await?;
        let start = Instant::now();
        create_all(
            &api,
            names.iter().map(|n| kafka_topic(n)).collect(),
            args.concurrency,
        )
        .await?;
        let submitted = start.elapsed();
        tracker
            .wait("all KafkaTopics Ready", deadline, |s| {
                all_of(s, &names, |_, o| o.is_some_and(Obs::synced))
            })
            .await?;
        let end = Instant::now();
        let m1 = op.metrics().await?;
        let mut p = phase("create", start, end, &m0, &m1, None, None);
        p.requests_seconds = Some(secs(submitted));
        print_phase("operator", &p);
        report.operator.push(p);

        // (b) change the config of all N, until Kafka shows the new value for all and every
        // status reports the new generation.
        let start = Instant::now();
        let change = json!({ "spec": { "config": { CONFIG_KEY: CONFIG_AFTER } } });
        let generations: HashMap<String, i64> = stream::iter(names.clone())
            .map(|name| {
                let (api, change) = (api.clone(), change.clone());
                async move {
                    let kt = kube_retry(&format!("patching {name}"), |_| {
                        let (api, name, change) = (api.clone(), name.clone(), change.clone());
                        async move {
                            api.patch(&name, &PatchParams::default(), &Patch::Merge(&change))
                                .await
                        }
                    })
                    .await?;
                    let generation = kt.metadata.generation.context("no generation")?;
                    Ok::<_, anyhow::Error>((name, generation))
                }
            })
            .buffer_unordered(args.concurrency.max(1))
            .try_collect()
            .await?;
        let submitted = start.elapsed();
        let expect_after = Expect::Config {
            key: CONFIG_KEY,
            value: CONFIG_AFTER.to_string(),
        };
        let (kafka_done, status_done) = tokio::try_join!(
            wait_kafka(&run.observer, &names, &expect_after, deadline),
            tracker.wait("all statuses at the new generation", deadline, |s| {
                all_of(s, &names, |name, o| {
                    let generation = generations.get(name).copied().unwrap_or(i64::MAX);
                    o.is_some_and(|o| o.synced_at_least(generation))
                })
                .map(|()| Instant::now())
            }),
        )?;
        let m2 = op.metrics().await?;
        let mut p = phase(
            "change",
            start,
            status_done,
            &m1,
            &m2,
            Some(kafka_done),
            Some(status_done),
        );
        p.requests_seconds = Some(secs(submitted));
        print_phase("operator", &p);
        report.operator.push(p);

        // (c) delete all N, until Kafka has none of the topics and the KafkaTopics are gone.
        let start = Instant::now();
        delete_all(&api, names.clone(), args.concurrency).await?;
        let submitted = start.elapsed();
        let (kafka_done, status_done) = tokio::try_join!(
            wait_kafka(&run.observer, &names, &Expect::Absent, deadline),
            tracker.wait("all KafkaTopics gone", deadline, |s| {
                all_of(s, &names, |_, o| o.is_none()).map(|()| Instant::now())
            }),
        )?;
        let m3 = op.metrics().await?;
        let mut p = phase(
            "delete",
            start,
            status_done,
            &m2,
            &m3,
            Some(kafka_done),
            Some(status_done),
        );
        p.requests_seconds = Some(secs(submitted));
        print_phase("operator", &p);
        report.operator.push(p);

        // Single-topic latency: create one KafkaTopic, time until the watch delivers Ready=True.
        let mut samples = Vec::new();
        for i in 0..args.latency_samples {
            let name = format!("{op_prefix}lat-{i:02}");
            let start = Instant::now();
            kube_retry(&format!("creating {name}"), |retried| {
                let (api, kt) = (api.clone(), kafka_topic(&name));
                async move {
                    match api.create(&PostParams::default(), &kt).await {
                        Err(kube::Error::Api(e)) if retried && e.code == 409 => Ok(()),
                        r => r.map(|_| ()),
                    }
                }
            })
            .await?;
            let ready_at = tracker
                .wait("latency topic Ready", deadline, |s| {
                    match s.objects.get(&name) {
                        Some(o) if o.synced() => o.synced_at.ok_or_else(|| "no time".into()),
                        other => Err(format!("{other:?}")),
                    }
                })
                .await?;
            samples.push(ready_at - start);
            delete_all(&api, vec![name.clone()], 1).await?;
            tracker
                .wait("latency topic gone", deadline, |s| {
                    all_of(s, std::slice::from_ref(&name), |_, o| o.is_none())
                })
                .await?;
        }
        if !samples.is_empty() {
            let latency = latency(&samples);
            println!(
                "operator single-topic create -> Ready: median {:.1} ms, min {:.1} ms, max {:.1} ms ({} samples)",
                latency.median_ms, latency.min_ms, latency.max_ms, latency.samples
            );
            report.latency = Some(latency);
        }

        let memory = peak_rss(&op)?;
        println!(
            "operator memory: peak RSS (VmHWM) {} KiB, RSS now {} KiB",
            memory.peak_rss_kib, memory.rss_kib
        );
        report.operator_memory = Some(memory);
        op.kill9()?;
        Ok(())
    }

    /// The floor: the same N changes by one batched admin client, one request at a time
    /// (creates and deletes in batches of `--floor-batch`, config changes in batches of
    /// `--floor-alter-batch`), each phase timed until Kafka shows the change for every topic.
    async fn floor_phases(run: &Run, args: &TopicsArgs, report: &mut Report) -> Result<()> {
        let deadline = Duration::from_secs(args.phase_deadline_seconds);
        let batch = args.floor_batch.clamp(1, FLOOR_BATCH);
        let alter_batch = args.floor_alter_batch.clamp(1, FLOOR_BATCH);
        let n = args.count;
        let floor_prefix = format!("{}floor-", run.prefix);
        let expect_after = Expect::Config {
            key: CONFIG_KEY,
            value: CONFIG_AFTER.to_string(),
        };
        let (actor, registry) = admin_client(&run.env)?;
        let floor_names: Vec<String> = topic_names(&floor_prefix, n);
        let specs: Vec<NewTopicSpec> = floor_names
            .iter()
            .map(|name| NewTopicSpec {
                name: name.clone(),
                partitions: Some(1),
                replication_factor: Some(1),
                configs: BTreeMap::from([(CONFIG_KEY.to_string(), CONFIG_BEFORE.to_string())]),
            })
            .collect();
        if let Some(dir) = &args.kafka_data_dir {
            let waited = wait_deleted_files(dir, &run.prefix, deadline).await?;
            println!(
                "waited {:.2} s for Kafka to remove the deleted topics' files (not part of any phase)",
                waited.as_secs_f64()
            );
        }
        let f0 = registry_metrics(&registry)?;
        let start = Instant::now();
        for chunk in specs.chunks(batch) {
            for (name, r) in actor.create_topics(chunk).await? {
                r.with_context(|| format!("floor: creating {name}"))?;
            }
        }
        let requests = start.elapsed();
        let expect_before = Expect::Config {
            key: CONFIG_KEY,
            value: CONFIG_BEFORE.to_string(),
        };
        let check = wait_kafka(&run.observer, &floor_names, &expect_before, deadline).await?;
        let f1 = registry_metrics(&registry)?;
        let mut p = phase("create", start, check.done, &f0, &f1, Some(check), None);
        p.requests_seconds = Some(secs(requests));
        print_phase("floor   ", &p);
        report.floor.push(p);

        let start = Instant::now();
        for chunk in floor_names.chunks(alter_batch) {
            let changes = chunk.iter().map(|name| {
                (
                    name.clone(),
                    vec![ConfigOp::Set(
                        CONFIG_KEY.to_string(),
                        CONFIG_AFTER.to_string(),
                    )],
                )
            });
            for (name, r) in actor.incremental_alter_configs(changes).await? {
                r.with_context(|| format!("floor: altering {name}"))?;
            }
        }
        let requests = start.elapsed();
        let check = wait_kafka(&run.observer, &floor_names, &expect_after, deadline).await?;
        let f2 = registry_metrics(&registry)?;
        let mut p = phase("change", start, check.done, &f1, &f2, Some(check), None);
        p.requests_seconds = Some(secs(requests));
        print_phase("floor   ", &p);
        report.floor.push(p);

        let start = Instant::now();
        for chunk in floor_names.chunks(batch) {
            for (name, r) in actor.delete_topics(chunk.iter().cloned()).await? {
                r.with_context(|| format!("floor: deleting {name}"))?;
            }
        }
        let requests = start.elapsed();
        let check = wait_kafka(&run.observer, &floor_names, &Expect::Absent, deadline).await?;
        let f3 = registry_metrics(&registry)?;
        let mut p = phase("delete", start, check.done, &f2, &f3, Some(check), None);
        p.requests_seconds = Some(secs(requests));
        print_phase("floor   ", &p);
        report.floor.push(p);
        Ok(())
    }

    fn latency(samples: &[Duration]) -> Latency {
        let mut ms: Vec<f64> = samples
            .iter()
            .map(|d| (d.as_secs_f64() * 10_000.0).round() / 10.0)
            .collect();
        let samples_ms = ms.clone();
        ms.sort_by(f64::total_cmp);
        let mid = ms.len() / 2;
        let median = if ms.len().is_multiple_of(2) {
            (ms[mid - 1] + ms[mid]) / 2.0
        } else {
            ms[mid]
        };
        Latency {
            samples: ms.len(),
            samples_ms,
            median_ms: median,
            min_ms: ms[0],
            max_ms: ms[ms.len() - 1],
        }
    }

    fn print_summary(r: &Report) {
        println!();
        println!(
            "== bench topics: {} KafkaTopics (1 partition, RF 1, 1 config), {} CPUs, load {} -> {} ==",
            r.count, r.machine.cpus, r.machine.loadavg_at_start, r.machine.loadavg_at_end
        );
        println!(
            "floor: one admin client, one request at a time, {} topics per create/delete request, {} per incremental_alter_configs request",
            r.floor_batch, r.floor_alter_batch
        );
        // The operator's time starts with the bench's first Kubernetes write, so it includes
        // the bench sending N writes through the API server; "after writes" starts when the
        // last of them returned (the part the operator alone decides), shown with its ratio to
        // the same floor.
        println!(
            "{:<8} {:>12} {:>12} {:>8} {:>14} {:>12} {:>14} {:>14}",
            "phase",
            "operator s",
            "floor s",
            "ratio",
            "after writes s",
            "ratio",
            "op requests",
            "floor requests"
        );
        for (i, f) in r.floor.iter().enumerate() {
            let o = r.operator.get(i);
            let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            let after = o.and_then(after_writes);
            println!(
                "{:<8} {:>12} {:>12.2} {:>8} {:>14} {:>12} {:>14} {:>14}",
                f.name,
                or_dash(o.map(|o| format!("{:.2}", o.seconds))),
                f.seconds,
                or_dash(r.ratio.get(&f.name).map(|x| format!("{x:.2}x"))),
                or_dash(after.map(|a| format!("{a:.2}"))),
                or_dash(
                    after
                        .filter(|_| f.seconds > 0.0)
                        .map(|a| format!("{:.2}x", a / f.seconds))
                ),
                or_dash(o.map(|o| o.admin_requests.to_string())),
                f.admin_requests
            );
        }
        if let Some(m) = &r.operator_memory {
            println!("operator peak RSS: {} KiB", m.peak_rss_kib);
        }
        if let Some(l) = &r.latency {
            println!(
                "single-topic latency (create -> Ready, {} samples): median {:.1} ms, min {:.1} ms, max {:.1} ms",
                l.samples, l.median_ms, l.min_ms, l.max_ms
            );
        }
        println!("note: {}", r.machine.note);
    }

    /// Removes whatever the run left: KafkaTopics (finalizers dropped when no operator is
    /// left), Kafka topics with the run's prefix, the namespace.
    /// Kafka first: the operator is stopped by now, and a broker that a failed run left
    /// struggling is relieved soonest.
    async fn cleanup(run: &Run) -> Result<()> {
        let api: Api<KafkaTopic> = Api::namespaced(run.client.clone(), &run.namespace);
        let mut problems = Vec::new();
        if let Err(e) = clean_kafka_topics(&run.observer, &run.prefix).await {
            problems.push(format!("Kafka topics: {e:#}"));
        }
        match force_delete_all(&api).await {
            Ok(0) => {}
            Ok(n) => println!("cleanup: removed {n} leftover KafkaTopics"),
            Err(e) => problems.push(format!("KafkaTopics: {e:#}")),
        }
        if let Err(e) = run.delete_namespace().await {
            problems.push(format!("{e:#}"));
        }
        if problems.is_empty() {
            println!(
                "cleanup: namespace {} and Kafka topics {}* gone",
                run.namespace, run.prefix
            );
            Ok(())
        } else {
            Err(anyhow!(problems.join("; ")))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// bench users
// ---------------------------------------------------------------------------------------------

mod users {
    use super::*;

    #[derive(Debug, Clone, Serialize)]
    struct Resync {
        window_seconds: f64,
        passes: u64,
        admin_requests: u64,
        admin_requests_by_api: BTreeMap<String, u64>,
        kafka_write_requests: u64,
        kube_writes: u64,
    }

    #[derive(Debug, Clone, Serialize)]
    struct KafkaState {
        acl_bindings: usize,
        scram_credentials: usize,
        quota_entities: usize,
    }

    #[derive(Debug, Clone, Serialize)]
    struct Report {
        benchmark: &'static str,
        count: usize,
        kube_concurrency: usize,
        full_resync_interval_seconds: u64,
        ready_seconds: Option<f64>,
        /// When the bench's last create request returned.
        create_submitted_seconds: Option<f64>,
        create_admin_requests_by_api: BTreeMap<String, u64>,
        create_kube_writes: Option<u64>,
        kafka_after_ready: Option<KafkaState>,
        resync: Option<Resync>,
        memory: Option<Memory>,
        delete_seconds: Option<f64>,
        delete_admin_requests_by_api: BTreeMap<String, u64>,
        machine: Machine,
    }

    pub(super) async fn run(args: UsersArgs) -> Result<()> {
        let load_start = loadavg();
        let run = Run::start("users").await?;
        let user_prefix = format!("{}u-", run.prefix);
        println!(
            "bench users: count={} namespace={} user prefix={} concurrency={} full resync every {}s",
            args.count, run.namespace, user_prefix, args.concurrency, args.full_resync_seconds
        );
        let mut report = Report {
            benchmark: "users",
            count: args.count,
            kube_concurrency: args.concurrency,
            full_resync_interval_seconds: args.full_resync_seconds,
            ready_seconds: None,
            create_submitted_seconds: None,
            create_admin_requests_by_api: BTreeMap::new(),
            create_kube_writes: None,
            kafka_after_ready: None,
            resync: None,
            memory: None,
            delete_seconds: None,
            delete_admin_requests_by_api: BTreeMap::new(),
            machine: machine(load_start.clone()),
        };
        let outcome = guarded(body(&run, &user_prefix, &args, &mut report)).await;
        let cleanup = cleanup(&run, &user_prefix).await;
        report.machine = machine(load_start);
        if outcome.is_ok() {
            print_summary(&report);
            write_json(&args.json, &report)?;
        }
        match (outcome, cleanup) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(e), Ok(())) => Err(e),
            (Ok(()), Err(c)) => Err(c.context("cleanup failed")),
            (Err(e), Err(c)) => Err(e.context(format!("cleanup failed too: {c:#}"))),
        }
    }

    fn kafka_user(prefix: &str, run_prefix: &str, i: usize) -> Result<KafkaUser> {
        let auth = if i.is_multiple_of(2) {
            "scram-sha-512"
        } else {
            "tls"
        };
        let labels = BTreeMap::from([(labels::CLUSTER.to_string(), CLUSTER.to_string())]);
        let user = json!({
            "apiVersion": "kafka.oxbow.rs/v1beta1",
            "kind": "KafkaUser",
            "metadata": { "name": format!("{prefix}{i:05}"), "labels": labels },
            "spec": {
                "authentication": { "type": auth },
                "authorization": {
                    "type": "simple",
                    "acls": [
                        {
                            "resource": { "type": "topic", "name": format!("{run_prefix}data-{i:05}-"), "patternType": "prefix" },
                            "operations": ["Read", "Write"],
                        },
                        {
                            "resource": { "type": "group", "name": format!("{run_prefix}group-{i:05}"), "patternType": "literal" },
                            "operations": ["Read"],
                        },
                        {
                            "resource": { "type": "topic", "name": format!("{run_prefix}topic-{i:05}"), "patternType": "literal" },
                            "operations": ["Describe"],
                        },
                    ],
                },
                "quotas": { "producerByteRate": 1_048_576 },
            },
        });
        serde_json::from_value(user).context("building a KafkaUser")
    }

    /// The `OXBOW_IGNORED_USERS` pattern: `admin` and every Kafka user name that does not start
    /// with `prefix` or `CN=<prefix>` (the operator tests both the name and `CN=<name>`).
    /// Rust's regex has no look-ahead, so "does not start with" is spelled out over a trie of
    /// the prefixes: at each step either the name ends, or its next character leaves the trie.
    pub(super) fn ignore_all_but(prefix: &str) -> String {
        #[derive(Default)]
        struct Trie {
            end: bool,
            children: BTreeMap<char, Trie>,
        }
        fn escape(c: char) -> String {
            if "\\.+*?()|[]{}^$#&-~".contains(c) {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        }
        fn complement(t: &Trie) -> Option<String> {
            if t.end {
                return None;
            }
            let class: String = t.children.keys().map(|c| escape(*c)).collect();
            let mut alternatives = vec![String::new(), format!("[^{class}].*")];
            for (c, child) in &t.children {
                if let Some(rest) = complement(child) {
                    alternatives.push(format!("{}{rest}", escape(*c)));
                }
            }
            Some(format!("(?:{})", alternatives.join("|")))
        }
        let mut root = Trie::default();
        for p in [prefix.to_string(), format!("CN={prefix}")] {
            let mut node = &mut root;
            for c in p.chars() {
                node = node.children.entry(c).or_default();
            }
            node.end = true;
        }
        let rest = complement(&root).expect("the prefixes are not empty");
        format!("admin|(?s:{rest})")
    }

    /// What Kafka holds for the run's users: ACL bindings, SCRAM credentials, quota entities.
    async fn kafka_state(
        admin: &KafkaAdmin,
        quotas: &KafkaProtocolClient,
        prefix: &str,
    ) -> Result<(
        Vec<oxbow_runtime::kafka::admin::AclBinding>,
        Vec<String>,
        Vec<String>,
    )> {
        let ours = |user: &str| {
            user.starts_with(prefix)
                || user
                    .strip_prefix("CN=")
                    .is_some_and(|u| u.starts_with(prefix))
        };
        let acls: Vec<_> = admin
            .describe_acls(&AclBindingFilter::all())
            .await?
            .into_iter()
            .filter(|b| b.principal.strip_prefix("User:").is_some_and(ours))
            .collect();
        let scram: Vec<String> = admin
            .describe_user_scram_credentials(None)
            .await?
            .into_iter()
            .filter(|(u, r)| ours(u) && r.as_ref().is_ok_and(|c| !c.is_empty()))
            .map(|(u, _)| u)
            .collect();
        let quota_users: Vec<String> = quotas
            .describe_user_quotas(None)
            .await
            .map_err(|e| anyhow!("describing quotas: {e}"))?
            .into_keys()
            .filter(|u| ours(u))
            .collect();
        Ok((acls, scram, quota_users))
    }

    fn counter(m: &Metrics, name: &str) -> u64 {
        m.sum(name, &[]).round() as u64
    }

    /// Passes started and passes finished (the reconcile-duration histogram is observed at the
    /// end of each pass).
    fn passes(m: &Metrics) -> (u64, u64) {
        (
            counter(m, "oxbow_user_operator_passes_total"),
            m.sum(
                "oxbow_reconcile_duration_seconds_count",
                &[("kind", "KafkaUser")],
            )
            .round() as u64,
        )
    }

    /// Polls `/metrics` until `done` holds.
    async fn wait_metrics(
        op: &OperatorProcess,
        what: &str,
        deadline: Duration,
        done: impl Fn(&Metrics) -> bool,
    ) -> Result<Metrics> {
        let start = Instant::now();
        loop {
            let m = op.metrics().await?;
            if done(&m) {
                return Ok(m);
            }
            if start.elapsed() > deadline {
                bail!(
                    "{what}: not within {deadline:?} (passes started/finished {:?}); log {}",
                    passes(&m),
                    op.log_path().display()
                );
            }
            tokio::time::sleep(METRICS_POLL).await;
        }
    }

    async fn body(
        run: &Run,
        user_prefix: &str,
        args: &UsersArgs,
        report: &mut Report,
    ) -> Result<()> {
        let deadline = Duration::from_secs(args.phase_deadline_seconds);
        let api: Api<KafkaUser> = Api::namespaced(run.client.clone(), &run.namespace);
        let tracker = Tracker::start(api.clone(), user_obs);
        tracker.wait_listed().await?;
        let quotas = KafkaProtocolClient::new(&admin_connection(&run.env))
            .context("preparing the quota client")?;

        let ignored = ignore_all_but(user_prefix);
        let env = OperatorEnv::user_operator_scram(&run.env, &run.namespace, CLUSTER)
            .set("OXBOW_IGNORED_USERS", ignored)
            .set(
                "OXBOW_FULL_RECONCILIATION_INTERVAL_SECONDS",
                args.full_resync_seconds.to_string(),
            );
        let mut op = OperatorProcess::start("bench-user-operator", "user-operator", env)?;
        op.wait_ready(READY_DEADLINE).await?;
        println!("user operator ready; log {}", op.log_path().display());

        // Create N users, until all are Ready for their generation.
        let users: Vec<KafkaUser> = (0..args.count)
            .map(|i| kafka_user(user_prefix, &run.prefix, i))
            .collect::<Result<_>>()?;
        let names: Vec<String> = users.iter().map(|u| u.name_any()).collect();
        let m0 = op.metrics().await?;
        let start = Instant::now();
        create_all(&api, users, args.concurrency).await?;
        let submitted = start.elapsed();
        tracker
            .wait("all KafkaUsers Ready", deadline, |s| {
                all_of(s, &names, |_, o| o.is_some_and(Obs::synced))
            })
            .await?;
        let took = start.elapsed();
        let m1 = op.metrics().await?;
        report.ready_seconds = Some(secs(took));
        report.create_submitted_seconds = Some(secs(submitted));
        report.create_admin_requests_by_api = requests_between(&m0, &m1);
        let kube_writes = counter(&m1, "oxbow_user_operator_kube_writes_total")
            - counter(&m0, "oxbow_user_operator_kube_writes_total");
        report.create_kube_writes = Some(kube_writes);
        println!(
            "create {} KafkaUsers -> all Ready: {:.2} s (creates returned at {:.2} s); Kafka admin requests {} [{}]; operator's Kubernetes writes {kube_writes}",
            args.count,
            took.as_secs_f64(),
            submitted.as_secs_f64(),
            total(&report.create_admin_requests_by_api),
            show_by_api(&report.create_admin_requests_by_api)
        );
        let (acls, scram, quota_users) = kafka_state(&run.observer, &quotas, user_prefix).await?;
        let state = KafkaState {
            acl_bindings: acls.len(),
            scram_credentials: scram.len(),
            quota_entities: quota_users.len(),
        };
        println!(
            "Kafka holds for them: {} ACL bindings, {} SCRAM credentials, {} quota entities",
            state.acl_bindings, state.scram_credentials, state.quota_entities
        );
        report.kafka_after_ready = Some(state);

        // One full resync with nothing changed: from an idle moment until the next pass that
        // read all of Kafka (describe_acls) has finished and the operator is idle again.
        let s0 = wait_metrics(&op, "operator idle", deadline, |m| {
            let (started, finished) = passes(m);
            started == finished
        })
        .await?;
        let start = Instant::now();
        let acl_reads = |m: &Metrics| {
            m.sum(
                "oxbow_kafka_admin_requests_total",
                &[("api", "describe_acls")],
            )
        };
        let before_reads = acl_reads(&s0);
        let s1 = wait_metrics(
            &op,
            "a full resync",
            Duration::from_secs(args.full_resync_seconds) + deadline,
            |m| {
                let (started, finished) = passes(m);
                acl_reads(m) > before_reads && started == finished
            },
        )
        .await?;
        let window = start.elapsed();
        let by_api = requests_between(&s0, &s1);
        let writes: u64 = USER_WRITE_APIS
            .iter()
            .map(|a| by_api.get(*a).copied().unwrap_or(0))
            .sum();
        let resync = Resync {
            window_seconds: secs(window),
            passes: passes(&s1).0 - passes(&s0).0,
            admin_requests: total(&by_api),
            kafka_write_requests: writes,
            kube_writes: counter(&s1, "oxbow_user_operator_kube_writes_total")
                - counter(&s0, "oxbow_user_operator_kube_writes_total"),
            admin_requests_by_api: by_api,
        };
        println!(
            "full resync, nothing changed: {} pass(es) in a {:.2} s window; Kafka admin requests {} [{}]; Kafka writes {}; Kubernetes writes {}",
            resync.passes,
            resync.window_seconds,
            resync.admin_requests,
            show_by_api(&resync.admin_requests_by_api),
            resync.kafka_write_requests,
            resync.kube_writes
        );
        report.resync = Some(resync);

        // Delete the users, until Kafka holds nothing for them.
        let m2 = op.metrics().await?;
        let start = Instant::now();
        delete_all(&api, names.clone(), args.concurrency).await?;
        let submitted = start.elapsed();
        tracker
            .wait("all KafkaUsers gone", deadline, |s| {
                all_of(s, &names, |_, o| o.is_none())
            })
            .await?;
        loop {
            let (acls, scram, quota_users) =
                kafka_state(&run.observer, &quotas, user_prefix).await?;
            if acls.is_empty() && scram.is_empty() && quota_users.is_empty() {
                break;
            }
            if start.elapsed() > deadline {
                bail!(
                    "Kafka still holds {} ACL bindings, {} SCRAM credentials, {} quota entities of deleted users after {deadline:?}",
                    acls.len(),
                    scram.len(),
                    quota_users.len()
                );
            }
            tokio::time::sleep(KAFKA_POLL).await;
        }
        let took = start.elapsed();
        let m3 = op.metrics().await?;
        report.delete_seconds = Some(secs(took));
        report.delete_admin_requests_by_api = requests_between(&m2, &m3);
        println!(
            "delete {} KafkaUsers -> Kafka holds nothing for them: {:.2} s (deletes returned at {:.2} s); Kafka admin requests {} [{}]",
            args.count,
            took.as_secs_f64(),
            submitted.as_secs_f64(),
            total(&report.delete_admin_requests_by_api),
            show_by_api(&report.delete_admin_requests_by_api)
        );

        let memory = peak_rss(&op)?;
        println!(
            "operator memory: peak RSS (VmHWM) {} KiB, RSS now {} KiB",
            memory.peak_rss_kib, memory.rss_kib
        );
        report.memory = Some(memory);
        op.kill9()?;
        Ok(())
    }

    fn print_summary(r: &Report) {
        println!();
        println!(
            "== bench users: {} KafkaUsers (half scram-sha-512, half tls; 3 ACL rules, 1 quota each), {} CPUs, load {} -> {} ==",
            r.count, r.machine.cpus, r.machine.loadavg_at_start, r.machine.loadavg_at_end
        );
        if let Some(s) = r.ready_seconds {
            println!(
                "{:<40} {s:.2} s ({} Kafka admin requests)",
                "create -> all Ready",
                total(&r.create_admin_requests_by_api)
            );
        }
        if let Some(x) = &r.resync {
            println!(
                "{:<40} {} Kafka requests [{}]",
                "full resync, nothing changed",
                x.admin_requests,
                show_by_api(&x.admin_requests_by_api)
            );
            println!(
                "{:<40} {} (target 0)",
                "  Kafka write requests", x.kafka_write_requests
            );
            println!("{:<40} {} (target 0)", "  Kubernetes writes", x.kube_writes);
        }
        if let Some(s) = r.delete_seconds {
            println!(
                "{:<40} {s:.2} s ({} Kafka admin requests)",
                "delete -> Kafka clean",
                total(&r.delete_admin_requests_by_api)
            );
        }
        if let Some(m) = &r.memory {
            println!("{:<40} {} KiB", "operator peak RSS", m.peak_rss_kib);
        }
        println!("note: {}", r.machine.note);
    }

    /// Removes whatever the run left: KafkaUsers, then (when the operator did not) the users'
    /// ACLs, SCRAM credentials and quotas in Kafka, then the namespace with its Secrets.
    async fn cleanup(run: &Run, prefix: &str) -> Result<()> {
        let api: Api<KafkaUser> = Api::namespaced(run.client.clone(), &run.namespace);
        let mut problems = Vec::new();
        match force_delete_all(&api).await {
            Ok(0) => {}
            Ok(n) => println!("cleanup: removed {n} leftover KafkaUsers"),
            Err(e) => problems.push(format!("KafkaUsers: {e:#}")),
        }
        if let Err(e) = clean_kafka(run, prefix).await {
            problems.push(format!("Kafka: {e:#}"));
        }
        if let Err(e) = run.delete_namespace().await {
            problems.push(format!("{e:#}"));
        }
        if problems.is_empty() {
            println!(
                "cleanup: namespace {} gone; Kafka holds nothing for {prefix}*",
                run.namespace
            );
            Ok(())
        } else {
            Err(anyhow!(problems.join("; ")))
        }
    }

    pub(super) async fn clean_kafka(run: &Run, prefix: &str) -> Result<()> {
        let quotas = KafkaProtocolClient::new(&admin_connection(&run.env))?;
        let (acls, scram, quota_users) = kafka_state(&run.observer, &quotas, prefix).await?;
        if acls.is_empty() && scram.is_empty() && quota_users.is_empty() {
            return Ok(());
        }
        println!(
            "cleanup: removing {} ACL bindings, {} SCRAM credentials, {} quota entities directly",
            acls.len(),
            scram.len(),
            quota_users.len()
        );
        let filters: Vec<AclBindingFilter> = acls.iter().map(|b| b.to_filter()).collect();
        for chunk in filters.chunks(FLOOR_BATCH) {
            for (_, r) in run.observer.delete_acls(chunk).await? {
                r?;
            }
        }
        let deletions: Vec<ScramAlteration> = scram
            .iter()
            .map(|u| ScramAlteration::Delete {
                user: u.clone(),
                mechanism: oxbow_runtime::kafka::admin::ScramMechanism::Sha512,
            })
            .collect();
        for chunk in deletions.chunks(FLOOR_BATCH) {
            for (_, r) in run
                .observer
                .alter_user_scram_credentials(chunk.to_vec())
                .await?
            {
                r?;
            }
        }
        let current = quotas
            .describe_user_quotas(None)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        let removals: Vec<QuotaChange> = quota_users
            .iter()
            .filter_map(|u| {
                current
                    .get(u)
                    .map(|q| (u.clone(), q.keys().map(|k| (k.clone(), None)).collect()))
            })
            .collect();
        for chunk in removals.chunks(FLOOR_BATCH) {
            for (user, r) in quotas
                .alter_user_quotas(chunk.to_vec())
                .await
                .map_err(|e| anyhow!("{e}"))?
            {
                r.map_err(|e| anyhow!("removing quotas of {user}: {e}"))?;
            }
        }
        let (acls, scram, quota_users) = kafka_state(&run.observer, &quotas, prefix).await?;
        if acls.is_empty() && scram.is_empty() && quota_users.is_empty() {
            Ok(())
        } else {
            bail!(
                "still {} ACL bindings, {} SCRAM credentials, {} quota entities",
                acls.len(),
                scram.len(),
                quota_users.len()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::users::ignore_all_but;

    #[test]
    fn the_ignore_pattern_spares_only_the_bench_users() {
        let pattern = ignore_all_but("bench-1f-u-");
        // The operator's own anchoring (user-operator config.rs).
        let re = regex::Regex::new(&format!("^(?:{pattern})$")).unwrap();
        let ignored = |name: &str| re.is_match(name) || re.is_match(&format!("CN={name}"));
        for other in [
            "admin",
            "alice",
            "CN=alice",
            "",
            "bench-1f",
            "bench-1f-u",
            "bench-1f-v-00001",
            "bench-2f-u-00001",
            "CN=bench-1f",
            "CN=",
            "cn=bench-1f-u-00001",
            "xbench-1f-u-00001",
            "line\nbreak",
        ] {
            assert!(ignored(other), "{other:?} must be ignored ({pattern})");
        }
        // The operator strips `CN=` from mTLS principals before asking.
        for ours in ["bench-1f-u-00001", "bench-1f-u-", "bench-1f-u-CN=x"] {
            assert!(!ignored(ours), "{ours:?} must be managed ({pattern})");
        }
    }
}
