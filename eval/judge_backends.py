"""Judge backends for `pite.eval.judge`: an OpenAI-compatible chat-completions endpoint, or a local transformers LM.

`OpenAIChatJudge` speaks `POST {base_url}/chat/completions` with the standard library only (urllib), so it works with
OpenAI, Azure-style proxies, vLLM, llama.cpp or any server of that protocol. The API key is read from an environment
variable (`OPENAI_API_KEY` by default) and never stored; if the variable is unset no Authorization header is sent
(local servers need none). Transient failures (connection errors, timeouts, HTTP 408/409/429/5xx) are retried with
exponential backoff (`backoff * 2**attempt` seconds, capped by `max_backoff`, or the server's `Retry-After`); other
HTTP errors and malformed responses raise `JudgeRequestError` at once, naming the status and the start of the body.

`TransformersJudge` runs a local causal LM with greedy decoding (temperature recorded as 0.0); it formats the messages
with the tokenizer's chat template when there is one, else as plain paragraphs.

Usage:
    >>> judge = OpenAIChatJudge(
    ...     "http://127.0.0.1:8000/v1", "Qwen2.5-7B-Instruct", api_key_env="VLLM_KEY"
    ... )  # doctest: +SKIP
    >>> judge = TransformersJudge.from_pretrained("path/to/judge-model")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class JudgeRequestError(RuntimeError):
    """The judge endpoint failed for good (after retries, or with an error that retrying cannot fix)."""


class OpenAIChatJudge:
    """A judge behind an OpenAI-compatible `/chat/completions` endpoint."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        temperature: float = 0.0,
        max_tokens: int | None = 64,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        seed: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """
        Args:
            base_url: the API root, e.g. "https://api.openai.com/v1" (the request goes to
                `{base_url}/chat/completions`).
            model: the judge model's name as the endpoint knows it; recorded with every judgment.
            api_key_env: name of the environment variable holding the API key.
            temperature: sampling temperature sent with every request (0 for the most reproducible judge).
            max_tokens: reply length limit (a well-behaved reply is about 20 tokens); None sends none.
            timeout: seconds to wait for one response.
            max_retries: retries after the first attempt for transient failures.
            backoff, max_backoff: exponential backoff base and cap, seconds.
            seed: sent as `seed` when given (endpoints that support it make sampling repeatable).
            sleep: the waiting function (tests pass a fake one).
        """
        if not base_url or not model:
            raise ValueError("base_url and model are required")
        if max_retries < 0 or timeout <= 0:
            raise ValueError(f"need max_retries >= 0 and timeout > 0, got {max_retries} and {timeout}")
        self.base_url = base_url.rstrip("/")
        self.model_name = model
        self.api_key_env = api_key_env
        self.temperature = float(temperature)
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.seed = seed
        self._sleep = sleep

    def _request(self, messages: list[dict[str, str]]) -> urllib.request.Request:
        body = {"model": self.model_name, "messages": messages, "temperature": self.temperature}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.seed is not None:
            body["seed"] = self.seed
        headers = {"Content-Type": "application/json"}
        api_key = os.environ.get(self.api_key_env)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        return urllib.request.Request(
            f"{self.base_url}/chat/completions", data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
        )

    def _wait_time(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(float(retry_after), self.max_backoff)
            except ValueError:
                pass  # an HTTP date: fall back to our own schedule
        return min(self.backoff * 2**attempt, self.max_backoff)

    def complete(self, messages: list[dict[str, str]]) -> str:
        """The content of the first choice's message; retried as described in the module docstring."""
        url = f"{self.base_url}/chat/completions"
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                with urllib.request.urlopen(self._request(messages), timeout=self.timeout) as response:
                    payload = response.read()
                return _reply_content(payload, url)
            except urllib.error.HTTPError as error:
                body = error.read()[:300].decode("utf-8", errors="replace")
                if error.code not in RETRYABLE_STATUS:
                    raise JudgeRequestError(f"{url}: HTTP {error.code}: {body}") from error
                failure = f"HTTP {error.code}: {body}"
                retry_after = error.headers.get("Retry-After") if error.headers else None
            except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as error:
                failure = f"{type(error).__name__}: {getattr(error, 'reason', error)}"
            if attempt < self.max_retries:
                self._sleep(self._wait_time(attempt, retry_after))
        raise JudgeRequestError(f"{url}: giving up after {self.max_retries + 1} attempts; last failure: {failure}")


def _reply_content(payload: bytes, url: str) -> str:
    try:
        content = json.loads(payload)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise JudgeRequestError(
            f"{url}: not a chat-completions response ({type(error).__name__}): {payload[:300]!r}"
        ) from error
    if not isinstance(content, str):
        raise JudgeRequestError(f"{url}: message content is not a string: {content!r}")
    return content


class TransformersJudge:
    """A local causal LM as judge, greedy decoding."""

    temperature = 0.0

    def __init__(self, model, tokenizer, model_name: str | None = None, max_new_tokens: int = 64) -> None:
        """
        Args:
            model: a transformers causal LM (`generate` with `do_sample=False` is used).
            tokenizer: its tokenizer.
            model_name: name recorded with the judgments and used in the cache key; defaults to the model's
                `name_or_path`. Required if that is empty.
            max_new_tokens: reply length limit.
        """
        name = model_name or getattr(model, "name_or_path", "") or ""
        if not name:
            raise ValueError("give model_name: the model has no name_or_path, and judgments must record the judge")
        self.model = model
        self.tokenizer = tokenizer
        self.model_name = str(name)
        self.max_new_tokens = max_new_tokens

    @classmethod
    def from_pretrained(cls, path: str | Path, max_new_tokens: int = 64, **model_kwargs) -> TransformersJudge:
        """Load model and tokenizer from a local folder or Hub id (`model_kwargs` go to `from_pretrained`)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, **model_kwargs)
        return cls(model.eval(), tokenizer, str(path), max_new_tokens)

    def _prompt_ids(self, messages: list[dict[str, str]]):
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
        text = "\n\n".join(message["content"] for message in messages) + "\n\n"
        return self.tokenizer(text, return_tensors="pt")

    def complete(self, messages: list[dict[str, str]]) -> str:
        """The model's greedy continuation of the formatted messages, special tokens removed."""
        import torch

        inputs = self._prompt_ids(messages)
        device = next(self.model.parameters()).device
        inputs = {k: v.to(device) for k, v in inputs.items() if k in ("input_ids", "attention_mask")}
        pad_token_id = self.tokenizer.pad_token_id
        if pad_token_id is None:
            pad_token_id = self.tokenizer.eos_token_id
        with torch.no_grad():
            output = self.model.generate(
                **inputs, do_sample=False, max_new_tokens=self.max_new_tokens, pad_token_id=pad_token_id
            )
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        return self.tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
