//! `bench`: measures the topic and user operators against the running testbed and prints the
//! figures next to the named floor. `bench topics` times creating, changing and deleting N
//! KafkaTopics through a release-built topic operator, then the Kubernetes writes the operator
//! cannot avoid for N KafkaTopics, made by the bench alone with no operator running (the
//! Kubernetes floor), then the same N changes made directly by a batched admin client (the
//! Kafka floor), then the single-topic latency. `bench users` times N KafkaUsers becoming Ready
//! and counts what one full resync with nothing changed costs.
//! `bench clusters` times the cluster operator over N Kafka clusters and reads its peak memory.
//! `bench stack` installs Oxbow from `manifests/install/` into namespace `oxbow-bench` and, per
//! run, times the example cluster (run by the node agent) to Ready and through a rolling restart
//! of its four nodes, and reads the three operators' peak memory.
//! Every figure printed is measured in this run; waits are on conditions, with deadlines.
//! `bench topics` and `bench users` show with each timed phase the CPU time the hypervisor
//! stole from this machine meanwhile (`steal`, from `/proc/stat`): a phase slowed by
//! neighbours on a shared VM shows there.
//! May touch: the testbed's API server (the CRDs, one fresh namespace per run), Kafka topics,
//! ACLs, SCRAM credentials and quotas named with the run's unique prefix, operator child
//! processes it starts; `bench stack` also namespace `oxbow-bench`, ClusterRoleBindings
//! `*-oxbow-bench` and the bundle's CRDs and ClusterRoles (left in place). It removes all of them
//! at the end, also when a phase fails. It reads `/proc/stat`.

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
use shared_crds::{KafkaTopic, KafkaTopicSpec, KafkaUser, SortedMap, condition::is_ready, labels};
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
/// Pause between two lists of the API server while waiting for objects to be gone.
const KUBE_POLL: Duration = Duration::from_millis(100);
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
    /// Create, change and delete N KafkaTopics through the topic operator; both floors; latency.
    ///
    /// Each phase of the operator (create N KafkaTopics until all Ready, change a config on all,
    /// delete all) is set against two floors measured in the same run. The Kafka floor: the same
    /// creates, config changes and deletes by one batched admin client, no Kubernetes at all.
    /// The Kubernetes floor (`--no-kube-floor` skips it): with the operator stopped, the bench
    /// itself makes the Kubernetes writes the operator cannot avoid, on N KafkaTopics labelled
    /// for a cluster no operator manages, `--concurrency` objects at a time, each object's
    /// writes in sequence: create, add the finalizer (a JSON patch), write `Ready=True` through
    /// the status subresource (server-side apply); then a merge patch of `spec.config` and a
    /// status write; then delete and release the finalizer (a JSON patch), until a list shows
    /// none left. The summary sets each operator phase against the larger of the two floors.
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
    /// Measure only the floors (no operator, no latency).
    #[arg(long)]
    floor_only: bool,
    /// Skip the Kubernetes floor (the operator's unavoidable Kubernetes writes made by the
    /// bench alone, with no operator running).
    #[arg(long)]
    no_kube_floor: bool,
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

