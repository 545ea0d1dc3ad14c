//! The side-by-side benchmark's outputs: the Markdown of `bench/RESULTS.md`, the SVG plot of
//! throughput against N, and the short summary printed to the console.

use std::fmt::Write as _;

use super::{Contender, Outcome, Phase, PhaseKind, Run};

/// The machine the figures were measured on.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    /// `nproc`.
    pub cpus: usize,
    /// `model name` of `/proc/cpuinfo`.
    pub model: String,
    /// Total memory, in GiB.
    pub memory_gib: f64,
    /// `uname -r`.
    pub kernel: String,
}

impl Machine {
    /// What Linux says about this machine.
    pub fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, m)| m.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib = super::procfs::status_kib(&meminfo, "MemTotal:").unwrap_or(0);
        Self {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            model,
            memory_gib: memory_kib as f64 / 1024.0 / 1024.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned()),
        }
    }
}

/// What else goes in the report.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The command that produced it.
    pub command: String,
    /// The build profile of the programs (`release`, `debug`).
    pub profile: String,
    /// The git commit measured.
    pub commit: String,
    /// The date (UTC).
    pub date: String,
    /// The time cap per contender and size, in seconds.
    pub cap_seconds: u64,
    /// The plot's file name, relative to the report.
    pub plot: Option<String>,
    /// In-process figures: (title, output of the bench binary).
    pub in_process: Vec<(String, String)>,
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn rate(objects: usize, seconds: f64) -> String {
    format!("{:.0}/s", objects as f64 / seconds)
}

fn phase_cell(run: &Run, phase: &Phase) -> String {
    match &phase.outcome {
        Outcome::Done => format!("{:.2} s · {}", phase.seconds, rate(run.objects, phase.seconds)),
        Outcome::TimedOut { handled } => {
            format!("timed out at {handled} handled (of {}) after {:.0} s", run.objects, phase.seconds)
        }
        Outcome::Failed { handled, reason } => format!("failed at {handled} handled: {reason}"),
        Outcome::NotRun => "not run".to_owned(),
    }
}

