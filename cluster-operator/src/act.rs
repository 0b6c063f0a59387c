//! The act stage: writes what the plan decided to Kubernetes, by server-side apply with the
//! operator's one field manager, and deletes orphans. An object whose observed copy already
//! holds every field of the desired one is not sent at all, so a reconcile of an unchanged
//! cluster makes no request that writes. Every write is counted in the operator's metrics.
//! May touch: the namespaced objects of a Kafka cluster (those the builders produce).

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions},
};
use prometheus::IntCounterVec;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

/// The field manager of every server-side apply of the cluster operator.
pub const FIELD_MANAGER: &str = "oxbow-cluster-operator";

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error("applying {kind} {name}: {source}")]
    Apply {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
    #[error("deleting {kind} {name}: {source}")]
    Delete {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
    #[error("creating {kind} {name}: {source}")]
    Create {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
}

impl ActError {
    /// Stable CamelCase reason for the status condition, Events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ActError::Apply { .. } => "ApplyFailed",
            ActError::Delete { .. } => "DeleteFailed",
            ActError::Create { .. } => "CreateFailed",
        }
    }
}

/// True if every field set in `desired` has the same value in `observed` (objects: every key of
/// `desired`, recursively; arrays: same length, element by element; anything else: equal).
/// Fields the API server adds (defaults, status, managed fields) do not matter.
pub fn contains(observed: &Value, desired: &Value) -> bool {
    match (observed, desired) {
        (_, Value::Null) => true,
        (Value::Object(o), Value::Object(d)) => d
            .iter()
            .all(|(k, dv)| o.get(k).is_some_and(|ov| contains(ov, dv)) || dv.is_null()),
        (Value::Array(o), Value::Array(d)) => {
            o.len() == d.len() && o.iter().zip(d).all(|(ov, dv)| contains(ov, dv))
        }
        (o, d) => o == d,
    }
}

/// The path of the first field of `desired` that `observed` lacks or holds differently, for
/// logs that say why an object is written again.
pub fn first_difference(observed: &Value, desired: &Value) -> Option<String> {
    match (observed, desired) {
        (_, Value::Null) => None,
        (Value::Object(o), Value::Object(d)) => d.iter().find_map(|(k, dv)| match o.get(k) {
            None if dv.is_null() => None,
            None => Some(format!(".{k}")),
            Some(ov) => first_difference(ov, dv).map(|rest| format!(".{k}{rest}")),
        }),
        (Value::Array(o), Value::Array(d)) if o.len() == d.len() => {
            o.iter().zip(d).enumerate().find_map(|(i, (ov, dv))| {
                first_difference(ov, dv).map(|rest| format!("[{i}]{rest}"))
            })
        }
        (o, d) if o == d => None,
        _ => Some(String::new()),
    }
}

/// Writes to one namespace, counting them by kind and verb.
#[derive(Clone)]
pub struct Writer {
    client: Client,
    writes: IntCounterVec,
}

impl Writer {
    /// A writer whose writes are counted in `writes` (labels `kind`, `verb`).
    pub fn new(client: Client, writes: IntCounterVec) -> Self {
        Self { client, writes }
    }

    fn api<K: Object>(&self, namespace: &str) -> Api<K> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn count(&self, kind: &str, verb: &str) {
        self.writes.with_label_values(&[kind, verb]).inc();
    }

    /// Applies `desired` unless `observed` already holds it; returns the object as it now is.
    pub async fn apply<K>(&self, desired: &K, observed: Option<&K>) -> Result<K, ActError>
    where
        K: Object,
    {
        let kind = kind_of::<K>();
        let name = desired.name_any();
        if let Some(observed) = observed {
            let (o, d) = (
                serde_json::to_value(observed),
                serde_json::to_value(desired),
            );
            match (o, d) {
                (Ok(o), Ok(d)) if contains(&o, &d) => return Ok(observed.clone()),
                (Ok(o), Ok(d)) => tracing::info!(
                    kind,
                    %name,
                    differs = first_difference(&o, &d).unwrap_or_default(),
                    "updating"
                ),
                (o, d) => {
                    let error = o.err().or(d.err()).map(|e| e.to_string());
                    tracing::warn!(kind, %name, ?error, "cannot compare with the observed object");
                }
            }
        }
        if observed.is_none() {
            tracing::debug!(kind, %name, "creating or updating an object not observed");
        }
        let namespace = desired.namespace().unwrap_or_default();
        self.count(kind, "apply");
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.api::<K>(&namespace)
            .patch(&name, &params, &Patch::Apply(desired))
            .await
            .map_err(|source| ActError::Apply { kind, name, source })
    }

