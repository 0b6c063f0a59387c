//! The pod of one Kafka node, and the revisions recorded on it that the rolling-restart plan
//! compares. Pure: no I/O.
//!
//! Each node is its own pod (no StatefulSet), named `<c>-<pool>-<id>` like its ConfigMap and
//! its certificate Secret, with the DNS name `<pod>.<c>-kafka-brokers.<ns>.svc` (hostname and
//! subdomain). It runs the official `apache/kafka` image with a shell script as its command:
//! format the data directories (a no-op once formatted; formats a JBOD volume added later),
//! then `exec kafka-server-start.sh`. What the pod mounts:
//!
//! | volume | source | path |
//! |---|---|---|
//! | `config` | ConfigMap `<pod>` ([`super::node_config`]) | [`CONFIG_DIR`] |
//! | `node-certs` | Secret `<pod>` ([`crate::pki`]) | [`NODE_CERTS_DIR`] |
//! | `data`, `data-<id>` | emptyDir or PVC `data[-<id>]-<pod>` | [`DataVolume::mount_path`] |
//! | `tmp` | emptyDir | `/tmp` (JVM files, the start scripts' `LOG_DIR`) |
//! | `logging` | the user's ConfigMap, with `logging.type: external` | [`EXTERNAL_LOGGING_DIR`] |
//!
//! The pod passes Pod Security `restricted`: it runs as UID 1000 (the image's user, given as a
//! number because the image names it `appuser`), without privilege escalation or capabilities,
//! with the RuntimeDefault seccomp profile and a read-only root filesystem. A template's
//! `securityContext` is the starting point; the fields `restricted` needs are filled in only
//! where the template leaves them unset.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    KeyToPath, PersistentVolumeClaimVolumeSource, Pod, PodSecurityContext, PodSpec, Probe,
    SeccompProfile, SecretVolumeSource, SecurityContext, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use shared_crds::common::{JvmOptions, LoggingType, Probe as ProbeTiming};
use shared_crds::names;

use super::kafka_config::{CONTROLLER_PORT, NODE_CERTS_DIR, REPLICATION_PORT};
use super::meta;
use super::node_config::{CONFIG_DIR, LOG4J2_PATH, METADATA_VERSION_PATH, SERVER_PROPERTIES_PATH};
use crate::model::{DataVolume, KafkaNode, ResolvedCluster, ResolvedListener, VolumeKind};
use crate::plan::roll::Revisions;

/// Name of the Kafka container.
pub const KAFKA_CONTAINER: &str = "kafka";
/// Volume of the node's ConfigMap.
pub const CONFIG_VOLUME: &str = "config";
/// Volume of the node's certificate Secret.
pub const NODE_CERTS_VOLUME: &str = "node-certs";
/// Writable scratch volume mounted at `/tmp`.
pub const TMP_VOLUME: &str = "tmp";
/// Volume of the user's logging ConfigMap (`logging.type: external` only).
pub const LOGGING_VOLUME: &str = "logging";
/// Where the user's logging ConfigMap entry is mounted; the file keeps the entry's key as its
/// name, so that log4j2 picks the format from its extension.
pub const EXTERNAL_LOGGING_DIR: &str = "/opt/kafka/config/logging";
/// Where the scratch volume is mounted.
pub const TMP_DIR: &str = "/tmp";
/// `LOG_DIR` of Kafka's start scripts, which create it even when nothing is logged to files.
pub const SCRIPTS_LOG_DIR: &str = "/tmp/kafka-logs";
/// Directory of Kafka's scripts in the `apache/kafka` image.
pub const KAFKA_BIN_DIR: &str = "/opt/kafka/bin";
/// UID (and fsGroup) the Kafka container runs as: the `apache/kafka` image's `appuser`.
pub const KAFKA_USER_ID: i64 = 1000;
/// Environment variable carrying the cluster ID to the format step.
pub const CLUSTER_ID_ENV: &str = "OXBOW_KAFKA_CLUSTER_ID";
/// Heap when neither the JVM options nor a memory limit say.
pub const DEFAULT_HEAP_OPTS: &str = "-Xms128m -Xmx512m";
/// Heap when the JVM options do not say but the container has a memory limit: half of it,
/// leaving the rest to the page cache and off-heap buffers.
pub const MEMORY_LIMIT_HEAP_OPTS: &str = "-XX:InitialRAMPercentage=50.0 -XX:MaxRAMPercentage=50.0";
/// Kafka's own `KAFKA_JVM_PERFORMANCE_OPTS` default, kept in front of the user's `-XX` options
/// (setting the variable replaces the default; a later `-XX` flag wins over an earlier one).
pub const KAFKA_DEFAULT_PERFORMANCE_OPTS: &str = "-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
     -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
     -Djava.awt.headless=true";
/// JVM system properties every Kafka node gets, before the user's (a later `-D` wins): the JVM
/// caches a successful name lookup for 30 s by default, and a node whose peer came back under
/// the same name with a new pod IP kept dialling the old address that long. Brokers that cannot
/// reach a restarted controller within `broker.session.timeout.ms` (9 s) are all fenced, which
/// stops every partition; with 5 s they follow the new address in time.
pub const KAFKA_DEFAULT_SYSTEM_PROPERTIES: &str = "-Dsun.net.inetaddr.ttl=5";
/// Seconds a node gets to shut down (controlled shutdown moves partition leadership away)
/// when the template does not say.
pub const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;

/// Readiness probe timing when the spec does not say.
pub const DEFAULT_READINESS: ProbeTiming = ProbeTiming {
    initial_delay_seconds: Some(15),
    timeout_seconds: Some(5),
    period_seconds: Some(10),
    success_threshold: Some(1),
    failure_threshold: Some(3),
};
/// Liveness probe timing when the spec does not say: more patient than readiness, because a
/// node recovering its logs after an unclean shutdown may not listen for a while.
pub const DEFAULT_LIVENESS: ProbeTiming = ProbeTiming {
    initial_delay_seconds: Some(60),
    timeout_seconds: Some(5),
    period_seconds: Some(10),
    success_threshold: Some(1),
    failure_threshold: Some(6),
};

/// Why a node's pod cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PodError {
    /// The cluster has no ID yet; the storage cannot be formatted without one.
    #[error(
        "the Kafka cluster has no cluster ID yet (status.clusterId); it is chosen before the first node starts"
    )]
    MissingClusterId,
    /// The node's pool is not a pool of the cluster.
    #[error("node {node_id}: node pool {pool} is not a pool of the cluster")]
    UnknownPool {
        /// The node ID.
        node_id: i32,
        /// The pool named by the node.
        pool: String,
    },
    /// A JVM option the start scripts would split or misread.
    #[error(
        "jvmOptions: {option:?} cannot be passed to the JVM: names must be letters and digits, values must not contain whitespace"
    )]
    InvalidJvmOption {
        /// The option as given.
        option: String,
    },
}

