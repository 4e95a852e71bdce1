"""Diagrams of the course's recurrent structures, drawn with matplotlib.

Each function draws one structure with the symbols its unit uses and with Keras' weight names, and
returns the axes it drew on (a new figure when ``ax`` is None). Nothing here computes anything a
notebook asks for: the drawings are fixed pictures, and the attention weights drawn by
:func:`seq2seq` are a made-up illustration, not a model's.

* :func:`unrolled_rnn` (unit 01): h_t = tanh(x_t W_x + h_{t-1} W_h + b) over t = 1..T from h_0.
* :func:`lstm_cell` (unit 03): a_t = x_t K + h_{t-1} U + b split into the blocks i, f, c, o; the
  cell state c carried along the top.
* :func:`gru_cell` (unit 03): p_t = x_t K + b_0, q_t = h_{t-1} U + b_1, the gates z and r, the
  candidate with the reset applied after the product (Keras' ``reset_after=True``).
* :func:`seq2seq` (unit 05): the encoder's outputs h_i, the decoder's states s_t from s_0, and,
  with attention, the weights alpha over the source and the context c_t.
"""
from __future__ import annotations

BLUE, BLUE_EDGE = "#dbe9f6", "#2b6cb0"
ORANGE, ORANGE_EDGE = "#fde3cf", "#c05621"
GREEN, GREEN_EDGE = "#dff3e4", "#2f855a"
GREY = "#555555"


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _axes(ax, size):
    if ax is None:
        _, ax = _plt().subplots(figsize=size)
    return ax


def _box(ax, x, y, w, h, text, fc=BLUE, ec=BLUE_EDGE, fontsize=11, round_=True):
    """A labelled box centred at (x, y)."""
    from matplotlib.patches import FancyBboxPatch

    style = "round,pad=0.04" if round_ else "square,pad=0.02"
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle=style, fc=fc, ec=ec, lw=1.4))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _circle(ax, x, y, text, r=0.17, fc="white", ec=GREY, fontsize=11):
    from matplotlib.patches import Circle

    ax.add_patch(Circle((x, y), r, fc=fc, ec=ec, lw=1.3))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end, color="#333333", lw=1.3, style="-|>", rad=0.0, alpha=1.0):
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=13, lw=lw, color=color,
                                 alpha=alpha, connectionstyle=f"arc3,rad={rad}", shrinkA=0, shrinkB=0))


def _note(ax, x, y, text, color=GREY, fontsize=9, **kw):
    ax.text(x, y, text, color=color, fontsize=fontsize, **kw)


def _finish(ax, xlim, ylim, title):
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=12)
    return ax


def text_labels(ax) -> list[str]:
    """Every piece of text drawn on ``ax`` (its texts and title), for reading a diagram back."""
    return [t.get_text() for t in ax.texts] + [ax.get_title()]


# -- unit 01 ------------------------------------------------------------------------------------------

