"""The Market CRD, generated from the shared Market model (`xch.market`).

`python -m xch_operator.crd` writes charts/exchange/files/markets.exchange.dev.yaml (the chart's
templates/crd.yaml includes it, so `helm upgrade` upgrades it); a test
checks that the committed file is what this module generates, so the model stays the one
source of truth. The OpenAPI schema comes from pydantic's JSON schema of `MarketSpec`,
turned into a Kubernetes structural schema. What the model checks in Python code rather
than in field constraints is restated here as CEL rules, each mirroring one validator.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from xch.market import (
    API_GROUP,
    API_VERSION,
    INTERVAL_PATTERN,
    KIND,
    NAME_PATTERN,
    MarketSpec,
    Trading,
)
from xch_operator.observe import LAG_CAP
from xch_operator.status import CONDITION_TYPES, PHASES

PLURAL = "markets"
SINGULAR = "market"
CRD_NAME = f"{PLURAL}.{API_GROUP}"
CRD_PATH = Path("charts/exchange/files") / f"{CRD_NAME}.yaml"
KEEP = {"helm.sh/resource-policy": "keep"}
"""`helm uninstall` leaves the CRD: deleting it would delete every Market with it."""


# CEL's cost estimator charges string functions by the longest string a field may hold, so
# decimal strings get a bound; 40 characters exceed any int64 the engine can hold anyway.
DECIMAL_MAX_LENGTH = 40
DECIMAL_FIELDS = ("tickSize", "lotSize", "minNotional")
MM_DECIMAL_FIELDS = ("referencePrice", "orderSize", "maxInventory")
IMMUTABLE_FIELDS = ("base", "quote", "tickSize", "lotSize")

# Powers of ten an int64 holds: CEL has no exponentiation, so rules index this list.
_POWERS = "[" + ", ".join(str(10**n) for n in range(19)) + "]"


def _digits(field: str) -> str:
    """CEL: the decimal string `field` without its point, as an int (0.0125 -> 125)."""
    return f"int({field}.replace('.', ''))"


def _decimals(field: str) -> str:
    """CEL: how many digits `field` has after its point."""
    return f"({field}.contains('.') ? size({field}) - {field}.indexOf('.') - 1 : 0)"


def _whole(digits: str, decimals: str, scale: str) -> str:
    """CEL: digits / 10^decimals is a whole number of 10^-scale units, i.e. the digits end in
    at least (decimals - scale) zeros. More than 18 would not fit an int64: refused. (The
    API server's CEL has no cel.bind for CRDs, so the excess is spelled out twice.)"""
    excess = f"({decimals} - {scale})"
    return f"{excess} <= 0 || ({excess} <= 18 && {digits} % {_POWERS}[{excess}] == 0)"


def _multiple_of_lot(field: str) -> str:
    """CEL: the decimal `field` is a whole number of lotSize: S/10^s over L/10^l is whole,
    i.e. S * 10^(l-s) % L == 0 when l >= s, else S % (L * 10^(s-l)) == 0."""
    size, lot = _digits(field), _digits("self.lotSize")
    size_places, lot_places = _decimals(field), _decimals("self.lotSize")
    finer, coarser = f"{lot_places} - {size_places}", f"{size_places} - {lot_places}"
    return (
        f"{lot_places} >= {size_places}"
        f" ? ({finer} <= 18 && {size} * {_POWERS}[{finer}] % {lot} == 0)"
        f" : ({coarser} <= 18 && {size} % ({lot} * {_POWERS}[{coarser}]) == 0)"
    )


ORDER_SIZE = "self.marketMaker.orderSize"
MAX_INVENTORY = "self.marketMaker.maxInventory"

SPEC_RULES: tuple[dict[str, str], ...] = (
    {
        "rule": "self.base.asset != self.quote.asset",
        "message": "base and quote must be different assets",
        "fieldPath": ".quote.asset",
    },
    {
        "rule": _whole(_digits("self.lotSize"), _decimals("self.lotSize"), "self.base.scale"),
        "message": "lotSize must be a whole number of base minor units",
        "fieldPath": ".lotSize",
    },
    {
        "rule": _whole(
            f"{_digits('self.tickSize')} * {_digits('self.lotSize')}",
            f"{_decimals('self.tickSize')} + {_decimals('self.lotSize')}",
            "self.quote.scale",
        ),
        "message": "tickSize x lotSize must be a whole number of quote minor units",
        "fieldPath": ".tickSize",
    },
    {
        "rule": _whole(
            _digits("self.minNotional"), _decimals("self.minNotional"), "self.quote.scale"
        ),
        "message": "minNotional must be a whole number of quote minor units",
        "fieldPath": ".minNotional",
    },
    {
        "rule": f"!has({ORDER_SIZE}) || ({_multiple_of_lot(ORDER_SIZE)})",
        "message": "marketMaker.orderSize must be a whole number of lots",
        "fieldPath": ".marketMaker.orderSize",
    },
    {
        "rule": f"!has({MAX_INVENTORY}) || ("
        + _whole(_digits(MAX_INVENTORY), _decimals(MAX_INVENTORY), "self.base.scale")
        + ")",
        "message": "marketMaker.maxInventory must be a whole number of base minor units",
        "fieldPath": ".marketMaker.maxInventory",
    },
)

POSITIVE_RULE = {"rule": "self.matches('[1-9]')", "message": "must be positive"}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Resolve `$ref`s, drop what a structural schema may not hold (titles, `additionalProperties:
    false`, null defaults) and keep the non-null branch of optional fields."""
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = dict(defs[node["$ref"].rsplit("/", 1)[-1]])
        target.update({key: value for key, value in node.items() if key != "$ref"})
        return _inline(target, defs)
    if "anyOf" in node:
        branches = [branch for branch in node["anyOf"] if branch.get("type") != "null"]
        (branch,) = branches
        rest = {key: value for key, value in node.items() if key != "anyOf"}
        return _inline({**branch, **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" or (key == "default" and value is None):
            continue
        if key == "additionalProperties" and value is False:
            continue
        if key == "additionalProperties" and value is True:
            out["x-kubernetes-preserve-unknown-fields"] = True
            continue
        out[key] = _inline(value, defs)
    return out


def _default_objects(schema: dict[str, Any]) -> None:
    """Give every optional object an empty default, so that the API server fills in the
    defaults of its fields when the object is left out (it only defaults inside objects
    that exist)."""
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        if prop.get("type") == "object" and "properties" in prop:
            _default_objects(prop)
            if name not in required:
                prop.setdefault("default", {})


def spec_schema() -> dict[str, Any]:
    raw = MarketSpec.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    schema: dict[str, Any] = _inline(raw, defs)
    _default_objects(schema)
    props = schema["properties"]
    maker = props["marketMaker"]["properties"]
    for target, names in ((props, DECIMAL_FIELDS), (maker, MM_DECIMAL_FIELDS)):
        for name in names:
            target[name]["maxLength"] = DECIMAL_MAX_LENGTH
    for target, name in ((props, "tickSize"), (props, "lotSize"), (maker, "orderSize")):
        target[name]["x-kubernetes-validations"] = [dict(POSITIVE_RULE)]
    for name in IMMUTABLE_FIELDS:
        props[name].setdefault("x-kubernetes-validations", []).append(
            {"rule": "self == oldSelf", "message": f"{name} is immutable"}
        )
    intervals = props["klines"]["properties"]["intervals"]
    intervals["items"]["pattern"] = INTERVAL_PATTERN
    intervals["x-kubernetes-list-type"] = "set"
    schema["x-kubernetes-validations"] = [dict(rule) for rule in SPEC_RULES]
    return schema


def status_schema() -> dict[str, Any]:
    condition = {
        "type": "object",
        "required": ["type", "status", "lastTransitionTime"],
        "properties": {
            "type": {"type": "string", "enum": list(CONDITION_TYPES)},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
        },
    }
    return {
        "type": "object",
        "properties": {
            "phase": {"type": "string", "enum": list(PHASES)},
            "phaseReason": {"type": "string"},
            "engineImage": {"type": "string"},
            "pendingEngineImage": {"type": "string"},
            "paused": {"type": "boolean"},
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
            "inputLag": {"type": "integer", "minimum": 0, "maximum": LAG_CAP},
            "lastTradeTime": {"type": "string", "format": "date-time", "nullable": True},
            "snapshotTime": {"type": "string", "format": "date-time", "nullable": True},
            "leaseToken": {"type": "integer", "format": "int64", "minimum": 1, "nullable": True},
            "leaseHolder": {"type": "string", "maxLength": 253, "nullable": True},
            "engineTrading": {
                "type": "string",
                "enum": [state.value for state in Trading],
                "nullable": True,
            },
            "conditions": {
                "type": "array",
                "items": condition,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
        },
    }


def _column(name: str, path: str, kind: str = "string") -> dict[str, str]:
    return {"name": name, "type": kind, "jsonPath": path}


def build_crd() -> dict[str, Any]:
    schema = {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": status_schema(),
        },
        "x-kubernetes-validations": [
            {
                "rule": f"self.metadata.name.matches('{NAME_PATTERN}')",
                "message": "a Market's name is a DNS label (lowercase letters, digits, '-')",
            }
        ],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "annotations": KEEP},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": ["mkt"],
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        _column("Base", ".spec.base.asset"),
                        _column("Quote", ".spec.quote.asset"),
                        _column("Trading", ".spec.trading"),
                        _column("Phase", ".status.phase"),
                        _column("Ready", '.status.conditions[?(@.type=="Ready")].status'),
                        _column("Reason", ".status.phaseReason"),
                        _column("Lag", ".status.inputLag", "integer"),
                        _column("Last Trade", ".status.lastTradeTime", "date"),
                        _column("Snapshot", ".status.snapshotTime", "date"),
                        _column("Lease", ".status.leaseToken", "integer"),
                        _column("Holder", ".status.leaseHolder"),
                        _column("Age", ".metadata.creationTimestamp", "date"),
                    ],
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


class _NoAliasDumper(yaml.SafeDumper):
    """Writes a shared sub-object out each time: a CRD with YAML anchors is hard to read."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render() -> str:
    header = "# Generated by `python -m xch_operator.crd` from xch/market.py. Do not edit.\n"
    body = yaml.dump(build_crd(), Dumper=_NoAliasDumper, sort_keys=False, width=100)
    return header + body


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m xch_operator.crd", description=__doc__)
    parser.add_argument("--output", type=Path, default=CRD_PATH)
    args = parser.parse_args(argv)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render())
    sys.stdout.write(f"wrote {args.output}\n")


if __name__ == "__main__":
    main()
