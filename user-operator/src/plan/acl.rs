//! The ACL plan: expands a KafkaUser's `spec.authorization.acls` into Kafka ACL bindings and
//! diffs them against the bindings Kafka holds for the user's principal. Pure: no I/O.
//!
//! The operator owns every binding of the principal: bindings added by hand are deleted, the
//! same as Strimzi's simple authorization does, so the KafkaUser stays the single source of
//! truth for what the user may do.

use std::collections::BTreeSet;
use std::fmt;

/// Resource name Kafka uses for the one cluster resource.
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";

/// Host of a rule that names none: any host.
pub const ANY_HOST: &str = "*";

/// Kind of Kafka resource an ACL protects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
}

/// How a binding's resource name matches resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PatternType {
    /// The name matches itself only (or every resource when it is `*`).
    Literal,
    /// The name matches every resource whose name starts with it (`patternType: prefix`).
    Prefixed,
}

/// Operation an ACL allows or denies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    AlterConfigs,
    DescribeConfigs,
    IdempotentWrite,
    /// Kafka's own `ALL` operation, kept as one binding rather than expanded, so the bindings
    /// read back from Kafka compare equal to the ones we wrote.
    All,
}

/// Whether a binding allows or denies its operation. Deny wins in Kafka's authorizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    Allow,
    Deny,
}

/// The resource of one rule. The cluster has no name of its own in the KafkaUser: Kafka calls
/// it [`CLUSTER_RESOURCE_NAME`] and only matches it literally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AclResource {
    Topic { name: String, pattern: PatternType },
    Group { name: String, pattern: PatternType },
    TransactionalId { name: String, pattern: PatternType },
    Cluster,
}

/// One entry of `spec.authorization.acls`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclRule {
    pub resource: AclResource,
    pub permission: Permission,
    /// Host the rule applies to; `None` or empty means any host.
    pub host: Option<String>,
    pub operations: Vec<Operation>,
}

/// One Kafka ACL binding: a resource pattern plus an access control entry.
///
/// Field order is the sort order, so sets of bindings (and the plans built from them) list
/// bindings resource by resource, deterministically.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

/// What to change in Kafka so the principal has exactly the desired bindings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclPlan {
    pub create: Vec<AclBinding>,
    pub delete: Vec<AclBinding>,
}

impl AclPlan {
    /// True when Kafka already holds exactly the desired bindings.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.delete.is_empty()
    }
}

/// Expands the rules into one binding per operation for `principal`.
///
/// Duplicate rules collapse into one binding, as they would in Kafka.
pub fn expand_acls(principal: &str, rules: &[AclRule]) -> BTreeSet<AclBinding> {
    let mut bindings = BTreeSet::new();
    for rule in rules {
        let (resource_type, resource_name, pattern_type) = match &rule.resource {
            AclResource::Topic { name, pattern } => (ResourceType::Topic, name.as_str(), *pattern),
            AclResource::Group { name, pattern } => (ResourceType::Group, name.as_str(), *pattern),
            AclResource::TransactionalId { name, pattern } => {
                (ResourceType::TransactionalId, name.as_str(), *pattern)
            }
            AclResource::Cluster => (
                ResourceType::Cluster,
                CLUSTER_RESOURCE_NAME,
                PatternType::Literal,
            ),
        };
        let host = match rule.host.as_deref() {
            None | Some("") => ANY_HOST,
            Some(host) => host,
        };
        for operation in &rule.operations {
            bindings.insert(AclBinding {
                resource_type,
                resource_name: resource_name.to_owned(),
                pattern_type,
                principal: principal.to_owned(),
                host: host.to_owned(),
                operation: *operation,
                permission: rule.permission,
            });
        }
    }
    bindings
}