def unrolled_rnn(tokens=("The", "dog", "runs", "fast"), ax=None):
    """The simple RNN unrolled over t = 1..T: one copy of the cell per token, all with the same weights."""
    T = len(tokens)
    if T < 1:
        raise ValueError("unrolled_rnn needs at least one token")
    step = 2.3
    ax = _axes(ax, (step * T + 2.2, 3.9))
    y_in, y_cell, y_out = 0.3, 1.8, 3.1
    x0 = 0.2
    _box(ax, x0, y_cell, 0.8, 0.6, "$h_0$", fc="white", ec=GREY)
    _note(ax, x0, y_cell - 0.55, "initial\nstate", ha="center", va="top")
    for t in range(1, T + 1):
        x = x0 + step * t
        _box(ax, x, y_cell, 1.5, 0.8, r"$\tanh(\,\cdot + b\,)$", fontsize=10)
        _note(ax, x, y_cell + 0.52, f"step $t = {t}$", ha="center", color=BLUE_EDGE)
        ax.text(x, y_in, f"$x_{{{t}}}$  “{tokens[t - 1]}”", ha="center", va="center", fontsize=10)
        _arrow(ax, (x, y_in + 0.22), (x, y_cell - 0.45))
        _note(ax, x + 0.08, (y_in + y_cell) / 2 - 0.1, "$W_x$")
        _arrow(ax, (x, y_cell + 0.45), (x, y_out - 0.22))
        ax.text(x, y_out, f"$h_{{{t}}}$", ha="center", va="center", fontsize=12)
        left = x - step + (0.45 if t == 1 else 0.8)
        _arrow(ax, (left, y_cell), (x - 0.8, y_cell))
        _note(ax, (left + x - 0.8) / 2, y_cell + 0.1, "$W_h$", ha="center")
        _note(ax, (left + x - 0.8) / 2, y_cell - 0.3, f"$h_{{{t - 1}}}$", ha="center")
    _note(ax, x0 + step * T + 0.9, y_cell,
          "the same $W_x$, $W_h$, $b$ at every step\n"
          "Keras: kernel $= W_x$, recurrent_kernel $= W_h$, bias $= b$",
          ha="left", va="center", color=BLUE_EDGE)
    ax.text(x0 + step * (T + 1) / 2, -0.45,
            r"$h_t = \tanh(x_t W_x + h_{t-1} W_h + b)$,  $t = 1, \dots, T$  ($T = %d$ here)" % T,
            ha="center", va="center", fontsize=11)
    return _finish(ax, (-0.6, x0 + step * T + 6.2), (-0.8, 3.5), "A simple RNN unrolled in time")


# -- unit 03 ------------------------------------------------------------------------------------------

def _highway(ax, y, x_times, x_plus, x_end, left, right, color):
    """A gated cell's state along the top: in from the left, scaled at x_times, added to at x_plus, out."""
    _arrow(ax, (0.0, y), (x_times - 0.15, y), lw=2.2, color=color)
    ax.text(-0.1, y, left, ha="right", va="center", fontsize=12)
    _circle(ax, x_times, y, r"$\times$")
    _arrow(ax, (x_times + 0.15, y), (x_plus - 0.15, y), lw=2.2, color=color)
    _circle(ax, x_plus, y, "$+$")
    _arrow(ax, (x_plus + 0.15, y), (x_end, y), lw=2.2, color=color)
    ax.text(x_end + 0.1, y, right, ha="left", va="center", fontsize=12)


def _inputs(ax, y, y_to, x_input, x_state):
    """x_t and h_{t-1} at the bottom of a cell, each with its arrow up to y_to."""
    for x, label in ((x_input, "$x_t$"), (x_state, "$h_{t-1}$")):
        ax.text(x, y, label, ha="center", va="center", fontsize=12)
        _arrow(ax, (x, y + 0.22), (x, y_to))


