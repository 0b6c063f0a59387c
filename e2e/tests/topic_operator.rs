//! The topic operator binary against the testbed: a real API server and a real Kafka. Each test
//! starts its own operator process (see `e2e::operator`) for a fresh namespace, and that
//! operator only manages topics named with the test's unique prefix
//! (`OXBOW_TOPIC_INCLUDE_PATTERN`), so the tests run side by side against the one Kafka.
//! Kafka-side changes and checks go through a SCRAM super-user admin client; waits poll
//! conditions with deadlines. Quiet periods ("nothing happened") are measured in full passes of
//! the operator, counted by its `list_topics` admin requests, never in sleeps.
//! May touch: the testbed's API server (CRDs, one namespace per test), Kafka topics
//! `e2e-to-*`, ACLs of principals `User:CN=e2e-to-*`, temporary files. A failing test leaves
//! its namespace and topics behind for inspection; the operator process is always killed.

use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, anyhow};
use e2e::{
    env::TestEnv,
    kafka::{KafkaExports, KafkaOptions, OwnedKafka},
    operator::{Metrics, OperatorEnv, OperatorProcess, write_client_cert},
};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::{
    api::{
        core::v1::{ConfigMap, Namespace},
        events::v1::Event,
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    runtime::wait::{await_condition, conditions},
};
use oxbow_runtime::kafka::admin::{
    AclBinding, AclBindingFilter, AclOperation, AclPatternType, AclPermission, AclResourceType,
    ConfigOp, KafkaAdmin, NewTopicSpec,
};
use prometheus::Registry;
use serde_json::{Value, json};
use shared_crds::{Condition, ConditionStatus, KafkaTopic, condition::find, labels};

/// Deadline of one awaited change: generous for a busy two-core machine running several
/// operators and a JVM, short enough that a stuck operator fails the test.
const DEADLINE: Duration = Duration::from_secs(60);
/// Kafka poll interval of the operators under test.
const POLL_SECONDS: u64 = 2;
const CLUSTER: &str = "my-cluster";
const FIELD_MANAGER: &str = "oxbow-e2e";
/// The operator's own debug lines (one per pass) make a failure's log readable.
const LOG_FILTER: &str = "info,topic_operator=debug";

fn env() -> TestEnv {
    TestEnv::from_env().expect("testbed exports")
}

/// Re-runs `check` until it returns `Ok` or `deadline` passes (then fails with its last
/// complaint).
async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => return Ok(v),
            Err(last) if start.elapsed() > deadline => {
                return Err(anyhow!(
                    "{what}: not within {deadline:?}; last seen: {last}"
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// A Kafka topic as the admin API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KafkaSideTopic {
    id: String,
    partitions: usize,
    replicas: usize,
    /// Topic-level overrides only.
    config: BTreeMap<String, String>,
}

fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The spec's config as Kafka would print it (numbers and booleans as their text).
fn spec_config(kt: &KafkaTopic) -> BTreeMap<String, String> {
    kt.spec
        .config
        .iter()
        .flatten()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), v)
        })
        .collect()
}

fn condition<'a>(kt: &'a KafkaTopic, type_: &str) -> Option<&'a Condition> {
    kt.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .and_then(|c| find(c, type_))
}

fn observed_current_generation(kt: &KafkaTopic) -> bool {
    kt.status.as_ref().and_then(|s| s.observed_generation) == kt.metadata.generation
}

/// `Ok` when the resource is `Ready=True` for its current generation.
fn synced(kt: &KafkaTopic) -> Result<(), String> {
    match condition(kt, "Ready") {
        Some(c) if c.status == ConditionStatus::True && observed_current_generation(kt) => Ok(()),
        _ => Err(format!(
            "status {:?}, generation {:?}",
            kt.status, kt.metadata.generation
        )),
    }
}

fn has_finalizer(kt: &KafkaTopic) -> bool {
    kt.finalizers().iter().any(|f| f == labels::TOPIC_FINALIZER)
}

static UNIQUE: AtomicU32 = AtomicU32::new(0);

/// One test's namespace, topic prefix, Kafka admin client and operator process.
struct Fixture {
    env: TestEnv,
    client: Client,
    namespace: String,
    /// Every topic of the test starts with it; the operator includes nothing else.
    prefix: String,
    topics: Api<KafkaTopic>,
    admin: KafkaAdmin,
    operator: Option<OperatorProcess>,
    /// mTLS principals to remove ACLs of at the end.
    principals: Vec<String>,
}

impl Fixture {
    async fn new(test: &str) -> Result<Fixture> {
        Fixture::with_env(test, env()).await
    }

