//! `bench stack`: the whole stack as a user runs it, measured. Oxbow is installed from
//! `manifests/install/` with `kubectl apply --server-side` into its own namespace `oxbow-bench`
//! (Pod Security `restricted`), the node agent runs every pod as local processes, and each run
//! applies the example cluster from `manifests/examples/` (one controller and three brokers on
//! persistent claims), times it to `Ready`, times a manual rolling restart of its four nodes,
//! reads the operators' peak memory and deletes the cluster again. The cluster operator's target
//! is the issue's: peak RSS < 48 MiB.
//!
//! Why `oxbow-bench` and not `oxbow`: the full-stack test and the quickstart use `oxbow` and
//! would find (or delete) the bench's install there. The bundle names the ServiceAccount's
//! namespace `oxbow` in its bindings, so the bench rewrites their subjects to `oxbow-bench` and
//! suffixes the ClusterRoleBinding names with `-oxbow-bench` (as e2e/tests/cluster_operator.rs
//! does), leaving an install in `oxbow` untouched. The CRDs and ClusterRoles are shared with such
//! an install and are left in place at the end.
//! May touch: the testbed's API server (namespace `oxbow-bench`, ClusterRoleBindings
//! `*-oxbow-bench`, the CRDs and ClusterRoles of the bundle), files under the testbed folder
//! (read: pids, logs), `/proc` (read), kubectl processes.

use super::*;
use anyhow::ensure;
use e2e::{
    objects,
    stack::{self, Stack, deployment_available, eventually, kafka_pods, kafka_ready, to_yaml},
};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{PersistentVolumeClaim, Pod, Service},
    rbac::v1::ClusterRoleBinding,
};
use shared_crds::{Kafka, KafkaNodePool};
use std::cell::Cell;

/// The bench's namespace; see the module comment.
const NS: &str = "oxbow-bench";
/// The example cluster's name, kept as `manifests/examples/` has it (the pools name it by label).
const KAFKA: &str = "my-cluster";
/// Every object Oxbow makes for the example cluster, and its node pools.
const CLUSTER_OBJECTS: &str = "oxbow.rs/cluster=my-cluster";
/// Nodes of the example cluster as the bench changes it: one controller, three brokers.
const NODES: usize = 4;
/// The memory target of the cluster operator.
const TARGET_MIB: f64 = 48.0;
/// How long the cluster operator's Deployment, and the entity operators' after Ready, get to
/// become available, and a running operator's process to be found.
const AVAILABLE_DEADLINE: Duration = Duration::from_secs(180);
/// How long the topic operator gets to delete KafkaTopics before their finalizers are removed.
const TOPICS_DEADLINE: Duration = Duration::from_secs(60);

/// The pods whose peak memory is read: (label selector, container).
const OPERATORS: [(&str, &str); 3] = [
    (
        "app.kubernetes.io/name=oxbow-cluster-operator",
        "cluster-operator",
    ),
    (
        "oxbow.rs/cluster=my-cluster,oxbow.rs/name=my-cluster-topic-operator",
        "topic-operator",
    ),
    (
        "oxbow.rs/cluster=my-cluster,oxbow.rs/name=my-cluster-user-operator",
        "user-operator",
    ),
];

#[derive(Debug, Serialize)]
struct RunFigures {
    /// From the first `kubectl apply` to `Ready=True` for the Kafka's generation.
    kafka_ready_seconds: f64,
    /// From the manual-roll annotation to every node pod replaced and Ready, and the Kafka Ready.
    roll_seconds: f64,
    /// The most node pods seen not Ready at once during the roll (polled every 500 ms).
    most_nodes_down_at_once: usize,
    /// Peak RSS (VmHWM) by container at the end of the run. The cluster operator's process lives
    /// through all runs, so its figure covers every run so far.
    peak_rss_mib: BTreeMap<String, f64>,
    /// From deleting the cluster to its pods, claims and Services gone.
    teardown_seconds: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    namespace: &'static str,
    nodes: usize,
    install_seconds: f64,
    runs: Vec<RunFigures>,
    median_kafka_ready_seconds: f64,
    median_roll_seconds: f64,
    max_peak_rss_mib: BTreeMap<String, f64>,
    cluster_operator_target_mib: f64,
    cluster_operator_ratio_to_target: f64,
    machine: Machine,
}

