"""A synthetic IBL rig: rendered videos with ALF datasets and exact ground truth, for testing every stage."""
from iblvideo.synth.session import synthesize_session

__all__ = ["synthesize_session"]
