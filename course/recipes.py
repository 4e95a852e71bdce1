"""Training recipes shared by unit 06, unit 07 and the GPU benchmark (benchmarks/charlm.py).

Hyperparameters only: no model code. The notebooks read their budget's
recipe from here and the benchmark trains the same one, so a figure in the
README and a run in a notebook mean the same model.
"""
from __future__ import annotations

# The course's character model (unit 06), per budget. The full budget is sized
# for one GPU and a few minutes; the fast budget for about a minute of a 2-core CPU.
# Unit 07 trains the same LSTM (same dropout, same clipping) beside its Transformer.
#
# Clipping is by *global* norm (Keras' ``global_clipnorm``), the rule unit 02 teaches:
# all gradients are scaled by one common factor, so an update that is too long is
# shortened without changing its direction. Keras' ``clipnorm`` clips every weight's
# gradient by its own norm, which bends the update towards the weights whose
# gradients happened to be small; the course does not use it.
CHAR_RNN = {
    "full": dict(cell="lstm", embedding=128, units=512, layers=2, dropout=0.1,
                 seq_len=128, batch=256, learning_rate=3e-3, global_clipnorm=1.0, seconds=300),
    "fast": dict(cell="lstm", embedding=32, units=128, layers=1, dropout=0.0,
                 seq_len=64, batch=32, learning_rate=3e-3, global_clipnorm=1.0, seconds=20),
}

# The TensorFlow text-generation tutorial's model, for the benchmark's comparison:
# GRU 1024, embedding 256, sequences of 100, batch 64, Adam at Keras' default rate.
TF_TUTORIAL = dict(cell="gru", embedding=256, units=1024, layers=1, dropout=0.0,
                   seq_len=100, batch=64, learning_rate=1e-3, global_clipnorm=None)
