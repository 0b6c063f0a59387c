//! The user operator's sync loop, in passes like the topic operator's: watch events (KafkaUsers,
//! their Secrets, referenced password Secrets, the clients CA Secrets) mark KafkaUser names
//! dirty in a set; a pass plans every dirty user against the cached Kafka view, sends the Kafka
//! writes in one batched request per API, then writes user Secrets (only once Kafka holds the
//! matching credential) and statuses with bounded concurrency. A full pass re-reads Kafka and
//! also removes the credentials, ACLs and quotas of users that have no KafkaUser any more (for
//! example deleted while the operator was down), except users matching `OXBOW_IGNORED_USERS`.
//! A user whose pass failed on a read or write is tried again after a short delay (by a full
//! pass when Kafka refused); a user waiting for a change (invalid input, a pause) is not: the
//! watches bring it back when what it depends on changes, and every full pass looks again. A
//! user whose Secret we just wrote waits until the Secret watch has delivered that write.
//! May touch: KafkaUser status and annotations, user Secrets, Events in the watched namespace;
//! Kafka ACLs, SCRAM credentials and client quotas.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use k8s_openapi::{
    ByteString,
    api::core::v1::Secret,
    apimachinery::pkg::apis::meta::v1::{OwnerReference, Time},
    jiff::Timestamp,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        WatchStreamExt,
        events::{Event, EventType, Recorder, Reporter},
        reflector::{self, Store},
        watcher,
        watcher::Event as WatchEvent,
    },
};
use oxbow_runtime::{http::Readiness, kafka::admin as rt};
use prometheus::{GaugeVec, IntCounter, Opts, Registry};
use regex::Regex;
use ring::rand::SystemRandom;
use serde_json::json;
use shared_crds::{
    Condition, ConditionStatus, KafkaUser, KafkaUserStatus,
    condition::stamp_transitions,
    labels::{self, annotation_is_true},
};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::{
    config::{ClientsCaSource, Config},
    convert,
    kafka::{Failure, KafkaSide, UsersView, Writes, principal_user},
    plan::{
        acl::{AclBinding, expand_acls, plan_acls},
        certificate::{CertDecision, CertificateError, ClientsCa, plan_tls_credentials},
        password::{
            ObservedPasswordSecret, PasswordReference, PasswordSource, SCRAM_ITERATIONS,
            choose_password, needs_scram_upsert, new_scram_salt,
        },
        principal::{Authentication, kafka_principal, username},
        quota::{Quotas, plan_quotas},
        secret::{
            ExistingUserSecret, UserSecretContents, UserSecretTarget, build_user_secret,
            user_secret_name,
        },
    },
};

/// The operator's field manager.
pub const FIELD_MANAGER: &str = "oxbow-user-operator";
const KIND: &str = "KafkaUser";
const DEBOUNCE: Duration = Duration::from_millis(25);
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Metrics specific to the user operator.
#[derive(Clone)]
pub struct UserMetrics {
    pub reconcile: oxbow_runtime::metrics::ReconcileMetrics,
    /// `oxbow_user_certificate_expiry_timestamp_seconds{user}`.
    pub cert_expiry: GaugeVec,
    pub passes: IntCounter,
    /// Writes to Kubernetes (Secrets, statuses, annotations).
    pub kube_writes: IntCounter,
}

impl UserMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let cert_expiry = GaugeVec::new(
            Opts::new(
                "oxbow_user_certificate_expiry_timestamp_seconds",
                "When each TLS user's certificate expires (Unix seconds)",
            ),
            &["user"],
        )?;
        let passes = IntCounter::new("oxbow_user_operator_passes_total", "Sync passes run")?;
        let kube_writes = IntCounter::new(
            "oxbow_user_operator_kube_writes_total",
            "Writes the user operator made to Kubernetes",
        )?;
        registry.register(Box::new(cert_expiry.clone()))?;
        registry.register(Box::new(passes.clone()))?;
        registry.register(Box::new(kube_writes.clone()))?;
        Ok(UserMetrics {
            reconcile: oxbow_runtime::metrics::ReconcileMetrics::register(registry)?,
            cert_expiry,
            passes,
            kube_writes,
        })
    }
}

#[derive(Default)]
struct Dirty {
    names: Mutex<HashSet<String>>,
    all: std::sync::atomic::AtomicBool,
    notify: Notify,
}

impl Dirty {
    fn mark(&self, name: String) {
        self.names.lock().expect("dirty lock").insert(name);
        self.notify.notify_one();
    }
    fn mark_all(&self) {
        self.all.store(true, std::sync::atomic::Ordering::Release);
        self.notify.notify_one();
    }
    fn take(&self) -> (bool, HashSet<String>) {
        let all = self.all.swap(false, std::sync::atomic::Ordering::AcqRel);
        (
            all,
            std::mem::take(&mut *self.names.lock().expect("dirty lock")),
        )
    }
    fn len(&self) -> usize {
        self.names.lock().expect("dirty lock").len()
    }
}

