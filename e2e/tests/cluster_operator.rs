//! Integration tests of the cluster operator against the testbed's real API server. The
//! `cluster-operator` binary runs as a child process under the ServiceAccount and ClusterRoles of
//! `manifests/install/` (a token from the TokenRequest API, so every call it makes is checked by
//! the API server's RBAC), in a namespace that enforces Pod Security `restricted` (so the API
//! server refuses any Kafka pod that does not comply). No kubelet runs here, so pods stay
//! Pending and the cluster stays `Ready=False`; the issue after this one runs them.
//! May touch: namespaces `co-*`, the cluster-scoped objects of `manifests/install/` (ClusterRoles
//! shared by all tests, ClusterRoleBindings named per namespace), child processes, temp files.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use cluster_operator::build::kafka_config::ServerProperties;
use e2e::{
    env::TestEnv,
    objects::{self, TestNamespace},
    operator::{OperatorEnv, OperatorProcess},
};
use k8s_openapi::api::{
    apps::v1::Deployment,
    authentication::v1::{TokenRequest, TokenRequestSpec},
    authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec},
    core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount},
    networking::v1::NetworkPolicy,
    policy::v1::PodDisruptionBudget,
    rbac::v1::{Role, RoleBinding},
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams},
    core::ApiResource,
};
use serde_json::{Value, json};
use shared_crds::{Kafka, KafkaNodePool};

/// Generous for a busy two-core machine; short enough that a hang fails.
const DEADLINE: Duration = Duration::from_secs(90);
const CLUSTER: &str = "my-cluster";
/// The selector of every object the cluster operator writes for [`CLUSTER`].
const CHILDREN: &str = "oxbow.rs/cluster=my-cluster,oxbow.rs/kind=Kafka";
/// The selector of the Kafka node pods of [`CLUSTER`] (the topic and user operators' pods
/// carry [`CHILDREN`] too, through their Deployments' templates).
const KAFKA_PODS: &str = "oxbow.rs/cluster=my-cluster,oxbow.rs/name=my-cluster-kafka";

async fn eventually<T, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => return Ok(v),
            Err(last) if start.elapsed() > DEADLINE => {
                bail!("{what}: not within {DEADLINE:?}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

/// Applies one document of `manifests/install/` (namespaced ones into `ns`), with the
/// operator's namespace put in place of `oxbow` and cluster-scoped bindings named per test.
async fn apply_install_doc(client: &Client, ns: &str, mut doc: Value) -> Result<()> {
    let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
    if let Some(subjects) = doc.get_mut("subjects").and_then(Value::as_array_mut) {
        for s in subjects {
            s["namespace"] = json!(ns);
        }
    }
    if kind == "ClusterRoleBinding" {
        let name = format!(
            "{}-{ns}",
            doc["metadata"]["name"].as_str().unwrap_or_default()
        );
        doc["metadata"]["name"] = json!(name);
    }
    apply_doc(client, ns, &doc).await
}

/// Server-side applies one document: cluster-scoped kinds cluster-wide, the rest into `ns`.
async fn apply_doc(client: &Client, ns: &str, doc: &Value) -> Result<()> {
    let kind = doc["kind"].as_str().unwrap_or_default();
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    let resource: ApiResource = objects::api_resource(client, api_version, kind).await?;
    let api: Api<DynamicObject> = if kind.starts_with("Cluster") {
        Api::all_with(client.clone(), &resource)
    } else {
        Api::namespaced_with(client.clone(), ns, &resource)
    };
    let name = doc["metadata"]["name"].as_str().unwrap_or_default();
    api.patch(
        name,
        &PatchParams::apply("oxbow-e2e").force(),
        &Patch::Apply(doc),
    )
    .await
    .with_context(|| format!("applying {kind} {name}"))?;
    Ok(())
}

/// A kubeconfig that authenticates as ServiceAccount `sa` of `ns` with a fresh token, readable
/// by its owner only, in a folder removed when the returned guard drops.
async fn service_account_kubeconfig(
    client: &Client,
    env: &TestEnv,
    ns: &str,
    sa: &str,
) -> Result<(tempfile::TempDir, PathBuf)> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(3600),
            bound_object_ref: None,
        },
        ..TokenRequest::default()
    };
    let token: TokenRequest = api
        .create_subresource("token", sa, &PostParams::default(), &request)
        .await
        .context("requesting a ServiceAccount token")?;
    let token = token
        .status
        .map(|s| s.token)
        .context("the token request has no status")?;
    let admin = kube::config::Kubeconfig::read_from(&env.kubeconfig)?;
    let cluster = admin
        .clusters
        .first()
        .and_then(|c| c.cluster.clone())
        .context("the testbed kubeconfig has no cluster")?;
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: testbed\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: {sa}\n  user:\n    token: {token}\ncontexts:\n- name: {sa}\n  context:\n    cluster: testbed\n    user: {sa}\ncurrent-context: {sa}\n",
        cluster.server.context("no server")?,
        cluster.certificate_authority_data.context("no CA data")?,
    );
    let dir = tempfile::tempdir()?;
    let path = e2e::stack::private_file(dir.path(), &format!("{sa}.kubeconfig"), yaml.as_bytes())?;
    Ok((dir, path))
}

