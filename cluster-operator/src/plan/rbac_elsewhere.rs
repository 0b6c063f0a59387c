//! What to do with the topic and user operators' Roles and RoleBindings in namespaces other than
//! the Kafka's ("elsewhere"), which the Kafka cannot own: which found ones to delete (every one
//! no longer desired: the operator was removed, its `watchedNamespace` changed, or the Kafka is
//! being deleted), and whether the Kafka must carry the finalizer
//! [`labels::CLUSTER_FINALIZER`] that keeps it until they are deleted. Pure: no I/O, no clock.
//!
//! The finalizer is there only while objects elsewhere are desired (or, on the way out, still
//! found): added before the first one is applied, removed once none is desired and every stale
//! one was deleted. A Kafka whose operators watch its own namespace never carries it, so it
//! never waits for the cluster operator to be deleted.
//!
//! That gives an invariant: objects elsewhere exist only while the Kafka carries the finalizer
//! (it is added before they are created and removed only after they were deleted). So they are
//! looked for ([`may_have_rbac_elsewhere`]) only while the Kafka carries the finalizer or its
//! spec asks for an operator watching another namespace: most Kafkas cost no list across
//! namespaces.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::ResourceExt;
use shared_crds::{Kafka, labels};

use crate::act::Object;
use crate::build::entity_operator::EntityOperatorObjects;
use crate::observe::RbacElsewhere;

/// The shortest wait before retrying a failed clean-up of a Kafka being deleted.
pub const MIN_RETRY: Duration = Duration::from_secs(5);
/// The longest wait before retrying a failed clean-up of a Kafka being deleted.
pub const MAX_RETRY: Duration = Duration::from_secs(300);

/// What a reconcile does about the objects elsewhere.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RbacElsewherePlan {
    /// Add the finalizer before applying anything elsewhere.
    pub add_finalizer: bool,
    /// Found Roles no desired object names (by namespace and name).
    pub delete_roles: Vec<Role>,
    /// Found RoleBindings no desired object names.
    pub delete_role_bindings: Vec<RoleBinding>,
    /// Remove the finalizer, once every deletion above succeeded: nothing is desired elsewhere.
    pub remove_finalizer: bool,
}

impl RbacElsewherePlan {
    /// The namespace and name of every object to delete, for logs and Events.
    pub fn deletions(&self) -> Vec<String> {
        let named = |kind: &str, m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            format!(
                "{kind} {}/{}",
                m.namespace.as_deref().unwrap_or_default(),
                m.name.as_deref().unwrap_or_default()
            )
        };
        self.delete_roles
            .iter()
            .map(|o| named("Role", &o.metadata))
            .chain(
                self.delete_role_bindings
                    .iter()
                    .map(|o| named("RoleBinding", &o.metadata)),
            )
            .collect()
    }
}

/// Plans the objects elsewhere of the Kafka of `namespace`. `desired`: the entity operators'
/// objects the spec asks for, `None` when the Kafka is being deleted (nothing is desired).
/// `found`: what the cluster-wide list by label returned; `finalized`: whether the Kafka
/// carries the finalizer.
pub fn plan_rbac_elsewhere(
    desired: Option<&EntityOperatorObjects>,
    found: &RbacElsewhere,
    namespace: &str,
    finalized: bool,
) -> RbacElsewherePlan {
    let empty = EntityOperatorObjects::default();
    let desired = desired.unwrap_or(&empty);
    let wanted_roles = keys_elsewhere(&desired.roles, namespace);
    let wanted_bindings = keys_elsewhere(&desired.role_bindings, namespace);
    let wanted = !wanted_roles.is_empty() || !wanted_bindings.is_empty();
    RbacElsewherePlan {
        add_finalizer: wanted && !finalized,
        delete_roles: stale(&found.roles, &wanted_roles, namespace),
        delete_role_bindings: stale(&found.role_bindings, &wanted_bindings, namespace),
        remove_finalizer: !wanted && finalized,
    }
}

/// The found copy of `desired` when it lives elsewhere: the same namespace and name.
pub fn found_copy<'a, K: Object>(found: &'a [K], desired: &K) -> Option<&'a K> {
    found
        .iter()
        .find(|o| o.namespace() == desired.namespace() && o.name_any() == desired.name_any())
}

/// Whether `kafka` may have objects elsewhere, so that they must be looked for: it carries the
/// finalizer, or one of its operators watches a namespace other than the Kafka's.
pub fn may_have_rbac_elsewhere(kafka: &Kafka) -> bool {
    let elsewhere = |watched: Option<&String>| {
        watched.is_some_and(|ns| Some(ns) != kafka.metadata.namespace.as_ref())
    };
    let watches_elsewhere = kafka.spec.entity_operator.as_ref().is_some_and(|e| {
        e.topic_operator
            .as_ref()
            .is_some_and(|t| elsewhere(t.watched_namespace.as_ref()))
            || e.user_operator
                .as_ref()
                .is_some_and(|u| elsewhere(u.watched_namespace.as_ref()))
    });
    watches_elsewhere || has_finalizer(kafka.finalizers())
}

