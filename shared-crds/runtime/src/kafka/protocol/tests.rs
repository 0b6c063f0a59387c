//! Tests of the protocol client against a scripted fake broker on loopback: version negotiation
//! (including the KIP-511 fallback), framing, correlation ids, the bootstrap order, deadlines and
//! the reconnect-once policy. The fake speaks only version 0 messages, encoded by hand, so these
//! tests do not share encoding code with the client they check. Touches: loopback sockets.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::{Buf, BufMut, BytesMut};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use kafka_protocol::protocol::Message;

use super::*;
use crate::kafka::SecurityProtocol;

const API_VERSIONS: i16 = 18;
const DESCRIBE_CLIENT_QUOTAS: i16 = 48;
const ALTER_CLIENT_QUOTAS: i16 = 49;

/// What the fake does with the next request on a connection.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// ApiVersions answered with UNSUPPORTED_VERSION in v0 form.
    RefuseApiVersions,
    /// ApiVersions answered in v0 form: it knows only version 0 of everything.
    ApiVersions,
    /// DescribeClientQuotas v0 answered with one user, `alice`, producer_byte_rate 1024.
    Describe,
    /// Answered with a correlation id one higher than the request's.
    WrongCorrelationId,
    /// Answered with a length prefix of 2 GiB.
    HugeLength,
    /// The request is read, then the connection closed.
    Close,
}

/// The usual start of a connection: the KIP-511 fallback, then real ApiVersions.
const HANDSHAKE: [Step; 2] = [Step::RefuseApiVersions, Step::ApiVersions];

#[derive(Clone, Default)]
struct Log {
    /// (connection number, api key, api version) of every request received.
    requests: Arc<Mutex<Vec<(usize, i16, i16)>>>,
    connections: Arc<Mutex<usize>>,
}

impl Log {
    fn requests(&self) -> Vec<(usize, i16, i16)> {
        self.requests.lock().unwrap().clone()
    }
    fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }
}

/// Starts a fake broker; connection `i` follows `scripts[i]` and is closed after its last step
/// (connections beyond the scripts are closed at once).
async fn fake_broker(scripts: Vec<Vec<Step>>) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let log = Log::default();
    let task_log = log.clone();
    tokio::spawn(async move {
        let mut scripts = scripts.into_iter();
        let mut number = 0;
        while let Ok((stream, _)) = listener.accept().await {
            *task_log.connections.lock().unwrap() += 1;
            let script = scripts.next().unwrap_or_default();
            tokio::spawn(serve(stream, number, script, task_log.clone()));
            number += 1;
        }
    });
    (address, log)
}

async fn serve(mut stream: TcpStream, number: usize, script: Vec<Step>, log: Log) {
    for step in script {
        let Ok(size) = stream.read_u32().await else {
            return;
        };
        let mut request = vec![0u8; size as usize];
        if stream.read_exact(&mut request).await.is_err() {
            return;
        }
        let mut header = &request[..];
        let (key, version, correlation_id) = (header.get_i16(), header.get_i16(), header.get_i32());
        log.requests.lock().unwrap().push((number, key, version));
        let mut body = BytesMut::new();
        let mut answer_to = correlation_id;
        match step {
            Step::RefuseApiVersions => api_versions_v0(&mut body, 35),
            Step::ApiVersions => api_versions_v0(&mut body, 0),
            Step::Describe => describe_v0(&mut body),
            Step::WrongCorrelationId => {
                describe_v0(&mut body);
                answer_to += 1;
            }
            Step::HugeLength => {
                let _ = stream.write_u32(0x8000_0000).await;
                continue;
            }
            Step::Close => return,
        }
        let mut frame = BytesMut::new();
        frame.put_u32(4 + body.len() as u32);
        frame.put_i32(answer_to);
        frame.put_slice(&body);
        if stream.write_all(&frame).await.is_err() {
            return;
        }
    }
}

fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn api_versions_v0(buf: &mut BytesMut, error_code: i16) {
    buf.put_i16(error_code);
    let keys = [API_VERSIONS, DESCRIBE_CLIENT_QUOTAS, ALTER_CLIENT_QUOTAS];
    buf.put_i32(keys.len() as i32);
    for key in keys {
        buf.put_i16(key);
        buf.put_i16(0); // min
        buf.put_i16(0); // max
    }
}

fn describe_v0(buf: &mut BytesMut) {
    buf.put_i32(0); // throttle_time_ms
    buf.put_i16(0); // error_code
    buf.put_i16(-1); // error_message: null
    buf.put_i32(1); // entries
    buf.put_i32(1); // entity
    put_string(buf, "user");
    put_string(buf, "alice");
    buf.put_i32(1); // values
    put_string(buf, "producer_byte_rate");
    buf.put_f64(1024.0);
}

fn client(bootstrap: &str) -> KafkaProtocolClient {
    let settings = KafkaConnection {
        bootstrap_servers: bootstrap.to_string(),
        security_protocol: SecurityProtocol::Plaintext,
        ca_file: None,
        client_cert: None,
        sasl: None,
    };
    KafkaProtocolClient::new(&settings)
        .unwrap()
        .with_timeouts(Duration::from_secs(5), Duration::from_secs(5))
}

fn alice() -> UserQuotas {
    [(
        "alice".to_string(),
        [("producer_byte_rate".to_string(), 1024.0)].into(),
    )]
    .into()
}

#[tokio::test]
async fn versions_are_negotiated_down_to_what_the_broker_knows() {
    let (address, log) = fake_broker(vec![[&HANDSHAKE[..], &[Step::Describe]].concat()]).await;
    let quotas = client(&address).describe_user_quotas(None).await.unwrap();
    assert_eq!(quotas, alice());
    // ApiVersions at our highest version, refused, again at v0; then DescribeClientQuotas v0,
    // the highest the broker announced although the client knows v1.
    let max = kafka_protocol::messages::ApiVersionsRequest::VERSIONS.max;
    assert!(max > 0);
    assert_eq!(
        log.requests(),
        [
            (0, API_VERSIONS, max),
            (0, API_VERSIONS, 0),
            (0, DESCRIBE_CLIENT_QUOTAS, 0)
        ]
    );
}

#[tokio::test]
async fn a_broken_connection_is_replaced_once_and_the_call_succeeds() {
    let first = [&HANDSHAKE[..], &[Step::Describe, Step::Close]].concat();
    let second = [&HANDSHAKE[..], &[Step::Describe]].concat();
    let (address, log) = fake_broker(vec![first, second]).await;
    let client = client(&address);
    assert_eq!(client.describe_user_quotas(None).await.unwrap(), alice());
    // The broker closes the first connection on the next request; the call reconnects.
    assert_eq!(
        client.describe_user_quotas(Some("alice")).await.unwrap(),
        alice()
    );
    assert_eq!(log.connections(), 2);
    let describes: Vec<usize> = log
        .requests()
        .iter()
        .filter(|(_, key, _)| *key == DESCRIBE_CLIENT_QUOTAS)
        .map(|(connection, _, _)| *connection)
        .collect();
    assert_eq!(describes, [0, 0, 1]);
}

#[tokio::test]
async fn a_fresh_connection_that_breaks_is_reported_not_retried() {
    let first = [&HANDSHAKE[..], &[Step::Close]].concat();
    let second = [&HANDSHAKE[..], &[Step::Describe]].concat();
    let (address, log) = fake_broker(vec![first, second]).await;
    let client = client(&address);
    let err = client.describe_user_quotas(None).await.unwrap_err();
    assert_eq!(err.reason(), "ReceiveResponse", "{err}");
    assert_eq!(log.connections(), 1);
    // The next call connects anew.
    assert_eq!(client.describe_user_quotas(None).await.unwrap(), alice());
    assert_eq!(log.connections(), 2);
}