/// A namespace enforcing Pod Security `restricted`, the install bundle's RBAC in it, and the
/// cluster operator running under that RBAC.
struct Installed {
    ns: TestNamespace,
    client: Client,
    operator: OperatorProcess,
    /// Holds the operator's kubeconfig (with its token) until the test ends.
    _kubeconfig: tempfile::TempDir,
}

async fn install(test: &str) -> Result<Installed> {
    let env = TestEnv::from_env()?;
    let client = env.kube_client().await?;
    objects::install_crds(&client).await?;
    let ns = TestNamespace::create(
        &client,
        test,
        &[
            ("pod-security.kubernetes.io/enforce", "restricted"),
            ("pod-security.kubernetes.io/enforce-version", "latest"),
        ],
    )
    .await?;
    let dir = objects::repo().join("manifests/install");
    for file in objects::yaml_files(&dir)? {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("00-") || name.starts_with("04-") {
            continue; // CRDs are installed above; the Deployment needs a kubelet.
        }
        for doc in objects::documents(&file)? {
            apply_install_doc(&client, &ns.name, doc).await?;
        }
    }
    let (kubeconfig_dir, kubeconfig) =
        service_account_kubeconfig(&client, &env, &ns.name, "oxbow-cluster-operator").await?;
    let mut operator = OperatorProcess::start(
        test,
        "cluster-operator",
        OperatorEnv::default()
            .set("KUBECONFIG", kubeconfig.display().to_string())
            .set("OXBOW_NAMESPACES", ns.name.clone())
            .set("OXBOW_FULL_RECONCILIATION_INTERVAL_SECONDS", "120"),
    )?;
    operator.wait_ready(DEADLINE).await?;
    Ok(Installed {
        ns,
        client,
        operator,
        _kubeconfig: kubeconfig_dir,
    })
}

impl Installed {
    async fn finish(self) {
        let ns = self.ns.name.clone();
        let crb: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> =
            Api::all(self.client.clone());
        for name in ["oxbow-cluster-operator-global"] {
            let _ = crb
                .delete(&format!("{name}-{ns}"), &DeleteParams::default())
                .await;
        }
        drop(self.operator);
        self.ns.delete().await;
    }

    async fn apply_examples(&self) -> Result<()> {
        for file in ["kafka.yaml", "kafka-node-pools.yaml"] {
            let path = objects::repo().join("manifests/examples").join(file);
            for doc in objects::documents(&path)? {
                apply_doc(&self.client, &self.ns.name, &doc)
                    .await
                    .with_context(|| format!("from {file}"))?;
            }
        }
        Ok(())
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }

    async fn names<K>(&self) -> Result<Vec<String>, String>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let mut names: Vec<String> = self
            .api::<K>()
            .list(&ListParams::default().labels(CHILDREN))
            .await
            .map_err(|e| e.to_string())?
            .items
            .iter()
            .map(|o| o.name_any())
            .collect();
        names.sort();
        Ok(names)
    }

    /// The names of the Kafka node pods.
    async fn kafka_pods(&self) -> Result<Vec<String>, String> {
        let mut names: Vec<String> = self
            .api::<Pod>()
            .list(&ListParams::default().labels(KAFKA_PODS))
            .await
            .map_err(|e| e.to_string())?
            .items
            .iter()
            .map(|o| o.name_any())
            .collect();
        names.sort();
        Ok(names)
    }

    /// The writes counted so far, by kind and verb.
    async fn writes(&self) -> Result<BTreeMap<String, f64>, String> {
        let m = self.operator.metrics().await.map_err(|e| e.to_string())?;
        Ok(m.samples
            .iter()
            .filter(|s| s.name == "oxbow_kubernetes_writes_total")
            .map(|s| (format!("{:?}", s.labels), s.value))
            .collect())
    }

    /// The kind, name and resourceVersion of every child that only the operator writes (Pods,
    /// Deployments and PodDisruptionBudgets are left out: the scheduler and the controller
    /// manager write their status).
    async fn versions(&self) -> Result<BTreeMap<String, String>, String> {
        let mut out = BTreeMap::new();
        macro_rules! add {
            ($k:ty) => {
                for o in self
                    .api::<$k>()
                    .list(&ListParams::default().labels(CHILDREN))
                    .await
                    .map_err(|e| e.to_string())?
                    .items
                {
                    out.insert(
                        format!("{}/{}", stringify!($k), o.name_any()),
                        o.resource_version().unwrap_or_default(),
                    );
                }
            };
        }
        add!(ConfigMap);
        add!(Secret);
        add!(Service);
        add!(ServiceAccount);
        add!(Role);
        add!(RoleBinding);
        add!(NetworkPolicy);
        let kafka = self
            .api::<Kafka>()
            .get(CLUSTER)
            .await
            .map_err(|e| e.to_string())?;
        out.insert("Kafka".into(), kafka.resource_version().unwrap_or_default());
        for p in self
            .api::<KafkaNodePool>()
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items
        {
            out.insert(
                format!("KafkaNodePool/{}", p.name_any()),
                p.resource_version().unwrap_or_default(),
            );
        }
        Ok(out)
    }

    async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64, String> {
        self.operator
            .metrics()
            .await
            .map(|m| m.sum(name, labels))
            .map_err(|e| e.to_string())
    }

    async fn reconciles(&self) -> Result<f64, String> {
        self.metric("oxbow_reconciliations_total", &[("kind", "Kafka")])
            .await
    }

    async fn non_status_writes(&self) -> Result<f64, String> {
        // One reading, so that a status write between two readings cannot skew the difference.
        let m = self.operator.metrics().await.map_err(|e| e.to_string())?;
        let all = m.sum("oxbow_kubernetes_writes_total", &[]);
        let status = m.sum("oxbow_kubernetes_writes_total", &[("verb", "status")]);
        Ok(all - status)
    }

    /// Waits for two more reconciles of the Kafka and returns the writes made meanwhile.
    async fn writes_over_two_reconciles(&self) -> Result<f64> {
        let writes_before = self
            .metric("oxbow_kubernetes_writes_total", &[])
            .await
            .map_err(|e| anyhow!(e))?;
        let start = self.reconciles().await.map_err(|e| anyhow!(e))?;
        eventually("two more reconciles", || async {
            let now = self.reconciles().await?;
            if now >= start + 2.0 {
                Ok(())
            } else {
                Err(format!("{now} reconciles, from {start}"))
            }
        })
        .await?;
        let writes_after = self
            .metric("oxbow_kubernetes_writes_total", &[])
            .await
            .map_err(|e| anyhow!(e))?;
        Ok(writes_after - writes_before)
    }
}

