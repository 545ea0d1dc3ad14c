"""A Python Kopf operator that is one shard of a sharded deployment: at startup it sets
settings.watching.shard_selectors for KopfExamples (kopfexamples.kopf.dev/v1) to the selector in
KOPF_SHARD_SELECTOR, so the API server sends it only the objects whose uid hashes into that range.
Run by fake-apiserver's tests against `fake-apiserver serve`:

    KOPF_SHARD_SELECTOR="shardRange(...)" python -m kopf run --standalone --namespace default kopf_sharded.py

The creation handler stores the object's uid in status.create_fn.
"""

import os

import kopf


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    settings.watching.shard_selectors["kopf.dev", "kopfexamples"] = os.environ["KOPF_SHARD_SELECTOR"]


@kopf.on.create("kopf.dev", "v1", "kopfexamples", id="create_fn")
def create_fn(uid, **_):
    return {"uid": uid}
