//! The cluster-wide broker defaults (config resource BROKER with the empty name) through
//! IncrementalAlterConfigs and DescribeConfigs spoken directly: librdkafka 2.12 sends a BROKER
//! resource to the broker its name identifies and refuses the empty name ("Expected an int32
//! broker_id"). Any broker accepts the default (KRaft forwards the change to the controller).
//! Builds the requests and reads the responses (pure), sends them through a
//! `KafkaProtocolClient`. May touch: the Kafka cluster, through that client only.

use std::collections::BTreeMap;

use kafka_protocol::{
    messages::{
        DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
        IncrementalAlterConfigsResponse, describe_configs_request,
        incremental_alter_configs_request,
    },
    protocol::StrBytes,
};

use super::{ConnectionError, KafkaError, KafkaProtocolClient};
use crate::kafka::admin::{ConfigEntry, ConfigOp, ConfigSource};

/// Kafka's `ConfigResource.Type.BROKER`.
const RESOURCE_BROKER: i8 = 4;
/// IncrementalAlterConfigs operations (`AlterConfigOp.OpType`).
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// What went wrong reading or changing the cluster-wide broker defaults.
#[derive(Debug, thiserror::Error)]
pub enum BrokerDefaultsError {
    // Boxed: the connection error is large.
    #[error("sending {api} failed: {source}")]
    SendRequest {
        api: &'static str,
        source: Box<ConnectionError>,
    },
    /// Kafka refused the request or the resource, with its code and message.
    #[error("{api} of the cluster-wide broker defaults refused: {error}")]
    Refused {
        api: &'static str,
        error: KafkaError,
    },
    #[error("the {api} response has no result for the cluster-wide broker defaults")]
    ReadAnswer { api: &'static str },
}

/// Pure: the IncrementalAlterConfigs request changing the cluster-wide default of each key.
pub fn alter_request(ops: &[ConfigOp]) -> IncrementalAlterConfigsRequest {
    let configs = ops
        .iter()
        .map(|op| {
            let (name, value, operation) = match op {
                ConfigOp::Set(k, v) => (k, Some(StrBytes::from_string(v.clone())), OP_SET),
                ConfigOp::Delete(k) => (k, None, OP_DELETE),
            };
            incremental_alter_configs_request::AlterableConfig::default()
                .with_name(StrBytes::from_string(name.clone()))
                .with_config_operation(operation)
                .with_value(value)
        })
        .collect();
    IncrementalAlterConfigsRequest::default()
        .with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(RESOURCE_BROKER)
                .with_resource_name(StrBytes::from_static_str(""))
                .with_configs(configs),
        ])
        .with_validate_only(false)
}

/// Pure: the outcome of the default resource in an IncrementalAlterConfigs response.
pub fn read_alter_response(
    response: IncrementalAlterConfigsResponse,
) -> Result<(), BrokerDefaultsError> {
    const API: &str = "IncrementalAlterConfigs";
    let result = response
        .responses
        .into_iter()
        .find(|r| r.resource_type == RESOURCE_BROKER && r.resource_name.is_empty())
        .ok_or(BrokerDefaultsError::ReadAnswer { api: API })?;
    match KafkaError::from_code(result.error_code, result.error_message) {
        Some(error) => Err(BrokerDefaultsError::Refused { api: API, error }),
        None => Ok(()),
    }
}

/// Pure: the DescribeConfigs request for every cluster-wide default.
pub fn describe_request() -> DescribeConfigsRequest {
    DescribeConfigsRequest::default()
        .with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_BROKER)
                .with_resource_name(StrBytes::from_static_str(""))
                .with_configuration_keys(None),
        ])
        .with_include_synonyms(false)
        .with_include_documentation(false)
}

/// Pure: the cluster-wide defaults in a DescribeConfigs response, by key.
pub fn read_describe_response(
    response: DescribeConfigsResponse,
) -> Result<BTreeMap<String, ConfigEntry>, BrokerDefaultsError> {
    const API: &str = "DescribeConfigs";
    let result = response
        .results
        .into_iter()
        .find(|r| r.resource_type == RESOURCE_BROKER && r.resource_name.is_empty())
        .ok_or(BrokerDefaultsError::ReadAnswer { api: API })?;
    if let Some(error) = KafkaError::from_code(result.error_code, result.error_message) {
        return Err(BrokerDefaultsError::Refused { api: API, error });
    }
    Ok(result
        .configs
        .into_iter()
        .map(|c| {
            (
                c.name.to_string(),
                ConfigEntry {
                    value: c.value.map(|v| v.to_string()),
                    source: ConfigSource::from_code(c.config_source.into()),
                    read_only: c.read_only,
                    sensitive: c.is_sensitive,
                },
            )
        })
        .collect())
}

impl KafkaProtocolClient {
    /// Changes the cluster-wide default of each key, atomically, in one request.
    pub async fn alter_broker_defaults(&self, ops: &[ConfigOp]) -> Result<(), BrokerDefaultsError> {
        let response = self.send(alter_request(ops)).await.map_err(|source| {
            BrokerDefaultsError::SendRequest {
                api: "IncrementalAlterConfigs",
                source: Box::new(source),
            }
        })?;
        read_alter_response(response)
    }

