//! Mapping between the `KafkaUser` resource, the planner's model and the admin client's types.
//! Pure: no I/O.

use std::collections::BTreeMap;

use oxbow_runtime::kafka::admin as rt;
use shared_crds::{
    KafkaUser,
    user::{
        AclOperation as CrdOperation, AclResourcePatternType, AclResourceType as CrdResource,
        AclRuleType, UserAuthenticationType,
    },
};

use crate::plan::{
    acl::{AclBinding, AclResource, AclRule, Operation, PatternType, Permission, ResourceType},
    principal::Authentication,
    quota::Quotas,
    secret::SecretTemplate,
};

/// The user's authentication, `None` when `spec.authentication` is absent.
pub fn authentication(user: &KafkaUser) -> Authentication {
    match user.spec.authentication.as_ref().map(|a| a.type_) {
        Some(UserAuthenticationType::ScramSha512) => Authentication::ScramSha512,
        Some(UserAuthenticationType::Tls) => Authentication::Tls,
        Some(UserAuthenticationType::TlsExternal) => Authentication::TlsExternal,
        None => Authentication::None,
    }
}

/// A rule that the schema should have refused (a named resource without a name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spec.authorization.acls[{index}]: resource.name is required for {kind} resources")]
pub struct InvalidAclRule {
    pub index: usize,
    pub kind: &'static str,
}

impl InvalidAclRule {
    pub fn reason(&self) -> &'static str {
        "InvalidAclRule"
    }
}

/// The ACL rules of `spec.authorization` (none when authorization is absent).
pub fn acl_rules(user: &KafkaUser) -> Result<Vec<AclRule>, InvalidAclRule> {
    let Some(authz) = &user.spec.authorization else {
        return Ok(Vec::new());
    };
    authz
        .acls
        .iter()
        .enumerate()
        .map(|(index, rule)| {
            let pattern = match rule.resource.pattern_type {
                Some(AclResourcePatternType::Prefix) => PatternType::Prefixed,
                _ => PatternType::Literal,
            };
            let name = |kind: &'static str| {
                rule.resource
                    .name
                    .clone()
                    .ok_or(InvalidAclRule { index, kind })
            };
            let resource = match rule.resource.type_ {
                CrdResource::Topic => AclResource::Topic {
                    name: name("topic")?,
                    pattern,
                },
                CrdResource::Group => AclResource::Group {
                    name: name("group")?,
                    pattern,
                },
                CrdResource::TransactionalId => AclResource::TransactionalId {
                    name: name("transactionalId")?,
                    pattern,
                },
                CrdResource::Cluster => AclResource::Cluster,
            };
            Ok(AclRule {
                resource,
                permission: match rule.type_ {
                    Some(AclRuleType::Deny) => Permission::Deny,
                    _ => Permission::Allow,
                },
                host: rule.host.clone(),
                operations: rule.operations.iter().map(|o| operation(*o)).collect(),
            })
        })
        .collect()
}

fn operation(o: CrdOperation) -> Operation {
    match o {
        CrdOperation::Read => Operation::Read,
        CrdOperation::Write => Operation::Write,
        CrdOperation::Create => Operation::Create,
        CrdOperation::Delete => Operation::Delete,
        CrdOperation::Alter => Operation::Alter,
        CrdOperation::Describe => Operation::Describe,
        CrdOperation::ClusterAction => Operation::ClusterAction,
        CrdOperation::AlterConfigs => Operation::AlterConfigs,
        CrdOperation::DescribeConfigs => Operation::DescribeConfigs,
        CrdOperation::IdempotentWrite => Operation::IdempotentWrite,
        CrdOperation::All => Operation::All,
    }
}

/// `spec.quotas` as the planner's quotas.
pub fn quotas(user: &KafkaUser) -> Quotas {
    let q = user.spec.quotas.as_ref();
    Quotas {
        producer_byte_rate: q.and_then(|q| q.producer_byte_rate).map(|v| v as f64),
        consumer_byte_rate: q.and_then(|q| q.consumer_byte_rate).map(|v| v as f64),
        request_percentage: q.and_then(|q| q.request_percentage).map(f64::from),
        controller_mutation_rate: q.and_then(|q| q.controller_mutation_rate),
    }
}

/// `spec.template.secret.metadata`.
pub fn secret_template(user: &KafkaUser) -> Option<SecretTemplate> {
    let meta = user
        .spec
        .template
        .as_ref()?
        .secret
        .as_ref()?
        .metadata
        .as_ref()?;
    Some(SecretTemplate {
        labels: meta.labels.clone().unwrap_or_default(),
        annotations: meta.annotations.clone().unwrap_or_default(),
    })
}

