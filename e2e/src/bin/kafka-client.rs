//! `kafka-client`: a small Kafka producer and consumer that full-stack tests run inside the
//! testbed's client network namespace (`ip netns exec oxbow-client kafka-client ...`), where the
//! cluster's pod and Service names resolve. Prints one JSON line with what happened.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use rdkafka::{
    ClientConfig, Message,
    consumer::{BaseConsumer, Consumer},
    producer::{FutureProducer, FutureRecord, Producer},
};
use serde_json::json;

#[derive(Parser)]
#[command(about = "Produce to or consume from a Kafka cluster and report as JSON")]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Args)]
struct Connection {
    /// Bootstrap servers.
    #[arg(long)]
    bootstrap: String,
    /// PLAINTEXT, SSL or SASL_SSL.
    #[arg(long, default_value = "PLAINTEXT")]
    security_protocol: String,
    /// CA certificate (PEM) that signed the brokers' certificates.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Client certificate (PEM), for mutual TLS.
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Client key (PEM), for mutual TLS.
    #[arg(long)]
    key: Option<PathBuf>,
    /// SCRAM-SHA-512 user name.
    #[arg(long)]
    user: Option<String>,
    /// SCRAM-SHA-512 password (read from this file, never from the command line).
    #[arg(long)]
    password_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send messages with acks=all; counts successes and failures.
    Produce {
        #[arg(long)]
        topic: String,
        /// Messages to send (ignored with --until-file).
        #[arg(long, default_value_t = 10)]
        count: u64,
        /// Keep sending (one message every --interval-ms) until this file exists.
        #[arg(long)]
        until_file: Option<PathBuf>,
        #[arg(long, default_value_t = 20)]
        interval_ms: u64,
        /// Per-message delivery timeout.
        #[arg(long, default_value_t = 120)]
        timeout_secs: u64,
        /// Write librdkafka's log lines (with the time since start) to this file.
        #[arg(long)]
        log_file: Option<PathBuf>,
        /// librdkafka debug contexts to log (for example `eos,broker,topic`).
        #[arg(long)]
        debug: Option<String>,
    },
    /// Create a topic through the admin API.
    CreateTopic {
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        #[arg(long, default_value_t = 1)]
        replication_factor: i32,
    },
    /// Print every topic's partitions with their replicas and in-sync replicas.
    Metadata,
    /// Print the KRaft quorum (active controller, voters, observers) and every broker
    /// registration, fenced ones included (Kafka protocol, as the cluster operator asks).
    Quorum,
    /// Read messages from the beginning of a topic until --count arrived or --timeout-secs passed.
    Consume {
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 10)]
        count: u64,
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
        /// Consumer group (default: a fresh one per run).
        #[arg(long)]
        group: Option<String>,
    },
}

fn config(c: &Connection) -> Result<ClientConfig> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &c.bootstrap)
        .set("security.protocol", &c.security_protocol);
    if let Some(ca) = &c.ca {
        cfg.set("ssl.ca.location", ca.display().to_string());
    }
    if let (Some(cert), Some(key)) = (&c.cert, &c.key) {
        cfg.set("ssl.certificate.location", cert.display().to_string())
            .set("ssl.key.location", key.display().to_string());
    }
    if let Some(user) = &c.user {
        let file = c
            .password_file
            .as_ref()
            .context("--user needs --password-file")?;
        let password =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        cfg.set("sasl.mechanism", "SCRAM-SHA-512")
            .set("sasl.username", user)
            .set("sasl.password", password.trim());
    }
    Ok(cfg)
}

/// librdkafka's log and error callbacks, written to a file (never to a pipe nobody reads while
/// the producer runs) with the seconds since start.
struct FileLog {
    file: Option<std::sync::Mutex<std::fs::File>>,
    start: Instant,
}

impl FileLog {
    fn line(&self, level: &str, facility: &str, message: &str) {
        use std::io::Write;
        if let Some(file) = &self.file
            && let Ok(mut f) = file.lock()
        {
            let _ = writeln!(
                f,
                "{:9.3} {level} {facility} {message}",
                self.start.elapsed().as_secs_f64()
            );
        }
    }
}

impl rdkafka::ClientContext for FileLog {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.line(&format!("{level:?}"), fac, log_message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.line("ERROR", "error", &format!("{error}: {reason}"));
    }
}

