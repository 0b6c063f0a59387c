//! One connection to one Kafka broker: TCP, TLS when the listener uses it, ApiVersions
//! negotiation, SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), then requests framed with Kafka's
//! 4-byte length prefix and answered in order with checked correlation ids. May touch: the
//! network, to the one broker it is given; every step runs under a deadline.

use std::{collections::HashMap, fmt, io, sync::Arc, time::Duration};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        AlterClientQuotasRequest, AlterClientQuotasResponse, ApiKey, ApiVersionsRequest,
        ApiVersionsResponse, DescribeClientQuotasRequest, DescribeClientQuotasResponse,
        DescribeClusterRequest, DescribeClusterResponse, DescribeConfigsRequest,
        DescribeConfigsResponse, DescribeQuorumRequest, DescribeQuorumResponse,
        IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, RequestHeader,
        ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
        SaslHandshakeResponse, UnregisterBrokerRequest, UnregisterBrokerResponse,
    },
    protocol::{Decodable, Encodable, HeaderVersion, Message, StrBytes},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};
use tokio_rustls::{TlsConnector, rustls};

use super::{
    KafkaError,
    scram::{ScramClient, ScramError, ScramMechanism},
    tls,
};
use crate::kafka::SaslCredentials;

/// Responses larger than this are refused rather than allocated: a wrong port (an HTTP server,
/// a TLS listener spoken to in plaintext) otherwise reads as a length of gigabytes.
pub const MAX_RESPONSE_BYTES: usize = 100 * 1024 * 1024;

/// Error code of UNSUPPORTED_VERSION, which ApiVersions answers in version 0 form.
const UNSUPPORTED_VERSION: i16 = 35;

/// A request this client speaks, with its response.
///
/// kafka-protocol's own `Request` trait exists only with its `broker` feature (request decoding,
/// response encoding), which would double the crate's generated code for nothing we use; this
/// trait needs only the client half. Adding a request is one line in `speaks!` below.
pub trait ProtocolRequest: Message + Encodable + HeaderVersion {
    const KEY: ApiKey;
    type Response: Decodable + HeaderVersion;
}

macro_rules! speaks {
    ($($request:ty => $response:ty, $key:ident;)*) => {$(
        impl ProtocolRequest for $request {
            const KEY: ApiKey = ApiKey::$key;
            type Response = $response;
        }
    )*};
}

speaks! {
    ApiVersionsRequest => ApiVersionsResponse, ApiVersions;
    SaslHandshakeRequest => SaslHandshakeResponse, SaslHandshake;
    SaslAuthenticateRequest => SaslAuthenticateResponse, SaslAuthenticate;
    DescribeClientQuotasRequest => DescribeClientQuotasResponse, DescribeClientQuotas;
    AlterClientQuotasRequest => AlterClientQuotasResponse, AlterClientQuotas;
    IncrementalAlterConfigsRequest => IncrementalAlterConfigsResponse, IncrementalAlterConfigs;
    DescribeConfigsRequest => DescribeConfigsResponse, DescribeConfigs;
    UnregisterBrokerRequest => UnregisterBrokerResponse, UnregisterBroker;
    DescribeQuorumRequest => DescribeQuorumResponse, DescribeQuorum;
    DescribeClusterRequest => DescribeClusterResponse, DescribeCluster;
}

