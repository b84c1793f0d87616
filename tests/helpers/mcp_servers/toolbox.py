"""A small MCP server for the tests, over stdio (the default) or streamable HTTP (``--http``).

Its tools cover what the client must handle: text that needs escaping (``echo``), a name with a dash and a dot
(``weird-name.v2``), a tool that raises (``fail``: the SDK answers ``isError``), an image result, one that hangs
(``sleep``), one that freezes the whole server (``freeze``), and one that kills the server in the middle of its call
(``die``). ``--crash`` writes a line to stderr and exits 1 before answering anything, like a server missing its
configuration; ``--silent`` starts and never answers. ``--key`` asks for a token: over HTTP in a header, over stdio
in the environment (``TOOLBOX_KEY``), as real servers do.

Run as a script (``python toolbox.py``): it imports nothing from the tests, so the child starts on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from typing import Any

import uvicorn
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


@server.tool(description="Freeze the whole server (SIGSTOP): it answers nothing, ever.")
def freeze() -> str:
    os.kill(os.getpid(), signal.SIGSTOP)
    return "thawed"


def serve_http(key: str) -> None:
    """Streamable HTTP on a free loopback port, which it prints first on stdout; with ``key``, every request without
    the header ``X-Toolbox-Key: <key>`` is answered 401 (like a server behind a token)."""
    app = server.streamable_http_app()

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if key and scope["type"] == "http" and dict(scope["headers"]).get(b"x-toolbox-key") != key.encode():
            await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"missing or wrong X-Toolbox-Key"})
            return
        await app(scope, receive, send)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # listening before the port is printed: a client that connects at once waits, is not refused
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(guarded, log_level="warning", lifespan="on")
    # The app's lifespan runs the SDK's session manager; the guard passes lifespan events through.
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP on a free port (printed)")
    parser.add_argument(
        "--key", default="", help="the X-Toolbox-Key every request must carry (--http), or the TOOLBOX_KEY to be given"
    )
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
        serve_http(args.key)
        return
    if args.key and os.environ.get("TOOLBOX_KEY") != args.key:
        sys.stderr.write("toolbox: missing or wrong TOOLBOX_KEY\n")  # the value itself is never echoed
        sys.exit(1)
    server.run()


if __name__ == "__main__":
    main()
