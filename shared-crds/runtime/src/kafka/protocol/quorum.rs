//! The KRaft metadata quorum and the broker registrations, spoken directly because librdkafka
//! has neither: DescribeQuorum (API key 55: the active controller, the voters, the observers)
//! and DescribeCluster version 2 with `include_fenced_brokers` (KIP-1073: every registered
//! broker, fenced ones too, which the Metadata response leaves out). Any broker answers both
//! (it forwards DescribeQuorum to the active controller). Builds the requests and reads the
//! responses (pure), sends them through a `KafkaProtocolClient`. May touch: the Kafka cluster,
//! through that client only.

use kafka_protocol::{
    messages::{
        DescribeClusterRequest, DescribeClusterResponse, DescribeQuorumRequest,
        DescribeQuorumResponse, TopicName, describe_quorum_request,
    },
    protocol::StrBytes,
};

use super::{ConnectionError, KafkaError, KafkaProtocolClient};

/// The topic of the KRaft metadata log, the one partition DescribeQuorum can describe.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// `DescribeClusterRequest.endpoint_type` for broker endpoints (1; 2 would be controllers).
const ENDPOINT_TYPE_BROKERS: i8 = 1;

/// What went wrong describing the quorum or the registered brokers.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    // Boxed: the connection error is large.
    #[error("sending {api} failed: {source}")]
    SendRequest {
        api: &'static str,
        source: Box<ConnectionError>,
    },
    /// Kafka refused, with its code and message (for example CLUSTER_AUTHORIZATION_FAILED).
    #[error("{api} refused: {error}")]
    Refused {
        api: &'static str,
        error: KafkaError,
    },
    #[error("the {api} response does not say {what}")]
    ReadAnswer {
        api: &'static str,
        what: &'static str,
    },
}

/// The metadata quorum as the active controller reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumInfo {
    /// The active controller; `None` while an election is under way (Kafka sends -1).
    pub leader_id: Option<i32>,
    pub leader_epoch: i32,
    /// The controllers that vote, sorted.
    pub voters: Vec<i32>,
    /// The replicas that only follow the log (brokers), sorted.
    pub observers: Vec<i32>,
}

/// One broker registration in the cluster metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredBroker {
    pub id: i32,
    /// Fenced: registered but not heartbeating (stopped, starting or removed).
    pub fenced: bool,
}

/// Pure: the DescribeQuorum request for the metadata log's only partition.
pub fn describe_quorum_request() -> DescribeQuorumRequest {
    DescribeQuorumRequest::default().with_topics(vec![
        describe_quorum_request::TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
            .with_partitions(vec![
                describe_quorum_request::PartitionData::default().with_partition_index(0),
            ]),
    ])
}

/// Pure: the quorum in a DescribeQuorum response (errors at the top, then per partition).
pub fn read_describe_quorum_response(
    response: DescribeQuorumResponse,
) -> Result<QuorumInfo, QuorumError> {
    const API: &str = "DescribeQuorum";
    if let Some(error) = KafkaError::from_code(response.error_code, response.error_message) {
        return Err(QuorumError::Refused { api: API, error });
    }
    let partition = response
        .topics
        .into_iter()
        .find(|t| t.topic_name.0.as_str() == METADATA_TOPIC)
        .and_then(|t| t.partitions.into_iter().find(|p| p.partition_index == 0))
        .ok_or(QuorumError::ReadAnswer {
            api: API,
            what: "the metadata partition",
        })?;
    if let Some(error) = KafkaError::from_code(partition.error_code, partition.error_message) {
        return Err(QuorumError::Refused { api: API, error });
    }
    let sorted_ids =
        |replicas: Vec<kafka_protocol::messages::describe_quorum_response::ReplicaState>| {
            let mut ids: Vec<i32> = replicas.iter().map(|r| r.replica_id.0).collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        };
    Ok(QuorumInfo {
        leader_id: (partition.leader_id.0 >= 0).then_some(partition.leader_id.0),
        leader_epoch: partition.leader_epoch,
        voters: sorted_ids(partition.current_voters),
        observers: sorted_ids(partition.observers),
    })
}

/// Pure: the DescribeCluster request that lists fenced brokers too.
pub fn registered_brokers_request() -> DescribeClusterRequest {
    DescribeClusterRequest::default()
        .with_include_cluster_authorized_operations(false)
        .with_endpoint_type(ENDPOINT_TYPE_BROKERS)
        .with_include_fenced_brokers(true)
}

/// Pure: the registrations in a DescribeCluster response, sorted by id.
pub fn read_registered_brokers_response(
    response: DescribeClusterResponse,
) -> Result<Vec<RegisteredBroker>, QuorumError> {
    if let Some(error) = KafkaError::from_code(response.error_code, response.error_message) {
        return Err(QuorumError::Refused {
            api: "DescribeCluster",
            error,
        });
    }
    let mut brokers: Vec<RegisteredBroker> = response
        .brokers
        .iter()
        .map(|b| RegisteredBroker {
            id: b.broker_id.0,
            fenced: b.is_fenced,
        })
        .collect();
    brokers.sort_by_key(|b| b.id);
    Ok(brokers)
}

impl KafkaProtocolClient {
    /// The metadata quorum: the active controller, the voters and the observers.
    pub async fn describe_quorum(&self) -> Result<QuorumInfo, QuorumError> {
        let response = self
            .send(describe_quorum_request())
            .await
            .map_err(|source| QuorumError::SendRequest {
                api: "DescribeQuorum",
                source: Box::new(source),
            })?;
        read_describe_quorum_response(response)
    }

