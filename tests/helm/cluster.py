"""Server-side apply of rendered objects to the test API server, as kubectl apply
--server-side does it: discovery maps each kind to its resource, the API server runs its
admission (Pod Security included) and schema checks, and its warnings are kept."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from tests.harness.kube import ApiError, Rest

FIELD_MANAGER = "exchange-chart-tests"


@dataclass(frozen=True)
class Resource:
    plural: str
    namespaced: bool


@dataclass
class Applier:
    rest: Rest
    _resources: dict[tuple[str, str], Resource] = field(default_factory=dict)

    def resource(self, api_version: str, kind: str) -> Resource:
        if (api_version, kind) not in self._resources:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            for found in self.rest.request("GET", base)["resources"]:
                if "/" not in found["name"]:
                    self._resources[(api_version, found["kind"])] = Resource(
                        found["name"], found["namespaced"]
                    )
        return self._resources[(api_version, kind)]

    def path(self, obj: dict[str, Any], namespace: str) -> str:
        """Where `obj` goes: its own namespace if it names one (as helm does), else
        `namespace`."""
        namespace = obj["metadata"].get("namespace", namespace)
        api_version, kind = obj["apiVersion"], obj["kind"]
        resource = self.resource(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        scope = f"/namespaces/{namespace}" if resource.namespaced else ""
        return f"{base}{scope}/{resource.plural}/{obj['metadata']['name']}"

    def apply(self, obj: dict[str, Any], namespace: str, dry_run: bool = False) -> list[str]:
        """Server-side apply `obj`, refusing unknown or duplicate fields; return the warnings."""
        params = {"fieldManager": FIELD_MANAGER, "force": "true", "fieldValidation": "Strict"}
        if dry_run:
            params["dryRun"] = "All"
        query = urllib.parse.urlencode(params)
        request = urllib.request.Request(
            f"{self.rest.server}{self.path(obj, namespace)}?{query}",
            method="PATCH",
            data=json.dumps(obj).encode(),
            headers={
                "Authorization": f"Bearer {self.rest.token}",
                "Content-Type": "application/apply-patch+yaml",
            },
        )
        context = ssl.create_default_context(cafile=str(self.rest.ca_file))
        try:
            with urllib.request.urlopen(request, timeout=30, context=context) as response:
                return list(response.headers.get_all("Warning") or [])
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, json.loads(exc.read() or b"{}")) from None
