//! The report stage: the status of a Kafka and of its node pools. Statuses are built whole,
//! conditions keep their transition times when unchanged, and nothing is written when the
//! status would not change, so a reconcile of an unchanged cluster writes nothing.
//! May touch: the `status` subresource of Kafkas and KafkaNodePools.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
};
use serde_json::json;
use shared_crds::condition::{ConditionStatus, stamp_transitions};
use shared_crds::kafka::{KafkaStatus, ListenerStatus, UsedNodePoolStatus};
use shared_crds::node_pool::KafkaNodePoolStatus;
use shared_crds::{Condition, Kafka, KafkaNodePool, labels, names};

use crate::context::Context;
use crate::model::ResolvedCluster;
use crate::reconcile::ReconcileError;

/// The statuses this operator wrote last, by object UID, with the resourceVersion the write
/// produced. Reconciles read objects from a watch cache that can lag behind the operator's own
/// status write; without this, a reconcile right after a write would see the old status and
/// send the same status again.
#[derive(Default)]
pub struct WrittenStatuses(
    std::sync::Mutex<std::collections::HashMap<String, (u64, serde_json::Value)>>,
);

impl WrittenStatuses {
    /// True if `status` is what was last written to the object `uid` and the cached copy (at
    /// `cached_version`) is not newer than that write, so the cache merely lags.
    pub fn already_written(
        &self,
        uid: &str,
        cached_version: Option<&str>,
        status: &serde_json::Value,
    ) -> bool {
        let Some(cached) = cached_version.and_then(|v| v.parse::<u64>().ok()) else {
            return false;
        };
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(uid)
            .is_some_and(|(written, last)| cached <= *written && last == status)
    }

    /// Records a write that produced `version`.
    pub fn record(&self, uid: &str, version: Option<&str>, status: serde_json::Value) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match version.and_then(|v| v.parse::<u64>().ok()) {
            Some(v) => {
                map.insert(uid.to_owned(), (v, status));
            }
            None => {
                map.remove(uid);
            }
        }
    }

    /// Forgets an object (deleted).
    pub fn forget(&self, uid: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
    }
}

/// What the reconcile found out, for the Kafka's status.
pub struct ClusterReport<'a> {
    pub cluster: &'a ResolvedCluster,
    /// `Ready` first, then any `Warning`s.
    pub conditions: Vec<Condition>,
    pub listeners: Vec<ListenerStatus>,
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// The Kafka's status for `report`, conditions stamped against `previous`.
pub fn kafka_status(previous: Option<&KafkaStatus>, report: &ClusterReport<'_>) -> KafkaStatus {
    let cluster = report.cluster;
    let old_conditions = previous
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let ready = report
        .conditions
        .iter()
        .any(|c| c.is_true(shared_crds::condition::READY));
    KafkaStatus {
        conditions: Some(stamp_transitions(
            &old_conditions,
            report.conditions.clone(),
            &now(),
        )),
        observed_generation: cluster.generation,
        listeners: Some(report.listeners.clone()),
        kafka_node_pools: Some(
            cluster
                .pools
                .iter()
                .map(|p| UsedNodePoolStatus {
                    name: p.name.clone(),
                })
                .collect(),
        ),
        cluster_id: cluster.cluster_id.clone(),
        kafka_version: Some(cluster.kafka_version.clone()),
        kafka_metadata_version: Some(cluster.metadata_version.clone()),
        operator_last_successful_version: if ready {
            Some(env!("CARGO_PKG_VERSION").to_owned())
        } else {
            previous.and_then(|s| s.operator_last_successful_version.clone())
        },
    }
}

/// The status of node pool `pool` of `cluster`.
pub fn pool_status(
    cluster: &ResolvedCluster,
    pool: &KafkaNodePool,
    previous: Option<&KafkaNodePoolStatus>,
) -> Option<KafkaNodePoolStatus> {
    let name = pool.metadata.name.as_deref()?;
    let resolved = cluster.pool(name)?;
    let node_ids: Vec<i32> = resolved.node_ids.desired.iter().copied().collect();
    let selector = format!(
        "{}={},{}={},{}={}",
        labels::CLUSTER,
        cluster.name,
        labels::NAME,
        names::kafka_component(&cluster.name),
        labels::POOL_NAME,
        name
    );
    Some(KafkaNodePoolStatus {
        conditions: previous.and_then(|s| s.conditions.clone()),
        observed_generation: pool.metadata.generation,
        replicas: Some(node_ids.len() as i32),
        node_ids: Some(node_ids),
        cluster_id: cluster.cluster_id.clone(),
        roles: Some(resolved.roles.iter().copied().collect()),
        label_selector: Some(selector),
    })
}

async fn patch_kafka_status(
    ctx: &Context,
    kafka: &Kafka,
    status: &KafkaStatus,
) -> Result<(), ReconcileError> {
    if kafka.status.as_ref() == Some(status) {
        return Ok(());
    }
    if let (Ok(old), Ok(new)) = (
        serde_json::to_value(&kafka.status),
        serde_json::to_value(status),
    ) {
        tracing::debug!(
            kafka = %kafka.name_any(),
            differs = crate::act::first_difference(&old, &new).unwrap_or_default(),
            "writing the status"
        );
    }
    patch_status(ctx, kafka, "Kafka", status).await
}