pub(super) async fn run(args: StackArgs) -> Result<()> {
    ensure!(args.runs >= 1, "--runs must be at least 1");
    let load_at_start = loadavg();
    // No Kafka client runs here; the sibling binary is named only because Stack wants one.
    let kafka_client = std::env::current_exe()?.with_file_name("kafka-client");
    let s = Stack::from_env(&kafka_client.to_string_lossy()).await?;
    let namespaces: Api<Namespace> = Api::all(s.client.clone());
    if namespaces.get_opt(NS).await?.is_some() {
        println!("namespace {NS} is left from an earlier run: removing it first");
        uninstall(&s).await?;
    }
    let outcome = guarded(measure(&s, &args, load_at_start)).await;
    let cleanup = uninstall(&s).await;
    match (&outcome, &cleanup) {
        (Err(_), Err(e)) => eprintln!("cleanup failed too: {e:#}"),
        (_, Ok(())) => println!("cleanup: namespace {NS} and its ClusterRoleBindings gone"),
        _ => {}
    }
    outcome?;
    cleanup
}

async fn measure(s: &Stack, args: &StackArgs, load_at_start: String) -> Result<()> {
    let started = Instant::now();
    install(s).await?;
    let install_seconds = secs(started.elapsed());
    println!("Oxbow installed in {NS}, cluster operator available in {install_seconds:.1} s");
    let mut runs = Vec::new();
    for i in 1..=args.runs {
        let figures = one_run(s, args).await?;
        println!(
            "run {i}/{}: Kafka Ready {:.1} s; rolling restart of {NODES} nodes {:.1} s (at most {} down at once); peak RSS {}",
            args.runs,
            figures.kafka_ready_seconds,
            figures.roll_seconds,
            figures.most_nodes_down_at_once,
            figures
                .peak_rss_mib
                .iter()
                .map(|(c, mib)| format!("{c} {mib:.1} MiB"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "run {i}/{}: cluster deleted, its pods, claims and Services gone in {:.1} s",
            args.runs, figures.teardown_seconds
        );
        runs.push(figures);
    }
    let mut max_peak_rss_mib: BTreeMap<String, f64> = BTreeMap::new();
    for (container, mib) in runs.iter().flat_map(|r| &r.peak_rss_mib) {
        let max = max_peak_rss_mib.entry(container.clone()).or_insert(0.0);
        *max = max.max(*mib);
    }
    let operator_mib = max_peak_rss_mib
        .get("cluster-operator")
        .copied()
        .unwrap_or_default();
    let report = Report {
        namespace: NS,
        nodes: NODES,
        install_seconds,
        median_kafka_ready_seconds: median(runs.iter().map(|r| r.kafka_ready_seconds)),
        median_roll_seconds: median(runs.iter().map(|r| r.roll_seconds)),
        runs,
        max_peak_rss_mib,
        cluster_operator_target_mib: TARGET_MIB,
        cluster_operator_ratio_to_target: operator_mib / TARGET_MIB,
        machine: machine(load_at_start),
    };
    print_summary(&report);
    write_json(&args.json, &report)
}

fn print_summary(r: &Report) {
    println!();
    println!(
        "== bench stack: example cluster from manifests/ ({} nodes: 1 controller, 3 brokers, persistent claims), {} runs, {} CPUs, load {} -> {} ==",
        r.nodes,
        r.runs.len(),
        r.machine.cpus,
        r.machine.loadavg_at_start,
        r.machine.loadavg_at_end
    );
    println!(
        "{:<40} {:.1} s",
        "median apply -> Kafka Ready", r.median_kafka_ready_seconds
    );
    println!(
        "{:<40} {:.1} s",
        format!("median rolling restart, {} nodes", r.nodes),
        r.median_roll_seconds
    );
    for (container, mib) in &r.max_peak_rss_mib {
        let label = format!("max peak RSS {container}");
        if container == "cluster-operator" {
            println!(
                "{label:<40} {mib:.1} MiB (target < {TARGET_MIB} MiB: ratio {:.2})",
                r.cluster_operator_ratio_to_target
            );
        } else {
            println!("{label:<40} {mib:.1} MiB");
        }
    }
    println!("note: {}", r.machine.note);
}

/// The middle value (the mean of the two middle ones for an even count); 0 for none.
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

// ---------------------------------------------------------------------------------------------
// Install and uninstall
// ---------------------------------------------------------------------------------------------

/// The install bundle for [`NS`]: the bindings' subjects name the ServiceAccount in [`NS`], and
/// the ClusterRoleBindings carry `-<NS>` so that they neither replace nor remove those of an
/// install in `oxbow`.
fn install_documents() -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    for file in objects::yaml_files(&objects::repo().join("manifests/install"))? {
        for mut doc in objects::documents(&file)? {
            if let Some(subjects) = doc.get_mut("subjects").and_then(Value::as_array_mut) {
                for subject in subjects {
                    subject["namespace"] = json!(NS);
                }
            }
            if doc["kind"] == "ClusterRoleBinding" {
                let name = format!(
                    "{}-{NS}",
                    doc["metadata"]["name"].as_str().unwrap_or_default()
                );
                doc["metadata"]["name"] = json!(name);
            }
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// The namespace, as README tells users to make it, then the bundle; waits for the operator.
async fn install(s: &Stack) -> Result<()> {
    s.apply(
        NS,
        &to_yaml(&[json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": NS,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest"
                }
            }
        })])?,
    )?;
    s.kubectl(
        &["apply", "--server-side", "-n", NS, "-f", "-"],
        Some(&to_yaml(&install_documents()?)?),
    )?;
    let deployments: Api<Deployment> = Api::namespaced(s.client.clone(), NS);
    s.wait(
        NS,
        "Deployment oxbow-cluster-operator available",
        AVAILABLE_DEADLINE,
        || deployment_available(&deployments, "oxbow-cluster-operator"),
    )
    .await
}

