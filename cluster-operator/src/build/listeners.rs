//! What the user's listeners look like from outside, decided from the spec and from what
//! Kubernetes made of their Services: the address each broker advertises on each listener
//! (for `server.properties`), the addresses each node's certificate must name, and the
//! listeners' status (bootstrap addresses, CA certificates). Pure: no I/O.
//!
//! Addresses per listener type, unless the spec's `configuration.brokers[].advertisedHost` or
//! `advertisedPort` overrides them (each on its own):
//! - `internal`: the pod's DNS name under the headless Service, the listener's port;
//! - `cluster-ip`: the per-broker Service's DNS name `<service>.<ns>.svc`, the listener's port;
//! - `loadbalancer`: the per-broker Service's first `status.loadBalancer.ingress` (host name,
//!   else IP), the listener's port; unknown (pending) until the load balancer has one;
//! - `nodeport`: the address of the Kubernetes Node the broker's pod runs on (supplied by the
//!   controller) and the per-broker Service's allocated node port; unknown (pending) until both
//!   are known.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;
use shared_crds::kafka::{KafkaListenerType, ListenerAddress, ListenerStatus};
use shared_crds::names;

use super::kafka_config::AdvertisedAddresses;
use super::services::listener_port_name;
use crate::model::{KafkaNode, ResolvedCluster, ResolvedListener};
use crate::pki::node_certs::ListenerAddresses;

/// The addresses the brokers advertise, and the listeners for which some are not known yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListenerResolution {
    /// The address of every broker on every user listener whose address is known, internal
    /// listeners included.
    pub advertised: AdvertisedAddresses,
    /// Names of the listeners (sorted) for which the address of at least one broker is not
    /// known yet, e.g. a load balancer without ingress or a node port not allocated yet. The
    /// configuration of the affected brokers cannot be built until they are (see
    /// [`super::kafka_config::KafkaConfigError::AdvertisedAddressUnknown`]).
    pub pending: Vec<String>,
}

/// The address each broker advertises on each user listener. `observed_services` are the
/// cluster's Services as read from the API server (only the per-broker Services of
/// `loadbalancer` and `nodeport` listeners are looked at); `node_addresses` maps each broker's
/// node ID to the address of the Kubernetes Node its pod runs on (used by `nodeport`
/// listeners; a broker without an entry is pending there).
pub fn advertised_addresses(
    cluster: &ResolvedCluster,
    observed_services: &[Service],
    node_addresses: &BTreeMap<i32, String>,
) -> ListenerResolution {
    let mut resolution = ListenerResolution::default();
    let brokers = brokers(cluster);
    for listener in &cluster.listeners {
        let mut pending = false;
        for node in &brokers {
            let overridden = listener.broker_override(node.id);
            let (host, port) =
                derived_address(cluster, listener, node, observed_services, node_addresses);
            let host = overridden.and_then(|o| o.advertised_host.clone()).or(host);
            let port = overridden.and_then(|o| o.advertised_port).or(port);
            match (host, port) {
                (Some(host), Some(port)) => {
                    resolution
                        .advertised
                        .insert(&listener.name, node.id, host, port)
                }
                _ => pending = true,
            }
        }
        if pending {
            resolution.pending.push(listener.name.clone());
        }
    }
    resolution.pending.sort();
    resolution
}

fn brokers(cluster: &ResolvedCluster) -> Vec<KafkaNode> {
    cluster
        .nodes()
        .into_iter()
        .filter(KafkaNode::is_broker)
        .collect()
}

/// The address of `node` on `listener` without the spec's overrides, as far as it is known.
fn derived_address(
    cluster: &ResolvedCluster,
    listener: &ResolvedListener,
    node: &KafkaNode,
    observed_services: &[Service],
    node_addresses: &BTreeMap<i32, String>,
) -> (Option<String>, Option<i32>) {
    let service_name = per_broker_service_name(cluster, listener, node);
    match listener.type_ {
        KafkaListenerType::Internal => (Some(cluster.node_host(node)), Some(listener.port)),
        KafkaListenerType::ClusterIp => (
            Some(format!("{service_name}.{}.svc", cluster.namespace)),
            Some(listener.port),
        ),
        KafkaListenerType::Loadbalancer => (
            find_service(cluster, observed_services, &service_name)
                .and_then(|s| ingress_addresses(s, true).into_iter().next()),
            Some(listener.port),
        ),
        KafkaListenerType::Nodeport => (
            node_addresses.get(&node.id).cloned(),
            find_service(cluster, observed_services, &service_name)
                .and_then(|s| node_port(s, listener)),
        ),
    }
}

