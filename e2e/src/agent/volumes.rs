//! A pod's volumes as folders on the host, later bind-mounted into its containers: emptyDir,
//! ConfigMap, Secret, downward API, projected (service-account token from the TokenRequest API,
//! ConfigMaps, Secrets, downward API) and PersistentVolumeClaim (the folder of its bound
//! PersistentVolume). ConfigMap, Secret and token contents are refreshed in place, as the kubelet
//! does. May touch: files under the pod's folder and PV folders; reads ConfigMaps, Secrets,
//! PVCs and PVs and creates service-account tokens through the API.

use std::{
    collections::BTreeMap,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{
        authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec},
        core::v1::{
            ConfigMap, DownwardAPIVolumeFile, KeyToPath, PersistentVolume, PersistentVolumeClaim,
            Pod, Secret, ServiceAccount, Volume,
        },
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{Api, Client, api::PostParams};

/// Why a volume cannot be made (yet). The message is what the container status shows.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume {volume:?}: {what} not found")]
    Missing { volume: String, what: String },
    #[error("volume {volume:?}: persistentVolumeClaim {claim} is not bound yet")]
    Unbound { volume: String, claim: String },
    #[error("volume {volume:?}: type not supported by the testbed node agent ({kind})")]
    Unsupported { volume: String, kind: String },
    #[error("volume {volume:?}: {message}")]
    Failed { volume: String, message: String },
}

impl VolumeError {
    /// The container status reason, as the kubelet would give it.
    pub fn reason(&self) -> &'static str {
        match self {
            VolumeError::Missing { .. } | VolumeError::Unbound { .. } => "ContainerCreating",
            VolumeError::Unsupported { .. } => "CreateContainerConfigError",
            VolumeError::Failed { .. } => "ContainerCreating",
        }
    }
}

/// Service-account tokens already issued, reused until 80 % of their lifetime.
#[derive(Debug, Default)]
pub struct Tokens {
    issued: BTreeMap<String, (String, Instant)>,
}

/// Makes or refreshes every volume of `pod` under `dir/volumes/` and returns the host folder
/// of each, by volume name.
pub async fn prepare(
    client: &Client,
    pod: &Pod,
    pod_ip: &str,
    dir: &Path,
    tokens: &mut Tokens,
) -> Result<BTreeMap<String, PathBuf>, VolumeError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let fs_group = spec
        .security_context
        .as_ref()
        .and_then(|s| s.fs_group)
        .map(|g| g as u32);
    let mut out = BTreeMap::new();
    for volume in spec.volumes.iter().flatten() {
        let path = dir.join("volumes").join(&volume.name);
        let fail = |message: String| VolumeError::Failed {
            volume: volume.name.clone(),
            message,
        };
        if let Some(claim) = &volume.persistent_volume_claim {
            let host = claim_folder(client, &ns, &volume.name, &claim.claim_name).await?;
            out.insert(volume.name.clone(), host);
            continue;
        }
        std::fs::create_dir_all(&path).map_err(|e| fail(e.to_string()))?;
        if volume.empty_dir.is_some() {
            // World-writable like the kubelet's emptyDir, so any runAsUser can use it.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))
                .map_err(|e| fail(e.to_string()))?;
        } else {
            let files = contents(client, pod, pod_ip, &ns, volume, tokens).await?;
            write_files(&path, &files, fs_group).map_err(|e| fail(format!("{e:#}")))?;
        }
        out.insert(volume.name.clone(), path);
    }
    Ok(out)
}

/// A file to write: relative path, content, mode.
type Files = Vec<(String, Vec<u8>, u32)>;

fn unsupported(volume: &Volume) -> VolumeError {
    let value = serde_json::to_value(volume).unwrap_or_default();
    let kind = value
        .as_object()
        .and_then(|o| o.keys().find(|k| *k != "name").cloned())
        .unwrap_or_else(|| "unknown".to_owned());
    VolumeError::Unsupported {
        volume: volume.name.clone(),
        kind,
    }
}

