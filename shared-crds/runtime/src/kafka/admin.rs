//! Kafka administration for the operators: an async API with owned types over librdkafka's admin
//! calls (cluster and topic descriptions, topic creation, partitions, deletion and incremental
//! config changes, broker configs, ACLs, SCRAM credentials, unregistering a removed broker). Each call sends ONE request whose batch the caller
//! sizes (KRaft refuses a request that would write more than 10,000 metadata records); where Kafka
//! answers per item, the result is per item and keeps Kafka's error code name and message, because
//! users read them in status conditions. Every call is timed and counted in Prometheus.
//! May touch: the Kafka cluster it is connected to (through `super::ffi`), the Prometheus registry
//! it is given, tokio's blocking thread pool.

use std::{
    collections::BTreeMap,
    fmt,
    sync::Arc,
    time::{Duration, Instant},
};

use base64::Engine as _;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use rdkafka::config::RDKafkaLogLevel;

pub use super::ffi::CallError;
use super::{
    KafkaConnection,
    ffi::{AdminHandle, ConfigResourceType, Items},
    protocol::{
        ConnectionError, KafkaProtocolClient, ProtocolCallError, QuorumInfo, RegisteredBroker,
    },
};

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// An error code that Kafka (or librdkafka, for failures on the client side) answered with, and
/// the message that came with it. Kafka's message is kept verbatim: it is what tells a user that
/// `foo` is an unknown topic config or that the replication factor exceeds the brokers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaFailure {
    /// Kafka's protocol error code (> 0, or -1 for an unknown server error), or librdkafka's local
    /// error code (< -1, for example -185 when the request timed out).
    pub code: i32,
    pub message: String,
}

impl KafkaFailure {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        KafkaFailure {
            code,
            message: message.into(),
        }
    }

    /// Kafka's name for the code (`TOPIC_ALREADY_EXISTS`, as in `org.apache.kafka.common.protocol.Errors`),
    /// or librdkafka's for local errors (`_TIMED_OUT`); `UNKNOWN` for a code neither knows.
    pub fn name(&self) -> &'static str {
        error_code(self.code).map_or("UNKNOWN", |(name, _)| name)
    }

    /// The code as a stable CamelCase word (`TopicAlreadyExists`, `InvalidConfig`, `TimedOut`),
    /// used as condition reason and Event reason.
    pub fn reason(&self) -> &'static str {
        error_code(self.code).map_or("UnknownKafkaError", |(_, reason)| reason)
    }

    /// True when Kafka says the topic (or partition) does not exist.
    pub fn is_unknown_topic(&self) -> bool {
        self.code == UNKNOWN_TOPIC_OR_PARTITION
    }

    /// True when Kafka has no registration for the broker id (UnregisterBroker of an id that was
    /// never registered or is already unregistered): the id is gone from the cluster metadata.
    pub fn is_broker_id_not_registered(&self) -> bool {
        self.code == BROKER_ID_NOT_REGISTERED
    }
}

impl fmt::Display for KafkaFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match error_code(self.code) {
            Some((name, _)) => write!(f, "{name}: {}", self.message),
            None => write!(f, "error code {}: {}", self.code, self.message),
        }
    }
}

impl std::error::Error for KafkaFailure {}

const UNKNOWN_TOPIC_OR_PARTITION: i32 = 3;
const BROKER_ID_NOT_REGISTERED: i32 = 102;
/// librdkafka's `_INVALID_ARG`: the client refused an item before sending it.
pub(crate) const LOCAL_INVALID_ARG: i32 = -186;

/// A failed admin call, named after the action; per-item failures use the same variants.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("creating the Kafka admin client: {source}")]
    CreateClient { source: CallError },
    #[error("registering the Kafka admin metrics: {source}")]
    RegisterMetrics { source: prometheus::Error },
    #[error("running {api} on a blocking thread: {message}")]
    RunAdminTask { api: &'static str, message: String },
    #[error("describing the cluster: {source}")]
    DescribeCluster { source: CallError },
    #[error("describing topics: {source}")]
    DescribeTopics { source: CallError },
    #[error("listing topics: {source}")]
    ListTopics { source: CallError },
    #[error("describing topic configs: {source}")]
    DescribeTopicConfigs { source: CallError },
    #[error("creating topics: {source}")]
    CreateTopics { source: CallError },
    #[error("creating partitions: {source}")]
    CreatePartitions { source: CallError },
    #[error("deleting topics: {source}")]
    DeleteTopics { source: CallError },
    #[error("altering topic configs: {source}")]
    AlterTopicConfigs { source: CallError },
    #[error("describing ACLs: {source}")]
    DescribeAcls { source: CallError },
    #[error("creating ACLs: {source}")]
    CreateAcls { source: CallError },
    #[error("deleting ACLs: {source}")]
    DeleteAcls { source: CallError },
    #[error("describing partitions: {source}")]
    DescribePartitions { source: CallError },
    #[error("altering broker configs: {source}")]
    AlterBrokerConfigs { source: CallError },
    #[error("describing broker configs: {source}")]
    DescribeBrokerConfigs { source: CallError },
    #[error("unregistering a broker: {source}")]
    UnregisterBroker { source: CallError },
    #[error("describing the metadata quorum: {source}")]
    DescribeQuorum { source: CallError },
    #[error("listing the registered brokers: {source}")]
    ListRegisteredBrokers { source: CallError },
    /// A call librdkafka cannot make, spoken in the Kafka protocol, failed to get an answer.
    #[error("sending {api} in the Kafka protocol: {source}")]
    SendProtocolRequest {
        api: &'static str,
        source: Box<ConnectionError>,
    },
    #[error("describing SCRAM credentials: {source}")]
    DescribeScramCredentials { source: CallError },
    #[error("altering SCRAM credentials: {source}")]
    AlterScramCredentials { source: CallError },
}

impl AdminError {
    /// The underlying call error, if the action reached the admin client.
    pub fn call_error(&self) -> Option<&CallError> {
        match self {
            AdminError::RegisterMetrics { .. }
            | AdminError::RunAdminTask { .. }
            | AdminError::SendProtocolRequest { .. } => None,
            AdminError::CreateClient { source }
            | AdminError::DescribeCluster { source }
            | AdminError::DescribeTopics { source }
            | AdminError::ListTopics { source }
            | AdminError::DescribeTopicConfigs { source }
            | AdminError::CreateTopics { source }
            | AdminError::CreatePartitions { source }
            | AdminError::DeleteTopics { source }
            | AdminError::AlterTopicConfigs { source }
            | AdminError::DescribeAcls { source }
            | AdminError::CreateAcls { source }
            | AdminError::DeleteAcls { source }
            | AdminError::DescribePartitions { source }
            | AdminError::AlterBrokerConfigs { source }
            | AdminError::DescribeBrokerConfigs { source }
            | AdminError::UnregisterBroker { source }
            | AdminError::DescribeQuorum { source }
            | AdminError::ListRegisteredBrokers { source }
            | AdminError::DescribeScramCredentials { source }
            | AdminError::AlterScramCredentials { source } => Some(source),
        }
    }

    /// What Kafka answered, when the failure is Kafka's (or librdkafka's) error code.
    pub fn kafka_failure(&self) -> Option<&KafkaFailure> {
        match self.call_error() {
            Some(CallError::Kafka(failure)) => Some(failure),
            _ => None,
        }
    }

    /// Stable CamelCase reason: Kafka's error code when Kafka refused (`TopicAlreadyExists`,
    /// `PolicyViolation`, ...), otherwise a word for what failed on our side.
    pub fn reason(&self) -> &'static str {
        match self {
            AdminError::RegisterMetrics { .. } => "RegisterAdminMetrics",
            AdminError::RunAdminTask { .. } => "RunAdminTask",
            AdminError::SendProtocolRequest { source, .. } => source.reason(),
            _ => match self.call_error() {
                Some(source) => source.reason(),
                None => "KafkaAdmin",
            },
        }
    }
}

impl CallError {
    /// Stable CamelCase reason of a call error (see [`AdminError::reason`]).
    pub fn reason(&self) -> &'static str {
        match self {
            CallError::Kafka(failure) => failure.reason(),
            CallError::CreateClient(_) => "CreateKafkaClient",
            CallError::BuildRequest(_) => "BuildKafkaRequest",
            CallError::AwaitAnswer(_) => "KafkaAnswerTimeout",
            CallError::ReadAnswer(_) => "ReadKafkaAnswer",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Owned request and answer types
// ---------------------------------------------------------------------------------------------

/// The cluster as DescribeCluster reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterDescription {
    pub cluster_id: Option<String>,
    /// `None` while the cluster reports no controller.
    pub controller_id: Option<i32>,
    pub broker_ids: Vec<i32>,
}

/// One topic as DescribeTopics reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    /// The topic ID as Kafka prints it (URL-safe base64 of the 16 bytes, no padding); `None` when
    /// the broker sends no ID.
    pub topic_id: Option<String>,
    pub partitions: usize,
    /// Number of replicas of partition 0 (0 when the topic has no partitions).
    pub replication_factor: usize,
    pub internal: bool,
}

