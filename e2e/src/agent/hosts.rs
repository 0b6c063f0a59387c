//! Names without DNS: the testbed has no cluster DNS and no kube-proxy, so every pod (and the
//! tests' client network namespace) gets a hosts file that maps each pod's
//! `<hostname>.<subdomain>.<namespace>.svc...` name and each Service's names to pod IPs (a Service
//! maps to the addresses of its ready endpoints, never to its ClusterIP). [`render`] is pure;
//! [`Names`] watches Pods, Services and EndpointSlices and keeps registered files current.
//! May touch: the API server (reads only) and the hosts files registered with it, which it
//! rewrites in place (they are bind-mounted, so they are never replaced by a rename).

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    fs::OpenOptions,
    io::Write as _,
    net::IpAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use anyhow::{Context, Result};
use futures::StreamExt;
use k8s_openapi::api::{
    core::v1::{Pod, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    runtime::{
        WatchStreamExt, reflector,
        reflector::Store,
        watcher::{self, watcher},
    },
};
use tokio::sync::Notify;

use super::CLUSTER_DOMAIN;

/// The label an EndpointSlice carries naming its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// How long a burst of changes is collected before the files are rendered.
const DEBOUNCE: Duration = Duration::from_millis(200);
/// Files are re-rendered at least this often, even without a change notification.
const RESYNC: Duration = Duration::from_secs(5);

/// The pod a hosts file belongs to: its own line comes first, and names in its namespace also get
/// their namespace-relative short forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostsOwner {
    pub namespace: String,
    /// The pod's IP.
    pub ip: String,
    /// `spec.hostname`, or the pod's name.
    pub hostname: String,
    /// `spec.subdomain`.
    pub subdomain: Option<String>,
}

impl HostsOwner {
    /// The owner for `pod` with address `ip`, as the kubelet derives it.
    pub fn for_pod(pod: &Pod, ip: &str) -> Self {
        let spec = pod.spec.as_ref();
        Self {
            namespace: pod.namespace().unwrap_or_else(|| "default".to_owned()),
            ip: ip.to_owned(),
            hostname: spec
                .and_then(|s| s.hostname.clone())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| pod.name_any()),
            subdomain: spec
                .and_then(|s| s.subdomain.clone())
                .filter(|s| !s.is_empty()),
        }
    }
}

/// One `<ip> <names...>` line before sorting. The sort key puts lines in a stable order and, for
/// two pods claiming the same name (an old pod still terminating next to its replacement), the
/// live one first: the resolver answers with the first line that carries a name.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Line {
    key: (String, String, String),
    terminating: bool,
    ip: IpOrText,
    names: Vec<String>,
}

/// An address ordered numerically when it parses, textually otherwise.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum IpOrText {
    Ip(IpAddr),
    Text(String),
}

impl IpOrText {
    fn new(s: &str) -> Self {
        s.parse()
            .map_or_else(|_| Self::Text(s.to_owned()), Self::Ip)
    }
}

impl std::fmt::Display for IpOrText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ip(ip) => ip.fmt(f),
            Self::Text(s) => f.write_str(s),
        }
    }
}

/// The hosts file for `owner` (or, with `None`, for the client namespace, which gets only the
/// namespace-qualified names). Pure; the same input always gives byte-identical output.
///
/// The `kubernetes` Service in `default` always maps to `api_server_ip`: the API server runs with
/// `--endpoint-reconciler-type=none`, so it has no endpoints of its own.
pub fn render(
    owner: Option<&HostsOwner>,
    pods: &[Arc<Pod>],
    services: &[Arc<Service>],
    slices: &[Arc<EndpointSlice>],
    api_server_ip: &str,
) -> String {
    let own_ns = owner.map(|o| o.namespace.as_str());
    let mut out = String::from(
        "# Kubernetes-managed hosts file (Oxbow testbed node agent).\n\
         127.0.0.1 localhost\n\
         ::1 localhost ip6-localhost\n",
    );
    if let Some(o) = owner {
        match &o.subdomain {
            Some(sd) => {
                let fqdn = format!("{}.{sd}.{}.svc.{CLUSTER_DOMAIN}", o.hostname, o.namespace);
                let _ = writeln!(out, "{} {fqdn} {}", o.ip, o.hostname);
            }
            None => {
                let _ = writeln!(out, "{} {}", o.ip, o.hostname);
            }
        }
    }

    let mut lines = BTreeSet::new();
    lines.extend(pod_lines(owner, pods, own_ns));
    lines.extend(service_lines(services, slices, own_ns, api_server_ip));
    for line in lines {
        let _ = writeln!(out, "{} {}", line.ip, line.names.join(" "));
    }
    out
}

