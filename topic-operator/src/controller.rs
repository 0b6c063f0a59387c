//! The topic operator's sync loop. Instead of one reconcile (and several Kafka calls) per
//! `KafkaTopic`, it works in passes: watch events mark topic names dirty (deduplicated, so a
//! burst of 10,000 changes is a set of at most 10,000 names, never an overflowing queue), and a
//! pass observes every dirty topic on both sides in batched requests, plans each one with the
//! pure 3-way merge, sends Kafka the changes in batched admin requests, then writes Kubernetes
//! (bounded concurrency), the state store and statuses. Every poll interval a full pass observes
//! all of Kafka, which is how Kafka-side changes are seen under KRaft (no watches).
//!
//! Stages of a pass, run per chunk of `OXBOW_PASS_CHUNK_TOPICS` topics (so its memory does not
//! grow with the topic count): observe, plan, act on Kafka (`act_kafka`), read the changes back
//! (`KafkaSide::confirm`), then hand the Kubernetes writes and reports to a batch (`act_kube`).
//!
//! A chunk's batch runs in the background while the next chunk or pass observes, plans and acts
//! on Kafka, so that the API server, the slowest part, is never left waiting on Kafka; one batch
//! runs at a time. It changes the resources (spec, existence, finalizers), then writes the state
//! store, then the statuses and Events (`run_writes`). So a base is never durable before the
//! spec write it assumes (the store writes the entry it replaced until the write lands, see
//! `StateStore::set_ahead`), and a status never says Ready before its base is durable: an
//! operator killed at any point restarts from a base both sides agree with. A topic with writes
//! in flight is left out of passes until they land.
//!
//! Both sides are read from caches that lag: the `KafkaTopic` watch cache, and each broker's
//! copy of the cluster metadata (seconds behind the controller under load). The rules that
//! keep a stale read from being mistaken for a change: a topic is created or changed only once
//! its `KafkaTopic` carries the finalizer; a base is stored only once Kafka shows the change
//! (and the spec write, if any, succeeded); a topic this operator deleted is hidden by its
//! topic ID until Kafka stops showing it; a topic is deleted because its `KafkaTopic` vanished
//! only after a fresh LIST agrees; "already exists" for a topic seen missing is a stale read,
//! decided again later.
//! May touch: `KafkaTopic`s (spec, finalizers, status) and state ConfigMaps in the watched
//! namespace, Events, and Kafka topics.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{FutureExt, StreamExt, stream};
use k8s_openapi::{
    api::core::v1::ConfigMap, apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    runtime::{
        WatchStreamExt,
        events::{Event, EventType, Recorder, Reporter},
        reflector::{self, ObjectRef, Store},
        watcher,
        watcher::Event as WatchEvent,
    },
};
use oxbow_runtime::http::Readiness;
use prometheus::{Gauge, IntCounter, IntGauge, Registry};
use serde_json::json;
use shared_crds::{KafkaTopic, labels};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::{
    config::Config,
    convert::{self, Handling},
    kafka::{
        Absences, Expected, Failure, KafkaSide, KafkaView, TOPIC_ALREADY_EXISTS,
        TOPIC_DELETION_DISABLED, Tombstones, UNKNOWN_TOPIC_OR_PARTITION,
    },
    plan::{
        AdminOp, BatchLimits, KafkaAction, SpecAction, TopicPlan, batch_admin_ops,
        plan_topic_in_cluster,
    },
    retry::{Attempts, Backoff, Holds, Input, Next},
    state_store::{FIELD_MANAGER, StateStore, StateStoreError},
    status::{Outcome, Warning, WarningUpdate, build_status, status_changed},
};

/// How long dirty names are collected before a pass, so a burst becomes one batched pass.
const DEBOUNCE: Duration = Duration::from_millis(25);
/// How long a targeted pass waits, at most, for the Kubernetes writes of the one before.
const LINGER: Duration = Duration::from_millis(200);
/// Wait before reading again a change Kafka accepted but did not show yet (not a failure).
const RECHECK_AFTER: Duration = Duration::from_secs(2);
const KIND: &str = "KafkaTopic";

/// Metrics specific to the topic operator (the shared reconcile and admin metrics come from
/// `oxbow_runtime`).
#[derive(Clone)]
pub struct TopicMetrics {
    pub reconcile: oxbow_runtime::metrics::ReconcileMetrics,
    /// Seconds the last full observation of Kafka took.
    pub last_poll_duration: Gauge,
    /// Passes run.
    pub passes: IntCounter,
    /// Writes to Kubernetes (spec, finalizers, status, state ConfigMaps, creates, deletes).
    pub kube_writes: IntCounter,
    /// Topics not sent to Kafka for now: refused (waiting for a change) or backing off.
    pub held_topics: IntGauge,
}

impl TopicMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let last_poll_duration = Gauge::new(
            "oxbow_topic_operator_kafka_poll_duration_seconds",
            "Duration of the last full observation of Kafka's topics",
        )?;
        let passes = IntCounter::new("oxbow_topic_operator_passes_total", "Sync passes run")?;
        let kube_writes = IntCounter::new(
            "oxbow_topic_operator_kube_writes_total",
            "Writes the topic operator made to Kubernetes",
        )?;
        registry.register(Box::new(last_poll_duration.clone()))?;
        registry.register(Box::new(passes.clone()))?;
        let held_topics = IntGauge::new(
            "oxbow_topic_operator_held_topics",
            "Topics not sent to Kafka for now: refused until their input changes, or backing off after a transient failure",
        )?;
        registry.register(Box::new(kube_writes.clone()))?;
        registry.register(Box::new(held_topics.clone()))?;
        Ok(TopicMetrics {
            reconcile: oxbow_runtime::metrics::ReconcileMetrics::register(registry)?,
            last_poll_duration,
            passes,
            kube_writes,
            held_topics,
        })
    }
}

/// Topic names waiting for a pass; a set, so repeated events for one topic cost nothing.
#[derive(Default)]
struct Dirty {
    names: Mutex<HashSet<String>>,
    notify: Notify,
}

impl Dirty {
    fn mark(&self, name: String) {
        self.names.lock().expect("dirty set lock").insert(name);
        self.notify.notify_one();
    }
    fn take(&self) -> HashSet<String> {
        std::mem::take(&mut *self.names.lock().expect("dirty set lock"))
    }
    fn len(&self) -> usize {
        self.names.lock().expect("dirty set lock").len()
    }
}

/// What a watch event must change to be worth a pass: the operator's own status writes
/// change none of it, so they do not trigger passes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    generation: Option<i64>,
    deleting: bool,
    finalized: bool,
    managed: Option<String>,
    paused: Option<String>,
    topic: String,
}

/// The last fingerprint seen of each `KafkaTopic`, by resource name. Shared by the watch and
/// the passes: a pass that changed a resource itself (added the finalizer) records the result,
/// so that the watch event of its own write does not cause another pass.
type Seen = Arc<Mutex<HashMap<String, Fingerprint>>>;

fn fingerprint(kt: &KafkaTopic) -> Fingerprint {
    let a = kt.metadata.annotations.as_ref();
    Fingerprint {
        generation: kt.metadata.generation,
        deleting: kt.metadata.deletion_timestamp.is_some(),
        finalized: kt.finalizers().iter().any(|f| f == labels::TOPIC_FINALIZER),
        managed: a.and_then(|a| a.get(labels::MANAGED)).cloned(),
        paused: a.and_then(|a| a.get(labels::PAUSE_RECONCILIATION)).cloned(),
        topic: kt.topic_name().to_owned(),
    }
}

