//! Container probes as the kubelet runs them: tcpSocket (connect), httpGet (a plain HTTP/1.1
//! GET, 200-399 passes) against the pod's address, and exec (the command inside the container's
//! namespaces and root, exit 0 passes). May touch: TCP connections to pod addresses; exec starts
//! a process in a container's namespaces.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{
    api::core::v1::{ContainerPort, Probe},
    apimachinery::pkg::util::intstr::IntOrString,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// The timing of a probe, with the Kubernetes defaults filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

/// Timing of `probe`. Pure.
pub fn timing(probe: &Probe) -> Timing {
    let secs =
        |v: Option<i32>, default: i32| Duration::from_secs(v.unwrap_or(default).max(0) as u64);
    Timing {
        initial_delay: secs(probe.initial_delay_seconds, 0),
        period: secs(probe.period_seconds, 10).max(Duration::from_secs(1)),
        timeout: secs(probe.timeout_seconds, 1).max(Duration::from_secs(1)),
        success_threshold: probe.success_threshold.unwrap_or(1).max(1) as u32,
        failure_threshold: probe.failure_threshold.unwrap_or(3).max(1) as u32,
    }
}

/// Resolves a probe port (a number or a container port name). Pure.
pub fn port(port: &IntOrString, ports: &[ContainerPort]) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("port {n} out of range")),
        IntOrString::String(name) => ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| format!("no container port named {name:?}")),
    }
}

/// What is needed to run an exec probe inside a container.
#[derive(Clone, Debug)]
pub struct ExecTarget {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
    pub env: BTreeMap<String, String>,
}

/// Runs `probe` once; `Err` carries the failure message.
pub async fn run(
    probe: &Probe,
    ip: &str,
    ports: &[ContainerPort],
    exec: Option<&ExecTarget>,
) -> Result<(), String> {
    let t = timing(probe);
    let work = async {
        if let Some(tcp) = &probe.tcp_socket {
            let p = port(&tcp.port, ports)?;
            TcpStream::connect((ip, p))
                .await
                .map(|_| ())
                .map_err(|e| format!("dial tcp {ip}:{p}: {e}"))
        } else if let Some(get) = &probe.http_get {
            if get
                .scheme
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("HTTPS"))
            {
                return Err(
                    "httpGet with scheme HTTPS is not supported by the testbed node agent".into(),
                );
            }
            let p = port(&get.port, ports)?;
            let path = get.path.clone().unwrap_or_else(|| "/".to_owned());
            http_get(ip, p, &path).await
        } else if let Some(e) = &probe.exec {
            let target = exec.ok_or("the container is not running")?;
            exec_probe(target, e.command.clone().unwrap_or_default()).await
        } else {
            Err("probe type not supported by the testbed node agent (grpc)".to_owned())
        }
    };
    match tokio::time::timeout(t.timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("probe timed out after {:?}", t.timeout)),
    }
}

async fn http_get(ip: &str, port: u16, path: &str) -> Result<(), String> {
    let mut s = TcpStream::connect((ip, port))
        .await
        .map_err(|e| format!("Get http://{ip}:{port}{path}: {e}"))?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nUser-Agent: kube-probe/oxbow\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 256];
    let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
    let head = String::from_utf8_lossy(&buf[..n]);
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP status line from {ip}:{port}"))?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
    }
}

async fn exec_probe(target: &ExecTarget, command: Vec<String>) -> Result<(), String> {
    if command.is_empty() {
        return Err("exec probe without a command".to_owned());
    }
    let mut cmd = tokio::process::Command::new("nsenter");
    cmd.arg(format!("--target={}", target.pid))
        .args(["--net", "--mount", "--uts", "--root", "--wd"])
        .arg(format!("--setuid={}", target.uid))
        .arg(format!("--setgid={}", target.gid))
        .arg("--")
        .arg("/usr/bin/env")
        .arg("-i");
    for (k, v) in &target.env {
        cmd.arg(format!("{k}={v}"));
    }
    cmd.args(&command).kill_on_drop(true);
    let out = cmd.output().await.map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "command {:?} exited with {}: {}",
            command,
            out.status,
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_kubernetes_ones() {
        let t = timing(&Probe::default());
        assert_eq!(t.period, Duration::from_secs(10));
        assert_eq!(t.timeout, Duration::from_secs(1));
        assert_eq!((t.success_threshold, t.failure_threshold), (1, 3));
    }

    #[test]
    fn named_ports_resolve_from_the_container() {
        let ports = [ContainerPort {
            name: Some("http".into()),
            container_port: 8080,
            ..ContainerPort::default()
        }];
        assert_eq!(port(&IntOrString::String("http".into()), &ports), Ok(8080));
        assert_eq!(port(&IntOrString::Int(9092), &ports), Ok(9092));
        assert!(port(&IntOrString::String("nope".into()), &ports).is_err());
    }

    #[tokio::test]
    async fn tcp_and_http_probes_pass_and_fail_for_real() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = l.local_addr().unwrap().port() as i32;
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 512];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let ok = String::from_utf8_lossy(&buf[..n]).starts_with("GET /healthz ");
                let line = if ok {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                };
                let _ = s
                    .write_all(format!("HTTP/1.1 {line}\r\n\r\n").as_bytes())
                    .await;
            }
        });
        let probe = |v: serde_json::Value| serde_json::from_value::<Probe>(v).unwrap();
        let tcp = probe(serde_json::json!({"tcpSocket": {"port": p}}));
        assert_eq!(run(&tcp, "127.0.0.1", &[], None).await, Ok(()));
        let good = probe(serde_json::json!({"httpGet": {"port": p, "path": "/healthz"}}));
        assert_eq!(run(&good, "127.0.0.1", &[], None).await, Ok(()));
        let bad = probe(serde_json::json!({"httpGet": {"port": p, "path": "/readyz"}}));
        let err = run(&bad, "127.0.0.1", &[], None).await.unwrap_err();
        assert!(err.contains("503"), "{err}");
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cp = closed.local_addr().unwrap().port() as i32;
        drop(closed);
        let refused = probe(serde_json::json!({"tcpSocket": {"port": cp}}));
        assert!(run(&refused, "127.0.0.1", &[], None).await.is_err());
    }
}
