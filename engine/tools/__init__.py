"""Tools the model can call: the built-in python tool (a sandboxed process), the app's built-in functions and the
tools of MCP servers, each behind the one :class:`~engine.tools.base.Tool` protocol, and the rules of a tool call
(arguments, unknown tools, limits) that hold whoever runs the loop."""