/// Runs the operator until the process ends.
pub async fn run(
    cfg: Config,
    client: Client,
    kafka: KafkaSide,
    metrics: UserMetrics,
    readiness: Readiness,
) -> anyhow::Result<()> {
    let users: Api<KafkaUser> = Api::namespaced(client.clone(), &cfg.namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &cfg.namespace);
    let dirty = Arc::new(Dirty::default());
    let unseen = Arc::new(UnseenWrites::default());

    let (user_reader, user_writer) = reflector::store();
    let user_selector = format!("{}={}", labels::CLUSTER, cfg.cluster);
    let user_watch = watcher(
        users.clone(),
        watcher::Config::default().labels(&user_selector),
    )
    .default_backoff()
    .modify(|u| u.managed_fields_mut().clear())
    .reflect(user_writer);
    let (secret_reader, secret_writer) = reflector::store();
    let secret_selector = format!(
        "{}={},{}=KafkaUser",
        labels::CLUSTER,
        cfg.cluster,
        labels::KIND
    );
    let secret_watch = watcher(
        secrets.clone(),
        watcher::Config::default().labels(&secret_selector),
    )
    .default_backoff()
    // Our own managed fields stay: they say which labels, annotations and keys are ours (see
    // `secret_unchanged`).
    .modify(|s| {
        s.managed_fields_mut()
            .retain(|m| m.manager.as_deref() == Some(FIELD_MANAGER))
    })
    .reflect(secret_writer);
    // Every Secret's metadata: a change of a referenced password Secret or of the clients CA
    // must reach the users that depend on it.
    let secret_meta: Api<kube::core::PartialObjectMeta<Secret>> =
        Api::namespaced(client.clone(), &cfg.namespace);
    let any_secret = watcher(secret_meta, watcher::Config::default()).default_backoff();

    let ca_secrets: Vec<String> = match &cfg.clients_ca {
        ClientsCaSource::Secrets { cert, key } => vec![cert.clone(), key.clone()],
        _ => Vec::new(),
    };
    {
        let dirty = dirty.clone();
        tokio::spawn(async move {
            let mut seen: std::collections::HashMap<String, (Option<i64>, Option<String>)> =
                Default::default();
            let mut s = std::pin::pin!(user_watch);
            while let Some(ev) = s.next().await {
                match ev {
                    Ok(WatchEvent::Apply(u) | WatchEvent::InitApply(u)) => {
                        let fp = (
                            u.metadata.generation,
                            serde_json::to_string(&u.metadata.annotations).ok(),
                        );
                        if seen.get(&u.name_any()) != Some(&fp) {
                            seen.insert(u.name_any(), fp);
                            dirty.mark(u.name_any());
                        }
                    }
                    Ok(WatchEvent::Delete(u)) => {
                        seen.remove(&u.name_any());
                        dirty.mark(u.name_any());
                    }
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "KafkaUser watch failed; retrying"),
                }
            }
        });
    }
    {
        let dirty = dirty.clone();
        let user_reader = user_reader.clone();
        let unseen = unseen.clone();
        tokio::spawn(async move {
            let mut s = std::pin::pin!(secret_watch);
            while let Some(ev) = s.next().await {
                let (sec, deleted, listed) = match ev {
                    Ok(WatchEvent::Apply(sec)) => (sec, false, false),
                    Ok(WatchEvent::InitApply(sec)) => (sec, false, true),
                    Ok(WatchEvent::Delete(sec)) => (sec, true, false),
                    Ok(_) => continue,
                    Err(e) => {
                        warn!(error = %e, "user Secret watch failed; retrying");
                        continue;
                    }
                };
                // The reflector has already stored this version, so a user deferred until its
                // Secret caught up can be planned now.
                let version = if deleted {
                    None
                } else {
                    sec.resource_version()
                };
                let was_deferred = unseen.seen(&sec.name_any(), version.as_deref());
                // A user Secret changed or went away behind our back (or caught up with our
                // write): re-check its user. A re-list alone says nothing new.
                if (!listed || was_deferred)
                    && let Some(owner) = sec.labels().get(labels::APP_INSTANCE).cloned()
                    && user_reader
                        .get(
                            &reflector::ObjectRef::new(&owner)
                                .within(&sec.namespace().unwrap_or_default()),
                        )
                        .is_some()
                {
                    dirty.mark(owner);
                }
            }
        });
    }
    {
        let dirty = dirty.clone();
        let user_reader = user_reader.clone();
        tokio::spawn(async move {
            let mut versions: std::collections::HashMap<String, String> = Default::default();
            let mut s = std::pin::pin!(any_secret);
            while let Some(ev) = s.next().await {
                let (meta, deleted) = match ev {
                    Ok(WatchEvent::Apply(m) | WatchEvent::InitApply(m)) => (m, false),
                    Ok(WatchEvent::Delete(m)) => (m, true),
                    Ok(_) => continue,
                    Err(e) => {
                        warn!(error = %e, "Secret metadata watch failed; retrying");
                        continue;
                    }
                };
                let name = meta.name_any();
                let version = meta.resource_version().unwrap_or_default();
                let changed = deleted || versions.get(&name) != Some(&version);
                if deleted {
                    versions.remove(&name);
                } else {
                    versions.insert(name.clone(), version);
                }
                if !changed {
                    continue;
                }
                if ca_secrets.contains(&name) {
                    dirty.mark_all();
                    continue;
                }
                for u in user_reader.state() {
                    if password_reference(&u).is_some_and(|(secret, _)| secret == name) {
                        dirty.mark(u.name_any());
                    }
                }
            }
        });
    }
    user_reader.wait_until_ready().await?;
    secret_reader.wait_until_ready().await?;
    info!("KafkaUsers and user Secrets listed");

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let mut op = Operator {
        ignored: cfg.ignored_users_regex(),
        cfg,
        users,
        secrets,
        user_reader,
        secret_reader,
        kafka,
        view: None,
        recorder,
        metrics,
        rng: SystemRandom::new(),
        written_passwords: HashMap::new(),
        dirty: dirty.clone(),
        unseen,
    };
    loop {
        match op.pass(true, HashSet::new()).await {
            Ok(()) => break,
            Err(e) => {
                warn!(error = %e, "initial sync failed; retrying");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
    readiness.set_ready(true);
    info!("initial sync done; ready");

    let mut full = tokio::time::interval(op.cfg.full_reconciliation_interval);
    full.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    full.tick().await;
    loop {
        op.metrics.reconcile.queue_for(KIND).set(dirty.len() as i64);
        let (is_full, names) = tokio::select! {
            _ = dirty.notify.notified() => {
                tokio::time::sleep(DEBOUNCE).await;
                let (all, names) = dirty.take();
                (all, names)
            }
            _ = full.tick() => (true, HashSet::new()),
        };
        if !is_full && names.is_empty() {
            continue;
        }
        if let Err(e) = op.pass(is_full, names.clone()).await {
            warn!(error = %e, "sync pass failed; retrying");
            if is_full {
                dirty.mark_all();
            }
            for n in names {
                dirty.mark(n);
            }
            tokio::time::sleep(RETRY_AFTER).await;
        }
    }
}

/// The Secret and key a SCRAM user's password comes from, if it names one.
fn password_reference(u: &KafkaUser) -> Option<(String, String)> {
    let r = &u
        .spec
        .authentication
        .as_ref()?
        .password
        .as_ref()?
        .value_from
        .secret_key_ref;
    Some((r.name.clone(), r.key.clone()))
}

struct Operator {
    cfg: Config,
    users: Api<KafkaUser>,
    secrets: Api<Secret>,
    user_reader: Store<KafkaUser>,
    secret_reader: Store<Secret>,
    kafka: KafkaSide,
    /// Kafka's users as last read and since written; `None` until the first full pass.
    view: Option<UsersView>,
    recorder: Recorder,
    metrics: UserMetrics,
    rng: SystemRandom,
    ignored: Option<Regex>,
    dirty: Arc<Dirty>,
    unseen: Arc<UnseenWrites>,
    /// KafkaUser name -> SHA-256 of the SCRAM password this process last synced into Kafka and
    /// the user Secret. Empty after a restart, when the Secret is trusted as it is.
    written_passwords: HashMap<String, Vec<u8>>,
}

/// A password's SHA-256, to recognise it again without keeping it.
fn password_digest(password: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, password)
        .as_ref()
        .to_vec()
}

/// How long a pass defers a user whose Secret the watch has not delivered since we wrote it,
/// before trusting the watch's copy anyway (a watch that re-listed may skip that version).
const UNSEEN_WRITE_PATIENCE: Duration = Duration::from_secs(10);

/// User Secrets this operator wrote that the Secret watch has not delivered yet: name ->
/// (resourceVersion the write returned, when).
///
/// A pass that plans a user from the watch's older copy of its Secret takes the old contents
/// for the current ones: right after a SCRAM user's first write it finds no password, generates
/// another and replaces the credential clients may already have read; a TLS user gets a second
/// certificate. Passes run back to back (a full pass can follow a write by milliseconds), so
/// such users are skipped until the watch catches up; its event marks them dirty again.
#[derive(Default)]
struct UnseenWrites(Mutex<HashMap<String, (String, Instant)>>);

impl UnseenWrites {
    /// Our write of Secret `name` returned `version`.
    fn wrote(&self, name: &str, version: &str) {
        self.0
            .lock()
            .expect("unseen writes lock")
            .insert(name.to_owned(), (version.to_owned(), Instant::now()));
    }

    /// The watch delivered `version` of Secret `name` (`None`: its deletion). Returns whether
    /// this settled a write we were waiting for.
    fn seen(&self, name: &str, version: Option<&str>) -> bool {
        let mut m = self.0.lock().expect("unseen writes lock");
        let settled = m
            .get(name)
            .is_some_and(|(written, _)| version.is_none_or(|v| caught_up(v, written)));
        if settled {
            m.remove(name);
        }
        settled
    }

    /// Whether the watch's copy of Secret `name` (at `cached`) may predate our last write.
    fn pending(&self, name: &str, cached: Option<&str>, now: Instant) -> bool {
        let mut m = self.0.lock().expect("unseen writes lock");
        let Some((written, at)) = m.get(name) else {
            return false;
        };
        // A write that changed nothing keeps the version the watch already has.
        if cached.is_some_and(|v| caught_up(v, written))
            || now.saturating_duration_since(*at) > UNSEEN_WRITE_PATIENCE
        {
            m.remove(name);
            return false;
        }
        true
    }
}

/// Whether a copy at resourceVersion `seen` includes the write that returned `written`.
/// Resource versions are opaque in general; the API server's are etcd revisions, which compare
/// as numbers. Anything else matches only exactly (and the patience above bounds the wait).
fn caught_up(seen: &str, written: &str) -> bool {
    seen == written
        || matches!((seen.parse::<u64>(), written.parse::<u64>()), (Ok(s), Ok(w)) if s >= w)
}

/// What a pass decided for one KafkaUser that exists.
struct UserWork {
    user: Arc<KafkaUser>,
    kafka_name: String,
    /// Secret to apply once Kafka accepted the user's writes.
    secret: Option<Secret>,
    /// Kafka user names whose write failures concern this user.
    kafka_users: Vec<String>,
    outcome: Result<(), Problem>,
    events: Vec<(EventType, String, String)>,
    remove_force_renew: bool,
    cert_not_after: Option<i64>,
    /// SHA-256 of the SCRAM password the Secret will hold (and Kafka holds once synced).
    password_digest: Option<Vec<u8>>,
}

/// How applying one user's work ended.
struct Applied {
    name: String,
    retry: Retry,
    /// Kafka and the user Secret hold the planned password (when there is one).
    password_synced: bool,
}

/// Why a user is not in sync: the condition's reason and message, and whether trying again
/// soon can help.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Problem {
    reason: String,
    message: String,
    /// A read or write that failed and may succeed on its own (retried after [`RETRY_AFTER`]).
    /// Otherwise only a change can help (invalid input, a pause, a missing or broken clients
    /// CA): the watches bring the user back when something it depends on changes, and every
    /// full pass looks at it again anyway.
    transient: bool,
}

