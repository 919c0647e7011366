"""Stage 3, samples and uncertainty maps: a bundle run on an image with MC dropout, ensembles or TTA.

In: a :class:`~ConfidenceSegLib.model.bundle.ModelBundle` and a SimpleITK image.
Out: :class:`~.predict.Prediction`: per class a mask, probability, entropy and mutual-information
map on the image grid plus the uncertainty summary. Hands to ``quality`` and ``outputs``.
"""
