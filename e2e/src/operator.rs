//! Operator binaries run as child processes for integration tests: found next to the test
//! executable (cargo builds both into `target/<profile>/`), started with explicit settings and a
//! free port for `OXBOW_HTTP_ADDR`, output to a log file, probed through `/readyz` and
//! `/metrics`, killed with SIGKILL on demand and on drop. Also the settings that connect the
//! topic operator to the testbed over SASL_SSL SCRAM or mTLS.
//! May touch: child processes it starts, its log files under the temporary directory, files
//! the caller names, loopback sockets.

use std::{
    collections::BTreeMap,
    fs::File,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{env::TestEnv, pki, procs};

/// How long one HTTP probe may take; the operator answers from memory, so this is generous.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts to start when the chosen port was taken between picking and binding it.
const PORT_ATTEMPTS: usize = 3;

/// The path of a workspace binary built into the same target folder as the running test.
///
/// Integration tests run from `target/<profile>/deps/`, binaries live in `target/<profile>/`;
/// `CARGO_BIN_EXE_*` only covers binaries of the test's own package, hence this lookup.
pub fn binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test executable")?;
    let mut dir = exe.parent().context("the test executable has no folder")?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().context("deps/ has no parent")?;
    }
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "operator binary {} is missing: run cargo build --workspace first",
            path.display()
        );
    }
    Ok(path)
}

/// Settings (environment variables) for an operator process. Nothing is inherited from the
/// test's environment except `RUST_LOG` (when not set here), so a stray `OXBOW_*` variable
/// cannot change a test.
#[derive(Clone, Default)]
pub struct OperatorEnv {
    vars: BTreeMap<String, String>,
}

// By hand: the SASL password must not reach test output.
impl std::fmt::Debug for OperatorEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: BTreeMap<&str, &str> = self
            .vars
            .iter()
            .map(|(k, v)| {
                let v = if k.contains("PASSWORD") {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.as_str(), v)
            })
            .collect();
        f.debug_map().entries(shown).finish()
    }
}

impl OperatorEnv {
    /// Sets (or replaces) one variable.
    pub fn set(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.insert(name.to_owned(), value.into());
        self
    }

    /// Removes one variable.
    pub fn unset(mut self, name: &str) -> Self {
        self.vars.remove(name);
        self
    }

    /// One variable's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// What every topic operator needs besides the Kafka connection.
    fn topic_operator(env: &TestEnv, namespace: &str, cluster: &str) -> Self {
        OperatorEnv::default()
            .set("KUBECONFIG", env.kubeconfig.display().to_string())
            .set("OXBOW_NAMESPACE", namespace)
            .set("OXBOW_CLUSTER", cluster)
    }