/// Runs the operator until the process ends.
pub async fn run(
    cfg: Config,
    client: Client,
    kafka: KafkaSide,
    metrics: TopicMetrics,
    readiness: Readiness,
) -> anyhow::Result<()> {
    let topics: Api<KafkaTopic> = Api::namespaced(client.clone(), &cfg.namespace);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &cfg.namespace);
    let (reader, writer) = reflector::store();
    let dirty = Arc::new(Dirty::default());

    let selector = format!("{}={}", labels::CLUSTER, cfg.cluster);
    let watch = watcher(topics.clone(), watcher::Config::default().labels(&selector))
        .default_backoff()
        // Only what the operator reads is kept (managedFields alone are larger than the rest).
        .modify(convert::slim)
        .reflect(writer);
    let seen: Seen = Arc::default();
    {
        let dirty = dirty.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut watch = std::pin::pin!(watch);
            while let Some(event) = watch.next().await {
                match event {
                    Ok(WatchEvent::Apply(kt) | WatchEvent::InitApply(kt)) => {
                        let key = kt.name_any();
                        let fp = fingerprint(&kt);
                        let mut seen = seen.lock().expect("seen lock");
                        if seen.get(&key) != Some(&fp) {
                            if let Some(old) = seen.get(&key).filter(|old| old.topic != fp.topic) {
                                dirty.mark(old.topic.clone());
                            }
                            dirty.mark(fp.topic.clone());
                            seen.insert(key, fp);
                        }
                    }
                    Ok(WatchEvent::Delete(kt)) => {
                        seen.lock().expect("seen lock").remove(&kt.name_any());
                        dirty.mark(kt.topic_name().to_owned());
                    }
                    Ok(WatchEvent::Init | WatchEvent::InitDone) => {}
                    Err(e) => warn!(error = %e, "KafkaTopic watch failed; retrying"),
                }
            }
        });
    }
    reader.wait_until_ready().await?;
    info!("KafkaTopics listed");

    let store = StateStore::load(config_maps.clone(), &cfg.cluster).await?;
    info!(topics = store.len(), "topic state loaded");
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let mut op = Operator {
        cfg,
        topics,
        kafka,
        reader,
        store,
        recorder,
        metrics,
        brokers: None,
        dirty: dirty.clone(),
        tombstones: Tombstones::default(),
        absences: Absences::default(),
        holds: Holds::new(Backoff::default()),
        kube_attempts: HashMap::new(),
        seen,
        in_flight: None,
        flushing: None,
    };
    // Consecutive failed passes (Kafka or the API server unreachable): retried with a growing
    // delay, reset by the first pass that works.
    let backoff = Backoff::default();
    let mut pass_attempts = Attempts::default();

    // The first full pass lists both sides; after it the operator is ready.
    loop {
        match op.pass(Scope::Full).await {
            Ok(()) => break,
            Err(e) => {
                let delay = pass_attempts.failed(&backoff);
                warn!(error = %e, retry_in_s = delay.as_secs(), "initial sync failed; retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
    pass_attempts.succeeded();
    readiness.set_ready(true);
    info!("initial sync done; ready");

    let mut poll = tokio::time::interval(op.cfg.kafka_poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    poll.tick().await;
    let mut full = tokio::time::interval(op.cfg.full_reconciliation_interval);
    full.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    full.tick().await;
    loop {
        // Writes that finished since the last pass: their outcomes taken in, and what the
        // store still has unwritten written, without waiting for another pass.
        if op.in_flight.as_ref().is_some_and(|f| f.task.is_finished()) {
            op.settle().await;
        }
        op.flush_store();
        op.metrics.reconcile.queue_for(KIND).set(dirty.len() as i64);
        let scope = tokio::select! {
            _ = dirty.notify.notified() => {
                tokio::time::sleep(DEBOUNCE).await;
                // During a burst, writes are in flight: waiting a little for them makes fewer,
                // larger passes, and leaves the cores to the API server (1,000 deletions took
                // 80 passes of 30 to 100 topics without this).
                if let Some(f) = &op.in_flight {
                    let _ = tokio::time::timeout(LINGER, f.done.notified()).await;
                }
                Scope::Targeted(dirty.take())
            }
            _ = poll.tick() => Scope::Full,
            _ = full.tick() => {
                // Brokers' settings that refused a topic cannot be observed: try each once more.
                op.holds.forget_refusals();
                // No base may be held back by writes in flight while the store is read again.
                op.settle().await;
                op.finish_flush().await;
                if let Err(e) = op.store.reload().await {
                    warn!(error = %e, "reloading the topic state failed; keeping the one in memory");
                }
                Scope::Full
            }
        };
        if let Scope::Targeted(names) = &scope
            && names.is_empty()
        {
            continue;
        }
        match op.pass(scope.clone()).await {
            Ok(()) => pass_attempts.succeeded(),
            Err(e) => {
                let delay = pass_attempts.failed(&backoff);
                warn!(error = %e, retry_in_s = delay.as_secs(), "sync pass failed; retrying");
                if let Scope::Targeted(names) = scope {
                    for n in names {
                        dirty.mark(n);
                    }
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Scope {
    Full,
    Targeted(HashSet<String>),
}

struct Operator {
    cfg: Config,
    topics: Api<KafkaTopic>,
    kafka: KafkaSide,
    reader: Store<KafkaTopic>,
    store: StateStore,
    recorder: Recorder,
    metrics: TopicMetrics,
    brokers: Option<u32>,
    dirty: Arc<Dirty>,
    tombstones: Tombstones,
    /// Known topics missing from Kafka's metadata, until their absence is proven.
    absences: Absences,
    /// Topics not to send to Kafka for now (refused, or backing off).
    holds: Holds,
    /// Consecutive failed Kubernetes writes per topic, for the delay before the next try.
    kube_attempts: HashMap<String, Attempts>,
    seen: Seen,
    /// The last batch of Kubernetes writes, while it runs.
    in_flight: Option<InFlight>,
    /// The last write of the state store started by the sync loop, while it runs.
    flushing: Option<tokio::task::JoinHandle<Result<usize, StateStoreError>>>,
}

/// A batch of Kubernetes writes running in the background.
struct InFlight {
    /// The topics it writes for.
    topics: HashSet<String>,
    task: tokio::task::JoinHandle<Batch>,
    /// Notified when the writes are done.
    done: Arc<Notify>,
    /// Topics passes skipped because they were in flight.
    deferred: HashSet<String>,
}

/// One topic's decisions within a pass.
struct TopicWork {
    topic: String,
    /// The `KafkaTopic` that manages the topic, if any.
    owner: Option<Arc<KafkaTopic>>,
    kind: WorkKind,
}

enum WorkKind {
    /// Synced by the 3-way merge.
    Plan(TopicPlan),
    /// Add the finalizer, and nothing else: a topic is created or changed only once its
    /// `KafkaTopic` carries the finalizer, so that deleting the resource always deletes it.
    /// Adding it changes the resource, which brings it back in the next pass.
    Guard,
    /// The owner is being deleted: delete the topic (if `delete_topic`), then release it.
    Finalize { delete_topic: bool },
    /// Report only (unmanaged, paused, excluded).
    Report(Outcome),
}

impl Operator {
    /// One pass over the scope's topics, in chunks of `OXBOW_PASS_CHUNK_TOPICS` (500 by
    /// default): each chunk is observed, planned and acted on before the next, so what a pass
    /// holds at once (Kafka's view, the plans, the writes) is bounded by the chunk, whatever the
    /// number of topics.
    async fn pass(&mut self, scope: Scope) -> anyhow::Result<()> {
        // Names marked dirty until a full pass starts are covered by it: taken, so that a
        // targeted pass does not do them again right after (it did, 382 of 659 topics), and
        // given back if the pass fails.
        let taken = match scope {
            Scope::Full => self.dirty.take(),
            Scope::Targeted(_) => HashSet::new(),
        };
        let result = self.pass_over(scope, &taken).await;
        if result.is_err() {
            for name in taken {
                self.dirty.mark(name);
            }
        }
        result
    }

    async fn pass_over(&mut self, scope: Scope, taken: &HashSet<String>) -> anyhow::Result<()> {
        let started = Instant::now();
        self.metrics.passes.inc();
        let full = matches!(scope, Scope::Full);

        let mut observing = Duration::ZERO;
        let names: Vec<String> = match scope {
            Scope::Full => {
                let listing = Instant::now();
                let listed = self.kafka.list_managed().await?;
                observing += listing.elapsed();
                self.brokers = Some(self.kafka.brokers().await?);
                let mut names: BTreeSet<String> = listed.into_iter().collect();
                names.extend(
                    self.reader
                        .state()
                        .iter()
                        .map(|kt| kt.topic_name().to_owned()),
                );
                names.extend(self.store.topics());
                names.extend(taken.iter().cloned());
                names.into_iter().collect()
            }
            Scope::Targeted(names) => {
                if self.brokers.is_none() {
                    self.brokers = Some(self.kafka.brokers().await?);
                }
                let mut names: Vec<String> = names.into_iter().collect();
                names.sort_unstable();
                names
            }
        };
        let brokers = self.brokers.unwrap_or(u32::MAX);

        // Topics the pass had work for: after a full pass, holds and retry counts of the others
        // (topics gone from both sides) are forgotten.
        let mut in_pass: HashSet<String> = HashSet::new();
        // Topics with Kubernetes writes in flight wait for them: their stored base is ahead of
        // what the watch cache shows until the writes land. They are marked for the next pass.
        if self
            .in_flight
            .as_ref()
            .is_some_and(|f| f.task.is_finished())
        {
            self.settle().await;
        }
        let names: Vec<String> = match self.in_flight.as_mut() {
            None => names,
            Some(f) => {
                let (busy, free): (Vec<String>, Vec<String>) =
                    names.into_iter().partition(|n| f.topics.contains(n));
                f.deferred.extend(busy.iter().cloned());
                if full {
                    in_pass.extend(busy);
                }
                free
            }
        };
        for chunk in names.chunks(self.cfg.pass_chunk) {
            let observe = Instant::now();
            let view = self.kafka.observe(chunk.iter().cloned()).await?;
            observing += observe.elapsed();
            debug!(
                topics = chunk.len(),
                in_kafka = view.topics.len(),
                took_ms = observe.elapsed().as_millis() as u64,
                "chunk observed"
            );
            let owners = self.owners(|t| in_sorted(chunk, t));
            let worked = self.pass_chunk(chunk, view, &owners, brokers).await;
            if full {
                in_pass.extend(worked);
            }
        }
        if full {
            self.metrics.last_poll_duration.set(observing.as_secs_f64());
            self.holds.retain(|t| in_pass.contains(t));
            self.kube_attempts
                .retain(|t, _| in_pass.contains(t.as_str()));
        }
        self.metrics
            .reconcile
            .duration_for(KIND)
            .observe(started.elapsed().as_secs_f64());
        debug!(
            full,
            topics = names.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "pass done"
        );
        Ok(())
    }

    /// Plans and acts on one chunk of a pass: `names`, sorted, with `view`, what Kafka showed
    /// of them. Returns the topics it had work for.
    async fn pass_chunk(
        &mut self,
        names: &[String],
        mut view: KafkaView,
        owners: &HashMap<String, Vec<Arc<KafkaTopic>>>,
        brokers: u32,
    ) -> Vec<String> {
        let started = Instant::now();
        // A tombstone ends when a topic asked for is missing from the view; topics of other
        // chunks are not asked for here.
        self.tombstones
            .hide(&mut view, |t| in_sorted(names, t), Instant::now());

        // Plan.
        let mut work = Vec::new();
        let mut losers = Vec::new();
        for topic in names {
            let group = owners.get(topic).map(Vec::as_slice).unwrap_or_default();
            let (owner, rest) = match group.split_first() {
                Some((first, rest)) => (Some(first.clone()), rest),
                None => (None, &[][..]),
            };
            for loser in rest {
                losers.push((loser.clone(), owner.clone().expect("a group has a first")));
            }
            if let Some(w) = self.plan_topic(topic, owner, &view, brokers) {
                work.push(w);
            }
        }

        let work = self.confirm_kubernetes_deletions(work).await;
        let work = self.confirm_kafka_deletions(work, &view).await;
        let work = self.finalize_and_plan(work, &view, brokers).await;
        let worked: Vec<String> = work.iter().map(|w| w.topic.clone()).collect();
        let planned = Instant::now();

        // Held topics are not sent: refused ones wait for a change of their input, the others
        // for the end of their backoff. Their last failure is reported again.
        let now = Instant::now();
        let held: HashMap<String, Failure> = work
            .iter()
            .filter_map(|w| {
                let deleting = sends_to_kafka(w)?;
                let input = input_of(w, &view, brokers);
                self.holds
                    .held(&w.topic, &input, deleting, now)
                    .map(|f| (w.topic.clone(), f))
            })
            .collect();

        // Act on Kafka.
        let mut failures = self.act_kafka(&work, &held).await;
        let acted = Instant::now();
        // "Already exists" for a topic this pass saw missing: the view was a lagging broker's
        // copy of the metadata. Nothing is wrong and nothing is known yet; decide next time,
        // without reporting a failure.
        let lagging: HashSet<String> = work
            .iter()
            .filter(|w| matches!(&w.kind, WorkKind::Plan(p) if matches!(p.kafka, KafkaAction::Create(_))))
            .filter(|w| failures.get(&w.topic).is_some_and(|f| f.code == Some(TOPIC_ALREADY_EXISTS)))
            .map(|w| w.topic.clone())
            .collect();
        let work: Vec<TopicWork> = work
            .into_iter()
            .filter(|w| !lagging.contains(&w.topic))
            .collect();
        for topic in &lagging {
            failures.remove(topic);
            self.dirty_after(topic, RECHECK_AFTER);
        }
        self.record_outcomes(&work, &held, &failures, &view, brokers, now);
        failures.extend(held);
        // Read the changes back (and, for topics just created, their IDs and broker-default
        // counts): only what Kafka shows may become the base.
        let expected: Vec<(String, Expected)> = work
            .iter()
            .filter(|w| !failures.contains_key(&w.topic))
            .filter_map(|w| expected_after(w).map(|e| (w.topic.clone(), e)))
            .collect();
        let (confirmed, unconfirmed) = if expected.is_empty() {
            (KafkaView::default(), HashSet::new())
        } else {
            self.kafka.confirm(expected).await
        };
        let read_back = Instant::now();
        // Deletions not visible yet: hide the deleted topics until they are.
        for w in &work {
            let deleted = match failures.get(&w.topic) {
                None => unconfirmed.contains(&w.topic),
                Some(f) => f.code == Some(UNKNOWN_TOPIC_OR_PARTITION),
            };
            if deleted
                && expected_after(w) == Some(Expected::Absent)
                && let Some(id) = view
                    .topics
                    .get(&w.topic)
                    .and_then(|t| t.topic_id.as_deref())
            {
                self.tombstones.record(&w.topic, id, Instant::now());
            }
        }
        if !unconfirmed.is_empty() {
            debug!(
                topics = unconfirmed.len(),
                "changes not visible in Kafka yet; deciding them again later"
            );
        }

        // Act on Kubernetes and report.
        let unconfirmed_count = unconfirmed.len();
        self.act_kube(work, losers, &view, &confirmed, &unconfirmed, &failures)
            .await;
        // Where a chunk's time goes, for tuning. Each stage waits for the one before; the last one
        // waits for the writes of the chunk before, and queues this chunk's.
        let ms = |from: Instant, to: Instant| to.duration_since(from).as_millis() as u64;
        debug!(
            topics = names.len(),
            worked = worked.len(),
            unconfirmed = unconfirmed_count,
            plan_and_finalizers_ms = ms(started, planned),
            kafka_ms = ms(planned, acted),
            read_back_ms = ms(acted, read_back),
            writes_queued_ms = ms(read_back, Instant::now()),
            "chunk done"
        );
        worked
    }

    /// Drops the deletion of topics whose `KafkaTopic` the cache lacks but the API server has.
    ///
    /// The plan deletes a topic whose `KafkaTopic` is absent while a base exists (the resource
    /// went away without its finalizer). The watch cache lags the API server, though: a
    /// `KafkaTopic` this operator created for a Kafka topic a moment ago may not be in it yet,
    /// and deleting the topic then would destroy a topic (and its data) that is still wanted.
    /// Such deletions are rare, so one fresh LIST before acting on them is cheap; when the LIST
    /// fails, nothing is deleted this pass.
    ///
    /// The LIST covers every `KafkaTopic` of the namespace, not only this cluster's: one that
    /// was relabelled to another cluster left the watch, but the user did not ask for its topic
    /// to be deleted. Its topic is kept, its state forgotten, and the operator's finalizer is
    /// released from it, so that deleting it later never hangs.
    async fn confirm_kubernetes_deletions(&self, work: Vec<TopicWork>) -> Vec<TopicWork> {
        let unowned_deletion = |w: &TopicWork| {
            w.owner.is_none()
                && matches!(&w.kind, WorkKind::Plan(p) if matches!(p.kafka, KafkaAction::Delete { .. }))
        };
        if !work.iter().any(unowned_deletion) {
            return work;
        }
        let listed: Option<Vec<KafkaTopic>> = match self.topics.list(&ListParams::default()).await {
            Ok(list) => Some(list.items),
            Err(e) => {
                warn!(error = %e, "listing KafkaTopics to confirm deletions failed; deleting nothing this pass");
                None
            }
        };
        let Some(listed) = listed else {
            return work.into_iter().filter(|w| !unowned_deletion(w)).collect();
        };
        let mut out = Vec::with_capacity(work.len());
        for w in work {
            if !unowned_deletion(&w) {
                out.push(w);
                continue;
            }
            let claimants: Vec<&KafkaTopic> = listed
                .iter()
                .filter(|kt| kt.topic_name() == w.topic)
                .collect();
            if claimants.is_empty() {
                out.push(w);
                continue;
            }
            debug!(topic = %w.topic, "a KafkaTopic still names the topic; topic kept");
            let ours =
                |kt: &KafkaTopic| kt.labels().get(labels::CLUSTER) == Some(&self.cfg.cluster);
            for kt in claimants {
                if !ours(kt) && kt.finalizers().iter().any(|f| f == labels::TOPIC_FINALIZER) {
                    info!(topic = %w.topic, resource = %kt.name_any(), "KafkaTopic moved to another cluster label: topic kept, finalizer released");
                    out.push(TopicWork {
                        topic: w.topic.clone(),
                        owner: Some(Arc::new(kt.clone())),
                        kind: WorkKind::Finalize {
                            delete_topic: false,
                        },
                    });
                }
            }
        }
        out
    }

    /// Holds back every plan that deletes a `KafkaTopic` because its topic is missing in Kafka
    /// until the absence is proven ([`Absences`]): it has lasted `kafka_deletion_confirm`, and
    /// a full listing and a description made now both lack the topic. Until then the topic is
    /// looked at again later; a topic Kafka shows again is forgotten, its `KafkaTopic` kept.
    async fn confirm_kafka_deletions(
        &mut self,
        work: Vec<TopicWork>,
        view: &KafkaView,
    ) -> Vec<TopicWork> {
        let deletes_resource =
            |w: &TopicWork| matches!(&w.kind, WorkKind::Plan(p) if p.spec == SpecAction::Delete);
        self.absences.retain(|t| !view.topics.contains_key(t));
        for w in work.iter().filter(|w| !deletes_resource(w)) {
            self.absences.forget(&w.topic);
        }
        let now = Instant::now();
        let mut due = Vec::new();
        for w in work.iter().filter(|w| deletes_resource(w)) {
            if self
                .absences
                .lasted(&w.topic, now, self.cfg.kafka_deletion_confirm)
            {
                due.push(w.topic.clone());
            } else {
                debug!(topic = %w.topic, "missing from Kafka's metadata; its KafkaTopic is deleted only if it stays missing");
                self.dirty_after(&w.topic, self.cfg.kafka_deletion_confirm);
            }
        }
        let mut proven: HashSet<String> = HashSet::new();
        if !due.is_empty() {
            let listed = self.kafka.admin.list_topic_names().await;
            let described = self.kafka.observe(due.iter().cloned()).await;
            match (listed, described) {
                (Ok(listed), Ok(described)) => {
                    let listed: HashSet<&str> = listed.iter().map(String::as_str).collect();
                    for topic in &due {
                        if listed.contains(topic.as_str()) || described.topics.contains_key(topic) {
                            info!(topic = %topic, "Kafka shows the topic again (an earlier read was stale): its KafkaTopic is kept");
                            self.absences.forget(topic);
                        } else {
                            proven.insert(topic.clone());
                        }
                    }
                }
                (Err(e), _) | (_, Err(e)) => {
                    warn!(error = %e, "re-reading Kafka to confirm deleted topics failed; deleting no KafkaTopic this pass");
                    for topic in &due {
                        self.dirty_after(topic, RECHECK_AFTER);
                    }
                }
            }
        }
        work.into_iter()
            .filter(|w| {
                if !deletes_resource(w) {
                    return true;
                }
                let go = proven.contains(&w.topic);
                if go {
                    info!(topic = %w.topic, "topic deleted in Kafka: deleting its KafkaTopic");
                    self.absences.forget(&w.topic);
                }
                go
            })
            .collect()
    }

    /// Adds the finalizer to the new `KafkaTopic`s of the pass, then plans those it was added
    /// to in the same pass. The finalizer is on the resource before its topic is created
    /// (deleting the resource then always deletes the topic), without a pass of its own: the
    /// patch's answer is the resource to plan with. The fingerprint the write will give is
    /// recorded before it is sent, since its watch event can arrive before the answer, so that
    /// the event does not start another pass (it did for about 400 of 1,000 new topics). A failed
    /// patch is retried with the Kubernetes write backoff.
    async fn finalize_and_plan(
        &mut self,
        work: Vec<TopicWork>,
        view: &KafkaView,
        brokers: u32,
    ) -> Vec<TopicWork> {
        let (guards, mut out): (Vec<TopicWork>, Vec<TopicWork>) = work
            .into_iter()
            .partition(|w| matches!(w.kind, WorkKind::Guard));
        if guards.is_empty() {
            return out;
        }
        let api = self.topics.clone();
        // What each resource's fingerprint was, restored if the patch fails.
        let mut before: HashMap<String, Option<Fingerprint>> = HashMap::new();
        {
            let mut seen = self.seen.lock().expect("seen lock");
            for w in &guards {
                let kt = w.owner.as_deref().expect("guard has an owner");
                let expected = Fingerprint {
                    finalized: true,
                    ..fingerprint(kt)
                };
                before.insert(kt.name_any(), seen.insert(kt.name_any(), expected));
            }
        }
        let results: Vec<(TopicWork, Result<KafkaTopic, kube::Error>)> = stream::iter(guards)
            .map(|w| {
                let api = api.clone();
                async move {
                    let kt = w.owner.clone().expect("guard has an owner");
                    let patch = finalizer_patch(&kt, true);
                    let r = api
                        .patch(
                            &kt.name_any(),
                            &PatchParams::default(),
                            &Patch::Json::<()>(patch),
                        )
                        .await
                        .map(|mut kt| {
                            // Slimmed at once, not after the whole batch: the answers' managedFields
                            // were half the operator's peak heap when kept (heaptrack, 3,000 topics).
                            convert::slim(&mut kt);
                            kt
                        });
                    (w, r)
                }
            })
            .buffer_unordered(self.cfg.kube_write_concurrency)
            .collect()
            .await;
        let backoff = Backoff::default();
        for (w, r) in results {
            match r {
                Ok(kt) => {
                    self.metrics.kube_writes.inc();
                    self.seen
                        .lock()
                        .expect("seen lock")
                        .insert(kt.name_any(), fingerprint(&kt));
                    let kt = Arc::new(kt);
                    let base = self.store.get(&w.topic);
                    let plan = plan_topic_in_cluster(
                        base.as_ref(),
                        Some(&convert::kube_state(&kt)),
                        view.topics.get(&w.topic),
                        self.cfg.sync,
                        brokers,
                    );
                    out.push(TopicWork {
                        topic: w.topic,
                        owner: Some(kt),
                        kind: WorkKind::Plan(plan),
                    });
                }
                Err(e) => {
                    warn!(topic = %w.topic, error = %e, "adding the finalizer failed; will retry");
                    let name = w.owner.as_deref().expect("guard has an owner").name_any();
                    let mut seen = self.seen.lock().expect("seen lock");
                    match before.remove(&name).flatten() {
                        Some(fp) => seen.insert(name, fp),
                        None => seen.remove(&name),
                    };
                    drop(seen);
                    let delay = self
                        .kube_attempts
                        .entry(w.topic.clone())
                        .or_default()
                        .failed(&backoff);
                    self.dirty_after(&w.topic, delay);
                }
            }
        }
        out
    }

    /// The `KafkaTopic`s of the topics `wanted` accepts, by topic name, the managing one first
    /// (oldest, then by name). Read from the watch cache when a chunk starts, so a pass never
    /// holds the copies of all its topics while its own status writes replace them in the
    /// cache (at 10,000 topics that doubled the cache's share of the heap).
    fn owners(&self, wanted: impl Fn(&str) -> bool) -> HashMap<String, Vec<Arc<KafkaTopic>>> {
        let mut owners: HashMap<String, Vec<Arc<KafkaTopic>>> = HashMap::new();
        for kt in self.reader.state() {
            if !wanted(kt.topic_name()) {
                continue;
            }
            owners
                .entry(kt.topic_name().to_owned())
                .or_default()
                .push(kt);
        }
        for group in owners.values_mut() {
            group.sort_by(|a, b| {
                (
                    a.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    a.name_any(),
                )
                    .cmp(&(
                        b.metadata.creation_timestamp.as_ref().map(|t| t.0),
                        b.name_any(),
                    ))
            });
        }
        owners
    }

    fn plan_topic(
        &mut self,
        topic: &str,
        owner: Option<Arc<KafkaTopic>>,
        view: &KafkaView,
        brokers: u32,
    ) -> Option<TopicWork> {
        let kafka = view.topics.get(topic);
        let base = self.store.get(topic);
        let managed_name = self.kafka.filter.is_managed(topic);
        let Some(kt) = owner else {
            if !managed_name {
                return None;
            }
            let plan = plan_topic_in_cluster(base.as_ref(), None, kafka, self.cfg.sync, brokers);
            return Some(TopicWork {
                topic: topic.into(),
                owner: None,
                kind: WorkKind::Plan(plan),
            });
        };
        let finalized = kt.finalizers().iter().any(|f| f == labels::TOPIC_FINALIZER);
        let handling = convert::handling(&kt);
        if kt.metadata.deletion_timestamp.is_some() {
            if !finalized {
                return None;
            }
            let delete_topic = handling == Handling::Managed && managed_name;
            return Some(TopicWork {
                topic: topic.into(),
                owner: Some(kt),
                kind: WorkKind::Finalize { delete_topic },
            });
        }
        let kind = if !managed_name {
            WorkKind::Report(Outcome::NotReady {
                reason: "TopicExcluded".into(),
                message: format!(
                    "topic {topic:?} is internal, does not match OXBOW_TOPIC_INCLUDE_PATTERN or matches OXBOW_TOPIC_EXCLUDE_PATTERN, so the operator does not manage it"
                ),
            })
        } else {
            match handling {
                Handling::Unmanaged => {
                    // Forget the base: managing it again later is an adoption, not a stale merge.
                    self.store.set(topic, None);
                    WorkKind::Report(Outcome::Unmanaged)
                }
                Handling::Paused => WorkKind::Report(Outcome::Paused),
                Handling::Managed if !finalized => WorkKind::Guard,
                Handling::Managed => {
                    let kube = convert::kube_state(&kt);
                    WorkKind::Plan(plan_topic_in_cluster(
                        base.as_ref(),
                        Some(&kube),
                        kafka,
                        self.cfg.sync,
                        brokers,
                    ))
                }
            }
        };
        Some(TopicWork {
            topic: topic.into(),
            owner: Some(kt),
            kind,
        })
    }

    /// Remembers what Kafka answered each topic sent this pass: a success ends its hold; a
    /// refusal holds it until its input changes; a transient failure holds it for a growing
    /// delay, after which it is marked for another pass.
    fn record_outcomes(
        &mut self,
        work: &[TopicWork],
        held: &HashMap<String, Failure>,
        failures: &HashMap<String, Failure>,
        view: &KafkaView,
        brokers: u32,
        now: Instant,
    ) {
        for w in work {
            let Some(deleting) = sends_to_kafka(w) else {
                continue;
            };
            if held.contains_key(&w.topic) {
                continue;
            }
            let failure = failures.get(&w.topic).filter(|f| match &w.kind {
                // Already gone, or kept by delete.topic.enable=false: the resource is released.
                WorkKind::Finalize { .. } => {
                    matches!(finalize_step(&w.topic, Some(f)), FinalizeStep::Retry(_))
                }
                _ => f.code != Some(UNKNOWN_TOPIC_OR_PARTITION) || !deletes(w),
            });
            let Some(f) = failure else {
                self.holds.succeeded(&w.topic);
                continue;
            };
            let input = input_of(w, view, brokers);
            match self.holds.failed(&w.topic, f, input, deleting, now) {
                Next::WaitForChange => info!(
                    topic = %w.topic,
                    reason = %f.reason,
                    "Kafka refused the request itself; not sending it again until the KafkaTopic, the topic or the brokers change"
                ),
                Next::RetryAfter(delay) => {
                    debug!(topic = %w.topic, reason = %f.reason, retry_in_s = delay.as_secs(), "Kafka request failed; retrying later");
                    self.dirty_after(&w.topic, delay);
                }
            }
        }
        self.metrics.held_topics.set(self.holds.len() as i64);
    }

    /// Sends every Kafka change of the pass in batched requests, except the held topics';
    /// returns the failed topics.
    async fn act_kafka(
        &self,
        work: &[TopicWork],
        held: &HashMap<String, Failure>,
    ) -> HashMap<String, Failure> {
        let mut ops: Vec<AdminOp> = Vec::new();
        for w in work.iter().filter(|w| !held.contains_key(&w.topic)) {
            match &w.kind {
                WorkKind::Plan(plan) => ops.extend(plan.kafka.admin_ops(&w.topic)),
                WorkKind::Finalize { delete_topic: true } => ops.push(AdminOp::DeleteTopic {
                    topic: w.topic.clone(),
                    partitions: None,
                }),
                _ => {}
            }
        }
        let mut failures = HashMap::new();
        for request in batch_admin_ops(ops, &BatchLimits::default()) {
            for (topic, outcome) in self.kafka.execute(&request).await {
                if let Err(f) = outcome {
                    // The first failure of a topic is the one to report.
                    failures.entry(topic).or_insert(f);
                }
            }
        }
        failures
    }

    async fn act_kube(
        &mut self,
        work: Vec<TopicWork>,
        losers: Vec<(Arc<KafkaTopic>, Arc<KafkaTopic>)>,
        view: &KafkaView,
        confirmed: &KafkaView,
        unconfirmed: &HashSet<String>,
        failures: &HashMap<String, Failure>,
    ) {
        let now = Time(Timestamp::now());
        let mut writes: Vec<KubeWrite> = Vec::new();
        for (loser, owner) in losers {
            if loser.metadata.deletion_timestamp.is_some() {
                writes.push(KubeWrite::Release(loser));
                continue;
            }
            let owner = format!(
                "{}/{}",
                owner.namespace().unwrap_or_default(),
                owner.name_any()
            );
            let status = build_status(
                &loser,
                &Outcome::Conflict { owner },
                None,
                WarningUpdate::Clear,
                &now,
            );
            self.count(&Outcome::Conflict {
                owner: String::new(),
            });
            if status_changed(&loser, &status) {
                writes.push(KubeWrite::Status(loser, status, Vec::new()));
            }
        }
        for w in work {
            let failure = failures.get(&w.topic);
            match w.kind {
                WorkKind::Finalize { .. } => {
                    let kt = w.owner.expect("finalize has an owner");
                    match finalize_step(&w.topic, failure) {
                        FinalizeStep::Release => {}
                        FinalizeStep::ReleaseWithWarning { reason, message } => {
                            writes.push(KubeWrite::Event(
                                kt.clone(),
                                EventType::Warning,
                                reason,
                                message,
                            ));
                        }
                        FinalizeStep::Retry(outcome) => {
                            // Keep the finalizer and tell the user why; the retry was scheduled
                            // with the failure (see `record_outcomes`).
                            let status =
                                build_status(&kt, &outcome, None, WarningUpdate::Keep, &now);
                            if status_changed(&kt, &status) {
                                writes.push(KubeWrite::Status(kt, status, Vec::new()));
                            }
                            continue;
                        }
                    }
                    // Forget the base whether or not the topic was deleted: a kept topic (paused,
                    // unmanaged, excluded) left with a base and no KafkaTopic would look like a
                    // KafkaTopic lost without its finalizer, and the next pass would delete it.
                    self.store.set(&w.topic, None);
                    writes.push(KubeWrite::Release(kt));
                }
                WorkKind::Guard => {
                    writes.push(KubeWrite::AddFinalizer(
                        w.owner.expect("guard has an owner"),
                    ));
                }
                WorkKind::Report(outcome) => {
                    let kt = w.owner.expect("report has an owner");
                    self.count(&outcome);
                    if !kt.finalizers().iter().any(|f| f == labels::TOPIC_FINALIZER) {
                        writes.push(KubeWrite::AddFinalizer(kt.clone()));
                    }
                    let status = build_status(&kt, &outcome, None, WarningUpdate::Keep, &now);
                    if status_changed(&kt, &status) {
                        writes.push(KubeWrite::Status(kt, status, Vec::new()));
                    }
                }
                WorkKind::Plan(plan) => {
                    self.report_plan(
                        &w.topic,
                        w.owner,
                        plan,
                        failure,
                        view,
                        confirmed,
                        unconfirmed,
                        &now,
                        &mut writes,
                    );
                }
            }
        }
        // The writes run while the operator goes on with the next chunk or pass (observing,
        // planning, Kafka); one batch at a time, so the batch before is settled first.
        self.settle().await;
        if writes.is_empty() {
            return;
        }
        let kinds = writes.iter().fold([0usize; 4], |mut n, w| {
            n[match w {
                KubeWrite::Status(..) => 0,
                KubeWrite::AddFinalizer(..) | KubeWrite::Release(..) => 1,
                KubeWrite::Create(..) | KubeWrite::Spec(..) | KubeWrite::Delete(..) => 2,
                KubeWrite::Event(..) => 3,
            }] += 1;
            n
        });
        debug!(
            writes = writes.len(),
            statuses = kinds[0],
            finalizers = kinds[1],
            resources = kinds[2],
            events = kinds[3],
            "writing to Kubernetes"
        );
        let topics: HashSet<String> = writes.iter().map(KubeWrite::topic).collect();
        let done = Arc::new(Notify::new());
        let task = tokio::spawn(run_writes(
            writes_by_topic(writes),
            self.topics.clone(),
            self.recorder.clone(),
            self.cfg.kube_write_concurrency,
            self.store.clone(),
            self.dirty.clone(),
            done.clone(),
        ));
        self.in_flight = Some(InFlight {
            topics,
            task,
            done,
            deferred: HashSet::new(),
        });
    }

    /// Waits for the Kubernetes writes in flight, if any, and takes in their outcomes: failed
    /// topics are retried after a growing delay, and the topics passes skipped meanwhile are
    /// marked for the next one. (The bases of failed spec writes went back in the batch.)
    async fn settle(&mut self) {
        let Some(InFlight {
            topics,
            task,
            deferred,
            ..
        }) = self.in_flight.take()
        else {
            return;
        };
        let results = match task.await {
            Ok(Batch {
                results,
                store_writes,
            }) => {
                self.metrics.kube_writes.inc_by(store_writes as u64);
                results
            }
            Err(e) => {
                // Which writes landed is unknown: each topic is decided again, from the old
                // base (a landed spec write then reads as a Kubernetes change of the value Kafka
                // already has, which is harmless).
                warn!(error = %e, "the Kubernetes writes stopped; deciding their topics again");
                for topic in &topics {
                    self.store.landed(topic, false);
                }
                for topic in topics.into_iter().chain(deferred) {
                    self.dirty.mark(topic);
                }
                return;
            }
        };
        let mut failed = 0;
        let mut succeeded_topics: HashSet<String> = HashSet::new();
        let mut retry_topics: HashSet<String> = HashSet::new();
        for (topic, r) in results {
            match r {
                Ok(()) => {
                    self.metrics.kube_writes.inc();
                    succeeded_topics.insert(topic);
                }
                Err(e) => {
                    failed += 1;
                    warn!(topic, error = %e, "Kubernetes write failed; will retry");
                    // A name already taken by a resource outside this operator's view (another
                    // cluster's label) stays taken: retrying soon would only repeat the refusal,
                    // so the next poll decides again.
                    let name_taken = matches!(
                        &e,
                        WriteFailure::Kube(kube::Error::Api(ae)) if ae.code == 409
                    );
                    if !name_taken {
                        retry_topics.insert(topic);
                    }
                }
            }
        }
        // One delay per topic and batch, however many of its writes failed; growing while they
        // keep failing (RBAC taken away, an admission webhook refusing), reset once all work.
        for topic in succeeded_topics.difference(&retry_topics) {
            self.kube_attempts.remove(topic);
        }
        let backoff = Backoff::default();
        for topic in retry_topics {
            let delay = self
                .kube_attempts
                .entry(topic.clone())
                .or_default()
                .failed(&backoff);
            self.dirty_after(&topic, delay);
        }
        if failed > 0 {
            warn!(failed, "some Kubernetes writes failed");
        }
        for topic in deferred {
            self.dirty.mark(topic);
        }
    }

    /// Starts writing what the store has unwritten (bases that changed with no Kubernetes
    /// write, entries of deleted topics), in the background, unless a flush it started runs
    /// still. Batches of writes flush the store themselves before their statuses.
    fn flush_store(&mut self) {
        if let Some(f) = self.flushing.take_if(|f| f.is_finished()) {
            self.count_flush(f.now_or_never());
        }
        if self.flushing.is_some() || !self.store.is_dirty() {
            return;
        }
        let store = self.store.clone();
        self.flushing = Some(tokio::spawn(async move { store.flush().await }));
    }

    /// Waits for the flush the sync loop started, if any.
    async fn finish_flush(&mut self) {
        if let Some(f) = self.flushing.take() {
            self.count_flush(Some(f.await));
        }
    }

    fn count_flush(
        &self,
        outcome: Option<Result<Result<usize, StateStoreError>, tokio::task::JoinError>>,
    ) {
        match outcome {
            Some(Ok(Ok(writes))) => self.metrics.kube_writes.inc_by(writes as u64),
            Some(Ok(Err(e))) => warn!(error = %e, "writing the topic state failed; will retry"),
            Some(Err(e)) => warn!(error = %e, "writing the topic state stopped; will retry"),
            None => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn report_plan(
        &mut self,
        topic: &str,
        owner: Option<Arc<KafkaTopic>>,
        mut plan: TopicPlan,
        failure: Option<&Failure>,
        view: &KafkaView,
        confirmed: &KafkaView,
        unconfirmed: &HashSet<String>,
        now: &Time,
        writes: &mut Vec<KubeWrite>,
    ) {
        if unconfirmed.contains(topic) {
            // Kafka accepted the change but does not show it yet: keep the old base, so that
            // the next pass cannot take the stale view for a change made in Kafka.
            plan.new_base = self.store.get(topic);
            self.dirty_after(topic, RECHECK_AFTER);
        }
        let observed = confirmed
            .topics
            .get(topic)
            .or_else(|| view.topics.get(topic));
        // Fill what Kafka chose for a topic just created (its ID, broker-default counts).
        if let (KafkaAction::Create(_), Some(obs), Some(base)) = (
            &plan.kafka,
            confirmed.topics.get(topic),
            plan.new_base.as_mut(),
        ) {
            base.topic_id = obs.topic_id.clone();
            base.partitions = base.partitions.or(obs.partitions);
            base.replicas = base.replicas.or(obs.replicas);
        }
        let topic_id = observed.and_then(|t| t.topic_id.clone());
        match (&plan.spec, owner) {
            (SpecAction::Create(state), None) => {
                let mut outcome = "success";
                if failure.is_none() {
                    let (name, body) = convert::new_topic_resource(
                        &self.cfg.namespace,
                        &self.cfg.cluster,
                        topic,
                        state,
                    );
                    let taken = self
                        .reader
                        .get(&ObjectRef::new(&name).within(&self.cfg.namespace))
                        .filter(|kt| kt.topic_name() != topic);
                    if let Some(other) = taken {
                        // A 32-bit hash suffix can collide, and a user may have named a
                        // resource after another topic: never take over someone else's resource.
                        warn!(
                            topic,
                            name,
                            other = other.topic_name(),
                            "the KafkaTopic name for this topic manages another topic; not creating one"
                        );
                        outcome = "KafkaTopicNameTaken";
                    } else {
                        writes.push(KubeWrite::Create(topic.to_owned(), body));
                        self.store.set_ahead(topic, plan.new_base.clone());
                    }
                }
                self.metrics
                    .reconcile
                    .reconciliations
                    .with_label_values(&[KIND, outcome])
                    .inc();
            }
            (_, None) => {
                // No KafkaTopic: only Kafka and the store change (topic deleted, or forgotten).
                match failure {
                    None => self.store.set(topic, plan.new_base.clone()),
                    Some(f) => {
                        warn!(topic, reason = %f.reason, message = %f.message, "Kafka refused a change")
                    }
                }
            }
            (spec, Some(kt)) => {
                let mut events = Vec::new();
                let outcome = match (failure, plan.refusals.first()) {
                    (Some(f), _) => Outcome::NotReady {
                        reason: f.reason.clone(),
                        message: f.message.clone(),
                    },
                    (None, Some(r)) => Outcome::NotReady {
                        reason: r.reason().into(),
                        message: r.to_string(),
                    },
                    (None, None) => Outcome::Synced,
                };
                let warnings: Vec<Warning> = plan
                    .warnings()
                    .iter()
                    .map(|c| Warning {
                        reason: c.reason().into(),
                        message: c.to_string(),
                    })
                    .collect();
                // One Event per reason: kube's recorder folds Events with the same reason about
                // the same object version into one series that keeps the first note, so a
                // second conflict's values would never be shown.
                let mut by_reason: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
                for w in &warnings {
                    by_reason.entry(&w.reason).or_default().push(&w.message);
                }
                for (reason, messages) in by_reason {
                    events.push((EventType::Warning, reason.to_owned(), messages.join("; ")));
                }
                let warning_update = if !warnings.is_empty() {
                    WarningUpdate::Set(warnings)
                } else if plan.has_actions() {
                    WarningUpdate::Clear
                } else {
                    WarningUpdate::Keep
                };
                if !kt.finalizers().iter().any(|f| f == labels::TOPIC_FINALIZER) {
                    writes.push(KubeWrite::AddFinalizer(kt.clone()));
                }
                if failure.is_none() {
                    match spec {
                        SpecAction::Update(update) => {
                            writes.push(KubeWrite::Spec(
                                kt.clone(),
                                convert::spec_update_patch(&kt, update),
                            ));
                        }
                        SpecAction::Delete => writes.push(KubeWrite::Delete(kt.clone())),
                        _ => {}
                    }
                    if matches!(spec, SpecAction::Update(_) | SpecAction::Delete) {
                        self.store.set_ahead(topic, plan.new_base.clone());
                    } else {
                        self.store.set(topic, plan.new_base.clone());
                    }
                }
                self.count(&outcome);
                // Ready means Kafka shows the topic: a topic just created but not visible yet
                // gets its status (with its topic ID) in a later pass.
                let not_visible_yet = unconfirmed.contains(topic)
                    && topic_id.is_none()
                    && outcome == Outcome::Synced
                    && events.is_empty();
                if !matches!(spec, SpecAction::Delete) && !not_visible_yet {
                    let status =
                        build_status(&kt, &outcome, topic_id.as_deref(), warning_update, now);
                    if status_changed(&kt, &status) {
                        // A new Ready=False reason is worth an Event too.
                        if let Outcome::NotReady { reason, message } = &outcome {
                            let was = kt
                                .status
                                .as_ref()
                                .and_then(|s| s.conditions.as_ref())
                                .and_then(|c| shared_crds::condition::find(c, "Ready"))
                                .and_then(|c| c.reason.clone());
                            if was.as_deref() != Some(reason) {
                                events.push((EventType::Warning, reason.clone(), message.clone()));
                            }
                        }
                        writes.push(KubeWrite::Status(kt, status, events));
                    } else {
                        for (t, r, m) in events {
                            writes.push(KubeWrite::Event(kt.clone(), t, r, m));
                        }
                    }
                }
            }
        }
    }

    fn count(&self, outcome: &Outcome) {
        let label = match outcome {
            Outcome::Synced | Outcome::Unmanaged | Outcome::Paused => "success",
            Outcome::NotReady { reason, .. } => reason.as_str(),
            Outcome::Conflict { .. } => "ResourceConflict",
        };
        self.metrics
            .reconcile
            .reconciliations
            .with_label_values(&[KIND, label])
            .inc();
    }

    /// Marks a topic for another pass after `delay`.
    fn dirty_after(&self, topic: &str, delay: Duration) {
        let dirty = self.dirty.clone();
        let topic = topic.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            dirty.mark(topic);
        });
    }
}

/// What to do with the finalizer of a `KafkaTopic` being deleted, after the topic's deletion.
#[derive(Debug, PartialEq, Eq)]
enum FinalizeStep {
    /// Deleted, or nothing to delete: release the resource.
    Release,
    /// Kafka will never delete it: release the resource and say that the topic was kept.
    ReleaseWithWarning { reason: String, message: String },
    /// A failure that may pass: keep the finalizer, report, retry.
    Retry(Outcome),
}

/// Decides [`FinalizeStep`] from the outcome of deleting `topic` (`None`: deleted, or not
/// asked to delete). An unknown topic is already gone, which is what was wanted; with
/// `delete.topic.enable=false` no retry can ever succeed, so holding the resource would only
/// block its deletion forever.
fn finalize_step(topic: &str, failure: Option<&Failure>) -> FinalizeStep {
    match failure {
        None => FinalizeStep::Release,
        Some(f) if f.code == Some(UNKNOWN_TOPIC_OR_PARTITION) => FinalizeStep::Release,
        Some(f) if f.code == Some(TOPIC_DELETION_DISABLED) => FinalizeStep::ReleaseWithWarning {
            reason: "TopicDeletionDisabled".into(),
            message: format!(
                "topic {topic:?} was kept: the brokers have delete.topic.enable=false"
            ),
        },
        Some(f) => FinalizeStep::Retry(Outcome::NotReady {
            reason: f.reason.clone(),
            message: format!("deleting the topic failed: {}", f.message),
        }),
    }
}

/// Whether the work sends Kafka a request: `Some(deleting)`, where `deleting` says it deletes
/// the topic of a `KafkaTopic` being deleted (never held waiting for a change).
fn sends_to_kafka(w: &TopicWork) -> Option<bool> {
    match &w.kind {
        WorkKind::Plan(p) if p.kafka != KafkaAction::Nothing => Some(false),
        WorkKind::Finalize { delete_topic: true } => Some(true),
        _ => None,
    }
}

/// Whether the work deletes the topic (an unknown topic is then what was wanted).
fn deletes(w: &TopicWork) -> bool {
    matches!(&w.kind, WorkKind::Plan(p) if matches!(p.kafka, KafkaAction::Delete { .. }))
        || matches!(w.kind, WorkKind::Finalize { delete_topic: true })
}

/// What the work's Kafka request depends on.
fn input_of(w: &TopicWork, view: &KafkaView, brokers: u32) -> Input {
    Input {
        generation: w.owner.as_ref().and_then(|kt| kt.metadata.generation),
        kafka: view.topics.get(&w.topic).cloned(),
        brokers,
    }
}

/// What Kafka must show once the work's Kafka action succeeded, if it has one.
fn expected_after(w: &TopicWork) -> Option<Expected> {
    match &w.kind {
        WorkKind::Plan(plan) => match &plan.kafka {
            KafkaAction::Nothing => None,
            KafkaAction::Create(state) => Some(Expected::Present {
                partitions: state.partitions,
                config: state.config.clone(),
            }),
            KafkaAction::Alter { .. } => plan.new_base.as_ref().map(|b| Expected::Present {
                partitions: b.partitions,
                config: b.config.clone(),
            }),
            KafkaAction::Delete { .. } => Some(Expected::Absent),
        },
        WorkKind::Finalize { delete_topic: true } => Some(Expected::Absent),
        _ => None,
    }
}

/// Whether `topic` is one of `names`, which a pass keeps sorted.
fn in_sorted(names: &[String], topic: &str) -> bool {
    names.binary_search_by(|n| n.as_str().cmp(topic)).is_ok()
}

/// What became of a batch of writes.
struct Batch {
    /// Each write to a resource, by topic.
    results: Vec<WriteResult>,
    /// State ConfigMaps written.
    store_writes: usize,
}

/// What became of one write, by topic.
type WriteResult = (String, Result<(), WriteFailure>);

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
enum WriteFailure {
    #[error(transparent)]
    Kube(kube::Error),
    #[error("not written before the topic state is stored: {0}")]
    NotStored(String),
}

/// The writes of a pass grouped by topic, each group in the order the pass made them; topics in
/// the order they first appear. A topic's writes must run in that order: the spec patch is
/// guarded by the `resourceVersion` the pass read, so a status write of the same resource
/// landing first would make it fail with a conflict (seen in the 3-way merge test), and the
/// status's `observedGeneration` belongs after the spec it reports on.
fn writes_by_topic(writes: Vec<KubeWrite>) -> Vec<Vec<KubeWrite>> {
    let mut groups: Vec<Vec<KubeWrite>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for w in writes {
        let i = *index.entry(w.topic()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[i].push(w);
    }
    groups
}

/// One write to Kubernetes.
enum KubeWrite {
    Create(String, serde_json::Value),
    Spec(Arc<KafkaTopic>, serde_json::Value),
    Delete(Arc<KafkaTopic>),
    AddFinalizer(Arc<KafkaTopic>),
    Release(Arc<KafkaTopic>),
    Status(
        Arc<KafkaTopic>,
        shared_crds::KafkaTopicStatus,
        Vec<(EventType, String, String)>,
    ),
    Event(Arc<KafkaTopic>, EventType, String, String),
}

impl KubeWrite {
    /// Whether the base stored for the topic assumes this write happened (it changes the spec
    /// or the resource's existence); statuses, finalizers and Events do not.
    fn makes_base_true(&self) -> bool {
        matches!(
            self,
            KubeWrite::Create(..) | KubeWrite::Spec(..) | KubeWrite::Delete(..)
        )
    }

    /// Whether it reports (a status, an Event) rather than changes the resource.
    fn reports(&self) -> bool {
        matches!(self, KubeWrite::Status(..) | KubeWrite::Event(..))
    }

    fn topic(&self) -> String {
        match self {
            KubeWrite::Create(t, _) => t.clone(),
            KubeWrite::Spec(kt, _)
            | KubeWrite::Delete(kt)
            | KubeWrite::AddFinalizer(kt)
            | KubeWrite::Release(kt)
            | KubeWrite::Status(kt, _, _)
            | KubeWrite::Event(kt, _, _, _) => kt.topic_name().to_owned(),
        }
    }

    async fn run(self, api: &Api<KafkaTopic>, recorder: &Recorder) -> Result<(), kube::Error> {
        let ssa = PatchParams::apply(FIELD_MANAGER).force();
        match self {
            KubeWrite::Create(_, body) => {
                // A real create, not an apply: an existing resource of that name (for example one
                // labelled for another cluster) must refuse it, never be taken over.
                let kt: KafkaTopic = serde_json::from_value(body)
                    .expect("new_topic_resource builds a valid KafkaTopic");
                let params = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..PostParams::default()
                };
                api.create(&params, &kt).await?;
            }
            KubeWrite::Spec(kt, body) => {
                let params = PatchParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..PatchParams::default()
                };
                api.patch(&kt.name_any(), &params, &Patch::Merge(&body))
                    .await?;
            }
            KubeWrite::Delete(kt) => {
                api.delete(&kt.name_any(), &DeleteParams::default()).await?;
            }
            KubeWrite::AddFinalizer(kt) => {
                let patch = finalizer_patch(&kt, true);
                api.patch(
                    &kt.name_any(),
                    &PatchParams::default(),
                    &Patch::Json::<()>(patch),
                )
                .await?;
            }
            KubeWrite::Release(kt) => {
                let patch = finalizer_patch(&kt, false);
                match api
                    .patch(
                        &kt.name_any(),
                        &PatchParams::default(),
                        &Patch::Json::<()>(patch),
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            KubeWrite::Status(kt, status, events) => {
                let body = json!({
                    "apiVersion": shared_crds::API_VERSION,
                    "kind": "KafkaTopic",
                    "status": status,
                });
                api.patch_status(&kt.name_any(), &ssa, &Patch::Apply(&body))
                    .await?;
                for (type_, reason, note) in events {
                    publish(recorder, &kt, type_, reason, note).await;
                }
            }
            KubeWrite::Event(kt, type_, reason, note) => {
                publish(recorder, &kt, type_, reason, note).await
            }
        }
        Ok(())
    }
}

async fn publish(
    recorder: &Recorder,
    kt: &KafkaTopic,
    type_: EventType,
    reason: String,
    note: String,
) {
    let event = Event {
        type_,
        reason,
        note: Some(note),
        action: "Sync".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &kt.object_ref(&())).await {
        warn!(error = %e, "publishing an Event failed");
    }
}

/// Runs a batch of writes, `concurrency` topics at a time, in three steps: each topic's changes
/// to its resource (spec, existence, finalizers) in order; then the state store, with the bases
/// those changes made true (and the old ones back where they failed); then the statuses and
/// Events that report them. A status that says Ready is thus never written before the base it
/// reports is durable: an operator killed in between would otherwise restart from the base
/// before, and take what happened meanwhile in Kafka for a Kubernetes change (or the reverse).
/// Then it wakes the sync loop to take in the outcomes (and a pass lingering for them).
async fn run_writes(
    groups: Vec<Vec<KubeWrite>>,
    api: Api<KafkaTopic>,
    recorder: Recorder,
    concurrency: usize,
    store: StateStore,
    dirty: Arc<Dirty>,
    done: Arc<Notify>,
) -> Batch {
    let started = Instant::now();
    // Each topic's changes run, then give back its reports, unless a change the base assumes
    // failed.
    let changed: Vec<(Vec<WriteResult>, Option<Vec<KubeWrite>>)> = stream::iter(groups)
        .map(|group| {
            let (api, recorder, store) = (&api, &recorder, &store);
            async move {
                let (changes, reports): (Vec<KubeWrite>, Vec<KubeWrite>) =
                    group.into_iter().partition(|w| !w.reports());
                let mut out = Vec::with_capacity(changes.len());
                let mut writes = changes.into_iter();
                let mut report = true;
                for w in writes.by_ref() {
                    let (topic, makes_base_true) = (w.topic(), w.makes_base_true());
                    let r = w.run(api, recorder).await.map_err(WriteFailure::Kube);
                    if makes_base_true {
                        store.landed(&topic, r.is_ok());
                    }
                    // A status written after a spec write that failed would report a spec that
                    // is not there; the retry writes both.
                    let stop = makes_base_true && r.is_err();
                    out.push((topic, r));
                    if stop {
                        report = false;
                        break;
                    }
                }
                for w in writes.filter(KubeWrite::makes_base_true) {
                    store.landed(&w.topic(), false);
                }
                (out, (report && !reports.is_empty()).then_some(reports))
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let changed_at = Instant::now();
    let stored = store.flush().await;
    let stored_at = Instant::now();
    let mut results: Vec<WriteResult> = Vec::new();
    let mut to_report: Vec<Vec<KubeWrite>> = Vec::new();
    for (out, reports) in changed {
        results.extend(out);
        let Some(group) = reports else {
            continue;
        };
        match &stored {
            Ok(_) => to_report.push(group),
            // Reported once the store is written, by the retry.
            Err(e) => results.push((
                group[0].topic(),
                Err(WriteFailure::NotStored(e.to_string())),
            )),
        }
    }
    let reported: Vec<Vec<WriteResult>> = stream::iter(to_report)
        .map(|group| {
            let (api, recorder) = (&api, &recorder);
            async move {
                let mut out = Vec::with_capacity(group.len());
                for w in group {
                    let topic = w.topic();
                    out.push((
                        topic,
                        w.run(api, recorder).await.map_err(WriteFailure::Kube),
                    ));
                }
                out
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.extend(reported.into_iter().flatten());
    let ms = |from: Instant, to: Instant| to.duration_since(from).as_millis() as u64;
    debug!(
        changes_ms = ms(started, changed_at),
        store_ms = ms(changed_at, stored_at),
        store_writes = stored.as_ref().ok(),
        reports_ms = ms(stored_at, Instant::now()),
        "batch done"
    );
    dirty.notify.notify_one();
    done.notify_one();
    Batch {
        results,
        store_writes: stored.unwrap_or(0),
    }
}

/// A JSON patch adding or removing the operator's finalizer, guarded by a test of the current
/// list so that a concurrent change by someone else makes the patch fail instead of clobbering.
fn finalizer_patch(kt: &KafkaTopic, add: bool) -> json_patch::Patch {
    let current: Vec<String> = kt.finalizers().to_vec();
    let ops = if add {
        if current.is_empty() {
            json!([
                { "op": "test", "path": "/metadata/finalizers", "value": null },
                { "op": "add", "path": "/metadata/finalizers", "value": [labels::TOPIC_FINALIZER] },
            ])
        } else {
            json!([
                { "op": "test", "path": "/metadata/finalizers", "value": current },
                { "op": "add", "path": "/metadata/finalizers/-", "value": labels::TOPIC_FINALIZER },
            ])
        }
    } else {
        match current.iter().position(|f| f == labels::TOPIC_FINALIZER) {
            Some(i) => json!([
                { "op": "test", "path": format!("/metadata/finalizers/{i}"), "value": labels::TOPIC_FINALIZER },
                { "op": "remove", "path": format!("/metadata/finalizers/{i}") },
            ]),
            None => json!([]),
        }
    };
    serde_json::from_value(ops).expect("a valid JSON patch")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32, reason: &str, message: &str) -> Failure {
        Failure {
            reason: reason.into(),
            message: message.into(),
            code: Some(code),
        }
    }

    fn kafka_topic(name: &str) -> Arc<KafkaTopic> {
        Arc::new(KafkaTopic::new(
            name,
            shared_crds::KafkaTopicSpec {
                topic_name: None,
                partitions: None,
                replicas: None,
                config: None,
            },
        ))
    }

    fn kind(w: &KubeWrite) -> &'static str {
        match w {
            KubeWrite::Create(..) => "create",
            KubeWrite::Spec(..) => "spec",
            KubeWrite::Delete(..) => "delete",
            KubeWrite::AddFinalizer(..) => "finalizer",
            KubeWrite::Release(..) => "release",
            KubeWrite::Status(..) => "status",
            KubeWrite::Event(..) => "event",
        }
    }

    #[test]
    fn a_topics_writes_stay_together_and_in_order() {
        let (a, b) = (kafka_topic("a"), kafka_topic("b"));
        let status = shared_crds::KafkaTopicStatus::default();
        let writes = vec![
            KubeWrite::Spec(a.clone(), json!({})),
            KubeWrite::Create("c".into(), json!({})),
            KubeWrite::Status(b.clone(), status.clone(), Vec::new()),
            KubeWrite::Status(a.clone(), status, Vec::new()),
            KubeWrite::Event(a, EventType::Warning, "R".into(), "n".into()),
            KubeWrite::Release(b),
        ];
        let groups: Vec<(String, Vec<&str>)> = writes_by_topic(writes)
            .iter()
            .map(|g| (g[0].topic(), g.iter().map(kind).collect()))
            .collect();
        assert_eq!(
            groups,
            [
                ("a".to_string(), vec!["spec", "status", "event"]),
                ("c".to_string(), vec!["create"]),
                ("b".to_string(), vec!["status", "release"]),
            ]
        );
    }

    #[test]
    fn a_deleted_or_already_missing_topic_releases_the_resource() {
        assert_eq!(finalize_step("t", None), FinalizeStep::Release);
        let unknown = failure(
            UNKNOWN_TOPIC_OR_PARTITION,
            "UnknownTopicOrPartition",
            "gone",
        );
        assert_eq!(finalize_step("t", Some(&unknown)), FinalizeStep::Release);
    }

    #[test]
    fn disabled_topic_deletion_releases_the_resource_with_a_warning() {
        let disabled = failure(TOPIC_DELETION_DISABLED, "TopicDeletionDisabled", "disabled");
        match finalize_step("orders", Some(&disabled)) {
            FinalizeStep::ReleaseWithWarning { reason, message } => {
                assert_eq!(reason, "TopicDeletionDisabled");
                assert!(
                    message.contains("\"orders\"") && message.contains("delete.topic.enable=false"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_deletion_failures_keep_the_finalizer_with_kafkas_message() {
        let denied = failure(29, "TopicAuthorizationFailed", "Authorization failed.");
        assert_eq!(
            finalize_step("t", Some(&denied)),
            FinalizeStep::Retry(Outcome::NotReady {
                reason: "TopicAuthorizationFailed".into(),
                message: "deleting the topic failed: Authorization failed.".into(),
            })
        );
    }
}
