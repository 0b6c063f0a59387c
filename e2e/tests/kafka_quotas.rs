//! Tests of oxbow-runtime's Kafka protocol client against the testbed's real Kafka (the `KAFKA_*`
//! variables exported by `testbed up`): user quotas set, read back and removed over SASL_SSL
//! with SCRAM-SHA-512 as the admin super user, read over PLAINTEXT, a wrong SCRAM password
//! refused with Kafka's authentication error, and an mTLS client certificate that authenticates
//! but is not authorised for quotas. May touch: quotas of users named `e2e-quota-*` (removed
//! again), temporary files.

use std::{
    collections::BTreeMap,
    future::Future,
    path::PathBuf,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use e2e::{env::TestEnv, pki};
use oxbow_runtime::kafka::{
    KafkaConnection, SecurityProtocol,
    protocol::{ConnectionError, KafkaProtocolClient, QuotaError, ResponseError, UserQuotas},
};

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

fn scram(env: &TestEnv, user: &str, password: &str) -> KafkaConnection {
    env.scram_connection(user, password)
}

fn scram_admin(env: &TestEnv) -> KafkaProtocolClient {
    KafkaProtocolClient::new(&scram(
        env,
        &env.kafka_admin_user,
        &env.kafka_admin_password,
    ))
    .unwrap()
}

fn plaintext(env: &TestEnv) -> KafkaProtocolClient {
    KafkaProtocolClient::new(&KafkaConnection {
        bootstrap_servers: env.kafka_bootstrap.clone(),
        security_protocol: SecurityProtocol::Plaintext,
        ca_file: None,
        client_cert: None,
        sasl: None,
    })
    .unwrap()
}

fn quotas(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Runs `call` under the test deadline: a hang fails the test instead of blocking it.
async fn within<T>(what: &str, call: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, call)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {DEADLINE:?}"))
}

/// Describes `user`'s quotas until they equal `want` or the deadline passes. Brokers serve
/// DescribeClientQuotas from their copy of the metadata log, which may trail the controller that
/// applied AlterClientQuotas by a moment.
async fn wait_for_quotas(
    client: &KafkaProtocolClient,
    user: &str,
    want: Option<BTreeMap<String, f64>>,
) {
    let start = Instant::now();
    loop {
        let all = within(
            "DescribeClientQuotas",
            client.describe_user_quotas(Some(user)),
        )
        .await
        .expect("describing quotas");
        let seen = all.get(user).cloned();
        if seen == want {
            // Exactly one entity asked for, at most one returned.
            assert!(all.len() <= 1, "asked for {user} only, got {all:?}");
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "quotas of {user}: {seen:?}, wanted {want:?} within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn alter_ok(client: &KafkaProtocolClient, user: &str, ops: &[(&str, Option<f64>)]) {
    let change = (
        user.to_string(),
        ops.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    );
    let results = within("AlterClientQuotas", client.alter_user_quotas(vec![change]))
        .await
        .expect("altering quotas");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].0, user);
    if let Err(e) = &results[0].1 {
        panic!("altering quotas of {user}: {e}");
    }
}

#[tokio::test]
async fn scram_admin_sets_reads_back_and_removes_user_quotas() {
    let env = env();
    let client = scram_admin(&env);
    let user = unique("e2e-quota-scram");
    let other = unique("e2e-quota-scram-other");

    // Two users in one batch: both succeed, results in the order given.
    let batch = vec![
        (
            user.clone(),
            vec![
                ("producer_byte_rate".to_string(), Some(1_048_576.0)),
                ("consumer_byte_rate".to_string(), Some(2_097_152.0)),
                ("request_percentage".to_string(), Some(55.5)),
            ],
        ),
        (
            other.clone(),
            vec![("controller_mutation_rate".to_string(), Some(10.0))],
        ),
    ];
    let results = within("AlterClientQuotas", client.alter_user_quotas(batch))
        .await
        .unwrap();
    let users: Vec<&str> = results.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(users, [user.as_str(), other.as_str()]);
    for (u, outcome) in &results {
        assert!(outcome.is_ok(), "{u}: {outcome:?}");
    }
    let three = quotas(&[
        ("producer_byte_rate", 1_048_576.0),
        ("consumer_byte_rate", 2_097_152.0),
        ("request_percentage", 55.5),
    ]);
    wait_for_quotas(&client, &user, Some(three.clone())).await;
    wait_for_quotas(
        &client,
        &other,
        Some(quotas(&[("controller_mutation_rate", 10.0)])),
    )
    .await;

    // Describing every user finds both, with the same values.
    let all: UserQuotas = within("DescribeClientQuotas", client.describe_user_quotas(None))
        .await
        .unwrap();
    assert_eq!(all.get(&user), Some(&three));
    assert_eq!(
        all.get(&other),
        Some(&quotas(&[("controller_mutation_rate", 10.0)]))
    );

    // Removing one quota leaves the other two.
    alter_ok(&client, &user, &[("consumer_byte_rate", None)]).await;
    let two = quotas(&[
        ("producer_byte_rate", 1_048_576.0),
        ("request_percentage", 55.5),
    ]);
    wait_for_quotas(&client, &user, Some(two)).await;

    // Removing the rest leaves no entry at all.
    alter_ok(
        &client,
        &user,
        &[("producer_byte_rate", None), ("request_percentage", None)],
    )
    .await;
    alter_ok(&client, &other, &[("controller_mutation_rate", None)]).await;
    wait_for_quotas(&client, &user, None).await;
    wait_for_quotas(&client, &other, None).await;
}

#[tokio::test]
async fn an_unknown_quota_key_fails_only_its_own_user() {
    let env = env();
    let client = scram_admin(&env);
    let good = unique("e2e-quota-good");
    let bad = unique("e2e-quota-bad");
    let batch = vec![
        (
            good.clone(),
            vec![("producer_byte_rate".to_string(), Some(4096.0))],
        ),
        (bad.clone(), vec![("no_such_quota".to_string(), Some(1.0))]),
    ];
    let results = within("AlterClientQuotas", client.alter_user_quotas(batch))
        .await
        .unwrap();
    assert_eq!(results[0].0, good);
    assert!(results[0].1.is_ok(), "{:?}", results[0].1);
    assert_eq!(results[1].0, bad);
    let err = results[1]
        .1
        .as_ref()
        .expect_err("an unknown key must be refused");
    assert_eq!(err.reason(), "AlterClientQuotas");
    let kafka = err.kafka_error().expect("Kafka's error");
    assert_eq!(kafka.error(), ResponseError::InvalidRequest, "{err}");
    assert!(
        kafka
            .message
            .as_deref()
            .unwrap_or("")
            .contains("no_such_quota"),
        "{err}"
    );
    alter_ok(&client, &good, &[("producer_byte_rate", None)]).await;
    wait_for_quotas(&client, &good, None).await;
}

#[tokio::test]
async fn plaintext_listener_describes_quotas() {
    let env = env();
    let admin = scram_admin(&env);
    let user = unique("e2e-quota-plain");
    alter_ok(&admin, &user, &[("consumer_byte_rate", Some(123_456.0))]).await;
    // Read through the PLAINTEXT listener, a different connection without TLS or SASL.
    wait_for_quotas(
        &plaintext(&env),
        &user,
        Some(quotas(&[("consumer_byte_rate", 123_456.0)])),
    )
    .await;
    alter_ok(&admin, &user, &[("consumer_byte_rate", None)]).await;
    wait_for_quotas(&plaintext(&env), &user, None).await;
}

#[tokio::test]
async fn a_wrong_scram_password_is_refused_with_an_authentication_error() {
    let env = env();
    let wrong = "definitely-not-the-admin-password";
    let client = KafkaProtocolClient::new(&scram(&env, &env.kafka_admin_user, wrong)).unwrap();
    let err = within("a refused login", client.describe_user_quotas(None))
        .await
        .expect_err("a wrong password must be refused");
    let QuotaError::SendRequest { source, .. } = &err else {
        panic!("expected a connection error, got {err}");
    };
    assert!(
        matches!(**source, ConnectionError::SaslAuthenticate { .. }),
        "expected SaslAuthenticate, got {source}"
    );
    assert!(source.is_authentication());
    assert_eq!(err.reason(), "SaslAuthenticate");
    let kafka = err.kafka_error().expect("Kafka's error");
    assert_eq!(
        kafka.error(),
        ResponseError::SaslAuthenticationFailed,
        "{err}"
    );
    assert!(kafka.message.is_some(), "Kafka's message is kept: {err}");
    // Neither the message nor Debug output shows the password.
    assert!(!err.to_string().contains(wrong) && !format!("{err:?}").contains(wrong));
}

struct ClientFiles {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

fn client_certificate(env: &TestEnv, common_name: &str) -> ClientFiles {
    let ca = env.clients_ca().expect("clients CA");
    let leaf = ca
        .client_cert(common_name, None)
        .expect("signing a client certificate");
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("client.crt");
    let key = dir.path().join("client.key");
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    pki::write_private(&key, &leaf.key_pem).unwrap();
    ClientFiles {
        _dir: dir,
        cert,
        key,
    }
}

#[tokio::test]
async fn mtls_certificate_authenticates_but_is_not_authorised_for_quotas() {
    let env = env();
    let cn = unique("e2e-quota-mtls");
    let files = client_certificate(&env, &cn);
    let client = KafkaProtocolClient::new(&KafkaConnection {
        bootstrap_servers: env.kafka_tls_bootstrap.clone(),
        security_protocol: SecurityProtocol::Ssl,
        ca_file: Some(env.kafka_ca_file.clone()),
        client_cert: Some((files.cert.clone(), files.key.clone())),
        sasl: None,
    })
    .unwrap();

    // The TLS handshake (broker verified by CA and IP SAN, our certificate accepted) and
    // ApiVersions succeed; the broker's authorizer then refuses `User:CN=<cn>`, which is no super
    // user and holds no ACLs: Kafka's answer, not a connection failure.
    let err = within("DescribeClientQuotas", client.describe_user_quotas(None))
        .await
        .expect_err("an unprivileged principal must be refused");
    assert!(
        matches!(err, QuotaError::DescribeClientQuotas { .. }),
        "{err}"
    );
    assert_eq!(
        err.kafka_error().map(|e| e.error()),
        Some(ResponseError::ClusterAuthorizationFailed),
        "{err}"
    );

    // AlterClientQuotas reports the refusal per entity, on the same (still usable) connection.
    let user = unique("e2e-quota-mtls-target");
    let change = (
        user.clone(),
        vec![("producer_byte_rate".to_string(), Some(1.0))],
    );
    let results = within("AlterClientQuotas", client.alter_user_quotas(vec![change]))
        .await
        .unwrap();
    assert_eq!(results.len(), 1);
    let err = results[0]
        .1
        .as_ref()
        .expect_err("an unprivileged principal must be refused");
    assert_eq!(
        err.kafka_error().map(|e| e.error()),
        Some(ResponseError::ClusterAuthorizationFailed),
        "{err}"
    );
    // Nothing was set.
    wait_for_quotas(&scram_admin(&env), &user, None).await;
}

#[tokio::test]
async fn mtls_broker_certificate_from_another_ca_is_refused() {
    let env = env();
    let files = client_certificate(&env, &unique("e2e-quota-mtls-ca"));
    // Trusting only the clients CA, which did not sign the brokers' certificates.
    let client = KafkaProtocolClient::new(&KafkaConnection {
        bootstrap_servers: env.kafka_tls_bootstrap.clone(),
        security_protocol: SecurityProtocol::Ssl,
        ca_file: Some(env.kafka_clients_ca_cert_file.clone()),
        client_cert: Some((files.cert.clone(), files.key.clone())),
        sasl: None,
    })
    .unwrap();
    let err = within("a refused TLS handshake", client.describe_user_quotas(None))
        .await
        .expect_err("an untrusted broker must be refused");
    assert_eq!(err.reason(), "TlsHandshake", "{err}");
}

#[tokio::test]
async fn a_mechanism_the_listener_does_not_enable_is_refused_at_the_handshake() {
    let env = env();
    let mut settings = scram(&env, &env.kafka_admin_user, &env.kafka_admin_password);
    settings.sasl.as_mut().unwrap().mechanism = "PLAIN";
    let client = KafkaProtocolClient::new(&settings).unwrap();
    let err = within("a refused handshake", client.describe_user_quotas(None))
        .await
        .expect_err("PLAIN is not enabled on the SCRAM listener");
    let QuotaError::SendRequest { source, .. } = &err else {
        panic!("expected a connection error, got {err}");
    };
    match &**source {
        ConnectionError::SaslHandshake { error, enabled, .. } => {
            assert_eq!(
                error.error(),
                ResponseError::UnsupportedSaslMechanism,
                "{err}"
            );
            assert_eq!(enabled, &["SCRAM-SHA-512".to_string()]);
        }
        other => panic!("expected a SaslHandshake error, got {other}"),
    }
}
