"""Confidence-aware training of segmentation ensembles into model bundles (see :mod:`.trainer`).

In: a labelled :class:`~ConfidenceSegLib.annotation.datasets.Dataset` and training options.
Out: a model bundle (``model``), calibrated on held-out subjects by ``quality.calibration``.
Beside the flow: it feeds stage 2 (``model``) from stage 1 (``annotation``).
"""
