"""What is derived from pose tracks and video, as IBL computes it: ``motion_energy``, ``features``
(pupil diameter, licks, sniffs, speeds; ``smoothing``), ``qc``."""
