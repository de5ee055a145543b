"""Tracking: a tracker turns a video's decoded batches into pose tracks.

``tracker`` (the contract and the registry of trackers), ``cascade`` (IBL's cascade that every
tracker shares: ROI sample, crop windows, the one decode pass), ``crops``, and the trackers:
``demo`` (our networks, ``.dlc.pqt``) and ``lightning_pose`` (IBL's Lightning Pose ensembles with
``eks`` smoothing); ``run`` names outputs and writes them (``dlc()``, ``track()``). Nothing is
imported here, so importing the package does not load torch.
"""
