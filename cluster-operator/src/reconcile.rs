//! One reconcile of one Kafka cluster, as the house's four stages: observe (`observe`), validate
//! into the model and build every desired object (pure builders in `build`, decisions in `plan`
//! and `pki`), act (server-side apply in dependency order: CAs and Services, then certificate
//! Secrets and ConfigMaps, then the pods that mount them; orphans last), and report (status of
//! the Kafka and its node pools, Events).
//!
//! Pods are the operator's own, not a StatefulSet's, so that the operator alone decides which
//! node restarts when: a pod whose recorded revisions differ from the desired ones is deleted
//! (one at a time, in the order `plan::roll` decides) and created again on the next reconcile.
//! May touch: everything `act` and `status` may touch.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use ring::rand::SystemRandom;
use shared_crds::kafka::ListenerStatus;
use shared_crds::{Condition, Kafka, labels, names};
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::act::{ActError, Object};
use crate::build::entity_operator::{EntityOperatorSettings, entity_operator_objects};
use crate::build::listeners::{
    ListenerResolution, advertised_addresses, certificate_addresses, listener_status,
};
use crate::build::meta::{self, CERTIFICATE_AUTHORITY_COMPONENT};
use crate::build::{
    kafka_config, network_policy, node_config, pdb, pod, service_account, services, storage,
};
use crate::context::Context;
use crate::model::validate::warning_condition;
use crate::model::{KafkaNode, ResolvedCluster, validate_cluster};
use crate::observe::{self, ObserveError, Observed};
use crate::pki::ca::{
    self, CaError, CaOutcome, CaPlan, CaRole, CaSettings, CaState, ObservedCa, ObservedSecret,
    SecretContent,
};
use crate::pki::node_certs::{
    self, CaTrust, CertDecision, CertError, CertRequest, OperatorClient, node_sans,
};
use crate::plan::partitions::PartitionMap;
use crate::plan::rbac_elsewhere::found_copy;
use crate::plan::roll::{self, NodeRollState, RollInput, RollStep, WaitReason};
use crate::plan::scale_down::{self, ScaleDownCheck, check_broker_scale_down};
use crate::rbac_elsewhere::{self, RbacElsewhereError};
use crate::status::{self, ClusterReport};

/// Pod annotation: the cluster CA key generation the pod's certificates and truststore were
/// made with, which tells when every node trusts a new CA key.
pub const CA_KEY_GENERATION_ANNOTATION: &str = "oxbow.rs/cluster-ca-key-generation";

/// How soon to look again while something is in progress (a pod starting, a roll).
const PROGRESS_REQUEUE: Duration = Duration::from_secs(10);

