"""Ground positions for fixed site cameras: a homography between image pixels and the ground
plane, calibrated from four or more pixel ↔ lat/lon pairs measured on site."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import pymap3d

from edge.geo.projection import WGS84, Geolocation


class CalibrationError(ValueError):
    """The calibration points cannot define a ground plane (too few, or degenerate)."""


def _spans_a_plane(points: np.ndarray) -> bool:
    singular = np.linalg.svd(points - points.mean(axis=0), compute_uv=False)
    return bool(singular[0] > 0 and singular[1] / singular[0] > 1e-3)


class GroundHomography:
    """Maps pixels of a fixed camera to lat/lon on flat ground.

    The ground plane is expressed in metres east/north of the calibration points' centroid, so the
    fit is well conditioned; the error estimate is the fit's RMS residual at the calibration points.
    """

    def __init__(self, pixels: Sequence[Sequence[float]], lat_lon: Sequence[Sequence[float]]) -> None:
        if len(pixels) != len(lat_lon):
            raise CalibrationError(f"{len(pixels)} pixel points but {len(lat_lon)} lat/lon points")
        if len(pixels) < 4:
            raise CalibrationError(f"at least 4 pixel ↔ lat/lon pairs are needed, got {len(pixels)}")
        image = np.asarray(pixels, dtype=np.float64)
        geo = np.asarray(lat_lon, dtype=np.float64)
        self.lat0, self.lon0 = float(geo[:, 0].mean()), float(geo[:, 1].mean())
        east, north, _ = pymap3d.geodetic2enu(geo[:, 0], geo[:, 1], 0.0, self.lat0, self.lon0, 0.0, ell=WGS84)
        ground = np.stack([east, north], axis=-1)
        if not (_spans_a_plane(image) and _spans_a_plane(ground)):
            raise CalibrationError("calibration points are degenerate: they lie (nearly) on one line")
        matrix, _ = cv2.findHomography(image, ground, 0)
        if matrix is None or abs(np.linalg.det(matrix)) < 1e-12:
            raise CalibrationError("calibration points are degenerate (three or more on one line?)")
        self.matrix = matrix
        # The homography's scale (and so the sign of w) is arbitrary: the ground side of the horizon line is the
        # side the calibration points are on.
        self._ground_sign = float(np.sign(np.mean(np.c_[image, np.ones(len(image))] @ matrix[2])))
        residuals = np.linalg.norm(self._to_ground(image) - ground, axis=-1)
        self.rms_m = float(math.sqrt(np.mean(residuals**2))) if len(pixels) > 4 else 0.0

    def _to_ground(self, pixels: np.ndarray) -> np.ndarray:
        points = cv2.perspectiveTransform(np.asarray(pixels, dtype=np.float64).reshape(-1, 1, 2), self.matrix)
        return points.reshape(-1, 2)

    def locate(self, pixels: Sequence[Sequence[float]], min_uncertainty_m: float = 0.0) -> list[Geolocation | None]:
        """Lat/lon of pixels; None for pixels on or beyond the ground plane's horizon line."""
        pixels = np.atleast_2d(np.asarray(pixels, dtype=np.float64))
        homogeneous = np.c_[pixels, np.ones(len(pixels))] @ self.matrix.T
        ground = self._to_ground(pixels)
        lat, lon, _ = pymap3d.enu2geodetic(ground[:, 0], ground[:, 1], 0.0, self.lat0, self.lon0, 0.0, ell=WGS84)
        sigma = max(self.rms_m, min_uncertainty_m)
        return [
            None if w * self._ground_sign <= 0 else Geolocation(float(la), float(lo), sigma, float("nan"))
            for w, la, lo in zip(homogeneous[:, 2], np.atleast_1d(lat), np.atleast_1d(lon), strict=True)
        ]

    def ground_distances(self, first: Sequence[Sequence[float]], second: Sequence[Sequence[float]]) -> np.ndarray:
        """Metres on the ground plane between pixels `first[i]` and `second[i]`; NaN beyond the horizon line."""
        first, second = np.atleast_2d(np.asarray(first, np.float64)), np.atleast_2d(np.asarray(second, np.float64))
        ahead = (np.c_[first, np.ones(len(first))] @ self.matrix[2]) * self._ground_sign > 0
        ahead &= (np.c_[second, np.ones(len(second))] @ self.matrix[2]) * self._ground_sign > 0
        distances = np.linalg.norm(self._to_ground(first) - self._to_ground(second), axis=-1)
        return np.where(ahead, distances, np.nan)
