//! The rolling-restart decision: which nodes must restart and why, which configuration changes
//! Kafka can take without a restart, and which node to restart next (or why to wait). Pure: no
//! I/O; the observe stage supplies pod state, revisions and partition state.
//!
//! A node restarts when its image, pod template, certificates or configuration differ from the
//! desired ones (each recorded as a revision annotation on its pod), or when a manual rolling
//! update is requested on its pod or on the Kafka resource. A configuration change whose keys
//! are all in [`DYNAMIC_CLUSTER_CONFIGS`] is applied through the admin client instead.
//!
//! Order (as Strimzi's KafkaRoller for KRaft): controllers (controller-only and combined nodes)
//! before broker-only nodes, because brokers need the quorum to start; within each group
//! not-ready nodes first, then by node ID; the active controller last among the controllers, so
//! the quorum changes leader once. One node at a time: [`next_restart`] names the next node or a
//! reason to wait.

use std::collections::{BTreeMap, BTreeSet};

use super::partitions::{PartitionMap, TopicPartition};

/// Broker configurations Kafka applies at runtime as cluster-wide defaults (their "Dynamic
/// Update Mode" is `cluster-wide` in Kafka's documentation), chosen because users commonly tune
/// them. Changes to these are applied with an incremental AlterConfigs on the cluster-wide
/// broker resource instead of a restart. The list is deliberately short: a key missing here only
/// costs a restart, a wrong key would leave a change unapplied.
///
/// A changed dynamic key is always applied dynamically, even when the node also restarts for
/// another reason: a cluster-wide dynamic value takes precedence over `server.properties`, so
/// once one was set, the file alone can no longer change the value.
pub const DYNAMIC_CLUSTER_CONFIGS: &[&str] = &[
    "background.threads",
    "compression.type",
    "log.cleaner.threads",
    "log.cleanup.policy",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.retention.bytes",
    "log.retention.ms",
    "log.roll.ms",
    "log.segment.bytes",
    "log.segment.delete.delay.ms",
    "max.connections",
    "max.connections.per.ip",
    "message.max.bytes",
    "min.insync.replicas",
    "num.io.threads",
    "num.network.threads",
    "num.replica.fetchers",
    "unclean.leader.election.enable",
];

/// True if `key` can change without a restart (see [`DYNAMIC_CLUSTER_CONFIGS`]).
pub fn is_dynamic(key: &str) -> bool {
    DYNAMIC_CLUSTER_CONFIGS.contains(&key)
}

/// Fingerprints of what a node runs, as recorded on its pod, or of what it should run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revisions {
    /// Revision of `server.properties`.
    pub config: String,
    /// Revision of the node's certificate and the CA certificates it trusts.
    pub certificates: String,
    /// The container image.
    pub image: String,
    /// Revision of the rest of the pod spec (template, resources, JVM options, storage).
    pub pod_template: String,
}

/// What the planner knows about one existing node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRollState {
    /// The node ID.
    pub node_id: i32,
    /// True for a broker.
    pub is_broker: bool,
    /// True for a KRaft controller.
    pub is_controller: bool,
    /// True if the pod is ready.
    pub ready: bool,
    /// `oxbow.rs/manual-rolling-update: "true"` on the pod (or its node pool).
    pub manual_roll_requested: bool,
    /// What the pod runs, from its annotations.
    pub running: Revisions,
    /// What it should run.
    pub desired: Revisions,
    /// The configuration the node runs with, if known; `None` makes any configuration change a
    /// restart, since nothing tells which keys changed.
    pub running_config: Option<BTreeMap<String, String>>,
    /// The configuration it should run with.
    pub desired_config: BTreeMap<String, String>,
}

/// The cluster-wide inputs of the decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollInput {
    /// Every existing node.
    pub nodes: Vec<NodeRollState>,
    /// The active (leader) controller, if known.
    pub active_controller: Option<i32>,
    /// `oxbow.rs/manual-rolling-update: "true"` on the Kafka resource: restart every node.
    pub manual_roll_requested: bool,
}