    /// Every broker registered in the cluster metadata, fenced ones included. Needs a broker
    /// that speaks DescribeCluster version 2 (Kafka 4.0 and later): with an older one the
    /// request cannot be encoded (the flag does not exist there) and the call fails with that
    /// reason, rather than answering without the fenced brokers.
    pub async fn registered_brokers(&self) -> Result<Vec<RegisteredBroker>, QuorumError> {
        const API: &str = "DescribeCluster";
        let response = self
            .send(registered_brokers_request())
            .await
            .map_err(|source| QuorumError::SendRequest {
                api: API,
                source: Box::new(source),
            })?;
        read_registered_brokers_response(response)
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{
        BrokerId, describe_cluster_response::DescribeClusterBroker, describe_quorum_response,
    };
    use kafka_protocol::protocol::Encodable;

    use super::*;

    fn replica(id: i32) -> describe_quorum_response::ReplicaState {
        describe_quorum_response::ReplicaState::default().with_replica_id(BrokerId(id))
    }

    fn quorum_response(
        top_error: i16,
        partition_error: i16,
        leader: i32,
    ) -> DescribeQuorumResponse {
        DescribeQuorumResponse::default()
            .with_error_code(top_error)
            .with_topics(vec![
                describe_quorum_response::TopicData::default()
                    .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
                    .with_partitions(vec![
                        describe_quorum_response::PartitionData::default()
                            .with_partition_index(0)
                            .with_error_code(partition_error)
                            .with_leader_id(BrokerId(leader))
                            .with_leader_epoch(7)
                            .with_current_voters(vec![replica(2), replica(0), replica(1)])
                            .with_observers(vec![replica(5), replica(3), replica(3)]),
                    ]),
            ])
    }

    #[test]
    fn the_quorum_request_asks_for_partition_0_of_the_metadata_log() {
        let request = describe_quorum_request();
        assert_eq!(request.topics.len(), 1);
        assert_eq!(
            request.topics[0].topic_name.0.as_str(),
            "__cluster_metadata"
        );
        let partitions: Vec<i32> = request.topics[0]
            .partitions
            .iter()
            .map(|p| p.partition_index)
            .collect();
        assert_eq!(partitions, [0]);
        // Version 0 is flexible: compact array of 1 topic (len + 1), compact string, compact
        // array of 1 partition, int32 0, tagged fields of partition, topic and request.
        let mut body = bytes::BytesMut::new();
        request.encode(&mut body, 0).unwrap();
        let mut expected = vec![2, 19];
        expected.extend_from_slice(b"__cluster_metadata");
        expected.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&body[..], &expected[..]);
    }

    #[test]
    fn the_quorum_answer_names_the_leader_and_sorted_unique_voters_and_observers() {
        let info = read_describe_quorum_response(quorum_response(0, 0, 1)).unwrap();
        assert_eq!(
            info,
            QuorumInfo {
                leader_id: Some(1),
                leader_epoch: 7,
                voters: vec![0, 1, 2],
                observers: vec![3, 5],
            }
        );
    }

    #[test]
    fn no_leader_during_an_election_is_none() {
        let info = read_describe_quorum_response(quorum_response(0, 0, -1)).unwrap();
        assert_eq!(info.leader_id, None);
    }

    #[test]
    fn quorum_errors_at_either_level_are_refusals_with_kafkas_code() {
        // CLUSTER_AUTHORIZATION_FAILED at the top.
        let err = read_describe_quorum_response(quorum_response(31, 0, 1)).unwrap_err();
        let QuorumError::Refused { api, error } = &err else {
            panic!("{err:?}")
        };
        assert_eq!((*api, error.code), ("DescribeQuorum", 31));
        assert_eq!(error.name(), "CLUSTER_AUTHORIZATION_FAILED");
        // NOT_LEADER_OR_FOLLOWER on the partition.
        let err = read_describe_quorum_response(quorum_response(0, 6, 1)).unwrap_err();
        assert!(
            matches!(&err, QuorumError::Refused { error, .. } if error.code == 6),
            "{err:?}"
        );
    }

    #[test]
    fn a_quorum_answer_without_the_metadata_partition_is_a_read_error() {
        let err = read_describe_quorum_response(DescribeQuorumResponse::default()).unwrap_err();
        assert!(matches!(err, QuorumError::ReadAnswer { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the DescribeQuorum response does not say the metadata partition"
        );
    }

    #[test]
    fn the_registration_request_includes_fenced_brokers_and_needs_version_2() {
        let request = registered_brokers_request();
        assert!(request.include_fenced_brokers);
        assert_eq!(request.endpoint_type, 1);
        // Version 1 cannot carry the flag: encoding it there is an error, never a silent drop.
        let mut body = bytes::BytesMut::new();
        assert!(request.encode(&mut body, 1).is_err());
        let mut body = bytes::BytesMut::new();
        request.encode(&mut body, 2).unwrap();
        // include_cluster_authorized_operations false, endpoint_type 1,
        // include_fenced_brokers true, no tagged fields.
        assert_eq!(&body[..], &[0, 1, 1, 0]);
    }

    #[test]
    fn registrations_are_sorted_and_keep_the_fenced_flag() {
        let response = DescribeClusterResponse::default().with_brokers(vec![
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(4))
                .with_is_fenced(true),
            DescribeClusterBroker::default().with_broker_id(BrokerId(1)),
        ]);
        assert_eq!(
            read_registered_brokers_response(response).unwrap(),
            vec![
                RegisteredBroker {
                    id: 1,
                    fenced: false
                },
                RegisteredBroker {
                    id: 4,
                    fenced: true
                },
            ]
        );
        let refused = DescribeClusterResponse::default().with_error_code(31);
        assert!(matches!(
            read_registered_brokers_response(refused),
            Err(QuorumError::Refused {
                api: "DescribeCluster",
                ..
            })
        ));
    }
}