    /// A fixture whose Kafka is the one `env` names (see [`env_with_kafka`]).
    async fn with_env(test: &str, env: TestEnv) -> Result<Fixture> {
        let client = env.kube_client().await?;
        install_crds(&client).await?;
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let unique = format!(
            "{:x}{:x}",
            (nanos as u64 ^ u64::from(std::process::id()) << 20) & 0xff_ffff,
            UNIQUE.fetch_add(1, Ordering::Relaxed)
        );
        let namespace = format!("to-{test}-{unique}");
        let prefix = format!("e2e-to-{test}-{unique}");
        let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": namespace } }))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {namespace}"))?;
        let connection = env.scram_admin_connection();
        let admin = KafkaAdmin::new(&connection, &Registry::new(), Duration::from_secs(30))?;
        Ok(Fixture {
            topics: Api::namespaced(client.clone(), &namespace),
            env,
            client,
            namespace,
            prefix,
            admin,
            operator: None,
            principals: Vec::new(),
        })
    }

    fn topic(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.prefix)
    }

    /// SCRAM settings, the test's include pattern and a short poll interval.
    fn operator_env(&self) -> OperatorEnv {
        OperatorEnv::topic_operator_scram(&self.env, &self.namespace, CLUSTER)
            .set("OXBOW_TOPIC_INCLUDE_PATTERN", format!("{}.*", self.prefix))
            .set(
                "OXBOW_KAFKA_POLL_INTERVAL_SECONDS",
                POLL_SECONDS.to_string(),
            )
    }

    async fn start(&mut self, env: OperatorEnv) -> Result<()> {
        let env = match env.get("RUST_LOG") {
            Some(_) => env,
            None => env.set("RUST_LOG", LOG_FILTER),
        };
        let mut p = OperatorProcess::start(&self.namespace, "topic-operator", env)?;
        p.wait_ready(DEADLINE).await?;
        self.operator = Some(p);
        Ok(())
    }

    fn operator(&mut self) -> &mut OperatorProcess {
        self.operator.as_mut().expect("the operator was started")
    }

    fn operator_log(&self) -> String {
        self.operator
            .as_ref()
            .map_or("no operator".into(), |p| p.log_path().display().to_string())
    }

    /// Kills the operator with SIGKILL (it gets no chance to finish anything).
    fn kill(&mut self) -> Result<()> {
        self.operator().kill9()
    }

    async fn restart(&mut self) -> Result<()> {
        let p = self.operator();
        p.restart()?;
        p.wait_ready(DEADLINE).await
    }

    async fn metrics(&self) -> Result<Metrics> {
        self.operator
            .as_ref()
            .expect("the operator was started")
            .metrics()
            .await
    }

    /// Full passes so far: each one lists Kafka's topics exactly once.
    async fn full_passes(&self) -> Result<f64> {
        Ok(self.metrics().await?.sum(
            "oxbow_kafka_admin_requests_total",
            &[("api", "list_topics")],
        ))
    }

    /// Waits until `n` more full passes have started; all but the last have then finished.
    async fn wait_full_passes(&self, n: u32) -> Result<()> {
        let from = self.full_passes().await?;
        eventually(&format!("{n} full passes"), DEADLINE, || async {
            let now = self.full_passes().await.map_err(|e| e.to_string())?;
            if now >= from + f64::from(n) {
                Ok(())
            } else {
                Err(format!("{now} (from {from})"))
            }
        })
        .await
    }

    // ---- Kubernetes side --------------------------------------------------------------------

    /// Creates a `KafkaTopic` the way a user does (a plain create, not the operator's manager).
    async fn create_kt(&self, name: &str, spec: Value) -> Result<KafkaTopic> {
        let kt: KafkaTopic = serde_json::from_value(json!({
            "apiVersion": "kafka.oxbow.rs/v1beta1",
            "kind": "KafkaTopic",
            "metadata": { "name": name, "labels": { labels::CLUSTER: CLUSTER } },
            "spec": spec,
        }))?;
        self.topics
            .create(&PostParams::default(), &kt)
            .await
            .with_context(|| format!("creating KafkaTopic {name}"))
    }

    /// A JSON merge patch of the spec, as `kubectl patch --type merge` sends (`null` removes).
    async fn patch_spec(&self, name: &str, spec: Value) -> Result<KafkaTopic> {
        self.topics
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .with_context(|| format!("patching KafkaTopic {name}"))
    }

    /// Sets (`Some`) or removes (`None`) an annotation.
    async fn annotate(&self, name: &str, key: &str, value: Option<&str>) -> Result<KafkaTopic> {
        let patch = json!({ "metadata": { "annotations": { key: value } } });
        self.topics
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .with_context(|| format!("annotating KafkaTopic {name}"))
    }

    async fn get_kt(&self, name: &str) -> Result<Option<KafkaTopic>> {
        Ok(self.topics.get_opt(name).await?)
    }

    async fn delete_kt(&self, name: &str) -> Result<()> {
        self.topics.delete(name, &DeleteParams::default()).await?;
        Ok(())
    }

    async fn list_kts(&self) -> Result<Vec<KafkaTopic>> {
        Ok(self.topics.list(&ListParams::default()).await?.items)
    }

    /// How many `KafkaTopic`s are `Ready=True` for their current generation.
    async fn ready_count(&self) -> Result<usize, String> {
        let kts = self.list_kts().await.map_err(|e| e.to_string())?;
        Ok(kts.iter().filter(|kt| synced(kt).is_ok()).count())
    }

    /// Waits until `check` accepts the resource.
    async fn wait_kt<F>(&self, name: &str, what: &str, check: F) -> Result<KafkaTopic>
    where
        F: Fn(&KafkaTopic) -> Result<(), String>,
    {
        eventually(
            &format!("KafkaTopic {name}: {what} (log {})", self.operator_log()),
            DEADLINE,
            || async {
                match self.get_kt(name).await {
                    Ok(Some(kt)) => check(&kt).map(|()| kt),
                    Ok(None) => Err("absent".into()),
                    Err(e) => Err(e.to_string()),
                }
            },
        )
        .await
    }

    /// Waits until the resource is `Ready=True` for its current generation.
    async fn wait_synced(&self, name: &str) -> Result<KafkaTopic> {
        self.wait_kt(name, "Ready for its generation", synced).await
    }

    /// Waits until the resource is `Ready=False` with `reason` for its current generation.
    async fn wait_not_ready(&self, name: &str, reason: &str) -> Result<Condition> {
        let kt = self
            .wait_kt(
                name,
                &format!("Ready=False {reason}"),
                |kt| match condition(kt, "Ready") {
                    Some(c)
                        if c.status == ConditionStatus::False
                            && c.reason.as_deref() == Some(reason)
                            && observed_current_generation(kt) =>
                    {
                        Ok(())
                    }
                    _ => Err(format!("{:?}", kt.status)),
                },
            )
            .await?;
        Ok(condition(&kt, "Ready").cloned().expect("checked"))
    }

    async fn wait_kt_gone(&self, name: &str) -> Result<()> {
        eventually(
            &format!("KafkaTopic {name} gone (log {})", self.operator_log()),
            DEADLINE,
            || async {
                match self.get_kt(name).await {
                    Ok(None) => Ok(()),
                    Ok(Some(kt)) => Err(format!(
                        "still there: finalizers {:?}, status {:?}",
                        kt.finalizers(),
                        kt.status
                    )),
                    Err(e) => Err(e.to_string()),
                }
            },
        )
        .await
    }

    /// The `KafkaTopic`s of the namespace by name, with the topic each manages.
    async fn kt_topics(&self) -> Result<BTreeMap<String, String>> {
        Ok(self
            .list_kts()
            .await?
            .iter()
            .map(|kt| (kt.name_any(), kt.topic_name().to_owned()))
            .collect())
    }

    /// Events about the named resource with the given reason.
    async fn events(&self, name: &str, reason: &str) -> Result<Vec<Event>> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        Ok(events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .filter(|e| e.reason.as_deref() == Some(reason))
            .collect())
    }

    // ---- Kafka side -------------------------------------------------------------------------

    async fn kafka_topic(&self, topic: &str) -> Result<Option<KafkaSideTopic>> {
        let described = self.admin.describe_topics([topic]).await?;
        let d = match described.into_iter().next() {
            Some((_, Ok(d))) => d,
            Some((_, Err(e))) if e.kafka_failure().is_some_and(|f| f.is_unknown_topic()) => {
                return Ok(None);
            }
            Some((_, Err(e))) => return Err(e.into()),
            None => return Ok(None),
        };
        let config = match self
            .admin
            .describe_topic_configs([topic])
            .await?
            .into_iter()
            .next()
        {
            Some((_, Ok(c))) => c,
            Some((_, Err(e))) if e.kafka_failure().is_some_and(|f| f.is_unknown_topic()) => {
                return Ok(None);
            }
            Some((_, Err(e))) => return Err(e.into()),
            None => return Ok(None),
        };
        Ok(Some(KafkaSideTopic {
            id: d.topic_id.context("a topic without an ID")?,
            partitions: d.partitions,
            replicas: d.replication_factor,
            config,
        }))
    }

    /// Waits until the Kafka topic exists and `check` accepts it.
    async fn wait_kafka<F>(&self, topic: &str, what: &str, check: F) -> Result<KafkaSideTopic>
    where
        F: Fn(&KafkaSideTopic) -> bool,
    {
        eventually(
            &format!("Kafka topic {topic}: {what} (log {})", self.operator_log()),
            DEADLINE,
            || async {
                match self.kafka_topic(topic).await {
                    Ok(Some(t)) if check(&t) => Ok(t),
                    Ok(other) => Err(format!("{other:?}")),
                    Err(e) => Err(e.to_string()),
                }
            },
        )
        .await
    }

    async fn wait_kafka_gone(&self, topic: &str) -> Result<()> {
        eventually(
            &format!("Kafka topic {topic} deleted (log {})", self.operator_log()),
            DEADLINE,
            || async {
                match self.kafka_topic(topic).await {
                    Ok(None) => Ok(()),
                    Ok(Some(t)) => Err(format!("{t:?}")),
                    Err(e) => Err(e.to_string()),
                }
            },
        )
        .await
    }

    /// Kafka topics of this test.
    async fn kafka_topics(&self) -> Result<BTreeSet<String>> {
        Ok(self
            .admin
            .list_topics()
            .await?
            .into_iter()
            .map(|t| t.name)
            .filter(|n| n.starts_with(&self.prefix) || n.starts_with(&format!("__{}", self.prefix)))
            .collect())
    }

    // Each Kafka-side change below returns once the test's own reads show it. Kafka answers
    // when its controller committed a change, but reads are served from a broker's copy of
    // the metadata, which can lag by seconds on a busy machine: without this, "changed in
    // Kafka, then the operator restarted" could reach the operator in the other order.

    async fn create_in_kafka(
        &self,
        topic: &str,
        partitions: i32,
        cfg: &[(&str, &str)],
    ) -> Result<KafkaSideTopic> {
        let spec = NewTopicSpec {
            name: topic.to_owned(),
            partitions: Some(partitions),
            replication_factor: None,
            configs: config(cfg),
        };
        for (name, r) in self.admin.create_topics(&[spec]).await? {
            r.with_context(|| format!("creating {name} in Kafka"))?;
        }
        self.wait_kafka(topic, "visible after creation", |_| true)
            .await
    }

    async fn alter_in_kafka(&self, topic: &str, ops: Vec<ConfigOp>) -> Result<()> {
        for (name, r) in self
            .admin
            .incremental_alter_configs([(topic, ops.clone())])
            .await?
        {
            r.with_context(|| format!("altering {name} in Kafka"))?;
        }
        self.wait_kafka(topic, "visible after altering", |t| {
            ops.iter().all(|op| match op {
                ConfigOp::Set(k, v) => t.config.get(k) == Some(v),
                ConfigOp::Delete(k) => !t.config.contains_key(k),
            })
        })
        .await
        .map(|_| ())
    }

    async fn raise_in_kafka(&self, topic: &str, partitions: usize) -> Result<()> {
        for (name, r) in self.admin.create_partitions([(topic, partitions)]).await? {
            r.with_context(|| format!("raising the partitions of {name} in Kafka"))?;
        }
        self.wait_kafka(topic, "visible after raising", |t| {
            t.partitions == partitions
        })
        .await
        .map(|_| ())
    }

    async fn delete_in_kafka(&self, topic: &str) -> Result<()> {
        for (name, r) in self.admin.delete_topics([topic]).await? {
            r.with_context(|| format!("deleting {name} in Kafka"))?;
        }
        self.wait_kafka_gone(topic).await
    }

    /// Stops the operator and removes everything the test made: Kafka topics, `KafkaTopic`s
    /// (finalizers stripped), ACLs and the namespace. Deletion through the operator is tested
    /// where it is the subject; here it is only cleaning up.
    async fn finish(mut self) -> Result<()> {
        if let Some(mut p) = self.operator.take() {
            p.kill9()?;
        }
        let leftover: Vec<String> = self.kafka_topics().await?.into_iter().collect();
        if !leftover.is_empty() {
            for (name, r) in self.admin.delete_topics(leftover).await? {
                match r {
                    // Listed from a lagging broker's metadata: already gone.
                    Err(e) if e.kafka_failure().is_some_and(|f| f.is_unknown_topic()) => {}
                    r => r.with_context(|| format!("deleting {name}"))?,
                }
            }
        }
        let strip = json!({ "metadata": { "finalizers": null } });
        let names: Vec<String> = self
            .list_kts()
            .await?
            .iter()
            .map(|kt| kt.name_any())
            .collect();
        stream::iter(names)
            .map(|name| {
                let api = self.topics.clone();
                let strip = strip.clone();
                async move {
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(strip))
                        .await
                        .map(|_| ())
                }
            })
            .buffer_unordered(16)
            .try_collect::<Vec<()>>()
            .await?;
        for principal in &self.principals {
            self.admin
                .delete_acls(&[AclBindingFilter::principal(principal.clone())])
                .await?;
        }
        Api::<Namespace>::all(self.client.clone())
            .delete(&self.namespace, &DeleteParams::default())
            .await?;
        Ok(())
    }
}

/// The testbed's exports with another Kafka's (its Kubernetes stays the testbed's).
fn env_with_kafka(kafka: &KafkaExports) -> TestEnv {
    TestEnv {
        kafka_bootstrap: kafka.bootstrap.clone(),
        kafka_scram_bootstrap: kafka.scram_bootstrap.clone(),
        kafka_admin_user: kafka.admin_user.clone(),
        kafka_admin_password: kafka.admin_password.clone(),
        kafka_tls_bootstrap: kafka.tls_bootstrap.clone(),
        kafka_ca_file: kafka.ca_file.clone(),
        kafka_clients_ca_cert_file: kafka.clients_ca_cert_file.clone(),
        kafka_clients_ca_key_file: kafka.clients_ca_key_file.clone(),
        ..env()
    }
}

/// Installs the CRDs from `manifests/crds/` (server-side apply; idempotent) and waits until
/// each is Established.
async fn install_crds(client: &Client) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let dir = e2e::cache::repo_root().join("manifests/crds");
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let crd: CustomResourceDefinition = serde_yaml::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("parsing {}", path.display()))?;
        let name = crd.name_any();
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .with_context(|| format!("applying {}", path.display()))?;
        tokio::time::timeout(
            DEADLINE,
            await_condition(api.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .map_err(|_| anyhow!("CRD {name} not Established within {DEADLINE:?}"))??;
    }
    Ok(())
}

