//! `kopf::run(operator)`: a `kopf run`-style program — flags for namespaces, peering and logging,
//! login from the kubeconfig or the in-cluster service account, and a graceful stop on
//! SIGINT/SIGTERM — with Kopf's `freeze` and `resume` commands as subcommands.

use std::io::Write as _;

use clap::{Args, Parser};

use crate::error::OperatorError;
use crate::login::{LoginOptions, login};
use crate::manifests::{ManifestOptions, manifests};
use crate::operator::Operator;
use crate::reactor::running::{Namespaces, RunOptions};

/// The command line of an operator program (Kopf's `kopf run` flags that apply).
#[derive(Debug, Clone, Parser)]
#[command(about = "Runs the operator.", version)]
pub struct Cli {
    /// Serve these namespaces (repeatable; globs: `*`, `?`, `!` to exclude, comma-separated).
    #[arg(short = 'n', long = "namespace", env = "KOPF_RUN_NAMESPACE", global = true)]
    pub namespaces: Vec<String>,
    /// Serve all namespaces, with cluster-wide watches.
    #[arg(short = 'A', long = "all-namespaces", conflicts_with = "namespaces", global = true)]
    pub all_namespaces: bool,
    /// Run without peering.
    #[arg(long)]
    pub standalone: bool,
    /// Peer through the peering object of this name, and pause while it is absent (peering is
    /// otherwise used only if the peering resource is served and the `default` object exists).
    #[arg(short = 'P', long = "peering", env = "KOPF_RUN_PEERING")]
    pub peering: Option<String>,
    /// The operator's priority among its peers (default: 0).
    #[arg(short = 'p', long)]
    pub priority: Option<i64>,
    /// Development mode: priority 666, to pause the operators deployed in the cluster.
    #[arg(long)]
    pub dev: bool,
    /// Serve the probes' results at this URL (`http://0.0.0.0:8080/healthz`), and the metrics at
    /// `/metrics` of the same server.
    #[arg(short = 'L', long = "liveness")]
    pub liveness: Option<String>,
    /// Log at debug level.
    #[arg(short = 'v', long, alias = "debug", short_alias = 'd')]
    pub verbose: bool,
    /// Log warnings and errors only.
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// The kubeconfig context to use (default: the current one).
    #[arg(long)]
    pub context: Option<String>,
    /// Where the in-cluster service account's `token`, `ca.crt` and `namespace` are.
    #[arg(long, env = "KOPF_SERVICE_ACCOUNT_DIR", default_value = crate::login::SERVICE_ACCOUNT_DIR)]
    pub service_account_dir: std::path::PathBuf,
    /// Log format: `plain`, `full` or `json`.
    #[arg(long, default_value = "full", value_parser = ["plain", "full", "json"])]
    pub log_format: String,
    /// Developer mode: run on an embedded fake cluster (a live one: Pods run, Deployments roll
    /// out) served over HTTPS, with the operator's CRDs installed and a kubeconfig written for
    /// kubectl. No real cluster is touched.
    #[cfg(feature = "fake-cluster")]
    #[arg(long)]
    pub fake_cluster: bool,
    /// Where developer mode writes the fake cluster's kubeconfig.
    #[cfg(feature = "fake-cluster")]
    #[arg(long, default_value = "fake-cluster.kubeconfig", requires = "fake_cluster")]
    pub fake_kubeconfig: std::path::PathBuf,
    /// What to do instead of running (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Commands of an operator program besides running.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Prints what deploying the operator takes (CRDs, ServiceAccount, the RBAC it needs,
    /// Deployment) as a JSON `List` for `kubectl apply -f`; `-n` makes namespaced RBAC.
    Manifests {
        /// Resolve the handlers' resources by the cluster's discovery (logging in as `run` does)
        /// instead of the operator's declared CRDs.
        #[arg(long)]
        discover: bool,
        /// The Deployment's and ServiceAccount's name.
        #[arg(long, default_value = "kopf-operator")]
        name: String,
        /// Their namespace.
        #[arg(long = "deploy-namespace", default_value = "default")]
        namespace: String,
        /// The operator's image.
        #[arg(long, default_value = "kopf-operator:latest")]
        image: String,
    },
    /// Pause the resource handling in the operator(s) (Kopf's `kopf freeze`).
    Freeze(FreezeArgs),
    /// Resume the resource handling in the operator(s) (Kopf's `kopf resume`).
    Resume(ResumeArgs),
}

