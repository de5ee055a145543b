"""How many frames travel together through the pipeline; importable without PyAV or torch, so that the
command line can show the default without loading either."""
from __future__ import annotations

# 24 left-camera frames are 31 MB. Tracking in batches of 48 ran 5-15 % faster on a 2-core CPU, but
# peak memory grew from 713 to 877 MB for a 1-minute video (several batches are in flight at once:
# decoded ahead, and one per core being tracked).
BATCH_SIZE = 24
