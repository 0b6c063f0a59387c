//! The node agent as the kubelet stand-in it claims to be, with plain pods (no operator): env
//! from the downward API and a Secret, ConfigMap and projected service-account volumes, the pod's
//! user, an exec readiness probe, graceful deletion (SIGTERM reaches the process, which may
//! finish), restarts with back-off, and a clear waiting reason for an image it does not have.
//! Needs `testbed up --nodes 1` (or more).

use std::time::Duration;

use anyhow::{Result, ensure};
use e2e::{objects::TestNamespace, stack::Stack};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::{
    Api,
    api::{DeleteParams, PostParams},
};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(120);

fn operator_image() -> Result<String> {
    Ok(std::env::var("OXBOW_OPERATOR_IMAGE")?)
}

fn pod(name: &str, image: &str, spec: serde_json::Value) -> Result<Pod> {
    let mut p =
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec});
    p["spec"]["containers"][0]["image"] = json!(image);
    Ok(serde_json::from_value(p)?)
}

fn first_status(p: &Pod) -> Option<k8s_openapi::api::core::v1::ContainerStatus> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_run_like_the_kubelet_runs_them() -> Result<()> {
    let s = Stack::from_env(env!("CARGO_BIN_EXE_kafka-client")).await?;
    let ns = TestNamespace::create(&s.client, "agent", &[]).await?;
    let outcome = body(&s, &ns.name).await;
    ns.delete().await;
    outcome
}

async fn body(s: &Stack, ns: &str) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), ns);
    let image = operator_image()?;
    // Pods are admitted once the controller manager has made the namespace's default
    // ServiceAccount (its token is what the projected volume carries).
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(s.client.clone(), ns);
    s.wait(ns, "default ServiceAccount", DEADLINE, || async {
        match accounts
            .get_opt("default")
            .await
            .map_err(|e| e.to_string())?
        {
            Some(_) => Ok(()),
            None => Err("not yet".to_owned()),
        }
    })
    .await?;
    Api::<ConfigMap>::namespaced(s.client.clone(), ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "settings"}, "data": {"key": "v1"}}),
            )?,
        )
        .await?;
    Api::<Secret>::namespaced(s.client.clone(), ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "creds"}, "stringData": {"password": "s3cret"}}),
            )?,
        )
        .await?;

    // A pod that reports what it sees, becomes ready through an exec probe, and says goodbye on
    // SIGTERM.
    let script = "echo \"uid=$(id -u) ip=$POD_IP secret=$PASSWORD config=$(cat /etc/settings/key) ns=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)\"; \
                  touch /scratch/ready; trap 'echo got TERM; exit 0' TERM; while true; do sleep 1; done";
    let runner = pod(
        "runner",
        &image,
        json!({
            "terminationGracePeriodSeconds": 20,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 4242, "fsGroup": 4242},
            "containers": [{
                "name": "main",
                "command": ["/bin/sh", "-c", script],
                "env": [
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}
                ],
                "readinessProbe": {"exec": {"command": ["test", "-f", "/scratch/ready"]}, "periodSeconds": 1},
                "volumeMounts": [
                    {"name": "settings", "mountPath": "/etc/settings"},
                    {"name": "scratch", "mountPath": "/scratch"}
                ]
            }],
            "volumes": [
                {"name": "settings", "configMap": {"name": "settings"}},
                {"name": "scratch", "emptyDir": {}}
            ]
        }),
    )?;
    pods.create(&PostParams::default(), &runner).await?;
    let ip = s
        .wait(ns, "runner Ready", DEADLINE, || async {
            let p = pods.get("runner").await.map_err(|e| e.to_string())?;
            let ready = first_status(&p).is_some_and(|c| c.ready);
            match p.status.and_then(|s| s.pod_ip) {
                Some(ip) if ready => Ok(ip),
                other => Err(format!("ready {ready}, ip {other:?}")),
            }
        })
        .await?;
    ensure!(
        ip.starts_with("198.18."),
        "pod address from the testbed range: {ip}"
    );
    let log = s.container_log(ns, "runner", "main");
    let expected = format!("uid=4242 ip={ip} secret=s3cret config=v1 ns={ns}");
    ensure!(
        log.contains(&expected),
        "runner log should say {expected:?}: {log}"
    );

    // Deletion: SIGTERM first, so the process can finish; then the Pod is gone.
    pods.delete("runner", &DeleteParams::default()).await?;
    s.wait(ns, "runner deleted", DEADLINE, || async {
        match pods.get_opt("runner").await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still there".to_owned()),
        }
    })
    .await?;
    let log = s.container_log(ns, "runner", "main");
    ensure!(
        log.contains("got TERM"),
        "the process must get SIGTERM before it is killed: {log}"
    );

    // A container that exits is restarted, at once the first time and then after a back-off,
    // with its exit recorded.
    let crasher = pod(
        "crasher",
        &image,
        json!({"containers": [{"name": "main", "command": ["/bin/sh", "-c", "echo run; exit 3"]}]}),
    )?;
    pods.create(&PostParams::default(), &crasher).await?;
    s.wait(ns, "crasher restarted", DEADLINE, || async {
        let p = pods.get("crasher").await.map_err(|e| e.to_string())?;
        let c = first_status(&p).ok_or("no status")?;
        let last = c
            .last_state
            .as_ref()
            .and_then(|l| l.terminated.as_ref())
            .map(|t| t.exit_code);
        let waiting = c
            .state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.clone());
        // As the kubelet counts: every start after the first is a restart, so a container
        // waiting out its back-off has run restartCount + 1 times.
        let runs = s
            .container_log(ns, "crasher", "main")
            .lines()
            .filter(|l| *l == "run")
            .count();
        if c.restart_count >= 1
            && runs == c.restart_count as usize + 1
            && last == Some(3)
            && waiting.as_deref() == Some("CrashLoopBackOff")
        {
            Ok(())
        } else {
            Err(format!(
                "restarts {}, runs {runs}, last exit {last:?}, waiting {waiting:?}",
                c.restart_count
            ))
        }
    })
    .await?;

    // An image the node does not have: a waiting status that says so, never a silent hang.
    let unknown = pod(
        "unknown-image",
        "example.invalid/nothing:1",
        json!({"containers": [{"name": "main", "command": ["/bin/true"]}]}),
    )?;
    pods.create(&PostParams::default(), &unknown).await?;
    s.wait(ns, "unknown image reported", DEADLINE, || async {
        let p = pods.get("unknown-image").await.map_err(|e| e.to_string())?;
        let w = first_status(&p)
            .and_then(|c| c.state)
            .and_then(|s| s.waiting)
            .ok_or("no waiting state")?;
        match (w.reason.as_deref(), w.message.as_deref()) {
            (Some("ErrImagePull"), Some(m)) if m.contains("example.invalid/nothing:1") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await?;
    Ok(())
}
