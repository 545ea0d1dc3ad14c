"""The Python Kopf peer of the peering interop tests (tests/it/kopf/python_peering.rs): a creation
handler on KopfExample objects that says who ran it, with a short peering lifetime so that
takeovers take seconds.

    PEERING_LIFETIME=6 python -m kopf run -n default --priority 100 peering_operator.py
"""

import os

import kopf

RESOURCE = ("kopf.dev", "v1", "kopfexamples")


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    settings.peering.lifetime = int(os.environ.get("PEERING_LIFETIME", "6"))


@kopf.on.create(*RESOURCE, id="create_fn")
def create_fn(**_):
    return {"by": "python"}
