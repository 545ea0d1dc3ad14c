//! Runs a kube-runtime controller against the in-memory fake API server on a paused clock and
//! prints the server's journal: `cargo run -p kopf-examples --bin fake-cluster-demo`.

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()?;
    let started = std::time::Instant::now();
    let ops = runtime.block_on(kopf_examples::fake_cluster::run())?;
    println!("What the fake API server saw (virtual time, actor, verb, resource, code, resourceVersion):");
    for op in &ops {
        println!("{}", kopf_examples::fake_cluster::format(op));
    }
    println!("An hour of virtual time in {:?} of wall time.", started.elapsed());
    Ok(())
}
