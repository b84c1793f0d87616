"""A scripted stand-in model: a TEST DOUBLE, never the feature, for screenshots and tests that need a fixed token
stream (the GUI tests, and the HTTP server's function-call round trip until the demo model learns tools).

It implements the part of :class:`engine.model.Model` that :class:`engine.generator.Generator` uses and "predicts"
the next token of a fixed harmony script through one-hot logits, so everything downstream is the real pipeline:
the generator's sampling and cancel checks, the harmony stream parser, the engine thread and the event queue.

A script is a reply (:func:`harmony_reply`) or a tool call (:func:`harmony_tool_call`). Which script a request
replays is the next one in turn, or, with ``choose``, picked from its prompt: :meth:`ScriptedModel.tool_loop` calls
a tool first and answers once the prompt holds the tool's result (:func:`ends_with_tool_result`).
:meth:`ScriptedModel.preferring` follows whichever of its scripts the tokens written so far still match, the first
most strongly: a model that would rather answer but can be held to a call (engine/channel_guard.py);
:meth:`ScriptedModel.preferring_by_prompt` does that within a group of scripts picked from each request's prompt
(a model that thinks before each round of a tool loop, and can be held to a thinking budget in every round).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import torch
from openai_harmony import Message, Role

from gpt_oss_desktop.engine.vocab import CALL, CHANNEL, END, MESSAGE, RETURN, START, get_encoding

_VOCAB: Final = 201088
_FILLER: Final = 13  # a plain-text token emitted once a script runs out (the generator then stops on max_tokens)


def harmony_reply(thought: str, answer: str) -> list[int]:
    """Completion tokens of an assistant reply: reasoning on ``analysis``, then the answer on ``final``."""
    enc = get_encoding()
    return [
        CHANNEL, *enc.encode("analysis"), MESSAGE, *enc.encode(thought), END,
        START, *enc.encode("assistant"), CHANNEL, *enc.encode("final"), MESSAGE, *enc.encode(answer), RETURN,
    ]  # fmt: skip


def harmony_tool_call(
    thought: str,
    recipient: str,
    arguments_json: str,
    *,
    channel: str = "commentary",
    content_type: str | None = "<|constrain|>json",
) -> list[int]:
    """Completion tokens of a tool call: reasoning on ``analysis``, then the call, ending with ``<|call|>``.

    ``<|channel|>analysis<|message|>{thought}<|end|><|start|>assistant to={recipient}<|channel|>commentary
    <|constrain|>json<|message|>{arguments_json}<|call|>``, built by openai_harmony's own renderer, so the header
    order (recipient before channel) is the one the next turn's prompt re-renders: the KV cache prefix then matches.
    """
    enc = get_encoding()
    call = Message.from_role_and_content(Role.ASSISTANT, arguments_json).with_channel(channel).with_recipient(recipient)
    if content_type is not None:
        call = call.with_content_type(content_type)
    analysis = Message.from_role_and_content(Role.ASSISTANT, thought).with_channel("analysis")
    # [2:]: the prompt already ends with <|start|>assistant, which begins the first rendered message.
    return [*enc.render(analysis)[2:], *enc.render(call)]


def model_written_tool_call(thought: str, function: str, arguments_json: str) -> list[int]:
    """Completion tokens of a call as gpt-oss itself writes one: the recipient after the channel,
    ``<|channel|>analysis<|message|>{thought}<|end|><|start|>assistant<|channel|>commentary to=functions.{function}
    <|constrain|>json<|message|>{arguments_json}<|call|>`` (harmony reads both orders as the same call)."""
    enc = get_encoding()
    header = enc.encode(f"commentary to=functions.{function} <|constrain|>json", allowed_special="all")
    return [
        CHANNEL, *enc.encode("analysis"), MESSAGE, *enc.encode(thought), END,
        START, *enc.encode("assistant"), CHANNEL, *header, MESSAGE, *enc.encode(arguments_json), CALL,
    ]  # fmt: skip


def ends_with_tool_result(prompt: Sequence[int]) -> bool:
    """Whether the last message before the prompt's closing ``<|start|>assistant`` was written by a tool
    (``<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>…<|end|>``)."""
    ids = list(prompt)
    if len(ids) >= 2 and ids[-2] == START:
        ids = ids[:-2]
    starts = [i for i, token in enumerate(ids) if token == START]
    if not starts:
        return False
    header: list[int] = []
    for token in ids[starts[-1] + 1 :]:
        if token in (CHANNEL, MESSAGE):
            break
        header.append(token)
    author = get_encoding().decode(header).split(" ", 1)[0]
    return author not in {"system", "developer", "user", "assistant", ""}


ScriptChooser = Callable[[Sequence[int]], int]
"""Picks the script (an index into ``scripts``) for a request from its whole prompt."""


@dataclass(frozen=True, slots=True)
class _Config:
    vocab_size: int = _VOCAB
    max_context_length: int = 8192


class _Cache:
    """Remembers token ids per slot (and which script each slot replays); the generators need nothing else."""

    def __init__(self, batch_size: int, capacity: int) -> None:
        self.capacity = capacity
        self._tokens: list[list[int]] = [[] for _ in range(batch_size)]
        self.script: list[int] = [0] * batch_size  # index into ScriptedModel's scripts, per slot
        self.prompt_end: list[int] = [0] * batch_size  # slot length after its last prefill

    def length(self, slot: int) -> int:
        return len(self._tokens[slot])

    def tokens(self, slot: int) -> list[int]:
        return list(self._tokens[slot])

    def truncate(self, slot: int, n: int) -> int:
        del self._tokens[slot][max(0, n) :]
        return len(self._tokens[slot])

    def append(self, slot: int, ids: Sequence[int]) -> None:
        self._tokens[slot].extend(ids)


class ScriptedModel:
    """Replays one script per request (cycling through ``scripts``, or as ``choose`` picks), one token per decode step.

    Each prefill starts the next script, so a batch of three (an effort comparison: low, medium, high in that order)
    replays the next three scripts, one per cache slot, and every decode call advances all its slots together.

    Args:
        scripts: completion token lists, e.g. from :func:`harmony_reply` or :func:`harmony_tool_call`.
        choose: if set, picks each request's script from its prompt instead of taking the next in turn.
        token_seconds: simulated compute per decode call (a sleep, which releases the GIL as real kernels do; one
            sleep per call whatever the batch size, as a batch shares the weight reads).
        hold_after: if set with ``release``, the decode of this step waits until ``release`` is set; used to
            freeze an answer mid-stream for a screenshot.
    """

    def __init__(
        self,
        scripts: Sequence[Sequence[int]],
        *,
        choose: ScriptChooser | None = None,
        token_seconds: float = 0.0,
        hold_after: int | None = None,
        release: threading.Event | None = None,
    ) -> None:
        self.config = _Config()
        self.device = torch.device("cpu")
        self._scripts = [list(s) for s in scripts]
        self._choose = choose
        self._token_seconds = token_seconds
        self._hold_after = hold_after
        self._release = release
        self._request = -1
        self.steps = 0  # tokens "predicted" in total (read from other threads by tests; an int is atomic)
        self.last_prompt: list[int] = []
        self.prompts: list[list[int]] = []  # every prefilled prompt (whole slot contents), in order
        self.decode_batches: list[int] = []  # slots per decode call, in order
        self._ranked = False  # see preferring()
        self._groups: list[range] = []  # see preferring_by_prompt(): indexes into _scripts, one range per group

    @classmethod
    def tool_loop(cls, call: Sequence[int], answer: Sequence[int], *, token_seconds: float = 0.0) -> ScriptedModel:
        """A model that replays ``call`` (a :func:`harmony_tool_call`) until the prompt ends with a tool's result,
        then ``answer`` (a :func:`harmony_reply`): call, result, final answer."""
        return cls(
            [call, answer],
            choose=lambda prompt: 1 if ends_with_tool_result(prompt) else 0,
            token_seconds=token_seconds,
        )

    @classmethod
    def preferring(cls, *scripts: Sequence[int]) -> ScriptedModel:
        """A model whose every prediction is the next token of each script the completion so far still follows,
        earlier scripts with higher logits (30, 20, 10, ...); once none matches, the filler token."""
        model = cls(scripts)
        model._ranked = True
        return model

    @classmethod
    def preferring_by_prompt(cls, groups: Sequence[Sequence[Sequence[int]]], choose: ScriptChooser) -> ScriptedModel:
        """A model that predicts as :meth:`preferring` does, among the scripts of one of ``groups``: the one
        ``choose`` picks for each request from its prompt (its index, taken modulo the number of groups)."""
        if not groups or not all(groups):
            raise ValueError("every group needs at least one script")
        model = cls([script for group in groups for script in group], choose=choose)
        model._ranked = True
        start = 0
        for group in groups:
            model._groups.append(range(start, start + len(group)))
            start += len(group)
        return model

    def new_cache(self, batch_size: int = 1, max_context: int | None = None) -> _Cache:
        return _Cache(batch_size, max_context or self.config.max_context_length)

    def prefill(self, token_ids: Sequence[int], cache: _Cache, slot: int = 0) -> torch.Tensor:
        cache.append(slot, token_ids)
        self.last_prompt = cache.tokens(slot)
        self.prompts.append(self.last_prompt)
        self._request += 1
        if self._choose is not None:
            cache.script[slot] = self._choose(self.last_prompt) % len(self._groups or self._scripts)
        else:
            cache.script[slot] = self._request % len(self._scripts)
        cache.prompt_end[slot] = cache.length(slot)
        return self._logits(cache, slot)

    def decode(self, token_ids: Sequence[int], cache: _Cache, slots: Sequence[int]) -> torch.Tensor:
        for slot, token in zip(slots, token_ids, strict=True):
            cache.append(slot, [token])
        self.decode_batches.append(len(slots))
        steps = [cache.length(slot) - cache.prompt_end[slot] for slot in slots]
        if self._hold_after is not None and self._release is not None and self._hold_after in steps:
            self._release.wait()
        if self._token_seconds:
            time.sleep(self._token_seconds)
        return torch.stack([self._logits(cache, slot) for slot in slots])

    def _logits(self, cache: _Cache, slot: int) -> torch.Tensor:
        self.steps += 1
        step = cache.length(slot) - cache.prompt_end[slot]
        logits = torch.full((self.config.vocab_size,), -30.0)
        if self._ranked:
            written = cache.tokens(slot)[cache.prompt_end[slot] :]
            scripts = [self._scripts[i] for i in self._groups[cache.script[slot]]] if self._groups else self._scripts
            votes = [s[step] for s in scripts if len(s) > step and s[:step] == written]
            for rank, token in reversed(list(enumerate(votes))):  # the first script's vote is written last, so wins
                logits[token] = 30.0 - 10.0 * rank
            if not votes:
                logits[_FILLER] = 30.0
            return logits
        script = self._scripts[cache.script[slot]]
        token = script[step] if step < len(script) else _FILLER
        logits[token] = 30.0
        return logits
