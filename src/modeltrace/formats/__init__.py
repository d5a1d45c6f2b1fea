"""Readers for model files: safetensors, PyTorch checkpoints (no pickle execution), GGUF, ONNX, HF folders."""
