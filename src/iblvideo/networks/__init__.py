"""Pose networks in PyTorch: our heatmap networks (``pose``, ``backbones``, ``settings``, ``model_dir``)
and Lightning Pose model folders (``lightning_pose``). Nothing is imported here, so importing the
package does not load torch.
"""
