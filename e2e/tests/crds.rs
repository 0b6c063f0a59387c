//! The CRDs of `manifests/crds/` against the testbed's real API server: they install and become
//! Established; every example of `manifests/examples/` is accepted and reads back unchanged (no
//! field pruned) and as the Rust types; every invalid fixture of `tests/fixtures/invalid/` is
//! refused with 422 Invalid and a message naming the field; the status and scale subresources
//! work with what the operators write. May touch: the testbed's API server (CRDs, and a fresh
//! namespace per test, deleted at the end).
//!
//! Fixture convention: each file starts with `# expect: <text the rejection message contains>`.
//! A file with one document is refused on create. A file with two documents is an update case:
//! the first is created (and must be accepted), then the second's `spec` is merge-patched over it
//! and must be refused.

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;
use shared_crds::{
    Condition, Kafka, KafkaNodePool, KafkaTopic, KafkaTopicStatus, KafkaUser,
    condition::stamp_transitions,
};

use e2e::objects::{
    FIELD_MANAGER, client, documents, dynamic_api, in_namespace, install_crds, repo, to_dynamic,
    yaml_files,
};

/// Reads a stored object back through the Rust type of its kind.
async fn read_typed(client: &Client, ns: &str, kind: &str, name: &str) -> Result<()> {
    match kind {
        "Kafka" => drop(
            Api::<Kafka>::namespaced(client.clone(), ns)
                .get(name)
                .await?,
        ),
        "KafkaNodePool" => drop(
            Api::<KafkaNodePool>::namespaced(client.clone(), ns)
                .get(name)
                .await?,
        ),
        "KafkaTopic" => drop(
            Api::<KafkaTopic>::namespaced(client.clone(), ns)
                .get(name)
                .await?,
        ),
        "KafkaUser" => drop(
            Api::<KafkaUser>::namespaced(client.clone(), ns)
                .get(name)
                .await?,
        ),
        other => bail!("unexpected kind {other}"),
    }
    Ok(())
}

#[tokio::test]
async fn crds_install_and_become_established() -> Result<()> {
    let client = client().await?;
    let names = install_crds(&client).await?;
    let mut expected = vec![
        "kafkanodepools.kafka.oxbow.rs",
        "kafkas.kafka.oxbow.rs",
        "kafkatopics.kafka.oxbow.rs",
        "kafkausers.kafka.oxbow.rs",
    ];
    expected.sort();
    let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, expected);
    // Applying the same manifests again is a no-op, not a conflict.
    install_crds(&client).await?;
    Ok(())
}

#[tokio::test]
async fn examples_are_accepted_and_read_back_unchanged() -> Result<()> {
    in_namespace("crds-examples", |client, ns| async move {
        let mut created = 0;
        for file in yaml_files(&repo().join("manifests/examples"))? {
            for doc in documents(&file)? {
                let obj = to_dynamic(&doc)?;
                let name = obj
                    .metadata
                    .name
                    .clone()
                    .context("example without a name")?;
                let api = dynamic_api(&client, &ns, &doc).await?;
                api.create(&PostParams::default(), &obj)
                    .await
                    .with_context(|| format!("{}: creating {name}", file.display()))?;
                let back = api.get(&name).await?;
                assert_eq!(
                    back.data["spec"],
                    doc["spec"],
                    "{}: {name} did not read back unchanged (a field was pruned or defaulted)",
                    file.display()
                );
                assert_eq!(
                    back.metadata.labels,
                    obj.metadata.labels,
                    "{}: {name} labels",
                    file.display()
                );
                let kind = doc["kind"].as_str().unwrap_or_default();
                read_typed(&client, &ns, kind, &name)
                    .await
                    .with_context(|| format!("{}: reading {name} as {kind}", file.display()))?;
                created += 1;
            }
        }
        assert_eq!(created, 6, "expected six example resources");
        Ok(())
    })
    .await
}