    /// Creates `desired`; an object of that name that already exists is not an error (the
    /// next observation sees it).
    pub async fn create<K>(&self, desired: &K) -> Result<(), ActError>
    where
        K: Object,
    {
        let kind = kind_of::<K>();
        let name = desired.name_any();
        let namespace = desired.namespace().unwrap_or_default();
        self.count(kind, "create");
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        match self.api::<K>(&namespace).create(&params, desired).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(source) => Err(ActError::Create { kind, name, source }),
        }
    }

    /// Merge-patches the metadata annotations of `object`.
    pub async fn annotate<K>(
        &self,
        object: &K,
        annotations: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), ActError>
    where
        K: Object,
    {
        let kind = kind_of::<K>();
        let name = object.name_any();
        let namespace = object.namespace().unwrap_or_default();
        self.count(kind, "patch");
        let patch = serde_json::json!({ "metadata": { "annotations": annotations } });
        self.api::<K>(&namespace)
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|source| ActError::Apply { kind, name, source })
    }

    /// Deletes `object` (only the very object observed: a precondition on its UID keeps a
    /// newer object of the same name). Already gone is not an error.
    pub async fn delete<K>(&self, object: &K) -> Result<(), ActError>
    where
        K: Object,
    {
        let kind = kind_of::<K>();
        let name = object.name_any();
        let namespace = object.namespace().unwrap_or_default();
        self.count(kind, "delete");
        let params = DeleteParams {
            preconditions: object.uid().map(|uid| Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::background()
        };
        match self.api::<K>(&namespace).delete(&name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(source) => Err(ActError::Delete { kind, name, source }),
        }
    }
}

/// The kind of `K`, for messages and metric labels.
pub fn kind_of<K: k8s_openapi::Resource>() -> &'static str {
    K::KIND
}

/// The kind of `object`, for messages and metric labels.
pub fn kind_of_val<K: k8s_openapi::Resource>(_object: &K) -> &'static str {
    K::KIND
}

/// What the writer can write: a namespaced Kubernetes object of `k8s-openapi`.
pub trait Object:
    k8s_openapi::Resource<Scope = NamespaceResourceScope>
    + k8s_openapi::Metadata<Ty = ObjectMeta>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
{
}

impl<K> Object for K where
    K: k8s_openapi::Resource<Scope = NamespaceResourceScope>
        + k8s_openapi::Metadata<Ty = ObjectMeta>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
{
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn contains_ignores_fields_the_server_adds() {
        let observed = json!({
            "metadata": {"name": "a", "uid": "u", "labels": {"x": "1", "y": "2"}},
            "spec": {"ports": [{"port": 1, "protocol": "TCP"}]},
            "status": {"phase": "Running"}
        });
        let desired = json!({
            "metadata": {"name": "a", "labels": {"x": "1"}},
            "spec": {"ports": [{"port": 1}]}
        });
        assert!(contains(&observed, &desired));
    }

    #[test]
    fn contains_sees_changed_missing_and_reordered_values() {
        let observed = json!({"spec": {"ports": [{"port": 1}, {"port": 2}], "a": "x"}});
        assert!(!contains(&observed, &json!({"spec": {"a": "y"}})));
        assert!(!contains(&observed, &json!({"spec": {"b": "x"}})));
        assert!(!contains(
            &observed,
            &json!({"spec": {"ports": [{"port": 2}, {"port": 1}]}})
        ));
        assert!(!contains(
            &observed,
            &json!({"spec": {"ports": [{"port": 1}]}})
        ));
        assert!(contains(&observed, &json!({"spec": {"c": null}})));
    }

    #[test]
    fn the_first_difference_is_named_by_path() {
        let observed = json!({"spec": {"ports": [{"port": 1}], "a": "x"}});
        assert_eq!(
            first_difference(&observed, &json!({"spec": {"a": "x"}})),
            None
        );
        assert_eq!(
            first_difference(&observed, &json!({"spec": {"ports": [{"port": 2}]}})),
            Some(".spec.ports[0].port".into())
        );
        assert_eq!(
            first_difference(&observed, &json!({"spec": {"b": 1}})),
            Some(".spec.b".into())
        );
    }

    #[test]
    fn kinds_are_named() {
        assert_eq!(kind_of::<k8s_openapi::api::core::v1::Pod>(), "Pod");
        assert_eq!(
            kind_of::<k8s_openapi::api::apps::v1::Deployment>(),
            "Deployment"
        );
    }
}
