"""The Results section's structure table: one row per structure of a prediction, the ones to review
first (:func:`~ConfidenceSegLib.slicer.results.structure_badges`); a click shows that structure's heatmap."""

import qt

from ConfidenceSegLib.contract import badge_label

HEADERS = ["Structure", "Badge", "Predicted Dice", "Lower bound", "Reason"]
STRUCTURE_COLUMN, BADGE_COLUMN = HEADERS.index("Structure"), HEADERS.index("Badge")


def fill_structure_table(table, badges):
    """Show ``badges`` (``structure_badges``), one row each, the badge word in its colour."""
    table.clear()
    table.setColumnCount(len(HEADERS))
    table.setHorizontalHeaderLabels(HEADERS)
    table.setRowCount(len(badges))
    for row, badge in enumerate(badges):
        values = [badge.class_name, badge_label(badge.badge), badge.predicted_dice, badge.dice_lower_bound,
                  badge.reason]
        for column, value in enumerate(values):
            item = qt.QTableWidgetItem(f"{value:.3f}" if isinstance(value, float) else (value or ""))
            item.setToolTip(badge.text())
            table.setItem(row, column, item)
        table.item(row, BADGE_COLUMN).setForeground(qt.QBrush(qt.QColor(badge.color)))
    table.resizeColumnsToContents()


def structure_at(table, row):
    """The structure (class name) shown in ``row`` ("" outside the table)."""
    item = table.item(row, STRUCTURE_COLUMN) if 0 <= row < table.rowCount else None
    return item.text() if item is not None else ""
