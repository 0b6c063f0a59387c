//! Local stand-ins for the container images the testbed's pods run: folders laid out like the
//! images' root file systems, which the node agent maps into each container's root. There is no
//! registry and no container runtime here, so an image is a folder plus a small `image.json`.
//! May touch: files under the cache folder (the Kafka image) and under the given destination
//! (the operator image); runs Maven once to resolve Kafka's command-line tools.
//!
//! Two images exist:
//!
//! | reference | root | built by |
//! |---|---|---|
//! | `apache/kafka:<version>` ([`kafka_image`]) | `<cache>/images/apache-kafka-<version>-r<N>` | [`kafka_image_root`] |
//! | [`OPERATOR_IMAGE`] | a folder the caller picks | [`operator_image_root`] |
//!
//! The Kafka root follows the official `apache/kafka` image: `opt/kafka/libs/` holds the jars
//! (those of [`crate::kafka::ensure_libs`], plus the command-line tools' jars),
//! `opt/kafka/bin/` shell scripts with the image's names, environment variables and defaults
//! (written here, POSIX `sh`), and `opt/kafka/config/` the default logging configurations. The
//! jars are hard links (or copies) rather than symbolic links: the root is seen from inside a
//! chroot, where a link to a host path would dangle. The root is shared by every pod and must
//! be treated as read-only; pods get their own writable folders through volumes.
//!
//! The operator root holds `usr/local/bin/{cluster,topic,user}-operator` like the image the
//! repository's `Dockerfile` builds.
//!
//! ## `image.json`
//!
//! At the top of every root, the part of an OCI image configuration the node agent needs:
//!
//! ```json
//! {"env": ["PATH=/opt/kafka/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
//!  "user": 1000, "workingDir": "/opt/kafka"}
//! ```
//!
//! - `env`: `NAME=value` strings, the image's environment; a container's own `env` entries
//!   override these by name.
//! - `user`: the numeric UID the image runs as when the pod's security context names none.
//! - `workingDir`: the folder the container's process starts in when the pod names none.
//! - `entrypoint` (optional): the command when the container names none (the operator image's
//!   `/usr/local/bin/cluster-operator`, as in the `Dockerfile`).

use std::{
    fs,
    io::ErrorKind,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::{cache::cache_dir, kafka, versions};

/// The operators' image, as `manifests/install/04-deployment.yaml` names it.
pub const OPERATOR_IMAGE: &str = "ghcr.io/oxbow-rs/oxbow:0.1.0";

/// The binaries of [`OPERATOR_IMAGE`], all in `/usr/local/bin`.
pub const OPERATOR_BINARIES: [&str; 3] = ["cluster-operator", "topic-operator", "user-operator"];

/// Name of the image configuration file at the top of every image root.
pub const IMAGE_CONFIG_FILE: &str = "image.json";

/// Revision of the Kafka root's layout, part of its cache folder's name: bump it whenever
/// [`kafka_layout`] or the jar selection changes, so that no stale root is reused.
const KAFKA_LAYOUT_REVISION: u32 = 1;

/// The image reference of Apache Kafka `version`: `apache/kafka:<version>`.
pub fn kafka_image(version: &str) -> String {
    format!("apache/kafka:{version}")
}

/// The part of an image's configuration the node agent uses (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageConfig {
    /// `NAME=value` environment of the image.
    pub env: Vec<String>,
    /// Numeric UID the image runs as.
    pub user: u32,
    /// Initial working folder of the image's processes.
    pub working_dir: String,
    /// The command when a container names none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
}

