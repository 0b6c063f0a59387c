//! Long-running child processes of the testbed: free loopback ports, spawning detached processes
//! (their own process group, output to a log file) that outlive `testbed up`, waiting for them to
//! listen, and stopping them. May touch: processes, log files, loopback sockets.

use std::{
    fs::File,
    net::{SocketAddr, TcpListener, TcpStream},
    os::unix::process::CommandExt,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use serde::{Deserialize, Serialize};

/// A process the testbed started, as recorded in its state file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Started {
    pub name: String,
    pub pid: u32,
    pub log: String,
}

/// A free TCP port on 127.0.0.1 (the OS picks it; it is released before return).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding an ephemeral port")?;
    Ok(l.local_addr()?.port())
}

/// Starts `cmd` detached: new process group, stdin closed, stdout and stderr appended to `log`.
/// The process keeps running after the caller exits; stop it with [`stop`].
pub fn spawn_detached(name: &str, mut cmd: Command, log: &Path) -> Result<Started> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening log {}", log.display()))?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
    Ok(Started {
        name: name.to_string(),
        pid: child.id(),
        log: log.display().to_string(),
    })
}

/// True while the process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state is the field after the parenthesised command name.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

/// Waits until something accepts TCP connections on `addr`, failing early if `proc` died.
pub fn wait_for_port(proc: &Started, addr: SocketAddr, deadline: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if !alive(proc.pid) {
            bail!(
                "{} exited before listening on {addr}; see {}",
                proc.name,
                proc.log
            );
        }
        if start.elapsed() > deadline {
            bail!(
                "{} did not listen on {addr} within {deadline:?}; see {}",
                proc.name,
                proc.log
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops a process group: SIGTERM, up to `grace` to exit, then SIGKILL.
pub fn stop(proc: &Started, grace: Duration) {
    let pgid = Pid::from_raw(proc.pid as i32);
    if !alive(proc.pid) {
        // The leader may be gone while its group still has members.
        let _ = killpg(pgid, Signal::SIGKILL);
        return;
    }
    let _ = killpg(pgid, Signal::SIGTERM);
    let start = Instant::now();
    while alive(proc.pid) && start.elapsed() < grace {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = killpg(pgid, Signal::SIGKILL);
    let start = Instant::now();
    while alive(proc.pid) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
}