/// Plans the creates and deletes that turn `observed` into `desired` for `principal`.
///
/// `observed` should already be filtered to the principal; any binding of another principal in
/// it is left alone, so a too-wide describe can never make us delete another user's ACLs.
/// Unchanged bindings are not touched: Kafka has no update, and delete-then-create would open
/// a window in which the user is denied.
pub fn plan_acls(
    principal: &str,
    desired: &BTreeSet<AclBinding>,
    observed: &BTreeSet<AclBinding>,
) -> AclPlan {
    let observed_for_principal: BTreeSet<&AclBinding> = observed
        .iter()
        .filter(|binding| binding.principal == principal)
        .collect();
    AclPlan {
        create: desired
            .iter()
            .filter(|binding| !observed_for_principal.contains(binding))
            .cloned()
            .collect(),
        delete: observed_for_principal
            .into_iter()
            .filter(|binding| !desired.contains(*binding))
            .cloned()
            .collect(),
    }
}

impl ResourceType {
    /// Kafka's name for the resource type (`org.apache.kafka.common.resource.ResourceType`).
    pub fn kafka_name(self) -> &'static str {
        match self {
            Self::Topic => "TOPIC",
            Self::Group => "GROUP",
            Self::Cluster => "CLUSTER",
            Self::TransactionalId => "TRANSACTIONAL_ID",
        }
    }
}

impl PatternType {
    /// Kafka's name for the pattern type (`PatternType`).
    pub fn kafka_name(self) -> &'static str {
        match self {
            Self::Literal => "LITERAL",
            Self::Prefixed => "PREFIXED",
        }
    }
}

impl Operation {
    /// Kafka's name for the operation (`AclOperation`).
    pub fn kafka_name(self) -> &'static str {
        match self {
            Self::Read => "READ",
            Self::Write => "WRITE",
            Self::Create => "CREATE",
            Self::Delete => "DELETE",
            Self::Alter => "ALTER",
            Self::Describe => "DESCRIBE",
            Self::ClusterAction => "CLUSTER_ACTION",
            Self::AlterConfigs => "ALTER_CONFIGS",
            Self::DescribeConfigs => "DESCRIBE_CONFIGS",
            Self::IdempotentWrite => "IDEMPOTENT_WRITE",
            Self::All => "ALL",
        }
    }
}

impl Permission {
    /// Kafka's name for the permission (`AclPermissionType`).
    pub fn kafka_name(self) -> &'static str {
        match self {
            Self::Allow => "ALLOW",
            Self::Deny => "DENY",
        }
    }
}

