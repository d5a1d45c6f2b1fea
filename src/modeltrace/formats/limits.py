"""Safety limits for parsing hostile model files. Data only, no logic.

Every reader checks what a file claims against these before allocating or recursing, so that a
malformed file costs bounded memory and time and ends in a ResourceLimitError naming the limit.
"""

#: Largest JSON / metadata header accepted (safetensors header, index.json, config.json ...).
MAX_HEADER_BYTES = 100 * 1024 * 1024
#: Longest number (sign, digits, point, exponent) accepted in a JSON header, index or config:
#: 2**64 has 20 digits; a float needs at most ~25 characters to round-trip.
MAX_JSON_NUMBER_CHARS = 64
#: Deepest nesting accepted in any JSON / YAML / pickle structure.
MAX_NESTING_DEPTH = 64
#: Most tensors one model may list.
MAX_TENSORS = 1_000_000
#: Longest tensor name (a flattened checkpoint path); real ones stay under 200 characters.
MAX_TENSOR_NAME_CHARS = 1024
#: All tensor names of one model together (DeepSeek-V3: 90k names, 5.4M characters).
MAX_NAME_CHARS_TOTAL = 64 * 1024**2
#: Most dimensions a tensor may have.
MAX_DIMS = 8
#: Largest element count of one tensor (2**40: a 1 TB fp8 tensor).
MAX_TENSOR_ELEMENTS = 1 << 40
#: Largest single read the readers will materialise in memory at once (dense bytes).
MAX_READ_BYTES = 16 * 1024**3
#: Most entries in a zip archive (PyTorch checkpoints) and largest uncompressed total allowed.
MAX_ZIP_ENTRIES = 1_000_000
MAX_ZIP_UNCOMPRESSED_BYTES = 4 * 1024**4
#: Largest compression ratio tolerated for a zip member (zip-bomb guard; PyTorch stores uncompressed).
MAX_ZIP_COMPRESSION_RATIO = 200
#: Most shards a sharded checkpoint may name.
MAX_SHARDS = 100_000
#: Most metadata key/value pairs (GGUF) and largest array length in metadata.
MAX_METADATA_ENTRIES = 1_000_000
MAX_METADATA_ARRAY_LEN = 10_000_000
#: Symlink hops followed when resolving a path before giving up (symlink loops).
MAX_SYMLINK_HOPS = 40
#: Largest pickle (PyTorch ``data.pkl`` or the legacy main pickle) unpickled, and most opcodes in
#: it. Each opcode pushes at most one object, so this also bounds the unpickler's stack and memo
#: (about 1 GB of Python objects in the worst case; a 100k-tensor checkpoint needs ~2M opcodes).
MAX_PICKLE_BYTES = 64 * 1024**2
MAX_PICKLE_OPCODES = 8_000_000
