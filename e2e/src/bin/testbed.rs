//! `testbed up|down|env|prepare`: starts or stops Oxbow's testbed (real Kubernetes control plane
//! and real Kafka on loopback, a pod network and node agents that run pods as processes). `up`
//! prints shell exports: `eval "$(target/debug/testbed up --nodes 1)"`. Needs root.

use std::time::Instant;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "Oxbow's testbed: a real Kubernetes control plane and a real Kafka on loopback"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start (or reuse) the testbed and print shell `export` lines.
    Up {
        /// Kafka nodes: 1, or 3 for replication and ISR tests.
        #[arg(long, default_value_t = 1)]
        kafka_nodes: usize,
        /// Maximum JVM heap of each Kafka node, as -Xmx takes it (e.g. 2g for 10,000 topics).
        #[arg(long, env = "OXBOW_TESTBED_KAFKA_HEAP", default_value = e2e::kafka::DEFAULT_HEAP)]
        kafka_heap: String,
        /// Testbed Nodes, each a `node-agent` process running the pods bound to it (0: none).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=i64::from(e2e::testbed::MAX_NODES)))]
        nodes: u8,
    },
    /// Stop everything `up` started and remove its state.
    Down,
    /// Print the exports of the running testbed.
    Env,
    /// Only build and download what the testbed needs (control plane binaries, Kafka jars, the
    /// local apache/kafka image).
    Prepare,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Up {
            kafka_nodes,
            kafka_heap,
            nodes,
        } => {
            anyhow::ensure!(
                matches!(kafka_nodes, 1 | 3),
                "--kafka-nodes must be 1 or 3, not {kafka_nodes}"
            );
            e2e::kafka::heap_mib(&kafka_heap)?;
            let started = Instant::now();
            let state = e2e::testbed::up(&e2e::testbed::UpOptions {
                kafka_nodes,
                kafka_heap,
                nodes,
            })
            .await?;
            print!("{}", state.shell_exports());
            eprintln!("testbed up in {:.1}s", started.elapsed().as_secs_f64());
        }
        Cmd::Down => e2e::testbed::down()?,
        Cmd::Env => match e2e::testbed::read_state()? {
            Some(state) => print!("{}", state.shell_exports()),
            None => anyhow::bail!("no testbed is running"),
        },
        Cmd::Prepare => {
            let started = Instant::now();
            let (k, f) = tokio::join!(
                tokio::task::spawn_blocking(e2e::k8s::ensure_binaries),
                tokio::task::spawn_blocking(e2e::kafka::ensure_libs)
            );
            eprintln!("control plane: {}", k??.display());
            eprintln!("kafka libs: {}", f??.display());
            // After the jars: the image is built from them.
            let version = e2e::versions::kafka();
            let image = tokio::task::spawn_blocking(move || e2e::images::kafka_image_root(version));
            eprintln!(
                "{} image root: {}",
                e2e::images::kafka_image(version),
                image.await??.display()
            );
            eprintln!("prepared in {:.1}s", started.elapsed().as_secs_f64());
        }
    }
    Ok(())
}
