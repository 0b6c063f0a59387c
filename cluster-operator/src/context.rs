//! What every reconcile shares: the Kubernetes client, the settings, the writer, the Event
//! recorder and the metrics. May touch: Events (through `event`) and the metrics registry.

use kube::{
    Client, Resource,
    runtime::events::{Event, EventType, Recorder, Reporter},
};
use oxbow_runtime::kafka::admin::AdminMetrics;
use oxbow_runtime::metrics::ReconcileMetrics;
use prometheus::{GaugeVec, IntCounterVec, Opts, Registry};
use shared_crds::Kafka;
use tracing::warn;

use crate::act::{FIELD_MANAGER, Writer};
use crate::config::Config;

/// The cluster operator's metric families.
#[derive(Clone)]
pub struct ClusterMetrics {
    /// Reconciliations, durations and resources by state (shared names across operators).
    pub reconciles: ReconcileMetrics,
    /// `oxbow_kubernetes_writes_total{kind, verb}`: every write the operator makes.
    pub writes: IntCounterVec,
    /// `oxbow_certificate_expiration_timestamp_seconds{namespace, cluster, ca}`: when each CA
    /// certificate expires (Unix seconds).
    pub ca_expiry: GaugeVec,
    /// Admin calls to the Kafka clusters (rolls, scale-down checks, dynamic configuration).
    pub admin: AdminMetrics,
}

impl ClusterMetrics {
    /// Creates the families and registers them.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let reconciles = ReconcileMetrics::register(registry)?;
        let writes = IntCounterVec::new(
            Opts::new(
                "oxbow_kubernetes_writes_total",
                "Writes to the Kubernetes API by kind and verb",
            ),
            &["kind", "verb"],
        )?;
        let ca_expiry = GaugeVec::new(
            Opts::new(
                "oxbow_certificate_expiration_timestamp_seconds",
                "When each CA certificate of each cluster expires, in Unix seconds",
            ),
            &["namespace", "cluster", "ca"],
        )?;
        registry.register(Box::new(writes.clone()))?;
        registry.register(Box::new(ca_expiry.clone()))?;
        let admin = AdminMetrics::register(registry)?;
        Ok(Self {
            reconciles,
            writes,
            ca_expiry,
            admin,
        })
    }
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub config: Config,
    pub writer: Writer,
    pub recorder: Recorder,
    pub metrics: ClusterMetrics,
    /// The statuses written last (see [`crate::status::WrittenStatuses`]).
    pub written: crate::status::WrittenStatuses,
}

impl Context {
    /// A context over `client` with `config`, counting writes in `metrics`.
    pub fn new(client: Client, config: Config, metrics: ClusterMetrics) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: FIELD_MANAGER.into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        );
        Self {
            writer: Writer::new(client.clone(), metrics.writes.clone()),
            client,
            config,
            recorder,
            metrics,
            written: Default::default(),
        }
    }

    /// Publishes an Event about `kafka`; a failure is logged, never fatal. A note longer than
    /// the API server takes (1024 bytes) is cut.
    pub async fn event(&self, kafka: &Kafka, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(event_note(note)),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &kafka.object_ref(&())).await {
            warn!(error = %e, "publishing an Event failed");
        }
    }
}

/// The longest Event note the API server accepts, in bytes.
const MAX_EVENT_NOTE: usize = 1024;

/// `note` cut to [`MAX_EVENT_NOTE`] bytes at a character boundary, ending in `…` when cut.
fn event_note(mut note: String) -> String {
    if note.len() <= MAX_EVENT_NOTE {
        return note;
    }
    let mut end = MAX_EVENT_NOTE - '…'.len_utf8();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    note.truncate(end);
    note.push('…');
    note
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_event_notes_are_cut_to_what_the_api_server_takes() {
        assert_eq!(event_note("short".into()), "short");
        let exact = "x".repeat(MAX_EVENT_NOTE);
        assert_eq!(event_note(exact.clone()), exact);
        // Multi-byte characters across the limit: cut before them, never inside.
        let long = "é".repeat(MAX_EVENT_NOTE);
        let cut = event_note(long);
        assert!(cut.len() <= MAX_EVENT_NOTE, "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert!(cut.trim_end_matches('…').chars().all(|c| c == 'é'));
    }
}
