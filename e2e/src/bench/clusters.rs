//! `bench clusters`: the cluster operator's peak memory and the time to reconcile N Kafka
//! clusters of three nodes each (one pool with the controller and broker roles, ephemeral
//! storage, a topic and a user operator). No kubelet runs on the testbed yet, so "reconciled"
//! means every object of every cluster exists (its pods created, its status written), not that
//! brokers run. The target is the issue's: peak RSS < 48 MiB for 10 clusters.

use super::*;
use k8s_openapi::api::core::v1::Pod;
use shared_crds::{Kafka, KafkaNodePool};

/// The memory target for 10 clusters.
const TARGET_MIB: f64 = 48.0;

#[derive(Debug, Serialize)]
struct Report {
    clusters: usize,
    nodes_per_cluster: usize,
    /// From the first create request to every cluster reconciled.
    reconciled_seconds: f64,
    /// The cluster operator's writes to Kubernetes until then, and over the following full
    /// round of reconciles of the unchanged clusters.
    writes_until_reconciled: f64,
    writes_in_a_quiet_round: f64,
    /// Those writes by `kind/verb`.
    quiet_round_writes_by_kind: BTreeMap<String, f64>,
    memory: Memory,
    machine: Machine,
}

fn kafka(name: &str) -> Result<Kafka> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "kafka.oxbow.rs/v1beta1",
        "kind": "Kafka",
        "metadata": {"name": name},
        "spec": {
            "kafka": {
                "version": "4.1.2",
                "listeners": [
                    {"name": "plain", "port": 9092, "type": "internal", "tls": false},
                    {"name": "tls", "port": 9093, "type": "internal", "tls": true,
                     "authentication": {"type": "tls"}}
                ],
                "authorization": {"type": "simple"}
            },
            "entityOperator": {"topicOperator": {}, "userOperator": {}}
        }
    }))?)
}

fn pool(cluster: &str, nodes: usize) -> Result<KafkaNodePool> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "kafka.oxbow.rs/v1beta1",
        "kind": "KafkaNodePool",
        "metadata": {"name": format!("{cluster}-nodes"), "labels": {"oxbow.rs/cluster": cluster}},
        "spec": {
            "replicas": nodes,
            "roles": ["controller", "broker"],
            "storage": {"type": "ephemeral"}
        }
    }))?)
}

async fn writes(op: &OperatorProcess) -> Result<f64> {
    Ok(op
        .metrics()
        .await?
        .sum("oxbow_kubernetes_writes_total", &[]))
}

/// The writes counted so far, by `kind/verb`.
async fn writes_by_kind(op: &OperatorProcess) -> Result<BTreeMap<String, f64>> {
    Ok(op
        .metrics()
        .await?
        .samples
        .into_iter()
        .filter(|s| s.name == "oxbow_kubernetes_writes_total")
        .map(|s| {
            let kind = s.labels.get("kind").cloned().unwrap_or_default();
            let verb = s.labels.get("verb").cloned().unwrap_or_default();
            (format!("{kind}/{verb}"), s.value)
        })
        .collect())
}

async fn reconciles(op: &OperatorProcess) -> Result<f64> {
    Ok(op
        .metrics()
        .await?
        .sum("oxbow_reconciliations_total", &[("kind", "Kafka")]))
}

/// True when `kafka` has its status and all of its pods exist.
fn reconciled(kafka: &Kafka, pods: &[Pod], nodes: usize) -> bool {
    let name = kafka.name_any();
    let has_status = kafka.status.as_ref().is_some_and(|s| {
        s.cluster_id.is_some() && s.listeners.as_ref().is_some_and(|l| l.len() == 2)
    });
    let own_pods = pods
        .iter()
        .filter(|p| p.labels().get(labels::CLUSTER) == Some(&name))
        .filter(|p| {
            p.labels().get(labels::NAME).map(String::as_str) == Some(&format!("{name}-kafka"))
        })
        .count();
    has_status && own_pods == nodes
}

pub(super) async fn run(args: ClustersArgs) -> Result<()> {
    let load_at_start = loadavg();
    let run = Run::start("clusters").await?;
    let outcome = guarded(measure(&run, &args, load_at_start)).await;
    let cleanup = run.delete_namespace().await;
    outcome?;
    cleanup
}

