"""Numbered migrations: 0001_initial, 0002_..., each with ``down_revision`` the one before."""