    /// Every cluster-wide default set at run time (source `DYNAMIC_DEFAULT_BROKER_CONFIG`).
    pub async fn describe_broker_defaults(
        &self,
    ) -> Result<BTreeMap<String, ConfigEntry>, BrokerDefaultsError> {
        let response = self.send(describe_request()).await.map_err(|source| {
            BrokerDefaultsError::SendRequest {
                api: "DescribeConfigs",
                source: Box::new(source),
            }
        })?;
        read_describe_response(response)
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{describe_configs_response, incremental_alter_configs_response};

    use super::*;

    #[test]
    fn alter_request_names_the_default_broker_resource_and_each_operation() {
        let request = alter_request(&[
            ConfigOp::Set("log.retention.ms".into(), "3600000".into()),
            ConfigOp::Delete("message.max.bytes".into()),
        ]);
        assert!(!request.validate_only);
        let [resource] = request.resources.as_slice() else {
            panic!("one resource: {:?}", request.resources)
        };
        assert_eq!(resource.resource_type, RESOURCE_BROKER);
        assert_eq!(resource.resource_name.as_str(), "");
        let ops: Vec<(&str, i8, Option<&str>)> = resource
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.config_operation,
                    c.value.as_ref().map(|v| v.as_str()),
                )
            })
            .collect();
        assert_eq!(
            ops,
            [
                ("log.retention.ms", OP_SET, Some("3600000")),
                ("message.max.bytes", OP_DELETE, None)
            ]
        );
    }

    #[test]
    fn describe_request_asks_for_every_default_key() {
        let request = describe_request();
        let [resource] = request.resources.as_slice() else {
            panic!("one resource: {:?}", request.resources)
        };
        assert_eq!(resource.resource_type, RESOURCE_BROKER);
        assert_eq!(resource.resource_name.as_str(), "");
        assert_eq!(resource.configuration_keys, None);
    }

    fn alter_response(code: i16, message: Option<&str>) -> IncrementalAlterConfigsResponse {
        IncrementalAlterConfigsResponse::default().with_responses(vec![
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(RESOURCE_BROKER)
                .with_resource_name(StrBytes::from_static_str(""))
                .with_error_code(code)
                .with_error_message(message.map(|m| StrBytes::from_string(m.into()))),
        ])
    }

    #[test]
    fn alter_response_keeps_kafkas_code_and_message() {
        assert!(read_alter_response(alter_response(0, None)).is_ok());
        let err = read_alter_response(alter_response(40, Some("Unknown config foo"))).unwrap_err();
        let BrokerDefaultsError::Refused { error, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(error.code, 40);
        assert_eq!(error.message.as_deref(), Some("Unknown config foo"));
        // An answer about another resource is no answer.
        let other = IncrementalAlterConfigsResponse::default().with_responses(vec![
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(RESOURCE_BROKER)
                .with_resource_name(StrBytes::from_static_str("1")),
        ]);
        assert!(matches!(
            read_alter_response(other),
            Err(BrokerDefaultsError::ReadAnswer { .. })
        ));
    }

    #[test]
    fn describe_response_reads_values_sources_and_flags() {
        let entry = |name: &str, value: Option<&str>, source: i8, sensitive: bool| {
            describe_configs_response::DescribeConfigsResourceResult::default()
                .with_name(StrBytes::from_string(name.into()))
                .with_value(value.map(|v| StrBytes::from_string(v.into())))
                .with_config_source(source)
                .with_is_sensitive(sensitive)
        };
        let response = DescribeConfigsResponse::default().with_results(vec![
            describe_configs_response::DescribeConfigsResult::default()
                .with_resource_type(RESOURCE_BROKER)
                .with_resource_name(StrBytes::from_static_str(""))
                .with_configs(vec![
                    entry("log.retention.ms", Some("3600000"), 3, false),
                    entry("sasl.jaas.config", None, 3, true),
                ]),
        ]);
        let read = read_describe_response(response).unwrap();
        assert_eq!(
            read["log.retention.ms"],
            ConfigEntry {
                value: Some("3600000".into()),
                source: ConfigSource::DynamicDefaultBroker,
                read_only: false,
                sensitive: false,
            }
        );
        assert_eq!(read["sasl.jaas.config"].value, None);
        assert!(read["sasl.jaas.config"].sensitive);
        let refused = DescribeConfigsResponse::default().with_results(vec![
            describe_configs_response::DescribeConfigsResult::default()
                .with_resource_type(RESOURCE_BROKER)
                .with_resource_name(StrBytes::from_static_str(""))
                .with_error_code(31)
                .with_error_message(Some(StrBytes::from_static_str("denied"))),
        ]);
        assert!(matches!(
            read_describe_response(refused),
            Err(BrokerDefaultsError::Refused {
                error: KafkaError { code: 31, .. },
                ..
            })
        ));
    }
}
