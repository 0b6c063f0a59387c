//! The Kubernetes half of the testbed: builds (once, cached) the pinned upstream control plane and
//! starts etcd, kube-apiserver (RBAC, service-account token issuing), kube-controller-manager and
//! kube-scheduler on loopback, with certificates made by rcgen and an admin kubeconfig.
//! May touch: processes, files under the given state folder and the cache, loopback ports.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::{
    cache,
    pki::{self, Ca},
    procs::{self, Started},
};

/// What a running control plane offers to its users.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct K8sExports {
    /// Admin kubeconfig (client certificate in group `system:masters`).
    pub kubeconfig: PathBuf,
    /// kubectl built from the same Kubernetes version.
    pub kubectl: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub server: String,
    /// The CA that signed the API server's serving certificate and the client certificates.
    pub ca_file: PathBuf,
    /// Private key that signs service-account tokens.
    pub service_account_key_file: PathBuf,
}

impl K8sExports {
    /// The API server's port (it listens on every address, e.g. the testbed bridge's too).
    pub fn api_port(&self) -> Result<u16> {
        self.server
            .rsplit_once(':')
            .and_then(|(_, port)| port.trim_end_matches('/').parse().ok())
            .with_context(|| format!("no port in the API server address {:?}", self.server))
    }
}

/// A started control plane.
pub struct K8sCluster {
    pub procs: Vec<Started>,
    pub exports: K8sExports,
}

/// Options for [`start`].
#[derive(Clone, Debug)]
pub struct K8sOptions {
    /// State folder (certificates, etcd data, logs).
    pub dir: PathBuf,
    /// Extra IP addresses the API server's certificate must carry and that it advertises
    /// (the node agent's bridge address, so that pods can reach it).
    pub extra_ips: Vec<String>,
}

