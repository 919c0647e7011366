"""Stage 0, files in and out: images, ``.seg.nrrd`` segmentations, bundled resources, safe writes.

In: paths of images (NRRD, NIfTI, MHA, PNG/JPEG/TIFF, DICOM series) and segmentation files.
Out: SimpleITK images (arrays in SimpleITK order, LPS geometry) and :class:`~.segfile.Segment` lists.
Hands to ``annotation`` and ``model``; every later stage writes its files through :mod:`.safe_files`.
"""
