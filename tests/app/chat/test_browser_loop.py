"""The browser tool in a chat answer, without GUI: the real engine thread over the ScriptedModel test double, the
app's tools with the browser switched on (its search provider a SearXNG-shaped JSON API on a local HTTP server,
which stands in for a search service this machine cannot reach; the pages are real HTTP)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from gpt_oss_desktop.app.chat.chat_session import ChatSession, SendRequest
from gpt_oss_desktop.app.chat.tool_access import ToolAccess
from gpt_oss_desktop.app.tools.app_tools import AppTools
from gpt_oss_desktop.app.tools.tool_settings import ToolSettings
from gpt_oss_desktop.engine.harmony import render_prompt
from gpt_oss_desktop.engine.scripted_model import ScriptedModel, harmony_reply, harmony_tool_call
from gpt_oss_desktop.engine.tools.base import ToolPolicy, ToolStatus
from gpt_oss_desktop.engine.tools.browser.citations import cursor_urls
from gpt_oss_desktop.engine.tools.browser.search import SearchKind
from gpt_oss_desktop.engine.vocab import get_encoding
from tests.app.chat.test_tool_loop import GREEDY, Approver, prompt_text, run
from tests.helpers.web_site import Route, Site, site

__all__ = ["site"]


@pytest.fixture(scope="module", autouse=True)
def gui_thread_gc() -> None:
    """Nothing here is Qt (replaces tests/app/conftest.py's fixture of that name)."""


def browsing_tools(site: Site, **changes: object) -> AppTools:
    site.routes["/searx/search"] = Route(
        body=json.dumps(
            {"results": [{"title": "Harmony", "url": site.url("/harmony"), "content": "The response format."}]}
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    site.html("/harmony", "<title>Harmony</title><h1>Harmony</h1><p>Channels are analysis, commentary and final.</p>")
    settings = ToolSettings(
        python_enabled=False,
        browser_enabled=True,
        search_kind=SearchKind.SEARXNG,
        search_url=site.url("/searx"),
        browse_local_hosts=True,
        policies={"browser": ToolPolicy.ALWAYS},
    )
    return AppTools(replace(settings, **changes), save=lambda _settings: None)  # type: ignore[arg-type]


def session_for(model: ScriptedModel, tools: AppTools, listener: Approver) -> tuple[object, ChatSession]:
    from gpt_oss_desktop.app.backends.local_engine import LocalEngine

    backend = LocalEngine(loader=lambda _ref, _progress: model, max_context=8192)
    access = ToolAccess(toolbox=tools.toolbox, policy=tools.policy, remember=tools.remember)
    return backend, ChatSession(backend, listener=listener, tools=access)


SEARCH = harmony_tool_call("Search for it.", "browser.search", '{"query": "harmony channels"}', channel="analysis")
OPEN = harmony_tool_call("Open the first hit.", "browser.open", '{"id": 0, "cursor": 0}', channel="analysis")
ANSWER = harmony_reply("The page lists three.", "Three channels: analysis, commentary and final【1†L2】.")


def test_search_then_open_then_an_answer_that_cites_the_page(site: Site) -> None:
    # Each round replays the script after as many tool results as the prompt holds: search, open, then the answer.
    model = ScriptedModel(
        [SEARCH, OPEN, ANSWER], choose=lambda prompt: get_encoding().decode(list(prompt)).count(" to=assistant")
    )
    listener = Approver()
    backend, session = session_for(model, browsing_tools(site), listener)

    async def body() -> None:
        task = session.send(SendRequest("What are harmony's channels?", sampling=GREEDY))
        assert task is not None
        await task

    run(backend, body)  # type: ignore[arg-type]
    assert listener.asked == []  # "always" for the browser covers its three calls
    first = prompt_text(model, 0)
    assert "## browser" in first and "namespace browser" in first and "## python" not in first
    third = prompt_text(model, 2)
    # each call's result went back on the analysis channel, as the browser's own message
    assert "<|start|>browser.search to=assistant<|channel|>analysis<|message|>[0] harmony channels" in third
    assert "L2: * 【0†Harmony†127.0.0.1】" in third
    assert (
        f"<|start|>browser.open to=assistant<|channel|>analysis<|message|>[1] Harmony ({site.url('/harmony')})" in third
    )
    calls = session.conversation.turns[0].tool_calls
    assert [call.status for call in calls] == [ToolStatus.OK, ToolStatus.OK]
    assert cursor_urls(call.output for call in calls) == {1: site.url("/harmony")}
    assert listener.finished[0].answer.endswith("final【1†L2】.")  # the answer keeps the model's own text
    # The next turn's prompt leaves the finished turn's browsing out with its reasoning (harmony's analysis channel),
    # and keeps the answer.
    session.conversation.add_user("And the next?")
    following = get_encoding().decode(render_prompt(session.conversation.request_messages(), browser_tool=True))
    assert "to=browser.search" not in following and "<|start|>browser.search" not in following
    assert (
        "L2: * 【0†Harmony" not in following and "Three channels: analysis, commentary and final【1†L2】." in following
    )


def test_each_answer_gets_a_browser_of_its_own_and_asks_before_browsing(site: Site) -> None:
    tools = browsing_tools(site, policies={})
    first, second = tools.toolbox(), tools.toolbox()
    assert first.browser_tool and tools.policy("browser.open") is ToolPolicy.ASK
    search = first.find("browser.search")
    assert search is not None and search is not second.find("browser.search")
    assert search.session is first.find("browser.find").session  # type: ignore[attr-defined]


def test_the_browser_is_off_until_switched_on_and_a_missing_key_means_no_search(site: Site) -> None:
    assert not AppTools(ToolSettings(), save=lambda _s: None).toolbox().browser_tool
    keyless = AppTools(
        ToolSettings(browser_enabled=True, search_kind=SearchKind.BRAVE),
        save=lambda _s: None,
        search_key=lambda _k: None,
    )
    assert keyless.toolbox().browser_tool and keyless.search_provider() is None
    keyed = AppTools(
        ToolSettings(browser_enabled=True, search_kind=SearchKind.BRAVE),
        save=lambda _s: None,
        search_key=lambda _k: "k",
    )
    assert keyed.search_provider() is not None


class Asker(Approver):
    """Records the question each call was asked with."""

    def __init__(self) -> None:
        super().__init__()
        self.questions: list[str] = []

    async def approve_tool_call(self, answer, call):  # type: ignore[no-untyped-def]
        self.questions.append(call.question)
        return await super().approve_tool_call(answer, call)


def test_asking_first_names_the_query_and_the_address_a_call_would_fetch(site: Site) -> None:
    model = ScriptedModel(
        [SEARCH, OPEN, ANSWER], choose=lambda prompt: get_encoding().decode(list(prompt)).count(" to=assistant")
    )
    listener = Asker()
    backend, session = session_for(model, browsing_tools(site, policies={}), listener)

    async def body() -> None:
        task = session.send(SendRequest("What are harmony's channels?", sampling=GREEDY))
        assert task is not None
        await task

    run(backend, body)  # type: ignore[arg-type]
    assert listener.questions == ["Search SearXNG for “harmony channels”?", f"Open {site.url('/harmony')}?"]
