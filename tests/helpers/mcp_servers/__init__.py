"""MCP servers the MCP tests run, written with the official SDK's server API (``mcp.server.mcpserver``)."""
