"""The tools the app's own chats offer the model: which are on, their policies, MCP servers, and the Tools dialog."""
