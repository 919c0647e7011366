"""The Qt-side helpers of the ConfidenceSeg Slicer module: the background process and the installer.

Kept out of ``ConfidenceSegLib`` because they need Qt and a running 3D Slicer; kept out of
``ConfidenceSeg.py`` so that the module file holds only the widget and the logic that delegates.
"""
