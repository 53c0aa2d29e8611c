"""The lab: a deliberately vulnerable FastAPI service that audits its own invariants."""

from toctou.lab.app import create_app, create_app_from_env, prepare_database
from toctou.lab.config import Settings

__all__ = ["Settings", "create_app", "create_app_from_env", "prepare_database"]
