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


# Curves that coincide (two cells that both reach 100 %) must stay visible: each curve has its own
# hollow marker, a smaller one than the curve before it, and its own dash pattern, so equal points
# show as nested shapes and equal lines as interleaved dashes.
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_DASHES = ("-", "--", "-.", ":")


def line_styles(count: int) -> list[dict]:
    """Keyword arguments for ``ax.plot`` that keep ``count`` overlapping curves apart."""
    return [dict(marker=_MARKERS[k % len(_MARKERS)], ms=max(10 - 2 * k, 3), mfc="none", mew=1.4,
                 ls=_DASHES[k % len(_DASHES)], lw=1.6, zorder=3 + k, clip_on=False) for k in range(count)]


def plot_series(x, series: dict, xlabel: str, ylabel: str, title: str = "", ax=None, logx=False, logy=False):
    """Several named curves against one x axis; curves that coincide stay visible (see line_styles)."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    for (name, ys), style in zip(series.items(), line_styles(len(series))):
        ax.plot(x, ys, label=name, **style)
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


# --- unit 07_rnn_vs_transformer ------------------------------------------------------

def plot_mask(mask, ax=None, title="Causal mask: who may attend to whom"):
    """A boolean attention mask as a grid: rows are queries, columns keys, filled = allowed."""
    plt = _plt()
    mask = np.asarray(mask, dtype=bool)
    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 3.4))
    ax.imshow(mask, cmap="Blues", vmin=0, vmax=1.3, interpolation="nearest")
    T = mask.shape[0]
    if T <= 16:
        for i in range(T):
            for j in range(T):
                ax.text(j, i, "✓" if mask[i, j] else "·", ha="center", va="center", fontsize=9,
                        color="white" if mask[i, j] else "#999")
    ax.set_xlabel("key position j (attended to)")
    ax.set_ylabel("query position i")
    ax.set_title(title)
    return ax


def plot_side_by_side(panels, suptitle="", width=5.2, height=3.4):
    """Several plot_series panels in one row: panels = [dict(x=..., series=..., xlabel=..., ...), ...]."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), height))
    for ax, panel in zip(np.atleast_1d(axes), panels):
        plot_series(ax=ax, **panel)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return axes


# --- unit 06_char_shakespeare ------------------------------------------------------------

def plot_loss_curves(steps: dict, losses: dict, references: dict | None = None,
                     title: str = "Training", ax=None):
    """Loss curves against training steps, with dashed horizontal reference levels.

    ``steps`` and ``losses`` map a curve's name to its x and y values (curves may be
    recorded at different steps); ``references`` maps a label to a loss level.
    """
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.6))
    for (name, ys), style in zip(losses.items(), line_styles(len(losses))):
        ax.plot(steps[name], ys, label=name, **style)
    for (label, level), color in zip((references or {}).items(), ("#888", "#c0392b", "#27ae60", "#8e44ad")):
        ax.axhline(level, color=color, ls="--", lw=1, label=label)
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (nats per character)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    return ax


# --- unit 05 (seq2seq_attention) ----------------------------------------------------------

def _char_label(c: str) -> str:
    return "␣" if c == " " else c


def plot_attention(weights, source, output, ax=None, title="Attention"):
    """Attention weights as a heat map: one row per output token, one column per source character.

    ``weights`` is (len(output), len(source)); ``source`` and ``output`` are sequences of
    strings (characters, or token names such as "<end>").
    """
    plt = _plt()
    weights = np.asarray(weights, dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(min(0.24 * len(source) + 1.8, 15.0), 0.3 * len(output) + 1.2))
    image = ax.imshow(weights, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(source)))
    ax.set_xticklabels([_char_label(c) for c in source], fontsize=9)
    ax.set_yticks(range(len(output)))
    ax.set_yticklabels([_char_label(c) for c in output], fontsize=9)
    ax.set_xlabel("source character")
    ax.set_ylabel("output")
    ax.set_title(title, fontsize=10)
    plt.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    return ax


def plot_accuracy_by_length(labels, series: dict, counts=None, ax=None,
                            title="Exact match by input length"):
    """Grouped bars: one group per bin of input length, one bar per model (values in [0, 1])."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.4))
    positions = np.arange(len(labels))
    width = 0.8 / max(len(series), 1)
    for k, (name, values) in enumerate(series.items()):
        ax.bar(positions + (k - (len(series) - 1) / 2) * width, values, width, label=name)
    names = list(labels) if counts is None else [f"{lab}\n({n})" for lab, n in zip(labels, counts)]
    ax.set_xticks(positions)
    ax.set_xticklabels(names, fontsize=9)
    ax.set_ylim(0, 1.22)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_xlabel("characters in the input" + ("" if counts is None else " (held-out dates in the bin)"))
    ax.set_ylabel("exact match")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="upper center", ncol=max(len(series), 1), fontsize=9)
    return ax
