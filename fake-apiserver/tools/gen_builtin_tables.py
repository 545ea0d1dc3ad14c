#!/usr/bin/env python3
"""Generate fake-apiserver's built-in type tables from the k8s-openapi 0.29.0 sources (Kubernetes 1.37).

Usage (from anywhere):

    python3 fake-apiserver/tools/gen_builtin_tables.py [K8S_OPENAPI_SRC_V1_37_DIR]

The directory defaults to the first match of
``~/.cargo/registry/src/*/k8s-openapi-0.29.0/src/v1_37``. It writes, relative to this script:

* ``../src/builtin/resources_generated.rs``: every type implementing ``crate::Resource``;
* ``../src/patching/smp_schema.rs``: the strategic-merge-patch field table;
* ``../src/patching/ssa_schema.rs``: where server-side apply's granularity differs from that table;
* ``../src/openapi/extensions.rs``: the list, map and patch extensions of the OpenAPI documents.

Every k8s-openapi type file is a struct whose ``DeepMerge`` impl names each field's merge strategy, whose
``Serialize`` impl gives each field's JSON name and whose field types give the nested types.

k8s-openapi derives its merge strategies from both the server-side-apply annotations
(``x-kubernetes-list-type`` / ``-list-map-keys`` / ``-map-type``) and the strategic-merge-patch ones
(``x-kubernetes-patch-strategy`` / ``-patch-merge-key``). Strategic merge patch on the real API server only
looks at the latter (the Go ``patchStrategy`` / ``patchMergeKey`` struct tags), so the SMP table is
translated as follows (see ``smp_strategy``):

* ``map::granular`` and ``map::atomic`` both become a granular map: SMP merges every map key by key and
  ignores ``+mapType=atomic`` (e.g. ``PodSpec.nodeSelector`` is merged by SMP);
* ``list::map`` with one key and ``list::set`` keep their strategy when the field carries
  ``patchStrategy:"merge"`` in Kubernetes; k8s-openapi cannot tell that apart from a list that only has
  ``+listType=map`` / ``+listType=set``, which SMP replaces as a whole, so ``SSA_ONLY_LISTS`` names those;
* ``list::map`` with more than one key always comes from ``+listMapKeys`` alone (a patch merge key is a
  single field), so it is atomic for SMP;
* ``PATCH_STRATEGY_REPLACE`` names the fields tagged ``patchStrategy:"replace"``, replaced as a whole.

The two tables come from comparing every list and map field, one by one, with the Go struct tags of
k8s.io/api, k8s.io/apimachinery, k8s.io/apiextensions-apiserver and k8s.io/kube-aggregator at their 1.37
development heads (after v0.37.0-beta.0); no other field differs. The script fails if a listed field no
longer exists or no longer has a merging strategy, but it cannot notice new SSA-only lists: redo the
comparison when moving to another Kubernetes version.

Server-side apply follows the ``+listType`` / ``+listMapKey`` / ``+mapType`` / ``+structType`` markers
(``x-kubernetes-list-type`` / ``-list-map-keys`` / ``-map-type`` in OpenAPI). k8s-openapi's strategies
follow them too, except where they lose information (see ``ssa_strategy``): a list with both a patch merge
key and list-map keys gets the patch merge key alone (``SSA_LIST_MAP_KEYS``), a few ``+listType=atomic``
lists carry a ``patchStrategy:"merge"`` that k8s-openapi prefers (``SSA_ATOMIC_LISTS``), and
``+structType=atomic`` on a type is not recorded at all (``ATOMIC_STRUCTS``, with the field-level
exception ``GRANULAR_STRUCT_FIELDS``). These tables come from reading every marker of k8s.io/api and of
k8s.io/apimachinery's meta/v1 at the same 1.37 development heads; the apiextensions and kube-aggregator
types have no such markers that matter here.
"""

from __future__ import annotations

import glob
import os
import re
import sys
from dataclasses import dataclass, field

GENERATOR = "python3 fake-apiserver/tools/gen_builtin_tables.py"

