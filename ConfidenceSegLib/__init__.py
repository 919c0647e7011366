"""ConfidenceSeg: segmentation with honest uncertainty.

The pure-Python library behind the ConfidenceSeg 3D Slicer module and the ``confidenceseg``
command-line tool. Data flows one way:
image -> model -> samples -> uncertainty maps -> quality -> presentation (Slicer / CLI / report).
"""

__version__ = "0.1.0"