impl PodError {
    /// Stable CamelCase reason for conditions, Events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            PodError::MissingClusterId => "MissingClusterId",
            PodError::UnknownPool { .. } => "UnknownNodePool",
            PodError::InvalidJvmOption { .. } => "InvalidJvmOption",
        }
    }
}

/// The name of a user listener's container port: `tcp-<listener>` (at most 15 characters, as
/// port names must be, since listener names have at most 11).
pub fn listener_port_name(listener: &ResolvedListener) -> String {
    format!("tcp-{}", listener.name)
}

/// Name of the controller listener's container port.
pub const CONTROLLER_PORT_NAME: &str = "controller";
/// Name of the replication listener's container port.
pub const REPLICATION_PORT_NAME: &str = "replication";

/// The pod of `node`. `config_revision` and `certificates_revision` are recorded as
/// annotations (the revisions of the node's `server.properties` and of its certificate Secret,
/// as the caller computes them); the pod-template revision is computed here from the rest of
/// the pod, without those annotations and without the image, which [`pod_revisions`] reports
/// on its own.
pub fn node_pod(
    cluster: &ResolvedCluster,
    node: &KafkaNode,
    config_revision: &str,
    certificates_revision: &str,
) -> Result<Pod, PodError> {
    let cluster_id = cluster
        .cluster_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or(PodError::MissingClusterId)?;
    let pool = cluster
        .pool(&node.pool)
        .ok_or_else(|| PodError::UnknownPool {
            node_id: node.id,
            pool: node.pool.clone(),
        })?;
    let template = pool.pod_template.clone().unwrap_or_default();
    let pod_name = names::kafka_node(&cluster.name, &node.pool, node.id);

    let mut labels = meta::node_labels(cluster, node);
    labels.insert(meta::POD_NAME_LABEL.to_owned(), pod_name.clone());
    let template_metadata = template.metadata.clone().unwrap_or_default();
    let mut metadata = meta::object_meta(
        cluster,
        pod_name.clone(),
        labels,
        template_metadata.labels.as_ref(),
        None,
    );
    let mut annotations = template_metadata.annotations.unwrap_or_default();
    for key in [
        meta::CONFIG_REVISION_ANNOTATION,
        meta::CERTIFICATES_REVISION_ANNOTATION,
        meta::POD_TEMPLATE_REVISION_ANNOTATION,
    ] {
        annotations.remove(key);
    }

    let (volumes, mounts) = volumes(cluster, node, &pool.storage.volumes, &pod_name);
    let probe_port = if node.is_broker() {
        REPLICATION_PORT
    } else {
        CONTROLLER_PORT
    };
    let container = Container {
        name: KAFKA_CONTAINER.to_owned(),
        image: Some(cluster.image.clone()),
        command: Some(vec!["sh".to_owned(), "-c".to_owned(), start_script()]),
        env: Some(env(
            cluster,
            pool.jvm_options.as_ref(),
            pool.resources.as_ref(),
            cluster_id,
        )?),
        ports: Some(container_ports(cluster, node)),
        readiness_probe: Some(tcp_probe(
            probe_port,
            cluster.readiness_probe.as_ref(),
            &DEFAULT_READINESS,
        )),
        liveness_probe: Some(tcp_probe(
            probe_port,
            cluster.liveness_probe.as_ref(),
            &DEFAULT_LIVENESS,
        )),
        resources: pool.resources.clone(),
        volume_mounts: Some(mounts),
        security_context: Some(container_security_context()),
        ..Container::default()
    };
    let spec = PodSpec {
        hostname: Some(pod_name),
        subdomain: Some(names::brokers_service(&cluster.name)),
        service_account_name: Some(names::kafka_service_account(&cluster.name)),
        automount_service_account_token: Some(false),
        // The brokers' environment is theirs; one variable per Service in the namespace is noise
        // and can clash with the scripts' variables.
        enable_service_links: Some(false),
        restart_policy: Some("Always".to_owned()),
        termination_grace_period_seconds: Some(
            template
                .termination_grace_period_seconds
                .unwrap_or(DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS),
        ),
        affinity: template.affinity.clone(),
        tolerations: template.tolerations.clone(),
        topology_spread_constraints: template.topology_spread_constraints.clone(),
        priority_class_name: template.priority_class_name.clone(),
        security_context: Some(pod_security_context(template.security_context.clone())),
        volumes: Some(volumes),
        containers: vec![container],
        ..PodSpec::default()
    };

    let mut pod = Pod {
        metadata: metadata.clone(),
        spec: Some(spec),
        status: None,
    };
    pod.metadata.annotations = Some(annotations.clone()).filter(|a| !a.is_empty());
    let template_revision = pod_template_revision(&pod);
    annotations.insert(
        meta::CONFIG_REVISION_ANNOTATION.to_owned(),
        config_revision.to_owned(),
    );
    annotations.insert(
        meta::CERTIFICATES_REVISION_ANNOTATION.to_owned(),
        certificates_revision.to_owned(),
    );
    annotations.insert(
        meta::POD_TEMPLATE_REVISION_ANNOTATION.to_owned(),
        template_revision,
    );
    metadata.annotations = Some(annotations);
    pod.metadata = metadata;
    Ok(pod)
}

/// The revision of everything in `pod` that only a restart changes, except the image: its
/// labels, annotations and spec, with the Kafka container's image left out (reported on its
/// own in [`Revisions::image`]). `pod` has no revision annotations yet.
fn pod_template_revision(pod: &Pod) -> String {
    let mut spec = pod.spec.clone().unwrap_or_default();
    for container in &mut spec.containers {
        container.image = None;
    }
    let input = serde_json::to_vec(&(&pod.metadata.labels, &pod.metadata.annotations, &spec))
        .expect("a pod serialises to JSON");
    meta::revision(&input)
}

/// What `pod` runs, from its revision annotations and its Kafka container's image; anything
/// missing is the empty string, which never equals a desired revision.
pub fn pod_revisions(pod: &Pod) -> Revisions {
    let annotation = |key: &str| {
        pod.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .cloned()
            .unwrap_or_default()
    };
    let image = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.iter().find(|c| c.name == KAFKA_CONTAINER))
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    Revisions {
        config: annotation(meta::CONFIG_REVISION_ANNOTATION),
        certificates: annotation(meta::CERTIFICATES_REVISION_ANNOTATION),
        image,
        pod_template: annotation(meta::POD_TEMPLATE_REVISION_ANNOTATION),
    }
}

