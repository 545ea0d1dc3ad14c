//! The live fake cluster under load: a 1,000-replica Deployment rolled out on 10 simulated Nodes,
//! then updated to a new image (a rolling update with the default 25% surge and unavailability),
//! in process on virtual time (a paused current-thread runtime, as under KopfRunner). For each
//! phase: the wall time, this process's CPU time (which other load on the machine does not
//! inflate), the virtual time the cluster took, and the API requests the built-in controllers made
//! (per second of wall time). Goal: the whole run under 2 s of wall time on the 2-core machine.
//!
//! `cargo run --release -p kopf-bench --bin live-rollout-bench [REPLICAS]` (default 1000).

use std::time::{Duration, Instant};

use fake_apiserver::live::{ControlPlane, LiveCluster, NodeTemplate};
use fake_apiserver::{FakeApiServer, PatchType, Request, Response, Verb};
use serde_json::{Value, json};

/// Lets virtual time pass, deadline after deadline, until `done` holds; returns the virtual time.
async fn until(
    server: &FakeApiServer,
    mut done: impl FnMut(&FakeApiServer) -> bool,
) -> anyhow::Result<Duration> {
    let control: &ControlPlane = server.control_plane().ok_or_else(|| anyhow::anyhow!("not live"))?;
    let start = tokio::time::Instant::now();
    loop {
        control.settle().await;
        if done(server) {
            return Ok(start.elapsed());
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(3600),
            "not done within an hour of virtual time"
        );
        let next = control
            .next_deadline()
            .filter(|d| *d > tokio::time::Instant::now())
            .ok_or_else(|| anyhow::anyhow!("the control plane is idle but the rollout is not done"))?;
        tokio::time::sleep_until(next).await;
    }
}

/// Whether the Deployment's rollout is complete (what `kubectl rollout status` waits for).
fn rolled_out(server: &FakeApiServer, replicas: u64) -> bool {
    let Some(d) = server.cluster().object("apps", "deployments", "default", "web").map(|o| o.value()) else {
        return false;
    };
    let status = &d["status"];
    status["observedGeneration"] == d["metadata"]["generation"]
        && status["updatedReplicas"] == replicas
        && status["replicas"] == replicas
        && status["availableReplicas"] == replicas
}

async fn send(server: &FakeApiServer, mut req: Request) -> anyhow::Result<Value> {
    req.actor = "bench".into();
    match server.cluster().handle(req).await? {
        Response::Object(o) => Ok(o.value()),
        other => anyhow::bail!("unexpected response {other:?}"),
    }
}

/// User plus system CPU time of this process, from `/proc/self/stat` (zero where there is none).
fn cpu() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat").ok().and_then(|stat| {
        // utime and stime are the 12th and 13th fields after the parenthesized command name.
        let after = stat.rsplit_once(')')?.1.split_whitespace().skip(11).take(2).collect::<Vec<_>>();
        Some(after.first()?.parse::<u64>().ok()? + after.get(1)?.parse::<u64>().ok()?)
    });
    Duration::from_millis(ticks.unwrap_or(0) * 10) // clock ticks of 1/100 s
}

fn phase(name: &str, wall: Duration, cpu: Duration, virtual_time: Duration, requests: u64, reconciles: u64) {
    println!(
        "{name:<10} wall {:>8.1} ms   cpu {:>7.0} ms   virtual {:>3.0} s   controller requests {requests:>6} ({:>7.0}/s of wall time)   reconciles {reconciles:>6}",
        wall.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e3,
        virtual_time.as_secs_f64(),
        requests as f64 / wall.as_secs_f64(),
    );
}

fn main() -> anyhow::Result<()> {
    let replicas: u64 = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()?;
    runtime.block_on(async {
        let started = Instant::now();
        let nodes = (1..=10).map(|i| NodeTemplate::new(format!("node-{i}")).capacity("pods", "250"));
        let live = nodes.fold(LiveCluster::new().nodes(0), LiveCluster::node);
        let server = FakeApiServer::builder().seed(1).live(live).build();
        let control = server.control_plane().ok_or_else(|| anyhow::anyhow!("not live"))?.clone();
        control.settle().await;
        let boot = started.elapsed();
        println!("live-rollout-bench: {replicas} replicas on 10 Nodes");
        println!("{:<10} wall {:>8.1} ms", "start", boot.as_secs_f64() * 1e3);
        let (mut requests, mut reconciles) = (control.requests(), control.reconciles());
        let mut totals = (Duration::ZERO, Duration::ZERO);

        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}], "terminationGracePeriodSeconds": 5},
                },
            },
        });
        for (name, request) in [
            ("rollout", Request::new(Verb::Create, "apps", "v1", "deployments").namespace("default").body(deployment)),
            (
                "update",
                Request::new(Verb::Patch, "apps", "v1", "deployments")
                    .namespace("default")
                    .name("web")
                    .patch_type(PatchType::Strategic)
                    .body(json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}})),
            ),
        ] {
            let (wall, cpu_before) = (Instant::now(), cpu());
            send(&server, request).await?;
            let virtual_time = until(&server, |s| rolled_out(s, replicas)).await?;
            let wall = wall.elapsed();
            let spent = cpu().saturating_sub(cpu_before);
            phase(name, wall, spent, virtual_time, control.requests() - requests, control.reconciles() - reconciles);
            (requests, reconciles) = (control.requests(), control.reconciles());
            totals = (totals.0 + wall, totals.1 + virtual_time);
        }
        let pods = server.cluster().objects("", "pods").len();
        let total = started.elapsed();
        println!(
            "total      wall {:>8.1} ms   cpu {:>7.0} ms   virtual {:>3.0} s   controller requests {:>6} ({:.0}/s)   Pods left (old ones terminating) {pods}",
            total.as_secs_f64() * 1e3,
            cpu().as_secs_f64() * 1e3,
            totals.1.as_secs_f64(),
            control.requests(),
            control.requests() as f64 / total.as_secs_f64(),
        );
        println!("goal: under 2 s of wall time on 2 cores — {}", if total < Duration::from_secs(2) { "met" } else { "missed" });
        Ok(())
    })
}
