"""What an empty chat shows once a model is loaded: three example prompts suited to that model, and what effort does.

The demo model (engine/demo) only knows four kinds of synthetic question (tools/demo/data.py: arithmetic, counting a
letter in a word, comparing two numbers, unit conversion), so its examples are worded exactly as it was trained;
a real gpt-oss model gets general ones.
"""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette, QResizeEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

DEMO_EXAMPLES: Final = (
    "What is 27 + 58?",
    'How many times does the letter "r" appear in "strawberry"?',
    "Convert 7 km to m.",
)
GENERAL_EXAMPLES: Final = (
    "Explain how a hash map works, with a short Python example.",
    "Plan a three-day trip to Lisbon on a small budget.",
    "What is the difference between TCP and UDP?",
)
_BUTTON_PADDING: Final = 28  # a push button's frame and text margins, both sides
DEMO_HINT: Final = (
    "The demo knows four kinds of question: sums, counting a letter in a word, comparing two numbers and "
    "converting units. Try one:"
)
GENERAL_HINT: Final = "Try one of these, or write your own below:"
_MAX_WIDTH: Final = 620  # examples read as a short list, not as bars across a wide window
EFFORT_LINE: Final = (
    "Effort sets how long the model reasons before it answers: low is quickest, high is the most careful."
)


def examples_for(*, toy: bool) -> tuple[str, ...]:
    """Three example prompts for the loaded model: the demo's own tasks, or general ones."""
    return DEMO_EXAMPLES if toy else GENERAL_EXAMPLES


class ExampleButton(QPushButton):
    """An example prompt as a button. Button text does not wrap, so a prompt wider than the button is cut with "…"
    (whole in the tooltip), on every resize: the button's own, as it may be resized while its intro is hidden."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prompt = ""
        # A long example must never widen the chat column: it elides instead.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

    def set_prompt(self, text: str) -> None:
        self.prompt = text
        self.setAccessibleName(f"Ask: {text}")
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        room = self.width() - _BUTTON_PADDING
        metrics = self.fontMetrics()
        fits = metrics.horizontalAdvance(self.prompt) <= room
        shown = self.prompt if fits else metrics.elidedText(self.prompt, Qt.TextElideMode.ElideRight, max(room, 0))
        self.setText(shown)
        self.setToolTip("" if fits else self.prompt)


class NewChatIntro(QWidget):
    """The top of an empty chat: a greeting, example prompts as buttons, and one line on effort.

    Signals:
        example_chosen(str): an example was clicked (the window sends it).
    """

    example_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("New chat")
        # The content keeps to _MAX_WIDTH, centred by the stretches beside it (which only get room past that width).
        content = QWidget(self)
        content.setMaximumWidth(_MAX_WIDTH)
        self.title = QLabel(content)
        self.title.setWordWrap(True)
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint = QLabel(GENERAL_HINT, content)
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.buttons: list[ExampleButton] = []
        self._examples: tuple[str, ...] = ()
        self.effort = QLabel(EFFORT_LINE, content)
        self.effort.setWordWrap(True)
        self.effort.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.effort.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.effort.setAccessibleName("What effort does")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addStretch(1)
        row.addWidget(content, 1000)
        row.addStretch(1)
        self._layout = QVBoxLayout(content)
        self._layout.setContentsMargins(0, 24, 0, 8)
        self._layout.setSpacing(8)
        self._layout.addWidget(self.title)
        self._layout.addWidget(self.hint)
        for index in range(3):
            button = ExampleButton(content)
            button.clicked.connect(lambda _=False, i=index: self.example_chosen.emit(self._examples[i]))
            self._layout.addWidget(button)
            self.buttons.append(button)
        self._layout.addWidget(self.effort)
        self.set_model("", toy=False)

    @property
    def examples(self) -> tuple[str, ...]:
        return self._examples

    def set_model(self, model_name: str, *, toy: bool) -> None:
        """Examples and greeting for the model now loaded."""
        self.title.setText(f"<h3>Chat with {_escape(model_name)}</h3>" if model_name else "<h3>New chat</h3>")
        self.hint.setText(DEMO_HINT if toy else GENERAL_HINT)
        self._examples = examples_for(toy=toy)
        for button, text in zip(self.buttons, self._examples, strict=True):
            button.set_prompt(text)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
