"""What Python Kopf itself would write for an object's persisted state, by Kopf's own code (its
default persistence settings; internals of Kopf 1.45.2, pinned in .ci/python-requirements.txt).

Reads an object as JSON on stdin and prints one JSON object:
  records:   {annotation key: the progress record there, decoded and re-encoded by Kopf}
  diff_base: the last-handled-configuration Kopf would store for this body
The interop tests compare these with the bytes kopf-rs wrote.
"""

import asyncio
import datetime
import json
import sys

import kopf
from kopf._cogs.structs import bodies, ids, patches
from kopf._core.actions.progression import HandlerState

PREFIX = "kopf.zalando.org"
NOT_RECORDS = {"last-handled-configuration", "touch-dummy", "kopf-managed"}


async def main():
    obj = json.load(sys.stdin)
    body = bodies.Body(obj)
    persistence = kopf.OperatorSettings().persistence
    progress, diffbase = persistence.progress_storage, persistence.diffbase_storage
    basetime = datetime.datetime.now(datetime.timezone.utc)

    records = {}
    for key in obj["metadata"].get("annotations", {}):
        prefix, _, name = key.partition("/")
        if prefix != PREFIX or name in NOT_RECORDS:
            continue
        handler_id = ids.HandlerId(name)
        state = HandlerState.from_storage(progress.fetch(key=handler_id, body=body), basetime=basetime)
        patch = patches.Patch()
        progress.store(key=handler_id, record=state.for_storage(), body=body, patch=patch)
        records[key] = patch["metadata"]["annotations"][key]

    essence = progress.clear(essence=diffbase.build(body=body))
    patch = patches.Patch()
    diffbase.store(body=body, patch=patch, essence=essence)
    diff_base = patch["metadata"]["annotations"][f"{PREFIX}/last-handled-configuration"]
    print(json.dumps({"records": records, "diff_base": diff_base}))


asyncio.run(main())
