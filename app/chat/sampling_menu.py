"""A small popup with the sampling settings (temperature, top-p, max tokens, thinking budget), remembered in
QSettings."""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QLayout,
    QMenu,
    QPushButton,
    QSpinBox,
    QWidget,
    QWidgetAction,
)

from gpt_oss_desktop.app.settings import MAX_TOKENS_KEY, TEMPERATURE_KEY, THINKING_BUDGET_KEY, TOP_P_KEY
from gpt_oss_desktop.engine.sampling import DEFAULT_MAX_TOKENS, SamplingParams

# Defaults come from SamplingParams itself (docs/model.md#sampling-defaults: temperature 1.0, top_p 1.0), not
# repeated here.
_DEFAULTS = SamplingParams()


class SamplingMenu(QMenu):
    """Spin boxes for the sampling parameters of the next answers."""

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        form_widget = QWidget(self)
        form = QFormLayout(form_widget)

        self.temperature = QDoubleSpinBox(form_widget)
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setDecimals(2)
        self.temperature.setAccessibleName("Temperature")
        self.temperature.setToolTip("0 always picks the most likely token")
        self.top_p = QDoubleSpinBox(form_widget)
        self.top_p.setRange(0.01, 1.0)
        self.top_p.setSingleStep(0.05)
        self.top_p.setDecimals(2)
        self.top_p.setAccessibleName("Top p")
        self.max_tokens = QSpinBox(form_widget)
        self.max_tokens.setRange(1, 131072)
        self.max_tokens.setSingleStep(256)
        self.max_tokens.setGroupSeparatorShown(True)
        self.max_tokens.setAccessibleName("Maximum tokens per answer")
        # 0 shows as "No limit" here; the engine reads a budget of 0 as "do not think", which this menu does not
        # offer (low effort is the way to think little).
        self.thinking_budget = QSpinBox(form_widget)
        self.thinking_budget.setRange(0, 131072)
        self.thinking_budget.setSingleStep(256)
        self.thinking_budget.setGroupSeparatorShown(True)
        self.thinking_budget.setSpecialValueText("No limit")
        self.thinking_budget.setSuffix(" tokens")
        self.thinking_budget.setAccessibleName("Thinking budget")
        self.thinking_budget.setToolTip(
            "The most tokens the model may think before it must answer, counted over the whole answer (its tool "
            "calls included). Applies to models running in this app; a connected server is asked without it."
        )
        reset = QPushButton("Reset to defaults", form_widget)
        reset.setAccessibleName("Reset sampling settings to defaults")
        reset.clicked.connect(self.reset)

        form.addRow("&Temperature", self.temperature)
        form.addRow("Top &p", self.top_p)
        form.addRow("&Max tokens", self.max_tokens)
        form.addRow("Thinking &budget", self.thinking_budget)
        form.addRow(reset)
        # The form's size is fixed to what its labels and boxes need, so the menu never cuts a label short.
        form.setSizeConstraint(QLayout.SizeConstraint.SetFixedSize)
        action = QWidgetAction(self)
        action.setDefaultWidget(form_widget)
        self.addAction(action)
        self.addSeparator()
        # The send key, kept here beside the other composer preferences; the composer remembers it.
        self.ctrl_enter_action = self.addAction("Send with Ctrl+Enter (Enter makes a new line)")
        self.ctrl_enter_action.setCheckable(True)

        self.temperature.setValue(float(settings.value(TEMPERATURE_KEY, _DEFAULTS.temperature)))  # type: ignore[arg-type]
        self.top_p.setValue(float(settings.value(TOP_P_KEY, _DEFAULTS.top_p)))  # type: ignore[arg-type]
        self.max_tokens.setValue(int(settings.value(MAX_TOKENS_KEY, DEFAULT_MAX_TOKENS)))  # type: ignore[call-overload]
        self.thinking_budget.setValue(int(settings.value(THINKING_BUDGET_KEY, 0)))  # type: ignore[call-overload]
        self.temperature.valueChanged.connect(lambda v: settings.setValue(TEMPERATURE_KEY, v))
        self.top_p.valueChanged.connect(lambda v: settings.setValue(TOP_P_KEY, v))
        self.max_tokens.valueChanged.connect(lambda v: settings.setValue(MAX_TOKENS_KEY, v))
        self.thinking_budget.valueChanged.connect(lambda v: settings.setValue(THINKING_BUDGET_KEY, v))

    def params(self) -> SamplingParams:
        return SamplingParams(
            temperature=self.temperature.value(),
            top_p=self.top_p.value(),
            max_tokens=self.max_tokens.value(),
            reasoning_budget=self.thinking_budget.value() or None,
        )

    def reset(self) -> None:
        self.temperature.setValue(_DEFAULTS.temperature)
        self.top_p.setValue(_DEFAULTS.top_p)
        self.max_tokens.setValue(DEFAULT_MAX_TOKENS)
        self.thinking_budget.setValue(0)
