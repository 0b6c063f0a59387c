//! The topic operator's settings, read once at start from `OXBOW_*` environment variables. A
//! missing or malformed setting stops the operator with a message naming the variable.
//! May touch: nothing but the lookup function it is given (and, through `KafkaConnection`, the
//! existence of the files it names).

use std::{net::SocketAddr, time::Duration};

use oxbow_runtime::{
    kafka::KafkaConnection,
    settings::{SettingError, Settings},
    telemetry::LogFormat,
};

use crate::plan::{NamesError, SyncMode, TopicFilter};

/// Everything the topic operator is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The namespace whose `KafkaTopic` resources are watched and where new ones are created.
    pub namespace: String,
    /// The Kafka cluster: `KafkaTopic`s must carry `oxbow.rs/cluster=<cluster>`.
    pub cluster: String,
    pub kafka: KafkaConnection,
    pub sync: SyncMode,
    /// How often Kafka is polled for changes made there (KRaft has no watches).
    pub kafka_poll_interval: Duration,
    /// How often every topic is reconciled even when nothing was seen to change.
    pub full_reconciliation_interval: Duration,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub http_addr: SocketAddr,
    pub log_format: LogFormat,
    /// `OXBOW_TOPIC_INCLUDE_PATTERN`: when set, only Kafka topics whose whole name matches this
    /// regex are managed (default: all). Lets several operators share one Kafka, each with its
    /// own prefix, which an exclude pattern alone cannot express (no look-ahead in Rust regex).
    pub include_pattern: Option<String>,
    /// `OXBOW_TOPIC_EXCLUDE_PATTERN`: Kafka topics never managed (besides internal `__*`
    /// topics); whole-name regex, applied after the include pattern.
    pub exclude_pattern: Option<String>,
    /// Most Kubernetes writes in flight at once.
    pub kube_write_concurrency: usize,
    /// `OXBOW_PASS_CHUNK_TOPICS`: topics a sync pass observes, plans and acts on at once; what a
    /// pass holds in memory grows with this, not with the number of topics. With one chunk's
    /// writes in flight while the next is planned, 500 peaked at 60.8 to 62.0 MiB at 10,000
    /// topics; 250 was no lighter (61.9 MiB) and slower.
    pub pass_chunk: usize,
    /// Deadline of one Kafka admin request.
    pub kafka_operation_timeout: Duration,
    /// How long a known topic must stay missing from Kafka's metadata before its `KafkaTopic`
    /// is deleted (bidirectional mode): one stale read during a broker restart is not proof.
    pub kafka_deletion_confirm: Duration,
}

impl Config {
    /// Reads and checks every setting.
    pub fn from_settings<F: Fn(&str) -> Option<String>>(
        s: &Settings<F>,
    ) -> Result<Config, SettingError> {
        let sync = match s.one_of(
            "OXBOW_TOPIC_SYNC",
            &["bidirectional", "kubernetes-to-kafka"],
            "bidirectional",
        )? {
            "kubernetes-to-kafka" => SyncMode::KubernetesToKafka,
            _ => SyncMode::Bidirectional,
        };
        let include_pattern = s.get("OXBOW_TOPIC_INCLUDE_PATTERN");
        let exclude_pattern = s.get("OXBOW_TOPIC_EXCLUDE_PATTERN");
        if let Err(e) =
            TopicFilter::with_include(include_pattern.as_deref(), exclude_pattern.as_deref())
        {
            let (name, value) = match e {
                NamesError::InvalidIncludePattern { .. } => {
                    ("OXBOW_TOPIC_INCLUDE_PATTERN", &include_pattern)
                }
                NamesError::InvalidExcludePattern { .. } => {
                    ("OXBOW_TOPIC_EXCLUDE_PATTERN", &exclude_pattern)
                }
            };
            return Err(SettingError::Invalid {
                name: name.into(),
                value: value.clone().unwrap_or_default(),
                expected: format!("a regular expression ({e})"),
            });
        }
        let positive_secs = |name: &str, default: u64| -> Result<Duration, SettingError> {
            let v: u64 = s.parse_or(name, default)?;
            if v == 0 {
                return Err(SettingError::Invalid {
                    name: name.into(),
                    value: "0".into(),
                    expected: "a whole number of seconds above 0".into(),
                });
            }
            Ok(Duration::from_secs(v))
        };
        let log_format = match s.one_of("OXBOW_LOG_FORMAT", &["text", "json"], "text")? {
            "json" => LogFormat::Json,
            _ => LogFormat::Text,
        };
        let concurrency: usize = s.parse_or("OXBOW_KUBE_WRITE_CONCURRENCY", 32)?;
        Ok(Config {
            namespace: s.required("OXBOW_NAMESPACE")?,
            cluster: s.required("OXBOW_CLUSTER")?,
            kafka: KafkaConnection::from_settings(s)?,
            sync,
            kafka_poll_interval: positive_secs("OXBOW_KAFKA_POLL_INTERVAL_SECONDS", 15)?,
            full_reconciliation_interval: positive_secs(
                "OXBOW_FULL_RECONCILIATION_INTERVAL_SECONDS",
                300,
            )?,
            http_addr: s.parse_or("OXBOW_HTTP_ADDR", SocketAddr::from(([0, 0, 0, 0], 8080)))?,
            log_format,
            include_pattern,
            exclude_pattern,
            kube_write_concurrency: concurrency.max(1),
            pass_chunk: s.parse_or::<usize>("OXBOW_PASS_CHUNK_TOPICS", 500)?.max(1),
            kafka_operation_timeout: positive_secs("OXBOW_KAFKA_OPERATION_TIMEOUT_SECONDS", 30)?,
            kafka_deletion_confirm: positive_secs("OXBOW_KAFKA_DELETION_CONFIRM_SECONDS", 10)?,
        })
    }

