"""Licence knowledge base (data/*.yaml, no logic) and the engine that walks a model's ancestry."""
