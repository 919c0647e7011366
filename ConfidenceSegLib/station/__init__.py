"""Presentation in a browser: the review station (``confidenceseg station``, pip extra ``station``).

``cohort`` (the list and decisions, standard library only), ``access`` (token and folder
confinement), ``viewer`` (the case in a Slicer slice view via trame-slicer), ``app`` (the page).
Only ``cohort`` and ``access`` import without the extra.
"""
