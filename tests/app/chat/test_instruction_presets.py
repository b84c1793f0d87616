"""Instruction presets and the default instructions for new chats: the stored form (app/chat/instruction_presets.py)
and the instructions dialog's Presets row and checkbox over a real ini QSettings, with the real QInputDialog and
QMessageBox answered as a user would."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QInputDialog, QMessageBox

from gpt_oss_desktop.app.chat import instruction_presets
from gpt_oss_desktop.app.chat.instruction_presets import InstructionPresets, default_from_stored
from gpt_oss_desktop.app.chat.instructions_dialog import (
    InstructionsDialog,
    default_instructions,
    set_default_instructions,
    stored_presets,
)
from gpt_oss_desktop.app.settings import DEFAULT_INSTRUCTIONS_KEY, INSTRUCTION_PRESETS_KEY, make_settings
from tests.app.chat.modal_answers import answer_next, press, type_name

FRENCH = "Answer in French."
REVIEWER = "You are a code reviewer. Point out bugs first, then style."


@pytest.fixture
def ini(tmp_path: Path) -> Path:
    return tmp_path / "settings.ini"


@pytest.fixture
def settings(ini: Path) -> QSettings:
    return make_settings(str(ini))


def open_dialog(qtbot: Any, settings: QSettings, text: str = "") -> InstructionsDialog:
    dialog = InstructionsDialog(text, settings=settings)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def combo_names(dialog: InstructionsDialog) -> list[str]:
    return [dialog.presets_combo.itemText(i) for i in range(dialog.presets_combo.count())]


def save_as(dialog: InstructionsDialog, name: str) -> list[str]:
    """Press Save as preset… and type ``name``; the list names the input dialog if it was answered."""
    asked = answer_next(QInputDialog, type_name(name))
    QTest.mouseClick(dialog.save_preset_button, Qt.MouseButton.LeftButton)
    return asked


def set_editor(dialog: InstructionsDialog, text: str) -> None:
    dialog.editor.selectAll()
    QTest.keyClicks(dialog.editor, text)


# -- the stored form ------------------------------------------------------------------------------------------------


def test_presets_round_trip_and_list_alphabetically() -> None:
    presets = InstructionPresets().with_preset("reviewer", REVIEWER).with_preset("  French\n", f" {FRENCH}\n")
    assert presets.names() == ("French", "reviewer")  # name cleaned, case ignored in the order
    assert presets.text("French") == FRENCH
    again = InstructionPresets.from_stored(presets.to_json())
    assert again == presets and again.names() == presets.names()
    assert presets.without("French").names() == ("reviewer",)
    with pytest.raises(ValueError, match="name and instructions"):
        presets.with_preset("empty", "   ")


@pytest.mark.parametrize(
    "stored",
    ["{not json", '["a list"]', "42", ["{'French': 'x'", "'reviewer': 'y'}"], b"\x00"],
    ids=["not-json", "json-array", "json-number", "ini-list", "bytes"],
)
def test_a_broken_stored_value_gives_no_presets_and_a_log_line(stored: object, caplog: Any) -> None:
    with caplog.at_level(logging.WARNING, logger=instruction_presets.__name__):
        presets = InstructionPresets.from_stored(stored)
    assert presets.names() == ()
    assert [r.getMessage() for r in caplog.records if r.name == instruction_presets.__name__]


def test_entries_without_a_name_or_text_are_left_out_and_the_rest_kept(caplog: Any) -> None:
    stored = '{"French": "Answer in French.", "": "nameless", "number": 3, "blank": "  ", "x": null}'
    with caplog.at_level(logging.WARNING, logger=instruction_presets.__name__):
        presets = InstructionPresets.from_stored(stored)
    assert dict(presets.texts) == {"French": FRENCH}
    assert len([r for r in caplog.records if r.name == instruction_presets.__name__]) == 4


def test_the_default_is_plain_text_and_anything_else_is_none(caplog: Any) -> None:
    assert default_from_stored(None) == ""
    assert default_from_stored(f"  {FRENCH}\n") == FRENCH
    with caplog.at_level(logging.WARNING, logger=instruction_presets.__name__):
        assert default_from_stored(["Answer in French", "briefly"]) == ""
    assert caplog.records


# -- the dialog -----------------------------------------------------------------------------------------------------


def test_a_preset_is_saved_listed_and_chosen(qtbot: Any, settings: QSettings) -> None:
    dialog = open_dialog(qtbot, settings, FRENCH)
    assert (
        dialog.presets_combo.isVisible() and combo_names(dialog) == [] and not dialog.delete_preset_button.isEnabled()
    )
    assert save_as(dialog, "French") == ["Save as preset"]
    assert stored_presets(settings).text("French") == FRENCH
    assert combo_names(dialog) == ["French"] and dialog.chosen_preset() == "French"
    assert dialog.delete_preset_button.isEnabled()

    set_editor(dialog, REVIEWER)
    assert save_as(dialog, "Code reviewer")
    assert combo_names(dialog) == ["Code reviewer", "French"]

    # Choosing one in the combo (as a user does: the popup's item activated) fills the editor, which stays editable.
    dialog.presets_combo.setCurrentIndex(1)
    dialog.presets_combo.activated.emit(1)
    assert dialog.text() == FRENCH
    QTest.keyClicks(dialog.editor, " Be brief.")
    assert dialog.text() == f"{FRENCH} Be brief."
    # The choice is one undo step: the editor's earlier text comes back.
    assert dialog.choose_preset("Code reviewer") and dialog.text() == REVIEWER
    dialog.editor.undo()
    assert dialog.text() == f"{FRENCH} Be brief."
    assert not dialog.choose_preset("missing")


def test_save_is_offered_only_for_some_text(qtbot: Any, settings: QSettings) -> None:
    dialog = open_dialog(qtbot, settings, "")
    assert not dialog.save_preset_button.isEnabled()
    QTest.keyClicks(dialog.editor, "Be brief.")
    assert dialog.save_preset_button.isEnabled()
    # A blank name saves nothing.
    assert save_as(dialog, "   ")
    assert stored_presets(settings).names() == ()


def test_saving_under_an_existing_name_asks_before_replacing(qtbot: Any, settings: QSettings) -> None:
    dialog = open_dialog(qtbot, settings, FRENCH)
    assert save_as(dialog, "Style")
    set_editor(dialog, REVIEWER)

    declined = answer_next(QMessageBox, press(QMessageBox.StandardButton.No))
    assert save_as(dialog, "Style")
    assert declined == ["Replace preset"] and stored_presets(settings).text("Style") == FRENCH

    accepted = answer_next(QMessageBox, press(QMessageBox.StandardButton.Yes))
    assert save_as(dialog, "Style")
    assert accepted == ["Replace preset"] and stored_presets(settings).text("Style") == REVIEWER
    assert combo_names(dialog) == ["Style"]


def test_a_preset_is_deleted_after_asking_and_the_editor_keeps_its_text(qtbot: Any, settings: QSettings) -> None:
    dialog = open_dialog(qtbot, settings, FRENCH)
    assert save_as(dialog, "French")
    set_editor(dialog, REVIEWER)
    assert save_as(dialog, "Reviewer")
    assert dialog.choose_preset("French")

    kept = answer_next(QMessageBox, press(QMessageBox.StandardButton.No))
    QTest.mouseClick(dialog.delete_preset_button, Qt.MouseButton.LeftButton)
    assert kept == ["Delete preset"] and stored_presets(settings).names() == ("French", "Reviewer")

    deleted = answer_next(QMessageBox, press(QMessageBox.StandardButton.Yes))
    QTest.mouseClick(dialog.delete_preset_button, Qt.MouseButton.LeftButton)
    assert deleted and stored_presets(settings).names() == ("Reviewer",)
    assert combo_names(dialog) == ["Reviewer"] and dialog.chosen_preset() is None
    assert not dialog.delete_preset_button.isEnabled()
    assert dialog.text() == FRENCH


def test_presets_and_the_default_survive_a_restart(qtbot: Any, settings: QSettings, ini: Path) -> None:
    dialog = open_dialog(qtbot, settings, FRENCH)
    assert save_as(dialog, "French")
    # On disk at once, not when Qt next gets round to it: kept if the app is killed. (A second QSettings in this
    # process would see the value from Qt's shared cache even before it is written, so the file is read here.)
    assert "instruction_presets" in ini.read_text(encoding="utf-8")
    dialog.default_box.setChecked(True)
    dialog.accept()
    assert "default_instructions" in ini.read_text(encoding="utf-8")

    restarted = make_settings(str(ini))  # what the next run of the app reads
    assert stored_presets(restarted).text("French") == FRENCH
    assert default_instructions(restarted) == FRENCH
    again = open_dialog(qtbot, restarted, "")
    assert combo_names(again) == ["French"] and not again.default_box.isChecked()
    assert ini.stat().st_mode & 0o077 == 0  # the presets are the user's own: the file stays private


def test_a_broken_stored_value_opens_with_no_presets_and_is_replaced_by_the_next_save(
    qtbot: Any, settings: QSettings, caplog: Any
) -> None:
    settings.setValue(INSTRUCTION_PRESETS_KEY, "{'French': oops")
    with caplog.at_level(logging.WARNING, logger=instruction_presets.__name__):
        dialog = open_dialog(qtbot, settings, FRENCH)
    assert combo_names(dialog) == [] and not dialog.presets_combo.isEnabled()
    assert any("not JSON" in r.getMessage() for r in caplog.records)
    assert save_as(dialog, "French")
    assert stored_presets(settings).names() == ("French",)


def test_the_checkbox_sets_and_clears_the_default_on_ok_only(qtbot: Any, settings: QSettings) -> None:
    first = open_dialog(qtbot, settings, FRENCH)
    assert not first.default_box.isChecked()
    first.default_box.setChecked(True)
    first.reject()  # Cancel changes nothing
    assert default_instructions(settings) == ""

    second = open_dialog(qtbot, settings, FRENCH)
    second.default_box.setChecked(True)
    set_editor(second, f"{FRENCH} Be brief.")  # the text as it is when OK is pressed
    second.accept()
    assert default_instructions(settings) == f"{FRENCH} Be brief."
    assert settings.value(DEFAULT_INSTRUCTIONS_KEY) == f"{FRENCH} Be brief."

    # Another chat's instructions: unchecked, and OK leaves the default alone.
    other = open_dialog(qtbot, settings, REVIEWER)
    assert not other.default_box.isChecked() and FRENCH in other.default_box.toolTip()
    other.accept()
    assert default_instructions(settings) == f"{FRENCH} Be brief."

    # The default's own text: checked; unchecking clears the default.
    same = open_dialog(qtbot, settings, f"{FRENCH} Be brief.")
    assert same.default_box.isChecked()
    same.default_box.setChecked(False)
    same.accept()
    assert default_instructions(settings) == "" and not settings.contains(DEFAULT_INSTRUCTIONS_KEY)


def test_without_settings_the_presets_row_and_checkbox_are_hidden(qtbot: Any) -> None:
    dialog = InstructionsDialog("old")
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.editor.isVisible()
    assert not dialog.presets_combo.isVisible() and not dialog.default_box.isVisible()
    dialog.accept()  # nothing to store
    assert dialog.text() == "old"


def test_set_default_instructions_strips_and_blank_removes(settings: QSettings) -> None:
    set_default_instructions(settings, f"\n{FRENCH}  ")
    assert default_instructions(settings) == FRENCH
    set_default_instructions(settings, "  ")
    assert not settings.contains(DEFAULT_INSTRUCTIONS_KEY)
