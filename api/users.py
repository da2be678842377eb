"""Users and API keys in PostgreSQL (tables `users`, `api_keys` of storage.models)."""

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from api.digits import ascii_digits
from api.keyring import Keyring


@dataclass(frozen=True, slots=True)
class UserRow:
    id: str
    email: str
    password_hash: str
    is_admin: bool


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    id: int
    user_id: str
    key: str
    secret: str
    label: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None


def _user(row: asyncpg.Record) -> UserRow:
    return UserRow(str(row["id"]), row["email"], row["password_hash"], row["is_admin"])


def _key(row: asyncpg.Record, keyring: Keyring) -> ApiKeyRow:
    return ApiKeyRow(
        id=row["id"],
        user_id=str(row["user_id"]),
        key=row["key"],
        secret=keyring.open(row["key"], row["secret"]),
        label=row["label"],
        scopes=tuple(row["scopes"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


async def create_user(db: asyncpg.Pool, *, email: str, password_hash: str) -> UserRow | None:
    """The new user, never an admin (`set_admin`), or None if the email is taken."""
    row = await db.fetchrow(
        "INSERT INTO users (email, password_hash) VALUES ($1, $2) "
        "ON CONFLICT (email) DO NOTHING RETURNING id, email, password_hash, is_admin",
        email,
        password_hash,
    )
    return None if row is None else _user(row)


async def user_by_email(db: asyncpg.Pool, email: str) -> UserRow | None:
    row = await db.fetchrow(
        "SELECT id, email, password_hash, is_admin FROM users WHERE email = $1", email
    )
    return None if row is None else _user(row)


async def user_by_id(db: asyncpg.Pool, user_id: str) -> UserRow | None:
    if not ascii_digits(user_id, 18):
        return None
    row = await db.fetchrow(
        "SELECT id, email, password_hash, is_admin FROM users WHERE id = $1", int(user_id)
    )
    return None if row is None else _user(row)


_KEY_COLUMNS = "id, user_id, key, secret, label, scopes, created_at, revoked_at"


async def create_api_key(
    db: asyncpg.Pool,
    keyring: Keyring,
    *,
    user_id: str,
    key: str,
    secret: str,
    label: str,
    scopes: list[str],
) -> ApiKeyRow:
    """The new key, its secret stored sealed (api.keyring)."""
    row = await db.fetchrow(
        f"INSERT INTO api_keys (user_id, key, secret, label, scopes) VALUES ($1, $2, $3, $4, $5) "
        f"RETURNING {_KEY_COLUMNS}",
        int(user_id),
        key,
        keyring.seal(key, secret),
        label,
        scopes,
    )
    assert row is not None
    return _key(row, keyring)


async def api_key(db: asyncpg.Pool, keyring: Keyring, key: str) -> ApiKeyRow | None:
    row = await db.fetchrow(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key = $1", key)
    return None if row is None else _key(row, keyring)


async def api_keys_of(db: asyncpg.Pool, keyring: Keyring, user_id: str) -> list[ApiKeyRow]:
    rows = await db.fetch(
        f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY id", int(user_id)
    )
    return [_key(row, keyring) for row in rows]


async def revoke_api_key(db: asyncpg.Pool, *, user_id: str, key_id: int) -> bool:
    """Whether a live key of this user was revoked."""
    row = await db.fetchrow(
        "UPDATE api_keys SET revoked_at = now() "
        "WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING id",
        key_id,
        int(user_id),
    )
    return row is not None


async def set_admin(db: asyncpg.Connection | asyncpg.Pool, email: str, is_admin: bool) -> bool:
    """Make the account with this email an admin or not; whether it exists. Only an operator
    with the database's credentials calls this (`python -m api.admin`), never a request."""
    row = await db.fetchrow(
        "UPDATE users SET is_admin = $2 WHERE email = $1 RETURNING id", email, is_admin
    )
    return row is not None
