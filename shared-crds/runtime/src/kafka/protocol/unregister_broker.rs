//! UnregisterBroker (API key 64) spoken directly: librdkafka has no call for it. After a
//! scale-down the removed broker's registration stays in the KRaft metadata (fenced) until it is
//! unregistered; any broker accepts the request and forwards it to the active controller.
//! Builds the request and reads the response (pure), sends it through a `KafkaProtocolClient`.
//! May touch: the Kafka cluster, through that client only.

use kafka_protocol::messages::{BrokerId, UnregisterBrokerRequest, UnregisterBrokerResponse};

use super::{ConnectionError, KafkaError, KafkaProtocolClient};

const API: &str = "UnregisterBroker";

/// What went wrong unregistering a broker.
#[derive(Debug, thiserror::Error)]
pub enum UnregisterBrokerError {
    // Boxed: the connection error is large.
    #[error("sending {API} for broker {broker} failed: {source}")]
    SendRequest {
        broker: i32,
        source: Box<ConnectionError>,
    },
    /// Kafka refused, with its code and message (for example BROKER_ID_NOT_REGISTERED).
    #[error("{API} of broker {broker} refused: {error}")]
    Refused { broker: i32, error: KafkaError },
}

/// Pure: the request unregistering `broker`.
pub fn unregister_request(broker: i32) -> UnregisterBrokerRequest {
    UnregisterBrokerRequest::default().with_broker_id(BrokerId(broker))
}

/// Pure: the outcome in an UnregisterBroker response (one error code for the whole request).
pub fn read_unregister_response(
    broker: i32,
    response: UnregisterBrokerResponse,
) -> Result<(), UnregisterBrokerError> {
    match KafkaError::from_code(response.error_code, response.error_message) {
        Some(error) => Err(UnregisterBrokerError::Refused { broker, error }),
        None => Ok(()),
    }
}

impl KafkaProtocolClient {
    /// Removes `broker`'s registration from the cluster metadata. Kafka refuses an id it has no
    /// registration for with BROKER_ID_NOT_REGISTERED, which is also what a repeat answers (the
    /// client sends once more after a broken connection), so callers that want the id gone can
    /// take that code as done.
    pub async fn unregister_broker(&self, broker: i32) -> Result<(), UnregisterBrokerError> {
        let response = self
            .send(unregister_request(broker))
            .await
            .map_err(|source| UnregisterBrokerError::SendRequest {
                broker,
                source: Box::new(source),
            })?;
        read_unregister_response(broker, response)
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::{
        messages::ApiKey,
        protocol::{Decodable, Encodable, StrBytes},
    };

    use super::*;
    use crate::kafka::protocol::ProtocolRequest;

    #[test]
    fn request_names_the_broker_and_is_api_key_64_version_0() {
        let request = unregister_request(4242);
        assert_eq!(request.broker_id, BrokerId(4242));
        assert_eq!(UnregisterBrokerRequest::KEY, ApiKey::UnregisterBroker);
        assert_eq!(ApiKey::UnregisterBroker as i16, 64);
        // Version 0 is flexible: the broker id (int32, big endian) then an empty tagged-field
        // section.
        let mut body = bytes::BytesMut::new();
        request.encode(&mut body, 0).unwrap();
        assert_eq!(&body[..], &[0x00, 0x00, 0x10, 0x92, 0x00]);
    }

    #[test]
    fn success_is_error_code_0() {
        let response = UnregisterBrokerResponse::default().with_error_code(0);
        assert!(read_unregister_response(7, response).is_ok());
    }

    #[test]
    fn refusal_keeps_kafkas_code_and_message() {
        // As Kafka encodes it: throttle 0, error code 102, message "Broker ID 4242 is not
        // currently registered" (compact nullable string), no tagged fields.
        let message = "Broker ID 4242 is not currently registered";
        let mut wire = vec![0, 0, 0, 0, 0, 102, message.len() as u8 + 1];
        wire.extend_from_slice(message.as_bytes());
        wire.push(0);
        let response = UnregisterBrokerResponse::decode(&mut bytes::Bytes::from(wire), 0).unwrap();
        let err = read_unregister_response(4242, response).unwrap_err();
        let UnregisterBrokerError::Refused { broker, error } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*broker, 4242);
        assert_eq!(error.code, 102);
        assert_eq!(error.name(), "BROKER_ID_NOT_REGISTERED");
        assert_eq!(error.message.as_deref(), Some(message));
        assert_eq!(
            err.to_string(),
            format!(
                "UnregisterBroker of broker 4242 refused: BROKER_ID_NOT_REGISTERED (error code 102): {message}"
            )
        );

        // Without a message (older controllers send none): the code alone.
        let response = UnregisterBrokerResponse::default()
            .with_error_code(31)
            .with_error_message(None::<StrBytes>);
        let Err(UnregisterBrokerError::Refused { error, .. }) =
            read_unregister_response(1, response)
        else {
            panic!("refused")
        };
        assert_eq!((error.code, error.message), (31, None));
    }
}
