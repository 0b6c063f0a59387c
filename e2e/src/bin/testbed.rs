//! `testbed up|down|env`: starts or stops Oxbow's testbed (real Kubernetes control plane and real
//! Kafka on loopback). `up` prints shell exports: `eval "$(cargo run -p e2e --bin testbed -- up)"`.

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
    },
    /// Stop everything `up` started and remove its state.
    Down,
    /// Print the exports of the running testbed.
    Env,
    /// Only build and download what the testbed needs (control plane binaries, Kafka jars).
    Prepare,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Up {
            kafka_nodes,
            kafka_heap,
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
            eprintln!("prepared in {:.1}s", started.elapsed().as_secs_f64());
        }
    }
    Ok(())
}
