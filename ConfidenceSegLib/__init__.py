"""ConfidenceSeg: segmentation with honest uncertainty.

The pure-Python library behind the ConfidenceSeg 3D Slicer module and the ``confidenceseg``
command-line tool. Data flows one way, one package per stage::

    io -> annotation -> model -> inference -> quality -> outputs -> jobs -> cli / slicer
    (files)  (labels)  (bundle)  (samples,    (badge)   (files,   (runs)  (front ends)
                                  maps)                  report)

``training`` turns labelled data (``annotation``) into bundles (``model``). Names shared by every
stage and front end (methods, tags, badges, file names, report keys) live in :mod:`.contract`.
See ``docs/architecture.md``.
"""

__version__ = "0.1.0"
