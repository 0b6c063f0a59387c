//! The testbed's Apache Kafka: resolves the broker's runtime jars from Maven Central once (cached
//! by version), then formats and starts 1 or 3 combined broker+controller KRaft nodes as local JVM
//! processes on loopback, each with PLAINTEXT (set-up), SASL_SSL/SCRAM-SHA-512 and mTLS listeners.
//! May touch: the cache folder, the given state folder, `mvn` and `java` processes, loopback ports.

use std::{
    fmt, fs,
    io::Read,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use rdkafka::{
    ClientConfig,
    consumer::{BaseConsumer, Consumer},
};
use serde::{Deserialize, Serialize};

use crate::{cache::cache_dir, pki, procs, versions};

/// The SCRAM user bootstrapped into the metadata log at format time; a super user.
pub const ADMIN_USER: &str = "admin";

/// How long the nodes get to answer an authenticated metadata request with every broker listed.
/// Measured: about 7 s for one node and 15 s for three on two cores; the margin covers a
/// Kubernetes control plane starting on the same cores.
const READY_DEADLINE: Duration = Duration::from_secs(90);
/// How long `kafka.tools.StorageTool format` may take per node before we give up on it.
const FORMAT_DEADLINE: Duration = Duration::from_secs(60);
/// Grace between SIGTERM and SIGKILL when stopping a node.
const STOP_GRACE: Duration = Duration::from_secs(15);

// Small heaps and a fast-starting JIT: brokers in tests move little data, and the testbed
// machine may have two cores shared with the Kubernetes control plane. The maximum heap is
// [`KafkaOptions::heap`]; 10,000 topics need more than the default (see README's Figures).
const JVM_FLAGS: &[&str] = &[
    "-Xms256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
];
/// Maximum heap of a node unless asked otherwise.
pub const DEFAULT_HEAP: &str = "512m";
/// The smallest maximum heap accepted: the initial heap (`-Xms256m`) must fit in it.
const MIN_HEAP_MIB: u64 = 256;
const TOOL_JVM_FLAGS: &[&str] = &["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"];

/// What to start.
#[derive(Clone, Debug)]
pub struct KafkaOptions {
    /// 1, or 3 for the replication variant (three combined nodes, static voters).
    pub nodes: usize,
    /// State folder of this Kafka: certificates, per-node configuration, data and logs.
    pub dir: PathBuf,
    /// Maximum JVM heap of each node, as `-Xmx` takes it (`512m`, `2g`).
    pub heap: String,
    /// Broker settings appended to the testbed's own (a later line wins in Java properties,
    /// so these may also replace one), e.g. `delete.topic.enable=false`.
    pub extra_properties: Vec<(String, String)>,
}

impl KafkaOptions {
    /// `nodes` nodes in `dir` with the default heap and no extra settings.
    pub fn new(nodes: usize, dir: PathBuf) -> KafkaOptions {
        KafkaOptions {
            nodes,
            dir,
            heap: DEFAULT_HEAP.to_owned(),
            extra_properties: Vec::new(),
        }
    }
}

/// Checks a heap size as `-Xmx` takes it (digits, then `k`, `m` or `g`) and that it holds the
/// initial heap; returns it in MiB.
pub fn heap_mib(heap: &str) -> Result<u64> {
    let (digits, unit) = heap.split_at(heap.len().saturating_sub(1));
    let n: u64 = digits
        .parse()
        .ok()
        .filter(|_| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .with_context(|| format!("Kafka heap {heap:?}: expected digits and k, m or g, e.g. 2g"))?;
    let mib = match unit {
        "k" | "K" => n / 1024,
        "m" | "M" => n,
        "g" | "G" => n.saturating_mul(1024),
        _ => bail!("Kafka heap {heap:?}: expected digits and k, m or g, e.g. 2g"),
    };
    if mib < MIN_HEAP_MIB {
        bail!("Kafka heap {heap:?} is below the initial heap of {MIN_HEAP_MIB}m");
    }
    Ok(mib)
}

/// A Kafka started for one test, apart from the testbed's (its own folder and ports), stopped
/// when dropped; for broker settings the shared testbed must not have.
pub struct OwnedKafka {
    pub cluster: KafkaCluster,
}

impl OwnedKafka {
    /// Starts a Kafka as [`start`] does.
    pub async fn start(opts: &KafkaOptions) -> Result<OwnedKafka> {
        Ok(OwnedKafka {
            cluster: start(opts).await?,
        })
    }
}

impl Drop for OwnedKafka {
    fn drop(&mut self) {
        stop(&self.cluster.procs);
    }
}

/// A started Kafka: its processes and what tests need to reach it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KafkaCluster {
    pub procs: Vec<procs::Started>,
    pub exports: KafkaExports,
}

/// How to reach a started Kafka; the testbed exports these as `KAFKA_*` variables.
#[derive(Clone, Serialize, Deserialize)]
pub struct KafkaExports {
    /// PLAINTEXT listeners: the principal `User:ANONYMOUS` is a super user (set-up only).
    pub bootstrap: String,
    /// SASL_SSL listeners with SCRAM-SHA-512.
    pub scram_bootstrap: String,
    pub admin_user: String,
    pub admin_password: String,
    /// SSL listeners that require a client certificate signed by the clients CA.
    pub tls_bootstrap: String,
    /// The CA that signed the brokers' certificates.
    pub ca_file: PathBuf,
    /// The CA the mTLS listeners trust, and its key.
    pub clients_ca_cert_file: PathBuf,
    pub clients_ca_key_file: PathBuf,
}

// Written by hand so that logs and panic messages never carry the admin password.
impl fmt::Debug for KafkaExports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaExports")
            .field("bootstrap", &self.bootstrap)
            .field("scram_bootstrap", &self.scram_bootstrap)
            .field("admin_user", &self.admin_user)
            .field("admin_password", &"<redacted>")
            .field("tls_bootstrap", &self.tls_bootstrap)
            .field("ca_file", &self.ca_file)
            .field("clients_ca_cert_file", &self.clients_ca_cert_file)
            .field("clients_ca_key_file", &self.clients_ca_key_file)
            .finish()
    }
}