    /// The filter of managed Kafka topics (the patterns were checked in [`Config::from_settings`]).
    pub fn topic_filter(&self) -> TopicFilter {
        TopicFilter::with_include(
            self.include_pattern.as_deref(),
            self.exclude_pattern.as_deref(),
        )
        .expect("checked when the config was read")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use oxbow_runtime::settings::map_settings as settings;

    const MINIMAL: &[(&str, &str)] = &[
        ("OXBOW_NAMESPACE", "kafka"),
        ("OXBOW_CLUSTER", "my-cluster"),
        (
            "OXBOW_KAFKA_BOOTSTRAP_SERVERS",
            "my-cluster-kafka-bootstrap:9092",
        ),
    ];

    #[test]
    fn defaults_apply_to_a_minimal_configuration() {
        let c = Config::from_settings(&settings(MINIMAL)).unwrap();
        assert_eq!(c.sync, SyncMode::Bidirectional);
        assert_eq!(c.http_addr.port(), 8080);
        assert_eq!(c.kafka_poll_interval, Duration::from_secs(15));
        assert_eq!(c.kafka_deletion_confirm, Duration::from_secs(10));
        assert_eq!(c.pass_chunk, 500);
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn each_required_setting_is_named_when_missing() {
        for missing in [
            "OXBOW_NAMESPACE",
            "OXBOW_CLUSTER",
            "OXBOW_KAFKA_BOOTSTRAP_SERVERS",
        ] {
            let pairs: Vec<_> = MINIMAL
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            let err = Config::from_settings(&settings(&pairs)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("{missing} is required but not set")
            );
        }
    }

    #[test]
    fn wrong_values_are_refused_with_the_variable_named() {
        let cases = [
            ("OXBOW_TOPIC_SYNC", "kafka-to-kubernetes"),
            ("OXBOW_KAFKA_POLL_INTERVAL_SECONDS", "0"),
            ("OXBOW_KAFKA_POLL_INTERVAL_SECONDS", "often"),
            ("OXBOW_HTTP_ADDR", "localhost"),
            ("OXBOW_LOG_FORMAT", "yaml"),
            ("OXBOW_PASS_CHUNK_TOPICS", "many"),
            ("OXBOW_TOPIC_EXCLUDE_PATTERN", "("),
            ("OXBOW_TOPIC_INCLUDE_PATTERN", "[a-"),
        ];
        for (name, value) in cases {
            let mut pairs = MINIMAL.to_vec();
            pairs.push((name, value));
            let err = Config::from_settings(&settings(&pairs)).unwrap_err();
            assert!(
                err.to_string().starts_with(&format!("{name}=")),
                "{name}={value}: {err}"
            );
        }
    }

    #[test]
    fn include_and_exclude_patterns_make_the_topic_filter() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("OXBOW_TOPIC_INCLUDE_PATTERN", "team-a\\..*"));
        pairs.push(("OXBOW_TOPIC_EXCLUDE_PATTERN", ".*-tmp"));
        let filter = Config::from_settings(&settings(&pairs))
            .unwrap()
            .topic_filter();
        assert!(filter.is_managed("team-a.orders"));
        assert!(!filter.is_managed("team-b.orders"));
        assert!(!filter.is_managed("team-a.orders-tmp"));
        let all = Config::from_settings(&settings(MINIMAL))
            .unwrap()
            .topic_filter();
        assert!(
            all.is_managed("team-b.orders"),
            "no include pattern: every topic"
        );
    }

    #[test]
    fn one_way_mode_is_read() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("OXBOW_TOPIC_SYNC", "kubernetes-to-kafka"));
        assert_eq!(
            Config::from_settings(&settings(&pairs)).unwrap().sync,
            SyncMode::KubernetesToKafka
        );
    }
}
