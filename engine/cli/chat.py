"""``python -m gpt_oss_desktop.engine chat --model DIR ["prompt"]``: chat with a model in the terminal.

``chat --server URL --api-model NAME`` chats the same way with a model on an OpenAI-compatible server
(engine/cli/remote_chat.py).

With a prompt: one answer, then exit. Without: an interactive multi-turn chat (history kept, earlier reasoning
pruned, the KV cache reused across turns). Reasoning streams dimmed when stdout is a terminal, then the answer,
then a stats line. Ctrl-C during an answer cancels it; Ctrl-C or Ctrl-D at the prompt exits.
"""

from __future__ import annotations

import argparse
import queue
import re
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from gpt_oss_desktop.engine.cli import remote_chat
from gpt_oss_desktop.engine.cli.argument_types import (
    context_value,
    max_tokens_value,
    seed_value,
    temperature_value,
    thinking_budget_value,
    top_k_value,
    top_p_value,
)
from gpt_oss_desktop.engine.cli.conversation_loop import converse
from gpt_oss_desktop.engine.errors import CheckpointError, EngineError, GenerationError, MissingFilesError
from gpt_oss_desktop.engine.events import Delta, Done, Event, ToolCall
from gpt_oss_desktop.engine.generator import Generator
from gpt_oss_desktop.engine.harmony import ChatSession, ReasoningEffort
from gpt_oss_desktop.engine.input_files import read_json
from gpt_oss_desktop.engine.response_format import ResponseFormat
from gpt_oss_desktop.engine.sampling import DEFAULT_MAX_TOKENS, SamplingParams
from gpt_oss_desktop.engine.weights_mode import DEFAULT_WEIGHTS, WEIGHTS_MODES

_DIM = "\x1b[2m"
_RESET = "\x1b[0m"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "chat",
        help="chat with a model (one prompt, or interactive without one)",
        description="Chat with a gpt-oss model. Without a prompt, runs an interactive multi-turn chat.",
    )
    p.add_argument("prompt", nargs="?", default=None, help="one message to answer (omit for an interactive chat)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--model", help="checkpoint folder, or demo (the built-in toy model)")
    where.add_argument("--server", metavar="URL", help="an OpenAI-compatible server (http://host:8000/v1) instead")
    remote_chat.add_arguments(p)
    p.add_argument("--effort", choices=[e.value for e in ReasoningEffort], default="medium", help="reasoning effort")
    p.add_argument("--temperature", type=temperature_value, default=1.0, help="0 = greedy (default: 1.0)")
    p.add_argument("--top-p", type=top_p_value, default=1.0, help="nucleus sampling mass (default: 1.0 = off)")
    p.add_argument("--top-k", type=top_k_value, default=0, help="keep the k most likely tokens (default: 0 = off)")
    p.add_argument(
        "--max-tokens",
        type=max_tokens_value,
        default=DEFAULT_MAX_TOKENS,
        help=f"per answer (default: {DEFAULT_MAX_TOKENS})",
    )
    p.add_argument("--seed", type=seed_value, default=None, help="sampling seed for reproducible answers")
    p.add_argument(
        "--thinking-budget",
        type=thinking_budget_value,
        default=None,
        metavar="N",
        help="think at most N tokens, then answer (0 = answer without thinking; default: no limit; local models)",
    )
    p.add_argument("--system", "--instructions", dest="instructions", default=None, help="developer instructions")
    answer_format = p.add_mutually_exclusive_group()
    answer_format.add_argument("--json", action="store_true", help="answer with a JSON object (JSON mode)")
    answer_format.add_argument(
        "--json-schema",
        type=Path,
        metavar="FILE",
        help="answer with JSON that follows the JSON schema in FILE (held to it token by token on a local model; a "
        "server is sent it as response_format)",
    )
    p.add_argument(
        "--context", type=context_value, default=None, help="context length to allocate (default: the model's)"
    )
    p.add_argument("--dtype", choices=["bfloat16", "float32"], default=None, help="weight dtype (default: bfloat16)")
    add_weights_argument(p)
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")


def add_weights_argument(parser: argparse.ArgumentParser) -> None:
    """``--weights bf16|q8``, shared by every command that loads a model (argparse refuses other values, naming
    the choices)."""
    parser.add_argument(
        "--weights",
        choices=WEIGHTS_MODES,
        default=DEFAULT_WEIGHTS,
        help="bf16: the checkpoint's weights, exact (default); q8: attention and unembedding weights quantised to "
        "8 bits at load time (smaller and faster on the CPU, slightly less exact)",
    )