/// Why a reconcile failed. Invalid input is not here: it is reported in status and waits for a
/// change (see [`crate::model::ValidationError`]).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Observe(#[from] ObserveError),
    #[error(transparent)]
    Act(#[from] ActError),
    #[error("writing the status: {0}")]
    Status(#[source] kube::Error),
    #[error("certificate authority: {0}")]
    Ca(#[source] CaError),
    #[error("certificates: {0}")]
    Cert(#[source] CertError),
    #[error(transparent)]
    RbacElsewhere(#[from] RbacElsewhereError),
}

impl ReconcileError {
    /// Stable CamelCase reason for status, Events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ReconcileError::Observe(e) => e.reason(),
            ReconcileError::Act(e) => e.reason(),
            ReconcileError::Status(_) => "StatusWriteFailed",
            ReconcileError::Ca(e) => e.reason(),
            ReconcileError::Cert(e) => e.reason(),
            ReconcileError::RbacElsewhere(e) => e.reason(),
        }
    }

    /// When to try again, if the failure says (a clean-up backing off); else the controller's
    /// default.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ReconcileError::RbacElsewhere(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// Reconciles one Kafka resource.
pub async fn reconcile(kafka: Arc<Kafka>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let started = std::time::Instant::now();
    let result = reconcile_inner(&kafka, &ctx).await;
    let outcome = match &result {
        Ok(_) => "success",
        Err(_) => "error",
    };
    ctx.metrics
        .reconciles
        .observe("Kafka", outcome, started.elapsed());
    result
}

async fn reconcile_inner(kafka: &Kafka, ctx: &Context) -> Result<Action, ReconcileError> {
    if kafka.metadata.deletion_timestamp.is_some() {
        ctx.written.forget(&kafka.uid().unwrap_or_default());
        // Owner references take everything in the Kafka's namespace away; what it has in other
        // namespaces goes before the finalizer is released. Also when paused: see
        // `rbac_elsewhere`.
        return Ok(rbac_elsewhere::finalize(ctx, kafka).await?);
    }
    let annotations = kafka.metadata.annotations.as_ref();
    if labels::annotation_is_true(annotations, labels::PAUSE_RECONCILIATION) {
        status::write_paused(ctx, kafka).await?;
        return Ok(Action::await_change());
    }

    // Observe.
    let observed = observe::observe(&ctx.client, kafka).await?;

    // Validate. Invalid input waits for a change of the resources.
    let validated = match validate_cluster(kafka, &observed.pools, &ctx.config.defaults) {
        Ok(v) => v,
        Err(e) => {
            info!(kafka = %kafka.name_any(), reason = e.reason(), error = %e, "invalid cluster");
            status::write_invalid(ctx, kafka, e.condition()).await?;
            return Ok(Action::requeue(ctx.config.full_reconciliation_interval));
        }
    };
    let mut cluster = validated.cluster;
    let mut warnings: Vec<Condition> = warning_condition(&validated.warnings).into_iter().collect();

    // A new cluster gets its ID first, recorded in status before any pod formats storage with
    // it, so that a crash cannot leave pods with two different IDs.
    if cluster.cluster_id.is_none() {
        let id = new_cluster_id();
        status::write_cluster_id(ctx, kafka, &id).await?;
        cluster.cluster_id = Some(id);
    }

    // Scale-down of brokers: allowed once Kafka shows no partition replica on them (or the
    // user says to skip the check); refused with a Warning naming brokers and topics otherwise,
    // and while the partition state cannot be read.
    let removing = cluster.brokers_to_remove();
    if !removing.is_empty() {
        let check = match partition_state(ctx, &cluster, &observed).await {
            Ok(map) => {
                check_broker_scale_down(&removing, &map, cluster.skip_broker_scaledown_check)
                    .map_err(|e| (e.reason().to_owned(), e.to_string()))
            }
            Err(_) if cluster.skip_broker_scaledown_check => {
                Ok(ScaleDownCheck::AllowedBySkipAnnotation {
                    brokers_holding_replicas: BTreeMap::new(),
                })
            }
            Err(e) => Err((
                "ScaleDownCheckUnavailable".to_owned(),
                format!(
                    "brokers {} are not removed yet: which partition replicas they hold cannot be read ({e}); set the annotation {}: \"true\" on the Kafka to remove them anyway",
                    join(removing.iter()),
                    labels::SKIP_BROKER_SCALEDOWN_CHECK
                ),
            )),
        };
        match check {
            Ok(ScaleDownCheck::Allowed) => {}
            Ok(ScaleDownCheck::AllowedBySkipAnnotation {
                brokers_holding_replicas,
            }) => {
                if !brokers_holding_replicas.is_empty() {
                    ctx.event(
                        kafka,
                        EventType::Warning,
                        "ScaleDownCheckSkipped",
                        format!(
                            "removing brokers {} that still hold replicas, as the annotation {} asks",
                            join(brokers_holding_replicas.keys()),
                            labels::SKIP_BROKER_SCALEDOWN_CHECK
                        ),
                    )
                    .await;
                }
            }
            Err((reason, message)) => {
                cluster.revert_broker_removals();
                ctx.event(kafka, EventType::Warning, &reason, message.clone())
                    .await;
                warnings.push(Condition::warning(reason, message));
            }
        }
    }
    // Node IDs are recorded on the pools before pods use them, so they survive a restart.
    status::write_pool_statuses(ctx, &cluster, &observed.pools).await?;

    let now = OffsetDateTime::now_utc();
    let rng = SystemRandom::new();
    let writer = &ctx.writer;

    // CAs.
    let pods_now: Vec<&Pod> = observed.children.pods.iter().collect();
    let cluster_ca = reconcile_ca(
        ctx,
        kafka,
        &cluster,
        &observed,
        CaRole::Cluster,
        &pods_now,
        now,
        &rng,
    )
    .await?;
    let clients_ca = reconcile_ca(
        ctx,
        kafka,
        &cluster,
        &observed,
        CaRole::Clients,
        &pods_now,
        now,
        &rng,
    )
    .await?;
    let cluster_ca_settings = CaSettings::from_spec(CaRole::Cluster, Some(&cluster.cluster_ca))
        .map_err(ReconcileError::Ca)?;

    // Services, whose addresses the brokers advertise.
    let mut services_now = Vec::new();
    for desired in services::services(&cluster) {
        let current = find(&observed.children.services, &desired.name_any());
        services_now.push(writer.apply(&desired, current).await?);
    }
    let node_addresses: BTreeMap<i32, String> = cluster
        .nodes()
        .iter()
        .filter_map(|n| {
            observed
                .node_addresses
                .get(&names::kafka_node(&cluster.name, &n.pool, n.id))
                .map(|a| (n.id, a.clone()))
        })
        .collect();
    let resolution: ListenerResolution =
        advertised_addresses(&cluster, &services_now, &node_addresses);
    let cert_addresses = certificate_addresses(&cluster, &resolution, &services_now);

    // Shared objects the pods need.
    writer
        .apply(
            &service_account::kafka_service_account(&cluster),
            find(
                &observed.children.service_accounts,
                &names::kafka_service_account(&cluster.name),
            ),
        )
        .await?;

    // Per node: certificate Secret, ConfigMap, claims, then the pod.
    let trust = ca_trust(&pods_now, &cluster_ca.state);
    let mut desired_pods: BTreeMap<String, (KafkaNode, Pod)> = BTreeMap::new();
    let mut desired_configs: BTreeMap<i32, BTreeMap<String, String>> = BTreeMap::new();
    // The configuration each node's ConfigMap held before this reconcile, with its revision:
    // the configuration a pod runs when the pod records that revision.
    let mut observed_configs: BTreeMap<i32, (String, BTreeMap<String, String>)> = BTreeMap::new();
    let mut waiting: Vec<String> = Vec::new();
    for node in cluster.nodes() {
        let pod_name = names::kafka_node(&cluster.name, &node.pool, node.id);
        let props = match kafka_config::build_server_properties(
            &cluster,
            node.id,
            &resolution.advertised,
        ) {
            Ok(p) => p,
            Err(e) => {
                waiting.push(format!("{pod_name}: {e}"));
                continue;
            }
        };
        let pki_node = node_certs::KafkaNode {
            cluster: &cluster.name,
            namespace: &cluster.namespace,
            cluster_domain: &ctx.config.cluster_domain,
            pool: &node.pool,
            node_id: node.id,
            broker: node.is_broker(),
        };
        let sans = node_sans(
            &pki_node,
            cert_addresses
                .get(&node.id)
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        )
        .map_err(ReconcileError::Cert)?;
        let request = CertRequest::kafka_node(&cluster.name, sans);
        let existing = find(&observed.children.secrets, &pod_name).map(secret_data);
        let (decision, cert) = node_certs::plan_certificate(
            existing.as_ref(),
            &request,
            &cluster_ca.state,
            &cluster_ca_settings,
            now,
            trust,
            &rng,
        )
        .map_err(ReconcileError::Cert)?;
        if let CertDecision::Issue(reason) = decision
            && existing.is_some()
        {
            ctx.event(
                kafka,
                EventType::Normal,
                "CertificateIssued",
                format!(
                    "certificate of node {pod_name} issued again: {}",
                    reason.as_str()
                ),
            )
            .await;
        }
        let data = node_certs::node_secret_data(&cert, &cluster_ca.state, &clients_ca.state);
        let certificates_revision =
            meta::data_revision(data.iter().map(|(k, v)| (k.as_str(), v.as_slice())));
        let secret = secret(
            &cluster,
            &pod_name,
            meta::node_labels(&cluster, &node),
            data,
            true,
        );
        writer
            .apply(&secret, find(&observed.children.secrets, &pod_name))
            .await?;
        if let Some(text) = find(&observed.children.config_maps, &pod_name)
            .and_then(|cm| cm.data.as_ref())
            .and_then(|d| d.get(node_config::SERVER_PROPERTIES_FILE))
            && let Ok(running) = kafka_config::ServerProperties::parse(text)
        {
            observed_configs.insert(node.id, (running.revision(), running.into_entries()));
        }
        let config_map = node_config::node_config_map(&cluster, &node, &props);
        writer
            .apply(&config_map, find(&observed.children.config_maps, &pod_name))
            .await?;
        for claim in storage::node_claims(&cluster, &node) {
            let current = find(&observed.children.claims, &claim.name_any());
            if current.is_none() {
                writer.apply(&claim, None).await?;
            }
        }
        let mut desired_pod =
            match pod::node_pod(&cluster, &node, &props.revision(), &certificates_revision) {
                Ok(p) => p,
                Err(e) => {
                    waiting.push(format!("{pod_name}: {e}"));
                    continue;
                }
            };
        desired_pod
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(
                CA_KEY_GENERATION_ANNOTATION.to_owned(),
                cluster_ca.state.key_generation().to_string(),
            );
        desired_configs.insert(node.id, props.into_entries());
        desired_pods.insert(pod_name, (node, desired_pod));
    }

    // Operator certificates and the topic and user operators.
    let mut operator_secret_revisions: BTreeMap<OperatorClient, String> = BTreeMap::new();
    for operator in OperatorClient::ALL {
        let wanted = match operator {
            OperatorClient::ClusterOperator => true,
            OperatorClient::TopicOperator => cluster
                .entity_operator
                .as_ref()
                .is_some_and(|e| e.topic_operator.is_some()),
            OperatorClient::UserOperator => cluster
                .entity_operator
                .as_ref()
                .is_some_and(|e| e.user_operator.is_some()),
        };
        if !wanted {
            continue;
        }
        let name = operator.secret_name(&cluster.name);
        let request = CertRequest::operator(operator, &cluster.name);
        let existing = find(&observed.children.secrets, &name).map(secret_data);
        let (_, cert) = node_certs::plan_certificate(
            existing.as_ref(),
            &request,
            &cluster_ca.state,
            &cluster_ca_settings,
            now,
            trust,
            &rng,
        )
        .map_err(ReconcileError::Cert)?;
        let data = node_certs::cert_secret_data(&cert, &cluster_ca.state);
        operator_secret_revisions.insert(
            operator,
            meta::data_revision(data.iter().map(|(k, v)| (k.as_str(), v.as_slice()))),
        );
        let component = match operator {
            OperatorClient::TopicOperator => meta::TOPIC_OPERATOR_COMPONENT,
            OperatorClient::UserOperator => meta::USER_OPERATOR_COMPONENT,
            OperatorClient::ClusterOperator => "cluster-operator",
        };
        let s = secret(
            &cluster,
            &name,
            meta::cluster_labels(&cluster, component, &name),
            data,
            true,
        );
        writer
            .apply(&s, find(&observed.children.secrets, &name))
            .await?;
    }
    let entity = entity_operator_objects(
        &cluster,
        &EntityOperatorSettings {
            operator_image: ctx.config.operator_image.clone(),
            topic_operator_secret_revision: operator_secret_revisions
                .get(&OperatorClient::TopicOperator)
                .cloned(),
            user_operator_secret_revision: operator_secret_revisions
                .get(&OperatorClient::UserOperator)
                .cloned(),
        },
    );
    for o in &entity.service_accounts {
        writer
            .apply(o, find(&observed.children.service_accounts, &o.name_any()))
            .await?;
    }
    // RBAC in other namespaces: the finalizer that guarantees its deletion comes first.
    let elsewhere = rbac_elsewhere::plan(kafka, &entity, &observed.elsewhere);
    rbac_elsewhere::guard(ctx, kafka, &elsewhere).await?;
    let (here, there) = (&observed.children, &observed.elsewhere);
    for o in &entity.roles {
        apply_maybe_elsewhere(ctx, o, &here.roles, &there.roles, &cluster).await?;
    }
    for o in &entity.role_bindings {
        apply_maybe_elsewhere(ctx, o, &here.role_bindings, &there.role_bindings, &cluster).await?;
    }
    for o in &entity.deployments {
        writer
            .apply(o, find(&observed.children.deployments, &o.name_any()))
            .await?;
    }

    // Disruption budget and network policy.
    let budget = pdb::pod_disruption_budget(&cluster);
    writer
        .apply(
            &budget,
            find(&observed.children.disruption_budgets, &budget.name_any()),
        )
        .await?;
    let policy = network_policy::network_policy(&cluster);
    writer
        .apply(
            &policy,
            find(&observed.children.network_policies, &policy.name_any()),
        )
        .await?;

    // A manual rolling update of the whole cluster becomes one request per pod (the annotation
    // on each pod is gone once the pod was replaced), then the Kafka's annotation is removed:
    // the roll survives operator restarts and ends.
    if cluster.manual_rolling_update {
        let request =
            BTreeMap::from([(labels::MANUAL_ROLLING_UPDATE.to_owned(), "true".to_owned())]);
        for pod in &observed.children.pods {
            if !labels::annotation_is_true(
                pod.metadata.annotations.as_ref(),
                labels::MANUAL_ROLLING_UPDATE,
            ) {
                writer.annotate(pod, &request).await?;
            }
        }
        let api: kube::Api<Kafka> = kube::Api::namespaced(ctx.client.clone(), &cluster.namespace);
        ctx.metrics
            .writes
            .with_label_values(&["Kafka", "patch"])
            .inc();
        api.patch(
            &cluster.name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({
                "metadata": {"annotations": {labels::MANUAL_ROLLING_UPDATE: null}}
            })),
        )
        .await
        .map_err(|source| ActError::Apply {
            kind: "Kafka",
            name: cluster.name.clone(),
            source,
        })?;
        ctx.event(
            kafka,
            EventType::Normal,
            "ManualRollingUpdate",
            "every node restarts, one at a time".to_owned(),
        )
        .await;
        // The next reconcile sees the annotated pods.
        return Ok(Action::requeue(Duration::from_secs(1)));
    }

    // Pods: create the missing, roll the changed.
    let roll_outcome = reconcile_pods(
        ctx,
        kafka,
        &cluster,
        &observed_configs,
        &observed,
        &desired_pods,
        &desired_configs,
    )
    .await?;

    // Orphans.
    delete_orphans(
        ctx,
        &cluster,
        &observed,
        &desired_pods,
        &entity,
        &budget,
        &policy,
        &services_now,
    )
    .await?;
    rbac_elsewhere::sweep(ctx, kafka, &elsewhere).await?;

    // Removed brokers leave the KRaft metadata once they are gone.
    let registrations_pending = unregister_removed_brokers(ctx, kafka, &cluster, &observed).await;

    // Report.
    let listeners: Vec<ListenerStatus> = listener_status(
        &cluster,
        &resolution,
        &services_now,
        &cluster_ca.state.cert_pem(),
    );
    let pods_after: Vec<&Pod> = observed.children.pods.iter().collect();
    let not_ready: Vec<String> = desired_pods
        .keys()
        .filter(|name| {
            !pods_after
                .iter()
                .any(|p| p.metadata.name.as_deref() == Some(name.as_str()) && pod_ready(p))
        })
        .cloned()
        .collect();
    let deployments_not_ready: Vec<String> = entity
        .deployments
        .iter()
        .map(|d| d.name_any())
        .filter(|name| {
            !observed
                .children
                .deployments
                .iter()
                .any(|d| &d.name_any() == name && deployment_available(d))
        })
        .collect();
    let ready = if !resolution.pending.is_empty() {
        Condition::not_ready(
            "ListenerAddressesPending",
            format!(
                "waiting for the addresses of listeners {}",
                resolution.pending.join(", ")
            ),
        )
    } else if !waiting.is_empty() {
        Condition::not_ready("NodesWaiting", waiting.join("; "))
    } else if let Some((reason, message)) = &roll_outcome {
        Condition::not_ready(reason.clone(), message.clone())
    } else if !not_ready.is_empty() {
        Condition::not_ready(
            "NodesNotReady",
            format!("Kafka pods not ready yet: {}", not_ready.join(", ")),
        )
    } else if !deployments_not_ready.is_empty() {
        Condition::not_ready(
            "EntityOperatorsNotReady",
            format!("not available yet: {}", deployments_not_ready.join(", ")),
        )
    } else {
        Condition::ready("Ready", "every node and operator of the cluster is ready")
    };
    let is_ready = ready.is_true(shared_crds::condition::READY);
    let mut conditions = vec![ready];
    conditions.extend(warnings);
    status::write_kafka_status(
        ctx,
        kafka,
        &ClusterReport {
            cluster: &cluster,
            conditions,
            listeners,
        },
    )
    .await?;
    Ok(if is_ready && !registrations_pending {
        Action::requeue(ctx.config.full_reconciliation_interval)
    } else {
        Action::requeue(PROGRESS_REQUEUE)
    })
}

/// An admin client for the cluster, with the operator's own certificate.
fn connect(
    ctx: &Context,
    cluster: &ResolvedCluster,
    observed: &Observed,
) -> Result<oxbow_runtime::kafka::admin::KafkaAdmin, crate::kafka::KafkaError> {
    let secret = find(
        &observed.children.secrets,
        &OperatorClient::ClusterOperator.secret_name(&cluster.name),
    )
    .map(secret_data)
    .unwrap_or_default();
    crate::kafka::connect(
        cluster,
        &secret,
        None,
        ctx.metrics.admin.clone(),
        ctx.config.operation_timeout.min(Duration::from_secs(30)),
    )
}

/// Removes from the KRaft metadata the registrations of brokers the cluster no longer has, so
/// that tools and clients stop listing them (Kafka keeps a removed broker registered, fenced,
/// forever). Level-triggered: Kafka's registrations are compared with the desired brokers and
/// the pods on every reconcile of a running cluster, so a scale-down finished by another
/// operator instance, or a pool deleted whole, is cleaned up too. Only fenced registrations
/// without a pod are removed ([`scale_down::stale_registrations`]). Returns true while a
/// removed broker is still registered unfenced (look again soon). Failures are logged, never
/// fatal: a fenced registration harms nothing.
async fn unregister_removed_brokers(
    ctx: &Context,
    kafka: &Kafka,
    cluster: &ResolvedCluster,
    observed: &Observed,
) -> bool {
    let broker_running = observed.children.pods.iter().any(|p| {
        pod_ready(p) && p.labels().get(labels::BROKER_ROLE).map(String::as_str) == Some("true")
    });
    if !broker_running {
        return false;
    }
    let c = &cluster.name;
    let admin = match connect(ctx, cluster, observed) {
        Ok(admin) => admin,
        Err(e) => {
            warn!(kafka = %c, error = %e, "cannot check the broker registrations");
            return false;
        }
    };
    let registered = match admin.registered_brokers().await {
        Ok(r) => r,
        Err(e) => {
            warn!(kafka = %c, error = %e, "cannot list the broker registrations");
            return false;
        }
    };
    let desired: BTreeSet<i32> = cluster
        .nodes()
        .iter()
        .filter(|n| n.is_broker())
        .map(|n| n.id)
        .collect();
    let pods: BTreeSet<i32> = observed
        .children
        .pods
        .iter()
        .filter_map(|p| p.name_any().rsplit('-').next()?.parse().ok())
        .collect();
    let registered: Vec<(i32, bool)> = registered.iter().map(|b| (b.id, b.fenced)).collect();
    let stale = scale_down::stale_registrations(&registered, &desired, &pods);
    for id in &stale.unregister {
        match admin.unregister_broker(*id).await {
            Ok(()) => {
                info!(kafka = %c, broker = id, "unregistered a removed broker");
                ctx.event(
                    kafka,
                    EventType::Normal,
                    "BrokerUnregistered",
                    format!("removed broker {id} no longer registered in the cluster metadata"),
                )
                .await;
            }
            // Already gone (or a retried request that had worked): done.
            Err(e)
                if e.kafka_failure()
                    .is_some_and(|f| f.is_broker_id_not_registered()) => {}
            Err(e) => {
                warn!(kafka = %c, broker = id, error = %e, "unregistering a removed broker failed")
            }
        }
    }
    !stale.wait.is_empty()
}

/// The active controller of the metadata quorum, `None` during an election.
async fn active_controller(
    ctx: &Context,
    cluster: &ResolvedCluster,
    observed: &Observed,
) -> Result<Option<i32>, crate::kafka::KafkaError> {
    let admin = connect(ctx, cluster, observed)?;
    Ok(admin.describe_quorum().await?.leader_id)
}

/// The partition state of the running cluster.
async fn partition_state(
    ctx: &Context,
    cluster: &ResolvedCluster,
    observed: &Observed,
) -> Result<PartitionMap, crate::kafka::KafkaError> {
    let admin = connect(ctx, cluster, observed)?;
    crate::kafka::partition_map(&admin, cluster).await
}

/// A new cluster ID: 16 random bytes in URL-safe base64 without padding, as `kafka-storage.sh
/// random-uuid` prints them.
fn new_cluster_id() -> String {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn join<T: ToString>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

/// The observed object of kind `K` named `name`.
pub(crate) fn find<'a, K: Object>(objects: &'a [K], name: &str) -> Option<&'a K> {
    objects
        .iter()
        .find(|o| o.metadata().name.as_deref() == Some(name))
}

fn secret_data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    s.data
        .as_ref()
        .map(|d| d.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
        .unwrap_or_default()
}

fn observed_secret(s: &Secret) -> ObservedSecret {
    ObservedSecret {
        annotations: s.metadata.annotations.clone().unwrap_or_default(),
        data: secret_data(s),
    }
}

/// A Secret of the cluster with `data`.
fn secret(
    cluster: &ResolvedCluster,
    name: &str,
    labels: BTreeMap<String, String>,
    data: BTreeMap<String, Vec<u8>>,
    owned: bool,
) -> Secret {
    let mut metadata = meta::object_meta(cluster, name, labels, None, None);
    if !owned {
        metadata.owner_references = None;
    }
    Secret {
        metadata,
        type_: Some("Opaque".to_owned()),
        data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
        ..Secret::default()
    }
}

fn secret_from_content(cluster: &ResolvedCluster, content: &SecretContent, owned: bool) -> Secret {
    let mut s = secret(
        cluster,
        &content.name,
        meta::cluster_labels(cluster, CERTIFICATE_AUTHORITY_COMPONENT, &content.name),
        content.data.clone(),
        owned,
    );
    if !content.annotations.is_empty() {
        s.metadata.annotations = Some(content.annotations.clone());
    }
    s
}

/// Whether every Kafka pod was made with the current cluster CA key.
fn ca_trust(pods: &[&Pod], ca: &CaState) -> CaTrust {
    let current = ca.key_generation().to_string();
    let all = pods
        .iter()
        .all(|p| p.annotations().get(CA_KEY_GENERATION_ANNOTATION) == Some(&current));
    if all {
        CaTrust::Established
    } else {
        CaTrust::Rolling
    }
}

#[allow(clippy::too_many_arguments)]
async fn reconcile_ca(
    ctx: &Context,
    kafka: &Kafka,
    cluster: &ResolvedCluster,
    observed: &Observed,
    role: CaRole,
    pods: &[&Pod],
    now: OffsetDateTime,
    rng: &SystemRandom,
) -> Result<CaOutcome, ReconcileError> {
    let spec = match role {
        CaRole::Cluster => &cluster.cluster_ca,
        CaRole::Clients => &cluster.clients_ca,
    };
    let settings = CaSettings::from_spec(role, Some(spec)).map_err(ReconcileError::Ca)?;
    let key_secret = observed
        .ca_secrets
        .get(&role.key_secret(&cluster.name))
        .map(observed_secret);
    let cert_secret = observed
        .ca_secrets
        .get(&role.cert_secret(&cluster.name))
        .map(observed_secret);
    let force_renew = cert_secret
        .as_ref()
        .is_some_and(|s| labels::annotation_is_true(Some(&s.annotations), labels::FORCE_RENEW));
    let observed_ca = ObservedCa::read(
        role,
        &cluster.name,
        key_secret.as_ref(),
        cert_secret.as_ref(),
    );
    // Earlier CA certificates may go once every pod was made with the current key generation.
    let roll_done = !pods.is_empty() && {
        let generation = observed_ca_key_generation(cert_secret.as_ref());
        pods.iter().all(|p| {
            generation.is_some()
                && p.annotations().get(CA_KEY_GENERATION_ANNOTATION) == generation.as_ref()
        })
    };
    let plan = ca::plan_ca(&observed_ca, &settings, now, force_renew, roll_done)
        .map_err(ReconcileError::Ca)?;
    let outcome =
        ca::build_ca(&plan, &observed_ca, &settings, now, rng).map_err(ReconcileError::Ca)?;
    if let Some(secrets) = &outcome.secrets {
        for content in [&secrets.key_secret, &secrets.cert_secret] {
            let desired = secret_from_content(cluster, content, settings.secret_owner_reference);
            ctx.writer
                .apply(&desired, observed.ca_secrets.get(&content.name))
                .await?;
        }
    }
    ctx.metrics
        .ca_expiry
        .with_label_values(&[
            cluster.namespace.as_str(),
            cluster.name.as_str(),
            match role {
                CaRole::Cluster => "cluster",
                CaRole::Clients => "clients",
            },
        ])
        .set(outcome.state.not_after().unix_timestamp() as f64);
    match &plan {
        CaPlan::Keep => {}
        CaPlan::Create => info!(kafka = %cluster.name, ca = ?role, "created the CA"),
        other => {
            ctx.event(
                kafka,
                EventType::Normal,
                "CaChanged",
                format!("{:?} CA: {other:?}", role),
            )
            .await
        }
    }
    Ok(outcome)
}

fn observed_ca_key_generation(cert_secret: Option<&ObservedSecret>) -> Option<String> {
    cert_secret.and_then(|s| s.annotations.get(ca::KEY_GENERATION_ANNOTATION).cloned())
}

/// Applies a namespaced object that may live outside the cluster's namespace (RBAC of an
/// entity operator watching another namespace), comparing against what is observed there
/// (`observed_here` in the cluster's namespace, `observed_elsewhere` in the others).
async fn apply_maybe_elsewhere<K: Object>(
    ctx: &Context,
    desired: &K,
    observed_here: &[K],
    observed_elsewhere: &[K],
    cluster: &ResolvedCluster,
) -> Result<(), ReconcileError> {
    let ns = desired.metadata().namespace.clone().unwrap_or_default();
    let observed = if ns == cluster.namespace {
        find(observed_here, &desired.name_any())
    } else {
        found_copy(observed_elsewhere, desired)
    };
    ctx.writer.apply(desired, observed).await?;
    Ok(())
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn deployment_available(d: &k8s_openapi::api::apps::v1::Deployment) -> bool {
    d.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Available" && c.status == "True")
        })
}

