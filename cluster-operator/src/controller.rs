//! Watch wiring: one kube-runtime controller per watched namespace (or one for all), whose
//! primary resource is `Kafka`; changes of its node pools (mapped by the cluster label) and of
//! the children it owns (by owner reference) trigger a reconcile of the Kafka.
//! May touch: nothing itself; `reconcile` does the work.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Pod, Service},
};
use kube::runtime::reflector::Store;
use kube::{
    Api, Client, ResourceExt,
    runtime::{Controller, controller::Action, reflector::ObjectRef, watcher},
};
use oxbow_runtime::http::Readiness;
use shared_crds::{Kafka, KafkaNodePool, labels};
use tracing::{debug, warn};

use crate::config::Namespaces;
use crate::context::Context;
use crate::reconcile::{self, ReconcileError};

/// How often `oxbow_resources` is recounted.
const RESOURCE_COUNT_INTERVAL: Duration = Duration::from_secs(5);

/// How soon a failed reconcile is tried again.
const ERROR_REQUEUE: Duration = Duration::from_secs(15);

fn error_policy(kafka: Arc<Kafka>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    warn!(
        kafka = %kafka.name_any(),
        namespace = %kafka.namespace().unwrap_or_default(),
        reason = error.reason(),
        error = %error,
        "reconcile failed; retrying"
    );
    ctx.metrics
        .reconciles
        .reconciliations
        .with_label_values(&["Kafka", error.reason()])
        .inc();
    Action::requeue(error.retry_after().unwrap_or(ERROR_REQUEUE))
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// One controller over `namespace` (`None`: every namespace): its cache of Kafkas, and the
/// future that runs it until shutdown.
fn controller_for(
    ctx: Arc<Context>,
    namespace: Option<String>,
) -> (Store<Kafka>, impl std::future::Future<Output = ()>) {
    let client = ctx.client.clone();
    let ns = namespace.as_deref();
    let owned = watcher::Config::default().labels(&format!("{}=Kafka", labels::KIND));
    let controller = Controller::new(api::<Kafka>(&client, ns), watcher::Config::default())
        .owns(api::<Pod>(&client, ns), owned.clone())
        .owns(api::<Service>(&client, ns), owned.clone())
        .owns(api::<ConfigMap>(&client, ns), owned.clone())
        .owns(api::<Deployment>(&client, ns), owned)
        .watches(
            api::<KafkaNodePool>(&client, ns),
            watcher::Config::default(),
            |pool: KafkaNodePool| {
                let cluster = pool.labels().get(labels::CLUSTER).cloned()?;
                let namespace = pool.namespace()?;
                Some(ObjectRef::<Kafka>::new(&cluster).within(&namespace))
            },
        )
        .shutdown_on_signal();
    let store = controller.store();
    let run = controller
        .run(reconcile::reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => debug!(kafka = %object.name, "reconciled"),
                Err(e) => debug!(error = %e, "controller event"),
            }
        });
    (store, run)
}

/// The state of a Kafka for `oxbow_resources`: `paused`, `ready` or `not_ready`.
pub fn state_of(kafka: &Kafka) -> &'static str {
    if labels::annotation_is_true(
        kafka.metadata.annotations.as_ref(),
        labels::PAUSE_RECONCILIATION,
    ) {
        return "paused";
    }
    let ready = kafka
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .is_some_and(shared_crds::condition::is_ready);
    if ready { "ready" } else { "not_ready" }
}

/// Keeps `oxbow_resources{kind="Kafka", state}` current from the controllers' caches.
async fn count_resources(ctx: Arc<Context>, stores: Vec<Store<Kafka>>) {
    loop {
        let mut counts: std::collections::BTreeMap<&str, i64> =
            [("paused", 0), ("ready", 0), ("not_ready", 0)].into();
        for store in &stores {
            for kafka in store.state() {
                *counts.entry(state_of(&kafka)).or_default() += 1;
            }
        }
        for (state, n) in counts {
            ctx.metrics
                .reconciles
                .resources
                .with_label_values(&["Kafka", state])
                .set(n);
        }
        tokio::time::sleep(RESOURCE_COUNT_INTERVAL).await;
    }
}

/// Runs the controllers for the configured namespaces; readiness turns true once they start.
pub async fn run(ctx: Arc<Context>, readiness: Readiness) {
    let namespaces: Vec<Option<String>> = match &ctx.config.namespaces {
        Namespaces::All => vec![None],
        Namespaces::List(list) => list.iter().cloned().map(Some).collect(),
    };
    let (stores, runs): (Vec<_>, Vec<_>) = namespaces
        .into_iter()
        .map(|ns| controller_for(ctx.clone(), ns))
        .unzip();
    let counter = tokio::spawn(count_resources(ctx.clone(), stores));
    readiness.set_ready(true);
    futures::future::join_all(runs).await;
    counter.abort();
}