/// Removes what the bench installed, best effort and in an order that cannot hang: KafkaTopics
/// first (the topic operator deletes them while it runs; their finalizers are removed after
/// [`TOPICS_DEADLINE`]), then the Kafka and its pools, the namespace, the ClusterRoleBindings.
async fn uninstall(s: &Stack) -> Result<()> {
    let mut problems = Vec::new();
    let namespaces: Api<Namespace> = Api::all(s.client.clone());
    if namespaces.get_opt(NS).await?.is_some() {
        if let Err(e) = delete_topics(s).await {
            problems.push(format!("KafkaTopics: {e:#}"));
        }
        if let Err(e) = delete_kafka(s).await {
            problems.push(format!("Kafka {KAFKA}: {e:#}"));
        }
    }
    let deleted = match namespaces.delete(NS, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    };
    match deleted {
        Ok(()) => {
            let gone = eventually(
                &format!("namespace {NS} gone"),
                CLEANUP_DEADLINE,
                || async {
                    match namespaces.get_opt(NS).await {
                        Ok(None) => Ok(()),
                        Ok(Some(n)) => Err(format!("{:?}", n.status)),
                        Err(e) => Err(e.to_string()),
                    }
                },
            )
            .await;
            if let Err(e) = gone {
                problems.push(format!("{e:#}"));
            }
        }
        Err(e) => problems.push(format!("deleting namespace {NS}: {e}")),
    }
    // The bindings last: the operator keeps its rights while its namespace terminates.
    let bindings: Api<ClusterRoleBinding> = Api::all(s.client.clone());
    for doc in install_documents()? {
        if doc["kind"] == "ClusterRoleBinding" {
            let name = doc["metadata"]["name"].as_str().unwrap_or_default();
            match bindings.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => problems.push(format!("ClusterRoleBinding {name}: {e}")),
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(problems.join("; ")))
    }
}

