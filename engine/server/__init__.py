"""An OpenAI-compatible HTTP server over the engine (Chat Completions and Responses)."""
