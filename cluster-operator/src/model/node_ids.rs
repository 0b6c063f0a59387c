//! Node ID assignment across the node pools of one cluster. Pure: no I/O.
//!
//! Node IDs are unique in the whole cluster, not per pool, so pods are named `<c>-<pool>-<id>`
//! with IDs that need not be contiguous. The rules, as Strimzi's:
//!
//! - Existing nodes keep their IDs (read back from each pool's `status.nodeIds`, so they survive
//!   operator restarts).
//! - Scaling a pool down removes the IDs listed in its `oxbow.rs/remove-node-ids` annotation
//!   first (in the annotation's order), then the pool's highest IDs.
//! - Scaling a pool up takes IDs from its `oxbow.rs/next-node-ids` annotation first (in the
//!   annotation's order, so `[99-0]` counts down), then the lowest IDs free in the cluster.
//! - IDs removed in this pass are not handed out again in the same pass: the removed node's pod
//!   may still be running, and a new node must never share an ID with it.
//! - Pools scaling up at the same time pick in a fixed order: pools with a `next-node-ids`
//!   annotation first (their ranges are the user's explicit wish), then the rest, each group by
//!   pool name. The result depends only on the input.
//!
//! Annotations hold a list of IDs and ranges, e.g. `[0, 1, 5-9, 20-10]`.

use std::collections::{BTreeMap, BTreeSet};

/// A list of node IDs and ranges from a pool annotation, in the order written.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NodeIdRanges {
    /// `(first, last)` pairs; a single ID is `(id, id)`, a descending range has `first > last`.
    ranges: Vec<(i32, i32)>,
}

impl NodeIdRanges {
    /// Parses `[0, 1, 5-9, 20-10]`: comma-separated IDs and `a-b` ranges, optionally in square
    /// brackets, whitespace ignored. `Err` carries a description of the problem.
    pub fn parse(text: &str) -> Result<NodeIdRanges, String> {
        let trimmed = text.trim();
        let inner = match (trimmed.strip_prefix('['), trimmed.strip_suffix(']')) {
            (Some(_), Some(_)) => &trimmed[1..trimmed.len() - 1],
            (None, None) => trimmed,
            _ => return Err("unbalanced square brackets".to_string()),
        };
        if inner.trim().is_empty() {
            return Ok(NodeIdRanges::default());
        }
        let number = |s: &str| -> Result<i32, String> {
            let s = s.trim();
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{s:?} is not a node ID (0 or above)"));
            }
            s.parse::<i32>()
                .map_err(|_| format!("{s} is too large for a node ID"))
        };
        let ranges = inner
            .split(',')
            .map(|item| match item.split_once('-') {
                Some((a, b)) => Ok((number(a)?, number(b)?)),
                None => number(item).map(|id| (id, id)),
            })
            .collect::<Result<_, String>>()?;
        Ok(NodeIdRanges { ranges })
    }

    /// Every ID, range by range, each range in its written direction.
    pub fn ids(&self) -> impl Iterator<Item = i32> + '_ {
        self.ranges.iter().flat_map(|&(first, last)| {
            let up = (first <= last).then_some(first..=last);
            let down = (first > last).then_some((last..=first).rev());
            up.into_iter().flatten().chain(down.into_iter().flatten())
        })
    }
}

/// What the assignment needs to know about one pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolNodeIdRequest {
    /// The pool's name.
    pub pool: String,
    /// The IDs the pool's nodes have now (`status.nodeIds`).
    pub current: BTreeSet<i32>,
    /// The desired number of nodes.
    pub replicas: usize,
    /// The parsed `oxbow.rs/next-node-ids` annotation.
    pub next_node_ids: Option<NodeIdRanges>,
    /// The parsed `oxbow.rs/remove-node-ids` annotation.
    pub remove_node_ids: Option<NodeIdRanges>,
}

/// The outcome for one pool.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolNodeIds {
    /// The IDs the pool's nodes have now.
    pub current: BTreeSet<i32>,
    /// The IDs the pool's nodes will have: `current - removed + added`.
    pub desired: BTreeSet<i32>,
    /// New IDs (scale-up).
    pub added: BTreeSet<i32>,
    /// IDs going away (scale-down).
    pub removed: BTreeSet<i32>,
}

