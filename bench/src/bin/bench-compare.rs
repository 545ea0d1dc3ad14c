//! The side-by-side benchmark: kopf-rs, Python Kopf and a bare kube-runtime `Controller` on the
//! same workload against `fake-apiserver serve` ([`kopf_bench::compare`] says what is measured).
//! Usually run by `bench/run.sh`, which builds the programs and finds Python Kopf first:
//!
//! ```text
//! bench-compare [--sizes 100,1000,10000] [--contenders kopf-rs,kopf,kube-runtime] [--cap SECONDS]
//!               [--python PATH] [--out bench/RESULTS.md] [--plot bench/throughput.svg] [--in-process]
//! ```
//!
//! The programs are looked up next to this binary (`--bin-dir` to change). Prints one line per run
//! and the ratios; with `--out`, writes the Markdown report (and with `--plot` the SVG plot).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use kopf_bench::compare::report::{self, Machine};
use kopf_bench::compare::{self, Contender, Setup};

#[derive(Debug, Parser)]
#[command(about = "kopf-rs vs Python Kopf vs bare kube-runtime on fake-apiserver serve")]
struct Args {
    /// Object counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    sizes: Vec<usize>,
    /// Contenders, comma-separated: kopf-rs, kopf, kube-runtime.
    #[arg(long, value_delimiter = ',', default_value = "kopf-rs,kopf,kube-runtime")]
    contenders: Vec<String>,
    /// Time cap per contender and size, in seconds (all phases together).
    #[arg(long, default_value_t = 600)]
    cap: u64,
    /// Where fake-apiserver, bench-kopf-rs and bench-kube-runtime are (default: next to this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// A Python with Kopf (default: $KOPF_RS_PYTHON); Kopf is skipped with a notice without one.
    #[arg(long, env = "KOPF_RS_PYTHON")]
    python: Option<PathBuf>,
    /// Logs and kubeconfigs go here (default: a fresh directory under the system temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Write the Markdown report here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the SVG plot here (linked from the report by file name).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Also run the in-process benchmarks (kopf-runner-bench, fake-apiserver-bench, http-bench)
    /// and put their output in the report.
    #[arg(long)]
    in_process: bool,
    /// The build profile, for the report.
    #[arg(long, default_value = "release")]
    profile: String,
    /// The command line, for the report.
    #[arg(long, default_value = "bench/run.sh")]
    command: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let contenders = args
        .contenders
        .iter()
        .map(|c| Contender::parse(c).with_context(|| format!("unknown contender {c:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?.parent().context("no binary directory")?.to_owned(),
    };
    let work_dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("kopf-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work_dir)?;
    let fake_apiserver = bin_dir.join("fake-apiserver");
    let setup = Setup {
        bare_flag: bare_flag(&fake_apiserver)?,
        fake_apiserver,
        kopf_rs: bin_dir.join("bench-kopf-rs"),
        kube_runtime: bin_dir.join("bench-kube-runtime"),
        python: args.python.clone().filter(|p| !p.as_os_str().is_empty()),
        kopf_script: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contenders/kopf_operator.py"),
        work_dir: work_dir.clone(),
        cap: Duration::from_secs(args.cap),
        clock_ticks: compare::procfs::clock_ticks(),
    };
    for program in [&setup.fake_apiserver, &setup.kopf_rs, &setup.kube_runtime] {
        anyhow::ensure!(program.exists(), "{} is not built (bench/run.sh builds it)", program.display());
    }
    println!("logs in {}", work_dir.display());
    if setup.bare_flag.is_none() {
        println!("NOTICE: this fake-apiserver has no --bare flag; its `serve` is a plain server already");
    }

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut runs = Vec::new();
    for &objects in &args.sizes {
        for &contender in &contenders {
            if contender == Contender::Kopf && setup.python.is_none() {
                println!("NOTICE: no Python with Kopf (KOPF_RS_PYTHON unset): Kopf skipped");
                continue;
            }
            let run = runtime.block_on(compare::run(&setup, contender, objects))?;
            print!("{}", report::run_line(&run));
            if !run.complete() {
                println!("--- the end of {}:\n{}\n---", run.log.display(), compare::tail(&run.log, 15));
            }
            runs.push(run);
        }
    }
    print!("{}", report::ratios(&runs));

    let in_process = if args.in_process { in_process(&bin_dir)? } else { Vec::new() };
    if let Some(plot) = &args.plot {
        std::fs::write(plot, report::svg(&runs))?;
        println!("wrote {}", plot.display());
    }
    if let Some(out) = &args.out {
        let context = report::Context {
            command: args.command.clone(),
            profile: args.profile.clone(),
            commit: git(&["rev-parse", "--short", "HEAD"]),
            date: date(),
            cap_seconds: args.cap,
            plot: args.plot.as_ref().and_then(|p| p.file_name()).map(|f| f.to_string_lossy().into_owned()),
            in_process,
        };
        std::fs::write(out, report::markdown(&runs, &Machine::describe(), &context))?;
        println!("wrote {}", out.display());
    }
    Ok(())
}

/// `--bare` if this `fake-apiserver serve` has it (a live cluster by default), else none.
fn bare_flag(fake_apiserver: &std::path::Path) -> anyhow::Result<Option<String>> {
    let help = std::process::Command::new(fake_apiserver)
        .args(["serve", "--help"])
        .output()
        .with_context(|| format!("cannot run {}", fake_apiserver.display()))?;
    Ok(String::from_utf8_lossy(&help.stdout).contains("--bare").then(|| "--bare".to_owned()))
}

/// The in-process benchmarks' outputs.
fn in_process(bin_dir: &std::path::Path) -> anyhow::Result<Vec<(String, String)>> {
    let benches: [(&str, &str, &[&str]); 3] = [
        (
            "KopfRunner scenario cost (`kopf-runner-bench 200 story timers`):",
            "kopf-runner-bench",
            &["200", "story", "timers"],
        ),
        ("The fake's core and `kube::Client` path (`fake-apiserver-bench`):", "fake-apiserver-bench", &[]),
        ("The fake's HTTP front (`http-bench 20000`):", "http-bench", &["20000"]),
    ];
    let mut outputs = Vec::new();
    for (title, program, args) in benches {
        println!("running {program} {}", args.join(" "));
        let output = std::process::Command::new(bin_dir.join(program))
            .args(args)
            .output()
            .with_context(|| format!("cannot run {program}"))?;
        anyhow::ensure!(
            output.status.success(),
            "{program} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        print!("{text}");
        outputs.push((title.to_owned(), text));
    }
    Ok(outputs)
}

fn git(args: &[&str]) -> String {
    std::process::Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(|| "unknown".to_owned(), |o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

fn date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map_or_else(|_| "unknown".to_owned(), |o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}