/// Pods with an IP, a hostname and a subdomain (the ones DNS gives a name to). The owner's own
/// entry uses the owner's address, so that a stale copy of the owner's predecessor in the cache
/// cannot shadow it.
fn pod_lines<'a>(
    owner: Option<&'a HostsOwner>,
    pods: &'a [Arc<Pod>],
    own_ns: Option<&'a str>,
) -> impl Iterator<Item = Line> + 'a {
    let is_owner = move |ns: &str, h: &str, sd: &str| {
        owner.is_some_and(|o| {
            o.namespace == ns && o.hostname == h && o.subdomain.as_deref() == Some(sd)
        })
    };
    let others = pods.iter().filter_map(move |pod| {
        let ip = pod
            .status
            .as_ref()?
            .pod_ip
            .as_deref()
            .filter(|ip| !ip.is_empty())?;
        let spec = pod.spec.as_ref()?;
        let h = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
        let sd = spec.subdomain.as_deref().filter(|s| !s.is_empty())?;
        let ns = pod.namespace().unwrap_or_default();
        if is_owner(&ns, h, sd) {
            return None;
        }
        let terminating = pod.meta().deletion_timestamp.is_some();
        Some(pod_line(&ns, h, sd, ip, terminating, own_ns))
    });
    let own = owner.and_then(|o| {
        let sd = o.subdomain.as_deref()?;
        Some(pod_line(
            &o.namespace,
            &o.hostname,
            sd,
            &o.ip,
            false,
            own_ns,
        ))
    });
    own.into_iter().chain(others)
}

fn pod_line(
    ns: &str,
    h: &str,
    sd: &str,
    ip: &str,
    terminating: bool,
    own_ns: Option<&str>,
) -> Line {
    let mut names = vec![
        format!("{h}.{sd}.{ns}.svc.{CLUSTER_DOMAIN}"),
        format!("{h}.{sd}.{ns}.svc"),
    ];
    if own_ns.is_some() {
        // What the search path `svc.<domain>` would complete.
        names.push(format!("{h}.{sd}.{ns}"));
    }
    if own_ns == Some(ns) {
        names.push(format!("{h}.{sd}"));
    }
    Line {
        key: (format!("0 pod {ns}"), sd.to_owned(), h.to_owned()),
        terminating,
        ip: IpOrText::new(ip),
        names,
    }
}

/// One line per (Service, ready endpoint address).
fn service_lines(
    services: &[Arc<Service>],
    slices: &[Arc<EndpointSlice>],
    own_ns: Option<&str>,
    api_server_ip: &str,
) -> Vec<Line> {
    // (namespace, service) -> addresses of ready endpoints.
    let mut ready: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for slice in slices {
        if slice.address_type == "FQDN" {
            continue;
        }
        let Some(svc) = slice.labels().get(SERVICE_NAME_LABEL) else {
            continue;
        };
        let key = (slice.namespace().unwrap_or_default(), svc.clone());
        let addresses = slice
            .endpoints
            .iter()
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
            .flat_map(|e| e.addresses.iter().cloned());
        ready.entry(key).or_default().extend(addresses);
    }

    let mut names_of: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for svc in services {
        let key = (svc.namespace().unwrap_or_default(), svc.name_any());
        let ips = ready.remove(&key).unwrap_or_default();
        names_of.insert(key, ips);
    }
    // The API server's own Service exists in every cluster; name it even before the cache fills
    // (this replaces whatever its endpoints say).
    names_of.insert(
        ("default".to_owned(), "kubernetes".to_owned()),
        BTreeSet::from([api_server_ip.to_owned()]),
    );

    let mut lines = Vec::new();
    for ((ns, svc), ips) in names_of {
        let mut names = vec![
            format!("{svc}.{ns}.svc.{CLUSTER_DOMAIN}"),
            format!("{svc}.{ns}.svc"),
        ];
        if own_ns.is_some() {
            names.push(format!("{svc}.{ns}"));
        }
        if own_ns == Some(ns.as_str()) {
            names.push(svc.clone());
        }
        for ip in ips {
            lines.push(Line {
                key: (format!("1 svc {ns}"), svc.clone(), String::new()),
                terminating: false,
                ip: IpOrText::new(&ip),
                names: names.clone(),
            });
        }
    }
    lines
}