/// Why node IDs cannot be assigned.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NodeIdError {
    /// Two pools claim the same ID in their status.
    #[error(
        "node ID {id} is claimed by both node pools {first_pool} and {second_pool}; node IDs must be unique in the cluster (check the pools' status.nodeIds)"
    )]
    DuplicateNodeId {
        /// The ID.
        id: i32,
        /// One pool claiming it.
        first_pool: String,
        /// The other pool claiming it.
        second_pool: String,
    },
    /// A pool's status lists a negative ID.
    #[error("node pool {pool} lists node ID {id} in its status; node IDs are 0 or above")]
    NegativeNodeId {
        /// The pool.
        pool: String,
        /// The ID.
        id: i32,
    },
    /// An annotation that is not a list of IDs and ranges.
    #[error(
        "node pool {pool}: annotation {annotation} is {value:?}: {detail}; write IDs and ranges such as \"[0, 1, 10-19]\""
    )]
    InvalidAnnotation {
        /// The pool.
        pool: String,
        /// The annotation key.
        annotation: &'static str,
        /// The annotation's value.
        value: String,
        /// What is wrong.
        detail: String,
    },
}

impl NodeIdError {
    /// Stable CamelCase reason for conditions, Events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            NodeIdError::DuplicateNodeId { .. } => "DuplicateNodeIds",
            NodeIdError::NegativeNodeId { .. } => "NegativeNodeId",
            NodeIdError::InvalidAnnotation { .. } => "InvalidNodeIdAnnotation",
        }
    }
}

/// Parses the node ID annotation `annotation` of pool `pool`.
pub fn parse_annotation(
    pool: &str,
    annotation: &'static str,
    value: &str,
) -> Result<NodeIdRanges, NodeIdError> {
    NodeIdRanges::parse(value).map_err(|detail| NodeIdError::InvalidAnnotation {
        pool: pool.to_string(),
        annotation,
        value: value.to_string(),
        detail,
    })
}

/// Assigns node IDs to every pool of a cluster (see the module documentation for the rules).
pub fn assign_node_ids(
    pools: &[PoolNodeIdRequest],
) -> Result<BTreeMap<String, PoolNodeIds>, NodeIdError> {
    // Every current ID, with its pool, to detect duplicates and to know what is taken.
    let mut owner: BTreeMap<i32, &str> = BTreeMap::new();
    for pool in pools {
        for &id in &pool.current {
            if id < 0 {
                return Err(NodeIdError::NegativeNodeId {
                    pool: pool.pool.clone(),
                    id,
                });
            }
            if let Some(first) = owner.insert(id, &pool.pool) {
                let (first_pool, second_pool) = ordered(first, &pool.pool);
                return Err(NodeIdError::DuplicateNodeId {
                    id,
                    first_pool,
                    second_pool,
                });
            }
        }
    }
    let mut taken: BTreeSet<i32> = owner.keys().copied().collect();

    let mut result: BTreeMap<String, PoolNodeIds> = pools
        .iter()
        .map(|pool| {
            let removed = ids_to_remove(pool);
            let desired = pool.current.difference(&removed).copied().collect();
            let ids = PoolNodeIds {
                current: pool.current.clone(),
                desired,
                added: BTreeSet::new(),
                removed,
            };
            (pool.pool.clone(), ids)
        })
        .collect();

    let mut growing: Vec<&PoolNodeIdRequest> = pools
        .iter()
        .filter(|p| p.replicas > p.current.len())
        .collect();
    growing.sort_by(|a, b| {
        (a.next_node_ids.is_none(), &a.pool).cmp(&(b.next_node_ids.is_none(), &b.pool))
    });
    for pool in growing {
        let ids = result.get_mut(&pool.pool).expect("every pool has an entry");
        for _ in pool.current.len()..pool.replicas {
            let id = next_free_id(pool.next_node_ids.as_ref(), &taken);
            taken.insert(id);
            ids.added.insert(id);
            ids.desired.insert(id);
        }
    }
    Ok(result)
}