/// A broker address from the bootstrap list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parses `host:port[,host:port...]`, accepting `[v6]:port` and librdkafka's optional
/// `PROTOCOL://` prefix.
pub fn parse_bootstrap_servers(servers: &str) -> Result<Vec<Broker>, ConnectionError> {
    let invalid = |server: &str| ConnectionError::ParseBootstrapServers {
        server: server.to_string(),
    };
    let brokers = servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|server| {
            let address = server.split_once("://").map_or(server, |(_, rest)| rest);
            let (host, port) = address.rsplit_once(':').ok_or_else(|| invalid(server))?;
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            let port = port.parse().map_err(|_| invalid(server))?;
            if host.is_empty() {
                return Err(invalid(server));
            }
            Ok(Broker {
                host: host.to_string(),
                port,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if brokers.is_empty() {
        return Err(invalid(servers));
    }
    Ok(brokers)
}

/// What every connection of one client shares.
#[derive(Clone)]
pub struct ConnectSettings {
    /// `Some` when the listener speaks TLS.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<SaslCredentials>,
    pub client_id: String,
    /// Deadline for TCP, TLS and SASL together.
    pub connect_timeout: Duration,
    /// Deadline for one request and its response.
    pub request_timeout: Duration,
}

impl fmt::Debug for ConnectSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectSettings")
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl) // SaslCredentials' Debug redacts the password
            .field("client_id", &self.client_id)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// What went wrong talking to a broker. Kafka's error code and message are kept in `KafkaError`.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("bootstrap server {server:?} is not host:port")]
    ParseBootstrapServers { server: String },
    #[error("preparing TLS failed: {source}")]
    PrepareTls { source: tls::TlsError },
    #[error("connecting to {broker} failed: {source}")]
    Connect { broker: String, source: io::Error },
    #[error("the TLS handshake with {broker} failed: {source}")]
    TlsHandshake { broker: String, source: io::Error },
    #[error("connecting to {broker} (TCP, TLS, SASL) took longer than {after:?}")]
    ConnectTimeout { broker: String, after: Duration },
    #[error("sending {api:?} to {broker} failed: {source}")]
    Send {
        broker: String,
        api: ApiKey,
        source: io::Error,
    },
    #[error("receiving the {api:?} response from {broker} failed: {source}")]
    Receive {
        broker: String,
        api: ApiKey,
        source: io::Error,
    },
    #[error("{broker} did not answer {api:?} within {after:?}")]
    RequestTimeout {
        broker: String,
        api: ApiKey,
        after: Duration,
    },
    #[error(
        "{broker} announced a {size}-byte {api:?} response, more than the {MAX_RESPONSE_BYTES} accepted"
    )]
    ReceiveOversizedResponse {
        broker: String,
        api: ApiKey,
        size: usize,
    },
    #[error("{broker} answered correlation id {got} where {expected} was due")]
    CheckCorrelationId {
        broker: String,
        expected: i32,
        got: i32,
    },
    #[error("encoding {api:?} v{version} failed: {detail}")]
    Encode {
        api: ApiKey,
        version: i16,
        detail: String,
    },
    #[error("decoding the {api:?} v{version} response from {broker} failed: {detail}")]
    Decode {
        broker: String,
        api: ApiKey,
        version: i16,
        detail: String,
    },
    #[error(
        "{broker} supports {api:?} versions {broker_min}..={broker_max}, this client {ours_min}..={ours_max}"
    )]
    NegotiateVersion {
        broker: String,
        api: ApiKey,
        broker_min: i16,
        broker_max: i16,
        ours_min: i16,
        ours_max: i16,
    },
    #[error("ApiVersions at {broker} failed: {error}")]
    ApiVersions { broker: String, error: KafkaError },
    #[error("SASL mechanism {mechanism} is not supported by this client")]
    ChooseSaslMechanism { mechanism: String },
    #[error(
        "SASL handshake for {mechanism} at {broker} failed: {error}; the listener enables {enabled:?}"
    )]
    SaslHandshake {
        broker: String,
        mechanism: String,
        error: KafkaError,
        enabled: Vec<String>,
    },
    #[error("SASL authentication as {username:?} with {mechanism} at {broker} failed: {error}")]
    SaslAuthenticate {
        broker: String,
        mechanism: String,
        username: String,
        error: KafkaError,
    },
    #[error("the {mechanism} exchange with {broker} failed: {source}")]
    Scram {
        broker: String,
        mechanism: String,
        source: ScramError,
    },
}

