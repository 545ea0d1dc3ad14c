//! [`InProcessWebhookServer`]: an operator's admission handlers served to the fake cluster in
//! process — the fake calls them as it would call a webhook server, but through a function call,
//! so admission runs on virtual time with no socket (reference/virtual-time.md, rule 5).

use std::sync::Arc;

use fake_apiserver::{Cluster, WebhookCall, WebhookEndpoint};
use k8s_openapi::api::admissionregistration::v1::WebhookClientConfig;
use kopf::{AdmissionServer, BoxFuture, ServingWebhook, WebhookFn, WebhookRequest};

/// The URL [`KopfRunner`](crate::KopfRunner) serves admission handlers at.
pub const IN_PROCESS_WEBHOOK_URL: &str = "https://kopf-testing.webhooks.invalid";

/// Serves admission handlers to a fake cluster in process, at a URL no network knows; the
/// managed webhook configurations point there, and the fake calls the handlers directly.
/// [`KopfRunner`](crate::KopfRunner) puts one into `settings.admission.server` of every operator
/// it runs (replacing a real [`kopf::WebhookServer`]).
///
/// A handler's answer is the webhook's answer; a webhook request the handlers cannot review
/// ([`kopf::WebhookError`]) is a failed call, as an HTTP error status would be.
#[derive(Debug, Clone)]
pub struct InProcessWebhookServer {
    cluster: Cluster,
    url: String,
}

impl InProcessWebhookServer {
    /// A server for this cluster at [`IN_PROCESS_WEBHOOK_URL`].
    pub fn new(cluster: Cluster) -> Self {
        Self { cluster, url: IN_PROCESS_WEBHOOK_URL.to_owned() }
    }

    /// The same at another base URL (for several operators on one cluster).
    #[must_use]
    pub fn at(mut self, url: &str) -> Self {
        url.clone_into(&mut self.url);
        self
    }
}

/// Stops serving when the operator drops its server.
struct Registration {
    cluster: Cluster,
    url: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.cluster.stop_serving_webhook(&self.url);
    }
}

impl AdmissionServer for InProcessWebhookServer {
    fn start(&self, webhook: WebhookFn) -> BoxFuture<'static, Result<ServingWebhook, String>> {
        let endpoint: WebhookEndpoint = Arc::new(move |call: WebhookCall| {
            let webhook = webhook.clone();
            Box::pin(async move {
                let status = |code: u16, e: &dyn std::fmt::Display| {
                    format!(
                        "the server responded with the status code {code} but did not return more information ({e})"
                    )
                };
                webhook(WebhookRequest::for_path(call.review, &call.path))
                    .await
                    .map_err(|e| status(e.status(), &e))
            })
        });
        self.cluster.serve_webhook(&self.url, endpoint);
        let registration = Registration { cluster: self.cluster.clone(), url: self.url.clone() };
        let config = WebhookClientConfig { url: Some(self.url.clone()), ca_bundle: None, service: None };
        Box::pin(std::future::ready(Ok(ServingWebhook::new(config, registration))))
    }
}