impl ImageConfig {
    /// Reads `<root>/image.json`.
    pub fn read(root: &Path) -> Result<ImageConfig> {
        let path = root.join(IMAGE_CONFIG_FILE);
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    fn kafka() -> ImageConfig {
        ImageConfig {
            env: vec![
                "PATH=/opt/kafka/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                    .to_owned(),
            ],
            user: 1000,
            working_dir: "/opt/kafka".to_owned(),
            // The real image's entrypoint configures a broker from the environment, which the
            // testbed's pods never rely on: they always name their command.
            entrypoint: Vec::new(),
        }
    }

    fn operator() -> ImageConfig {
        ImageConfig {
            env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".to_owned()],
            user: 65532,
            working_dir: "/".to_owned(),
            entrypoint: vec!["/usr/local/bin/cluster-operator".to_owned()],
        }
    }

    fn write(&self, root: &Path) -> Result<()> {
        let path = root.join(IMAGE_CONFIG_FILE);
        fs::write(&path, serde_json::to_string(self)? + "\n")
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// One file of an image root that is written from text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFile {
    /// Path relative to the root.
    pub path: &'static str,
    pub contents: &'static str,
    /// Permission bits.
    pub mode: u32,
}

/// The Kafka root's folders (relative to the root), created even when empty.
const KAFKA_DIRS: [&str; 4] = [
    "opt/kafka/bin",
    "opt/kafka/config",
    "opt/kafka/libs",
    "opt/kafka/logs",
];

/// The Kafka root's files written from text (the jars come on top). Pure.
pub fn kafka_layout() -> Vec<ImageFile> {
    let script = |path, contents| ImageFile {
        path,
        contents,
        mode: 0o755,
    };
    let config = |path, contents| ImageFile {
        path,
        contents,
        mode: 0o644,
    };
    vec![
        script("opt/kafka/bin/kafka-run-class.sh", KAFKA_RUN_CLASS_SH),
        script("opt/kafka/bin/kafka-server-start.sh", KAFKA_SERVER_START_SH),
        script("opt/kafka/bin/kafka-storage.sh", KAFKA_STORAGE_SH),
        script("opt/kafka/bin/kafka-topics.sh", KAFKA_TOPICS_SH),
        script(
            "opt/kafka/bin/kafka-console-producer.sh",
            KAFKA_CONSOLE_PRODUCER_SH,
        ),
        script(
            "opt/kafka/bin/kafka-console-consumer.sh",
            KAFKA_CONSOLE_CONSUMER_SH,
        ),
        config("opt/kafka/config/log4j2.yaml", SERVER_LOG4J2_YAML),
        config("opt/kafka/config/tools-log4j2.yaml", TOOLS_LOG4J2_YAML),
    ]
}

// The scripts behave like those of the `apache/kafka` image (same variables, defaults and
// arguments) but leave out what only applies to a source tree, Cygwin or Java 8. Option lists
// in variables are split into words on purpose, as users of these scripts expect; `set -f`
// keeps a `*` in them (e.g. `-Xlog:gc*`) from being expanded as a file name pattern.

const KAFKA_RUN_CLASS_SH: &str = r#"#!/bin/sh
# Oxbow testbed image of apache/kafka: runs a Java main class on Kafka's jars.
# usage: kafka-run-class.sh [-daemon] [-name servicename] [-loggc] classname [args]
# Reads KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS, KAFKA_GC_LOG_OPTS, KAFKA_JMX_OPTS, JMX_PORT,
# KAFKA_LOG4J_OPTS, KAFKA_OPTS, LOG_DIR, JAVA_HOME and CLASSPATH, as the image's script does.
usage() {
  echo "USAGE: $0 [-daemon] [-name servicename] [-loggc] classname [opts]" >&2
  exit 1
}
[ $# -ge 1 ] || usage

base_dir=$(cd "$(dirname -- "$0")/.." && pwd) || exit 1

if [ -z "$LOG_DIR" ]; then
  LOG_DIR=$base_dir/logs
fi
# The log folder is made when missing; a read-only image leaves it to the caller's LOG_DIR.
[ -d "$LOG_DIR" ] || mkdir -p "$LOG_DIR" 2>/dev/null || :

if [ -z "$KAFKA_LOG4J_OPTS" ]; then
  KAFKA_LOG4J_OPTS="-Dlog4j2.configurationFile=$base_dir/config/tools-log4j2.yaml"
fi
KAFKA_LOG4J_OPTS="-Dkafka.logs.dir=$LOG_DIR $KAFKA_LOG4J_OPTS"

if [ -z "$KAFKA_HEAP_OPTS" ]; then
  KAFKA_HEAP_OPTS="-Xmx256M"
fi
if [ -z "$KAFKA_JVM_PERFORMANCE_OPTS" ]; then
  KAFKA_JVM_PERFORMANCE_OPTS="-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true"
fi
if [ -z "$KAFKA_JMX_OPTS" ]; then
  KAFKA_JMX_OPTS="-Dcom.sun.management.jmxremote -Dcom.sun.management.jmxremote.authenticate=false -Dcom.sun.management.jmxremote.ssl=false"
fi
if [ -n "$JMX_PORT" ]; then
  KAFKA_JMX_OPTS="$KAFKA_JMX_OPTS -Dcom.sun.management.jmxremote.port=$JMX_PORT"
fi

if [ -n "$JAVA_HOME" ]; then
  java_bin=$JAVA_HOME/bin/java
else
  java_bin=java
fi

daemon_name=
daemon=false
gc_log=false
while [ $# -gt 0 ]; do
  case $1 in
    -name)
      [ $# -ge 2 ] || usage
      daemon_name=$2
      shift 2
      ;;
    -loggc)
      gc_log=true
      shift
      ;;
    -daemon)
      daemon=true
      shift
      ;;
    *)
      break
      ;;
  esac
done
[ $# -ge 1 ] || usage

# -loggc only applies when the caller set no GC logging of their own. Kafka needs Java 17, so
# only the unified logging syntax (Java 9 and later) is used.
if [ "$gc_log" = true ] && [ -z "$KAFKA_GC_LOG_OPTS" ]; then
  KAFKA_GC_LOG_OPTS="-Xlog:gc*:file=$LOG_DIR/$daemon_name-gc.log:time,tags:filecount=10,filesize=100M"
fi

class_path="$base_dir/libs/*"
if [ -n "$CLASSPATH" ]; then
  class_path="$CLASSPATH:$class_path"
fi

set -f
if [ "$daemon" = true ]; then
  # shellcheck disable=SC2086
  nohup "$java_bin" $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS $KAFKA_GC_LOG_OPTS $KAFKA_JMX_OPTS $KAFKA_LOG4J_OPTS -cp "$class_path" $KAFKA_OPTS "$@" >"$LOG_DIR/$daemon_name.out" 2>&1 </dev/null &
else
  # shellcheck disable=SC2086
  exec "$java_bin" $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS $KAFKA_GC_LOG_OPTS $KAFKA_JMX_OPTS $KAFKA_LOG4J_OPTS -cp "$class_path" $KAFKA_OPTS "$@"
fi
"#;

const KAFKA_SERVER_START_SH: &str = r#"#!/bin/sh
# Oxbow testbed image of apache/kafka: starts a Kafka node (broker and/or controller).
# usage: kafka-server-start.sh [-daemon] server.properties [--override property=value]...
# EXTRA_ARGS (default: -name kafkaServer -loggc) go to kafka-run-class.sh before the class.
usage() {
  echo "USAGE: $0 [-daemon] server.properties [--override property=value]*" >&2
  exit 1
}
[ $# -ge 1 ] || usage

base_dir=$(cd "$(dirname -- "$0")/.." && pwd) || exit 1

if [ -z "$KAFKA_LOG4J_OPTS" ]; then
  KAFKA_LOG4J_OPTS="-Dlog4j2.configurationFile=$base_dir/config/log4j2.yaml"
fi
if [ -z "$KAFKA_HEAP_OPTS" ]; then
  KAFKA_HEAP_OPTS="-Xmx1G -Xms1G"
fi
export KAFKA_LOG4J_OPTS KAFKA_HEAP_OPTS

# Set but empty means no extra arguments at all.
extra_args=${EXTRA_ARGS--name kafkaServer -loggc}
if [ "$1" = -daemon ]; then
  extra_args="-daemon $extra_args"
  shift
  [ $# -ge 1 ] || usage
fi

set -f
# shellcheck disable=SC2086
exec "$base_dir/bin/kafka-run-class.sh" $extra_args kafka.Kafka "$@"
"#;

const KAFKA_STORAGE_SH: &str = r#"#!/bin/sh
# Oxbow testbed image of apache/kafka: formats and inspects KRaft storage (random-uuid, format, info).
exec "$(dirname -- "$0")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
"#;

const KAFKA_TOPICS_SH: &str = r#"#!/bin/sh
# Oxbow testbed image of apache/kafka: creates, lists, describes, alters and deletes topics.
exec "$(dirname -- "$0")/kafka-run-class.sh" org.apache.kafka.tools.TopicCommand "$@"
"#;

const KAFKA_CONSOLE_PRODUCER_SH: &str = r#"#!/bin/sh
# Oxbow testbed image of apache/kafka: sends lines read from standard input to a topic.
if [ -z "$KAFKA_HEAP_OPTS" ]; then
  KAFKA_HEAP_OPTS="-Xmx512M"
  export KAFKA_HEAP_OPTS
fi
exec "$(dirname -- "$0")/kafka-run-class.sh" org.apache.kafka.tools.ConsoleProducer "$@"
"#;

const KAFKA_CONSOLE_CONSUMER_SH: &str = r#"#!/bin/sh
# Oxbow testbed image of apache/kafka: prints a topic's records to standard output.
if [ -z "$KAFKA_HEAP_OPTS" ]; then
  KAFKA_HEAP_OPTS="-Xmx512M"
  export KAFKA_HEAP_OPTS
fi
exec "$(dirname -- "$0")/kafka-run-class.sh" org.apache.kafka.tools.consumer.ConsoleConsumer "$@"
"#;

/// Default of `kafka-server-start.sh`: everything at INFO to standard output, which the node
/// agent keeps as the container's log.
const SERVER_LOG4J2_YAML: &str = r#"# Oxbow testbed image of apache/kafka: the broker's default logging, to standard output.
Configuration:
  Appenders:
    Console:
      name: STDOUT
      target: SYSTEM_OUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.request.logger
        level: WARN
"#;

/// Default of the other scripts: warnings only, to standard error, so that a tool's own output
/// stays clean.
const TOOLS_LOG4J2_YAML: &str = r#"# Oxbow testbed image of apache/kafka: the command-line tools' default logging.
Configuration:
  Appenders:
    Console:
      name: STDERR
      target: SYSTEM_ERR
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDERR
"#;

/// The root folder of [`kafka_image`]`(version)`, built on first use and cached (see the module
/// documentation). Only the testbed's pinned Kafka version ([`versions::kafka`]) can be built.
/// Blocking: minutes when Maven has not resolved the jars yet.
pub fn kafka_image_root(version: &str) -> Result<PathBuf> {
    let pinned = versions::kafka();
    ensure!(
        version == pinned,
        "no local image for {}: the testbed only has Kafka {pinned} ({}); pin another version in \
         e2e/testenv/versions.env",
        kafka_image(version),
        kafka_image(pinned),
    );
    let images = cache_dir().join("images");
    let name = format!("apache-kafka-{version}-r{KAFKA_LAYOUT_REVISION}");
    let root = images.join(&name);
    if root.join(IMAGE_CONFIG_FILE).exists() {
        return Ok(root);
    }
    let libs = kafka::ensure_libs()?;
    let tools_libs = ensure_tools_libs(version)?;
    fs::create_dir_all(&images).with_context(|| format!("creating {}", images.display()))?;
    // Built aside and renamed into place, so that a root that exists is always complete.
    let work = images.join(format!(".{name}.partial-{}", std::process::id()));
    remove_if_exists(&work)?;
    let built = build_kafka_root(&work, &libs, &tools_libs);
    if let Err(e) = built {
        let _ = fs::remove_dir_all(&work);
        return Err(e.context(format!("building the image root {}", root.display())));
    }
    match fs::rename(&work, &root) {
        Ok(()) => Ok(root),
        // Another process finished first; its root is the same.
        Err(_) if root.join(IMAGE_CONFIG_FILE).exists() => {
            let _ = fs::remove_dir_all(&work);
            Ok(root)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&work);
            Err(e).with_context(|| format!("moving {} to {}", work.display(), root.display()))
        }
    }
}

fn build_kafka_root(root: &Path, libs: &Path, tools_libs: &Path) -> Result<()> {
    for dir in ["", "opt", "opt/kafka"].into_iter().chain(KAFKA_DIRS) {
        make_dir(&root.join(dir))?;
    }
    for file in kafka_layout() {
        let path = root.join(file.path);
        fs::write(&path, file.contents).with_context(|| format!("writing {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(file.mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
    }
    let dest = root.join("opt/kafka/libs");
    let server_jars = jar_names(libs)?;
    for jar in &server_jars {
        link_or_copy(&libs.join(jar), &dest.join(jar))?;
    }
    for jar in tool_only_jars(&server_jars, &jar_names(tools_libs)?) {
        link_or_copy(&tools_libs.join(&jar), &dest.join(&jar))?;
    }
    ImageConfig::kafka().write(root)
}

fn jar_names(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".jar") {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// The artifact name of a Maven jar file name: `log4j-core-2.24.3.jar` -> `log4j-core`,
/// `kafka_2.13-4.1.2.jar` -> `kafka_2.13` (the version starts at the first `-` before a digit).
fn artifact_of(jar: &str) -> &str {
    let stem = jar.strip_suffix(".jar").unwrap_or(jar);
    stem.char_indices()
        .find(|&(i, c)| {
            c == '-'
                && stem[i + 1..]
                    .chars()
                    .next()
                    .is_some_and(|d| d.is_ascii_digit())
        })
        .map_or(stem, |(i, _)| &stem[..i])
}

/// The tools' jars whose artifact the server's jars lack. The server's set is taken as is, so
/// that the broker runs on exactly the jars the testbed's own Kafka runs on; a second version
/// of an artifact on the class path would make the JVM pick either.
fn tool_only_jars(server: &[String], tools: &[String]) -> Vec<String> {
    let have: std::collections::BTreeSet<&str> = server.iter().map(|j| artifact_of(j)).collect();
    tools
        .iter()
        .filter(|j| !have.contains(artifact_of(j)))
        .cloned()
        .collect()
}

fn tools_pom(version: &str) -> String {
    // The command-line tools (kafka-topics.sh, the console clients) live in `kafka-tools`, which
    // the server's jars leave out. The dependency plugin is pinned as in `kafka::ensure_libs`.
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.oxbow</groupId>
  <artifactId>kafka-tools-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>{version}</version></dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId><version>3.8.1</version></plugin>
    </plugins>
  </build>
</project>
"#
    )
}

/// The runtime jars of `org.apache.kafka:kafka-tools:<version>`, resolved with Maven on first
/// use and cached under [`cache_dir`].
fn ensure_tools_libs(version: &str) -> Result<PathBuf> {
    let root = cache_dir().join(format!("kafka-tools-{version}"));
    let libs = root.join("libs");
    if libs.join(format!("kafka-tools-{version}.jar")).exists() {
        return Ok(libs);
    }
    fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let work = root.join(format!("partial-{}", std::process::id()));
    remove_if_exists(&work)?;
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let pom = work.join("pom.xml");
    fs::write(&pom, tools_pom(version)).with_context(|| format!("writing {}", pom.display()))?;
    let out_dir = work.join("libs");
    let output = crate::kafka::maven_copy_dependencies(&pom, &out_dir)?;
    if !output.status.success() {
        let _ = fs::remove_dir_all(&work);
        bail!(
            "mvn could not resolve kafka-tools {version} ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    if libs.join(format!("kafka-tools-{version}.jar")).exists() {
        // Another process finished first; its jars are the same.
        let _ = fs::remove_dir_all(&work);
        return Ok(libs);
    }
    // The folder moves in whole, so the tools jar in it marks it complete.
    remove_if_exists(&libs)?;
    fs::rename(&out_dir, &libs)
        .with_context(|| format!("moving {} to {}", out_dir.display(), libs.display()))?;
    let _ = fs::remove_dir_all(&work);
    ensure!(
        libs.join(format!("kafka-tools-{version}.jar")).exists(),
        "mvn finished but kafka-tools-{version}.jar is missing from {}",
        libs.display()
    );
    Ok(libs)
}

/// Builds the root of [`OPERATOR_IMAGE`] at `dest` (replacing what is there) from the operator
/// binaries in `bin_dir`, the Cargo target folder the running testbed binary sits in
/// (`std::env::current_exe()?.parent()`). Returns `dest`.
pub fn operator_image_root(dest: &Path, bin_dir: &Path) -> Result<PathBuf> {
    let missing: Vec<&str> = OPERATOR_BINARIES
        .into_iter()
        .filter(|b| !bin_dir.join(b).is_file())
        .collect();
    ensure!(
        missing.is_empty(),
        "the operator image needs {} in {}: run `cargo build --workspace` first",
        missing.join(", "),
        bin_dir.display()
    );
    remove_if_exists(dest)?;
    for dir in ["", "usr", "usr/local", "usr/local/bin"] {
        make_dir(&dest.join(dir))?;
    }
    for b in OPERATOR_BINARIES {
        link_or_copy(&bin_dir.join(b), &dest.join("usr/local/bin").join(b))?;
    }
    ImageConfig::operator().write(dest)?;
    Ok(dest.to_path_buf())
}

fn make_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Readable by the images' non-root users whatever the umask.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("setting the mode of {}", dir.display()))
}

fn remove_if_exists(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// A hard link when `src` and `dst` share a file system, else a copy (which keeps the mode).
fn link_or_copy(src: &Path, dst: &Path) -> Result<()> {
    if fs::hard_link(src, dst).is_ok() {
        return Ok(());
    }
    fs::copy(src, dst)
        .map(|_| ())
        .with_context(|| format!("copying {} to {}", src.display(), dst.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> ImageFile {
        kafka_layout()
            .into_iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("{path} is not in the layout"))
    }

    #[test]
    fn kafka_image_reference() {
        assert_eq!(kafka_image("4.1.2"), "apache/kafka:4.1.2");
    }

    #[test]
    fn layout_has_the_image_scripts_under_opt_kafka() {
        let layout = kafka_layout();
        for script in [
            "kafka-run-class.sh",
            "kafka-server-start.sh",
            "kafka-storage.sh",
            "kafka-topics.sh",
            "kafka-console-producer.sh",
            "kafka-console-consumer.sh",
        ] {
            let f = file(&format!("opt/kafka/bin/{script}"));
            assert_eq!(f.mode, 0o755, "{script}");
            assert!(f.contents.starts_with("#!/bin/sh\n"), "{script}");
        }
        for f in &layout {
            assert!(
                KAFKA_DIRS
                    .iter()
                    .any(|d| Path::new(f.path).parent() == Some(Path::new(d))),
                "{} is outside the layout's folders",
                f.path
            );
        }
        assert_eq!(file("opt/kafka/config/log4j2.yaml").mode, 0o644);
    }

    #[test]
    fn run_class_execs_java_with_the_image_variables() {
        let s = file("opt/kafka/bin/kafka-run-class.sh").contents;
        assert!(s.contains(
            "exec \"$java_bin\" $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS $KAFKA_GC_LOG_OPTS \
             $KAFKA_JMX_OPTS $KAFKA_LOG4J_OPTS -cp \"$class_path\" $KAFKA_OPTS \"$@\""
        ));
        assert!(s.contains("class_path=\"$base_dir/libs/*\""));
        assert!(s.contains("KAFKA_HEAP_OPTS=\"-Xmx256M\""));
        assert!(s.contains(
            "KAFKA_JVM_PERFORMANCE_OPTS=\"-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
             -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
             -XX:MaxInlineLevel=15 -Djava.awt.headless=true\""
        ));
        assert!(s.contains("KAFKA_LOG4J_OPTS=\"-Dkafka.logs.dir=$LOG_DIR $KAFKA_LOG4J_OPTS\""));
        assert!(s.contains("LOG_DIR=$base_dir/logs"));
    }

    #[test]
    fn server_start_needs_a_properties_file_and_defaults_to_one_gigabyte() {
        let s = file("opt/kafka/bin/kafka-server-start.sh").contents;
        assert!(s.contains("[ $# -ge 1 ] || usage"));
        assert!(s.contains("KAFKA_HEAP_OPTS=\"-Xmx1G -Xms1G\""));
        assert!(
            s.contains("exec \"$base_dir/bin/kafka-run-class.sh\" $extra_args kafka.Kafka \"$@\"")
        );
        assert!(s.contains("-Dlog4j2.configurationFile=$base_dir/config/log4j2.yaml"));
    }

    #[test]
    fn storage_runs_the_storage_tool() {
        let s = file("opt/kafka/bin/kafka-storage.sh").contents;
        assert!(s.contains("kafka-run-class.sh\" kafka.tools.StorageTool \"$@\""));
    }

    #[test]
    fn image_config_uses_the_documented_field_names() {
        let json = serde_json::to_value(ImageConfig::kafka()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "env": ["PATH=/opt/kafka/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "user": 1000,
                "workingDir": "/opt/kafka",
            })
        );
        let json = serde_json::to_value(ImageConfig::operator()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "env": ["PATH=/usr/local/bin:/usr/bin:/bin"],
                "user": 65532,
                "workingDir": "/",
                "entrypoint": ["/usr/local/bin/cluster-operator"],
            })
        );
    }

    #[test]
    fn artifact_names_drop_the_version() {
        assert_eq!(artifact_of("log4j-core-2.24.3.jar"), "log4j-core");
        assert_eq!(artifact_of("kafka_2.13-4.1.2.jar"), "kafka_2.13");
        assert_eq!(artifact_of("zstd-jni-1.5.6-10.jar"), "zstd-jni");
        assert_eq!(artifact_of("javassist-3.30.2-GA.jar"), "javassist");
        assert_eq!(artifact_of("noversion.jar"), "noversion");
    }

    #[test]
    fn tools_add_only_artifacts_the_server_lacks() {
        let server = ["kafka-clients-4.1.2.jar", "log4j-core-2.24.3.jar"].map(String::from);
        let tools = [
            "kafka-clients-4.1.2.jar",
            "kafka-tools-4.1.2.jar",
            "log4j-core-2.25.3.jar",
        ]
        .map(String::from);
        assert_eq!(tool_only_jars(&server, &tools), ["kafka-tools-4.1.2.jar"]);
    }

    #[test]
    fn other_kafka_versions_are_refused() {
        let err = kafka_image_root("0.0.1").unwrap_err().to_string();
        assert!(err.contains("apache/kafka:0.0.1"), "{err}");
        assert!(err.contains(versions::kafka()), "{err}");
    }

    #[test]
    fn operator_root_holds_the_binaries_and_its_config() {
        let bins = tempfile::tempdir().unwrap();
        let dest = tempfile::tempdir().unwrap();
        let root = dest.path().join("oxbow");
        let err = operator_image_root(&root, bins.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("cargo build --workspace"), "{err}");
        for b in OPERATOR_BINARIES {
            fs::write(bins.path().join(b), b).unwrap();
            fs::set_permissions(bins.path().join(b), fs::Permissions::from_mode(0o755)).unwrap();
        }
        // Twice: a second build replaces the first.
        operator_image_root(&root, bins.path()).unwrap();
        assert_eq!(operator_image_root(&root, bins.path()).unwrap(), root);
        for b in OPERATOR_BINARIES {
            let path = root.join("usr/local/bin").join(b);
            assert_eq!(fs::read_to_string(&path).unwrap(), b);
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o755
            );
        }
        assert_eq!(ImageConfig::read(&root).unwrap(), ImageConfig::operator());
    }
}
