//! Logging in as Kopf does: the in-cluster service account first (when `KUBERNETES_SERVICE_HOST`
//! is set), then the kubeconfig (`$KUBECONFIG` or `~/.kube/config`, its current or a named
//! context).

use std::path::{Path, PathBuf};

use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};

/// The default place of the service account's credentials in a pod.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// How to log in.
#[derive(Debug, Clone, Default)]
pub struct LoginOptions {
    /// The kubeconfig context (default: the current one).
    pub context: Option<String>,
    /// Where the service account's `token`, `ca.crt` and `namespace` are (default:
    /// [`SERVICE_ACCOUNT_DIR`]).
    pub service_account_dir: Option<PathBuf>,
}

/// Why logging in failed, and through which way.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// `KUBERNETES_SERVICE_HOST` is set, but the service account is unusable.
    #[error("in-cluster login via {dir}: {reason}")]
    InCluster {
        /// The service account directory.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The kubeconfig is missing, unreadable or invalid.
    #[error("kubeconfig login: {0}")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
}

/// The cluster's address from `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT`, if set.
fn service_url(host: &str, port: &str) -> String {
    let host = if host.contains(':') { format!("[{host}]") } else { host.to_owned() };
    format!("https://{host}:{port}")
}

/// The in-cluster credentials as a kubeconfig (server, CA file, token file, namespace), so that
/// kube-rs re-reads the rotating token and CA files as it does for its own in-cluster config.
fn in_cluster_kubeconfig(url: &str, dir: &Path) -> Result<Kubeconfig, LoginError> {
    let fail = |reason: String| LoginError::InCluster { dir: dir.to_owned(), reason };
    let (token, ca) = (dir.join("token"), dir.join("ca.crt"));
    for file in [&token, &ca] {
        if !file.is_file() {
            return Err(fail(format!("{} does not exist", file.display())));
        }
    }
    let namespace = std::fs::read_to_string(dir.join("namespace")).ok().map(|ns| ns.trim().to_owned());
    let name = "in-cluster".to_owned();
    Ok(Kubeconfig {
        clusters: vec![NamedCluster {
            name: name.clone(),
            cluster: Some(Cluster {
                server: Some(url.to_owned()),
                certificate_authority: Some(ca.to_string_lossy().into_owned()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: name.clone(),
            auth_info: Some(AuthInfo {
                token_file: Some(token.to_string_lossy().into_owned()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        contexts: vec![NamedContext {
            name: name.clone(),
            context: Some(Context {
                cluster: name.clone(),
                user: Some(name.clone()),
                namespace,
                ..Default::default()
            }),
            ..Default::default()
        }],
        current_context: Some(name),
        ..Default::default()
    })
}

/// Logs in: in-cluster when `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT` are set, else
/// from the kubeconfig.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let config = kopf::login(&kopf::LoginOptions::default()).await?;
/// let client = kube::Client::try_from(config)?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`LoginError::InCluster`] when the service account files are missing;
/// [`LoginError::Kubeconfig`] when there is no usable kubeconfig.
pub async fn login(options: &LoginOptions) -> Result<kube::Config, LoginError> {
    let kube_options = KubeConfigOptions { context: options.context.clone(), ..Default::default() };
    if let (Ok(host), Ok(port)) =
        (std::env::var("KUBERNETES_SERVICE_HOST"), std::env::var("KUBERNETES_SERVICE_PORT"))
    {
        let dir = options.service_account_dir.clone().unwrap_or_else(|| PathBuf::from(SERVICE_ACCOUNT_DIR));
        let kubeconfig = in_cluster_kubeconfig(&service_url(&host, &port), &dir)?;
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| LoginError::InCluster { dir: dir.clone(), reason: e.to_string() })?;
        config.root_cert_file = Some(dir.join("ca.crt"));
        tracing::debug!(server = %config.cluster_url, "Logged in with the in-cluster service account.");
        return Ok(config);
    }
    let config = kube::Config::from_kubeconfig(&kube_options).await.map_err(LoginError::Kubeconfig)?;
    tracing::debug!(server = %config.cluster_url, "Logged in with the kubeconfig.");
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_urls_bracket_ipv6_hosts() {
        assert_eq!(service_url("10.0.0.1", "443"), "https://10.0.0.1:443");
        assert_eq!(service_url("fd00::1", "6443"), "https://[fd00::1]:6443");
    }

    #[test]
    fn a_service_account_without_a_token_is_reported_with_its_path() {
        let dir = std::env::temp_dir().join("kopf-login-test-missing");
        let err = in_cluster_kubeconfig("https://10.0.0.1:443", &dir).unwrap_err();
        assert!(err.to_string().contains("token does not exist"), "{err}");
    }
}