async fn ready_condition(kafka: &Kafka) -> Option<(String, String, String)> {
    kafka
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| {
            (
                format!("{:?}", c.status),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

/// The example cluster, reconciled under the install bundle's RBAC in a restricted namespace:
/// every object exists as designed, a second reconcile writes nothing, a config edit changes the
/// node ConfigMaps and nothing else, and deleting the Kafka removes everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_cluster_objects_idempotence_edit_and_deletion() -> Result<()> {
    let t = install("co-example").await?;
    let outcome = example_cluster(&t).await;
    if outcome.is_err() {
        eprintln!("operator log:\n{}", t.operator.log_tail(60));
    }
    t.finish().await;
    outcome
}

async fn example_cluster(t: &Installed) -> Result<()> {
    t.apply_examples().await?;
    let c = CLUSTER;
    // The example: a controller pool of 3 (IDs 0-2) and a broker pool of 3 (IDs 3-5)?  The node
    // pools decide; read them back from their status.
    let pools = eventually("node pools get their node IDs", || async {
        let pools = t
            .api::<KafkaNodePool>()
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items;
        let with_ids: Vec<(String, Vec<i32>)> = pools
            .iter()
            .filter_map(|p| {
                let ids = p.status.as_ref()?.node_ids.clone()?;
                Some((p.name_any(), ids))
            })
            .collect();
        if with_ids.len() == pools.len() && !pools.is_empty() {
            Ok(with_ids)
        } else {
            Err(format!("{with_ids:?}"))
        }
    })
    .await?;
    let mut expected_pods: Vec<String> = pools
        .iter()
        .flat_map(|(pool, ids)| ids.iter().map(move |id| format!("{c}-{pool}-{id}")))
        .collect();
    expected_pods.sort();
    assert!(!expected_pods.is_empty());

    // Every pod exists: the restricted namespace admitted them.
    eventually("every Kafka pod is created", || async {
        let pods = t.kafka_pods().await?;
        if pods == expected_pods {
            Ok(())
        } else {
            Err(format!("pods {pods:?}, want {expected_pods:?}"))
        }
    })
    .await?;
    let mut expected_cms = expected_pods.clone();
    expected_cms.sort();
    assert_eq!(
        t.names::<ConfigMap>().await.map_err(|e| anyhow!(e))?,
        expected_cms
    );
    let secrets = t.names::<Secret>().await.map_err(|e| anyhow!(e))?;
    for want in [
        format!("{c}-cluster-ca"),
        format!("{c}-cluster-ca-cert"),
        format!("{c}-clients-ca"),
        format!("{c}-clients-ca-cert"),
        format!("{c}-topic-operator-certs"),
        format!("{c}-user-operator-certs"),
        format!("{c}-cluster-operator-certs"),
    ]
    .into_iter()
    .chain(expected_pods.iter().cloned())
    {
        assert!(
            secrets.contains(&want),
            "Secret {want} missing from {secrets:?}"
        );
    }
    let services = t.names::<Service>().await.map_err(|e| anyhow!(e))?;
    for want in [format!("{c}-kafka-bootstrap"), format!("{c}-kafka-brokers")] {
        assert!(
            services.contains(&want),
            "Service {want} missing from {services:?}"
        );
    }
    assert_eq!(
        t.names::<Deployment>().await.map_err(|e| anyhow!(e))?,
        vec![format!("{c}-topic-operator"), format!("{c}-user-operator")]
    );
    assert_eq!(
        t.names::<PodDisruptionBudget>()
            .await
            .map_err(|e| anyhow!(e))?
            .len(),
        1
    );
    assert_eq!(
        t.names::<NetworkPolicy>()
            .await
            .map_err(|e| anyhow!(e))?
            .len(),
        1
    );
    assert!(!t.names::<Role>().await.map_err(|e| anyhow!(e))?.is_empty());
    assert!(
        !t.names::<RoleBinding>()
            .await
            .map_err(|e| anyhow!(e))?
            .is_empty()
    );

    // Every object is owned by the Kafka, so deleting it removes them.
    let kafka = t.api::<Kafka>().get(c).await?;
    let uid = kafka.uid().context("Kafka without uid")?;
    for pod in t
        .api::<Pod>()
        .list(&ListParams::default().labels(KAFKA_PODS))
        .await?
        .items
    {
        assert!(
            pod.owner_references()
                .iter()
                .any(|o| o.uid == uid && o.controller == Some(true)),
            "pod {} is not owned by the Kafka",
            pod.name_any()
        );
    }

    // Status: cluster ID, versions, listeners, pools; not ready (no kubelet runs the pods).
    let kafka = eventually("the Kafka status reports the cluster", || async {
        let k = t.api::<Kafka>().get(c).await.map_err(|e| e.to_string())?;
        let s = k.status.clone().ok_or("no status")?;
        let ready = ready_condition(&k).await.ok_or("no Ready condition")?;
        if s.cluster_id.is_some()
            && s.listeners.as_ref().is_some_and(|l| l.len() == 3)
            && ready.1 == "NodesNotReady"
        {
            Ok(k)
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await?;
    let status = kafka.status.clone().unwrap();
    assert_eq!(status.kafka_version.as_deref(), Some("4.1.2"));
    assert_eq!(status.cluster_id.as_ref().map(String::len), Some(22));
    let listeners = status.listeners.unwrap();
    let scram = listeners
        .iter()
        .find(|l| l.name == "scram")
        .context("scram listener")?;
    assert_eq!(
        scram.bootstrap_servers.as_deref(),
        Some(format!("{c}-kafka-bootstrap.{}.svc:9094", t.ns.name).as_str())
    );
    assert!(
        scram
            .certificates
            .as_ref()
            .is_some_and(|c| c[0].contains("BEGIN CERTIFICATE"))
    );

    // Each CA's expiry is exported (generated CAs are valid for 365 days by default).
    let m = t.operator.metrics().await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64();
    for ca in ["cluster", "clients"] {
        let expiry = m.sum(
            "oxbow_certificate_expiration_timestamp_seconds",
            &[("cluster", c), ("ca", ca)],
        );
        let days = (expiry - now) / 86_400.0;
        assert!(
            (364.0..=366.0).contains(&days),
            "{ca} CA expires in {days} days"
        );
    }

    // A reconcile of the unchanged cluster writes nothing (the operator requeues not-ready
    // clusters every 10 s, so reconciles keep coming). Objects may still settle right after
    // creation, so this waits for a pair of reconciles without writes, failing at the deadline.
    let before = t.versions().await.map_err(|e| anyhow!(e))?;
    let start = Instant::now();
    let mut quiet = false;
    while start.elapsed() < DEADLINE * 2 {
        let versions = t.versions().await.map_err(|e| anyhow!(e))?;
        let writes = t.writes_over_two_reconciles().await?;
        let after = t.versions().await.map_err(|e| anyhow!(e))?;
        if writes == 0.0 {
            assert_eq!(versions, after, "no write was counted, yet objects changed");
            quiet = true;
            break;
        }
        eprintln!(
            "{writes} writes over two reconciles; looking again (writes so far: {:?})",
            t.writes().await
        );
    }
    assert!(
        quiet,
        "every pair of reconciles wrote something (objects before: {before:?})"
    );

    // Edit: a broker config change reaches the node ConfigMaps and nothing else.
    let versions = t.versions().await.map_err(|e| anyhow!(e))?;
    t.api::<Kafka>()
        .patch(
            c,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"kafka": {"config": {"log.retention.hours": 72}}}})),
        )
        .await?;
    eventually("every broker ConfigMap carries the new setting", || async {
        let cms = t
            .api::<ConfigMap>()
            .list(&ListParams::default().labels(&format!("{CHILDREN},oxbow.rs/broker-role=true")))
            .await
            .map_err(|e| e.to_string())?
            .items;
        let missing: Vec<String> = cms
            .iter()
            .filter(|cm| {
                !cm.data
                    .as_ref()
                    .and_then(|d| d.get("server.properties"))
                    .is_some_and(|p| p.contains("log.retention.hours=72"))
            })
            .map(|cm| cm.name_any())
            .collect();
        if missing.is_empty() && !cms.is_empty() {
            Ok(())
        } else {
            Err(format!("not yet: {missing:?}"))
        }
    })
    .await?;
    let after = t.versions().await.map_err(|e| anyhow!(e))?;
    for (key, version) in &versions {
        let changed = after.get(key) != Some(version);
        let may_change = key.starts_with("ConfigMap/") || key.starts_with("Pod/") || key == "Kafka";
        assert!(!changed || may_change, "{key} changed on a config edit");
    }

    // A manual rolling update of the Kafka replaces every node pod, and the request ends.
    let uids = |pods: Vec<Pod>| -> BTreeMap<String, String> {
        pods.into_iter()
            .map(|p| (p.name_any(), p.uid().unwrap_or_default()))
            .collect()
    };
    // First the config edit's own roll must end: every pod exists and none is restarting.
    eventually("the config roll ends", || async {
        let pods = t.kafka_pods().await?;
        let k = t.api::<Kafka>().get(c).await.map_err(|e| e.to_string())?;
        let ready = ready_condition(&k).await;
        let settled = ready.as_ref().is_some_and(|r| r.1 == "NodesNotReady");
        // Every pod runs its ConfigMap's current configuration.
        let mut stale = Vec::new();
        for pod in t
            .api::<Pod>()
            .list(&ListParams::default().labels(KAFKA_PODS))
            .await
            .map_err(|e| e.to_string())?
            .items
        {
            let cm = t
                .api::<ConfigMap>()
                .get(&pod.name_any())
                .await
                .map_err(|e| e.to_string())?;
            let text = cm
                .data
                .unwrap_or_default()
                .remove("server.properties")
                .unwrap_or_default();
            let revision = ServerProperties::parse(&text)
                .map_err(|e| e.to_string())?
                .revision();
            if pod.annotations().get("oxbow.rs/config-revision") != Some(&revision) {
                stale.push(pod.name_any());
            }
        }
        if pods == expected_pods && settled && stale.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "pods {pods:?}, Ready {ready:?}, old config on {stale:?}"
            ))
        }
    })
    .await?;
    let before_roll = uids(
        t.api::<Pod>()
            .list(&ListParams::default().labels(KAFKA_PODS))
            .await?
            .items,
    );
    t.api::<Kafka>()
        .patch(
            c,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"oxbow.rs/manual-rolling-update": "true"}}}),
            ),
        )
        .await?;
    eventually(
        "every node pod is replaced and the request removed",
        || async {
            let now = uids(
                t.api::<Pod>()
                    .list(&ListParams::default().labels(KAFKA_PODS))
                    .await
                    .map_err(|e| e.to_string())?
                    .items,
            );
            let kafka = t.api::<Kafka>().get(c).await.map_err(|e| e.to_string())?;
            let pending = kafka
                .annotations()
                .contains_key("oxbow.rs/manual-rolling-update");
            let replaced = before_roll
                .iter()
                .all(|(name, uid)| now.get(name).is_some_and(|u| u != uid));
            if replaced && !pending && now.len() == before_roll.len() {
                Ok(())
            } else {
                Err(format!(
                    "pending {pending}, pods {now:?} (before {before_roll:?})"
                ))
            }
        },
    )
    .await?;

    // Deletion: owner references let the garbage collector remove everything.
    t.api::<Kafka>().delete(c, &DeleteParams::default()).await?;
    eventually("every child is gone", || async {
        let left = t.versions().await;
        let left: Vec<String> = match left {
            Ok(v) => v
                .into_keys()
                .filter(|k| !k.starts_with("KafkaNodePool/"))
                .collect(),
            // The Kafka itself is gone: list the children only.
            Err(_) => {
                let mut all = Vec::new();
                all.extend(t.names::<Pod>().await?);
                all.extend(t.names::<ConfigMap>().await?);
                all.extend(t.names::<Secret>().await?);
                all.extend(t.names::<Service>().await?);
                all.extend(t.names::<Deployment>().await?);
                all.extend(t.names::<PersistentVolumeClaim>().await?);
                all
            }
        };
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("left: {left:?}"))
        }
    })
    .await?;
    Ok(())
}

