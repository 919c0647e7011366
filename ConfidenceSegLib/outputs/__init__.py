"""Stage 5, what a prediction leaves behind: files, overlay PNG, HTML page, plots, review table.

In: a :class:`~ConfidenceSegLib.inference.predict.Prediction` with its quality fields.
Out: ``S.seg.nrrd``, ``S_<class>_<map>.nrrd``, ``S.json``, ``S_overlay.png``, ``review.csv``,
``index.html``, evaluation plots (names in :mod:`ConfidenceSegLib.contract`). Hands to ``jobs``.
"""