# Lists that k8s-openapi merges (``list::map`` with one key, or ``list::set``) only because of their
# server-side-apply ``+listType`` annotation: the Go field has no ``patchStrategy:"merge"`` tag, so
# strategic merge patch replaces the whole list. Keyed by (OpenAPI definition name, JSON field name).
SSA_ONLY_LISTS: frozenset[tuple[str, str]] = frozenset(
    {
        ("io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicyBindingSpec", "validationActions"),
        ("io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicyStatus", "conditions"),
        ("io.k8s.api.apiserverinternal.v1alpha1.ServerStorageVersion", "decodableVersions"),
        ("io.k8s.api.apiserverinternal.v1alpha1.ServerStorageVersion", "servedVersions"),
        ("io.k8s.api.apiserverinternal.v1alpha1.StorageVersionStatus", "conditions"),
        ("io.k8s.api.apiserverinternal.v1alpha1.StorageVersionStatus", "storageVersions"),
        ("io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement", "values"),
        ("io.k8s.api.batch.v1.UncountedTerminatedPods", "failed"),
        ("io.k8s.api.batch.v1.UncountedTerminatedPods", "succeeded"),
        ("io.k8s.api.certificates.v1.CertificateSigningRequestStatus", "conditions"),
        ("io.k8s.api.core.v1.ContainerRestartRuleOnExitCodes", "values"),
        ("io.k8s.api.core.v1.NodeAllocatableResourceClaimStatus", "containers"),
        ("io.k8s.api.core.v1.NodePodPreemptionPolicy", "disableResizePreemption"),
        ("io.k8s.api.core.v1.PodStatus", "volumeHealth"),
        ("io.k8s.api.core.v1.ResourceRequirements", "claims"),
        ("io.k8s.api.core.v1.ResourceStatus", "resources"),
        ("io.k8s.api.core.v1.VolumeMount", "bindMountOptions"),
        ("io.k8s.api.discovery.v1.Endpoint", "addresses"),
        ("io.k8s.api.flowcontrol.v1.NonResourcePolicyRule", "nonResourceURLs"),
        ("io.k8s.api.flowcontrol.v1.NonResourcePolicyRule", "verbs"),
        ("io.k8s.api.flowcontrol.v1.ResourcePolicyRule", "apiGroups"),
        ("io.k8s.api.flowcontrol.v1.ResourcePolicyRule", "namespaces"),
        ("io.k8s.api.flowcontrol.v1.ResourcePolicyRule", "resources"),
        ("io.k8s.api.flowcontrol.v1.ResourcePolicyRule", "verbs"),
        ("io.k8s.api.resource.v1.AllocatedDeviceStatus", "conditions"),
        ("io.k8s.api.resource.v1.DeviceRequestAllocationResult", "skipNodeOperations"),
        ("io.k8s.api.resource.v1.ResourceSliceSpec", "skipNodeOperations"),
        ("io.k8s.api.resource.v1beta1.AllocatedDeviceStatus", "conditions"),
        ("io.k8s.api.resource.v1beta1.DeviceRequestAllocationResult", "skipNodeOperations"),
        ("io.k8s.api.resource.v1beta1.ResourceSliceSpec", "skipNodeOperations"),
        ("io.k8s.api.resource.v1beta2.AllocatedDeviceStatus", "conditions"),
        ("io.k8s.api.resource.v1beta2.DeviceRequestAllocationResult", "skipNodeOperations"),
        ("io.k8s.api.resource.v1beta2.ResourceSliceSpec", "skipNodeOperations"),
        ("io.k8s.api.scheduling.v1alpha3.CompositePodGroupTemplate", "compositePodGroupTemplates"),
        ("io.k8s.api.scheduling.v1alpha3.CompositePodGroupTemplate", "podGroupTemplates"),
        ("io.k8s.api.scheduling.v1alpha3.WorkloadSpec", "compositePodGroupTemplates"),
        ("io.k8s.api.scheduling.v1alpha3.WorkloadSpec", "podGroupTemplates"),
        ("io.k8s.api.scheduling.v1beta1.CompositePodGroupTemplate", "compositePodGroupTemplates"),
        ("io.k8s.api.scheduling.v1beta1.CompositePodGroupTemplate", "podGroupTemplates"),
        ("io.k8s.api.scheduling.v1beta1.WorkloadSpec", "compositePodGroupTemplates"),
        ("io.k8s.api.scheduling.v1beta1.WorkloadSpec", "podGroupTemplates"),
        ("io.k8s.api.storage.v1.CSIDriverSpec", "volumeLifecycleModes"),
        ("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus", "conditions"),
    }
)

# Fields tagged ``patchStrategy:"replace"``: strategic merge patch replaces the object as a whole.
PATCH_STRATEGY_REPLACE: frozenset[tuple[str, str]] = frozenset(
    {
        ("io.k8s.api.policy.v1.PodDisruptionBudgetSpec", "selector"),
    }
)

# Lists whose server-side-apply ``+listMapKey`` markers name more keys than k8s-openapi's single patch
# merge key. JSON names, in marker order.
SSA_LIST_MAP_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("io.k8s.api.core.v1.Container", "ports"): ("containerPort", "protocol"),
    ("io.k8s.api.core.v1.EphemeralContainer", "ports"): ("containerPort", "protocol"),
    ("io.k8s.api.core.v1.PodSpec", "topologySpreadConstraints"): ("topologyKey", "whenUnsatisfiable"),
    ("io.k8s.api.core.v1.PodVolumeHealth", "healthConditions"): ("status", "reason"),
    ("io.k8s.api.core.v1.ServiceSpec", "ports"): ("port", "protocol"),
    ("io.k8s.api.core.v1.VolumeHealthStatus", "healthConditions"): ("status", "reason"),
}

# Lists marked ``+listType=atomic`` that also carry ``patchStrategy:"merge"``, which k8s-openapi follows.
SSA_ATOMIC_LISTS: frozenset[tuple[str, str]] = frozenset(
    {
        ("io.k8s.api.apps.v1.StatefulSetSpec", "volumeClaimTemplates"),
        ("io.k8s.api.batch.v1.JobStatus", "conditions"),
        ("io.k8s.api.core.v1.PodStatus", "hostIPs"),
    }
)

