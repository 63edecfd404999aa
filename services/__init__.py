"""Application services, the HTTP API, the CLI and the composition root."""