/// The loopback ports of one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NodePorts {
    controller: u16,
    plaintext: u16,
    scram: u16,
    tls: u16,
}

/// Everything a node's `server.properties` depends on.
struct NodeSpec<'a> {
    id: usize,
    ports: &'a [NodePorts],
    node_dir: &'a Path,
    clients_ca_file: &'a Path,
    extra_properties: &'a [(String, String)],
}

fn libs_pom() -> String {
    // Kafka's own POM leaves out the logging backend (the tarball adds it), and Kafka 4's
    // `kafka.utils.Log4jController` needs log4j-core at runtime, so both log4j parts are added.
    // The dependency plugin is pinned so that the resolved set does not depend on Maven's default.
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.oxbow</groupId>
  <artifactId>kafka-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>{log4j}</version></dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId><version>3.8.1</version></plugin>
    </plugins>
  </build>
</project>
"#,
        kafka = versions::kafka(),
        log4j = versions::log4j(),
    )
}

/// The folder of Kafka's runtime jars (use as `-cp '<dir>/*'`), resolved with Maven on first use
/// and cached under [`cache_dir`] by Kafka and log4j version. Blocking: minutes when cold.
/// Runs Maven on `pom` to copy its runtime dependencies into `out_dir`, with the Maven
/// repository cached under the cache folder.
pub(crate) fn maven_copy_dependencies(pom: &Path, out_dir: &Path) -> Result<std::process::Output> {
    Command::new("mvn")
        .arg("-q")
        .arg("-B")
        .arg("-f")
        .arg(pom)
        .arg(format!(
            "-Dmaven.repo.local={}",
            cache_dir().join("maven-repo").display()
        ))
        .arg("dependency:copy-dependencies")
        .arg("-DincludeScope=runtime")
        .arg(format!("-DoutputDirectory={}", out_dir.display()))
        .output()
        .context("running mvn (is Maven installed and on PATH?)")
}

