"""Redis users outside the cluster (the local stack and the test harness): the chart's rules,
charts/exchange/files/redis-acl.yaml, rendered into an ACL file the way the chart renders
them into its Secret, so that every component connects as its own user everywhere."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

RULES_FILE = Path(__file__).resolve().parent.parent / "charts/exchange/files/redis-acl.yaml"


def _document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(RULES_FILE.read_text())
    return document


def rules() -> dict[str, str]:
    """User name -> its ACL rules, as the rules file states them."""
    users: dict[str, str] = _document()["users"]
    return users


def new_passwords() -> dict[str, str]:
    """A fresh random password for every user (hex: safe unescaped in a URL)."""
    return {user: secrets.token_hex(24) for user in rules()}


def acl_file(passwords: Mapping[str, str]) -> str:
    """The ACL file: the default user off, every user on with its password's SHA-256."""
    document = _document()
    lines = [f"user default reset {document['default']}"]
    users: dict[str, str] = document["users"]
    for user, user_rules in users.items():
        digest = hashlib.sha256(passwords[user].encode()).hexdigest()
        lines.append(f"user {user} reset on #{digest} {user_rules}")
    return "\n".join(lines) + "\n"


def url(host: str, port: int, user: str, password: str) -> str:
    return f"redis://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/0"