/// Deletes every KafkaTopic of the namespace through the topic operator, or without it when it
/// has not released them within [`TOPICS_DEADLINE`].
async fn delete_topics(s: &Stack) -> Result<()> {
    let topics: Api<KafkaTopic> = Api::namespaced(s.client.clone(), NS);
    if topics.list(&ListParams::default()).await?.items.is_empty() {
        return Ok(());
    }
    topics
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await?;
    let released = eventually("KafkaTopics deleted", TOPICS_DEADLINE, || async {
        match topics.list(&ListParams::default()).await {
            Ok(l) if l.items.is_empty() => Ok(()),
            Ok(l) => Err(format!("{} left", l.items.len())),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    if released.is_err() {
        let n = force_delete_all(&topics).await?;
        println!("cleanup: removed the finalizers of {n} KafkaTopics the topic operator kept");
    }
    Ok(())
}

/// Deletes the Kafka and its pools (absent ones are fine); their children go by owner.
async fn delete_kafka(s: &Stack) -> Result<()> {
    let kafkas: Api<Kafka> = Api::namespaced(s.client.clone(), NS);
    match kafkas.delete(KAFKA, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(e).context("deleting the Kafka"),
    }
    let pools: Api<KafkaNodePool> = Api::namespaced(s.client.clone(), NS);
    pools
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels(CLUSTER_OBJECTS),
        )
        .await
        .context("deleting the node pools")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// One run
// ---------------------------------------------------------------------------------------------

async fn one_run(s: &Stack, args: &StackArgs) -> Result<RunFigures> {
    let kafkas: Api<Kafka> = Api::namespaced(s.client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), NS);
    let deployments: Api<Deployment> = Api::namespaced(s.client.clone(), NS);
    let example = objects::repo().join("manifests/examples/kafka.yaml");

    // The example cluster, applied the way README says, until Ready.
    let started = Instant::now();
    s.apply_path(NS, &example)?;
    // Both pools delete their claims with the cluster, so that every run starts from nothing.
    s.kubectl(
        &["apply", "--server-side", "-n", NS, "-f", "-"],
        Some(&stack::example_node_pools(true, true)?),
    )?;
    s.wait(
        NS,
        "Kafka my-cluster Ready",
        Duration::from_secs(args.ready_deadline_seconds),
        || kafka_ready(&kafkas, KAFKA),
    )
    .await?;
    let kafka_ready_seconds = secs(started.elapsed());

    // The entity operators start after Ready; the roll is timed once they run, so that their
    // start-up does not share the cores with it.
    for d in ["my-cluster-topic-operator", "my-cluster-user-operator"] {
        s.wait(NS, &format!("{d} available"), AVAILABLE_DEADLINE, || {
            deployment_available(&deployments, d)
        })
        .await?;
    }

    // A manual rolling restart of every node, until each pod was replaced and the Kafka is Ready.
    let before = kafka_pods(&pods, KAFKA).await?;
    ensure!(
        before.len() == NODES,
        "{NODES} Kafka pods expected, found {:?}",
        before.keys()
    );
    let roll_started = Instant::now();
    kafkas
        .patch(
            KAFKA,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {labels::MANUAL_ROLLING_UPDATE: "true"}}}),
            ),
        )
        .await
        .context("annotating the Kafka for a manual rolling update")?;
    let most_down = Cell::new(0usize);
    s.wait(
        NS,
        "rolling restart of every Kafka node",
        Duration::from_secs(args.roll_deadline_seconds),
        || async {
            let now = kafka_pods(&pods, KAFKA)
                .await
                .map_err(|e| format!("{e:#}"))?;
            let down = before
                .keys()
                .filter(|n| !now.get(*n).is_some_and(|(_, ready)| *ready))
                .count();
            most_down.set(most_down.get().max(down));
            let replaced: Vec<&String> = before
                .iter()
                .filter(|(n, (old, _))| {
                    now.get(*n).is_some_and(|(uid, ready)| uid != old && *ready)
                })
                .map(|(n, _)| n)
                .collect();
            if replaced.len() < before.len() {
                return Err(format!("replaced and Ready: {replaced:?}"));
            }
            kafka_ready(&kafkas, KAFKA).await
        },
    )
    .await?;
    let roll_seconds = secs(roll_started.elapsed());

    let mut peak_rss_mib = BTreeMap::new();
    for (selector, container) in OPERATORS {
        peak_rss_mib.insert(
            container.to_owned(),
            peak_rss(s, selector, container).await?,
        );
    }

    let teardown_started = Instant::now();
    delete_topics(s).await?;
    delete_kafka(s).await?;
    s.wait(
        NS,
        "my-cluster, its pools, pods, claims and Services gone",
        CLEANUP_DEADLINE,
        || leftovers(s),
    )
    .await?;
    Ok(RunFigures {
        kafka_ready_seconds,
        roll_seconds,
        most_nodes_down_at_once: most_down.get(),
        peak_rss_mib,
        teardown_seconds: secs(teardown_started.elapsed()),
    })
}