impl ConnectionError {
    /// Stable CamelCase word for conditions, Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            ConnectionError::ParseBootstrapServers { .. } => "ParseBootstrapServers",
            ConnectionError::PrepareTls { source } => source.reason(),
            ConnectionError::Connect { .. } => "Connect",
            ConnectionError::TlsHandshake { .. } => "TlsHandshake",
            ConnectionError::ConnectTimeout { .. } => "ConnectTimeout",
            ConnectionError::Send { .. } => "SendRequest",
            ConnectionError::Receive { .. } => "ReceiveResponse",
            ConnectionError::RequestTimeout { .. } => "RequestTimeout",
            ConnectionError::ReceiveOversizedResponse { .. } => "ResponseTooLarge",
            ConnectionError::CheckCorrelationId { .. } => "CorrelationIdMismatch",
            ConnectionError::Encode { .. } => "EncodeRequest",
            ConnectionError::Decode { .. } => "DecodeResponse",
            ConnectionError::NegotiateVersion { .. } => "UnsupportedVersion",
            ConnectionError::ApiVersions { .. } => "ApiVersions",
            ConnectionError::ChooseSaslMechanism { .. } => "SaslMechanism",
            ConnectionError::SaslHandshake { .. } => "SaslHandshake",
            ConnectionError::SaslAuthenticate { .. } => "SaslAuthenticate",
            ConnectionError::Scram { source, .. } => source.reason(),
        }
    }

    /// The broker refused our credentials or could not prove it knows them: every broker would
    /// answer the same, and each retry would count as another failed login.
    pub fn is_authentication(&self) -> bool {
        matches!(
            self,
            ConnectionError::SaslHandshake { .. }
                | ConnectionError::SaslAuthenticate { .. }
                | ConnectionError::Scram { .. }
                | ConnectionError::ChooseSaslMechanism { .. }
        )
    }

    /// The connection itself broke (or can no longer be trusted to be in step): a new
    /// connection may succeed where this one failed.
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            ConnectionError::Connect { .. }
                | ConnectionError::TlsHandshake { .. }
                | ConnectionError::ConnectTimeout { .. }
                | ConnectionError::Send { .. }
                | ConnectionError::Receive { .. }
                | ConnectionError::RequestTimeout { .. }
                | ConnectionError::CheckCorrelationId { .. }
                | ConnectionError::ReceiveOversizedResponse { .. }
        )
    }

    /// The error Kafka returned, with its code and message, when this is one.
    pub fn kafka_error(&self) -> Option<&KafkaError> {
        match self {
            ConnectionError::ApiVersions { error, .. }
            | ConnectionError::SaslHandshake { error, .. }
            | ConnectionError::SaslAuthenticate { error, .. } => Some(error),
            _ => None,
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An authenticated connection to one broker. Not shared: requests go one at a time, so a
/// response always answers the request just sent.
pub struct Connection {
    broker: String,
    stream: Box<dyn Stream>,
    next_correlation_id: i32,
    /// The broker's supported version range per API key, from ApiVersions.
    versions: HashMap<i16, (i16, i16)>,
    client_id: StrBytes,
    request_timeout: Duration,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("broker", &self.broker)
            .field("next_correlation_id", &self.next_correlation_id)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects, negotiates versions and authenticates, all within `connect_timeout`.
    pub async fn open(
        broker: &Broker,
        settings: &ConnectSettings,
    ) -> Result<Connection, ConnectionError> {
        let name = broker.to_string();
        tokio::time::timeout(
            settings.connect_timeout,
            Connection::open_unbounded(broker, settings),
        )
        .await
        .map_err(|_| ConnectionError::ConnectTimeout {
            broker: name,
            after: settings.connect_timeout,
        })?
    }

    async fn open_unbounded(
        broker: &Broker,
        settings: &ConnectSettings,
    ) -> Result<Connection, ConnectionError> {
        let name = broker.to_string();
        let tcp = TcpStream::connect((broker.host.as_str(), broker.port))
            .await
            .map_err(|source| ConnectionError::Connect {
                broker: name.clone(),
                source,
            })?;
        // Requests are small and answered one at a time: Nagle would only add latency.
        tcp.set_nodelay(true)
            .map_err(|source| ConnectionError::Connect {
                broker: name.clone(),
                source,
            })?;
        let stream: Box<dyn Stream> = match &settings.tls {
            Some(config) => {
                let server_name = tls::server_name(&broker.host)
                    .map_err(|source| ConnectionError::PrepareTls { source })?;
                let tls = TlsConnector::from(config.clone())
                    .connect(server_name, tcp)
                    .await
                    .map_err(|source| ConnectionError::TlsHandshake {
                        broker: name.clone(),
                        source,
                    })?;
                Box::new(tls)
            }
            None => Box::new(tcp),
        };
        let mut connection = Connection {
            broker: name,
            stream,
            next_correlation_id: 0,
            versions: HashMap::new(),
            client_id: StrBytes::from_string(settings.client_id.clone()),
            // The handshake is bounded by the connect deadline as a whole.
            request_timeout: settings.request_timeout.max(settings.connect_timeout),
        };
        connection.negotiate_versions().await?;
        if let Some(sasl) = &settings.sasl {
            connection.authenticate(sasl).await?;
        }
        connection.request_timeout = settings.request_timeout;
        Ok(connection)
    }

    /// The broker this connection talks to, as `host:port`.
    pub fn broker(&self) -> &str {
        &self.broker
    }

    /// The highest version of `R` that both the broker and this client support.
    pub fn version_for<R: ProtocolRequest>(&self) -> Result<i16, ConnectionError> {
        let (broker_min, broker_max) = self
            .versions
            .get(&(R::KEY as i16))
            .copied()
            .unwrap_or((0, -1));
        let max = broker_max.min(R::VERSIONS.max);
        if max < broker_min.max(R::VERSIONS.min) {
            return Err(ConnectionError::NegotiateVersion {
                broker: self.broker.clone(),
                api: R::KEY,
                broker_min,
                broker_max,
                ours_min: R::VERSIONS.min,
                ours_max: R::VERSIONS.max,
            });
        }
        Ok(max)
    }

    /// Sends `request` at the highest common version and returns the response.
    pub async fn send<R: ProtocolRequest>(
        &mut self,
        request: &R,
    ) -> Result<R::Response, ConnectionError> {
        let version = self.version_for::<R>()?;
        let body = self.exchange(request, version).await?;
        self.decode::<R::Response>(R::KEY, body, version)
    }

    fn decode<M: Decodable>(
        &self,
        api: ApiKey,
        mut body: Bytes,
        version: i16,
    ) -> Result<M, ConnectionError> {
        M::decode(&mut body, version).map_err(|e| ConnectionError::Decode {
            broker: self.broker.clone(),
            api,
            version,
            detail: e.to_string(),
        })
    }

    /// One framed round trip; returns the response body after its header.
    async fn exchange<R: ProtocolRequest>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<Bytes, ConnectionError> {
        let api = R::KEY;
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let frame = encode_frame(&header, R::header_version(version), request, version).map_err(
            |detail| ConnectionError::Encode {
                api,
                version,
                detail,
            },
        )?;
        let broker = self.broker.clone();
        let after = self.request_timeout;
        let response = tokio::time::timeout(after, self.round_trip(&frame, api))
            .await
            .map_err(|_| ConnectionError::RequestTimeout {
                broker: broker.clone(),
                api,
                after,
            })??;
        let (got, body) =
            split_response(response, R::Response::header_version(version)).map_err(|detail| {
                ConnectionError::Decode {
                    broker: broker.clone(),
                    api,
                    version,
                    detail,
                }
            })?;
        if got != correlation_id {
            return Err(ConnectionError::CheckCorrelationId {
                broker,
                expected: correlation_id,
                got,
            });
        }
        Ok(body)
    }

    async fn round_trip(&mut self, frame: &[u8], api: ApiKey) -> Result<Bytes, ConnectionError> {
        let send = |source| ConnectionError::Send {
            broker: self.broker.clone(),
            api,
            source,
        };
        self.stream.write_all(frame).await.map_err(send)?;
        self.stream.flush().await.map_err(send)?;
        let receive = |source| ConnectionError::Receive {
            broker: self.broker.clone(),
            api,
            source,
        };
        let size = self.stream.read_u32().await.map_err(receive)? as usize;
        if size > MAX_RESPONSE_BYTES {
            return Err(ConnectionError::ReceiveOversizedResponse {
                broker: self.broker.clone(),
                api,
                size,
            });
        }
        let mut body = vec![0u8; size];
        self.stream.read_exact(&mut body).await.map_err(receive)?;
        Ok(Bytes::from(body))
    }

    /// ApiVersions: learns which versions of each request the broker accepts. A broker that does
    /// not know our ApiVersions version answers UNSUPPORTED_VERSION in version 0 form, listing
    /// its own range; we then ask again at the highest version it knows (KIP-511).
    async fn negotiate_versions(&mut self) -> Result<(), ConnectionError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("oxbow"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let key = ApiVersionsRequest::KEY;
        let mut version = ApiVersionsRequest::VERSIONS.max;
        let mut retried = false;
        loop {
            let body = self.exchange(&request, version).await?;
            let response = match self.decode::<ApiVersionsResponse>(key, body.clone(), version) {
                Ok(r) if r.error_code != UNSUPPORTED_VERSION => r,
                // A refused version is answered in version 0 form: the broker cannot know ours.
                at_version => {
                    let v0 = match self.decode::<ApiVersionsResponse>(key, body, 0) {
                        Ok(v0) if v0.error_code == UNSUPPORTED_VERSION => v0,
                        _ => at_version?,
                    };
                    let theirs = v0
                        .api_keys
                        .iter()
                        .find(|k| k.api_key == key as i16)
                        .map(|k| k.max_version);
                    match theirs {
                        Some(max) if !retried && (0..version).contains(&max) => {
                            version = max;
                            retried = true;
                            continue;
                        }
                        _ => v0,
                    }
                }
            };
            if let Some(error) = KafkaError::from_code(response.error_code, None) {
                return Err(ConnectionError::ApiVersions {
                    broker: self.broker.clone(),
                    error,
                });
            }
            self.versions = response
                .api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect();
            return Ok(());
        }
    }

    /// SaslHandshake (v1: tokens travel in SaslAuthenticate, where Kafka can answer with an
    /// error code and message) then the mechanism's exchange.
    async fn authenticate(&mut self, sasl: &SaslCredentials) -> Result<(), ConnectionError> {
        let mechanism = sasl.mechanism.to_string();
        let scram = ScramMechanism::from_name(&mechanism);
        if scram.is_none() && mechanism != "PLAIN" {
            return Err(ConnectionError::ChooseSaslMechanism { mechanism });
        }
        // Version 0 sends raw tokens without Kafka framing: every broker since 1.0 offers 1.
        if self.version_for::<SaslHandshakeRequest>()? < 1 {
            let (broker_min, broker_max) = self
                .versions
                .get(&(ApiKey::SaslHandshake as i16))
                .copied()
                .unwrap_or((0, -1));
            return Err(ConnectionError::NegotiateVersion {
                broker: self.broker.clone(),
                api: ApiKey::SaslHandshake,
                broker_min,
                broker_max,
                ours_min: 1,
                ours_max: SaslHandshakeRequest::VERSIONS.max,
            });
        }
        let handshake = self
            .send(
                &SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_string(mechanism.clone())),
            )
            .await?;
        if let Some(error) = KafkaError::from_code(handshake.error_code, None) {
            return Err(ConnectionError::SaslHandshake {
                broker: self.broker.clone(),
                mechanism,
                error,
                enabled: handshake.mechanisms.iter().map(|m| m.to_string()).collect(),
            });
        }
        match scram {
            None => {
                // PLAIN (RFC 4616): empty authorisation identity, user, password.
                let token = format!("\0{}\0{}", sasl.username, sasl.password).into_bytes();
                self.sasl_round(sasl, token).await?;
            }
            Some(m) => {
                let broker = self.broker.clone();
                let scram_error = |source| ConnectionError::Scram {
                    broker: broker.clone(),
                    mechanism: mechanism.clone(),
                    source,
                };
                let client =
                    ScramClient::new(m, &sasl.username, &sasl.password).map_err(scram_error)?;
                let server_first = self
                    .sasl_round(sasl, client.client_first().into_bytes())
                    .await?;
                let (client_final, check) = client
                    .client_final(&String::from_utf8_lossy(&server_first))
                    .map_err(scram_error)?;
                let server_final = self.sasl_round(sasl, client_final.into_bytes()).await?;
                check
                    .verify(&String::from_utf8_lossy(&server_final))
                    .map_err(scram_error)?;
            }
        }
        Ok(())
    }

    async fn sasl_round(
        &mut self,
        sasl: &SaslCredentials,
        token: Vec<u8>,
    ) -> Result<Bytes, ConnectionError> {
        let response = self
            .send(&SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)))
            .await?;
        if let Some(error) = KafkaError::from_code(response.error_code, response.error_message) {
            return Err(ConnectionError::SaslAuthenticate {
                broker: self.broker.clone(),
                mechanism: sasl.mechanism.to_string(),
                username: sasl.username.clone(),
                error,
            });
        }
        Ok(response.auth_bytes)
    }
}

