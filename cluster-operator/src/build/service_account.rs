//! The ServiceAccount of a cluster's Kafka node pods. Pure: no I/O.
//!
//! The nodes never call the Kubernetes API, so the account has no role bound and mounts no
//! token; it exists so that the pods do not run as the namespace's `default` account, which
//! others may have granted rights to.

use k8s_openapi::api::core::v1::ServiceAccount;
use shared_crds::names;

use super::meta;
use crate::model::ResolvedCluster;

/// The ServiceAccount `<c>-kafka` the Kafka node pods run as, owned by the Kafka resource, with
/// `automountServiceAccountToken: false`.
pub fn kafka_service_account(cluster: &ResolvedCluster) -> ServiceAccount {
    let name = names::kafka_service_account(&cluster.name);
    ServiceAccount {
        metadata: meta::object_meta(
            cluster,
            name,
            meta::cluster_labels(
                cluster,
                meta::KAFKA_COMPONENT,
                &names::kafka_component(&cluster.name),
            ),
            None,
            None,
        ),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::test_fixtures;

    #[rstest]
    #[case("single-node", "tiny-kafka")]
    #[case("separate-roles", "my-cluster-kafka")]
    #[case("combined", "small-kafka")]
    fn service_account_is_named_owned_and_mounts_no_token(
        #[case] fixture: &str,
        #[case] name: &str,
    ) {
        let c = test_fixtures::resolved(fixture);
        let sa = kafka_service_account(&c);
        assert_eq!(sa.metadata.name.as_deref(), Some(name));
        assert_eq!(sa.metadata.namespace.as_deref(), Some(c.namespace.as_str()));
        assert_eq!(
            sa.metadata.owner_references,
            Some(vec![meta::owner_reference(&c)])
        );
        let labels = sa.metadata.labels.unwrap();
        assert_eq!(labels[shared_crds::labels::CLUSTER], c.name);
        assert_eq!(labels[shared_crds::labels::APP_COMPONENT], "kafka");
        assert_eq!(sa.automount_service_account_token, Some(false));
    }
}