fn per_broker_service_name(
    cluster: &ResolvedCluster,
    listener: &ResolvedListener,
    node: &KafkaNode,
) -> String {
    names::per_broker_service(&cluster.name, &node.pool, &listener.name, node.id)
}

/// The observed Service called `name` in the cluster's namespace.
fn find_service<'a>(
    cluster: &ResolvedCluster,
    observed: &'a [Service],
    name: &str,
) -> Option<&'a Service> {
    observed.iter().find(|s| {
        s.metadata.name.as_deref() == Some(name)
            && s.metadata
                .namespace
                .as_deref()
                .is_none_or(|ns| ns == cluster.namespace)
    })
}

/// The load balancer's addresses of a Service: with `preferred_only`, one per ingress entry
/// (its host name, else its IP), otherwise every host name and IP.
fn ingress_addresses(service: &Service, preferred_only: bool) -> Vec<String> {
    let ingress = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_deref())
        .unwrap_or_default();
    let mut out = Vec::new();
    for entry in ingress {
        let hostname = entry.hostname.clone().filter(|h| !h.is_empty());
        let ip = entry.ip.clone().filter(|ip| !ip.is_empty());
        if preferred_only {
            out.extend(hostname.or(ip));
        } else {
            out.extend(hostname);
            out.extend(ip);
        }
    }
    out
}

/// The node port Kubernetes allocated for `listener` on an observed Service.
fn node_port(service: &Service, listener: &ResolvedListener) -> Option<i32> {
    let port_name = listener_port_name(listener);
    service
        .spec
        .as_ref()?
        .ports
        .as_deref()?
        .iter()
        .find(|p| p.name.as_deref() == Some(port_name.as_str()) || p.port == listener.port)?
        .node_port
}

