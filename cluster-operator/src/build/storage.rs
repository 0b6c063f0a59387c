//! The PersistentVolumeClaims of a Kafka node's persistent data volumes. Pure: no I/O.
//!
//! Claims are created before the node's pod, which names them (see [`super::pod`]). A claim
//! carries an owner reference to the Kafka resource only when its volume says
//! `deleteClaim: true`; otherwise it outlives the Kafka resource, so that deleting and
//! re-creating a Kafka by mistake does not lose its data.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::meta;
use crate::model::{KafkaNode, ResolvedCluster, VolumeKind};

/// The access mode of every data claim: one node mounts it.
pub const DATA_CLAIM_ACCESS_MODE: &str = "ReadWriteOnce";

/// The claims of `node`'s persistent volumes (none for ephemeral storage), in volume order:
/// named `data[-<id>]-<c>-<pool>-<node id>`, with the volume's size and storage class (absent
/// class: the cluster's default), access mode `ReadWriteOnce` and the node's labels.
pub fn node_claims(cluster: &ResolvedCluster, node: &KafkaNode) -> Vec<PersistentVolumeClaim> {
    let Some(pool) = cluster.pool(&node.pool) else {
        return Vec::new();
    };
    pool.storage
        .volumes
        .iter()
        .filter_map(|volume| {
            let VolumeKind::PersistentClaim {
                size,
                class,
                delete_claim,
            } = &volume.kind
            else {
                return None;
            };
            let mut metadata = meta::object_meta(
                cluster,
                volume.claim_name(&cluster.name, &node.pool, node.id),
                meta::node_labels(cluster, node),
                None,
                None,
            );
            if !delete_claim {
                metadata.owner_references = None;
            }
            Some(PersistentVolumeClaim {
                metadata,
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec![DATA_CLAIM_ACCESS_MODE.to_owned()]),
                    storage_class_name: class.clone(),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_owned(),
                            Quantity(size.clone()),
                        )])),
                        ..VolumeResourceRequirements::default()
                    }),
                    ..PersistentVolumeClaimSpec::default()
                }),
                ..PersistentVolumeClaim::default()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::test_fixtures;

    /// (claim name, size, class, owned by the Kafka)
    type Expected = (&'static str, &'static str, Option<&'static str>, bool);

    #[rstest]
    #[case("single-node", 0, &[])]
    // Pools take node IDs in name order: broker 0-2, controller 3-5.
    #[case("separate-roles", 0, &[])]
    #[case("separate-roles", 3, &[("data-my-cluster-controller-3", "10Gi", None, false)])]
    #[case("combined", 2, &[
        ("data-0-small-dual-2", "10Gi", None, false),
        ("data-1-small-dual-2", "10Gi", None, false),
    ])]
    #[case("persistent-templates", 1, &[("data-big-ctrl-1", "20Gi", Some("fast"), true)])]
    #[case("persistent-templates", 11, &[
        ("data-0-big-data-11", "100Gi", None, false),
        ("data-2-big-data-11", "50Gi", Some("slow"), true),
    ])]
    fn claims_per_persistent_volume(
        #[case] fixture: &str,
        #[case] node_id: i32,
        #[case] expected: &[Expected],
    ) {
        let c = test_fixtures::resolved(fixture);
        let node = c.node(node_id).expect("node");
        let claims = node_claims(&c, &node);
        let got: Vec<(String, String, Option<String>, bool)> = claims
            .iter()
            .map(|claim| {
                let spec = claim.spec.as_ref().unwrap();
                let size = &spec.resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"];
                let owned = match &claim.metadata.owner_references {
                    None => false,
                    Some(refs) => {
                        assert_eq!(refs, &vec![meta::owner_reference(&c)]);
                        true
                    }
                };
                (
                    claim.metadata.name.clone().unwrap(),
                    size.0.clone(),
                    spec.storage_class_name.clone(),
                    owned,
                )
            })
            .collect();
        let expected: Vec<(String, String, Option<String>, bool)> = expected
            .iter()
            .map(|(name, size, class, owned)| {
                (
                    name.to_string(),
                    size.to_string(),
                    class.map(str::to_owned),
                    *owned,
                )
            })
            .collect();
        assert_eq!(got, expected);
        for claim in &claims {
            let spec = claim.spec.as_ref().unwrap();
            assert_eq!(
                spec.access_modes.as_deref(),
                Some(&["ReadWriteOnce".to_owned()][..])
            );
            assert_eq!(
                claim.metadata.namespace.as_deref(),
                Some(c.namespace.as_str())
            );
            assert_eq!(
                claim.metadata.labels.as_ref(),
                Some(&meta::node_labels(&c, &node))
            );
        }
    }

    #[test]
    fn claim_names_are_the_ones_the_model_gives() {
        let c = test_fixtures::resolved("persistent-templates");
        for node in c.nodes() {
            let pool = c.pool(&node.pool).unwrap();
            let expected: Vec<String> = pool
                .storage
                .volumes
                .iter()
                .filter(|v| matches!(v.kind, VolumeKind::PersistentClaim { .. }))
                .map(|v| {
                    shared_crds::names::data_volume_claim(&c.name, &node.pool, node.id, v.jbod_id)
                })
                .collect();
            let got: Vec<String> = node_claims(&c, &node)
                .into_iter()
                .map(|claim| claim.metadata.name.unwrap())
                .collect();
            assert_eq!(got, expected);
        }
    }
}
