# The Python Kopf contender of the side-by-side benchmark (bench/run.sh): the same handlers as
# bench/src/bin/bench-kopf-rs.rs, with Kopf's default settings. Results land in status.create_fn and
# status.update_fn; the delete handler makes Kopf keep its finalizer on every object.
#
#   python -m kopf run --standalone --all-namespaces bench/contenders/kopf_operator.py
import kopf


@kopf.on.create('kopf.dev', 'v1', 'kopfexamples')
async def create_fn(spec, **_):
    return {'field': spec.get('field')}


@kopf.on.update('kopf.dev', 'v1', 'kopfexamples')
async def update_fn(spec, **_):
    return {'field': spec.get('field')}


@kopf.on.delete('kopf.dev', 'v1', 'kopfexamples')
async def delete_fn(**_):
    pass
