"""GitHub REST endpoints of the fake, one module per area of the API."""

from . import app, checks, issues, pulls, repos  # noqa: F401  (modules register their routes)
from .base import router

__all__ = ["router"]
