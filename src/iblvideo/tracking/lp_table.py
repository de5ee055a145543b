"""The Lightning Pose table as IBL's pipeline writes it, from each network's member predictions.

Per network, in the set's order (nose tip, eye, paws, tongue; tail start on the body camera): every
keypoint the network has, in its own order; an ensemble smoothed as IBL smooths it (the pupil
smoother for the eye, single-view EKS for the paws) in the crop's own pixels, where the networks
answered; then the window's corner added and, on the right camera, x mirrored back (``W − x``).

Two modes. ``ibl_exact`` reproduces IBL's published table, its two slips included: eks 3.0.0's pupil
columns as eks labels them (the block it names ``pupil_bottom_r`` holds the right point and the other
way round, its posterior variances read off neighbouring entries), and a window that DALI moved
inside the frame mapped back from where IBL asked for it, not where it was cut. The default corrects
both; everything else is the same.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from iblvideo.tracking.eks import PUPIL_ORDER, smooth_pupil, smooth_single_view
from iblvideo.tracking.lp_crops import Window
from iblvideo.tracking.lp_networks import Network, NetworkSet

X_COLUMNS, Y_COLUMNS = ("_x", "_x_ens_median"), ("_y", "_y_ens_median")  # the columns IBL moves into the camera's pixels


@dataclass(frozen=True)
class NetworkOutput:
    """What the members of one network found: (M, T, K) crop pixels and likelihoods, K its keypoints."""

    network: Network
    keypoints: tuple[str, ...]
    x: np.ndarray
    y: np.ndarray
    likelihood: np.ndarray
    window: Window


def smoothed(output: NetworkOutput, profile: NetworkSet, fps: float, ibl_exact: bool) -> pd.DataFrame:
    """One network's columns in its crop's pixels: a lone member's as they are, an ensemble smoothed as IBL does."""
    x, y, likelihood, points = output.x, output.y, output.likelihood, output.keypoints
    if len(x) == 1:
        return pd.DataFrame({f"{p}_{field}": values[0][:, k] for k, p in enumerate(points)
                             for field, values in (("x", x), ("y", y), ("likelihood", likelihood))})
    if output.network.smoother == "pupil":
        order = [points.index(p) for p in PUPIL_ORDER]
        return smooth_pupil(x[..., order], y[..., order], likelihood[..., order], *profile.pupil_s, eks=profile.eks, published_labels=ibl_exact)
    if output.network.smoother == "single_view":
        table = smooth_single_view(points, x, y, likelihood, profile.paw_step_variance(fps), eks=profile.eks)
        variances = [c for c in table.columns if c.endswith("_posterior_var")]
        table[variances] *= profile.paw_variance_inflation
        return table
    raise ValueError(f"IBL's pipeline smooths no ensemble of the {output.network.label} network; its profile allows one member")


def network_table(output: NetworkOutput, profile: NetworkSet, fps: float, flip: bool, ibl_exact: bool) -> pd.DataFrame:
    """One network's columns in the camera's pixels."""
    table = smoothed(output, profile, fps, ibl_exact)
    window = output.window
    x0, y0 = (window.x, window.y) if ibl_exact else window.origin
    for column in table.columns:
        if column.endswith(X_COLUMNS):
            table[column] = window.frame[0] - (table[column] + x0) if flip else table[column] + x0
        elif column.endswith(Y_COLUMNS):
            table[column] += y0
        elif column.endswith("_likelihood"):
            # float32 confidences sum to a hair over 1 (1.0000001): a likelihood is at most 1
            table[column] = np.minimum(table[column].to_numpy(np.float64), 1.0)
    return table


def pose_table(outputs: list[NetworkOutput], profile: NetworkSet, fps: float, flip: bool, ibl_exact: bool) -> pd.DataFrame:
    """IBL's table: every network's columns side by side, in the order of ``outputs``."""
    return pd.concat([network_table(o, profile, fps, flip, ibl_exact) for o in outputs], axis=1)