/// Creates missing pods and takes one step of a rolling restart. Returns the reason and
/// message of a roll that waits, if one does.
#[allow(clippy::too_many_arguments)]
async fn reconcile_pods(
    ctx: &Context,
    kafka: &Kafka,
    cluster: &ResolvedCluster,
    observed_configs: &BTreeMap<i32, (String, BTreeMap<String, String>)>,
    observed: &Observed,
    desired: &BTreeMap<String, (KafkaNode, Pod)>,
    desired_configs: &BTreeMap<i32, BTreeMap<String, String>>,
) -> Result<Option<(String, String)>, ReconcileError> {
    let mut nodes = Vec::new();
    let mut by_id: BTreeMap<i32, &Pod> = BTreeMap::new();
    for (name, (node, desired_pod)) in desired {
        let current = find(&observed.children.pods, name);
        if current.is_none() {
            ctx.writer.create(desired_pod).await?;
        }
        let Some(current) = current.filter(|c| c.metadata.deletion_timestamp.is_none()) else {
            // A pod being deleted or just created is a node that is down: it holds the roll
            // (with nothing of its own to restart), so the next node waits for it.
            nodes.push(NodeRollState {
                node_id: node.id,
                is_broker: node.is_broker(),
                is_controller: node.is_controller(),
                ready: false,
                manual_roll_requested: false,
                running: pod::pod_revisions(desired_pod),
                desired: pod::pod_revisions(desired_pod),
                running_config: desired_configs.get(&node.id).cloned(),
                desired_config: desired_configs.get(&node.id).cloned().unwrap_or_default(),
            });
            continue;
        };
        by_id.insert(node.id, desired_pod);
        nodes.push(NodeRollState {
            node_id: node.id,
            is_broker: node.is_broker(),
            is_controller: node.is_controller(),
            ready: pod_ready(current),
            manual_roll_requested: labels::annotation_is_true(
                current.metadata.annotations.as_ref(),
                labels::MANUAL_ROLLING_UPDATE,
            ),
            running: pod::pod_revisions(current),
            desired: pod::pod_revisions(desired_pod),
            running_config: observed_configs
                .get(&node.id)
                .and_then(|(revision, config)| {
                    (current.annotations().get(meta::CONFIG_REVISION_ANNOTATION) == Some(revision))
                        .then(|| config.clone())
                }),
            desired_config: desired_configs.get(&node.id).cloned().unwrap_or_default(),
        });
    }
    let mut input = RollInput {
        nodes,
        active_controller: None,
        // Carried by the pods' own annotations (see `reconcile_inner`).
        manual_roll_requested: false,
    };
    let mut plan = roll::plan_roll(&input);
    // The active controller goes last among the controllers. Kafka is asked only when the order
    // depends on it: more than one controller waits for a restart.
    let controllers_pending = plan
        .restarts
        .iter()
        .filter(|r| {
            input
                .nodes
                .iter()
                .any(|n| n.node_id == r.node_id && n.is_controller)
        })
        .count();
    if controllers_pending > 1 {
        match active_controller(ctx, cluster, observed).await {
            Ok(Some(leader)) => {
                input.active_controller = Some(leader);
                plan = roll::plan_roll(&input);
            }
            // An election under way: the order falls back to node IDs.
            Ok(None) => {}
            Err(e) => warn!(
                kafka = %cluster.name,
                error = %e,
                "the active controller is unknown; controllers restart in node ID order"
            ),
        }
    }
    // Dynamic changes first, through the admin client; the nodes that needed only those then
    // record the new configuration revision.
    if !plan.dynamic_changes.is_empty() {
        let applied = match connect(ctx, cluster, observed) {
            Ok(admin) => crate::kafka::apply_dynamic_changes(&admin, &plan.dynamic_changes).await,
            Err(e) => Err(e),
        };
        if let Err(e) = applied {
            return Ok(Some((
                "DynamicConfigPending".to_owned(),
                format!(
                    "changing {} without a restart waits for Kafka: {e}",
                    plan.dynamic_changes
                        .iter()
                        .map(|c| c.key.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )));
        }
        ctx.event(
            kafka,
            EventType::Normal,
            "DynamicConfigApplied",
            format!(
                "applied without a restart: {}",
                plan.dynamic_changes
                    .iter()
                    .map(|c| c.key.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .await;
    }
    for id in &plan.config_revision_only {
        let Some(pod_desired) = by_id.get(id) else {
            continue;
        };
        if let Some(current) = find(&observed.children.pods, &pod_desired.name_any()) {
            let annotations: BTreeMap<String, String> = pod_desired
                .annotations()
                .iter()
                .filter(|(k, _)| k.as_str() == meta::CONFIG_REVISION_ANNOTATION)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            ctx.writer.annotate(current, &annotations).await?;
        }
    }
    // A ready broker restarts only if the partition state says no partition drops below its
    // minimum in-sync replicas; it is read only when a restart depends on it.
    let mut step = roll::next_restart(&plan, &input, None);
    if matches!(
        step,
        RollStep::Wait(WaitReason::PartitionStateUnknown { .. })
    ) {
        match partition_state(ctx, cluster, observed).await {
            Ok(map) => step = roll::next_restart(&plan, &input, Some(&map)),
            Err(e) => {
                return Ok(Some((
                    "PartitionStateUnknown".to_owned(),
                    format!("rolling restart waits: the partition state cannot be read: {e}"),
                )));
            }
        }
    }
    match step {
        RollStep::Done => Ok(None),
        RollStep::Wait(reason) => {
            tracing::debug!(
                reason = reason.reason(),
                "rolling restart waits: {}",
                reason.message()
            );
            Ok(Some((reason.reason().to_owned(), reason.message())))
        }
        RollStep::Restart(restart) => {
            let Some(pod_desired) = by_id.get(&restart.node_id) else {
                return Ok(None);
            };
            let name = pod_desired.name_any();
            if let Some(current) = find(&observed.children.pods, &name).cloned() {
                let reasons: Vec<&str> = restart.reasons.iter().map(|r| r.reason()).collect();
                tracing::info!(pod = %name, reasons = %reasons.join(","), "restarting a Kafka node");
                ctx.event(
                    kafka,
                    EventType::Normal,
                    "NodeRestarted",
                    format!("restarting {name}: {}", reasons.join(", ")),
                )
                .await;
                ctx.writer.delete(&current).await?;
            }
            Ok(Some((
                "RollingRestart".to_owned(),
                format!("restarting node {}", restart.node_id),
            )))
        }
    }
}

/// Deletes children of the cluster that no desired object names. CA Secrets are never deleted
/// here, and claims only when they carry the Kafka's owner reference (`deleteClaim: true`).
#[allow(clippy::too_many_arguments)]
async fn delete_orphans(
    ctx: &Context,
    cluster: &ResolvedCluster,
    observed: &Observed,
    desired_pods: &BTreeMap<String, (KafkaNode, Pod)>,
    entity: &crate::build::entity_operator::EntityOperatorObjects,
    budget: &k8s_openapi::api::policy::v1::PodDisruptionBudget,
    policy: &k8s_openapi::api::networking::v1::NetworkPolicy,
    services_now: &[k8s_openapi::api::core::v1::Service],
) -> Result<usize, ReconcileError> {
    let c = &cluster.name;
    let node_names: BTreeSet<String> = cluster
        .nodes()
        .iter()
        .map(|n| names::kafka_node(c, &n.pool, n.id))
        .collect();
    let mut keep_secrets: BTreeSet<String> = node_names.clone();
    keep_secrets.extend([
        names::cluster_ca_key_secret(c),
        names::cluster_ca_cert_secret(c),
        names::clients_ca_key_secret(c),
        names::clients_ca_cert_secret(c),
        OperatorClient::ClusterOperator.secret_name(c),
    ]);
    for d in &entity.deployments {
        // The operator certificate Secrets are named after their Deployments.
        keep_secrets.insert(format!("{}-certs", d.name_any()));
    }
    let mut deleted = 0;
    macro_rules! sweep {
        ($list:expr, $keep:expr) => {
            for o in $list.iter() {
                let name = o.name_any();
                if !$keep(&name) && o.metadata.deletion_timestamp.is_none() {
                    info!(kafka = %c, kind = crate::act::kind_of_val(o), %name, "deleting an orphan");
                    ctx.writer.delete(o).await?;
                    deleted += 1;
                }
            }
        };
    }
    let ch = &observed.children;
    sweep!(ch.secrets, |n: &String| keep_secrets.contains(n));
    sweep!(ch.config_maps, |n: &String| node_names.contains(n));
    sweep!(ch.pods, |n: &String| desired_pods.contains_key(n)
        || node_names.contains(n));
    sweep!(ch.services, |n: &String| services_now
        .iter()
        .any(|s| &s.name_any() == n));
    sweep!(
        ch.claims
            .iter()
            .filter(|c| c.owner_references().iter().any(|o| o.uid == cluster.uid))
            .cloned()
            .collect::<Vec<_>>(),
        |n: &String| {
            cluster.nodes().iter().any(|node| {
                storage::node_claims(cluster, node)
                    .iter()
                    .any(|cl| &cl.name_any() == n)
            })
        }
    );
    let sa_names: BTreeSet<String> = entity
        .service_accounts
        .iter()
        .map(|s| s.name_any())
        .chain([names::kafka_service_account(c)])
        .collect();
    sweep!(ch.service_accounts, |n: &String| sa_names.contains(n));
    sweep!(ch.roles, |n: &String| entity
        .roles
        .iter()
        .any(|r| &r.name_any() == n));
    sweep!(ch.role_bindings, |n: &String| entity
        .role_bindings
        .iter()
        .any(|r| &r.name_any() == n));
    sweep!(ch.deployments, |n: &String| entity
        .deployments
        .iter()
        .any(|r| &r.name_any() == n));
    sweep!(ch.disruption_budgets, |n: &String| *n == budget.name_any());
    sweep!(ch.network_policies, |n: &String| *n == policy.name_any());
    if deleted > 0 {
        warn!(kafka = %c, deleted, "deleted orphaned objects");
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_are_22_url_safe_characters_and_differ() {
        let a = new_cluster_id();
        let b = new_cluster_id();
        assert_eq!(a.len(), 22);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a, b);
    }
}
