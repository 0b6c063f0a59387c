//! The `KafkaUser` custom resource: one Kafka user of the cluster named by the resource's
//! `oxbow.rs/cluster` label (credentials, ACLs, quotas), and its status. Pure: no I/O.

use k8s_openapi::api::core::v1::SecretKeySelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::ResourceTemplate;
use crate::condition::Condition;

/// The desired state of a Kafka user.
// Several printer columns share a `type_`; clippy takes the repeated helper arguments for
// duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "kafka.oxbow.rs",
    version = "v1beta1",
    kind = "KafkaUser",
    plural = "kafkausers",
    namespaced,
    status = "KafkaUserStatus",
    shortname = "ku",
    category = "oxbow",
    derive = "PartialEq",
    doc = "A Kafka user of the Kafka cluster named by the `oxbow.rs/cluster` label: its credentials, ACLs and quotas.",
    printcolumn(
        name = "Cluster",
        type_ = "string",
        description = "The Kafka cluster the user belongs to",
        json_path = r".metadata.labels.oxbow\.rs/cluster"
    ),
    printcolumn(
        name = "Authentication",
        type_ = "string",
        description = "How the user authenticates",
        json_path = ".spec.authentication.type"
    ),
    printcolumn(
        name = "Authorization",
        type_ = "string",
        description = "How the user is authorised",
        json_path = ".spec.authorization.type"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Whether the user is in sync with Kafka",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaUserSpec {
    /// How the user authenticates. `scram-sha-512` creates a Secret with a password; `tls`
    /// creates a Secret with a client certificate signed by the clients CA (principal
    /// `CN=<name>`); `tls-external` creates nothing and expects a certificate issued elsewhere
    /// for `CN=<name>`. Absent: no credentials, and ACLs and quotas apply to the principal
    /// `<name>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication: Option<KafkaUserAuthentication>,
    /// The user's ACLs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<KafkaUserAuthorization>,
    /// Quotas limiting the user's use of the brokers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quotas: Option<KafkaUserQuotas>,
    /// Customisation of the generated credentials Secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<KafkaUserTemplate>,
}

/// How a user authenticates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!has(self.password) || self.type == 'scram-sha-512'",
        "message": "password can only be given with scram-sha-512 authentication",
        "fieldPath": ".password",
        "reason": "FieldValueForbidden",
    },
]))]
pub struct KafkaUserAuthentication {
    /// Authentication type: `tls`, `tls-external` or `scram-sha-512`.
    #[serde(rename = "type")]
    pub type_: UserAuthenticationType,
    /// For `scram-sha-512`: take the password from this Secret instead of generating one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Password>,
}

/// Authentication mechanisms of a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(transform = crate::common::field_describes_enum)]
pub enum UserAuthenticationType {
    /// Mutual TLS with a certificate Oxbow issues from the clients CA.
    Tls,
    /// Mutual TLS with a certificate issued outside Oxbow.
    TlsExternal,
    /// SASL SCRAM-SHA-512.
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
}

/// A user-provided password.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Password {
    /// Where the password is read from.
    pub value_from: PasswordSource,
}

/// Where a user-provided password is read from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordSource {
    /// The Secret (in the KafkaUser's namespace) and key holding the password.
    pub secret_key_ref: SecretKeySelector,
}

/// A user's ACLs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaUserAuthorization {
    /// Authorization type. Only `simple` is supported: Kafka ACLs managed through the Admin API.
    #[serde(rename = "type")]
    pub type_: UserAuthorizationType,
    /// The ACL rules of the user. Oxbow removes the user's ACLs that are not listed.
    pub acls: Vec<AclRule>,
}

/// Authorization mechanisms of a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(transform = crate::common::field_describes_enum)]
pub enum UserAuthorizationType {
    /// Kafka ACLs.
    Simple,
}

/// One ACL rule: which operations on which resource are allowed or denied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AclRule {
    /// The resource the rule applies to.
    pub resource: AclRuleResource,
    /// `allow` (the default) or `deny`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<AclRuleType>,
    /// The host the rule applies to. Defaults to `*`, every host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The operations allowed or denied: Read, Write, Create, Delete, Alter, Describe,
    /// ClusterAction, AlterConfigs, DescribeConfigs, IdempotentWrite or All. Which operations
    /// make sense depends on the resource type.
    #[schemars(length(min = 1))]
    pub operations: Vec<AclOperation>,
}

/// The resource of an ACL rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.type == 'cluster' || has(self.name)",
        "message": "name is required unless the resource type is cluster",
        "fieldPath": ".name",
        "reason": "FieldValueRequired",
    },
]))]
pub struct AclRuleResource {
    /// Resource type: `topic`, `group`, `cluster` or `transactionalId`.
    #[serde(rename = "type")]
    pub type_: AclResourceType,
    /// The name of the resource (not used for `cluster`). `*` means every resource of the type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// How `name` is matched: `literal` (the default; the whole name) or `prefix`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern_type: Option<AclResourcePatternType>,
}

/// Types of ACL resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::common::field_describes_enum)]
pub enum AclResourceType {
    /// A topic.
    Topic,
    /// A consumer group.
    Group,
    /// The Kafka cluster itself.
    Cluster,
    /// A transactional ID.
    TransactionalId,
}

/// How an ACL resource name is matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::common::field_describes_enum)]
pub enum AclResourcePatternType {
    /// The name is the whole resource name.
    Literal,
    /// The name is a prefix of resource names.
    Prefix,
}

/// Whether an ACL rule allows or denies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::common::field_describes_enum)]
pub enum AclRuleType {
    /// The operations are allowed.
    Allow,
    /// The operations are denied.
    Deny,
}

/// Kafka ACL operations.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[schemars(transform = crate::common::field_describes_enum)]
pub enum AclOperation {
    /// Read from a topic, join a group, ...
    Read,
    /// Write to a topic or transactional ID.
    Write,
    /// Create topics.
    Create,
    /// Delete topics, groups, records.
    Delete,
    /// Change partition counts, ACLs, ...
    Alter,
    /// Describe topics, groups, the cluster.
    Describe,
    /// Inter-broker operations.
    ClusterAction,
    /// Change configuration.
    AlterConfigs,
    /// Read configuration.
    DescribeConfigs,
    /// Idempotent produce.
    IdempotentWrite,
    /// Every operation.
    All,
}

/// Quotas of a user.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaUserQuotas {
    /// Bytes per second the user may produce to each broker before being throttled (at least 1:
    /// Kafka refuses 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub producer_byte_rate: Option<i64>,
    /// Bytes per second the user may fetch from each broker before being throttled (at least 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub consumer_byte_rate: Option<i64>,
    /// Percentage of the brokers' network and I/O thread time the user may use (at least 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub request_percentage: Option<i32>,
    /// Partitions per second the user may create or delete (create topics, create partitions
    /// and delete topics requests); above 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 0, "exclusiveMinimum" = true))]
    pub controller_mutation_rate: Option<f64>,
}

/// Customisation of a user's generated objects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaUserTemplate {
    /// The Secret holding the user's password or certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<ResourceTemplate>,
}

/// The observed state of a Kafka user.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaUserStatus {
    /// The status conditions; `Ready` says whether Kafka matches the spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// The `metadata.generation` the operator last reconciled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The Kafka principal name of the user (`CN=<name>` for TLS users).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The name of the Secret holding the user's credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}
