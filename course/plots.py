"""Figures the notebooks share, so that notebooks hold ideas rather than plotting code."""
from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib.pyplot as plt

    return plt


def draw_unrolled_rnn(tokens=("The", "dog", "runs", "fast"), ax=None):
    """The recurrence unrolled in time: one cell per token, the same weights in each."""
    plt = _plt()
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    T = len(tokens)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.9 * T + 1.5, 3.2))
    arrow = dict(arrowstyle="-|>", mutation_scale=14, lw=1.4, color="#333")
    for t, token in enumerate(tokens):
        x = 1.6 + 1.9 * t
        ax.add_patch(FancyBboxPatch((x - 0.55, 1.2), 1.1, 0.8, boxstyle="round,pad=0.05",
                                    fc="#dbe9f6", ec="#2b6cb0", lw=1.5))
        ax.text(x, 1.6, f"$h_{t + 1}$", ha="center", va="center", fontsize=13)
        ax.text(x, 0.25, f"$x_{t + 1}$\n“{token}”", ha="center", va="center", fontsize=10)
        ax.add_patch(FancyArrowPatch((x, 0.6), (x, 1.15), **arrow))
        ax.text(x + 0.08, 0.85, "$W_x$", fontsize=9, color="#555")
        ax.add_patch(FancyArrowPatch((x - 1.9 + 0.6, 1.6), (x - 0.6, 1.6), **arrow))
        ax.text(x - 0.95, 1.72, "$W_h$", fontsize=9, color="#555", ha="center")
    ax.text(1.6 - 1.9 + 0.45, 1.6, "$h_0$", ha="right", va="center", fontsize=13)
    ax.text(1.6 + 1.9 * (T - 1), 2.45, "same $W_x$, $W_h$, $b$ at every step", ha="right",
            fontsize=10, color="#2b6cb0")
    ax.set_xlim(-0.6, 1.6 + 1.9 * (T - 1) + 0.9)
    ax.set_ylim(-0.3, 2.7)
    ax.axis("off")
    ax.set_title("An RNN unrolled in time")
    return ax


def plot_hidden_states(H, ax=None, title="Hidden state over time"):
    """A heat map of one sequence's hidden states: time across, units down."""
    plt = _plt()
    H = np.asarray(H)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 2.8))
    image = ax.imshow(H.T, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xlabel("time step t")
    ax.set_ylabel("unit")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(title)
    plt.colorbar(image, ax=ax, label="$h_t$ (tanh keeps it in [-1, 1])")
    return ax


def plot_distribution(probs, labels, ax=None, title="Next-token distribution", highlight=None):
    """A bar chart of one probability distribution over a vocabulary."""
    plt = _plt()
    probs = np.asarray(probs)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6, 0.35 * len(labels)), 2.8))
    colors = ["#e07b39" if highlight is not None and i == highlight else "#2b6cb0"
              for i in range(len(labels))]
    ax.bar(range(len(labels)), probs, color=colors)
    ax.axhline(1 / len(labels), color="#888", ls="--", lw=1, label="uniform 1/V")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(["␣" if c == " " else repr(c)[1:-1] for c in labels])
    ax.set_ylabel("probability")
    ax.set_title(title)
    ax.legend(loc="upper right")
    return ax


def plot_series(x, series: dict, xlabel: str, ylabel: str, title: str = "", ax=None, logx=False, logy=False):
    """Several named curves against one x axis."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    for name, ys in series.items():
        ax.plot(x, ys, marker="o", ms=3, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def plot_gradient_norms(steps, norms: dict, title: str = "Gradients through time", ax=None):
    """Gradient norms against the number of steps, one line per cell, on a log scale."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.6))
    for name, values in norms.items():
        ax.plot(steps, values, lw=2, label=name)
    ax.axhline(1.0, color="#888", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("steps T")
    ax.set_ylabel("norm of the gradient")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="major")
    ax.legend(fontsize=9, loc="lower left")
    return ax
