//! Real clients nobody here wrote, against the served binary: where they are, and the binary they
//! talk to.
//!
//! `.ci/run` (through `.ci/clients.sh`) installs them and names them in environment variables:
//! `KOPF_RS_KUBECTL` (kubectl 1.37), `KOPF_RS_KUBECTL_1_32` (kubectl 1.32) and `KOPF_RS_PYTHON` (a
//! Python with `kubernetes` and `kopf`). A test whose variable is unset prints a notice and skips
//! (so `cargo test` passes on a machine without them); a variable that is set but names something
//! broken fails the test with a message saying what is wrong.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// Wall-clock guard on anything a test waits for from an external client (cold starts of Python
/// and kubectl on a busy 2-core CI machine included).
pub const WAIT: Duration = Duration::from_secs(60);

/// The bearer token the served binary requires in these tests.
pub const TOKEN: &str = "external-clients-t0ken";

/// A kubectl binary of a known minor version.
#[derive(Debug, Clone)]
pub struct Kubectl {
    pub path: PathBuf,
    /// `1.37`, `1.32`.
    pub version: &'static str,
}

/// The kubectl binaries this machine has, each checked; a notice for each that is not configured.
pub fn kubectls() -> Vec<Kubectl> {
    static FOUND: OnceLock<Vec<Kubectl>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            [("KOPF_RS_KUBECTL", "1.37"), ("KOPF_RS_KUBECTL_1_32", "1.32")]
                .into_iter()
                .filter_map(|(var, version)| {
                    let path = configured(var, &format!("kubectl {version}"))?;
                    check_kubectl(var, &path, version);
                    Some(Kubectl { path, version })
                })
                .collect()
        })
        .clone()
}

/// The Python with `kubernetes` and `kopf`, checked once; `None` (with a notice) when unset.
pub fn python() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let path = configured("KOPF_RS_PYTHON", "a Python with the kubernetes and kopf packages")?;
            let output = std::process::Command::new(&path)
                .args(["-c", "import kopf, kubernetes; print(kopf.__version__ if hasattr(kopf, '__version__') else '')"])
                .output()
                .unwrap_or_else(|e| panic!("KOPF_RS_PYTHON={path:?} cannot be run: {e}"));
            assert!(
                output.status.success(),
                "KOPF_RS_PYTHON={path:?} cannot import kopf and kubernetes (run .ci/clients.sh):\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            Some(path)
        })
        .clone()
}

/// The path in `var`, or `None` with a notice when it is unset.
fn configured(var: &str, what: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => {
            eprintln!("NOTICE: {var} is unset, so the tests with {what} are skipped (.ci/run sets it)");
            None
        }
    }
}

fn check_kubectl(var: &str, path: &Path, version: &str) {
    let output = std::process::Command::new(path)
        .args(["version", "--client", "-o", "json"])
        .output()
        .unwrap_or_else(|e| panic!("{var}={path:?} cannot be run: {e}"));
    assert!(
        output.status.success(),
        "{var}={path:?} fails to print its version:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{var}={path:?} printed no JSON version ({e})"));
    let client = &printed["clientVersion"];
    let found =
        format!("{}.{}", client["major"].as_str().unwrap_or("?"), client["minor"].as_str().unwrap_or("?"));
    assert_eq!(found, version, "{var}={path:?} is kubectl {found}, not {version}");
}

/// A fresh scratch directory under the target directory.
pub fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A file of `fake-apiserver/tests/` (manifests, Python scripts).
pub fn test_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(relative)
}

/// `fake-apiserver serve --tls --token … --kubeconfig …` as a child process, killed when dropped.
#[derive(Debug)]
pub struct Served {
    pub url: String,
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    child: Child,
}

impl Served {
    /// Starts the binary as the plain API server (`--bare`) and reads its URL from the first line
    /// of stdout.
    pub async fn start(name: &str) -> Self {
        Self::spawn(name, &["--bare"]).await
    }