/// What went wrong with one fixture, or None when it was refused as expected.
async fn check_fixture(client: &Client, ns: &str, file: &Path) -> Result<Option<String>> {
    let text = std::fs::read_to_string(file)?;
    let expect = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# expect: "))
        .with_context(|| format!("{} must start with `# expect: `", file.display()))?
        .trim()
        .to_string();
    let docs = documents(file)?;
    let (first, update) = match docs.as_slice() {
        [only] => (only, None),
        [first, second] => (first, Some(second)),
        other => bail!(
            "{}: expected one or two documents, found {}",
            file.display(),
            other.len()
        ),
    };
    let api = dynamic_api(client, ns, first).await?;
    let obj = to_dynamic(first)?;
    let created = api.create(&PostParams::default(), &obj).await;
    let outcome = match update {
        None => created,
        Some(second) => {
            if let Err(e) = created {
                return Ok(Some(format!(
                    "the first document must be accepted, but: {e}"
                )));
            }
            let name = obj
                .metadata
                .name
                .clone()
                .context("fixture without a name")?;
            let patch = json!({ "spec": second["spec"] });
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
        }
    };
    Ok(match outcome {
        Ok(_) => Some(format!(
            "was accepted; expected a rejection containing `{expect}`"
        )),
        Err(kube::Error::Api(status)) => {
            if status.code != 422 || status.reason != "Invalid" {
                Some(format!(
                    "expected 422 Invalid, got {} {}: {}",
                    status.code, status.reason, status.message
                ))
            } else if !status.message.contains(&expect) {
                Some(format!(
                    "message `{}` does not contain `{expect}`",
                    status.message
                ))
            } else {
                None
            }
        }
        Err(e) => Some(format!("unexpected error: {e}")),
    })
}

#[tokio::test]
async fn invalid_fixtures_are_rejected_naming_the_field() -> Result<()> {
    in_namespace("crds-invalid", |client, ns| async move {
        let files = yaml_files(&repo().join("e2e/tests/fixtures/invalid"))?;
        ensure!(
            files.len() >= 12,
            "expected at least 12 invalid fixtures, found {}",
            files.len()
        );
        let mut problems = Vec::new();
        for file in &files {
            if let Some(problem) = check_fixture(&client, &ns, file).await? {
                problems.push(format!(
                    "{}: {problem}",
                    file.file_name().unwrap_or_default().to_string_lossy()
                ));
            }
        }
        assert!(
            problems.is_empty(),
            "{} fixture(s) misbehaved:\n{}",
            problems.len(),
            problems.join("\n")
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn status_as_the_operators_write_it_is_accepted() -> Result<()> {
    in_namespace("crds-status", |client, ns| async move {
        let api: Api<KafkaTopic> = Api::namespaced(client.clone(), &ns);
        let topic: KafkaTopic = serde_json::from_value(json!({
            "apiVersion": "kafka.oxbow.rs/v1beta1",
            "kind": "KafkaTopic",
            "metadata": {"name": "status-topic", "labels": {"oxbow.rs/cluster": "my-cluster"}},
            "spec": {"partitions": 1},
        }))?;
        let created = api.create(&PostParams::default(), &topic).await?;
        let now =
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time("2025-01-02T03:04:05Z".parse()?);
        let status = KafkaTopicStatus {
            conditions: Some(stamp_transitions(
                &[],
                vec![Condition::ready("Reconciled", "in sync")],
                &now,
            )),
            observed_generation: created.metadata.generation,
            topic_name: Some("status-topic".into()),
            topic_id: Some("Xq8fI0ZxQ6uFWyGXkY0Yqw".into()),
        };
        let patch =
            json!({"apiVersion": "kafka.oxbow.rs/v1beta1", "kind": "KafkaTopic", "status": status});
        api.patch_status(
            "status-topic",
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .context("applying status")?;
        let back = api.get("status-topic").await?;
        assert_eq!(back.status, Some(status));
        assert_eq!(
            back.spec, topic.spec,
            "a status write leaves the spec alone"
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn node_pools_scale_through_the_scale_subresource() -> Result<()> {
    in_namespace("crds-scale", |client, ns| async move {
        let api: Api<KafkaNodePool> = Api::namespaced(client.clone(), &ns);
        let pool: KafkaNodePool = serde_json::from_value(json!({
            "apiVersion": "kafka.oxbow.rs/v1beta1",
            "kind": "KafkaNodePool",
            "metadata": {"name": "brokers", "labels": {"oxbow.rs/cluster": "my-cluster"}},
            "spec": {"replicas": 3, "roles": ["broker"], "storage": {"type": "ephemeral"}},
        }))?;
        api.create(&PostParams::default(), &pool).await?;
        let scale = api.get_scale("brokers").await?;
        assert_eq!(scale.spec.and_then(|s| s.replicas), Some(3));
        api.patch_scale(
            "brokers",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await?;
        assert_eq!(api.get("brokers").await?.spec.replicas, 5);
        Ok(())
    })
    .await
}
