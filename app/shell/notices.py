"""The first-run empty state and the load-error banner."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from gpt_oss_desktop.app.backends.chat_backend import LoadError

# The first-start block's widest: a comfortable line length for its paragraph.
_BLOCK_WIDTH = 560


class EmptyState(QWidget):
    """Shown while no model is loaded: offers the demo model or a checkpoint folder.

    Signals:
        demo_requested(): load the bundled demo model.
        open_requested(): choose a checkpoint folder.
        download_requested(): open the download wizard.
    """

    demo_requested = Signal()
    open_requested = Signal()
    download_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel("<h2>No model loaded</h2>", self)
        text = QLabel(
            "Load a gpt-oss checkpoint folder (gpt-oss-20b or gpt-oss-120b), "
            "or try the demo model to see how the app works. The demo is a toy: a tiny model trained on "
            "synthetic arithmetic-style questions; it shows live reasoning and effort but its answers are "
            "usually wrong.",
            self,
        )
        text.setWordWrap(True)
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.demo_button = QPushButton("Try the demo model", self)
        self.demo_button.setAccessibleName("Load the demo model")
        self.demo_button.clicked.connect(self.demo_requested)
        self.open_button = QPushButton("Open a model folder…", self)
        self.open_button.setAccessibleName("Open a model folder")
        self.open_button.clicked.connect(self.open_requested)
        self.download_button = QPushButton("Download gpt-oss-20b…", self)
        self.download_button.setAccessibleName("Download a model")
        self.download_button.clicked.connect(self.download_requested)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.demo_button)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.download_button)
        buttons.addStretch(1)
        self.status = QLabel(self)
        self.status.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # The block keeps a readable width and sits in the middle of the pane at any window size (the pane itself
        # spans the window: capping the pane instead left the block at its left side).
        self.block = QWidget(self)
        self.block.setMaximumWidth(_BLOCK_WIDTH)
        block = QVBoxLayout(self.block)
        block.setContentsMargins(0, 0, 0, 0)
        block.addWidget(title, 0, Qt.AlignmentFlag.AlignHCenter)
        block.addWidget(text)
        block.addLayout(buttons)
        block.addWidget(self.status)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.block, 100)  # it takes the room up to its maximum width, the stretches share the rest
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(2)

    def set_loading(self, text: str | None) -> None:
        """While a model loads the buttons are disabled and ``text`` says what is happening."""
        self.demo_button.setEnabled(text is None)
        self.open_button.setEnabled(text is None)
        self.download_button.setEnabled(text is None)
        self.status.setText(text or "")


class ErrorBanner(QFrame):
    """A dismissable banner at the top of the window: what went wrong and what to do about it.

    Signals:
        open_requested(), download_requested(), demo_requested(): the same offers as the empty state.
    """

    demo_requested = Signal()
    open_requested = Signal()
    download_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        # One subtle accent: a border in the palette's highlight colour marks the banner without a fixed colour.
        self.setStyleSheet("#errorBanner { border: 1px solid palette(highlight); border-radius: 6px; }")
        self.setAccessibleName("Error")
        self.title = QLabel(self)
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.advice = QLabel(self)
        self.advice.setWordWrap(True)
        self.open_button = QPushButton("Open another folder…", self)
        self.open_button.setAccessibleName("Open a model folder")
        self.open_button.clicked.connect(self.open_requested)
        self.download_button = QPushButton("Download a model…", self)
        self.download_button.setAccessibleName("Download a model")
        self.download_button.clicked.connect(self.download_requested)
        self.demo_button = QPushButton("Try the demo", self)
        self.demo_button.setAccessibleName("Load the demo model")
        self.demo_button.clicked.connect(self.demo_requested)
        dismiss = QPushButton("Dismiss", self)
        dismiss.setAccessibleName("Dismiss error")
        dismiss.clicked.connect(self.hide)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.demo_button)
        buttons.addWidget(dismiss)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.advice)
        layout.addLayout(buttons)
        self.hide()

    def show_load_error(self, error: LoadError) -> None:
        self.show_message("Could not load the model", str(error), error.advice)

    def show_message(self, headline: str, detail: str, advice: str = "") -> None:
        self.title.setText(f"<b>{headline}</b><br>{_escape(detail)}")
        self.advice.setText(advice)
        self.advice.setVisible(bool(advice))
        self.show()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
