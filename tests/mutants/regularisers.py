"""Mutants of the regularisers: VICReg's terms, SIGReg and its directions."""

from __future__ import annotations

import numpy as np

from jepa_core.protocols import FloatArray
from jepa_core.reference import ReferenceBackend
from jepa_core.regularisers import epps_pulley, vicreg_variance

from ._registry import backend_getter, mutant


def _epps_pulley_variant(projections: FloatArray, knots: FloatArray, window: bool, sine: bool) -> FloatArray:
    """The Epps-Pulley statistic of each column, with the window or the sine part optionally dropped."""
    angles = projections[:, :, None] * knots  # (N, M, T)
    normal = np.exp(-0.5 * knots**2)  # (T,)
    distance = (np.cos(angles).mean(axis=0) - normal) ** 2  # (M, T)
    if sine:
        distance = distance + np.sin(angles).mean(axis=0) ** 2
    integrand = normal * distance if window else distance
    out: FloatArray = projections.shape[0] * 0.5 * ((integrand[:, 1:] + integrand[:, :-1]) * np.diff(knots)).sum(-1)
    return out


@mutant("sigreg",
        "test_sigreg_gaussian_near_floor",
        "test_sigreg_departure_grows_with_batch",
        "test_sigreg_nonnegative_and_matches_oracle")
class SigregWithoutBatchFactor(ReferenceBackend):
    """SIGReg as the mean distance between characteristic functions, without the factor N."""

    name = "mutant: SIGReg without the factor N"

    def sigreg(self, embeddings: FloatArray, directions: FloatArray, knots: FloatArray) -> float:
        return float(np.mean(epps_pulley(embeddings @ directions, knots)) / len(embeddings))


@mutant("sigreg", "test_sigreg_gaussian_near_floor", "test_sigreg_nonnegative_and_matches_oracle")
class SigregWithoutWindow(ReferenceBackend):
    """SIGReg integrating |phi_N - phi|² without the window exp(-t²/2)."""

    name = "mutant: SIGReg without the window"

    def sigreg(self, embeddings: FloatArray, directions: FloatArray, knots: FloatArray) -> float:
        return float(np.mean(_epps_pulley_variant(embeddings @ directions, knots, window=False, sine=True)))


@mutant("sigreg",
        "test_sigreg_gaussian_near_floor",
        "test_sigreg_rejects_shift",
        "test_sigreg_nonnegative_and_matches_oracle")
class SigregCosineOnly(ReferenceBackend):
    """SIGReg comparing only the real (cosine) part of the characteristic functions."""

    name = "mutant: SIGReg cosine part only"

    def sigreg(self, embeddings: FloatArray, directions: FloatArray, knots: FloatArray) -> float:
        return float(np.mean(_epps_pulley_variant(embeddings @ directions, knots, window=True, sine=False)))


@mutant("sigreg_directions", "test_sigreg_directions_unit_columns", "test_sigreg_directions_isotropic")
class UnnormalisedDirections(ReferenceBackend):
    """Draws SIGReg's directions as standard normal vectors and forgets to normalise them."""

    name = "mutant: SIGReg directions not normalised"

    def sigreg_directions(self, dim: int, num: int, seed: int) -> FloatArray:
        out: FloatArray = np.random.default_rng(seed).standard_normal((dim, num))
        return out


@mutant("vicreg_variance", "test_vicreg_variance_of_collapse", "test_vicreg_variance_nonnegative_and_matches_oracle")
class VicregWithoutEps(ReferenceBackend):
    """VICReg's standard deviation taken as sqrt(var), without the epsilon."""

    name = "mutant: VICReg std without eps"

    def vicreg_variance(self, embeddings: FloatArray, gamma: float, eps: float) -> float:
        return vicreg_variance(embeddings, gamma, eps=0.0)


@mutant("vicreg_covariance", "test_vicreg_covariance_nonnegative_and_matches_oracle")
class CovarianceBiased(ReferenceBackend):
    """The covariance matrix divided by N instead of N - 1."""

    name = "mutant: VICReg covariance biased"

    def vicreg_covariance(self, embeddings: FloatArray) -> float:
        rows = embeddings.reshape(-1, embeddings.shape[-1])
        centred = rows - rows.mean(axis=0)
        cov = centred.T @ centred / rows.shape[0]
        off = cov - np.diag(np.diag(cov))
        return float((off**2).sum() / rows.shape[1])


@mutant("vicreg_covariance", "test_vicreg_covariance_zero_when_uncorrelated",
        "test_vicreg_covariance_nonnegative_and_matches_oracle")
class CovarianceWithDiagonal(ReferenceBackend):
    """The covariance penalty summed over the whole matrix, variances included."""

    name = "mutant: VICReg covariance keeps the diagonal"

    def vicreg_covariance(self, embeddings: FloatArray) -> float:
        rows = embeddings.reshape(-1, embeddings.shape[-1])
        cov = np.cov(rows, rowvar=False).reshape(rows.shape[1], rows.shape[1])
        return float((cov**2).sum() / rows.shape[1])


@mutant("vicreg_variance", "test_vicreg_flattens_leading_axes")
class VarianceOverTheFirstSample(ReferenceBackend):
    """Tokens ``(B, K, D)`` regularised as the first sample's ``(K, D)`` rows instead of all ``B * K``."""

    name = "mutant: VICReg variance reads one sample"

    def vicreg_variance(self, embeddings: FloatArray, gamma: float, eps: float) -> float:
        rows = embeddings[0] if embeddings.ndim == 3 else embeddings
        return vicreg_variance(rows, gamma, eps)


@mutant("sigreg_directions", "test_sigreg_directions_pure_in_seed")
class DirectionsIgnoreTheSeed(ReferenceBackend):
    """SIGReg's directions drawn from numpy's global generator, whatever the seed."""

    name = "mutant: SIGReg directions ignore the seed"

    def sigreg_directions(self, dim: int, num: int, seed: int) -> FloatArray:
        draws = np.random.standard_normal((dim, num))
        out: FloatArray = draws / np.linalg.norm(draws, axis=0, keepdims=True)
        return out


__getattr__ = backend_getter(__name__)  # ``tests.mutants.regularisers:<key>`` names a backend
