"""The Review section's table: one row per case and class of ``review.csv``, in review order."""

import qt

from ConfidenceSegLib.contract import badge_color

HEADERS = ["Case", "Class", "Predicted Dice", "Lower bound", "Badge", "Decision"]
BADGE_COLUMN, DECISION_COLUMN = HEADERS.index("Badge"), HEADERS.index("Decision")


def fill_review_table(table, rows, decisions):
    """Show ``rows`` (``read_review_table``) with each case's latest decision (``load_decisions``)."""
    table.clear()
    table.setColumnCount(len(HEADERS))
    table.setHorizontalHeaderLabels(HEADERS)
    table.setRowCount(len(rows))
    for row, entry in enumerate(rows):
        decided = decisions.get((entry.case, entry.class_name))
        values = [entry.case, entry.class_name, entry.predicted_dice, entry.dice_lower_bound, entry.badge,
                  decided.decision if decided else ""]
        for column, value in enumerate(values):
            text = f"{value:.3f}" if isinstance(value, float) else (value or "")
            table.setItem(row, column, qt.QTableWidgetItem(text))
        table.item(row, BADGE_COLUMN).setForeground(qt.QBrush(qt.QColor(badge_color(entry.badge))))
    table.resizeColumnsToContents()
