//! `fake-apiserver serve`: the in-memory Kubernetes API server on a TCP port, for kubectl, the
//! Python `kubernetes` client, Python Kopf or any other client.
//!
//! ```text
//! fake-apiserver serve [--port N] [--bind ADDR] [--tls] [--kubeconfig PATH] [--token T] [--seed S] [--journal PATH]
//!                      [--feature-gates ShardedListAndWatch=false]
//!                      [--bare | [--nodes N] [--rules FILE] [--without CONTROLLER]...]
//!                      [--rbac] [--token-auth-file PATH]
//! ```
//!
//! `--token` is the administrator's token (the kubeconfig's); `--token-auth-file` adds users in
//! kube-apiserver's format (`token,user,uid,"group1,group2"` per line; a user named
//! `system:serviceaccount:<ns>:<name>` is that service account); `--rbac` enforces RBAC on them.
//!
//! By default it serves a live cluster (`fake_apiserver::live`): the bootstrap objects, the built-in
//! controllers and simulated Nodes, so Deployments roll out and Pods run; `--rules FILE` declares how
//! containers behave (YAML or JSON, see `fake_apiserver::live::Rule`), `--without` turns a controller
//! off. `--bare` serves the plain API server (the system namespaces only, nothing acting on
//! objects), as benchmarks use it.
//!
//! The first line of stdout is the base URL (scripts read it to learn the port). The server runs on
//! the real clock until SIGINT or SIGTERM, then stops gracefully and, with `--journal`, writes the
//! journal as JSON lines (its last 100,000 records). `/metrics` serves request counters by client,
//! verb, resource and code, journal or not.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fake_apiserver::live::{Controller, LiveCluster, Rule};
use fake_apiserver::{FakeApiServer, Identity, ServeOptions};

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
    /// Serve the plain API server: no bootstrap objects beyond the system namespaces, no
    /// controllers, no Nodes.
    #[arg(long, conflicts_with_all = ["nodes", "rules", "without"])]
    bare: bool,
    /// How many simulated Nodes (`node-1` …) the live cluster has.
    #[arg(long, value_name = "N", default_value_t = 1)]
    nodes: usize,
    /// Container behaviour rules (YAML or JSON list), applied after the default ones.
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// Turns a built-in controller off (repeatable): scheduler, kubelet, node-lifecycle,
    /// deployment, replicaset, statefulset, daemonset, job, cronjob, endpointslice,
    /// serviceaccount, root-ca-publisher, volume-binder.
    #[arg(long, value_name = "CONTROLLER")]
    without: Vec<Controller>,
    /// Enforce RBAC on the users of `--token-auth-file` (the `--token` user is an administrator).
    #[arg(long)]
    rbac: bool,
    /// Users' bearer tokens, one `token,user,uid,"group1,group2"` line each (kube-apiserver's format).
    #[arg(long, value_name = "PATH")]
    token_auth_file: Option<PathBuf>,
}

impl Serve {
    /// The live cluster these options ask for, or `None` with `--bare`.
    fn live(&self) -> Result<Option<LiveCluster>, RunError> {
        if self.bare {
            return Ok(None);
        }
        let mut live = LiveCluster::new().nodes(self.nodes);
        if let Some(path) = &self.rules {
            let text = std::fs::read_to_string(path)
                .map_err(|source| RunError::Rules { path: path.clone(), source: source.into() })?;
            let rules = Rule::parse_file(&text)
                .map_err(|source| RunError::Rules { path: path.clone(), source: source.into() })?;
            for rule in rules {
                live = live.rule(rule);
            }
        }
        for controller in &self.without {
            live = live.without(*controller);
        }
        Ok(Some(live))
    }
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

/// How many journal records `--journal` keeps (the oldest are dropped beyond).
const JOURNAL_RECORDS: usize = 100_000;

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
    #[error("cannot use the behaviour rules in {path}")]
    Rules {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot read the token file {path}")]
    Tokens {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: expected `token,user,uid[,\"group1,group2\"]`")]
    TokenLine { path: PathBuf, line: usize },
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
    // Without `--journal` nothing reads the journal: keep none (no memory, no time spent on it).
    let journal = if args.journal.is_some() { JOURNAL_RECORDS } else { 0 };
    let mut builder =
        FakeApiServer::builder().seed(args.seed).base_time(jiff::Timestamp::now()).journal(journal);
    if let Some(enabled) = args.feature_gates.as_ref().and_then(|g| g.sharded_list_and_watch) {
        builder = builder.sharded_list_and_watch(enabled);
    }
    if let Some(live) = args.live()? {
        builder = builder.live(live);
    }
    let server = builder.rbac(args.rbac).build();
    if let Some(path) = &args.token_auth_file {
        let text = std::fs::read_to_string(path)
            .map_err(|source| RunError::Tokens { path: path.clone(), source })?;
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let (token, identity) = token_line(line)
                .ok_or_else(|| RunError::TokenLine { path: path.clone(), line: index + 1 })?;
            server.cluster().register_token(token, identity);
        }
    }
    let mut options = ServeOptions::default().bind(args.bind).port(args.port).tls(args.tls);
    if let Some(token) = &args.token {
        options = options.token(token);
    }
    // Listen for signals before announcing the URL, so a signal right after it is not missed.
    let mut terminate = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
    let handle = server.serve(options).await?;
    if let (Some(control), Some(ca)) = (server.control_plane(), handle.ca_pem()) {
        // Pods find the CA that signed the serving certificate in `kube-root-ca.crt`.
        control.set_root_ca(ca);
    }
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

/// One line of a token file: `token,user,uid[,"group1,group2"]`.
fn token_line(line: &str) -> Option<(String, Identity)> {
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    for c in line.trim().chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    let [token, user, uid, rest @ ..] = fields.as_slice() else { return None };
    if token.is_empty() || user.is_empty() || rest.len() > 1 {
        return None;
    }
    let groups: Vec<&str> =
        rest.first().map(|g| g.split(',').filter(|g| !g.is_empty()).collect()).unwrap_or_default();
    let identity = match user.strip_prefix("system:serviceaccount:").and_then(|sa| sa.split_once(':')) {
        Some((namespace, name)) => Identity::service_account(namespace, name),
        None => Identity::user(user.clone(), groups),
    };
    Some((token.clone(), identity.with_uid(uid.clone())))
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