/// `length | header | body`, the length counting header and body.
fn encode_frame<R: Encodable>(
    header: &RequestHeader,
    header_version: i16,
    request: &R,
    version: i16,
) -> Result<BytesMut, String> {
    let mut frame = BytesMut::new();
    frame.put_u32(0); // patched below, once the size is known
    header
        .encode(&mut frame, header_version)
        .map_err(|e| e.to_string())?;
    request
        .encode(&mut frame, version)
        .map_err(|e| e.to_string())?;
    let size = u32::try_from(frame.len() - 4)
        .map_err(|_| "the request is larger than 4 GiB".to_string())?;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    Ok(frame)
}

/// Splits a response frame (without its length) into correlation id and body.
fn split_response(mut frame: Bytes, header_version: i16) -> Result<(i32, Bytes), String> {
    if frame.remaining() < 4 {
        return Err(format!(
            "a {}-byte response has no room for a header",
            frame.remaining()
        ));
    }
    let header = ResponseHeader::decode(&mut frame, header_version).map_err(|e| e.to_string())?;
    Ok((header.correlation_id, frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_servers_parse_in_order() {
        let brokers = parse_bootstrap_servers("a:9092, SSL://b.example:9093,[::1]:9094").unwrap();
        let shown: Vec<String> = brokers.iter().map(|b| b.to_string()).collect();
        assert_eq!(shown, ["a:9092", "b.example:9093", "[::1]:9094"]);
        assert_eq!(brokers[2].host, "::1");
    }

    #[test]
    fn bootstrap_servers_without_port_are_refused() {
        for bad in ["", "kafka", "kafka:port", ":9092", " , "] {
            let err = parse_bootstrap_servers(bad).unwrap_err();
            assert_eq!(err.reason(), "ParseBootstrapServers", "{bad:?}");
        }
    }

    #[test]
    fn frames_carry_their_length_and_header() {
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::ApiVersions as i16)
            .with_request_api_version(0)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("c")));
        let frame = encode_frame(&header, 1, &ApiVersionsRequest::default(), 0).unwrap();
        let length = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(length, frame.len() - 4);
        // key 18, version 0, correlation id 7, client id "c" (int16 length 1).
        assert_eq!(&frame[4..], &[0, 18, 0, 0, 0, 0, 0, 7, 0, 1, b'c']);
    }
}
