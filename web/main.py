"""The ASGI app for uvicorn and Procfile runners: `uvicorn web.main:app`."""

from web.app import create_app

app = create_app()
