//! Kafka's wire protocol spoken directly, for the admin calls librdkafka lacks (client quotas,
//! the cluster-wide broker config defaults, UnregisterBroker, the metadata quorum and the
//! fenced broker registrations). One client per operator: it connects with the same `KafkaConnection` settings as the
//! librdkafka clients (TLS, mTLS, SASL SCRAM or PLAIN), negotiates versions with ApiVersions and
//! sends one request at a time. May touch: the network, to the configured bootstrap servers, and
//! the TLS files those settings name.
//!
//! Reconnection is deliberately simple: the first call connects; a call whose connection turns
//! out to be broken reconnects once and sends again. Only calls that are safe to repeat belong
//! here (AlterClientQuotas sets or removes values, so sending it twice leaves the same state;
//! UnregisterBroker sent twice leaves the broker unregistered, the repeat answering
//! BROKER_ID_NOT_REGISTERED).

mod broker_defaults;
mod connection;
mod quorum;
mod quotas;
pub mod scram;
mod tls;
mod unregister_broker;

use std::{fmt, time::Duration};

pub use kafka_protocol::ResponseError;
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Mutex;

pub use broker_defaults::BrokerDefaultsError;
pub use connection::{
    Broker, ConnectSettings, Connection, ConnectionError, MAX_RESPONSE_BYTES, ProtocolRequest,
};
pub use quorum::{QuorumError, QuorumInfo, RegisteredBroker};
pub use quotas::{QUOTA_KEYS, QuotaChange, QuotaError, UserQuotas};
pub use tls::TlsError;
pub use unregister_broker::UnregisterBrokerError;

use super::KafkaConnection;

/// An error code and message returned by Kafka, kept as Kafka sent them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaError {
    pub code: i16,
    pub message: Option<String>,
}

impl KafkaError {
    /// `None` for code 0 (no error).
    pub fn from_code(code: i16, message: Option<StrBytes>) -> Option<KafkaError> {
        (code != 0).then(|| KafkaError {
            code,
            message: message.map(|m| m.to_string()),
        })
    }

    /// The error as kafka-protocol knows it (`ResponseError::Unknown` for codes newer than it).
    pub fn error(&self) -> ResponseError {
        ResponseError::try_from_code(self.code).unwrap_or(ResponseError::Unknown(self.code))
    }

    /// Kafka's own name for the error, as its logs and documentation spell it
    /// (`CLUSTER_AUTHORIZATION_FAILED`).
    pub fn name(&self) -> String {
        match self.error() {
            ResponseError::Unknown(code) => format!("UNKNOWN_ERROR_CODE_{code}"),
            known => screaming_snake(&known.to_string()),
        }
    }
}

fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

