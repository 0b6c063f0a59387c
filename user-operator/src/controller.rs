//! The user operator's sync loop, in passes like the topic operator's: watch events (KafkaUsers,
//! their Secrets, referenced password Secrets, the clients CA Secrets) mark KafkaUser names
//! dirty in a set; a pass plans every dirty user against the cached Kafka view, sends the Kafka
//! writes in one batched request per API, then writes user Secrets (only once Kafka holds the
//! matching credential) and statuses with bounded concurrency. A full pass re-reads Kafka and
//! also removes the credentials, ACLs and quotas of users that have no KafkaUser any more (for
//! example deleted while the operator was down), except users matching `OXBOW_IGNORED_USERS`.
//! May touch: KafkaUser status and annotations, user Secrets, Events in the watched namespace;
//! Kafka ACLs, SCRAM credentials and client quotas.

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
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
        certificate::{CertDecision, ClientsCa, plan_tls_credentials},
        password::{
            ObservedPasswordSecret, PasswordReference, PasswordSource, SCRAM_ITERATIONS, choose_password,
            needs_scram_upsert, new_scram_salt,
        },
        principal::{Authentication, kafka_principal, username},
        quota::{Quotas, plan_quotas},
        secret::{ExistingUserSecret, UserSecretContents, UserSecretTarget, build_user_secret, user_secret_name},
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
        (all, std::mem::take(&mut *self.names.lock().expect("dirty lock")))
    }
    fn len(&self) -> usize {
        self.names.lock().expect("dirty lock").len()
    }
}