# Types marked ``+structType=atomic`` (or ``+mapType=atomic``): server-side apply owns and replaces their
# values as a whole.
ATOMIC_STRUCTS: frozenset[str] = frozenset(
    {
        "io.k8s.api.admissionregistration.v1.MatchResources",
        "io.k8s.api.admissionregistration.v1.NamedRuleWithOperations",
        "io.k8s.api.admissionregistration.v1.ParamKind",
        "io.k8s.api.admissionregistration.v1.ParamRef",
        "io.k8s.api.admissionregistration.v1.Variable",
        "io.k8s.api.admissionregistration.v1alpha1.MatchResources",
        "io.k8s.api.admissionregistration.v1alpha1.NamedRuleWithOperations",
        "io.k8s.api.admissionregistration.v1alpha1.ParamKind",
        "io.k8s.api.admissionregistration.v1alpha1.ParamRef",
        "io.k8s.api.admissionregistration.v1beta1.MatchResources",
        "io.k8s.api.admissionregistration.v1beta1.NamedRuleWithOperations",
        "io.k8s.api.admissionregistration.v1beta1.ParamKind",
        "io.k8s.api.admissionregistration.v1beta1.ParamRef",
        "io.k8s.api.admissionregistration.v1beta1.Variable",
        "io.k8s.api.autoscaling.v1.CrossVersionObjectReference",
        "io.k8s.api.core.v1.ConfigMapKeySelector",
        "io.k8s.api.core.v1.EndpointAddress",
        "io.k8s.api.core.v1.EndpointPort",
        "io.k8s.api.core.v1.EvictionResponder",
        "io.k8s.api.core.v1.FileKeySelector",
        "io.k8s.api.core.v1.LocalObjectReference",
        "io.k8s.api.core.v1.NodeSelector",
        "io.k8s.api.core.v1.NodeSelectorTerm",
        "io.k8s.api.core.v1.ObjectFieldSelector",
        "io.k8s.api.core.v1.ObjectReference",
        "io.k8s.api.core.v1.ResourceFieldSelector",
        "io.k8s.api.core.v1.ScopeSelector",
        "io.k8s.api.core.v1.SecretKeySelector",
        "io.k8s.api.core.v1.SecretReference",
        "io.k8s.api.core.v1.TopologySelectorTerm",
        "io.k8s.api.core.v1.TypedLocalObjectReference",
        "io.k8s.api.discovery.v1.EndpointPort",
        "io.k8s.api.lifecycle.v1alpha1.Requester",
        "io.k8s.api.lifecycle.v1alpha1.TargetResponder",
        "io.k8s.api.networking.v1.ServiceBackendPort",
        "io.k8s.api.rbac.v1.RoleRef",
        "io.k8s.api.rbac.v1.Subject",
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
        "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
    }
)

# Fields of an atomic type marked ``+structType=granular``, which wins over the type's marker.
GRANULAR_STRUCT_FIELDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("io.k8s.api.core.v1.PersistentVolumeSpec", "claimRef"),
    }
)

# Types whose values are opaque to strategic merge patch (quantities, times, raw JSON, ...): a field of
# one of these types is left out of the table, so the patch treats it like JSON merge patch does.
OPAQUE_RUST_TYPES = ("crate::ByteString", "crate::serde_json::Value")

HEADER_RE = re.compile(r"^// Generated from definition (\S+)$", re.M)
STRUCT_RE = re.compile(r"^pub struct (\w+) \{\n(.*?)^\}", re.M | re.S)
FIELD_RE = re.compile(r"^    pub (\w+): (.+),$", re.M)
SERIALIZE_RE = re.compile(
    r"(?:if let Some\(value\) = &self\.(\w+) \{\s*)?"
    r"crate::serde::ser::SerializeStruct::serialize_field\(&mut state, \"([^\"]+)\", (?:&self\.(\w+)|value)\)"
)
MERGE_CALL_RE = re.compile(
    r"crate::(?:merge_strategies::(list::map|list::set|list::atomic|map::granular|map::atomic)"
    r"|DeepMerge::merge_from)\(\s*&mut self\.(\w+),"
)
MERGE_KEY_RE = re.compile(r"\|lhs, rhs\| lhs\.(\w+) == rhs\.\w+")
REEXPORT_RE = re.compile(r"^pub use self::(\w+)::(\w+);$", re.M)


@dataclass
class Field:
    """One struct field of a k8s-openapi type."""

    rust_name: str
    json_name: str
    rust_type: str
    strategy: str  # "default", "list::map", "list::set", "list::atomic", "map::granular", "map::atomic"
    keys: list[str] = field(default_factory=list)  # JSON names of the list-map keys


@dataclass
class TypeInfo:
    """One k8s-openapi type file."""

    openapi_name: str
    rust_name: str
    module: str  # e.g. "api::core::v1"
    fields: list[Field]
    is_struct: bool  # false for newtypes and enums (Quantity, Time, IntOrString, RawExtension, ...)
    is_resource: bool
    is_listable: bool

    @property
    def rust_path(self) -> str:
        return f"k8s_openapi::{self.module}::{self.rust_name}"

    def json_field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.json_name == name), None)


def default_source_dir() -> str:
    pattern = os.path.expanduser("~/.cargo/registry/src/*/k8s-openapi-0.29.0/src/v1_37")
    matches = sorted(glob.glob(pattern))
    if not matches:
        sys.exit(f"no k8s-openapi 0.29.0 sources found at {pattern}; pass the v1_37 directory as argument")
    return matches[0]


def expected_openapi_name(module: str, rust_name: str) -> str:
    """The OpenAPI definition name that k8s-openapi's module layout implies for a type."""
    parts = module.split("::")
    if parts[0] in ("apiextensions_apiserver", "kube_aggregator"):
        parts[0] = parts[0].replace("_", "-")
    return "io.k8s." + ".".join(parts + [rust_name])


def parse_type_file(path: str, module: str) -> TypeInfo | None:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    header = HEADER_RE.search(text)
    if header is None:
        return None
    openapi_name = header.group(1)
    struct = STRUCT_RE.search(text)
    if struct is None:
        # Newtype or enum: opaque to strategic merge patch.
        m = re.search(r"^pub (?:struct|enum) (\w+)", text, re.M)
        if m is None:
            sys.exit(f"{path}: no type definition found")
        return TypeInfo(openapi_name, m.group(1), module, [], False, False, False)
    rust_name = struct.group(1)
    rust_types = {m.group(1): m.group(2) for m in FIELD_RE.finditer(struct.group(2))}

    json_names: dict[str, str] = {}
    ser = text[text.index("impl crate::serde::Serialize for") :]
    for m in SERIALIZE_RE.finditer(ser):
        rust = m.group(1) or m.group(3)
        if rust is not None:
            json_names[rust] = m.group(2)

    strategies: dict[str, tuple[str, list[str]]] = {}
    merge_start = text.find("impl crate::DeepMerge for")
    if merge_start >= 0:
        merge = text[merge_start : text.index("\n}\n", merge_start)]
        calls = list(MERGE_CALL_RE.finditer(merge))
        for i, m in enumerate(calls):
            strategy = m.group(1) or "default"
            end = calls[i + 1].start() if i + 1 < len(calls) else len(merge)
            keys = MERGE_KEY_RE.findall(merge[m.end() : end]) if strategy == "list::map" else []
            strategies[m.group(2)] = (strategy, keys)

    fields = []
    for rust, rust_type in rust_types.items():
        if rust not in json_names:
            sys.exit(f"{path}: field {rust} is never serialized")
        strategy, keys = strategies.get(rust, ("default", []))
        # `keys` are Rust field names of the item type; load_types() turns them into JSON names.
        fields.append(Field(rust, json_names[rust], rust_type, strategy, keys))
    is_resource = f"impl crate::Resource for {rust_name} {{" in text
    is_listable = f"impl crate::ListableResource for {rust_name} {{" in text
    return TypeInfo(openapi_name, rust_name, module, fields, True, is_resource, is_listable)


