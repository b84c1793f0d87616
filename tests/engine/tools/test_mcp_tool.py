"""McpTool and its names: valid, unique identifiers with an exact way back to (server, tool); arguments as the model
wrote them reach the server as one JSON object, or go back to the model as bad arguments."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gpt_oss_desktop.engine.tools.base import Tool, ToolOutcome, ToolStatus
from gpt_oss_desktop.engine.tools.mcp_tool import MAX_FUNCTION_NAME, McpTool, function_for, function_names

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RecordingCaller:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def call(self, server: str, tool: str, arguments: dict[str, Any]) -> ToolOutcome:
        self.calls.append((server, tool, arguments))
        return ToolOutcome(ToolStatus.OK, "done")


def test_names_are_server_then_tool_cut_to_identifiers() -> None:
    names = function_names([("files", "read_file"), ("my-server", "weird-name.v2"), ("9lives", "a/b")])
    assert names[("files", "read_file")] == "files__read_file"
    assert names[("my-server", "weird-name.v2")] == "my_server__weird_name_v2"
    assert names[("9lives", "a/b")] == "mcp_9lives__a_b"


def test_names_that_would_clash_are_kept_apart_and_the_first_keeps_the_plain_name() -> None:
    names = function_names([("a.b", "t"), ("a-b", "t"), ("a_b", "t")])
    assert len(set(names.values())) == 3
    assert names[("a-b", "t")] == "a_b__t"  # sorted first: "-" < "." < "_"
    assert all(IDENTIFIER.fullmatch(name) for name in names.values())


def test_long_names_are_cut_with_a_hash_so_they_stay_unique() -> None:
    long_tool = "x" * 100
    names = function_names([("srv", long_tool), ("srv", long_tool + "y")])
    assert all(len(name) <= MAX_FUNCTION_NAME for name in names.values())
    assert len(set(names.values())) == 2


@given(st.lists(st.tuples(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80)), max_size=30))
def test_any_servers_and_tools_get_unique_valid_names(pairs: list[tuple[str, str]]) -> None:
    names = function_names(pairs)
    assert set(names) == set(pairs)
    assert len(set(names.values())) == len(names)
    assert all(IDENTIFIER.fullmatch(name) and len(name) <= MAX_FUNCTION_NAME for name in names.values())
    assert function_names(reversed(pairs)) == names  # the order they come in changes nothing


def test_a_tool_keeps_its_original_name_and_server_behind_its_recipient() -> None:
    caller = RecordingCaller()
    schema = {"type": "object", "properties": {"value": {"type": "string"}}}
    tool = McpTool("my-server", "weird-name.v2", function_for("my_server__weird_name_v2", " Does it. ", schema), caller)
    assert isinstance(tool, Tool)
    assert tool.recipient == "functions.my_server__weird_name_v2"
    assert tool.spec is not None and tool.spec.description == "Does it." and tool.spec.parameters == schema
    outcome = asyncio.run(tool.run('{"value": "a \\"quoted\\" line\\nand é"}'))
    assert outcome.ok
    assert caller.calls == [("my-server", "weird-name.v2", {"value": 'a "quoted" line\nand é'})]


def test_salvageable_arguments_are_salvaged_and_broken_ones_go_back_to_the_model() -> None:
    caller = RecordingCaller()
    tool = McpTool("s", "t", function_for("s__t", None, None), caller)
    assert tool.spec is not None and tool.spec.parameters == {"type": "object", "properties": {}}
    assert asyncio.run(tool.run('```json\n{"a": 1}\n```')).ok
    assert asyncio.run(tool.run('{"a": 2} <|call|>')).ok
    broken = asyncio.run(tool.run('{"a": '))
    assert broken.status is ToolStatus.BAD_ARGUMENTS and "not valid JSON" in broken.output
    not_object = asyncio.run(tool.run("[1, 2]"))
    assert not_object.status is ToolStatus.BAD_ARGUMENTS
    assert caller.calls == [("s", "t", {"a": 1}), ("s", "t", {"a": 2})]
