//! The act stage for the topic and user operators' Roles and RoleBindings in namespaces other
//! than the Kafka's, which the Kafka cannot own (planned by `plan::rbac_elsewhere`): the Kafka's
//! finalizer `kafka.oxbow.rs/cluster-operator`, added by a guarded JSON patch before anything is
//! applied elsewhere; the deletion of the objects no longer desired on every reconcile, then the
//! finalizer's removal once none is desired; and, when the Kafka is being deleted, the deletion
//! of all of them before the finalizer is released.
//!
//! **Why a finalizer only while needed.** Without one, nothing runs between the deletion of the
//! Kafka and its disappearance, and objects elsewhere would stay forever. A finalizer on every
//! Kafka would also hold Kafkas that never had anything elsewhere whenever the cluster operator
//! is not running (uninstalled first, scaled to zero): those would wait for it for nothing. So
//! the finalizer is on a Kafka exactly while one of its operators watches another namespace (or
//! objects there are still to be deleted); it is added once and stays while that lasts, so a
//! reconcile of an unchanged Kafka writes nothing.
//!
//! **Deletion.** Runs even when the Kafka is paused (`oxbow.rs/pause-reconciliation`): pausing
//! stops changes to a running cluster, but a deleted Kafka's own children are removed by the
//! garbage collector regardless, and holding its objects elsewhere would only keep the Kafka
//! from going. Objects already gone count as deleted. A failure (say, the cluster operator lost
//! its rights in that namespace) keeps the finalizer, is logged and published as a `Warning`
//! Event on the Kafka naming the objects, the error and the way out (grant the rights, or remove
//! the finalizer by hand), and is retried with a growing delay (`plan::rbac_elsewhere::
//! retry_delay`).
//!
//! May touch: Roles and RoleBindings labelled for the Kafka in other namespaces (delete), the
//! Kafka's `metadata.finalizers` (get, JSON patch), Events about the Kafka.

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use serde_json::json;
use shared_crds::{Kafka, labels};
use tracing::{info, warn};

use crate::act::ActError;
use crate::context::Context;
use crate::observe;
use crate::plan::rbac_elsewhere::{
    RbacElsewherePlan, has_finalizer, plan_rbac_elsewhere, retry_delay,
};

/// Why handling the objects elsewhere failed.
#[derive(Debug, thiserror::Error)]
pub enum RbacElsewhereError {
    #[error("reading Kafka {name}: {source}")]
    ReadKafka { name: String, source: kube::Error },
    /// The Kafka went away or is being deleted: nothing may be applied elsewhere for it now
    /// (the next reconcile, if any, cleans up).
    #[error("Kafka {name} is gone or being deleted")]
    KafkaGoing { name: String },
    #[error("{action} the finalizer of Kafka {name}: {source}")]
    PatchFinalizer {
        action: &'static str,
        name: String,
        source: kube::Error,
    },
    #[error("{message}")]
    Cleanup {
        message: String,
        retry_after: Duration,
    },
}

impl RbacElsewhereError {
    /// Stable CamelCase reason for logs, Events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            RbacElsewhereError::ReadKafka { .. } => "ReadKafkaFailed",
            RbacElsewhereError::KafkaGoing { .. } => "KafkaBeingDeleted",
            RbacElsewhereError::PatchFinalizer { .. } => "FinalizerPatchFailed",
            RbacElsewhereError::Cleanup { .. } => "RbacCleanupFailed",
        }
    }

    /// When to try again, if this error says (a clean-up backing off).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RbacElsewhereError::Cleanup { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// Plans the objects elsewhere for a reconcile of `kafka` that wants `desired`.
pub fn plan(
    kafka: &Kafka,
    desired: &crate::build::entity_operator::EntityOperatorObjects,
    found: &observe::RbacElsewhere,
) -> RbacElsewherePlan {
    plan_rbac_elsewhere(
        Some(desired),
        found,
        &kafka.namespace().unwrap_or_default(),
        has_finalizer(kafka.finalizers()),
    )
}

/// Before anything is applied elsewhere: the finalizer, if the plan says so. The Kafka is read
/// again first, as the cached copy may not show a finalizer added by the previous reconcile.
pub async fn guard(
    ctx: &Context,
    kafka: &Kafka,
    plan: &RbacElsewherePlan,
) -> Result<(), RbacElsewhereError> {
    if !plan.add_finalizer {
        return Ok(());
    }
    let name = kafka.name_any();
    let current = match read(ctx, kafka).await? {
        Some(k) if k.metadata.deletion_timestamp.is_none() => k,
        _ => return Err(RbacElsewhereError::KafkaGoing { name }),
    };
    if has_finalizer(current.finalizers()) {
        return Ok(());
    }
    patch_finalizers(
        ctx,
        kafka,
        finalizer_patch(current.finalizers(), true),
        "adding",
    )
    .await?;
    info!(kafka = %name, finalizer = labels::CLUSTER_FINALIZER, "added the finalizer: objects in other namespaces follow");
    Ok(())
}

