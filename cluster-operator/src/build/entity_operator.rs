//! The topic and user operators of a cluster (`spec.entityOperator`): for each one present a
//! ServiceAccount and Deployment in the cluster's namespace, and a Role and RoleBinding in the
//! namespace it watches granting exactly what the operator calls. Pure: no I/O.
//!
//! Both run the single Oxbow image (the binary chosen by `command`) and connect to Kafka as the
//! manifests' standalone bundles would, but over the `REPLICATION` listener
//! (`<c>-kafka-bootstrap:9091`, SSL) with the client certificate the cluster CA issued for them
//! (Secret `<c>-topic-operator-certs` / `<c>-user-operator-certs`), mounted read-only. The pods
//! pass the Pod Security `restricted` profile; the service account token stays mounted because
//! both operators call the Kubernetes API.
//!
//! **Owner references.** Kubernetes forbids an owner in another namespace, so when an operator
//! watches a namespace other than the cluster's, its Role and RoleBinding there carry no owner
//! reference but the cluster's labels plus `oxbow.rs/cluster-namespace: <the Kafka's
//! namespace>`; the reconcile finds them by those labels and deletes them when the Kafka or the
//! operator goes away or the watched namespace changes (see `crate::rbac_elsewhere`).
//! Everything in the cluster's namespace is owned by the Kafka resource.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, KeyToPath,
    ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, Probe as KubeProbe,
    ProjectedVolumeSource, ResourceRequirements, SeccompProfile, SecretProjection,
    SecretVolumeSource, SecurityContext, ServiceAccount, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use shared_crds::common::Probe;
use shared_crds::{labels, names};

use super::kafka_config::REPLICATION_PORT;
use super::meta;
use crate::model::ResolvedCluster;
use crate::pki::node_certs::{self, CA_CERT, TLS_CERT, TLS_KEY};

/// The numeric user and group the operators run as (non-root, as the `restricted` profile
/// requires; the distroless `nonroot` user).
pub const OPERATOR_USER_ID: i64 = 65532;
/// Where an operator's Kafka client certificate Secret is mounted.
pub const KAFKA_CERTS_DIR: &str = "/etc/oxbow/kafka";
/// Where the user operator's clients CA certificate (`ca.crt`) and key (`ca.key`) are mounted.
pub const CLIENTS_CA_DIR: &str = "/etc/oxbow/clients-ca";
/// The topic operator's `/metrics`, `/healthz` and `/readyz` port (its default).
pub const TOPIC_OPERATOR_HTTP_PORT: i32 = 8080;
/// The user operator's `/metrics`, `/healthz` and `/readyz` port (its default).
pub const USER_OPERATOR_HTTP_PORT: i32 = 8081;
/// `reconciliationIntervalMs` when the spec has none (the CRD's documented default).
pub const DEFAULT_RECONCILIATION_INTERVAL_MS: i64 = 120_000;
/// Name of the container port both probes use.
pub const HTTP_PORT_NAME: &str = "http";

/// Settings of the cluster operator that shape the entity operators.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntityOperatorSettings {
    /// The Oxbow image, used unless the spec names one.
    pub operator_image: String,
    /// Revision of the topic operator's certificate Secret (see [`meta::data_revision`]); put
    /// on the pod template as [`meta::SECRET_REVISION_ANNOTATION`], so that a renewed
    /// certificate rolls the Deployment. `None`: no annotation.
    pub topic_operator_secret_revision: Option<String>,
    /// Revision of the user operator's Secrets, as for the topic operator. The user operator
    /// reads the mounted clients CA files on every pass, so including the clients CA's
    /// revision here is not required, but rolls it as soon as the CA changes.
    pub user_operator_secret_revision: Option<String>,
}

/// Everything built for the entity operators; empty vectors when none is configured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EntityOperatorObjects {
    /// One per operator, in the cluster's namespace.
    pub service_accounts: Vec<ServiceAccount>,
    /// One per operator, in its watched namespace.
    pub roles: Vec<Role>,
    /// One per operator, in its watched namespace, binding the Role to the ServiceAccount.
    pub role_bindings: Vec<RoleBinding>,
    /// One per operator, in the cluster's namespace.
    pub deployments: Vec<Deployment>,
}

/// Labels selecting the topic operator's pod (for its Deployment and the NetworkPolicy).
pub fn topic_operator_pod_selector_labels(cluster: &ResolvedCluster) -> BTreeMap<String, String> {
    pod_selector_labels(cluster, &names::topic_operator(&cluster.name))
}

/// Labels selecting the user operator's pod (for its Deployment and the NetworkPolicy).
pub fn user_operator_pod_selector_labels(cluster: &ResolvedCluster) -> BTreeMap<String, String> {
    pod_selector_labels(cluster, &names::user_operator(&cluster.name))
}

fn pod_selector_labels(cluster: &ResolvedCluster, name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::CLUSTER.to_owned(), cluster.name.clone()),
        (labels::NAME.to_owned(), name.to_owned()),
    ])
}

