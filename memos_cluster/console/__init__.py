"""The web console: static files (HTML, CSS and plain ES modules, no build step and no CDN)
that the gateway serves at /console on its HTTP port. Every view calls the public HTTP API with
the key the person signed in with, so it shows exactly what that key may see (docs/console.md).

Also where Swagger UI's files for /docs are found: fastapi-offline ships Swagger UI 5, which
reads OpenAPI 3.1; only its static folder is used.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

CONSOLE_DIR = Path(__file__).resolve().parent / "static"
SWAGGER_ASSETS = Path(str(files("fastapi_offline") / "static"))
