"""A small MCP server for the tests, over stdio (the default) or streamable HTTP (``--http PORT``).

Its tools cover what the client must handle: text that needs escaping (``echo``), a name with a dash and a dot
(``weird-name.v2``), a tool that raises (``fail``: the SDK answers ``isError``), an image result, one that hangs
(``sleep``), and one that kills the server in the middle of its call (``die``). ``--crash`` writes a line to stderr
and exits 1 before answering anything, like a server missing its configuration.

Run as a script (``python toolbox.py``): it imports nothing from the tests, so the child starts on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ImageContent

server = MCPServer(name="toolbox", version="1.0")


@server.tool(description="Return the text unchanged.")
def echo(text: str) -> str:
    return text


@server.tool(description="Add two integers.")
def add(a: int, b: int) -> int:
    return a + b


@server.tool(name="weird-name.v2", description="A tool whose name is not an identifier.")
def weird(value: str = "none") -> str:
    return f"weird got {value}"


@server.tool(description="Always fails with the given message.")
def fail(message: str) -> str:
    raise ToolError(message)


@server.tool(description="A red pixel and a caption.")
def picture() -> list[object]:
    return ["a red pixel", ImageContent(type="image", data="iVBORw0KGgo=", mime_type="image/png")]


@server.tool(description="Sleep, then answer.")
async def sleep(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@server.tool(description="The server's process id.")
def pid() -> int:
    return os.getpid()


@server.tool(description="Kill the server in the middle of the call.")
def die() -> str:
    sys.stderr.write("toolbox: dying on request\n")
    sys.stderr.flush()
    os._exit(3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, default=0, help="serve streamable HTTP on 127.0.0.1:PORT")
    parser.add_argument("--crash", action="store_true", help="exit 1 at once, with a line on stderr")
    parser.add_argument("--silent", action="store_true", help="start but never answer (a hung server)")
    args = parser.parse_args()
    if args.crash:
        sys.stderr.write("toolbox: starting\ntoolbox: missing API key TOOLBOX_KEY\n")
        sys.exit(1)
    if args.silent:
        sys.stdin.read()  # holds stdin open and says nothing until the client closes it
        return
    if args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    else:
        server.run()


if __name__ == "__main__":
    main()
