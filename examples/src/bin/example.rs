//! Runs one of the numbered examples as an operator program with `kopf run`'s flags, against the
//! cluster of the current kubeconfig context (or in-cluster), e.g.
//! `cargo run -p kopf-examples --bin example -- 01-minimal -n default --verbose`.
//! The cluster must serve the examples' CRD (`... example NAME manifests` prints it, with a
//! Deployment); with `--fake-cluster`, the example runs on an embedded fake cluster instead, and
//! prints a kubeconfig for kubectl.

use clap::Parser as _;
use kopf::Operator;
use kopf_examples::*;

fn operator(name: &str) -> Option<Operator> {
    Some(match name {
        "01-minimal" => ex01_minimal::operator(),
        "02-children" => ex02_children::operator(),
        "03-exceptions" => ex03_exceptions::operator(),
        "04-events" => ex04_events::operator(),
        "05-handlers" => ex05_handlers::operator(),
        "06-peering" => ex06_peering::operator(),
        "07-subhandlers" => ex07_subhandlers::operator(),
        "08-events" => ex08_events::operator(ex08_events::Seen::default()),
        "09-testing" => ex09_testing::operator(),
        "10-builtins" => ex10_builtins::operator(),
        "11-filtering" => ex11_filtering::operator(),
        "12-embedded" => ex12_embedded::operator(),
        "13-hooks" => ex13_hooks::operator(std::sync::Arc::default()),
        "14-daemons" => ex14_daemons::operator(),
        "15-timers" => ex15_timers::operator(),
        "16-indexing" => ex16_indexing::operator(),
        "17-admission" => ex17_admission::operator(),
        "99-all-at-once" => ex99_all_at_once::operator(),
        _ => return None,
    })
}

const NAMES: &str = "01-minimal 02-children 03-exceptions 04-events 05-handlers 06-peering 07-subhandlers \
                     08-events 09-testing 10-builtins 11-filtering 12-embedded 13-hooks 14-daemons \
                     15-timers 16-indexing 17-admission 99-all-at-once";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().collect();
    let Some(name) = (args.len() > 1).then(|| args.remove(1)) else {
        anyhow::bail!("usage: example NAME [kopf run flags]; names: {NAMES}");
    };
    let Some(operator) = operator(&name) else {
        anyhow::bail!("no example {name:?}; names: {NAMES}");
    };
    let cli = kopf::Cli::try_parse_from(args)?;
    kopf::run_with(operator.with_crd::<kopfexample::KopfExample>(), cli).await?;
    Ok(())
}
