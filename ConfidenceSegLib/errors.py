"""The one exception type that carries a user-facing message."""


class ConfidenceSegError(Exception):
    """Bad input or a refused action, with a message meant for the user (no traceback needed)."""