def load_types(src: str) -> dict[str, TypeInfo]:
    """All types of the v1_37 module, by Rust path relative to the crate root (``api::core::v1::Pod``)."""
    types: dict[str, TypeInfo] = {}
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        if "mod.rs" not in filenames or dirpath == src:
            continue
        module = os.path.relpath(dirpath, src).replace(os.sep, "::")
        with open(os.path.join(dirpath, "mod.rs"), encoding="utf-8") as f:
            reexports = dict(REEXPORT_RE.findall(f.read()))
        for filename in sorted(filenames):
            if filename == "mod.rs" or not filename.endswith(".rs"):
                continue
            info = parse_type_file(os.path.join(dirpath, filename), module)
            if info is None:
                continue
            if reexports.get(filename[:-3]) != info.rust_name:
                sys.exit(f"{dirpath}/{filename}: {info.rust_name} is not re-exported from {module}")
            if expected_openapi_name(module, info.rust_name) != info.openapi_name:
                sys.exit(f"{dirpath}/{filename}: unexpected OpenAPI name {info.openapi_name}")
            types[f"{module}::{info.rust_name}"] = info
    if not types:
        sys.exit(f"{src}: no k8s-openapi types found")
    # Resolve list-map keys from Rust field names of the item type to JSON names.
    for info in types.values():
        for f in info.fields:
            if f.strategy != "list::map":
                continue
            item = item_type(f.rust_type)
            item_info = types.get(item.removeprefix("crate::")) if item else None
            if item_info is None:
                sys.exit(f"{info.openapi_name}.{f.json_name}: list-map items are not a known type")
            by_rust = {x.rust_name: x.json_name for x in item_info.fields}
            f.keys = [by_rust[k] for k in f.keys]
    return types


def strip_wrappers(rust_type: str) -> str:
    """``Option<std::boxed::Box<T>>`` -> ``T``."""
    for wrapper in ("Option<", "std::boxed::Box<"):
        if rust_type.startswith(wrapper) and rust_type.endswith(">"):
            rust_type = rust_type[len(wrapper) : -1]
    return rust_type


def item_type(rust_type: str) -> str | None:
    """The element type of a ``Vec`` or the value type of a ``BTreeMap`` (None for other types)."""
    t = strip_wrappers(rust_type)
    if t.startswith("std::vec::Vec<"):
        return t[len("std::vec::Vec<") : -1]
    if t.startswith("std::collections::BTreeMap<std::string::String, "):
        return t[len("std::collections::BTreeMap<std::string::String, ") : -1]
    return None


def object_name(rust_type: str, types: dict[str, TypeInfo]) -> str | None:
    """The OpenAPI name of a struct type, or None for scalars and opaque types."""
    t = strip_wrappers(rust_type)
    if not t.startswith("crate::") or t in OPAQUE_RUST_TYPES:
        return None
    info = types.get(t.removeprefix("crate::"))
    if info is None:
        sys.exit(f"unknown type {t}")
    return info.openapi_name if info.is_struct else None


def smp_strategy(owner: TypeInfo, f: Field, types: dict[str, TypeInfo]) -> str | None:
    """The Rust ``FieldSchema`` expression of a field, or None when SMP treats it like JSON merge patch."""
    key = (owner.openapi_name, f.json_name)
    t = strip_wrappers(f.rust_type)
    if key in PATCH_STRATEGY_REPLACE:
        return "MapAtomic"
    if t.startswith("std::collections::BTreeMap<"):
        value = item_type(t)
        value_name = object_name(value, types) if value else None
        return f'MapGranular(Some("{value_name}"))' if value_name else "MapGranular(None)"
    if t.startswith("std::vec::Vec<"):
        item = item_type(t)
        item_name = object_name(item, types) if item else None
        if f.strategy == "list::map" and len(f.keys) == 1 and key not in SSA_ONLY_LISTS:
            keys = ", ".join(f'"{k}"' for k in f.keys)
            item_expr = f'Some("{item_name}")' if item_name else "None"
            return f"ListMap {{ keys: &[{keys}], item: {item_expr} }}"
        if f.strategy == "list::set" and key not in SSA_ONLY_LISTS:
            return "ListSet"
        return "ListAtomic"
    name = object_name(t, types)
    return f'Object("{name}")' if name else None