/// Runs the operator until the process ends.
pub async fn run(cfg: Config, client: Client, kafka: KafkaSide, metrics: UserMetrics, readiness: Readiness) -> anyhow::Result<()> {
    let users: Api<KafkaUser> = Api::namespaced(client.clone(), &cfg.namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &cfg.namespace);
    let dirty = Arc::new(Dirty::default());

    let (user_reader, user_writer) = reflector::store();
    let user_selector = format!("{}={}", labels::CLUSTER, cfg.cluster);
    let user_watch = watcher(users.clone(), watcher::Config::default().labels(&user_selector))
        .default_backoff()
        .modify(|u| u.managed_fields_mut().clear())
        .reflect(user_writer);
    let (secret_reader, secret_writer) = reflector::store();
    let secret_selector = format!("{}={},{}=KafkaUser", labels::CLUSTER, cfg.cluster, labels::KIND);
    let secret_watch = watcher(secrets.clone(), watcher::Config::default().labels(&secret_selector))
        .default_backoff()
        .modify(|s| s.managed_fields_mut().clear())
        .reflect(secret_writer);
    // Every Secret's metadata: a change of a referenced password Secret or of the clients CA
    // must reach the users that depend on it.
    let secret_meta: Api<kube::core::PartialObjectMeta<Secret>> = Api::namespaced(client.clone(), &cfg.namespace);
    let any_secret = watcher(secret_meta, watcher::Config::default()).default_backoff();

    let ca_secrets: Vec<String> = match &cfg.clients_ca {
        ClientsCaSource::Secrets { cert, key } => vec![cert.clone(), key.clone()],
        _ => Vec::new(),
    };
    {
        let dirty = dirty.clone();
        tokio::spawn(async move {
            let mut seen: std::collections::HashMap<String, (Option<i64>, Option<String>)> = Default::default();
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
        tokio::spawn(async move {
            let mut s = std::pin::pin!(secret_watch);
            while let Some(ev) = s.next().await {
                match ev {
                    // A user Secret changed or went away behind our back: re-check its user.
                    Ok(WatchEvent::Apply(sec) | WatchEvent::Delete(sec)) => {
                        if let Some(owner) = sec.labels().get(labels::APP_INSTANCE).cloned()
                            && user_reader.get(&reflector::ObjectRef::new(&owner).within(&sec.namespace().unwrap_or_default())).is_some()
                        {
                            dirty.mark(owner);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "user Secret watch failed; retrying"),
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
        dirty: dirty.clone(),
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
    let r = &u.spec.authentication.as_ref()?.password.as_ref()?.value_from.secret_key_ref;
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
}

/// What a pass decided for one KafkaUser that exists.
struct UserWork {
    user: Arc<KafkaUser>,
    kafka_name: String,
    /// Secret to apply once Kafka accepted the user's writes.
    secret: Option<Secret>,
    /// Kafka user names whose write failures concern this user.
    kafka_users: Vec<String>,
    outcome: Result<(), (String, String)>,
    events: Vec<(EventType, String, String)>,
    remove_force_renew: bool,
    cert_not_after: Option<i64>,
}

impl Operator {
    async fn pass(&mut self, full: bool, names: HashSet<String>) -> anyhow::Result<()> {
        let started = Instant::now();
        self.metrics.passes.inc();
        if full || self.view.is_none() {
            self.view = Some(self.kafka.observe().await.map_err(|f| anyhow::anyhow!("reading Kafka's users: {}", f.message))?);
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
            s.extend(view.usernames().iter().map(|n| convert::kafka_user_name_of(n).to_owned()));
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
                Some(user) => {
                    if let Some(w) = self.plan_user(user.clone(), &view, &ca, now, &mut writes).await {
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
        self.metrics.reconcile.duration_for(KIND).observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    fn is_ignored(&self, kafka_user_name: &str) -> bool {
        self.ignored.as_ref().is_some_and(|re| {
            re.is_match(kafka_user_name) || re.is_match(&format!("CN={kafka_user_name}"))
        })
    }

    /// No KafkaUser: everything Kafka holds for the name goes.
    fn plan_removal(&self, name: &str, view: &UsersView, writes: &mut Writes) {
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
                writes.quotas.push((username.clone(), q.keys().map(|k| (k.clone(), None)).collect()));
            }
        }
    }

    async fn plan_user(
        &mut self,
        user: Arc<KafkaUser>,
        view: &UsersView,
        ca: &Result<(String, String), (String, String)>,
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
        };
        if annotation_is_true(user.metadata.annotations.as_ref(), labels::PAUSE_RECONCILIATION) {
            w.outcome = Err(("ReconciliationPaused".into(), "oxbow.rs/pause-reconciliation is \"true\"".into()));
            return Some(w);
        }
        let rules = match convert::acl_rules(&user) {
            Ok(r) => r,
            Err(e) => {
                w.outcome = Err((e.reason().into(), e.to_string()));
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
                                w.outcome = Err(("ReadPasswordSecret".into(), format!("reading Secret {secret}: {e}")));
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
                            reference: Some(PasswordReference { secret_name: secret, key, observed }),
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
                        w.outcome = Err((e.reason().into(), e.to_string()));
                        return Some(w);
                    }
                };
                let has = view.scram.contains(&name);
                if needs_scram_upsert(existing_view.and_then(|e| e.password()), &chosen.password, has) {
                    let salt = match new_scram_salt(&self.rng) {
                        Ok(s) => s,
                        Err(e) => {
                            w.outcome = Err((e.reason().into(), e.to_string()));
                            return Some(w);
                        }
                    };
                    writes.scram.push(rt::ScramAlteration::Upsert(rt::ScramUpsertion {
                        user: name.clone(),
                        mechanism: rt::ScramMechanism::Sha512,
                        iterations: SCRAM_ITERATIONS.get() as i32,
                        password: chosen.password.expose().as_bytes().to_vec(),
                        salt,
                    }));
                    if has {
                        w.events.push((EventType::Normal, "PasswordChanged".into(), "the SCRAM-SHA-512 credential was replaced".into()));
                    }
                }
                match build_user_secret(&target, UserSecretContents::Scram { password: &chosen.password }) {
                    Ok(s) => w.secret = Some(s),
                    Err(e) => w.outcome = Err((e.reason().into(), e.to_string())),
                }
            }
            Authentication::Tls => {
                let (ca_cert, ca_key) = match ca {
                    Ok(pair) => pair,
                    Err((reason, message)) => {
                        w.outcome = Err((reason.clone(), message.clone()));
                        return Some(w);
                    }
                };
                let force = annotation_is_true(user.metadata.annotations.as_ref(), labels::FORCE_RENEW);
                let material = existing_view.map(|e| e.tls_material()).unwrap_or_default();
                match plan_tls_credentials(
                    &name,
                    &material,
                    ClientsCa { cert_pem: ca_cert, key_pem: ca_key },
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
                            Err(e) => w.outcome = Err((e.reason().into(), e.to_string())),
                        }
                    }
                    Err(e) => {
                        w.outcome = Err((e.reason().into(), e.to_string()));
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
            let want = if p == principal { desired.clone() } else { BTreeSet::new() };
            let acl_plan = plan_acls(&p, &want, &observed);
            writes.create_acls.extend(acl_plan.create);
            writes.delete_acls.extend(acl_plan.delete);
        }
        // Quotas, likewise for both user entity names.
        for entity in [name.clone(), format!("CN={name}")] {
            let desired = if entity == kafka_name { convert::quotas(&user) } else { Quotas::default() };
            let observed = convert::observed_quotas(view.quotas.get(&entity));
            let ops = plan_quotas(&desired, &observed);
            if !ops.is_empty() {
                writes.quotas.push(convert::quota_change(&entity, &ops));
            }
        }
        Some(w)
    }

    /// The clients CA (certificate, key) or why it is unavailable (reason, message).
    async fn clients_ca(&self) -> Result<(String, String), (String, String)> {
        match &self.cfg.clients_ca {
            ClientsCaSource::None => Err((
                "ClientsCaNotConfigured".into(),
                "TLS users need a clients CA: set OXBOW_CLIENTS_CA_CERT_FILE and OXBOW_CLIENTS_CA_KEY_FILE (or the _SECRET variants)".into(),
            )),
            ClientsCaSource::Files { cert, key } => {
                let read = |p: &str| std::fs::read_to_string(p).map_err(|e| ("ReadClientsCa".to_string(), format!("reading {p}: {e}")));
                Ok((read(cert)?, read(key)?))
            }
            ClientsCaSource::Secrets { cert, key } => {
                let get = |name: String, k: &'static str| {
                    let api = self.secrets.clone();
                    async move {
                        let s = api
                            .get_opt(&name)
                            .await
                            .map_err(|e| ("ReadClientsCa".to_string(), format!("reading Secret {name}: {e}")))?
                            .ok_or_else(|| ("ClientsCaNotFound".to_string(), format!("Secret {name} holding the clients CA does not exist")))?;
                        let v = s
                            .data
                            .and_then(|d| d.get(k).cloned())
                            .ok_or_else(|| ("ClientsCaNotFound".to_string(), format!("Secret {name} has no {k}")))?;
                        String::from_utf8(v.0).map_err(|_| ("ClientsCaInvalid".to_string(), format!("{k} in Secret {name} is not PEM text")))
                    }
                };
                Ok((get(cert.clone(), "ca.crt").await?, get(key.clone(), "ca.key").await?))
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
        let results: Vec<bool> = stream::iter(work)
            .map(|w| {
                let failure = w.kafka_users.iter().find_map(|u| failures.get(u)).cloned();
                let (users, secrets, recorder, metrics, now) =
                    (users.clone(), secrets.clone(), recorder.clone(), metrics.clone(), now.clone());
                let existing_secret = w.secret.as_ref().and_then(|s| {
                    self.secret_reader.get(
                        &reflector::ObjectRef::new(&s.name_any()).within(&self.cfg.namespace),
                    )
                });
                async move { apply_user(w, failure, existing_secret, &users, &secrets, &recorder, &metrics, &now).await }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        if results.iter().any(|ok| !ok) {
            // Something did not go through: try those users again on the next full pass, or
            // sooner through the watch events their writes did not cause.
            self.dirty.mark_all();
        }
    }
}

fn owner_reference(u: &KafkaUser) -> OwnerReference {
    u.controller_owner_ref(&()).expect("a listed KafkaUser has a name and uid")
}

fn not_after(cert_pem: &str) -> Option<i64> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// Whether the Secret on the server already holds what we would apply.
fn secret_unchanged(existing: Option<&Secret>, desired: &Secret) -> bool {
    let Some(e) = existing else { return false };
    let sub = |a: Option<&BTreeMap<String, String>>, b: Option<&BTreeMap<String, String>>| {
        b.iter().flat_map(|m| m.iter()).all(|(k, v)| a.and_then(|a| a.get(k)) == Some(v))
    };
    e.data == desired.data
        && e.type_ == desired.type_
        && sub(e.metadata.labels.as_ref(), desired.metadata.labels.as_ref())
        && sub(e.metadata.annotations.as_ref(), desired.metadata.annotations.as_ref())
        && e.metadata.owner_references == desired.metadata.owner_references
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
    now: &Time,
) -> bool {
    let name = w.user.name_any();
    let ssa = PatchParams::apply(FIELD_MANAGER).force();
    let mut ok = true;
    let mut outcome = w.outcome.clone();
    if let (Ok(()), Some(f)) = (&outcome, &failure) {
        outcome = Err((f.reason.clone(), f.message.clone()));
    }
    // The Secret only once Kafka holds the matching credential (a failed upsert must be retried
    // with the same password, which the Secret would otherwise claim is already in place).
    if let (Ok(()), Some(secret)) = (&outcome, &w.secret)
        && !secret_unchanged(existing_secret.as_deref(), secret)
    {
        let body = secret_apply_body(secret);
        match secrets.patch(&secret.name_any(), &ssa, &Patch::Apply(&body)).await {
            Ok(_) => metrics.kube_writes.inc(),
            Err(e) => {
                ok = false;
                outcome = Err(("WriteUserSecret".into(), format!("writing Secret {}: {e}", secret.name_any())));
            }
        }
    }
    if ok && w.remove_force_renew {
        let patch = json!({ "metadata": { "annotations": { labels::FORCE_RENEW: null } } });
        match users.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => metrics.kube_writes.inc(),
            Err(e) => warn!(user = %name, error = %e, "removing the force-renew annotation failed"),
        }
    }
    if let Some(ts) = w.cert_not_after {
        metrics.cert_expiry.with_label_values(&[&name]).set(ts as f64);
    }
    let auth = convert::authentication(&w.user);
    let condition = match &outcome {
        Ok(()) => Condition::ready("UserSynced", ""),
        Err((reason, message)) if reason == "ReconciliationPaused" => {
            Condition::new("ReconciliationPaused", ConditionStatus::True, reason.clone(), message.clone())
        }
        Err((reason, message)) => Condition::not_ready(reason.clone(), message.clone()),
    };
    let label = match &outcome {
        Ok(()) => "success".to_owned(),
        Err((reason, _)) => reason.clone(),
    };
    metrics.reconcile.reconciliations.with_label_values(&[KIND, &label]).inc();
    let previous = w.user.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
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
        if let Err((reason, message)) = &outcome {
            let was = previous.iter().find(|c| c.type_ == "Ready").and_then(|c| c.reason.clone());
            if was.as_deref() != Some(reason.as_str()) {
                events.push((EventType::Warning, reason.clone(), message.clone()));
            }
        }
        let body = json!({ "apiVersion": shared_crds::API_VERSION, "kind": "KafkaUser", "status": status });
        match users.patch_status(&name, &ssa, &Patch::Apply(&body)).await {
            Ok(_) => metrics.kube_writes.inc(),
            Err(e) => {
                ok = false;
                warn!(user = %name, error = %e, "writing the status failed");
            }
        }
    }
    if outcome.is_err() {
        ok = false;
    }
    for (type_, reason, note) in events {
        let ev = Event { type_, reason, note: Some(note), action: "Sync".into(), secondary: None };
        if let Err(e) = recorder.publish(&ev, &w.user.object_ref(&())).await {
            warn!(error = %e, "publishing an Event failed");
        }
    }
    ok
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