/// Why a node restarts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RestartReason {
    /// A manual rolling update was requested.
    ManualRollingUpdate,
    /// The image changed.
    ImageChanged,
    /// The pod template changed.
    PodTemplateChanged,
    /// The node certificate or a trusted CA changed.
    CertificatesChanged,
    /// Configuration that needs a restart changed.
    ConfigChanged {
        /// The changed keys that are not dynamic; empty when the running configuration is
        /// unknown.
        keys: Vec<String>,
    },
}

impl RestartReason {
    /// Stable CamelCase reason for Events, logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            RestartReason::ManualRollingUpdate => "ManualRollingUpdate",
            RestartReason::ImageChanged => "ImageChanged",
            RestartReason::PodTemplateChanged => "PodTemplateChanged",
            RestartReason::CertificatesChanged => "CertificatesChanged",
            RestartReason::ConfigChanged { .. } => "ConfigChanged",
        }
    }
}

/// A node to restart and every reason it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRestart {
    /// The node ID.
    pub node_id: i32,
    /// The reasons, in [`RestartReason`] order.
    pub reasons: Vec<RestartReason>,
}

/// One cluster-wide dynamic configuration change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicConfigChange {
    /// The key.
    pub key: String,
    /// The new value; `None` deletes the dynamic value, returning to the default.
    pub value: Option<String>,
}

/// Everything the roll has to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RollPlan {
    /// Dynamic changes to apply cluster-wide, by key. Apply them before restarting anything.
    pub dynamic_changes: Vec<DynamicConfigChange>,
    /// Nodes whose configuration changed only dynamically (or not in substance): once the
    /// dynamic changes are applied, record the desired configuration revision on their pods.
    pub config_revision_only: Vec<i32>,
    /// The nodes to restart, in restart order.
    pub restarts: Vec<NodeRestart>,
}

impl RollPlan {
    /// True if nothing is to be done.
    pub fn is_empty(&self) -> bool {
        self.dynamic_changes.is_empty()
            && self.config_revision_only.is_empty()
            && self.restarts.is_empty()
    }
}

/// Works out what every node needs and orders the restarts.
pub fn plan_roll(input: &RollInput) -> RollPlan {
    let mut dynamic: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut config_revision_only = Vec::new();
    let mut restarts = Vec::new();
    for node in &input.nodes {
        let mut reasons = BTreeSet::new();
        if input.manual_roll_requested || node.manual_roll_requested {
            reasons.insert(RestartReason::ManualRollingUpdate);
        }
        if node.running.image != node.desired.image {
            reasons.insert(RestartReason::ImageChanged);
        }
        if node.running.pod_template != node.desired.pod_template {
            reasons.insert(RestartReason::PodTemplateChanged);
        }
        if node.running.certificates != node.desired.certificates {
            reasons.insert(RestartReason::CertificatesChanged);
        }
        let mut config_needs_restart = false;
        if node.running.config != node.desired.config {
            match &node.running_config {
                None => {
                    reasons.insert(RestartReason::ConfigChanged { keys: Vec::new() });
                    config_needs_restart = true;
                }
                Some(running) => {
                    let changed = changed_keys(running, &node.desired_config);
                    let static_keys: Vec<String> =
                        changed.iter().filter(|k| !is_dynamic(k)).cloned().collect();
                    for key in changed.iter().filter(|k| is_dynamic(k)) {
                        dynamic.insert(key.clone(), node.desired_config.get(key).cloned());
                    }
                    if !static_keys.is_empty() {
                        reasons.insert(RestartReason::ConfigChanged { keys: static_keys });
                        config_needs_restart = true;
                    }
                }
            }
            if !config_needs_restart {
                config_revision_only.push(node.node_id);
            }
        }
        if !reasons.is_empty() {
            restarts.push(NodeRestart {
                node_id: node.node_id,
                reasons: reasons.into_iter().collect(),
            });
        }
    }
    // A node that restarts anyway picks up its configuration revision with the new pod.
    config_revision_only.retain(|id| !restarts.iter().any(|r| r.node_id == *id));
    let states: BTreeMap<i32, &NodeRollState> =
        input.nodes.iter().map(|n| (n.node_id, n)).collect();
    restarts.sort_by_key(|r| restart_rank(states[&r.node_id], input.active_controller));
    RollPlan {
        dynamic_changes: dynamic
            .into_iter()
            .map(|(key, value)| DynamicConfigChange { key, value })
            .collect(),
        config_revision_only,
        restarts,
    }
}