def sampling_from_args(args: argparse.Namespace) -> SamplingParams:
    """SamplingParams from CLI flags. The parser has checked them (the argument types above); a Namespace built in
    code may not have been, so invalid values still become a one-line EngineError."""
    try:
        return SamplingParams(
            temperature=args.temperature,
            top_p=args.top_p,
            top_k=args.top_k,
            seed=args.seed,
            max_tokens=args.max_tokens,
            reasoning_budget=getattr(args, "thinking_budget", None),
            response_format=answer_format_from_args(args),
        )
    except ValueError as exc:
        raise EngineError(f"invalid sampling option: {exc}") from exc


_SCHEMA_FILE_LIMIT = 1 << 20  # bytes; a response format's schema is a few KB


def answer_format_from_args(args: argparse.Namespace) -> ResponseFormat | None:
    """``--json`` or ``--json-schema FILE`` (named after the file); a file that is missing, no JSON or no object's
    schema is a one-line EngineError."""
    if getattr(args, "json", False):
        return ResponseFormat.json_object()
    path: Path | None = getattr(args, "json_schema", None)
    if path is None:
        return None
    try:
        schema = read_json(path, _SCHEMA_FILE_LIMIT)
    except CheckpointError as exc:  # (missing, not a regular file, too big, not JSON: one line naming the file)
        raise EngineError(f"--json-schema: {exc}") from exc
    if not isinstance(schema, dict):
        raise EngineError(f"--json-schema: {path}: a JSON schema is an object, got {type(schema).__name__}")
    name = re.sub(r"[^A-Za-z0-9_-]", "_", path.stem)[:64] or "schema"
    try:
        return ResponseFormat.json_schema(name, schema)
    except ValueError as exc:
        raise EngineError(f"--json-schema: {path}: {exc}") from exc


def check_device(device: str | None) -> None:
    """Refuse a ``--device`` this torch cannot use, with one line saying why (torch itself would raise an
    AssertionError deep inside the first ``.to(device)``)."""
    if device is None:
        return
    import torch  # deferred: slow, and not needed for --help

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise EngineError(f"--device {device!r} is not a torch device ({exc})") from None
    if parsed.type == "cpu":
        return
    if parsed.type != "cuda":
        try:  # mps, xpu, ...: the cheapest real use of the device says whether this torch can use it
            torch.empty(0, device=parsed)
        except (RuntimeError, AssertionError, ValueError) as exc:
            raise EngineError(f"--device {device}: this torch cannot use it ({exc})") from None
        return
    if not torch.backends.cuda.is_built():
        raise EngineError(
            f"--device {device}: this torch ({torch.__version__}) was built without CUDA; "
            "use --device cpu, or install a CUDA build of torch"
        )
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise EngineError(f"--device {device}: no CUDA GPU is available (check the driver); use --device cpu")
    if parsed.index is not None and parsed.index >= count:
        raise EngineError(f"--device {device}: there are only {count} CUDA device(s) (cuda:0 to cuda:{count - 1})")


def load_for_cli(path: Path | str, dtype: str | None, device: str | None, weights: str = DEFAULT_WEIGHTS) -> Any:
    """Load a model (a folder, or ``demo``), turning a missing folder or an unusable ``--device`` into a one-line
    error before the loader runs.

    The demo model is announced on stderr as the toy it is.
    """
    # deferred: importing the model stack is slow and not needed for --help
    from gpt_oss_desktop.engine import load_model
    from gpt_oss_desktop.engine.demo.materialize import demo_label
    from gpt_oss_desktop.engine.input_files import is_present
    from gpt_oss_desktop.engine.model_ref import resolve_model_path

    check_device(device)
    folder = resolve_model_path(path).expanduser()
    if not is_present(folder):  # a symlink loop or an unreadable parent is a CheckpointError saying so
        raise MissingFilesError("no such file or folder", folder)
    label = demo_label(folder)
    if label is not None:
        sys.stderr.write(f"note: {label}\n")

    return load_model(folder, device=device, dtype=dtype, weights=weights)