/// Asserts that two sets of names are equal, naming only the differences.
fn assert_same(what: &str, actual: &BTreeSet<String>, expected: &BTreeSet<String>) {
    let missing: Vec<&String> = expected.difference(actual).collect();
    let extra: Vec<&String> = actual.difference(expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} missing {missing:?}, {} unexpected {extra:?}",
        missing.len(),
        extra.len()
    );
}

/// The first 8 hex digits of the SHA-256 of `s`, computed here independently of the operator.
fn sha256_prefix(s: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    digest.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// =============================================================================================
// Kubernetes -> Kafka
// =============================================================================================

/// Over mTLS (a principal that is not a super user, granted ALL on the test's topic prefix
/// only): a `KafkaTopic` creates its topic (named by `metadata.name`, or `spec.topicName`;
/// absent partitions and replicas take the broker defaults), raises partitions, sets and
/// removes configs with IncrementalAlterConfigs, and deleting it deletes the topic. A
/// `KafkaTopic` whose topic is already gone from Kafka is released cleanly.
#[tokio::test]
async fn kubernetes_to_kafka_lifecycle_over_mtls() -> Result<()> {
    let mut f = Fixture::new("k2k").await?;
    let certs = tempfile::tempdir()?;
    let cn = format!("{}-operator", f.prefix);
    let (cert, key) = write_client_cert(&f.env, &cn, certs.path())?;
    let principal = format!("User:CN={cn}");
    let acl = AclBinding {
        resource_type: AclResourceType::Topic,
        resource_name: f.prefix.clone(),
        pattern_type: AclPatternType::Prefixed,
        principal: principal.clone(),
        host: "*".into(),
        operation: AclOperation::All,
        permission: AclPermission::Allow,
    };
    for (_, r) in f.admin.create_acls(&[acl]).await? {
        r?;
    }
    f.principals.push(principal);
    let env = OperatorEnv::topic_operator_mtls(&f.env, &f.namespace, CLUSTER, &cert, &key)
        .set("OXBOW_TOPIC_INCLUDE_PATTERN", format!("{}.*", f.prefix))
        .set(
            "OXBOW_KAFKA_POLL_INTERVAL_SECONDS",
            POLL_SECONDS.to_string(),
        );
    f.start(env).await?;

    // Named by metadata.name, broker defaults, one config override given as a number.
    let plain = f.topic("plain");
    f.create_kt(&plain, json!({ "config": { "retention.ms": 3600000 } }))
        .await?;
    // Named by spec.topicName: a name Kubernetes does not allow.
    let named_res = f.topic("named");
    let named_topic = f.topic("Named_Topic");
    f.create_kt(
        &named_res,
        json!({ "topicName": named_topic, "partitions": 2, "replicas": 1 }),
    )
    .await?;

    let kt = f.wait_synced(&plain).await?;
    let status = kt.status.clone().unwrap();
    let in_kafka = f.wait_kafka(&plain, "created", |_| true).await?;
    assert_eq!(status.topic_name.as_deref(), Some(plain.as_str()));
    assert_eq!(
        status.topic_id.as_deref(),
        Some(in_kafka.id.as_str()),
        "status carries Kafka's topic ID"
    );
    assert_eq!(status.observed_generation, kt.metadata.generation);
    assert!(
        has_finalizer(&kt),
        "the finalizer guards the topic: {:?}",
        kt.finalizers()
    );
    // The testbed brokers: num.partitions=1 and default.replication.factor=1 (or 3 with 3 nodes).
    let brokers = f.admin.describe_cluster().await?.broker_ids.len();
    assert_eq!(in_kafka.partitions, 1, "broker default partitions");
    assert_eq!(
        in_kafka.replicas,
        if brokers >= 3 { 3 } else { 1 },
        "broker default replicas"
    );
    assert_eq!(in_kafka.config, config(&[("retention.ms", "3600000")]));
    assert_eq!(
        kt.spec.partitions, None,
        "undeclared fields are not written into the spec"
    );

    let kt = f.wait_synced(&named_res).await?;
    let named = f.wait_kafka(&named_topic, "created", |_| true).await?;
    assert_eq!(named.partitions, 2);
    assert_eq!(
        kt.status.as_ref().unwrap().topic_name.as_deref(),
        Some(named_topic.as_str())
    );
    assert_eq!(
        kt.status.as_ref().unwrap().topic_id.as_deref(),
        Some(named.id.as_str())
    );
    assert_eq!(
        f.kafka_topic(&named_res).await?,
        None,
        "no topic is named after the resource"
    );

    // Raise partitions; remove one override, add two.
    let alters_before = f.metrics().await?.sum(
        "oxbow_kafka_admin_requests_total",
        &[("api", "incremental_alter_configs")],
    );
    f.patch_spec(
        &plain,
        json!({ "partitions": 3, "config": { "retention.ms": null, "cleanup.policy": "compact", "segment.bytes": 1048576 } }),
    )
    .await?;
    f.wait_synced(&plain).await?;
    let want = config(&[("cleanup.policy", "compact"), ("segment.bytes", "1048576")]);
    let after = f
        .wait_kafka(&plain, "raised and reconfigured", |t| {
            t.partitions == 3 && t.config == want
        })
        .await?;
    assert_eq!(after.id, in_kafka.id, "altered in place, never recreated");
    let alters_after = f.metrics().await?.sum(
        "oxbow_kafka_admin_requests_total",
        &[("api", "incremental_alter_configs")],
    );
    assert!(
        alters_after > alters_before,
        "configs change through IncrementalAlterConfigs"
    );

    // Deleting the KafkaTopic deletes the topic.
    f.delete_kt(&plain).await?;
    f.wait_kt_gone(&plain).await?;
    // A broker's metadata may lag the controller that deleted it: wait for it to show.
    f.wait_kafka_gone(&plain).await?;

    // A topic already gone from Kafka: the operator is down while both are deleted; on restart
    // the deletion finds no topic (UNKNOWN_TOPIC_OR_PARTITION) and releases the resource.
    f.kill()?;
    f.delete_in_kafka(&named_topic).await?;
    f.delete_kt(&named_res).await?;
    let waiting = f
        .get_kt(&named_res)
        .await?
        .context("held by the finalizer")?;
    assert!(waiting.metadata.deletion_timestamp.is_some());
    f.restart().await?;
    f.wait_kt_gone(&named_res).await?;
    f.wait_kafka_gone(&named_topic).await?;
    assert_eq!(
        f.kt_topics().await?,
        BTreeMap::new(),
        "nothing adopted back"
    );

    f.finish().await
}

// =============================================================================================
// Kafka -> Kubernetes
// =============================================================================================

/// In bidirectional mode: a topic created in Kafka gets a `KafkaTopic` (its own name when valid;
/// otherwise sanitised with a hash suffix and `spec.topicName` holding the real name); partition
/// and config changes in Kafka reach the spec; a topic deleted in Kafka deletes its resource.
/// Internal (`__*`) and excluded topics are left alone. Kafka is polled at the configured
/// interval, no faster.
#[tokio::test]
async fn kafka_to_kubernetes_bidirectional() -> Result<()> {
    let mut f = Fixture::new("k2kube").await?;
    let env = f
        .operator_env()
        // Internal-looking names with the prefix are included, to show the internal rule holds.
        .set(
            "OXBOW_TOPIC_INCLUDE_PATTERN",
            format!("(__)?{}.*", f.prefix),
        )
        .set(
            "OXBOW_TOPIC_EXCLUDE_PATTERN",
            format!("{}-excluded.*", f.prefix),
        );
    f.start(env).await?;

    // Polling: three more polls take at least two intervals.
    let polls = f.full_passes().await?;
    let start = Instant::now();
    eventually("three polls", DEADLINE, || async {
        let now = f.full_passes().await.map_err(|e| e.to_string())?;
        if now >= polls + 3.0 {
            Ok(())
        } else {
            Err(now.to_string())
        }
    })
    .await?;
    // The next poll may come at once, the two after it an interval apart each; the slack
    // covers the jitter of when a poll's request completes.
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(2 * POLL_SECONDS) - Duration::from_secs(1),
        "three polls in {took:?}: faster than every {POLL_SECONDS} s"
    );
    assert!(
        took <= Duration::from_secs(10 * POLL_SECONDS),
        "three polls took {took:?}: far slower than every {POLL_SECONDS} s"
    );

    let plain = f.topic("plain");
    let mixed = f.topic("Mixed_Case.v1");
    let excluded = f.topic("excluded-1");
    let internal = format!("__{}-internal", f.prefix);
    f.create_in_kafka(&plain, 2, &[("retention.ms", "100000")])
        .await?;
    f.create_in_kafka(&mixed, 1, &[]).await?;
    f.create_in_kafka(&excluded, 1, &[]).await?;
    f.create_in_kafka(&internal, 1, &[]).await?;
    // A user's resource whose name is the one a Kafka topic would get, for another topic.
    let taken = f.topic("taken");
    let other = f.topic("Other_Topic");
    let user_kt = f
        .create_kt(&taken, json!({ "topicName": other, "partitions": 1 }))
        .await?;
    f.wait_synced(&taken).await?;
    f.create_in_kafka(&taken, 3, &[]).await?;

    let kt = f.wait_synced(&plain).await?;
    assert_eq!(
        kt.spec.topic_name, None,
        "a valid name is the resource name"
    );
    assert_eq!(kt.spec.partitions, Some(2));
    assert_eq!(
        kt.spec.replicas.map(|r| r as usize),
        Some(f.kafka_topic(&plain).await?.unwrap().replicas)
    );
    assert_eq!(spec_config(&kt), config(&[("retention.ms", "100000")]));
    assert_eq!(
        kt.labels().get(labels::CLUSTER).map(String::as_str),
        Some(CLUSTER)
    );
    let plain_id = f.kafka_topic(&plain).await?.unwrap().id;
    assert_eq!(
        kt.status.as_ref().unwrap().topic_id.as_deref(),
        Some(plain_id.as_str())
    );

    // Sanitised: lower case, `_` to `-`, then `-` and the SHA-256 prefix of the real name.
    let mixed_res = format!("{}-mixed-case.v1-{}", f.prefix, sha256_prefix(&mixed));
    let kt = f.wait_synced(&mixed_res).await?;
    assert_eq!(kt.spec.topic_name.as_deref(), Some(mixed.as_str()));

    // Two polls after they exist, still nothing for the internal and the excluded topic, and
    // the user's resource was not taken over by the topic named like it.
    f.wait_full_passes(2).await?;
    let expected: BTreeMap<String, String> = [
        (plain.clone(), plain.clone()),
        (mixed_res.clone(), mixed.clone()),
        (taken.clone(), other.clone()),
    ]
    .into();
    assert_eq!(f.kt_topics().await?, expected);
    let user_now = f.get_kt(&taken).await?.unwrap();
    assert_eq!(user_now.spec, user_kt.spec, "the user's spec is untouched");
    assert_eq!(user_now.metadata.generation, user_kt.metadata.generation);
    assert_eq!(
        f.kafka_topic(&taken).await?.map(|t| t.partitions),
        Some(3),
        "the topic without a resource is kept"
    );
    assert_eq!(f.kafka_topic(&other).await?.map(|t| t.partitions), Some(1));
    let internal_state = f.kafka_topic(&internal).await?;
    assert!(internal_state.is_some(), "internal topic left alone");
    assert!(
        f.kafka_topic(&excluded).await?.is_some(),
        "excluded topic left alone"
    );

    // Changes made in Kafka reach the spec.
    f.raise_in_kafka(&plain, 4).await?;
    f.alter_in_kafka(
        &plain,
        vec![
            ConfigOp::Set("retention.ms".into(), "200000".into()),
            ConfigOp::Set("cleanup.policy".into(), "compact".into()),
        ],
    )
    .await?;
    f.wait_kt(&plain, "Kafka's partitions and config in the spec", |kt| {
        let want = config(&[("retention.ms", "200000"), ("cleanup.policy", "compact")]);
        if kt.spec.partitions == Some(4) && spec_config(kt) == want && synced(kt).is_ok() {
            Ok(())
        } else {
            Err(format!("{:?}", kt.spec))
        }
    })
    .await?;
    f.alter_in_kafka(&plain, vec![ConfigOp::Delete("retention.ms".into())])
        .await?;
    f.wait_kt(
        &plain,
        "an override removed in Kafka leaves the spec",
        |kt| {
            if spec_config(kt) == config(&[("cleanup.policy", "compact")]) && synced(kt).is_ok() {
                Ok(())
            } else {
                Err(format!("{:?}", kt.spec))
            }
        },
    )
    .await?;
    let now = f.kafka_topic(&plain).await?.unwrap();
    assert_eq!(
        now.config,
        config(&[("cleanup.policy", "compact")]),
        "nothing reverted in Kafka"
    );
    assert_eq!(now.id, plain_id);

    // Deleted in Kafka: the resource goes too.
    f.delete_in_kafka(&mixed).await?;
    f.wait_kt_gone(&mixed_res).await?;
    assert!(f.kafka_topic(&mixed).await?.is_none(), "not recreated");

    f.finish().await
}