def ssa_strategy(owner: TypeInfo, f: Field, types: dict[str, TypeInfo]) -> str | None:
    """The Rust ``FieldSchema`` expression of a field for server-side apply (None: a scalar or opaque)."""
    key = (owner.openapi_name, f.json_name)
    t = strip_wrappers(f.rust_type)
    if t.startswith("std::collections::BTreeMap<"):
        if f.strategy == "map::atomic":
            return "MapAtomic"
        value = item_type(t)
        value_name = object_name(value, types) if value else None
        return f'MapGranular(Some("{value_name}"))' if value_name else "MapGranular(None)"
    if t.startswith("std::vec::Vec<"):
        item = item_type(t)
        item_name = object_name(item, types) if item else None
        if key in SSA_ATOMIC_LISTS:
            return "ListAtomic"
        if f.strategy == "list::map":
            keys = ", ".join(f'"{k}"' for k in SSA_LIST_MAP_KEYS.get(key, tuple(f.keys)))
            item_expr = f'Some("{item_name}")' if item_name else "None"
            return f"ListMap {{ keys: &[{keys}], item: {item_expr} }}"
        if f.strategy == "list::set":
            return "ListSet"
        return "ListAtomic"
    name = object_name(t, types)
    if name in ATOMIC_STRUCTS and key not in GRANULAR_STRUCT_FIELDS:
        return "MapAtomic"
    return f'Object("{name}")' if name else None


def check_override_tables(types: dict[str, TypeInfo]) -> None:
    by_name = {t.openapi_name: t for t in types.values()}
    for type_name, json_name in sorted(SSA_ONLY_LISTS | PATCH_STRATEGY_REPLACE):
        info = by_name.get(type_name)
        if info is None or info.json_field(json_name) is None:
            sys.exit(f"override table names {type_name}.{json_name}, which k8s-openapi does not have")
    for type_name, json_name in sorted(SSA_ONLY_LISTS):
        f = by_name[type_name].json_field(json_name)
        assert f is not None
        if f.strategy not in ("list::map", "list::set") or (f.strategy == "list::map" and len(f.keys) != 1):
            sys.exit(f"SSA_ONLY_LISTS names {type_name}.{json_name}, which is {f.strategy} {f.keys}")

    for type_name, json_name in sorted(set(SSA_LIST_MAP_KEYS) | SSA_ATOMIC_LISTS | GRANULAR_STRUCT_FIELDS):
        info = by_name.get(type_name)
        if info is None or info.json_field(json_name) is None:
            sys.exit(f"SSA table names {type_name}.{json_name}, which k8s-openapi does not have")
    for type_name, json_name in sorted(set(SSA_LIST_MAP_KEYS) | SSA_ATOMIC_LISTS):
        f = by_name[type_name].json_field(json_name)
        assert f is not None
        if f.strategy != "list::map":
            sys.exit(f"SSA table names {type_name}.{json_name}, which is {f.strategy}, not a list map")
    for type_name in sorted(ATOMIC_STRUCTS):
        if type_name not in by_name or not by_name[type_name].is_struct:
            sys.exit(f"ATOMIC_STRUCTS names {type_name}, which k8s-openapi does not have as a struct")


def render_smp_schema(types: dict[str, TypeInfo]) -> tuple[str, int, int]:
    rows: list[tuple[str, list[tuple[str, str]]]] = []
    for info in sorted(types.values(), key=lambda t: t.openapi_name):
        if not info.is_struct:
            continue
        entries = []
        for f in sorted(info.fields, key=lambda f: f.json_name):
            expr = smp_strategy(info, f, types)
            if expr is not None:
                entries.append((f.json_name, expr))
        if entries:
            rows.append((info.openapi_name, entries))
    field_count = sum(len(e) for _, e in rows)
    out = [
        "//! Strategic-merge-patch field table of the Kubernetes 1.37 built-in types.\n",
        "//!\n",
        f"//! Generated by `{GENERATOR}` from the k8s-openapi 0.29.0\n",
        "//! sources (module `v1_37`); do not edit.\n",
        "//!\n",
        f"//! {len(rows)} types, {field_count} fields. Scalar fields and fields of opaque types (`Quantity`, `Time`,\n",
        "//! `IntOrString`, `RawExtension`, `JSON`, ...) are not listed: patches treat them like JSON merge patch.\n",
        "//! Entries follow Kubernetes' `patchStrategy` / `patchMergeKey` struct tags, which are what strategic\n",
        "//! merge patch obeys, not the server-side-apply `listType` / `mapType` markers (see the generator).\n",
        "\n",
        "/// How strategic merge patch treats one field of a built-in type.\n",
        "#[derive(Clone, Copy, Debug, PartialEq, Eq)]\n",
        "pub(crate) enum FieldSchema {\n",
        "    /// A nested object, merged key by key, whose fields are described under the given type name.\n",
        "    Object(&'static str),\n",
        "    /// A list merged item by item (`patchStrategy:\"merge\"` with a `patchMergeKey`): items with equal\n",
        "    /// merge keys are merged, other patch items are appended. `item` names the item type.\n",
        "    ListMap {\n",
        "        /// The JSON names of the merge-key fields (one for every built-in type).\n",
        "        keys: &'static [&'static str],\n",
        "        /// The item type, when it is a described object.\n",
        "        item: Option<&'static str>,\n",
        "    },\n",
        "    /// A list of scalars merged as a set (`patchStrategy:\"merge\"` without a merge key).\n",
        "    ListSet,\n",
        "    /// A list replaced as a whole by the patch's list.\n",
        "    ListAtomic,\n",
        "    /// A string-keyed map merged key by key; the value type when values are described objects.\n",
        "    MapGranular(Option<&'static str>),\n",
        "    /// A map or object replaced as a whole by the patch's value (`patchStrategy:\"replace\"`).\n",
        "    MapAtomic,\n",
        "}\n",
        "\n",
        "use FieldSchema::{ListAtomic, ListMap, ListSet, MapAtomic, MapGranular, Object};\n",
        "\n",
        "/// The schema of `json_field` in the built-in type `type_name` (an OpenAPI definition name such as\n",
        "/// `io.k8s.api.core.v1.PodSpec`), or `None` if the type or the field is not described.\n",
        "pub(crate) fn field(type_name: &str, json_field: &str) -> Option<FieldSchema> {\n",
        "    find(fields_of(type_name), json_field)\n",
        "}\n",
        "\n",
        "/// The described fields of one type, sorted by JSON name.\n",
        "pub(crate) type Fields = &'static [(&'static str, FieldSchema)];\n",
        "\n",
        "/// The described fields of the built-in type `type_name` (none if it is not described).\n",
        "pub(crate) fn fields_of(type_name: &str) -> Fields {\n",
        "    match TYPES.binary_search_by(|(name, _)| (*name).cmp(type_name)) {\n",
        "        Ok(t) => TYPES[t].1,\n",
        "        Err(_) => &[],\n",
        "    }\n",
        "}\n",
        "\n",
        "/// The schema of `json_field` among `fields`.\n",
        "pub(crate) fn find(fields: Fields, json_field: &str) -> Option<FieldSchema> {\n",
        "    let f = fields.binary_search_by(|(name, _)| (*name).cmp(json_field)).ok()?;\n",
        "    Some(fields[f].1)\n",
        "}\n",
        "\n",
        "/// Per type (sorted by name): its described fields (sorted by JSON name).\n",
        "type Table = &'static [(&'static str, Fields)];\n",
        "\n",
        "#[rustfmt::skip]\n",
        "static TYPES: Table = &[\n",
    ]
    for name, entries in rows:
        out.append(f'    ("{name}", &[\n')
        for json_name, expr in entries:
            out.append(f'        ("{json_name}", {expr}),\n')
        out.append("    ]),\n")
    out.append("];\n")
    out += [
        "\n",
        "#[cfg(test)]\n",
        "mod tests {\n",
        "    use super::*;\n",
        "\n",
        "    #[test]\n",
        "    fn the_table_is_sorted_so_binary_search_finds_every_entry() {\n",
        "        assert!(TYPES.windows(2).all(|w| w[0].0 < w[1].0));\n",
        "        for (_, fields) in TYPES {\n",
        "            assert!(fields.windows(2).all(|w| w[0].0 < w[1].0));\n",
        "        }\n",
        "    }\n",
        "}\n",
    ]
    return "".join(out), len(rows), field_count


