"""Model fingerprints: compact, deterministic samples of a model's weights and vocabulary (pure)."""
