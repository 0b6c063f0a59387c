//! Integration tests of the user operator against the testbed (the variables `testbed up`
//! exports): the `user-operator` binary runs as a child process (`e2e::operator`) watching a
//! namespace of its own, KafkaUsers are applied through the real API server, and every claim is
//! checked with real Kafka clients: rdkafka producers logging in over SASL_SSL SCRAM and mTLS
//! (listeners where ACLs apply), and the admin and protocol clients reading ACLs, SCRAM
//! credentials and quotas back as the admin super user.
//!
//! A user operator is aggressive by design: its full pass removes the credentials, ACLs and
//! quotas of every Kafka user that has no KafkaUser. So the tests of this binary run one at a
//! time (a global lock, hence one operator at a time), and every operator ignores all Kafka users
//! whose names do not start with this suite's prefix `uo-` (see [`IGNORED_USERS`]), which keeps
//! it off the testbed's `admin` and off the users of whatever else uses the testbed meanwhile.
//! May touch: namespaces, Kafka users, ACLs, quotas and topics named `uo-*` (removed again),
//! temporary files, child processes.

use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use e2e::{
    env::TestEnv,
    operator::{OperatorEnv, OperatorProcess, write_client_cert},
};
use k8s_openapi::{
    ByteString,
    api::core::v1::{Namespace, Secret},
};
use kube::{
    Api,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use oxbow_runtime::kafka::{
    KafkaConnection,
    admin::{
        AclBinding, AclBindingFilter, AclOperation, AclPatternType, AclPermission, AclResourceType,
        KafkaAdmin, NewTopicSpec, ScramMechanism, ScramUpsertion,
    },
    protocol::KafkaProtocolClient,
};
use prometheus::Registry;
use rdkafka::{
    ClientConfig, ClientContext,
    error::{KafkaError, RDKafkaErrorCode},
    producer::{FutureProducer, FutureRecord, Producer},
};
use serde_json::{Value, json};
use shared_crds::{ConditionStatus, KafkaUser};

/// Long enough for the operator, the API server and Kafka on a busy two-core machine; short
/// enough that a hang fails the test.
const DEADLINE: Duration = Duration::from_secs(60);
/// Between two looks at a condition.
const POLL: Duration = Duration::from_millis(200);
/// The operators' full reconciliation interval: short, so the tests that need a full pass
/// (hand-made ACLs, idempotence) do not wait long.
const FULL_PASS_SECONDS: &str = "3";
const CLUSTER: &str = "my-cluster";
const FIELD_MANAGER: &str = "e2e-user-operator-tests";

/// Every Kafka user name that does NOT start with `uo-` or `CN=uo-` (the operator matches the
/// whole name, and checks both a name and its certificate form `CN=<name>`). The operator's
/// regex engine has no look-ahead, so the complement is spelled out: the empty name, anything
/// whose first character starts neither prefix, and each proper prefix of the two prefixes
/// followed by a character that leaves it. The restart test proves it: an orphan `uo-` user
/// goes, an `ext-` user and `admin` stay.
const IGNORED_USERS: &str = r"|[^uC].*|u([^o].*)?|uo([^\-].*)?|C([^N].*)?|CN([^=].*)?|CN=([^u].*)?|CN=u([^o].*)?|CN=uo([^\-].*)?";

/// The Kafka write APIs the operator counts in `oxbow_kafka_admin_requests_total{api}`.
const WRITE_APIS: [&str; 4] = [
    "create_acls",
    "delete_acls",
    "alter_user_scram_credentials",
    "alter_client_quotas",
];

/// One user operator against the shared Kafka at a time (see the module comment).
static ONE_OPERATOR_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
static CRDS_APPLIED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// A test-unique id, `uo-<hex>`: namespace name and prefix of every name the test uses.
fn unique_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 40) ^ u64::from(n);
    format!("uo-{:x}", mixed & 0xffff_ffff_ffff)
}

/// Polls `check` until it returns `Ok`, failing the test with the last `Err` after [`DEADLINE`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match tokio::time::timeout(DEADLINE, check()).await {
            Ok(Ok(v)) => return v,
            Ok(Err(e)) if start.elapsed() > DEADLINE => {
                panic!("{what}: not within {DEADLINE:?}; last: {e}")
            }
            Err(_) => panic!("{what}: one check hung for {DEADLINE:?}"),
            Ok(Err(_)) => tokio::time::sleep(POLL).await,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Kafka clients
// ---------------------------------------------------------------------------------------------

/// Client-level errors librdkafka reports through the context (login failures never surface
/// as call results).
#[derive(Clone, Default)]
struct Errors(Arc<Mutex<Vec<ClientError>>>);

/// An error's librdkafka code (when it has one) and its full text.
type ClientError = (Option<RDKafkaErrorCode>, String);

impl ClientContext for Errors {
    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        self.0
            .lock()
            .unwrap()
            .push((code, format!("{error}: {reason}")));
    }
}

impl Errors {
    fn authentication(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|(code, _)| *code == Some(RDKafkaErrorCode::Authentication))
            .map(|(_, text)| text.clone())
    }
}

fn producer(config: &ClientConfig) -> Result<(FutureProducer<Errors>, Errors), String> {
    let errors = Errors::default();
    let mut config = config.clone();
    // Fail a message in seconds, not librdkafka's five minutes, so polling loops stay responsive.
    config.set("message.timeout.ms", "8000");
    let p = config
        .create_with_context(errors.clone())
        .map_err(|e| format!("creating an rdkafka producer: {e}"))?;
    Ok((p, errors))
}

#[derive(Debug, PartialEq, Eq)]
enum Login {
    Accepted,
    Refused(String),
}

/// Logs in with a fresh client: `Accepted` once a broker serves metadata, `Refused` once
/// librdkafka reports an authentication failure. Blocking.
fn login(config: &ClientConfig) -> Result<Login, String> {
    let (p, errors) = producer(config)?;
    let start = Instant::now();
    loop {
        if p.client()
            .fetch_metadata(None, Duration::from_millis(500))
            .is_ok()
        {
            return Ok(Login::Accepted);
        }
        if let Some(text) = errors.authentication() {
            return Ok(Login::Refused(text));
        }
        if start.elapsed() > Duration::from_secs(15) {
            return Err(format!(
                "neither served nor refused within 15s; errors: {:?}",
                errors.0.lock().unwrap()
            ));
        }
    }
}

/// Logs in until the outcome is the wanted one (credentials reach the brokers through the
/// metadata log: quickly, not instantly).
async fn login_until(what: &str, config: &ClientConfig, accepted: bool) -> Login {
    eventually(what, || {
        let config = config.clone();
        async move {
            let outcome = tokio::task::spawn_blocking(move || login(&config))
                .await
                .map_err(|e| e.to_string())??;
            if matches!(outcome, Login::Accepted) == accepted {
                Ok(outcome)
            } else {
                Err(format!("{outcome:?}"))
            }
        }
    })
    .await
}

#[derive(Debug, PartialEq, Eq)]
enum Produced {
    Delivered,
    /// The broker refused with TOPIC_AUTHORIZATION_FAILED.
    Denied,
    /// Anything else (topic metadata not there yet, a login still propagating, ...).
    Other(String),
}

/// Produces one record to `topic` with a fresh client.
async fn produce(config: &ClientConfig, topic: &str) -> Produced {
    let (p, errors) = match producer(config) {
        Ok(p) => p,
        Err(e) => return Produced::Other(e),
    };
    let record = FutureRecord::to(topic).key("k").payload("v");
    match p.send(record, Duration::from_secs(10)).await {
        Ok(_) => Produced::Delivered,
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed), _)) => {
            Produced::Denied
        }
        Err((e, _)) => Produced::Other(format!(
            "{e}; client errors: {:?}",
            errors.0.lock().unwrap()
        )),
    }
}