impl Problem {
    fn lasting(reason: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            reason: reason.into(),
            message: message.into(),
            transient: false,
        }
    }

    fn transient(reason: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            transient: true,
            ..Problem::lasting(reason, message)
        }
    }
}

/// What to do about a user after its pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    /// In sync, or waiting for a change: the watches and the periodic full pass suffice.
    Nothing,
    /// Reconcile this user again after [`RETRY_AFTER`] (a Kubernetes read or write failed).
    User,
    /// Run a full pass after [`RETRY_AFTER`]: a Kafka write failed, and the cached view of
    /// Kafka may be what is wrong, so it is read again.
    FullPass,
}

/// Decides the retry for one user from how its pass ended (`kafka_write_failed`: Kafka failed
/// a write of the user for a passing reason). Users waiting for a change are never retried on
/// a timer: doing so immediately (as the first version did) turned one
/// KafkaUser with a missing password Secret into dozens of full passes a second.
fn retry_for(
    problem: Option<&Problem>,
    kafka_write_failed: bool,
    kube_write_failed: bool,
) -> Retry {
    if kafka_write_failed {
        Retry::FullPass
    } else if kube_write_failed || problem.is_some_and(|p| p.transient) {
        Retry::User
    } else {
        Retry::Nothing
    }
}

impl Operator {
    async fn pass(&mut self, full: bool, names: HashSet<String>) -> anyhow::Result<()> {
        let started = Instant::now();
        self.metrics.passes.inc();
        if full || self.view.is_none() {
            self.view = Some(
                self.kafka
                    .observe()
                    .await
                    .map_err(|f| anyhow::anyhow!("reading Kafka's users: {}", f.message))?,
            );
        }
        let users: BTreeMap<String, Arc<KafkaUser>> = self
            .user_reader
            .state()
            .into_iter()
            .filter(|u| u.metadata.deletion_timestamp.is_none())
            .map(|u| (u.name_any(), u))
            .collect();
        let view = self.view.clone().unwrap_or_default();
        let mut scope: BTreeSet<String> = if full {
            let mut s: BTreeSet<String> = users.keys().cloned().collect();
            s.extend(
                view.usernames()
                    .iter()
                    .map(|n| convert::kafka_user_name_of(n).to_owned()),
            );
            s
        } else {
            names.into_iter().collect()
        };
        scope.retain(|n| !self.is_ignored(n));

        let ca = self.clients_ca().await;
        let now = time::OffsetDateTime::now_utc();
        let mut writes = Writes::default();
        let mut work = Vec::new();
        for name in &scope {
            match users.get(name) {
                None => self.plan_removal(name, &view, &mut writes),
                Some(_) if self.secret_unseen(name) => {}
                Some(user) => {
                    if let Some(w) = self
                        .plan_user(user.clone(), &view, &ca, now, &mut writes)
                        .await
                    {
                        work.push(w);
                    }
                }
            }
        }

        let mut view = self.view.take().unwrap_or_default();
        let failures = if writes.is_empty() {
            Default::default()
        } else {
            self.kafka.write(writes, &mut view).await
        };
        self.view = Some(view);
        self.act_kube(work, &failures).await;
        self.metrics
            .reconcile
            .duration_for(KIND)
            .observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Whether the user's Secret in the watch's cache may predate our last write of it (see
    /// [`UnseenWrites`]); the watch event that brings the write marks the user dirty again.
    fn secret_unseen(&self, name: &str) -> bool {
        let secret_name = user_secret_name(&self.cfg.secret_prefix, name);
        let cached = self
            .secret_reader
            .get(&reflector::ObjectRef::new(&secret_name).within(&self.cfg.namespace))
            .and_then(|s| s.resource_version());
        self.unseen
            .pending(&secret_name, cached.as_deref(), Instant::now())
    }

    fn is_ignored(&self, kafka_user_name: &str) -> bool {
        self.ignored.as_ref().is_some_and(|re| {
            re.is_match(kafka_user_name) || re.is_match(&format!("CN={kafka_user_name}"))
        })
    }

    /// No KafkaUser: everything Kafka holds for the name goes.
    fn plan_removal(&mut self, name: &str, view: &UsersView, writes: &mut Writes) {
        self.written_passwords.remove(name);
        if view.scram.contains(name) {
            writes.scram.push(rt::ScramAlteration::Delete {
                user: name.to_owned(),
                mechanism: rt::ScramMechanism::Sha512,
            });
        }
        for username in [name.to_owned(), format!("CN={name}")] {
            if let Some(bindings) = view.acls.get(&format!("User:{username}")) {
                writes.delete_acls.extend(bindings.iter().cloned());
            }
            if let Some(q) = view.quotas.get(&username) {
                writes.quotas.push((
                    username.clone(),
                    q.keys().map(|k| (k.clone(), None)).collect(),
                ));
            }
        }
    }

    async fn plan_user(
        &mut self,
        user: Arc<KafkaUser>,
        view: &UsersView,
        ca: &Result<(String, String), Problem>,
        now: time::OffsetDateTime,
        writes: &mut Writes,
    ) -> Option<UserWork> {
        let name = user.name_any();
        let auth = convert::authentication(&user);
        let principal = kafka_principal(auth, &name);
        let kafka_name = username(auth, &name);
        let mut w = UserWork {
            user: user.clone(),
            kafka_name: kafka_name.clone(),
            secret: None,
            kafka_users: vec![name.clone(), format!("CN={name}")],
            outcome: Ok(()),
            events: Vec::new(),
            remove_force_renew: false,
            cert_not_after: None,
            password_digest: None,
        };
        if annotation_is_true(
            user.metadata.annotations.as_ref(),
            labels::PAUSE_RECONCILIATION,
        ) {
            w.outcome = Err(Problem::lasting(
                "ReconciliationPaused",
                "oxbow.rs/pause-reconciliation is \"true\"",
            ));
            return Some(w);
        }
        let rules = match convert::acl_rules(&user) {
            Ok(r) => r,
            Err(e) => {
                w.outcome = Err(Problem::lasting(e.reason(), e.to_string()));
                return Some(w);
            }
        };
        let secret_name = user_secret_name(&self.cfg.secret_prefix, &name);
        let existing = self
            .secret_reader
            .get(&reflector::ObjectRef::new(&secret_name).within(&self.cfg.namespace));
        let existing_view = existing.as_deref().map(ExistingUserSecret::new);
        let template = convert::secret_template(&user);
        let target = UserSecretTarget {
            kafka_user_name: &name,
            namespace: &self.cfg.namespace,
            cluster: &self.cfg.cluster,
            secret_prefix: &self.cfg.secret_prefix,
            template: template.as_ref(),
            owner: Some(owner_reference(&user)),
        };

        // Credentials.
        match auth {
            Authentication::ScramSha512 => {
                let reference = password_reference(&user);
                let observed;
                let fetched;
                let source = match &reference {
                    Some((secret, key)) => {
                        fetched = match self.secrets.get_opt(secret).await {
                            Ok(s) => s,
                            Err(e) => {
                                w.outcome = Err(Problem::transient(
                                    "ReadPasswordSecret",
                                    format!("reading Secret {secret}: {e}"),
                                ));
                                return Some(w);
                            }
                        };
                        observed = match &fetched {
                            None => ObservedPasswordSecret::SecretMissing,
                            Some(s) => match s.data.as_ref().and_then(|d| d.get(key)) {
                                None => ObservedPasswordSecret::KeyMissing,
                                Some(v) => ObservedPasswordSecret::Value(&v.0),
                            },
                        };
                        PasswordSource {
                            reference: Some(PasswordReference {
                                secret_name: secret,
                                key,
                                observed,
                            }),
                            user_secret_password: existing_view.and_then(|e| e.password()),
                        }
                    }
                    None => PasswordSource {
                        reference: None,
                        user_secret_password: existing_view.and_then(|e| e.password()),
                    },
                };
                let chosen = match choose_password(&source, &self.rng) {
                    Ok(c) => c,
                    Err(e) => {
                        w.outcome = Err(Problem {
                            transient: !e.is_invalid_user_input(),
                            ..Problem::lasting(e.reason(), e.to_string())
                        });
                        return Some(w);
                    }
                };
                let has = view.scram.contains(&name);
                // The user Secret is the record of the password Kafka holds only while it holds
                // the password we put there: one edited by hand is kept, so it must reach Kafka.
                let recorded = existing_view.and_then(|e| e.password()).filter(|p| {
                    self.written_passwords
                        .get(&name)
                        .is_none_or(|d| *d == password_digest(p))
                });
                w.password_digest = Some(password_digest(chosen.password.expose().as_bytes()));
                if needs_scram_upsert(recorded, &chosen.password, has) {
                    let salt = match new_scram_salt(&self.rng) {
                        Ok(s) => s,
                        Err(e) => {
                            w.outcome = Err(Problem::transient(e.reason(), e.to_string()));
                            return Some(w);
                        }
                    };
                    writes
                        .scram
                        .push(rt::ScramAlteration::Upsert(rt::ScramUpsertion {
                            user: name.clone(),
                            mechanism: rt::ScramMechanism::Sha512,
                            iterations: SCRAM_ITERATIONS.get() as i32,
                            password: chosen.password.expose().as_bytes().to_vec(),
                            salt,
                        }));
                    if has {
                        w.events.push((
                            EventType::Normal,
                            "PasswordChanged".into(),
                            "the SCRAM-SHA-512 credential was replaced".into(),
                        ));
                    }
                }
                match build_user_secret(
                    &target,
                    UserSecretContents::Scram {
                        password: &chosen.password,
                    },
                ) {
                    Ok(s) => w.secret = Some(s),
                    Err(e) => w.outcome = Err(Problem::lasting(e.reason(), e.to_string())),
                }
            }
            Authentication::Tls => {
                let (ca_cert, ca_key) = match ca {
                    Ok(pair) => pair,
                    Err(problem) => {
                        w.outcome = Err(problem.clone());
                        return Some(w);
                    }
                };
                let force =
                    annotation_is_true(user.metadata.annotations.as_ref(), labels::FORCE_RENEW);
                let material = existing_view.map(|e| e.tls_material()).unwrap_or_default();
                match plan_tls_credentials(
                    &name,
                    &material,
                    ClientsCa {
                        cert_pem: ca_cert,
                        key_pem: ca_key,
                    },
                    now,
                    self.cfg.certificate_validity,
                    force,
                    &self.rng,
                ) {
                    Ok((decision, creds)) => {
                        if let CertDecision::Issue(reason) = decision {
                            w.events.push((
                                EventType::Normal,
                                "CertificateIssued".into(),
                                format!("a client certificate was issued ({})", reason.as_str()),
                            ));
                        }
                        w.remove_force_renew = force;
                        w.cert_not_after = not_after(&creds.cert_pem);
                        match build_user_secret(&target, UserSecretContents::Tls(&creds)) {
                            Ok(s) => w.secret = Some(s),
                            Err(e) => w.outcome = Err(Problem::lasting(e.reason(), e.to_string())),
                        }
                    }
                    Err(e) => {
                        // Only the random source can fail on its own; a bad name or CA needs a
                        // change.
                        w.outcome = Err(Problem {
                            transient: matches!(e, CertificateError::RandomSourceFailed),
                            ..Problem::lasting(e.reason(), e.to_string())
                        });
                        return Some(w);
                    }
                }
            }
            Authentication::TlsExternal | Authentication::None => {}
        }
        if auth != Authentication::ScramSha512 && view.scram.contains(&name) {
            writes.scram.push(rt::ScramAlteration::Delete {
                user: name.clone(),
                mechanism: rt::ScramMechanism::Sha512,
            });
        }
        if w.outcome.is_err() {
            return Some(w);
        }

        // ACLs: the desired principal gets exactly its rules; the other principal form of the
        // same user (left from an authentication change) gets none.
        let desired: BTreeSet<AclBinding> = expand_acls(&principal, &rules);
        for p in [format!("User:{name}"), format!("User:CN={name}")] {
            let observed = view.acls.get(&p).cloned().unwrap_or_default();
            let want = if p == principal {
                desired.clone()
            } else {
                BTreeSet::new()
            };
            let acl_plan = plan_acls(&p, &want, &observed);
            writes.create_acls.extend(acl_plan.create);
            writes.delete_acls.extend(acl_plan.delete);
        }
        // Quotas, likewise for both user entity names.
        for entity in [name.clone(), format!("CN={name}")] {
            let desired = if entity == kafka_name {
                convert::quotas(&user)
            } else {
                Quotas::default()
            };
            let observed = convert::observed_quotas(view.quotas.get(&entity));
            let ops = plan_quotas(&desired, &observed);
            if !ops.is_empty() {
                writes.quotas.push(convert::quota_change(&entity, &ops));
            }
        }
        Some(w)
    }

    /// The clients CA (certificate, key) or why it is unavailable. Only a failed read is
    /// transient; a CA that is not configured or not there waits for a change (a CA Secret
    /// appearing marks every user dirty).
    async fn clients_ca(&self) -> Result<(String, String), Problem> {
        match &self.cfg.clients_ca {
            ClientsCaSource::None => Err(Problem::lasting(
                "ClientsCaNotConfigured",
                "TLS users need a clients CA: set OXBOW_CLIENTS_CA_CERT_FILE and OXBOW_CLIENTS_CA_KEY_FILE (or the _SECRET variants)",
            )),
            ClientsCaSource::Files { cert, key } => {
                let read = |p: &str| {
                    std::fs::read_to_string(p).map_err(|e| {
                        Problem::transient("ReadClientsCa", format!("reading {p}: {e}"))
                    })
                };
                Ok((read(cert)?, read(key)?))
            }
            ClientsCaSource::Secrets { cert, key } => {
                let get = |name: String, k: &'static str| {
                    let api = self.secrets.clone();
                    async move {
                        let s = api
                            .get_opt(&name)
                            .await
                            .map_err(|e| {
                                Problem::transient(
                                    "ReadClientsCa",
                                    format!("reading Secret {name}: {e}"),
                                )
                            })?
                            .ok_or_else(|| {
                                Problem::lasting(
                                    "ClientsCaNotFound",
                                    format!("Secret {name} holding the clients CA does not exist"),
                                )
                            })?;
                        let v = s.data.and_then(|d| d.get(k).cloned()).ok_or_else(|| {
                            Problem::lasting(
                                "ClientsCaNotFound",
                                format!("Secret {name} has no {k}"),
                            )
                        })?;
                        String::from_utf8(v.0).map_err(|_| {
                            Problem::lasting(
                                "ClientsCaInvalid",
                                format!("{k} in Secret {name} is not PEM text"),
                            )
                        })
                    }
                };
                Ok((
                    get(cert.clone(), "ca.crt").await?,
                    get(key.clone(), "ca.key").await?,
                ))
            }
        }
    }

    async fn act_kube(&mut self, work: Vec<UserWork>, failures: &crate::kafka::WriteFailures) {
        let now = Time(Timestamp::now());
        let users = self.users.clone();
        let secrets = self.secrets.clone();
        let recorder = self.recorder.clone();
        let metrics = self.metrics.clone();
        let concurrency = self.cfg.kube_write_concurrency;
        let digests: HashMap<String, Vec<u8>> = work
            .iter()
            .filter_map(|w| Some((w.user.name_any(), w.password_digest.clone()?)))
            .collect();
        let results: Vec<Applied> = stream::iter(work)
            .map(|w| {
                let failure = w.kafka_users.iter().find_map(|u| failures.get(u)).cloned();
                let (users, secrets, recorder, metrics, now) = (
                    users.clone(),
                    secrets.clone(),
                    recorder.clone(),
                    metrics.clone(),
                    now.clone(),
                );
                let existing_secret = w.secret.as_ref().and_then(|s| {
                    self.secret_reader
                        .get(&reflector::ObjectRef::new(&s.name_any()).within(&self.cfg.namespace))
                });
                let unseen = &self.unseen;
                async move {
                    apply_user(
                        w,
                        failure,
                        existing_secret,
                        &users,
                        &secrets,
                        &recorder,
                        &metrics,
                        unseen,
                        &now,
                    )
                    .await
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        // Retries wait a little: a Kafka or API server that just refused is unlikely to accept
        // the same request a few milliseconds later, and an immediate retry would spin.
        for a in results.iter().filter(|a| a.password_synced) {
            if let Some(d) = digests.get(&a.name) {
                self.written_passwords.insert(a.name.clone(), d.clone());
            }
        }
        let full = results.iter().any(|a| a.retry == Retry::FullPass);
        let again: Vec<String> = results
            .into_iter()
            .filter(|a| a.retry == Retry::User)
            .map(|a| a.name)
            .collect();
        if full || !again.is_empty() {
            let dirty = self.dirty.clone();
            tokio::spawn(async move {
                tokio::time::sleep(RETRY_AFTER).await;
                if full {
                    dirty.mark_all();
                }
                for name in again {
                    dirty.mark(name);
                }
            });
        }
    }
}

fn owner_reference(u: &KafkaUser) -> OwnerReference {
    u.controller_owner_ref(&())
        .expect("a listed KafkaUser has a name and uid")
}

fn not_after(cert_pem: &str) -> Option<i64> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// Whether the Secret on the server already holds what we would apply, so applying it would
/// change nothing.
///
/// Labels, annotations and data may carry entries of other owners (a team's label, a key a
/// tool added), which an apply leaves alone, so only ours are compared: what we want must be
/// there, and what our field manager owns must still be wanted; otherwise an apply removes
/// it (a template label taken out of the KafkaUser, the password of a user now on TLS).
fn secret_unchanged(existing: Option<&Secret>, desired: &Secret) -> bool {
    fn ours_match<V: PartialEq>(
        have: Option<&BTreeMap<String, V>>,
        want: Option<&BTreeMap<String, V>>,
        owned: BTreeSet<String>,
    ) -> bool {
        let want_all_there = want
            .iter()
            .flat_map(|m| m.iter())
            .all(|(k, v)| have.and_then(|h| h.get(k)) == Some(v));
        let owned_all_wanted = owned
            .iter()
            .all(|k| want.is_some_and(|w| w.contains_key(k)));
        want_all_there && owned_all_wanted
    }
    let Some(e) = existing else { return false };
    e.type_ == desired.type_
        && e.metadata.owner_references == desired.metadata.owner_references
        && ours_match(
            e.data.as_ref(),
            desired.data.as_ref(),
            owned_keys(e, &["f:data"]),
        )
        && ours_match(
            e.metadata.labels.as_ref(),
            desired.metadata.labels.as_ref(),
            owned_keys(e, &["f:metadata", "f:labels"]),
        )
        && ours_match(
            e.metadata.annotations.as_ref(),
            desired.metadata.annotations.as_ref(),
            owned_keys(e, &["f:metadata", "f:annotations"]),
        )
}

/// The keys of the map at `path` in the managed fields of this operator's applies
/// (`["f:metadata", "f:labels"]` -> the label keys it set). Empty without managed fields.
fn owned_keys(object: &Secret, path: &[&str]) -> BTreeSet<String> {
    object
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| {
            m.manager.as_deref() == Some(FIELD_MANAGER) && m.operation.as_deref() == Some("Apply")
        })
        .filter_map(|m| m.fields_v1.as_ref())
        .filter_map(|f| path.iter().try_fold(&f.0, |v, step| v.get(*step)))
        .filter_map(|v| v.as_object())
        .flat_map(|o| o.keys())
        .filter_map(|k| k.strip_prefix("f:"))
        .map(str::to_owned)
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn apply_user(
    w: UserWork,
    failure: Option<Failure>,
    existing_secret: Option<Arc<Secret>>,
    users: &Api<KafkaUser>,
    secrets: &Api<Secret>,
    recorder: &Recorder,
    metrics: &UserMetrics,
    unseen: &UnseenWrites,
    now: &Time,
) -> Applied {
    let name = w.user.name_any();
    let ssa = PatchParams::apply(FIELD_MANAGER).force();
    let mut kube_write_failed = false;
    let mut outcome = w.outcome.clone();
    if let (Ok(()), Some(f)) = (&outcome, &failure) {
        outcome = Err(Problem {
            transient: !f.lasting,
            ..Problem::lasting(f.reason.clone(), f.message.clone())
        });
    }
    let credential_failed = failure.as_ref().is_some_and(|f| f.credential);
    let mut secret_failed = false;
    // The Secret only once Kafka holds the matching credential (a failed upsert must be retried
    // with the same password, which the Secret would otherwise claim is already in place). An
    // ACL or quota Kafka refused does not hold it back: without the Secret, the retry would
    // find no password and make (and upsert) another one, or issue another certificate.
    if w.outcome.is_ok()
        && !credential_failed
        && let Some(secret) = &w.secret
        && !secret_unchanged(existing_secret.as_deref(), secret)
    {
        let body = secret_apply_body(secret);
        match secrets
            .patch(&secret.name_any(), &ssa, &Patch::Apply(&body))
            .await
        {
            Ok(written) => {
                metrics.kube_writes.inc();
                if let Some(version) = written.resource_version() {
                    unseen.wrote(&written.name_any(), &version);
                }
            }
            Err(e) => {
                kube_write_failed = true;
                secret_failed = true;
                outcome = Err(Problem::transient(
                    "WriteUserSecret",
                    format!("writing Secret {}: {e}", secret.name_any()),
                ));
            }
        }
    }
    if !kube_write_failed && w.remove_force_renew {
        let patch = json!({ "metadata": { "annotations": { labels::FORCE_RENEW: null } } });
        match users
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => metrics.kube_writes.inc(),
            Err(e) => {
                kube_write_failed = true;
                warn!(user = %name, error = %e, "removing the force-renew annotation failed");
            }
        }
    }
    if let Some(ts) = w.cert_not_after {
        metrics
            .cert_expiry
            .with_label_values(&[&name])
            .set(ts as f64);
    }
    let auth = convert::authentication(&w.user);
    let condition = match &outcome {
        Ok(()) => Condition::ready("UserSynced", ""),
        Err(p) if p.reason == "ReconciliationPaused" => Condition::new(
            "ReconciliationPaused",
            ConditionStatus::True,
            p.reason.clone(),
            p.message.clone(),
        ),
        Err(p) => Condition::not_ready(p.reason.clone(), p.message.clone()),
    };
    let label = match &outcome {
        Ok(()) => "success".to_owned(),
        Err(p) => p.reason.clone(),
    };
    metrics
        .reconcile
        .reconciliations
        .with_label_values(&[KIND, &label])
        .inc();
    let previous = w
        .user
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let status = KafkaUserStatus {
        conditions: Some(stamp_transitions(&previous, vec![condition], now)),
        observed_generation: w.user.metadata.generation,
        username: Some(w.kafka_name.clone()),
        secret: matches!(auth, Authentication::ScramSha512 | Authentication::Tls)
            .then(|| w.secret.as_ref().map(|s| s.name_any()))
            .flatten(),
    };
    let mut events = w.events.clone();
    if w.user.status.as_ref() != Some(&status) {
        if let Err(p) = &outcome {
            let was = previous
                .iter()
                .find(|c| c.type_ == "Ready")
                .and_then(|c| c.reason.clone());
            if was.as_deref() != Some(p.reason.as_str()) {
                events.push((EventType::Warning, p.reason.clone(), p.message.clone()));
            }
        }
        let body = json!({ "apiVersion": shared_crds::API_VERSION, "kind": "KafkaUser", "status": status });
        match users.patch_status(&name, &ssa, &Patch::Apply(&body)).await {
            Ok(_) => metrics.kube_writes.inc(),
            Err(e) => {
                kube_write_failed = true;
                warn!(user = %name, error = %e, "writing the status failed");
            }
        }
    }
    for (type_, reason, note) in events {
        let ev = Event {
            type_,
            reason,
            note: Some(note),
            action: "Sync".into(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&ev, &w.user.object_ref(&())).await {
            warn!(error = %e, "publishing an Event failed");
        }
    }
    Applied {
        retry: retry_for(
            outcome.as_ref().err(),
            failure.as_ref().is_some_and(|f| !f.lasting),
            kube_write_failed,
        ),
        password_synced: w.outcome.is_ok() && !credential_failed && !secret_failed,
        name,
    }
}

/// The server-side-apply body of a built Secret (typed fields only, no status).
fn secret_apply_body(secret: &Secret) -> serde_json::Value {
    let data: BTreeMap<&String, &ByteString> = secret.data.iter().flatten().collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret.metadata.name,
            "namespace": secret.metadata.namespace,
            "labels": secret.metadata.labels,
            "annotations": secret.metadata.annotations,
            "ownerReferences": secret.metadata.owner_references,
        },
        "type": secret.type_,
        "data": data,
    })
}

/// A failure that concerns a principal, as a user name (for logs).
pub fn failure_user(principal: &str) -> &str {
    principal_user(principal)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn only_failed_reads_and_writes_are_retried_on_a_timer() {
        let waiting = Problem::lasting("PasswordSecretNotFound", "create it");
        let paused = Problem::lasting("ReconciliationPaused", "paused");
        let read_failed = Problem::transient("ReadPasswordSecret", "timeout");

        assert_eq!(retry_for(None, false, false), Retry::Nothing);
        assert_eq!(retry_for(Some(&waiting), false, false), Retry::Nothing);
        assert_eq!(retry_for(Some(&paused), false, false), Retry::Nothing);
        assert_eq!(retry_for(Some(&read_failed), false, false), Retry::User);
        assert_eq!(retry_for(None, false, true), Retry::User);
        assert_eq!(retry_for(Some(&waiting), false, true), Retry::User);
        // A Kafka failure re-reads Kafka, whatever else happened.
        assert_eq!(retry_for(None, true, false), Retry::FullPass);
        assert_eq!(retry_for(Some(&read_failed), true, true), Retry::FullPass);
    }

    #[test]
    fn a_written_secret_is_pending_until_the_watch_delivers_its_version() {
        let unseen = UnseenWrites::default();
        let now = Instant::now();
        assert!(
            !unseen.pending("alice", Some("100"), now),
            "nothing written"
        );

        unseen.wrote("alice", "105");
        assert!(
            unseen.pending("alice", None, now),
            "the cache has no copy yet"
        );
        assert!(
            unseen.pending("alice", Some("100"), now),
            "the cache is older"
        );
        assert!(!unseen.pending("bob", Some("100"), now), "another Secret");

        assert!(
            !unseen.seen("alice", Some("104")),
            "an older event settles nothing"
        );
        assert!(unseen.pending("alice", Some("104"), now));
        assert!(unseen.seen("alice", Some("105")));
        assert!(!unseen.pending("alice", Some("105"), now));
        assert!(!unseen.seen("alice", Some("106")), "nothing left to settle");
    }

    #[test]
    fn a_cache_at_or_past_the_written_version_settles_it() {
        let unseen = UnseenWrites::default();
        let now = Instant::now();
        unseen.wrote("alice", "105");
        // A write that changed nothing returns the version the cache already holds.
        assert!(!unseen.pending("alice", Some("105"), now));
        unseen.wrote("alice", "105");
        assert!(!unseen.pending("alice", Some("230"), now), "a later change");
    }

    #[test]
    fn deletion_and_patience_settle_a_write() {
        let unseen = UnseenWrites::default();
        let now = Instant::now();
        unseen.wrote("alice", "105");
        assert!(unseen.seen("alice", None), "deleted after our write");
        assert!(!unseen.pending("alice", None, now));

        unseen.wrote("alice", "opaque-version");
        assert!(unseen.pending("alice", Some("other-opaque"), now));
        let later = now + UNSEEN_WRITE_PATIENCE + Duration::from_secs(1);
        assert!(!unseen.pending("alice", Some("other-opaque"), later));
        assert!(
            !unseen.pending("alice", Some("other-opaque"), now),
            "forgotten"
        );
    }

    /// A Secret as the watch caches it: our managed fields claim `owned` labels and data keys.
    fn cached_secret(
        labels: Value,
        data: Value,
        owned_labels: &[&str],
        owned_data: &[&str],
    ) -> Secret {
        let f = |keys: &[&str]| -> serde_json::Map<String, Value> {
            keys.iter()
                .map(|k| (format!("f:{k}"), json!({})))
                .chain([(".".to_owned(), json!({}))])
                .collect()
        };
        serde_json::from_value(json!({
            "metadata": {
                "name": "alice",
                "labels": labels,
                "managedFields": [{
                    "manager": FIELD_MANAGER,
                    "operation": "Apply",
                    "apiVersion": "v1",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": { "f:data": f(owned_data), "f:metadata": { "f:labels": f(owned_labels) } },
                }],
            },
            "type": "Opaque",
            "data": data,
        }))
        .unwrap()
    }

    fn desired_secret(labels: Value, data: Value) -> Secret {
        serde_json::from_value(json!({
            "metadata": { "name": "alice", "labels": labels },
            "type": "Opaque",
            "data": data,
        }))
        .unwrap()
    }

    #[test]
    fn other_owners_entries_do_not_make_a_secret_differ() {
        // Base64: "cGE=" is "pa", "cWE=" is "qa", "eHg=" is "xx", "Yw==" is "c".
        let existing = cached_secret(
            json!({ "ours": "1", "theirs": "2" }),
            json!({ "password": "cGE=", "truststore": "eHg=" }),
            &["ours"],
            &["password"],
        );
        let desired = desired_secret(json!({ "ours": "1" }), json!({ "password": "cGE=" }));
        assert!(secret_unchanged(Some(&existing), &desired));
    }

    #[test]
    fn an_entry_we_own_and_no_longer_want_makes_a_secret_differ() {
        // A template label taken out of the KafkaUser.
        let existing = cached_secret(
            json!({ "ours": "1", "team": "a" }),
            json!({ "password": "cGE=" }),
            &["ours", "team"],
            &["password"],
        );
        let desired = desired_secret(json!({ "ours": "1" }), json!({ "password": "cGE=" }));
        assert!(!secret_unchanged(Some(&existing), &desired));

        // A SCRAM user turned TLS keeps the TLS keys it needs but still holds its password.
        let existing = cached_secret(
            json!({ "ours": "1" }),
            json!({ "password": "cGE=", "user.crt": "Yw==" }),
            &["ours"],
            &["password", "user.crt"],
        );
        let desired = desired_secret(json!({ "ours": "1" }), json!({ "user.crt": "Yw==" }));
        assert!(!secret_unchanged(Some(&existing), &desired));
    }

    #[test]
    fn a_missing_or_different_wanted_entry_makes_a_secret_differ() {
        let existing = cached_secret(
            json!({ "ours": "1" }),
            json!({ "password": "cGE=" }),
            &["ours"],
            &["password"],
        );
        for desired in [
            desired_secret(json!({ "ours": "2" }), json!({ "password": "cGE=" })),
            desired_secret(
                json!({ "ours": "1", "new": "x" }),
                json!({ "password": "cGE=" }),
            ),
            desired_secret(json!({ "ours": "1" }), json!({ "password": "cWE=" })),
        ] {
            assert!(!secret_unchanged(Some(&existing), &desired));
        }
        assert!(!secret_unchanged(
            None,
            &desired_secret(json!({}), json!({}))
        ));
    }

    #[test]
    fn resource_versions_compare_as_numbers_or_exactly() {
        assert!(caught_up("105", "105"));
        assert!(caught_up("1000", "999"), "numerically, not as text");
        assert!(!caught_up("999", "1000"));
        assert!(caught_up("abc", "abc"));
        assert!(!caught_up("abd", "abc"));
    }
}
