//! Tests of the testbed's Kafka, run against a running testbed (the `KAFKA_*` variables exported
//! by `testbed up`): topic administration over SASL_SSL/SCRAM as the admin super user, refused
//! SCRAM logins, and an mTLS listener that admits exactly the clients CA's certificates.
//! May touch: the testbed's Kafka (topics named `e2e-kafka-*`, deleted again), temporary files.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail};
use e2e::{env::TestEnv, pki};
use rdkafka::{
    ClientConfig, ClientContext,
    admin::{
        AdminClient, AdminOptions, ConfigSource, NewTopic, ResourceSpecifier, TopicReplication,
    },
    client::DefaultClientContext,
    consumer::{BaseConsumer, Consumer},
    error::{KafkaError, RDKafkaErrorCode},
    metadata::Metadata,
    producer::{BaseProducer, DeliveryResult, Producer, ProducerContext},
    types::RDKafkaRespErr,
};
use rstest::rstest;

/// Long enough for a broker on a busy two-core machine, short enough that a hang fails the test.
const DEADLINE: Duration = Duration::from_secs(30);

fn env() -> TestEnv {
    TestEnv::from_env().expect("testbed exports")
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn metadata(config: &ClientConfig, topic: Option<&str>, timeout: Duration) -> Result<Metadata> {
    let consumer: BaseConsumer = config.create().context("creating an rdkafka client")?;
    consumer
        .fetch_metadata(topic, timeout)
        .context("fetching metadata")
}

/// The partition count of `topic`, or `None` while the cluster does not know it.
fn partition_count(config: &ClientConfig, topic: &str) -> Result<Option<usize>> {
    let md = metadata(config, Some(topic), Duration::from_secs(5))?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .context("topic missing from metadata")?;
    match t.error() {
        None => Ok(Some(t.partitions().len())),
        Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) => Ok(None),
        Some(e) => bail!("metadata for {topic}: {e:?}"),
    }
}

/// Polls `partition_count` on a blocking thread until `want` holds or the deadline passes.
async fn wait_partitions(config: &ClientConfig, topic: &str, want: Option<usize>) -> Result<()> {
    let start = Instant::now();
    loop {
        let (c, t) = (config.clone(), topic.to_string());
        let seen = tokio::task::spawn_blocking(move || partition_count(&c, &t)).await??;
        if seen == want {
            return Ok(());
        }
        if start.elapsed() > DEADLINE {
            bail!("{topic}: partitions {seen:?}, wanted {want:?} within {DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn admin_creates_describes_and_deletes_a_topic_over_scram() {
    let env = env();
    let config = env.kafka_scram_admin();
    let admin: AdminClient<DefaultClientContext> = config.create().unwrap();
    let opts = AdminOptions::new().operation_timeout(Some(DEADLINE));
    let topic = unique("e2e-kafka-admin");

    // -1: the broker's default.replication.factor, so this works on 1- and 3-node testbeds.
    let new = NewTopic::new(&topic, 3, TopicReplication::Fixed(-1)).set("retention.ms", "86400123");
    let created = admin.create_topics([&new], &opts).await.unwrap();
    assert_eq!(created, vec![Ok(topic.clone())]);

    wait_partitions(&config, &topic, Some(3)).await.unwrap();

    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(&topic)], &opts)
        .await
        .unwrap();
    let resource = described[0]
        .as_ref()
        .expect("describe_configs of the new topic");
    let retention = resource
        .get("retention.ms")
        .expect("retention.ms is described");
    assert_eq!(retention.value.as_deref(), Some("86400123"));
    assert_eq!(retention.source, ConfigSource::DynamicTopic);

    let deleted = admin.delete_topics(&[&topic], &opts).await.unwrap();
    assert_eq!(deleted, vec![Ok(topic.clone())]);
    wait_partitions(&config, &topic, None).await.unwrap();
}

/// Records the client-level errors librdkafka reports (they never surface as call results).
#[derive(Clone, Default)]
struct ErrorRecorder(Arc<Mutex<Vec<ClientError>>>);

/// An error's librdkafka code (when it has one) and its full text.
type ClientError = (Option<RDKafkaErrorCode>, String);

impl ClientContext for ErrorRecorder {
    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        self.0
            .lock()
            .unwrap()
            .push((code, format!("{error}: {reason}")));
    }
}

