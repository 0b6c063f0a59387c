//! The PodDisruptionBudget of a cluster's Kafka node pods. Pure: no I/O.
//!
//! One budget covers every node of the cluster (controllers and brokers alike), so that a
//! node drain never takes down two nodes at once: with replication factor 3 and
//! `min.insync.replicas` 2 one missing node keeps every partition writable, and one missing
//! controller keeps a three-voter quorum. The operator's own rolling restarts delete pods
//! directly and are not bound by the budget; they restart one node at a time anyway.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use shared_crds::names;

use super::meta;
use crate::model::ResolvedCluster;

/// Voluntary disruptions allowed at once when the template does not say.
pub const DEFAULT_MAX_UNAVAILABLE: i32 = 1;

/// The PodDisruptionBudget `<c>-kafka` selecting every Kafka node pod of `cluster`:
/// `maxUnavailable` 1 unless `spec.kafka.template.podDisruptionBudget` sets it; the template's
/// labels and annotations are added (its labels cannot replace the standard ones).
pub fn pod_disruption_budget(cluster: &ResolvedCluster) -> PodDisruptionBudget {
    let template = cluster.template.pod_disruption_budget.as_ref();
    let metadata_template = template.and_then(|t| t.metadata.as_ref());
    let name = names::kafka_component(&cluster.name);
    let labels = meta::cluster_labels(cluster, meta::KAFKA_COMPONENT, &name);
    PodDisruptionBudget {
        metadata: meta::object_meta(
            cluster,
            name,
            labels,
            metadata_template.and_then(|m| m.labels.as_ref()),
            metadata_template.and_then(|m| m.annotations.clone()),
        ),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(
                template
                    .and_then(|t| t.max_unavailable)
                    .unwrap_or(DEFAULT_MAX_UNAVAILABLE),
            )),
            selector: Some(meta::selector(meta::kafka_pods_selector_labels(cluster))),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::test_fixtures;

    #[rstest]
    #[case("single-node", 1)]
    #[case("separate-roles", 1)]
    #[case("combined", 1)]
    #[case("all-listeners", 1)]
    #[case("persistent-templates", 0)]
    fn budget_selects_every_node_pod(#[case] fixture: &str, #[case] max_unavailable: i32) {
        let c = test_fixtures::resolved(fixture);
        let pdb = pod_disruption_budget(&c);
        assert_eq!(
            pdb.metadata.name.as_deref(),
            Some(format!("{}-kafka", c.name).as_str())
        );
        assert_eq!(
            pdb.metadata.owner_references,
            Some(vec![meta::owner_reference(&c)])
        );
        let spec = pdb.spec.unwrap();
        assert_eq!(
            spec.max_unavailable,
            Some(IntOrString::Int(max_unavailable))
        );
        assert_eq!(spec.min_available, None);
        let selector = spec.selector.unwrap().match_labels.unwrap();
        // Every node pod carries the selected labels.
        for node in c.nodes() {
            let labels = meta::node_labels(&c, &node);
            for (k, v) in &selector {
                assert_eq!(labels.get(k), Some(v), "{k}");
            }
        }
    }

    #[test]
    fn template_metadata_is_added_without_replacing_standard_labels() {
        let c = test_fixtures::resolved("persistent-templates");
        let pdb = pod_disruption_budget(&c);
        let labels = pdb.metadata.labels.unwrap();
        assert_eq!(labels["team"], "streaming");
        assert_eq!(labels[shared_crds::labels::CLUSTER], c.name);
        assert_eq!(
            pdb.metadata.annotations.unwrap()["example.com/owner"],
            "platform"
        );
    }
}
