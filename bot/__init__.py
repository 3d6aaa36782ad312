"""migration-safe: reviews Django migrations before they hurt PostgreSQL."""
__version__ = "0.1.0"
