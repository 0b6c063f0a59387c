//! The Kafka versions this Oxbow release runs, their default KRaft metadata versions and their
//! default images, and the check of a requested metadata version. Pure: no I/O.
//!
//! Only Kafka 4.x is supported: it is KRaft-only, so there is no ZooKeeper mode to migrate from,
//! and its PEM key stores and static controller quorum are what the generated configuration
//! uses. A version is listed once it has been run against the testbed (which pins 4.1.2).

use std::cmp::Ordering;

/// A Kafka release Oxbow can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SupportedKafkaVersion {
    /// The release, e.g. `4.1.2`.
    pub version: &'static str,
    /// The newest production KRaft metadata version of the release, used when
    /// `spec.kafka.metadataVersion` is absent.
    pub metadata_version: &'static str,
}

/// The supported releases, oldest first.
pub const SUPPORTED_KAFKA_VERSIONS: &[SupportedKafkaVersion] = &[
    SupportedKafkaVersion {
        version: "4.0.0",
        metadata_version: "4.0-IV3",
    },
    SupportedKafkaVersion {
        version: "4.0.1",
        metadata_version: "4.0-IV3",
    },
    SupportedKafkaVersion {
        version: "4.1.0",
        metadata_version: "4.1-IV1",
    },
    SupportedKafkaVersion {
        version: "4.1.1",
        metadata_version: "4.1-IV1",
    },
    SupportedKafkaVersion {
        version: "4.1.2",
        metadata_version: "4.1-IV1",
    },
];

/// The version used when `spec.kafka.version` is absent: the newest supported.
pub const DEFAULT_KAFKA_VERSION: &str = "4.1.2";

/// The oldest metadata version Kafka 4 can run with (the first one KRaft production clusters
/// could be bootstrapped with).
pub const MINIMUM_METADATA_VERSION: &str = "3.3-IV3";

/// The supported release `version`, if it is one.
pub fn supported_version(version: &str) -> Option<&'static SupportedKafkaVersion> {
    SUPPORTED_KAFKA_VERSIONS
        .iter()
        .find(|v| v.version == version)
}

/// The supported versions as a comma-separated list, for error messages.
pub fn supported_versions_list() -> String {
    SUPPORTED_KAFKA_VERSIONS
        .iter()
        .map(|v| v.version)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The image used for `version` when neither the spec nor the operator names one: the official
/// `apache/kafka` image of that release.
pub fn default_image(version: &str) -> String {
    format!("apache/kafka:{version}")
}

/// A KRaft metadata version: `<major>.<minor>` or `<major>.<minor>-IV<n>`. Without `-IV<n>` it
/// stands for the newest metadata version of that release, as Kafka's tools read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetadataVersion {
    /// Major release number.
    pub major: u32,
    /// Minor release number.
    pub minor: u32,
    /// The "inter-version" suffix; `None` for the release's newest.
    pub iv: Option<u32>,
}

impl MetadataVersion {
    /// Parses `4.1`, `4.1-IV1` and the like; `None` for anything else.
    pub fn parse(text: &str) -> Option<MetadataVersion> {
        let (release, iv) = match text.split_once("-IV") {
            Some((release, iv)) => (release, Some(parse_number(iv)?)),
            None => (text, None),
        };
        let (major, minor) = release.split_once('.')?;
        Some(MetadataVersion {
            major: parse_number(major)?,
            minor: parse_number(minor)?,
            iv,
        })
    }

    /// Orders versions; a version without `-IV<n>` is the newest of its release.
    fn compare(&self, other: &MetadataVersion) -> Ordering {
        (self.major, self.minor)
            .cmp(&(other.major, other.minor))
            .then(match (self.iv, other.iv) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => a.cmp(&b),
            })
    }
}

fn parse_number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Why a metadata version cannot be used with a Kafka release.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetadataVersionError {
    /// Not of the form `4.1` or `4.1-IV1`.
    #[error("metadataVersion {value:?} is not a metadata version such as 4.1 or 4.1-IV1")]
    Unparsable {
        /// The requested value.
        value: String,
    },
    /// Newer than the release supports.
    #[error(
        "metadataVersion {value} is newer than Kafka {kafka_version} supports (at most {newest}); raise spec.kafka.version first"
    )]
    TooNew {
        /// The requested value.
        value: String,
        /// The Kafka release.
        kafka_version: String,
        /// The release's newest metadata version.
        newest: String,
    },
    /// Older than Kafka 4 can run.
    #[error(
        "metadataVersion {value} is older than {MINIMUM_METADATA_VERSION}, the oldest Kafka 4 runs with"
    )]
    TooOld {
        /// The requested value.
        value: String,
    },
}