/// After the reconcile applied what is desired: deletes the objects elsewhere no longer
/// desired, then removes the finalizer if nothing is desired elsewhere any more. A failed
/// deletion is reported (log and `Warning` Event) and retried by the next reconcile; the
/// finalizer stays meanwhile.
pub async fn sweep(
    ctx: &Context,
    kafka: &Kafka,
    plan: &RbacElsewherePlan,
) -> Result<(), RbacElsewhereError> {
    let failures = delete(ctx, kafka, plan).await;
    if !failures.is_empty() {
        let message = format!(
            "cannot delete what the topic and user operators no longer need in other namespaces (retried on every reconcile): {}",
            failures.join("; ")
        );
        warn!(kafka = %kafka.name_any(), "{message}");
        ctx.event(kafka, EventType::Warning, "RbacCleanupFailed", message)
            .await;
        return Ok(());
    }
    if plan.remove_finalizer {
        release(ctx, kafka).await?;
    }
    Ok(())
}

/// For a Kafka being deleted: deletes every object found elsewhere, then releases the
/// finalizer. Failures back off (see the module's documentation).
pub async fn finalize(ctx: &Context, kafka: &Kafka) -> Result<Action, RbacElsewhereError> {
    if !has_finalizer(kafka.finalizers()) {
        return Ok(Action::await_change());
    }
    let name = kafka.name_any();
    let namespace = kafka.namespace().unwrap_or_default();
    let outcome: Result<(), String> = async {
        let found = observe::rbac_elsewhere(&ctx.client, &namespace, &name)
            .await
            .map_err(|e| e.to_string())?;
        let plan = plan_rbac_elsewhere(None, &found, &namespace, true);
        let failures = delete(ctx, kafka, &plan).await;
        if !failures.is_empty() {
            return Err(failures.join("; "));
        }
        release(ctx, kafka).await.map_err(|e| e.to_string())
    }
    .await;
    match outcome {
        Ok(()) => {
            info!(kafka = %name, "deleted the objects in other namespaces; finalizer released");
            Ok(Action::await_change())
        }
        Err(cause) => {
            let waited = kafka
                .metadata
                .deletion_timestamp
                .as_ref()
                .and_then(|t| {
                    Duration::try_from(k8s_openapi::jiff::Timestamp::now().duration_since(t.0)).ok()
                })
                .unwrap_or_default();
            let retry_after = retry_delay(waited);
            // What to do first: Event notes are cut at 1024 bytes.
            let message = format!(
                "the Kafka is kept until its topic and user operators' Roles and RoleBindings in other namespaces are deleted (retrying in {} s): let the cluster operator delete them there, or remove the finalizer {} from the Kafka to let it go without this clean-up. Failed: {cause}",
                retry_after.as_secs(),
                labels::CLUSTER_FINALIZER
            );
            warn!(kafka = %name, "{message}");
            ctx.event(
                kafka,
                EventType::Warning,
                "RbacCleanupFailed",
                message.clone(),
            )
            .await;
            Err(RbacElsewhereError::Cleanup {
                message,
                retry_after,
            })
        }
    }
}

/// Deletes what `plan` says (objects already gone count as deleted); returns the failures,
/// each as `<kind> <namespace>/<name>: <why>`.
async fn delete(ctx: &Context, kafka: &Kafka, plan: &RbacElsewherePlan) -> Vec<String> {
    let mut failures = Vec::new();
    let name = kafka.name_any();
    for o in &plan.delete_roles {
        info!(kafka = %name, namespace = %o.namespace().unwrap_or_default(), role = %o.name_any(), "deleting a Role in another namespace");
        if let Err(e) = ctx.writer.delete(o).await {
            failures.push(failure(o, &e));
        }
    }
    for o in &plan.delete_role_bindings {
        info!(kafka = %name, namespace = %o.namespace().unwrap_or_default(), role_binding = %o.name_any(), "deleting a RoleBinding in another namespace");
        if let Err(e) = ctx.writer.delete(o).await {
            failures.push(failure(o, &e));
        }
    }
    failures
}