impl ProducerContext for ErrorRecorder {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

/// Tries to fetch metadata until librdkafka reports an error that `refused` recognises (returning
/// its text) or the deadline passes. Fails if metadata is ever served: the connection must be
/// refused, not merely slow.
fn wait_for_refusal(
    config: &ClientConfig,
    refused: impl Fn(Option<RDKafkaErrorCode>, &str) -> bool,
) -> Result<String> {
    let recorder = ErrorRecorder::default();
    let producer: BaseProducer<ErrorRecorder> = config
        .create_with_context(recorder.clone())
        .context("creating an rdkafka client")?;
    let start = Instant::now();
    loop {
        if let Ok(md) = producer
            .client()
            .fetch_metadata(None, Duration::from_millis(500))
        {
            bail!(
                "metadata was served ({} brokers): the connection was not refused",
                md.brokers().len()
            );
        }
        // Serves the error events into the recorder.
        producer.poll(Duration::from_millis(100));
        let errors = recorder.0.lock().unwrap().clone();
        if let Some((_, text)) = errors.iter().find(|(code, text)| refused(*code, text)) {
            return Ok(text.clone());
        }
        if start.elapsed() > DEADLINE {
            bail!("no refusal within {DEADLINE:?}; errors seen: {errors:?}");
        }
    }
}

#[rstest]
#[case::wrong_password_for_admin(None, "not-the-password")]
#[case::unknown_user(Some("e2e-nobody"), "whatever")]
fn scram_login_with_bad_credentials_is_refused(#[case] user: Option<&str>, #[case] password: &str) {
    let env = env();
    let user = user.unwrap_or(&env.kafka_admin_user).to_string();
    assert_ne!(password, env.kafka_admin_password);
    let text = wait_for_refusal(&env.kafka_scram(&user, password), |code, _| {
        code == Some(RDKafkaErrorCode::Authentication)
    })
    .unwrap();
    assert!(text.contains("invalid credentials"), "{text}");
    assert!(text.contains("SCRAM-SHA-512"), "{text}");
}

fn write_client_cert(
    dir: &std::path::Path,
    ca: &pki::Ca,
    cn: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let leaf = ca.client_cert(cn, None).unwrap();
    let cert = dir.join(format!("{cn}.crt"));
    let key = dir.join(format!("{cn}.key"));
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    pki::write_private(&key, &leaf.key_pem).unwrap();
    (cert, key)
}

#[test]
fn mtls_client_signed_by_the_clients_ca_fetches_metadata() {
    let env = env();
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = write_client_cert(tmp.path(), &env.clients_ca().unwrap(), "e2e-mtls-client");
    let md = metadata(&env.kafka_mtls(&cert, &key), None, DEADLINE).unwrap();
    assert!(!md.brokers().is_empty());
    // The brokers answer with the listener we came in on: every one is an mTLS address.
    for b in md.brokers() {
        let addr = format!("{}:{}", b.host(), b.port());
        assert!(
            env.kafka_tls_bootstrap.split(',').any(|a| a == addr),
            "broker {} advertised {addr}, not one of {}",
            b.id(),
            env.kafka_tls_bootstrap
        );
    }
}

#[test]
fn mtls_client_from_another_ca_is_refused() {
    let env = env();
    let tmp = tempfile::tempdir().unwrap();
    let rogue = pki::Ca::new("e2e-rogue-ca").unwrap();
    let (cert, key) = write_client_cert(tmp.path(), &rogue, "e2e-rogue-client");
    // Under TLS 1.3 the client finishes its side of the handshake before the broker has checked
    // the certificate, so the broker's rejection arrives as a TLS alert on the first read: a
    // transport failure naming the alert, not librdkafka's handshake-time SSL error.
    let text = wait_for_refusal(&env.kafka_mtls(&cert, &key), |code, text| {
        matches!(
            code,
            Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::SSL)
        ) && ["bad certificate", "unknown ca", "certificate unknown"]
            .iter()
            .any(|alert| text.contains(alert))
    })
    .unwrap();
    // And it came from the mTLS listener, not from some other connection.
    assert!(
        env.kafka_tls_bootstrap
            .split(',')
            .any(|addr| text.contains(&format!("ssl://{addr}"))),
        "{text}"
    );
}
