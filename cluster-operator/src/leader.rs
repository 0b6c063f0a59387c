//! Opt-in leader election on a `coordination.k8s.io` Lease, so that two replicas of the operator
//! can run and only one reconciles. The holder renews the Lease every third of its duration; a
//! replica that cannot renew exits at once (its successor takes over once the Lease expires),
//! so two leaders never act at the same time.
//! May touch: the one Lease named in the settings.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::{Api, Client, api::PostParams};
use tracing::{error, info};

use crate::config::LeaderElection;

/// Held while this replica leads; the renewal task runs until the process ends.
pub struct Leadership {
    _renewal: tokio::task::JoinHandle<()>,
}

/// Whether `lease` may be taken by `identity` at `now`.
pub fn can_take(lease: &LeaseSpec, identity: &str, now: Timestamp) -> bool {
    match lease.holder_identity.as_deref() {
        None | Some("") => true,
        Some(holder) if holder == identity => true,
        Some(_) => {
            let duration = i64::from(lease.lease_duration_seconds.unwrap_or(15));
            match lease.renew_time.as_ref().or(lease.acquire_time.as_ref()) {
                Some(MicroTime(renewed)) => *renewed + SignedDuration::from_secs(duration) < now,
                None => true,
            }
        }
    }
}

fn spec(le: &LeaderElection, now: Timestamp, previous: Option<&LeaseSpec>) -> LeaseSpec {
    let same_holder = previous
        .and_then(|p| p.holder_identity.as_deref())
        .is_some_and(|h| h == le.identity);
    LeaseSpec {
        holder_identity: Some(le.identity.clone()),
        lease_duration_seconds: Some(le.lease_duration.as_secs() as i32),
        acquire_time: if same_holder {
            previous.and_then(|p| p.acquire_time.clone())
        } else {
            Some(MicroTime(now))
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(
            previous.and_then(|p| p.lease_transitions).unwrap_or(0) + i32::from(!same_holder),
        ),
        ..LeaseSpec::default()
    }
}

/// One attempt to take or renew the Lease; `Ok(true)` when this replica holds it.
async fn try_hold(api: &Api<Lease>, le: &LeaderElection) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    match api.get_opt(&le.lease_name).await? {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(le.lease_name.clone()),
                    namespace: Some(le.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec(le, now, None)),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            }
        }
        Some(mut lease) => {
            let current = lease.spec.clone().unwrap_or_default();
            if !can_take(&current, &le.identity, now) {
                return Ok(false);
            }
            lease.spec = Some(spec(le, now, Some(&current)));
            // The resourceVersion kept in `lease` makes a concurrent taker fail with 409.
            match api
                .replace(&le.lease_name, &PostParams::default(), &lease)
                .await
            {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            }
        }
    }
}

/// Waits until this replica holds the Lease, then keeps renewing it in the background.
pub async fn acquire(client: Client, le: LeaderElection) -> anyhow::Result<Leadership> {
    let api: Api<Lease> = Api::namespaced(client, &le.namespace);
    let retry = (le.lease_duration / 3).max(Duration::from_millis(500));
    info!(lease = %le.lease_name, identity = %le.identity, "waiting for the leader Lease");
    loop {
        match try_hold(&api, &le).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => error!(error = %e, "reading the leader Lease failed"),
        }
        tokio::time::sleep(retry).await;
    }
    info!(lease = %le.lease_name, identity = %le.identity, "leading");
    let renewal = tokio::spawn(async move {
        loop {
            tokio::time::sleep(retry).await;
            match try_hold(&api, &le).await {
                Ok(true) => {}
                outcome => {
                    error!(
                        ?outcome,
                        "lost the leader Lease; exiting so that only one replica acts"
                    );
                    std::process::exit(1);
                }
            }
        }
    });
    Ok(Leadership { _renewal: renewal })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, renewed_secs_ago: i64, duration: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: Some(duration),
            renew_time: Some(MicroTime(
                Timestamp::now() - SignedDuration::from_secs(renewed_secs_ago),
            )),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_live_lease_of_another_holder_cannot_be_taken() {
        assert!(!can_take(&lease(Some("a"), 1, 15), "b", Timestamp::now()));
    }

    #[test]
    fn an_expired_free_or_own_lease_can_be_taken() {
        assert!(can_take(&lease(Some("a"), 20, 15), "b", Timestamp::now()));
        assert!(can_take(&lease(None, 1, 15), "b", Timestamp::now()));
        assert!(can_take(&lease(Some("b"), 1, 15), "b", Timestamp::now()));
    }

    #[test]
    fn a_new_holder_counts_a_transition_and_keeps_no_old_acquire_time() {
        let le = LeaderElection {
            namespace: "ns".into(),
            lease_name: "l".into(),
            identity: "b".into(),
            lease_duration: Duration::from_secs(15),
        };
        let old = LeaseSpec {
            lease_transitions: Some(2),
            ..lease(Some("a"), 30, 15)
        };
        let now = Timestamp::now();
        let s = spec(&le, now, Some(&old));
        assert_eq!(s.lease_transitions, Some(3));
        assert_eq!(s.acquire_time, Some(MicroTime(now)));
        let again = spec(&le, now, Some(&s));
        assert_eq!(again.lease_transitions, Some(3));
    }
}