/// A failed deletion in a few words: the API server's message without the status around it.
fn failure<K: crate::act::Object>(object: &K, error: &ActError) -> String {
    let why = match error {
        ActError::Delete {
            source: kube::Error::Api(status),
            ..
        } => status.message.clone(),
        other => other.to_string(),
    };
    format!(
        "{} {}/{}: {why}",
        K::KIND,
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// Removes the finalizer from the Kafka as it is now (already gone or without it: done).
async fn release(ctx: &Context, kafka: &Kafka) -> Result<(), RbacElsewhereError> {
    let Some(current) = read(ctx, kafka).await? else {
        return Ok(());
    };
    if !has_finalizer(current.finalizers()) {
        return Ok(());
    }
    match patch_finalizers(
        ctx,
        kafka,
        finalizer_patch(current.finalizers(), false),
        "removing",
    )
    .await
    {
        Err(RbacElsewhereError::PatchFinalizer {
            source: kube::Error::Api(s),
            ..
        }) if s.code == 404 => Ok(()),
        other => other,
    }
}

fn kafkas(ctx: &Context, kafka: &Kafka) -> Api<Kafka> {
    Api::namespaced(ctx.client.clone(), &kafka.namespace().unwrap_or_default())
}

/// The Kafka as the API server has it now; `None` once it is gone.
async fn read(ctx: &Context, kafka: &Kafka) -> Result<Option<Kafka>, RbacElsewhereError> {
    kafkas(ctx, kafka)
        .get_opt(&kafka.name_any())
        .await
        .map_err(|source| RbacElsewhereError::ReadKafka {
            name: kafka.name_any(),
            source,
        })
}

async fn patch_finalizers(
    ctx: &Context,
    kafka: &Kafka,
    patch: json_patch::Patch,
    action: &'static str,
) -> Result<(), RbacElsewhereError> {
    ctx.metrics
        .writes
        .with_label_values(&["Kafka", "patch"])
        .inc();
    kafkas(ctx, kafka)
        .patch(
            &kafka.name_any(),
            &PatchParams::default(),
            &Patch::Json::<()>(patch),
        )
        .await
        .map(|_| ())
        .map_err(|source| RbacElsewhereError::PatchFinalizer {
            action,
            name: kafka.name_any(),
            source,
        })
}

/// A JSON patch adding or removing the cluster operator's finalizer from `current` (the
/// Kafka's finalizers as just read), guarded by a test of what it changes, so that a concurrent
/// change by someone else makes the patch fail (and the reconcile retry) instead of clobbering
/// it.
fn finalizer_patch(current: &[String], add: bool) -> json_patch::Patch {
    let ops = if add {
        if current.is_empty() {
            json!([
                { "op": "test", "path": "/metadata/finalizers", "value": null },
                { "op": "add", "path": "/metadata/finalizers", "value": [labels::CLUSTER_FINALIZER] },
            ])
        } else {
            json!([
                { "op": "test", "path": "/metadata/finalizers", "value": current },
                { "op": "add", "path": "/metadata/finalizers/-", "value": labels::CLUSTER_FINALIZER },
            ])
        }
    } else {
        match current.iter().position(|f| f == labels::CLUSTER_FINALIZER) {
            Some(i) => json!([
                { "op": "test", "path": format!("/metadata/finalizers/{i}"), "value": labels::CLUSTER_FINALIZER },
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

    fn apply(
        doc: serde_json::Value,
        patch: &json_patch::Patch,
    ) -> Result<serde_json::Value, String> {
        let mut doc = doc;
        json_patch::patch(&mut doc, patch).map_err(|e| e.to_string())?;
        Ok(doc)
    }

    #[test]
    fn the_finalizer_is_added_to_no_finalizers_or_after_others() {
        // The API server's JSON patch finds a missing field equal to `null` in a test; the
        // json-patch crate only an explicit `null`.
        let none = json!({"metadata": {"name": "k", "finalizers": null}});
        let added = apply(none, &finalizer_patch(&[], true)).unwrap();
        assert_eq!(
            added["metadata"]["finalizers"],
            json!([labels::CLUSTER_FINALIZER])
        );
        let others = vec!["a/b".to_owned()];
        let doc = json!({"metadata": {"finalizers": ["a/b"]}});
        let added = apply(doc, &finalizer_patch(&others, true)).unwrap();
        assert_eq!(
            added["metadata"]["finalizers"],
            json!(["a/b", labels::CLUSTER_FINALIZER])
        );
    }

    #[test]
    fn a_concurrent_change_makes_the_patch_fail_instead_of_clobbering() {
        // Read without finalizers, but someone added one since.
        let doc = json!({"metadata": {"finalizers": ["a/b"]}});
        assert!(apply(doc.clone(), &finalizer_patch(&[], true)).is_err());
        // Read with ours at index 0, but the list changed since.
        let ours = vec![labels::CLUSTER_FINALIZER.to_owned(), "a/b".to_owned()];
        assert!(apply(doc, &finalizer_patch(&ours, false)).is_err());
    }

    #[test]
    fn only_the_cluster_operators_finalizer_is_removed() {
        let current = vec![
            "a/b".to_owned(),
            labels::CLUSTER_FINALIZER.to_owned(),
            labels::TOPIC_FINALIZER.to_owned(),
        ];
        let doc = json!({"metadata": {"finalizers": current}});
        let removed = apply(doc, &finalizer_patch(&current, false)).unwrap();
        assert_eq!(
            removed["metadata"]["finalizers"],
            json!(["a/b", labels::TOPIC_FINALIZER])
        );
        // Not there: nothing to do.
        assert!(finalizer_patch(&["a/b".to_owned()], false).0.is_empty());
    }
}
