//! Request counters: how many API requests each client made, by verb, resource, subresource and
//! outcome, counted at the core's one door ([`crate::Cluster::handle`]) whether the journal is on
//! or off, and served at `/metrics` in Prometheus' text format — the real server's
//! `apiserver_request_total`, with a `client` label (the field manager or user agent, as the
//! journal's actor) so a benchmark can tell its own requests from an operator's. Discovery and
//! OpenAPI documents are not counted (they never reach the core).
//!
//! ```
//! use fake_apiserver::FakeApiServer;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::api::{Api, ListParams};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), kube::Error> {
//! let server = FakeApiServer::builder().build();
//! let configmaps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
//! configmaps.list(&ListParams::default()).await?;
//! let counts = server.cluster().request_counts();
//! assert!(counts.iter().any(|(key, n)| key.verb == "LIST" && key.resource == "configmaps" && *n == 1));
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::request::{PatchType, Request, Verb};

/// What a request counter counts: one client's requests of one verb on one (sub)resource with one
/// outcome.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestKey {
    /// The field manager or user agent (the journal's actor).
    pub client: String,
    /// The real server's metric verb: `GET`, `LIST`, `WATCH`, `POST`, `PUT`, `PATCH`, `APPLY`
    /// (server-side apply), `DELETE` or `DELETECOLLECTION`.
    pub verb: &'static str,
    /// The API group, empty for the core group.
    pub group: String,
    /// The plural resource name.
    pub resource: String,
    /// The subresource, empty if none.
    pub subresource: String,
    /// The HTTP status code of the outcome.
    pub code: u16,
}

/// The counters of a cluster.
#[derive(Debug, Default)]
pub(crate) struct RequestCounts {
    counts: BTreeMap<RequestKey, u64>,
}

impl RequestCounts {
    pub(crate) fn record(&mut self, req: &Request, code: u16) {
        let key = RequestKey {
            client: req.actor.clone(),
            verb: metric_verb(req.verb, req.patch_type),
            group: req.group.clone(),
            resource: req.plural.clone(),
            subresource: req.subresource.clone().unwrap_or_default(),
            code,
        };
        *self.counts.entry(key).or_default() += 1;
    }

    pub(crate) fn snapshot(&self) -> Vec<(RequestKey, u64)> {
        self.counts.iter().map(|(k, n)| (k.clone(), *n)).collect()
    }
}

fn metric_verb(verb: Verb, patch_type: Option<PatchType>) -> &'static str {
    match verb {
        Verb::Get => "GET",
        Verb::List => "LIST",
        Verb::Watch => "WATCH",
        Verb::Create => "POST",
        Verb::Update => "PUT",
        Verb::Patch if patch_type == Some(PatchType::Apply) => "APPLY",
        Verb::Patch => "PATCH",
        Verb::Delete => "DELETE",
        Verb::DeleteCollection => "DELETECOLLECTION",
    }
}

/// The counters in Prometheus' text exposition format (version 0.0.4).
pub(crate) fn render(counts: &[(RequestKey, u64)]) -> String {
    let mut out = String::from(
        "# HELP apiserver_request_total Counter of API requests by client, verb, group, resource, \
         subresource and HTTP response code.\n# TYPE apiserver_request_total counter\n",
    );
    for (key, n) in counts {
        let _ = writeln!(
            out,
            "apiserver_request_total{{client=\"{}\",code=\"{}\",group=\"{}\",resource=\"{}\",subresource=\"{}\",verb=\"{}\"}} {n}",
            escape(&key.client),
            key.code,
            escape(&key.group),
            escape(&key.resource),
            escape(&key.subresource),
            key.verb,
        );
    }
    out
}

/// A label value with `\`, `"` and newlines escaped, as the format requires.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_one_line_per_key_with_escaped_labels() {
        let mut counts = RequestCounts::default();
        let mut req = Request::new(Verb::Patch, "kopf.dev", "v1", "kopfexamples");
        req.actor = "say \"hi\"\\".into();
        req.subresource = Some("status".into());
        req.patch_type = Some(PatchType::Merge);
        counts.record(&req, 200);
        counts.record(&req, 200);
        req.patch_type = Some(PatchType::Apply);
        counts.record(&req, 409);
        let text = render(&counts.snapshot());
        assert!(text.contains(
            "apiserver_request_total{client=\"say \\\"hi\\\"\\\\\",code=\"200\",group=\"kopf.dev\",\
             resource=\"kopfexamples\",subresource=\"status\",verb=\"PATCH\"} 2\n"
        ));
        assert!(text.contains("code=\"409\",group=\"kopf.dev\",resource=\"kopfexamples\",subresource=\"status\",verb=\"APPLY\"} 1\n"));
        assert!(text.starts_with("# HELP apiserver_request_total "));
    }
}
