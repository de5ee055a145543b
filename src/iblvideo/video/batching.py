"""How many frames travel together through the pipeline; importable without PyAV or torch, so that the
command line can show the default without loading either."""
from __future__ import annotations

# 32 left-camera frames are 42 MB, and several batches are in flight at once (decoded ahead, and one per
# core being tracked). On a 2-core CPU, batches of 32 tracked a 1280×1024 video 4 % faster than batches
# of 24 (peak memory 678 against 655 MB for a 1-minute video); batches of 48 were no faster still and
# took 772 MB.
BATCH_SIZE = 32
