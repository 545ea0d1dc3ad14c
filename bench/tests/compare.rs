//! The side-by-side benchmark's reading of /proc and its report (the runs themselves are
//! `bench/run.sh --quick`, in .ci/run).

use std::collections::BTreeMap;
use std::path::PathBuf;

use kopf_bench::compare::procfs::{ProcSample, cpu_ticks, status_kib};
use kopf_bench::compare::report::{self, Context, Machine};
use kopf_bench::compare::{Contender, Outcome, Phase, PhaseKind, Run};

fn phase(kind: PhaseKind, seconds: f64, outcome: Outcome, requests: u64, cpu: f64) -> Phase {
    Phase {
        kind,
        outcome,
        seconds,
        requests: BTreeMap::from([("PATCH kopfexamples".to_owned(), requests)]),
        operator_cpu: cpu,
        fake_cpu: cpu / 2.0,
    }
}

/// A finished run: each phase takes `seconds`, makes `requests` requests and burns `cpu`.
fn run(contender: Contender, objects: usize, seconds: f64, requests: u64, cpu: f64, rss_mb: u64) -> Run {
    Run {
        contender,
        objects,
        phases: PhaseKind::ALL.iter().map(|k| phase(*k, seconds, Outcome::Done, requests, cpu)).collect(),
        first_handled: Some(0.01),
        operator: ProcSample { cpu_seconds: 3.0 * cpu, rss_bytes: 0, peak_rss_bytes: rss_mb * 1_000_000 },
        fake: ProcSample::default(),
        log: PathBuf::from("log"),
    }
}

fn timed_out(objects: usize, handled: usize) -> Run {
    let mut run = run(Contender::Kopf, objects, 0.0, 0, 0.0, 90);
    run.phases[0] = phase(PhaseKind::Create, 600.0, Outcome::TimedOut { handled }, 5000, 500.0);
    run.phases[1].outcome = Outcome::NotRun;
    run.phases[2].outcome = Outcome::NotRun;
    run
}

#[test]
fn cpu_ticks_are_counted_after_the_command_name_even_when_it_holds_spaces_and_parentheses() {
    let stat = "4242 (python3 (kopf) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 5 0 100 0 0";
    assert_eq!(cpu_ticks(stat), Some(325));
    assert_eq!(status_kib("Name:\tx\nVmHWM:\t   85432 kB\nVmRSS:\t 1000 kB\n", "VmHWM:"), Some(85_432));
}

#[test]
fn ratios_put_kopf_rs_against_kopf_and_kube_runtime_at_each_size() {
    let runs = [
        run(Contender::KopfRs, 1000, 0.5, 3000, 0.3, 9),
        run(Contender::Kopf, 1000, 15.0, 5000, 15.0, 90),
        run(Contender::KubeRuntime, 1000, 0.4, 2000, 0.2, 6),
    ];
    let summary = report::summary(&runs);
    let ratios = summary.lines().find(|l| l.starts_with("N=1000:")).expect(&summary);
    assert_eq!(
        ratios,
        "N=1000: throughput kopf-rs/Kopf 30×, peak RSS kopf-rs/Kopf 0.10×, throughput \
         kopf-rs/kube-runtime 0.80×, CPU per object kopf-rs/kube-runtime 1.50×, requests per object \
         kopf-rs/kube-runtime 1.50×"
    );
    let markdown = report::markdown(&runs, &Machine::default(), &Context::default());
    assert!(markdown.contains("| 1000 | 30× | 0.10× | 0.80× | 1.50× | 1.50× |"), "{markdown}");
    assert!(
        markdown
            .contains("| **handled objects/s, three phases (3N)** | **2000/s** | **67/s** | **2500/s** |")
    );
    assert!(markdown.contains("| API requests per object: create / update / delete | 3.00 / 3.00 / 3.00 |"));
}

#[test]
fn a_contender_that_hits_the_cap_is_reported_with_how_many_it_handled_never_dropped() {
    let runs = [run(Contender::KopfRs, 10_000, 2.0, 30_000, 1.0, 20), timed_out(10_000, 4200)];
    let markdown = report::markdown(&runs, &Machine::default(), &Context::default());
    assert!(markdown.contains("timed out at 4200 handled (of 10000) after 600 s"), "{markdown}");
    assert!(markdown.contains("| not run |"), "{markdown}");
    // The throughput ratio is a lower bound: Kopf handled at most 4200 objects in 600 s.
    assert!(markdown.contains("| 10000 | ≥ 714× (Kopf timed out) |"), "{markdown}");
    let svg = report::svg(&runs);
    assert!(svg.contains("timed out at N = 10k"), "{svg}");
}

#[test]
fn the_plot_draws_a_line_per_contender_over_the_sizes() {
    let runs: Vec<Run> = [100, 1000, 10_000]
        .into_iter()
        .flat_map(|n| {
            [
                run(Contender::KopfRs, n, n as f64 / 5000.0, 3, 0.1, 9),
                run(Contender::Kopf, n, n as f64 / 300.0, 5, 1.0, 90),
            ]
        })
        .collect();
    let svg = report::svg(&runs);
    assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
    assert_eq!(svg.matches("<circle").count(), 6, "{svg}");
    assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
    for label in [">100<", ">1k<", ">10k<", ">kopf-rs<", ">Kopf 1.45 (Python)<"] {
        assert!(svg.contains(label), "{label} in {svg}");
    }
}