    /// A topic operator connecting over SASL_SSL with SCRAM-SHA-512 as the testbed's admin.
    pub fn topic_operator_scram(env: &TestEnv, namespace: &str, cluster: &str) -> Self {
        Self::topic_operator(env, namespace, cluster)
            .set("OXBOW_KAFKA_BOOTSTRAP_SERVERS", &env.kafka_scram_bootstrap)
            .set("OXBOW_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
            .set(
                "OXBOW_KAFKA_CA_FILE",
                env.kafka_ca_file.display().to_string(),
            )
            .set("OXBOW_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
            .set("OXBOW_KAFKA_SASL_USERNAME", &env.kafka_admin_user)
            .set("OXBOW_KAFKA_SASL_PASSWORD", &env.kafka_admin_password)
    }

    /// A user operator connecting like [`Self::topic_operator_scram`] (the connection settings
    /// are the same variables), signing TLS users' certificates with the testbed's clients CA,
    /// the one the mTLS listener trusts.
    pub fn user_operator_scram(env: &TestEnv, namespace: &str, cluster: &str) -> Self {
        Self::topic_operator_scram(env, namespace, cluster)
            .set(
                "OXBOW_CLIENTS_CA_CERT_FILE",
                env.kafka_clients_ca_cert_file.display().to_string(),
            )
            .set(
                "OXBOW_CLIENTS_CA_KEY_FILE",
                env.kafka_clients_ca_key_file.display().to_string(),
            )
    }

    /// A topic operator connecting over mTLS with the given client certificate and key (see
    /// [`write_client_cert`]). Its principal is `User:CN=<cn>`, not a super user: grant it ACLs.
    pub fn topic_operator_mtls(
        env: &TestEnv,
        namespace: &str,
        cluster: &str,
        cert_file: &Path,
        key_file: &Path,
    ) -> Self {
        Self::topic_operator(env, namespace, cluster)
            .set("OXBOW_KAFKA_BOOTSTRAP_SERVERS", &env.kafka_tls_bootstrap)
            .set("OXBOW_KAFKA_SECURITY_PROTOCOL", "SSL")
            .set(
                "OXBOW_KAFKA_CA_FILE",
                env.kafka_ca_file.display().to_string(),
            )
            .set("OXBOW_KAFKA_CERT_FILE", cert_file.display().to_string())
            .set("OXBOW_KAFKA_KEY_FILE", key_file.display().to_string())
    }
}

/// Signs a client certificate `CN=<common_name>` with the testbed's clients CA and writes it and
/// its key as `<dir>/<common_name>.crt` and `.key`. Returns (certificate, key).
pub fn write_client_cert(
    env: &TestEnv,
    common_name: &str,
    dir: &Path,
) -> Result<(PathBuf, PathBuf)> {
    let leaf = env.clients_ca()?.client_cert(common_name, None)?;
    let cert = dir.join(format!("{common_name}.crt"));
    let key = dir.join(format!("{common_name}.key"));
    std::fs::write(&cert, &leaf.cert_pem).with_context(|| format!("writing {}", cert.display()))?;
    pki::write_private(&key, &leaf.key_pem)?;
    Ok((cert, key))
}

/// A running operator binary. Dropping it kills the process (SIGKILL), so a failing test
/// never leaves an operator acting on the shared testbed.
pub struct OperatorProcess {
    name: String,
    binary: PathBuf,
    env: OperatorEnv,
    child: Option<Child>,
    http: SocketAddr,
    log: PathBuf,
}

impl std::fmt::Debug for OperatorProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorProcess")
            .field("name", &self.name)
            .field("http", &self.http)
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

impl OperatorProcess {
    /// Starts the workspace binary `binary` (e.g. `topic-operator`) with `env`; `name` tells
    /// this instance apart in log file names and messages. Does not wait for readiness.
    pub fn start(name: &str, binary_name: &str, env: OperatorEnv) -> Result<OperatorProcess> {
        let binary = binary(binary_name)?;
        let dir = std::env::temp_dir().join("oxbow-e2e-operators");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let log = dir.join(format!("{name}-{}-{nanos}.log", std::process::id()));
        let mut p = OperatorProcess {
            name: name.to_owned(),
            binary,
            env,
            child: None,
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        p.spawn()?;
        Ok(p)
    }

    fn spawn(&mut self) -> Result<()> {
        let port = procs::free_port()?;
        self.http = SocketAddr::from(([127, 0, 0, 1], port));
        let out = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(&self.binary);
        cmd.env_clear()
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            // The caller's settings win, `RUST_LOG` included.
            .envs(&self.env.vars)
            .env("OXBOW_HTTP_ADDR", self.http.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} ({})", self.name, self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// The log file (stdout and stderr of every run of this instance, appended).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The address of `/metrics`, `/healthz` and `/readyz`.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// The process ID of the current run, while it has not been killed (for `/proc` readings
    /// such as peak memory).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running (a process that exited is reaped).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_))) | Some(Err(_)) | None => false,
        }
    }

    /// Polls `/readyz` until it answers 200. Fails early, with the log's tail, when the process
    /// exits; restarts on another port when the chosen one was taken meanwhile.
    pub async fn wait_ready(&mut self, deadline: Duration) -> Result<()> {
        let start = Instant::now();
        let mut attempts = 1;
        loop {
            if !self.is_running() {
                let tail = self.log_tail(30);
                if tail.contains("binding OXBOW_HTTP_ADDR") && attempts < PORT_ATTEMPTS {
                    attempts += 1;
                    self.spawn()?;
                    continue;
                }
                bail!(
                    "{} exited before it was ready; log {}:\n{tail}",
                    self.name,
                    self.log.display()
                );
            }
            let last = match http_get(self.http, "/readyz").await {
                Ok((200, _)) => return Ok(()),
                Ok((status, body)) => format!("{status} {}", body.trim()),
                Err(e) => format!("{e:#}"),
            };
            if start.elapsed() > deadline {
                bail!(
                    "{} not ready within {deadline:?} (last /readyz: {last}); log {}:\n{}",
                    self.name,
                    self.log.display(),
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The current `/metrics`.
    pub async fn metrics(&self) -> Result<Metrics> {
        let (status, body) = http_get(self.http, "/metrics").await.with_context(|| {
            format!("GET /metrics of {} (log {})", self.name, self.log.display())
        })?;
        if status != 200 {
            bail!("GET /metrics of {} answered {status}: {body}", self.name);
        }
        Metrics::parse(&body)
    }

    /// Kills the process with SIGKILL (no chance to finish anything) and reaps it.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            // `Child::kill` sends SIGKILL on Unix; an already exited child is fine too.
            let _ = child.kill();
            child
                .wait()
                .with_context(|| format!("reaping {}", self.name))?;
        }
        Ok(())
    }

    /// Starts the same binary with the same settings again (after [`Self::kill9`]), on a new
    /// port; the log is appended to.
    pub fn restart(&mut self) -> Result<()> {
        self.kill9()?;
        self.spawn()
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}

/// `GET path` over plain HTTP/1.1; returns the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .with_context(|| format!("GET {path} from {addr} timed out after {HTTP_TIMEOUT:?}"))?
        .with_context(|| format!("GET {path} from {addr}"))?;
    parse_response(&raw)
}

/// Splits a whole HTTP/1.1 response into status and body, undoing chunked transfer encoding.
fn parse_response(raw: &[u8]) -> Result<(u16, String)> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("HTTP response without a header end")?;
    let head = std::str::from_utf8(&raw[..split]).context("HTTP header is not UTF-8")?;
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad HTTP status line in {head:?}"))?;
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    if chunked {
        body = dechunk(&body)?;
    }
    Ok((
        status,
        String::from_utf8(body).context("HTTP body is not UTF-8")?,
    ))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("chunk size line without an end")?;
        let size_text = std::str::from_utf8(&data[..end])?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("chunk size {size_text:?}"))?;
        data = &data[end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            bail!("chunk of {size} bytes is cut short");
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// One sample of the Prometheus text format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed `/metrics` page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    pub samples: Vec<Sample>,
}

impl Metrics {
    /// Parses the Prometheus text exposition format (comments skipped, timestamps ignored).
    pub fn parse(text: &str) -> Result<Metrics> {
        let mut samples = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            samples.push(parse_sample(line).with_context(|| format!("metrics line {line:?}"))?);
        }
        Ok(Metrics { samples })
    }

    /// The sum of every sample named `name` whose labels include all of `labels` (0 when none
    /// matches: Prometheus counters with labels appear only once incremented).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .fold(0.0, |sum, s| sum + s.value)
    }
}

fn parse_sample(line: &str) -> Result<Sample> {
    let name_end = line.find(['{', ' ', '\t']).context("no value")?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(mut s) = rest.strip_prefix('{') {
        loop {
            s = s.trim_start_matches([',', ' ']);
            if let Some(after) = s.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = s.split_once('=').context("label without '=' or '}'")?;
            let quoted = after
                .strip_prefix('"')
                .context("label value is not quoted")?;
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let close = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c)) => value.push(c),
                        None => bail!("escape at the end of a label value"),
                    },
                    Some((i, '"')) => break i,
                    Some((_, c)) => value.push(c),
                    None => bail!("unterminated label value"),
                }
            };
            labels.insert(key.trim().to_owned(), value);
            s = &quoted[close + 1..];
        }
    }
    let value_text = rest.split_whitespace().next().context("no value")?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().with_context(|| format!("value {v:?}"))?,
    };
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_parsed_and_summed_by_label_subset() {
        let text = r#"# HELP oxbow_kafka_admin_requests_total Kafka admin requests by API and outcome
# TYPE oxbow_kafka_admin_requests_total counter
oxbow_kafka_admin_requests_total{api="create_topics",outcome="success"} 3
oxbow_kafka_admin_requests_total{api="create_topics",outcome="error"} 2
oxbow_kafka_admin_requests_total{api="list_topics",outcome="success"} 7
oxbow_topic_operator_passes_total 12
odd{path="a \"q\" b\\c",x="1"} 1.5e0 1700000000
bucket{le="+Inf"} +Inf
"#;
        let m = Metrics::parse(text).unwrap();
        assert_eq!(m.samples.len(), 6);
        assert_eq!(
            m.sum(
                "oxbow_kafka_admin_requests_total",
                &[("api", "create_topics")]
            ),
            5.0
        );
        assert_eq!(
            m.sum(
                "oxbow_kafka_admin_requests_total",
                &[("api", "create_topics"), ("outcome", "error")]
            ),
            2.0
        );
        assert_eq!(m.sum("oxbow_topic_operator_passes_total", &[]), 12.0);
        assert_eq!(m.sum("absent_total", &[]), 0.0);
        let odd = &m.samples[4];
        assert_eq!(odd.labels["path"], r#"a "q" b\c"#);
        assert_eq!(odd.value, 1.5);
        assert_eq!(m.samples[5].value, f64::INFINITY);
    }

    #[test]
    fn malformed_metrics_are_refused() {
        assert!(Metrics::parse("name{a=\"1\" 3").is_err());
        assert!(Metrics::parse("name{a=1} 3").is_err());
        assert!(Metrics::parse("name notanumber").is_err());
    }

    #[test]
    fn responses_are_split_and_dechunked() {
        let plain = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 9\r\n\r\nnot ready";
        assert_eq!(
            parse_response(plain).unwrap(),
            (503, "not ready".to_owned())
        );
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked).unwrap(),
            (200, "abcdefg".to_owned())
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    #[test]
    fn a_missing_binary_says_how_to_build_it() {
        let err = binary("no-such-operator-binary").unwrap_err();
        assert!(
            err.to_string()
                .contains("run cargo build --workspace first"),
            "{err}"
        );
    }
}
