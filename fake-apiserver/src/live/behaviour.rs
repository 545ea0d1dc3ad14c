//! Declared container behaviour. Nothing runs in a simulated Pod, so what its containers do is
//! declared: by default a container starts one second after its Pod is bound and runs until the Pod
//! is deleted (containers of Jobs' Pods run for one second and exit 0). Rules on the cluster —
//! matched by image, labels, namespace, container name or owner kind, settable from tests and from
//! `fake-apiserver serve --rules FILE` — and annotations on the Pod change that: run for a while
//! and exit with a code, crash-loop, fail to pull the image, or never become ready.
//!
//! Pod annotations (the most specific wins; `.<container>` limits one to a container):
//!
//! | annotation | value | meaning |
//! |---|---|---|
//! | `fake.kopf.dev/start-delay` | `2s` | time from binding (or the previous init container) to running |
//! | `fake.kopf.dev/run` | `30s` or `forever` | how long the process runs before it exits |
//! | `fake.kopf.dev/exit-code` | `1` | the exit code when it does |
//! | `fake.kopf.dev/pull` | `ok` or `fail` | whether the image pull succeeds |
//! | `fake.kopf.dev/ready` | `probe` or `never` | readiness: as the readiness probe says, or never |
//!
//! A container with `restartPolicy: Always` that exits is restarted with the kubelet's back-off
//! (crash-looping when it keeps exiting); an invalid annotation leaves the container waiting with
//! `CreateContainerConfigError`, as the kubelet reports a misconfigured container.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The annotation prefix of declared behaviour.
pub const ANNOTATION_PREFIX: &str = "fake.kopf.dev/";

/// How long a container's process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// Until the Pod is deleted (or its deadline kills it).
    Forever,
    /// This long, then it exits with the exit code.
    For(Duration),
}

/// Whether the image pull succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pull {
    /// The image is pulled.
    #[default]
    Ok,
    /// Every pull fails: `ErrImagePull`, then `ImagePullBackOff` with the kubelet's back-off.
    Fail,
}

/// When a running container becomes ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Readiness {
    /// As its readiness probe says (`initialDelaySeconds`, `periodSeconds`, `successThreshold`);
    /// at once without a probe.
    #[default]
    Probe,
    /// Never: the probe always fails.
    Never,
}

/// Declared behaviour; unset fields fall through to earlier rules and the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Behaviour {
    /// Time from the start of the container's turn (binding, or the previous init container) to
    /// running. Default: one second.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_duration")]
    pub start_delay: Option<Duration>,
    /// How long the process runs. Default: forever (one second for containers of Jobs' Pods).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_run")]
    pub run: Option<Run>,
    /// The exit code when the process ends. Default: 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Whether the image pull succeeds. Default: it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull: Option<Pull>,
    /// Readiness. Default: as the probe says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<Readiness>,
}

impl Behaviour {
    /// Runs for `duration`, then exits with `code`.
    #[must_use]
    pub fn exits_after(duration: Duration, code: i32) -> Self {
        Self { run: Some(Run::For(duration)), exit_code: Some(code), ..Self::default() }
    }

    /// Every image pull fails.
    #[must_use]
    pub fn pull_fails() -> Self {
        Self { pull: Some(Pull::Fail), ..Self::default() }
    }

    /// Runs but never becomes ready.
    #[must_use]
    pub fn never_ready() -> Self {
        Self { ready: Some(Readiness::Never), ..Self::default() }
    }

    /// Starts `delay` after its turn.
    #[must_use]
    pub fn start_delay(mut self, delay: Duration) -> Self {
        self.start_delay = Some(delay);
        self
    }

    fn overlay(&mut self, other: &Behaviour) {
        self.start_delay = other.start_delay.or(self.start_delay);
        self.run = other.run.or(self.run);
        self.exit_code = other.exit_code.or(self.exit_code);
        self.pull = other.pull.or(self.pull);
        self.ready = other.ready.or(self.ready);
    }
}

/// Which containers a [`Rule`] applies to; every field set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleMatch {
    /// The container's image; `*` matches any run of characters (`nginx:*`, `*/broken`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The container's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Labels the Pod must carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The Pod's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The kind of the Pod's controller (`Job`, `ReplicaSet`, `StatefulSet`, `DaemonSet`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_kind: Option<String>,
}

/// A behaviour for the containers it matches. Rules apply in order, later ones overriding earlier
/// ones field by field; Pod annotations override every rule.
///
/// ```
/// use std::time::Duration;
/// use fake_apiserver::live::{Behaviour, Rule};
/// let rules: Vec<Rule> = Rule::parse_file(r#"
/// - match: {image: "registry.example/broken:*"}
///   pull: fail
/// - match: {labels: {app: flaky}}
///   run: 5s
///   exitCode: 1
/// "#).unwrap();
/// assert_eq!(rules[1], Rule::labels([("app", "flaky")], Behaviour::exits_after(Duration::from_secs(5), 1)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// Which containers.
    #[serde(rename = "match", default)]
    pub matches: RuleMatch,
    /// What they do.
    #[serde(flatten)]
    pub behaviour: Behaviour,
}

