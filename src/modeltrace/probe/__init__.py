"""Black-box probing of OpenAI-compatible endpoints: identity hints and tokenizer identification."""
