"""Bearer tokens shared by the api (which issues them) and ws (which verifies them).

A token is a JWT signed with HS256 under the deployment's shared secret. Its subject is the
user id, the same string that names the user's balances (`xch.keys.balances`) and appears as
`user` in commands and events. `typ` keeps a refresh token from being used as an access
token, and either from standing in for a `service` token: one ws mints for itself (subject
`ws`) to call the api's internal routes (api.binance.routes.ws_api).
"""

import time
import uuid
from typing import Literal

import jwt

ALGORITHM = "HS256"
TokenType = Literal["access", "refresh", "service"]
WS_SERVICE = "ws"
"""The subject of the service tokens ws calls the api with."""


class InvalidToken(Exception):
    """The token is malformed, expired, of the wrong type or signed with another key."""


def issue_token(user: str, token_type: TokenType, secret: str, ttl_seconds: int) -> str:
    now = int(time.time())
    claims = {
        "sub": user,
        "typ": token_type,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(token: str, token_type: TokenType, secret: str) -> str:
    """The user id the token was issued to; raises InvalidToken otherwise."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "typ", "exp", "iat"]},
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(str(error)) from error
    if claims["typ"] != token_type or not isinstance(claims["sub"], str):
        raise InvalidToken(f"not an {token_type} token")
    return claims["sub"]
