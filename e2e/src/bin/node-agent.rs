//! `node-agent`: the testbed's kubelet for one Node (see `e2e::agent`). Started by `testbed up
//! --nodes N`, one process per node, as root; it stops its pods on SIGTERM.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Oxbow's testbed node agent: runs the pods bound to one Node as processes"
)]
struct Cli {
    /// Node index, 1-based: the node is `oxbow-node-<index>`, its pods get 198.18.<index>.x.
    #[arg(long)]
    index: u8,
    /// Admin kubeconfig of the testbed's API server.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// The agent's own folder (pods, logs, container roots).
    #[arg(long)]
    dir: PathBuf,
    /// The API server as pods reach it: `<ip>:<port>` (becomes KUBERNETES_SERVICE_HOST/PORT).
    #[arg(long)]
    api_server: String,
    /// An image and the local root folder laid out like it: `<reference>=<folder>`; repeatable.
    #[arg(long = "image", value_parser = parse_image)]
    images: Vec<(String, PathBuf)>,
    /// Also run the PersistentVolume provisioner, with volumes under this folder (one agent does).
    #[arg(long)]
    volumes_dir: Option<PathBuf>,
    /// Also keep the hosts file of the tests' client network namespace (one agent does).
    #[arg(long)]
    client_hosts: Option<PathBuf>,
}

fn parse_image(s: &str) -> Result<(String, PathBuf), String> {
    let (reference, root) = s
        .split_once('=')
        .ok_or_else(|| format!("expected <image>=<folder>, got {s:?}"))?;
    Ok((reference.to_owned(), PathBuf::from(root)))
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    e2e::agent::run(e2e::agent::AgentConfig {
        index: cli.index,
        kubeconfig: cli.kubeconfig,
        dir: cli.dir,
        api_server: cli.api_server,
        images: cli.images.into_iter().collect(),
        volumes_dir: cli.volumes_dir,
        client_hosts: cli.client_hosts,
    })
    .await
}
