"""`python -m api.admin grant|revoke EMAIL`: make an account an admin (deposits, withdrawals,
admin-scoped API keys), or no longer one.

Admin is an operator's act, never a sign-up's: this command needs the database's credentials
(EXCHANGE_API_DATABASE_URL, as the api has it, or --database-url). In a cluster:
`kubectl exec deploy/<release>-exchange-api -- python -m api.admin grant EMAIL`; locally:
`exchange admin grant EMAIL`. The account must exist (sign up first); the change holds from
the account's next admin request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import asyncpg

from api import users

DATABASE_URL_ENV = "EXCHANGE_API_DATABASE_URL"


async def set_admin(database_url: str, email: str, is_admin: bool) -> bool:
    """Whether the account exists (and is now as asked)."""
    conn = await asyncpg.connect(database_url)
    try:
        return await users.set_admin(conn, email.lower(), is_admin)
    finally:
        await conn.close()


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m api.admin", description=__doc__)
    top.add_argument("action", choices=("grant", "revoke"))
    top.add_argument("email")
    top.add_argument(
        "--database-url",
        default=os.environ.get(DATABASE_URL_ENV, ""),
        help=f"PostgreSQL URL (default: ${DATABASE_URL_ENV})",
    )
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.database_url:
        print(f"set {DATABASE_URL_ENV} or pass --database-url", file=sys.stderr)
        return 2
    if not asyncio.run(set_admin(args.database_url, args.email, args.action == "grant")):
        print(f"no account with the email {args.email}", file=sys.stderr)
        return 1
    print(f"{args.email}: admin {'granted' if args.action == 'grant' else 'revoked'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
