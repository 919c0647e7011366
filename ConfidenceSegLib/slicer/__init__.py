"""Presentation in 3D Slicer: every adapter that touches MRML, without Qt or a global scene.

In: a scene or nodes (3D Slicer's, or the ``slicer-core`` wheel's in tests) and library results.
Out: volume and segmentation nodes, confidence layers, heatmaps, badges, the review table, and the
background ``predict`` process's command line. Used by the module in ``ConfidenceSeg/``.
"""