/// One partition's replicas as DescribeTopics reports them: what a rolling restart or a broker
/// removal must check (is this broker a leader, would the ISR shrink below
/// `min.insync.replicas`, does it still hold replicas).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionState {
    pub partition: i32,
    /// The leader's broker id; `None` while the partition has no leader (Kafka's -1).
    pub leader: Option<i32>,
    /// Broker ids of the assigned replicas, preferred leader first (offline brokers included).
    pub replicas: Vec<i32>,
    /// Broker ids of the in-sync replicas.
    pub isr: Vec<i32>,
}

/// Where a config value comes from (Kafka's `ConfigSource`, numbered as on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigSource {
    /// A topic override (`DYNAMIC_TOPIC_CONFIG`).
    DynamicTopic,
    /// Set for this broker at run time (`DYNAMIC_BROKER_CONFIG`).
    DynamicBroker,
    /// Set at run time as the default of every broker (`DYNAMIC_DEFAULT_BROKER_CONFIG`).
    DynamicDefaultBroker,
    /// From `server.properties` (`STATIC_BROKER_CONFIG`).
    StaticBroker,
    /// Kafka's built-in default (`DEFAULT_CONFIG`).
    Default,
    /// A broker logger level (`DYNAMIC_BROKER_LOGGER_CONFIG`).
    DynamicBrokerLogger,
    /// `CLIENT_METRICS_CONFIG`.
    ClientMetrics,
    /// A consumer group override (`GROUP_CONFIG`).
    Group,
    /// `UNKNOWN` (0), or a value newer than this client.
    Unknown(i32),
}

impl ConfigSource {
    /// The source for Kafka's wire value.
    pub fn from_code(code: i32) -> ConfigSource {
        match code {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            6 => ConfigSource::DynamicBrokerLogger,
            7 => ConfigSource::ClientMetrics,
            8 => ConfigSource::Group,
            other => ConfigSource::Unknown(other),
        }
    }

    /// Set at run time through the admin API (and so changeable, or removable, the same way).
    pub fn is_dynamic(self) -> bool {
        matches!(
            self,
            ConfigSource::DynamicTopic
                | ConfigSource::DynamicBroker
                | ConfigSource::DynamicDefaultBroker
                | ConfigSource::DynamicBrokerLogger
                | ConfigSource::Group
        )
    }
}

/// One config entry as DescribeConfigs reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    /// `None` for sensitive values (passwords, keys), which Kafka never sends, and for keys
    /// without a value.
    pub value: Option<String>,
    pub source: ConfigSource,
    /// Cannot be changed at run time (a static-only broker setting).
    pub read_only: bool,
    pub sensitive: bool,
}

/// A topic name from the cluster metadata.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListedTopic {
    pub name: String,
    /// Kafka's own topics (`__consumer_offsets`, `__transaction_state`, ...).
    pub internal: bool,
}

/// A topic to create. `None` partitions or replication factor mean the broker's default
/// (`num.partitions`, `default.replication.factor`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewTopicSpec {
    pub name: String,
    pub partitions: Option<i32>,
    pub replication_factor: Option<i16>,
    pub configs: BTreeMap<String, String>,
}

/// One incremental change of a topic's or a broker's config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigOp {
    /// Set the key to the value (a topic override, a broker's or the cluster-wide dynamic value).
    Set(String, String),
    /// Remove the dynamic value: a topic falls back to the broker's default, a broker to the
    /// cluster-wide default, the cluster-wide default to `server.properties` and Kafka's default.
    Delete(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AclResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AclPatternType {
    Literal,
    Prefixed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AclOperation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AclPermission {
    Allow,
    Deny,
}

/// One ACL: `principal` may (or may not) do `operation` on the resource from `host`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    pub resource_type: AclResourceType,
    /// Topic, group or transactional ID name (or prefix); `kafka-cluster` for the cluster.
    pub resource_name: String,
    pub pattern_type: AclPatternType,
    /// `User:<name>`; for mTLS users `User:CN=<common name>`.
    pub principal: String,
    /// `*` for any host.
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

impl AclBinding {
    /// The filter that matches exactly this binding (to delete it).
    pub fn to_filter(&self) -> AclBindingFilter {
        AclBindingFilter {
            resource_type: Some(self.resource_type),
            resource_name: Some(self.resource_name.clone()),
            pattern: AclPatternFilter::Exactly(self.pattern_type),
            principal: Some(self.principal.clone()),
            host: Some(self.host.clone()),
            operation: Some(self.operation),
            permission: Some(self.permission),
        }
    }
}

/// How a filter matches resource patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AclPatternFilter {
    /// Any pattern type, names compared literally.
    Any,
    /// Every binding that applies to the named resource: literal, prefixed and wildcard ones.
    Match,
    Exactly(AclPatternType),
}

/// Selects ACLs to describe or delete; `None` fields match anything.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AclBindingFilter {
    pub resource_type: Option<AclResourceType>,
    pub resource_name: Option<String>,
    pub pattern: AclPatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<AclOperation>,
    pub permission: Option<AclPermission>,
}

impl AclBindingFilter {
    /// Every ACL of the cluster.
    pub fn all() -> Self {
        AclBindingFilter {
            resource_type: None,
            resource_name: None,
            pattern: AclPatternFilter::Any,
            principal: None,
            host: None,
            operation: None,
            permission: None,
        }
    }

    /// Every ACL of one principal (`User:alice`).
    pub fn principal(principal: impl Into<String>) -> Self {
        AclBindingFilter {
            principal: Some(principal.into()),
            ..AclBindingFilter::all()
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    /// The SASL mechanism name clients configure.
    pub fn sasl_name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }
}

/// A SCRAM credential as Kafka describes it (never the secret itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScramCredentialInfo {
    pub mechanism: ScramMechanism,
    pub iterations: i32,
}

/// Creates or replaces a user's SCRAM credential. librdkafka derives the salted password from
/// `password` and `salt` (PBKDF2 with `iterations`) and sends only that; `Debug` hides both.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramUpsertion {
    pub user: String,
    pub mechanism: ScramMechanism,
    /// Kafka accepts 4096 ..= 16384.
    pub iterations: i32,
    pub password: Vec<u8>,
    pub salt: Vec<u8>,
}

impl fmt::Debug for ScramUpsertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramUpsertion")
            .field("user", &self.user)
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .field("password", &"<redacted>")
            .field("salt", &"<redacted>")
            .finish()
    }
}

/// One change of a user's SCRAM credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScramAlteration {
    Upsert(ScramUpsertion),
    Delete {
        user: String,
        mechanism: ScramMechanism,
    },
}

impl ScramAlteration {
    pub fn user(&self) -> &str {
        match self {
            ScramAlteration::Upsert(u) => &u.user,
            ScramAlteration::Delete { user, .. } => user,
        }
    }
}

/// Kafka prints a topic ID as the URL-safe base64 (no padding) of its 16 bytes, most significant
/// half first. The all-zero ID means "no ID".
pub fn topic_id_string(most_significant: i64, least_significant: i64) -> Option<String> {
    if most_significant == 0 && least_significant == 0 {
        return None;
    }
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&most_significant.to_be_bytes());
    bytes[8..].copy_from_slice(&least_significant.to_be_bytes());
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

/// Admin requests take from milliseconds (describe) to the operation timeout (create, delete).
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// `oxbow_kafka_admin_request_duration_seconds{api, outcome}` and
/// `oxbow_kafka_admin_requests_total{api, outcome}`; `outcome` is `success`, or `error` when the
/// request failed or Kafka refused at least one of its items.
#[derive(Clone)]
pub struct AdminMetrics {
    duration: HistogramVec,
    requests: IntCounterVec,
}

impl AdminMetrics {
    /// Creates the families and registers them (once per registry; share the value otherwise).
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "oxbow_kafka_admin_request_duration_seconds",
                "Duration of Kafka admin requests by API and outcome",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["api", "outcome"],
        )?;
        let requests = IntCounterVec::new(
            Opts::new(
                "oxbow_kafka_admin_requests_total",
                "Kafka admin requests by API and outcome",
            ),
            &["api", "outcome"],
        )?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        Ok(AdminMetrics { duration, requests })
    }

    /// Records one request made outside this client (e.g. the protocol client's quota calls).
    pub fn observe(&self, api: &str, success: bool, took: Duration) {
        let outcome = if success { "success" } else { "error" };
        self.requests.with_label_values(&[api, outcome]).inc();
        self.duration
            .with_label_values(&[api, outcome])
            .observe(took.as_secs_f64());
    }
}

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