/// Keys whose values differ, including keys present on one side only.
fn changed_keys(
    running: &BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
) -> Vec<String> {
    let keys: BTreeSet<&String> = running.keys().chain(desired.keys()).collect();
    keys.into_iter()
        .filter(|k| running.get(*k) != desired.get(*k))
        .cloned()
        .collect()
}

/// Sort key: controllers (group 0) before broker-only nodes (group 1); in a group not-ready
/// nodes first, the active controller last, then by node ID.
fn restart_rank(node: &NodeRollState, active_controller: Option<i32>) -> (u8, bool, bool, i32) {
    let group = if node.is_controller { 0 } else { 1 };
    let is_active = node.is_controller && active_controller == Some(node.node_id);
    (group, node.ready, is_active, node.node_id)
}

/// Why the roll waits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitReason {
    /// Nodes that need no restart are not ready; restarting another now could take the cluster
    /// (or the quorum) below what it can survive.
    NodesNotReady {
        /// The not-ready nodes.
        node_ids: Vec<i32>,
    },
    /// Restarting the broker would take partitions below `min.insync.replicas`.
    BelowMinInSyncReplicas {
        /// The broker that would restart next.
        node_id: i32,
        /// The partitions that would drop below their minimum.
        partitions: Vec<TopicPartition>,
    },
    /// The partition state is unknown, so a broker restart cannot be checked.
    PartitionStateUnknown {
        /// The broker that would restart next.
        node_id: i32,
    },
}

impl WaitReason {
    /// Stable CamelCase reason for the status condition, Events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            WaitReason::NodesNotReady { .. } => "NodesNotReady",
            WaitReason::BelowMinInSyncReplicas { .. } => "BelowMinInSyncReplicas",
            WaitReason::PartitionStateUnknown { .. } => "PartitionStateUnknown",
        }
    }

    /// A message for the status condition.
    pub fn message(&self) -> String {
        match self {
            WaitReason::NodesNotReady { node_ids } => format!(
                "rolling restart waits for nodes {} to become ready",
                join(node_ids.iter())
            ),
            WaitReason::BelowMinInSyncReplicas {
                node_id,
                partitions,
            } => format!(
                "rolling restart waits: restarting broker {node_id} would take {} below min.insync.replicas",
                join(partitions.iter().take(10))
            ),
            WaitReason::PartitionStateUnknown { node_id } => format!(
                "rolling restart waits: the partition state needed to restart broker {node_id} safely is not available"
            ),
        }
    }
}

fn join<T: ToString>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

/// The next step of a roll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RollStep {
    /// Restart this node now, then plan again once it is back.
    Restart(NodeRestart),
    /// Do not restart anything now.
    Wait(WaitReason),
    /// No restart is pending.
    Done,
}

/// The next node of `plan` to restart, or why to wait. Rules:
///
/// - A not-ready node that needs a restart goes first: it is unavailable anyway, and waiting
///   for it to become ready could wait forever when the restart is the fix (a bad config).
/// - A ready node only restarts while every node is ready.
/// - A ready broker only restarts if no partition would drop below `min.insync.replicas`; if
///   it would, the next broker of the same group is tried. Controllers are never skipped for
///   brokers, and the active controller is only tried after the other controllers.
/// - `partitions` is `None` when the partition state could not be read: brokers then wait.
pub fn next_restart(
    plan: &RollPlan,
    input: &RollInput,
    partitions: Option<&PartitionMap>,
) -> RollStep {
    let states: BTreeMap<i32, &NodeRollState> =
        input.nodes.iter().map(|n| (n.node_id, n)).collect();
    // Restarts of nodes that no longer exist are skipped (a plan is meant for its own input).
    let pending: Vec<(&NodeRestart, &NodeRollState)> = plan
        .restarts
        .iter()
        .filter_map(|r| states.get(&r.node_id).map(|n| (r, *n)))
        .collect();
    let Some((_, first)) = pending.first() else {
        return RollStep::Done;
    };
    if let Some((stuck, _)) = pending.iter().find(|(_, n)| !n.ready) {
        return RollStep::Restart((*stuck).clone());
    }
    let not_ready: Vec<i32> = input
        .nodes
        .iter()
        .filter(|n| !n.ready)
        .map(|n| n.node_id)
        .collect();
    if !not_ready.is_empty() {
        return RollStep::Wait(WaitReason::NodesNotReady {
            node_ids: not_ready,
        });
    }
    // Only the first group with pending restarts is eligible.
    let first_group = first.is_controller;
    let mut first_wait = None;
    for (restart, node) in pending
        .iter()
        .filter(|(_, n)| n.is_controller == first_group)
    {
        let is_active = node.is_controller && input.active_controller == Some(node.node_id);
        if is_active && first_wait.is_some() {
            // Never move the active controller ahead of a blocked controller.
            break;
        }
        if !node.is_broker {
            return RollStep::Restart((*restart).clone());
        }
        match broker_restart_blocker(node.node_id, partitions) {
            None => return RollStep::Restart((*restart).clone()),
            Some(wait) => {
                first_wait.get_or_insert(wait);
            }
        }
    }
    RollStep::Wait(first_wait.expect("the first group has at least one pending restart"))
}