/// Builds the control plane binary if needed (`e2e/testenv/build.sh`, cached by version) and
/// returns the folder holding `kube-apiserver`, `etcd`, `kubectl`, ... .
pub fn ensure_binaries() -> Result<PathBuf> {
    let script = cache::repo_root().join("e2e/testenv/build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed (exit {})", script.display(), out.status);
    }
    let dir = String::from_utf8(out.stdout)?
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let dir = PathBuf::from(dir);
    if !dir.join("kube-apiserver").exists() {
        bail!(
            "{} did not produce kube-apiserver in {}",
            script.display(),
            dir.display()
        );
    }
    Ok(dir)
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A kubeconfig authenticating with a client certificate.
pub fn kubeconfig_yaml(
    server: &str,
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
    user: &str,
) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: oxbow-testbed\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\ncontexts:\n- name: {user}@oxbow-testbed\n  context:\n    cluster: oxbow-testbed\n    user: {user}\ncurrent-context: {user}@oxbow-testbed\n",
        ca = b64(ca_pem),
        cert = b64(cert_pem),
        key = b64(key_pem),
    )
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler and waits until the
/// API server is ready and the controller manager has created the `default` ServiceAccount.
pub async fn start(opts: &K8sOptions) -> Result<K8sCluster> {
    let bin = tokio::task::spawn_blocking(ensure_binaries).await??;
    let dir = opts.dir.clone();
    std::fs::create_dir_all(dir.join("pki"))?;
    let pki_dir = dir.join("pki");

    // Certificates: one CA for serving and client certificates, and a key for service accounts.
    let ca = Ca::new("oxbow-testbed-kubernetes-ca")?;
    let mut sans = vec![
        "127.0.0.1",
        "localhost",
        "10.0.0.1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ];
    sans.extend(opts.extra_ips.iter().map(String::as_str));
    let serving = ca.server_cert("kube-apiserver", &sans)?;
    let admin = ca.client_cert("admin", Some("system:masters"))?;
    let sa_key = rcgen::KeyPair::generate()?;
    let ca_file = pki_dir.join("ca.crt");
    std::fs::write(&ca_file, &ca.cert_pem)?;
    pki::write_private(&pki_dir.join("ca.key"), &ca.key.serialize_pem())?;
    std::fs::write(pki_dir.join("apiserver.crt"), &serving.cert_pem)?;
    pki::write_private(&pki_dir.join("apiserver.key"), &serving.key_pem)?;
    let sa_file = pki_dir.join("sa.key");
    pki::write_private(&sa_file, &sa_key.serialize_pem())?;
    // The API server verifies tokens with the public half; only it and the controller manager sign.
    let sa_pub = pki_dir.join("sa.pub");
    std::fs::write(&sa_pub, sa_key.public_key_pem())?;

    let etcd_port = procs::free_port()?;
    let etcd_peer = procs::free_port()?;
    let api_port = procs::free_port()?;
    let sched_port = procs::free_port()?;
    let server = format!("https://127.0.0.1:{api_port}");
    let kubeconfig = dir.join("admin.kubeconfig");
    pki::write_private(
        &kubeconfig,
        &kubeconfig_yaml(
            &server,
            &ca.cert_pem,
            &admin.cert_pem,
            &admin.key_pem,
            "admin",
        ),
    )?;

    let mut started = Vec::new();
    let result = async {
        let mut etcd = Command::new(bin.join("etcd"));
        etcd.args([
            "--name=testbed".to_string(),
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"),
            format!("--advertise-client-urls=http://127.0.0.1:{etcd_port}"),
            format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}"),
            format!("--initial-cluster=testbed=http://127.0.0.1:{etcd_peer}"),
            "--unsafe-no-fsync=true".to_string(),
            "--log-level=warn".to_string(),
        ]);
        let etcd = procs::spawn_detached("etcd", etcd, &dir.join("etcd.log"))?;
        started.push(etcd.clone());
        wait_port(&etcd, etcd_port, Duration::from_secs(30)).await?;

        let advertise = opts
            .extra_ips
            .first()
            .cloned()
            .unwrap_or_else(|| "127.0.0.1".to_string());
        let mut api = Command::new(bin.join("kube-apiserver"));
        api.args([
            format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
            format!("--cert-dir={}", pki_dir.display()),
            format!("--secure-port={api_port}"),
            "--bind-address=0.0.0.0".to_string(),
            format!("--advertise-address={advertise}"),
            "--endpoint-reconciler-type=none".to_string(),
            "--service-cluster-ip-range=10.0.0.0/24".to_string(),
            "--allow-privileged=true".to_string(),
            "--authorization-mode=Node,RBAC".to_string(),
            format!(
                "--tls-cert-file={}",
                pki_dir.join("apiserver.crt").display()
            ),
            format!(
                "--tls-private-key-file={}",
                pki_dir.join("apiserver.key").display()
            ),
            format!("--client-ca-file={}", ca_file.display()),
            format!("--service-account-issuer={server}"),
            format!("--service-account-key-file={}", sa_pub.display()),
            format!("--service-account-signing-key-file={}", sa_file.display()),
            "--v=1".to_string(),
        ]);
        let api = procs::spawn_detached("kube-apiserver", api, &dir.join("kube-apiserver.log"))?;
        started.push(api.clone());
        wait_port(&api, api_port, Duration::from_secs(60)).await?;
        let client = admin_client(&kubeconfig).await?;
        wait_ready(&api, &client, Duration::from_secs(90)).await?;

        let mut kcm = Command::new(bin.join("kube-controller-manager"));
        kcm.args([
            format!("--kubeconfig={}", kubeconfig.display()),
            "--leader-elect=false".to_string(),
            format!("--service-account-private-key-file={}", sa_file.display()),
            format!("--root-ca-file={}", ca_file.display()),
            format!("--cluster-signing-cert-file={}", ca_file.display()),
            format!(
                "--cluster-signing-key-file={}",
                pki_dir.join("ca.key").display()
            ),
            "--use-service-account-credentials=true".to_string(),
            "--bind-address=127.0.0.1".to_string(),
            "--secure-port=0".to_string(),
            "--v=1".to_string(),
        ]);
        let kcm = procs::spawn_detached(
            "kube-controller-manager",
            kcm,
            &dir.join("kube-controller-manager.log"),
        )?;
        started.push(kcm.clone());

        let mut sched = Command::new(bin.join("kube-scheduler"));
        sched.args([
            format!("--kubeconfig={}", kubeconfig.display()),
            "--leader-elect=false".to_string(),
            "--bind-address=127.0.0.1".to_string(),
            format!("--secure-port={sched_port}"),
            "--v=1".to_string(),
        ]);
        let sched =
            procs::spawn_detached("kube-scheduler", sched, &dir.join("kube-scheduler.log"))?;
        started.push(sched.clone());
        wait_port(&sched, sched_port, Duration::from_secs(60)).await?;
        // The controller manager is working once its service-account controller has run.
        wait_default_service_account(&kcm, &client, Duration::from_secs(90)).await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        for p in started.iter().rev() {
            procs::stop(p, Duration::from_secs(5));
        }
        return Err(e);
    }
    Ok(K8sCluster {
        procs: started,
        exports: K8sExports {
            kubeconfig,
            kubectl: bin.join("kubectl"),
            server,
            ca_file,
            service_account_key_file: sa_file,
        },
    })
}

async fn wait_port(p: &Started, port: u16, deadline: Duration) -> Result<()> {
    let p = p.clone();
    tokio::task::spawn_blocking(move || procs::wait_for_port(&p, addr(port), deadline)).await?
}

/// A client from a kubeconfig file.
pub async fn admin_client(kubeconfig: &Path) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

async fn wait_ready(p: &Started, client: &kube::Client, deadline: Duration) -> Result<()> {
    let start = Instant::now();
    let mut last;
    loop {
        let req = http::Request::get("/readyz").body(Vec::new())?;
        match client.request_text(req).await {
            Ok(body) if body.trim() == "ok" => return Ok(()),
            Ok(body) => last = body,
            Err(e) => last = e.to_string(),
        }
        if !procs::alive(p.pid) {
            bail!("kube-apiserver exited; see {}", p.log);
        }
        if start.elapsed() > deadline {
            bail!(
                "kube-apiserver not ready within {deadline:?} (last: {last}); see {}",
                p.log
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_default_service_account(
    p: &Started,
    client: &kube::Client,
    deadline: Duration,
) -> Result<()> {
    use k8s_openapi::api::core::v1::ServiceAccount;
    let api: kube::Api<ServiceAccount> = kube::Api::namespaced(client.clone(), "default");
    let start = Instant::now();
    loop {
        if api.get_opt("default").await?.is_some() {
            return Ok(());
        }
        if !procs::alive(p.pid) {
            bail!("kube-controller-manager exited; see {}", p.log);
        }
        if start.elapsed() > deadline {
            bail!(
                "kube-controller-manager did not create the default ServiceAccount within {deadline:?}; see {}",
                p.log
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