impl fmt::Display for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (error code {})", self.name(), self.code)?;
        match &self.message {
            Some(m) if !m.is_empty() => write!(f, ": {m}"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for KafkaError {}

/// How one call of this client failed, whichever call it was: the shape callers that treat
/// every call alike (the admin client's errors and metrics) map from.
#[derive(Debug)]
pub enum ProtocolCallError {
    /// No answer: connecting, negotiating or the exchange failed.
    SendRequest {
        api: &'static str,
        source: Box<ConnectionError>,
    },
    /// Kafka answered with an error code.
    Refused(KafkaError),
    /// Kafka answered, but not about what was asked; the text says what is missing.
    ReadAnswer(String),
}

impl From<BrokerDefaultsError> for ProtocolCallError {
    fn from(error: BrokerDefaultsError) -> Self {
        match error {
            BrokerDefaultsError::SendRequest { api, source } => {
                ProtocolCallError::SendRequest { api, source }
            }
            BrokerDefaultsError::Refused { error, .. } => ProtocolCallError::Refused(error),
            BrokerDefaultsError::ReadAnswer { .. } => {
                ProtocolCallError::ReadAnswer(error.to_string())
            }
        }
    }
}

impl From<UnregisterBrokerError> for ProtocolCallError {
    fn from(error: UnregisterBrokerError) -> Self {
        match error {
            UnregisterBrokerError::SendRequest { source, .. } => ProtocolCallError::SendRequest {
                api: "UnregisterBroker",
                source,
            },
            UnregisterBrokerError::Refused { error, .. } => ProtocolCallError::Refused(error),
        }
    }
}

impl From<QuorumError> for ProtocolCallError {
    fn from(error: QuorumError) -> Self {
        match error {
            QuorumError::SendRequest { api, source } => {
                ProtocolCallError::SendRequest { api, source }
            }
            QuorumError::Refused { error, .. } => ProtocolCallError::Refused(error),
            QuorumError::ReadAnswer { .. } => ProtocolCallError::ReadAnswer(error.to_string()),
        }
    }
}

/// Default deadline for TCP, TLS and SASL of one connection attempt.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Default deadline for one request and its response.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A Kafka protocol client over one connection at a time, to the first bootstrap server that
/// accepts it. Calls are serialised; it is meant for low-rate admin calls, not for data.
#[derive(Debug)]
pub struct KafkaProtocolClient {
    brokers: Vec<Broker>,
    settings: ConnectSettings,
    connection: Mutex<Option<Connection>>,
}

impl KafkaProtocolClient {
    /// A client for these settings. Reads the TLS files now, so a wrong path fails at start-up;
    /// connects on the first call.
    pub fn new(kafka: &KafkaConnection) -> Result<KafkaProtocolClient, ConnectionError> {
        let brokers = connection::parse_bootstrap_servers(&kafka.bootstrap_servers)?;
        let tls = if kafka.security_protocol.tls() {
            let cert = kafka
                .client_cert
                .as_ref()
                .map(|(c, k)| (c.as_path(), k.as_path()));
            Some(
                tls::client_config(kafka.ca_file.as_deref(), cert)
                    .map_err(|source| ConnectionError::PrepareTls { source })?,
            )
        } else {
            None
        };
        Ok(KafkaProtocolClient {
            brokers,
            settings: ConnectSettings {
                tls,
                sasl: if kafka.security_protocol.sasl() {
                    kafka.sasl.clone()
                } else {
                    None
                },
                client_id: "oxbow".to_string(),
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                request_timeout: DEFAULT_REQUEST_TIMEOUT,
            },
            connection: Mutex::new(None),
        })
    }

    /// The client id the broker sees in request logs and quotas (default `oxbow`).
    pub fn with_client_id(mut self, client_id: &str) -> KafkaProtocolClient {
        self.settings.client_id = client_id.to_string();
        self
    }

    /// Deadlines for one connection attempt and for one request.
    pub fn with_timeouts(mut self, connect: Duration, request: Duration) -> KafkaProtocolClient {
        self.settings.connect_timeout = connect;
        self.settings.request_timeout = request;
        self
    }

    /// Tries the bootstrap servers in order. Refused credentials end the search: every broker
    /// would refuse them too.
    async fn connect(&self) -> Result<Connection, ConnectionError> {
        let mut last = None;
        for broker in &self.brokers {
            match Connection::open(broker, &self.settings).await {
                Ok(connection) => {
                    tracing::debug!(broker = %broker, "connected to Kafka (protocol client)");
                    return Ok(connection);
                }
                Err(e) if e.is_authentication() => return Err(e),
                Err(e) => {
                    tracing::warn!(broker = %broker, error = %e, "Kafka bootstrap server unusable, trying the next");
                    last = Some(e);
                }
            }
        }
        Err(
            last.unwrap_or_else(|| ConnectionError::ParseBootstrapServers {
                server: String::new(),
            }),
        )
    }

    /// Sends `request` at the highest version both sides support and returns the response. A
    /// connection found broken is replaced once and the request sent again.
    pub async fn send<R: ProtocolRequest>(
        &self,
        request: R,
    ) -> Result<R::Response, ConnectionError> {
        let mut slot = self.connection.lock().await;
        let reused = slot.is_some();
        let mut connection = match slot.take() {
            Some(c) => c,
            None => self.connect().await?,
        };
        let mut result = connection.send(&request).await;
        if let Err(e) = &result
            && e.is_transport()
            && reused
        {
            tracing::info!(broker = connection.broker(), error = %e, "Kafka connection broken, reconnecting once");
            connection = self.connect().await?;
            result = connection.send(&request).await;
        }
        // A connection that failed in transport may be out of step (a late response would answer
        // the next request): drop it. Kafka errors leave it usable.
        match &result {
            Err(e) if e.is_transport() => {}
            _ => *slot = Some(connection),
        }
        result
    }

    /// Closes the current connection, if any; the next call connects again.
    pub async fn disconnect(&self) {
        self.connection.lock().await.take();
    }
}

#[cfg(test)]
mod tests;
