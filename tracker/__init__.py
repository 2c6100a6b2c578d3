"""ashiato's service: HTTP collector and API, storage, CLI."""

__version__ = "0.1.0"