/// Where a peering command writes.
#[derive(Debug, Clone, Args)]
pub struct PeeringTarget {
    /// The namespaces whose `KopfPeering` objects to write (repeatable; globs allowed).
    #[arg(short = 'n', long = "namespace")]
    pub namespaces: Vec<String>,
    /// The cluster-wide `ClusterKopfPeering` (the default when no namespace is given).
    #[arg(short = 'A', long = "all-namespaces", conflicts_with = "namespaces")]
    pub all_namespaces: bool,
    /// The record's key (default: `user@host`).
    #[arg(short = 'i', long = "id")]
    pub id: Option<String>,
}

/// `freeze`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct FreezeArgs {
    /// Where to write.
    #[command(flatten)]
    pub target: PeeringTarget,
    /// The peering object's name.
    #[arg(short = 'P', long = "peering", env = "KOPF_FREEZE_PEERING")]
    pub peering: String,
    /// The priority of the freeze (operators of a lower one pause).
    #[arg(short = 'p', long, default_value_t = 100)]
    pub priority: i64,
    /// Priority 666.
    #[arg(long)]
    pub dev: bool,
    /// For how long the freeze holds, in seconds.
    #[arg(short = 't', long)]
    pub lifetime: u64,
    /// A message (accepted for Kopf's compatibility; unused, as in Kopf).
    #[arg(short = 'm', long)]
    pub message: Option<String>,
}

/// `resume`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct ResumeArgs {
    /// Where to write.
    #[command(flatten)]
    pub target: PeeringTarget,
    /// The peering object's name.
    #[arg(short = 'P', long = "peering", env = "KOPF_RESUME_PEERING")]
    pub peering: String,
}

impl PeeringTarget {
    fn command(&self, peering: &str) -> crate::engines::peering::PeeringCommand {
        let mut command = crate::engines::peering::PeeringCommand::new(peering);
        if !self.all_namespaces && !self.namespaces.is_empty() {
            command = command.namespaces(self.namespaces.clone());
        }
        if let Some(id) = &self.id {
            command = command.identity(id.clone());
        }
        command
    }
}

impl Cli {
    /// The namespaces the flags select.
    pub fn namespaces(&self) -> Namespaces {
        if self.all_namespaces || self.namespaces.is_empty() {
            Namespaces::All
        } else {
            Namespaces::Only(self.namespaces.clone())
        }
    }

    /// Applies the peering and liveness flags to the settings, as `kopf run` maps them: `--peering NAME` makes
    /// peering mandatory, `--standalone` turns it off, `--dev` is priority 666.
    pub fn apply(&self, settings: &mut crate::settings::Settings) {
        if let Some(name) = &self.peering {
            settings.peering.mandatory = true;
            settings.peering.name.clone_from(name);
        }
        if self.standalone {
            settings.peering.standalone = true;
        }
        if let Some(endpoint) = &self.liveness {
            settings.liveness.endpoint = Some(endpoint.clone());
        }
        if self.dev {
            settings.peering.priority = 666;
        } else if let Some(priority) = self.priority {
            settings.peering.priority = priority;
        }
    }