#[tokio::test]
async fn a_response_to_another_request_is_refused() {
    let script = [&HANDSHAKE[..], &[Step::WrongCorrelationId]].concat();
    let (address, _log) = fake_broker(vec![script]).await;
    let err = client(&address)
        .describe_user_quotas(None)
        .await
        .unwrap_err();
    match err {
        QuotaError::SendRequest { source, .. } => match *source {
            ConnectionError::CheckCorrelationId { expected, got, .. } => {
                assert_eq!(got, expected + 1)
            }
            other => panic!("expected a correlation id mismatch, got {other}"),
        },
        other => panic!("expected a correlation id mismatch, got {other}"),
    }
}

#[tokio::test]
async fn an_oversized_response_is_refused_before_allocating() {
    let script = [&HANDSHAKE[..], &[Step::HugeLength]].concat();
    let (address, _log) = fake_broker(vec![script]).await;
    let err = client(&address)
        .describe_user_quotas(None)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "ResponseTooLarge", "{err}");
}

#[tokio::test]
async fn bootstrap_servers_are_tried_in_order() {
    // A port nothing listens on any more: connecting is refused at once.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let (address, log) = fake_broker(vec![[&HANDSHAKE[..], &[Step::Describe]].concat()]).await;
    let quotas = client(&format!("{closed},{address}"))
        .describe_user_quotas(None)
        .await
        .unwrap();
    assert_eq!(quotas, alice());
    assert_eq!(log.connections(), 1);
}

#[tokio::test]
async fn a_silent_broker_fails_the_connect_deadline() {
    // Accepts the connection but never answers ApiVersions.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let held = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        // Keep the socket open until the test ends.
        std::future::pending::<()>().await;
        drop(stream);
    });
    let client = client(&address).with_timeouts(Duration::from_millis(300), Duration::from_secs(5));
    let started = std::time::Instant::now();
    let err = client.describe_user_quotas(None).await.unwrap_err();
    assert_eq!(err.reason(), "ConnectTimeout", "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    held.abort();
}

#[tokio::test]
async fn an_empty_batch_sends_nothing() {
    let (address, log) = fake_broker(vec![]).await;
    let results = client(&address)
        .alter_user_quotas(Vec::new())
        .await
        .unwrap();
    assert!(results.is_empty());
    assert_eq!(log.connections(), 0);
}

#[test]
fn kafka_errors_read_as_kafka_names_them() {
    let e = KafkaError::from_code(58, Some(StrBytes::from_static_str("bad credentials"))).unwrap();
    assert_eq!(
        e.to_string(),
        "SASL_AUTHENTICATION_FAILED (error code 58): bad credentials"
    );
    assert_eq!(e.error(), ResponseError::SaslAuthenticationFailed);
    assert_eq!(KafkaError::from_code(0, None), None);
    assert_eq!(
        KafkaError::from_code(-1, None).unwrap().name(),
        "UNKNOWN_SERVER_ERROR"
    );
    assert_eq!(
        KafkaError::from_code(9999, None).unwrap().to_string(),
        "UNKNOWN_ERROR_CODE_9999 (error code 9999)"
    );
}

#[test]
fn settings_debug_hides_the_sasl_password() {
    let settings = KafkaConnection {
        bootstrap_servers: "127.0.0.1:1".into(),
        security_protocol: SecurityProtocol::SaslPlaintext,
        ca_file: None,
        client_cert: None,
        sasl: Some(crate::kafka::SaslCredentials {
            mechanism: "SCRAM-SHA-512",
            username: "op".into(),
            password: "very-secret-pw".into(),
        }),
    };
    let client = KafkaProtocolClient::new(&settings).unwrap();
    let shown = format!("{client:?}");
    assert!(
        shown.contains("op") && !shown.contains("very-secret-pw"),
        "{shown}"
    );
}

#[tokio::test]
async fn disconnect_makes_the_next_call_connect_anew() {
    let script = [&HANDSHAKE[..], &[Step::Describe]].concat();
    let (address, log) = fake_broker(vec![script.clone(), script]).await;
    let client = client(&address);
    assert_eq!(client.describe_user_quotas(None).await.unwrap(), alice());
    client.disconnect().await;
    assert_eq!(client.describe_user_quotas(None).await.unwrap(), alice());
    assert_eq!(log.connections(), 2);
}