def lstm_cell(ax=None):
    """One LSTM step in Keras' layout: a_t split into i, f, c, o; the cell state c along the top."""
    ax = _axes(ax, (11, 6.2))
    y_c, y_gate, y_a, y_in = 4.6, 2.9, 1.5, 0.3
    # the cell-state highway
    _highway(ax, y_c, 3.0, 5.5, 10.0, "$c_{t-1}$", "$c_t$", ORANGE_EDGE)
    _note(ax, 1.1, y_c + 0.25, r"cell state $c$: $\partial c_t / \partial c_{t-1} = f_t$", color=ORANGE_EDGE)
    # the pre-activation and its four blocks
    _box(ax, 4.5, y_a, 7.6, 0.7, r"$a_t = x_t K + h_{t-1} U + b$   blocks in the order i, f, c, o",
         fc="white", ec=GREY, fontsize=10.5)
    gates = [(3.0, "$f_t = \\sigma(a_f)$", "forget gate f"), (4.55, "$i_t = \\sigma(a_i)$", "input gate i"),
             (6.1, "$\\tilde c_t = \\tanh(a_c)$", "candidate c"), (7.8, "$o_t = \\sigma(a_o)$", "output gate o")]
    for x, formula, name in gates:
        _box(ax, x, y_gate, 1.45, 0.8, f"{name}\n{formula}", fc=GREEN if "gate" in name else ORANGE,
             ec=GREEN_EDGE if "gate" in name else ORANGE_EDGE, fontsize=9)
        _arrow(ax, (x, y_a + 0.38), (x, y_gate - 0.42))
    _arrow(ax, (3.0, y_gate + 0.42), (3.0, y_c - 0.18))                  # f into the product with c_{t-1}
    _circle(ax, 5.3, 3.85, r"$\times$", r=0.15)                          # i * candidate
    _arrow(ax, (4.55, y_gate + 0.42), (5.18, 3.78), rad=-0.2)
    _arrow(ax, (6.1, y_gate + 0.42), (5.42, 3.78), rad=0.2)
    _arrow(ax, (5.3, 4.0), (5.45, y_c - 0.17))
    # the output: h_t = o_t * tanh(c_t)
    _box(ax, 9.1, 3.85, 0.9, 0.45, r"$\tanh$", fc="white", ec=GREY, fontsize=10)
    _arrow(ax, (9.1, y_c), (9.1, 4.08))
    _circle(ax, 9.1, y_gate, r"$\times$", r=0.15)
    _arrow(ax, (9.1, 3.62), (9.1, y_gate + 0.15))
    _arrow(ax, (7.8 + 0.73, y_gate), (8.95, y_gate))
    _arrow(ax, (9.25, y_gate), (9.9, y_gate))
    ax.text(10.0, y_gate, "$h_t = o_t \\odot \\tanh(c_t)$", ha="left", va="center", fontsize=11)
    # inputs
    _inputs(ax, y_in, y_a - 0.38, 2.0, 6.5)
    _note(ax, 2.1, 0.75, "kernel $K$ (input_dim, 4 units)")
    _note(ax, 6.6, 0.75, "recurrent_kernel $U$ (units, 4 units)")
    _note(ax, 8.45, 1.2, "bias $b$ (4 units,)")
    _note(ax, -0.2, -0.35, r"$c_t = f_t \odot c_{t-1} + i_t \odot \tilde c_t$;  "
          r"$\sigma$ is Keras' recurrent_activation, $\tanh$ its activation", fontsize=9.5)
    return _finish(ax, (-1.0, 13.0), (-0.6, 5.2), "The LSTM cell (Keras' weight layout)")