    /// Starts the binary as a live cluster (its default) with these container behaviour rules
    /// (YAML, written to a file for `--rules`) and extra arguments.
    pub async fn live(name: &str, rules: &str, args: &[&str]) -> Self {
        let rules_file = scratch(&format!("{name}-rules")).join("rules.yaml");
        std::fs::write(&rules_file, rules).unwrap();
        let mut all = vec!["--rules", rules_file.to_str().unwrap()];
        all.extend_from_slice(args);
        Self::spawn(name, &all).await
    }

    /// Starts the binary with these extra arguments (none: a live cluster with one Node).
    pub async fn spawn(name: &str, args: &[&str]) -> Self {
        let dir = scratch(name);
        let kubeconfig = dir.join("kubeconfig");
        let mut child = Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
            .args(["serve", "--port", "0", "--tls", "--token", TOKEN])
            .args(args)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = tokio::time::timeout(WAIT, stdout.next_line())
            .await
            .expect("the URL in time")
            .unwrap()
            .expect("a first line");
        Self { url, dir, kubeconfig, child }
    }

    /// A kube client through the written kubeconfig.
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("the kubeconfig is written");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("the kubeconfig is usable");
        kube::Client::try_from(config).expect("a client")
    }

    /// Stops the server with SIGTERM (so it writes its `--journal`) and waits for a clean exit.
    pub async fn stop(mut self) {
        let pid = self.child.id().expect("the server still runs").to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = tokio::time::timeout(WAIT, self.child.wait()).await.expect("it exits in time").unwrap();
        assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");
    }

    /// Whether the server process is still running (a client made it crash otherwise).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Kubectl {
    /// `kubectl <args>` against the served binary, with a discovery cache of the test's own.
    pub fn command(&self, served: &Served, args: &[&str]) -> Command {
        let mut command = Command::new(&self.path);
        command
            .args(args)
            .arg("--cache-dir")
            .arg(served.dir.join(format!("kubectl-{}-cache", self.version)))
            .env("KUBECONFIG", &served.kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs `kubectl <args>` (with `stdin` if given) and returns its output, whatever the status.
    pub async fn output(&self, served: &Served, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = self.command(served, args);
        if stdin.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command.spawn().unwrap_or_else(|e| panic!("kubectl {} starts: {e}", self.version));
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(text.as_bytes()).await.unwrap();
            drop(pipe);
        }
        tokio::time::timeout(WAIT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {} {args:?} ends in time", self.version))
            .unwrap()
    }

    /// Runs `kubectl <args>`, asserts success, and returns stdout.
    pub async fn run(&self, served: &Served, args: &[&str]) -> String {
        self.run_with_stdin(served, args, None).await
    }

    /// Runs `kubectl <args>` with `stdin`, asserts success, and returns stdout.
    pub async fn run_with_stdin(&self, served: &Served, args: &[&str], stdin: Option<&str>) -> String {
        let output = self.output(served, args, stdin).await;
        assert!(
            output.status.success(),
            "kubectl {} {args:?} failed ({}):\n{}",
            self.version,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }

    /// Runs `kubectl <args>`, asserts failure, and returns stderr.
    pub async fn fail(&self, served: &Served, args: &[&str], stdin: Option<&str>) -> String {
        let output = self.output(served, args, stdin).await;
        assert!(
            !output.status.success(),
            "kubectl {} {args:?} was expected to fail:\n{}",
            self.version,
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stderr).expect("UTF-8 output")
    }
}

/// The dynamic API of KopfExamples (`kopfexamples.kopf.dev/v1`) in `default`.
pub fn kopfexamples(client: &kube::Client) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kopf.dev", "v1", "KopfExample"),
        "kopfexamples",
    );
    Api::namespaced_with(client.clone(), "default", &resource)
}

/// An object as JSON.
pub fn json_of<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap()
}

/// Reads lines from a child's pipe until one satisfies `until`; returns all lines read (the last
/// one matching). Panics when the pipe ends first or the guard runs out.
pub async fn read_until<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
    what: &str,
    until: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = until(&line);
            seen.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    match found {
        Ok(true) => seen,
        Ok(false) => panic!("the output ended before {what}:\n{}", seen.join("\n")),
        Err(_) => panic!("no {what} in time:\n{}", seen.join("\n")),
    }
}
