"""Print the api's OpenAPI document (for `npm run gen:api`): the app is built, never started,
so no Redis or PostgreSQL is needed."""

import json
import os
import sys

# create_app validates its settings; the secrets are never used since nothing is served.
os.environ.setdefault("EXCHANGE_JWT_SECRET", "openapi-generation-only-" + "x" * 16)
os.environ.setdefault("EXCHANGE_API_SECRETS_KEY", "openapi-generation-only-" + "x" * 16)

from api.main import create_app  # noqa: E402

json.dump(create_app().openapi(), sys.stdout, indent=1, sort_keys=True)
