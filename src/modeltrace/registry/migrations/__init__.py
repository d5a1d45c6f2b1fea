"""Alembic migrations of the registry schema, run by :func:`modeltrace.registry.migrate.upgrade`."""