/// A topic missing from Kafka for less than `OXBOW_KAFKA_DELETION_CONFIRM_SECONDS` keeps its
/// `KafkaTopic`. One read without the topic is no proof of a deletion (a restarting broker can
/// answer UNKNOWN_TOPIC_OR_PARTITION for a live topic), and acting on it would delete the
/// topic through the finalizer: the full stack once lost a live topic that way during a
/// rolling update. Here the topic is deleted and recreated in Kafka while two polls see it
/// missing; its resource stays and follows the new topic. (A topic that stays missing past the
/// window loses its resource: `kafka_to_kubernetes_bidirectional`.)
#[tokio::test]
async fn a_topic_missing_only_briefly_in_kafka_keeps_its_kafka_topic() -> Result<()> {
    const WINDOW_SECS: u64 = 60;
    let mut f = Fixture::new("brief").await?;
    let env = f.operator_env().set(
        "OXBOW_KAFKA_DELETION_CONFIRM_SECONDS",
        WINDOW_SECS.to_string(),
    );
    f.start(env).await?;
    let topic = f.topic("brief");
    f.create_kt(&topic, json!({ "partitions": 1 })).await?;
    let kt = f.wait_synced(&topic).await?;
    let old_id = kt.status.as_ref().and_then(|s| s.topic_id.clone());
    assert!(old_id.is_some(), "{:?}", kt.status);
    let uid = kt.metadata.uid.clone();

    let missing_since = Instant::now();
    f.delete_in_kafka(&topic).await?;
    f.wait_kafka_gone(&topic).await?;
    f.wait_full_passes(2).await?;
    f.create_in_kafka(&topic, 1, &[]).await?;
    let missing_for = missing_since.elapsed();
    assert!(
        missing_for < Duration::from_secs(WINDOW_SECS),
        "the premise needs the topic back within the window, it took {missing_for:?}"
    );
    let new_id = f.wait_kafka(&topic, "recreated", |_| true).await?.id;
    assert_ne!(Some(new_id.clone()), old_id);

    // The resource was not deleted (nor the new topic with it) and now names the new topic.
    let kt = f
        .wait_kt(&topic, "the status names the recreated topic", |kt| {
            let id = kt.status.as_ref().and_then(|s| s.topic_id.clone());
            if id.as_deref() == Some(new_id.as_str()) && synced(kt).is_ok() {
                Ok(())
            } else {
                Err(format!("{:?}", kt.status))
            }
        })
        .await?;
    assert!(kt.metadata.deletion_timestamp.is_none());
    assert_eq!(
        kt.metadata.uid, uid,
        "the same KafkaTopic, not one made again for the new topic"
    );
    f.wait_full_passes(2).await?;
    assert!(f.get_kt(&topic).await?.is_some(), "the KafkaTopic stays");
    assert_eq!(
        f.kafka_topic(&topic).await?.map(|t| t.id),
        Some(new_id),
        "the recreated topic stays"
    );
    f.finish().await
}

// =============================================================================================
// 3-way merge
// =============================================================================================

/// Changes made on both sides while the operator is down: independent ones (different fields,
/// different keys) all apply on both sides; a real conflict follows the documented rule
/// (Kubernetes wins for config, the larger partition count wins) and is reported by a
/// `Warning` condition and an Event naming both values. An override removed in Kafka from a
/// spec the user wrote leaves the spec too.
#[tokio::test]
async fn three_way_merge_and_conflicts() -> Result<()> {
    let mut f = Fixture::new("merge").await?;
    f.start(f.operator_env()).await?;
    let name = f.topic("m");
    f.create_kt(
        &name,
        json!({ "partitions": 2, "config": { "retention.ms": 100000, "segment.ms": 3600000 } }),
    )
    .await?;
    f.wait_synced(&name).await?;
    f.wait_kafka(&name, "created", |_| true).await?;

    // Independent changes.
    f.kill()?;
    f.patch_spec(
        &name,
        json!({ "partitions": 3, "config": { "retention.ms": 200000 } }),
    )
    .await?;
    f.alter_in_kafka(
        &name,
        vec![
            ConfigOp::Set("segment.ms".into(), "7200000".into()),
            ConfigOp::Set("max.message.bytes".into(), "2000000".into()),
        ],
    )
    .await?;
    f.restart().await?;
    let merged = config(&[
        ("retention.ms", "200000"),
        ("segment.ms", "7200000"),
        ("max.message.bytes", "2000000"),
    ]);
    let kt = f
        .wait_kt(&name, "both sides' changes in the spec", |kt| {
            if spec_config(kt) == merged && kt.spec.partitions == Some(3) && synced(kt).is_ok() {
                Ok(())
            } else {
                Err(format!("{:?}", kt.spec))
            }
        })
        .await?;
    let in_kafka = f
        .wait_kafka(&name, "both sides' changes", |t| {
            t.config == merged && t.partitions == 3
        })
        .await?;
    assert_eq!(
        condition(&kt, "Warning"),
        None,
        "independent changes are no conflict"
    );
    assert!(f.events(&name, "ConflictingChanges").await?.is_empty());

    // Overrides removed in Kafka, one the user wrote and one Kafka added, leave the spec.
    f.alter_in_kafka(
        &name,
        vec![
            ConfigOp::Delete("retention.ms".into()),
            ConfigOp::Delete("max.message.bytes".into()),
        ],
    )
    .await?;
    let left = config(&[("segment.ms", "7200000")]);
    f.wait_kt(&name, "removals in Kafka reach the spec", |kt| {
        if spec_config(kt) == left && synced(kt).is_ok() {
            Ok(())
        } else {
            Err(format!("{:?}", kt.spec))
        }
    })
    .await?;
    f.wait_full_passes(2).await?;
    assert_eq!(
        f.kafka_topic(&name).await?.unwrap().config,
        left,
        "the removal is not reverted"
    );

    // A conflict on a config key and on partitions.
    f.kill()?;
    f.patch_spec(
        &name,
        json!({ "partitions": 4, "config": { "segment.ms": 1800000 } }),
    )
    .await?;
    f.alter_in_kafka(
        &name,
        vec![ConfigOp::Set("segment.ms".into(), "5400000".into())],
    )
    .await?;
    f.raise_in_kafka(&name, 5).await?;
    f.restart().await?;
    let kt = f
        .wait_kt(&name, "conflict settled and reported", |kt| {
            let warned =
                condition(kt, "Warning").is_some_and(|c| c.status == ConditionStatus::True);
            if kt.spec.partitions == Some(5) && warned && synced(kt).is_ok() {
                Ok(())
            } else {
                Err(format!("{:?} {:?}", kt.spec, kt.status))
            }
        })
        .await?;
    assert_eq!(
        spec_config(&kt),
        config(&[("segment.ms", "1800000")]),
        "Kubernetes wins a config conflict"
    );
    let in_kafka_now = f
        .wait_kafka(&name, "Kubernetes' value", |t| {
            t.config == config(&[("segment.ms", "1800000")])
        })
        .await?;
    assert_eq!(
        in_kafka_now.partitions, 5,
        "the larger partition count wins"
    );
    assert_eq!(in_kafka_now.id, in_kafka.id);
    let warning = condition(&kt, "Warning").unwrap();
    assert_eq!(warning.reason.as_deref(), Some("ConflictingChanges"));
    let message = warning.message.clone().unwrap_or_default();
    for value in ["1800000", "5400000", "partitions", "(4)", "(5)"] {
        assert!(
            message.contains(value),
            "the warning names {value}: {message}"
        );
    }
    let events = eventually("a ConflictingChanges Event", DEADLINE, || async {
        let events = f
            .events(&name, "ConflictingChanges")
            .await
            .map_err(|e| e.to_string())?;
        let notes: Vec<String> = events.iter().filter_map(|e| e.note.clone()).collect();
        let named = |v: &str| notes.iter().any(|n| n.contains(v));
        if named("1800000") && named("5400000") {
            Ok(events)
        } else {
            Err(format!("{notes:?}"))
        }
    })
    .await?;
    assert!(events.iter().all(|e| e.type_.as_deref() == Some("Warning")));

    f.finish().await
}