/// The container's script. Values come from the environment and the mounted files, so the
/// script never changes and nothing from the spec is ever parsed by the shell.
/// `--ignore-formatted` makes the format step a no-op on formatted directories (and formats
/// only new ones, e.g. an added JBOD volume). The static quorum (`controller.quorum.voters`)
/// needs none of `--standalone` and `--initial-controllers`. The metadata version only matters
/// when a new cluster's controllers are formatted.
fn start_script() -> String {
    format!(
        "set -e\n\
         {KAFKA_BIN_DIR}/kafka-storage.sh format --cluster-id \"${CLUSTER_ID_ENV}\" \
         --release-version \"$(cat {METADATA_VERSION_PATH})\" \
         --config {SERVER_PROPERTIES_PATH} --ignore-formatted\n\
         exec {KAFKA_BIN_DIR}/kafka-server-start.sh {SERVER_PROPERTIES_PATH}\n"
    )
}

fn env(
    cluster: &ResolvedCluster,
    jvm: Option<&JvmOptions>,
    resources: Option<&k8s_openapi::api::core::v1::ResourceRequirements>,
    cluster_id: &str,
) -> Result<Vec<EnvVar>, PodError> {
    let mut vars: BTreeMap<&str, String> = BTreeMap::new();
    vars.insert(CLUSTER_ID_ENV, cluster_id.to_owned());
    // Without `-loggc` (the start script's default extra argument) the JVM writes no GC log
    // files, up to a gigabyte, into LOG_DIR.
    vars.insert("EXTRA_ARGS", "-name kafkaServer".to_owned());
    vars.insert("LOG_DIR", SCRIPTS_LOG_DIR.to_owned());
    let log4j2_file = match &cluster.logging {
        Some(logging) if logging.type_ == LoggingType::External => logging
            .value_from
            .as_ref()
            .map(|source| format!("{EXTERNAL_LOGGING_DIR}/{}", source.config_map_key_ref.key)),
        _ => None,
    };
    vars.insert(
        "KAFKA_LOG4J_OPTS",
        format!(
            "-Dlog4j2.configurationFile={}",
            log4j2_file.as_deref().unwrap_or(LOG4J2_PATH)
        ),
    );

    let jvm = jvm.cloned().unwrap_or_default();
    let mut heap = Vec::new();
    for (flag, value) in [("-Xms", &jvm.xms), ("-Xmx", &jvm.xmx)] {
        if let Some(value) = value {
            check_jvm_value(&format!("{flag}{value}"), value)?;
            heap.push(format!("{flag}{value}"));
        }
    }
    let memory_limit = resources
        .and_then(|r| r.limits.as_ref())
        .is_some_and(|l| l.contains_key("memory"));
    vars.insert(
        "KAFKA_HEAP_OPTS",
        if !heap.is_empty() {
            heap.join(" ")
        } else if memory_limit {
            MEMORY_LIMIT_HEAP_OPTS.to_owned()
        } else {
            DEFAULT_HEAP_OPTS.to_owned()
        },
    );
    if let Some(xx) = jvm.xx.as_ref().filter(|xx| !xx.is_empty()) {
        let mut opts = vec![KAFKA_DEFAULT_PERFORMANCE_OPTS.to_owned()];
        for (name, value) in xx {
            let option = match value.as_str() {
                "true" => format!("-XX:+{name}"),
                "false" => format!("-XX:-{name}"),
                _ => format!("-XX:{name}={value}"),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(PodError::InvalidJvmOption { option });
            }
            check_jvm_value(&option, value)?;
            opts.push(option);
        }
        vars.insert("KAFKA_JVM_PERFORMANCE_OPTS", opts.join(" "));
    }
    {
        let mut opts = vec![KAFKA_DEFAULT_SYSTEM_PROPERTIES.to_owned()];
        for property in jvm.java_system_properties.iter().flatten() {
            let option = format!("-D{}={}", property.name, property.value);
            if property.name.is_empty() {
                return Err(PodError::InvalidJvmOption { option });
            }
            check_jvm_value(&option, &option)?;
            opts.push(option);
        }
        vars.insert("KAFKA_OPTS", opts.join(" "));
    }
    Ok(vars
        .into_iter()
        .map(|(name, value)| EnvVar {
            name: name.to_owned(),
            value: Some(value),
            value_from: None,
        })
        .collect())
}

/// The start scripts expand the JVM variables unquoted: whitespace would split an option.
fn check_jvm_value(option: &str, value: &str) -> Result<(), PodError> {
    if value.is_empty() || value.chars().any(char::is_whitespace) {
        return Err(PodError::InvalidJvmOption {
            option: option.to_owned(),
        });
    }
    Ok(())
}

fn container_ports(cluster: &ResolvedCluster, node: &KafkaNode) -> Vec<ContainerPort> {
    let port = |name: String, number: i32| ContainerPort {
        name: Some(name),
        container_port: number,
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    };
    let mut ports = Vec::new();
    if node.is_controller() {
        ports.push(port(CONTROLLER_PORT_NAME.to_owned(), CONTROLLER_PORT));
    }
    if node.is_broker() {
        ports.push(port(REPLICATION_PORT_NAME.to_owned(), REPLICATION_PORT));
        for listener in &cluster.listeners {
            ports.push(port(listener_port_name(listener), listener.port));
        }
    }
    ports
}

fn tcp_probe(port: i32, timing: Option<&ProbeTiming>, defaults: &ProbeTiming) -> Probe {
    let timing = timing.cloned().unwrap_or_default();
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::Int(port),
            host: None,
        }),
        initial_delay_seconds: timing
            .initial_delay_seconds
            .or(defaults.initial_delay_seconds),
        timeout_seconds: timing.timeout_seconds.or(defaults.timeout_seconds),
        period_seconds: timing.period_seconds.or(defaults.period_seconds),
        success_threshold: timing.success_threshold.or(defaults.success_threshold),
        failure_threshold: timing.failure_threshold.or(defaults.failure_threshold),
        ..Probe::default()
    }
}

