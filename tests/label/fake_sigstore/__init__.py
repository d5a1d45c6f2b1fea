"""A local, fake Sigstore deployment for tests: see servers.py (start here), ca.py and rekor.py."""

from .servers import FAKE_ISSUER, FakeSigstore

__all__ = ["FAKE_ISSUER", "FakeSigstore"]