// =============================================================================================
// Last synced state
// =============================================================================================

/// The last synced state is kept in `<cluster>-topic-state-<n>` ConfigMaps and survives a
/// restart (a change made in Kafka while the operator was down reaches the spec; with no base it
/// would have been reverted as an adoption). A topic deleted and recreated in Kafka (new topic
/// ID) keeps its resource, which follows the new topic.
#[tokio::test]
async fn state_survives_restarts_and_recreated_topics_are_followed() -> Result<()> {
    let mut f = Fixture::new("state").await?;
    f.start(f.operator_env()).await?;
    let name = f.topic("s");
    f.create_kt(
        &name,
        json!({ "partitions": 1, "config": { "retention.ms": 100000 } }),
    )
    .await?;
    let kt = f.wait_synced(&name).await?;
    let uid = kt.uid();
    let first = f.wait_kafka(&name, "created", |_| true).await?;

    let cms: Api<ConfigMap> = Api::namespaced(f.client.clone(), &f.namespace);
    let stored = eventually("the topic's state stored", DEADLINE, || async {
        let list = cms
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        list.items
            .iter()
            .filter(|cm| {
                cm.name_any()
                    .starts_with(&format!("{CLUSTER}-topic-state-"))
            })
            .find_map(|cm| cm.data.as_ref()?.get(&format!("t.{name}")).cloned())
            .ok_or_else(|| {
                format!(
                    "{:?}",
                    list.items.iter().map(|c| c.name_any()).collect::<Vec<_>>()
                )
            })
    })
    .await?;
    assert!(
        stored.contains(&first.id),
        "the stored state carries the topic ID: {stored}"
    );

    // Changed in Kafka while the operator is down.
    f.kill()?;
    f.alter_in_kafka(
        &name,
        vec![ConfigOp::Set("retention.ms".into(), "500000".into())],
    )
    .await?;
    f.restart().await?;
    f.wait_kt(&name, "Kafka's change in the spec", |kt| {
        if spec_config(kt) == config(&[("retention.ms", "500000")]) && synced(kt).is_ok() {
            Ok(())
        } else {
            Err(format!("{:?}", kt.spec))
        }
    })
    .await?;
    assert_eq!(
        f.kafka_topic(&name).await?.unwrap().config,
        config(&[("retention.ms", "500000")])
    );

    // Deleted and recreated in Kafka while the operator is down.
    f.kill()?;
    f.delete_in_kafka(&name).await?;
    f.wait_kafka_gone(&name).await?;
    f.create_in_kafka(&name, 3, &[("retention.ms", "600000")])
        .await?;
    let second = f.wait_kafka(&name, "recreated", |_| true).await?;
    assert_ne!(second.id, first.id);
    f.restart().await?;
    let kt = f
        .wait_kt(&name, "follows the recreated topic", |kt| {
            let id = kt.status.as_ref().and_then(|s| s.topic_id.clone());
            if kt.spec.partitions == Some(3)
                && spec_config(kt) == config(&[("retention.ms", "600000")])
                && id.as_deref() == Some(second.id.as_str())
                && synced(kt).is_ok()
            {
                Ok(())
            } else {
                Err(format!("{:?} {:?}", kt.spec, kt.status))
            }
        })
        .await?;
    assert_eq!(
        kt.uid(),
        uid,
        "the same resource, never deleted and recreated"
    );
    f.wait_full_passes(2).await?;
    assert_eq!(
        f.kafka_topic(&name).await?,
        Some(second),
        "the new topic is left as it is"
    );

    f.finish().await
}

/// Losing the state ConfigMaps is recovered by adoption: every topic present on both sides is
/// kept (same topic ID, same resource), Kubernetes' values win without warnings, nothing is
/// created twice, and the ConfigMaps are written again.
#[tokio::test]
async fn lost_state_is_recovered_by_adoption() -> Result<()> {
    let mut f = Fixture::new("lost").await?;
    f.start(f.operator_env()).await?;
    let from_kube = f.topic("kube");
    let from_kafka = f.topic("kafka");
    f.create_kt(
        &from_kube,
        json!({ "partitions": 2, "config": { "retention.ms": 100000 } }),
    )
    .await?;
    f.create_in_kafka(&from_kafka, 1, &[("retention.ms", "300000")])
        .await?;
    let kube_kt = f.wait_synced(&from_kube).await?;
    let kafka_kt = f.wait_synced(&from_kafka).await?;
    let kube_id = f.wait_kafka(&from_kube, "created", |_| true).await?.id;
    let kafka_id = f.kafka_topic(&from_kafka).await?.unwrap().id;

    f.kill()?;
    let cms: Api<ConfigMap> = Api::namespaced(f.client.clone(), &f.namespace);
    let selector = format!("{}={CLUSTER},oxbow.rs/topic-state=true", labels::CLUSTER);
    let lost = cms
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    assert!(!lost.is_empty(), "state ConfigMaps existed");
    for cm in &lost {
        cms.delete(&cm.name_any(), &DeleteParams::default()).await?;
    }
    // Meanwhile Kafka drifts; without a base this cannot be told from a Kubernetes change.
    f.alter_in_kafka(
        &from_kube,
        vec![ConfigOp::Set("retention.ms".into(), "700000".into())],
    )
    .await?;
    f.restart().await?;

    f.wait_kafka(&from_kube, "Kubernetes' value back", |t| {
        t.config == config(&[("retention.ms", "100000")])
    })
    .await?;
    let kt = f.wait_synced(&from_kube).await?;
    assert_eq!(kt.uid(), kube_kt.uid());
    assert_eq!(
        condition(&kt, "Warning"),
        None,
        "adoption differences are not conflicts"
    );
    let kt = f.wait_synced(&from_kafka).await?;
    assert_eq!(kt.uid(), kafka_kt.uid());
    assert_eq!(f.kafka_topic(&from_kube).await?.unwrap().id, kube_id);
    assert_eq!(f.kafka_topic(&from_kafka).await?.unwrap().id, kafka_id);
    let entries = eventually("state written again", DEADLINE, || async {
        let list = cms
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| e.to_string())?;
        let keys: BTreeSet<String> = list
            .items
            .iter()
            .flat_map(|cm| cm.data.clone().unwrap_or_default().into_keys())
            .collect();
        let want: BTreeSet<String> = [format!("t.{from_kube}"), format!("t.{from_kafka}")].into();
        if keys == want {
            Ok(keys)
        } else {
            Err(format!("{keys:?}"))
        }
    })
    .await?;
    assert_eq!(entries.len(), 2);
    f.wait_full_passes(2).await?;
    let expected: BTreeMap<String, String> = [
        (from_kube.clone(), from_kube.clone()),
        (from_kafka.clone(), from_kafka.clone()),
    ]
    .into();
    assert_eq!(
        f.kt_topics().await?,
        expected,
        "no resource created twice or lost"
    );
    assert_eq!(
        f.kafka_topics().await?,
        [from_kube.clone(), from_kafka.clone()].into()
    );

    f.finish().await
}

// =============================================================================================
// One-way mode
// =============================================================================================

/// `OXBOW_TOPIC_SYNC=kubernetes-to-kafka`: topics without a `KafkaTopic` are ignored; drift of
/// a managed topic's config is reverted; a topic deleted in Kafka is recreated; partitions
/// raised in Kafka (which cannot be undone) are refused with a clear status.
#[tokio::test]
async fn one_way_mode_ignores_other_topics_and_reverts_drift() -> Result<()> {
    let mut f = Fixture::new("oneway").await?;
    f.start(
        f.operator_env()
            .set("OXBOW_TOPIC_SYNC", "kubernetes-to-kafka"),
    )
    .await?;
    let managed = f.topic("managed");
    let ignored = f.topic("ignored");
    f.create_in_kafka(&ignored, 1, &[]).await?;
    f.create_kt(
        &managed,
        json!({ "partitions": 2, "config": { "retention.ms": 100000 } }),
    )
    .await?;
    let kt = f.wait_synced(&managed).await?;
    let generation = kt.metadata.generation;
    let first = f.wait_kafka(&managed, "created", |_| true).await?;

    f.wait_full_passes(2).await?;
    assert_eq!(
        f.kt_topics().await?,
        [(managed.clone(), managed.clone())].into(),
        "no resource for a topic made in Kafka"
    );

    f.alter_in_kafka(
        &managed,
        vec![
            ConfigOp::Set("retention.ms".into(), "999".into()),
            ConfigOp::Set("cleanup.policy".into(), "compact".into()),
        ],
    )
    .await?;
    f.wait_kafka(&managed, "drift reverted", |t| {
        t.config == config(&[("retention.ms", "100000")])
    })
    .await?;
    let kt = f.get_kt(&managed).await?.unwrap();
    assert_eq!(
        kt.metadata.generation, generation,
        "the spec is never written in one-way mode"
    );

    f.delete_in_kafka(&managed).await?;
    let recreated = f
        .wait_kafka(&managed, "recreated from the spec", |t| {
            t.id != first.id && t.partitions == 2
        })
        .await?;
    assert_eq!(recreated.config, config(&[("retention.ms", "100000")]));
    f.wait_kt(&managed, "status carries the new topic ID", |kt| {
        let id = kt.status.as_ref().and_then(|s| s.topic_id.clone());
        if id.as_deref() == Some(recreated.id.as_str()) && synced(kt).is_ok() {
            Ok(())
        } else {
            Err(format!("{:?}", kt.status))
        }
    })
    .await?;

    f.raise_in_kafka(&managed, 3).await?;
    let c = f
        .wait_not_ready(&managed, "PartitionDecreaseNotSupported")
        .await?;
    assert!(
        c.message
            .as_deref()
            .unwrap_or_default()
            .contains("from 3 to 2"),
        "{c:?}"
    );
    f.patch_spec(&managed, json!({ "partitions": 3 })).await?;
    f.wait_synced(&managed).await?;
    assert_eq!(
        f.kafka_topic(&ignored).await?.map(|t| t.partitions),
        Some(1),
        "the ignored topic is untouched"
    );

    f.finish().await
}

