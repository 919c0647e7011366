"""Stage 4, how far to trust a segment: predicted Dice, conformal lower bound, badge; evaluation.

In: uncertainty summaries from ``inference`` (and, to fit or evaluate, true Dice from labelled cases).
Out: a :class:`~.verdict.Verdict` per segment (:mod:`.apply`) in an assessed prediction (:mod:`.assessed`), the
quality model stored in a bundle (:mod:`.fit`, :mod:`.calibration`), metrics (:mod:`.evaluation`).
Hands to ``outputs``.
"""