def openapi_extension(owner: TypeInfo, f: Field) -> str | None:
    """The Rust ``FieldExtensions`` expression of a field for the served OpenAPI documents, or None.

    ``x-kubernetes-list-type`` / ``-list-map-keys`` / ``-map-type`` follow the server-side-apply reading
    (see ``ssa_strategy``: ``SSA_LIST_MAP_KEYS``, ``SSA_ATOMIC_LISTS``); ``x-kubernetes-patch-strategy`` /
    ``-patch-merge-key`` follow the SMP table's (see ``smp_strategy``): lists in ``SSA_ONLY_LISTS`` and
    multi-key list maps carry no patch strategy.
    """
    key = (owner.openapi_name, f.json_name)
    if key in PATCH_STRATEGY_REPLACE:
        return "REPLACE"
    patch = key not in SSA_ONLY_LISTS
    if f.strategy == "list::map":
        merge_key = f'Some("{f.keys[0]}")' if patch and len(f.keys) == 1 else "None"
        if key in SSA_ATOMIC_LISTS:
            return f"atomic_merged_list({merge_key})"
        keys = ", ".join(f'"{k}"' for k in SSA_LIST_MAP_KEYS.get(key, tuple(f.keys)))
        return f"map_list(&[{keys}], {merge_key})"
    if f.strategy == "list::set":
        return f"set_list({str(patch).lower()})"
    if f.strategy == "list::atomic":
        return "ATOMIC_LIST"
    if f.strategy == "map::atomic":
        return "ATOMIC_MAP"
    return None


