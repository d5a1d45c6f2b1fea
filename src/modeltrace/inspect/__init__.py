"""The L1 architecture card: what a model is, from its tensor listing, its config.json, or both.

A layer beside :mod:`modeltrace.fingerprint`: it reads what :mod:`modeltrace.formats` lists (names,
shapes, dtypes, config, GGUF metadata) and never tensor data. ``card`` builds the card, ``dimensions``
reads sizes, ``layouts`` / ``field_layout`` lay out the tensors a config implies, ``param_count``
counts them, ``towers`` splits off multimodal towers, ``config_check`` confronts config and weights,
``config_keys`` names every config key once, and ``describe`` gives the card of an opened model as
``inspect`` prints it and labels carry it. Fingerprint code may import this package; never the reverse.
"""