pub fn ensure_libs() -> Result<PathBuf> {
    let root = cache_dir().join(format!(
        "kafka-{}-log4j-{}",
        versions::kafka(),
        versions::log4j()
    ));
    let libs = root.join("libs");
    let stamp = root.join("complete");
    if stamp.exists() {
        return Ok(libs);
    }
    fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    // Resolve into a private folder and move it into place only when complete, so an interrupted
    // run never leaves a half-filled `libs` that a later run would trust.
    let work = root.join(format!("partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let pom = work.join("pom.xml");
    fs::write(&pom, libs_pom())?;
    let out_dir = work.join("libs");
    let output = maven_copy_dependencies(&pom, &out_dir)?;
    if !output.status.success() {
        bail!(
            "mvn could not resolve Kafka {} ({}):\n{}{}",
            versions::kafka(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let kafka_jar = out_dir.join(format!("kafka_2.13-{}.jar", versions::kafka()));
    if !kafka_jar.exists() {
        bail!("mvn finished but {} is missing", kafka_jar.display());
    }
    if stamp.exists() {
        // Another process finished first; its copy is identical.
        let _ = fs::remove_dir_all(&work);
        return Ok(libs);
    }
    let _ = fs::remove_dir_all(&libs);
    fs::rename(&out_dir, &libs).with_context(|| format!("moving jars to {}", libs.display()))?;
    fs::write(
        &stamp,
        format!("kafka {} log4j {}\n", versions::kafka(), versions::log4j()),
    )?;
    let _ = fs::remove_dir_all(&work);
    Ok(libs)
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom")?;
    Ok(buf)
}

/// A password of 32 hex digits: no character that `StorageTool`'s `-S` syntax would need quoted.
fn random_password() -> Result<String> {
    Ok(random_bytes::<16>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// URL-safe base64 without padding, as Kafka prints its `Uuid`s.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A KRaft cluster id, made here rather than by a `StorageTool random-uuid` JVM (a second or two).
fn cluster_id() -> Result<String> {
    loop {
        let id = base64url(&random_bytes::<16>()?);
        // Kafka's own generator rejects ids starting with '-' because command lines misread them.
        if !id.starts_with('-') {
            return Ok(id);
        }
    }
}

fn pick_ports(nodes: usize) -> Result<Vec<NodePorts>> {
    let mut seen = std::collections::HashSet::new();
    let mut next = || -> Result<u16> {
        loop {
            let p = procs::free_port()?;
            if seen.insert(p) {
                return Ok(p);
            }
        }
    };
    (0..nodes)
        .map(|_| {
            Ok(NodePorts {
                controller: next()?,
                plaintext: next()?,
                scram: next()?,
                tls: next()?,
            })
        })
        .collect()
}

fn join_addrs(ports: &[NodePorts], pick: impl Fn(&NodePorts) -> u16) -> String {
    ports
        .iter()
        .map(|p| format!("127.0.0.1:{}", pick(p)))
        .collect::<Vec<_>>()
        .join(",")
}

fn server_properties(spec: &NodeSpec<'_>) -> String {
    let mut text = base_server_properties(spec);
    if !spec.extra_properties.is_empty() {
        text.push_str("# Asked for by the caller (KafkaOptions::extra_properties).\n");
        for (k, v) in spec.extra_properties {
            text.push_str(&format!("{k}={v}\n"));
        }
    }
    text
}

fn base_server_properties(spec: &NodeSpec<'_>) -> String {
    let me = spec.ports[spec.id - 1];
    let voters = spec
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}@127.0.0.1:{}", i + 1, p.controller))
        .collect::<Vec<_>>()
        .join(",");
    let replicated = spec.ports.len() >= 3;
    let rf = if replicated { 3 } else { 1 };
    let min_isr = if replicated { 2 } else { 1 };
    let dir = spec.node_dir.display();
    format!(
        "# Written by the Oxbow testbed (e2e/src/kafka.rs).
process.roles=broker,controller
node.id={id}
# Static voters: simplest to format (no --standalone/--initial-controllers).
controller.quorum.voters={voters}
controller.listener.names=CONTROLLER
listeners=CONTROLLER://127.0.0.1:{c},PLAINTEXT://127.0.0.1:{p},SASL_SSL://127.0.0.1:{s},SSL://127.0.0.1:{t}
advertised.listeners=PLAINTEXT://127.0.0.1:{p},SASL_SSL://127.0.0.1:{s},SSL://127.0.0.1:{t}
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
inter.broker.listener.name=PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
# One PEM key store (unencrypted PKCS#8 key + chain) serves both TLS listeners.
ssl.keystore.type=PEM
ssl.keystore.location={dir}/broker.pem
# The mTLS listener trusts the clients CA only, never the brokers' CA.
listener.name.ssl.ssl.client.auth=required
listener.name.ssl.ssl.truststore.type=PEM
listener.name.ssl.ssl.truststore.location={clients_ca}
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
# ANONYMOUS is the principal of the PLAINTEXT controller and inter-broker connections.
super.users=User:{admin};User:ANONYMOUS
allow.everyone.if.no.acl.found=false
log.dirs={dir}/data
# Topics appear only when asked for, so a lingering client cannot resurrect a deleted topic.
auto.create.topics.enable=false
default.replication.factor={rf}
min.insync.replicas={min_isr}
offsets.topic.replication.factor={rf}
offsets.topic.num.partitions=1
transaction.state.log.replication.factor={rf}
transaction.state.log.min.isr={min_isr}
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor={rf}
share.coordinator.state.topic.min.isr={min_isr}
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
",
        id = spec.id,
        c = me.controller,
        p = me.plaintext,
        s = me.scram,
        t = me.tls,
        clients_ca = spec.clients_ca_file.display(),
        admin = ADMIN_USER,
    )
}

const LOG4J2_PROPERTIES: &str = "# Written by the Oxbow testbed: everything to stdout, which the testbed sends to the node's log.
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
";

fn java() -> PathBuf {
    std::env::var_os("JAVA_HOME")
        .map(|home| PathBuf::from(home).join("bin").join("java"))
        .filter(|java| java.exists())
        .unwrap_or_else(|| PathBuf::from("java"))
}

fn classpath(libs: &Path) -> String {
    format!("{}/*", libs.display())
}

async fn format_node(
    libs: &Path,
    log4j: &Path,
    props: &Path,
    cluster_id: &str,
    admin_password: &str,
) -> Result<()> {
    let mut cmd = tokio::process::Command::new(java());
    cmd.args(TOOL_JVM_FLAGS)
        .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
        .arg("-cp")
        .arg(classpath(libs))
        .args(["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c"])
        .arg(props)
        .arg("-S")
        .arg(format!(
            "SCRAM-SHA-512=[name={ADMIN_USER},password={admin_password}]"
        ))
        .kill_on_drop(true);
    let output = tokio::time::timeout(FORMAT_DEADLINE, cmd.output())
        .await
        .with_context(|| {
            format!(
                "formatting {} took longer than {FORMAT_DEADLINE:?}",
                props.display()
            )
        })?
        .context("running java for kafka.tools.StorageTool")?;
    if !output.status.success() {
        bail!(
            "formatting storage for {} failed ({}):\n{}{}",
            props.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The broker ids an rdkafka client sees in a metadata response. Blocking for up to `timeout`.
fn broker_ids(config: &ClientConfig, timeout: Duration) -> Result<Vec<i32>> {
    let consumer: BaseConsumer = config.create().context("creating an rdkafka client")?;
    let md = consumer
        .fetch_metadata(None, timeout)
        .context("fetching metadata")?;
    let mut ids: Vec<i32> = md.brokers().iter().map(|b| b.id()).collect();
    ids.sort_unstable();
    Ok(ids)
}

fn log_tail(path: &str, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// rdkafka settings for the SASL_SSL listeners as the admin super user.
pub fn scram_admin_config(exports: &KafkaExports) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &exports.scram_bootstrap)
        .set("security.protocol", "SASL_SSL")
        .set("sasl.mechanism", "SCRAM-SHA-512")
        .set("sasl.username", &exports.admin_user)
        .set("sasl.password", &exports.admin_password)
        .set("ssl.ca.location", exports.ca_file.display().to_string());
    c
}

/// Generates certificates and configuration, formats storage and starts `opts.nodes` combined
/// nodes, then waits until an admin metadata request over SASL_SSL lists every broker. Any
/// `node-*` folder left in `opts.dir` by an earlier run is replaced: each start is a fresh cluster.
/// On failure, the nodes started so far are stopped.
pub async fn start(opts: &KafkaOptions) -> Result<KafkaCluster> {
    if opts.nodes != 1 && opts.nodes != 3 {
        bail!("the testbed Kafka has 1 or 3 nodes, not {}", opts.nodes);
    }
    heap_mib(&opts.heap)?;
    let malformed = |(k, v): &&(String, String)| {
        k.is_empty() || k.contains(['=', '\n', '\r']) || v.contains(['\n', '\r'])
    };
    if let Some((k, v)) = opts.extra_properties.iter().find(malformed) {
        bail!(
            "broker setting {k:?}={v:?}: keys must be non-empty without '=', and neither may span lines"
        );
    }
    let libs = tokio::task::spawn_blocking(ensure_libs)
        .await
        .context("joining the Maven resolution")??;

    fs::create_dir_all(&opts.dir).with_context(|| format!("creating {}", opts.dir.display()))?;
    let dir = fs::canonicalize(&opts.dir)?;

    // Two CAs on purpose: trusting the brokers' CA on the mTLS listener would let any broker
    // certificate in as a client.
    let ca = pki::Ca::new("oxbow-testbed-kafka-ca")?;
    let clients_ca = pki::Ca::new("oxbow-testbed-kafka-clients-ca")?;
    let ca_file = dir.join("ca.crt");
    let clients_ca_cert_file = dir.join("clients-ca.crt");
    let clients_ca_key_file = dir.join("clients-ca.key");
    fs::write(&ca_file, &ca.cert_pem)?;
    fs::write(&clients_ca_cert_file, &clients_ca.cert_pem)?;
    pki::write_private(&clients_ca_key_file, &clients_ca.key.serialize_pem())?;
    let log4j = dir.join("log4j2.properties");
    fs::write(&log4j, LOG4J2_PROPERTIES)?;

    let admin_password = random_password()?;
    let cluster_id = cluster_id()?;
    let ports = pick_ports(opts.nodes)?;

    let mut props_files = Vec::new();
    for id in 1..=opts.nodes {
        let node_dir = dir.join(format!("node-{id}"));
        if node_dir.exists() {
            fs::remove_dir_all(&node_dir)
                .with_context(|| format!("removing the previous run's {}", node_dir.display()))?;
        }
        fs::create_dir_all(&node_dir)?;
        let leaf = ca.server_cert(&format!("kafka-{id}"), &["127.0.0.1", "localhost"])?;
        pki::write_private(&node_dir.join("broker.pem"), &leaf.keystore_pem(&ca))?;
        let props = node_dir.join("server.properties");
        let spec = NodeSpec {
            id,
            ports: &ports,
            node_dir: &node_dir,
            clients_ca_file: &clients_ca_cert_file,
            extra_properties: &opts.extra_properties,
        };
        fs::write(&props, server_properties(&spec))?;
        props_files.push(props);
    }

    // One JVM per node; run them side by side.
    let formats = props_files
        .iter()
        .map(|props| format_node(&libs, &log4j, props, &cluster_id, &admin_password));
    for result in futures::future::join_all(formats).await {
        result?;
    }

    let exports = KafkaExports {
        bootstrap: join_addrs(&ports, |p| p.plaintext),
        scram_bootstrap: join_addrs(&ports, |p| p.scram),
        admin_user: ADMIN_USER.to_string(),
        admin_password,
        tls_bootstrap: join_addrs(&ports, |p| p.tls),
        ca_file,
        clients_ca_cert_file,
        clients_ca_key_file,
    };

    let mut started = Vec::new();
    for (i, props) in props_files.iter().enumerate() {
        let id = i + 1;
        let mut cmd = Command::new(java());
        cmd.args(JVM_FLAGS)
            .arg(format!("-Xmx{}", opts.heap))
            .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
            .arg("-cp")
            .arg(classpath(&libs))
            .arg("kafka.Kafka")
            .arg(props)
            .current_dir(dir.join(format!("node-{id}")));
        let log = dir.join(format!("node-{id}")).join("kafka.log");
        match procs::spawn_detached(&format!("kafka-{id}"), cmd, &log) {
            Ok(p) => started.push(p),
            Err(e) => {
                stop(&started);
                return Err(e);
            }
        }
    }

    if let Err(e) = wait_ready(&exports, &started, opts.nodes).await {
        stop(&started);
        return Err(e);
    }
    Ok(KafkaCluster {
        procs: started,
        exports,
    })
}

async fn wait_ready(
    exports: &KafkaExports,
    started: &[procs::Started],
    nodes: usize,
) -> Result<()> {
    let config = scram_admin_config(exports);
    let begin = Instant::now();
    loop {
        if let Some(dead) = started.iter().find(|p| !procs::alive(p.pid)) {
            bail!(
                "{} exited during startup; last lines of {}:\n{}",
                dead.name,
                dead.log,
                log_tail(&dead.log, 40)
            );
        }
        // A fresh client per attempt: a long-lived one would back off reconnecting (up to 10 s)
        // and notice a freshly opened listener late.
        let attempt_config = config.clone();
        let attempt = tokio::task::spawn_blocking(move || {
            broker_ids(&attempt_config, Duration::from_secs(2))
        })
        .await
        .context("joining the metadata probe")?;
        let last = match attempt {
            Ok(ids) if ids.len() == nodes => return Ok(()),
            Ok(ids) => format!("metadata lists brokers {ids:?}"),
            Err(e) => format!("{e:#}"),
        };
        if begin.elapsed() > READY_DEADLINE {
            let tails: Vec<String> = started
                .iter()
                .map(|p| format!("--- {} ({}):\n{}", p.name, p.log, log_tail(&p.log, 20)))
                .collect();
            bail!(
                "Kafka was not ready within {READY_DEADLINE:?} (last: {last})\n{}",
                tails.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Stops the nodes side by side (SIGTERM, then SIGKILL after a grace period). Blocking.
pub fn stop(cluster_procs: &[procs::Started]) {
    std::thread::scope(|s| {
        for p in cluster_procs {
            s.spawn(move || procs::stop(p, STOP_GRACE));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(n: u16) -> Vec<NodePorts> {
        (0..n)
            .map(|i| NodePorts {
                controller: 9000 + i * 10,
                plaintext: 9001 + i * 10,
                scram: 9002 + i * 10,
                tls: 9003 + i * 10,
            })
            .collect()
    }

    fn props_map(text: &str) -> std::collections::HashMap<String, String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn three_node_properties_list_every_voter_and_replicate_internal_topics() {
        let ports = ports(3);
        let text = server_properties(&NodeSpec {
            id: 2,
            ports: &ports,
            node_dir: Path::new("/state/node-2"),
            clients_ca_file: Path::new("/state/clients-ca.crt"),
            extra_properties: &[],
        });
        let p = props_map(&text);
        assert_eq!(p["node.id"], "2");
        assert_eq!(
            p["controller.quorum.voters"],
            "1@127.0.0.1:9000,2@127.0.0.1:9010,3@127.0.0.1:9020"
        );
        assert_eq!(
            p["advertised.listeners"],
            "PLAINTEXT://127.0.0.1:9011,SASL_SSL://127.0.0.1:9012,SSL://127.0.0.1:9013"
        );
        for key in [
            "offsets.topic.replication.factor",
            "transaction.state.log.replication.factor",
            "share.coordinator.state.topic.replication.factor",
            "default.replication.factor",
        ] {
            assert_eq!(p[key], "3", "{key}");
        }
        assert_eq!(p["min.insync.replicas"], "2");
        assert_eq!(p["transaction.state.log.min.isr"], "2");
        assert_eq!(p["ssl.keystore.location"], "/state/node-2/broker.pem");
        assert_eq!(
            p["listener.name.ssl.ssl.truststore.location"],
            "/state/clients-ca.crt"
        );
    }

    #[test]
    fn single_node_properties_secure_the_listeners() {
        let ports = ports(1);
        let p = props_map(&server_properties(&NodeSpec {
            id: 1,
            ports: &ports,
            node_dir: Path::new("/s/node-1"),
            clients_ca_file: Path::new("/s/clients-ca.crt"),
            extra_properties: &[],
        }));
        assert_eq!(p["offsets.topic.replication.factor"], "1");
        assert_eq!(p["min.insync.replicas"], "1");
        assert_eq!(p["listener.name.ssl.ssl.client.auth"], "required");
        assert_eq!(p["super.users"], "User:admin;User:ANONYMOUS");
        assert_eq!(p["allow.everyone.if.no.acl.found"], "false");
        assert_eq!(
            p["authorizer.class.name"],
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        );
        // The controller listener must not be advertised to clients.
        assert!(!p["advertised.listeners"].contains("CONTROLLER"));
    }

    #[test]
    fn extra_properties_come_last_so_they_win() {
        let ports = ports(1);
        let extra = [
            ("delete.topic.enable".to_string(), "false".to_string()),
            ("auto.create.topics.enable".to_string(), "true".to_string()),
        ];
        let text = server_properties(&NodeSpec {
            id: 1,
            ports: &ports,
            node_dir: Path::new("/s/node-1"),
            clients_ca_file: Path::new("/s/clients-ca.crt"),
            extra_properties: &extra,
        });
        // Java's Properties keeps the last value of a repeated key; so does this map.
        let p = props_map(&text);
        assert_eq!(p["delete.topic.enable"], "false");
        assert_eq!(p["auto.create.topics.enable"], "true");
        assert!(text.ends_with("auto.create.topics.enable=true\n"), "{text}");
    }

    #[test]
    fn heap_sizes_are_checked() {
        assert_eq!(heap_mib(DEFAULT_HEAP).unwrap(), 512);
        assert_eq!(heap_mib("2g").unwrap(), 2048);
        assert_eq!(heap_mib("1536M").unwrap(), 1536);
        assert_eq!(heap_mib("262144k").unwrap(), 256);
        for bad in ["", "g", "2", "2gb", "-1g", "1.5g", "128m", "two"] {
            assert!(heap_mib(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn base64url_matches_known_vectors() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn cluster_ids_look_like_kafka_uuids() {
        for _ in 0..50 {
            let id = cluster_id().unwrap();
            assert_eq!(id.len(), 22, "{id}");
            assert!(!id.starts_with('-'), "{id}");
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{id}"
            );
        }
        assert_ne!(cluster_id().unwrap(), cluster_id().unwrap());
    }

    #[test]
    fn exports_debug_hides_the_admin_password() {
        let exports = KafkaExports {
            bootstrap: "127.0.0.1:1".into(),
            scram_bootstrap: "127.0.0.1:2".into(),
            admin_user: "admin".into(),
            admin_password: "s3cr3t-value".into(),
            tls_bootstrap: "127.0.0.1:3".into(),
            ca_file: "/ca".into(),
            clients_ca_cert_file: "/cca".into(),
            clients_ca_key_file: "/cck".into(),
        };
        let shown = format!("{exports:?}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(shown.contains("127.0.0.1:2"), "{shown}");
        let cluster = KafkaCluster {
            procs: vec![],
            exports,
        };
        assert!(!format!("{cluster:?}").contains("s3cr3t-value"));
    }

    /// Stops the nodes even when an assertion fails, so a failed test leaks no JVMs.
    struct StopOnDrop(Vec<procs::Started>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            stop(&self.0);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_node_cluster_serves_plaintext_scram_and_mtls_listeners() {
        let tmp = tempfile::tempdir().unwrap();
        // Timed apart from the start so that `--nocapture` shows cold and warm figures.
        let t = Instant::now();
        tokio::task::spawn_blocking(ensure_libs)
            .await
            .unwrap()
            .unwrap();
        println!("kafka libs resolved in {:?}", t.elapsed());
        let t = Instant::now();
        let cluster = start(&KafkaOptions::new(1, tmp.path().to_path_buf()))
            .await
            .unwrap();
        println!("1-node kafka ready in {:?}", t.elapsed());
        let guard = StopOnDrop(cluster.procs.clone());
        let ex = cluster.exports.clone();

        let mut plain = ClientConfig::new();
        plain.set("bootstrap.servers", &ex.bootstrap);
        let scram = scram_admin_config(&ex);
        let clients_ca = pki::Ca::from_pem(
            &fs::read_to_string(&ex.clients_ca_cert_file).unwrap(),
            &fs::read_to_string(&ex.clients_ca_key_file).unwrap(),
        )
        .unwrap();
        let leaf = clients_ca.client_cert("lib-test", None).unwrap();
        let cert_file = tmp.path().join("client.crt");
        let key_file = tmp.path().join("client.key");
        fs::write(&cert_file, &leaf.cert_pem).unwrap();
        pki::write_private(&key_file, &leaf.key_pem).unwrap();
        let mut mtls = ClientConfig::new();
        mtls.set("bootstrap.servers", &ex.tls_bootstrap)
            .set("security.protocol", "SSL")
            .set("ssl.ca.location", ex.ca_file.display().to_string())
            .set("ssl.certificate.location", cert_file.display().to_string())
            .set("ssl.key.location", key_file.display().to_string());

        for (name, config) in [("PLAINTEXT", plain), ("SASL_SSL", scram), ("SSL", mtls)] {
            let ids =
                tokio::task::spawn_blocking(move || broker_ids(&config, Duration::from_secs(15)))
                    .await
                    .unwrap()
                    .unwrap_or_else(|e| panic!("metadata over {name}: {e:#}"));
            assert_eq!(ids, vec![1], "brokers seen over {name}");
        }

        let pids: Vec<u32> = cluster.procs.iter().map(|p| p.pid).collect();
        let t = Instant::now();
        tokio::task::spawn_blocking(move || drop(guard))
            .await
            .unwrap();
        println!("1-node kafka stopped in {:?}", t.elapsed());
        for pid in pids {
            assert!(
                !procs::alive(pid),
                "kafka pid {pid} still running after stop"
            );
        }
    }
}
