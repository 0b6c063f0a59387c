//! The standalone install bundles (`manifests/topic-operator/`, `manifests/user-operator/`)
//! against the real API server: they apply into a namespace that enforces the Pod Security
//! `restricted` profile; their pod templates are admitted there as Pods (the API server rejects
//! any pod spec that does not comply); and their Roles grant what each operator does and nothing
//! else (checked with SubjectAccessReviews for the operator's ServiceAccount).

use anyhow::{Context, Result, ensure};
use e2e::objects::{
    FIELD_MANAGER, TestNamespace, client, documents, dynamic_api, install_crds, repo, yaml_files,
};
use k8s_openapi::api::{
    authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
    core::v1::Pod,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
    core::ObjectMeta,
};
use serde_json::Value;

const RESTRICTED: &[(&str, &str)] = &[
    ("pod-security.kubernetes.io/enforce", "restricted"),
    ("pod-security.kubernetes.io/enforce-version", "latest"),
];

/// Applies every document of a bundle in `ns`; returns the documents.
async fn apply_bundle(client: &Client, ns: &str, bundle: &str) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    for file in yaml_files(&repo().join("manifests").join(bundle))? {
        for doc in documents(&file)? {
            let api = dynamic_api(client, ns, &doc).await?;
            let name = doc["metadata"]["name"]
                .as_str()
                .context("document without a name")?
                .to_owned();
            api.patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&doc),
            )
            .await
            .with_context(|| format!("{}: applying {name}", file.display()))?;
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// Creates a Pod from the bundle's Deployment template: admitted only if it passes `restricted`.
async fn admit_pod_template(client: &Client, ns: &str, docs: &[Value]) -> Result<()> {
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .context("bundle without a Deployment")?;
    let template = &deployment["spec"]["template"];
    let mut pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": template["metadata"],
        "spec": template["spec"],
    }))?;
    pod.metadata = ObjectMeta {
        name: Some(format!(
            "{}-template",
            deployment["metadata"]["name"].as_str().unwrap_or("pod")
        )),
        ..pod.metadata
    };
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pod)
        .await
        .context("the pod template was refused under the restricted Pod Security profile")?;
    Ok(())
}

async fn allowed(
    client: &Client,
    ns: &str,
    sa: &str,
    verb: &str,
    group: &str,
    resource: &str,
    sub: Option<&str>,
) -> Result<bool> {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!("system:serviceaccount:{ns}:{sa}")),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
            ]),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(ns.into()),
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                subresource: sub.map(str::to_owned),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answer.status.map(|s| s.allowed).unwrap_or(false))
}

/// (verb, group, resource, subresource, expected).
type Check = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    bool,
);

async fn check_bundle(bundle: &str, sa: &str, checks: &[Check]) -> Result<()> {
    let client = client().await?;
    install_crds(&client).await?;
    let ns = TestNamespace::create(&client, bundle, RESTRICTED).await?;
    let result = async {
        let docs = apply_bundle(&client, &ns.name, bundle).await?;
        admit_pod_template(&client, &ns.name, &docs).await?;
        // Control: the namespace really enforces the profile, so the admission above means
        // something. A pod with no securityContext must be refused.
        let bare: Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "bare" },
            "spec": { "containers": [{ "name": "c", "image": "busybox" }] },
        }))?;
        let refused = Api::<Pod>::namespaced(client.clone(), &ns.name)
            .create(&PostParams::default(), &bare)
            .await;
        ensure!(
            matches!(&refused, Err(kube::Error::Api(e)) if e.code == 403 && e.message.contains("restricted")),
            "a non-compliant pod was not refused: {refused:?}"
        );
        for (verb, group, resource, sub, expected) in checks {
            let got = allowed(&client, &ns.name, sa, verb, group, resource, *sub).await?;
            ensure!(
                got == *expected,
                "{sa} {verb} {group}/{resource}{}: allowed={got}, expected {expected}",
                sub.map(|s| format!("/{s}")).unwrap_or_default()
            );
        }
        // Namespaced only: nothing in another namespace.
        ensure!(
            !allowed(&client, "default", sa, "list", "", "configmaps", None).await?
                && !allowed(&client, "default", sa, "list", "", "secrets", None).await?,
            "{sa} must have no rights outside its namespace"
        );
        anyhow::Ok(())
    }
    .await;
    ns.delete().await;
    result
}

#[tokio::test]
async fn topic_operator_bundle_is_restricted_and_least_privilege() -> Result<()> {
    check_bundle(
        "topic-operator",
        "oxbow-topic-operator",
        &[
            ("watch", "kafka.oxbow.rs", "kafkatopics", None, true),
            ("create", "kafka.oxbow.rs", "kafkatopics", None, true),
            ("patch", "kafka.oxbow.rs", "kafkatopics", None, true),
            ("delete", "kafka.oxbow.rs", "kafkatopics", None, true),
            (
                "patch",
                "kafka.oxbow.rs",
                "kafkatopics",
                Some("status"),
                true,
            ),
            ("patch", "", "configmaps", None, true),
            ("create", "events.k8s.io", "events", None, true),
            // Not needed, so not granted.
            ("get", "", "secrets", None, false),
            ("delete", "", "configmaps", None, false),
            ("list", "kafka.oxbow.rs", "kafkausers", None, false),
            ("create", "", "pods", None, false),
        ],
    )
    .await
}

#[tokio::test]
async fn user_operator_bundle_is_restricted_and_least_privilege() -> Result<()> {
    check_bundle(
        "user-operator",
        "oxbow-user-operator",
        &[
            ("watch", "kafka.oxbow.rs", "kafkausers", None, true),
            ("patch", "kafka.oxbow.rs", "kafkausers", None, true),
            (
                "patch",
                "kafka.oxbow.rs",
                "kafkausers",
                Some("status"),
                true,
            ),
            ("watch", "", "secrets", None, true),
            ("create", "", "secrets", None, true),
            ("patch", "", "secrets", None, true),
            ("create", "events.k8s.io", "events", None, true),
            // Not needed, so not granted: Secrets go with their KafkaUser by garbage collection.
            ("delete", "", "secrets", None, false),
            ("delete", "kafka.oxbow.rs", "kafkausers", None, false),
            ("list", "kafka.oxbow.rs", "kafkatopics", None, false),
            ("list", "", "configmaps", None, false),
        ],
    )
    .await
}