async fn contents(
    client: &Client,
    pod: &Pod,
    pod_ip: &str,
    ns: &str,
    volume: &Volume,
    tokens: &mut Tokens,
) -> Result<Files, VolumeError> {
    let name = &volume.name;
    if let Some(cm) = &volume.config_map {
        let mode = cm.default_mode.unwrap_or(0o644) as u32;
        return config_map_files(
            client,
            ns,
            name,
            &cm.name,
            cm.items.as_deref(),
            mode,
            cm.optional,
        )
        .await;
    }
    if let Some(s) = &volume.secret {
        let mode = s.default_mode.unwrap_or(0o644) as u32;
        let secret = s.secret_name.clone().unwrap_or_default();
        return secret_files(
            client,
            ns,
            name,
            &secret,
            s.items.as_deref(),
            mode,
            s.optional,
        )
        .await;
    }
    if let Some(d) = &volume.downward_api {
        let mode = d.default_mode.unwrap_or(0o644) as u32;
        return downward_files(
            pod,
            pod_ip,
            name,
            d.items.as_deref().unwrap_or_default(),
            mode,
        );
    }
    if let Some(p) = &volume.projected {
        let mode = p.default_mode.unwrap_or(0o644) as u32;
        let mut files = Files::new();
        for source in p.sources.iter().flatten() {
            if let Some(cm) = &source.config_map {
                files.extend(
                    config_map_files(
                        client,
                        ns,
                        name,
                        &cm.name,
                        cm.items.as_deref(),
                        mode,
                        cm.optional,
                    )
                    .await?,
                );
            } else if let Some(s) = &source.secret {
                files.extend(
                    secret_files(
                        client,
                        ns,
                        name,
                        &s.name,
                        s.items.as_deref(),
                        mode,
                        s.optional,
                    )
                    .await?,
                );
            } else if let Some(d) = &source.downward_api {
                files.extend(downward_files(
                    pod,
                    pod_ip,
                    name,
                    d.items.as_deref().unwrap_or_default(),
                    mode,
                )?);
            } else if let Some(t) = &source.service_account_token {
                let token = token(
                    client,
                    pod,
                    name,
                    t.audience.clone(),
                    t.expiration_seconds,
                    tokens,
                )
                .await?;
                files.push((t.path.clone(), token.into_bytes(), mode));
            } else {
                return Err(unsupported(volume));
            }
        }
        return Ok(files);
    }
    Err(unsupported(volume))
}

fn select(
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    mode: u32,
    volume: &str,
    source: &str,
) -> Result<Files, VolumeError> {
    match items {
        None => Ok(data.into_iter().map(|(k, v)| (k, v, mode)).collect()),
        Some(items) => items
            .iter()
            .map(|item| {
                let value = data
                    .get(&item.key)
                    .cloned()
                    .ok_or_else(|| VolumeError::Missing {
                        volume: volume.to_owned(),
                        what: format!("key {:?} of {source}", item.key),
                    })?;
                Ok((
                    item.path.clone(),
                    value,
                    item.mode.map_or(mode, |m| m as u32),
                ))
            })
            .collect(),
    }
}

async fn config_map_files(
    client: &Client,
    ns: &str,
    volume: &str,
    name: &str,
    items: Option<&[KeyToPath]>,
    mode: u32,
    optional: Option<bool>,
) -> Result<Files, VolumeError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let data = get(&api, name, volume).await?.map(|cm| {
        let mut data: BTreeMap<String, Vec<u8>> = cm
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .collect();
        data.extend(
            cm.binary_data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0)),
        );
        data
    });
    let source = format!("configMap {ns}/{name}");
    source_files(data, items, mode, optional, volume, &source)
}

async fn secret_files(
    client: &Client,
    ns: &str,
    volume: &str,
    name: &str,
    items: Option<&[KeyToPath]>,
    mode: u32,
    optional: Option<bool>,
) -> Result<Files, VolumeError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let data = get(&api, name, volume).await?.map(|secret| {
        let mut data: BTreeMap<String, Vec<u8>> = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        data.extend(
            secret
                .string_data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes())),
        );
        data
    });
    let source = format!("secret {ns}/{name}");
    source_files(data, items, mode, optional, volume, &source)
}

/// The files of a ConfigMap or Secret `source` whose `data` was read (`None`: it does not
/// exist): none when the volume marks it optional, else [`VolumeError::Missing`].
fn source_files(
    data: Option<BTreeMap<String, Vec<u8>>>,
    items: Option<&[KeyToPath]>,
    mode: u32,
    optional: Option<bool>,
    volume: &str,
    source: &str,
) -> Result<Files, VolumeError> {
    match data {
        Some(data) => select(data, items, mode, volume, source),
        None if optional == Some(true) => Ok(Files::new()),
        None => Err(VolumeError::Missing {
            volume: volume.to_owned(),
            what: source.to_owned(),
        }),
    }
}

async fn get<K>(api: &Api<K>, name: &str, volume: &str) -> Result<Option<K>, VolumeError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.map_err(|e| VolumeError::Failed {
        volume: volume.to_owned(),
        message: format!("reading {name}: {e}"),
    })
}

fn downward_files(
    pod: &Pod,
    pod_ip: &str,
    volume: &str,
    items: &[DownwardAPIVolumeFile],
    mode: u32,
) -> Result<Files, VolumeError> {
    items
        .iter()
        .map(|item| {
            let value = match &item.field_ref {
                Some(f) => {
                    field_value(pod, pod_ip, &f.field_path).ok_or_else(|| VolumeError::Failed {
                        volume: volume.to_owned(),
                        message: format!("unsupported fieldPath {:?}", f.field_path),
                    })?
                }
                None => {
                    return Err(VolumeError::Unsupported {
                        volume: volume.to_owned(),
                        kind: "downwardAPI resourceFieldRef".to_owned(),
                    });
                }
            };
            Ok((
                item.path.clone(),
                value.into_bytes(),
                item.mode.map_or(mode, |m| m as u32),
            ))
        })
        .collect()
}

