//! Reconcile metrics every operator exposes, with the same names so one dashboard serves all:
//! reconciliations by kind and outcome, their duration, resources by state, and queue depth.
//! May touch: the Prometheus registry it is given.

use std::time::Duration;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Buckets from 1 ms to about 65 s: single-object reconciles are fast, full resyncs are long.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 65.0,
];

/// The metric families of a reconciling operator.
#[derive(Clone)]
pub struct ReconcileMetrics {
    /// `oxbow_reconciliations_total{kind, outcome}`; outcome is `success` or an error reason.
    pub reconciliations: IntCounterVec,
    /// `oxbow_reconcile_duration_seconds{kind}`.
    pub duration: HistogramVec,
    /// `oxbow_resources{kind, state}`; state is `ready`, `not_ready` or `paused`.
    pub resources: IntGaugeVec,
    /// `oxbow_queue_depth{kind}`: objects waiting to be reconciled.
    pub queue_depth: IntGaugeVec,
}

impl ReconcileMetrics {
    /// Creates the families and registers them.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let reconciliations = IntCounterVec::new(
            Opts::new(
                "oxbow_reconciliations_total",
                "Reconciliations by kind and outcome",
            ),
            &["kind", "outcome"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "oxbow_reconcile_duration_seconds",
                "Duration of reconciliations",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["kind"],
        )?;
        let resources = IntGaugeVec::new(
            Opts::new("oxbow_resources", "Managed resources by kind and state"),
            &["kind", "state"],
        )?;
        let queue_depth = IntGaugeVec::new(
            Opts::new("oxbow_queue_depth", "Resources waiting to be reconciled"),
            &["kind"],
        )?;
        registry.register(Box::new(reconciliations.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(resources.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        Ok(ReconcileMetrics {
            reconciliations,
            duration,
            resources,
            queue_depth,
        })
    }

    /// Records one finished reconciliation.
    pub fn observe(&self, kind: &str, outcome: &str, took: Duration) {
        self.reconciliations
            .with_label_values(&[kind, outcome])
            .inc();
        self.duration
            .with_label_values(&[kind])
            .observe(took.as_secs_f64());
    }

    /// A histogram for one kind, for callers that time many reconciliations.
    pub fn duration_for(&self, kind: &str) -> Histogram {
        self.duration.with_label_values(&[kind])
    }

    /// A gauge for the queue depth of one kind.
    pub fn queue_for(&self, kind: &str) -> IntGauge {
        self.queue_depth.with_label_values(&[kind])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_show_up_in_the_registry() {
        let registry = Registry::new();
        let m = ReconcileMetrics::register(&registry).unwrap();
        m.observe("KafkaTopic", "success", Duration::from_millis(3));
        m.observe("KafkaTopic", "success", Duration::from_millis(4));
        m.observe("KafkaTopic", "CreateTopics", Duration::from_millis(5));
        m.resources
            .with_label_values(&["KafkaTopic", "ready"])
            .set(2);
        let families = registry.gather();
        let total = families
            .iter()
            .find(|f| f.name() == "oxbow_reconciliations_total")
            .unwrap();
        let mut counts: Vec<(String, u64)> = total
            .get_metric()
            .iter()
            .map(|m| {
                (
                    m.get_label()[1].value().to_string(),
                    m.get_counter().value() as u64,
                )
            })
            .collect();
        counts.sort();
        assert_eq!(
            counts,
            vec![("CreateTopics".into(), 1), ("success".into(), 2)]
        );
        let hist = families
            .iter()
            .find(|f| f.name() == "oxbow_reconcile_duration_seconds")
            .unwrap();
        assert_eq!(hist.get_metric()[0].get_histogram().get_sample_count(), 3);
    }

    #[test]
    fn registering_twice_in_one_registry_fails() {
        let registry = Registry::new();
        ReconcileMetrics::register(&registry).unwrap();
        assert!(ReconcileMetrics::register(&registry).is_err());
    }
}
