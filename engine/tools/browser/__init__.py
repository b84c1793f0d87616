"""harmony's built-in browser tool: web search, opening pages and finding text in them (see session.py)."""
