"""Lightning Pose networks without the lightning-pose package: model folders, ensembles, Kalman smoothing.

Modules: ``model`` (a Lightning Pose model folder: ``config.yaml`` + checkpoint, ``heatmap`` and
``heatmap_mhcrnn``), ``eks`` (ensemble Kalman smoothers), ``networks`` (IBL's network sets and their
download), ``pipeline`` (IBL's cascade with ensembles; ``lightning_pose()``). Nothing is imported
here, so importing the package does not load torch.
"""
