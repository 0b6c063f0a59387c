//! Names: which Kafka topics the operator manages, and the Kubernetes name of the `KafkaTopic`
//! that represents a topic created in Kafka. Pure: no I/O.
//!
//! Managed topics: every topic except internal ones (`__*`), narrowed by an optional include
//! pattern and then by an optional exclude pattern. The include pattern exists because a
//! regular expression without look-around (Rust's `regex`) cannot say "everything except names
//! starting with `team-a.`", yet that is exactly what several operators sharing one Kafka
//! (one per namespace or team) need: each includes its own prefix.
//!
//! Kafka topic names allow `[a-zA-Z0-9._-]` up to 249 characters; Kubernetes resource names must
//! be DNS-1123 subdomains (lowercase alphanumerics, `-` and `.`, every dot-separated label
//! starting and ending alphanumeric, at most 253 characters). A topic whose name is already a
//! valid resource name keeps it. Any other name is sanitised and suffixed with `-` and the first
//! 8 hex digits of the SHA-256 of the *original* name, so `a_b` and `A_b` (both sanitised to
//! `a-b`) still get different resource names, and the result never depends on the Rust version
//! (unlike `std`'s `DefaultHasher`). A 32-bit suffix cannot make collisions impossible: the
//! caller must still compare `spec.topicName` of an existing `KafkaTopic` before treating it as
//! the topic's resource.

use regex::Regex;
use ring::digest;

/// Longest Kubernetes resource name (DNS-1123 subdomain).
pub const KUBE_NAME_MAX_LEN: usize = 253;
/// Longest Kafka topic name.
pub const TOPIC_NAME_MAX_LEN: usize = 249;
/// Hex digits of the hash suffix of a sanitised name.
const HASH_SUFFIX_HEX_LEN: usize = 8;
/// Stands in for a name that sanitises to nothing (for example `___`).
const EMPTY_NAME_STEM: &str = "topic";

/// Failures of building the topic filter.
#[derive(Debug, thiserror::Error)]
pub enum NamesError {
    #[error("invalid topic exclude pattern {pattern:?}: {source}")]
    InvalidExcludePattern {
        pattern: String,
        source: regex::Error,
    },
    #[error("invalid topic include pattern {pattern:?}: {source}")]
    InvalidIncludePattern {
        pattern: String,
        source: regex::Error,
    },
}

impl NamesError {
    /// Stable CamelCase word for conditions, Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            NamesError::InvalidExcludePattern { .. } => "InvalidExcludePattern",
            NamesError::InvalidIncludePattern { .. } => "InvalidIncludePattern",
        }
    }
}

/// Whether `name` is a valid Kubernetes resource name (DNS-1123 subdomain).
pub fn is_valid_kube_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= KUBE_NAME_MAX_LEN
        && name.split('.').all(|label| {
            let bytes = label.as_bytes();
            let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
            bytes.first().is_some_and(alnum)
                && bytes.last().is_some_and(alnum)
                && bytes.iter().all(|b| alnum(b) || *b == b'-')
        })
}

/// Whether Kafka accepts `name` as a topic name.
pub fn is_valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= TOPIC_NAME_MAX_LEN
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Kafka's internal topics (`__consumer_offsets`, `__transaction_state`, ...), never managed.
pub fn is_internal_topic(name: &str) -> bool {
    name.starts_with("__")
}

/// The Kubernetes name of the `KafkaTopic` for `topic`; see the module doc for the rule.
pub fn kube_name_for_topic(topic: &str) -> String {
    if is_valid_kube_name(topic) {
        return topic.to_owned();
    }
    let suffix = hash_suffix(topic);
    let mut stem = sanitise(topic);
    // Room for `-` and the suffix; everything left is ASCII, so byte truncation is safe.
    stem.truncate(KUBE_NAME_MAX_LEN - 1 - HASH_SUFFIX_HEX_LEN);
    let stem = stem.trim_end_matches(['-', '.']);
    let stem = if stem.is_empty() {
        EMPTY_NAME_STEM
    } else {
        stem
    };
    format!("{stem}-{suffix}")
}

/// Lowercase, `_` and every other invalid character to `-`, then each label trimmed of `-` and
/// empty labels dropped (Kafka allows `a..b` and `a.-b`; Kubernetes does not).
fn sanitise(topic: &str) -> String {
    let mapped: String = topic
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.') => c,
            _ => '-',
        })
        .collect();
    mapped
        .split('.')
        .map(|label| label.trim_matches('-'))
        .filter(|label| !label.is_empty())
        .collect::<Vec<_>>()
        .join(".")
}

