"""API-key secrets at rest: sealed with AES-256-GCM under a key only the api holds.

HMAC needs the secret itself, so it cannot be hashed like a password; it is encrypted instead,
under a key derived (HKDF-SHA256) from `EXCHANGE_API_SECRETS_KEY`, which comes from the
environment (a Kubernetes Secret in the chart), never from the database. A sealed secret reads
`v1:<key id>:<base64url(nonce + ciphertext + tag)>`: the key id (the first 8 hex digits of the
key's SHA-256) names the key that sealed it, and the API key's public id is the associated
data, so a sealed secret copied onto another key's row does not open.

Rotation: keys named in `EXCHANGE_API_SECRETS_OLD_KEYS` still open what they sealed; the api
reseals every row under the current key when it starts (`reseal`), and refuses to start while a
row is sealed under a key it does not hold, or stored in plaintext and cannot be sealed.
"""

import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger("api")

VERSION = "v1"
NONCE_BYTES = 12
MIN_KEY_CHARS = 32
_HKDF_INFO = b"xch api-key secrets v1"


class KeyringError(RuntimeError):
    """A stored secret does not open under the configured keys: at the api's start, it does
    not start."""


def _derive(material: str) -> bytes:
    """An AES-256 key from the configured key (random text, checked by api.config)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO)
    return hkdf.derive(material.encode())


def _key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


@dataclass(frozen=True)
class Keyring:
    """The current key (seals) and the old ones (still open), by key id."""

    current_id: str
    keys: dict[str, AESGCM]

    @classmethod
    def of(cls, current: str, old: list[str] | tuple[str, ...] = ()) -> "Keyring":
        derived = [_derive(material) for material in (current, *old)]
        return cls(_key_id(derived[0]), {_key_id(key): AESGCM(key) for key in derived})

    def seal(self, api_key: str, secret: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self.keys[self.current_id].encrypt(nonce, secret.encode(), api_key.encode())
        text = base64.urlsafe_b64encode(nonce + sealed).decode()
        return f"{VERSION}:{self.current_id}:{text}"

    def open(self, api_key: str, stored: str) -> str:
        """The secret; KeyringError if it is not sealed, or not by a key of this ring."""
        version, key_id, text = _parts(stored)
        aead = self.keys.get(key_id)
        if version != VERSION or aead is None:
            raise KeyringError(f"the secret of API key {api_key} is not sealed by a known key")
        raw = base64.urlsafe_b64decode(text)
        try:
            return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], api_key.encode()).decode()
        except InvalidTag as exc:
            raise KeyringError(f"the secret of API key {api_key} does not open") from exc


def _parts(stored: str) -> tuple[str, str, str]:
    version, _, rest = stored.partition(":")
    key_id, _, text = rest.partition(":")
    return version, key_id, text


async def reseal(db: asyncpg.Pool, keyring: Keyring) -> int:
    """Seal under the current key every secret that is not (plaintext rows from before
    encryption, rows under an old key); how many were resealed. Raises KeyringError, changing
    nothing, if any row cannot be opened: a wrong key must stop the api at its start, not fail
    every signed request later. Safe with several api processes starting at once (each row is
    compared and set)."""
    rows = await db.fetch(
        "SELECT id, key, secret FROM api_keys WHERE secret NOT LIKE $1",
        f"{VERSION}:{keyring.current_id}:%",
    )
    unknown = sorted(
        {key_id for _, key_id, _ in map(_parts, (row["secret"] for row in rows))}
        - {""}
        - set(keyring.keys)
    )
    if unknown:
        raise KeyringError(
            f"API-key secrets are sealed under key id {', '.join(unknown)}, which neither "
            f"EXCHANGE_API_SECRETS_KEY (key id {keyring.current_id}) nor "
            "EXCHANGE_API_SECRETS_OLD_KEYS holds: is this the key they were sealed with?"
        )
    updates = [
        (row["id"], row["secret"], _resealed(keyring, row["key"], row["secret"])) for row in rows
    ]
    async with db.acquire() as conn, conn.transaction():
        await conn.executemany(
            "UPDATE api_keys SET secret = $3 WHERE id = $1 AND secret = $2", updates
        )
    if updates:
        log.info("resealed %d API-key secrets under key %s", len(updates), keyring.current_id)
    return len(updates)


def _resealed(keyring: Keyring, api_key: str, stored: str) -> str:
    if not stored.startswith(f"{VERSION}:"):  # plaintext, from before secrets were sealed
        return keyring.seal(api_key, stored)
    return keyring.seal(api_key, keyring.open(api_key, stored))
