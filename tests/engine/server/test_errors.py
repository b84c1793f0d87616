"""Every bad request gets OpenAI's error shape and the right status, and the server keeps serving."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from gpt_oss_desktop.engine.server.runner import RunningServer
from tests.engine.server.conftest import StartServer, client_for

GOOD = {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def post(server: RunningServer, body: Any, *, path: str = "/chat/completions", **kwargs: Any) -> httpx.Response:
    if isinstance(body, bytes):
        kwargs.setdefault("content", body)
        kwargs.setdefault("headers", {"content-type": "application/json"})
    else:
        kwargs["json"] = body
    return httpx.post(server.base_url + path, timeout=60, **kwargs)


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    return error


def still_serves(server: RunningServer) -> None:
    assert post(server, GOOD).status_code == 200


@pytest.mark.parametrize("path", ["/chat/completions", "/responses"])
def test_malformed_json(demo_server: RunningServer, path: str) -> None:
    error = error_of(post(demo_server, b'{"model": "demo", "messages": [', path=path), 400)
    assert error["code"] == "invalid_json"
    still_serves(demo_server)


def test_unknown_model_names_the_served_one(demo_server: RunningServer) -> None:
    error = error_of(post(demo_server, {**GOOD, "model": "gpt-5"}), 404)
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "gpt-5" in error["message"] and "demo" in error["message"]


def test_a_prompt_longer_than_the_context_gives_both_counts(demo_model: Any, start_server: StartServer) -> None:
    server = start_server(demo_model, max_context=96)
    long = {**GOOD, "messages": [{"role": "user", "content": "count with me " * 40}]}
    error = error_of(post(server, long), 400)
    assert error["code"] == "context_length_exceeded"
    assert "96" in error["message"]
    prompt_tokens = int(error["message"].split("prompt has ")[1].split()[0])
    assert prompt_tokens > 96
    still_serves(server)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", -0.5),
        ("temperature", "hot"),
        ("temperature", True),
        ("top_p", 0),
        ("top_p", 1.5),
        ("max_tokens", 0),
        ("max_tokens", -3),
        ("max_completion_tokens", 0),
        ("n", 2),
        ("reasoning_effort", "extreme"),
        ("stop", ["a", "b", "c", "d", "e"]),
        ("messages", []),
        ("messages", [{"role": "wizard", "content": "hi"}]),
        ("messages", [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]),
        ("tools", [{"type": "web_search"}]),
    ],
)
def test_out_of_range_or_wrong_parameters_are_400_naming_the_field(
    demo_server: RunningServer, field: str, value: Any
) -> None:
    error = error_of(post(demo_server, {**GOOD, field: value}), 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] is not None and error["param"].split("[")[0].split(".")[0] == field


def test_a_missing_field_is_named(demo_server: RunningServer) -> None:
    error = error_of(post(demo_server, {"model": "demo"}), 400)
    assert error["param"] == "messages" and error["code"] == "missing_required_parameter"


def test_a_tool_result_must_answer_a_call(demo_server: RunningServer) -> None:
    messages = [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "call_x", "content": "42"}]
    error = error_of(post(demo_server, {**GOOD, "messages": messages}), 400)
    assert "call_x" in error["message"]


def test_api_key(demo_model: Any, start_server: StartServer) -> None:
    server = start_server(demo_model, api_key="s3cret")
    assert error_of(post(server, GOOD), 401)["type"] == "authentication_error"
    assert error_of(post(server, GOOD, headers={"Authorization": "Bearer wrong"}), 401)["code"] == "invalid_api_key"
    assert post(server, GOOD, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    with pytest.raises(openai.AuthenticationError):
        client_for(server, "wrong").models.list()
    assert [m.id for m in client_for(server, "s3cret").models.list()] == ["demo"]


def test_a_body_over_the_limit_is_413(demo_model: Any, start_server: StartServer) -> None:
    server = start_server(demo_model, max_body_bytes=4096)
    big = {**GOOD, "messages": [{"role": "user", "content": "x" * 5000}]}
    assert error_of(post(server, big), 413)["code"] == "body_too_large"

    def chunked() -> Any:  # no Content-Length: the limit is enforced while the body arrives
        yield b'{"model": "demo", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}]}'

    response = httpx.post(server.base_url + "/chat/completions", content=chunked(), timeout=60)
    assert error_of(response, 413)["code"] == "body_too_large"
    still_serves(server)


def test_unknown_paths_and_methods_answer_in_the_same_shape(demo_server: RunningServer) -> None:
    assert error_of(httpx.get(demo_server.base_url + "/embeddings", timeout=10), 404)["code"] == "unknown_url"
    assert error_of(httpx.get(demo_server.base_url + "/chat/completions", timeout=10), 405)["code"] == (
        "method_not_allowed"
    )
