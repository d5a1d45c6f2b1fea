"""A local model folder as a reference in the behavioural test: greedy next token, computed here.

``modeltrace probe URL --reference ./my-model`` compares the endpoint's greedy answers with what
the local weights answer. This module opens the folder, refuses models too large for a CPU
numpy forward pass (:data:`MAX_WEIGHT_BYTES`), builds the prompt the way a chat server would,
and runs :class:`~modeltrace.probe.decoder.Decoder`.

Unlike the rest of ``probe`` (which only talks HTTP), this module imports
:mod:`modeltrace.formats`: the weights are hostile input and ``formats`` is the one place that
reads model files defensively (bounds-checked, no pickle execution, every supported format).

**Prompt format.** An OpenAI-compatible server renders ``/v1/chat/completions`` messages with
the model's chat template and tokenizes the result without adding special tokens again. The
same is done here when the folder has a template (``chat_template`` in
``tokenizer_config.json``, or ``chat_template.jinja``), rendered with Jinja2 in a sandbox as
Hugging Face ``apply_chat_template`` does (one user message, ``add_generation_prompt=True``, no
system prompt). A folder without a template (a base model) gets the raw prompt text, encoded with
the tokenizer's own special tokens (e.g. BOS). The answer is the greedy token decoded in context
(text of prompt + token minus text of prompt, special tokens skipped), as servers stream it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from modeltrace.errors import ResourceLimitError, TokenizerError, UnsupportedFormatError
from modeltrace.formats import open_model
from modeltrace.formats.hf_folder import read_json_if_present
from modeltrace.probe.decoder import Decoder, parse_config, tensor_shapes

#: Largest model accepted, in bytes of float32 weights (the forward pass holds them all in RAM):
#: 2 GiB = about 537M parameters, e.g. Qwen2.5-0.5B; Qwen3-0.6B (596M) is over.
MAX_WEIGHT_BYTES = 2 * 1024**3

PROMPT_FORMAT_CHAT = "chat-template"
PROMPT_FORMAT_RAW = "raw"


@dataclass
class LocalReference:
    """A loaded local model: decoder, tokenizer and the prompt format it uses."""

    path: Path
    decoder: Decoder
    tokenizer: Any  # tokenizers.Tokenizer
    prompt_format: str
    _render: Callable[[str], str] | None = None

    def prompt_ids(self, prompt: str) -> list[int]:
        """Token ids the model sees for one user message (see the module docstring)."""
        if self._render is None:
            return list(self.tokenizer.encode(prompt, add_special_tokens=True).ids)
        return list(self.tokenizer.encode(self._render(prompt), add_special_tokens=False).ids)

    def greedy_next_token(self, prompt: str) -> str:
        """The greedy next token as text, decoded in the context of the prompt."""
        ids = self.prompt_ids(prompt)
        if not ids:
            raise TokenizerError(
                f"The prompt {prompt!r:.60} encodes to no tokens with {self.path}/tokenizer.json."
            )
        token = self.decoder.greedy_next_token(ids)
        before = self.tokenizer.decode(ids, skip_special_tokens=True)
        after = self.tokenizer.decode([*ids, token], skip_special_tokens=True)
        return after[len(before) :] if after.startswith(before) else self.tokenizer.decode([token])


def load_local_reference(path: str | Path, max_weight_bytes: int = MAX_WEIGHT_BYTES) -> LocalReference:
    """Open a Hugging Face-style decoder folder (config.json, weights, tokenizer.json)."""
    with open_model(path) as source:
        folder = source.path if source.path.is_dir() else source.path.parent
        if source.config is None or source.weights is None:
            raise UnsupportedFormatError(
                folder, "a local reference needs a model folder with config.json and weight files"
            )
        config = parse_config(source.config, folder / "config.json")
        required, optional = tensor_shapes(config)
        stored = source.weights.tensors()
        missing = [name for name in required if name not in stored]
        if missing:
            raise UnsupportedFormatError(
                folder,
                f"{len(missing)} tensor(s) the {config.model_type} forward pass needs are missing, e.g. "
                f"'{missing[0]}' (Hugging Face tensor names are expected)",
            )
        wanted = {**required, **{name: shape for name, shape in optional.items() if name in stored}}
        for name, shape in wanted.items():
            if tuple(stored[name].shape) != shape:
                raise UnsupportedFormatError(
                    folder, f"tensor '{name}' has shape {stored[name].shape}, config.json implies {shape}"
                )
        float32_bytes = 4 * sum(stored[name].numel for name in wanted)
        if float32_bytes > max_weight_bytes:
            raise ResourceLimitError(
                folder,
                f"the local forward pass holds weights as float32 in memory: {float32_bytes / 1e9:.2f} GB "
                f"is over the limit of {max_weight_bytes / 1e9:.2f} GB. Serve the model behind an "
                "OpenAI-compatible server (e.g. vllm serve) and pass its URL as --reference.",
            )
        tensors = {name: np.asarray(source.weights.read(name), dtype=np.float32) for name in wanted}
    tokenizer = _load_tokenizer(folder)
    if tokenizer.get_vocab_size(with_added_tokens=True) > config.vocab_size:
        raise TokenizerError(
            f"'{folder}/tokenizer.json' has {tokenizer.get_vocab_size(with_added_tokens=True):,} tokens but "
            f"config.json says vocab_size {config.vocab_size:,}; the tokenizer does not belong to these "
            "weights."
        )
    render = _chat_template_renderer(folder)
    return LocalReference(
        path=folder,
        decoder=Decoder(config, tensors),
        tokenizer=tokenizer,
        prompt_format=PROMPT_FORMAT_RAW if render is None else PROMPT_FORMAT_CHAT,
        _render=render,
    )


def greedy_answers(reference: LocalReference, prompts: Sequence[str]) -> list[str | None]:
    """Greedy next token for each prompt (never None: a local model always answers)."""
    return [reference.greedy_next_token(prompt) for prompt in prompts]


def _load_tokenizer(folder: Path) -> Any:
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    if not path.is_file():
        raise TokenizerError(
            f"'{folder}' has no tokenizer.json; a local reference needs the Hugging Face tokenizer file."
        )
    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:  # the Rust loader raises a bare Exception on malformed files
        raise TokenizerError(f"Cannot load '{path}': {error}") from error


def _chat_template_renderer(folder: Path) -> Callable[[str], str] | None:
    """A function rendering one user message with the folder's chat template, or None without one."""
    tokenizer_config = read_json_if_present(folder / "tokenizer_config.json") or {}
    template = tokenizer_config.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": "default", "template": ...}, ...]
        named = {item.get("name"): item.get("template") for item in template if isinstance(item, dict)}
        template = named.get("default")
    jinja_file = folder / "chat_template.jinja"
    if not isinstance(template, str) and jinja_file.is_file():
        template = jinja_file.read_text(encoding="utf-8")
    if not isinstance(template, str) or not template.strip():
        return None
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    def tojson(value: Any, indent: int | None = None, **_: Any) -> str:
        return json.dumps(value, ensure_ascii=False, indent=indent)

    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    environment.filters["tojson"] = tojson
    environment.globals["raise_exception"] = raise_exception
    environment.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        compiled = environment.from_string(template)
    except TemplateError as error:
        raise TokenizerError(f"The chat template in '{folder}' does not compile: {error}") from error
    specials = {
        key: _token_text(tokenizer_config.get(key))
        for key in ("bos_token", "eos_token", "unk_token", "pad_token")
    }

    def render(prompt: str) -> str:
        try:
            return compiled.render(
                messages=[{"role": "user", "content": prompt}], add_generation_prompt=True, **specials
            )
        except TemplateError as error:
            raise TokenizerError(f"The chat template in '{folder}' failed to render: {error}") from error

    return render


def _token_text(value: Any) -> str:
    """Special tokens in tokenizer_config.json are strings or {"content": ...} objects."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else ""
