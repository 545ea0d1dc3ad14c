//! Dependencies point one way (DESIGN.md §2): `fake-apiserver` knows nothing of `kopf`; `kopf`
//! never depends on `kopf-testing`; only `kopf-testing` joins them. Checked from the manifests and
//! the sources, as Kopf's import-linter checks its layers.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

/// The dependency names of a manifest's `[dependencies]` and `[dev-dependencies]` tables.
fn dependencies(krate: &str) -> Vec<String> {
    let manifest =
        std::fs::read_to_string(workspace().join(krate).join("Cargo.toml")).expect("manifest is readable");
    let mut in_deps = false;
    let mut names = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = matches!(line, "[dependencies]" | "[dev-dependencies]" | "[build-dependencies]");
            continue;
        }
        if in_deps && let Some((name, _)) = line.split_once(['=', '.']) {
            names.push(name.trim().to_owned());
        }
    }
    names
}

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn fake_apiserver_depends_on_neither_kopf_nor_kopf_testing() {
    let deps = dependencies("fake-apiserver");
    assert!(!deps.iter().any(|d| d == "kopf" || d == "kopf-testing"), "{deps:?}");
    let mut sources = Vec::new();
    rust_sources(&workspace().join("fake-apiserver"), &mut sources);
    assert!(!sources.is_empty());
    for file in sources {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            !text.contains("kopf_testing::") && !text.contains("use kopf::"),
            "{} reaches into kopf",
            file.display()
        );
    }
}

#[test]
fn kopf_does_not_depend_on_kopf_testing() {
    let deps = dependencies("kopf");
    assert!(!deps.iter().any(|d| d == "kopf-testing"), "{deps:?}");
}

#[test]
fn the_manifest_parser_sees_real_dependencies() {
    // Guards the two tests above against passing on a parser that finds nothing.
    let deps = dependencies("kopf-testing");
    assert!(deps.iter().any(|d| d == "fake-apiserver") && deps.iter().any(|d| d == "kopf"), "{deps:?}");
}