/// Refusals: a forbidden config key is dropped with a Warning; a cluster without a controller
/// pool is `Ready=False` with a reason; a paused cluster is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_and_pause_get_clear_status() -> Result<()> {
    let t = install("co-invalid").await?;
    let outcome = invalid_and_paused(&t).await;
    if outcome.is_err() {
        eprintln!("operator log:\n{}", t.operator.log_tail(60));
    }
    t.finish().await;
    outcome
}

async fn invalid_and_paused(t: &Installed) -> Result<()> {
    let kafka: Kafka = serde_json::from_value(json!({
        "apiVersion": "kafka.oxbow.rs/v1beta1",
        "kind": "Kafka",
        "metadata": {"name": CLUSTER},
        "spec": {"kafka": {
            "listeners": [{"name": "plain", "port": 9092, "type": "internal", "tls": false}],
            "config": {"advertised.listeners": "PLAINTEXT://evil:9092"}
        }}
    }))?;
    t.api::<Kafka>()
        .create(&PostParams::default(), &kafka)
        .await?;
    let pool: KafkaNodePool = serde_json::from_value(json!({
        "apiVersion": "kafka.oxbow.rs/v1beta1",
        "kind": "KafkaNodePool",
        "metadata": {"name": "brokers", "labels": {"oxbow.rs/cluster": CLUSTER}},
        "spec": {"replicas": 1, "roles": ["broker"], "storage": {"type": "ephemeral"}}
    }))?;
    t.api::<KafkaNodePool>()
        .create(&PostParams::default(), &pool)
        .await?;
    eventually("no controller role is reported", || async {
        let k = t
            .api::<Kafka>()
            .get(CLUSTER)
            .await
            .map_err(|e| e.to_string())?;
        match ready_condition(&k).await {
            Some((status, reason, message))
                if status == "False"
                    && reason == "NoControllerRole"
                    && message.contains("controller") =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await?;
    assert!(
        t.kafka_pods().await.map_err(|e| anyhow!(e))?.is_empty(),
        "an invalid cluster got pods"
    );

    // Fix it: the pool gets both roles; the forbidden key is dropped with a Warning.
    t.api::<KafkaNodePool>()
        .patch(
            "brokers",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"roles": ["controller", "broker"]}})),
        )
        .await?;
    eventually(
        "the forbidden key is reported as a Warning and the pod exists",
        || async {
            let k = t
                .api::<Kafka>()
                .get(CLUSTER)
                .await
                .map_err(|e| e.to_string())?;
            let warning = k
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Warning").cloned());
            let pods = t.kafka_pods().await?;
            match warning {
                Some(w)
                    if w.message
                        .as_deref()
                        .unwrap_or_default()
                        .contains("advertised.listeners")
                        && pods == vec![format!("{CLUSTER}-brokers-0")] =>
                {
                    Ok(())
                }
                other => Err(format!("warning {other:?}, pods {pods:?}")),
            }
        },
    )
    .await?;
    let cm = t
        .api::<ConfigMap>()
        .get(&format!("{CLUSTER}-brokers-0"))
        .await?;
    let props = cm
        .data
        .unwrap_or_default()
        .remove("server.properties")
        .unwrap_or_default();
    assert!(
        !props.contains("evil"),
        "the forbidden value reached server.properties"
    );

    // Pause: status says so, and a change is not applied.
    t.api::<Kafka>()
        .patch(
            CLUSTER,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"oxbow.rs/pause-reconciliation": "true"}}}),
            ),
        )
        .await?;
    eventually("the pause is reported", || async {
        let k = t
            .api::<Kafka>()
            .get(CLUSTER)
            .await
            .map_err(|e| e.to_string())?;
        let paused = k
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "ReconciliationPaused"));
        if paused {
            Ok(())
        } else {
            Err(format!("{:?}", k.status))
        }
    })
    .await?;
    eventually("the paused cluster is counted as paused", || async {
        let paused = t
            .metric("oxbow_resources", &[("kind", "Kafka"), ("state", "paused")])
            .await?;
        if paused == 1.0 {
            Ok(())
        } else {
            Err(format!("{paused} paused"))
        }
    })
    .await?;
    let before = t
        .api::<ConfigMap>()
        .get(&format!("{CLUSTER}-brokers-0"))
        .await?
        .resource_version();
    t.api::<Kafka>()
        .patch(
            CLUSTER,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"kafka": {"config": {"log.retention.hours": 5}}}})),
        )
        .await?;
    // The change must stay unapplied across reconciles while paused: wait for the operator to
    // see the change (its reconcile counter moves), then check.
    let counted = t.writes().await.map_err(|e| anyhow!(e))?;
    let writes = t.writes_over_two_reconciles_or_event().await?;
    let counted_after = t.writes().await.map_err(|e| anyhow!(e))?;
    let after = t
        .api::<ConfigMap>()
        .get(&format!("{CLUSTER}-brokers-0"))
        .await?
        .resource_version();
    assert_eq!(before, after, "a paused cluster's ConfigMap changed");
    assert_eq!(
        writes, 0.0,
        "a paused cluster was written to (besides its status): before {counted:?}, after {counted_after:?}"
    );

    // The operator is not allowed more than asked: it cannot, e.g., delete Kafkas or read
    // Secrets of other namespaces.
    let env = TestEnv::from_env()?;
    let (_kubeconfig_dir, kubeconfig) =
        service_account_kubeconfig(&t.client, &env, &t.ns.name, "oxbow-cluster-operator").await?;
    let sa_client = {
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig)?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        Client::try_from(cfg)?
    };
    for (verb, resource, group, ns) in [
        ("delete", "kafkas", "kafka.oxbow.rs", t.ns.name.as_str()),
        ("get", "secrets", "", "default"),
        ("create", "clusterroles", "rbac.authorization.k8s.io", ""),
        ("update", "kafkas", "kafka.oxbow.rs", t.ns.name.as_str()),
    ] {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.into()),
                    resource: Some(resource.into()),
                    group: Some(group.into()),
                    namespace: (!ns.is_empty()).then(|| ns.to_owned()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let answer = Api::<SelfSubjectAccessReview>::all(sa_client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        let allowed = answer.status.map(|s| s.allowed).unwrap_or(true);
        assert!(
            !allowed,
            "the operator's ServiceAccount may {verb} {resource} in {ns:?}"
        );
    }
    Ok(())
}

