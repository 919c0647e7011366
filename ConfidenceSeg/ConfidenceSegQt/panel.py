"""Sections the module adds to its panel in code (beside the ``.ui`` file's)."""

import ctk
import qt


def add_section(parent_layout, title, rows, button_text):
    """A collapsed section titled ``title`` with labelled ``rows`` ((label, widget) pairs), a run button
    and a status label under them; returns (button, status label)."""
    box = ctk.ctkCollapsibleButton()
    box.text = title
    box.collapsed = True
    parent_layout.addWidget(box)
    form = qt.QFormLayout(box)
    for label, widget in rows:
        form.addRow(label, widget)
    button, status = qt.QPushButton(button_text), qt.QLabel()
    form.addRow(button)
    form.addRow(status)
    return button, status
