"""A small Python Kopf operator for KopfExample objects (kopfexamples.kopf.dev/v1), run by
fake-apiserver's tests against `fake-apiserver serve --tls` with the kubeconfig it writes:

    python -m kopf run --standalone --namespace default kopf_operator.py

Each handler's result lands in status.<handler id>; the deletion handler makes Kopf put its
finalizer on the object and remove it after the handler ran.
"""

import kopf


@kopf.on.create("kopf.dev", "v1", "kopfexamples", id="create_fn")
def create_fn(spec, **_):
    return {"message": f"created with field={spec.get('field')}"}


@kopf.on.update("kopf.dev", "v1", "kopfexamples", id="update_fn")
def update_fn(diff, **_):
    return {"changes": [[op, ".".join(field), old, new] for op, field, old, new in diff]}


@kopf.on.delete("kopf.dev", "v1", "kopfexamples", id="delete_fn")
def delete_fn(name, logger, **_):
    logger.info(f"cleaning up after {name}")