/// Keeps hosts files current: reflectors for Pods, Services and EndpointSlices in all namespaces
/// and a task that re-renders every registered file when they change (and every few seconds).
#[derive(Clone)]
pub struct Names {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Names")
            .field("api_server_ip", &self.inner.api_server_ip)
            .field("files", &self.files().keys().collect::<Vec<_>>())
            .finish()
    }
}

struct Inner {
    pods: Store<Pod>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    api_server_ip: String,
    files: Mutex<BTreeMap<PathBuf, Option<HostsOwner>>>,
    changed: Notify,
}

impl Names {
    /// Starts the reflectors and the writer task on the current Tokio runtime.
    pub fn spawn(client: Client, api_server_ip: String) -> Names {
        let (pods, pods_writer) = reflector::store();
        let (services, services_writer) = reflector::store();
        let (slices, slices_writer) = reflector::store();
        let inner = Arc::new(Inner {
            pods,
            services,
            slices,
            api_server_ip,
            files: Mutex::new(BTreeMap::new()),
            changed: Notify::new(),
        });
        tokio::spawn(reflect(
            Api::<Pod>::all(client.clone()),
            pods_writer,
            inner.clone(),
        ));
        tokio::spawn(reflect(
            Api::<Service>::all(client.clone()),
            services_writer,
            inner.clone(),
        ));
        tokio::spawn(reflect(
            Api::<EndpointSlice>::all(client),
            slices_writer,
            inner.clone(),
        ));
        tokio::spawn(keep_current(inner.clone()));
        Names { inner }
    }

    /// Writes `path` now (from whatever the caches hold, possibly nothing yet) and keeps it
    /// current until [`Names::unregister`]. A failed write is logged; see [`Names::try_register`].
    pub fn register(&self, path: PathBuf, owner: Option<HostsOwner>) {
        if let Err(e) = self.try_register(path, owner) {
            tracing::warn!("{e:#}");
        }
    }

    /// [`Names::register`], failing when the first write fails (the file stays registered and
    /// is retried).
    pub fn try_register(&self, path: PathBuf, owner: Option<HostsOwner>) -> Result<()> {
        let content = self.inner.render(owner.as_ref());
        let mut files = self.files();
        files.insert(path.clone(), owner);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        write_if_changed(&path, &content)
    }

    /// Stops keeping `path` current (the file itself is left alone). Once this returns, the file
    /// is not written again, so its folder can be removed.
    pub fn unregister(&self, path: &Path) {
        self.files().remove(path);
    }

    /// Returns once the Pod, Service and EndpointSlice caches have each been listed once.
    pub async fn wait_synced(&self) {
        // An error means a reflector task ended, which only happens when the runtime shuts down.
        let _ = self.inner.pods.wait_until_ready().await;
        let _ = self.inner.services.wait_until_ready().await;
        let _ = self.inner.slices.wait_until_ready().await;
    }

    /// The content `owner`'s file would have now.
    pub fn render(&self, owner: Option<&HostsOwner>) -> String {
        self.inner.render(owner)
    }

    fn files(&self) -> MutexGuard<'_, BTreeMap<PathBuf, Option<HostsOwner>>> {
        self.inner.files()
    }
}

impl Inner {
    fn render(&self, owner: Option<&HostsOwner>) -> String {
        render(
            owner,
            &self.pods.state(),
            &self.services.state(),
            &self.slices.state(),
            &self.api_server_ip,
        )
    }

    fn files(&self) -> MutexGuard<'_, BTreeMap<PathBuf, Option<HostsOwner>>> {
        // The map stays consistent even if a holder panicked: every update is a single call.
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Mirrors one kind into its store and wakes the writer on every change. The watcher retries
/// with back-off; errors are only logged.
async fn reflect<K>(api: Api<K>, writer: reflector::store::Writer<K>, inner: Arc<Inner>)
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + Sync + 'static,
    K: serde::de::DeserializeOwned,
{
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|o: &mut K| o.meta_mut().managed_fields = None);
    let mut stream = std::pin::pin!(reflector(writer, stream));
    while let Some(event) = stream.next().await {
        match event {
            Ok(_) => inner.changed.notify_one(),
            Err(e) => tracing::warn!(kind = %K::kind(&()), "watching for hosts files: {e}"),
        }
    }
}

