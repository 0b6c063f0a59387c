//! Full stack, the way a user runs it: Oxbow installed with `kubectl apply` from
//! `manifests/install/` into a namespace that enforces Pod Security `restricted`, the example
//! cluster from `manifests/examples/`, every pod (the cluster operator, the brokers and
//! controllers, the topic and user operators) run by the testbed's node agent, and Kafka clients
//! in the testbed's client network namespace. Needs `testbed up --nodes 1` (or more).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use e2e::stack::{
    self, Stack, condition, deployment_available, eventually, kafka_pods, kafka_ready,
};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Pod, Secret, Service},
};
use kube::{
    Api,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};
use serde_json::{Value, json};
use shared_crds::{kafka::Kafka, topic::KafkaTopic, user::KafkaUser};

const NS: &str = "oxbow";
const CLUSTER: &str = "my-cluster";
const CHILDREN: &str = "oxbow.rs/cluster=my-cluster,oxbow.rs/kind=Kafka";

fn repo(path: &str) -> std::path::PathBuf {
    e2e::objects::repo().join(path)
}

async fn secret_value(s: &Stack, name: &str, key: &str) -> Result<Vec<u8>> {
    let api: Api<Secret> = Api::namespaced(s.client.clone(), NS);
    let secret = api
        .get(name)
        .await
        .with_context(|| format!("secret {name}"))?;
    Ok(secret
        .data
        .and_then(|d| d.get(key).cloned())
        .with_context(|| format!("secret {name} has no {key}"))?
        .0)
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Deletes the namespace left by an earlier run and waits until it is gone.
async fn fresh_namespace(s: &Stack) -> Result<()> {
    let api: Api<Namespace> = Api::all(s.client.clone());
    if api.get_opt(NS).await?.is_some() {
        // A run that failed midway may have left KafkaTopics whose topic operator is gone:
        // their finalizers would hold the namespace in Terminating.
        let topics: Api<KafkaTopic> = Api::namespaced(s.client.clone(), NS);
        for t in topics.list(&ListParams::default()).await?.items {
            let name = t.metadata.name.clone().unwrap_or_default();
            topics
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                )
                .await?;
        }
        let _ = api.delete(NS, &DeleteParams::default()).await;
        eventually("old namespace gone", Duration::from_secs(180), || async {
            match api.get_opt(NS).await {
                Ok(None) => Ok(()),
                other => Err(format!("{:?}", other.map(|n| n.map(|n| n.status)))),
            }
        })
        .await?;
    }
    s.apply(
        NS,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: oxbow\n  labels:\n    pod-security.kubernetes.io/enforce: restricted\n    pod-security.kubernetes.io/enforce-version: latest\n",
    )?;
    Ok(())
}

struct Clients<'a> {
    s: &'a Stack,
    dir: &'a Path,
}

impl Clients<'_> {
    fn scram(&self, extra: &[&str]) -> Result<Value> {
        let mut a = args(&[
            "--bootstrap",
            "my-cluster-kafka-bootstrap.oxbow.svc:9094",
            "--security-protocol",
            "SASL_SSL",
            "--user",
            "my-scram-user",
        ]);
        a.push("--password-file".into());
        a.push(self.dir.join("scram-password").display().to_string());
        a.push("--ca".into());
        a.push(self.dir.join("cluster-ca.crt").display().to_string());
        a.extend(args(extra));
        self.s.client(&a)
    }

    fn tls(&self, extra: &[&str]) -> Result<Value> {
        self.mutual_tls(9093, "tls-user", extra)
    }

    fn plain(&self, extra: &[&str]) -> Result<Value> {
        let mut a = args(&["--bootstrap", "my-cluster-kafka-bootstrap.oxbow.svc:9092"]);
        a.extend(args(extra));
        self.s.client(&a)
    }

    /// As the cluster operator (a super user) on the replication listener.
    fn operator(&self, extra: &[&str]) -> Result<Value> {
        self.mutual_tls(9091, "operator", extra)
    }

    /// Over TLS to listener `port`, with the client certificate and key saved as
    /// `<identity>.crt` and `<identity>.key`.
    fn mutual_tls(&self, port: u16, identity: &str, extra: &[&str]) -> Result<Value> {
        let mut a = args(&[
            "--bootstrap",
            &format!("my-cluster-kafka-bootstrap.oxbow.svc:{port}"),
            "--security-protocol",
            "SSL",
        ]);
        for (flag, file) in [
            ("--ca", "cluster-ca.crt".to_owned()),
            ("--cert", format!("{identity}.crt")),
            ("--key", format!("{identity}.key")),
        ] {
            a.push(flag.into());
            a.push(self.dir.join(file).display().to_string());
        }
        a.extend(args(extra));
        self.s.client(&a)
    }
}

