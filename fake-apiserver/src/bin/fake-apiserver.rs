//! `fake-apiserver serve`: the in-memory Kubernetes API server on a TCP port, for kubectl, the
//! Python `kubernetes` client, Python Kopf or any other client.
//!
//! ```text
//! fake-apiserver serve [--port N] [--bind ADDR] [--tls] [--kubeconfig PATH] [--token T] [--seed S] [--journal PATH]
//!                      [--feature-gates ShardedListAndWatch=false]
//! ```
//!
//! The first line of stdout is the base URL (scripts read it to learn the port). The server runs on
//! the real clock until SIGINT or SIGTERM, then stops gracefully and, with `--journal`, writes the
//! journal as JSON lines.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fake_apiserver::{FakeApiServer, ServeOptions};

#[derive(Debug, Parser)]
#[command(name = "fake-apiserver", version, about = "An in-memory Kubernetes API server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API over HTTP(S) until SIGINT or SIGTERM.
    Serve(Serve),
}

#[derive(Debug, clap::Args)]
struct Serve {
    /// The port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// Serve HTTPS with a self-signed CA (put in the kubeconfig).
    #[arg(long)]
    tls: bool,
    /// Write a kubeconfig for this server to PATH.
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Require `Authorization: Bearer <T>` on every request but the health checks.
    #[arg(long, value_name = "T", env = "FAKE_APISERVER_TOKEN")]
    token: Option<String>,
    /// Seed for uids and generated names.
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,
    /// At exit, write the journal (operations, watch deliveries, HTTP requests) as JSON lines.
    #[arg(long, value_name = "PATH")]
    journal: Option<PathBuf>,
    /// Feature gates as kube-apiserver takes them (`Name=true|false`, comma-separated). Known:
    /// `ShardedListAndWatch` (default true here; false ignores `shardSelector`).
    #[arg(long, value_name = "GATES", value_parser = parse_gates)]
    feature_gates: Option<Gates>,
}

/// The feature gates given on the command line.
#[derive(Debug, Clone, Default)]
struct Gates {
    sharded_list_and_watch: Option<bool>,
}

fn parse_gates(text: &str) -> Result<Gates, String> {
    let mut gates = Gates::default();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, value) = item.split_once('=').ok_or_else(|| format!("missing bool value for {item}"))?;
        let value: bool =
            value.trim().parse().map_err(|_| format!("invalid value of {name}={value}, err: not a bool"))?;
        match name.trim() {
            "ShardedListAndWatch" => gates.sharded_list_and_watch = Some(value),
            other => return Err(format!("unrecognized feature gate: {other}")),
        }
    }
    Ok(gates)
}

/// Why `serve` stopped with a failure.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("cannot start the tokio runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot listen for signals")]
    Signals(#[source] std::io::Error),
    #[error("cannot serve")]
    Serve(#[from] fake_apiserver::ServeError),
    #[error("cannot write the URL to stdout")]
    Stdout(#[source] std::io::Error),
    #[error("cannot write the journal to {path}")]
    Journal {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn main() -> ExitCode {
    let Command::Serve(args) = Cli::parse().command;
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)
        .and_then(|runtime| runtime.block_on(run(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut message = format!("fake-apiserver: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Serve) -> Result<(), RunError> {
    use tokio::signal::unix::{SignalKind, signal};
    // The real clock: timestamps start now, not at the deterministic default base time.
    let mut builder = FakeApiServer::builder().seed(args.seed).base_time(jiff::Timestamp::now());
    if let Some(enabled) = args.feature_gates.as_ref().and_then(|g| g.sharded_list_and_watch) {
        builder = builder.sharded_list_and_watch(enabled);
    }
    let server = builder.build();
    let mut options = ServeOptions::default().bind(args.bind).port(args.port).tls(args.tls);
    if let Some(token) = &args.token {
        options = options.token(token);
    }
    // Listen for signals before announcing the URL, so a signal right after it is not missed.
    let mut terminate = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
    let handle = server.serve(options).await?;
    if let Some(path) = &args.kubeconfig {
        handle.write_kubeconfig(path)?;
    }
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", handle.url()).and_then(|()| stdout.flush()).map_err(RunError::Stdout)?;
    }
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    handle.shutdown().await;
    if let Some(path) = &args.journal {
        write_journal(&server, path).map_err(|source| RunError::Journal { path: path.clone(), source })?;
    }
    Ok(())
}

fn write_journal(server: &FakeApiServer, path: &std::path::Path) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    server.cluster().journal(|journal| {
        journal.records().try_for_each(|record| {
            serde_json::to_writer(&mut out, record)?;
            out.write_all(b"\n")
        })
    })?;
    out.flush()
}