def render_openapi_extensions(types: dict[str, TypeInfo]) -> tuple[str, int]:
    rows: list[tuple[str, list[tuple[str, str]]]] = []
    for info in sorted(types.values(), key=lambda t: t.openapi_name):
        if not info.is_struct:
            continue
        entries = []
        for f in sorted(info.fields, key=lambda f: f.json_name):
            expr = openapi_extension(info, f)
            if expr is not None:
                entries.append((f.json_name, expr))
        if entries:
            rows.append((info.openapi_name, entries))
    field_count = sum(len(e) for _, e in rows)
    out = [
        "//! The list, map and patch extensions of the Kubernetes 1.37 built-in types, as the real server's\n",
        "//! OpenAPI documents carry them (`x-kubernetes-list-type`, `-list-map-keys`, `-map-type`,\n",
        "//! `-patch-strategy`, `-patch-merge-key`).\n",
        "//!\n",
        f"//! Generated by `{GENERATOR}` from the k8s-openapi 0.29.0\n",
        f"//! sources (module `v1_37`); do not edit. {len(rows)} types, {field_count} fields.\n",
        "\n",
        "/// The extensions of one field.\n",
        "#[derive(Clone, Copy, Debug, PartialEq, Eq)]\n",
        "pub(crate) struct FieldExtensions {\n",
        "    /// `x-kubernetes-list-type`: `atomic`, `set` or `map`.\n",
        "    pub(crate) list_type: Option<&'static str>,\n",
        "    /// `x-kubernetes-list-map-keys`, for `map` lists.\n",
        "    pub(crate) list_map_keys: &'static [&'static str],\n",
        "    /// `x-kubernetes-map-type`: `atomic`.\n",
        "    pub(crate) map_type: Option<&'static str>,\n",
        "    /// `x-kubernetes-patch-strategy`: `merge` or `replace`.\n",
        "    pub(crate) patch_strategy: Option<&'static str>,\n",
        "    /// `x-kubernetes-patch-merge-key`.\n",
        "    pub(crate) patch_merge_key: Option<&'static str>,\n",
        "}\n",
        "\n",
        "const NONE: FieldExtensions = FieldExtensions {\n",
        "    list_type: None,\n",
        "    list_map_keys: &[],\n",
        "    map_type: None,\n",
        "    patch_strategy: None,\n",
        "    patch_merge_key: None,\n",
        "};\n",
        "const ATOMIC_LIST: FieldExtensions = FieldExtensions { list_type: Some(\"atomic\"), ..NONE };\n",
        "const ATOMIC_MAP: FieldExtensions = FieldExtensions { map_type: Some(\"atomic\"), ..NONE };\n",
        "const REPLACE: FieldExtensions = FieldExtensions { patch_strategy: Some(\"replace\"), ..NONE };\n",
        "\n",
        "const fn map_list(keys: &'static [&'static str], merge_key: Option<&'static str>) -> FieldExtensions {\n",
        "    FieldExtensions {\n",
        "        list_type: Some(\"map\"),\n",
        "        list_map_keys: keys,\n",
        "        patch_strategy: if merge_key.is_some() { Some(\"merge\") } else { None },\n",
        "        patch_merge_key: merge_key,\n",
        "        ..NONE\n",
        "    }\n",
        "}\n",
        "\n",
        "const fn atomic_merged_list(merge_key: Option<&'static str>) -> FieldExtensions {\n",
        "    FieldExtensions {\n",
        "        list_type: Some(\"atomic\"),\n",
        "        patch_strategy: if merge_key.is_some() { Some(\"merge\") } else { None },\n",
        "        patch_merge_key: merge_key,\n",
        "        ..NONE\n",
        "    }\n",
        "}\n",
        "\n",
        "const fn set_list(merge: bool) -> FieldExtensions {\n",
        "    FieldExtensions {\n",
        "        list_type: Some(\"set\"),\n",
        "        patch_strategy: if merge { Some(\"merge\") } else { None },\n",
        "        ..NONE\n",
        "    }\n",
        "}\n",
        "\n",
        "/// The fields with extensions of the built-in type `type_name` (an OpenAPI definition name such as\n",
        "/// `io.k8s.api.core.v1.PodSpec`), sorted by JSON name; empty if it has none.\n",
        "pub(crate) fn fields(type_name: &str) -> &'static [(&'static str, FieldExtensions)] {\n",
        "    match TYPES.binary_search_by(|(name, _)| (*name).cmp(type_name)) {\n",
        "        Ok(t) => TYPES[t].1,\n",
        "        Err(_) => &[],\n",
        "    }\n",
        "}\n",
        "\n",
        "/// Whether the built-in type is `+structType=atomic` (`x-kubernetes-map-type: atomic` on its\n",
        "/// definition): server-side apply owns and replaces its values as a whole.\n",
        "pub(crate) fn atomic_type(type_name: &str) -> bool {\n",
        "    ATOMIC_TYPES.binary_search(&type_name).is_ok()\n",
        "}\n",
        "\n",
        "#[rustfmt::skip]\n",
        "static ATOMIC_TYPES: &[&str] = &[\n",
        *[f'    "{name}",\n' for name in sorted(ATOMIC_STRUCTS)],
        "];\n",
        "\n",
        "/// Per type (sorted by name): its fields with extensions (sorted by JSON name).\n",
        "type Table = &'static [(&'static str, &'static [(&'static str, FieldExtensions)])];\n",
        "\n",
        "#[rustfmt::skip]\n",
        "static TYPES: Table = &[\n",
    ]
    for name, entries in rows:
        out.append(f'    ("{name}", &[\n')
        for json_name, expr in entries:
            out.append(f'        ("{json_name}", {expr}),\n')
        out.append("    ]),\n")
    out.append("];\n")
    out += [
        "\n",
        "#[cfg(test)]\n",
        "mod tests {\n",
        "    use super::*;\n",
        "\n",
        "    #[test]\n",
        "    fn the_table_is_sorted_so_binary_search_finds_every_entry() {\n",
        "        assert!(TYPES.windows(2).all(|w| w[0].0 < w[1].0));\n",
        "        assert!(ATOMIC_TYPES.windows(2).all(|w| w[0] < w[1]));\n",
        "        for (_, fields) in TYPES {\n",
        "            assert!(fields.windows(2).all(|w| w[0].0 < w[1].0));\n",
        "        }\n",
        "    }\n",
        "}\n",
    ]
    return "".join(out), field_count