fn volumes(
    cluster: &ResolvedCluster,
    node: &KafkaNode,
    data: &[DataVolume],
    pod_name: &str,
) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mount = |name: &str, path: &str, read_only: bool| VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: Some(read_only).filter(|r| *r),
        ..VolumeMount::default()
    };
    let mut volumes = vec![
        Volume {
            name: CONFIG_VOLUME.to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: pod_name.to_owned(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: NODE_CERTS_VOLUME.to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(pod_name.to_owned()),
                // Readable by the fsGroup (the Kafka user's group) only: it holds the node's key.
                default_mode: Some(0o440),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        },
    ];
    let mut mounts = vec![
        mount(CONFIG_VOLUME, CONFIG_DIR, true),
        mount(NODE_CERTS_VOLUME, NODE_CERTS_DIR, true),
    ];
    for volume in data {
        let name = volume.volume_name();
        let mut v = Volume {
            name: name.clone(),
            ..Volume::default()
        };
        match &volume.kind {
            VolumeKind::Ephemeral { size_limit } => {
                v.empty_dir = Some(EmptyDirVolumeSource {
                    size_limit: size_limit.clone().map(Quantity),
                    medium: None,
                });
            }
            VolumeKind::PersistentClaim { .. } => {
                v.persistent_volume_claim = Some(PersistentVolumeClaimVolumeSource {
                    claim_name: volume.claim_name(&cluster.name, &node.pool, node.id),
                    read_only: None,
                });
            }
        }
        volumes.push(v);
        mounts.push(mount(&name, &volume.mount_path(), false));
    }
    volumes.push(Volume {
        name: TMP_VOLUME.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    });
    mounts.push(mount(TMP_VOLUME, TMP_DIR, false));
    if let Some(source) = cluster
        .logging
        .as_ref()
        .filter(|l| l.type_ == LoggingType::External)
        .and_then(|l| l.value_from.as_ref())
    {
        let key = &source.config_map_key_ref;
        volumes.push(Volume {
            name: LOGGING_VOLUME.to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: key.name.clone(),
                items: Some(vec![KeyToPath {
                    key: key.key.clone(),
                    path: key.key.clone(),
                    mode: None,
                }]),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        });
        mounts.push(mount(LOGGING_VOLUME, EXTERNAL_LOGGING_DIR, true));
    }
    (volumes, mounts)
}

/// The template's pod security context with what Pod Security `restricted` needs filled in
/// where it is unset.
fn pod_security_context(template: Option<PodSecurityContext>) -> PodSecurityContext {
    let mut context = template.unwrap_or_default();
    context.run_as_non_root.get_or_insert(true);
    context.run_as_user.get_or_insert(KAFKA_USER_ID);
    context.fs_group.get_or_insert(KAFKA_USER_ID);
    // Large data volumes are re-owned only when their root is not the fsGroup's already.
    context
        .fs_group_change_policy
        .get_or_insert_with(|| "OnRootMismatch".to_owned());
    context
        .seccomp_profile
        .get_or_insert_with(|| SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            localhost_profile: None,
        });
    context
}

fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: None,
        }),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        ..SecurityContext::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use k8s_openapi::api::core::v1::ResourceRequirements;
    use rstest::rstest;
    use shared_crds::common::{ExternalLoggingSource, Logging};
    use shared_crds::labels;

    use super::*;
    use crate::build::kafka_config::{
        AdvertisedAddresses, CLIENTS_CA_TRUSTSTORE_PATH, CLUSTER_CA_TRUSTSTORE_PATH,
        NODE_KEYSTORE_PATH, build_server_properties,
    };
    use crate::build::storage::node_claims;
    use crate::pki::node_certs;
    use crate::test_fixtures;

    const CLUSTER_ID: &str = "Zx9yWvUtSrQpOnMlKjIhGg";

    /// The validated cluster of `fixture`, with a cluster ID when the fixture's status has none.
    fn cluster(fixture: &str) -> ResolvedCluster {
        let mut c = test_fixtures::resolved(fixture);
        c.cluster_id.get_or_insert_with(|| CLUSTER_ID.to_owned());
        c
    }

    fn pod(c: &ResolvedCluster, node_id: i32) -> Pod {
        let node = c.node(node_id).expect("node");
        node_pod(c, &node, "config-1", "certs-1").expect("pod")
    }

    fn spec(pod: &Pod) -> &PodSpec {
        pod.spec.as_ref().unwrap()
    }

    fn kafka(pod: &Pod) -> &Container {
        let containers = &spec(pod).containers;
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0].name, KAFKA_CONTAINER);
        &containers[0]
    }

    fn env_map(pod: &Pod) -> BTreeMap<String, String> {
        kafka(pod)
            .env
            .iter()
            .flatten()
            .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
            .collect()
    }

    /// The volume mounted at the longest mount path that contains `path`.
    fn volume_of<'a>(pod: &'a Pod, path: &str) -> Option<&'a Volume> {
        let mount = kafka(pod)
            .volume_mounts
            .iter()
            .flatten()
            .filter(|m| path == m.mount_path || path.starts_with(&format!("{}/", m.mount_path)))
            .max_by_key(|m| m.mount_path.len())?;
        spec(pod)
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
    }

    /// Every (fixture, node) the table tests run on: all roles, all storage kinds.
    const NODES: &[(&str, i32)] = &[
        ("single-node", 0),
        ("separate-roles", 0),
        ("separate-roles", 3),
        ("combined", 2),
        ("all-listeners", 1),
        ("all-listeners", 2),
        ("persistent-templates", 0),
        ("persistent-templates", 11),
    ];

    #[rstest]
    #[case("single-node", 0, "tiny-solo-0", "tiny")]
    #[case("separate-roles", 3, "my-cluster-controller-3", "my-cluster")]
    #[case("separate-roles", 0, "my-cluster-broker-0", "my-cluster")]
    #[case("combined", 2, "small-dual-2", "small")]
    #[case("all-listeners", 1, "my-cluster-broker-1", "my-cluster")]
    #[case("persistent-templates", 12, "big-data-12", "big")]
    fn identity_labels_and_owner(
        #[case] fixture: &str,
        #[case] node_id: i32,
        #[case] name: &str,
        #[case] cluster_name: &str,
    ) {
        let c = cluster(fixture);
        let node = c.node(node_id).unwrap();
        let p = pod(&c, node_id);
        assert_eq!(p.metadata.name.as_deref(), Some(name));
        assert_eq!(p.metadata.namespace.as_deref(), Some(c.namespace.as_str()));
        assert_eq!(
            p.metadata.owner_references,
            Some(vec![meta::owner_reference(&c)])
        );
        let pod_labels = p.metadata.labels.as_ref().unwrap();
        for (k, v) in meta::node_labels(&c, &node) {
            assert_eq!(pod_labels.get(&k), Some(&v), "{k}");
        }
        assert_eq!(pod_labels[meta::POD_NAME_LABEL], name);
        assert_eq!(pod_labels[labels::CLUSTER], cluster_name);
        // Per-node Services select the pod.
        for (k, v) in meta::node_pod_selector_labels(&c, &node) {
            assert_eq!(pod_labels.get(&k), Some(&v), "{k}");
        }
        let s = spec(&p);
        assert_eq!(s.hostname.as_deref(), Some(name));
        assert_eq!(
            s.subdomain.as_deref(),
            Some(format!("{cluster_name}-kafka-brokers").as_str())
        );
        assert_eq!(
            s.service_account_name.as_deref(),
            Some(format!("{cluster_name}-kafka").as_str())
        );
        assert_eq!(s.automount_service_account_token, Some(false));
        assert_eq!(s.restart_policy.as_deref(), Some("Always"));
        assert_eq!(kafka(&p).image.as_deref(), Some(c.image.as_str()));
        assert_eq!(c.image, "apache/kafka:4.1.2");
    }

    #[test]
    fn the_script_formats_then_execs_the_server_with_the_mounted_config() {
        let c = cluster("separate-roles");
        let p = pod(&c, 3);
        let command = kafka(&p).command.clone().unwrap();
        assert_eq!(command[..2], ["sh", "-c"]);
        let script = &command[2];
        let lines: Vec<&str> = script.lines().collect();
        assert_eq!(lines[0], "set -e");
        assert_eq!(
            lines[1],
            "/opt/kafka/bin/kafka-storage.sh format --cluster-id \"$OXBOW_KAFKA_CLUSTER_ID\" \
             --release-version \"$(cat /opt/kafka/config/oxbow/metadata.version)\" \
             --config /opt/kafka/config/oxbow/server.properties --ignore-formatted"
        );
        assert_eq!(
            lines[2],
            "exec /opt/kafka/bin/kafka-server-start.sh /opt/kafka/config/oxbow/server.properties"
        );
        assert!(!script.contains("--standalone"));
        assert_eq!(env_map(&p)[CLUSTER_ID_ENV], CLUSTER_ID);
        // The fixture's own cluster ID when its status has one.
        let c = cluster("persistent-templates");
        assert_eq!(
            env_map(&pod(&c, 0))[CLUSTER_ID_ENV],
            "Ab3dEfGhIjKlMnOpQrStUw"
        );
    }

    #[test]
    fn a_cluster_without_an_id_has_no_pods_yet() {
        let c = test_fixtures::resolved("single-node");
        assert_eq!(c.cluster_id, None);
        let err = node_pod(&c, &c.node(0).unwrap(), "a", "b").unwrap_err();
        assert_eq!(err, PodError::MissingClusterId);
        assert_eq!(err.reason(), "MissingClusterId");
    }

    #[test]
    fn volumes_and_mounts_match_server_properties_and_the_node_secret() {
        for &(fixture, node_id) in NODES {
            let c = cluster(fixture);
            let node = c.node(node_id).unwrap();
            let p = pod(&c, node_id);
            let pod_name = p.metadata.name.clone().unwrap();
            let props =
                build_server_properties(&c, node_id, &external_addresses(&c)).expect("config");

            // Every log directory and the metadata log directory lie on a data volume, and
            // every data volume holds a log directory.
            let mut log_dirs: Vec<&str> = props.get("log.dirs").unwrap().split(',').collect();
            log_dirs.push(props.get("metadata.log.dir").unwrap());
            let mut used = BTreeSet::new();
            for dir in log_dirs {
                let v = volume_of(&p, dir).unwrap_or_else(|| panic!("{fixture}: {dir}"));
                assert!(v.name.starts_with("data"), "{fixture}: {dir} on {}", v.name);
                assert!(v.empty_dir.is_some() || v.persistent_volume_claim.is_some());
                used.insert(v.name.clone());
            }
            let data_volumes: BTreeSet<String> = spec(&p)
                .volumes
                .iter()
                .flatten()
                .filter(|v| v.name.starts_with("data"))
                .map(|v| v.name.clone())
                .collect();
            assert_eq!(used, data_volumes, "{fixture}");

            // Claims are the ones the storage builder creates.
            let claimed: Vec<String> = spec(&p)
                .volumes
                .iter()
                .flatten()
                .filter_map(|v| v.persistent_volume_claim.as_ref())
                .map(|c| c.claim_name.clone())
                .collect();
            let created: Vec<String> = node_claims(&c, &node)
                .into_iter()
                .map(|c| c.metadata.name.unwrap())
                .collect();
            assert_eq!(claimed, created, "{fixture}");

            // Certificates come from the node's Secret under the keys the PKI writes.
            for (path, key) in [
                (NODE_KEYSTORE_PATH, node_certs::KEYSTORE),
                (CLUSTER_CA_TRUSTSTORE_PATH, node_certs::CA_CERT),
                (CLIENTS_CA_TRUSTSTORE_PATH, node_certs::CLIENTS_CA_CERT),
            ] {
                let v = volume_of(&p, path).unwrap();
                let secret = v.secret.as_ref().expect("a Secret volume");
                assert_eq!(secret.secret_name.as_deref(), Some(pod_name.as_str()));
                assert!(secret.items.is_none(), "every key is mounted");
                assert_eq!(path, format!("{NODE_CERTS_DIR}/{key}"));
            }
            for path in [SERVER_PROPERTIES_PATH, LOG4J2_PATH, METADATA_VERSION_PATH] {
                let v = volume_of(&p, path).unwrap();
                let cm = v.config_map.as_ref().expect("a ConfigMap volume");
                assert_eq!(cm.name, pod_name);
                assert!(cm.items.is_none(), "no subPath, so updates reach the pod");
            }
            // Read-only root filesystem: everything written to goes to a volume.
            let tmp = volume_of(&p, SCRIPTS_LOG_DIR).unwrap();
            assert_eq!(tmp.name, TMP_VOLUME);
            assert!(tmp.empty_dir.is_some());
            assert_eq!(env_map(&p)["LOG_DIR"], SCRIPTS_LOG_DIR);
            assert_eq!(
                env_map(&p)["KAFKA_LOG4J_OPTS"],
                "-Dlog4j2.configurationFile=/opt/kafka/config/oxbow/log4j2.properties"
            );
            let read_only: BTreeSet<&str> = kafka(&p)
                .volume_mounts
                .iter()
                .flatten()
                .filter(|m| m.read_only == Some(true))
                .map(|m| m.name.as_str())
                .collect();
            assert_eq!(
                read_only,
                BTreeSet::from([CONFIG_VOLUME, NODE_CERTS_VOLUME])
            );
        }
    }

    fn external_addresses(c: &ResolvedCluster) -> AdvertisedAddresses {
        let mut a = AdvertisedAddresses::default();
        for l in &c.listeners {
            for n in c.nodes() {
                a.insert(&l.name, n.id, "example.com", 31000);
            }
        }
        a
    }

    #[rstest]
    #[case("persistent-templates", 0, "data", Some("data-big-ctrl-0"), None)]
    #[case("persistent-templates", 10, "data-0", Some("data-0-big-data-10"), None)]
    #[case("persistent-templates", 10, "data-1", None, Some("5Gi"))]
    #[case("persistent-templates", 10, "data-2", Some("data-2-big-data-10"), None)]
    #[case("single-node", 0, "data", None, None)]
    fn data_volume_sources(
        #[case] fixture: &str,
        #[case] node_id: i32,
        #[case] volume: &str,
        #[case] claim: Option<&str>,
        #[case] size_limit: Option<&str>,
    ) {
        let p = pod(&cluster(fixture), node_id);
        let v = spec(&p)
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == volume)
            .unwrap();
        assert_eq!(
            v.persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.as_str()),
            claim
        );
        if claim.is_none() {
            let empty_dir = v.empty_dir.as_ref().expect("emptyDir");
            assert_eq!(
                empty_dir.size_limit.as_ref().map(|q| q.0.as_str()),
                size_limit
            );
        }
        let mount = kafka(&p)
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.name == volume)
            .unwrap();
        assert_eq!(mount.mount_path, format!("/var/lib/kafka/{volume}"));
    }

    #[rstest]
    #[case("single-node", 0, &[("controller", 9090), ("replication", 9091), ("tcp-plain", 9092)], 9091)]
    #[case("separate-roles", 3, &[("controller", 9090)], 9090)]
    #[case("separate-roles", 0, &[("replication", 9091), ("tcp-plain", 9092)], 9091)]
    #[case("all-listeners", 2, &[("controller", 9090)], 9090)]
    #[case("all-listeners", 1, &[
        ("replication", 9091), ("tcp-clusterip", 9098), ("tcp-lb", 9097), ("tcp-mtls", 9094),
        ("tcp-node", 9096), ("tcp-plain", 9092), ("tcp-scram", 9095), ("tcp-tls", 9093),
    ], 9091)]
    fn ports_and_probes_per_role(
        #[case] fixture: &str,
        #[case] node_id: i32,
        #[case] ports: &[(&str, i32)],
        #[case] probe_port: i32,
    ) {
        let c = cluster(fixture);
        let p = pod(&c, node_id);
        let got: Vec<(String, i32)> = kafka(&p)
            .ports
            .iter()
            .flatten()
            .map(|port| {
                assert_eq!(port.protocol.as_deref(), Some("TCP"));
                assert!(port.host_port.is_none());
                let name = port.name.clone().unwrap();
                assert!(name.len() <= 15, "{name}");
                (name, port.container_port)
            })
            .collect();
        let expected: Vec<(String, i32)> = ports.iter().map(|(n, p)| (n.to_string(), *p)).collect();
        assert_eq!(got, expected);
        // The server listens on every container port.
        let props = build_server_properties(&c, node_id, &external_addresses(&c)).unwrap();
        for (_, port) in &got {
            assert!(
                props
                    .get("listeners")
                    .unwrap()
                    .contains(&format!(":{port}")),
                "{port}"
            );
        }
        for probe in [
            kafka(&p).readiness_probe.as_ref().unwrap(),
            kafka(&p).liveness_probe.as_ref().unwrap(),
        ] {
            assert_eq!(
                probe.tcp_socket.as_ref().unwrap().port,
                IntOrString::Int(probe_port)
            );
            assert!(probe.exec.is_none() && probe.http_get.is_none());
        }
    }

    /// (initialDelay, timeout, period, success, failure)
    fn timing(p: &Probe) -> [Option<i32>; 5] {
        [
            p.initial_delay_seconds,
            p.timeout_seconds,
            p.period_seconds,
            p.success_threshold,
            p.failure_threshold,
        ]
    }

    #[test]
    fn probe_timings_are_the_users_over_the_defaults() {
        let p = pod(&cluster("single-node"), 0);
        let k = kafka(&p);
        assert_eq!(
            timing(k.readiness_probe.as_ref().unwrap()),
            [Some(15), Some(5), Some(10), Some(1), Some(3)]
        );
        assert_eq!(
            timing(k.liveness_probe.as_ref().unwrap()),
            [Some(60), Some(5), Some(10), Some(1), Some(6)]
        );
        let p = pod(&cluster("persistent-templates"), 10);
        let k = kafka(&p);
        assert_eq!(
            timing(k.readiness_probe.as_ref().unwrap()),
            [Some(15), Some(5), Some(5), Some(1), Some(10)]
        );
        assert_eq!(
            timing(k.liveness_probe.as_ref().unwrap()),
            [Some(120), Some(10), Some(10), Some(1), Some(6)]
        );
    }

    #[rstest]
    #[case(
        "single-node",
        0,
        "-Xms128m -Xmx512m",
        None,
        "-Dsun.net.inetaddr.ttl=5"
    )]
    #[case(
        "separate-roles",
        0,
        "-Xms256m -Xmx256m",
        None,
        "-Dsun.net.inetaddr.ttl=5"
    )]
    #[case(
        "persistent-templates",
        0,
        "-Xms512m -Xmx1g",
        Some(
            "-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
              -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true -XX:MaxGCPauseMillis=50 \
              -XX:-UseCompressedOops -XX:+UseStringDeduplication"
        ),
        "-Dsun.net.inetaddr.ttl=5 -Djavax.net.debug=ssl"
    )]
    fn jvm_environment(
        #[case] fixture: &str,
        #[case] node_id: i32,
        #[case] heap: &str,
        #[case] performance: Option<&str>,
        #[case] system_properties: &str,
    ) {
        let env = env_map(&pod(&cluster(fixture), node_id));
        assert_eq!(env["KAFKA_HEAP_OPTS"], heap);
        assert_eq!(
            env.get("KAFKA_JVM_PERFORMANCE_OPTS").map(String::as_str),
            performance
        );
        // The short DNS cache always comes first, so the user's own value wins.
        assert_eq!(env["KAFKA_OPTS"], system_properties);
        assert_eq!(env["EXTRA_ARGS"], "-name kafkaServer");
    }

    #[test]
    fn without_heap_options_a_memory_limit_sizes_the_heap() {
        let mut c = cluster("persistent-templates");
        for pool in &mut c.pools {
            pool.jvm_options = None;
        }
        let env = env_map(&pod(&c, 0));
        assert_eq!(env["KAFKA_HEAP_OPTS"], MEMORY_LIMIT_HEAP_OPTS);
        assert!(!env.contains_key("KAFKA_JVM_PERFORMANCE_OPTS"));
        assert_eq!(env["KAFKA_OPTS"], KAFKA_DEFAULT_SYSTEM_PROPERTIES);
    }

    #[rstest]
    #[case("-Xmx", "1 g")]
    #[case("-XX", "Max GC")]
    #[case("-XX-value", "a b")]
    #[case("-D", "x y")]
    fn jvm_options_the_scripts_would_split_are_refused(#[case] which: &str, #[case] text: &str) {
        let mut c = cluster("persistent-templates");
        let jvm = c.pools[0].jvm_options.as_mut().unwrap();
        match which {
            "-Xmx" => jvm.xmx = Some(text.into()),
            "-XX" => {
                jvm.xx.as_mut().unwrap().insert(text.into(), "1".into());
            }
            "-XX-value" => {
                jvm.xx.as_mut().unwrap().insert("Foo".into(), text.into());
            }
            _ => {
                jvm.java_system_properties.as_mut().unwrap()[0].value = text.into();
            }
        }
        let node = c.node(0).unwrap();
        let err = node_pod(&c, &node, "a", "b").unwrap_err();
        assert_eq!(err.reason(), "InvalidJvmOption");
    }

    #[test]
    fn resources_come_from_the_pool() {
        let c = cluster("persistent-templates");
        for node in c.nodes() {
            let p = pod(&c, node.id);
            assert_eq!(
                kafka(&p).resources,
                c.pool(&node.pool).unwrap().resources,
                "{}",
                node.id
            );
            assert!(kafka(&p).resources.is_some());
        }
        assert_eq!(kafka(&pod(&cluster("single-node"), 0)).resources, None);
    }

    /// The checks of Pod Security `restricted` (Kubernetes 1.33) that a pod spec can fail.
    fn restricted_violations(pod: &Pod) -> Vec<String> {
        let mut v = Vec::new();
        let spec = pod.spec.as_ref().unwrap();
        let psc = spec.security_context.clone().unwrap_or_default();
        if spec.host_network == Some(true)
            || spec.host_pid == Some(true)
            || spec.host_ipc == Some(true)
        {
            v.push("host namespaces".to_owned());
        }
        for volume in spec.volumes.iter().flatten() {
            let allowed = volume.config_map.is_some()
                || volume.secret.is_some()
                || volume.empty_dir.is_some()
                || volume.persistent_volume_claim.is_some()
                || volume.projected.is_some()
                || volume.downward_api.is_some()
                || volume.csi.is_some()
                || volume.ephemeral.is_some();
            if !allowed {
                v.push(format!("volume type of {}", volume.name));
            }
        }
        if psc.run_as_user == Some(0) {
            v.push("pod runAsUser 0".to_owned());
        }
        let seccomp_ok = |p: &Option<SeccompProfile>| {
            p.as_ref()
                .is_some_and(|p| p.type_ == "RuntimeDefault" || p.type_ == "Localhost")
        };
        let containers = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten());
        for c in containers {
            let sc = c.security_context.clone().unwrap_or_default();
            if sc.privileged == Some(true) {
                v.push(format!("{}: privileged", c.name));
            }
            if sc.allow_privilege_escalation != Some(false) {
                v.push(format!("{}: allowPrivilegeEscalation", c.name));
            }
            let caps = sc.capabilities.clone().unwrap_or_default();
            if !caps.drop.iter().flatten().any(|d| d == "ALL") {
                v.push(format!("{}: capabilities not dropped", c.name));
            }
            if caps.add.iter().flatten().any(|a| a != "NET_BIND_SERVICE") {
                v.push(format!("{}: capabilities added", c.name));
            }
            let non_root = sc.run_as_non_root.or(psc.run_as_non_root);
            if non_root != Some(true) {
                v.push(format!("{}: runAsNonRoot", c.name));
            }
            if sc.run_as_user == Some(0) {
                v.push(format!("{}: runAsUser 0", c.name));
            }
            if !seccomp_ok(&sc.seccomp_profile) && !seccomp_ok(&psc.seccomp_profile) {
                v.push(format!("{}: seccompProfile", c.name));
            }
            if c.ports.iter().flatten().any(|p| p.host_port.is_some()) {
                v.push(format!("{}: hostPort", c.name));
            }
        }
        v
    }

    #[test]
    fn the_restricted_checker_catches_what_it_checks() {
        let mut p = pod(&cluster("single-node"), 0);
        let s = p.spec.as_mut().unwrap();
        s.security_context = None;
        s.containers[0].security_context = None;
        s.host_network = Some(true);
        s.volumes.as_mut().unwrap().push(Volume {
            name: "host".into(),
            host_path: Some(Default::default()),
            ..Volume::default()
        });
        let v = restricted_violations(&p);
        for expected in [
            "host namespaces",
            "volume type of host",
            "kafka: allowPrivilegeEscalation",
            "kafka: capabilities not dropped",
            "kafka: runAsNonRoot",
            "kafka: seccompProfile",
        ] {
            assert!(v.iter().any(|x| x == expected), "{expected} in {v:?}");
        }
    }

    #[test]
    fn every_pod_passes_pod_security_restricted() {
        for &(fixture, node_id) in NODES {
            let p = pod(&cluster(fixture), node_id);
            assert_eq!(restricted_violations(&p), Vec::<String>::new(), "{fixture}");
            let psc = spec(&p).security_context.as_ref().unwrap();
            assert_eq!(psc.run_as_non_root, Some(true));
            assert_eq!(psc.run_as_user, Some(1000));
            assert_eq!(psc.fs_group, Some(1000));
            assert_eq!(
                psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
                Some("RuntimeDefault")
            );
            let sc = kafka(&p).security_context.as_ref().unwrap();
            assert_eq!(sc.allow_privilege_escalation, Some(false));
            assert_eq!(sc.read_only_root_filesystem, Some(true));
            assert_eq!(
                sc.capabilities.as_ref().unwrap().drop,
                Some(vec!["ALL".to_owned()])
            );
        }
    }

    #[test]
    fn the_pools_template_replaces_the_kafkas() {
        let c = cluster("persistent-templates");
        // Pool `ctrl` has its own template.
        let ctrl = pod(&c, 0);
        let l = ctrl.metadata.labels.as_ref().unwrap();
        assert_eq!(l["tier"], "control");
        assert!(!l.contains_key("team"));
        let s = spec(&ctrl);
        assert_eq!(s.priority_class_name.as_deref(), Some("kafka-controllers"));
        assert!(s.affinity.as_ref().unwrap().pod_anti_affinity.is_some());
        assert_eq!(s.topology_spread_constraints.as_ref().unwrap().len(), 1);
        assert_eq!(s.tolerations, None);
        assert_eq!(s.termination_grace_period_seconds, Some(30));
        assert_eq!(
            s.security_context.as_ref().unwrap().supplemental_groups,
            None
        );
        let a = ctrl.metadata.annotations.as_ref().unwrap();
        assert!(!a.contains_key("example.com/scrape"));

        // Pool `data` takes the Kafka's.
        let data = pod(&c, 11);
        let l = data.metadata.labels.as_ref().unwrap();
        assert_eq!(l["team"], "streaming");
        assert_eq!(
            l[labels::CLUSTER],
            "big",
            "template labels cannot replace ours"
        );
        let s = spec(&data);
        assert_eq!(s.priority_class_name.as_deref(), Some("kafka-default"));
        assert_eq!(s.termination_grace_period_seconds, Some(120));
        let t = &s.tolerations.as_ref().unwrap()[0];
        assert_eq!(t.key.as_deref(), Some("dedicated"));
        assert_eq!(t.effect.as_deref(), Some("NoSchedule"));
        let psc = s.security_context.as_ref().unwrap();
        assert_eq!(psc.supplemental_groups, Some(vec![5000]));
        assert_eq!(
            psc.run_as_user,
            Some(1000),
            "restricted fields are filled in"
        );
        let a = data.metadata.annotations.as_ref().unwrap();
        assert_eq!(a["example.com/scrape"], "true");
    }

    #[test]
    fn a_template_security_context_wins_where_it_is_set() {
        let mut c = cluster("persistent-templates");
        let t = c.pools[1].pod_template.as_mut().unwrap();
        let psc = t.security_context.as_mut().unwrap();
        psc.run_as_user = Some(1001);
        psc.fs_group = Some(2000);
        let p = pod(&c, 10);
        let psc = spec(&p).security_context.as_ref().unwrap();
        assert_eq!(psc.run_as_user, Some(1001));
        assert_eq!(psc.fs_group, Some(2000));
        assert_eq!(restricted_violations(&p), Vec::<String>::new());
    }

    #[test]
    fn revisions_are_recorded_and_read_back() {
        let c = cluster("separate-roles");
        let node = c.node(0).unwrap();
        let p = node_pod(&c, &node, "cfg-a", "certs-a").unwrap();
        let a = p.metadata.annotations.as_ref().unwrap();
        assert_eq!(a[meta::CONFIG_REVISION_ANNOTATION], "cfg-a");
        assert_eq!(a[meta::CERTIFICATES_REVISION_ANNOTATION], "certs-a");
        let r = pod_revisions(&p);
        assert_eq!(r.config, "cfg-a");
        assert_eq!(r.certificates, "certs-a");
        assert_eq!(r.image, "apache/kafka:4.1.2");
        assert_eq!(r.pod_template, a[meta::POD_TEMPLATE_REVISION_ANNOTATION]);
        assert_eq!(r.pod_template.len(), 16);

        assert_eq!(pod_revisions(&Pod::default()), Revisions::default());
        let mut bare = p.clone();
        bare.metadata.annotations = None;
        let r = pod_revisions(&bare);
        assert_eq!((r.config.as_str(), r.pod_template.as_str()), ("", ""));
        assert_eq!(r.image, "apache/kafka:4.1.2");
    }

    #[test]
    fn the_template_revision_ignores_config_and_certificates_but_not_resources() {
        let c = cluster("persistent-templates");
        let node = c.node(10).unwrap();
        let base = pod_revisions(&node_pod(&c, &node, "cfg-a", "certs-a").unwrap());
        let other = pod_revisions(&node_pod(&c, &node, "cfg-b", "certs-b").unwrap());
        assert_eq!(base.pod_template, other.pod_template);
        assert_ne!(base.config, other.config);
        assert_ne!(base.certificates, other.certificates);

        let mut changed = c.clone();
        changed.pools[1].resources = Some(ResourceRequirements {
            requests: Some(BTreeMap::from([("cpu".into(), Quantity("2".into()))])),
            ..ResourceRequirements::default()
        });
        let r = pod_revisions(&node_pod(&changed, &node, "cfg-a", "certs-a").unwrap());
        assert_ne!(r.pod_template, base.pod_template);

        // An annotation from the template counts; the image is its own revision.
        let mut changed = c.clone();
        let t = changed.pools[1].pod_template.as_mut().unwrap();
        t.metadata
            .as_mut()
            .unwrap()
            .annotations
            .as_mut()
            .unwrap()
            .insert("x".into(), "y".into());
        let r = pod_revisions(&node_pod(&changed, &node, "cfg-a", "certs-a").unwrap());
        assert_ne!(r.pod_template, base.pod_template);
        let mut changed = c.clone();
        changed.image = "apache/kafka:4.1.1".into();
        let r = pod_revisions(&node_pod(&changed, &node, "cfg-a", "certs-a").unwrap());
        assert_eq!(r.pod_template, base.pod_template);
        assert_eq!(r.image, "apache/kafka:4.1.1");
    }

    #[test]
    fn template_revision_annotations_cannot_be_forged() {
        let mut c = cluster("persistent-templates");
        let t = c.pools[1].pod_template.as_mut().unwrap();
        t.metadata
            .as_mut()
            .unwrap()
            .annotations
            .as_mut()
            .unwrap()
            .insert(
                meta::POD_TEMPLATE_REVISION_ANNOTATION.into(),
                "forged".into(),
            );
        let r = pod_revisions(&pod(&c, 10));
        assert_ne!(r.pod_template, "forged");
        assert_eq!(r.config, "config-1");
    }

    #[test]
    fn external_logging_mounts_the_users_config_map() {
        let mut c = cluster("single-node");
        c.logging = Some(Logging {
            type_: LoggingType::External,
            loggers: None,
            value_from: Some(ExternalLoggingSource {
                config_map_key_ref: k8s_openapi::api::core::v1::ConfigMapKeySelector {
                    name: "my-logging".into(),
                    key: "log4j2.yaml".into(),
                    optional: None,
                },
            }),
        });
        let p = pod(&c, 0);
        let env = env_map(&p);
        assert_eq!(
            env["KAFKA_LOG4J_OPTS"],
            "-Dlog4j2.configurationFile=/opt/kafka/config/logging/log4j2.yaml"
        );
        let v = volume_of(&p, "/opt/kafka/config/logging/log4j2.yaml").unwrap();
        assert_eq!(v.name, LOGGING_VOLUME);
        let cm = v.config_map.as_ref().unwrap();
        assert_eq!(cm.name, "my-logging");
        assert_eq!(
            cm.items.as_ref().unwrap()[0],
            KeyToPath {
                key: "log4j2.yaml".into(),
                path: "log4j2.yaml".into(),
                mode: None
            }
        );
        assert_eq!(restricted_violations(&p), Vec::<String>::new());
    }

    #[test]
    fn listener_port_names_fit_the_kubernetes_limit() {
        let c = cluster("all-listeners");
        for l in &c.listeners {
            let name = listener_port_name(l);
            assert!(name.len() <= 15);
            assert!(
                name.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
            );
        }
    }
}