/// Produces until a record is delivered (ACLs and credentials propagate through the metadata
/// log, new topics through the brokers' metadata).
async fn expect_delivered(what: &str, config: &ClientConfig, topic: &str) {
    eventually(what, || async {
        match produce(config, topic).await {
            Produced::Delivered => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// Produces until the broker answers, and requires that answer to be TOPIC_AUTHORIZATION_FAILED.
/// A delivery fails at once: the caller has made sure the ACLs in question are in force, so
/// being let through is the wrong behaviour, never a timing artefact.
async fn expect_denied(what: &str, config: &ClientConfig, topic: &str) {
    eventually(what, || async {
        match produce(config, topic).await {
            Produced::Denied => Ok(()),
            Produced::Delivered => panic!("{what}: the record to {topic} was delivered"),
            Produced::Other(e) => Err(e),
        }
    })
    .await
}

fn scram_connection(env: &TestEnv) -> KafkaConnection {
    env.scram_admin_connection()
}

/// rdkafka settings for the mTLS listener with a PKCS#12 keystore instead of PEM files.
fn mtls_keystore(env: &TestEnv, p12: &Path, password: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &env.kafka_tls_bootstrap)
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", env.kafka_ca_file.display().to_string())
        .set("ssl.keystore.location", p12.display().to_string())
        .set("ssl.keystore.password", password);
    c
}

fn binding(
    principal: &str,
    resource_type: AclResourceType,
    name: &str,
    pattern_type: AclPatternType,
    operation: AclOperation,
    permission: AclPermission,
) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: name.to_owned(),
        pattern_type,
        principal: principal.to_owned(),
        host: "*".to_owned(),
        operation,
        permission,
    }
}

fn topic_binding(principal: &str, topic: &str, operation: AclOperation) -> AclBinding {
    binding(
        principal,
        AclResourceType::Topic,
        topic,
        AclPatternType::Literal,
        operation,
        AclPermission::Allow,
    )
}

// ---------------------------------------------------------------------------------------------
// KafkaUser manifests
// ---------------------------------------------------------------------------------------------

/// One `spec.authorization.acls` entry.
fn acl(resource: Value, operations: &[&str]) -> Value {
    json!({ "resource": resource, "operations": operations })
}

fn topic(name: &str) -> Value {
    json!({ "type": "topic", "name": name, "patternType": "literal" })
}

fn simple(acls: Vec<Value>) -> Value {
    json!({ "type": "simple", "acls": acls })
}

fn quotas_map(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn data(secret: &Secret, key: &str) -> Vec<u8> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .unwrap_or_else(|| panic!("Secret {:?} has no {key}", secret.metadata.name))
        .0
        .clone()
}

fn text(secret: &Secret, key: &str) -> String {
    String::from_utf8(data(secret, key)).expect("text entry")
}

/// The certificate's serial number (hex) and subject.
fn serial_and_subject(cert_pem: &str) -> (String, String) {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).expect("PEM");
    let cert = pem.parse_x509().expect("X.509");
    (cert.raw_serial_as_string(), cert.subject().to_string())
}

fn ready_condition(u: &KafkaUser) -> Option<&shared_crds::Condition> {
    u.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// Ready=True for the current generation.
fn is_ready(u: &KafkaUser) -> bool {
    ready_condition(u).is_some_and(|c| c.status == ConditionStatus::True)
        && u.status.as_ref().and_then(|s| s.observed_generation) == u.metadata.generation
}

// ---------------------------------------------------------------------------------------------
// One test's world
// ---------------------------------------------------------------------------------------------

/// A namespace, a running user operator watching it, and clients for both sides. Dropping it
/// kills the operator and deletes the namespace, so a failing test leaves no operator behind.
struct Case {
    env: TestEnv,
    id: String,
    users: Api<KafkaUser>,
    secrets: Api<Secret>,
    admin: KafkaAdmin,
    quotas: KafkaProtocolClient,
    op: OperatorProcess,
    tmp: tempfile::TempDir,
    topics: Vec<String>,
    _one_at_a_time: tokio::sync::MutexGuard<'static, ()>,
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = self.op.kill9();
        let _ = Command::new(&self.env.kubectl)
            .env("KUBECONFIG", &self.env.kubeconfig)
            .args(["delete", "namespace", &self.id, "--wait=false"])
            .output();
    }
}

