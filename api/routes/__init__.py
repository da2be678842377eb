"""One router per resource, mounted under /api/v1 by api.main. Each route parses, calls
api.services and renders; no route module imports another."""