impl Installed {
    /// For a paused cluster: waits until the operator has looked at the Kafka again (its
    /// reconcile counter moves) and returns the writes other than status counted meanwhile.
    async fn writes_over_two_reconciles_or_event(&self) -> Result<f64> {
        let before = self.non_status_writes().await.map_err(|e| anyhow!(e))?;
        let start = self
            .metric("oxbow_reconciliations_total", &[("kind", "Kafka")])
            .await
            .map_err(|e| anyhow!(e))?;
        eventually("the operator looks at the paused Kafka", || async {
            let now = self
                .metric("oxbow_reconciliations_total", &[("kind", "Kafka")])
                .await?;
            if now >= start + 1.0 {
                Ok(())
            } else {
                Err(format!("{now} from {start}"))
            }
        })
        .await?;
        let after = self.non_status_writes().await.map_err(|e| anyhow!(e))?;
        Ok(after - before)
    }
}

/// The label selector of the Roles and RoleBindings the operator makes for [`CLUSTER`] of
/// namespace `ns` in other namespaces.
fn elsewhere(ns: &str) -> String {
    format!("{CHILDREN},oxbow.rs/cluster-namespace={ns}")
}

/// The Roles and RoleBindings the operator made for [`CLUSTER`] of the test's namespace, found in
/// namespace `ns` by label.
async fn rbac_in(t: &Installed, ns: &str) -> Result<Vec<String>, String> {
    let selector = elsewhere(&t.ns.name);
    let params = ListParams::default().labels(&selector);
    let roles: Api<Role> = Api::namespaced(t.client.clone(), ns);
    let bindings: Api<RoleBinding> = Api::namespaced(t.client.clone(), ns);
    let mut out: Vec<String> = roles
        .list(&params)
        .await
        .map_err(|e| e.to_string())?
        .items
        .iter()
        .map(|o| format!("Role/{}", o.name_any()))
        .collect();
    out.extend(
        bindings
            .list(&params)
            .await
            .map_err(|e| e.to_string())?
            .items
            .iter()
            .map(|o| format!("RoleBinding/{}", o.name_any())),
    );
    Ok(out)
}

