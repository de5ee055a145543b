"""Train, evaluate and run your own pose networks on DeepLabCut / Lightning Pose labeled frames:
``labels``, ``augment``, ``train``, ``evaluate``, ``predict``. Nothing is imported here, so
importing the package does not load torch.
"""
