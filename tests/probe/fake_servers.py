"""Fakes that speak the dialects of real OpenAI-compatible servers: llama.cpp, vLLM and SGLang.

Built on :mod:`fake_endpoint` (same token counting with real tokenizers, same chat templates);
what changes is what each server really does, as read in its source:

* **llama.cpp** ``llama-server`` (ggml-org/llama.cpp ``tools/server``): ``POST /tokenize`` reads
  ``content`` (``add_special``, ``with_pieces``) and answers ``{"tokens": []}`` when the field is
  missing; response ids are ``chatcmpl-`` + 32 characters drawn from ``[0-9A-Za-z]``;
  ``/v1/models`` lists the alias (or the model path) with ``owned_by: "llamacpp"``;
  ``system_fingerprint`` is the build (``b<number>-<commit>``); unknown paths get 404
  ``{"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}}``.
* **vLLM** (vllm-project/vllm ``entrypoints/openai``): ``POST /tokenize`` reads ``prompt``
  (``add_special_tokens``) and answers ``{"count", "max_model_len", "tokens"}``; ids are
  ``chatcmpl-`` + 32 hex digits; unknown paths get FastAPI's 404 ``{"detail": "Not Found"}``.
* **SGLang** (sgl-project/sglang ``entrypoints/http_server.py``): like vLLM, and the tokenize
  route is also served as ``/v1/tokenize``.

A server can also be given any encoder (``encoder=``), for tokenizers built in a test.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass

from tests.probe.fake_endpoint import FakeConfig, FakeEndpoint, _Handler

HEX = "0123456789abcdef"
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
LLAMA_CPP_404 = {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}}
FASTAPI_404 = {"detail": "Not Found"}


@dataclass
class Dialect:
    name: str
    tokenize_paths: tuple[str, ...]
    tokenize_field: str
    missing_field_answer: dict | None  # type: ignore[type-arg]  # 200 body when the field is absent
    not_found: dict  # type: ignore[type-arg]
    id_alphabet: str
    id_length: int


DIALECTS = {
    "llama.cpp": Dialect("llama.cpp", ("/tokenize",), "content", {"tokens": []}, LLAMA_CPP_404, BASE62, 32),
    "vllm": Dialect("vllm", ("/tokenize",), "prompt", None, FASTAPI_404, HEX, 32),
    "sglang": Dialect("sglang", ("/tokenize", "/v1/tokenize"), "prompt", None, FASTAPI_404, HEX, 32),
}  # fmt: skip


class ServerFake(FakeEndpoint):
    """``with ServerFake("llama.cpp", family="qwen3", alias=...) as server: server.url``."""

    def __init__(
        self,
        dialect: str,
        *,
        family: str = "qwen3",
        alias: str = "model",
        encoder: Callable[[str], list[int]] | None = None,
        id_alphabet: str | None = None,
        tokenize_paths: tuple[str, ...] | None = None,
    ) -> None:
        # A custom encoder replaces the family's package tokenizer (length_estimate skips loading it).
        super().__init__(FakeConfig(family=family, public_name=alias, length_estimate=encoder is not None))
        base = DIALECTS[dialect]
        self.dialect = Dialect(
            base.name, tokenize_paths or base.tokenize_paths, base.tokenize_field, base.missing_field_answer,
            base.not_found, id_alphabet or base.id_alphabet, base.id_length,
        )  # fmt: skip
        self.custom_encoder = encoder
        if encoder is not None:
            self._encoder = encoder
        self.response_ids: list[str] = []
        self._random = random.Random(f"{dialect}:{alias}")
        self._server.RequestHandlerClass = type("DialectHandler", (_DialectHandler,), {"endpoint": self})

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def prompt_tokens(self, user: str) -> int:
        if self.custom_encoder is None:
            return super().prompt_tokens(user)
        # ChatML with a hidden system prompt, specials one token each (SmolLM2 and Kimi use ChatML-like turns)
        text = [f"system\n{self.config.system_prompt}", "\n", f"user\n{user}", "\n", "assistant\n"]
        return 5 + sum(len(self.custom_encoder(part)) for part in text)

    def new_id(self) -> str:
        with self._lock:
            nonce = "".join(
                self._random.choice(self.dialect.id_alphabet) for _ in range(self.dialect.id_length)
            )
            self.response_ids.append(nonce)
        return "chatcmpl-" + nonce


class _DialectHandler(_Handler):
    endpoint: ServerFake

    def _json(self, status: int, body: dict) -> None:  # type: ignore[type-arg]
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json; charset=utf-8")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if not self._authorised():
            return
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._json(200, self._models())
        else:
            self._json(404, self.endpoint.dialect.not_found)

    def _models(self) -> dict:  # type: ignore[type-arg]
        alias = self.endpoint.config.public_name
        if self.endpoint.dialect.name == "llama.cpp":
            entry = {"id": alias, "object": "model", "created": 1767225600, "owned_by": "llamacpp",
                     "meta": {"vocab_type": 2, "n_vocab": 49152, "n_ctx_train": 8192}}  # fmt: skip
            return {"models": [{"name": alias, "model": alias}], "object": "list", "data": [entry]}
        return {
            "object": "list",
            "data": [{"id": alias, "object": "model", "owned_by": self.endpoint.dialect.name}],
        }

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        if not self._authorised():
            return
        body = json.loads(raw or b"{}")
        path = self.path.rstrip("/")
        dialect = self.endpoint.dialect
        if path in ("/v1/chat/completions", "/chat/completions"):
            self._chat_reply(body)
        elif path in dialect.tokenize_paths:
            self._tokenize(body)
        elif path in ("/v1/completions", "/completions"):
            self._json(
                200, {"id": self.endpoint.new_id(), "object": "text_completion", "choices": [{"text": ""}]}
            )
        else:
            self._json(404, dialect.not_found)

    def _tokenize(self, body: dict) -> None:  # type: ignore[type-arg]
        dialect = self.endpoint.dialect
        text = body.get(dialect.tokenize_field)
        if not isinstance(text, str):
            if dialect.missing_field_answer is not None:
                self._json(200, dialect.missing_field_answer)
            else:  # pydantic validation error, mapped to 400 by vLLM / SGLang
                self._json(400, {"object": "error", "message": f"Field required: {dialect.tokenize_field}"})
            return
        ids = self.endpoint.token_ids(text)
        if dialect.name == "llama.cpp":
            self._json(200, {"tokens": ids})
        else:
            self._json(200, {"tokens": ids, "count": len(ids), "max_model_len": 32768})

    def _chat_reply(self, body: dict) -> None:  # type: ignore[type-arg]
        endpoint = self.endpoint
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            self._json(400, {"error": {"code": 400, "message": "Expected 'messages' to be an array",
                                       "type": "invalid_request_error"}})  # fmt: skip
            return
        user = str(messages[-1].get("content", ""))
        reply = {
            "choices": [{"finish_reason": "length", "index": 0,
                         "message": {"role": "assistant", "content": endpoint.greedy(user)}}],
            "created": 1767225600,
            "model": endpoint.config.public_name,
            "object": "chat.completion",
            "usage": {"completion_tokens": 1, "prompt_tokens": endpoint.prompt_tokens(user),
                      "total_tokens": 1 + endpoint.prompt_tokens(user)},
            "id": endpoint.new_id(),
        }  # fmt: skip
        if endpoint.dialect.name == "llama.cpp":
            reply["system_fingerprint"] = "b4589-1a2b3c4d"
        self._json(200, reply)