def render_ssa_schema(types: dict[str, TypeInfo]) -> tuple[str, int]:
    rows: list[tuple[str, list[tuple[str, str]]]] = []
    for info in sorted(types.values(), key=lambda t: t.openapi_name):
        if not info.is_struct:
            continue
        entries = []
        for f in sorted(info.fields, key=lambda f: f.json_name):
            ssa = ssa_strategy(info, f, types)
            if ssa != smp_strategy(info, f, types) and ssa is not None:
                entries.append((f.json_name, ssa))
        if entries:
            rows.append((info.openapi_name, entries))
    field_count = sum(len(e) for _, e in rows)
    out = [
        "//! Server-side-apply granularity of the Kubernetes 1.37 built-in types, where it differs from the\n",
        "//! strategic-merge-patch table of [`smp_schema`].\n",
        "//!\n",
        f"//! Generated by `{GENERATOR}` from the k8s-openapi 0.29.0\n",
        "//! sources (module `v1_37`) and the `+listType` / `+listMapKey` / `+mapType` / `+structType` markers\n",
        "//! the generator lists; do not edit.\n",
        "//!\n",
        f"//! {field_count} fields of {len(rows)} types differ: lists that apply merges by key or as a set where\n",
        "//! strategic merge patch replaces them, list maps with several keys, atomic maps, and fields whose type\n",
        "//! is atomic (`+structType=atomic`, shown as [`FieldSchema::MapAtomic`]).\n",
        "\n",
        "use super::smp_schema::{self, FieldSchema, Fields};\n",
        "\n",
        "#[allow(unused_imports)]\n",
        "use FieldSchema::{ListAtomic, ListMap, ListSet, MapAtomic, MapGranular, Object};\n",
        "\n",
        "/// How server-side apply treats `json_field` of the built-in type `type_name`, or `None` for scalars,\n",
        "/// opaque values and undescribed fields.\n",
        "pub(crate) fn field(type_name: &str, json_field: &str) -> Option<FieldSchema> {\n",
        "    type_fields(type_name).field(json_field)\n",
        "}\n",
        "\n",
        "/// The fields of one built-in type for server-side apply, looked up once per type.\n",
        "#[derive(Debug, Clone, Copy)]\n",
        "pub(crate) struct TypeFields {\n",
        "    /// Where apply differs from strategic merge patch.\n",
        "    overrides: Fields,\n",
        "    /// The strategic-merge-patch table's fields.\n",
        "    fields: Fields,\n",
        "}\n",
        "\n",
        "impl TypeFields {\n",
        "    /// How server-side apply treats `json_field` of this type.\n",
        "    pub(crate) fn field(self, json_field: &str) -> Option<FieldSchema> {\n",
        "        smp_schema::find(self.overrides, json_field).or_else(|| smp_schema::find(self.fields, json_field))\n",
        "    }\n",
        "}\n",
        "\n",
        "/// The fields of the built-in type `type_name` (none when it is not described).\n",
        "pub(crate) fn type_fields(type_name: &str) -> TypeFields {\n",
        "    let overrides = match OVERRIDES.binary_search_by(|(name, _)| (*name).cmp(type_name)) {\n",
        "        Ok(t) => OVERRIDES[t].1,\n",
        "        Err(_) => &[],\n",
        "    };\n",
        "    TypeFields { overrides, fields: smp_schema::fields_of(type_name) }\n",
        "}\n",
        "\n",
        "/// Whether values of the built-in type are owned and replaced as a whole (`+structType=atomic`).\n",
        "pub(crate) fn is_atomic(type_name: &str) -> bool {\n",
        "    ATOMIC_TYPES.binary_search(&type_name).is_ok()\n",
        "}\n",
        "\n",
        "/// Per type (sorted by name): the fields whose apply granularity differs (sorted by JSON name).\n",
        "type Table = &'static [(&'static str, Fields)];\n",
        "\n",
        "#[rustfmt::skip]\n",
        "static OVERRIDES: Table = &[\n",
    ]
    for name, entries in rows:
        out.append(f'    ("{name}", &[\n')
        for json_name, expr in entries:
            out.append(f'        ("{json_name}", {expr}),\n')
        out.append("    ]),\n")
    out.append("];\n")
    out += [
        "\n",
        "/// The atomic types, sorted.\n",
        "#[rustfmt::skip]\n",
        "static ATOMIC_TYPES: &[&str] = &[\n",
    ]
    for name in sorted(ATOMIC_STRUCTS):
        out.append(f'    "{name}",\n')
    out.append("];\n")
    out += [
        "\n",
        "#[cfg(test)]\n",
        "mod tests {\n",
        "    use super::*;\n",
        "\n",
        "    #[test]\n",
        "    fn the_tables_are_sorted_so_binary_search_finds_every_entry() {\n",
        "        assert!(OVERRIDES.windows(2).all(|w| w[0].0 < w[1].0));\n",
        "        for (_, fields) in OVERRIDES {\n",
        "            assert!(fields.windows(2).all(|w| w[0].0 < w[1].0));\n",
        "        }\n",
        "        assert!(ATOMIC_TYPES.windows(2).all(|w| w[0] < w[1]));\n",
        "    }\n",
        "}\n",
    ]
    return "".join(out), field_count


def render_resources(types: dict[str, TypeInfo]) -> tuple[str, int]:
    resources = sorted((t for t in types.values() if t.is_resource), key=lambda t: t.openapi_name)
    out = [
        "//! Every Kubernetes 1.37 built-in kind that k8s-openapi 0.29.0 models as a `Resource`.\n",
        "//!\n",
        f"//! Generated by `{GENERATOR}`; do not edit.\n",
        "\n",
        "use super::BuiltinKind;\n",
        "\n",
        f"/// The {len(resources)} built-in kinds, sorted by OpenAPI definition name.\n",
        "#[rustfmt::skip]\n",
        "pub(crate) fn all() -> Vec<BuiltinKind> {\n",
        "    vec![\n",
    ]
    for t in resources:
        flags = (
            f"listable: {str(t.is_listable).lower()}, "
            f"has_spec: {str(t.json_field('spec') is not None).lower()}, "
            f"has_status: {str(t.json_field('status') is not None).lower()}"
        )
        out.append(f'        BuiltinKind::of::<{t.rust_path}>("{t.openapi_name}", super::Flags {{ {flags} }}),\n')
    out += ["    ]\n", "}\n"]
    return "".join(out), len(resources)


def main() -> None:
    src = sys.argv[1] if len(sys.argv) > 1 else default_source_dir()
    types = load_types(src)
    check_override_tables(types)
    crate_dir = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    schema, type_count, field_count = render_smp_schema(types)
    resources, resource_count = render_resources(types)
    extensions, extension_count = render_openapi_extensions(types)
    ssa, ssa_count = render_ssa_schema(types)
    for rel, text in (
        ("src/patching/smp_schema.rs", schema),
        ("src/patching/ssa_schema.rs", ssa),
        ("src/builtin/resources_generated.rs", resources),
        ("src/openapi/extensions.rs", extensions),
    ):
        path = os.path.join(crate_dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    print(
        f"{resource_count} resources; SMP table: {type_count} types, {field_count} fields; "
        f"OpenAPI extensions: {extension_count} fields; SSA overrides: {ssa_count} fields"
    )


if __name__ == "__main__":
    main()
