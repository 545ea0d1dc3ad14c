"""The Python Kopf half of the interop tests (tests/it/kopf/python_interop.rs): the same handler
ids as the kopf-rs operator there, on KopfExample objects (kopfexamples.kopf.dev/v1).

    INTEROP_MODE=half|finish INTEROP_DELAY=3 python -m kopf run --standalone -n default interop_operator.py

In "half" mode `create_pending` fails with a TemporaryError, so an object is left half-handled:
`create_fn` done, `create_pending` waiting for its retry. In "finish" mode it succeeds. Every
result says who ran the handler, with the retry number and the start time Kopf read or kept.
"""

import os

import kopf

MODE = os.environ["INTEROP_MODE"]
DELAY = float(os.environ.get("INTEROP_DELAY", "3"))
RESOURCE = ("kopf.dev", "v1", "kopfexamples")


def kopf_time(moment):
    return moment.isoformat(timespec="microseconds")


@kopf.on.create(*RESOURCE, id="create_fn")
def create_fn(retry, **_):
    return {"by": "python", "retry": retry}


@kopf.on.create(*RESOURCE, id="create_pending")
def create_pending(retry, started, **_):
    if MODE == "half":
        raise kopf.TemporaryError("not yet", delay=DELAY)
    return {"by": "python", "retry": retry, "started": kopf_time(started)}


@kopf.on.resume(*RESOURCE, id="resume_fn")
def resume_fn(reason, diff, **_):
    return {"by": "python", "reason": str(reason), "diff": [list(change) for change in diff]}