/// Peak RSS of the container of the one running pod `selector` picks, once it can be read.
async fn peak_rss(s: &Stack, selector: &str, container: &str) -> Result<f64> {
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), NS);
    eventually(
        &format!("peak RSS of {container}"),
        AVAILABLE_DEADLINE,
        || async {
            let list = pods
                .list(&ListParams::default().labels(selector))
                .await
                .map_err(|e| e.to_string())?;
            let running: Vec<String> = list
                .items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .map(|p| p.name_any())
                .collect();
            let [pod] = running.as_slice() else {
                return Err(format!("running pods {running:?}"));
            };
            let pid = s
                .container_pid(NS, pod, container)
                .ok_or_else(|| format!("no pid of {pod}/{container}"))?;
            stack::peak_rss_mib(pid).ok_or_else(|| format!("no VmHWM of {pod}/{container} ({pid})"))
        },
    )
    .await
}

/// `Ok` once the Kafka, its pools and every pod, claim and Service of the cluster are gone
/// (also those still terminating).
async fn leftovers(s: &Stack) -> Result<(), String> {
    let lp = ListParams::default().labels(CLUSTER_OBJECTS);
    let mut left = Vec::new();
    let kafkas: Api<Kafka> = Api::namespaced(s.client.clone(), NS);
    if kafkas
        .get_opt(KAFKA)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        left.push(format!("kafka/{KAFKA}"));
    }
    let pools: Api<KafkaNodePool> = Api::namespaced(s.client.clone(), NS);
    left.extend(stack::names(&pools, &lp, "kafkanodepool").await?);
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), NS);
    left.extend(stack::names(&pods, &lp, "pod").await?);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(s.client.clone(), NS);
    left.extend(stack::names(&claims, &lp, "pvc").await?);
    let services: Api<Service> = Api::namespaced(s.client.clone(), NS);
    left.extend(stack::names(&services, &lp, "service").await?);
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("{left:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_install_binds_the_bench_namespace_and_leaves_oxbow_alone() {
        let docs = install_documents().unwrap();
        let bindings: Vec<&Value> = docs
            .iter()
            .filter(|d| d.get("subjects").is_some())
            .collect();
        assert!(!bindings.is_empty());
        for b in bindings {
            for subject in b["subjects"].as_array().unwrap() {
                assert_eq!(subject["namespace"], NS, "{b}");
            }
        }
        let cluster_bindings: Vec<&str> = docs
            .iter()
            .filter(|d| d["kind"] == "ClusterRoleBinding")
            .map(|d| d["metadata"]["name"].as_str().unwrap())
            .collect();
        assert!(!cluster_bindings.is_empty());
        assert!(
            cluster_bindings.iter().all(|n| n.ends_with("-oxbow-bench")),
            "{cluster_bindings:?}"
        );
        assert!(docs.iter().any(|d| d["kind"] == "Deployment"));
    }

    #[test]
    fn the_pools_make_four_nodes_that_delete_their_claims() {
        let docs: Vec<Value> =
            serde_yaml::Deserializer::from_str(&stack::example_node_pools(true, true).unwrap())
                .map(|d| serde::Deserialize::deserialize(d).unwrap())
                .collect();
        let replicas: u64 = docs
            .iter()
            .map(|d| d["spec"]["replicas"].as_u64().unwrap())
            .sum();
        assert_eq!(replicas as usize, NODES);
        for d in &docs {
            assert_eq!(d["metadata"]["labels"]["oxbow.rs/cluster"], KAFKA);
            assert_eq!(
                d["spec"]["storage"],
                json!({"type": "persistent-claim", "size": "1Gi", "deleteClaim": true})
            );
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
        assert_eq!(median(std::iter::empty()), 0.0);
    }
}