    fn init_logging(&self) {
        let level = if self.verbose {
            "debug"
        } else if self.quiet {
            "warn"
        } else {
            "info"
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
        let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
        let result = match self.log_format.as_str() {
            "json" => builder.json().try_init(),
            "plain" => builder.without_time().with_target(false).with_level(false).try_init(),
            _ => builder.try_init(),
        };
        if result.is_err() {
            tracing::debug!("logging was already set up");
        }
    }
}

/// Runs the operator as a program: parses the command line, logs in (kubeconfig, or the in-cluster
/// service account), serves until SIGINT or SIGTERM, then stops gracefully.
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> anyhow::Result<()> {
///     kopf::run(kopf::Operator::new()).await?;
///     Ok(())
/// }
/// ```
///
/// # Errors
/// Misconfiguration, login or discovery failures.
pub async fn run(operator: Operator) -> Result<(), OperatorError> {
    run_with(operator, Cli::parse()).await
}

/// [`run`] with an already parsed command line.
///
/// # Errors
/// As [`run`].
pub async fn run_with(operator: Operator, cli: Cli) -> Result<(), OperatorError> {
    if let Err(errors) = operator.check() {
        return Err(OperatorError::Registration(errors));
    }
    if let Some(Command::Manifests { discover, name, namespace, image }) = &cli.command {
        let resources = if *discover {
            let login_options = LoginOptions {
                context: cli.context.clone(),
                service_account_dir: Some(cli.service_account_dir.clone()),
            };
            let config = login(&login_options).await.map_err(|e| OperatorError::Login(e.to_string()))?;
            let client = kube::Client::try_from(config).map_err(|e| OperatorError::Login(e.to_string()))?;
            let client = crate::client::KubeApiClient::new(client);
            crate::client::ApiClient::discover(&client).await.map_err(OperatorError::Discovery)?
        } else {
            Vec::new()
        };
        let options = ManifestOptions {
            name: name.clone(),
            namespace: namespace.clone(),
            image: image.clone(),
            namespaces: cli.namespaces(),
            resources,
        };
        // The run's flags (peering, priority, liveness) shape the RBAC and the container.
        let operator = operator.settings(|s| cli.apply(s));
        let list = manifests(&operator, &options);
        let text = serde_json::to_string_pretty(&list).unwrap_or_default();
        // A closed pipe (`| head`) is not an error worth a panic.
        let _ = writeln!(std::io::stdout().lock(), "{text}");
        return Ok(());
    }
    cli.init_logging();
    if let Some(command) = &cli.command {
        return run_command(&cli, command).await;
    }
    let operator = operator.settings(|s| cli.apply(s));
    #[cfg(feature = "fake-cluster")]
    if cli.fake_cluster {
        return run_on_fake_cluster(operator, cli).await;
    }
    // Login handlers, if any, give the credentials; otherwise Kopf's fallback login.
    let client: std::sync::Arc<dyn crate::client::ApiClient> = if operator.has_login_handlers() {
        std::sync::Arc::new(crate::activities::NotLoggedIn)
    } else {
        std::sync::Arc::new(login_client(&cli).await?)
    };
    tracing::info!("Client is configured.");
    serve(operator, client, &cli).await
}

/// Runs the operator on `client` until a stop signal or its own end.
async fn serve(
    operator: Operator,
    client: std::sync::Arc<dyn crate::client::ApiClient>,
    cli: &Cli,
) -> Result<(), OperatorError> {
    let options = RunOptions { namespaces: cli.namespaces(), ..Default::default() };
    let mut running = operator.spawn(client, options)?;
    tokio::select! {
        () = wait_for_signal() => {
            tracing::info!("Stop signal received; stopping gracefully.");
            running.stop();
        }
        () = running.ended() => {}
    }
    running.join().await
}

/// Developer mode: an embedded live fake cluster, served over HTTPS for kubectl, the operator's
/// CRDs installed; the operator itself talks to the fake in-process.
#[cfg(feature = "fake-cluster")]
async fn run_on_fake_cluster(operator: Operator, cli: Cli) -> Result<(), OperatorError> {
    use fake_apiserver::live::LiveCluster;
    use fake_apiserver::{FakeApiServer, ServeOptions};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

    let failed =
        |what: &str, e: &dyn std::fmt::Display| OperatorError::Login(format!("fake cluster: {what}: {e}"));
    let server = FakeApiServer::builder().live(LiveCluster::new()).build();
    let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(server.client());
    for crd in operator.crds() {
        let crd: CustomResourceDefinition =
            serde_json::from_value(crd.clone()).map_err(|e| failed("a declared CRD", &e))?;
        crds.create(&kube::api::PostParams::default(), &crd)
            .await
            .map_err(|e| failed("installing a CRD", &e))?;
    }
    // A bearer token in the kubeconfig, so kubectl neither prompts for a user nor is refused.
    let token = format!("kopf-dev-{}", std::process::id());
    let front = fake_apiserver::http::serve(&server, ServeOptions::default().tls(true).token(token))
        .await
        .map_err(|e| failed("serving", &e))?;
    front.write_kubeconfig(&cli.fake_kubeconfig).map_err(|e| failed("writing the kubeconfig", &e))?;
    let kubeconfig = cli.fake_kubeconfig.display();
    println!("fake cluster: {}", front.url());
    println!("kubeconfig: {kubeconfig}");
    println!(
        "try: kubectl --kubeconfig {kubeconfig} get all -A   (Ctrl-C stops the operator and the cluster)"
    );
    let client = std::sync::Arc::new(crate::client::KubeApiClient::new(server.client()));
    let result = serve(operator, client, &cli).await;
    front.shutdown().await;
    result
}

async fn login_client(cli: &Cli) -> Result<crate::client::KubeApiClient, OperatorError> {
    let login_options = LoginOptions {
        context: cli.context.clone(),
        service_account_dir: Some(cli.service_account_dir.clone()),
    };
    let config = login(&login_options).await.map_err(|e| OperatorError::Login(e.to_string()))?;
    let client = kube::Client::try_from(config).map_err(|e| OperatorError::Login(e.to_string()))?;
    Ok(crate::client::KubeApiClient::new(client))
}

/// `freeze` or `resume`: write the command's record into the peering objects.
async fn run_command(cli: &Cli, command: &Command) -> Result<(), OperatorError> {
    let client = login_client(cli).await?;
    let written = match command {
        Command::Freeze(args) => {
            let priority = if args.dev { 666 } else { args.priority };
            let peering = args.target.command(&args.peering).priority(priority);
            crate::engines::peering::freeze(&client, &peering, args.lifetime).await
        }
        Command::Resume(args) => {
            crate::engines::peering::resume(&client, &args.target.command(&args.peering)).await
        }
        // Printed before logging in (see `run_with`).
        Command::Manifests { .. } => Ok(0),
    };
    match written {
        Ok(n) => {
            tracing::info!("The peering record is written into {n} peering object(s).");
            Ok(())
        }
        Err(e) => Err(OperatorError::Startup(e.to_string())),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peering_flags_map_onto_the_settings_as_kopf_run_does() {
        let cli = Cli::try_parse_from([
            "op",
            "-n",
            "ns1",
            "--peering",
            "team",
            "-p",
            "7",
            "-L",
            "http://0.0.0.0:8080/healthz",
        ])
        .unwrap();
        let mut settings = crate::settings::Settings::default();
        cli.apply(&mut settings);
        assert!(settings.peering.mandatory && !settings.peering.standalone);
        assert_eq!((settings.peering.name.as_str(), settings.peering.priority), ("team", 7));
        assert_eq!(settings.liveness.endpoint.as_deref(), Some("http://0.0.0.0:8080/healthz"));
        let cli = Cli::try_parse_from(["op", "--standalone", "--dev", "-p", "7"]).unwrap();
        let mut settings = crate::settings::Settings::default();
        cli.apply(&mut settings);
        assert!(settings.peering.standalone && !settings.peering.mandatory);
        assert_eq!(settings.peering.priority, 666, "--dev wins");
        assert!(cli.command.is_none());
    }

    #[test]
    fn freeze_and_resume_take_kopfs_arguments() {
        let cli = Cli::try_parse_from(["op", "freeze", "-P", "team", "-t", "600", "-n", "ns1", "-i", "me"])
            .unwrap();
        let Some(Command::Freeze(args)) = &cli.command else { panic!("{cli:?}") };
        assert_eq!((args.peering.as_str(), args.lifetime, args.priority), ("team", 600, 100));
        let command = args.target.command(&args.peering);
        assert_eq!(command.namespaces, Some(vec!["ns1".to_owned()]));
        assert_eq!(command.identity.as_deref(), Some("me"));
        let cli = Cli::try_parse_from(["op", "resume", "--peering", "team", "-A"]).unwrap();
        let Some(Command::Resume(args)) = &cli.command else { panic!("{cli:?}") };
        assert_eq!(args.target.command(&args.peering).namespaces, None);
        assert!(Cli::try_parse_from(["op", "freeze", "-P", "team"]).is_err(), "--lifetime is required");
    }
}
