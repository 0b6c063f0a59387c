//! PersistentVolumes for the testbed's StorageClass: an external provisioner in miniature. For
//! each pending claim of [`STORAGE_CLASS`] it makes a folder and a hostPath PersistentVolume
//! pre-bound to the claim (kube-controller-manager's PV controller then binds them); for each of
//! its volumes that is Released, it removes the folder and the volume. Every node shares the
//! machine's file system, so the volumes need no node affinity. [`plan`] is pure; the rest may
//! touch: the StorageClass [`STORAGE_CLASS`], PersistentVolumes provisioned by [`PROVISIONER`],
//! the class of claims that have none, and folders directly under the volumes folder.

use std::{
    collections::{BTreeMap, BTreeSet},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, Result};
use futures::StreamExt;
use k8s_openapi::api::{
    core::v1::{
        HostPathVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim,
        PersistentVolumeSpec,
    },
    storage::v1::StorageClass,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams},
    runtime::{
        WatchStreamExt,
        watcher::{self, watcher},
    },
};
use serde_json::json;
use tokio::sync::Notify;

use super::{PROVISIONER, STORAGE_CLASS, node::FIELD_MANAGER};

/// The annotation naming the provisioner of a PersistentVolume.
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// The annotation that makes a StorageClass the default.
const DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
/// How long a burst of changes is collected before a pass.
const DEBOUNCE: Duration = Duration::from_millis(200);
/// A pass runs at least this often, even without a change notification.
const RESYNC: Duration = Duration::from_secs(5);

/// One step of a provisioning pass.
#[derive(Clone, Debug, PartialEq)]
pub enum VolumeAction {
    /// Make `folder` (mode 0777) and create `volume`, pre-bound to its claim. With `set_class`,
    /// first give the claim (which has no class) ours, so that the PV controller can match them.
    Provision {
        volume: Box<PersistentVolume>,
        folder: PathBuf,
        set_class: bool,
    },
    /// Remove `folder` (when the volume's path is one of ours) and delete the volume.
    Reclaim {
        name: String,
        folder: Option<PathBuf>,
    },
}

/// What to do about `claims` and `volumes` (all namespaces). Pure.
pub fn plan(
    claims: &[PersistentVolumeClaim],
    volumes: &[PersistentVolume],
    volumes_dir: &Path,
) -> Vec<VolumeAction> {
    let existing: BTreeSet<String> = volumes.iter().map(|v| v.name_any()).collect();
    let mut actions: Vec<_> = claims
        .iter()
        .filter_map(|claim| {
            let volume = volume_for(claim, volumes_dir)?;
            if existing.contains(&volume.name_any()) {
                return None;
            }
            let set_class = claim.spec.as_ref()?.storage_class_name.is_none();
            let folder = volumes_dir.join(volume.name_any());
            Some(VolumeAction::Provision {
                volume: Box::new(volume),
                folder,
                set_class,
            })
        })
        .collect();
    actions.extend(volumes.iter().filter_map(|v| reclaim(v, volumes_dir)));
    actions
}

