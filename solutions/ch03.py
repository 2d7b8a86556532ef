"""Solutions, notebook 03 (stars)."""
import numpy as np


def count_arms(profile):
    """Arms of a star from its radial profile r_k on K equally spaced angles: a star with a arms
    repeats itself a times around the circle, so the strongest non-constant Fourier frequency of
    r is a. (Counting peaks also works after smoothing, but the jitter makes spurious bumps.)"""
    spectrum = np.abs(np.fft.rfft(profile - profile.mean()))
    return int(spectrum[1:].argmax() + 1)


def star_chamfer(a, b):
    """The stars' Chamfer distance: mean squared distance from each point of a to the nearest
    point of b, plus the same from b to a (Achlioptas et al. 2018)."""
    squared = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return squared.min(1).mean() + squared.min(0).mean()