/// The same connection for the Kafka protocol client (TLS, with or without a certificate).
fn protocol_connection(c: &Connection) -> Result<oxbow_runtime::kafka::KafkaConnection> {
    use oxbow_runtime::kafka::{KafkaConnection, SecurityProtocol};
    let security_protocol = match c.security_protocol.as_str() {
        "PLAINTEXT" => SecurityProtocol::Plaintext,
        "SSL" => SecurityProtocol::Ssl,
        other => bail!("quorum speaks PLAINTEXT or SSL, not {other}"),
    };
    Ok(KafkaConnection {
        bootstrap_servers: c.bootstrap.clone(),
        security_protocol,
        ca_file: c.ca.clone(),
        client_cert: c.cert.clone().zip(c.key.clone()),
        sasl: None,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let base = config(&cli.connection)?;
    match cli.command {
        Cmd::Produce {
            topic,
            count,
            until_file,
            interval_ms,
            timeout_secs,
            log_file,
            debug,
        } => {
            let mut cfg = base.clone();
            cfg.set("acks", "all")
                .set("enable.idempotence", "true")
                .set("message.timeout.ms", (timeout_secs * 1000).to_string());
            if let Some(debug) = &debug {
                // rust-rdkafka sets the level from the `log` crate's, which has no logger here.
                cfg.set("debug", debug)
                    .set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
            } else if log_file.is_some() {
                cfg.set_log_level(rdkafka::config::RDKafkaLogLevel::Info);
            }
            let log = match &log_file {
                Some(path) => Some(std::sync::Mutex::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?,
                )),
                None => None,
            };
            let producer: FutureProducer<FileLog> = cfg.create_with_context(FileLog {
                file: log,
                start: Instant::now(),
            })?;
            let started = Instant::now();
            let mut pending = Vec::new();
            let mut n = 0u64;
            loop {
                let done = match &until_file {
                    Some(f) => f.exists(),
                    None => n >= count,
                };
                if done {
                    break;
                }
                let payload = format!("message-{n}");
                let key = n.to_string();
                let p = producer.clone();
                let t = topic.clone();
                pending.push(tokio::spawn(async move {
                    p.send(
                        FutureRecord::to(&t).payload(&payload).key(&key),
                        Duration::from_secs(timeout_secs),
                    )
                    .await
                    .map(|_| ())
                    .map_err(|(e, _)| e.to_string())
                }));
                n += 1;
                if until_file.is_some() {
                    tokio::time::sleep(Duration::from_millis(interval_ms)).await;
                }
            }
            let mut failed = 0u64;
            let mut errors = Vec::new();
            for p in pending {
                if let Err(e) = p.await? {
                    failed += 1;
                    if errors.len() < 10 {
                        errors.push(e);
                    }
                }
            }
            // An idempotent producer refused its producer id fails fatally and purges its
            // queue: the fatal error is the reason worth reporting.
            if let Some((code, reason)) = producer.client().fatal_error() {
                errors.insert(0, format!("fatal: {code:?}: {reason}"));
            }
            println!(
                "{}",
                json!({"sent": n, "acked": n - failed, "failed": failed, "errors": errors,
                       "seconds": started.elapsed().as_secs_f64()})
            );
        }
        Cmd::CreateTopic {
            topic,
            partitions,
            replication_factor,
        } => {
            use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
            let admin: AdminClient<rdkafka::client::DefaultClientContext> = base.create()?;
            let new = NewTopic::new(
                &topic,
                partitions,
                TopicReplication::Fixed(replication_factor),
            );
            let results = admin
                .create_topics(
                    [&new],
                    &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
                )
                .await?;
            let outcome: Vec<String> = results
                .into_iter()
                .map(|r| match r {
                    Ok(t) => format!("created {t}"),
                    Err((t, e)) => format!("{t}: {e}"),
                })
                .collect();
            println!("{}", json!({"results": outcome}));
        }
        Cmd::Metadata => {
            let consumer: BaseConsumer = base.create()?;
            let md = consumer.fetch_metadata(None, Duration::from_secs(30))?;
            let topics: serde_json::Map<String, serde_json::Value> = md
                .topics()
                .iter()
                .map(|t| {
                    let partitions: Vec<serde_json::Value> = t
                        .partitions()
                        .iter()
                        .map(|p| json!({"id": p.id(), "leader": p.leader(), "replicas": p.replicas(), "isr": p.isr()}))
                        .collect();
                    (t.name().to_owned(), json!(partitions))
                })
                .collect();
            let brokers: Vec<i32> = md.brokers().iter().map(|b| b.id()).collect();
            println!("{}", json!({"brokers": brokers, "topics": topics}));
        }
        Cmd::Quorum => {
            let admin = oxbow_runtime::kafka::protocol::KafkaProtocolClient::new(
                &protocol_connection(&cli.connection)?,
            )?;
            let quorum = admin.describe_quorum().await?;
            let registered: Vec<serde_json::Value> = admin
                .registered_brokers()
                .await?
                .iter()
                .map(|b| json!({"id": b.id, "fenced": b.fenced}))
                .collect();
            println!(
                "{}",
                json!({
                    "leader": quorum.leader_id,
                    "voters": quorum.voters,
                    "observers": quorum.observers,
                    "registered": registered,
                })
            );
        }
        Cmd::Consume {
            topic,
            count,
            timeout_secs,
            group,
        } => {
            let consumer: BaseConsumer = base
                .clone()
                .set(
                    "group.id",
                    group.unwrap_or_else(|| format!("kafka-client-{}", std::process::id())),
                )
                .set("auto.offset.reset", "earliest")
                .set("enable.auto.commit", "false")
                .create()?;
            consumer.subscribe(&[&topic])?;
            let deadline = Instant::now() + Duration::from_secs(timeout_secs);
            let mut received = 0u64;
            let mut last_error = None;
            while received < count && Instant::now() < deadline {
                match consumer.poll(Duration::from_millis(500)) {
                    Some(Ok(m)) if m.payload().is_some() => received += 1,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => last_error = Some(e.to_string()),
                    None => {}
                }
            }
            println!("{}", json!({"received": received, "lastError": last_error}));
            if received < count {
                bail!("received {received} of {count} messages");
            }
        }
    }
    Ok(())
}
