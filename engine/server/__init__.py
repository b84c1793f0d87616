"""An OpenAI-compatible HTTP server over the engine: ``/v1/models``, ``/v1/chat/completions`` and ``/v1/responses``.

Harmony is rendered and parsed by openai-harmony (through :mod:`engine.harmony` and :mod:`engine.stream_parser`),
every request runs through the one generation loop (:mod:`engine.continuous_batcher`), and reasoning is returned
beside the answer, never inside it. :func:`engine.server.app_factory.create_app` builds the ASGI app;
:mod:`engine.server.runner` serves it with uvicorn (the CLI's ``serve`` and the desktop app's Model ▸ Serve).
"""
