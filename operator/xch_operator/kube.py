"""A small typed asyncio client for the few Kubernetes API calls the operator makes.

Kopf watches Markets with its own client; children and status are written through this one,
with the same credentials (a kopf.ConnectionInfo from the ServiceAccount or a kubeconfig).
"""

import base64
import json
import os
import ssl
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import kopf

FIELD_MANAGER = "xch-operator"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
MERGE_CONTENT_TYPE = "application/merge-patch+json"


class KubeError(RuntimeError):
    """An API call failed with an HTTP status other than the ones its caller handles."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


def resource_path(
    api_version: str, plural: str, namespace: str | None, name: str | None = None
) -> str:
    """The URL path of a collection (name None) or of one object."""
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"{prefix}{scope}/{plural}" + (f"/{name}" if name else "")


FilePath = str | bytes | os.PathLike[str] | os.PathLike[bytes]


def _pem(path: FilePath | None, data: str | bytes | None) -> str | None:
    """A PEM document from a file or inline: kubeconfigs carry it base64-encoded, the
    service account's files as PEM."""
    if path:
        return Path(os.fsdecode(path)).read_text()
    if not data:
        return None
    text = data.decode() if isinstance(data, bytes) else data
    return text if "-----BEGIN" in text else base64.b64decode(text).decode()


def _ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if info.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        ca = _pem(info.ca_path, info.ca_data)
        if ca is not None:
            context.load_verify_locations(cadata=ca)
    certificate = _pem(info.certificate_path, info.certificate_data)
    key = _pem(info.private_key_path, info.private_key_data)
    if certificate is not None and key is not None:
        _load_client_certificate(context, certificate, key)
    return context


def _load_client_certificate(context: ssl.SSLContext, certificate: str, key: str) -> None:
    """ssl loads a client certificate from files only: private ones, gone once loaded."""
    with tempfile.TemporaryDirectory(prefix="xch-kube-") as directory:
        cert_file, key_file = Path(directory) / "client.crt", Path(directory) / "client.key"
        cert_file.write_text(certificate)
        key_file.touch(mode=0o600)
        key_file.write_text(key)
        context.load_cert_chain(cert_file, key_file)


class KubeClient:
    def __init__(self, info: kopf.ConnectionInfo) -> None:
        self.server = info.server.rstrip("/")
        self.headers = info.as_http_headers()
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=_ssl_context(info), limit=20),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def close(self) -> None:
        await self.session.close()

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
        allow: tuple[int, ...] = (),
    ) -> dict[str, Any] | None:
        headers = {**self.headers, "Content-Type": content_type, "Accept": "application/json"}
        data = json.dumps(body) if body is not None else None
        async with self.session.request(
            method, self.server + path, data=data, headers=headers, params=params
        ) as response:
            if response.status in allow:
                return None
            text = await response.text()
            if response.status >= 400:
                raise KubeError(response.status, _message(text))
            result: dict[str, Any] = json.loads(text) if text else {}
            return result

    async def get(self, path: str) -> dict[str, Any] | None:
        """The object at `path`, or None if it does not exist."""
        return await self._call("GET", path, allow=(404,))

    async def list(self, path: str, label_selector: str) -> list[dict[str, Any]]:
        """The objects of the collection at `path` that match `label_selector`."""
        found = await self._call("GET", path, params={"labelSelector": label_selector})
        assert found is not None
        items: list[dict[str, Any]] = found.get("items") or []
        return items

    async def create(self, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a new object; 409 (KubeError) if its name is taken."""
        result = await self._call("POST", collection, body)
        assert result is not None
        return result

    async def username(self) -> str:
        """Who the API server takes this client for (a SelfSubjectReview: any user may ask)."""
        review = await self.create(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        return str(review["status"]["userInfo"]["username"])

    async def replace(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT the whole object; 409 (KubeError) if its metadata.resourceVersion is stale."""
        result = await self._call("PUT", path, body)
        assert result is not None
        return result

    async def apply(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply: the operator owns the fields it sets, and takes them back from
        whoever edited them by hand (force)."""
        params = {"fieldManager": FIELD_MANAGER, "force": "true"}
        result = await self._call("PATCH", path, body, APPLY_CONTENT_TYPE, params)
        assert result is not None
        return result

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """JSON merge patch; None if the object is gone."""
        return await self._call("PATCH", path, body, MERGE_CONTENT_TYPE, allow=(404,))

    async def delete(self, path: str) -> None:
        """Delete the object, in the background (its dependents are collected later)."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        await self._call("DELETE", path, body, allow=(404,))


def _message(text: str) -> str:
    try:
        return str(json.loads(text).get("message", text))
    except (ValueError, AttributeError):
        return text
