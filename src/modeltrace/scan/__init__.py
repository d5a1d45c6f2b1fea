"""Scanning many models into the registry: which sources a command line names, how each is pinned
to a revision, and the executors (a local process pool, Ray tasks) that fingerprint them in parallel.

The facade (:mod:`modeltrace.api._scan`) drives these: it expands the sources, skips those already
registered, hands the rest to an executor whose workers fingerprint them, and stores each result
in the registry itself (one writer). See docs/scale.md, "Scanning a hub".
"""