def gru_cell(ax=None):
    """One GRU step with Keras' default reset_after=True: blocks z, r, h; reset after the product."""
    ax = _axes(ax, (11.5, 6.0))
    y_h, y_gate, y_pq, y_in = 4.6, 2.9, 1.4, 0.1
    # the state carried along the top: h_t = z * h_{t-1} + (1 - z) * candidate
    _highway(ax, y_h, 3.2, 8.6, 10.6, "$h_{t-1}$", "$h_t$", BLUE_EDGE)
    _note(ax, 0.3, y_h + 0.25, "one state $h$, kept where $z_t$ is near 1", color=BLUE_EDGE)
    # input part p and recurrent part q
    _box(ax, 2.4, y_pq, 3.6, 0.8, "$p_t = x_t K + b_0$\nblocks $p_z, p_r, p_{\\tilde h}$", fc="white", ec=GREY,
         fontsize=10)
    _box(ax, 7.6, y_pq, 3.6, 0.8, "$q_t = h_{t-1} U + b_1$\nblocks $q_z, q_r, q_{\\tilde h}$", fc="white",
         ec=GREY, fontsize=10)
    gates = [(3.2, 1.75, "update gate z\n$z_t = \\sigma(p_z + q_z)$", GREEN, GREEN_EDGE),
             (5.3, 1.75, "reset gate r\n$r_t = \\sigma(p_r + q_r)$", GREEN, GREEN_EDGE),
             (8.2, 2.7, "candidate h\n$\\tilde h_t = \\tanh(p_{\\tilde h} + r_t \\odot q_{\\tilde h})$", ORANGE,
              ORANGE_EDGE)]
    for x, w, text, fc, ec in gates:
        _box(ax, x, y_gate, w, 0.8, text, fc=fc, ec=ec, fontsize=9)
    for x in (3.2, 5.3, 8.2):
        _arrow(ax, (min(x, 3.6), y_pq + 0.44), (x - 0.25, y_gate - 0.44))    # from p
        _arrow(ax, (max(x, 6.6), y_pq + 0.44), (x + 0.25, y_gate - 0.44))    # from q
    _arrow(ax, (6.18, y_gate), (6.85, y_gate))                             # r into the candidate
    _arrow(ax, (3.2, y_gate + 0.42), (3.2, y_h - 0.18))                    # z scales h_{t-1}
    _note(ax, 3.3, 3.85, "$z_t$", fontsize=9)
    _arrow(ax, (8.4, y_gate + 0.42), (8.6, y_h - 0.18))                    # (1 - z) * candidate
    _note(ax, 8.7, 3.85, r"$\times\,(1 - z_t)$", fontsize=9)
    # inputs
    _inputs(ax, y_in, y_pq - 0.46, 2.4, 7.6)
    _note(ax, 2.5, 0.5, "kernel $K$ (input_dim, 3 units)")
    _note(ax, 7.7, 0.5, "recurrent_kernel $U$ (units, 3 units)")
    _note(ax, 9.6, 1.3, "bias, shape (2, 3 units):\nrow 0 is $b_0$, row 1 is $b_1$", fontsize=9)
    _note(ax, -0.2, -0.55, r"$h_t = z_t \odot h_{t-1} + (1 - z_t) \odot \tilde h_t$;  Keras' block order z, r, h;"
          r"  reset_after=True: $r_t$ scales $q_{\tilde h}$, after the product", fontsize=9.5)
    return _finish(ax, (-1.0, 12.4), (-0.8, 5.2), "The GRU cell (Keras' weight layout, reset_after=True)")


# -- unit 05 ------------------------------------------------------------------------------------------