fn requests_cell(run: &Run) -> String {
    PhaseKind::ALL
        .iter()
        .map(|kind| {
            let phase = run.phase(*kind);
            match phase.outcome {
                Outcome::Done => format!("{:.2}", phase.request_total() as f64 / run.objects as f64),
                Outcome::NotRun => "–".to_owned(),
                _ => "?".to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

/// A ratio `a / b` to two significant places, or `–`.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => {
            let r = a / b;
            if r >= 10.0 { format!("{r:.0}×") } else { format!("{r:.2}×") }
        }
        _ => "–".to_owned(),
    }
}

fn find(runs: &[Run], contender: Contender, objects: usize) -> Option<&Run> {
    runs.iter().find(|r| r.contender == contender && r.objects == objects)
}

fn sizes(runs: &[Run]) -> Vec<usize> {
    let mut sizes: Vec<usize> = runs.iter().map(|r| r.objects).collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

fn contenders(runs: &[Run]) -> Vec<Contender> {
    Contender::ALL.into_iter().filter(|c| runs.iter().any(|r| r.contender == *c)).collect()
}

/// The ratio rows: one per N.
fn ratio_rows(runs: &[Run]) -> Vec<[String; 6]> {
    sizes(runs)
        .into_iter()
        .map(|n| {
            let ours = find(runs, Contender::KopfRs, n);
            let kopf = find(runs, Contender::Kopf, n);
            let kube = find(runs, Contender::KubeRuntime, n);
            let throughput = |r: Option<&Run>| r.and_then(Run::throughput);
            let peak = |r: Option<&Run>| r.filter(|r| r.complete()).map(|r| r.operator.peak_rss_bytes as f64);
            let cpu = |r: Option<&Run>| r.and_then(Run::cpu_per_object);
            let requests = |r: Option<&Run>| r.and_then(Run::requests_per_object);
            let kopf_throughput = match kopf {
                Some(k) if !k.complete() => {
                    format!("≥ {} (Kopf timed out)", ratio(throughput(ours), bound(k)))
                }
                _ => ratio(throughput(ours), throughput(kopf)),
            };
            [
                n.to_string(),
                kopf_throughput,
                ratio(peak(ours), peak(kopf)),
                ratio(throughput(ours), throughput(kube)),
                ratio(cpu(ours), cpu(kube)),
                ratio(requests(ours), requests(kube)),
            ]
        })
        .collect()
}

/// For a run that did not finish: an upper bound of its throughput (handlings so far over the
/// time spent, counting an unfinished phase as ending at the cap).
fn bound(run: &Run) -> Option<f64> {
    let handled: usize = run
        .phases
        .iter()
        .map(|p| match p.outcome {
            Outcome::Done => run.objects,
            Outcome::TimedOut { handled } | Outcome::Failed { handled, .. } => handled,
            Outcome::NotRun => 0,
        })
        .sum();
    let seconds = run.total_seconds();
    (seconds > 0.0 && handled > 0).then(|| handled as f64 / seconds)
}

/// `bench/RESULTS.md`.
pub fn markdown(runs: &[Run], machine: &Machine, context: &Context) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# kopf-rs vs Python Kopf vs bare kube-runtime\n");
    let _ = writeln!(
        out,
        "Measured by `{}` ({} build) at commit `{}` on {}.\n",
        context.command, context.profile, context.commit, context.date
    );
    let _ = writeln!(
        out,
        "Machine: {} CPUs ({}), {:.0} GiB memory, Linux {}. The operator, the fake server and the \
         harness share these CPUs; the figures are from one run (other builds may have been running \
         on the machine).\n",
        machine.cpus, machine.model, machine.memory_gib, machine.kernel
    );
    out.push_str(WORKLOAD);
    let _ =
        writeln!(out, "Time cap: {} s per contender and size, all phases together.\n", context.cap_seconds);

    out.push_str("## Ratios\n\n");
    out.push_str(
        "| N | throughput kopf-rs / Kopf (goal ≥ 30×) | peak RSS kopf-rs / Kopf (goal ≤ 0.10×) | \
         throughput kopf-rs / kube-runtime | operator CPU per object kopf-rs / kube-runtime (goal ≤ 1.5×) | \
         API requests per object kopf-rs / kube-runtime |\n|---|---|---|---|---|---|\n",
    );
    for row in ratio_rows(runs) {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out.push('\n');
    if let Some(plot) = &context.plot {
        let _ = writeln!(out, "![handled objects per second against N]({plot})\n");
    }

    out.push_str("## Figures\n\n");
    let contenders = contenders(runs);
    for n in sizes(runs) {
        let _ = writeln!(out, "### N = {n}\n");
        let _ = write!(out, "| |");
        for c in &contenders {
            let _ = write!(out, " {} |", c.title());
        }
        let _ = write!(out, "\n|---|");
        for _ in &contenders {
            out.push_str("---|");
        }
        out.push('\n');
        let row = |out: &mut String, title: &str, cell: &dyn Fn(&Run) -> String| {
            let _ = write!(out, "| {title} |");
            for c in &contenders {
                let text = find(runs, *c, n).map_or_else(|| "–".to_owned(), cell);
                let _ = write!(out, " {text} |");
            }
            out.push('\n');
        };
        row(&mut out, "create: backlog of N from the operator's start", &|r| {
            phase_cell(r, r.phase(PhaseKind::Create))
        });
        row(&mut out, "first object handled after start", &|r| {
            r.first_handled.map_or_else(|| "–".to_owned(), |s| format!("{s:.3} s"))
        });
        row(&mut out, "update: each object changed once", &|r| phase_cell(r, r.phase(PhaseKind::Update)));
        row(&mut out, "delete: all objects deleted", &|r| phase_cell(r, r.phase(PhaseKind::Delete)));
        row(&mut out, "**handled objects/s, three phases (3N)**", &|r| {
            r.throughput().map_or_else(|| "–".to_owned(), |t| format!("**{t:.0}/s**"))
        });
        row(&mut out, "API requests per object: create / update / delete", &requests_cell);
        row(&mut out, "operator peak RSS", &|r| mb(r.operator.peak_rss_bytes));
        row(&mut out, "operator CPU: total · per 1,000 handlings", &|r| {
            let total: f64 = r.phases.iter().map(|p| p.operator_cpu).sum();
            match r.cpu_per_object() {
                Some(per) => format!("{total:.2} s · {:.3} s", per * 1000.0),
                None => format!("{total:.2} s"),
            }
        });
        row(&mut out, "fake-apiserver peak RSS", &|r| mb(r.fake.peak_rss_bytes));
        row(&mut out, "fake-apiserver CPU (serving the harness too)", &|r| {
            format!("{:.2} s", r.phases.iter().map(|p| p.fake_cpu).sum::<f64>())
        });
        out.push('\n');
    }

    out.push_str("## The operators' requests per object\n\n");
    out.push_str(
        "From the fake's `/metrics` counters (the harness's own requests left out), divided by N. \
         Watch streams count once, when opened.\n\n",
    );
    for n in sizes(runs) {
        let _ = writeln!(out, "N = {n}:\n");
        for c in &contenders {
            let Some(run) = find(runs, *c, n) else { continue };
            let _ = writeln!(out, "- {}:", c.title());
            for phase in &run.phases {
                if phase.outcome == Outcome::NotRun {
                    continue;
                }
                let parts: Vec<String> =
                    phase.requests.iter().map(|(k, v)| format!("{k} {:.2}", *v as f64 / n as f64)).collect();
                let _ = writeln!(out, "  - {}: {}", phase.kind.name(), parts.join(", "));
            }
        }
        out.push('\n');
    }

    if !context.in_process.is_empty() {
        out.push_str("## In-process figures\n\n");
        out.push_str(
            "The same binaries' own benchmarks (no operator process), on the same machine in the same \
             run:\n\n",
        );
        for (title, output) in &context.in_process {
            let _ = writeln!(out, "{title}\n\n```text\n{}\n```\n", output.trim_end());
        }
    }
    out
}

const WORKLOAD: &str = "\
Workload, the same for each contender, each against its own fresh `fake-apiserver serve` (a plain \
API server over HTTP on 127.0.0.1, no live-cluster controllers):

1. **create**: N `KopfExample` objects exist before the operator starts; timed from the operator's \
   spawn until every object carries its create result (`status.create_fn.field` for the Kopf \
   operators, `status.reconciled.field` for the bare controller);
2. **update**: the harness changes each object's `spec.field` once (16 requests in flight); timed \
   from the first change sent until every object carries its update result;
3. **delete**: the harness deletes every object; timed until every object is gone (the operator's \
   delete handler ran and its finalizer was released).

Handling is observed through the harness's own watch on the server, never the operators' logs. \
Between phases the harness waits until the operator's request counters stop moving, and charges \
each phase with the requests and CPU time until then. The operators:

- **kopf-rs** (`bench/src/bin/bench-kopf-rs.rs`) and **Kopf** (`bench/contenders/kopf_operator.py`, \
  `kopf run --standalone --all-namespaces`): create, update and delete handlers, each returning a \
  result stored in the status, with Kopf's defaults: a finalizer, progress and diff-base \
  annotations, an Event posted per handler outcome, info-level logging (to a file);
- **bare kube-runtime** (`bench/src/bin/bench-kube-runtime.rs`): a `Controller` with the `finalizer` \
  helper and a merge patch of the status subresource when it differs: no Events, no annotations.

";

/// The SVG plot: handled objects per second (all three phases) against N, both axes logarithmic.
pub fn svg(runs: &[Run]) -> String {
    const WIDTH: f64 = 640.0;
    const HEIGHT: f64 = 400.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 190.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 50.0;
    let sizes = sizes(runs);
    let points: Vec<(Contender, usize, f64)> =
        runs.iter().filter_map(|r| r.throughput().map(|t| (r.contender, r.objects, t))).collect();
    let (x_min, x_max) = match (sizes.first(), sizes.last()) {
        (Some(a), Some(b)) if a < b => ((*a as f64).log10(), (*b as f64).log10()),
        (Some(a), _) => ((*a as f64).log10() - 0.5, (*a as f64).log10() + 0.5),
        _ => (2.0, 4.0),
    };
    let lowest = points.iter().map(|p| p.2).fold(f64::INFINITY, f64::min);
    let highest = points.iter().map(|p| p.2).fold(0.0, f64::max);
    let (y_min, y_max) = if points.is_empty() {
        (1.0, 4.0)
    } else {
        (lowest.log10().floor(), highest.log10().ceil().max(lowest.log10().floor() + 1.0))
    };
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |n: f64| LEFT + (n.log10() - x_min) / (x_max - x_min) * plot_w;
    let y = |v: f64| TOP + plot_h - (v.log10() - y_min) / (y_max - y_min) * plot_h;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="22" font-size="14" text-anchor="middle">Handled objects per second (create + update + delete) against N</text>"#,
        WIDTH / 2.0
    );
    // Grid and axes.
    let mut decade = y_min as i32;
    while f64::from(decade) <= y_max {
        let v = 10f64.powi(decade);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y(v) + 4.0,
            si(v),
            y = y(v)
        );
        decade += 1;
    }
    for n in &sizes {
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0,
            si(*n as f64),
            x = x(*n as f64)
        );
    }
    let _ = writeln!(
        out,
        r#"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">N objects (log scale)</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 12.0
    );
    let _ = writeln!(
        out,
        r#"<text transform="translate(16 {}) rotate(-90)" text-anchor="middle">objects/s (log scale)</text>"#,
        TOP + plot_h / 2.0
    );
    // One line per contender, and the legend.
    for (i, contender) in contenders(runs).into_iter().enumerate() {
        let colour = ["#d62728", "#1f77b4", "#2ca02c"][i % 3];
        let mine: Vec<&(Contender, usize, f64)> = points.iter().filter(|p| p.0 == contender).collect();
        let path: Vec<String> =
            mine.iter().map(|(_, n, t)| format!("{:.1},{:.1}", x(*n as f64), y(*t))).collect();
        if path.len() > 1 {
            let _ = writeln!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                path.join(" ")
            );
        }
        for (_, n, t) in &mine {
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{colour}"><title>{} at N={n}: {t:.0}/s</title></circle>"#,
                x(*n as f64),
                y(*t),
                contender.title()
            );
        }
        let unfinished: Vec<String> = runs
            .iter()
            .filter(|r| r.contender == contender && !r.complete())
            .map(|r| si(r.objects as f64))
            .collect();
        let legend_y = TOP + 10.0 + 36.0 * i as f64;
        let legend_x = LEFT + plot_w + 16.0;
        let _ = writeln!(
            out,
            r#"<line x1="{legend_x}" x2="{}" y1="{legend_y}" y2="{legend_y}" stroke="{colour}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            legend_x + 20.0,
            legend_x + 26.0,
            legend_y + 4.0,
            contender.title()
        );
        if !unfinished.is_empty() {
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{}" font-size="10">timed out at N = {}</text>"#,
                legend_x + 26.0,
                legend_y + 18.0,
                unfinished.join(", ")
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

/// 100, 1k, 10k, 1M.
fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{}k", v / 1e3)
    } else {
        format!("{v}")
    }
}

