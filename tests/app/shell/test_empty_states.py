"""What an empty window says: the first start keeps its three offers; a new chat shows example prompts for the
loaded model (clickable: they send) and a line on effort; a new chat never shows the last chat's context use."""

from __future__ import annotations

from typing import Any

from gpt_oss_desktop.app.backends.chat_backend import DEMO_MODEL
from gpt_oss_desktop.app.chat.chat_view import AssistantMessage, UserBubble
from gpt_oss_desktop.app.chat.new_chat_intro import DEMO_EXAMPLES, GENERAL_EXAMPLES, NewChatIntro
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.engine.events import Done
from gpt_oss_desktop.engine.scripted_model import harmony_reply
from tests.app.conftest import load, next_emission, scripted_engine
from tests.app.label_fit import clipped_buttons, clipped_labels


def test_first_start_keeps_its_three_offers(make_window: Any) -> None:
    backend, _ = scripted_engine(harmony_reply("t", "a"))
    window: MainWindow = make_window(backend)
    assert window.stack.currentWidget() is window.empty
    buttons = (window.empty.demo_button, window.empty.open_button, window.empty.download_button)
    assert all(b.isVisible() and b.isEnabled() for b in buttons)
    assert not window.chat.intro.isVisible()


def test_first_start_block_is_centred_and_unclipped(make_window: Any, qtbot: Any) -> None:
    backend, _ = scripted_engine(harmony_reply("t", "a"))
    window: MainWindow = make_window(backend)
    block = window.empty.block
    for size in ((800, 600), (1280, 800), (2560, 1440)):
        window.resize(*size)
        qtbot.waitUntil(lambda: window.width() == size[0] and block.isVisible())  # noqa: B023 (waited on at once)
        pane = window.stack
        pane_centre = pane.mapTo(window, pane.rect().center()).x()
        qtbot.waitUntil(
            lambda: abs(block.mapTo(window, block.rect().center()).x() - pane_centre) <= 2  # noqa: B023
        )
        assert block.width() <= 560 and block.width() >= min(560, pane.width() - 40)
        assert not clipped_labels(window.empty) and not clipped_buttons(window.empty)


def test_new_chat_shows_examples_for_the_demo_and_sends_the_one_clicked(run: Any, make_window: Any, qtbot: Any) -> None:
    backend, _ = scripted_engine(harmony_reply("27 + 58 = 85.", "85."), harmony_reply("t", "a"))
    window: MainWindow = make_window(backend)
    window.composer.sampling.temperature.setValue(0.0)
    run(load(window, DEMO_MODEL))  # the double, under the demo's name ("Demo model (toy)")
    intro = window.chat.intro
    window.resize(800, 600)
    qtbot.waitUntil(lambda: intro.isVisible() and all(b.isVisible() for b in intro.buttons))
    assert intro.examples == DEMO_EXAMPLES and len(intro.buttons) == 3
    assert "Demo model (toy)" in intro.title.text()
    assert "effort" in intro.effort.text().lower() and intro.effort.isVisible()
    qtbot.waitUntil(lambda: not clipped_labels(window.chat) and not clipped_buttons(window.chat))
    assert [b.text() for b in intro.buttons] == list(DEMO_EXAMPLES)

    done: Done = run(next_emission(window.generation_finished, intro.buttons[0].click))
    assert done.final_tokens > 0
    widgets = window.chat.messages()
    assert [type(w) for w in widgets] == [UserBubble, AssistantMessage]
    assert isinstance(widgets[0], UserBubble) and widgets[0].label.text() == DEMO_EXAMPLES[0]
    assert DEMO_EXAMPLES[0] in window.conversation.turns[0].user
    assert not intro.isVisible()

    window.new_chat()
    qtbot.waitUntil(intro.isVisible)
    # Back, and wide enough: each example shows whole (it was resized while hidden, and must not stay elided).
    qtbot.waitUntil(lambda: [b.text() for b in intro.buttons] == list(DEMO_EXAMPLES))


def test_an_example_too_long_for_its_button_elides_with_a_tooltip(qtbot: Any) -> None:
    intro = NewChatIntro()
    qtbot.addWidget(intro)
    intro.set_model("Demo model (toy)", toy=True)
    intro.resize(260, 400)
    intro.show()
    qtbot.waitUntil(lambda: intro.buttons[1].text().endswith("…"))
    assert intro.buttons[1].toolTip() == DEMO_EXAMPLES[1] and intro.buttons[0].text() == DEMO_EXAMPLES[0]
    assert not clipped_buttons(intro) and not clipped_labels(intro)
    intro.resize(700, 400)
    qtbot.waitUntil(lambda: [b.text() for b in intro.buttons] == list(DEMO_EXAMPLES))
    assert intro.buttons[1].toolTip() == ""


def test_a_real_model_gets_general_examples(run: Any, make_window: Any) -> None:
    backend, _ = scripted_engine(harmony_reply("t", "a"))
    window: MainWindow = make_window(backend)
    run(load(window, "gpt-oss-20b"))
    assert window.chat.intro.examples == GENERAL_EXAMPLES
    assert "gpt-oss-20b" in window.chat.intro.title.text()


def test_new_chat_resets_the_context_counter(run: Any, make_window: Any) -> None:
    backend, _ = scripted_engine(harmony_reply("Some reasoning here.", "An answer."))
    window: MainWindow = make_window(backend)
    window.composer.sampling.temperature.setValue(0.0)

    async def body() -> Done:
        await load(window)
        assert window.status.context_label.text() == "Context 0 / 4,096"
        done: Done = await next_emission(window.generation_finished, lambda: window.send_message("hello"))
        return done

    done = run(body())
    used = done.prompt_tokens + done.completion_tokens
    assert window.status.context_label.text() == f"Context {used:,} / 4,096" and used > 0
    window.new_chat()
    assert window.status.context_label.text() == "Context 0 / 4,096"