/// A rules file that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid behaviour rules: {0}")]
pub struct RulesError(pub String);

impl Rule {
    /// A rule for containers of this image (`*` globs).
    pub fn image(image: impl Into<String>, behaviour: Behaviour) -> Self {
        Self { matches: RuleMatch { image: Some(image.into()), ..RuleMatch::default() }, behaviour }
    }

    /// A rule for Pods with these labels.
    pub fn labels<K: Into<String>, V: Into<String>>(
        labels: impl IntoIterator<Item = (K, V)>,
        behaviour: Behaviour,
    ) -> Self {
        let labels = labels.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        Self { matches: RuleMatch { labels, ..RuleMatch::default() }, behaviour }
    }

    /// A rule for every container.
    pub fn all(behaviour: Behaviour) -> Self {
        Self { matches: RuleMatch::default(), behaviour }
    }

    /// The default rules: containers of Pods controlled by a Job run for one second and exit 0
    /// (a batch container does its work and ends; kwok's default stages do the same).
    pub fn defaults() -> Vec<Rule> {
        vec![Rule {
            matches: RuleMatch { owner_kind: Some("Job".into()), ..RuleMatch::default() },
            behaviour: Behaviour::exits_after(Duration::from_secs(1), 0),
        }]
    }

    /// Parses a list of rules from YAML or JSON.
    ///
    /// # Errors
    /// [`RulesError`] naming what is wrong.
    pub fn parse_file(text: &str) -> Result<Vec<Rule>, RulesError> {
        serde_saphyr::from_str(text).map_err(|e| RulesError(e.to_string()))
    }

    fn matches(&self, pod: &Value, container: &Value) -> bool {
        let m = &self.matches;
        let meta = &pod["metadata"];
        m.image.as_deref().is_none_or(|glob| glob_match(glob, container["image"].as_str().unwrap_or("")))
            && m.container.as_deref().is_none_or(|n| container["name"].as_str() == Some(n))
            && m.namespace.as_deref().is_none_or(|ns| meta["namespace"].as_str() == Some(ns))
            && m.labels.iter().all(|(k, v)| meta["labels"][k].as_str() == Some(v))
            && m.owner_kind.as_deref().is_none_or(|kind| {
                meta["ownerReferences"].as_array().is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r["controller"].as_bool() == Some(true) && r["kind"].as_str() == Some(kind))
                })
            })
    }
}

/// The behaviour a container gets: defaults, then matching rules, then the Pod's annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub(crate) start_delay: Duration,
    pub(crate) run: Run,
    pub(crate) exit_code: i32,
    pub(crate) pull: Pull,
    pub(crate) ready: Readiness,
}

/// The default start delay of a container.
pub const DEFAULT_START_DELAY: Duration = Duration::from_secs(1);

/// Resolves a container's behaviour; `init` containers run for no time by default (they must end
/// for the Pod to start). An invalid annotation is the error (shown as `CreateContainerConfigError`).
pub(crate) fn resolve(
    rules: &[Rule],
    pod: &Value,
    container: &Value,
    init: bool,
) -> Result<Resolved, String> {
    let mut b = Behaviour::default();
    if init {
        b.run = Some(Run::For(Duration::ZERO));
    }
    for rule in rules.iter().filter(|r| r.matches(pod, container)) {
        b.overlay(&rule.behaviour);
    }
    let name = container["name"].as_str().unwrap_or_default();
    if let Some(annotations) = pod["metadata"]["annotations"].as_object() {
        for specific in [false, true] {
            let mut from = Behaviour::default();
            for (key, value) in annotations {
                let Some(field) = key.strip_prefix(ANNOTATION_PREFIX) else { continue };
                let field = match field.split_once('.') {
                    Some((field, c)) if specific && c == name => field,
                    None if !specific => field,
                    _ => continue,
                };
                let value = value.as_str().unwrap_or_default();
                let bad = |what: &str| format!("invalid {key} annotation {value:?}: {what}");
                match field {
                    "start-delay" => from.start_delay = Some(parse_duration(value).map_err(|e| bad(&e))?),
                    "run" => from.run = Some(parse_run(value).map_err(|e| bad(&e))?),
                    "exit-code" => {
                        from.exit_code = Some(value.parse().map_err(|_| bad("expected an integer"))?);
                    }
                    "pull" => {
                        from.pull = Some(match value {
                            "ok" => Pull::Ok,
                            "fail" => Pull::Fail,
                            _ => return Err(bad("expected ok or fail")),
                        });
                    }
                    "ready" => {
                        from.ready = Some(match value {
                            "probe" => Readiness::Probe,
                            "never" => Readiness::Never,
                            _ => return Err(bad("expected probe or never")),
                        });
                    }
                    _ => {}
                }
            }
            b.overlay(&from);
        }
    }
    Ok(Resolved {
        start_delay: b.start_delay.unwrap_or(DEFAULT_START_DELAY),
        run: b.run.unwrap_or(Run::Forever),
        exit_code: b.exit_code.unwrap_or(0),
        pull: b.pull.unwrap_or_default(),
        ready: b.ready.unwrap_or_default(),
    })
}