/// Whether `finalizers` (a Kafka's) hold the cluster operator's.
pub fn has_finalizer(finalizers: &[String]) -> bool {
    finalizers.iter().any(|f| f == labels::CLUSTER_FINALIZER)
}

/// How long to wait before retrying a failed clean-up of a Kafka that has waited `waited`
/// since its deletion: half that, between [`MIN_RETRY`] and [`MAX_RETRY`]. The waits grow
/// with each retry (by half the time so far) without a counter to keep, so they survive an
/// operator restart.
pub fn retry_delay(waited: Duration) -> Duration {
    (waited / 2).clamp(MIN_RETRY, MAX_RETRY)
}

fn keys_elsewhere<K: Object>(objects: &[K], namespace: &str) -> BTreeSet<(String, String)> {
    objects
        .iter()
        .filter_map(|o| {
            let ns = o.namespace()?;
            (ns != namespace).then(|| (ns, o.name_any()))
        })
        .collect()
}

fn stale<K: Object>(found: &[K], wanted: &BTreeSet<(String, String)>, namespace: &str) -> Vec<K> {
    found
        .iter()
        .filter(|o| {
            let ns = o.namespace().unwrap_or_default();
            ns != namespace
                && o.metadata().deletion_timestamp.is_none()
                && !wanted.contains(&(ns, o.name_any()))
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::entity_operator::{EntityOperatorSettings, entity_operator_objects};
    use crate::observe::elsewhere_selector;
    use crate::test_fixtures;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use rstest::rstest;

    /// The entity operators' objects of `fixture`; `entity-operators` has the topic operator
    /// watching `topics` and the user operator the Kafka's namespace `kafka`.
    fn desired(fixture: &str) -> EntityOperatorObjects {
        entity_operator_objects(
            &test_fixtures::resolved(fixture),
            &EntityOperatorSettings::default(),
        )
    }

    fn meta(ns: &str, name: &str) -> ObjectMeta {
        ObjectMeta {
            namespace: Some(ns.to_owned()),
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        }
    }

    /// A Role and a RoleBinding named `name` in each of `namespaces`.
    fn found(name: &str, namespaces: &[&str]) -> RbacElsewhere {
        RbacElsewhere {
            roles: namespaces
                .iter()
                .map(|ns| Role {
                    metadata: meta(ns, name),
                    ..Role::default()
                })
                .collect(),
            role_bindings: namespaces
                .iter()
                .map(|ns| RoleBinding {
                    metadata: meta(ns, name),
                    ..RoleBinding::default()
                })
                .collect(),
        }
    }

    const TOPIC_OPERATOR: &str = "my-cluster-topic-operator";

    fn deleted(plan: &RbacElsewherePlan) -> Vec<String> {
        plan.deletions()
    }

    #[rstest]
    // First reconcile of a Kafka whose topic operator watches `topics`: the finalizer first.
    #[case::new("entity-operators", &[], false, true, &[], false)]
    // Steady state: nothing to do, so nothing is written.
    #[case::steady("entity-operators", &["topics"], true, false, &[], false)]
    // The finalizer was added but the objects not yet applied: no change either.
    #[case::added_not_applied("entity-operators", &[], true, false, &[], false)]
    // watchedNamespace changed from `old` to `topics`: the old ones go, the finalizer stays.
    #[case::moved("entity-operators", &["old", "topics"], true, false,
        &["Role old/my-cluster-topic-operator", "RoleBinding old/my-cluster-topic-operator"], false)]
    // The topic operator was removed from the spec: its objects go, then the finalizer.
    #[case::operator_removed("user-operator-only", &["topics"], true, false,
        &["Role topics/my-cluster-topic-operator", "RoleBinding topics/my-cluster-topic-operator"], true)]
    // Left by an operator version without the finalizer: deleted; no finalizer to touch.
    #[case::unguarded_leftovers("single-node", &["topics"], false, false,
        &["Role topics/my-cluster-topic-operator", "RoleBinding topics/my-cluster-topic-operator"], false)]
    // Nothing elsewhere, ever: no finalizer, nothing to delete.
    #[case::own_namespace_only("user-operator-only", &[], false, false, &[], false)]
    fn a_reconcile_deletes_what_is_no_longer_desired_and_guards_the_rest(
        #[case] fixture: &str,
        #[case] found_in: &[&str],
        #[case] finalized: bool,
        #[case] add_finalizer: bool,
        #[case] deletions: &[&str],
        #[case] remove_finalizer: bool,
    ) {
        let plan = plan_rbac_elsewhere(
            Some(&desired(fixture)),
            &found(TOPIC_OPERATOR, found_in),
            "kafka",
            finalized,
        );
        assert_eq!(plan.add_finalizer, add_finalizer);
        assert_eq!(deleted(&plan), deletions);
        assert_eq!(plan.remove_finalizer, remove_finalizer);
    }

    #[test]
    fn a_kafka_being_deleted_deletes_everything_found_then_releases_the_finalizer() {
        let plan = plan_rbac_elsewhere(None, &found(TOPIC_OPERATOR, &["a", "b"]), "kafka", true);
        assert!(!plan.add_finalizer);
        assert_eq!(
            deleted(&plan),
            [
                "Role a/my-cluster-topic-operator",
                "Role b/my-cluster-topic-operator",
                "RoleBinding a/my-cluster-topic-operator",
                "RoleBinding b/my-cluster-topic-operator",
            ]
        );
        assert!(plan.remove_finalizer);
        // Nothing left: only the finalizer goes.
        let plan = plan_rbac_elsewhere(None, &RbacElsewhere::default(), "kafka", true);
        assert_eq!(
            plan,
            RbacElsewherePlan {
                remove_finalizer: true,
                ..RbacElsewherePlan::default()
            }
        );
    }

    #[test]
    fn objects_in_the_kafkas_namespace_or_already_going_are_left_alone() {
        let mut f = found(TOPIC_OPERATOR, &["kafka", "going"]);
        let now = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        f.roles[1].metadata.deletion_timestamp = Some(now.clone());
        f.role_bindings[1].metadata.deletion_timestamp = Some(now);
        let plan = plan_rbac_elsewhere(None, &f, "kafka", true);
        assert!(deleted(&plan).is_empty(), "{:?}", deleted(&plan));
        assert!(plan.remove_finalizer);
    }

    #[test]
    fn a_desired_object_elsewhere_is_compared_with_its_found_copy() {
        let d = desired("entity-operators");
        let f = found(TOPIC_OPERATOR, &["old", "topics"]);
        let role = &d.roles[0];
        assert_eq!(role.namespace().as_deref(), Some("topics"));
        let copy = found_copy(&f.roles, role).expect("found");
        assert_eq!(copy.namespace().as_deref(), Some("topics"));
        assert!(found_copy(&f.roles, &d.roles[1]).is_none());
    }

    #[test]
    fn objects_built_elsewhere_carry_every_label_the_sweep_selects_on() {
        let c = test_fixtures::resolved("entity-operators");
        let d = desired("entity-operators");
        let selector = elsewhere_selector(&c.name, &c.namespace);
        let metas = [&d.roles[0].metadata, &d.role_bindings[0].metadata];
        for m in metas {
            assert_eq!(m.namespace.as_deref(), Some("topics"));
            let labels = m.labels.clone().unwrap_or_default();
            for pair in selector.split(',') {
                let (k, v) = pair.split_once('=').expect("key=value");
                assert_eq!(labels.get(k).map(String::as_str), Some(v), "{k}");
            }
        }
    }

    #[rstest]
    #[case::topic_operator_elsewhere("entity-operators", None, true)]
    #[case::own_namespace_named("user-operator-only", None, false)]
    #[case::no_entity_operator("single-node", None, false)]
    #[case::finalizer_left("single-node", Some(labels::CLUSTER_FINALIZER), true)]
    #[case::other_finalizer("user-operator-only", Some(labels::TOPIC_FINALIZER), false)]
    fn rbac_elsewhere_is_looked_for_only_when_there_may_be_some(
        #[case] fixture: &str,
        #[case] finalizer: Option<&str>,
        #[case] expected: bool,
    ) {
        let mut kafka = test_fixtures::load(fixture).kafka;
        kafka.metadata.finalizers = finalizer.map(|f| vec![f.to_owned()]);
        assert_eq!(may_have_rbac_elsewhere(&kafka), expected);
    }

    #[test]
    fn the_finalizer_is_recognised_among_others() {
        assert!(!has_finalizer(&[]));
        assert!(!has_finalizer(&[labels::TOPIC_FINALIZER.to_owned()]));
        assert!(has_finalizer(&[
            "other/finalizer".to_owned(),
            labels::CLUSTER_FINALIZER.to_owned()
        ]));
    }

    #[rstest]
    #[case::at_once(0, 5)]
    #[case::early(4, 5)]
    #[case::growing(30, 15)]
    #[case::later(200, 100)]
    #[case::capped(3600, 300)]
    fn retries_back_off_with_the_time_waited(#[case] waited: u64, #[case] delay: u64) {
        assert_eq!(
            retry_delay(Duration::from_secs(waited)),
            Duration::from_secs(delay)
        );
    }
}
