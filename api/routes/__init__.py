"""One router per resource, mounted under /api/v1 by api.main."""

from typing import Any

from api.models import ErrorOut

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut} for status in (400, 401, 403, 404, 409, 413, 422, 429)
}