/// The console summary: one line per run, then the ratios.
pub fn summary(runs: &[Run]) -> String {
    let mut out = String::new();
    for run in runs {
        out.push_str(&run_line(run));
    }
    out.push_str(&ratios(runs));
    out
}

/// One run's line of the console summary.
pub fn run_line(run: &Run) -> String {
    let mut out = String::new();
    {
        let phases: Vec<String> =
            run.phases.iter().map(|p| format!("{} {}", p.kind.name(), phase_cell(run, p))).collect();
        let _ = writeln!(
            out,
            "{:<13} N={:<6} {} | requests/object {} | RSS {} (fake {}) | first handled {}",
            run.contender.key(),
            run.objects,
            phases.join(", "),
            requests_cell(run),
            mb(run.operator.peak_rss_bytes),
            mb(run.fake.peak_rss_bytes),
            run.first_handled.map_or_else(|| "–".to_owned(), |s| format!("{s:.3} s")),
        );
    }
    out
}

/// The ratio lines of the console summary, one per N.
pub fn ratios(runs: &[Run]) -> String {
    let mut out = String::new();
    for [n, kopf, memory, kube, cpu, requests] in ratio_rows(runs) {
        let _ = writeln!(
            out,
            "N={n}: throughput kopf-rs/Kopf {kopf}, peak RSS kopf-rs/Kopf {memory}, throughput \
             kopf-rs/kube-runtime {kube}, CPU per object kopf-rs/kube-runtime {cpu}, requests per \
             object kopf-rs/kube-runtime {requests}"
        );
    }
    out
}
