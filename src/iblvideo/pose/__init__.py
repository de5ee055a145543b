"""Heatmap pose networks: train on labeled frames, evaluate, predict on any video.

Modules: ``labels`` (reading labeled frames), ``backbones``, ``network``, ``augment``, ``train``,
``evaluate``, ``model_dir``, ``predict`` and ``formats``. Nothing is imported here, so importing
the package does not load torch.
"""
