"""The whole exception tree of modeltrace.

Every error modeltrace raises on purpose derives from :class:`ModeltraceError`. Families also
subclass a builtin so that callers' existing ``except ValueError`` / ``except ConnectionError``
clauses keep working. The CLI turns these (and only these) into short messages and exit codes;
anything else is a bug and keeps its traceback.

Messages say what failed, the offending value, and the fix where there is one, e.g.
``Cannot read 'model.safetensors': header length 9e18 exceeds file size 1,204.``
"""

from __future__ import annotations

from pathlib import Path


class ModeltraceError(Exception):
    """Root of every error modeltrace raises deliberately."""

    #: Process exit code the CLI uses for this family.
    exit_code: int = 1


# --- reading model files -------------------------------------------------------------------------


class FormatError(ModeltraceError, ValueError):
    """A model file could not be read. Always names the file and the reason."""

    exit_code = 3

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = str(path) if path is not None else None
        self.reason = reason
        where = f"Cannot read '{self.path}': " if self.path else "Cannot read model: "
        super().__init__(where + reason)


class CorruptFileError(FormatError):
    """The file claims to be a known format but its structure is inconsistent or truncated."""


class UnsupportedFormatError(FormatError):
    """The file or folder is not a format modeltrace reads, or uses an unsupported feature."""


class UnsafePickleError(FormatError):
    """A pickle asked for a global outside the tensor-rebuild allow-list; nothing was executed."""

    def __init__(self, path: str | Path | None, global_name: str) -> None:
        self.global_name = global_name
        super().__init__(
            path,
            f"pickle references '{global_name}', which is not a tensor-rebuild function; "
            "refusing to load it (no code was executed).",
        )


class ResourceLimitError(FormatError):
    """The file asks for more memory, depth or entries than modeltrace allows for safety."""


class TensorNotFoundError(ModeltraceError, KeyError):
    """A tensor name that is not in the model was requested."""

    exit_code = 3

    def __init__(self, name: str, path: str | Path | None = None) -> None:
        self.name = name
        self.path = str(path) if path is not None else None
        super().__init__(name)

    def __str__(self) -> str:
        where = f" in '{self.path}'" if self.path else ""
        return f"No tensor named '{self.name}'{where}."


# --- analysis ------------------------------------------------------------------------------------


class FingerprintError(ModeltraceError, ValueError):
    """A fingerprint file is malformed, of an unknown version, or cannot be built for a model."""

    exit_code = 3


class ZooError(ModeltraceError, RuntimeError):
    """The lineage zoo (small test models) could not be built: missing extra, bad folder or recipe."""

    exit_code = 1


# --- black-box probing ---------------------------------------------------------------------------


class ProbeError(ModeltraceError, ConnectionError):
    """An endpoint could not be probed (unreachable, refused, out of budget)."""

    exit_code = 4


class RemoteError(ModeltraceError, ConnectionError):
    """A remote model location (https://, hf://) could not be read: unreachable, refused, or a server
    that misbehaves (ignores Range, sends the wrong bytes). Names the URL and the reason."""

    exit_code = 4

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"Cannot read '{url}': {reason}")


class BudgetExhaustedError(ProbeError):
    """The hard request budget ran out before the probe finished."""


class TokenizerError(ModeltraceError, ValueError):
    """A tokenizer file could not be loaded or registered."""

    exit_code = 3


# --- labels, digests and signatures --------------------------------------------------------------


class LabelError(ModeltraceError, ValueError):
    """A provenance label is malformed or does not validate against its schema."""

    exit_code = 3


class VerificationError(ModeltraceError):
    """A signed label does not verify against the model."""

    exit_code = 2


class VerificationFailedError(VerificationError):
    """The signature holds but the model differs from its label (files or tensors changed, added
    or removed) or a check of the label failed (e.g. ``--lineage``); raised after the full report
    was shown, so the message only counts what the report lists."""

    def __init__(self, differences: int, problems: int) -> None:
        self.differences = differences
        self.problems = problems
        super().__init__(f"verification FAILED: {differences} difference(s), {problems} problem(s)")


class SignatureInvalidError(VerificationError):
    """The signature does not match the payload or the public key."""


# --- licences and registry -----------------------------------------------------------------------


class LicenseError(ModeltraceError, ValueError):
    """A licence file, licence id or lineage file is invalid."""

    exit_code = 3


class RegistryError(ModeltraceError):
    """The local registry under MODELTRACE_HOME cannot be read or written."""

    exit_code = 3


class RegistryNotFoundError(RegistryError, LookupError):
    """No registered model (or edge, or fingerprint) answers to the name or id given."""


class RegistryConflictError(RegistryError):
    """The write clashes with what is registered (e.g. a name taken by another model)."""


class UsageError(ModeltraceError, ValueError):
    """The caller asked for something inconsistent (bad option combination, missing input)."""

    exit_code = 2


class RoyaltyError(ModeltraceError, ValueError):
    """Royalty terms, revenue reports or the ancestry they rest on are invalid (e.g. a cycle)."""

    exit_code = 3
