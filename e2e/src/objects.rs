//! Kubernetes object helpers shared by the integration tests: reading YAML manifests, installing
//! the CRDs, discovering kinds, applying documents dynamically, and fresh namespaces that are
//! removed afterwards even when an assertion fails. May touch: the testbed's API server.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, anyhow, ensure};
use k8s_openapi::{
    api::core::v1::Namespace,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client,
    api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind, ObjectMeta, TypeMeta},
    discovery,
    runtime::wait::{await_condition, conditions},
};
use serde::Deserialize;
use serde_json::Value;

/// Field manager of objects the tests apply.
pub const FIELD_MANAGER: &str = "oxbow-e2e";
/// How long the API server gets to establish the CRDs and serve their group.
const DEADLINE: Duration = Duration::from_secs(60);

/// The repository root.
pub fn repo() -> PathBuf {
    crate::cache::repo_root()
}

/// The `.yaml` files of a folder, sorted.
pub fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The non-empty YAML documents of a file.
pub fn documents(path: &Path) -> Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value =
            Value::deserialize(doc).with_context(|| format!("parsing {}", path.display()))?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// A client for the running testbed.
pub async fn client() -> Result<Client> {
    let env = crate::env::TestEnv::from_env()?;
    env.kube_client().await
}

/// Installs the CRDs from `manifests/crds/` by server-side apply and waits until each is
/// Established. Idempotent, so every test can call it.
pub async fn install_crds(client: &Client) -> Result<Vec<String>> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    for file in yaml_files(&repo().join("manifests/crds"))? {
        let text = std::fs::read_to_string(&file)?;
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
        let name = crd.metadata.name.clone().context("CRD without a name")?;
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .with_context(|| format!("applying {}", file.display()))?;
        names.push(name);
    }
    ensure!(
        names.len() == 4,
        "expected 4 CRDs in manifests/crds, found {names:?}"
    );
    for name in &names {
        tokio::time::timeout(
            DEADLINE,
            await_condition(api.clone(), name, conditions::is_crd_established()),
        )
        .await
        .map_err(|_| anyhow!("CRD {name} not Established within {DEADLINE:?}"))?
        .with_context(|| format!("watching CRD {name}"))?;
    }
    Ok(names)
}

/// The API resource of `apiVersion`/`kind`, found by discovery. A just-established CRD can take
/// a moment to appear in discovery, so this retries until the deadline.
pub async fn api_resource(client: &Client, api_version: &str, kind: &str) -> Result<ApiResource> {
    let gvk = GroupVersionKind::try_from(&TypeMeta {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
    })?;
    let start = Instant::now();
    loop {
        match discovery::pinned_kind(client, &gvk).await {
            Ok((resource, _)) => return Ok(resource),
            Err(e) if start.elapsed() > DEADLINE => {
                return Err(e).with_context(|| format!("discovering {api_version} {kind}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// A fresh namespace for one test, deleted (best effort) by [`TestNamespace::delete`].
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

impl TestNamespace {
    /// A namespace named `<test>-<unique suffix>` with the given labels.
    pub async fn create(
        client: &Client,
        test: &str,
        labels: &[(&str, &str)],
    ) -> Result<TestNamespace> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let name = format!("{test}-{:x}", nanos % 0xffff_ffff_ffff);
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(labels),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        Ok(TestNamespace {
            name,
            client: client.clone(),
        })
    }

    /// Deletes the namespace (best effort; the controller manager finishes it).
    pub async fn delete(self) {
        let _ = Api::<Namespace>::all(self.client)
            .delete(&self.name, &DeleteParams::default())
            .await;
    }
}

/// Runs `body` in a fresh namespace (named after `test`) after installing the CRDs, deleting the namespace afterwards
/// whatever the outcome, failed assertions included.
pub async fn in_namespace<F, Fut>(test: &str, body: F) -> Result<()>
where
    F: FnOnce(Client, String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    use futures::FutureExt;
    let client = client().await?;
    install_crds(&client).await?;
    let ns = TestNamespace::create(&client, test, &[]).await?;
    let outcome = std::panic::AssertUnwindSafe(body(client.clone(), ns.name.clone()))
        .catch_unwind()
        .await;
    ns.delete().await;
    match outcome {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// A document as a dynamic object.
pub fn to_dynamic(doc: &Value) -> Result<DynamicObject> {
    serde_json::from_value(doc.clone()).context("document is not a Kubernetes object")
}

/// The namespaced API of a document's kind.
pub async fn dynamic_api(client: &Client, ns: &str, doc: &Value) -> Result<Api<DynamicObject>> {
    let api_version = doc["apiVersion"]
        .as_str()
        .context("document without apiVersion")?;
    let kind = doc["kind"].as_str().context("document without kind")?;
    let resource = api_resource(client, api_version, kind).await?;
    Ok(Api::namespaced_with(client.clone(), ns, &resource))
}