// =============================================================================================
// Refusals
// =============================================================================================

/// What the operator will not do is reported as `Ready=False` with a reason and a message
/// (Kafka's own for Kafka's refusals) and touches no other topic: lowering partitions,
/// changing the replication factor, unknown config keys and invalid values (on create and on
/// update), more replicas than brokers, a second `KafkaTopic` for a managed topic (the older
/// wins). A resource whose topic was never created is released cleanly.
#[tokio::test]
async fn refusals_have_a_clear_status_and_touch_no_other_topic() -> Result<()> {
    let mut f = Fixture::new("refuse").await?;
    f.start(f.operator_env()).await?;
    let control = f.topic("control");
    f.create_kt(
        &control,
        json!({ "partitions": 3, "replicas": 1, "config": { "retention.ms": 100000 } }),
    )
    .await?;
    let control_kt = f.wait_synced(&control).await?;
    let control_kafka = f.wait_kafka(&control, "created", |_| true).await?;

    // Refused on create, in one burst with a valid topic that must not suffer from them.
    let brokers = f.admin.describe_cluster().await?.broker_ids.len();
    let bad_key = f.topic("bad-key");
    let bad_value = f.topic("bad-value");
    let too_many = f.topic("too-many-replicas");
    let fine = f.topic("fine");
    futures::try_join!(
        f.create_kt(&bad_key, json!({ "config": { "no.such.config": "1" } })),
        f.create_kt(&bad_value, json!({ "config": { "retention.ms": "soon" } })),
        f.create_kt(&too_many, json!({ "replicas": brokers + 1 })),
        f.create_kt(&fine, json!({ "partitions": 1 })),
    )?;
    let c = f.wait_not_ready(&bad_key, "InvalidConfig").await?;
    assert!(
        c.message
            .as_deref()
            .unwrap_or_default()
            .contains("no.such.config"),
        "Kafka's message: {c:?}"
    );
    let c = f.wait_not_ready(&bad_value, "InvalidConfig").await?;
    assert!(
        c.message.as_deref().unwrap_or_default().contains("soon"),
        "Kafka's message: {c:?}"
    );
    let c = f.wait_not_ready(&too_many, "ReplicasExceedBrokers").await?;
    assert!(
        c.message
            .as_deref()
            .unwrap_or_default()
            .contains(&format!("{} replicas", brokers + 1)),
        "{c:?}"
    );
    f.wait_synced(&fine).await?;
    for absent in [&bad_key, &bad_value, &too_many] {
        assert_eq!(f.kafka_topic(absent).await?, None, "{absent} not created");
    }
    let events = f.events(&bad_key, "InvalidConfig").await?;
    assert!(!events.is_empty(), "an Event tells the reason too");

    // Refused on update of the control topic's siblings.
    let dec = f.topic("decrease");
    let rf = f.topic("rf");
    futures::try_join!(
        f.create_kt(&dec, json!({ "partitions": 3 })),
        f.create_kt(
            &rf,
            json!({ "replicas": 1, "config": { "retention.ms": 100000 } })
        ),
    )?;
    f.wait_synced(&dec).await?;
    f.wait_synced(&rf).await?;
    f.patch_spec(&dec, json!({ "partitions": 2 })).await?;
    let c = f
        .wait_not_ready(&dec, "PartitionDecreaseNotSupported")
        .await?;
    assert!(
        c.message
            .as_deref()
            .unwrap_or_default()
            .contains("from 3 to 2"),
        "{c:?}"
    );
    f.patch_spec(&rf, json!({ "replicas": 2 })).await?;
    let c = f
        .wait_not_ready(&rf, "ReplicationFactorChangeNotSupported")
        .await?;
    assert!(
        c.message
            .as_deref()
            .unwrap_or_default()
            .contains("from 1 to 2"),
        "{c:?}"
    );
    f.patch_spec(&fine, json!({ "config": { "no.such.config": "1" } }))
        .await?;
    let c = f.wait_not_ready(&fine, "InvalidConfig").await?;
    assert!(
        c.message
            .as_deref()
            .unwrap_or_default()
            .contains("no.such.config"),
        "Kafka's message: {c:?}"
    );
    assert_eq!(f.kafka_topic(&dec).await?.unwrap().partitions, 3);
    assert_eq!(f.kafka_topic(&rf).await?.unwrap().replicas, 1);
    assert_eq!(
        f.kafka_topic(&fine).await?.unwrap().config,
        BTreeMap::new(),
        "no partial config change"
    );

    // Two resources for one topic: the older keeps it, the newer is refused. The newer sorts
    // first by name, so only age can make the older win.
    let dup_topic = f.topic("dup");
    let older = f.topic("dup-z-older");
    let newer = f.topic("dup-a-newer");
    let older_kt = f
        .create_kt(
            &older,
            json!({ "topicName": dup_topic, "config": { "retention.ms": 100000 } }),
        )
        .await?;
    f.wait_synced(&older).await?;
    let created = older_kt
        .metadata
        .creation_timestamp
        .clone()
        .context("creationTimestamp")?;
    // creationTimestamp has one-second resolution: wait for the clock to pass it.
    eventually("a later second", DEADLINE, || async {
        let now = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        if now > created.0.as_second() {
            Ok(())
        } else {
            Err(now.to_string())
        }
    })
    .await?;
    f.create_kt(
        &newer,
        json!({ "topicName": dup_topic, "config": { "retention.ms": 200000 } }),
    )
    .await?;
    let c = f.wait_not_ready(&newer, "ResourceConflict").await?;
    assert!(
        c.message
            .as_deref()
            .unwrap_or_default()
            .contains(&format!("{}/{older}", f.namespace)),
        "{c:?}"
    );
    f.wait_full_passes(2).await?;
    f.wait_synced(&older).await?;
    let dup = f
        .kafka_topic(&dup_topic)
        .await?
        .context("the topic exists")?;
    assert_eq!(
        dup.config,
        config(&[("retention.ms", "100000")]),
        "the older resource's config"
    );
    f.delete_kt(&newer).await?;
    f.wait_kt_gone(&newer).await?;
    f.wait_full_passes(2).await?;
    assert_eq!(
        f.kafka_topic(&dup_topic).await?.map(|t| t.id),
        Some(dup.id),
        "deleting the loser keeps the topic"
    );

    // Never created: deleting the resource finds no topic and releases it.
    f.delete_kt(&bad_key).await?;
    f.wait_kt_gone(&bad_key).await?;

    // The control topic went through all of that untouched.
    assert_eq!(f.kafka_topic(&control).await?, Some(control_kafka));
    let now = f.get_kt(&control).await?.unwrap();
    assert_eq!(now.status, control_kt.status);
    assert_eq!(now.metadata.generation, control_kt.metadata.generation);

    f.finish().await
}

/// A topic Kafka refused as invalid (here `InvalidConfig`, on create and on alter) is not sent
/// to Kafka again while nothing changed: the operator's CreateTopics and
/// IncrementalAlterConfigs request counters stay flat over two full passes (polls), and the
/// status, Ready=False with Kafka's message, is not rewritten. Fixing the spec (a new
/// generation) sends it at once, and the topic becomes Ready.
#[tokio::test]
async fn refused_topics_are_not_sent_again_until_their_spec_changes() -> Result<()> {
    let mut f = Fixture::new("no-resend").await?;
    f.start(f.operator_env()).await?;
    let requests =
        |m: &Metrics, api: &str| m.sum("oxbow_kafka_admin_requests_total", &[("api", api)]);

    // Refused on create.
    let bad = f.topic("bad");
    f.create_kt(
        &bad,
        json!({ "partitions": 1, "config": { "no.such.config": "1" } }),
    )
    .await?;
    let refused = f.wait_not_ready(&bad, "InvalidConfig").await?;
    assert!(
        refused
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("no.such.config"),
        "Kafka's message: {refused:?}"
    );
    // Refused on alter: a topic that exists gets an invalid config.
    let altered = f.topic("altered");
    f.create_kt(&altered, json!({ "partitions": 1 })).await?;
    f.wait_synced(&altered).await?;
    f.patch_spec(&altered, json!({ "config": { "retention.ms": "soon" } }))
        .await?;
    f.wait_not_ready(&altered, "InvalidConfig").await?;

    let before = f.metrics().await?;
    let bad_status = f.get_kt(&bad).await?.context("bad exists")?.status;
    let altered_status = f.get_kt(&altered).await?.context("altered exists")?.status;
    // Two full passes, each of which used to send both again.
    f.wait_full_passes(3).await?;
    let after = f.metrics().await?;
    assert_eq!(
        requests(&after, "create_topics"),
        requests(&before, "create_topics"),
        "the refused create was sent again (log {})",
        f.operator_log()
    );
    assert_eq!(
        requests(&after, "incremental_alter_configs"),
        requests(&before, "incremental_alter_configs"),
        "the refused alter was sent again (log {})",
        f.operator_log()
    );
    assert_eq!(
        after.sum("oxbow_topic_operator_held_topics", &[]),
        2.0,
        "both topics are held"
    );
    assert_eq!(
        f.get_kt(&bad).await?.context("bad exists")?.status,
        bad_status,
        "status not rewritten"
    );
    assert_eq!(
        f.get_kt(&altered).await?.context("altered exists")?.status,
        altered_status
    );
    assert_eq!(f.kafka_topic(&bad).await?, None, "still not created");

    // Fixed: a new generation is sent at once.
    f.patch_spec(
        &bad,
        json!({ "config": { "no.such.config": null, "retention.ms": 100000 } }),
    )
    .await?;
    f.wait_synced(&bad).await?;
    f.wait_kafka(&bad, "created with the fixed config", |t| {
        t.config == config(&[("retention.ms", "100000")])
    })
    .await?;
    f.patch_spec(&altered, json!({ "config": { "retention.ms": 200000 } }))
        .await?;
    f.wait_synced(&altered).await?;
    f.wait_kafka(&altered, "altered with the fixed config", |t| {
        t.config == config(&[("retention.ms", "200000")])
    })
    .await?;
    let fixed = f.metrics().await?;
    assert!(requests(&fixed, "create_topics") > requests(&after, "create_topics"));
    assert!(
        requests(&fixed, "incremental_alter_configs")
            > requests(&after, "incremental_alter_configs")
    );
    eventually("no topic held", DEADLINE, || async {
        let held = f
            .metrics()
            .await
            .map_err(|e| e.to_string())?
            .sum("oxbow_topic_operator_held_topics", &[]);
        if held == 0.0 {
            Ok(())
        } else {
            Err(held.to_string())
        }
    })
    .await?;

    f.finish().await
}