/// For every desired node (by node ID), what its certificate must cover on each user listener,
/// the input of [`crate::pki::node_certs::node_sans`]. Controller-only nodes serve no user
/// listener and get an empty list.
///
/// A broker's own addresses are the address it advertises, its `configuration.brokers[].host`
/// and every address of its load balancer. The bootstrap addresses, which every broker gets,
/// are `configuration.bootstrap.host` and `alternativeNames`, every address of the bootstrap
/// load balancer, and for `nodeport` listeners the node addresses listed in the listener's
/// status: a node port forwards to any broker, so a client bootstrapping through one node's
/// address may be answered by a broker running elsewhere. (This means a broker moving to
/// another Kubernetes Node changes every broker's certificate on TLS `nodeport` listeners.)
pub fn certificate_addresses(
    cluster: &ResolvedCluster,
    resolution: &ListenerResolution,
    observed_services: &[Service],
) -> BTreeMap<i32, Vec<ListenerAddresses>> {
    let bootstrap: Vec<Vec<String>> = cluster
        .listeners
        .iter()
        .map(|l| bootstrap_certificate_addresses(cluster, l, resolution, observed_services))
        .collect();
    cluster
        .nodes()
        .into_iter()
        .map(|node| {
            let listeners = if node.is_broker() {
                cluster
                    .listeners
                    .iter()
                    .zip(&bootstrap)
                    .map(|(listener, bootstrap_addresses)| ListenerAddresses {
                        name: listener.name.clone(),
                        type_: listener.type_,
                        tls: listener.tls,
                        bootstrap_addresses: bootstrap_addresses.clone(),
                        node_addresses: node_certificate_addresses(
                            cluster,
                            listener,
                            &node,
                            resolution,
                            observed_services,
                        ),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            (node.id, listeners)
        })
        .collect()
}

fn bootstrap_certificate_addresses(
    cluster: &ResolvedCluster,
    listener: &ResolvedListener,
    resolution: &ListenerResolution,
    observed_services: &[Service],
) -> Vec<String> {
    let mut out = BTreeSet::new();
    if let Some(bootstrap) = &listener.configuration.bootstrap {
        out.extend(bootstrap.host.clone());
        out.extend(bootstrap.alternative_names.iter().flatten().cloned());
    }
    match listener.type_ {
        KafkaListenerType::Loadbalancer => {
            let name = names::external_bootstrap_service(&cluster.name, &listener.name);
            if let Some(service) = find_service(cluster, observed_services, &name) {
                out.extend(ingress_addresses(service, false));
            }
        }
        KafkaListenerType::Nodeport => {
            out.extend(nodeport_bootstrap_hosts(cluster, listener, resolution));
        }
        KafkaListenerType::Internal | KafkaListenerType::ClusterIp => {}
    }
    out.into_iter().collect()
}

fn node_certificate_addresses(
    cluster: &ResolvedCluster,
    listener: &ResolvedListener,
    node: &KafkaNode,
    resolution: &ListenerResolution,
    observed_services: &[Service],
) -> Vec<String> {
    let mut out = BTreeSet::new();
    if let Some(address) = resolution.advertised.get(&listener.name, node.id) {
        out.insert(address.host.clone());
    }
    if let Some(host) = listener
        .broker_override(node.id)
        .and_then(|o| o.host.clone())
    {
        out.insert(host);
    }
    if listener.type_ == KafkaListenerType::Loadbalancer {
        let name = per_broker_service_name(cluster, listener, node);
        if let Some(service) = find_service(cluster, observed_services, &name) {
            out.extend(ingress_addresses(service, false));
        }
    }
    out.into_iter().collect()
}

/// The hosts clients bootstrap from on a `nodeport` listener: the advertised addresses of the
/// brokers without an `advertisedHost` override (the addresses of their Kubernetes Nodes),
/// distinct, in node ID order; when every broker overrides its host, those hosts.
fn nodeport_bootstrap_hosts(
    cluster: &ResolvedCluster,
    listener: &ResolvedListener,
    resolution: &ListenerResolution,
) -> Vec<String> {
    let mut node_hosts = Vec::new();
    let mut overridden_hosts = Vec::new();
    for node in brokers(cluster) {
        let Some(address) = resolution.advertised.get(&listener.name, node.id) else {
            continue;
        };
        let overridden = listener
            .broker_override(node.id)
            .is_some_and(|o| o.advertised_host.is_some());
        let hosts = if overridden {
            &mut overridden_hosts
        } else {
            &mut node_hosts
        };
        if !hosts.contains(&address.host) {
            hosts.push(address.host.clone());
        }
    }
    if node_hosts.is_empty() {
        overridden_hosts
    } else {
        node_hosts
    }
}

/// The status of every user listener, sorted by name: its bootstrap addresses and
/// `bootstrapServers` once known (absent until then, e.g. while the bootstrap load balancer has
/// no ingress), and for TLS listeners the cluster CA certificate (`cluster_ca_cert_pem`, the PEM
/// clients must trust) as the one entry of `certificates`.
///
/// Bootstrap addresses: `internal` listeners `<c>-kafka-bootstrap.<ns>.svc:<port>`;
/// `cluster-ip` `<c>-kafka-<listener>-bootstrap.<ns>.svc:<port>`; `loadbalancer` every ingress
/// of the bootstrap Service with the listener's port; `nodeport` the brokers' node addresses
/// with the bootstrap Service's node port (observed, else the one the spec asks for).
pub fn listener_status(
    cluster: &ResolvedCluster,
    resolution: &ListenerResolution,
    observed_services: &[Service],
    cluster_ca_cert_pem: &str,
) -> Vec<ListenerStatus> {
    cluster
        .listeners
        .iter()
        .map(|listener| {
            let addresses = bootstrap_addresses(cluster, listener, resolution, observed_services);
            let bootstrap_servers = (!addresses.is_empty()).then(|| {
                addresses
                    .iter()
                    .map(|(host, port)| host_port(host, *port))
                    .collect::<Vec<_>>()
                    .join(",")
            });
            ListenerStatus {
                name: listener.name.clone(),
                addresses: (!addresses.is_empty()).then(|| {
                    addresses
                        .into_iter()
                        .map(|(host, port)| ListenerAddress {
                            host: Some(host),
                            port: Some(port),
                        })
                        .collect()
                }),
                bootstrap_servers,
                certificates: listener.tls.then(|| vec![cluster_ca_cert_pem.to_owned()]),
            }
        })
        .collect()
}

fn bootstrap_addresses(
    cluster: &ResolvedCluster,
    listener: &ResolvedListener,
    resolution: &ListenerResolution,
    observed_services: &[Service],
) -> Vec<(String, i32)> {
    let bootstrap_service = names::external_bootstrap_service(&cluster.name, &listener.name);
    match listener.type_ {
        KafkaListenerType::Internal => vec![(
            format!(
                "{}.{}.svc",
                names::bootstrap_service(&cluster.name),
                cluster.namespace
            ),
            listener.port,
        )],
        KafkaListenerType::ClusterIp => vec![(
            format!("{bootstrap_service}.{}.svc", cluster.namespace),
            listener.port,
        )],
        KafkaListenerType::Loadbalancer => {
            find_service(cluster, observed_services, &bootstrap_service)
                .map(|s| ingress_addresses(s, true))
                .unwrap_or_default()
                .into_iter()
                .map(|host| (host, listener.port))
                .collect()
        }
        KafkaListenerType::Nodeport => {
            let port = find_service(cluster, observed_services, &bootstrap_service)
                .and_then(|s| node_port(s, listener))
                .or_else(|| {
                    listener
                        .configuration
                        .bootstrap
                        .as_ref()
                        .and_then(|b| b.node_port)
                });
            let Some(port) = port else {
                return Vec::new();
            };
            nodeport_bootstrap_hosts(cluster, listener, resolution)
                .into_iter()
                .map(|host| (host, port))
                .collect()
        }
    }
}

/// `host:port`, with IPv6 addresses in brackets as Kafka clients expect them.
fn host_port(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::services::services;
    use crate::test_fixtures;
    use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, ServiceStatus};
    use rstest::rstest;

    const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn service_mut<'a>(services: &'a mut [Service], name: &str) -> &'a mut Service {
        services
            .iter_mut()
            .find(|s| s.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no Service {name}"))
    }

    /// What the API server does: allocate missing node ports.
    fn allocate_node_port(services: &mut [Service], name: &str, node_port: i32) {
        let s = service_mut(services, name);
        for p in s.spec.as_mut().unwrap().ports.as_mut().unwrap() {
            p.node_port.get_or_insert(node_port);
        }
    }

    /// What the cloud controller does: give a load balancer its addresses.
    fn ingress(services: &mut [Service], name: &str, entries: &[(Option<&str>, Option<&str>)]) {
        service_mut(services, name).status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(
                    entries
                        .iter()
                        .map(|(hostname, ip)| LoadBalancerIngress {
                            hostname: hostname.map(str::to_owned),
                            ip: ip.map(str::to_owned),
                            ..LoadBalancerIngress::default()
                        })
                        .collect(),
                ),
            }),
            ..ServiceStatus::default()
        });
    }

    /// The `external-listeners` cluster once Kubernetes has done its part: node ports
    /// allocated where the spec requests none (broker 1 on `node`), both load balancers (bootstrap and broker 0) ready, broker 1's not yet.
    fn observed(c: &ResolvedCluster, broker1_lb_ready: bool) -> Vec<Service> {
        let mut s = services(c);
        // The requested node ports (32100 and 32000) stay.
        allocate_node_port(&mut s, "ext-kafka-node-bootstrap", 30999);
        allocate_node_port(&mut s, "ext-broker-node-0", 30000);
        allocate_node_port(&mut s, "ext-broker-node-1", 30001);
        ingress(
            &mut s,
            "ext-kafka-lb-bootstrap",
            &[(Some("lb-bootstrap.elb.example"), Some("203.0.113.10"))],
        );
        ingress(&mut s, "ext-broker-lb-0", &[(None, Some("203.0.113.20"))]);
        if broker1_lb_ready {
            ingress(
                &mut s,
                "ext-broker-lb-1",
                &[(Some("lb-1.elb.example"), Some("203.0.113.21"))],
            );
        }
        s
    }

    fn node_addresses() -> BTreeMap<i32, String> {
        BTreeMap::from([(0, "10.0.0.1".to_owned()), (1, "10.0.0.2".to_owned())])
    }

    fn resolve(broker1_lb_ready: bool) -> (ResolvedCluster, Vec<Service>, ListenerResolution) {
        let c = test_fixtures::resolved("external-listeners");
        let observed = observed(&c, broker1_lb_ready);
        let resolution = advertised_addresses(&c, &observed, &node_addresses());
        (c, observed, resolution)
    }

    #[rstest]
    #[case::internal("plain", 0, "ext-broker-0.ext-kafka-brokers.kafka.svc", 9092)]
    #[case::internal_tls("tls", 1, "ext-broker-1.ext-kafka-brokers.kafka.svc", 9093)]
    #[case::cluster_ip("cip", 0, "ext-broker-cip-0.kafka.svc", 9096)]
    #[case::cluster_ip_other_broker("cip", 1, "ext-broker-cip-1.kafka.svc", 9096)]
    #[case::loadbalancer_ip("lb", 0, "203.0.113.20", 9095)]
    #[case::loadbalancer_host_name_first("lb", 1, "lb-1.elb.example", 9095)]
    #[case::nodeport_requested_node_port("node", 0, "10.0.0.1", 32000)]
    #[case::nodeport_overridden("node", 1, "proxy.example.com", 31001)]
    fn each_listener_type_advertises_its_address(
        #[case] listener: &str,
        #[case] node_id: i32,
        #[case] host: &str,
        #[case] port: i32,
    ) {
        let (_, _, resolution) = resolve(true);
        let address = resolution
            .advertised
            .get(listener, node_id)
            .unwrap_or_else(|| panic!("{listener}/{node_id}"));
        assert_eq!((address.host.as_str(), address.port), (host, port));
        assert!(resolution.pending.is_empty(), "{:?}", resolution.pending);
    }

    #[test]
    fn controllers_advertise_nothing() {
        let (c, _, resolution) = resolve(true);
        let controller = c.controllers()[0].id;
        for l in &c.listeners {
            assert_eq!(resolution.advertised.get(&l.name, controller), None);
        }
    }

    #[test]
    fn a_load_balancer_without_ingress_is_pending() {
        let (_, _, resolution) = resolve(false);
        assert_eq!(resolution.pending, ["lb"]);
        assert_eq!(resolution.advertised.get("lb", 1), None);
        assert!(resolution.advertised.get("lb", 0).is_some());
    }

    #[test]
    fn nothing_observed_leaves_only_derived_and_overridden_addresses() {
        let c = test_fixtures::resolved("external-listeners");
        let resolution = advertised_addresses(&c, &[], &BTreeMap::new());
        assert_eq!(resolution.pending, ["lb", "node"]);
        // Broker 1 overrides both host and port on `node`, so it needs nothing observed.
        let overridden = resolution.advertised.get("node", 1).unwrap();
        assert_eq!(
            (overridden.host.as_str(), overridden.port),
            ("proxy.example.com", 31001)
        );
        assert_eq!(resolution.advertised.get("node", 0), None);
        assert!(resolution.advertised.get("cip", 0).is_some());
    }

    #[test]
    fn the_built_configuration_accepts_the_resolution() {
        let (c, _, resolution) = resolve(true);
        for node in c.nodes() {
            crate::build::kafka_config::build_server_properties(
                &c,
                node.id,
                &resolution.advertised,
            )
            .unwrap_or_else(|e| panic!("node {}: {e}", node.id));
        }
    }

    #[test]
    fn an_override_of_the_port_alone_keeps_the_observed_host() {
        let mut c = test_fixtures::resolved("external-listeners");
        let node = c.listeners.iter_mut().find(|l| l.name == "node").unwrap();
        let broker0 = node
            .configuration
            .brokers
            .as_mut()
            .unwrap()
            .iter_mut()
            .find(|b| b.broker == 0)
            .unwrap();
        broker0.advertised_port = Some(443);
        let observed = observed(&c, true);
        let resolution = advertised_addresses(&c, &observed, &node_addresses());
        let a = resolution.advertised.get("node", 0).unwrap();
        assert_eq!((a.host.as_str(), a.port), ("10.0.0.1", 443));
    }

    fn addresses_of<'a>(
        all: &'a BTreeMap<i32, Vec<ListenerAddresses>>,
        node_id: i32,
        listener: &str,
    ) -> &'a ListenerAddresses {
        all[&node_id]
            .iter()
            .find(|l| l.name == listener)
            .unwrap_or_else(|| panic!("{node_id}/{listener}"))
    }

    #[rstest]
    #[case::internal("plain", 0, &[], &["ext-broker-0.ext-kafka-brokers.kafka.svc"])]
    #[case::cluster_ip("cip", 1, &[], &["ext-broker-cip-1.kafka.svc"])]
    #[case::loadbalancer(
        "lb",
        1,
        &["203.0.113.10", "lb-bootstrap.elb.example", "lb.example.com"],
        &["203.0.113.21", "lb-1.elb.example"],
    )]
    #[case::nodeport_with_host(
        "node",
        0,
        &["10.0.0.1", "kafka.example.com"],
        &["10.0.0.1", "broker0.example.com"],
    )]
    #[case::nodeport_overridden(
        "node",
        1,
        &["10.0.0.1", "kafka.example.com"],
        &["proxy.example.com"],
    )]
    fn certificates_name_bootstrap_and_broker_addresses(
        #[case] listener: &str,
        #[case] node_id: i32,
        #[case] bootstrap: &[&str],
        #[case] own: &[&str],
    ) {
        let (c, observed, resolution) = resolve(true);
        let all = certificate_addresses(&c, &resolution, &observed);
        let a = addresses_of(&all, node_id, listener);
        let l = c.listeners.iter().find(|l| l.name == listener).unwrap();
        assert_eq!((a.type_, a.tls), (l.type_, l.tls));
        assert_eq!(a.bootstrap_addresses, bootstrap);
        assert_eq!(a.node_addresses, own);
    }

    #[test]
    fn every_node_has_certificate_addresses_and_controllers_have_no_listeners() {
        let (c, observed, resolution) = resolve(true);
        let all = certificate_addresses(&c, &resolution, &observed);
        assert_eq!(all.keys().copied().collect::<Vec<_>>(), [0, 1, 2]);
        assert!(all[&2].is_empty());
        assert_eq!(all[&0].len(), c.listeners.len());
    }

    #[test]
    fn certificate_addresses_make_valid_subject_alternative_names() {
        use crate::pki::node_certs::{self, DEFAULT_CLUSTER_DOMAIN, SubjectAltName};
        let (c, observed, resolution) = resolve(true);
        let all = certificate_addresses(&c, &resolution, &observed);
        let node = c.node(0).unwrap();
        let sans = node_certs::node_sans(
            &node_certs::KafkaNode {
                cluster: &c.name,
                namespace: &c.namespace,
                cluster_domain: DEFAULT_CLUSTER_DOMAIN,
                pool: &node.pool,
                node_id: node.id,
                broker: true,
            },
            &all[&0],
        )
        .expect("valid names");
        for expected in [
            SubjectAltName::parse("203.0.113.10").unwrap(),
            SubjectAltName::parse("broker0.example.com").unwrap(),
            SubjectAltName::parse("ext-broker-lb-0.kafka.svc").unwrap(),
        ] {
            assert!(sans.contains(&expected), "{expected}");
        }
    }

    fn status_of<'a>(all: &'a [ListenerStatus], name: &str) -> &'a ListenerStatus {
        all.iter().find(|s| s.name == name).unwrap()
    }

    #[rstest]
    #[case::internal("plain", Some("ext-kafka-bootstrap.kafka.svc:9092"), false)]
    #[case::internal_tls("tls", Some("ext-kafka-bootstrap.kafka.svc:9093"), true)]
    #[case::cluster_ip("cip", Some("ext-kafka-cip-bootstrap.kafka.svc:9096"), false)]
    #[case::loadbalancer("lb", Some("lb-bootstrap.elb.example:9095"), true)]
    #[case::nodeport("node", Some("10.0.0.1:32100"), true)]
    fn listener_status_per_type(
        #[case] listener: &str,
        #[case] bootstrap_servers: Option<&str>,
        #[case] tls: bool,
    ) {
        let (c, observed, resolution) = resolve(true);
        let all = listener_status(&c, &resolution, &observed, CA_PEM);
        assert_eq!(
            all.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["cip", "lb", "node", "plain", "tls"]
        );
        let s = status_of(&all, listener);
        assert_eq!(s.bootstrap_servers.as_deref(), bootstrap_servers);
        let addresses: Vec<String> = s
            .addresses
            .iter()
            .flatten()
            .map(|a| format!("{}:{}", a.host.as_deref().unwrap(), a.port.unwrap()))
            .collect();
        assert_eq!(addresses.join(","), bootstrap_servers.unwrap_or_default());
        let expected_certificates = tls.then(|| vec![CA_PEM.to_owned()]);
        assert_eq!(s.certificates, expected_certificates);
    }

    #[test]
    fn nodeport_status_lists_every_node_address_of_brokers_not_overridden() {
        let c = test_fixtures::resolved("external-listeners");
        let observed = observed(&c, true);
        let mut nodes = node_addresses();
        nodes.insert(1, "10.0.0.1".to_owned());
        let mut c2 = c;
        // Without broker 1's override, both node addresses are bootstrap addresses.
        let node = c2.listeners.iter_mut().find(|l| l.name == "node").unwrap();
        node.configuration
            .brokers
            .as_mut()
            .unwrap()
            .retain(|b| b.broker == 0);
        let resolution = advertised_addresses(&c2, &observed, &node_addresses());
        let allocated = resolution.advertised.get("node", 1).unwrap();
        assert_eq!(
            (allocated.host.as_str(), allocated.port),
            ("10.0.0.2", 30001)
        );
        let all = listener_status(&c2, &resolution, &observed, CA_PEM);
        assert_eq!(
            status_of(&all, "node").bootstrap_servers.as_deref(),
            Some("10.0.0.1:32100,10.0.0.2:32100")
        );
        // Two brokers on one Kubernetes Node: the address is listed once.
        let resolution = advertised_addresses(&c2, &observed, &nodes);
        let all = listener_status(&c2, &resolution, &observed, CA_PEM);
        assert_eq!(
            status_of(&all, "node").bootstrap_servers.as_deref(),
            Some("10.0.0.1:32100")
        );
    }

    #[test]
    fn unknown_bootstrap_addresses_are_left_out_of_the_status() {
        let c = test_fixtures::resolved("external-listeners");
        let resolution = advertised_addresses(&c, &[], &BTreeMap::new());
        let all = listener_status(&c, &resolution, &[], CA_PEM);
        let lb = status_of(&all, "lb");
        assert_eq!((&lb.addresses, &lb.bootstrap_servers), (&None, &None));
        assert_eq!(lb.certificates, Some(vec![CA_PEM.to_owned()]));
        // The node port the spec asks for is used before the Service is observed; the only
        // known host is broker 1's override.
        assert_eq!(
            status_of(&all, "node").bootstrap_servers.as_deref(),
            Some("proxy.example.com:32100")
        );
    }

    #[test]
    fn ipv6_hosts_are_bracketed_in_bootstrap_servers() {
        assert_eq!(host_port("2001:db8::1", 9094), "[2001:db8::1]:9094");
        assert_eq!(host_port("10.0.0.1", 9094), "10.0.0.1:9094");
    }
}