/// The admin calls, for metric labels and error variants.
#[derive(Clone, Copy, Debug)]
enum Api {
    DescribeCluster,
    DescribeTopics,
    ListTopics,
    DescribeTopicConfigs,
    CreateTopics,
    CreatePartitions,
    DeleteTopics,
    AlterTopicConfigs,
    DescribeAcls,
    CreateAcls,
    DeleteAcls,
    DescribeScramCredentials,
    AlterScramCredentials,
    DescribePartitions,
    AlterBrokerConfigs,
    DescribeBrokerConfigs,
    UnregisterBroker,
    DescribeQuorum,
    /// DescribeCluster version 2 with the fenced brokers, spoken directly.
    ListRegisteredBrokers,
}

impl Api {
    /// The metric label: Kafka's API name in snake case.
    fn label(self) -> &'static str {
        match self {
            Api::DescribeCluster => "describe_cluster",
            Api::DescribeTopics => "describe_topics",
            Api::ListTopics => "list_topics",
            Api::DescribeTopicConfigs => "describe_configs",
            Api::CreateTopics => "create_topics",
            Api::CreatePartitions => "create_partitions",
            Api::DeleteTopics => "delete_topics",
            Api::AlterTopicConfigs => "incremental_alter_configs",
            Api::DescribeAcls => "describe_acls",
            Api::CreateAcls => "create_acls",
            Api::DeleteAcls => "delete_acls",
            Api::DescribeScramCredentials => "describe_user_scram_credentials",
            Api::AlterScramCredentials => "alter_user_scram_credentials",
            Api::DescribePartitions => "describe_topics",
            Api::AlterBrokerConfigs => "incremental_alter_configs",
            Api::DescribeBrokerConfigs => "describe_configs",
            Api::UnregisterBroker => "unregister_broker",
            Api::DescribeQuorum => "describe_quorum",
            Api::ListRegisteredBrokers => "describe_cluster",
        }
    }

    fn error(self, source: CallError) -> AdminError {
        match self {
            Api::DescribeCluster => AdminError::DescribeCluster { source },
            Api::DescribeTopics => AdminError::DescribeTopics { source },
            Api::ListTopics => AdminError::ListTopics { source },
            Api::DescribeTopicConfigs => AdminError::DescribeTopicConfigs { source },
            Api::CreateTopics => AdminError::CreateTopics { source },
            Api::CreatePartitions => AdminError::CreatePartitions { source },
            Api::DeleteTopics => AdminError::DeleteTopics { source },
            Api::AlterTopicConfigs => AdminError::AlterTopicConfigs { source },
            Api::DescribeAcls => AdminError::DescribeAcls { source },
            Api::CreateAcls => AdminError::CreateAcls { source },
            Api::DeleteAcls => AdminError::DeleteAcls { source },
            Api::DescribeScramCredentials => AdminError::DescribeScramCredentials { source },
            Api::AlterScramCredentials => AdminError::AlterScramCredentials { source },
            Api::DescribePartitions => AdminError::DescribePartitions { source },
            Api::AlterBrokerConfigs => AdminError::AlterBrokerConfigs { source },
            Api::DescribeBrokerConfigs => AdminError::DescribeBrokerConfigs { source },
            Api::UnregisterBroker => AdminError::UnregisterBroker { source },
            Api::DescribeQuorum => AdminError::DescribeQuorum { source },
            Api::ListRegisteredBrokers => AdminError::ListRegisteredBrokers { source },
        }
    }

    /// A failure of the protocol client's call as this API's error: Kafka's refusal keeps its
    /// code and message, as librdkafka's answers do.
    fn protocol_error(self, error: ProtocolCallError) -> AdminError {
        match error {
            ProtocolCallError::SendRequest { api, source } => {
                AdminError::SendProtocolRequest { api, source }
            }
            ProtocolCallError::Refused(error) => {
                let message = error
                    .message
                    .clone()
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| error.name());
                self.error(CallError::Kafka(KafkaFailure::new(
                    i32::from(error.code),
                    message,
                )))
            }
            ProtocolCallError::ReadAnswer(message) => self.error(CallError::ReadAnswer(message)),
        }
    }

    fn items<K, T>(
        self,
        items: Vec<(K, Result<T, KafkaFailure>)>,
    ) -> Vec<(K, Result<T, AdminError>)> {
        items
            .into_iter()
            .map(|(key, r)| (key, r.map_err(|f| self.error(CallError::Kafka(f)))))
            .collect()
    }
}

/// Per-item results, in the order of the request.
pub type ItemResults<K, T> = Vec<(K, Result<T, AdminError>)>;

fn any_failed<K, T, E>(items: &[(K, Result<T, E>)]) -> bool {
    items.iter().any(|(_, r)| r.is_err())
}

struct Shared {
    handle: AdminHandle,
    metrics: AdminMetrics,
    timeout: Duration,
    /// For the calls librdkafka cannot make (the cluster-wide broker defaults): the same
    /// settings, one protocol client made on first use.
    connection: KafkaConnection,
    protocol: tokio::sync::OnceCell<KafkaProtocolClient>,
}

/// The operators' Kafka admin client: cheap to clone (one librdkafka client shared by all
/// clones), `Send + Sync`. Each call runs on tokio's blocking pool and gives up after the
/// timeout it was built with (request timeout, and operation timeout where Kafka has one).
#[derive(Clone)]
pub struct KafkaAdmin {
    shared: Arc<Shared>,
}

// Operators share one client across tasks: a compile error if it stops being `Send + Sync`.
const _: fn() = || {
    fn shared<T: Send + Sync + Clone + 'static>() {}
    shared::<KafkaAdmin>();
};

impl fmt::Debug for KafkaAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaAdmin")
            .field("timeout", &self.shared.timeout)
            .finish_non_exhaustive()
    }
}

impl KafkaAdmin {
    /// Connects (lazily: librdkafka dials on the first request) with the given settings and
    /// registers the admin metrics in `registry`.
    pub fn new(
        connection: &KafkaConnection,
        registry: &Registry,
        timeout: Duration,
    ) -> Result<Self, AdminError> {
        let metrics = AdminMetrics::register(registry)
            .map_err(|source| AdminError::RegisterMetrics { source })?;
        Self::with_metrics(connection, metrics, timeout)
    }

    /// Like [`KafkaAdmin::new`], with metrics already registered (several clients, one registry).
    pub fn with_metrics(
        connection: &KafkaConnection,
        metrics: AdminMetrics,
        timeout: Duration,
    ) -> Result<Self, AdminError> {
        let mut config = connection.client_config();
        // librdkafka's own log level follows what tracing would show for it, so that a failing
        // login or an unreachable broker is visible without flooding the logs at info.
        config.set_log_level(
            if tracing::enabled!(target: "librdkafka", tracing::Level::DEBUG) {
                RDKafkaLogLevel::Debug
            } else if tracing::enabled!(target: "librdkafka", tracing::Level::INFO) {
                RDKafkaLogLevel::Info
            } else {
                RDKafkaLogLevel::Warning
            },
        );
        let handle =
            AdminHandle::new(&config).map_err(|source| AdminError::CreateClient { source })?;
        Ok(KafkaAdmin {
            shared: Arc::new(Shared {
                handle,
                metrics,
                timeout,
                connection: connection.clone(),
                protocol: tokio::sync::OnceCell::new(),
            }),
        })
    }

    pub fn timeout(&self) -> Duration {
        self.shared.timeout
    }

    /// Runs one blocking admin call on tokio's blocking pool, times and counts it.
    async fn run<T, F>(
        &self,
        api: Api,
        call: F,
        failed_items: fn(&T) -> bool,
    ) -> Result<T, AdminError>
    where
        T: Send + 'static,
        F: FnOnce(&AdminHandle, Duration) -> Result<T, CallError> + Send + 'static,
    {
        let shared = self.shared.clone();
        let start = Instant::now();
        let joined =
            tokio::task::spawn_blocking(move || call(&shared.handle, shared.timeout)).await;
        let result = match joined {
            Ok(r) => r.map_err(|source| api.error(source)),
            Err(e) => Err(AdminError::RunAdminTask {
                api: api.label(),
                message: e.to_string(),
            }),
        };
        let success = matches!(&result, Ok(v) if !failed_items(v));
        self.shared
            .metrics
            .observe(api.label(), success, start.elapsed());
        result
    }

    /// Runs one call of the protocol client (made on first use), times and counts it.
    async fn run_protocol<T, E: Into<ProtocolCallError>>(
        &self,
        api: Api,
        call: impl AsyncFnOnce(&KafkaProtocolClient) -> Result<T, E>,
    ) -> Result<T, AdminError> {
        let start = Instant::now();
        let result = async {
            let client = self
                .shared
                .protocol
                .get_or_try_init(|| async {
                    KafkaProtocolClient::new(&self.shared.connection).map(|c| {
                        c.with_client_id("oxbow-admin")
                            .with_timeouts(self.shared.timeout, self.shared.timeout)
                    })
                })
                .await
                .map_err(|source| AdminError::SendProtocolRequest {
                    api: api.label(),
                    source: Box::new(source),
                })?;
            call(client).await.map_err(|e| api.protocol_error(e.into()))
        }
        .await;
        self.shared
            .metrics
            .observe(api.label(), result.is_ok(), start.elapsed());
        result
    }