/// The volume for `claim`, when the claim is ours and waits for one: of our class (or of none:
/// ours is the default), Pending, not bound, not being deleted.
fn volume_for(claim: &PersistentVolumeClaim, volumes_dir: &Path) -> Option<PersistentVolume> {
    let spec = claim.spec.as_ref()?;
    if claim.meta().deletion_timestamp.is_some()
        || spec.volume_name.as_deref().is_some_and(|v| !v.is_empty())
        || spec
            .storage_class_name
            .as_deref()
            .is_some_and(|c| c != STORAGE_CLASS)
    {
        return None;
    }
    let phase = claim.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase.is_some_and(|p| p != "Pending") {
        return None;
    }
    let uid = claim.uid()?;
    let size = spec.resources.as_ref()?.requests.as_ref()?.get("storage")?;
    let name = format!("pvc-{uid}");
    let folder = volumes_dir.join(&name);
    let access_modes = spec
        .access_modes
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| vec!["ReadWriteOnce".to_owned()]);
    Some(PersistentVolume {
        metadata: ObjectMeta {
            name: Some(name),
            annotations: Some(BTreeMap::from([(
                PROVISIONED_BY.to_owned(),
                PROVISIONER.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeSpec {
            capacity: Some(BTreeMap::from([("storage".to_owned(), size.clone())])),
            access_modes: Some(access_modes),
            host_path: Some(HostPathVolumeSource {
                path: folder.to_string_lossy().into_owned(),
                type_: Some("DirectoryOrCreate".to_owned()),
            }),
            storage_class_name: Some(STORAGE_CLASS.to_owned()),
            persistent_volume_reclaim_policy: Some("Delete".to_owned()),
            volume_mode: spec.volume_mode.clone(),
            claim_ref: Some(ObjectReference {
                api_version: Some("v1".to_owned()),
                kind: Some("PersistentVolumeClaim".to_owned()),
                namespace: claim.namespace(),
                name: Some(claim.name_any()),
                uid: Some(uid),
                ..ObjectReference::default()
            }),
            ..PersistentVolumeSpec::default()
        }),
        status: None,
    })
}

/// Reclaims one of our volumes once its claim is gone (Released) or reclaiming failed. The
/// folder is removed only when it is exactly `<volumes_dir>/<volume name>`.
fn reclaim(volume: &PersistentVolume, volumes_dir: &Path) -> Option<VolumeAction> {
    let ours = volume.annotations().get(PROVISIONED_BY).map(String::as_str) == Some(PROVISIONER);
    let spec = volume.spec.as_ref()?;
    let phase = volume.status.as_ref().and_then(|s| s.phase.as_deref());
    if !ours
        || volume.meta().deletion_timestamp.is_some()
        || spec.persistent_volume_reclaim_policy.as_deref() != Some("Delete")
        || !matches!(phase, Some("Released" | "Failed"))
    {
        return None;
    }
    let name = volume.name_any();
    let expected = volumes_dir.join(&name);
    let folder = spec
        .host_path
        .as_ref()
        .map(|h| PathBuf::from(&h.path))
        .filter(|p| *p == expected && !name.is_empty() && !name.contains('/'));
    Some(VolumeAction::Reclaim { name, folder })
}

/// Creates the testbed's default StorageClass unless it exists (an existing one is left alone).
pub async fn ensure_storage_class(client: &Client) -> Result<()> {
    let classes = Api::<StorageClass>::all(client.clone());
    if classes
        .get_opt(STORAGE_CLASS)
        .await
        .with_context(|| format!("reading StorageClass {STORAGE_CLASS}"))?
        .is_some()
    {
        return Ok(());
    }
    let class = StorageClass {
        metadata: ObjectMeta {
            name: Some(STORAGE_CLASS.to_owned()),
            annotations: Some(BTreeMap::from([(
                DEFAULT_CLASS.to_owned(),
                "true".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        provisioner: PROVISIONER.to_owned(),
        reclaim_policy: Some("Delete".to_owned()),
        volume_binding_mode: Some("Immediate".to_owned()),
        ..StorageClass::default()
    };
    match classes.create(&post_params(), &class).await {
        Ok(_) => Ok(()),
        Err(e) if is_code(&e, 409) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating StorageClass {STORAGE_CLASS}")),
    }
}

/// Provisions and reclaims volumes forever: a pass after every burst of changes to claims or
/// volumes and at least every 5 s. Errors are logged and the next pass tries again.
pub async fn run(client: Client, volumes_dir: PathBuf) {
    let changed = Arc::new(Notify::new());
    let claims = Api::<PersistentVolumeClaim>::all(client.clone());
    let volumes = Api::<PersistentVolume>::all(client);
    let passes = async {
        loop {
            if let Err(e) = pass(&claims, &volumes, &volumes_dir).await {
                tracing::warn!("provisioner: {e:#}");
            }
            tokio::select! {
                () = changed.notified() => tokio::time::sleep(DEBOUNCE).await,
                () = tokio::time::sleep(RESYNC) => {}
            }
        }
    };
    tokio::join!(
        notify_on_change(claims.clone(), &changed),
        notify_on_change(volumes.clone(), &changed),
        passes,
    );
}

/// Wakes the passes on every watch event; the watcher retries with back-off.
async fn notify_on_change<K>(api: Api<K>, changed: &Notify)
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + 'static,
    K: serde::de::DeserializeOwned,
{
    let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
    while let Some(event) = events.next().await {
        match event {
            Ok(_) => changed.notify_one(),
            Err(e) => tracing::warn!(kind = %K::kind(&()), "provisioner watch: {e}"),
        }
    }
}

/// One pass: list, plan, act. An action that fails is logged; the others still run.
async fn pass(
    claims: &Api<PersistentVolumeClaim>,
    volumes: &Api<PersistentVolume>,
    volumes_dir: &Path,
) -> Result<()> {
    let claim_list = claims
        .list(&ListParams::default())
        .await
        .context("listing PersistentVolumeClaims")?;
    let volume_list = volumes
        .list(&ListParams::default())
        .await
        .context("listing PersistentVolumes")?;
    for action in plan(&claim_list.items, &volume_list.items, volumes_dir) {
        if let Err(e) = act(claims, volumes, action).await {
            tracing::warn!("provisioner: {e:#}");
        }
    }
    Ok(())
}

async fn act(
    claims: &Api<PersistentVolumeClaim>,
    volumes: &Api<PersistentVolume>,
    action: VolumeAction,
) -> Result<()> {
    match action {
        VolumeAction::Provision {
            volume,
            folder,
            set_class,
        } => {
            let name = volume.name_any();
            let claim_ref = volume
                .spec
                .as_ref()
                .and_then(|s| s.claim_ref.clone())
                .unwrap_or_default();
            let (ns, claim) = (
                claim_ref.namespace.unwrap_or_default(),
                claim_ref.name.unwrap_or_default(),
            );
            if set_class {
                let patch = json!({"spec": {"storageClassName": STORAGE_CLASS}});
                Api::<PersistentVolumeClaim>::namespaced(claims.clone().into_client(), &ns)
                    .patch(&claim, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .with_context(|| format!("setting the class of claim {ns}/{claim}"))?;
            }
            tokio::fs::create_dir_all(&folder)
                .await
                .with_context(|| format!("creating {}", folder.display()))?;
            // Any pod user may write: containers do not run as root necessarily.
            tokio::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777))
                .await
                .with_context(|| format!("opening up {}", folder.display()))?;
            match volumes.create(&post_params(), &volume).await {
                Ok(_) => {
                    tracing::info!(volume = %name, claim = %format!("{ns}/{claim}"), "provisioned");
                    Ok(())
                }
                Err(e) if is_code(&e, 409) => Ok(()),
                Err(e) => Err(e).with_context(|| format!("creating PersistentVolume {name}")),
            }
        }
        VolumeAction::Reclaim { name, folder } => {
            if let Some(folder) = &folder {
                match tokio::fs::remove_dir_all(folder).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(e).with_context(|| format!("removing {}", folder.display()));
                    }
                }
            } else {
                tracing::warn!(volume = %name, "not under the volumes folder; deleting the volume only");
            }
            match volumes.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {
                    tracing::info!(volume = %name, "reclaimed");
                    Ok(())
                }
                Err(e) if is_code(&e, 404) => Ok(()),
                Err(e) => Err(e).with_context(|| format!("deleting PersistentVolume {name}")),
            }
        }
    }
}

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    }
}

fn is_code(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<K: serde::de::DeserializeOwned>(yaml: &str) -> Vec<K> {
        serde_yaml::Deserializer::from_str(yaml)
            .map(|doc| K::deserialize(doc).expect("fixture parses"))
            .collect()
    }

    const CLAIMS: &str = r#"
metadata: {name: data-kafka-0, namespace: a, uid: 11111111-aaaa}
spec:
  storageClassName: oxbow-local
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
status: {phase: Pending}
---
# No class: ours is the default.
metadata: {name: no-class, namespace: b, uid: 22222222-bbbb}
spec:
  resources: {requests: {storage: 100Mi}}
  volumeMode: Filesystem
---
# Another class.
metadata: {name: other, namespace: a, uid: 33333333-cccc}
spec:
  storageClassName: fast
  resources: {requests: {storage: 1Gi}}
status: {phase: Pending}
---
# Already bound.
metadata: {name: bound, namespace: a, uid: 44444444-dddd}
spec:
  storageClassName: oxbow-local
  volumeName: pvc-44444444-dddd
  resources: {requests: {storage: 1Gi}}
status: {phase: Bound}
---
# Pending, but its volume exists already.
metadata: {name: waiting, namespace: a, uid: 55555555-eeee}
spec:
  storageClassName: oxbow-local
  resources: {requests: {storage: 1Gi}}
status: {phase: Pending}
---
# Explicitly no class.
metadata: {name: empty-class, namespace: a, uid: 66666666-ffff}
spec:
  storageClassName: ""
  resources: {requests: {storage: 1Gi}}
status: {phase: Pending}
"#;

    const VOLUMES: &str = r#"
metadata: {name: pvc-55555555-eeee, annotations: {pv.kubernetes.io/provisioned-by: testbed.oxbow.rs/local}}
spec:
  persistentVolumeReclaimPolicy: Delete
  hostPath: {path: /vol/pvc-55555555-eeee}
status: {phase: Available}
---
metadata: {name: pvc-77777777, annotations: {pv.kubernetes.io/provisioned-by: testbed.oxbow.rs/local}}
spec:
  persistentVolumeReclaimPolicy: Delete
  hostPath: {path: /vol/pvc-77777777}
status: {phase: Released}
---
# Ours, but its path is not where we put volumes: delete the object, leave the path alone.
metadata: {name: pvc-88888888, annotations: {pv.kubernetes.io/provisioned-by: testbed.oxbow.rs/local}}
spec:
  persistentVolumeReclaimPolicy: Delete
  hostPath: {path: /etc}
status: {phase: Failed}
---
# Someone else's.
metadata: {name: foreign, annotations: {pv.kubernetes.io/provisioned-by: example.com/nfs}}
spec:
  persistentVolumeReclaimPolicy: Delete
  hostPath: {path: /vol/foreign}
status: {phase: Released}
---
# Retained.
metadata: {name: pvc-99999999, annotations: {pv.kubernetes.io/provisioned-by: testbed.oxbow.rs/local}}
spec:
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /vol/pvc-99999999}
status: {phase: Released}
---
# Being deleted already.
metadata: {name: pvc-00000000, deletionTimestamp: "2025-01-01T00:00:00Z", annotations: {pv.kubernetes.io/provisioned-by: testbed.oxbow.rs/local}}
spec:
  persistentVolumeReclaimPolicy: Delete
  hostPath: {path: /vol/pvc-00000000}
status: {phase: Released}
"#;

    fn actions() -> Vec<VolumeAction> {
        plan(&parse(CLAIMS), &parse(VOLUMES), Path::new("/vol"))
    }

    #[test]
    fn provisions_pending_claims_of_our_class_or_none() {
        let provisioned: Vec<_> = actions()
            .into_iter()
            .filter_map(|a| match a {
                VolumeAction::Provision {
                    volume,
                    folder,
                    set_class,
                } => Some((volume.name_any(), folder, set_class)),
                VolumeAction::Reclaim { .. } => None,
            })
            .collect();
        assert_eq!(
            provisioned,
            [
                (
                    "pvc-11111111-aaaa".to_owned(),
                    PathBuf::from("/vol/pvc-11111111-aaaa"),
                    false
                ),
                (
                    "pvc-22222222-bbbb".to_owned(),
                    PathBuf::from("/vol/pvc-22222222-bbbb"),
                    true
                ),
            ]
        );
    }

    #[test]
    fn volume_is_pre_bound_host_path_of_the_requested_size() {
        let claims: Vec<PersistentVolumeClaim> = parse(CLAIMS);
        let volume = volume_for(&claims[0], Path::new("/vol")).expect("a volume");
        let want: serde_json::Value = serde_yaml::from_str(
            r#"
apiVersion: v1
kind: PersistentVolume
metadata:
  name: pvc-11111111-aaaa
  annotations: {pv.kubernetes.io/provisioned-by: testbed.oxbow.rs/local}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  hostPath: {path: /vol/pvc-11111111-aaaa, type: DirectoryOrCreate}
  storageClassName: oxbow-local
  persistentVolumeReclaimPolicy: Delete
  claimRef: {apiVersion: v1, kind: PersistentVolumeClaim, namespace: a, name: data-kafka-0, uid: 11111111-aaaa}
"#,
        )
        .expect("yaml");
        assert_eq!(serde_json::to_value(&volume).expect("serialises"), want);

        let volume = volume_for(&claims[1], Path::new("/vol")).expect("a volume");
        let spec = volume.spec.expect("spec");
        assert_eq!(
            spec.access_modes,
            Some(vec!["ReadWriteOnce".to_owned()]),
            "default access mode"
        );
        assert_eq!(spec.volume_mode.as_deref(), Some("Filesystem"));
        assert_eq!(spec.storage_class_name.as_deref(), Some(STORAGE_CLASS));
    }

    #[test]
    fn reclaims_released_and_failed_volumes_of_ours_only() {
        let reclaimed: Vec<_> = actions()
            .into_iter()
            .filter(|a| matches!(a, VolumeAction::Reclaim { .. }))
            .collect();
        assert_eq!(
            reclaimed,
            [
                VolumeAction::Reclaim {
                    name: "pvc-77777777".into(),
                    folder: Some(PathBuf::from("/vol/pvc-77777777")),
                },
                VolumeAction::Reclaim {
                    name: "pvc-88888888".into(),
                    folder: None,
                },
            ]
        );
    }

    #[test]
    fn nothing_to_do_once_everything_is_bound() {
        let claims: Vec<PersistentVolumeClaim> = parse(
            r#"
metadata: {name: data, namespace: a, uid: u1}
spec: {storageClassName: oxbow-local, volumeName: pvc-u1, resources: {requests: {storage: 1Gi}}}
status: {phase: Bound}
"#,
        );
        let volumes: Vec<PersistentVolume> = parse(
            r#"
metadata: {name: pvc-u1, annotations: {pv.kubernetes.io/provisioned-by: testbed.oxbow.rs/local}}
spec: {persistentVolumeReclaimPolicy: Delete, hostPath: {path: /vol/pvc-u1}}
status: {phase: Bound}
"#,
        );
        assert_eq!(plan(&claims, &volumes, Path::new("/vol")), []);
    }
}