def seq2seq(source="5 Mar 1985", target="1985-03-05", attention=True, ax=None):
    """The encoder-decoder of unit 05: a GRU encoder over the source characters, a GRUCell decoder from
    s_0 = h_{T_s}; with ``attention``, the weights alpha of one decoder step over every h_i and its
    context c_t. The weights drawn are an illustration (a bump over the source), not a trained model's."""
    source, target = list(source), list(target)
    if not source or not target:
        raise ValueError("seq2seq needs a non-empty source and target")
    Ts, Tt = len(source), len(target)
    gap = 1.0
    width = gap * (Ts + Tt) + 4.0
    ax = _axes(ax, (min(0.62 * width + 1.0, 20.0), 5.6))
    y_in, y_state, y_ctx, y_out = 0.3, 1.6, 3.6, 3.0
    enc = [gap * (i + 1) for i in range(Ts)]
    dec0 = enc[-1] + 2.4
    dec = [dec0 + gap * (t + 1) for t in range(Tt)]
    for i, (x, ch) in enumerate(zip(enc, source), start=1):
        ax.text(x, y_in, "␣" if ch == " " else ch, ha="center", va="center", fontsize=11)
        _arrow(ax, (x, y_in + 0.2), (x, y_state - 0.33))
        _box(ax, x, y_state, 0.72, 0.6, f"$h_{{{i}}}$", fontsize=10)
        if i > 1:
            _arrow(ax, (x - gap + 0.38, y_state), (x - 0.38, y_state))
    _note(ax, enc[0] - 0.4, y_in - 0.6, "encoder: Embedding, then GRU (mask: source_ids != PAD)",
          fontsize=9, color=BLUE_EDGE)
    # the bridge s_0 = h_{T_s}
    _box(ax, dec0, y_state, 0.72, 0.6, "$s_0$", fc=GREEN, ec=GREEN_EDGE, fontsize=10)
    _arrow(ax, (enc[-1] + 0.38, y_state), (dec0 - 0.38, y_state), color=GREEN_EDGE)
    _note(ax, (enc[-1] + dec0) / 2, y_state + 0.15, "$s_0 = h_{T_s}$", ha="center", color=GREEN_EDGE)
    previous = ["<start>", *target[:-1]]
    for t, (x, ch, prev) in enumerate(zip(dec, target, previous), start=1):
        _box(ax, x, y_state, 0.72, 0.6, f"$s_{{{t}}}$", fc=GREEN, ec=GREEN_EDGE, fontsize=10)
        _arrow(ax, (x - gap + 0.38, y_state), (x - 0.38, y_state), color=GREEN_EDGE)
        ax.text(x, y_in, prev if len(prev) == 1 else "<s>", ha="center", va="center", fontsize=10, color=GREY)
        _arrow(ax, (x, y_in + 0.2), (x, y_state - 0.33), color=GREY)
        _arrow(ax, (x, y_state + 0.33), (x, y_out - 0.2))
        ax.text(x, y_out, ch, ha="center", va="center", fontsize=11, fontweight="bold")
    _note(ax, dec0 - 0.4, y_in - 0.6, "decoder: GRUCell, one step per character, then Dense logits",
          fontsize=9, color=GREEN_EDGE)
    _note(ax, dec0 - 0.4, y_in - 1.0, "its input: the previous character (teacher forcing in training)",
          fontsize=8.5)
    title = "Encoder-decoder with Bahdanau attention" if attention else "Encoder-decoder: $s_0$ is all the decoder gets"
    if attention:
        t_star = min(Tt, max(1, Tt // 2)) - 1           # the decoder step whose attention is drawn
        centre = (Ts - 1) * (t_star + 0.5) / Tt         # an illustrative bump, moving along the source
        raw = [2.718281828 ** (-((i - centre) ** 2) / 2.0) for i in range(Ts)]
        alpha = [w / sum(raw) for w in raw]
        xs = dec[t_star]
        _box(ax, xs, y_ctx + 0.55, 1.2, 0.5, f"$c_{{{t_star + 1}}}$", fc=ORANGE, ec=ORANGE_EDGE, fontsize=10)
        for x, a in zip(enc, alpha):
            _arrow(ax, (x, y_state + 0.33), (xs - 0.6, y_ctx + 0.55), color=ORANGE_EDGE, lw=0.4 + 6 * a,
                   style="-", rad=-0.15, alpha=0.35 + 0.65 * a / max(alpha))
        best = max(range(Ts), key=lambda i: alpha[i])
        _note(ax, enc[best], y_ctx + 0.15, rf"$\alpha_{{{t_star + 1},i}}$", ha="center", color=ORANGE_EDGE,
              fontsize=10)
        _arrow(ax, (xs, y_ctx + 0.3), (xs, y_out + 0.2), color=ORANGE_EDGE)
        _note(ax, xs + 0.7, y_ctx + 0.45,
              r"$e_i = v^\top \tanh(W_1 s_{t-1} + W_2 h_i + b)$, $\alpha = \mathrm{softmax}(e)$, "
              r"$c_t = \sum_i \alpha_i h_i$", fontsize=9.5, color=ORANGE_EDGE)
        _note(ax, xs + 0.7, y_ctx + 0.05, "context $c_t$ goes into the GRUCell and the Dense layer",
              fontsize=9, color=ORANGE_EDGE)
    return _finish(ax, (0.0, dec[-1] + 1.0 + (7.5 if attention else 0)), (-1.3, 4.6), title)