/// The Role rules of the topic operator: exactly the calls it makes (the same rules as
/// `manifests/topic-operator/02-role.yaml`). KafkaTopics: watched and listed, created for
/// topics found in Kafka, patched (spec, finalizer), deleted when their topic is deleted in
/// Kafka; their status patched; state ConfigMaps listed and written by server-side apply;
/// Events.
pub fn topic_operator_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            "kafka.oxbow.rs",
            "kafkatopics",
            &["get", "list", "watch", "create", "patch", "delete"],
        ),
        rule("kafka.oxbow.rs", "kafkatopics/status", &["get", "patch"]),
        rule("", "configmaps", &["get", "list", "create", "patch"]),
        rule("events.k8s.io", "events", &["create", "patch"]),
    ]
}

/// The Role rules of the user operator: exactly the calls it makes (the same rules as
/// `manifests/user-operator/02-role.yaml`). KafkaUsers: watched, patched (the force-renew
/// annotation); their status patched; Secrets: user Secrets written by server-side apply,
/// password Secrets read, every Secret's metadata watched; Events.
pub fn user_operator_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            "kafka.oxbow.rs",
            "kafkausers",
            &["get", "list", "watch", "patch"],
        ),
        rule("kafka.oxbow.rs", "kafkausers/status", &["get", "patch"]),
        rule("", "secrets", &["get", "list", "watch", "create", "patch"]),
        rule("events.k8s.io", "events", &["create", "patch"]),
    ]
}

fn rule(api_group: &str, resource: &str, verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![api_group.to_owned()]),
        resources: Some(vec![resource.to_owned()]),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

/// What differs between the two operators.
struct Operator<'a> {
    name: String,
    component: &'static str,
    /// The binary in the image.
    binary: &'static str,
    http_port: i32,
    watched_namespace: String,
    image: Option<&'a str>,
    reconciliation_interval_ms: Option<i64>,
    resources: Option<&'a ResourceRequirements>,
    liveness_probe: Option<&'a Probe>,
    readiness_probe: Option<&'a Probe>,
    secret_revision: Option<&'a str>,
    certs_secret: String,
    rules: Vec<PolicyRule>,
    selector: BTreeMap<String, String>,
    /// Settings only this operator has.
    extra_env: Vec<EnvVar>,
    extra_volumes: Vec<(Volume, VolumeMount)>,
}

/// The ServiceAccounts, Roles, RoleBindings and Deployments of the operators `cluster`'s
/// `spec.entityOperator` asks for (an absent operator gets nothing), topic operator first.
pub fn entity_operator_objects(
    cluster: &ResolvedCluster,
    settings: &EntityOperatorSettings,
) -> EntityOperatorObjects {
    let mut objects = EntityOperatorObjects::default();
    let Some(spec) = &cluster.entity_operator else {
        return objects;
    };
    let watched = |ns: &Option<String>| ns.clone().unwrap_or_else(|| cluster.namespace.clone());
    let mut operators = Vec::new();
    if let Some(to) = &spec.topic_operator {
        operators.push(Operator {
            name: names::topic_operator(&cluster.name),
            component: meta::TOPIC_OPERATOR_COMPONENT,
            binary: "/usr/local/bin/topic-operator",
            http_port: TOPIC_OPERATOR_HTTP_PORT,
            watched_namespace: watched(&to.watched_namespace),
            image: to.image.as_deref(),
            reconciliation_interval_ms: to.reconciliation_interval_ms,
            resources: to.resources.as_ref(),
            liveness_probe: to.liveness_probe.as_ref(),
            readiness_probe: to.readiness_probe.as_ref(),
            secret_revision: settings.topic_operator_secret_revision.as_deref(),
            certs_secret: names::topic_operator_certs(&cluster.name),
            rules: topic_operator_rules(),
            selector: topic_operator_pod_selector_labels(cluster),
            extra_env: Vec::new(),
            extra_volumes: Vec::new(),
        });
    }
    if let Some(uo) = &spec.user_operator {
        operators.push(Operator {
            name: names::user_operator(&cluster.name),
            component: meta::USER_OPERATOR_COMPONENT,
            binary: "/usr/local/bin/user-operator",
            http_port: USER_OPERATOR_HTTP_PORT,
            watched_namespace: watched(&uo.watched_namespace),
            image: uo.image.as_deref(),
            reconciliation_interval_ms: uo.reconciliation_interval_ms,
            resources: uo.resources.as_ref(),
            liveness_probe: uo.liveness_probe.as_ref(),
            readiness_probe: uo.readiness_probe.as_ref(),
            secret_revision: settings.user_operator_secret_revision.as_deref(),
            certs_secret: names::user_operator_certs(&cluster.name),
            rules: user_operator_rules(),
            selector: user_operator_pod_selector_labels(cluster),
            extra_env: vec![
                env(
                    "OXBOW_CLIENTS_CA_CERT_FILE",
                    format!("{CLIENTS_CA_DIR}/ca.crt"),
                ),
                env(
                    "OXBOW_CLIENTS_CA_KEY_FILE",
                    format!("{CLIENTS_CA_DIR}/ca.key"),
                ),
                env(
                    "OXBOW_SECRET_PREFIX",
                    uo.secret_prefix.clone().unwrap_or_default(),
                ),
                env("OXBOW_IGNORED_USERS", ignored_users(cluster)),
            ],
            extra_volumes: vec![clients_ca_volume(cluster)],
        });
    }
    for operator in operators {
        objects
            .service_accounts
            .push(service_account(cluster, &operator));
        objects.roles.push(role(cluster, &operator));
        objects.role_bindings.push(role_binding(cluster, &operator));
        objects
            .deployments
            .push(deployment(cluster, settings, operator));
    }
    objects
}

