"""Stage 2, the model: bundles (safetensors + JSON), networks, compute device, preprocessing.

In: a bundle folder and images from ``io``. Out: loaded :class:`~.bundle.ModelBundle` members and
model-grid tensors (:mod:`.preprocessing`, shared by training and inference, 2D and 3D).
Hands to ``inference`` (and ``training``, which writes bundles).
"""