/// Against a Kafka of its own whose broker has `delete.topic.enable=false` (the shared testbed
/// must keep deleting topics): deleting a `KafkaTopic` releases its finalizer at once, so the
/// resource goes; the topic is kept, and a Warning Event on the resource says why. In
/// bidirectional mode the kept topic is then adopted again by a new `KafkaTopic`, as any Kafka
/// topic without one is. Deleting the namespace with such resources in it completes.
#[tokio::test]
async fn deletion_disabled_in_kafka_releases_the_resource_and_keeps_the_topic() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let kafka = OwnedKafka::start(&KafkaOptions {
        extra_properties: vec![("delete.topic.enable".into(), "false".into())],
        ..KafkaOptions::new(1, dir.path().to_path_buf())
    })
    .await?;
    let mut f = Fixture::with_env("no-delete", env_with_kafka(&kafka.cluster.exports)).await?;
    f.start(f.operator_env()).await?;

    let kept = f.topic("kept");
    f.create_kt(
        &kept,
        json!({ "partitions": 2, "config": { "retention.ms": 100000 } }),
    )
    .await?;
    let kt = f.wait_synced(&kept).await?;
    assert!(has_finalizer(&kt));
    let uid = kt.uid().context("uid")?;
    let created = f.wait_kafka(&kept, "created", |_| true).await?;

    f.delete_kt(&kept).await?;
    // Released: the resource with this UID is gone (a new one may take its name, below).
    eventually(
        &format!("KafkaTopic {kept} released (log {})", f.operator_log()),
        DEADLINE,
        || async {
            match f.get_kt(&kept).await {
                Ok(Some(kt)) if kt.uid().as_deref() == Some(uid.as_str()) => Err(format!(
                    "still there: finalizers {:?}, status {:?}",
                    kt.finalizers(),
                    kt.status
                )),
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await?;
    let events = eventually("a TopicDeletionDisabled Event", DEADLINE, || async {
        let events = f
            .events(&kept, "TopicDeletionDisabled")
            .await
            .map_err(|e| e.to_string())?;
        if events.is_empty() {
            Err("none yet".into())
        } else {
            Ok(events)
        }
    })
    .await?;
    let note = events[0].note.clone().unwrap_or_default();
    assert_eq!(events[0].type_.as_deref(), Some("Warning"));
    assert!(
        note.contains("kept") && note.contains("delete.topic.enable=false"),
        "{note}"
    );
    assert_eq!(
        f.kafka_topic(&kept).await?,
        Some(created.clone()),
        "the topic is kept as it was"
    );
    // Bidirectional: the kept topic is a Kafka topic without a KafkaTopic, so it is adopted.
    let adopted = f.wait_synced(&kept).await?;
    assert_ne!(adopted.uid(), Some(uid), "a new resource");
    assert_eq!(adopted.spec.partitions, Some(2));
    assert_eq!(spec_config(&adopted), created.config);

    // A namespace holding such resources is deleted without hanging on their finalizers.
    let other = f.topic("other");
    f.create_kt(&other, json!({ "partitions": 1 })).await?;
    f.wait_synced(&other).await?;
    let namespaces: Api<Namespace> = Api::all(f.client.clone());
    namespaces
        .delete(&f.namespace, &DeleteParams::default())
        .await?;
    eventually(
        &format!(
            "namespace {} deleted (log {})",
            f.namespace,
            f.operator_log()
        ),
        DEADLINE * 2,
        || async {
            match namespaces.get_opt(&f.namespace).await {
                Ok(None) => Ok(()),
                Ok(Some(ns)) => Err(format!("{:?}", ns.status)),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await?;
    for topic in [&kept, &other] {
        assert!(f.kafka_topic(topic).await?.is_some(), "{topic} kept");
    }
    // Nothing else to clean: the namespace is gone, and this Kafka (with its topics, which it
    // cannot delete) stops when dropped, after the operator.
    drop(f);
    tokio::task::spawn_blocking(move || drop(kafka)).await?;
    Ok(())
}

// =============================================================================================
// Unmanaged and paused
// =============================================================================================

/// `oxbow.rs/managed: "false"` stops syncing both ways, and deleting the resource then keeps
/// the topic (which, in bidirectional mode, is adopted again by a new resource).
/// `oxbow.rs/pause-reconciliation: "true"` pauses until removed, then both sides' changes merge;
/// deleting a paused resource keeps the topic too.
#[tokio::test]
async fn unmanaged_and_paused_topics_are_left_alone() -> Result<()> {
    let mut f = Fixture::new("hands-off").await?;
    f.start(f.operator_env()).await?;
    let unmanaged = f.topic("unmanaged");
    let paused = f.topic("paused");
    f.create_kt(
        &unmanaged,
        json!({ "partitions": 1, "config": { "retention.ms": 100000 } }),
    )
    .await?;
    f.create_kt(
        &paused,
        json!({ "partitions": 1, "config": { "retention.ms": 100000 } }),
    )
    .await?;
    f.wait_synced(&unmanaged).await?;
    f.wait_synced(&paused).await?;
    let unmanaged_kafka = f.wait_kafka(&unmanaged, "created", |_| true).await?;
    let paused_kafka = f.wait_kafka(&paused, "created", |_| true).await?;

    // Unmanaged.
    f.annotate(&unmanaged, labels::MANAGED, Some("false"))
        .await?;
    f.wait_kt(&unmanaged, "Unmanaged condition", |kt| {
        match condition(kt, "Unmanaged") {
            Some(c) if c.status == ConditionStatus::True => Ok(()),
            _ => Err(format!("{:?}", kt.status)),
        }
    })
    .await?;
    f.patch_spec(
        &unmanaged,
        json!({ "partitions": 2, "config": { "retention.ms": 200000 } }),
    )
    .await?;
    f.alter_in_kafka(
        &unmanaged,
        vec![ConfigOp::Set("cleanup.policy".into(), "compact".into())],
    )
    .await?;
    f.wait_full_passes(2).await?;
    let now = f.kafka_topic(&unmanaged).await?.unwrap();
    assert_eq!(now.partitions, 1, "spec changes are not applied");
    assert_eq!(
        now.config,
        config(&[("retention.ms", "100000"), ("cleanup.policy", "compact")])
    );
    let kt = f.get_kt(&unmanaged).await?.unwrap();
    assert_eq!(
        spec_config(&kt),
        config(&[("retention.ms", "200000")]),
        "Kafka changes do not reach the spec"
    );
    f.delete_kt(&unmanaged).await?;
    // The same name comes back as the adopted topic's new resource: wait for a new UID.
    let old_uid = kt.uid();
    let adopted = f
        .wait_kt(&unmanaged, "adopted again by a new resource", |kt| {
            if kt.uid() != old_uid && synced(kt).is_ok() {
                Ok(())
            } else {
                Err(format!("uid {:?}", kt.uid()))
            }
        })
        .await?;
    assert_eq!(
        adopted.spec.partitions,
        Some(1),
        "the new resource describes the kept topic"
    );
    assert_eq!(
        f.kafka_topic(&unmanaged).await?.map(|t| t.id),
        Some(unmanaged_kafka.id.clone()),
        "topic kept"
    );

    // Paused.
    f.annotate(&paused, labels::PAUSE_RECONCILIATION, Some("true"))
        .await?;
    f.wait_kt(
        &paused,
        "ReconciliationPaused condition",
        |kt| match condition(kt, "ReconciliationPaused") {
            Some(c) if c.status == ConditionStatus::True => Ok(()),
            _ => Err(format!("{:?}", kt.status)),
        },
    )
    .await?;
    f.patch_spec(&paused, json!({ "partitions": 2 })).await?;
    f.alter_in_kafka(
        &paused,
        vec![ConfigOp::Set("cleanup.policy".into(), "compact".into())],
    )
    .await?;
    f.wait_full_passes(2).await?;
    assert_eq!(
        f.kafka_topic(&paused).await?.unwrap().partitions,
        1,
        "paused: spec not applied"
    );
    assert_eq!(
        spec_config(&f.get_kt(&paused).await?.unwrap()),
        config(&[("retention.ms", "100000")]),
        "paused: Kafka not applied"
    );
    f.annotate(&paused, labels::PAUSE_RECONCILIATION, None)
        .await?;
    let both = config(&[("retention.ms", "100000"), ("cleanup.policy", "compact")]);
    f.wait_kafka(&paused, "resumed: spec applied", |t| t.partitions == 2)
        .await?;
    f.wait_kt(&paused, "resumed: Kafka's change in the spec", |kt| {
        if spec_config(kt) == both && synced(kt).is_ok() {
            Ok(())
        } else {
            Err(format!("{:?}", kt.spec))
        }
    })
    .await?;

    // Deleting a paused resource keeps the topic.
    f.annotate(&paused, labels::PAUSE_RECONCILIATION, Some("true"))
        .await?;
    f.wait_kt(&paused, "paused again", |kt| {
        match condition(kt, "ReconciliationPaused") {
            Some(_) => Ok(()),
            None => Err(format!("{:?}", kt.status)),
        }
    })
    .await?;
    let old_uid = f.get_kt(&paused).await?.unwrap().uid();
    f.delete_kt(&paused).await?;
    f.wait_kt(&paused, "adopted again by a new resource", |kt| {
        if kt.uid() != old_uid && synced(kt).is_ok() {
            Ok(())
        } else {
            Err(format!("uid {:?}", kt.uid()))
        }
    })
    .await?;
    f.wait_full_passes(2).await?;
    assert_eq!(
        f.kafka_topic(&paused).await?.map(|t| t.id),
        Some(paused_kafka.id),
        "topic kept"
    );

    f.finish().await
}

/// A `KafkaTopic` relabelled to another cluster leaves this operator's watch, but nobody asked
/// for its topic to be deleted: the topic stays, the operator releases its finalizer (so the
/// resource can be deleted later without hanging) and never takes the resource back.
#[tokio::test]
async fn relabelled_topics_are_kept_and_released() -> Result<()> {
    let mut f = Fixture::new("relabel").await?;
    f.start(f.operator_env()).await?;
    let name = f.topic("moved");
    f.create_kt(&name, json!({ "partitions": 1 })).await?;
    f.wait_synced(&name).await?;
    let before = f.wait_kafka(&name, "created", |_| true).await?;
    assert!(has_finalizer(&f.get_kt(&name).await?.unwrap()));

    let patch = json!({ "metadata": { "labels": { labels::CLUSTER: "another-cluster" } } });
    f.topics
        .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    f.wait_kt(&name, "finalizer released", |kt| {
        if has_finalizer(kt) {
            Err("still finalized".into())
        } else {
            Ok(())
        }
    })
    .await?;
    f.wait_full_passes(2).await?;
    assert_eq!(
        f.kafka_topic(&name).await?.map(|t| t.id),
        Some(before.id.clone()),
        "the topic of a relabelled KafkaTopic is kept"
    );
    let kt = f.get_kt(&name).await?.unwrap();
    assert_eq!(
        kt.labels().get(labels::CLUSTER).map(String::as_str),
        Some("another-cluster"),
        "the resource is not taken back"
    );
    // Deleting it now does not hang on a finalizer nobody watches.
    f.delete_kt(&name).await?;
    eventually("relabelled KafkaTopic deleted", DEADLINE, || async {
        match f.topics.get_opt(&name).await.map_err(|e| e.to_string())? {
            Some(kt)
                if kt.labels().get(labels::CLUSTER).map(String::as_str)
                    == Some("another-cluster") =>
            {
                Err("still there".to_string())
            }
            _ => Ok(()),
        }
    })
    .await?;
    assert_eq!(
        f.kafka_topic(&name).await?.map(|t| t.id),
        Some(before.id),
        "deleting a resource of another cluster deletes nothing in this one"
    );
    f.finish().await
}

// =============================================================================================
// Idempotence
// =============================================================================================

/// Once converged, neither a full pass nor a targeted pass over unchanged topics writes
/// anything to Kubernetes (`oxbow_topic_operator_kube_writes_total`) or Kafka (the write APIs
/// of `oxbow_kafka_admin_requests_total`).
#[tokio::test]
async fn unchanged_topics_cause_no_writes() -> Result<()> {
    let mut f = Fixture::new("quiet").await?;
    f.start(f.operator_env()).await?;
    let names: Vec<String> = (0..4).map(|i| f.topic(&format!("k{i}"))).collect();
    for (i, name) in names.iter().enumerate() {
        f.create_kt(name, json!({ "partitions": i + 1, "config": { "retention.ms": 100000 + i, "cleanup.policy": "delete" } })).await?;
    }
    let odd_res = f.topic("odd");
    f.create_kt(&odd_res, json!({ "topicName": f.topic("Odd_Name") }))
        .await?;
    let from_kafka = f.topic("from-kafka");
    f.create_in_kafka(&from_kafka, 2, &[("segment.ms", "3600000")])
        .await?;
    for name in names.iter().chain([&odd_res, &from_kafka]) {
        let kt = f.wait_synced(name).await?;
        assert!(has_finalizer(&kt));
    }
    // Converged: one full pass after everything is Ready has run to its end.
    f.wait_full_passes(2).await?;

    let writes = |m: &Metrics| {
        let kube = m.sum("oxbow_topic_operator_kube_writes_total", &[]);
        let kafka: Vec<f64> = [
            "create_topics",
            "create_partitions",
            "incremental_alter_configs",
            "delete_topics",
        ]
        .iter()
        .map(|api| m.sum("oxbow_kafka_admin_requests_total", &[("api", api)]))
        .collect();
        (kube, kafka)
    };
    let before = f.metrics().await?;
    f.wait_full_passes(3).await?;
    // A targeted pass too: an annotation that changes nothing about syncing.
    let passes = |m: &Metrics| m.sum("oxbow_topic_operator_passes_total", &[]);
    let p0 = passes(&f.metrics().await?);
    f.annotate(&names[0], labels::PAUSE_RECONCILIATION, Some("false"))
        .await?;
    eventually("a targeted pass", DEADLINE, || async {
        let p = passes(&f.metrics().await.map_err(|e| e.to_string())?);
        // The pass after it has started, so the targeted one has finished.
        if p >= p0 + 2.0 {
            Ok(())
        } else {
            Err(p.to_string())
        }
    })
    .await?;
    let after = f.metrics().await?;
    assert!(passes(&after) > passes(&before), "passes ran");
    assert_eq!(
        writes(&after),
        writes(&before),
        "no writes across quiet passes; log {}",
        f.operator_log()
    );
    for name in names.iter().chain([&odd_res, &from_kafka]) {
        synced(&f.get_kt(name).await?.unwrap()).map_err(|e| anyhow!("{name}: {e}"))?;
    }

    f.finish().await
}

// =============================================================================================
// Crash safety
// =============================================================================================

/// 500 `KafkaTopic`s applied at once, worked on in chunks of 64; the operator is killed
/// (SIGKILL) after some are Ready and restarted. Every topic and every resource converges, none lost and none duplicated (the sets
/// compared exactly, each status naming its topic's ID); then deleting them all deletes every
/// topic.
#[tokio::test]
async fn crash_during_a_500_topic_change_converges() -> Result<()> {
    const N: usize = 500;
    let mut f = Fixture::new("crash").await?;
    // Passes of 64 topics: the 500 are worked on in chunks (as 10,000 are with the default
    // 1,000), so a crash also lands between the chunks of one pass.
    f.start(f.operator_env().set("OXBOW_PASS_CHUNK_TOPICS", "64"))
        .await?;
    let names: Vec<String> = (0..N).map(|i| f.topic(&format!("t{i:03}"))).collect();
    stream::iter(names.clone())
        .map(|name| {
            let f = &f;
            async move {
                f.create_kt(
                    &name,
                    json!({ "partitions": 1, "config": { "retention.ms": 3600000 } }),
                )
                .await
                .map(|_| ())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;

    let ready_at_kill = eventually("some Ready", DEADLINE, || async {
        let n = f.ready_count().await?;
        if n > 0 { Ok(n) } else { Err("none".into()) }
    })
    .await?;
    f.kill()?;
    assert!(
        ready_at_kill < N,
        "killed in the middle ({ready_at_kill} of {N} were Ready)"
    );
    let in_kafka_at_kill = f.kafka_topics().await?.len();
    eprintln!("killed with {ready_at_kill} Ready and {in_kafka_at_kill} topics in Kafka");

    f.restart().await?;
    eventually(
        &format!("all {N} Ready (log {})", f.operator_log()),
        Duration::from_secs(180),
        || async {
            let n = f.ready_count().await?;
            if n == N {
                Ok(())
            } else {
                Err(format!("{n} Ready"))
            }
        },
    )
    .await?;

    let expected: BTreeSet<String> = names.iter().cloned().collect();
    let kts = f.list_kts().await?;
    let kt_names: BTreeSet<String> = kts.iter().map(|kt| kt.name_any()).collect();
    assert_eq!(kts.len(), N, "no resource duplicated");
    assert_same("resources", &kt_names, &expected);
    // Ready carries the topic ID Kafka showed, so every topic is visible by now.
    assert_same("Kafka topics", &f.kafka_topics().await?, &expected);
    let described = f.admin.describe_topics(names.clone()).await?;
    let ids: BTreeMap<String, String> = described
        .into_iter()
        .map(|(n, r)| Ok((n, r?.topic_id.context("topic ID")?)))
        .collect::<Result<_>>()?;
    for kt in &kts {
        let status = kt.status.as_ref().unwrap();
        assert_eq!(
            status.topic_id.as_ref(),
            ids.get(&kt.name_any()),
            "{}",
            kt.name_any()
        );
    }

    // And all of them deleted in one go.
    Api::<KafkaTopic>::namespaced(f.client.clone(), &f.namespace)
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await?;
    eventually(
        &format!(
            "every resource and topic deleted (log {})",
            f.operator_log()
        ),
        Duration::from_secs(120),
        || async {
            let left = f.list_kts().await.map_err(|e| e.to_string())?.len();
            let topics = f.kafka_topics().await.map_err(|e| e.to_string())?.len();
            if left == 0 && topics == 0 {
                Ok(())
            } else {
                Err(format!("{left} resources, {topics} topics"))
            }
        },
    )
    .await?;

    f.finish().await
}