/// Re-renders every registered file after each burst of changes and every [`RESYNC`].
async fn keep_current(inner: Arc<Inner>) {
    loop {
        tokio::select! {
            () = inner.changed.notified() => tokio::time::sleep(DEBOUNCE).await,
            () = tokio::time::sleep(RESYNC) => {}
        }
        let files: Vec<_> = inner
            .files()
            .iter()
            .map(|(p, o)| (p.clone(), o.clone()))
            .collect();
        for (path, owner) in files {
            let content = inner.render(owner.as_ref());
            // Writes happen under the lock: two writers truncating and writing the same file at
            // once could interleave, and a file unregistered meanwhile (its pod is being torn
            // down) must be left alone.
            let files = inner.files();
            if files.get(&path) != Some(&owner) {
                continue;
            }
            if let Err(e) = write_if_changed(&path, &content) {
                tracing::warn!("{e:#}");
            }
            drop(files);
        }
    }
}

/// Rewrites `path` in place (truncate and write, never rename: the file may be bind-mounted,
/// and a rename would leave the mount on the old inode) unless it already holds `content`.
fn write_if_changed(path: &Path, content: &str) -> Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == content.as_bytes()) {
        return Ok(());
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("opening hosts file {}", path.display()))?;
    file.write_all(content.as_bytes())
        .with_context(|| format!("writing hosts file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<K: serde::de::DeserializeOwned>(yaml: &str) -> Vec<Arc<K>> {
        serde_yaml::Deserializer::from_str(yaml)
            .map(|doc| Arc::new(K::deserialize(doc).expect("fixture parses")))
            .collect()
    }

    const PODS: &str = r#"
metadata: {name: kafka-1, namespace: team-a}
spec: {hostname: kafka-1, subdomain: brokers, containers: []}
status: {podIP: 198.18.1.3}
---
metadata: {name: kafka-0, namespace: team-a}
spec: {hostname: kafka-0, subdomain: brokers, containers: []}
status: {podIP: 198.18.1.2}
---
# No subdomain: DNS gives it no name.
metadata: {name: operator-abc, namespace: team-a}
spec: {containers: []}
status: {podIP: 198.18.1.4}
---
# Not started yet: no address.
metadata: {name: kafka-2, namespace: team-a}
spec: {hostname: kafka-2, subdomain: brokers, containers: []}
---
# Terminating: still named while it has an address.
metadata: {name: zk-0, namespace: team-b, deletionTimestamp: "2025-01-01T00:00:00Z"}
spec: {hostname: zk-0, subdomain: zk, containers: []}
status: {podIP: 198.18.2.7}
"#;

    const SERVICES: &str = r#"
metadata: {name: kubernetes, namespace: default}
spec: {clusterIP: 10.0.0.1}
---
metadata: {name: bootstrap, namespace: team-a}
spec: {clusterIP: 10.0.0.20}
---
metadata: {name: brokers, namespace: team-a}
spec: {clusterIP: None}
---
metadata: {name: empty, namespace: team-b}
spec: {clusterIP: 10.0.0.30}
"#;

    const SLICES: &str = r#"
metadata:
  name: bootstrap-abcde
  namespace: team-a
  labels: {kubernetes.io/service-name: bootstrap}
addressType: IPv4
endpoints:
- addresses: [198.18.1.3]
  conditions: {ready: true}
- addresses: [198.18.1.2]
- addresses: [198.18.1.9]
  conditions: {ready: false}
---
metadata:
  name: bootstrap-fghij
  namespace: team-a
  labels: {kubernetes.io/service-name: bootstrap}
addressType: IPv4
endpoints:
- addresses: [198.18.1.10]
  conditions: {ready: true}
- addresses: [198.18.1.3]
  conditions: {ready: true}
---
# Same service name, other namespace: not bootstrap's.
metadata:
  name: bootstrap-xyz
  namespace: team-b
  labels: {kubernetes.io/service-name: bootstrap}
addressType: IPv4
endpoints:
- addresses: [198.18.2.2]
---
metadata:
  name: brokers-1
  namespace: team-a
  labels: {kubernetes.io/service-name: brokers}
addressType: IPv4
endpoints:
- addresses: [198.18.1.2]
  conditions: {ready: true}
---
metadata:
  name: empty-1
  namespace: team-b
  labels: {kubernetes.io/service-name: empty}
addressType: IPv4
endpoints:
- addresses: [198.18.2.5]
  conditions: {ready: false}
"#;

    type Fixtures = (Vec<Arc<Pod>>, Vec<Arc<Service>>, Vec<Arc<EndpointSlice>>);

    fn fixtures() -> Fixtures {
        (parse(PODS), parse(SERVICES), parse(SLICES))
    }

    fn owner_kafka_0() -> HostsOwner {
        HostsOwner {
            namespace: "team-a".into(),
            ip: "198.18.1.2".into(),
            hostname: "kafka-0".into(),
            subdomain: Some("brokers".into()),
        }
    }

    #[test]
    fn pod_in_a_subdomain() {
        let (pods, services, slices) = fixtures();
        let got = render(
            Some(&owner_kafka_0()),
            &pods,
            &services,
            &slices,
            "198.18.0.1",
        );
        let want = "\
# Kubernetes-managed hosts file (Oxbow testbed node agent).
127.0.0.1 localhost
::1 localhost ip6-localhost
198.18.1.2 kafka-0.brokers.team-a.svc.cluster.local kafka-0
198.18.1.2 kafka-0.brokers.team-a.svc.cluster.local kafka-0.brokers.team-a.svc kafka-0.brokers.team-a kafka-0.brokers
198.18.1.3 kafka-1.brokers.team-a.svc.cluster.local kafka-1.brokers.team-a.svc kafka-1.brokers.team-a kafka-1.brokers
198.18.2.7 zk-0.zk.team-b.svc.cluster.local zk-0.zk.team-b.svc zk-0.zk.team-b
198.18.0.1 kubernetes.default.svc.cluster.local kubernetes.default.svc kubernetes.default
198.18.1.2 bootstrap.team-a.svc.cluster.local bootstrap.team-a.svc bootstrap.team-a bootstrap
198.18.1.3 bootstrap.team-a.svc.cluster.local bootstrap.team-a.svc bootstrap.team-a bootstrap
198.18.1.10 bootstrap.team-a.svc.cluster.local bootstrap.team-a.svc bootstrap.team-a bootstrap
198.18.1.2 brokers.team-a.svc.cluster.local brokers.team-a.svc brokers.team-a brokers
";
        assert_eq!(got, want);
    }

    #[test]
    fn pod_without_subdomain_gets_the_short_own_line() {
        let (pods, services, slices) = fixtures();
        let owner = HostsOwner {
            namespace: "team-b".into(),
            ip: "198.18.2.9".into(),
            hostname: "operator-xyz".into(),
            subdomain: None,
        };
        let got = render(Some(&owner), &pods, &services, &slices, "198.18.0.1");
        let lines: Vec<_> = got.lines().collect();
        assert_eq!(lines[3], "198.18.2.9 operator-xyz");
        assert!(
            !got.contains("operator-xyz."),
            "no qualified name without a subdomain"
        );
        // Short forms follow the owner's namespace.
        assert!(got.contains(
            "198.18.2.7 zk-0.zk.team-b.svc.cluster.local zk-0.zk.team-b.svc zk-0.zk.team-b zk-0.zk\n"
        ));
        assert!(got.contains(
            "198.18.1.3 kafka-1.brokers.team-a.svc.cluster.local kafka-1.brokers.team-a.svc kafka-1.brokers.team-a\n"
        ));
        assert!(got.contains(
            "198.18.1.2 bootstrap.team-a.svc.cluster.local bootstrap.team-a.svc bootstrap.team-a\n"
        ));
    }

    #[test]
    fn client_gets_only_qualified_names() {
        let (pods, services, slices) = fixtures();
        let got = render(None, &pods, &services, &slices, "198.18.0.1");
        let want = "\
# Kubernetes-managed hosts file (Oxbow testbed node agent).
127.0.0.1 localhost
::1 localhost ip6-localhost
198.18.1.2 kafka-0.brokers.team-a.svc.cluster.local kafka-0.brokers.team-a.svc
198.18.1.3 kafka-1.brokers.team-a.svc.cluster.local kafka-1.brokers.team-a.svc
198.18.2.7 zk-0.zk.team-b.svc.cluster.local zk-0.zk.team-b.svc
198.18.0.1 kubernetes.default.svc.cluster.local kubernetes.default.svc
198.18.1.2 bootstrap.team-a.svc.cluster.local bootstrap.team-a.svc
198.18.1.3 bootstrap.team-a.svc.cluster.local bootstrap.team-a.svc
198.18.1.10 bootstrap.team-a.svc.cluster.local bootstrap.team-a.svc
198.18.1.2 brokers.team-a.svc.cluster.local brokers.team-a.svc
";
        assert_eq!(got, want);
    }

    #[test]
    fn not_ready_endpoints_and_other_namespaces_are_left_out() {
        let (pods, services, slices) = fixtures();
        let got = render(None, &pods, &services, &slices, "198.18.0.1");
        assert!(!got.contains("198.18.1.9"), "not-ready endpoint");
        assert!(
            !got.contains("empty.team-b"),
            "service without ready endpoints"
        );
        assert!(
            !got.contains("198.18.2.2"),
            "slice of another namespace's service"
        );
        assert!(!got.contains("10.0.0."), "ClusterIPs are never used");
        assert!(!got.contains("operator-abc"), "pod without subdomain");
        assert!(!got.contains("kafka-2"), "pod without address");
    }

    #[test]
    fn output_does_not_depend_on_input_order() {
        let (mut pods, mut services, mut slices) = fixtures();
        let owner = owner_kafka_0();
        let first = render(Some(&owner), &pods, &services, &slices, "198.18.0.1");
        pods.reverse();
        services.reverse();
        slices.reverse();
        let second = render(Some(&owner), &pods, &services, &slices, "198.18.0.1");
        assert_eq!(first, second);
    }

    #[test]
    fn replacement_pod_is_named_before_its_terminating_predecessor() {
        let pods: Vec<Arc<Pod>> = parse(
            r#"
metadata: {name: kafka-0, namespace: a, deletionTimestamp: "2025-01-01T00:00:00Z"}
spec: {hostname: kafka-0, subdomain: b, containers: []}
status: {podIP: 198.18.1.2}
---
metadata: {name: kafka-0, namespace: a}
spec: {hostname: kafka-0, subdomain: b, containers: []}
status: {podIP: 198.18.1.200}
"#,
        );
        let got = render(None, &pods, &[], &[], "198.18.0.1");
        let new = got.find("198.18.1.200 ").expect("replacement named");
        let old = got.find("198.18.1.2 ").expect("predecessor named");
        assert!(new < old, "{got}");
    }

    #[test]
    fn own_entry_uses_the_owners_address() {
        // The cache still holds the owner's predecessor with its old address.
        let pods: Vec<Arc<Pod>> = parse(
            r#"
metadata: {name: kafka-0, namespace: a}
spec: {hostname: kafka-0, subdomain: b, containers: []}
status: {podIP: 198.18.1.2}
"#,
        );
        let owner = HostsOwner {
            namespace: "a".into(),
            ip: "198.18.2.40".into(),
            hostname: "kafka-0".into(),
            subdomain: Some("b".into()),
        };
        let got = render(Some(&owner), &pods, &[], &[], "198.18.0.1");
        assert!(!got.contains("198.18.1.2 "), "{got}");
    }

    #[test]
    fn owner_from_pod() {
        let pods: Vec<Arc<Pod>> = parse(
            r#"
metadata: {name: op-1, namespace: a}
spec: {containers: []}
---
metadata: {name: web-0, namespace: a}
spec: {hostname: h, subdomain: s, containers: []}
"#,
        );
        assert_eq!(
            HostsOwner::for_pod(&pods[0], "198.18.1.5"),
            HostsOwner {
                namespace: "a".into(),
                ip: "198.18.1.5".into(),
                hostname: "op-1".into(),
                subdomain: None
            }
        );
        let owner = HostsOwner::for_pod(&pods[1], "198.18.1.6");
        assert_eq!(
            (owner.hostname.as_str(), owner.subdomain.as_deref()),
            ("h", Some("s"))
        );
    }

    #[test]
    fn rewrite_is_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hosts");
        write_if_changed(&path, "one\n").expect("first write");
        let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).expect("stat"));
        write_if_changed(&path, "two\n").expect("second write");
        let meta = std::fs::metadata(&path).expect("stat");
        assert_eq!(std::os::unix::fs::MetadataExt::ino(&meta), inode);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "two\n");
    }
}