fn operator_labels(cluster: &ResolvedCluster, operator: &Operator<'_>) -> BTreeMap<String, String> {
    meta::cluster_labels(cluster, operator.component, &operator.name)
}

/// Metadata in the watched namespace: owned by the Kafka only when that is its namespace;
/// elsewhere labelled with the Kafka's namespace instead, which is how they are found again.
fn watched_namespace_meta(cluster: &ResolvedCluster, operator: &Operator<'_>) -> ObjectMeta {
    let mut labels = operator_labels(cluster, operator);
    let elsewhere = operator.watched_namespace != cluster.namespace;
    if elsewhere {
        labels.extend(meta::elsewhere_labels(cluster));
    }
    let mut metadata = meta::object_meta(cluster, operator.name.clone(), labels, None, None);
    if elsewhere {
        metadata.namespace = Some(operator.watched_namespace.clone());
        metadata.owner_references = None;
    }
    metadata
}

fn service_account(cluster: &ResolvedCluster, operator: &Operator<'_>) -> ServiceAccount {
    ServiceAccount {
        metadata: meta::object_meta(
            cluster,
            operator.name.clone(),
            operator_labels(cluster, operator),
            None,
            None,
        ),
        ..ServiceAccount::default()
    }
}

fn role(cluster: &ResolvedCluster, operator: &Operator<'_>) -> Role {
    Role {
        metadata: watched_namespace_meta(cluster, operator),
        rules: Some(operator.rules.clone()),
    }
}

fn role_binding(cluster: &ResolvedCluster, operator: &Operator<'_>) -> RoleBinding {
    RoleBinding {
        metadata: watched_namespace_meta(cluster, operator),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: operator.name.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: operator.name.clone(),
            namespace: Some(cluster.namespace.clone()),
            api_group: None,
        }]),
    }
}

/// A variable with a literal value. An empty value is left out, as the API server stores it
/// (the container still sees the variable, empty), so that the applied Deployment compares
/// equal to the stored one.
fn env(name: &str, value: impl Into<String>) -> EnvVar {
    let value: String = value.into();
    EnvVar {
        name: name.to_owned(),
        value: (!value.is_empty()).then_some(value),
        value_from: None,
    }
}

/// Seconds from milliseconds, rounded up and at least 1 (the operators refuse 0).
fn interval_seconds(ms: Option<i64>) -> i64 {
    let ms = ms.unwrap_or(DEFAULT_RECONCILIATION_INTERVAL_MS).max(0);
    ((ms + 999) / 1000).max(1)
}

/// `OXBOW_IGNORED_USERS`: Oxbow's own principals (the Kafka nodes and the three operators),
/// whose names the user operator must never treat as users without a KafkaUser. The users of
/// `superUsers` are not listed: they may well have KafkaUsers of their own, which an ignored
/// name would leave unreconciled.
fn ignored_users(cluster: &ResolvedCluster) -> String {
    node_certs::super_user_principals(&cluster.name)
        .iter()
        .map(|principal| regex_escape(principal.strip_prefix("User:").unwrap_or(principal)))
        .collect::<Vec<_>>()
        .join("|")
}

/// Escapes the characters a regular expression gives a meaning to.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn clients_ca_volume(cluster: &ResolvedCluster) -> (Volume, VolumeMount) {
    let projection = |secret: String, key: &str| VolumeProjection {
        secret: Some(SecretProjection {
            name: secret,
            items: Some(vec![KeyToPath {
                key: key.to_owned(),
                path: key.to_owned(),
                mode: None,
            }]),
            optional: Some(false),
        }),
        ..VolumeProjection::default()
    };
    (
        Volume {
            name: "clients-ca".to_owned(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(vec![
                    projection(names::clients_ca_cert_secret(&cluster.name), "ca.crt"),
                    projection(names::clients_ca_key_secret(&cluster.name), "ca.key"),
                ]),
                default_mode: None,
            }),
            ..Volume::default()
        },
        VolumeMount {
            name: "clients-ca".to_owned(),
            mount_path: CLIENTS_CA_DIR.to_owned(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
    )
}

fn kafka_certs_volume(operator: &Operator<'_>) -> (Volume, VolumeMount) {
    (
        Volume {
            name: "kafka-certs".to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(operator.certs_secret.clone()),
                items: Some(
                    [TLS_CERT, TLS_KEY, CA_CERT]
                        .map(|key| KeyToPath {
                            key: key.to_owned(),
                            path: key.to_owned(),
                            mode: None,
                        })
                        .to_vec(),
                ),
                optional: Some(false),
                default_mode: None,
            }),
            ..Volume::default()
        },
        VolumeMount {
            name: "kafka-certs".to_owned(),
            mount_path: KAFKA_CERTS_DIR.to_owned(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
    )
}

fn probe(path: &str, timing: Option<&Probe>, default_period: i32) -> KubeProbe {
    let timing = timing.cloned().unwrap_or_default();
    KubeProbe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(HTTP_PORT_NAME.to_owned()),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: timing.initial_delay_seconds,
        timeout_seconds: timing.timeout_seconds,
        period_seconds: Some(timing.period_seconds.unwrap_or(default_period)),
        success_threshold: timing.success_threshold,
        failure_threshold: timing.failure_threshold,
        ..KubeProbe::default()
    }
}