/// The admin client's binding for a planned one.
pub fn to_admin(b: &AclBinding) -> rt::AclBinding {
    rt::AclBinding {
        resource_type: match b.resource_type {
            ResourceType::Topic => rt::AclResourceType::Topic,
            ResourceType::Group => rt::AclResourceType::Group,
            ResourceType::Cluster => rt::AclResourceType::Cluster,
            ResourceType::TransactionalId => rt::AclResourceType::TransactionalId,
        },
        resource_name: b.resource_name.clone(),
        pattern_type: match b.pattern_type {
            PatternType::Literal => rt::AclPatternType::Literal,
            PatternType::Prefixed => rt::AclPatternType::Prefixed,
        },
        principal: b.principal.clone(),
        host: b.host.clone(),
        operation: match b.operation {
            Operation::Read => rt::AclOperation::Read,
            Operation::Write => rt::AclOperation::Write,
            Operation::Create => rt::AclOperation::Create,
            Operation::Delete => rt::AclOperation::Delete,
            Operation::Alter => rt::AclOperation::Alter,
            Operation::Describe => rt::AclOperation::Describe,
            Operation::ClusterAction => rt::AclOperation::ClusterAction,
            Operation::AlterConfigs => rt::AclOperation::AlterConfigs,
            Operation::DescribeConfigs => rt::AclOperation::DescribeConfigs,
            Operation::IdempotentWrite => rt::AclOperation::IdempotentWrite,
            Operation::All => rt::AclOperation::All,
        },
        permission: match b.permission {
            Permission::Allow => rt::AclPermission::Allow,
            Permission::Deny => rt::AclPermission::Deny,
        },
    }
}

/// The planner's binding for one read from Kafka.
pub fn from_admin(b: &rt::AclBinding) -> AclBinding {
    AclBinding {
        resource_type: match b.resource_type {
            rt::AclResourceType::Topic => ResourceType::Topic,
            rt::AclResourceType::Group => ResourceType::Group,
            rt::AclResourceType::Cluster => ResourceType::Cluster,
            rt::AclResourceType::TransactionalId => ResourceType::TransactionalId,
        },
        resource_name: b.resource_name.clone(),
        pattern_type: match b.pattern_type {
            rt::AclPatternType::Literal => PatternType::Literal,
            rt::AclPatternType::Prefixed => PatternType::Prefixed,
        },
        principal: b.principal.clone(),
        host: b.host.clone(),
        operation: match b.operation {
            rt::AclOperation::Read => Operation::Read,
            rt::AclOperation::Write => Operation::Write,
            rt::AclOperation::Create => Operation::Create,
            rt::AclOperation::Delete => Operation::Delete,
            rt::AclOperation::Alter => Operation::Alter,
            rt::AclOperation::Describe => Operation::Describe,
            rt::AclOperation::ClusterAction => Operation::ClusterAction,
            rt::AclOperation::AlterConfigs => Operation::AlterConfigs,
            rt::AclOperation::DescribeConfigs => Operation::DescribeConfigs,
            rt::AclOperation::IdempotentWrite => Operation::IdempotentWrite,
            rt::AclOperation::All => Operation::All,
        },
        permission: match b.permission {
            rt::AclPermission::Allow => Permission::Allow,
            rt::AclPermission::Deny => Permission::Deny,
        },
    }
}

/// The KafkaUser name a Kafka user name belongs to (`CN=alice` and `alice` are both `alice`).
pub fn kafka_user_name_of(username: &str) -> &str {
    username.strip_prefix("CN=").unwrap_or(username)
}

/// Quota changes for the protocol client: key -> new value, `None` removing it.
pub fn quota_change(
    username: &str,
    ops: &[crate::plan::quota::QuotaOp],
) -> oxbow_runtime::kafka::protocol::QuotaChange {
    use crate::plan::quota::QuotaOp;
    let changes = ops
        .iter()
        .map(|op| match op {
            QuotaOp::Set { key, value } => (key.config_key().to_owned(), Some(*value)),
            QuotaOp::Remove { key } => (key.config_key().to_owned(), None),
        })
        .collect();
    (username.to_owned(), changes)
}

/// The planner's quotas from the protocol client's map.
pub fn observed_quotas(entries: Option<&BTreeMap<String, f64>>) -> Quotas {
    Quotas::from_config_entries(entries.into_iter().flatten().map(|(k, v)| (k.as_str(), *v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::acl::expand_acls;

    fn user(yaml: &str) -> KafkaUser {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn example_tls_user_maps_to_rules_and_bindings_that_round_trip() {
        let u = user(include_str!("../../manifests/examples/kafka-user-tls.yaml"));
        assert_eq!(authentication(&u), Authentication::Tls);
        let rules = acl_rules(&u).unwrap();
        assert!(!rules.is_empty());
        for b in expand_acls("User:CN=x", &rules) {
            assert_eq!(from_admin(&to_admin(&b)), b);
        }
    }

    #[test]
    fn quotas_and_template_are_read() {
        let u = user(
            r#"
apiVersion: kafka.oxbow.rs/v1beta1
kind: KafkaUser
metadata: { name: alice, labels: { oxbow.rs/cluster: c } }
spec:
  authentication: { type: scram-sha-512 }
  quotas: { producerByteRate: 1048576, requestPercentage: 55, controllerMutationRate: 10.5 }
  template: { secret: { metadata: { labels: { team: a }, annotations: { note: x } } } }
"#,
        );
        let q = quotas(&u);
        assert_eq!(q.producer_byte_rate, Some(1048576.0));
        assert_eq!(q.consumer_byte_rate, None);
        assert_eq!(q.request_percentage, Some(55.0));
        assert_eq!(q.controller_mutation_rate, Some(10.5));
        let t = secret_template(&u).unwrap();
        assert_eq!(t.labels["team"], "a");
        assert_eq!(t.annotations["note"], "x");
    }

    #[test]
    fn certificate_users_map_back_to_their_kafka_user() {
        assert_eq!(kafka_user_name_of("CN=alice"), "alice");
        assert_eq!(kafka_user_name_of("bob"), "bob");
    }
}
