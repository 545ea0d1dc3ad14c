//! `kopf::run(operator)`: a `kopf run`-style program — flags for namespaces and logging, login from
//! the kubeconfig or the in-cluster service account, and a graceful stop on SIGINT/SIGTERM.

use std::io::Write as _;

use clap::Parser;

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
    #[arg(short = 'n', long = "namespace", env = "KOPF_RUN_NAMESPACE")]
    pub namespaces: Vec<String>,
    /// Serve all namespaces, with cluster-wide watches.
    #[arg(short = 'A', long = "all-namespaces", conflicts_with = "namespaces")]
    pub all_namespaces: bool,
    /// Run without peering.
    #[arg(long)]
    pub standalone: bool,
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
    /// Prints what deploying the operator takes (CRDs, ServiceAccount, Deployment) as a JSON
    /// `List` for `kubectl apply -f`.
    Manifests {
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
    if let Some(Command::Manifests { name, namespace, image }) = &cli.command {
        let options =
            ManifestOptions { name: name.clone(), namespace: namespace.clone(), image: image.clone() };
        let list = manifests(&operator, &options);
        let text = serde_json::to_string_pretty(&list).unwrap_or_default();
        // A closed pipe (`| head`) is not an error worth a panic.
        let _ = writeln!(std::io::stdout().lock(), "{text}");
        return Ok(());
    }
    cli.init_logging();
    #[cfg(feature = "fake-cluster")]
    if cli.fake_cluster {
        return run_on_fake_cluster(operator, cli).await;
    }
    // Login handlers, if any, give the credentials; otherwise Kopf's fallback login.
    let client: std::sync::Arc<dyn crate::client::ApiClient> = if operator.has_login_handlers() {
        std::sync::Arc::new(crate::activities::NotLoggedIn)
    } else {
        let login_options = LoginOptions {
            context: cli.context.clone(),
            service_account_dir: Some(cli.service_account_dir.clone()),
        };
        let config = login(&login_options).await.map_err(|e| OperatorError::Login(e.to_string()))?;
        let client = kube::Client::try_from(config).map_err(|e| OperatorError::Login(e.to_string()))?;
        std::sync::Arc::new(crate::client::KubeApiClient::new(client))
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