fn operator_env(env: &TestEnv, namespace: &str) -> OperatorEnv {
    OperatorEnv::default()
        .set("KUBECONFIG", env.kubeconfig.display().to_string())
        .set("OXBOW_NAMESPACE", namespace)
        .set("OXBOW_CLUSTER", CLUSTER)
        .set("OXBOW_KAFKA_BOOTSTRAP_SERVERS", &env.kafka_scram_bootstrap)
        .set("OXBOW_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
        .set(
            "OXBOW_KAFKA_CA_FILE",
            env.kafka_ca_file.display().to_string(),
        )
        .set("OXBOW_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
        .set("OXBOW_KAFKA_SASL_USERNAME", &env.kafka_admin_user)
        .set("OXBOW_KAFKA_SASL_PASSWORD", &env.kafka_admin_password)
        .set(
            "OXBOW_CLIENTS_CA_CERT_FILE",
            env.kafka_clients_ca_cert_file.display().to_string(),
        )
        .set(
            "OXBOW_CLIENTS_CA_KEY_FILE",
            env.kafka_clients_ca_key_file.display().to_string(),
        )
        .set("OXBOW_IGNORED_USERS", IGNORED_USERS)
        .set(
            "OXBOW_FULL_RECONCILIATION_INTERVAL_SECONDS",
            FULL_PASS_SECONDS,
        )
}

/// Applies the CRDs once per test binary (idempotent; the content is this checkout's).
async fn ensure_crds(env: &TestEnv) {
    CRDS_APPLIED
        .get_or_init(|| async {
            let dir = e2e::cache::repo_root().join("manifests/crds");
            let out = Command::new(&env.kubectl)
                .env("KUBECONFIG", &env.kubeconfig)
                .args(["apply", "--server-side", "--force-conflicts", "-f"])
                .arg(&dir)
                .output()
                .expect("running kubectl");
            assert!(
                out.status.success(),
                "kubectl apply of {}: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        })
        .await;
}

impl Case {
    async fn start() -> Case {
        Case::start_with(|e| e).await
    }

    /// Like [`Case::start`], with the operator's environment edited first.
    async fn start_with(edit: impl FnOnce(OperatorEnv) -> OperatorEnv) -> Case {
        let guard = ONE_OPERATOR_AT_A_TIME.lock().await;
        let env = TestEnv::from_env().expect("testbed exports");
        ensure_crds(&env).await;
        let client = env.kube_client().await.expect("Kubernetes client");
        let id = unique_id();
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({ "metadata": { "name": id } })).unwrap(),
            )
            .await
            .expect("creating the test namespace");
        let users: Api<KafkaUser> = Api::namespaced(client.clone(), &id);
        // The CRD may have been created a moment ago: wait until the API serves it.
        eventually("the KafkaUser API is served", || async {
            users
                .list(&ListParams::default())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await;
        let admin = KafkaAdmin::new(
            &scram_connection(&env),
            &Registry::new(),
            Duration::from_secs(30),
        )
        .expect("admin client");
        let quotas = KafkaProtocolClient::new(&scram_connection(&env)).expect("protocol client");
        let op = OperatorProcess::start(
            &format!("user-operator-{id}"),
            "user-operator",
            edit(operator_env(&env, &id)),
        )
        .expect("starting the user operator");
        let mut case = Case {
            secrets: Api::namespaced(client.clone(), &id),
            users,
            admin,
            quotas,
            op,
            tmp: tempfile::tempdir().unwrap(),
            topics: Vec::new(),
            id,
            env,
            _one_at_a_time: guard,
        };
        case.op
            .wait_ready(DEADLINE)
            .await
            .expect("user operator ready");
        case
    }

    /// `<id>-<suffix>`: a name owned by this test (and by this suite's ignore pattern).
    fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.id)
    }

    /// Creates topics (one partition, the broker's default replication) and remembers them for
    /// [`Case::finish`].
    async fn create_topics(&mut self, names: &[&str]) {
        let specs: Vec<NewTopicSpec> = names
            .iter()
            .map(|n| NewTopicSpec {
                name: n.to_string(),
                partitions: Some(1),
                replication_factor: None,
                configs: BTreeMap::new(),
            })
            .collect();
        for (topic, result) in self
            .admin
            .create_topics(&specs)
            .await
            .expect("CreateTopics")
        {
            result.unwrap_or_else(|e| panic!("creating topic {topic}: {e}"));
            self.topics.push(topic);
        }
    }

    /// Server-side applies a KafkaUser with this spec (fields left out are removed).
    async fn apply_user(&self, name: &str, spec: Value) {
        self.apply_user_with(name, spec, json!({})).await
    }

    async fn apply_user_with(&self, name: &str, spec: Value, annotations: Value) {
        let body = json!({
            "apiVersion": "kafka.oxbow.rs/v1beta1",
            "kind": "KafkaUser",
            "metadata": {
                "name": name,
                "labels": { "oxbow.rs/cluster": CLUSTER },
                "annotations": annotations,
            },
            "spec": spec,
        });
        self.users
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .unwrap_or_else(|e| panic!("applying KafkaUser {name}: {e}"));
    }

    async fn delete_user(&self, name: &str) {
        self.users
            .delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("deleting KafkaUser {name}: {e}"));
    }

    /// Server-side applies an Opaque Secret holding `entries` (text).
    async fn apply_secret(&self, name: &str, entries: &[(&str, &str)]) {
        let data: BTreeMap<&str, ByteString> = entries
            .iter()
            .map(|(k, v)| (*k, ByteString(v.as_bytes().to_vec())))
            .collect();
        let body = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": { "name": name },
            "type": "Opaque",
            "data": data,
        });
        self.secrets
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .unwrap_or_else(|e| panic!("applying Secret {name}: {e}"));
    }

    /// Waits until the KafkaUser satisfies `check`; returns it.
    async fn wait_user(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&KafkaUser) -> bool,
    ) -> KafkaUser {
        eventually(&format!("KafkaUser {name}: {what}"), || async {
            let u = self
                .users
                .get(name)
                .await
                .map_err(|e| format!("reading: {e}"))?;
            if check(&u) {
                Ok(u)
            } else {
                Err(format!(
                    "status {:?}; operator log:\n{}",
                    u.status,
                    self.op.log_tail(10)
                ))
            }
        })
        .await
    }

    async fn wait_ready(&self, name: &str) -> KafkaUser {
        self.wait_user(name, "Ready for its generation", is_ready)
            .await
    }

    /// Waits for Ready=False with `reason`; returns the condition's message.
    async fn wait_not_ready(&self, name: &str, reason: &str) -> String {
        let u = self
            .wait_user(name, &format!("Ready=False because {reason}"), |u| {
                ready_condition(u).is_some_and(|c| {
                    c.status == ConditionStatus::False && c.reason.as_deref() == Some(reason)
                }) && u.status.as_ref().and_then(|s| s.observed_generation) == u.metadata.generation
            })
            .await;
        ready_condition(&u)
            .and_then(|c| c.message.clone())
            .unwrap_or_default()
    }

    async fn secret(&self, name: &str) -> Option<Secret> {
        self.secrets.get_opt(name).await.expect("reading a Secret")
    }

    /// Waits until the Secret satisfies `check`; returns it.
    async fn wait_secret(&self, name: &str, what: &str, check: impl Fn(&Secret) -> bool) -> Secret {
        eventually(&format!("Secret {name}: {what}"), || async {
            match self.secret(name).await {
                Some(s) if check(&s) => Ok(s),
                Some(_) => Err("present, not as wanted".to_owned()),
                None => Err("absent".to_owned()),
            }
        })
        .await
    }

    /// Writes `user.crt` and `user.key` of a TLS user Secret to files; returns their paths.
    fn write_pem_pair(&self, secret: &Secret, tag: &str) -> (PathBuf, PathBuf) {
        let cert = self.tmp.path().join(format!("{tag}.crt"));
        let key = self.tmp.path().join(format!("{tag}.key"));
        std::fs::write(&cert, data(secret, "user.crt")).unwrap();
        e2e::pki::write_private(&key, &text(secret, "user.key")).unwrap();
        (cert, key)
    }

    /// Kafka's ACL bindings of one principal.
    async fn acls(&self, principal: &str) -> BTreeSet<AclBinding> {
        self.admin
            .describe_acls(&AclBindingFilter::principal(principal))
            .await
            .expect("DescribeAcls")
            .into_iter()
            .collect()
    }

    async fn wait_acls(&self, principal: &str, want: &BTreeSet<AclBinding>) {
        eventually(&format!("ACLs of {principal}"), || async {
            let seen = self.acls(principal).await;
            if &seen == want {
                Ok(())
            } else {
                Err(format!("have {seen:#?}, want {want:#?}"))
            }
        })
        .await
    }

    /// Whether Kafka holds a SCRAM-SHA-512 credential for `user`.
    async fn has_scram(&self, user: &str) -> bool {
        let items = self
            .admin
            .describe_user_scram_credentials(Some(&[user.to_owned()]))
            .await
            .expect("DescribeUserScramCredentials");
        match &items[..] {
            [(_, Ok(infos))] => infos.iter().any(|i| i.mechanism == ScramMechanism::Sha512),
            [(_, Err(e))] if e.reason() == "ResourceNotFound" => false,
            other => panic!("describing the SCRAM credential of {user}: {other:?}"),
        }
    }

    /// The quotas Kafka holds for one user entity (`None`: none at all).
    async fn user_quotas(&self, entity: &str) -> Option<BTreeMap<String, f64>> {
        self.quotas
            .describe_user_quotas(Some(entity))
            .await
            .expect("DescribeClientQuotas")
            .get(entity)
            .cloned()
    }

    async fn wait_quotas(&self, entity: &str, want: Option<BTreeMap<String, f64>>) {
        eventually(&format!("quotas of {entity}"), || async {
            let seen = self.user_quotas(entity).await;
            if seen == want {
                Ok(())
            } else {
                Err(format!("have {seen:?}, want {want:?}"))
            }
        })
        .await
    }

    /// Waits until Kafka holds nothing (credential, ACLs of either principal form, quotas of
    /// either entity) for the user named `name`.
    async fn wait_kafka_forgot(&self, name: &str) {
        let cn = format!("CN={name}");
        eventually(&format!("Kafka forgets {name}"), || async {
            let mut left = Vec::new();
            if self.has_scram(name).await {
                left.push("SCRAM credential".to_owned());
            }
            for p in [format!("User:{name}"), format!("User:{cn}")] {
                let acls = self.acls(&p).await;
                if !acls.is_empty() {
                    left.push(format!("{} ACLs of {p}", acls.len()));
                }
            }
            for entity in [name, cn.as_str()] {
                if let Some(q) = self.user_quotas(entity).await {
                    left.push(format!("quotas {q:?} of {entity}"));
                }
            }
            if left.is_empty() {
                Ok(())
            } else {
                Err(left.join(", "))
            }
        })
        .await
    }

    /// The operator's counter (summed over the labels not given).
    async fn counter(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.op
            .metrics()
            .await
            .expect("reading /metrics")
            .sum(name, labels)
    }

    async fn requests(&self, api: &str) -> f64 {
        self.counter("oxbow_kafka_admin_requests_total", &[("api", api)])
            .await
    }

    /// Waits until a full pass that started after this call has finished: DescribeAcls is
    /// read once at the start of each full pass, and passes run one after the other, so the
    /// second DescribeAcls after now means the first full pass after now is complete.
    async fn wait_full_pass(&self) {
        let start = self.requests("describe_acls").await;
        eventually("a complete full pass", || async {
            let now = self.requests("describe_acls").await;
            if now >= start + 2.0 {
                Ok(())
            } else {
                Err(format!("DescribeAcls {start} -> {now}"))
            }
        })
        .await
    }

    /// Waits until every pass that had started before this call has finished.
    async fn wait_passes_settled(&self) {
        let start = self.counter("oxbow_user_operator_passes_total", &[]).await;
        eventually("the next pass starts", || async {
            let now = self.counter("oxbow_user_operator_passes_total", &[]).await;
            if now > start {
                Ok(())
            } else {
                Err(format!("passes {start} -> {now}"))
            }
        })
        .await
    }

    /// Deletes this test's KafkaUsers while the operator runs, waits until Kafka holds nothing
    /// of them, and deletes the test's topics: a passing test leaves nothing in Kafka.
    async fn finish(self) {
        let names: Vec<String> = self
            .users
            .list(&ListParams::default())
            .await
            .expect("listing KafkaUsers")
            .items
            .into_iter()
            .filter_map(|u| u.metadata.name)
            .collect();
        for n in &names {
            self.delete_user(n).await;
        }
        for n in &names {
            self.wait_kafka_forgot(n).await;
        }
        if !self.topics.is_empty() {
            self.admin
                .delete_topics(&self.topics)
                .await
                .expect("DeleteTopics");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SCRAM users
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_user_logs_in_with_its_secret_and_is_authorised_by_its_acls() {
    let mut case = Case::start().await;
    let user = case.name("scram");
    let (allowed, other) = (case.name("scram-allowed"), case.name("scram-other"));
    case.create_topics(&[&allowed, &other]).await;
    case.apply_user(
        &user,
        json!({
            "authentication": { "type": "scram-sha-512" },
            "authorization": simple(vec![acl(topic(&allowed), &["Write", "Describe"])]),
        }),
    )
    .await;

    let ready = case.wait_ready(&user).await;
    let status = ready.status.clone().unwrap();
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.username.as_deref(), Some(user.as_str()));
    assert_eq!(status.secret.as_deref(), Some(user.as_str()));
    assert!(
        ready_condition(&ready)
            .unwrap()
            .last_transition_time
            .is_some(),
        "{status:?}"
    );

    let secret = case.secret(&user).await.expect("the user Secret");
    let password = text(&secret, "password");
    assert_eq!(password.len(), 32, "a generated password");
    let jaas = text(&secret, "sasl.jaas.config");
    assert!(
        jaas.contains("ScramLoginModule required")
            && jaas.contains(&format!("username=\"{user}\""))
            && jaas.contains(&format!("password=\"{password}\"")),
        "sasl.jaas.config does not carry the user's credentials"
    );

    let client = case.env.kafka_scram(&user, &password);
    login_until("login with the Secret's password", &client, true).await;
    expect_delivered("produce to the allowed topic", &client, &allowed).await;
    expect_denied("produce to a topic without ACLs", &client, &other).await;
    let wrong = case.env.kafka_scram(&user, "not-the-password");
    let refused = login_until("login with a wrong password", &wrong, false).await;
    assert!(
        matches!(&refused, Login::Refused(t) if t.contains("SCRAM-SHA-512")),
        "{refused:?}"
    );
    case.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referenced_password_is_used_and_rotating_it_replaces_the_credential() {
    let case = Case::start().await;
    let user = case.name("rot");
    let source = case.name("rot-source");
    let (first, second) = ("first-Password-1", "second-Password-2");
    case.apply_secret(&source, &[("pw", first)]).await;
    case.apply_user(
        &user,
        json!({
            "authentication": {
                "type": "scram-sha-512",
                "password": { "valueFrom": { "secretKeyRef": { "name": source, "key": "pw" } } },
            },
        }),
    )
    .await;
    case.wait_ready(&user).await;
    let secret = case.secret(&user).await.expect("the user Secret");
    assert_eq!(text(&secret, "password"), first);
    login_until(
        "login with the referenced password",
        &case.env.kafka_scram(&user, first),
        true,
    )
    .await;
    let upserts = case.requests("alter_user_scram_credentials").await;
    assert!(upserts >= 1.0, "the credential was written: {upserts}");

    case.apply_secret(&source, &[("pw", second)]).await;
    case.wait_secret(&user, "carries the new password", |s| {
        text(s, "password") == second && text(s, "sasl.jaas.config").contains(second)
    })
    .await;
    login_until(
        "login with the new password",
        &case.env.kafka_scram(&user, second),
        true,
    )
    .await;
    login_until(
        "login with the old password",
        &case.env.kafka_scram(&user, first),
        false,
    )
    .await;
    assert!(case.requests("alter_user_scram_credentials").await > upserts);
    case.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_password_references_are_reported_and_leave_other_users_alone() {
    let mut case = Case::start().await;
    let source = case.name("pw");
    let absent = case.name("absent");
    case.apply_secret(&source, &[("pw", "fine-Password-1"), ("empty", "")])
        .await;
    let referencing = |secret: &str, key: &str| {
        json!({
            "authentication": {
                "type": "scram-sha-512",
                "password": { "valueFrom": { "secretKeyRef": { "name": secret, "key": key } } },
            },
        })
    };
    let (no_secret, no_key, empty, fine) = (
        case.name("nosecret"),
        case.name("nokey"),
        case.name("empty"),
        case.name("fine"),
    );
    case.apply_user(&no_secret, referencing(&absent, "pw"))
        .await;
    case.apply_user(&no_key, referencing(&source, "missing"))
        .await;
    case.apply_user(&empty, referencing(&source, "empty")).await;
    case.apply_user(&fine, referencing(&source, "pw")).await;

    for (user, reason, secret, key) in [
        (&no_secret, "PasswordSecretNotFound", &absent, "pw"),
        (&no_key, "PasswordKeyNotFound", &source, "missing"),
        (&empty, "PasswordEmpty", &source, "empty"),
    ] {
        let message = case.wait_not_ready(user, reason).await;
        assert!(
            message.contains(secret.as_str()) && message.contains(key),
            "{user}: the message names Secret {secret} and key {key}: {message}"
        );
        assert!(!case.has_scram(user).await, "{user} got a credential");
        assert!(case.secret(user).await.is_none(), "{user} got a Secret");
    }
    case.wait_ready(&fine).await;
    login_until(
        "login of the user with a good reference",
        &case.env.kafka_scram(&fine, "fine-Password-1"),
        true,
    )
    .await;
    assert!(case.op.is_running(), "the operator survived");

    // Fixing the reference is enough: the operator watches the Secret it names.
    case.apply_secret(&absent, &[("pw", "late-Password-2")])
        .await;
    case.wait_ready(&no_secret).await;
    login_until(
        "login once the named Secret exists",
        &case.env.kafka_scram(&no_secret, "late-Password-2"),
        true,
    )
    .await;
    case.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_edited_in_the_user_secret_is_the_one_that_logs_in() {
    let case = Case::start().await;
    let user = case.name("edited");
    case.apply_user(
        &user,
        json!({ "authentication": { "type": "scram-sha-512" } }),
    )
    .await;
    case.wait_ready(&user).await;
    let generated = text(&case.secret(&user).await.unwrap(), "password");
    login_until(
        "login with the generated password",
        &case.env.kafka_scram(&user, &generated),
        true,
    )
    .await;

    // Someone edits the password (only that key) with a plain merge patch.
    let edited = "hand-Edited-Password-1";
    case.secrets
        .patch(
            &user,
            &PatchParams::default(),
            &Patch::Merge(json!({ "stringData": { "password": edited } })),
        )
        .await
        .expect("editing the user Secret");
    // The Secret keeps the edit and stays consistent with itself ...
    case.wait_secret(&user, "a JAAS line with the edited password", |s| {
        text(s, "password") == edited && text(s, "sasl.jaas.config").contains(edited)
    })
    .await;
    // ... and Kafka follows it: the Secret never claims a password that does not log in.
    login_until(
        "login with the edited password",
        &case.env.kafka_scram(&user, edited),
        true,
    )
    .await;
    login_until(
        "login with the generated password",
        &case.env.kafka_scram(&user, &generated),
        false,
    )
    .await;
    case.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_metadata_taken_out_goes_from_the_secret_and_other_owners_entries_stay() {
    let case = Case::start().await;
    let user = case.name("tmpl");
    let spec = |template: Option<Value>| {
        let mut spec = json!({ "authentication": { "type": "scram-sha-512" } });
        if let Some(t) = template {
            spec["template"] = t;
        }
        spec
    };
    case.apply_user(
        &user,
        spec(Some(json!({
            "secret": { "metadata": { "labels": { "team": "a" }, "annotations": { "note": "x" } } },
        }))),
    )
    .await;
    case.wait_ready(&user).await;
    let first = case
        .wait_secret(&user, "carries the template", |s| {
            s.metadata.labels.as_ref().and_then(|l| l.get("team")) == Some(&"a".to_owned())
                && s.metadata.annotations.as_ref().and_then(|a| a.get("note"))
                    == Some(&"x".to_owned())
        })
        .await;
    let password = text(&first, "password");

    case.apply_user(&user, spec(None)).await;
    case.wait_secret(&user, "without the template's label and annotation", |s| {
        !s.metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key("team"))
            && !s
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("note"))
    })
    .await;
    case.wait_ready(&user).await;

    // Another owner adds a label and a key of its own: they stay, and they are not a
    // difference to correct on every pass.
    case.secrets
        .patch(
            &user,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": { "labels": { "other": "keep" } },
                "stringData": { "truststore.pem": "not ours" },
            })),
        )
        .await
        .expect("adding another owner's entries");
    case.wait_passes_settled().await;
    let writes = case
        .counter("oxbow_user_operator_kube_writes_total", &[])
        .await;
    case.wait_full_pass().await;
    assert_eq!(
        case.counter("oxbow_user_operator_kube_writes_total", &[])
            .await,
        writes,
        "Kubernetes writes over a full pass with nothing to change"
    );
    let after = case.secret(&user).await.unwrap();
    assert_eq!(
        after.metadata.labels.as_ref().and_then(|l| l.get("other")),
        Some(&"keep".to_owned())
    );
    assert_eq!(text(&after, "truststore.pem"), "not ours");
    assert_eq!(text(&after, "password"), password);
    case.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_a_user_from_scram_to_tls_moves_its_acls_and_quotas_and_drops_the_password() {
    let mut case = Case::start().await;
    let user = case.name("switch");
    let allowed = case.name("switch-t");
    case.create_topics(&[&allowed]).await;
    let rules = simple(vec![acl(topic(&allowed), &["Write", "Describe"])]);
    let quotas = json!({ "producerByteRate": 65536 });
    case.apply_user(
        &user,
        json!({ "authentication": { "type": "scram-sha-512" }, "authorization": rules, "quotas": quotas }),
    )
    .await;
    case.wait_ready(&user).await;
    let password = text(&case.secret(&user).await.unwrap(), "password");
    let scram_client = case.env.kafka_scram(&user, &password);
    expect_delivered("produce as the SCRAM user", &scram_client, &allowed).await;

    case.apply_user(
        &user,
        json!({ "authentication": { "type": "tls" }, "authorization": rules, "quotas": quotas }),
    )
    .await;
    let ready = case.wait_ready(&user).await;
    assert_eq!(ready.status.unwrap().username, Some(format!("CN={user}")));
    let secret = case
        .wait_secret(&user, "holds a certificate and no password", |s| {
            let keys = s
                .data
                .as_ref()
                .map(|d| d.keys().cloned().collect::<BTreeSet<_>>());
            keys == Some(
                [
                    "ca.crt",
                    "user.crt",
                    "user.key",
                    "user.p12",
                    "user.password",
                ]
                .map(String::from)
                .into(),
            )
        })
        .await;
    let cn = format!("User:CN={user}");
    case.wait_acls(
        &cn,
        &BTreeSet::from([
            topic_binding(&cn, &allowed, AclOperation::Write),
            topic_binding(&cn, &allowed, AclOperation::Describe),
        ]),
    )
    .await;
    case.wait_acls(&format!("User:{user}"), &BTreeSet::new())
        .await;
    case.wait_quotas(
        &format!("CN={user}"),
        Some(quotas_map(&[("producer_byte_rate", 65536.0)])),
    )
    .await;
    case.wait_quotas(&user, None).await;
    eventually("the SCRAM credential is deleted", || async {
        if case.has_scram(&user).await {
            Err("still there".to_owned())
        } else {
            Ok(())
        }
    })
    .await;
    login_until("login with the old password", &scram_client, false).await;
    let (cert, key) = case.write_pem_pair(&secret, "switched");
    expect_delivered(
        "produce with the new certificate",
        &case.env.kafka_mtls(&cert, &key),
        &allowed,
    )
    .await;
    case.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_waiting_for_a_change_do_not_make_the_operator_spin() {
    let case = Case::start().await;
    let broken = case.name("spin-broken");
    let paused = case.name("spin-paused");
    case.apply_user(
        &broken,
        json!({
            "authentication": {
                "type": "scram-sha-512",
                "password": { "valueFrom": { "secretKeyRef": { "name": case.name("absent"), "key": "pw" } } },
            },
        }),
    )
    .await;
    case.apply_user_with(
        &paused,
        json!({ "authentication": { "type": "scram-sha-512" } }),
        json!({ "oxbow.rs/pause-reconciliation": "true" }),
    )
    .await;
    case.wait_not_ready(&broken, "PasswordSecretNotFound").await;
    case.wait_user(&paused, "reports the pause", |u| {
        u.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "ReconciliationPaused" && c.status == ConditionStatus::True)
            })
    })
    .await;
    assert!(
        !case.has_scram(&paused).await,
        "a paused user is left alone"
    );

    // A rate, so a fixed window: nothing is awaited here, the passes are counted. With a 3 s
    // full interval a 6 s window holds two or three full passes; the first version of the
    // operator retried such users at once and ran dozens of full passes a second.
    let window = Duration::from_secs(6);
    let passes = case.counter("oxbow_user_operator_passes_total", &[]).await;
    let reads = case.requests("describe_acls").await;
    tokio::time::sleep(window).await;
    let passes = case.counter("oxbow_user_operator_passes_total", &[]).await - passes;
    let reads = case.requests("describe_acls").await - reads;
    assert!(
        passes <= 5.0 && reads <= 4.0,
        "{passes} passes and {reads} Kafka reads in {window:?} while users wait for a change"
    );
    case.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_users_cause_no_writes_to_kafka_or_kubernetes() {
    let case = Case::start().await;
    let source = case.name("idle-source");
    case.apply_secret(&source, &[("pw", "idle-Password-1")])
        .await;
    let quotas = json!({ "producerByteRate": 1048576, "requestPercentage": 55 });
    let users = [
        (
            case.name("idle-scram"),
            json!({
                "authentication": { "type": "scram-sha-512" },
                "authorization": simple(vec![acl(topic(&case.name("idle-t")), &["Read", "Describe"])]),
                "quotas": quotas,
            }),
        ),
        (
            case.name("idle-ref"),
            json!({
                "authentication": {
                    "type": "scram-sha-512",
                    "password": { "valueFrom": { "secretKeyRef": { "name": source, "key": "pw" } } },
                },
            }),
        ),
        (
            case.name("idle-tls"),
            json!({
                "authentication": { "type": "tls" },
                "authorization": simple(vec![
                    acl(json!({ "type": "group", "name": case.name("g"), "patternType": "prefix" }), &["Read"]),
                    acl(json!({ "type": "cluster" }), &["Describe"]),
                ]),
                "quotas": quotas,
                "template": { "secret": { "metadata": { "labels": { "team": "a" }, "annotations": { "note": "x" } } } },
            }),
        ),
        (
            case.name("idle-ext"),
            json!({
                "authentication": { "type": "tls-external" },
                "authorization": simple(vec![acl(topic(&case.name("idle-t")), &["Write"])]),
            }),
        ),
    ];
    for (name, spec) in &users {
        case.apply_user(name, spec.clone()).await;
    }
    for (name, _) in &users {
        case.wait_ready(name).await;
    }
    // Whatever pass wrote the last status has finished counting its writes.
    case.wait_passes_settled().await;
    let upserts = case.requests("alter_user_scram_credentials").await;
    assert!(
        upserts >= 1.0,
        "the credentials were written and counted: {upserts}"
    );
    let kube_writes_metric = "oxbow_user_operator_kube_writes_total";
    let kube_before = case.counter(kube_writes_metric, &[]).await;
    assert!(
        kube_before >= 6.0,
        "Secrets and statuses were counted: {kube_before}"
    );
    let mut kafka_before = BTreeMap::new();
    for api in WRITE_APIS {
        kafka_before.insert(api, case.requests(api).await);
    }
    let secrets_before: Vec<Option<String>> = {
        let mut v = Vec::new();
        for (name, _) in &users {
            v.push(
                case.secret(name)
                    .await
                    .and_then(|s| s.metadata.resource_version),
            );
        }
        v
    };

    // An event-driven reconcile of each user (an annotation changes, the spec does not) and a
    // full resync.
    for (name, spec) in &users {
        case.apply_user_with(name, spec.clone(), json!({ "e2e/touched": "yes" }))
            .await;
    }
    case.wait_full_pass().await;
    case.wait_full_pass().await;

    for api in WRITE_APIS {
        assert_eq!(
            case.requests(api).await,
            kafka_before[api],
            "{api} requests after nothing changed"
        );
    }
    assert_eq!(
        case.counter(kube_writes_metric, &[]).await,
        kube_before,
        "Kubernetes writes after nothing changed; log:\n{}",
        case.op.log_tail(20)
    );
    for ((name, _), before) in users.iter().zip(&secrets_before) {
        let now = case
            .secret(name)
            .await
            .and_then(|s| s.metadata.resource_version);
        assert_eq!(&now, before, "Secret of {name} was rewritten");
    }
    case.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_rule_beats_an_allow_rule() {
    let mut case = Case::start().await;
    let user = case.name("deny");
    let prefix = case.name("deny-");
    let (open, blocked) = (case.name("deny-open"), case.name("deny-blocked"));
    case.create_topics(&[&open, &blocked]).await;
    case.apply_user(
        &user,
        json!({
            "authentication": { "type": "scram-sha-512" },
            "authorization": simple(vec![
                acl(json!({ "type": "topic", "name": prefix, "patternType": "prefix" }), &["Write", "Describe"]),
                json!({ "resource": topic(&blocked), "type": "deny", "operations": ["Write"] }),
            ]),
        }),
    )
    .await;
    case.wait_ready(&user).await;
    let principal = format!("User:{user}");
    case.wait_acls(
        &principal,
        &BTreeSet::from([
            binding(
                &principal,
                AclResourceType::Topic,
                &prefix,
                AclPatternType::Prefixed,
                AclOperation::Write,
                AclPermission::Allow,
            ),
            binding(
                &principal,
                AclResourceType::Topic,
                &prefix,
                AclPatternType::Prefixed,
                AclOperation::Describe,
                AclPermission::Allow,
            ),
            binding(
                &principal,
                AclResourceType::Topic,
                &blocked,
                AclPatternType::Literal,
                AclOperation::Write,
                AclPermission::Deny,
            ),
        ]),
    )
    .await;
    let password = text(&case.secret(&user).await.unwrap(), "password");
    let client = case.env.kafka_scram(&user, &password);
    // Allowed first: once the allow is in force, so is the deny written in the same request.
    expect_delivered("produce to a topic only the allow matches", &client, &open).await;
    expect_denied("produce to the topic both rules match", &client, &blocked).await;
    case.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_are_read_back_and_a_removed_field_is_removed_from_kafka() {
    let case = Case::start().await;
    let user = case.name("quota");
    let tls = case.name("quota-tls");
    let spec =
        |quotas: Value| json!({ "authentication": { "type": "scram-sha-512" }, "quotas": quotas });
    case.apply_user(
        &user,
        spec(json!({
            "producerByteRate": 1048576,
            "consumerByteRate": 2097152,
            "requestPercentage": 55,
            "controllerMutationRate": 10.5,
        })),
    )
    .await;
    case.apply_user(
        &tls,
        json!({ "authentication": { "type": "tls" }, "quotas": { "consumerByteRate": 4096 } }),
    )
    .await;
    case.wait_ready(&user).await;
    case.wait_quotas(
        &user,
        Some(quotas_map(&[
            ("producer_byte_rate", 1048576.0),
            ("consumer_byte_rate", 2097152.0),
            ("request_percentage", 55.0),
            ("controller_mutation_rate", 10.5),
        ])),
    )
    .await;
    // A certificate user's quotas belong to its certificate principal's name.
    case.wait_ready(&tls).await;
    case.wait_quotas(
        &format!("CN={tls}"),
        Some(quotas_map(&[("consumer_byte_rate", 4096.0)])),
    )
    .await;
    assert_eq!(case.user_quotas(&tls).await, None);

    case.apply_user(
        &user,
        spec(json!({ "producerByteRate": 1048576, "requestPercentage": 40 })),
    )
    .await;
    let u = case.wait_ready(&user).await;
    assert_eq!(u.status.unwrap().observed_generation, Some(2));
    case.wait_quotas(
        &user,
        Some(quotas_map(&[
            ("producer_byte_rate", 1048576.0),
            ("request_percentage", 40.0),
        ])),
    )
    .await;

    case.apply_user(
        &user,
        json!({ "authentication": { "type": "scram-sha-512" } }),
    )
    .await;
    case.wait_ready(&user).await;
    case.wait_quotas(&user, None).await;
    case.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_added_by_hand_are_removed_on_the_next_full_pass() {
    let case = Case::start().await;
    let user = case.name("hand");
    let principal = format!("User:{user}");
    let cn_principal = format!("User:CN={user}");
    let wanted = topic_binding(&principal, &case.name("hand-t"), AclOperation::Read);
    case.apply_user(
        &user,
        json!({
            "authentication": { "type": "scram-sha-512" },
            "authorization": simple(vec![acl(topic(&case.name("hand-t")), &["Read"])]),
        }),
    )
    .await;
    case.wait_ready(&user).await;
    case.wait_acls(&principal, &BTreeSet::from([wanted.clone()]))
        .await;

    let sneaky = [
        topic_binding(&principal, &case.name("hand-sneaky"), AclOperation::Write),
        binding(
            &cn_principal,
            AclResourceType::Cluster,
            "kafka-cluster",
            AclPatternType::Literal,
            AclOperation::Describe,
            AclPermission::Allow,
        ),
    ];
    for (b, result) in case.admin.create_acls(&sneaky).await.expect("CreateAcls") {
        result.unwrap_or_else(|e| panic!("creating {b:?}: {e}"));
    }
    // No watch reports hand-made ACLs: the next full pass (every 3 s here) finds and removes
    // them, and leaves the wanted binding alone.
    case.wait_acls(&principal, &BTreeSet::from([wanted])).await;
    case.wait_acls(&cn_principal, &BTreeSet::new()).await;
    case.finish().await;
}

// ---------------------------------------------------------------------------------------------
// TLS users
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_user_connects_with_its_certificate_or_keystore_and_is_authorised_by_its_acls() {
    let mut case = Case::start().await;
    let user = case.name("tls");
    let (allowed, other) = (case.name("tls-allowed"), case.name("tls-other"));
    case.create_topics(&[&allowed, &other]).await;
    case.apply_user(
        &user,
        json!({
            "authentication": { "type": "tls" },
            "authorization": simple(vec![acl(topic(&allowed), &["Write", "Describe"])]),
        }),
    )
    .await;
    let ready = case.wait_ready(&user).await;
    let status = ready.status.unwrap();
    assert_eq!(status.username, Some(format!("CN={user}")));
    assert_eq!(status.secret.as_deref(), Some(user.as_str()));

    let secret = case.secret(&user).await.expect("the user Secret");
    let clients_ca = std::fs::read_to_string(&case.env.kafka_clients_ca_cert_file).unwrap();
    assert_eq!(text(&secret, "ca.crt"), clients_ca);
    let (_, subject) = serial_and_subject(&text(&secret, "user.crt"));
    assert_eq!(subject, format!("CN={user}"));

    let (cert, key) = case.write_pem_pair(&secret, "pem");
    let pem_client = case.env.kafka_mtls(&cert, &key);
    expect_delivered("produce with user.crt and user.key", &pem_client, &allowed).await;
    expect_denied("produce to a topic without ACLs", &pem_client, &other).await;

    // The keystore opens with its password: librdkafka loads key and certificate from it.
    let p12 = case.tmp.path().join("user.p12");
    std::fs::write(&p12, data(&secret, "user.p12")).unwrap();
    let keystore_client = mtls_keystore(&case.env, &p12, &text(&secret, "user.password"));
    expect_delivered("produce with user.p12", &keystore_client, &allowed).await;
    let wrong = mtls_keystore(&case.env, &p12, "not-the-keystore-password");
    assert!(
        wrong.create::<FutureProducer>().is_err(),
        "a wrong keystore password must not open user.p12"
    );
    case.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_renew_annotation_issues_a_new_certificate_and_is_removed() {
    let mut case = Case::start().await;
    let user = case.name("renew");
    let allowed = case.name("renew-t");
    case.create_topics(&[&allowed]).await;
    let spec = json!({
        "authentication": { "type": "tls" },
        "authorization": simple(vec![acl(topic(&allowed), &["Write", "Describe"])]),
    });
    case.apply_user(&user, spec.clone()).await;
    case.wait_ready(&user).await;
    let before = case.secret(&user).await.expect("the user Secret");
    let (old_serial, _) = serial_and_subject(&text(&before, "user.crt"));

    case.apply_user_with(&user, spec, json!({ "oxbow.rs/force-renew": "true" }))
        .await;
    let after = case
        .wait_secret(&user, "holds a new certificate", |s| {
            serial_and_subject(&text(s, "user.crt")).0 != old_serial
        })
        .await;
    case.wait_user(&user, "the force-renew annotation is removed", |u| {
        !u.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("oxbow.rs/force-renew"))
    })
    .await;
    assert_ne!(
        data(&after, "user.key"),
        data(&before, "user.key"),
        "a new key too"
    );
    let (cert, key) = case.write_pem_pair(&after, "renewed");
    expect_delivered(
        "produce with the renewed certificate",
        &case.env.kafka_mtls(&cert, &key),
        &allowed,
    )
    .await;
    // Renewed once, not on every pass.
    case.wait_full_pass().await;
    let again = case.secret(&user).await.unwrap();
    assert_eq!(data(&again, "user.crt"), data(&after, "user.crt"));
    case.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_external_user_gets_acls_for_its_certificate_name_and_no_secret() {
    let mut case = Case::start().await;
    let user = case.name("ext");
    let (allowed, other) = (case.name("ext-allowed"), case.name("ext-other"));
    case.create_topics(&[&allowed, &other]).await;
    case.apply_user(
        &user,
        json!({
            "authentication": { "type": "tls-external" },
            "authorization": simple(vec![acl(topic(&allowed), &["Write", "Describe"])]),
        }),
    )
    .await;
    let ready = case.wait_ready(&user).await;
    let status = ready.status.unwrap();
    assert_eq!(status.username, Some(format!("CN={user}")));
    assert_eq!(status.secret, None);
    let principal = format!("User:CN={user}");
    case.wait_acls(
        &principal,
        &BTreeSet::from([
            topic_binding(&principal, &allowed, AclOperation::Write),
            topic_binding(&principal, &allowed, AclOperation::Describe),
        ]),
    )
    .await;
    assert!(
        case.secret(&user).await.is_none(),
        "no Secret for tls-external"
    );
    assert!(case.acls(&format!("User:{user}")).await.is_empty());

    // A certificate issued elsewhere (here: by the test, from the CA the listener trusts).
    let (cert, key) = write_client_cert(&case.env, &user, case.tmp.path()).unwrap();
    let client = case.env.kafka_mtls(&cert, &key);
    expect_delivered("produce with an external certificate", &client, &allowed).await;
    expect_denied("produce to a topic without ACLs", &client, &other).await;
    case.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Deletion
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_kafka_user_removes_its_login_acls_quotas_credential_and_secret() {
    let case = Case::start().await;
    let scram = case.name("gone");
    let tls = case.name("gone-tls");
    let rules = simple(vec![acl(
        topic(&case.name("gone-t")),
        &["Read", "Describe"],
    )]);
    case.apply_user(
        &scram,
        json!({
            "authentication": { "type": "scram-sha-512" },
            "authorization": rules.clone(),
            "quotas": { "producerByteRate": 2048 },
        }),
    )
    .await;
    case.apply_user(
        &tls,
        json!({
            "authentication": { "type": "tls" },
            "authorization": rules,
            "quotas": { "producerByteRate": 2048 },
        }),
    )
    .await;
    let scram_user = case.wait_ready(&scram).await;
    case.wait_ready(&tls).await;
    let secret = case.secret(&scram).await.unwrap();
    let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), Some(&owner.uid)),
        (
            "KafkaUser",
            scram.as_str(),
            scram_user.metadata.uid.as_ref()
        )
    );
    let password = text(&secret, "password");
    let client = case.env.kafka_scram(&scram, &password);
    login_until("login before deletion", &client, true).await;
    assert!(case.has_scram(&scram).await);
    assert!(!case.acls(&format!("User:CN={tls}")).await.is_empty());
    assert!(case.user_quotas(&format!("CN={tls}")).await.is_some());

    case.delete_user(&scram).await;
    case.delete_user(&tls).await;
    case.wait_kafka_forgot(&scram).await;
    case.wait_kafka_forgot(&tls).await;
    login_until("login after deletion", &client, false).await;
    for name in [&scram, &tls] {
        eventually(&format!("Secret {name} is garbage-collected"), || async {
            match case.secret(name).await {
                None => Ok(()),
                Some(_) => Err("still there".to_owned()),
            }
        })
        .await;
    }
    case.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_deleted_while_the_operator_was_stopped_is_cleaned_up_at_restart() {
    let mut case = Case::start().await;
    let user = case.name("orphan");
    case.apply_user(
        &user,
        json!({
            "authentication": { "type": "scram-sha-512" },
            "authorization": simple(vec![acl(topic(&case.name("orphan-t")), &["Read"])]),
            "quotas": { "consumerByteRate": 1024 },
        }),
    )
    .await;
    case.wait_ready(&user).await;
    let password = text(&case.secret(&user).await.unwrap(), "password");
    let client = case.env.kafka_scram(&user, &password);
    login_until("login before the operator stops", &client, true).await;

    // A Kafka user that is not this suite's (an `ext-` name): the ignore pattern must keep the
    // operator's hands off it, as off `admin`.
    let outsider = format!("ext-{}", case.id);
    let outsider_acl = topic_binding(
        &format!("User:{outsider}"),
        &case.name("x"),
        AclOperation::Read,
    );
    case.admin
        .upsert_scram_credential(ScramUpsertion {
            user: outsider.clone(),
            mechanism: ScramMechanism::Sha512,
            iterations: 4096,
            password: b"outsider-Password-1".to_vec(),
            salt: b"outsider-salt".to_vec(),
        })
        .await
        .expect("creating the outsider's credential");
    for (b, r) in case
        .admin
        .create_acls(std::slice::from_ref(&outsider_acl))
        .await
        .expect("CreateAcls")
    {
        r.unwrap_or_else(|e| panic!("creating {b:?}: {e}"));
    }

    case.op.kill9().unwrap();
    case.delete_user(&user).await;
    eventually("the KafkaUser is gone", || async {
        match case.users.get_opt(&user).await {
            Ok(None) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // Nobody has removed anything yet: the credential outlives its KafkaUser while the
    // operator is down.
    assert!(case.has_scram(&user).await);
    assert!(!case.acls(&format!("User:{user}")).await.is_empty());

    case.op.restart().unwrap();
    case.op
        .wait_ready(DEADLINE)
        .await
        .expect("operator ready again");
    case.wait_kafka_forgot(&user).await;
    login_until("login after the restart", &client, false).await;

    // The restart's full pass is over (the operator reports ready only after it): the outsider
    // and the admin are untouched.
    assert!(case.has_scram(&outsider).await, "the outsider's credential");
    assert_eq!(
        case.acls(&format!("User:{outsider}")).await,
        BTreeSet::from([outsider_acl.clone()])
    );
    assert!(case.has_scram(&case.env.kafka_admin_user).await);
    login_until(
        "admin login after the restart",
        &case.env.kafka_scram_admin(),
        true,
    )
    .await;

    case.admin
        .delete_scram_credential(&outsider, ScramMechanism::Sha512)
        .await
        .expect("removing the outsider's credential");
    case.admin
        .delete_acls(&[outsider_acl.to_filter()])
        .await
        .expect("removing the outsider's ACL");
    case.finish().await;
}

/// The clients CA read from Secrets (the way the cluster operator hands it over) signs TLS users'
/// certificates; replacing the CA in those Secrets re-issues them; and a user without
/// authentication gets exactly its ACLs and quotas, under `User:<name>`, and no Secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_ca_from_secrets_signs_users_and_a_new_ca_reissues_them() {
    const CA_SECRET: &str = "uo-clients-ca";
    let mut case = Case::start_with(|e| {
        e.unset("OXBOW_CLIENTS_CA_CERT_FILE")
            .unset("OXBOW_CLIENTS_CA_KEY_FILE")
            .set("OXBOW_CLIENTS_CA_CERT_SECRET", CA_SECRET)
            .set("OXBOW_CLIENTS_CA_KEY_SECRET", CA_SECRET)
    })
    .await;
    let ca_secret = |cert: &str, key: &str| -> Secret {
        serde_json::from_value(json!({
            "metadata": { "name": CA_SECRET },
            "stringData": { "ca.crt": cert, "ca.key": key },
        }))
        .unwrap()
    };
    let testbed_ca = std::fs::read_to_string(&case.env.kafka_clients_ca_cert_file).unwrap();
    let testbed_key = std::fs::read_to_string(&case.env.kafka_clients_ca_key_file).unwrap();
    case.secrets
        .create(
            &PostParams::default(),
            &ca_secret(&testbed_ca, &testbed_key),
        )
        .await
        .expect("creating the clients CA Secret");

    let user = case.name("caq");
    let allowed = case.name("caq-t");
    case.create_topics(&[&allowed]).await;
    case.apply_user(
        &user,
        json!({
            "authentication": { "type": "tls" },
            "authorization": simple(vec![acl(topic(&allowed), &["Write", "Describe"])]),
        }),
    )
    .await;
    case.wait_ready(&user).await;
    let first = case.secret(&user).await.expect("the user Secret");
    assert_eq!(
        text(&first, "ca.crt"),
        testbed_ca,
        "signed by the CA from the Secret"
    );
    let (cert, key) = case.write_pem_pair(&first, "first");
    expect_delivered(
        "produce with a certificate signed by the CA read from a Secret",
        &case.env.kafka_mtls(&cert, &key),
        &allowed,
    )
    .await;
    let (first_serial, _) = serial_and_subject(&text(&first, "user.crt"));

    // A new clients CA in the Secret: the certificate is issued again, by it.
    let new_ca = e2e::pki::Ca::new("uo-replacement-clients-ca").unwrap();
    let patch = json!({ "stringData": { "ca.crt": new_ca.cert_pem, "ca.key": new_ca.key.serialize_pem() } });
    case.secrets
        .patch(CA_SECRET, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("replacing the clients CA");
    let reissued = case
        .wait_secret(&user, "re-issued by the new clients CA", |s| {
            text(s, "ca.crt") == new_ca.cert_pem
                && serial_and_subject(&text(s, "user.crt")).0 != first_serial
        })
        .await;
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(text(&reissued, "user.crt").as_bytes()).unwrap();
    let cert = pem.parse_x509().unwrap();
    let (_, ca_pem) = x509_parser::pem::parse_x509_pem(new_ca.cert_pem.as_bytes()).unwrap();
    let ca_cert = ca_pem.parse_x509().unwrap();
    cert.verify_signature(Some(ca_cert.public_key()))
        .expect("the re-issued certificate verifies against the new CA");

    // No authentication: ACLs and quotas for User:<name>, nothing else.
    let plain = case.name("caq-none");
    case.apply_user(
        &plain,
        json!({
            "authorization": simple(vec![acl(topic(&allowed), &["Read"])]),
            "quotas": { "consumerByteRate": 2048 },
        }),
    )
    .await;
    let ready = case.wait_ready(&plain).await;
    let status = ready.status.unwrap();
    assert_eq!(status.username.as_deref(), Some(plain.as_str()));
    assert_eq!(
        status.secret, None,
        "no Secret for a user without authentication"
    );
    let want: BTreeSet<AclBinding> = [topic_binding(
        &format!("User:{plain}"),
        &allowed,
        AclOperation::Read,
    )]
    .into();
    case.wait_acls(&format!("User:{plain}"), &want).await;
    eventually("the quota of the user without authentication", || async {
        match case.user_quotas(&plain).await {
            Some(q) if q == quotas_map(&[("consumer_byte_rate", 2048.0)]) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(case.secret(&plain).await.is_none(), "no Secret was written");
    assert!(!case.has_scram(&plain).await, "no SCRAM credential");
    case.finish().await;
}
