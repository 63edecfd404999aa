"""The HTTP API: ``create_app`` builds it (``uvicorn services.api.app:create_app --factory``)."""

from services.api.app import create_app

__all__ = ["create_app"]