/// Samples a process's resident set every 100 ms until dropped, keeping the largest value.
/// The kernel brings `VmHWM` up to date only at some events (unmapping memory, exit), so a short
/// peak between two of them can be missing from it: sampling `VmRSS` twice a second once saw
/// 62,448 KiB where `VmHWM` said 62,208 KiB at the end.
struct RssSampler {
    max_kib: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(op: &OperatorProcess) -> Result<RssSampler> {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let pid = op.pid().context("the operator is not running")?;
        let max_kib = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (max_kib, stop) = (max_kib.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(kib) = proc_status_kib(pid, "VmRSS") {
                        max_kib.fetch_max(kib, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        Ok(RssSampler {
            max_kib,
            stop,
            thread: Some(thread),
        })
    }

    fn max_kib(&self) -> u64 {
        self.max_kib.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Peak and current RSS of a running operator, read from `/proc` (before it is stopped): the
/// peak is the larger of `VmHWM` and what `sampler` saw.
fn peak_rss(op: &OperatorProcess, sampler: &RssSampler) -> Result<Memory> {
    let pid = op.pid().context("the operator is not running")?;
    let vm_hwm_kib = proc_status_kib(pid, "VmHWM")?;
    let sampled_peak_rss_kib = sampler.max_kib();
    Ok(Memory {
        peak_rss_kib: vm_hwm_kib.max(sampled_peak_rss_kib),
        vm_hwm_kib,
        sampled_peak_rss_kib,
        rss_kib: proc_status_kib(pid, "VmRSS")?,
    })
}

#[derive(Debug, Clone, Serialize)]
struct Memory {
    /// The larger of the two below.
    peak_rss_kib: u64,
    vm_hwm_kib: u64,
    /// The largest `VmRSS` read every 100 ms.
    sampled_peak_rss_kib: u64,
    rss_kib: u64,
}

impl Memory {
    fn show(&self) -> String {
        format!(
            "peak RSS {} KiB (VmHWM {} KiB, largest RSS sampled every 100 ms {} KiB), RSS now {} KiB",
            self.peak_rss_kib, self.vm_hwm_kib, self.sampled_peak_rss_kib, self.rss_kib
        )
    }
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

#[path = "../bench/steal.rs"]
mod steal;

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

/// Runs `step` on every item with at most `concurrency` in flight; the first error ends it.
async fn for_each_limited<I, T, F, Fut>(items: I, concurrency: usize, step: F) -> Result<Vec<T>>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    stream::iter(items)
        .map(step)
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await
}

/// Creates one object, retried (an `AlreadyExists` on a retry counts as done).
async fn create_one<K>(api: &Api<K>, object: &K) -> Result<()>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
{
    let name = object.name_any();
    kube_retry(&format!("creating {name}"), |retried| {
        let (api, o) = (api.clone(), object.clone());
        async move {
            match api.create(&PostParams::default(), &o).await {
                Err(kube::Error::Api(e)) if retried && e.code == 409 => Ok(()),
                r => r.map(|_| ()),
            }
        }
    })
    .await
}

/// Deletes one object, retried (an absent one is fine).
async fn delete_one<K>(api: &Api<K>, name: &str) -> Result<()>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    kube_retry(&format!("deleting {name}"), |_| {
        let (api, name) = (api.clone(), name.to_owned());
        async move {
            match api.delete(&name, &DeleteParams::default()).await {
                Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                r => r.map(|_| ()),
            }
        }
    })
    .await
}

/// Creates the objects with at most `concurrency` requests in flight.
async fn create_all<K>(api: &Api<K>, objects: Vec<K>, concurrency: usize) -> Result<()>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
{
    for_each_limited(objects, concurrency, |o| async move {
        create_one(api, &o).await
    })
    .await?;
    Ok(())
}

/// Deletes the named objects (absent ones are fine) with at most `concurrency` in flight.
async fn delete_all<K>(api: &Api<K>, names: Vec<String>, concurrency: usize) -> Result<()>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    for_each_limited(names, concurrency, |name| async move {
        delete_one(api, &name).await
    })
    .await?;
    Ok(())
}

/// Lists `api` with `params` every [`KUBE_POLL`] until no object matches, or the deadline
/// passes; returns when the list came back empty.
async fn wait_list_empty<K>(
    api: &Api<K>,
    params: &ListParams,
    what: &str,
    deadline: Duration,
) -> Result<Instant>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    // One object is enough to tell "some left" from "none left".
    let params = params.clone().limit(1);
    let start = Instant::now();
    loop {
        let last = match api.list(&params).await {
            Ok(list) if list.items.is_empty() => return Ok(Instant::now()),
            Ok(list) => format!(
                "{} still there, {} more",
                list.items[0].name_any(),
                list.metadata.remaining_item_count.unwrap_or(0)
            ),
            Err(e) => format!("listing: {e}"),
        };
        if start.elapsed() > deadline {
            bail!("{what}: not within {deadline:?}; last seen: {last}");
        }
        tokio::time::sleep(KUBE_POLL).await;
    }
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
    use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
    use shared_crds::{Condition, KafkaTopicStatus, condition::stamp_transitions};

    /// The `oxbow.rs/cluster` label of the Kubernetes floor's KafkaTopics: no operator manages
    /// it, so nothing reacts to them (the bench's own operator is stopped by then anyway).
    pub(super) const KUBE_FLOOR_CLUSTER: &str = "bench-kube-floor";
    /// The field manager of the Kubernetes floor's status writes.
    const KUBE_FLOOR_FIELD_MANAGER: &str = "oxbow-bench-floor";
    /// The topic operator's finalizer (`labels::TOPIC_FINALIZER`).
    const FINALIZER: &str = labels::TOPIC_FINALIZER;

    #[derive(Debug, Clone, Default, Serialize)]
    pub(super) struct Phase {
        pub(super) name: String,
        pub(super) seconds: f64,
        /// Of a change: when Kafka showed it everywhere, and when every status did.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(super) kafka_seconds: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(super) status_seconds: Option<f64>,
        /// When the last write request returned: the bench's Kubernetes writes for the
        /// operator and the Kubernetes floor, the admin client's requests for the Kafka floor.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(super) requests_seconds: Option<f64>,
        /// Rounds of describe requests until Kafka showed the change, and the slowest round
        /// (the precision of the Kafka-side end time).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(super) kafka_check_rounds: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(super) kafka_check_slowest_round_seconds: Option<f64>,
        pub(super) admin_requests: u64,
        pub(super) admin_requests_by_api: BTreeMap<String, u64>,
        /// Of the Kubernetes floor: the Kubernetes write requests it made.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(super) kube_writes: Option<u64>,
        /// CPU time the hypervisor stole during the phase; none where `/proc/stat` is unreadable.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(super) steal: Option<steal::Steal>,
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
        /// The Kafka floor: one batched admin client.
        floor: Vec<Phase>,
        /// Topics per request of the floor: create and delete, incremental_alter_configs.
        floor_batch: usize,
        floor_alter_batch: usize,
        /// The Kubernetes floor: the operator's unavoidable Kubernetes writes, made by the
        /// bench with no operator running (empty with `--no-kube-floor`).
        kube_floor: Vec<Phase>,
        /// operator seconds / floor seconds, per phase.
        ratio: BTreeMap<String, f64>,
        /// operator seconds / max(Kafka floor seconds, Kubernetes floor seconds), per phase.
        ratio_to_max_floor: BTreeMap<String, f64>,
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
            kube_floor: Vec::new(),
            ratio: BTreeMap::new(),
            ratio_to_max_floor: BTreeMap::new(),
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

    /// A KafkaTopic of the bench, labelled `oxbow.rs/cluster=<cluster>`.
    fn kafka_topic(name: &str, cluster: &str) -> KafkaTopic {
        let mut kt = KafkaTopic::new(
            name,
            KafkaTopicSpec {
                topic_name: None,
                partitions: Some(1),
                replicas: Some(1),
                config: Some(SortedMap::from([(
                    CONFIG_KEY.to_string(),
                    Value::from(CONFIG_BEFORE),
                )])),
            },
        );
        kt.metadata.labels = Some(BTreeMap::from([(
            labels::CLUSTER.to_string(),
            cluster.to_string(),
        )]));
        kt
    }

    /// Merge-patches `spec.config` to the changed value (retried); returns the stored object.
    async fn change_config(api: &Api<KafkaTopic>, name: &str) -> Result<KafkaTopic> {
        let change = json!({ "spec": { "config": { CONFIG_KEY: CONFIG_AFTER } } });
        kube_retry(&format!("patching {name}"), |_| {
            let (api, name, change) = (api.clone(), name.to_owned(), change.clone());
            async move {
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&change))
                    .await
            }
        })
        .await
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
            kube_writes: None,
            steal: None,
        }
    }

