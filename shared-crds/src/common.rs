//! Sub-types shared by several custom resources: metadata and pod templates, JVM options, probes,
//! logging, certificate-authority settings and the free-form configuration map. Pure: no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, ConfigMapKeySelector, PodSecurityContext, Toleration, TopologySpreadConstraint,
};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Free-form configuration: keys are Kafka (or component) option names, values are strings,
/// numbers or booleans. Kept as JSON values so that `retention.ms: 7200000` and
/// `retention.ms: "7200000"` are both accepted, as they are by Strimzi.
pub type ConfigMap = BTreeMap<String, serde_json::Value>;

/// Schema of a free-form object whose keys the API server must keep as they are.
pub fn free_form_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Labels and annotations added to a generated Kubernetes object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetadataTemplate {
    /// Labels added to the Kubernetes resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations added to the Kubernetes resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Template for a generated object of which only the metadata can be customised.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceTemplate {
    /// Metadata applied to the resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataTemplate>,
}

/// Template for the pods Oxbow creates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplate {
    /// Metadata applied to the pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataTemplate>,
    /// The pods' affinity rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// The pods' tolerations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// The pods' topology spread constraints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    /// The name of the priority class the pods are assigned to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Pod-level security attributes and common container settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Seconds a pod is given to stop gracefully after it is asked to terminate. Defaults to 30.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub termination_grace_period_seconds: Option<i64>,
}

/// Template for a PodDisruptionBudget.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodDisruptionBudgetTemplate {
    /// Metadata applied to the PodDisruptionBudget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataTemplate>,
    /// The largest number of pods that may be unavailable at once for voluntary disruptions
    /// (evictions). Defaults to 1; 0 blocks every voluntary eviction.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_unavailable: Option<i32>,
}

/// Options of the Java virtual machine running Kafka.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JvmOptions {
    /// Initial heap size, `-Xms` (for example `256m` or `1g`).
    #[serde(rename = "-Xms", skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+[mMgG]?$"))]
    pub xms: Option<String>,
    /// Maximum heap size, `-Xmx` (for example `256m` or `1g`).
    #[serde(rename = "-Xmx", skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+[mMgG]?$"))]
    pub xmx: Option<String>,
    /// Advanced `-XX` options: the key is the option name, the value its setting (`"true"` and
    /// `"false"` turn boolean options on and off).
    #[serde(rename = "-XX", skip_serializing_if = "Option::is_none")]
    pub xx: Option<BTreeMap<String, String>>,
    /// Java system properties passed as `-D<name>=<value>`.
    #[serde(
        rename = "javaSystemProperties",
        skip_serializing_if = "Option::is_none"
    )]
    pub java_system_properties: Option<Vec<SystemProperty>>,
}

/// One Java system property.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SystemProperty {
    /// The system property name.
    pub name: String,
    /// The system property value.
    pub value: String,
}

/// Timing of a health-check probe; what is probed is chosen by Oxbow.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    /// Seconds after the container starts before the first check.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub initial_delay_seconds: Option<i32>,
    /// Seconds after which a check times out.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<i32>,
    /// Seconds between checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub period_seconds: Option<i32>,
    /// Consecutive successes needed after a failure to count as healthy again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub success_threshold: Option<i32>,
    /// Consecutive failures after which the check counts as failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub failure_threshold: Option<i32>,
}

/// How logging is configured: `inline` (logger levels given here) or `external` (a whole
/// logging configuration read from a ConfigMap).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.type != 'external' || has(self.valueFrom)",
        "message": "valueFrom is required when the logging type is external",
        "fieldPath": ".valueFrom",
        "reason": "FieldValueRequired",
    },
]))]
pub struct Logging {
    /// Logging type: `inline` or `external`.
    #[serde(rename = "type")]
    pub type_: LoggingType,
    /// For `inline` logging: logger name to level (for example `rootLogger.level: INFO`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loggers: Option<BTreeMap<String, String>>,
    /// For `external` logging: the ConfigMap entry holding the logging configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ExternalLoggingSource>,
}

/// The kinds of logging configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(transform = crate::common::field_describes_enum)]
pub enum LoggingType {
    /// Logger levels are given inline in `loggers`.
    Inline,
    /// The logging configuration is read from a ConfigMap.
    External,
}

/// Where an external logging configuration is read from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalLoggingSource {
    /// The ConfigMap and key holding the logging configuration.
    pub config_map_key_ref: ConfigMapKeySelector,
}

/// Validity of a CA certificate, in days, when `validityDays` is not set.
pub const DEFAULT_CA_VALIDITY_DAYS: i32 = 365;
/// Days before expiry at which a CA certificate is renewed, when `renewalDays` is not set.
pub const DEFAULT_CA_RENEWAL_DAYS: i32 = 30;

/// Settings of a certificate authority (the cluster CA or the clients CA).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
// The defaults (365 and 30, see DEFAULT_CA_VALIDITY_DAYS and DEFAULT_CA_RENEWAL_DAYS) are written
// into the rule so that setting only one of the two is checked against the other's default.
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "(has(self.renewalDays) ? self.renewalDays : 30) < (has(self.validityDays) ? self.validityDays : 365)",
        "message": "renewalDays must be less than validityDays (defaults: renewalDays 30, validityDays 365)",
        "fieldPath": ".renewalDays",
    },
]))]
pub struct CertificateAuthority {
    /// If true (the default), Oxbow generates the CA certificate and key and renews them; if
    /// false, the user provides them in the CA Secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generate_certificate_authority: Option<bool>,
    /// If true (the default), the CA Secrets are owned by the Kafka resource and deleted with
    /// it; if false, they are kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generate_secret_owner_reference: Option<bool>,
    /// Days a generated certificate is valid for. Defaults to 365.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub validity_days: Option<i32>,
    /// Days before expiry at which certificate renewal starts. Defaults to 30.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub renewal_days: Option<i32>,
    /// What happens when the CA certificate expires: `renew-certificate` (the default) renews it
    /// with the same key; `replace-key` generates a new key as well.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_expiration_policy: Option<CertificateExpirationPolicy>,
}

/// What to do with an expiring CA certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(transform = crate::common::field_describes_enum)]
pub enum CertificateExpirationPolicy {
    /// Issue a new certificate for the existing key.
    RenewCertificate,
    /// Generate a new key and a new certificate.
    ReplaceKey,
}

/// Schema transform for enums: drops the type's own description. kube hoists an `Option<Enum>`
/// field's enum schema into the field and would let the enum's description replace the field's,
/// so that `kubectl explain` would describe the type instead of the field.
pub fn field_describes_enum(schema: &mut Schema) {
    schema.remove("description");
}