fn deployment(
    cluster: &ResolvedCluster,
    settings: &EntityOperatorSettings,
    operator: Operator<'_>,
) -> Deployment {
    let labels = operator_labels(cluster, &operator);
    let mut env_vars = vec![
        env("OXBOW_NAMESPACE", operator.watched_namespace.clone()),
        env("OXBOW_CLUSTER", cluster.name.clone()),
        EnvVar {
            name: "POD_NAME".to_owned(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "metadata.name".to_owned(),
                    api_version: None,
                }),
                ..EnvVarSource::default()
            }),
        },
        env(
            "OXBOW_KAFKA_BOOTSTRAP_SERVERS",
            format!(
                "{}:{REPLICATION_PORT}",
                names::bootstrap_service(&cluster.name)
            ),
        ),
        env("OXBOW_KAFKA_SECURITY_PROTOCOL", "SSL"),
        env(
            "OXBOW_KAFKA_CA_FILE",
            format!("{KAFKA_CERTS_DIR}/{CA_CERT}"),
        ),
        env(
            "OXBOW_KAFKA_CERT_FILE",
            format!("{KAFKA_CERTS_DIR}/{TLS_CERT}"),
        ),
        env(
            "OXBOW_KAFKA_KEY_FILE",
            format!("{KAFKA_CERTS_DIR}/{TLS_KEY}"),
        ),
        env(
            "OXBOW_FULL_RECONCILIATION_INTERVAL_SECONDS",
            interval_seconds(operator.reconciliation_interval_ms).to_string(),
        ),
        env("OXBOW_HTTP_ADDR", format!("0.0.0.0:{}", operator.http_port)),
        env("OXBOW_LOG_FORMAT", "json"),
    ];
    let certs = kafka_certs_volume(&operator);
    env_vars.extend(operator.extra_env);
    let (volumes, mounts): (Vec<Volume>, Vec<VolumeMount>) =
        std::iter::once(certs).chain(operator.extra_volumes).unzip();
    let container = Container {
        name: operator.component.to_owned(),
        image: Some(
            operator
                .image
                .map(str::to_owned)
                .unwrap_or_else(|| settings.operator_image.clone()),
        ),
        command: Some(vec![operator.binary.to_owned()]),
        env: Some(env_vars),
        ports: Some(vec![ContainerPort {
            name: Some(HTTP_PORT_NAME.to_owned()),
            container_port: operator.http_port,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        liveness_probe: Some(probe("/healthz", operator.liveness_probe, 10)),
        readiness_probe: Some(probe("/readyz", operator.readiness_probe, 5)),
        resources: operator.resources.cloned(),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                add: None,
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    let annotations = operator.secret_revision.map(|revision| {
        BTreeMap::from([(
            meta::SECRET_REVISION_ANNOTATION.to_owned(),
            revision.to_owned(),
        )])
    });
    Deployment {
        metadata: meta::object_meta(cluster, operator.name.clone(), labels.clone(), None, None),
        spec: Some(DeploymentSpec {
            // One replica: neither operator elects a leader; two would race.
            replicas: Some(1),
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".to_owned()),
                rolling_update: None,
            }),
            selector: meta::selector(operator.selector),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations,
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(operator.name.clone()),
                    automount_service_account_token: Some(true),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(OPERATOR_USER_ID),
                        run_as_group: Some(OPERATOR_USER_ID),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".to_owned(),
                            localhost_profile: None,
                        }),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![container],
                    volumes: Some(volumes),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures;
    use rstest::rstest;

    const IMAGE: &str = "ghcr.io/oxbow-rs/oxbow:test";

    fn settings() -> EntityOperatorSettings {
        EntityOperatorSettings {
            operator_image: IMAGE.to_owned(),
            topic_operator_secret_revision: Some("to-rev".to_owned()),
            user_operator_secret_revision: None,
        }
    }

    fn build(fixture: &str) -> EntityOperatorObjects {
        entity_operator_objects(&test_fixtures::resolved(fixture), &settings())
    }

    fn deployment<'a>(objects: &'a EntityOperatorObjects, name: &str) -> &'a Deployment {
        objects
            .deployments
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no Deployment {name}"))
    }

    fn pod_spec(d: &Deployment) -> &PodSpec {
        d.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
    }

    fn container(d: &Deployment) -> &Container {
        let containers = &pod_spec(d).containers;
        assert_eq!(containers.len(), 1);
        &containers[0]
    }

    fn env_value(d: &Deployment, name: &str) -> Option<String> {
        let vars = container(d).env.as_deref().unwrap_or_default();
        let matching: Vec<&EnvVar> = vars.iter().filter(|v| v.name == name).collect();
        assert!(matching.len() <= 1, "{name} set twice");
        matching.first().and_then(|v| v.value.clone())
    }

    #[rstest]
    #[case::none("single-node", &[])]
    #[case::user_only("user-operator-only", &["users-user-operator"])]
    #[case::both("entity-operators", &["my-cluster-topic-operator", "my-cluster-user-operator"])]
    fn one_set_of_objects_per_configured_operator(
        #[case] fixture: &str,
        #[case] expected: &[&str],
    ) {
        let objects = build(fixture);
        let names = |metas: Vec<&ObjectMeta>| -> Vec<String> {
            metas.iter().map(|m| m.name.clone().unwrap()).collect()
        };
        assert_eq!(
            names(
                objects
                    .service_accounts
                    .iter()
                    .map(|o| &o.metadata)
                    .collect()
            ),
            expected
        );
        assert_eq!(
            names(objects.roles.iter().map(|o| &o.metadata).collect()),
            expected
        );
        assert_eq!(
            names(objects.role_bindings.iter().map(|o| &o.metadata).collect()),
            expected
        );
        assert_eq!(
            names(objects.deployments.iter().map(|o| &o.metadata).collect()),
            expected
        );
    }

    #[test]
    fn an_entity_operator_without_operators_builds_nothing() {
        let mut c = test_fixtures::resolved("single-node");
        c.entity_operator = Some(Default::default());
        assert_eq!(
            entity_operator_objects(&c, &settings()),
            EntityOperatorObjects::default()
        );
    }

    #[rstest]
    // The topic operator watches `topics`: its Role and RoleBinding live there, unowned.
    #[case::topic_operator(0, "topics", false)]
    #[case::user_operator(1, "kafka", true)]
    fn rbac_lives_in_the_watched_namespace_and_is_owned_only_there(
        #[case] index: usize,
        #[case] watched: &str,
        #[case] owned: bool,
    ) {
        let c = test_fixtures::resolved("entity-operators");
        let objects = entity_operator_objects(&c, &settings());
        let owners = Some(vec![meta::owner_reference(&c)]);
        let sa = &objects.service_accounts[index].metadata;
        let deployment = &objects.deployments[index].metadata;
        for m in [sa, deployment] {
            assert_eq!(m.namespace.as_deref(), Some("kafka"));
            assert_eq!(m.owner_references, owners);
        }
        let role = &objects.roles[index].metadata;
        let binding = &objects.role_bindings[index];
        for m in [role, &binding.metadata] {
            assert_eq!(m.namespace.as_deref(), Some(watched));
            assert_eq!(m.owner_references.is_some(), owned);
            assert_eq!(
                m.owner_references.is_some().then_some(()),
                owned.then_some(())
            );
            let l = m.labels.as_ref().unwrap();
            assert_eq!(l[labels::CLUSTER], "my-cluster");
            assert_eq!(
                l[labels::APP_COMPONENT],
                ["topic-operator", "user-operator"][index]
            );
            // Unowned objects carry the Kafka's namespace, which is how they are found again.
            assert_eq!(
                l.get(labels::CLUSTER_NAMESPACE).map(String::as_str),
                (!owned).then_some("kafka")
            );
        }
        assert_eq!(binding.role_ref.kind, "Role");
        assert_eq!(binding.role_ref.name, sa.name.clone().unwrap());
        assert_eq!(
            binding.subjects,
            Some(vec![Subject {
                kind: "ServiceAccount".to_owned(),
                name: sa.name.clone().unwrap(),
                namespace: Some("kafka".to_owned()),
                api_group: None,
            }])
        );
    }

    /// (API group, resource, verbs) of each rule.
    fn rule_table(rules: &[PolicyRule]) -> Vec<(String, String, Vec<String>)> {
        rules
            .iter()
            .map(|r| {
                let groups = r.api_groups.clone().unwrap_or_default();
                let resources = r.resources.clone().unwrap_or_default();
                assert_eq!((groups.len(), resources.len()), (1, 1), "{r:?}");
                assert!(r.resource_names.is_none() && r.non_resource_urls.is_none());
                (groups[0].clone(), resources[0].clone(), r.verbs.clone())
            })
            .collect()
    }

    #[rstest]
    #[case::topic_operator(0, &[
        ("kafka.oxbow.rs", "kafkatopics", "get list watch create patch delete"),
        ("kafka.oxbow.rs", "kafkatopics/status", "get patch"),
        ("", "configmaps", "get list create patch"),
        ("events.k8s.io", "events", "create patch"),
    ], "topic-operator")]
    #[case::user_operator(1, &[
        ("kafka.oxbow.rs", "kafkausers", "get list watch patch"),
        ("kafka.oxbow.rs", "kafkausers/status", "get patch"),
        ("", "secrets", "get list watch create patch"),
        ("events.k8s.io", "events", "create patch"),
    ], "user-operator")]
    fn roles_grant_exactly_what_the_operators_use(
        #[case] index: usize,
        #[case] expected: &[(&str, &str, &str)],
        #[case] bundle: &str,
    ) {
        let objects = build("entity-operators");
        let rules = objects.roles[index].rules.clone().unwrap();
        let expected: Vec<(String, String, Vec<String>)> = expected
            .iter()
            .map(|(g, r, v)| {
                (
                    g.to_string(),
                    r.to_string(),
                    v.split(' ').map(str::to_owned).collect(),
                )
            })
            .collect();
        assert_eq!(rule_table(&rules), expected);
        // The standalone bundle's Role, checked against a real API server by
        // e2e/tests/manifests.rs, grants the same.
        assert_eq!(rules, bundle_role_rules(bundle));
    }

    fn bundle_role_rules(operator: &str) -> Vec<PolicyRule> {
        let path = format!(
            "{}/../manifests/{operator}/02-role.yaml",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        text.split("\n---")
            .map(|doc| serde_yaml::from_str::<serde_yaml::Value>(doc).expect("YAML"))
            .find(|doc| doc.get("kind").and_then(|k| k.as_str()) == Some("Role"))
            .map(|doc| serde_yaml::from_value::<Role>(doc).expect("a Role"))
            .and_then(|role| role.rules)
            .expect("rules")
    }

    #[rstest]
    #[case::to_namespace("my-cluster-topic-operator", "OXBOW_NAMESPACE", Some("topics"))]
    #[case::to_cluster("my-cluster-topic-operator", "OXBOW_CLUSTER", Some("my-cluster"))]
    #[case::to_bootstrap(
        "my-cluster-topic-operator",
        "OXBOW_KAFKA_BOOTSTRAP_SERVERS",
        Some("my-cluster-kafka-bootstrap:9091")
    )]
    #[case::to_protocol(
        "my-cluster-topic-operator",
        "OXBOW_KAFKA_SECURITY_PROTOCOL",
        Some("SSL")
    )]
    #[case::to_ca(
        "my-cluster-topic-operator",
        "OXBOW_KAFKA_CA_FILE",
        Some("/etc/oxbow/kafka/ca.crt")
    )]
    #[case::to_cert(
        "my-cluster-topic-operator",
        "OXBOW_KAFKA_CERT_FILE",
        Some("/etc/oxbow/kafka/tls.crt")
    )]
    #[case::to_key(
        "my-cluster-topic-operator",
        "OXBOW_KAFKA_KEY_FILE",
        Some("/etc/oxbow/kafka/tls.key")
    )]
    #[case::to_interval_rounded_up(
        "my-cluster-topic-operator",
        "OXBOW_FULL_RECONCILIATION_INTERVAL_SECONDS",
        Some("91")
    )]
    #[case::to_http("my-cluster-topic-operator", "OXBOW_HTTP_ADDR", Some("0.0.0.0:8080"))]
    #[case::to_log_format("my-cluster-topic-operator", "OXBOW_LOG_FORMAT", Some("json"))]
    #[case::to_no_sasl("my-cluster-topic-operator", "OXBOW_KAFKA_SASL_MECHANISM", None)]
    #[case::to_no_clients_ca("my-cluster-topic-operator", "OXBOW_CLIENTS_CA_CERT_FILE", None)]
    #[case::uo_namespace("my-cluster-user-operator", "OXBOW_NAMESPACE", Some("kafka"))]
    #[case::uo_bootstrap(
        "my-cluster-user-operator",
        "OXBOW_KAFKA_BOOTSTRAP_SERVERS",
        Some("my-cluster-kafka-bootstrap:9091")
    )]
    #[case::uo_cert(
        "my-cluster-user-operator",
        "OXBOW_KAFKA_CERT_FILE",
        Some("/etc/oxbow/kafka/tls.crt")
    )]
    #[case::uo_default_interval(
        "my-cluster-user-operator",
        "OXBOW_FULL_RECONCILIATION_INTERVAL_SECONDS",
        Some("120")
    )]
    #[case::uo_http("my-cluster-user-operator", "OXBOW_HTTP_ADDR", Some("0.0.0.0:8081"))]
    #[case::uo_clients_ca_cert(
        "my-cluster-user-operator",
        "OXBOW_CLIENTS_CA_CERT_FILE",
        Some("/etc/oxbow/clients-ca/ca.crt")
    )]
    #[case::uo_clients_ca_key(
        "my-cluster-user-operator",
        "OXBOW_CLIENTS_CA_KEY_FILE",
        Some("/etc/oxbow/clients-ca/ca.key")
    )]
    #[case::uo_no_ca_secrets("my-cluster-user-operator", "OXBOW_CLIENTS_CA_CERT_SECRET", None)]
    #[case::uo_prefix("my-cluster-user-operator", "OXBOW_SECRET_PREFIX", Some("kafka-"))]
    #[case::uo_ignored(
        "my-cluster-user-operator",
        "OXBOW_IGNORED_USERS",
        Some(
            "CN=my\\-cluster\\-kafka,O=io\\.oxbow|CN=my\\-cluster\\-topic\\-operator,O=io\\.oxbow|CN=my\\-cluster\\-user\\-operator,O=io\\.oxbow|CN=my\\-cluster\\-cluster\\-operator,O=io\\.oxbow"
        )
    )]
    fn environment(#[case] deployment_name: &str, #[case] name: &str, #[case] value: Option<&str>) {
        let objects = build("entity-operators");
        let d = deployment(&objects, deployment_name);
        assert_eq!(env_value(d, name).as_deref(), value);
    }

    #[test]
    fn every_setting_is_an_oxbow_variable_and_pod_name_comes_from_the_pod() {
        let objects = build("entity-operators");
        for d in &objects.deployments {
            for var in container(d).env.as_deref().unwrap() {
                if var.name == "POD_NAME" {
                    let field = var.value_from.as_ref().and_then(|v| v.field_ref.as_ref());
                    assert_eq!(field.map(|f| f.field_path.as_str()), Some("metadata.name"));
                } else {
                    assert!(var.name.starts_with("OXBOW_"), "{}", var.name);
                    assert!(var.value.is_some(), "{}", var.name);
                }
            }
        }
    }

    #[test]
    fn without_a_secret_prefix_the_prefix_is_empty() {
        let d = &build("user-operator-only").deployments[0];
        let vars = container(d).env.as_deref().unwrap_or_default();
        let prefix = vars.iter().find(|v| v.name == "OXBOW_SECRET_PREFIX");
        assert!(
            prefix.is_some_and(|v| v.value.is_none() && v.value_from.is_none()),
            "{prefix:?}"
        );
        assert_eq!(env_value(d, "OXBOW_NAMESPACE").as_deref(), Some("kafka"));
    }

    #[rstest]
    #[case::zero(Some(0), 1)]
    #[case::below_a_second(Some(1), 1)]
    #[case::exact(Some(60_000), 60)]
    #[case::rounded_up(Some(60_001), 61)]
    #[case::default(None, 120)]
    fn reconciliation_interval_in_seconds(#[case] ms: Option<i64>, #[case] seconds: i64) {
        assert_eq!(interval_seconds(ms), seconds);
    }

    /// (volume, mount path, (source Secret, key) of each file) of one mount.
    type Mount = (String, String, Vec<(String, String)>);

    fn mounts(d: &Deployment) -> Vec<Mount> {
        let volumes = pod_spec(d).volumes.as_deref().unwrap();
        container(d)
            .volume_mounts
            .as_deref()
            .unwrap()
            .iter()
            .map(|m| {
                assert_eq!(m.read_only, Some(true), "{}", m.name);
                let v = volumes.iter().find(|v| v.name == m.name).unwrap();
                let sources: Vec<(String, String)> = if let Some(s) = &v.secret {
                    s.items
                        .iter()
                        .flatten()
                        .map(|i| (s.secret_name.clone().unwrap(), i.key.clone()))
                        .collect()
                } else {
                    let p = v.projected.as_ref().unwrap();
                    p.sources
                        .iter()
                        .flatten()
                        .flat_map(|s| {
                            let s = s.secret.as_ref().unwrap();
                            s.items
                                .iter()
                                .flatten()
                                .map(|i| (s.name.clone(), i.key.clone()))
                        })
                        .collect()
                };
                (m.name.clone(), m.mount_path.clone(), sources)
            })
            .collect()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn certificates_are_mounted_read_only() {
        let objects = build("entity-operators");
        let to = deployment(&objects, "my-cluster-topic-operator");
        assert_eq!(
            mounts(to),
            [(
                "kafka-certs".to_owned(),
                "/etc/oxbow/kafka".to_owned(),
                pairs(&[
                    ("my-cluster-topic-operator-certs", "tls.crt"),
                    ("my-cluster-topic-operator-certs", "tls.key"),
                    ("my-cluster-topic-operator-certs", "ca.crt"),
                ])
            )]
        );
        let uo = deployment(&objects, "my-cluster-user-operator");
        assert_eq!(
            mounts(uo),
            [
                (
                    "kafka-certs".to_owned(),
                    "/etc/oxbow/kafka".to_owned(),
                    pairs(&[
                        ("my-cluster-user-operator-certs", "tls.crt"),
                        ("my-cluster-user-operator-certs", "tls.key"),
                        ("my-cluster-user-operator-certs", "ca.crt"),
                    ])
                ),
                (
                    "clients-ca".to_owned(),
                    "/etc/oxbow/clients-ca".to_owned(),
                    pairs(&[
                        ("my-cluster-clients-ca-cert", "ca.crt"),
                        ("my-cluster-clients-ca", "ca.key"),
                    ])
                ),
            ]
        );
    }

    /// The Pod Security `restricted` profile, as far as a pod spec decides it.
    fn restricted_violations(pod: &PodSpec) -> Vec<String> {
        let mut out = Vec::new();
        let psc = pod.security_context.clone().unwrap_or_default();
        for c in &pod.containers {
            let sc = c.security_context.clone().unwrap_or_default();
            if sc.allow_privilege_escalation != Some(false) {
                out.push(format!("{}: allowPrivilegeEscalation", c.name));
            }
            if sc.privileged == Some(true) {
                out.push(format!("{}: privileged", c.name));
            }
            let caps = sc.capabilities.clone().unwrap_or_default();
            if !caps.drop.unwrap_or_default().iter().any(|d| d == "ALL") {
                out.push(format!("{}: capabilities.drop ALL", c.name));
            }
            if caps
                .add
                .unwrap_or_default()
                .iter()
                .any(|a| a != "NET_BIND_SERVICE")
            {
                out.push(format!("{}: capabilities.add", c.name));
            }
            if sc.run_as_non_root.or(psc.run_as_non_root) != Some(true) {
                out.push(format!("{}: runAsNonRoot", c.name));
            }
            if sc.run_as_user.or(psc.run_as_user) == Some(0) {
                out.push(format!("{}: runAsUser 0", c.name));
            }
            let seccomp = sc
                .seccomp_profile
                .clone()
                .or(psc.seccomp_profile.clone())
                .map(|s| s.type_);
            if !matches!(seccomp.as_deref(), Some("RuntimeDefault" | "Localhost")) {
                out.push(format!("{}: seccompProfile", c.name));
            }
        }
        for v in pod.volumes.iter().flatten() {
            if v.host_path.is_some() {
                out.push(format!("volume {}: hostPath", v.name));
            }
        }
        if pod.host_network == Some(true)
            || pod.host_pid == Some(true)
            || pod.host_ipc == Some(true)
        {
            out.push("host namespaces".to_owned());
        }
        out
    }

    #[test]
    fn the_restricted_checker_catches_a_default_pod() {
        let pod = PodSpec {
            containers: vec![Container {
                name: "c".to_owned(),
                ..Container::default()
            }],
            ..PodSpec::default()
        };
        assert_eq!(restricted_violations(&pod).len(), 4);
    }

    #[rstest]
    #[case::topic_operator("my-cluster-topic-operator")]
    #[case::user_operator("my-cluster-user-operator")]
    fn pods_are_restricted_non_root_with_a_read_only_root_and_the_api_token(#[case] name: &str) {
        let objects = build("entity-operators");
        let d = deployment(&objects, name);
        let pod = pod_spec(d);
        assert_eq!(restricted_violations(pod), Vec::<String>::new());
        let psc = pod.security_context.as_ref().unwrap();
        assert_eq!(psc.run_as_user, Some(OPERATOR_USER_ID));
        assert_eq!(
            container(d)
                .security_context
                .as_ref()
                .unwrap()
                .read_only_root_filesystem,
            Some(true)
        );
        assert_eq!(pod.automount_service_account_token, Some(true));
        assert_eq!(pod.service_account_name.as_deref(), Some(name));
    }

    #[test]
    fn deployments_run_one_pod_of_the_oxbow_image_recreated_on_change() {
        let c = test_fixtures::resolved("entity-operators");
        let objects = entity_operator_objects(&c, &settings());
        let to = deployment(&objects, "my-cluster-topic-operator");
        let uo = deployment(&objects, "my-cluster-user-operator");
        for (d, image, command, selector) in [
            (
                to,
                "registry.example.com/oxbow:custom",
                "/usr/local/bin/topic-operator",
                topic_operator_pod_selector_labels(&c),
            ),
            (
                uo,
                IMAGE,
                "/usr/local/bin/user-operator",
                user_operator_pod_selector_labels(&c),
            ),
        ] {
            let spec = d.spec.as_ref().unwrap();
            assert_eq!(spec.replicas, Some(1));
            assert_eq!(
                spec.strategy.as_ref().unwrap().type_.as_deref(),
                Some("Recreate")
            );
            assert_eq!(spec.selector, meta::selector(selector.clone()));
            let pod_labels = spec.template.metadata.as_ref().unwrap().labels.clone();
            for (k, v) in &selector {
                assert_eq!(pod_labels.as_ref().unwrap().get(k), Some(v));
            }
            assert_eq!(container(d).image.as_deref(), Some(image));
            assert_eq!(container(d).command, Some(vec![command.to_owned()]));
        }
    }

    #[test]
    fn the_secret_revision_annotation_rolls_the_pod() {
        let objects = build("entity-operators");
        let annotations = |name: &str| {
            deployment(&objects, name)
                .spec
                .as_ref()
                .unwrap()
                .template
                .metadata
                .as_ref()
                .unwrap()
                .annotations
                .clone()
        };
        assert_eq!(
            annotations("my-cluster-topic-operator"),
            Some(BTreeMap::from([(
                meta::SECRET_REVISION_ANNOTATION.to_owned(),
                "to-rev".to_owned()
            )]))
        );
        assert_eq!(annotations("my-cluster-user-operator"), None);
    }

    #[test]
    fn probes_resources_and_ports_follow_the_spec() {
        let objects = build("entity-operators");
        let to = container(deployment(&objects, "my-cluster-topic-operator"));
        let liveness = to.liveness_probe.as_ref().unwrap();
        let readiness = to.readiness_probe.as_ref().unwrap();
        let get = |p: &KubeProbe| {
            let h = p.http_get.as_ref().unwrap();
            (h.path.clone().unwrap(), h.port.clone())
        };
        let http = IntOrString::String("http".to_owned());
        assert_eq!(get(liveness), ("/healthz".to_owned(), http.clone()));
        assert_eq!(get(readiness), ("/readyz".to_owned(), http));
        assert_eq!(
            (liveness.initial_delay_seconds, liveness.period_seconds),
            (Some(15), Some(20))
        );
        assert_eq!(
            (readiness.timeout_seconds, readiness.period_seconds),
            (Some(3), Some(5))
        );
        let resources = to.resources.as_ref().unwrap();
        assert_eq!(resources.requests.as_ref().unwrap()["cpu"].0, "100m");
        assert_eq!(resources.limits.as_ref().unwrap()["memory"].0, "256Mi");
        let port = &to.ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.container_port),
            (Some("http"), 8080)
        );

        let uo = container(deployment(&objects, "my-cluster-user-operator"));
        assert_eq!(uo.resources, None);
        assert_eq!(uo.ports.as_ref().unwrap()[0].container_port, 8081);
        assert_eq!(uo.liveness_probe.as_ref().unwrap().period_seconds, Some(10));
    }
}
