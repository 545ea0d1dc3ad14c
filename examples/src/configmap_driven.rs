//! A ConfigMap-driven operator (an example Kopf lacks): ConfigMaps labelled
//! `kopf.dev/render: "true"` are templates; the operator renders each into a child ConfigMap
//! `<name>-rendered` (every value with `${NAME}` replaced by the source's name, keys sorted),
//! owned by the source — re-rendered when the source changes, collected with it.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use kopf::{Context, HandlerError, Operator};
use kube::Resource as _;
use kube::api::ObjectMeta;
use serde_json::json;

/// The label that marks a template.
pub const RENDER: &str = "kopf.dev/render";

/// The rendered child of `source`.
pub fn rendered(source: &ConfigMap) -> ConfigMap {
    let name = source.metadata.name.clone().unwrap_or_default();
    let data: BTreeMap<String, String> = source
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.replace("${NAME}", &name)))
        .collect();
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(format!("{name}-rendered")),
            namespace: source.metadata.namespace.clone(),
            owner_references: source.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..ConfigMap::default()
    }
}

async fn render(source: Arc<ConfigMap>, ctx: Context) -> Result<serde_json::Value, HandlerError> {
    let child = rendered(&source);
    let name = child.metadata.name.clone().unwrap_or_default();
    let api = ctx.api();
    if api.get::<ConfigMap>(ctx.namespace(), &name).await?.is_some() {
        api.patch::<ConfigMap>(ctx.namespace(), &name, json!({"data": child.data}), None).await?;
    } else {
        api.create(ctx.namespace(), &child).await?;
    }
    Ok(json!({"rendered": name}))
}

/// The operator.
pub fn operator() -> Operator {
    Operator::new()
        .on_create(|cm: Arc<ConfigMap>, ctx: Context| render(cm, ctx))
        .id("render")
        .labels(RENDER, "true")
        .on_field("data", |cm: Arc<ConfigMap>, ctx: Context| render(cm, ctx))
        .id("rerender")
        .labels(RENDER, "true")
        // The handlers' own reads and writes of the children (kopf's own needs are generated).
        .rbac_rule(&[""], &["configmaps"], &["get", "create", "patch"])
}

/// A template ConfigMap.
pub fn template(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            labels: Some([(RENDER.to_owned(), "true".to_owned())].into()),
            ..ObjectMeta::default()
        },
        data: Some(data.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
        ..ConfigMap::default()
    }
}

#[cfg(test)]
mod tests {
    use kopf_testing::KopfRunner;

    use super::*;
    use crate::e2e::{Expect, lifecycle};

    fn data(cm: &ConfigMap) -> BTreeMap<String, String> {
        cm.data.clone().unwrap_or_default()
    }

    #[tokio::test(start_paused = true)]
    async fn templates_are_rendered_re_rendered_on_change_and_collected_with_their_source() {
        let runner = KopfRunner::new(operator()).start().await;
        runner.cluster().create(template("app", &[("greeting", "hello from ${NAME}")])).await;
        let mut plain = template("plain", &[("x", "${NAME}")]);
        plain.metadata.labels = None;
        runner.cluster().create(plain).await;
        runner.settle().await;
        let child: ConfigMap = runner.cluster().get("app-rendered").await;
        assert_eq!(data(&child)["greeting"], "hello from app");
        assert!(runner.cluster().get_opt::<ConfigMap>("plain-rendered").await.is_none(), "not a template");

        runner.cluster().patch::<ConfigMap>("app", json!({"data": {"greeting": "bye from ${NAME}"}})).await;
        runner.settle().await;
        assert_eq!(data(&runner.cluster().get("app-rendered").await)["greeting"], "bye from app");

        runner.cluster().delete::<ConfigMap>("app").await;
        runner.settle().await;
        assert!(runner.cluster().get_opt::<ConfigMap>("app-rendered").await.is_none(), "collected");
    }

    #[tokio::test(start_paused = true)]
    async fn end_to_end_a_template_is_rendered_once() {
        let expect = Expect { once: vec!["render", "rerender/data"], ..Expect::default() };
        lifecycle(KopfRunner::new(operator()), template("e2e", &[("a", "b")]), &expect).await;
    }
}