    /// Cluster ID, controller and brokers.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription, AdminError> {
        self.run(
            Api::DescribeCluster,
            |h, t| h.describe_cluster(t),
            |_| false,
        )
        .await
    }

    /// Topic IDs, partition counts and replication factors; a missing topic is an item error
    /// whose [`KafkaFailure::is_unknown_topic`] holds.
    pub async fn describe_topics<S: Into<String>>(
        &self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<ItemResults<String, TopicDescription>, AdminError> {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let api = Api::DescribeTopics;
        let items = self
            .run(
                api,
                move |h, t| h.describe_topics(&names, t),
                |v| any_failed(v),
            )
            .await?;
        Ok(api.items(items))
    }

    /// The names of the topics in the cluster metadata, sorted, internal topics included: one
    /// Metadata request, so it stays cheap at any number of topics (callers that skip internal
    /// topics by their `__` prefix need no more; [`KafkaAdmin::list_topics`] asks for the flag).
    pub async fn list_topic_names(&self) -> Result<Vec<String>, AdminError> {
        self.run(
            Api::ListTopics,
            |h, t| {
                let mut names = h.list_topic_names(t)?;
                names.sort();
                Ok(names)
            },
            |_| false,
        )
        .await
    }

    /// Every topic in the cluster metadata, sorted by name. Two requests: the metadata for the
    /// names, then DescribeTopics for the internal flag that librdkafka's metadata omits.
    pub async fn list_topics(&self) -> Result<Vec<ListedTopic>, AdminError> {
        self.run(
            Api::ListTopics,
            |h, t| {
                let names = h.list_topic_names(t)?;
                if names.is_empty() {
                    return Ok(Vec::new());
                }
                let mut listed: Vec<ListedTopic> = h
                    .describe_topics(&names, t)?
                    .into_iter()
                    .filter_map(|(name, described)| match described {
                        Ok(d) => Some(Ok(ListedTopic {
                            name,
                            internal: d.internal,
                        })),
                        // Deleted between the two requests: it no longer exists.
                        Err(f) if f.is_unknown_topic() => None,
                        Err(f) => Some(Err(CallError::Kafka(f))),
                    })
                    .collect::<Result<_, _>>()?;
                listed.sort();
                Ok(listed)
            },
            |_| false,
        )
        .await
    }

    /// The topics' config overrides: only entries whose source is `DYNAMIC_TOPIC_CONFIG`, so
    /// broker defaults and static broker settings never look like user settings.
    pub async fn describe_topic_configs<S: Into<String>>(
        &self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<ItemResults<String, BTreeMap<String, String>>, AdminError> {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let api = Api::DescribeTopicConfigs;
        let items = self
            .run(
                api,
                move |h, t| {
                    let described = h.describe_configs(
                        ConfigResourceType::Topic,
                        &names,
                        |source| source == ConfigSource::DynamicTopic,
                        t,
                    )?;
                    Ok(topic_overrides(described))
                },
                |v| any_failed(v),
            )
            .await?;
        Ok(api.items(items))
    }

    /// Creates the topics in one request; per topic `Ok` or Kafka's refusal
    /// (`TopicAlreadyExists`, `InvalidReplicationFactor`, `InvalidConfig`, `PolicyViolation`, ...).
    pub async fn create_topics(
        &self,
        specs: &[NewTopicSpec],
    ) -> Result<ItemResults<String, ()>, AdminError> {
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        let specs = specs.to_vec();
        let api = Api::CreateTopics;
        let items = self
            .run(
                api,
                move |h, t| h.create_topics(&specs, t),
                |v| any_failed(v),
            )
            .await?;
        Ok(api.items(items))
    }

    /// Raises each topic's partition count to the given total, in one request.
    pub async fn create_partitions<S: Into<String>>(
        &self,
        totals: impl IntoIterator<Item = (S, usize)>,
    ) -> Result<ItemResults<String, ()>, AdminError> {
        let totals: Vec<(String, usize)> = totals.into_iter().map(|(n, c)| (n.into(), c)).collect();
        if totals.is_empty() {
            return Ok(Vec::new());
        }
        let api = Api::CreatePartitions;
        let items = self
            .run(
                api,
                move |h, t| h.create_partitions(&totals, t),
                |v| any_failed(v),
            )
            .await?;
        Ok(api.items(items))
    }

    /// Deletes the topics in one request (`TopicDeletionDisabled` when the brokers forbid it).
    pub async fn delete_topics<S: Into<String>>(
        &self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<ItemResults<String, ()>, AdminError> {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let api = Api::DeleteTopics;
        let items = self
            .run(
                api,
                move |h, t| h.delete_topics(&names, t),
                |v| any_failed(v),
            )
            .await?;
        Ok(api.items(items))
    }

    /// IncrementalAlterConfigs on topics, in one request: only the named keys change (unlike
    /// AlterConfigs, which would reset every other override). Each topic's changes apply
    /// atomically; an unknown key fails that topic with `InvalidConfig` and Kafka's message.
    pub async fn incremental_alter_configs<S: Into<String>>(
        &self,
        changes: impl IntoIterator<Item = (S, Vec<ConfigOp>)>,
    ) -> Result<ItemResults<String, ()>, AdminError> {
        let changes: Vec<(String, Vec<ConfigOp>)> = changes
            .into_iter()
            .map(|(n, ops)| (n.into(), ops))
            .collect();
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let api = Api::AlterTopicConfigs;
        let items = self
            .run(
                api,
                move |h, t| h.alter_configs(ConfigResourceType::Topic, &changes, t),
                |v| any_failed(v),
            )
            .await?;
        Ok(api.items(items))
    }

    /// Every partition of each topic: leader, replicas and ISR, sorted by partition id (one
    /// DescribeTopics request, like [`KafkaAdmin::describe_topics`], which leaves partitions out
    /// to keep the topic operator's full polls small). A missing topic is an item error whose
    /// [`KafkaFailure::is_unknown_topic`] holds.
    pub async fn describe_partitions<S: Into<String>>(
        &self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<ItemResults<String, Vec<PartitionState>>, AdminError> {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let api = Api::DescribePartitions;
        let items = self
            .run(
                api,
                move |h, t| h.describe_partitions(&names, t),
                |v| any_failed(v),
            )
            .await?;
        Ok(api.items(items))
    }

    /// IncrementalAlterConfigs on one broker (`Some(id)`) or on the cluster-wide default of every
    /// broker (`None`): only the named keys change, atomically. Kafka refuses keys that cannot
    /// change at run time, invalid values and unknown keys with its own code and message
    /// ([`AdminError::kafka_failure`]). A broker's change goes to that broker (librdkafka); the
    /// cluster-wide default is sent in the Kafka protocol to any broker, because librdkafka
    /// refuses the empty resource name that stands for it.
    pub async fn incremental_alter_broker_configs(
        &self,
        broker: Option<i32>,
        ops: Vec<ConfigOp>,
    ) -> Result<(), AdminError> {
        let api = Api::AlterBrokerConfigs;
        if ops.is_empty() {
            return Ok(());
        }
        let Some(id) = broker else {
            return self
                .run_protocol(api, async |c| c.alter_broker_defaults(&ops).await)
                .await;
        };
        let name = id.to_string();
        let items = self
            .run(
                api,
                move |h, t| h.alter_configs(ConfigResourceType::Broker, &[(name, ops)], t),
                |v| any_failed(v),
            )
            .await?;
        single_item(api, items)
    }

    /// The configs of one broker (`Some(id)`): every key the broker reports, with its value and
    /// [`ConfigSource`], so a caller can tell what was set at run time
    /// ([`ConfigSource::is_dynamic`]) from `server.properties` and Kafka's defaults. For `None`,
    /// the cluster-wide defaults set at run time (all with source `DynamicDefaultBroker`; Kafka
    /// reports nothing else for that resource). Sensitive values come without a value.
    pub async fn describe_broker_configs(
        &self,
        broker: Option<i32>,
    ) -> Result<BTreeMap<String, ConfigEntry>, AdminError> {
        let api = Api::DescribeBrokerConfigs;
        let Some(id) = broker else {
            return self
                .run_protocol(api, async |c| c.describe_broker_defaults().await)
                .await;
        };
        let name = id.to_string();
        let items = self
            .run(
                api,
                move |h, t| h.describe_configs(ConfigResourceType::Broker, &[name], |_| true, t),
                |v| any_failed(v),
            )
            .await?;
        single_item(api, items)
    }

    /// UnregisterBroker: removes `broker`'s registration from the KRaft cluster metadata, so that
    /// a broker removed in a scale-down no longer appears in it (Strimzi does the same). Only for
    /// brokers that are gone: Kafka fences a live broker it unregisters. Sent in the Kafka
    /// protocol (librdkafka has no such call) to any broker, which forwards it to the controller.
    /// Kafka's refusals are [`AdminError::kafka_failure`] with its code and message; an id Kafka
    /// has no registration for (never registered, or already unregistered) is refused with
    /// BROKER_ID_NOT_REGISTERED ([`KafkaFailure::is_broker_id_not_registered`]), which a caller
    /// that wants the id gone can take as done.
    pub async fn unregister_broker(&self, broker: i32) -> Result<(), AdminError> {
        self.run_protocol(Api::UnregisterBroker, async |c| {
            c.unregister_broker(broker).await
        })
        .await
    }

    /// DescribeQuorum: the KRaft metadata quorum (active controller, voters, observers).
    /// Needs Describe on the cluster.
    pub async fn describe_quorum(&self) -> Result<QuorumInfo, AdminError> {
        self.run_protocol(Api::DescribeQuorum, async |c| c.describe_quorum().await)
            .await
    }

    /// Every broker registered in the KRaft metadata, fenced ones included (DescribeCluster
    /// version 2, Kafka 4.0 and later), sorted by id. Unlike [`Self::describe_cluster`], which
    /// lists the brokers clients can use, this shows registrations that outlived their broker.
    pub async fn registered_brokers(&self) -> Result<Vec<RegisteredBroker>, AdminError> {
        self.run_protocol(Api::ListRegisteredBrokers, async |c| {
            c.registered_brokers().await
        })
        .await
    }

    /// The ACLs that match the filter (see [`AclBindingFilter::all`], [`AclBindingFilter::principal`]).
    /// Bindings whose types this client cannot represent (for example delegation-token ACLs)
    /// are left out with a warning.
    pub async fn describe_acls(
        &self,
        filter: &AclBindingFilter,
    ) -> Result<Vec<AclBinding>, AdminError> {
        let filter = filter.clone();
        self.run(
            Api::DescribeAcls,
            move |h, t| h.describe_acls(&filter, t),
            |_| false,
        )
        .await
    }

    /// Creates the bindings in one request; results in the order given.
    pub async fn create_acls(
        &self,
        bindings: &[AclBinding],
    ) -> Result<ItemResults<AclBinding, ()>, AdminError> {
        if bindings.is_empty() {
            return Ok(Vec::new());
        }
        let bindings = bindings.to_vec();
        let api = Api::CreateAcls;
        let items = self
            .run(
                api,
                move |h, t| h.create_acls(&bindings, t),
                |v| any_failed(v),
            )
            .await?;
        Ok(api.items(items))
    }

    /// Deletes every ACL matching each filter, in one request; per filter, the bindings deleted.
    pub async fn delete_acls(
        &self,
        filters: &[AclBindingFilter],
    ) -> Result<ItemResults<AclBindingFilter, Vec<AclBinding>>, AdminError> {
        if filters.is_empty() {
            return Ok(Vec::new());
        }
        let filters = filters.to_vec();
        let api = Api::DeleteAcls;
        let items = self
            .run(
                api,
                move |h, t| h.delete_acls(&filters, t),
                |v| any_failed(v),
            )
            .await?;
        Ok(api.items(items))
    }

    /// SCRAM credentials of the named users (`None`: every user that has one). A named user
    /// without credentials is an item error with reason `ResourceNotFound`.
    pub async fn describe_user_scram_credentials(
        &self,
        users: Option<&[String]>,
    ) -> Result<ItemResults<String, Vec<ScramCredentialInfo>>, AdminError> {
        if users.is_some_and(|u| u.is_empty()) {
            return Ok(Vec::new());
        }
        let users = users.map(<[String]>::to_vec);
        let api = Api::DescribeScramCredentials;
        let items = self
            .run(
                api,
                move |h, t| h.describe_scram_credentials(users.as_deref(), t),
                |v| any_failed(v),
            )
            .await?;
        Ok(api.items(items))
    }

    /// Upserts and deletes SCRAM credentials in one request; one result per user, in the order
    /// users first appear.
    pub async fn alter_user_scram_credentials(
        &self,
        alterations: Vec<ScramAlteration>,
    ) -> Result<ItemResults<String, ()>, AdminError> {
        if alterations.is_empty() {
            return Ok(Vec::new());
        }
        let api = Api::AlterScramCredentials;
        let items = self
            .run(
                api,
                move |h, t| h.alter_scram_credentials(&alterations, t),
                |v| any_failed(v),
            )
            .await?;
        Ok(api.items(items))
    }

    /// One user's upsert (see [`KafkaAdmin::alter_user_scram_credentials`] for batches).
    pub async fn upsert_scram_credential(
        &self,
        upsertion: ScramUpsertion,
    ) -> Result<(), AdminError> {
        self.single_scram(ScramAlteration::Upsert(upsertion)).await
    }

    /// Deletes one user's credential for one mechanism.
    pub async fn delete_scram_credential(
        &self,
        user: impl Into<String>,
        mechanism: ScramMechanism,
    ) -> Result<(), AdminError> {
        self.single_scram(ScramAlteration::Delete {
            user: user.into(),
            mechanism,
        })
        .await
    }

    async fn single_scram(&self, alteration: ScramAlteration) -> Result<(), AdminError> {
        let user = alteration.user().to_string();
        let results = self.alter_user_scram_credentials(vec![alteration]).await?;
        match results.into_iter().find(|(u, _)| *u == user) {
            Some((_, r)) => r,
            None => Err(AdminError::AlterScramCredentials {
                source: CallError::ReadAnswer(format!("no result for user {user}")),
            }),
        }
    }
}

/// The one result of a request about one resource.
fn single_item<T>(
    api: Api,
    items: Vec<(String, Result<T, KafkaFailure>)>,
) -> Result<T, AdminError> {
    match items.into_iter().next() {
        Some((_, result)) => result.map_err(|f| api.error(CallError::Kafka(f))),
        None => Err(api.error(CallError::ReadAnswer("no result".into()))),
    }
}

/// Topic overrides as key and value (topics have no sensitive configs, so every one has a value).
fn topic_overrides(
    described: Items<String, BTreeMap<String, ConfigEntry>>,
) -> Items<String, BTreeMap<String, String>> {
    described
        .into_iter()
        .map(|(name, entries)| {
            let overrides = entries.map(|entries| {
                entries
                    .into_iter()
                    .filter_map(|(key, e)| e.value.map(|v| (key, v)))
                    .collect()
            });
            (name, overrides)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Error code names
// ---------------------------------------------------------------------------------------------

/// Kafka's name and a CamelCase reason for an error code, if known.
fn error_code(code: i32) -> Option<(&'static str, &'static str)> {
    ERROR_CODES
        .binary_search_by_key(&code, |(c, _, _)| *c)
        .ok()
        .map(|i| (ERROR_CODES[i].1, ERROR_CODES[i].2))
}

/// Error codes, sorted: librdkafka's local ones (< -1, named as in `rdkafka.h`), then Kafka's
/// protocol codes named as in `org.apache.kafka.common.protocol.Errors` of Kafka 4.1, which are
/// the names users know (librdkafka abbreviates a few, e.g. `UNKNOWN_TOPIC_OR_PART`, and has no
/// name for the codes it does not know).
const ERROR_CODES: &[(i32, &str, &str)] = &[
    (-199, "_BAD_MSG", "BadMsg"),
    (-198, "_BAD_COMPRESSION", "BadCompression"),
    (-197, "_DESTROY", "Destroy"),
    (-196, "_FAIL", "Fail"),
    (-195, "_TRANSPORT", "Transport"),
    (-194, "_CRIT_SYS_RESOURCE", "CritSysResource"),
    (-193, "_RESOLVE", "Resolve"),
    (-192, "_MSG_TIMED_OUT", "MsgTimedOut"),
    (-191, "_PARTITION_EOF", "PartitionEof"),
    (-190, "_UNKNOWN_PARTITION", "UnknownPartition"),
    (-189, "_FS", "Fs"),
    (-188, "_UNKNOWN_TOPIC", "UnknownTopic"),
    (-187, "_ALL_BROKERS_DOWN", "AllBrokersDown"),
    (-186, "_INVALID_ARG", "InvalidArg"),
    (-185, "_TIMED_OUT", "TimedOut"),
    (-184, "_QUEUE_FULL", "QueueFull"),
    (-183, "_ISR_INSUFF", "IsrInsuff"),
    (-182, "_NODE_UPDATE", "NodeUpdate"),
    (-181, "_SSL", "Ssl"),
    (-180, "_WAIT_COORD", "WaitCoord"),
    (-179, "_UNKNOWN_GROUP", "UnknownGroup"),
    (-178, "_IN_PROGRESS", "InProgress"),
    (-177, "_PREV_IN_PROGRESS", "PrevInProgress"),
    (-176, "_EXISTING_SUBSCRIPTION", "ExistingSubscription"),
    (-175, "_ASSIGN_PARTITIONS", "AssignPartitions"),
    (-174, "_REVOKE_PARTITIONS", "RevokePartitions"),
    (-173, "_CONFLICT", "Conflict"),
    (-172, "_STATE", "State"),
    (-171, "_UNKNOWN_PROTOCOL", "UnknownProtocol"),
    (-170, "_NOT_IMPLEMENTED", "NotImplemented"),
    (-169, "_AUTHENTICATION", "Authentication"),
    (-168, "_NO_OFFSET", "NoOffset"),
    (-167, "_OUTDATED", "Outdated"),
    (-166, "_TIMED_OUT_QUEUE", "TimedOutQueue"),
    (-165, "_UNSUPPORTED_FEATURE", "UnsupportedFeature"),
    (-164, "_WAIT_CACHE", "WaitCache"),
    (-163, "_INTR", "Intr"),
    (-162, "_KEY_SERIALIZATION", "KeySerialization"),
    (-161, "_VALUE_SERIALIZATION", "ValueSerialization"),
    (-160, "_KEY_DESERIALIZATION", "KeyDeserialization"),
    (-159, "_VALUE_DESERIALIZATION", "ValueDeserialization"),
    (-158, "_PARTIAL", "Partial"),
    (-157, "_READ_ONLY", "ReadOnly"),
    (-156, "_NOENT", "Noent"),
    (-155, "_UNDERFLOW", "Underflow"),
    (-154, "_INVALID_TYPE", "InvalidType"),
    (-153, "_RETRY", "Retry"),
    (-152, "_PURGE_QUEUE", "PurgeQueue"),
    (-151, "_PURGE_INFLIGHT", "PurgeInflight"),
    (-150, "_FATAL", "Fatal"),
    (-149, "_INCONSISTENT", "Inconsistent"),
    (-148, "_GAPLESS_GUARANTEE", "GaplessGuarantee"),
    (-147, "_MAX_POLL_EXCEEDED", "MaxPollExceeded"),
    (-146, "_UNKNOWN_BROKER", "UnknownBroker"),
    (-145, "_NOT_CONFIGURED", "NotConfigured"),
    (-144, "_FENCED", "Fenced"),
    (-143, "_APPLICATION", "Application"),
    (-142, "_ASSIGNMENT_LOST", "AssignmentLost"),
    (-141, "_NOOP", "Noop"),
    (-140, "_AUTO_OFFSET_RESET", "AutoOffsetReset"),
    (-139, "_LOG_TRUNCATION", "LogTruncation"),
    (-138, "_INVALID_DIFFERENT_RECORD", "InvalidDifferentRecord"),
    (-137, "_DESTROY_BROKER", "DestroyBroker"),
    (-1, "UNKNOWN_SERVER_ERROR", "UnknownServerError"),
    (0, "NONE", "None"),
    (1, "OFFSET_OUT_OF_RANGE", "OffsetOutOfRange"),
    (2, "CORRUPT_MESSAGE", "CorruptMessage"),
    (3, "UNKNOWN_TOPIC_OR_PARTITION", "UnknownTopicOrPartition"),
    (4, "INVALID_FETCH_SIZE", "InvalidFetchSize"),
    (5, "LEADER_NOT_AVAILABLE", "LeaderNotAvailable"),
    (6, "NOT_LEADER_OR_FOLLOWER", "NotLeaderOrFollower"),
    (7, "REQUEST_TIMED_OUT", "RequestTimedOut"),
    (8, "BROKER_NOT_AVAILABLE", "BrokerNotAvailable"),
    (9, "REPLICA_NOT_AVAILABLE", "ReplicaNotAvailable"),
    (10, "MESSAGE_TOO_LARGE", "MessageTooLarge"),
    (11, "STALE_CONTROLLER_EPOCH", "StaleControllerEpoch"),
    (12, "OFFSET_METADATA_TOO_LARGE", "OffsetMetadataTooLarge"),
    (13, "NETWORK_EXCEPTION", "NetworkException"),
    (
        14,
        "COORDINATOR_LOAD_IN_PROGRESS",
        "CoordinatorLoadInProgress",
    ),
    (15, "COORDINATOR_NOT_AVAILABLE", "CoordinatorNotAvailable"),
    (16, "NOT_COORDINATOR", "NotCoordinator"),
    (17, "INVALID_TOPIC_EXCEPTION", "InvalidTopicException"),
    (18, "RECORD_LIST_TOO_LARGE", "RecordListTooLarge"),
    (19, "NOT_ENOUGH_REPLICAS", "NotEnoughReplicas"),
    (
        20,
        "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        "NotEnoughReplicasAfterAppend",
    ),
    (21, "INVALID_REQUIRED_ACKS", "InvalidRequiredAcks"),
    (22, "ILLEGAL_GENERATION", "IllegalGeneration"),
    (
        23,
        "INCONSISTENT_GROUP_PROTOCOL",
        "InconsistentGroupProtocol",
    ),
    (24, "INVALID_GROUP_ID", "InvalidGroupId"),
    (25, "UNKNOWN_MEMBER_ID", "UnknownMemberId"),
    (26, "INVALID_SESSION_TIMEOUT", "InvalidSessionTimeout"),
    (27, "REBALANCE_IN_PROGRESS", "RebalanceInProgress"),
    (28, "INVALID_COMMIT_OFFSET_SIZE", "InvalidCommitOffsetSize"),
    (29, "TOPIC_AUTHORIZATION_FAILED", "TopicAuthorizationFailed"),
    (30, "GROUP_AUTHORIZATION_FAILED", "GroupAuthorizationFailed"),
    (
        31,
        "CLUSTER_AUTHORIZATION_FAILED",
        "ClusterAuthorizationFailed",
    ),
    (32, "INVALID_TIMESTAMP", "InvalidTimestamp"),
    (33, "UNSUPPORTED_SASL_MECHANISM", "UnsupportedSaslMechanism"),
    (34, "ILLEGAL_SASL_STATE", "IllegalSaslState"),
    (35, "UNSUPPORTED_VERSION", "UnsupportedVersion"),
    (36, "TOPIC_ALREADY_EXISTS", "TopicAlreadyExists"),
    (37, "INVALID_PARTITIONS", "InvalidPartitions"),
    (38, "INVALID_REPLICATION_FACTOR", "InvalidReplicationFactor"),
    (39, "INVALID_REPLICA_ASSIGNMENT", "InvalidReplicaAssignment"),
    (40, "INVALID_CONFIG", "InvalidConfig"),
    (41, "NOT_CONTROLLER", "NotController"),
    (42, "INVALID_REQUEST", "InvalidRequest"),
    (
        43,
        "UNSUPPORTED_FOR_MESSAGE_FORMAT",
        "UnsupportedForMessageFormat",
    ),
    (44, "POLICY_VIOLATION", "PolicyViolation"),
    (
        45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER",
        "OutOfOrderSequenceNumber",
    ),
    (46, "DUPLICATE_SEQUENCE_NUMBER", "DuplicateSequenceNumber"),
    (47, "INVALID_PRODUCER_EPOCH", "InvalidProducerEpoch"),
    (48, "INVALID_TXN_STATE", "InvalidTxnState"),
    (
        49,
        "INVALID_PRODUCER_ID_MAPPING",
        "InvalidProducerIdMapping",
    ),
    (
        50,
        "INVALID_TRANSACTION_TIMEOUT",
        "InvalidTransactionTimeout",
    ),
    (51, "CONCURRENT_TRANSACTIONS", "ConcurrentTransactions"),
    (
        52,
        "TRANSACTION_COORDINATOR_FENCED",
        "TransactionCoordinatorFenced",
    ),
    (
        53,
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
        "TransactionalIdAuthorizationFailed",
    ),
    (54, "SECURITY_DISABLED", "SecurityDisabled"),
    (55, "OPERATION_NOT_ATTEMPTED", "OperationNotAttempted"),
    (56, "KAFKA_STORAGE_ERROR", "KafkaStorageError"),
    (57, "LOG_DIR_NOT_FOUND", "LogDirNotFound"),
    (58, "SASL_AUTHENTICATION_FAILED", "SaslAuthenticationFailed"),
    (59, "UNKNOWN_PRODUCER_ID", "UnknownProducerId"),
    (60, "REASSIGNMENT_IN_PROGRESS", "ReassignmentInProgress"),
    (
        61,
        "DELEGATION_TOKEN_AUTH_DISABLED",
        "DelegationTokenAuthDisabled",
    ),
    (62, "DELEGATION_TOKEN_NOT_FOUND", "DelegationTokenNotFound"),
    (
        63,
        "DELEGATION_TOKEN_OWNER_MISMATCH",
        "DelegationTokenOwnerMismatch",
    ),
    (
        64,
        "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED",
        "DelegationTokenRequestNotAllowed",
    ),
    (
        65,
        "DELEGATION_TOKEN_AUTHORIZATION_FAILED",
        "DelegationTokenAuthorizationFailed",
    ),
    (66, "DELEGATION_TOKEN_EXPIRED", "DelegationTokenExpired"),
    (67, "INVALID_PRINCIPAL_TYPE", "InvalidPrincipalType"),
    (68, "NON_EMPTY_GROUP", "NonEmptyGroup"),
    (69, "GROUP_ID_NOT_FOUND", "GroupIdNotFound"),
    (70, "FETCH_SESSION_ID_NOT_FOUND", "FetchSessionIdNotFound"),
    (
        71,
        "INVALID_FETCH_SESSION_EPOCH",
        "InvalidFetchSessionEpoch",
    ),
    (72, "LISTENER_NOT_FOUND", "ListenerNotFound"),
    (73, "TOPIC_DELETION_DISABLED", "TopicDeletionDisabled"),
    (74, "FENCED_LEADER_EPOCH", "FencedLeaderEpoch"),
    (75, "UNKNOWN_LEADER_EPOCH", "UnknownLeaderEpoch"),
    (
        76,
        "UNSUPPORTED_COMPRESSION_TYPE",
        "UnsupportedCompressionType",
    ),
    (77, "STALE_BROKER_EPOCH", "StaleBrokerEpoch"),
    (78, "OFFSET_NOT_AVAILABLE", "OffsetNotAvailable"),
    (79, "MEMBER_ID_REQUIRED", "MemberIdRequired"),
    (
        80,
        "PREFERRED_LEADER_NOT_AVAILABLE",
        "PreferredLeaderNotAvailable",
    ),
    (81, "GROUP_MAX_SIZE_REACHED", "GroupMaxSizeReached"),
    (82, "FENCED_INSTANCE_ID", "FencedInstanceId"),
    (
        83,
        "ELIGIBLE_LEADERS_NOT_AVAILABLE",
        "EligibleLeadersNotAvailable",
    ),
    (84, "ELECTION_NOT_NEEDED", "ElectionNotNeeded"),
    (
        85,
        "NO_REASSIGNMENT_IN_PROGRESS",
        "NoReassignmentInProgress",
    ),
    (86, "GROUP_SUBSCRIBED_TO_TOPIC", "GroupSubscribedToTopic"),
    (87, "INVALID_RECORD", "InvalidRecord"),
    (88, "UNSTABLE_OFFSET_COMMIT", "UnstableOffsetCommit"),
    (89, "THROTTLING_QUOTA_EXCEEDED", "ThrottlingQuotaExceeded"),
    (90, "PRODUCER_FENCED", "ProducerFenced"),
    (91, "RESOURCE_NOT_FOUND", "ResourceNotFound"),
    (92, "DUPLICATE_RESOURCE", "DuplicateResource"),
    (93, "UNACCEPTABLE_CREDENTIAL", "UnacceptableCredential"),
    (94, "INCONSISTENT_VOTER_SET", "InconsistentVoterSet"),
    (95, "INVALID_UPDATE_VERSION", "InvalidUpdateVersion"),
    (96, "FEATURE_UPDATE_FAILED", "FeatureUpdateFailed"),
    (
        97,
        "PRINCIPAL_DESERIALIZATION_FAILURE",
        "PrincipalDeserializationFailure",
    ),
    (98, "SNAPSHOT_NOT_FOUND", "SnapshotNotFound"),
    (99, "POSITION_OUT_OF_RANGE", "PositionOutOfRange"),
    (100, "UNKNOWN_TOPIC_ID", "UnknownTopicId"),
    (
        101,
        "DUPLICATE_BROKER_REGISTRATION",
        "DuplicateBrokerRegistration",
    ),
    (102, "BROKER_ID_NOT_REGISTERED", "BrokerIdNotRegistered"),
    (103, "INCONSISTENT_TOPIC_ID", "InconsistentTopicId"),
    (104, "INCONSISTENT_CLUSTER_ID", "InconsistentClusterId"),
    (105, "TRANSACTIONAL_ID_NOT_FOUND", "TransactionalIdNotFound"),
    (
        106,
        "FETCH_SESSION_TOPIC_ID_ERROR",
        "FetchSessionTopicIdError",
    ),
    (107, "INELIGIBLE_REPLICA", "IneligibleReplica"),
    (108, "NEW_LEADER_ELECTED", "NewLeaderElected"),
    (
        109,
        "OFFSET_MOVED_TO_TIERED_STORAGE",
        "OffsetMovedToTieredStorage",
    ),
    (110, "FENCED_MEMBER_EPOCH", "FencedMemberEpoch"),
    (111, "UNRELEASED_INSTANCE_ID", "UnreleasedInstanceId"),
    (112, "UNSUPPORTED_ASSIGNOR", "UnsupportedAssignor"),
    (113, "STALE_MEMBER_EPOCH", "StaleMemberEpoch"),
    (114, "MISMATCHED_ENDPOINT_TYPE", "MismatchedEndpointType"),
    (115, "UNSUPPORTED_ENDPOINT_TYPE", "UnsupportedEndpointType"),
    (116, "UNKNOWN_CONTROLLER_ID", "UnknownControllerId"),
    (117, "UNKNOWN_SUBSCRIPTION_ID", "UnknownSubscriptionId"),
    (118, "TELEMETRY_TOO_LARGE", "TelemetryTooLarge"),
    (119, "INVALID_REGISTRATION", "InvalidRegistration"),
    (120, "TRANSACTION_ABORTABLE", "TransactionAbortable"),
    (121, "INVALID_RECORD_STATE", "InvalidRecordState"),
    (122, "SHARE_SESSION_NOT_FOUND", "ShareSessionNotFound"),
    (
        123,
        "INVALID_SHARE_SESSION_EPOCH",
        "InvalidShareSessionEpoch",
    ),
    (124, "FENCED_STATE_EPOCH", "FencedStateEpoch"),
    (125, "INVALID_VOTER_KEY", "InvalidVoterKey"),
    (126, "DUPLICATE_VOTER", "DuplicateVoter"),
    (127, "VOTER_NOT_FOUND", "VoterNotFound"),
    (
        128,
        "INVALID_REGULAR_EXPRESSION",
        "InvalidRegularExpression",
    ),
    (129, "REBOOTSTRAP_REQUIRED", "RebootstrapRequired"),
    (130, "STREAMS_INVALID_TOPOLOGY", "StreamsInvalidTopology"),
    (
        131,
        "STREAMS_INVALID_TOPOLOGY_EPOCH",
        "StreamsInvalidTopologyEpoch",
    ),
    (132, "STREAMS_TOPOLOGY_FENCED", "StreamsTopologyFenced"),
    (
        133,
        "SHARE_SESSION_LIMIT_REACHED",
        "ShareSessionLimitReached",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_table_is_sorted_for_binary_search() {
        assert!(ERROR_CODES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn kafka_codes_carry_kafka_names_not_librdkafka_abbreviations() {
        let f = KafkaFailure::new(3, "Broker: Unknown topic or partition");
        assert_eq!(f.name(), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(f.reason(), "UnknownTopicOrPartition");
        assert!(f.is_unknown_topic());
        let f = KafkaFailure::new(40, "Unknown topic config name: foo");
        assert_eq!((f.name(), f.reason()), ("INVALID_CONFIG", "InvalidConfig"));
        assert_eq!(
            f.to_string(),
            "INVALID_CONFIG: Unknown topic config name: foo"
        );
        assert_eq!(KafkaFailure::new(36, "").reason(), "TopicAlreadyExists");
        assert_eq!(
            KafkaFailure::new(38, "").reason(),
            "InvalidReplicationFactor"
        );
        assert_eq!(KafkaFailure::new(44, "").reason(), "PolicyViolation");
        assert_eq!(KafkaFailure::new(73, "").reason(), "TopicDeletionDisabled");
        // Newer than librdkafka 2.12: still named.
        assert_eq!(KafkaFailure::new(103, "").name(), "INCONSISTENT_TOPIC_ID");
    }

    #[test]
    fn local_and_unknown_codes_have_stable_words() {
        let f = KafkaFailure::new(
            -185,
            "Failed while waiting for controller: Local: Timed out",
        );
        assert_eq!((f.name(), f.reason()), ("_TIMED_OUT", "TimedOut"));
        let f = KafkaFailure::new(4242, "new in some future Kafka");
        assert_eq!((f.name(), f.reason()), ("UNKNOWN", "UnknownKafkaError"));
        assert_eq!(f.to_string(), "error code 4242: new in some future Kafka");
    }

    #[test]
    fn admin_error_reason_is_kafkas_code_and_message_is_kept() {
        let e = Api::CreateTopics.error(CallError::Kafka(KafkaFailure::new(
            36,
            "Topic 'a' already exists.",
        )));
        assert!(matches!(e, AdminError::CreateTopics { .. }));
        assert_eq!(e.reason(), "TopicAlreadyExists");
        assert_eq!(
            e.kafka_failure().unwrap().message,
            "Topic 'a' already exists."
        );
        assert_eq!(
            e.to_string(),
            "creating topics: TOPIC_ALREADY_EXISTS: Topic 'a' already exists."
        );
        let e = Api::DescribeAcls.error(CallError::AwaitAnswer(Duration::from_secs(3)));
        assert_eq!(e.reason(), "KafkaAnswerTimeout");
        assert!(e.kafka_failure().is_none());
    }

    #[test]
    fn item_failures_become_errors_of_the_action() {
        let items = vec![
            ("a".to_string(), Ok(())),
            (
                "b".to_string(),
                Err(KafkaFailure::new(38, "rf 3 > 1 broker")),
            ),
        ];
        assert!(any_failed(&items));
        let mapped = Api::CreateTopics.items(items);
        assert!(mapped[0].1.is_ok());
        let err = mapped[1].1.as_ref().unwrap_err();
        assert!(matches!(err, AdminError::CreateTopics { .. }));
        assert_eq!(err.reason(), "InvalidReplicationFactor");
    }

    #[test]
    fn config_sources_follow_kafkas_wire_numbers() {
        let sources: Vec<ConfigSource> = (0..=9).map(ConfigSource::from_code).collect();
        assert_eq!(
            sources,
            [
                ConfigSource::Unknown(0),
                ConfigSource::DynamicTopic,
                ConfigSource::DynamicBroker,
                ConfigSource::DynamicDefaultBroker,
                ConfigSource::StaticBroker,
                ConfigSource::Default,
                ConfigSource::DynamicBrokerLogger,
                ConfigSource::ClientMetrics,
                ConfigSource::Group,
                ConfigSource::Unknown(9),
            ]
        );
        let dynamic: Vec<bool> = sources.iter().map(|s| s.is_dynamic()).collect();
        assert_eq!(
            dynamic,
            [
                false, true, true, true, false, false, true, false, true, false
            ]
        );
    }

    #[test]
    fn topic_overrides_keep_key_and_value_and_item_failures() {
        let entry = |value: Option<&str>| ConfigEntry {
            value: value.map(str::to_string),
            source: ConfigSource::DynamicTopic,
            read_only: false,
            sensitive: false,
        };
        let described = vec![
            (
                "a".to_string(),
                Ok(BTreeMap::from([
                    ("retention.ms".to_string(), entry(Some("1000"))),
                    ("no.value".to_string(), entry(None)),
                ])),
            ),
            ("b".to_string(), Err(KafkaFailure::new(3, "unknown"))),
        ];
        let overrides = topic_overrides(described);
        assert_eq!(
            overrides[0],
            (
                "a".to_string(),
                Ok(BTreeMap::from([(
                    "retention.ms".to_string(),
                    "1000".to_string()
                )]))
            )
        );
        assert!(overrides[1].1.as_ref().unwrap_err().is_unknown_topic());
    }

    #[test]
    fn one_resource_answers_are_its_result_or_the_apis_error() {
        let ok = single_item(
            Api::AlterBrokerConfigs,
            vec![("1".to_string(), Ok::<_, KafkaFailure>(()))],
        );
        assert!(ok.is_ok());
        let refused = single_item::<()>(
            Api::AlterBrokerConfigs,
            vec![("1".to_string(), Err(KafkaFailure::new(42, "Cannot update")))],
        )
        .unwrap_err();
        assert!(matches!(refused, AdminError::AlterBrokerConfigs { .. }));
        assert_eq!(refused.reason(), "InvalidRequest");
        assert_eq!(refused.kafka_failure().unwrap().message, "Cannot update");
        let none = single_item::<()>(Api::DescribeBrokerConfigs, Vec::new()).unwrap_err();
        assert!(matches!(none, AdminError::DescribeBrokerConfigs { .. }));
        assert_eq!(none.reason(), "ReadKafkaAnswer");
    }

    #[test]
    fn protocol_refusals_keep_kafkas_code_and_message() {
        use crate::kafka::protocol::{BrokerDefaultsError, KafkaError};
        let err = Api::AlterBrokerConfigs.protocol_error(
            BrokerDefaultsError::Refused {
                api: "IncrementalAlterConfigs",
                error: KafkaError {
                    code: 42,
                    message: Some("Cannot update these configs dynamically: Set(log.dirs)".into()),
                },
            }
            .into(),
        );
        assert!(matches!(err, AdminError::AlterBrokerConfigs { .. }));
        assert_eq!(
            err.kafka_failure(),
            Some(&KafkaFailure::new(
                42,
                "Cannot update these configs dynamically: Set(log.dirs)"
            ))
        );
        // Without a message, Kafka's name for the code.
        let err = Api::DescribeBrokerConfigs.protocol_error(
            BrokerDefaultsError::Refused {
                api: "DescribeConfigs",
                error: KafkaError {
                    code: 31,
                    message: None,
                },
            }
            .into(),
        );
        assert_eq!(err.reason(), "ClusterAuthorizationFailed");
        assert_eq!(
            err.kafka_failure().unwrap().message,
            "CLUSTER_AUTHORIZATION_FAILED"
        );
    }

    #[test]
    fn unregister_broker_refusal_is_a_kafka_failure_of_its_own_api() {
        use crate::kafka::protocol::{KafkaError, UnregisterBrokerError};
        let err = Api::UnregisterBroker.protocol_error(
            UnregisterBrokerError::Refused {
                broker: 4242,
                error: KafkaError {
                    code: 102,
                    message: Some("Broker ID 4242 is not currently registered".into()),
                },
            }
            .into(),
        );
        assert!(
            matches!(err, AdminError::UnregisterBroker { .. }),
            "{err:?}"
        );
        assert_eq!(Api::UnregisterBroker.label(), "unregister_broker");
        assert_eq!(err.reason(), "BrokerIdNotRegistered");
        let failure = err.kafka_failure().unwrap();
        assert_eq!(
            failure,
            &KafkaFailure::new(102, "Broker ID 4242 is not currently registered")
        );
        assert_eq!(failure.name(), "BROKER_ID_NOT_REGISTERED");
        assert!(failure.is_broker_id_not_registered());
        assert!(!KafkaFailure::new(3, "").is_broker_id_not_registered());
        assert_eq!(
            err.to_string(),
            "unregistering a broker: BROKER_ID_NOT_REGISTERED: Broker ID 4242 is not currently registered"
        );
    }

    #[test]
    fn topic_ids_print_as_kafka_prints_them() {
        // Kafka's Uuid.toString() of (msb=1, lsb=2) is the URL-safe base64 of 00..01 00..02.
        assert_eq!(
            topic_id_string(1, 2).as_deref(),
            Some("AAAAAAAAAAEAAAAAAAAAAg")
        );
        // Negative halves use the URL-safe alphabet ('-' and '_'), never '+' or '/'.
        assert_eq!(
            topic_id_string(-1, -1).as_deref(),
            Some("_____________________w")
        );
        assert_eq!(topic_id_string(0, 0), None);
    }

    #[test]
    fn scram_upsertion_debug_hides_password_and_salt() {
        let u = ScramUpsertion {
            user: "alice".into(),
            mechanism: ScramMechanism::Sha512,
            iterations: 4096,
            password: b"hunter2-secret".to_vec(),
            salt: b"pepper-salt".to_vec(),
        };
        let shown = format!("{:?}", ScramAlteration::Upsert(u));
        assert!(shown.contains("alice"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            !shown.contains("104, 117"),
            "password bytes leaked: {shown}"
        );
        assert!(!shown.contains("pepper"), "{shown}");
    }

    #[test]
    fn exact_filter_of_a_binding_fixes_every_field() {
        let b = AclBinding {
            resource_type: AclResourceType::Topic,
            resource_name: "orders".into(),
            pattern_type: AclPatternType::Prefixed,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        };
        let f = b.to_filter();
        assert_eq!(
            f.pattern,
            AclPatternFilter::Exactly(AclPatternType::Prefixed)
        );
        assert_eq!(f.resource_name.as_deref(), Some("orders"));
        assert_eq!(f.operation, Some(AclOperation::Read));
        assert_eq!(
            AclBindingFilter::principal("User:bob").principal.as_deref(),
            Some("User:bob")
        );
        assert_eq!(AclBindingFilter::all().principal, None);
    }

    #[test]
    fn metrics_count_by_api_and_outcome() {
        let registry = Registry::new();
        let m = AdminMetrics::register(&registry).unwrap();
        m.observe("create_topics", true, Duration::from_millis(5));
        m.observe("create_topics", false, Duration::from_millis(7));
        m.observe("create_topics", false, Duration::from_millis(9));
        let families = registry.gather();
        let total = families
            .iter()
            .find(|f| f.name() == "oxbow_kafka_admin_requests_total")
            .unwrap();
        let mut counts: Vec<(String, u64)> = total
            .get_metric()
            .iter()
            .map(|m| {
                (
                    m.get_label()[1].value().to_string(),
                    m.get_counter().value() as u64,
                )
            })
            .collect();
        counts.sort();
        assert_eq!(counts, vec![("error".into(), 2), ("success".into(), 1)]);
        assert!(
            AdminMetrics::register(&registry).is_err(),
            "second registration must fail"
        );
    }
}