/// The value of a downward-API field path (`metadata.name`, `metadata.labels['x']`, ...). Pure.
pub fn field_value(pod: &Pod, pod_ip: &str, path: &str) -> Option<String> {
    let meta: &ObjectMeta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let map_entry = |map: Option<&BTreeMap<String, String>>, rest: &str| {
        let key = rest.strip_prefix("['")?.strip_suffix("']")?;
        Some(map.and_then(|m| m.get(key)).cloned().unwrap_or_default())
    };
    let render_map = |map: Option<&BTreeMap<String, String>>| {
        map.map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
    };
    Some(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => render_map(meta.labels.as_ref()),
        "metadata.annotations" => render_map(meta.annotations.as_ref()),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" | "status.podIPs" => pod_ip.to_owned(),
        "status.hostIP" | "status.hostIPs" => pod
            .status
            .as_ref()
            .and_then(|s| s.host_ip.clone())
            .unwrap_or_default(),
        other => {
            if let Some(rest) = other.strip_prefix("metadata.labels") {
                map_entry(meta.labels.as_ref(), rest)?
            } else if let Some(rest) = other.strip_prefix("metadata.annotations") {
                map_entry(meta.annotations.as_ref(), rest)?
            } else {
                return None;
            }
        }
    })
}

async fn token(
    client: &Client,
    pod: &Pod,
    volume: &str,
    audience: Option<String>,
    expiration: Option<i64>,
    tokens: &mut Tokens,
) -> Result<String, VolumeError> {
    let key = format!("{volume}/{}", audience.as_deref().unwrap_or(""));
    if let Some((token, refresh_at)) = tokens.issued.get(&key)
        && Instant::now() < *refresh_at
    {
        return Ok(token.clone());
    }
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let sa = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_else(|| "default".to_owned());
    let expiration = expiration.unwrap_or(3607).max(600);
    let request = TokenRequest {
        metadata: ObjectMeta::default(),
        spec: TokenRequestSpec {
            audiences: audience.into_iter().collect(),
            expiration_seconds: Some(expiration),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".to_owned()),
                kind: Some("Pod".to_owned()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
        },
        status: None,
    };
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let issued = api
        .create_token_request(&sa, &PostParams::default(), &request)
        .await
        .map_err(|e| VolumeError::Failed {
            volume: volume.to_owned(),
            message: format!("requesting a token for serviceaccount {ns}/{sa}: {e}"),
        })?;
    let token = issued
        .status
        .map(|s| s.token)
        .ok_or_else(|| VolumeError::Failed {
            volume: volume.to_owned(),
            message: "the TokenRequest returned no token".to_owned(),
        })?;
    let refresh = Duration::from_secs((expiration as u64) * 8 / 10);
    tokens
        .issued
        .insert(key, (token.clone(), Instant::now() + refresh));
    Ok(token)
}

async fn claim_folder(
    client: &Client,
    ns: &str,
    volume: &str,
    claim: &str,
) -> Result<PathBuf, VolumeError> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let Some(pvc) = get(&claims, claim, volume).await? else {
        return Err(VolumeError::Missing {
            volume: volume.to_owned(),
            what: format!("persistentVolumeClaim {ns}/{claim}"),
        });
    };
    let unbound = || VolumeError::Unbound {
        volume: volume.to_owned(),
        claim: format!("{ns}/{claim}"),
    };
    let bound = pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    let pv_name = pvc.spec.as_ref().and_then(|s| s.volume_name.clone());
    let (true, Some(pv_name)) = (bound, pv_name) else {
        return Err(unbound());
    };
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pv = get(&pvs, &pv_name, volume).await?.ok_or_else(unbound)?;
    let spec = pv.spec.unwrap_or_default();
    let path = spec
        .host_path
        .map(|h| h.path)
        .or(spec.local.map(|l| l.path))
        .ok_or_else(|| VolumeError::Unsupported {
            volume: volume.to_owned(),
            kind: format!("persistentVolume {pv_name} without hostPath or local path"),
        })?;
    let path = PathBuf::from(path);
    std::fs::create_dir_all(&path)
        .and_then(|_| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)))
        .map_err(|e| VolumeError::Failed {
            volume: volume.to_owned(),
            message: format!("{}: {e}", path.display()),
        })?;
    Ok(path)
}