/// `*` matches any run of characters; everything else literally.
pub(crate) fn glob_match(glob: &str, text: &str) -> bool {
    let parts: Vec<&str> = glob.split('*').collect();
    if parts.len() == 1 {
        return glob == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

fn parse_run(text: &str) -> Result<Run, String> {
    if text == "forever" { Ok(Run::Forever) } else { parse_duration(text).map(Run::For) }
}

/// Parses a Go-style duration: `1h30m`, `2.5s`, `500ms`, `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("expected a duration such as 30s, 1m30s or 500ms".into());
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("expected a duration such as 30s, 1m30s or 500ms, not {text:?}"))?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => return Err(format!("unknown unit {other:?} in duration {text:?}")),
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    Duration::try_from_secs_f64(total).map_err(|e| format!("duration {text:?}: {e}"))
}

fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

mod serde_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map(Some).map_err(serde::de::Error::custom)
    }
}

mod serde_run {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Run;

    pub(super) fn serialize<S: Serializer>(r: &Option<Run>, s: S) -> Result<S::Ok, S::Error> {
        match r {
            Some(Run::Forever) => s.serialize_str("forever"),
            Some(Run::For(d)) => s.serialize_str(&super::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Run>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_run(&text).map(Some).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(annotations: Value, owner: Option<&str>) -> Value {
        let mut pod = json!({"metadata": {"namespace": "ns", "labels": {"app": "web"}}});
        pod["metadata"]["annotations"] = annotations;
        if let Some(kind) = owner {
            pod["metadata"]["ownerReferences"] = json!([{"kind": kind, "controller": true}]);
        }
        pod
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob_match("nginx:*", "nginx:1.27"));
        assert!(glob_match("*/broken:*", "registry.example/broken:v1"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("nginx:*", "redis:7"));
        assert!(!glob_match("a*b*c", "acb"));
    }

    #[test]
    fn annotations_override_rules_and_a_container_specific_one_wins() {
        let rules = vec![Rule::image("web:*", Behaviour::exits_after(Duration::from_secs(5), 3))];
        let pod = pod(json!({"fake.kopf.dev/exit-code": "7", "fake.kopf.dev/run.side": "forever"}), None);
        let web = resolve(&rules, &pod, &json!({"name": "web", "image": "web:1"}), false).unwrap();
        assert_eq!((web.run, web.exit_code), (Run::For(Duration::from_secs(5)), 7));
        let side = resolve(&rules, &pod, &json!({"name": "side", "image": "web:1"}), false).unwrap();
        assert_eq!(side.run, Run::Forever);
    }

    #[test]
    fn job_pods_finish_after_a_second_by_default_and_others_run_forever() {
        let c = json!({"name": "c", "image": "busybox"});
        let job = resolve(&Rule::defaults(), &pod(json!({}), Some("Job")), &c, false).unwrap();
        assert_eq!((job.run, job.exit_code), (Run::For(Duration::from_secs(1)), 0));
        let web = resolve(&Rule::defaults(), &pod(json!({}), Some("ReplicaSet")), &c, false).unwrap();
        assert_eq!((web.run, web.start_delay), (Run::Forever, DEFAULT_START_DELAY));
    }

    #[test]
    fn an_invalid_annotation_is_reported_not_ignored() {
        let err =
            resolve(&[], &pod(json!({"fake.kopf.dev/run": "soon"}), None), &json!({"name": "c"}), false)
                .unwrap_err();
        assert!(err.contains("fake.kopf.dev/run"), "{err}");
    }

    #[test]
    fn rules_files_reject_unknown_fields() {
        assert!(Rule::parse_file("- match: {image: x}\n  explode: true\n").is_err());
        assert!(Rule::parse_file("- run: 3 parsecs\n").is_err());
        let rules = Rule::parse_file(r#"[{"match": {"ownerKind": "Job"}, "run": "2s"}]"#).unwrap();
        assert_eq!(rules[0].behaviour.run, Some(Run::For(Duration::from_secs(2))));
    }
}