class _Printer:
    """Writes a stream of events: reasoning dimmed (on a terminal), then the answer, then stats."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.color = out.isatty()
        self._section: str | None = None

    def delta(self, delta: Delta) -> None:
        section = "tool" if delta.is_tool_call else "final" if delta.is_final else "reasoning"
        if section != self._section:
            self._switch(section, delta)
        text = delta.text
        if self.color and section != "final":
            text = f"{_DIM}{text}{_RESET}"
        self.out.write(text)
        self.out.flush()

    def _switch(self, section: str, delta: Delta) -> None:
        if self._section is not None:
            self.out.write("\n")
        if section == "tool":
            label = f"[tool call → {delta.recipient}] "
        elif section == "reasoning":
            label = "[reasoning] " if delta.channel == "analysis" else f"[{delta.channel or 'unlabelled'}] "
        else:
            label = "" if self._section is None else "\n"
        if label:
            self.out.write(f"{_DIM}{label}{_RESET}" if self.color else label)
        self._section = section

    def done(self, done: Done) -> None:
        self.out.write("\n" if self._section is not None else "")
        self._section = None
        self.out.write(_stats_line(done, self.color) + "\n")
        if done.error:
            self.out.write(f"error: {done.error}\n")
        if done.malformed:
            self.out.write(f"note: malformed model output: {done.malformed}\n")
        if done.tool_call is not None:
            self.out.write(f"note: the model called {done.tool_call.recipient}; tools are not available here\n")
        self.out.flush()


def _stats_line(done: Done, color: bool) -> str:
    ttft = f"{done.time_to_first_token:.2f} s" if done.time_to_first_token is not None else "-"
    line = (
        f"[{done.prompt_tokens} prompt ({done.reused_prompt_tokens} cached), {done.reasoning_tokens} reasoning, "
        f"{done.final_tokens} answer, {done.other_tokens} other tokens | TTFT {ttft} | "
        f"{done.decode_tokens_per_s:.1f} tok/s | {done.finish_reason.value}"
        f"{' | counts estimated' if done.counts_estimated else ''}"
        f"{' | thinking cut at the budget' if done.reasoning_cut else ''}]"
    )
    return f"{_DIM}{line}{_RESET}" if color else line


def _answer(generator: Generator, prompt_ids: list[int], params: SamplingParams, printer: _Printer) -> Done:
    """Stream one answer; Ctrl-C cancels it (the generator stays ready) and the partial answer is kept.

    Generation runs on a worker thread so that Ctrl-C always lands in this (main) thread, between events, and
    becomes a clean cancel instead of an exception thrown into the middle of a model step.
    """
    cancel = threading.Event()
    events: queue.Queue[Event | BaseException] = queue.Queue()

    def work() -> None:
        try:
            for event in generator.stream(prompt_ids, params, cancel):
                events.put(event)
        except BaseException as exc:  # handed to the main thread, which re-raises it
            events.put(exc)

    worker = threading.Thread(target=work, name="chat-generate", daemon=True)
    worker.start()
    while True:
        try:
            try:
                event = events.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(event, (BaseException, Done)):
                # The worker is past its last event but may still be freeing the step's tensors. Joined here, it is
                # gone before the interpreter exits: a daemon thread that wakes during finalisation is ended by a
                # forced unwind through torch's C++ frames, which aborts the process ("terminate called without an
                # active exception", exit status 134) after a perfectly good answer.
                worker.join()
            if isinstance(event, BaseException):
                raise event
            if isinstance(event, Done):
                printer.done(event)
                return event
            if isinstance(event, ToolCall):
                continue  # its arguments were printed as they streamed, under "[tool call → recipient]"
            printer.delta(event)
        except KeyboardInterrupt:
            cancel.set()  # the worker stops at the next token and sends Done(cancelled)


def run(args: argparse.Namespace) -> int:
    params = sampling_from_args(args)
    if getattr(args, "server", None) is not None:  # callers that build the Namespace themselves may leave it out
        if params.reasoning_budget is not None:
            # Enforcing it takes the logits, which only a model in this process offers (engine/channel_guard.py).
            raise EngineError("--thinking-budget applies to a local model (--model), not to --server")
        return remote_chat.run(args, params, _Printer(sys.stdout))
    if args.context is not None and args.context < 2:
        raise EngineError(f"--context must be at least 2 tokens, got {args.context}")
    model = load_for_cli(args.model, args.dtype, args.device, args.weights)
    generator = Generator(model, max_context=args.context)
    session = ChatSession(
        effort=ReasoningEffort(args.effort), instructions=args.instructions, response_format=params.response_format
    )
    printer = _Printer(sys.stdout)

    return converse(
        session,
        args.prompt,
        lambda turn: _answer(generator, turn.prompt(), params, printer),
        GenerationError,  # e.g. a message longer than the context
        "Interactive chat.",
    )