/// Writes `files` under `dir` (each replaced by rename only when its content or mode changed)
/// and removes files that are no longer part of the volume.
fn write_files(dir: &Path, files: &Files, group: Option<u32>) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut keep = std::collections::BTreeSet::new();
    for (rel, content, mode) in files {
        anyhow::ensure!(
            !rel.split('/').any(|c| c == ".." || c.is_empty()),
            "invalid path {rel:?}"
        );
        let path = dir.join(rel);
        keep.insert(path.clone());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let same = std::fs::read(&path).is_ok_and(|c| c == *content)
            && std::fs::metadata(&path).is_ok_and(|m| m.permissions().mode() & 0o777 == *mode);
        if same {
            continue;
        }
        let tmp = path.with_file_name(format!(
            ".{}.tmp",
            path.file_name().unwrap_or_default().to_string_lossy()
        ));
        std::fs::write(&tmp, content).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(*mode))?;
        if let Some(gid) = group {
            std::os::unix::fs::chown(&tmp, Some(0), Some(gid))?;
        }
        std::fs::rename(&tmp, &path)?;
    }
    for entry in walk(dir) {
        if !keep.contains(&entry) {
            let _ = std::fs::remove_file(&entry);
        }
    }
    Ok(())
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_yaml::from_str(
            "metadata: {name: p, namespace: ns, uid: u1, labels: {app: x}, annotations: {a: b}}\nspec: {nodeName: n1, serviceAccountName: sa, containers: []}\nstatus: {hostIP: 198.18.1.1}\n",
        )
        .unwrap()
    }

    #[test]
    fn field_paths_resolve_like_the_downward_api() {
        let p = pod();
        let f = |path| field_value(&p, "198.18.1.7", path);
        assert_eq!(f("metadata.name").as_deref(), Some("p"));
        assert_eq!(f("metadata.namespace").as_deref(), Some("ns"));
        assert_eq!(f("metadata.labels['app']").as_deref(), Some("x"));
        assert_eq!(f("metadata.annotations['a']").as_deref(), Some("b"));
        assert_eq!(f("metadata.labels").as_deref(), Some("app=\"x\""));
        assert_eq!(f("status.podIP").as_deref(), Some("198.18.1.7"));
        assert_eq!(f("status.hostIP").as_deref(), Some("198.18.1.1"));
        assert_eq!(f("spec.nodeName").as_deref(), Some("n1"));
        assert_eq!(f("spec.serviceAccountName").as_deref(), Some("sa"));
        assert_eq!(f("spec.unknown"), None);
    }

    #[test]
    fn files_are_written_with_modes_and_stale_ones_removed() {
        let dir = tempfile::tempdir().unwrap();
        let files: Files = vec![
            ("a".into(), b"1".to_vec(), 0o440),
            ("sub/b".into(), b"2".to_vec(), 0o644),
        ];
        write_files(dir.path(), &files, None).unwrap();
        assert_eq!(std::fs::read(dir.path().join("sub/b")).unwrap(), b"2");
        let mode = std::fs::metadata(dir.path().join("a"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o440);
        write_files(dir.path(), &vec![("a".into(), b"3".to_vec(), 0o440)], None).unwrap();
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"3");
        assert!(!dir.path().join("sub/b").exists());
        assert!(write_files(dir.path(), &vec![("../x".into(), vec![], 0o644)], None).is_err());
    }

    #[test]
    fn a_missing_source_is_named_unless_optional() {
        let data = BTreeMap::from([("k".to_owned(), b"v".to_vec())]);
        let files = source_files(Some(data), None, 0o600, None, "vol", "secret ns/s").unwrap();
        assert_eq!(files, vec![("k".to_owned(), b"v".to_vec(), 0o600)]);
        let none = source_files(None, None, 0o644, Some(true), "vol", "secret ns/s").unwrap();
        assert!(none.is_empty());
        for optional in [None, Some(false)] {
            let err = source_files(None, None, 0o644, optional, "vol", "secret ns/s").unwrap_err();
            assert_eq!(err.to_string(), "volume \"vol\": secret ns/s not found");
        }
    }

    #[test]
    fn items_select_keys_and_a_missing_key_is_named() {
        let data = BTreeMap::from([("k".to_owned(), b"v".to_vec())]);
        let items = [KeyToPath {
            key: "k".into(),
            path: "renamed".into(),
            mode: Some(0o400),
        }];
        let files = select(data.clone(), Some(&items), 0o644, "vol", "configMap ns/c").unwrap();
        assert_eq!(files, vec![("renamed".to_owned(), b"v".to_vec(), 0o400)]);
        let missing = [KeyToPath {
            key: "nope".into(),
            path: "p".into(),
            mode: None,
        }];
        let err = select(data, Some(&missing), 0o644, "vol", "configMap ns/c").unwrap_err();
        assert!(
            err.to_string().contains("key \"nope\" of configMap ns/c"),
            "{err}"
        );
    }
}
