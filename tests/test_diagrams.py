"""The course's diagrams render, and show the symbols and Keras names of the units that use them."""
import json

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from course import diagrams  # noqa: E402

EXPECTED = {   # diagram -> labels that must be among its text artists (substrings)
    "unrolled_rnn": ["$h_0$", "$h_{1}$", "$h_{4}$", "$x_{1}$", "$W_x$", "$W_h$", "b$", "step $t = 1$",
                     "kernel", "recurrent_kernel", "bias", "t = 1, \\dots, T"],
    "lstm_cell": ["$c_{t-1}$", "$c_t$", "forget gate f", "input gate i", "candidate c", "output gate o",
                  "\\sigma(a_f)", "\\sigma(a_i)", "\\tanh(a_c)", "\\sigma(a_o)", "a_t = x_t K + h_{t-1} U + b",
                  "kernel $K$", "recurrent_kernel $U$", "bias $b$", "i, f, c, o", "h_t = o_t"],
    "gru_cell": ["$h_{t-1}$", "$h_t$", "update gate z", "reset gate r", "candidate h", "p_t = x_t K + b_0",
                 "q_t = h_{t-1} U + b_1", "r_t \\odot q_{\\tilde h}", "kernel $K$", "recurrent_kernel $U$",
                 "row 0 is $b_0$", "reset_after=True", "z, r, h"],
    "seq2seq": ["$h_{1}$", "$s_0$", "$s_{1}$", "$s_0 = h_{T_s}$", "GRUCell", "Embedding", "Dense",
                "\\alpha", "c_t = \\sum_i \\alpha_i h_i", "W_1 s_{t-1} + W_2 h_i", "attention"],
}


def _draw(name):
    return getattr(diagrams, name)()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_diagram_renders_with_its_labels(name, tmp_path):
    ax = _draw(name)
    try:
        png = tmp_path / f"{name}.png"
        ax.figure.savefig(png, dpi=60)
        assert png.stat().st_size > 5_000, f"{name}: the PNG is (nearly) empty"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        labels = "\n".join(diagrams.text_labels(ax))
        missing = [label for label in EXPECTED[name] if label not in labels]
        assert not missing, f"{name} lacks the labels {missing}; it has:\n{labels}"
        assert len(ax.patches) >= 5, f"{name}: too few boxes and arrows ({len(ax.patches)})"
    finally:
        plt.close(ax.figure)


def test_unrolled_rnn_follows_the_tokens():
    ax = diagrams.unrolled_rnn(("a", "b"))
    try:
        labels = diagrams.text_labels(ax)
        assert any("$x_{2}$" in t and "b" in t for t in labels)
        assert not any("$h_{3}$" in t for t in labels)
    finally:
        plt.close(ax.figure)
    with pytest.raises(ValueError, match="at least one token"):
        diagrams.unrolled_rnn(())


def test_seq2seq_without_attention_has_no_context():
    ax = diagrams.seq2seq(attention=False)
    try:
        labels = "\n".join(diagrams.text_labels(ax))
        assert "\\alpha" not in labels and "$s_0 = h_{T_s}$" in labels
    finally:
        plt.close(ax.figure)


def test_draws_on_a_given_axes():
    fig, ax = plt.subplots()
    try:
        assert diagrams.gru_cell(ax=ax) is ax
    finally:
        plt.close(fig)


def test_notebooks_draw_them(root):
    """Units 01, 03 and 05 call the diagrams (each right after the markdown that introduces the structure)."""
    calls = {"01_rnn_by_hand/rnn_by_hand.ipynb": ["diagrams.unrolled_rnn("],
             "03_gated_cells/gated_cells.ipynb": ["diagrams.lstm_cell(", "diagrams.gru_cell("],
             "05_seq2seq_attention/seq2seq_attention.ipynb": ["diagrams.seq2seq(attention=False)",
                                                               "diagrams.seq2seq(attention=True)"]}
    for rel, wanted in calls.items():
        for folder in ("solutions", "exercises"):
            cells = json.loads((root / folder / rel).read_text(encoding="utf-8"))["cells"]
            code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
            for call in wanted:
                assert any(call in source for source in code), f"{folder}/{rel} does not call {call}"
