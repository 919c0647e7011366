"""Stage 1, what people marked: confidence layers, rater fractions, labelled datasets.

In: segments from ``io`` (tagged per class and confidence level) or several raters' masks.
Out: per-class confidence maps (float32 in [0, 1], image grid) and :class:`~.datasets.Dataset`
cases. Hands to ``training`` (targets) and ``quality`` (true Dice for calibration and evaluation).
"""
