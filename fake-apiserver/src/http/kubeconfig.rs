//! The kubeconfig of a running front: one cluster, one user and one context, all named
//! `fake-apiserver`, with the CA inline (`certificate-authority-data`) when serving TLS and the
//! bearer token when one is required. kubectl, kube's `Config::from_custom_kubeconfig` and the
//! Python `kubernetes` client read it as is.

use base64::Engine as _;

/// The name of the cluster, user and context.
const NAME: &str = "fake-apiserver";

/// Renders the kubeconfig YAML. Values are written as JSON strings, which YAML reads verbatim.
pub(super) fn render(url: &str, ca_pem: Option<&str>, token: Option<&str>) -> String {
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    let mut cluster = format!("    server: {}\n", quote(url));
    if let Some(pem) = ca_pem {
        let data = base64::engine::general_purpose::STANDARD.encode(pem);
        cluster.push_str(&format!("    certificate-authority-data: {data}\n"));
    }
    let user = match token {
        Some(token) => format!("  user:\n    token: {}\n", quote(token)),
        None => "  user: {}\n".to_owned(),
    };
    format!(
        "apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: {NAME}\n  cluster:\n{cluster}\
         contexts:\n\
         - name: {NAME}\n  context:\n    cluster: {NAME}\n    user: {NAME}\n    namespace: default\n\
         current-context: {NAME}\n\
         users:\n\
         - name: {NAME}\n{user}\
         preferences: {{}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_kubeconfig_parses_with_kube_and_names_the_server() {
        let yaml = render("http://127.0.0.1:1234", None, None);
        let config = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        assert_eq!(config.current_context.as_deref(), Some("fake-apiserver"));
        let cluster = config.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("http://127.0.0.1:1234"));
        assert!(cluster.certificate_authority_data.is_none());
    }

    #[test]
    fn the_ca_goes_in_base64_and_an_odd_token_survives_quoting() {
        let yaml = render("https://[::1]:1", Some("-----BEGIN CERTIFICATE-----\nabc\n"), Some("t: \"x\"#"));
        let config = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        let cluster = config.clusters[0].cluster.as_ref().unwrap();
        let data = cluster.certificate_authority_data.as_deref().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD.decode(data).unwrap();
        assert_eq!(decoded, b"-----BEGIN CERTIFICATE-----\nabc\n");
        let value: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(value["users"][0]["user"]["token"], "t: \"x\"#");
    }
}
