"""Stage 5, what a prediction leaves behind: files, overlay PNG, HTML page, plots, review table.

In: an :class:`~ConfidenceSegLib.quality.assessed.AssessedPrediction` (maps and verdicts), serialised,
never re-assessed. Out: ``S.seg.nrrd``, ``S_<class>_<map>.nrrd``, ``S.json`` (:mod:`.report`: its one
writer and reader), ``S_overlay.png``, ``review.csv``, ``index.html``, evaluation plots (names in
:mod:`ConfidenceSegLib.contract`). Hands to ``jobs``.
"""