async fn measure(run: &Run, args: &ClustersArgs, load_at_start: String) -> Result<()> {
    let nodes = 3;
    let mut op = OperatorProcess::start(
        "bench-cluster-operator",
        "cluster-operator",
        OperatorEnv::default()
            .set("KUBECONFIG", run.env.kubeconfig.display().to_string())
            .set("OXBOW_NAMESPACES", run.namespace.clone()),
    )?;
    let sampler = RssSampler::start(&op)?;
    op.wait_ready(READY_DEADLINE).await?;
    let kafkas: Api<Kafka> = Api::namespaced(run.client.clone(), &run.namespace);
    let pools: Api<KafkaNodePool> = Api::namespaced(run.client.clone(), &run.namespace);
    let pods: Api<Pod> = Api::namespaced(run.client.clone(), &run.namespace);
    let names: Vec<String> = (0..args.count).map(|i| format!("c{i}")).collect();
    let start = Instant::now();
    let mut all_pools = Vec::new();
    let mut all_kafkas = Vec::new();
    for name in &names {
        all_pools.push(pool(name, nodes)?);
        all_kafkas.push(kafka(name)?);
    }
    create_all(&pools, all_pools, 8).await?;
    create_all(&kafkas, all_kafkas, 8).await?;
    let deadline = Duration::from_secs(args.deadline_seconds);
    loop {
        let ks = kafkas.list(&ListParams::default()).await?.items;
        let ps = pods.list(&ListParams::default()).await?.items;
        let done = ks.iter().filter(|k| reconciled(k, &ps, nodes)).count();
        if done == args.count {
            break;
        }
        if start.elapsed() > deadline {
            bail!(
                "{done} of {} clusters reconciled within {deadline:?}; operator log {}",
                args.count,
                op.log_path().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let reconciled_in = start.elapsed();
    let writes_until = writes(&op).await?;
    // A quiet round: once every cluster was reconciled once more after the one that created its
    // last objects (its status may still catch up then), every cluster reconciled twice more
    // (not-ready clusters are looked at every 10 s), counting the writes meanwhile.
    let settle_from = reconciles(&op).await?;
    let settle_start = Instant::now();
    while reconciles(&op).await? < settle_from + args.count as f64 {
        if settle_start.elapsed() > deadline {
            bail!("the clusters were not reconciled again within {deadline:?}");
        }
        tokio::time::sleep(METRICS_POLL).await;
    }
    let before = reconciles(&op).await?;
    let writes_before = writes(&op).await?;
    let by_kind_before = writes_by_kind(&op).await?;
    let quiet_start = Instant::now();
    while reconciles(&op).await? < before + 2.0 * args.count as f64 {
        if quiet_start.elapsed() > deadline {
            bail!("the clusters were not reconciled twice more within {deadline:?}");
        }
        tokio::time::sleep(METRICS_POLL).await;
    }
    let quiet_writes = writes(&op).await? - writes_before;
    let quiet_round_writes_by_kind: BTreeMap<String, f64> = writes_by_kind(&op)
        .await?
        .into_iter()
        .map(|(k, v)| {
            let d = v - by_kind_before.get(&k).copied().unwrap_or(0.0);
            (k, d)
        })
        .filter(|(_, d)| *d > 0.0)
        .collect();
    let memory = peak_rss(&op, &sampler)?;
    let report = Report {
        clusters: args.count,
        nodes_per_cluster: nodes,
        reconciled_seconds: secs(reconciled_in),
        writes_until_reconciled: writes_until,
        writes_in_a_quiet_round: quiet_writes,
        quiet_round_writes_by_kind,
        memory,
        machine: machine(load_at_start),
    };
    let peak_mib = report.memory.peak_rss_kib as f64 / 1024.0;
    println!(
        "{} clusters of {nodes} nodes reconciled in {:.2} s ({} writes); a quiet round of two reconciles each: {} writes {:?}",
        report.clusters,
        report.reconciled_seconds,
        report.writes_until_reconciled,
        report.writes_in_a_quiet_round,
        report.quiet_round_writes_by_kind
    );
    println!(
        "cluster operator peak RSS {peak_mib:.1} MiB (target < {TARGET_MIB} MiB: ratio {:.2}), RSS at the end {:.1} MiB",
        peak_mib / TARGET_MIB,
        report.memory.rss_kib as f64 / 1024.0
    );
    write_json(&args.json, &report)?;
    op.kill9()?;
    // Deleting the Kafkas first lets the garbage collector remove their children before the
    // namespace goes.
    for name in &names {
        let _ = kafkas.delete(name, &DeleteParams::default()).await;
    }
    Ok(())
}