    /// A phase of the Kubernetes floor: `writes` requests from `start`, the last returning at
    /// `requests`, the phase done at `end`, with `steal` CPU time stolen meanwhile.
    fn kube_phase(
        name: &str,
        start: Instant,
        requests: Instant,
        end: Instant,
        writes: u64,
        steal: Option<steal::Steal>,
    ) -> Phase {
        Phase {
            name: name.into(),
            seconds: secs(end - start),
            requests_seconds: Some(secs(requests - start)),
            kube_writes: Some(writes),
            steal,
            ..Phase::default()
        }
    }

    /// `operator / max(floors)`, rounded to 0.01; none when no floor is above zero.
    pub(super) fn ratio_to_max(operator: f64, floors: &[f64]) -> Option<f64> {
        let floor = floors.iter().copied().fold(0.0, f64::max);
        (floor > 0.0).then(|| (operator / floor * 100.0).round() / 100.0)
    }

    /// `operator / max(Kafka floor, Kubernetes floor)` of the operator's phase `o`, whose Kafka
    /// floor is `f`; none when the Kubernetes floor has no phase of that name (not measured).
    pub(super) fn ratio_to_max_floor(o: &Phase, f: &Phase, kube_floor: &[Phase]) -> Option<f64> {
        let k = kube_floor.iter().find(|k| k.name == o.name)?;
        ratio_to_max(o.seconds, &[f.seconds, k.seconds])
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
        let requests = match p.kube_writes {
            Some(n) => format!("Kubernetes writes {n}"),
            None => format!(
                "Kafka admin requests {} [{}]",
                p.admin_requests,
                show_by_api(&p.admin_requests_by_api)
            ),
        };
        println!(
            "{who} {:<7} {:>9.2} s{detail}{check}; {requests}; {}",
            p.name,
            p.seconds,
            steal::show(p.steal),
        );
    }