/// One message to `topic`, given 15 s: what a client tries where its rights should stop it.
fn produce_one(topic: &str) -> [&str; 7] {
    [
        "produce",
        "--topic",
        topic,
        "--count",
        "1",
        "--timeout-secs",
        "15",
    ]
}

fn authorization_denied(v: &Value) -> bool {
    v["failed"].as_u64() == v["sent"].as_u64()
        && v["errors"].as_array().is_some_and(|e| {
            e.iter()
                .any(|m| m.as_str().unwrap_or_default().contains("authoriz"))
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn install_example_cluster_clients_roll_under_load_and_delete() -> Result<()> {
    let s = Stack::from_env(env!("CARGO_BIN_EXE_kafka-client")).await?;
    let dir = tempfile::tempdir()?;
    let mut figures = BTreeMap::new();

    // 1. Install, as README says, into a namespace enforcing Pod Security `restricted`.
    fresh_namespace(&s).await?;
    s.apply_path(NS, &repo("manifests/install"))?;
    let deployments: Api<Deployment> = Api::namespaced(s.client.clone(), NS);
    s.wait(
        NS,
        "cluster operator Available",
        Duration::from_secs(180),
        || deployment_available(&deployments, "oxbow-cluster-operator"),
    )
    .await?;

    // 2. The example cluster, with one controller and three brokers (four nodes).
    let started = Instant::now();
    s.apply_path(NS, &repo("manifests/examples/kafka.yaml"))?;
    // The controller keeps its claim when the cluster goes, the brokers do not (checked in 7).
    s.kubectl(
        &["apply", "--server-side", "-n", NS, "-f", "-"],
        Some(&stack::example_node_pools(false, true)?),
    )?;
    let kafkas: Api<Kafka> = Api::namespaced(s.client.clone(), NS);
    s.wait(
        NS,
        "Kafka my-cluster Ready",
        Duration::from_secs(600),
        || kafka_ready(&kafkas, CLUSTER),
    )
    .await?;
    let ready_secs = started.elapsed().as_secs_f64();
    figures.insert("kafka_ready_seconds", ready_secs);
    eprintln!("FIGURE kafka_ready_seconds={ready_secs:.1}");

    let kafka = kafkas.get(CLUSTER).await?;
    let listeners: BTreeMap<String, String> = kafka
        .status
        .as_ref()
        .and_then(|s| s.listeners.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|l| {
            (
                l.name.clone(),
                l.bootstrap_servers.clone().unwrap_or_default(),
            )
        })
        .collect();
    for (name, port) in [("plain", 9092), ("tls", 9093), ("scram", 9094)] {
        let expected = format!("my-cluster-kafka-bootstrap.oxbow.svc:{port}");
        ensure!(
            listeners.get(name).is_some_and(|b| b.contains(&expected)),
            "status.listeners[{name}] should name {expected}: {listeners:?}"
        );
    }

    // 3. The topic and user operators, the example topic and users, and clients on every listener.
    for d in ["my-cluster-topic-operator", "my-cluster-user-operator"] {
        s.wait(
            NS,
            &format!("{d} Available"),
            Duration::from_secs(180),
            || deployment_available(&deployments, d),
        )
        .await?;
    }
    for f in [
        "kafka-topic.yaml",
        "kafka-user-scram.yaml",
        "kafka-user-tls.yaml",
    ] {
        s.apply_path(NS, &repo(&format!("manifests/examples/{f}")))?;
    }
    let topics: Api<KafkaTopic> = Api::namespaced(s.client.clone(), NS);
    let users: Api<KafkaUser> = Api::namespaced(s.client.clone(), NS);
    s.wait(
        NS,
        "KafkaTopic my-topic Ready",
        Duration::from_secs(120),
        || async {
            let t = topics.get("my-topic").await.map_err(|e| e.to_string())?;
            let st = t.status.as_ref();
            match condition(st.and_then(|s| s.conditions.as_ref()), "Ready") {
                Some((s, _, _)) if s == "True" && st.and_then(|s| s.topic_id.clone()).is_some() => {
                    Ok(())
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await?;
    for u in ["my-scram-user", "my-tls-user"] {
        s.wait(
            NS,
            &format!("KafkaUser {u} Ready"),
            Duration::from_secs(120),
            || async {
                let k = users.get(u).await.map_err(|e| e.to_string())?;
                match condition(
                    k.status.as_ref().and_then(|s| s.conditions.as_ref()),
                    "Ready",
                ) {
                    Some((s, _, _)) if s == "True" => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await?;
    }
    // The files the clients read: (file, Secret, key).
    for (file, secret, key) in [
        ("cluster-ca.crt", "my-cluster-cluster-ca-cert", "ca.crt"),
        ("scram-password", "my-scram-user", "password"),
        ("tls-user.crt", "my-tls-user", "user.crt"),
        ("tls-user.key", "my-tls-user", "user.key"),
        (
            "operator.crt",
            "my-cluster-cluster-operator-certs",
            "tls.crt",
        ),
        (
            "operator.key",
            "my-cluster-cluster-operator-certs",
            "tls.key",
        ),
    ] {
        stack::private_file(dir.path(), file, &secret_value(&s, secret, key).await?)?;
    }
    let c = Clients {
        s: &s,
        dir: dir.path(),
    };

    // SCRAM over TLS: the user may write and read my-topic (group my-group) and nothing else.
    let sent = c.scram(&["produce", "--topic", "my-topic", "--count", "20"])?;
    ensure!(
        sent["acked"] == 20 && sent["failed"] == 0,
        "SCRAM produce: {sent}"
    );
    let got = c.scram(&[
        "consume", "--topic", "my-topic", "--group", "my-group", "--count", "20",
    ])?;
    ensure!(got["received"].as_u64() >= Some(20), "SCRAM consume: {got}");
    let denied = c.scram(&produce_one("not-my-topic"))?;
    ensure!(
        authorization_denied(&denied),
        "SCRAM produce outside its ACLs must be denied: {denied}"
    );
    // Mutual TLS with the user's certificate: it may read my-* topics but not write.
    let got = c.tls(&[
        "consume",
        "--topic",
        "my-topic",
        "--group",
        "my-tls-group",
        "--count",
        "20",
    ])?;
    ensure!(got["received"].as_u64() >= Some(20), "TLS consume: {got}");
    let denied = c.tls(&produce_one("my-topic"))?;
    ensure!(
        authorization_denied(&denied),
        "TLS produce without Write must be denied: {denied}"
    );
    // The plain listener carries no identity: with `authorization: simple` its anonymous
    // clients are refused.
    let denied = c.plain(&produce_one("my-topic"))?;
    ensure!(
        authorization_denied(&denied),
        "anonymous produce on plain must be denied: {denied}"
    );

    // A topic made in Kafka becomes a KafkaTopic.
    let made = c.operator(&[
        "create-topic",
        "--topic",
        "made-in-kafka",
        "--partitions",
        "2",
        "--replication-factor",
        "3",
    ])?;
    ensure!(
        made["results"][0] == "created made-in-kafka",
        "create-topic: {made}"
    );
    s.wait(
        NS,
        "KafkaTopic for made-in-kafka",
        Duration::from_secs(120),
        || async {
            let t = topics
                .get_opt("made-in-kafka")
                .await
                .map_err(|e| e.to_string())?;
            match t {
                Some(t) if t.spec.partitions == Some(2) => Ok(()),
                other => Err(format!("{:?}", other.map(|t| t.spec))),
            }
        },
    )
    .await?;

    // 4. A broker config change rolls every node, one at a time, controllers first, while an
    //    acks=all producer writes to my-topic (replicas 3, min.insync.replicas 2). The cluster
    //    operator's pod is killed halfway; its successor must finish the roll.
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), NS);
    let before = kafka_pods(&pods, CLUSTER).await?;
    ensure!(before.len() == 4, "4 Kafka pods expected: {before:?}");
    let stop = dir.path().join("stop-producer");
    let mut producer_args = args(&[
        "--bootstrap",
        "my-cluster-kafka-bootstrap.oxbow.svc:9094",
        "--security-protocol",
        "SASL_SSL",
        "--user",
        "my-scram-user",
    ]);
    for (flag, file) in [
        ("--password-file", "scram-password"),
        ("--ca", "cluster-ca.crt"),
    ] {
        producer_args.push(flag.into());
        producer_args.push(dir.path().join(file).display().to_string());
    }
    producer_args.extend(args(&[
        "produce",
        "--topic",
        "my-topic",
        "--interval-ms",
        "20",
        // librdkafka's own default delivery timeout: a send counts as failed only if Kafka
        // has not acknowledged it (acks=all) within 5 minutes.
        "--timeout-secs",
        "300",
        // Idempotence, connection and metadata events, for the diagnosis of a failed send.
        "--debug",
        "eos,broker,topic",
        "--until-file",
    ]));
    producer_args.push(stop.display().to_string());
    let producer_log = dir.path().join("producer.log");
    producer_args.push("--log-file".into());
    producer_args.push(producer_log.display().to_string());
    let producer = s.spawn_client(&producer_args)?;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let roll_started = Instant::now();
    kafkas
        .patch(
            CLUSTER,
            &PatchParams::apply("oxbow-e2e-full-stack"),
            &Patch::Merge(
                json!({"spec": {"kafka": {"config": {"auto.create.topics.enable": false}}}}),
            ),
        )
        .await?;
    let mut replaced: Vec<String> = Vec::new();
    let mut max_unready = 0usize;
    let mut worst = String::new();
    let mut operator_killed = false;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let now = kafka_pods(&pods, CLUSTER).await?;
        let unready: Vec<&String> = before
            .keys()
            .filter(|n| !now.get(*n).is_some_and(|(_, r)| *r))
            .collect();
        if unready.len() > max_unready {
            max_unready = unready.len();
            worst = format!(
                "{:.1}s into the roll: {unready:?} down",
                roll_started.elapsed().as_secs_f64()
            );
        }
        for (name, (uid, ready)) in &now {
            let old = before.get(name).map(|(u, _)| u);
            if old != Some(uid) && *ready && !replaced.contains(name) {
                replaced.push(name.clone());
            }
        }
        if replaced.len() == 1 && !operator_killed {
            let list = pods
                .list(
                    &ListParams::default().labels("app.kubernetes.io/name=oxbow-cluster-operator"),
                )
                .await?;
            for p in list.items {
                pods.delete(
                    &p.metadata.name.unwrap_or_default(),
                    &DeleteParams {
                        grace_period_seconds: Some(0),
                        ..DeleteParams::default()
                    },
                )
                .await?;
            }
            operator_killed = true;
        }
        if replaced.len() == before.len() && kafka_ready(&kafkas, CLUSTER).await.is_ok() {
            break;
        }
        if Instant::now() > deadline {
            std::fs::write(&stop, b"")?;
            bail!(
                "roll did not finish: replaced {replaced:?}\n{}",
                s.diagnostics(NS).await
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let roll_secs = roll_started.elapsed().as_secs_f64();
    figures.insert("rolling_restart_4_nodes_seconds", roll_secs);
    eprintln!("FIGURE rolling_restart_4_nodes_seconds={roll_secs:.1} order={replaced:?}");
    std::fs::write(&stop, b"")?;
    let produced = tokio::task::spawn_blocking(move || stack::finish_client(producer)).await??;
    ensure!(
        operator_killed,
        "the cluster operator pod was not killed during the roll"
    );
    ensure!(
        max_unready <= 1,
        "at most one Kafka node may be down at a time, saw {max_unready} ({worst}); producer: {produced}"
    );
    ensure!(
        replaced
            .first()
            .is_some_and(|n| n.starts_with("my-cluster-controller-")),
        "controllers roll before brokers: {replaced:?}"
    );
    if produced["failed"] != 0 || produced["acked"].as_u64() <= Some(100) {
        let metadata = c
            .operator(&["metadata"])
            .map(|m| m["topics"]["my-topic"].clone());
        // librdkafka's own account, kept whole outside the test's temporary folder.
        let log = std::fs::read_to_string(&producer_log).unwrap_or_default();
        let kept = std::env::temp_dir().join("oxbow-full-stack-producer.log");
        let _ = std::fs::write(&kept, &log);
        let tail: Vec<&str> = log.lines().rev().take(150).collect();
        bail!(
            "the producer must see no failed send during the roll: {produced}\nmy-topic now: {metadata:?}\nproducer log ({}, last 150 lines):\n{}{}",
            kept.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            s.diagnostics(NS).await
        );
    }
    for name in before.keys() {
        let cm: Api<ConfigMap> = Api::namespaced(s.client.clone(), NS);
        let props = cm.get(name).await?.data.unwrap_or_default();
        ensure!(
            props
                .get("server.properties")
                .is_some_and(|p| p.contains("auto.create.topics.enable=false")),
            "{name}'s config carries the change"
        );
    }

    // 6. kill -9 of a broker's process: the agent restarts it, the operator reports the node
    // not ready meanwhile, and the cluster heals. Every Ready condition the operator writes is
    // collected from a watch, so a short outage cannot slip between two polls.
    let victim = "my-cluster-broker-1";
    let ready_watch = ReadyWatch::start(kafkas.clone());
    ready_watch.started().await?;
    let pid = s.container_pid(NS, victim, "kafka").context("broker pid")?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    s.wait(
        NS,
        "broker restarted by the agent",
        Duration::from_secs(180),
        || async {
            let p = pods.get(victim).await.map_err(|e| e.to_string())?;
            let cs = p
                .status
                .and_then(|s| s.container_statuses)
                .unwrap_or_default();
            match cs.first() {
                Some(c) if c.restart_count >= 1 && c.ready => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await?;
    s.wait(
        NS,
        "Kafka Ready after the broker restart",
        Duration::from_secs(300),
        || kafka_ready(&kafkas, CLUSTER),
    )
    .await?;
    let seen = ready_watch.stop();
    ensure!(
        seen.iter()
            .any(|(status, reason, message)| status == "False"
                && reason == "NodesNotReady"
                && message.contains(victim)),
        "the operator must report {victim} not ready while it restarts; Ready conditions seen: {seen:?}"
    );
    let sent = c.scram(&["produce", "--topic", "my-topic", "--count", "5"])?;
    ensure!(sent["acked"] == 5, "produce after the kill: {sent}");

    // 5. Scale the broker pool up: the new broker joins and takes partitions of a new topic.
    scale_brokers(&s, &c, dir.path()).await?;

    // Peak memory of the operators' processes over the test.
    for (pod_prefix, container, figure) in [
        (
            "oxbow-cluster-operator-",
            "cluster-operator",
            "cluster_operator_peak_rss_mib",
        ),
        (
            "my-cluster-topic-operator-",
            "topic-operator",
            "topic_operator_peak_rss_mib",
        ),
        (
            "my-cluster-user-operator-",
            "user-operator",
            "user_operator_peak_rss_mib",
        ),
    ] {
        let list = pods.list(&ListParams::default()).await?;
        let name = list
            .items
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .find(|n| n.starts_with(pod_prefix))
            .with_context(|| format!("no pod {pod_prefix}*"))?;
        let pid = s
            .container_pid(NS, &name, container)
            .context("operator pid")?;
        let mib = stack::peak_rss_mib(pid).context("reading VmHWM")?;
        figures.insert(figure, mib);
        eprintln!("FIGURE {figure}={mib:.1}");
    }

    // 7. Deleting the Kafka removes every pod, Service, Secret, ConfigMap and operator Deployment.
    //    KafkaTopics go first, while their topic operator still runs to release the finalizers.
    topics
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await?;
    s.wait(
        NS,
        "KafkaTopics deleted",
        Duration::from_secs(120),
        || async {
            let left = topics
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            if left.items.is_empty() {
                Ok(())
            } else {
                Err(format!("{} left", left.items.len()))
            }
        },
    )
    .await?;
    kafkas.delete(CLUSTER, &DeleteParams::default()).await?;
    let services: Api<Service> = Api::namespaced(s.client.clone(), NS);
    let secrets: Api<Secret> = Api::namespaced(s.client.clone(), NS);
    let cms: Api<ConfigMap> = Api::namespaced(s.client.clone(), NS);
    s.wait(
        NS,
        "every child of my-cluster gone",
        Duration::from_secs(180),
        || async {
            let lp = ListParams::default().labels(CHILDREN);
            let mut left = BTreeSet::new();
            left.extend(stack::names(&pods, &lp, "pod").await?);
            left.extend(stack::names(&services, &lp, "service").await?);
            left.extend(stack::names(&secrets, &lp, "secret").await?);
            left.extend(stack::names(&cms, &lp, "configmap").await?);
            left.extend(stack::names(&deployments, &lp, "deployment").await?);
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            }
        },
    )
    .await?;
    // Claims go with the cluster only where the pool says deleteClaim.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(s.client.clone(), NS);
    s.wait(
        NS,
        "broker claims deleted, controller claim kept",
        Duration::from_secs(120),
        || async {
            let names: BTreeSet<String> = claims
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .into_iter()
                .filter(|c| c.metadata.deletion_timestamp.is_none())
                .filter_map(|c| c.metadata.name)
                .collect();
            let expected = BTreeSet::from(["data-my-cluster-controller-3".to_owned()]);
            if names == expected {
                Ok(())
            } else {
                Err(format!("{names:?}"))
            }
        },
    )
    .await?;
    // The operator itself stays installed and running.
    deployment_available(&deployments, "oxbow-cluster-operator")
        .await
        .map_err(anyhow::Error::msg)?;

    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("full-stack-figures.json");
    std::fs::write(&path, serde_json::to_string_pretty(&figures)?)?;
    Ok(())
}

fn replicas_on(metadata: &Value, broker: i64) -> Vec<(String, i64, Vec<i64>)> {
    let mut out = Vec::new();
    for (topic, partitions) in metadata["topics"].as_object().into_iter().flatten() {
        for p in partitions.as_array().into_iter().flatten() {
            let replicas: Vec<i64> = p["replicas"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_i64)
                .collect();
            if replicas.contains(&broker) {
                out.push((topic.clone(), p["id"].as_i64().unwrap_or(-1), replicas));
            }
        }
    }
    out
}

/// Every distinct Ready condition (status, reason, message) of the Kafka `CLUSTER`, in the
/// order the API server sent them, collected by a watch until [`ReadyWatch::stop`].
struct ReadyWatch {
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadyWatch {
    fn start(kafkas: Api<Kafka>) -> ReadyWatch {
        use futures::StreamExt;
        use kube::runtime::{WatchStreamExt, watcher};
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let task_seen = seen.clone();
        let task = tokio::spawn(async move {
            let config = watcher::Config::default().fields(&format!("metadata.name={CLUSTER}"));
            let stream = watcher(kafkas, config).default_backoff().applied_objects();
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                let Ok(k) = event else { continue };
                let conditions = k.status.as_ref().and_then(|s| s.conditions.as_ref());
                if let Some(c) = condition(conditions, "Ready") {
                    let mut seen = task_seen.lock().unwrap();
                    if seen.last() != Some(&c) {
                        seen.push(c);
                    }
                }
            }
        });
        ReadyWatch { seen, task }
    }

    /// Waits until the watch has delivered the Kafka once.
    async fn started(&self) -> Result<()> {
        eventually(
            "the Kafka watch started",
            Duration::from_secs(30),
            || async {
                if self.seen.lock().unwrap().is_empty() {
                    Err("no event yet".to_owned())
                } else {
                    Ok(())
                }
            },
        )
        .await
    }

    fn stop(self) -> Vec<(String, String, String)> {
        self.task.abort();
        self.seen.lock().unwrap().clone()
    }
}

/// Moves every replica off `broker` with Kafka's own reassignment tool (from the testbed's
/// `apache/kafka` image), as an administrator would before removing a broker.
async fn move_replicas_off(c: &Clients<'_>, dir: &Path, broker: i64, keep: &[i64]) -> Result<()> {
    let metadata = c.operator(&["metadata"])?;
    let moves: Vec<Value> = replicas_on(&metadata, broker)
        .into_iter()
        .map(|(topic, partition, replicas)| {
            let spare = keep.iter().find(|b| !replicas.contains(b)).copied();
            let new: Vec<i64> = replicas
                .iter()
                .map(|r| {
                    if *r == broker {
                        spare.unwrap_or(*r)
                    } else {
                        *r
                    }
                })
                .collect();
            json!({"topic": topic, "partition": partition, "replicas": new})
        })
        .collect();
    ensure!(
        !moves.is_empty(),
        "broker {broker} holds no replica to move"
    );
    let plan = stack::private_file(
        dir,
        "reassignment.json",
        json!({"version": 1, "partitions": moves})
            .to_string()
            .as_bytes(),
    )?;
    let mut keystore = std::fs::read(dir.join("operator.key"))?;
    keystore.extend(std::fs::read(dir.join("operator.crt"))?);
    stack::private_file(dir, "operator-keystore.pem", &keystore)?;
    let config = stack::private_file(
        dir,
        "admin.properties",
        format!(
            "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={}\nssl.keystore.type=PEM\nssl.keystore.location={}\n",
            dir.join("cluster-ca.crt").display(),
            dir.join("operator-keystore.pem").display()
        )
        .as_bytes(),
    )?;
    let image = std::env::var("OXBOW_KAFKA_IMAGE_ROOT").context("OXBOW_KAFKA_IMAGE_ROOT")?;
    let tool = |action: &str| -> Result<String> {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &c.s.client_netns])
            .arg(Path::new(&image).join("opt/kafka/bin/kafka-run-class.sh"))
            .arg("org.apache.kafka.tools.reassign.ReassignPartitionsCommand")
            .args([
                "--bootstrap-server",
                "my-cluster-kafka-bootstrap.oxbow.svc:9091",
            ])
            .arg("--command-config")
            .arg(&config)
            .arg("--reassignment-json-file")
            .arg(&plan)
            .arg(action)
            .env("LOG_DIR", dir)
            .output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(out.status.success(), "reassignment {action}: {text}");
        Ok(text)
    };
    tool("--execute")?;
    eventually(
        "replicas moved off the broker",
        Duration::from_secs(180),
        || async {
            let text = tool("--verify").map_err(|e| e.to_string())?;
            if text.contains("is still in progress") {
                return Err(text);
            }
            let md = c.operator(&["metadata"]).map_err(|e| e.to_string())?;
            let left = replicas_on(&md, broker);
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            }
        },
    )
    .await
}

async fn scale_brokers(s: &Stack, c: &Clients<'_>, dir: &Path) -> Result<()> {
    use shared_crds::node_pool::KafkaNodePool;
    let pools: Api<KafkaNodePool> = Api::namespaced(s.client.clone(), NS);
    let kafkas: Api<Kafka> = Api::namespaced(s.client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), NS);
    let replicas = |n: i64| Patch::Merge(json!({"spec": {"replicas": n}}));
    pools
        .patch("broker", &PatchParams::default(), &replicas(4))
        .await?;
    let new_pod = "my-cluster-broker-4";
    s.wait(
        NS,
        "the fourth broker Ready",
        Duration::from_secs(300),
        || async {
            let ready = kafka_pods(&pods, CLUSTER)
                .await
                .map_err(|e| e.to_string())?;
            match ready.get(new_pod) {
                Some((_, true)) => kafka_ready(&kafkas, CLUSTER).await,
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await?;
    let md = c.operator(&["metadata"])?;
    ensure!(
        md["brokers"]
            .as_array()
            .is_some_and(|b| b.contains(&json!(4))),
        "broker 4 joined the cluster: {md}"
    );
    s.apply(
        NS,
        "apiVersion: kafka.oxbow.rs/v1beta1\nkind: KafkaTopic\nmetadata:\n  name: after-scale-up\n  labels:\n    oxbow.rs/cluster: my-cluster\nspec:\n  partitions: 8\n  replicas: 3\n",
    )?;
    let on_new = s
        .wait(
            NS,
            "the new topic has replicas on broker 4",
            Duration::from_secs(120),
            || async {
                let md = c.operator(&["metadata"]).map_err(|e| e.to_string())?;
                let on = replicas_on(&md, 4);
                if on.iter().any(|(t, _, _)| t == "after-scale-up") {
                    Ok(on)
                } else {
                    Err(format!("{md}"))
                }
            },
        )
        .await?;
    eprintln!(
        "broker 4 holds {} replicas after the scale-up",
        on_new.len()
    );

    // Scale down: refused while broker 4 holds replicas, with a Warning naming it.
    pools
        .patch("broker", &PatchParams::default(), &replicas(3))
        .await?;
    s.wait(
        NS,
        "scale-down refused with a Warning",
        Duration::from_secs(120),
        || async {
            let k = kafkas.get(CLUSTER).await.map_err(|e| e.to_string())?;
            match condition(
                k.status.as_ref().and_then(|s| s.conditions.as_ref()),
                "Warning",
            ) {
                Some((_, reason, message))
                    if reason == "ScaleDownBrokersHoldReplicas"
                        && message.contains('4')
                        && message.contains("after-scale-up") =>
                {
                    Ok(())
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await?;
    ensure!(
        kafka_pods(&pods, CLUSTER).await?.contains_key(new_pod),
        "the broker must stay while it holds replicas"
    );
    // Allowed once its replicas are moved away.
    move_replicas_off(c, dir, 4, &[0, 1, 2]).await?;
    s.wait(
        NS,
        "broker 4 removed after its replicas moved",
        Duration::from_secs(300),
        || async {
            let now = kafka_pods(&pods, CLUSTER)
                .await
                .map_err(|e| e.to_string())?;
            if now.contains_key(new_pod) {
                return Err(format!("{:?}", now.keys()));
            }
            kafka_ready(&kafkas, CLUSTER).await
        },
    )
    .await?;
    let sent = c.scram(&["produce", "--topic", "my-topic", "--count", "5"])?;
    ensure!(sent["acked"] == 5, "produce after the scale-down: {sent}");

    // The removed broker leaves the KRaft metadata: once it is fenced and its pod gone, the
    // operator unregisters it (Kafka would list it, fenced, forever) and says so in an Event.
    // The quorum is unchanged: controller 3 alone votes and leads.
    s.wait(
        NS,
        "broker 4 unregistered",
        Duration::from_secs(120),
        || async {
            let q = c.operator(&["quorum"]).map_err(|e| e.to_string())?;
            let registered = q["registered"].as_array().cloned().unwrap_or_default();
            let ids: Vec<i64> = registered.iter().filter_map(|b| b["id"].as_i64()).collect();
            let unfenced = registered.iter().all(|b| b["fenced"] == false);
            if ids == [0, 1, 2] && unfenced && q["voters"] == json!([3]) && q["leader"] == 3 {
                Ok(())
            } else {
                Err(q.to_string())
            }
        },
    )
    .await?;
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(s.client.clone(), NS);
    s.wait(
        NS,
        "an Event for the unregistered broker",
        Duration::from_secs(60),
        || async {
            let list = events
                .list(&ListParams::default().fields(&format!(
                    "involvedObject.name={CLUSTER},reason=BrokerUnregistered"
                )))
                .await
                .map_err(|e| e.to_string())?;
            let notes: Vec<String> = list
                .items
                .iter()
                .filter_map(|e| e.message.clone())
                .collect();
            if notes.iter().any(|m| m.contains("broker 4")) {
                Ok(())
            } else {
                Err(format!("{notes:?}"))
            }
        },
    )
    .await?;
    Ok(())
}