fn hash_suffix(name: &str) -> String {
    let digest = digest::digest(&digest::SHA256, name.as_bytes());
    digest.as_ref()[..HASH_SUFFIX_HEX_LEN / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Which Kafka topics the operator manages: topics that are not internal, whose whole name
/// matches the include pattern (when there is one) and does not match the exclude pattern.
#[derive(Debug, Clone, Default)]
pub struct TopicFilter {
    include: Option<Regex>,
    exclude: Option<Regex>,
}

/// `pattern` anchored to match whole names only, so `tmp-.*` does not exclude `orders-tmp-1` by
/// accident.
fn whole_name(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

impl TopicFilter {
    /// A filter with an exclude pattern only (every other non-internal topic is managed).
    pub fn new(exclude: Option<&str>) -> Result<Self, NamesError> {
        Self::with_include(None, exclude)
    }

    /// A filter with both patterns; each must match the whole topic name.
    pub fn with_include(include: Option<&str>, exclude: Option<&str>) -> Result<Self, NamesError> {
        let include = include
            .map(|pattern| {
                whole_name(pattern).map_err(|source| NamesError::InvalidIncludePattern {
                    pattern: pattern.to_owned(),
                    source,
                })
            })
            .transpose()?;
        let exclude = exclude
            .map(|pattern| {
                whole_name(pattern).map_err(|source| NamesError::InvalidExcludePattern {
                    pattern: pattern.to_owned(),
                    source,
                })
            })
            .transpose()?;
        Ok(TopicFilter { include, exclude })
    }

    /// Whether the operator reconciles `topic`.
    pub fn is_managed(&self, topic: &str) -> bool {
        !is_internal_topic(topic)
            && self.include.as_ref().is_none_or(|re| re.is_match(topic))
            && !self.exclude.as_ref().is_some_and(|re| re.is_match(topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use std::collections::HashSet;

    // Expected suffixes are the first 8 hex digits of `printf %s NAME | sha256sum`, computed
    // outside Rust, so these tests also pin the hash across Rust and crate versions.
    #[rstest]
    #[case::mixed_case_and_underscore("My_Topic", "my-topic-", "36e68ddf")]
    #[case::dot_and_underscore("a.b_c", "a.b-c-", "5b8f934a")]
    #[case::uppercase_only("ORDERS", "orders-", "d0d6efb1")]
    #[case::consumer_offsets_like("__consumer_offsets", "consumer-offsets-", "189fe61b")]
    #[case::underscore_between("a_b", "a-b-", "648fa9b3")]
    #[case::empty_labels("a..b", "a.b-", "f62b4241")]
    #[case::label_starting_with_dash("a.-b", "a.b-", "cf3cd0bc")]
    #[case::sanitises_to_empty("___", "topic-", "bda25155")]
    #[case::lone_dash("-", "topic-", "3973e022")]
    fn invalid_names_are_sanitised_and_suffixed_with_the_hash(
        #[case] topic: &str,
        #[case] stem: &str,
        #[case] hash: &str,
    ) {
        let name = kube_name_for_topic(topic);
        assert_eq!(name, format!("{stem}{hash}"));
        assert!(is_valid_kube_name(&name), "{name}");
    }

    #[rstest]
    #[case::simple("orders")]
    #[case::dotted("team.orders.v1")]
    #[case::dashed("orders-eu-1")]
    #[case::numeric("0123")]
    fn valid_names_are_kept(#[case] topic: &str) {
        assert_eq!(kube_name_for_topic(topic), topic);
    }

    #[test]
    fn longest_valid_topic_name_is_kept() {
        let topic = "a".repeat(TOPIC_NAME_MAX_LEN);
        assert_eq!(kube_name_for_topic(&topic), topic);
    }

    #[test]
    fn longest_invalid_topic_name_is_truncated_to_fit_with_its_suffix() {
        let topic = "A".repeat(TOPIC_NAME_MAX_LEN);
        let name = kube_name_for_topic(&topic);
        assert_eq!(name.len(), KUBE_NAME_MAX_LEN);
        assert!(is_valid_kube_name(&name));
        assert!(name.starts_with(&"a".repeat(KUBE_NAME_MAX_LEN - 9)));
    }

    #[test]
    fn truncation_does_not_leave_a_dash_or_dot_before_the_suffix() {
        // Sanitising keeps 249 chars; truncation to 244 cuts right after a '.'.
        let topic = format!("{}.{}_", "a".repeat(243), "B".repeat(4));
        let name = kube_name_for_topic(&topic);
        assert!(is_valid_kube_name(&name), "{name}");
        assert!(name.starts_with(&format!("{}-", "a".repeat(243))), "{name}");
    }

    #[test]
    fn names_differing_only_by_underscore_or_case_do_not_collide() {
        let names = ["a_b", "a-b", "A_b", "a_B", "A-B", "a.b", "a..b"];
        let kube: HashSet<String> = names.iter().map(|n| kube_name_for_topic(n)).collect();
        assert_eq!(kube.len(), names.len(), "{kube:?}");
    }

    #[test]
    fn every_generated_name_is_valid_and_distinct() {
        let pieces = ["Orders", "orders", "_", "-", ".", "X_Y", "x-y", "__", "9"];
        let mut topics = HashSet::new();
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let topic = format!("{a}{b}{c}");
                    if is_valid_topic_name(&topic) {
                        topics.insert(topic);
                    }
                }
            }
        }
        let kube: HashSet<String> = topics.iter().map(|t| kube_name_for_topic(t)).collect();
        assert_eq!(kube.len(), topics.len());
        assert!(kube.iter().all(|n| is_valid_kube_name(n)));
    }

    #[test]
    fn same_topic_always_gets_the_same_name() {
        assert_eq!(
            kube_name_for_topic("My_Topic"),
            kube_name_for_topic("My_Topic")
        );
    }

    #[rstest]
    #[case::empty("", false)]
    #[case::dot(".", false)]
    #[case::dot_dot("..", false)]
    #[case::leading_dots("..x", true)]
    #[case::all_allowed_chars("aZ09._-", true)]
    #[case::space("a b", false)]
    #[case::slash("a/b", false)]
    #[case::too_long(&"a".repeat(250), false)]
    fn topic_names_are_checked_as_kafka_does(#[case] topic: &str, #[case] valid: bool) {
        assert_eq!(is_valid_topic_name(topic), valid);
    }

    #[rstest]
    #[case::ok("a.b-c", true)]
    #[case::uppercase("A", false)]
    #[case::underscore("a_b", false)]
    #[case::label_ends_with_dash("a-.b", false)]
    #[case::empty_label("a..b", false)]
    #[case::starts_with_dot(".a", false)]
    #[case::max_len(&"a".repeat(253), true)]
    #[case::over_max_len(&"a".repeat(254), false)]
    fn kube_names_are_checked_as_dns_1123_subdomains(#[case] name: &str, #[case] valid: bool) {
        assert_eq!(is_valid_kube_name(name), valid);
    }

    #[test]
    fn internal_topics_are_never_managed() {
        let filter = TopicFilter::new(None).unwrap();
        assert!(is_internal_topic("__consumer_offsets"));
        assert!(!filter.is_managed("__transaction_state"));
        assert!(!is_internal_topic("_single_underscore"));
        assert!(filter.is_managed("_single_underscore"));
    }

    #[test]
    fn exclude_pattern_matches_whole_names_only() {
        let filter = TopicFilter::new(Some("tmp-.*|connect-(configs|offsets)")).unwrap();
        assert!(!filter.is_managed("tmp-1"));
        assert!(!filter.is_managed("connect-offsets"));
        assert!(filter.is_managed("orders-tmp-1"));
        assert!(filter.is_managed("connect-offsets-eu"));
        assert!(filter.is_managed("orders"));
    }

    #[test]
    fn include_pattern_narrows_to_whole_matching_names_and_exclude_still_applies() {
        let filter = TopicFilter::with_include(Some(r"team-a\..*"), Some(r".*\.tmp")).unwrap();
        assert!(filter.is_managed("team-a.orders"));
        assert!(!filter.is_managed("team-b.orders"), "not included");
        assert!(
            !filter.is_managed("x.team-a.orders"),
            "the include pattern is anchored"
        );
        assert!(
            !filter.is_managed("team-a.orders.tmp"),
            "excluded wins over included"
        );
        let internal = TopicFilter::with_include(Some(".*"), None).unwrap();
        assert!(
            !internal.is_managed("__consumer_offsets"),
            "internal topics are never included"
        );
    }

    #[test]
    fn invalid_include_pattern_is_reported() {
        let err = TopicFilter::with_include(Some("[unclosed"), None).unwrap_err();
        assert_eq!(err.reason(), "InvalidIncludePattern");
        assert!(err.to_string().contains("[unclosed"));
    }

    #[test]
    fn invalid_exclude_pattern_is_reported() {
        let err = TopicFilter::new(Some("(unclosed")).unwrap_err();
        assert_eq!(err.reason(), "InvalidExcludePattern");
        assert!(err.to_string().contains("(unclosed"));
    }
}
