//! The example operator as a program, with `kopf run`'s flags: against the cluster of the current
//! kubeconfig context (or the in-cluster service account), e.g. `cargo run -p kopf-examples --bin
//! kopfexample -- -n default --verbose`. The cluster must serve the CRD already
//! (`kopf_examples::kopfexample::KopfExample::crd()`); the operator does not install it.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kopf::run(kopf_examples::kopfexample::operator().with_crd::<kopf_examples::kopfexample::KopfExample>())
        .await?;
    Ok(())
}