/// The topic and user operators' RBAC in another namespace, which the Kafka cannot own: a user
/// operator watching namespace A gets its Role and RoleBinding there; a reconcile of the
/// unchanged Kafka writes nothing (the finalizer is added once); watching B instead moves them;
/// removing the user operator removes them and the finalizer, adding it back brings both back;
/// deleting the Kafka (paused, even) deletes them and the Kafka goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_in_other_watched_namespaces_follows_the_spec_and_goes_with_the_kafka() -> Result<()> {
    let t = install("co-rbac").await?;
    let mut watched = Vec::new();
    let mut outcome = Ok(());
    for name in ["co-watched-a", "co-watched-b"] {
        match TestNamespace::create(&t.client, name, &[]).await {
            Ok(ns) => watched.push(ns),
            Err(e) => outcome = Err(e),
        }
    }
    if outcome.is_ok() {
        outcome = rbac_elsewhere(&t, &watched[0].name, &watched[1].name).await;
    }
    if outcome.is_err() {
        eprintln!("operator log:\n{}", t.operator.log_tail(60));
        // A failed test must not leave the namespace stuck on the finalizer.
        let _ = t
            .api::<Kafka>()
            .patch(
                CLUSTER,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await;
    }
    for ns in watched {
        ns.delete().await;
    }
    t.finish().await;
    outcome
}