/// Merge-patches the status of `object` (of kind `kind`) to `status`, unless this operator
/// already wrote exactly that and the cached copy merely lags (see [`WrittenStatuses`]).
async fn patch_status<K, S>(
    ctx: &Context,
    object: &K,
    kind: &'static str,
    status: &S,
) -> Result<(), ReconcileError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
    K::DynamicType: Default,
    S: serde::Serialize,
{
    let uid = object.uid().unwrap_or_default();
    let value = serde_json::to_value(status).unwrap_or_default();
    if ctx
        .written
        .already_written(&uid, object.resource_version().as_deref(), &value)
    {
        return Ok(());
    }
    ctx.metrics
        .writes
        .with_label_values(&[kind, "status"])
        .inc();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let written = api
        .patch_status(
            &object.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .map_err(ReconcileError::Status)?;
    ctx.written
        .record(&uid, written.resource_version().as_deref(), value);
    Ok(())
}

/// Writes the status of a reconciled cluster.
pub async fn write_kafka_status(
    ctx: &Context,
    kafka: &Kafka,
    report: &ClusterReport<'_>,
) -> Result<(), ReconcileError> {
    let status = kafka_status(kafka.status.as_ref(), report);
    patch_kafka_status(ctx, kafka, &status).await
}

/// Records a new cluster ID before anything uses it.
pub async fn write_cluster_id(
    ctx: &Context,
    kafka: &Kafka,
    id: &str,
) -> Result<(), ReconcileError> {
    let mut status = kafka.status.clone().unwrap_or_default();
    status.cluster_id = Some(id.to_owned());
    patch_kafka_status(ctx, kafka, &status).await
}

/// `Ready=False` with the validation error, the rest of the status kept.
pub async fn write_invalid(
    ctx: &Context,
    kafka: &Kafka,
    condition: Condition,
) -> Result<(), ReconcileError> {
    let mut status = kafka.status.clone().unwrap_or_default();
    let old = status.conditions.clone().unwrap_or_default();
    status.conditions = Some(stamp_transitions(&old, vec![condition], &now()));
    status.observed_generation = kafka.metadata.generation;
    patch_kafka_status(ctx, kafka, &status).await
}

/// `ReconciliationPaused=True`, the rest of the status kept.
pub async fn write_paused(ctx: &Context, kafka: &Kafka) -> Result<(), ReconcileError> {
    let mut status = kafka.status.clone().unwrap_or_default();
    let old = status.conditions.clone().unwrap_or_default();
    let paused = Condition::new(
        "ReconciliationPaused",
        ConditionStatus::True,
        "ReconciliationPaused",
        format!(
            "reconciliation is paused by the annotation {}: \"true\"",
            labels::PAUSE_RECONCILIATION
        ),
    );
    status.conditions = Some(stamp_transitions(&old, vec![paused], &now()));
    status.observed_generation = kafka.metadata.generation;
    patch_kafka_status(ctx, kafka, &status).await
}

/// Writes each node pool's status where it changed.
pub async fn write_pool_statuses(
    ctx: &Context,
    cluster: &ResolvedCluster,
    pools: &[KafkaNodePool],
) -> Result<(), ReconcileError> {
    for pool in pools {
        let Some(status) = pool_status(cluster, pool, pool.status.as_ref()) else {
            continue;
        };
        if pool.status.as_ref() == Some(&status) {
            continue;
        }
        patch_status(ctx, pool, "KafkaNodePool", &status).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OperatorDefaults, validate_cluster};
    use crate::test_fixtures;

    fn cluster(name: &str) -> (ResolvedCluster, Vec<KafkaNodePool>) {
        let f = test_fixtures::load(name);
        let c = validate_cluster(&f.kafka, &f.pools, &OperatorDefaults::default())
            .expect("valid")
            .cluster;
        (c, f.pools)
    }

    #[test]
    fn a_lagging_cache_does_not_cause_a_second_write() {
        let w = WrittenStatuses::default();
        let v = serde_json::json!({"clusterId": "x"});
        assert!(!w.already_written("u", Some("10"), &v));
        w.record("u", Some("12"), v.clone());
        // The cache still shows version 10 (before the write): skip.
        assert!(w.already_written("u", Some("10"), &v));
        assert!(w.already_written("u", Some("12"), &v));
        // Someone changed the object after the write: compare against it instead.
        assert!(!w.already_written("u", Some("13"), &v));
        // A different status is always written.
        assert!(!w.already_written("u", Some("10"), &serde_json::json!({"clusterId": "y"})));
        // Versions that are not numbers never skip.
        assert!(!w.already_written("u", Some("abc"), &v));
        w.forget("u");
        assert!(!w.already_written("u", Some("10"), &v));
    }

    #[test]
    fn a_second_status_of_the_same_report_is_identical() {
        let (c, _) = cluster("separate-roles");
        let report = ClusterReport {
            cluster: &c,
            conditions: vec![Condition::ready("Ready", "ok")],
            listeners: vec![],
        };
        let first = kafka_status(None, &report);
        let second = kafka_status(Some(&first), &report);
        assert_eq!(first, second);
        assert_eq!(
            first.kafka_version.as_deref(),
            Some(c.kafka_version.as_str())
        );
        assert_eq!(
            first.operator_last_successful_version.as_deref(),
            Some(env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn pool_status_lists_ids_roles_and_a_selector() {
        let (c, pools) = cluster("separate-roles");
        for pool in &pools {
            let s = pool_status(&c, pool, None).expect("pool of the cluster");
            let resolved = c.pool(pool.metadata.name.as_deref().unwrap()).unwrap();
            assert_eq!(s.replicas, Some(resolved.replicas));
            assert_eq!(
                s.node_ids.unwrap(),
                resolved
                    .node_ids
                    .desired
                    .iter()
                    .copied()
                    .collect::<Vec<_>>()
            );
            assert!(s.label_selector.unwrap().contains(&format!(
                "{}={}",
                labels::POOL_NAME,
                resolved.name
            )));
        }
    }
}