fn ordered(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

/// The IDs pool `pool` gives up: annotated IDs first, then its highest.
fn ids_to_remove(pool: &PoolNodeIdRequest) -> BTreeSet<i32> {
    let count = pool.current.len().saturating_sub(pool.replicas);
    let mut removed = BTreeSet::new();
    if count == 0 {
        return removed;
    }
    let annotated = pool
        .remove_node_ids
        .iter()
        .flat_map(NodeIdRanges::ids)
        .filter(|id| pool.current.contains(id));
    for id in annotated.chain(pool.current.iter().rev().copied()) {
        if removed.len() == count {
            break;
        }
        removed.insert(id);
    }
    removed
}

/// The first annotated ID not taken, else the lowest ID not taken. Both searches end: at most
/// `taken.len()` candidates can be taken before a free one comes (or the range ends).
fn next_free_id(next_node_ids: Option<&NodeIdRanges>, taken: &BTreeSet<i32>) -> i32 {
    next_node_ids
        .into_iter()
        .flat_map(NodeIdRanges::ids)
        .find(|id| !taken.contains(id))
        .unwrap_or_else(|| {
            (0..=i32::MAX)
                .find(|id| !taken.contains(id))
                .expect("fewer than i32::MAX nodes")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn pool(name: &str, current: &[i32], replicas: usize) -> PoolNodeIdRequest {
        PoolNodeIdRequest {
            pool: name.to_string(),
            current: current.iter().copied().collect(),
            replicas,
            next_node_ids: None,
            remove_node_ids: None,
        }
    }

    fn with_next(mut p: PoolNodeIdRequest, annotation: &str) -> PoolNodeIdRequest {
        p.next_node_ids = Some(NodeIdRanges::parse(annotation).unwrap());
        p
    }

    fn with_remove(mut p: PoolNodeIdRequest, annotation: &str) -> PoolNodeIdRequest {
        p.remove_node_ids = Some(NodeIdRanges::parse(annotation).unwrap());
        p
    }

    fn set(ids: &[i32]) -> BTreeSet<i32> {
        ids.iter().copied().collect()
    }

    /// Desired IDs per pool.
    fn desired(pools: &[PoolNodeIdRequest]) -> BTreeMap<String, BTreeSet<i32>> {
        assign_node_ids(pools)
            .unwrap()
            .into_iter()
            .map(|(name, ids)| (name, ids.desired))
            .collect()
    }

    /// Runs the assignment and feeds the result back as the next reconcile's status.
    fn reconcile(pools: &mut [PoolNodeIdRequest]) {
        let result = assign_node_ids(pools).unwrap();
        for p in pools.iter_mut() {
            p.current = result[&p.pool].desired.clone();
        }
    }

    #[test]
    fn a_new_cluster_numbers_pools_in_name_order_from_zero() {
        let got = desired(&[pool("controller", &[], 3), pool("broker", &[], 3)]);
        assert_eq!(got["broker"], set(&[0, 1, 2]));
        assert_eq!(got["controller"], set(&[3, 4, 5]));
    }

    #[test]
    fn existing_ids_are_kept_even_when_not_contiguous() {
        let result = assign_node_ids(&[pool("a", &[7, 3, 11], 3), pool("b", &[0], 1)]).unwrap();
        assert_eq!(result["a"].desired, set(&[3, 7, 11]));
        assert!(result["a"].added.is_empty() && result["a"].removed.is_empty());
        assert_eq!(result["b"].desired, set(&[0]));
    }

    #[test]
    fn scale_up_takes_the_lowest_ids_free_in_the_whole_cluster() {
        let result =
            assign_node_ids(&[pool("a", &[0, 1, 2], 5), pool("b", &[3, 4, 5], 3)]).unwrap();
        assert_eq!(result["a"].added, set(&[6, 7]));
        assert_eq!(result["a"].desired, set(&[0, 1, 2, 6, 7]));
        // A gap left elsewhere in the cluster is filled first.
        let result = assign_node_ids(&[pool("a", &[0, 2], 3), pool("b", &[3], 1)]).unwrap();
        assert_eq!(result["a"].added, set(&[1]));
    }

    #[test]
    fn scale_down_removes_the_highest_ids_of_that_pool_only() {
        let result =
            assign_node_ids(&[pool("a", &[0, 1, 2, 6, 7], 5), pool("b", &[3, 4, 5], 1)]).unwrap();
        assert_eq!(result["b"].removed, set(&[4, 5]));
        assert_eq!(result["b"].desired, set(&[3]));
        assert!(result["a"].removed.is_empty());
    }

    #[test]
    fn two_pools_scaling_up_together_interleave_deterministically() {
        let pools = [pool("b", &[2], 3), pool("a", &[0, 1], 4)];
        let first = assign_node_ids(&pools).unwrap();
        assert_eq!(first["a"].added, set(&[3, 4]));
        assert_eq!(first["b"].added, set(&[5, 6]));
        // The input order does not matter.
        let swapped = [pools[1].clone(), pools[0].clone()];
        assert_eq!(assign_node_ids(&swapped).unwrap(), first);
    }

    #[test]
    fn scale_down_then_up_reuses_the_freed_id_in_a_later_pass() {
        let mut pools = [pool("a", &[0, 1, 2], 2), pool("b", &[3], 1)];
        reconcile(&mut pools);
        assert_eq!(pools[0].current, set(&[0, 1]));
        pools[0].replicas = 3;
        reconcile(&mut pools);
        assert_eq!(pools[0].current, set(&[0, 1, 2]));
    }

    #[test]
    fn ids_removed_in_this_pass_are_not_handed_out_again() {
        let result = assign_node_ids(&[pool("a", &[0, 1, 2], 2), pool("b", &[3], 2)]).unwrap();
        assert_eq!(result["a"].removed, set(&[2]));
        assert_eq!(result["b"].added, set(&[4]));
    }

    #[test]
    fn scaling_to_zero_removes_every_node() {
        let result = assign_node_ids(&[pool("a", &[4, 5], 0)]).unwrap();
        assert_eq!(result["a"].removed, set(&[4, 5]));
        assert!(result["a"].desired.is_empty());
    }

    #[test]
    fn the_outcome_is_stable_when_nothing_changes() {
        let mut pools = [pool("a", &[], 3), pool("b", &[], 2)];
        reconcile(&mut pools);
        let before = pools.clone();
        reconcile(&mut pools);
        assert_eq!(pools, before);
    }

    #[test]
    fn next_node_ids_are_used_first_in_their_order() {
        let got = desired(&[with_next(pool("a", &[0], 3), "[10-12]")]);
        assert_eq!(got["a"], set(&[0, 10, 11]));
        let got = desired(&[with_next(pool("a", &[], 2), "[99-0]")]);
        assert_eq!(got["a"], set(&[98, 99]));
        let got = desired(&[with_next(pool("a", &[], 3), "[5, 8, 20-21]")]);
        assert_eq!(got["a"], set(&[5, 8, 20]));
    }

    #[test]
    fn exhausted_next_node_ids_fall_back_to_the_lowest_free_id() {
        let got = desired(&[
            with_next(pool("a", &[10], 3), "[10-11]"),
            pool("b", &[0], 1),
        ]);
        assert_eq!(got["a"], set(&[1, 10, 11]));
    }

    #[test]
    fn pools_with_next_node_ids_pick_before_the_others() {
        // Without the rule, "a" (first by name) would take 0 and 1 and "b" would lose ID 1.
        let got = desired(&[pool("a", &[], 2), with_next(pool("b", &[], 1), "[1]")]);
        assert_eq!(got["b"], set(&[1]));
        assert_eq!(got["a"], set(&[0, 2]));
    }

    #[test]
    fn remove_node_ids_choose_which_nodes_go() {
        let result =
            assign_node_ids(&[with_remove(pool("a", &[100, 101, 102], 2), "[101]")]).unwrap();
        assert_eq!(result["a"].removed, set(&[101]));
        assert_eq!(result["a"].desired, set(&[100, 102]));
        // IDs not in the pool are skipped; the rest come from the highest.
        let result =
            assign_node_ids(&[with_remove(pool("a", &[1, 2, 3, 4], 1), "[7, 2]")]).unwrap();
        assert_eq!(result["a"].removed, set(&[2, 3, 4]));
    }

    #[test]
    fn remove_node_ids_are_ignored_when_not_scaling_down() {
        let result = assign_node_ids(&[with_remove(pool("a", &[1, 2], 2), "[1]")]).unwrap();
        assert!(result["a"].removed.is_empty());
    }

    #[test]
    fn duplicate_ids_across_pools_are_refused() {
        let err = assign_node_ids(&[pool("b", &[1, 2], 2), pool("a", &[2], 1)]).unwrap_err();
        assert_eq!(
            err,
            NodeIdError::DuplicateNodeId {
                id: 2,
                first_pool: "a".into(),
                second_pool: "b".into()
            }
        );
        assert_eq!(err.reason(), "DuplicateNodeIds");
    }

    #[test]
    fn negative_ids_in_status_are_refused() {
        let err = assign_node_ids(&[pool("a", &[-1], 1)]).unwrap_err();
        assert_eq!(err.reason(), "NegativeNodeId");
    }

    #[rstest]
    #[case("[0, 1, 2, 10-12, 30]", &[0, 1, 2, 10, 11, 12, 30])]
    #[case("[3-1]", &[3, 2, 1])]
    #[case(" 4 ", &[4])]
    #[case("[]", &[])]
    #[case("", &[])]
    fn annotations_parse(#[case] text: &str, #[case] ids: &[i32]) {
        let parsed = NodeIdRanges::parse(text).unwrap();
        assert_eq!(parsed.ids().collect::<Vec<_>>(), ids);
    }

    #[rstest]
    #[case("[1, x]")]
    #[case("[1,]")]
    #[case("[1-]")]
    #[case("[-1]")]
    #[case("[1")]
    #[case("[99999999999]")]
    fn bad_annotations_are_refused_with_the_pool_named(#[case] text: &str) {
        let err = parse_annotation("pool-a", "oxbow.rs/next-node-ids", text).unwrap_err();
        assert_eq!(err.reason(), "InvalidNodeIdAnnotation");
        assert!(err.to_string().contains("pool-a"), "{err}");
    }
}