async fn rbac_elsewhere(t: &Installed, a: &str, b: &str) -> Result<()> {
    const FINALIZER: &str = "kafka.oxbow.rs/cluster-operator";
    const USER_OPERATOR: &str = "my-cluster-user-operator";
    let home = t.ns.name.as_str();
    // The cluster operator needs its namespaced rights where an entity operator watches: to
    // grant the operator's rights there, and to take them back.
    let operator_binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "oxbow-cluster-operator"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "oxbow-cluster-operator-namespaced"
        },
        "subjects": [{
            "kind": "ServiceAccount",
            "name": "oxbow-cluster-operator",
            "namespace": home
        }]
    });
    for ns in [a, b] {
        apply_doc(&t.client, ns, &operator_binding).await?;
    }
    let kafka: Kafka = serde_json::from_value(json!({
        "apiVersion": "kafka.oxbow.rs/v1beta1",
        "kind": "Kafka",
        "metadata": {"name": CLUSTER},
        "spec": {
            "kafka": {
                "listeners": [{"name": "plain", "port": 9092, "type": "internal", "tls": false}]
            },
            "entityOperator": {
                "topicOperator": {},
                "userOperator": {"watchedNamespace": a}
            }
        }
    }))?;
    t.api::<Kafka>()
        .create(&PostParams::default(), &kafka)
        .await?;
    // No node matches, so the Kafka pod stays Pending: this test needs no running broker.
    let pool: KafkaNodePool = serde_json::from_value(json!({
        "apiVersion": "kafka.oxbow.rs/v1beta1",
        "kind": "KafkaNodePool",
        "metadata": {"name": "dual", "labels": {"oxbow.rs/cluster": CLUSTER}},
        "spec": {
            "replicas": 1,
            "roles": ["controller", "broker"],
            "storage": {"type": "ephemeral"},
            "template": {"pod": {"affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
                    "matchExpressions": [{"key": "oxbow.rs/e2e-no-such-node", "operator": "Exists"}]
                }]}
            }}}}
        }
    }))?;
    t.api::<KafkaNodePool>()
        .create(&PostParams::default(), &pool)
        .await?;

    let both = vec![
        format!("Role/{USER_OPERATOR}"),
        format!("RoleBinding/{USER_OPERATOR}"),
    ];
    let finalizers = || async {
        t.api::<Kafka>()
            .get(CLUSTER)
            .await
            .map(|k| k.finalizers().to_vec())
            .map_err(|e| e.to_string())
    };
    // Watching A: the Role and RoleBinding there, and the finalizer that guards them.
    eventually(
        "the user operator's RBAC in A and the finalizer",
        || async {
            let (in_a, f) = (rbac_in(t, a).await?, finalizers().await?);
            if in_a == both && f == [FINALIZER] {
                Ok(())
            } else {
                Err(format!("in {a}: {in_a:?}, finalizers {f:?}"))
            }
        },
    )
    .await?;
    let binding: RoleBinding = Api::namespaced(t.client.clone(), a)
        .get(USER_OPERATOR)
        .await?;
    assert!(binding.owner_references().is_empty());
    let subjects = binding.subjects.unwrap_or_default();
    assert_eq!(
        (subjects[0].name.as_str(), subjects[0].namespace.as_deref()),
        (USER_OPERATOR, Some(home))
    );
    // The topic operator watches the Kafka's namespace: its RBAC there is owned, as before.
    let role: Role = t.api().get("my-cluster-topic-operator").await?;
    assert_eq!(role.owner_references().len(), 1);

    // Unchanged: a pair of reconciles writes nothing (nothing applied again elsewhere, the
    // finalizer not added again).
    t.a_pair_of_reconciles_writes_nothing().await?;

    // Watching B instead: the RBAC moves; the finalizer stays.
    let watch = |ns: Option<&str>| {
        let user_operator = match ns {
            Some(ns) => json!({"watchedNamespace": ns}),
            None => Value::Null,
        };
        json!({"spec": {"entityOperator": {"userOperator": user_operator}}})
    };
    t.api::<Kafka>()
        .patch(
            CLUSTER,
            &PatchParams::default(),
            &Patch::Merge(watch(Some(b))),
        )
        .await?;
    eventually("the user operator's RBAC moves from A to B", || async {
        let (in_a, in_b, f) = (
            rbac_in(t, a).await?,
            rbac_in(t, b).await?,
            finalizers().await?,
        );
        if in_a.is_empty() && in_b == both && f == [FINALIZER] {
            Ok(())
        } else {
            Err(format!(
                "in {a}: {in_a:?}, in {b}: {in_b:?}, finalizers {f:?}"
            ))
        }
    })
    .await?;

    // No user operator: its RBAC goes, and the finalizer with it.
    t.api::<Kafka>()
        .patch(CLUSTER, &PatchParams::default(), &Patch::Merge(watch(None)))
        .await?;
    eventually("the RBAC in B and the finalizer go", || async {
        let (in_b, f) = (rbac_in(t, b).await?, finalizers().await?);
        if in_b.is_empty() && f.is_empty() {
            Ok(())
        } else {
            Err(format!("in {b}: {in_b:?}, finalizers {f:?}"))
        }
    })
    .await?;

    // Back in B, then the Kafka is paused and deleted while the cluster operator may not delete
    // in B: the Kafka stays, with a Warning Event saying why; once it may, the deletion
    // completes (paused or not).
    t.api::<Kafka>()
        .patch(
            CLUSTER,
            &PatchParams::default(),
            &Patch::Merge(watch(Some(b))),
        )
        .await?;
    eventually("the RBAC in B and the finalizer are back", || async {
        let (in_b, f) = (rbac_in(t, b).await?, finalizers().await?);
        if in_b == both && f == [FINALIZER] {
            Ok(())
        } else {
            Err(format!("in {b}: {in_b:?}, finalizers {f:?}"))
        }
    })
    .await?;
    t.api::<Kafka>()
        .patch(
            CLUSTER,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"oxbow.rs/pause-reconciliation": "true"}}}),
            ),
        )
        .await?;
    Api::<RoleBinding>::namespaced(t.client.clone(), b)
        .delete("oxbow-cluster-operator", &DeleteParams::default())
        .await?;
    t.api::<Kafka>()
        .delete(CLUSTER, &DeleteParams::default())
        .await?;
    eventually(
        "a Warning Event on the Kafka kept by the finalizer",
        || async {
            let events = t
                .api::<k8s_openapi::api::events::v1::Event>()
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items;
            let warning = events.iter().find(|e| {
                e.reason.as_deref() == Some("RbacCleanupFailed")
                    && e.type_.as_deref() == Some("Warning")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(CLUSTER)
            });
            let (in_b, f) = (rbac_in(t, b).await?, finalizers().await?);
            match warning {
                Some(w) if in_b == both && f == [FINALIZER] => {
                    let note = w.note.clone().unwrap_or_default();
                    if note.contains(FINALIZER) && note.contains("forbidden") {
                        Ok(())
                    } else {
                        Err(format!("the Event does not say why or what to do: {note}"))
                    }
                }
                _ => Err(format!(
                    "Event {warning:?}, in {b}: {in_b:?}, finalizers {f:?}"
                )),
            }
        },
    )
    .await?;
    apply_doc(&t.client, b, &operator_binding).await?;
    eventually("the RBAC elsewhere and the Kafka are gone", || async {
        let (in_a, in_b) = (rbac_in(t, a).await?, rbac_in(t, b).await?);
        let kafka = t
            .api::<Kafka>()
            .get_opt(CLUSTER)
            .await
            .map_err(|e| e.to_string())?;
        if in_a.is_empty() && in_b.is_empty() && kafka.is_none() {
            Ok(())
        } else {
            Err(format!(
                "in {a}: {in_a:?}, in {b}: {in_b:?}, Kafka finalizers {:?}",
                kafka.map(|k| k.finalizers().to_vec())
            ))
        }
    })
    .await?;
    Ok(())
}

impl Installed {
    /// Waits for a pair of reconciles that writes nothing (objects may still settle right
    /// after a change), failing at the deadline.
    async fn a_pair_of_reconciles_writes_nothing(&self) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < DEADLINE * 2 {
            let writes = self.writes_over_two_reconciles().await?;
            if writes == 0.0 {
                return Ok(());
            }
            eprintln!(
                "{writes} writes over two reconciles; looking again (writes so far: {:?})",
                self.writes().await
            );
        }
        bail!(
            "every pair of reconciles wrote something: {:?}",
            self.writes().await
        )
    }
}
