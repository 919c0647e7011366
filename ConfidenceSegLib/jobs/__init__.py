"""Stage 6, runs that chain the stages: predict one input and write it, batch QC, quick start.

In: user options (model, inputs, output folder, method). Out: written outputs and reports, with
progress lines and a prompt, clean stop (:mod:`.progress`). Hands to the front ends: ``cli`` and
the Slicer module (through ``python -m ConfidenceSegLib predict``).
"""