impl MetadataVersionError {
    /// Stable CamelCase reason for conditions, Events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            MetadataVersionError::Unparsable { .. } => "InvalidMetadataVersion",
            MetadataVersionError::TooNew { .. } => "MetadataVersionTooNew",
            MetadataVersionError::TooOld { .. } => "MetadataVersionTooOld",
        }
    }
}

/// Checks that `requested` can be used with `kafka`, returning it as written.
pub fn check_metadata_version(
    requested: &str,
    kafka: &SupportedKafkaVersion,
) -> Result<String, MetadataVersionError> {
    let parsed =
        MetadataVersion::parse(requested).ok_or_else(|| MetadataVersionError::Unparsable {
            value: requested.to_string(),
        })?;
    let newest = MetadataVersion::parse(kafka.metadata_version).expect("listed versions parse");
    let oldest = MetadataVersion::parse(MINIMUM_METADATA_VERSION).expect("the minimum parses");
    // A bare release (`4.1`) means that release's newest, which for the running release is
    // exactly `newest`: compare it as the same release, not as "newer than any IV".
    let effective = match parsed.iv {
        None if (parsed.major, parsed.minor) == (newest.major, newest.minor) => newest,
        _ => parsed,
    };
    if effective.compare(&newest) == Ordering::Greater {
        return Err(MetadataVersionError::TooNew {
            value: requested.to_string(),
            kafka_version: kafka.version.to_string(),
            newest: kafka.metadata_version.to_string(),
        });
    }
    if effective.compare(&oldest) == Ordering::Less {
        return Err(MetadataVersionError::TooOld {
            value: requested.to_string(),
        });
    }
    Ok(requested.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn the_testbed_version_is_supported_and_the_default() {
        assert!(supported_version("4.1.2").is_some());
        assert_eq!(
            DEFAULT_KAFKA_VERSION,
            SUPPORTED_KAFKA_VERSIONS.last().unwrap().version
        );
        assert!(supported_version("3.9.0").is_none());
        assert!(supported_version("4.1").is_none());
    }

    #[test]
    fn default_image_is_the_official_one() {
        assert_eq!(default_image("4.1.2"), "apache/kafka:4.1.2");
    }

    #[rstest]
    #[case("4.1", "4.1-IV1", Ok("4.1"))]
    #[case("4.1-IV1", "4.1-IV1", Ok("4.1-IV1"))]
    #[case("4.1-IV0", "4.1-IV1", Ok("4.1-IV0"))]
    #[case("4.0-IV3", "4.1-IV1", Ok("4.0-IV3"))]
    #[case("3.9", "4.1-IV1", Ok("3.9"))]
    #[case("3.3-IV3", "4.0-IV3", Ok("3.3-IV3"))]
    #[case("4.1-IV2", "4.1-IV1", Err("MetadataVersionTooNew"))]
    #[case("4.2", "4.1-IV1", Err("MetadataVersionTooNew"))]
    #[case("4.1", "4.0-IV3", Err("MetadataVersionTooNew"))]
    #[case("3.3-IV2", "4.1-IV1", Err("MetadataVersionTooOld"))]
    #[case("3.2", "4.1-IV1", Err("MetadataVersionTooOld"))]
    #[case("4.1-iv1", "4.1-IV1", Err("InvalidMetadataVersion"))]
    #[case("four", "4.1-IV1", Err("InvalidMetadataVersion"))]
    #[case("4", "4.1-IV1", Err("InvalidMetadataVersion"))]
    #[case("4.1-IV", "4.1-IV1", Err("InvalidMetadataVersion"))]
    fn metadata_version_checks(
        #[case] requested: &str,
        #[case] newest: &'static str,
        #[case] expected: Result<&str, &str>,
    ) {
        let kafka = SupportedKafkaVersion {
            version: "x",
            metadata_version: newest,
        };
        let got = check_metadata_version(requested, &kafka);
        match expected {
            Ok(v) => assert_eq!(got.unwrap(), v),
            Err(reason) => assert_eq!(got.unwrap_err().reason(), reason),
        }
    }
}