/// Reads like `kafka-acls --list` output, for events and logs.
impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} on {}:{}:{} from host {} for {}",
            self.permission.kafka_name(),
            self.operation.kafka_name(),
            self.resource_type.kafka_name(),
            self.pattern_type.kafka_name(),
            self.resource_name,
            self.host,
            self.principal,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "User:alice";

    fn topic_rule(name: &str, pattern: PatternType, operations: &[Operation]) -> AclRule {
        AclRule {
            resource: AclResource::Topic {
                name: name.to_owned(),
                pattern,
            },
            permission: Permission::Allow,
            host: None,
            operations: operations.to_vec(),
        }
    }

    fn binding(name: &str, operation: Operation) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.to_owned(),
            pattern_type: PatternType::Literal,
            principal: ALICE.to_owned(),
            host: ANY_HOST.to_owned(),
            operation,
            permission: Permission::Allow,
        }
    }

    #[test]
    fn expands_one_binding_per_operation_with_any_host() {
        let rules = [topic_rule(
            "orders",
            PatternType::Literal,
            &[Operation::Read, Operation::Describe],
        )];

        let bindings = expand_acls(ALICE, &rules);

        let expected: BTreeSet<_> = [
            binding("orders", Operation::Read),
            binding("orders", Operation::Describe),
        ]
        .into();
        assert_eq!(bindings, expected);
    }

    #[test]
    fn cluster_rules_bind_the_literal_kafka_cluster_resource() {
        let rules = [AclRule {
            resource: AclResource::Cluster,
            permission: Permission::Allow,
            host: Some(String::new()),
            operations: vec![Operation::IdempotentWrite],
        }];

        let bindings: Vec<_> = expand_acls(ALICE, &rules).into_iter().collect();

        assert_eq!(bindings.len(), 1);
        assert_eq!(bindings[0].resource_type, ResourceType::Cluster);
        assert_eq!(bindings[0].resource_name, "kafka-cluster");
        assert_eq!(bindings[0].pattern_type, PatternType::Literal);
        assert_eq!(bindings[0].host, "*", "an empty host means any host");
    }

    #[test]
    fn group_and_transactional_id_rules_keep_their_names_and_patterns() {
        let rules = [
            AclRule {
                resource: AclResource::Group {
                    name: "billing-".to_owned(),
                    pattern: PatternType::Prefixed,
                },
                permission: Permission::Allow,
                host: Some("10.0.0.1".to_owned()),
                operations: vec![Operation::Read],
            },
            AclRule {
                resource: AclResource::TransactionalId {
                    name: "tx".to_owned(),
                    pattern: PatternType::Literal,
                },
                permission: Permission::Deny,
                host: None,
                operations: vec![Operation::Write],
            },
        ];

        let bindings: Vec<_> = expand_acls(ALICE, &rules).into_iter().collect();

        assert_eq!(
            bindings,
            vec![
                AclBinding {
                    resource_type: ResourceType::Group,
                    resource_name: "billing-".to_owned(),
                    pattern_type: PatternType::Prefixed,
                    principal: ALICE.to_owned(),
                    host: "10.0.0.1".to_owned(),
                    operation: Operation::Read,
                    permission: Permission::Allow,
                },
                AclBinding {
                    resource_type: ResourceType::TransactionalId,
                    resource_name: "tx".to_owned(),
                    pattern_type: PatternType::Literal,
                    principal: ALICE.to_owned(),
                    host: "*".to_owned(),
                    operation: Operation::Write,
                    permission: Permission::Deny,
                },
            ]
        );
    }

    #[test]
    fn duplicate_rules_collapse_into_one_binding() {
        let rule = topic_rule("orders", PatternType::Literal, &[Operation::Read]);

        let bindings = expand_acls(ALICE, &[rule.clone(), rule]);

        assert_eq!(bindings.len(), 1);
    }

    #[test]
    fn equal_sets_plan_nothing() {
        let desired = expand_acls(
            ALICE,
            &[topic_rule(
                "orders",
                PatternType::Literal,
                &[Operation::Read, Operation::Write],
            )],
        );

        let plan = plan_acls(ALICE, &desired, &desired.clone());

        assert!(plan.is_empty(), "{plan:?}");
    }

    #[test]
    fn an_added_rule_creates_only_its_bindings() {
        let observed = expand_acls(
            ALICE,
            &[topic_rule(
                "orders",
                PatternType::Literal,
                &[Operation::Read],
            )],
        );
        let desired = expand_acls(
            ALICE,
            &[
                topic_rule("orders", PatternType::Literal, &[Operation::Read]),
                topic_rule("payments", PatternType::Literal, &[Operation::Write]),
            ],
        );

        let plan = plan_acls(ALICE, &desired, &observed);

        assert_eq!(plan.create, vec![binding("payments", Operation::Write)]);
        assert!(plan.delete.is_empty());
    }

    #[test]
    fn a_removed_rule_deletes_its_bindings() {
        let observed = expand_acls(
            ALICE,
            &[
                topic_rule("orders", PatternType::Literal, &[Operation::Read]),
                topic_rule("payments", PatternType::Literal, &[Operation::Write]),
            ],
        );
        let desired = expand_acls(
            ALICE,
            &[topic_rule(
                "orders",
                PatternType::Literal,
                &[Operation::Read],
            )],
        );

        let plan = plan_acls(ALICE, &desired, &observed);

        assert!(plan.create.is_empty());
        assert_eq!(plan.delete, vec![binding("payments", Operation::Write)]);
    }

    #[test]
    fn a_changed_operation_creates_the_new_and_deletes_the_old() {
        let observed = expand_acls(
            ALICE,
            &[topic_rule(
                "orders",
                PatternType::Literal,
                &[Operation::Read, Operation::Describe],
            )],
        );
        let desired = expand_acls(
            ALICE,
            &[topic_rule(
                "orders",
                PatternType::Literal,
                &[Operation::Write, Operation::Describe],
            )],
        );

        let plan = plan_acls(ALICE, &desired, &observed);

        assert_eq!(plan.create, vec![binding("orders", Operation::Write)]);
        assert_eq!(plan.delete, vec![binding("orders", Operation::Read)]);
    }

    #[test]
    fn deny_and_allow_for_the_same_operation_are_both_kept() {
        let allow = topic_rule("orders", PatternType::Literal, &[Operation::Read]);
        let deny = AclRule {
            permission: Permission::Deny,
            ..allow.clone()
        };

        let desired = expand_acls(ALICE, &[allow, deny]);
        let plan = plan_acls(ALICE, &desired, &BTreeSet::new());

        assert_eq!(desired.len(), 2);
        let permissions: Vec<_> = plan.create.iter().map(|b| b.permission).collect();
        assert_eq!(permissions, vec![Permission::Allow, Permission::Deny]);
    }

    #[test]
    fn a_different_host_is_a_different_binding() {
        let any_host = topic_rule("orders", PatternType::Literal, &[Operation::Read]);
        let one_host = AclRule {
            host: Some("192.168.1.7".to_owned()),
            ..any_host.clone()
        };
        let observed = expand_acls(ALICE, &[any_host]);
        let desired = expand_acls(ALICE, &[one_host]);

        let plan = plan_acls(ALICE, &desired, &observed);

        assert_eq!(plan.create.len(), 1);
        assert_eq!(plan.create[0].host, "192.168.1.7");
        assert_eq!(plan.delete.len(), 1);
        assert_eq!(plan.delete[0].host, "*");
    }

    #[test]
    fn prefixed_and_literal_patterns_are_distinct_bindings() {
        let literal = topic_rule("orders", PatternType::Literal, &[Operation::Read]);
        let prefixed = topic_rule("orders", PatternType::Prefixed, &[Operation::Read]);
        let observed = expand_acls(ALICE, std::slice::from_ref(&literal));

        let both = expand_acls(ALICE, &[literal, prefixed]);
        let plan = plan_acls(ALICE, &both, &observed);

        assert_eq!(both.len(), 2);
        assert_eq!(plan.create.len(), 1);
        assert_eq!(plan.create[0].pattern_type, PatternType::Prefixed);
        assert!(plan.delete.is_empty());
    }

    #[test]
    fn bindings_added_by_hand_for_the_principal_are_deleted() {
        let desired = expand_acls(
            ALICE,
            &[topic_rule(
                "orders",
                PatternType::Literal,
                &[Operation::Read],
            )],
        );
        let mut observed = desired.clone();
        observed.insert(binding("secret-topic", Operation::All));

        let plan = plan_acls(ALICE, &desired, &observed);

        assert!(plan.create.is_empty());
        assert_eq!(plan.delete, vec![binding("secret-topic", Operation::All)]);
    }

    #[test]
    fn bindings_of_other_principals_are_never_deleted() {
        let bob_binding = AclBinding {
            principal: "User:bob".to_owned(),
            ..binding("orders", Operation::Read)
        };
        let observed: BTreeSet<_> = [bob_binding].into();

        let plan = plan_acls(ALICE, &BTreeSet::new(), &observed);

        assert!(plan.is_empty(), "{plan:?}");
    }

    #[test]
    fn binding_display_names_kafka_terms() {
        let shown = binding("orders", Operation::IdempotentWrite).to_string();

        assert_eq!(
            shown,
            "ALLOW IDEMPOTENT_WRITE on TOPIC:LITERAL:orders from host * for User:alice"
        );
    }
}
