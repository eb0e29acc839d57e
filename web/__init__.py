"""The Starlette app, its endpoints, pages, QR rendering and the `scanbook` CLI."""