    async fn body(run: &Run, args: &TopicsArgs, report: &mut Report) -> Result<()> {
        if !args.floor_only {
            // Ends with the operator process stopped (killed and reaped).
            operator_phases(run, args, report).await?;
        }
        if !args.no_kube_floor {
            kube_floor_phases(run, args, report).await?;
        }
        floor_phases(run, args, report).await?;
        for (o, f) in report.operator.iter().zip(&report.floor) {
            if let Some(ratio) = ratio_to_max(o.seconds, &[f.seconds]) {
                report.ratio.insert(o.name.clone(), ratio);
            }
            if let Some(ratio) = ratio_to_max_floor(o, f, &report.kube_floor) {
                report.ratio_to_max_floor.insert(o.name.clone(), ratio);
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
        let sampler = RssSampler::start(&op)?;
        op.wait_ready(READY_DEADLINE).await?;
        println!("topic operator ready; log {}", op.log_path().display());
        let names = topic_names(&op_prefix, n);

        // (a) create N KafkaTopics, until all are Ready for their generation.
        let m0 = op.metrics().await?;
        let cpu = steal::sample();
        let start = Instant::now();
        create_all(
            &api,
            names.iter().map(|n| kafka_topic(n, CLUSTER)).collect(),
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
        let stolen = steal::since(cpu);
        let m1 = op.metrics().await?;
        let mut p = phase("create", start, end, &m0, &m1, None, None);
        p.requests_seconds = Some(secs(submitted));
        p.steal = stolen;
        print_phase("operator", &p);
        report.operator.push(p);

        // (b) change the config of all N, until Kafka shows the new value for all and every
        // status reports the new generation.
        let cpu = steal::sample();
        let start = Instant::now();
        let generations: HashMap<String, i64> =
            for_each_limited(names.clone(), args.concurrency, |name| {
                let api = &api;
                async move {
                    let kt = change_config(api, &name).await?;
                    let generation = kt.metadata.generation.context("no generation")?;
                    Ok((name, generation))
                }
            })
            .await?
            .into_iter()
            .collect();
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
        let stolen = steal::since(cpu);
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
        p.steal = stolen;
        print_phase("operator", &p);
        report.operator.push(p);

        // (c) delete all N, until Kafka has none of the topics and the KafkaTopics are gone.
        let cpu = steal::sample();
        let start = Instant::now();
        delete_all(&api, names.clone(), args.concurrency).await?;
        let submitted = start.elapsed();
        let (kafka_done, status_done) = tokio::try_join!(
            wait_kafka(&run.observer, &names, &Expect::Absent, deadline),
            tracker.wait("all KafkaTopics gone", deadline, |s| {
                all_of(s, &names, |_, o| o.is_none()).map(|()| Instant::now())
            }),
        )?;
        let stolen = steal::since(cpu);
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
        p.steal = stolen;
        print_phase("operator", &p);
        report.operator.push(p);

        // Single-topic latency: create one KafkaTopic, time until the watch delivers Ready=True.
        let mut samples = Vec::new();
        for i in 0..args.latency_samples {
            let name = format!("{op_prefix}lat-{i:02}");
            let start = Instant::now();
            kube_retry(&format!("creating {name}"), |retried| {
                let (api, kt) = (api.clone(), kafka_topic(&name, CLUSTER));
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

        let memory = peak_rss(&op, &sampler)?;
        println!("operator memory: {}", memory.show());
        report.operator_memory = Some(memory);
        op.kill9()?;
        Ok(())
    }

    /// The JSON patch the operator sends to add (`add`) or release its finalizer on an object
    /// whose finalizers are `current`: a test of the current list (or of the finalizer's
    /// position), then the change. The same shape as `finalizer_patch` in
    /// `topic-operator/src/controller.rs`.
    pub(super) fn finalizer_patch(current: &[String], add: bool) -> Value {
        if add {
            if current.is_empty() {
                json!([
                    { "op": "test", "path": "/metadata/finalizers", "value": null },
                    { "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] },
                ])
            } else {
                json!([
                    { "op": "test", "path": "/metadata/finalizers", "value": current },
                    { "op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER },
                ])
            }
        } else {
            match current.iter().position(|f| f == FINALIZER) {
                Some(i) => json!([
                    { "op": "test", "path": format!("/metadata/finalizers/{i}"), "value": FINALIZER },
                    { "op": "remove", "path": format!("/metadata/finalizers/{i}") },
                ]),
                None => json!([]),
            }
        }
    }

    /// Sends [`finalizer_patch`] (retried). A retry refused by the patch's test (422) means the
    /// first, timed-out attempt was applied; the object is then read instead. Returns the
    /// object as stored, or none when it is gone (404, which a release accepts).
    async fn patch_finalizer(
        api: &Api<KafkaTopic>,
        name: &str,
        current: &[String],
        add: bool,
    ) -> Result<Option<KafkaTopic>> {
        let what = format!(
            "{} the finalizer of {name}",
            if add { "adding" } else { "releasing" }
        );
        let patch = finalizer_patch(current, add);
        kube_retry(&what, |retried| {
            let (api, name, patch) = (api.clone(), name.to_owned(), patch.clone());
            async move {
                let patch = Patch::Json::<()>(
                    serde_json::from_value(patch).expect("finalizer_patch builds a JSON patch"),
                );
                match api.patch(&name, &PatchParams::default(), &patch).await {
                    Ok(kt) => Ok(Some(kt)),
                    Err(kube::Error::Api(e)) if e.code == 404 && !add => Ok(None),
                    Err(kube::Error::Api(e)) if e.code == 422 && retried => {
                        api.get_opt(&name).await
                    }
                    Err(e) => Err(e),
                }
            }
        })
        .await
    }

    /// A Kafka topic ID (16 bytes, URL-safe base64, 22 characters) made up for the `i`-th
    /// topic of the Kubernetes floor, which has no Kafka topic.
    pub(super) fn made_up_topic_id(i: usize) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode((i as u128 + 1).to_be_bytes())
    }

    /// The server-side apply body of a `Ready=True` status, as the operator writes it
    /// (`KubeWrite::Status` in `topic-operator/src/controller.rs`).
    pub(super) fn ready_status_body(
        name: &str,
        generation: i64,
        topic_id: &str,
        since: &Time,
    ) -> Value {
        let status = KafkaTopicStatus {
            conditions: Some(stamp_transitions(
                &[],
                vec![Condition::ready("TopicSynced", "")],
                since,
            )),
            observed_generation: Some(generation),
            topic_name: Some(name.to_owned()),
            topic_id: Some(topic_id.to_owned()),
        };
        json!({
            "apiVersion": shared_crds::API_VERSION,
            "kind": "KafkaTopic",
            "status": status,
        })
    }

    /// Writes `Ready=True` for `generation` through the status subresource (server-side
    /// apply, forced), retried.
    async fn write_ready_status(
        api: &Api<KafkaTopic>,
        kt: &KafkaTopic,
        topic_id: &str,
        since: &Time,
    ) -> Result<()> {
        let name = kt.name_any();
        let generation = kt.metadata.generation.context("no generation")?;
        let body = ready_status_body(&name, generation, topic_id, since);
        let ssa = PatchParams::apply(KUBE_FLOOR_FIELD_MANAGER).force();
        kube_retry(&format!("writing the status of {name}"), |_| {
            let (api, name, body, ssa) = (api.clone(), name.clone(), body.clone(), ssa.clone());
            async move {
                api.patch_status(&name, &ssa, &Patch::Apply(&body))
                    .await
                    .map(|_| ())
            }
        })
        .await
    }

    /// The Kubernetes floor: the Kubernetes writes the operator cannot avoid, made by the bench
    /// alone on N KafkaTopics of the same spec, labelled for a cluster no operator manages (the
    /// bench's operator is stopped by now), `--concurrency` objects at a time, each object's
    /// writes in sequence. Create: create, add the finalizer, write the status (3 writes each),
    /// until the last status write returns. Change: merge-patch `spec.config`, write the status
    /// (2 each), likewise. Delete: delete, release the finalizer (2 each), until a list shows
    /// none left.
    async fn kube_floor_phases(run: &Run, args: &TopicsArgs, report: &mut Report) -> Result<()> {
        let deadline = Duration::from_secs(args.phase_deadline_seconds);
        let n = args.count;
        let api: Api<KafkaTopic> = Api::namespaced(run.client.clone(), &run.namespace);
        let names = topic_names(&format!("{}kube-", run.prefix), n);
        // The operator keeps a condition's lastTransitionTime while Ready stays True.
        let since = Time(Timestamp::now());
        let (api, since) = (&api, &since);

        let cpu = steal::sample();
        let start = Instant::now();
        for_each_limited(
            names.iter().enumerate(),
            args.concurrency,
            |(i, name)| async move {
                create_one(api, &kafka_topic(name, KUBE_FLOOR_CLUSTER)).await?;
                let kt = patch_finalizer(api, name, &[], true)
                    .await?
                    .with_context(|| format!("{name} gone while adding its finalizer"))?;
                write_ready_status(api, &kt, &made_up_topic_id(i), since).await
            },
        )
        .await?;
        let end = Instant::now();
        let p = kube_phase("create", start, end, end, 3 * n as u64, steal::since(cpu));
        print_phase("kube    ", &p);
        report.kube_floor.push(p);

        let cpu = steal::sample();
        let start = Instant::now();
        for_each_limited(
            names.iter().enumerate(),
            args.concurrency,
            |(i, name)| async move {
                let kt = change_config(api, name).await?;
                write_ready_status(api, &kt, &made_up_topic_id(i), since).await
            },
        )
        .await?;
        let end = Instant::now();
        let p = kube_phase("change", start, end, end, 2 * n as u64, steal::since(cpu));
        print_phase("kube    ", &p);
        report.kube_floor.push(p);

        let cpu = steal::sample();
        let start = Instant::now();
        let ours = [FINALIZER.to_owned()];
        let ours = &ours;
        for_each_limited(&names, args.concurrency, |name| async move {
            delete_one(api, name).await?;
            patch_finalizer(api, name, ours, false).await.map(|_| ())
        })
        .await?;
        let requests = Instant::now();
        let selector = format!("{}={KUBE_FLOOR_CLUSTER}", labels::CLUSTER);
        let gone = wait_list_empty(
            api,
            &ListParams::default().labels(&selector),
            "Kubernetes floor: all KafkaTopics gone",
            deadline,
        )
        .await?;
        let p = kube_phase(
            "delete",
            start,
            requests,
            gone,
            2 * n as u64,
            steal::since(cpu),
        );
        print_phase("kube    ", &p);
        report.kube_floor.push(p);
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
        let cpu = steal::sample();
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
        let stolen = steal::since(cpu);
        let f1 = registry_metrics(&registry)?;
        let mut p = phase("create", start, check.done, &f0, &f1, Some(check), None);
        p.requests_seconds = Some(secs(requests));
        p.steal = stolen;
        print_phase("floor   ", &p);
        report.floor.push(p);

        let cpu = steal::sample();
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
        let stolen = steal::since(cpu);
        let f2 = registry_metrics(&registry)?;
        let mut p = phase("change", start, check.done, &f1, &f2, Some(check), None);
        p.requests_seconds = Some(secs(requests));
        p.steal = stolen;
        print_phase("floor   ", &p);
        report.floor.push(p);

        let cpu = steal::sample();
        let start = Instant::now();
        for chunk in floor_names.chunks(batch) {
            for (name, r) in actor.delete_topics(chunk.iter().cloned()).await? {
                r.with_context(|| format!("floor: deleting {name}"))?;
            }
        }
        let requests = start.elapsed();
        let check = wait_kafka(&run.observer, &floor_names, &Expect::Absent, deadline).await?;
        let stolen = steal::since(cpu);
        let f3 = registry_metrics(&registry)?;
        let mut p = phase("delete", start, check.done, &f2, &f3, Some(check), None);
        p.requests_seconds = Some(secs(requests));
        p.steal = stolen;
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
        if !r.kube_floor.is_empty() {
            println!(
                "kube floor: no operator; per KafkaTopic, {} at a time: create + finalizer patch + status apply; config patch + status apply; delete + finalizer release, until a list shows none",
                r.kube_concurrency
            );
        }
        println!(
            "steal %: CPU time the hypervisor stole from this machine during the phase, in percent of all CPU time; operator/floor/kube floor"
        );
        for line in summary_table(&r.operator, &r.floor, &r.kube_floor) {
            println!("{line}");
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

    /// The summary table: a header, then one row per phase of the Kafka floor. The operator's
    /// time starts with the bench's first Kubernetes write, so it includes the bench sending N
    /// writes through the API server; "after writes" starts when the last of them returned
    /// (the part the operator alone decides), shown with its ratio to the same Kafka floor.
    /// Then the Kubernetes floor, and the operator against the larger floor. The last column:
    /// the CPU time the hypervisor stole during the phase, in percent of all CPU time, of the
    /// operator / the Kafka floor / the Kubernetes floor (`-` where not measured).
    pub(super) fn summary_table(
        operator: &[Phase],
        floor: &[Phase],
        kube_floor: &[Phase],
    ) -> Vec<String> {
        let mut lines = vec![format!(
            "{:<8} {:>12} {:>12} {:>8} {:>14} {:>12} {:>14} {:>14} {:>12} {:>14} {:>12}",
            "phase",
            "operator s",
            "floor s",
            "ratio",
            "after writes s",
            "ratio",
            "op requests",
            "floor requests",
            "kube floor s",
            "op / max floor",
            "steal %"
        )];
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let times = |x: f64| format!("{x:.2}x");
        for (i, f) in floor.iter().enumerate() {
            let o = operator.get(i);
            let k = kube_floor.iter().find(|k| k.name == f.name);
            let after = o.and_then(after_writes);
            let stolen = format!(
                "{}/{}/{}",
                steal::percent(o.and_then(|o| o.steal)),
                steal::percent(f.steal),
                steal::percent(k.and_then(|k| k.steal))
            );
            lines.push(format!(
                "{:<8} {:>12} {:>12.2} {:>8} {:>14} {:>12} {:>14} {:>14} {:>12} {:>14} {:>12}",
                f.name,
                or_dash(o.map(|o| format!("{:.2}", o.seconds))),
                f.seconds,
                or_dash(
                    o.and_then(|o| ratio_to_max(o.seconds, &[f.seconds]))
                        .map(times)
                ),
                or_dash(after.map(|a| format!("{a:.2}"))),
                or_dash(
                    after
                        .filter(|_| f.seconds > 0.0)
                        .map(|a| format!("{:.2}x", a / f.seconds))
                ),
                or_dash(o.map(|o| o.admin_requests.to_string())),
                f.admin_requests,
                or_dash(k.map(|k| format!("{:.2}", k.seconds))),
                or_dash(
                    o.and_then(|o| ratio_to_max_floor(o, f, kube_floor))
                        .map(times)
                ),
                stolen,
            ));
        }
        lines
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
        /// CPU time the hypervisor stole during the window.
        #[serde(skip_serializing_if = "Option::is_none")]
        steal: Option<steal::Steal>,
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
        /// CPU time the hypervisor stole from the first create until all were Ready.
        create_steal: Option<steal::Steal>,
        kafka_after_ready: Option<KafkaState>,
        resync: Option<Resync>,
        memory: Option<Memory>,
        delete_seconds: Option<f64>,
        delete_admin_requests_by_api: BTreeMap<String, u64>,
        /// CPU time the hypervisor stole from the first delete until Kafka held nothing.
        delete_steal: Option<steal::Steal>,
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
            create_steal: None,
            kafka_after_ready: None,
            resync: None,
            memory: None,
            delete_seconds: None,
            delete_admin_requests_by_api: BTreeMap::new(),
            delete_steal: None,
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
        let sampler = RssSampler::start(&op)?;
        op.wait_ready(READY_DEADLINE).await?;
        println!("user operator ready; log {}", op.log_path().display());

        // Create N users, until all are Ready for their generation.
        let users: Vec<KafkaUser> = (0..args.count)
            .map(|i| kafka_user(user_prefix, &run.prefix, i))
            .collect::<Result<_>>()?;
        let names: Vec<String> = users.iter().map(|u| u.name_any()).collect();
        let m0 = op.metrics().await?;
        let cpu = steal::sample();
        let start = Instant::now();
        create_all(&api, users, args.concurrency).await?;
        let submitted = start.elapsed();
        tracker
            .wait("all KafkaUsers Ready", deadline, |s| {
                all_of(s, &names, |_, o| o.is_some_and(Obs::synced))
            })
            .await?;
        let took = start.elapsed();
        report.create_steal = steal::since(cpu);
        let m1 = op.metrics().await?;
        report.ready_seconds = Some(secs(took));
        report.create_submitted_seconds = Some(secs(submitted));
        report.create_admin_requests_by_api = requests_between(&m0, &m1);
        let kube_writes = counter(&m1, "oxbow_user_operator_kube_writes_total")
            - counter(&m0, "oxbow_user_operator_kube_writes_total");
        report.create_kube_writes = Some(kube_writes);
        println!(
            "create {} KafkaUsers -> all Ready: {:.2} s (creates returned at {:.2} s); Kafka admin requests {} [{}]; operator's Kubernetes writes {kube_writes}; {}",
            args.count,
            took.as_secs_f64(),
            submitted.as_secs_f64(),
            total(&report.create_admin_requests_by_api),
            show_by_api(&report.create_admin_requests_by_api),
            steal::show(report.create_steal)
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
        let cpu = steal::sample();
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
        let stolen = steal::since(cpu);
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
            steal: stolen,
        };
        println!(
            "full resync, nothing changed: {} pass(es) in a {:.2} s window; Kafka admin requests {} [{}]; Kafka writes {}; Kubernetes writes {}; {}",
            resync.passes,
            resync.window_seconds,
            resync.admin_requests,
            show_by_api(&resync.admin_requests_by_api),
            resync.kafka_write_requests,
            resync.kube_writes,
            steal::show(resync.steal)
        );
        report.resync = Some(resync);

        // Delete the users, until Kafka holds nothing for them.
        let m2 = op.metrics().await?;
        let cpu = steal::sample();
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
        report.delete_steal = steal::since(cpu);
        let m3 = op.metrics().await?;
        report.delete_seconds = Some(secs(took));
        report.delete_admin_requests_by_api = requests_between(&m2, &m3);
        println!(
            "delete {} KafkaUsers -> Kafka holds nothing for them: {:.2} s (deletes returned at {:.2} s); Kafka admin requests {} [{}]; {}",
            args.count,
            took.as_secs_f64(),
            submitted.as_secs_f64(),
            total(&report.delete_admin_requests_by_api),
            show_by_api(&report.delete_admin_requests_by_api),
            steal::show(report.delete_steal)
        );

        let memory = peak_rss(&op, &sampler)?;
        println!("operator memory: {}", memory.show());
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
                "{:<40} {s:.2} s ({} Kafka admin requests), {}",
                "create -> all Ready",
                total(&r.create_admin_requests_by_api),
                steal::show(r.create_steal)
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
                "{:<40} {s:.2} s ({} Kafka admin requests), {}",
                "delete -> Kafka clean",
                total(&r.delete_admin_requests_by_api),
                steal::show(r.delete_steal)
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
    use super::steal::Steal;
    use super::topics::{
        KUBE_FLOOR_CLUSTER, Phase, finalizer_patch, made_up_topic_id, ratio_to_max,
        ratio_to_max_floor, ready_status_body, summary_table,
    };
    use super::users::ignore_all_but;
    use super::{CLUSTER, topic_obs};
    use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
    use serde_json::json;
    use shared_crds::{KafkaTopic, KafkaTopicSpec, KafkaTopicStatus, labels};

    fn phase(name: &str, seconds: f64) -> Phase {
        Phase {
            name: name.into(),
            seconds,
            ..Phase::default()
        }
    }

    #[test]
    fn the_kube_floor_is_on_unless_skipped() {
        use clap::{CommandFactory, Parser};
        super::Cli::command().debug_assert();
        let topics = |args: &[&str]| match super::Cli::try_parse_from(args).unwrap().command {
            super::Command::Topics(t) => t,
            _ => unreachable!(),
        };
        assert!(!topics(&["bench", "topics"]).no_kube_floor);
        assert!(topics(&["bench", "topics", "--no-kube-floor"]).no_kube_floor);
    }

    #[test]
    fn the_ratio_is_to_the_larger_floor() {
        assert_eq!(ratio_to_max(10.59, &[0.49]), Some(21.61));
        assert_eq!(ratio_to_max(10.0, &[0.5, 4.0]), Some(2.5));
        assert_eq!(ratio_to_max(10.0, &[4.0, 0.5]), Some(2.5));
        assert_eq!(ratio_to_max(1.0, &[3.0]), Some(0.33));
        assert_eq!(ratio_to_max(1.0, &[0.0]), None);
        assert_eq!(ratio_to_max(1.0, &[]), None);

        let (o, f) = (phase("create", 10.0), phase("create", 0.5));
        let kube = [phase("create", 4.0), phase("delete", 20.0)];
        assert_eq!(ratio_to_max_floor(&o, &f, &kube), Some(2.5));
        // The Kafka floor is the larger one.
        let kube = [phase("create", 0.25)];
        assert_eq!(ratio_to_max_floor(&o, &f, &kube), Some(20.0));
        // No Kubernetes floor for the phase (skipped): no ratio, rather than the Kafka one.
        assert_eq!(ratio_to_max_floor(&o, &f, &[phase("delete", 2.0)]), None);
        assert_eq!(ratio_to_max_floor(&o, &f, &[]), None);
    }

    #[test]
    fn the_finalizer_patches_have_the_operators_shape() {
        let f = labels::TOPIC_FINALIZER;
        assert_eq!(
            finalizer_patch(&[], true),
            json!([
                { "op": "test", "path": "/metadata/finalizers", "value": null },
                { "op": "add", "path": "/metadata/finalizers", "value": [f] },
            ])
        );
        let other = vec!["x.io/other".to_string()];
        assert_eq!(
            finalizer_patch(&other, true),
            json!([
                { "op": "test", "path": "/metadata/finalizers", "value": ["x.io/other"] },
                { "op": "add", "path": "/metadata/finalizers/-", "value": f },
            ])
        );
        let both = vec!["x.io/other".to_string(), f.to_string()];
        assert_eq!(
            finalizer_patch(&both, false),
            json!([
                { "op": "test", "path": "/metadata/finalizers/1", "value": f },
                { "op": "remove", "path": "/metadata/finalizers/1" },
            ])
        );
        assert_eq!(finalizer_patch(&other, false), json!([]));
        // Each is a valid JSON patch for kube.
        for p in [
            finalizer_patch(&[], true),
            finalizer_patch(&other, true),
            finalizer_patch(&both, false),
        ] {
            let _: kube::api::Patch<()> =
                kube::api::Patch::Json(serde_json::from_value(p).unwrap());
        }
    }

    #[test]
    fn the_floor_status_is_ready_for_its_generation() {
        let since = Time(Timestamp::from_second(1_700_000_000).unwrap());
        let body = ready_status_body("bench-1f-kube-00007", 2, &made_up_topic_id(7), &since);
        assert_eq!(body["apiVersion"], shared_crds::API_VERSION);
        assert_eq!(body["kind"], "KafkaTopic");
        assert_eq!(
            body["status"],
            json!({
                "conditions": [{
                    "type": "Ready",
                    "status": "True",
                    "reason": "TopicSynced",
                    "lastTransitionTime": "2023-11-14T22:13:20Z",
                }],
                "observedGeneration": 2,
                "topicName": "bench-1f-kube-00007",
                "topicId": made_up_topic_id(7),
            })
        );
        // What the bench's own watch counts as synced.
        let mut kt = KafkaTopic::new(
            "bench-1f-kube-00007",
            KafkaTopicSpec {
                topic_name: None,
                partitions: Some(1),
                replicas: Some(1),
                config: None,
            },
        );
        kt.metadata.generation = Some(2);
        let status: KafkaTopicStatus = serde_json::from_value(body["status"].clone()).unwrap();
        kt.status = Some(status);
        assert!(topic_obs(&kt).synced());
        kt.metadata.generation = Some(3);
        assert!(!topic_obs(&kt).synced());
    }

    #[test]
    fn made_up_topic_ids_look_like_kafkas_and_differ() {
        let ids: std::collections::HashSet<String> = (0..1000).map(made_up_topic_id).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.len() == 22));
        // Nothing the bench's operator manages.
        assert_ne!(KUBE_FLOOR_CLUSTER, CLUSTER);
    }

    #[test]
    fn the_summary_table_adds_the_kube_floor_and_keeps_the_old_columns() {
        let stolen = |seconds, percent| Some(Steal { seconds, percent });
        let mut create = phase("create", 10.59);
        create.requests_seconds = Some(5.17);
        create.admin_requests = 30;
        create.steal = stolen(0.42, 7.0);
        let mut floor_create = phase("create", 0.49);
        floor_create.admin_requests = 3;
        floor_create.steal = stolen(0.0, 0.0);
        let mut kube_create = phase("create", 4.2);
        kube_create.steal = stolen(1.97, 23.4);
        let operator = [create, phase("change", 10.73)];
        let floor = [floor_create, phase("change", 9.25), phase("delete", 0.0)];
        let kube = [kube_create, phase("change", 3.0)];
        let lines = summary_table(&operator, &floor, &kube);
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[0],
            "phase      operator s      floor s    ratio after writes s        ratio    op requests floor requests kube floor s op / max floor      steal %"
        );
        assert_eq!(
            lines[1],
            "create          10.59         0.49   21.61x           5.42       11.06x             30              3         4.20          2.52x       7/0/23"
        );
        // The Kafka floor is the larger here; steal not measured (no /proc/stat): dashes.
        assert!(
            lines[2].ends_with("         3.00          1.16x        -/-/-"),
            "{}",
            lines[2]
        );
        // No operator phase, no Kubernetes floor phase, a zero floor: dashes.
        assert_eq!(
            lines[3],
            "delete              -         0.00        -              -            -              -              0            -              -        -/-/-"
        );
        // Without the Kubernetes floor the old columns are unchanged and the new ones dashes.
        let without = summary_table(&operator, &floor, &[]);
        let old_columns = lines[1].len() - 41;
        assert_eq!(without[1][..old_columns], lines[1][..old_columns]);
        assert!(
            without[1].ends_with("            -              -        7/0/-"),
            "{}",
            without[1]
        );
    }

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
