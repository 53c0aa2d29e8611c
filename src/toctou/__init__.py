"""toctou: find, prove and fix race conditions in web APIs."""

__version__ = "0.1.0"

__all__ = ["__version__"]
