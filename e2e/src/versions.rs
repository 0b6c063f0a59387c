//! The pinned upstream versions, read from `e2e/testenv/versions.env` at compile time so that the
//! Go build script and the Rust testbed can never disagree. Pure.

const VERSIONS_ENV: &str = include_str!("../testenv/versions.env");

fn lookup(key: &str) -> &'static str {
    VERSIONS_ENV
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
        .unwrap_or_else(|| panic!("{key} missing from e2e/testenv/versions.env"))
}

/// Kubernetes version of the control plane, e.g. `v1.33.13`.
pub fn kubernetes() -> &'static str {
    lookup("K8S_VERSION")
}
/// etcd version, e.g. `v3.5.21`.
pub fn etcd() -> &'static str {
    lookup("ETCD_VERSION")
}
/// Apache Kafka version of the testbed broker, e.g. `4.1.2`.
pub fn kafka() -> &'static str {
    lookup("KAFKA_VERSION")
}
/// log4j2 version added to Kafka's runtime classpath (Kafka's POM leaves the backend out).
pub fn log4j() -> &'static str {
    lookup("LOG4J_VERSION")
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_are_pinned() {
        assert!(super::kubernetes().starts_with("v1."));
        assert!(super::etcd().starts_with("v3."));
        assert!(super::kafka().starts_with("4."));
        assert!(super::log4j().starts_with("2."));
    }
}