/// Why restarting broker `node_id` is unsafe now, if it is.
fn broker_restart_blocker(node_id: i32, partitions: Option<&PartitionMap>) -> Option<WaitReason> {
    let Some(partitions) = partitions else {
        return Some(WaitReason::PartitionStateUnknown { node_id });
    };
    let below: Vec<TopicPartition> = partitions
        .iter()
        .filter(|(_, p)| {
            // A topic whose minimum is not below its replica count can never keep a restart
            // available (e.g. one replica, or min.insync.replicas equal to the replicas):
            // waiting would block every roll, so such partitions do not hold it up.
            let survivable = usize::try_from(p.min_isr).unwrap_or(0) < p.replicas.len();
            let in_isr = p.isr.contains(&node_id);
            let remaining = i32::try_from(p.isr.len()).unwrap_or(i32::MAX) - 1;
            survivable && in_isr && remaining < p.min_isr
        })
        .map(|(tp, _)| tp.clone())
        .collect();
    (!below.is_empty()).then_some(WaitReason::BelowMinInSyncReplicas {
        node_id,
        partitions: below,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::partitions::PartitionReplicas;

    fn revisions(tag: &str) -> Revisions {
        Revisions {
            config: format!("config-{tag}"),
            certificates: format!("certs-{tag}"),
            image: format!("image-{tag}"),
            pod_template: format!("template-{tag}"),
        }
    }

    /// A ready, up-to-date node.
    fn node(node_id: i32, roles: &str) -> NodeRollState {
        NodeRollState {
            node_id,
            is_broker: roles.contains('b'),
            is_controller: roles.contains('c'),
            ready: true,
            manual_roll_requested: false,
            running: revisions("a"),
            desired: revisions("a"),
            running_config: None,
            desired_config: BTreeMap::new(),
        }
    }

    fn new_image(mut n: NodeRollState) -> NodeRollState {
        n.desired.image = "image-b".into();
        n
    }

    fn not_ready(mut n: NodeRollState) -> NodeRollState {
        n.ready = false;
        n
    }

    fn config(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A node whose configuration changes from `running` to `desired`.
    fn config_change(
        mut n: NodeRollState,
        running: &[(&str, &str)],
        desired: &[(&str, &str)],
    ) -> NodeRollState {
        n.desired.config = "config-b".into();
        n.running_config = Some(config(running));
        n.desired_config = config(desired);
        n
    }

    fn input(nodes: Vec<NodeRollState>, active_controller: Option<i32>) -> RollInput {
        RollInput {
            nodes,
            active_controller,
            manual_roll_requested: false,
        }
    }

    fn order(plan: &RollPlan) -> Vec<i32> {
        plan.restarts.iter().map(|r| r.node_id).collect()
    }

    fn partition(replicas: &[i32], isr: &[i32], min_isr: i32) -> PartitionReplicas {
        PartitionReplicas {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            min_isr,
        }
    }

    /// A healthy topic with RF 3 and min ISR 2 on brokers 0-2.
    fn healthy_partitions() -> PartitionMap {
        PartitionMap::from([
            (
                TopicPartition::new("orders", 0),
                partition(&[0, 1, 2], &[0, 1, 2], 2),
            ),
            (
                TopicPartition::new("orders", 1),
                partition(&[1, 2, 0], &[1, 2, 0], 2),
            ),
        ])
    }

    #[test]
    fn an_up_to_date_cluster_needs_nothing() {
        let i = input(vec![node(0, "b"), node(3, "c")], Some(3));
        let plan = plan_roll(&i);
        assert!(plan.is_empty());
        assert_eq!(
            next_restart(&plan, &i, Some(&healthy_partitions())),
            RollStep::Done
        );
    }

    #[test]
    fn each_changed_revision_is_a_reason() {
        let mut n = node(0, "b");
        n.desired = revisions("b");
        let plan = plan_roll(&input(vec![n], None));
        assert_eq!(
            plan.restarts[0].reasons,
            [
                RestartReason::ImageChanged,
                RestartReason::PodTemplateChanged,
                RestartReason::CertificatesChanged,
                RestartReason::ConfigChanged { keys: vec![] },
            ]
        );
        let reasons: Vec<&str> = plan.restarts[0]
            .reasons
            .iter()
            .map(RestartReason::reason)
            .collect();
        assert_eq!(
            reasons,
            [
                "ImageChanged",
                "PodTemplateChanged",
                "CertificatesChanged",
                "ConfigChanged"
            ]
        );
    }

    #[test]
    fn controllers_go_before_brokers_and_the_active_controller_last_among_them() {
        let nodes = vec![
            new_image(node(0, "b")),
            new_image(node(1, "b")),
            new_image(node(3, "c")),
            new_image(node(4, "c")),
            new_image(node(5, "c")),
            new_image(node(6, "bc")),
        ];
        let plan = plan_roll(&input(nodes, Some(4)));
        assert_eq!(order(&plan), [3, 5, 6, 4, 0, 1]);
    }

    #[test]
    fn not_ready_nodes_lead_their_group() {
        let nodes = vec![
            new_image(node(0, "b")),
            not_ready(new_image(node(1, "b"))),
            new_image(node(3, "c")),
            not_ready(new_image(node(4, "c"))),
        ];
        let plan = plan_roll(&input(nodes, Some(3)));
        assert_eq!(order(&plan), [4, 3, 1, 0]);
    }

    #[test]
    fn one_node_at_a_time_in_plan_order() {
        let nodes = vec![
            new_image(node(0, "b")),
            new_image(node(3, "c")),
            new_image(node(4, "c")),
        ];
        let i = input(nodes, Some(3));
        let plan = plan_roll(&i);
        let step = next_restart(&plan, &i, Some(&healthy_partitions()));
        assert_eq!(
            step,
            RollStep::Restart(NodeRestart {
                node_id: 4,
                reasons: vec![RestartReason::ImageChanged]
            })
        );
    }

    #[test]
    fn the_active_controller_restarts_once_it_is_the_last_controller_pending() {
        let i = input(
            vec![new_image(node(3, "c")), node(4, "c"), node(0, "b")],
            Some(3),
        );
        let plan = plan_roll(&i);
        // Only the active controller is pending, so it is next.
        assert_eq!(
            next_restart(&plan, &i, None),
            RollStep::Restart(NodeRestart {
                node_id: 3,
                reasons: vec![RestartReason::ImageChanged]
            })
        );
    }

    #[test]
    fn a_not_ready_node_without_pending_changes_makes_the_roll_wait() {
        let i = input(
            vec![
                new_image(node(0, "b")),
                not_ready(node(1, "b")),
                node(3, "c"),
            ],
            Some(3),
        );
        let plan = plan_roll(&i);
        assert_eq!(
            next_restart(&plan, &i, Some(&healthy_partitions())),
            RollStep::Wait(WaitReason::NodesNotReady { node_ids: vec![1] })
        );
    }

    #[test]
    fn a_stuck_node_with_pending_changes_is_restarted_first_without_checks() {
        // Broker 1 is not ready (e.g. crash-looping on a bad config) and holds every ISR slot:
        // it is restarted anyway, even before the controller, and with no partition state.
        let i = input(
            vec![new_image(node(3, "c")), not_ready(new_image(node(1, "b")))],
            Some(3),
        );
        let plan = plan_roll(&i);
        match next_restart(&plan, &i, None) {
            RollStep::Restart(r) => assert_eq!(r.node_id, 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_broker_that_would_take_partitions_below_min_isr_waits() {
        let partitions = PartitionMap::from([
            // Broker 0 is one of two in-sync replicas with min ISR 2: restarting it leaves one.
            (
                TopicPartition::new("orders", 0),
                partition(&[0, 1, 2], &[0, 1], 2),
            ),
            (
                TopicPartition::new("orders", 1),
                partition(&[0, 1, 2], &[0, 1, 2], 2),
            ),
        ]);
        let i = input(
            vec![
                new_image(node(0, "b")),
                node(1, "b"),
                node(2, "b"),
                node(3, "c"),
            ],
            Some(3),
        );
        let plan = plan_roll(&i);
        let step = next_restart(&plan, &i, Some(&partitions));
        let wait = WaitReason::BelowMinInSyncReplicas {
            node_id: 0,
            partitions: vec![TopicPartition::new("orders", 0)],
        };
        assert_eq!(step, RollStep::Wait(wait.clone()));
        assert_eq!(wait.reason(), "BelowMinInSyncReplicas");
        assert!(wait.message().contains("broker 0") && wait.message().contains("orders/0"));
    }

    #[test]
    fn a_blocked_broker_lets_the_next_broker_go() {
        let partitions = PartitionMap::from([(
            TopicPartition::new("orders", 0),
            partition(&[0, 1, 2], &[0, 2], 2),
        )]);
        let i = input(
            vec![
                new_image(node(0, "b")),
                new_image(node(1, "b")),
                node(2, "b"),
            ],
            None,
        );
        let plan = plan_roll(&i);
        match next_restart(&plan, &i, Some(&partitions)) {
            RollStep::Restart(r) => assert_eq!(r.node_id, 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn brokers_wait_for_the_controllers_even_when_those_are_blocked() {
        // Combined node 6 is blocked by the ISR guard; broker-only node 0 must not jump ahead.
        let partitions = PartitionMap::from([(
            TopicPartition::new("orders", 0),
            partition(&[6, 0, 1], &[6, 0], 2),
        )]);
        let i = input(
            vec![
                new_image(node(6, "bc")),
                new_image(node(0, "b")),
                node(1, "b"),
            ],
            Some(6),
        );
        let plan = plan_roll(&i);
        match next_restart(&plan, &i, Some(&partitions)) {
            RollStep::Wait(WaitReason::BelowMinInSyncReplicas { node_id, .. }) => {
                assert_eq!(node_id, 6)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_active_controller_does_not_jump_a_blocked_controller() {
        let partitions = PartitionMap::from([(
            TopicPartition::new("orders", 0),
            partition(&[6, 7, 1], &[6, 1], 2),
        )]);
        // Combined 6 is blocked; combined 7 is the active controller and would be free to go.
        let i = input(
            vec![
                new_image(node(6, "bc")),
                new_image(node(7, "bc")),
                node(1, "b"),
            ],
            Some(7),
        );
        let plan = plan_roll(&i);
        assert!(matches!(
            next_restart(&plan, &i, Some(&partitions)),
            RollStep::Wait(WaitReason::BelowMinInSyncReplicas { node_id: 6, .. })
        ));
    }

    #[test]
    fn partitions_that_can_never_survive_a_restart_do_not_block() {
        let partitions = PartitionMap::from([
            (TopicPartition::new("single", 0), partition(&[0], &[0], 1)),
            (
                TopicPartition::new("strict", 0),
                partition(&[0, 1], &[0, 1], 2),
            ),
        ]);
        let i = input(vec![new_image(node(0, "b")), node(1, "b")], None);
        let plan = plan_roll(&i);
        assert!(matches!(
            next_restart(&plan, &i, Some(&partitions)),
            RollStep::Restart(NodeRestart { node_id: 0, .. })
        ));
    }

    #[test]
    fn brokers_wait_when_the_partition_state_is_unknown_but_controllers_do_not() {
        let i = input(vec![new_image(node(0, "b")), node(3, "c")], Some(3));
        let plan = plan_roll(&i);
        assert_eq!(
            next_restart(&plan, &i, None),
            RollStep::Wait(WaitReason::PartitionStateUnknown { node_id: 0 })
        );
        let i = input(vec![node(0, "b"), new_image(node(3, "c"))], Some(3));
        let plan = plan_roll(&i);
        assert!(matches!(
            next_restart(&plan, &i, None),
            RollStep::Restart(_)
        ));
    }

    #[test]
    fn dynamic_only_changes_are_applied_without_a_restart() {
        let running = [
            ("min.insync.replicas", "1"),
            ("log.retention.ms", "1000"),
            ("node.id", "0"),
        ];
        let desired = [("min.insync.replicas", "2"), ("node.id", "0")];
        let i = input(
            vec![
                config_change(node(0, "b"), &running, &desired),
                config_change(node(1, "b"), &running, &desired),
            ],
            None,
        );
        let plan = plan_roll(&i);
        assert!(plan.restarts.is_empty());
        assert_eq!(
            plan.dynamic_changes,
            [
                DynamicConfigChange {
                    key: "log.retention.ms".into(),
                    value: None
                },
                DynamicConfigChange {
                    key: "min.insync.replicas".into(),
                    value: Some("2".into())
                },
            ]
        );
        assert_eq!(plan.config_revision_only, [0, 1]);
        assert_eq!(next_restart(&plan, &i, None), RollStep::Done);
    }

    #[test]
    fn a_static_change_restarts_and_its_dynamic_part_is_still_applied() {
        let i = input(
            vec![config_change(
                node(0, "b"),
                &[("min.insync.replicas", "1"), ("num.partitions", "1")],
                &[("min.insync.replicas", "2"), ("num.partitions", "3")],
            )],
            None,
        );
        let plan = plan_roll(&i);
        assert_eq!(
            plan.restarts[0].reasons,
            [RestartReason::ConfigChanged {
                keys: vec!["num.partitions".into()]
            }]
        );
        assert_eq!(plan.dynamic_changes.len(), 1);
        assert!(plan.config_revision_only.is_empty());
    }

    #[test]
    fn a_new_revision_with_the_same_content_only_updates_the_revision() {
        let same = [("node.id", "0")];
        let i = input(vec![config_change(node(0, "b"), &same, &same)], None);
        let plan = plan_roll(&i);
        assert!(plan.restarts.is_empty() && plan.dynamic_changes.is_empty());
        assert_eq!(plan.config_revision_only, [0]);
    }

    #[test]
    fn a_node_restarting_for_another_reason_needs_no_separate_revision_update() {
        let change = config_change(
            new_image(node(0, "b")),
            &[("min.insync.replicas", "1")],
            &[("min.insync.replicas", "2")],
        );
        let plan = plan_roll(&input(vec![change], None));
        assert_eq!(plan.restarts[0].reasons, [RestartReason::ImageChanged]);
        assert!(plan.config_revision_only.is_empty());
        assert_eq!(plan.dynamic_changes.len(), 1);
    }

    #[test]
    fn manual_rolling_update_on_a_pod_restarts_that_node() {
        let mut n = node(1, "b");
        n.manual_roll_requested = true;
        let plan = plan_roll(&input(vec![node(0, "b"), n, node(3, "c")], Some(3)));
        assert_eq!(
            plan.restarts,
            [NodeRestart {
                node_id: 1,
                reasons: vec![RestartReason::ManualRollingUpdate]
            }]
        );
    }

    #[test]
    fn manual_rolling_update_on_the_kafka_restarts_every_node_in_order() {
        let mut i = input(
            vec![node(0, "b"), node(1, "b"), node(3, "c"), node(4, "c")],
            Some(3),
        );
        i.manual_roll_requested = true;
        let plan = plan_roll(&i);
        assert_eq!(order(&plan), [4, 3, 0, 1]);
        assert!(
            plan.restarts
                .iter()
                .all(|r| r.reasons == [RestartReason::ManualRollingUpdate])
        );
    }

    #[test]
    fn the_dynamic_list_holds_only_cluster_wide_settings() {
        assert!(is_dynamic("min.insync.replicas"));
        assert!(is_dynamic("log.retention.ms"));
        // Read-only in Kafka: the hours/minutes forms and anything about listeners or storage.
        for key in [
            "log.retention.hours",
            "log.dirs",
            "num.partitions",
            "listeners",
        ] {
            assert!(!is_dynamic(key), "{key}");
        }
    }
}
