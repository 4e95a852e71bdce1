"""Wrong answers for unit 02_bptt_and_gradients, each one a mistake students make.

Names are reused on purpose: each definition is what a student might have typed for that
function. They run in the notebook's namespace (np, keras, rnn_forward, rnn_step_backward,
rnn_backward and step_jacobian are the notebook's own).
"""
# ruff: noqa: F811
import numpy as np

from . import mutant

keras = rnn_forward = rnn_step_backward = rnn_backward = step_jacobian = None  # the notebook's


# --- rnn_step_backward ---------------------------------------------------------
@mutant("rnn_step_backward", "the factor (1 - h_t**2) left out")
def rnn_step_backward(dh_t, x_t, h_prev, h_t, W_x, W_h):
    da = dh_t
    return da @ W_x.T, da @ W_h.T, x_t.T @ da, h_prev.T @ da, da.sum(axis=0)


@mutant("rnn_step_backward", "(1 - h_prev**2) in place of (1 - h_t**2)")
def rnn_step_backward(dh_t, x_t, h_prev, h_t, W_x, W_h):
    da = dh_t * (1 - h_prev ** 2)
    return da @ W_x.T, da @ W_h.T, x_t.T @ da, h_prev.T @ da, da.sum(axis=0)


@mutant("rnn_step_backward", "W_h not transposed in dh_prev")
def rnn_step_backward(dh_t, x_t, h_prev, h_t, W_x, W_h):
    da = dh_t * (1 - h_t ** 2)
    return da @ W_x.T, da @ W_h, x_t.T @ da, h_prev.T @ da, da.sum(axis=0)


@mutant("rnn_step_backward", "db not summed over the batch")
def rnn_step_backward(dh_t, x_t, h_prev, h_t, W_x, W_h):
    da = dh_t * (1 - h_t ** 2)
    return da @ W_x.T, da @ W_h.T, x_t.T @ da, h_prev.T @ da, da


@mutant("rnn_step_backward", "dW_h from h_t instead of h_prev")
def rnn_step_backward(dh_t, x_t, h_prev, h_t, W_x, W_h):
    da = dh_t * (1 - h_t ** 2)
    return da @ W_x.T, da @ W_h.T, x_t.T @ da, h_t.T @ da, da.sum(axis=0)


@mutant("rnn_step_backward", "db averaged over the batch instead of summed")
def rnn_step_backward(dh_t, x_t, h_prev, h_t, W_x, W_h):
    da = dh_t * (1 - h_t ** 2)
    return da @ W_x.T, da @ W_h.T, x_t.T @ da, h_prev.T @ da, da.mean(axis=0)


@mutant("rnn_step_backward", "float32 inside", kind="precision")
def rnn_step_backward(dh_t, x_t, h_prev, h_t, W_x, W_h):
    f32 = np.float32
    da = (dh_t * (1 - h_t ** 2)).astype(f32)
    return da @ W_x.T.astype(f32), da @ W_h.T.astype(f32), x_t.T.astype(f32) @ da, h_prev.T.astype(f32) @ da, da.sum(0)


@mutant("rnn_step_backward", "keras.ops for the products", kind="delegation")
def rnn_step_backward(dh_t, x_t, h_prev, h_t, W_x, W_h):
    ops = keras.ops
    da = dh_t * (1 - h_t ** 2)
    grads = (ops.matmul(da, ops.transpose(W_x)), ops.matmul(da, ops.transpose(W_h)), ops.matmul(ops.transpose(x_t), da),
             ops.matmul(ops.transpose(h_prev), da), ops.sum(da, axis=0))
    return tuple(np.asarray(g) for g in grads)


@mutant("rnn_step_backward", "scales dh_t in place by tanh'", kind="in-place")
def rnn_step_backward(dh_t, x_t, h_prev, h_t, W_x, W_h):
    dh_t *= 1 - h_t ** 2
    return dh_t @ W_x.T, dh_t @ W_h.T, x_t.T @ dh_t, h_prev.T @ dh_t, dh_t.sum(axis=0)


@mutant("rnn_step_backward", "db accumulated across calls", kind="state")
def rnn_step_backward(dh_t, x_t, h_prev, h_t, W_x, W_h, _db={}):
    da = dh_t * (1 - h_t ** 2)
    _db[da.shape[1]] = _db.get(da.shape[1], 0) + da.sum(axis=0)
    return da @ W_x.T, da @ W_h.T, x_t.T @ da, h_prev.T @ da, _db[da.shape[1]]


# --- rnn_backward --------------------------------------------------------------
@mutant("rnn_backward", "the gradient from later steps not carried back")
def rnn_backward(dH, X, h0, H, W_x, W_h):
    dX, grads, dh_prev = np.zeros(X.shape), [np.zeros(W_x.shape), np.zeros(W_h.shape), np.zeros(W_h.shape[0])], None
    for t in reversed(range(X.shape[1])):
        prev = H[:, t - 1] if t > 0 else h0
        dX[:, t], dh_prev, *g = rnn_step_backward(dH[:, t], X[:, t], prev, H[:, t], W_x, W_h)
        grads = [a + b for a, b in zip(grads, g)]
    return (dX, dh_prev, *grads)


@mutant("rnn_backward", "parameter gradients overwritten instead of accumulated")
def rnn_backward(dH, X, h0, H, W_x, W_h):
    dX, dh = np.zeros(X.shape), np.zeros(h0.shape)
    for t in reversed(range(X.shape[1])):
        prev = H[:, t - 1] if t > 0 else h0
        dX[:, t], dh, dW_x, dW_h, db = rnn_step_backward(dH[:, t] + dh, X[:, t], prev, H[:, t], W_x, W_h)
    return dX, dh, dW_x, dW_h, db


@mutant("rnn_backward", "H[:, t - 1] at t = 0 (the last state instead of h0)")
def rnn_backward(dH, X, h0, H, W_x, W_h):
    dX, dh = np.zeros(X.shape), np.zeros(h0.shape)
    grads = [np.zeros(W_x.shape), np.zeros(W_h.shape), np.zeros(W_h.shape[0])]
    for t in reversed(range(X.shape[1])):
        dX[:, t], dh, *g = rnn_step_backward(dH[:, t] + dh, X[:, t], H[:, t - 1], H[:, t], W_x, W_h)
        grads = [a + b for a, b in zip(grads, g)]
    return (dX, dh, *grads)


@mutant("rnn_backward", "the loop run forwards in time")
def rnn_backward(dH, X, h0, H, W_x, W_h):
    dX, dh = np.zeros(X.shape), np.zeros(h0.shape)
    grads = [np.zeros(W_x.shape), np.zeros(W_h.shape), np.zeros(W_h.shape[0])]
    for t in range(X.shape[1]):
        prev = H[:, t - 1] if t > 0 else h0
        dX[:, t], dh, *g = rnn_step_backward(dH[:, t] + dh, X[:, t], prev, H[:, t], W_x, W_h)
        grads = [a + b for a, b in zip(grads, g)]
    return (dX, dh, *grads)


@mutant("rnn_backward", "each state paired with its own output as the previous state (off by one)")
def rnn_backward(dH, X, h0, H, W_x, W_h):
    dX, dh = np.zeros(X.shape), np.zeros(h0.shape)
    grads = [np.zeros(W_x.shape), np.zeros(W_h.shape), np.zeros(W_h.shape[0])]
    for t in reversed(range(X.shape[1])):
        dX[:, t], dh, *g = rnn_step_backward(dH[:, t] + dh, X[:, t], H[:, t], H[:, t], W_x, W_h)
        grads = [a + b for a, b in zip(grads, g)]
    return (dX, dh, *grads)


@mutant("rnn_backward", "dh0 taken as dH[:, 0] (the gradient never crosses step 0)")
def rnn_backward(dH, X, h0, H, W_x, W_h):
    dX, dh = np.zeros(X.shape), np.zeros(h0.shape)
    grads = [np.zeros(W_x.shape), np.zeros(W_h.shape), np.zeros(W_h.shape[0])]
    for t in reversed(range(X.shape[1])):
        prev = H[:, t - 1] if t > 0 else h0
        dX[:, t], dh, *g = rnn_step_backward(dH[:, t] + dh, X[:, t], prev, H[:, t], W_x, W_h)
        grads = [a + b for a, b in zip(grads, g)]
    return (dX, dH[:, 0].copy(), *grads)


@mutant("rnn_backward", "TensorFlow's GradientTape", kind="delegation")
def rnn_backward(dH, X, h0, H, W_x, W_h):
    import tensorflow as tf
    b0 = np.arctanh(H[0, 0]) - X[0, 0] @ W_x - h0[0] @ W_h   # the bias that produced H
    X_, h0_, W_x_, W_h_, b_ = (tf.Variable(a) for a in (X, h0, W_x, W_h, b0))
    with tf.GradientTape() as tape:
        h, states = h0_, []
        for t in range(X.shape[1]):
            h = tf.tanh(X_[:, t] @ W_x_ + h @ W_h_ + b_)
            states.append(h)
        loss = tf.reduce_sum(tf.stack(states, 1) * dH)
    return tuple(np.asarray(g) for g in tape.gradient(loss, [X_, h0_, W_x_, W_h_, b_]))


@mutant("rnn_backward", "adds the carried gradient into dH in place", kind="in-place")
def rnn_backward(dH, X, h0, H, W_x, W_h):
    dX = np.zeros(X.shape)
    dW_x, dW_h, db = np.zeros(W_x.shape), np.zeros(W_h.shape), np.zeros(W_h.shape[0])
    for t in reversed(range(X.shape[1])):
        h_before = H[:, t - 1] if t > 0 else h0
        dX[:, t], dh_prev, gW_x, gW_h, g_b = rnn_step_backward(dH[:, t], X[:, t], h_before, H[:, t], W_x, W_h)
        if t > 0:
            dH[:, t - 1] += dh_prev
        dW_x += gW_x
        dW_h += gW_h
        db += g_b
    return dX, dh_prev, dW_x, dW_h, db


@mutant("rnn_backward", "parameter gradients summed into buffers kept between calls", kind="state")
def rnn_backward(dH, X, h0, H, W_x, W_h, _sums={}):
    dX = np.zeros(X.shape)
    key = (W_x.shape, W_h.shape)
    if key not in _sums:
        _sums[key] = [np.zeros(W_x.shape), np.zeros(W_h.shape), np.zeros(W_h.shape[0])]
    dW_x, dW_h, db = _sums[key]
    dh_future = np.zeros(h0.shape)
    for t in reversed(range(X.shape[1])):
        h_before = H[:, t - 1] if t > 0 else h0
        dX[:, t], dh_future, gW_x, gW_h, g_b = rnn_step_backward(dH[:, t] + dh_future, X[:, t], h_before, H[:, t], W_x, W_h)
        dW_x += gW_x
        dW_h += gW_h
        db += g_b
    return dX, dh_future, dW_x.copy(), dW_h.copy(), db.copy()


@mutant("rnn_backward", "float32 buffers for the sums", kind="precision")
def rnn_backward(dH, X, h0, H, W_x, W_h):
    dX = np.zeros(X.shape, np.float32)
    dW_x, dW_h, db = np.zeros(W_x.shape, np.float32), np.zeros(W_h.shape, np.float32), np.zeros(W_h.shape[0], np.float32)
    dh_future = np.zeros(h0.shape)
    for t in reversed(range(X.shape[1])):
        h_before = H[:, t - 1] if t > 0 else h0
        dX[:, t], dh_future, gW_x, gW_h, g_b = rnn_step_backward(dH[:, t] + dh_future, X[:, t], h_before, H[:, t], W_x, W_h)
        dW_x += gW_x
        dW_h += gW_h
        db += g_b
    return dX, dh_future, dW_x, dW_h, db


# --- step_jacobian -------------------------------------------------------------
@mutant("step_jacobian", "transposed (rows indexed by h_prev)")
def step_jacobian(h_t, W_h):
    return ((1 - h_t ** 2)[:, None] * W_h.T).T


@mutant("step_jacobian", "the factor (1 - h_t**2) left out")
def step_jacobian(h_t, W_h):
    return W_h.T.copy()


@mutant("step_jacobian", "the textbook diag(1 - h**2) @ W_h without the transpose")
def step_jacobian(h_t, W_h):
    return np.diag(1 - h_t ** 2) @ W_h


@mutant("step_jacobian", "(1 - h_t**2) broadcast over the columns")
def step_jacobian(h_t, W_h):
    return W_h.T * (1 - h_t ** 2)


@mutant("step_jacobian", "tanh derivative written as 1 - h_t")
def step_jacobian(h_t, W_h):
    return (1 - h_t)[:, None] * W_h.T


@mutant("step_jacobian", "a numeric Jacobian with the course's numeric_gradient", kind="delegation")
def step_jacobian(h_t, W_h):
    from course.checks.bptt_and_gradients import numeric_gradient
    a = np.arctanh(h_t)
    J = np.zeros((len(h_t), len(h_t)))
    for j in range(len(h_t)):
        shift = np.zeros(len(h_t))
        J[j] = numeric_gradient(lambda: float(np.tanh(a[j] + shift @ W_h[:, j])), shift)
    return J


@mutant("step_jacobian", "float32 result", kind="precision")
def step_jacobian(h_t, W_h):
    return ((1.0 - h_t ** 2)[:, None] * W_h.T).astype(np.float32)


@mutant("step_jacobian", "squares h_t in place", kind="in-place")
def step_jacobian(h_t, W_h):
    h_t **= 2
    return (1.0 - h_t)[:, None] * W_h.T


# --- dh0_norms -----------------------------------------------------------------
@mutant("dh0_norms", "the (1 - h**2) factors left out (W_h alone)")
def dh0_norms(H, W_h, dh_T):
    product, norms = np.eye(W_h.shape[0]), []
    for _ in H:
        product = W_h.T @ product
        norms.append(np.linalg.norm(dh_T @ product))
    return np.array(norms)


@mutant("dh0_norms", "the Jacobians multiplied in the wrong order")
def dh0_norms(H, W_h, dh_T):
    product, norms = np.eye(W_h.shape[0]), []
    for h_t in H:
        product = product @ step_jacobian(h_t, W_h)
        norms.append(np.linalg.norm(dh_T @ product))
    return np.array(norms)


@mutant("dh0_norms", "one step short (the first entry is ||dh_T||)")
def dh0_norms(H, W_h, dh_T):
    product, norms = np.eye(W_h.shape[0]), []
    for h_t in H:
        norms.append(np.linalg.norm(dh_T @ product))
        product = step_jacobian(h_t, W_h) @ product
    return np.array(norms)


@mutant("dh0_norms", "the spectral norm of the product instead of the gradient's norm")
def dh0_norms(H, W_h, dh_T):
    product, norms = np.eye(W_h.shape[0]), []
    for h_t in H:
        product = step_jacobian(h_t, W_h) @ product
        norms.append(np.linalg.norm(product, 2) * np.linalg.norm(dh_T))
    return np.array(norms)


@mutant("dh0_norms", "the Jacobian of the previous state at every step")
def dh0_norms(H, W_h, dh_T):
    product, norms, prev = np.eye(W_h.shape[0]), [], np.zeros(W_h.shape[0])
    for h_t in H:
        product = step_jacobian(prev, W_h) @ product
        norms.append(np.linalg.norm(dh_T @ product))
        prev = h_t
    return np.array(norms)


@mutant("dh0_norms", "a Python list of norms", kind="return-type")
def dh0_norms(H, W_h, dh_T):
    product, norms = np.eye(W_h.shape[0]), []
    for h_t in H:
        product = step_jacobian(h_t, W_h) @ product
        norms.append(float(np.linalg.norm(dh_T @ product)))
    return norms


@mutant("dh0_norms", "the running product kept in float32", kind="precision")
def dh0_norms(H, W_h, dh_T):
    product, norms = np.eye(W_h.shape[0], dtype=np.float32), []
    for h_t in H:
        product = (step_jacobian(h_t, W_h) @ product).astype(np.float32)
        norms.append(np.linalg.norm(dh_T.astype(np.float32) @ product))
    return np.array(norms)


@mutant("dh0_norms", "keras.ops.norm for the norms", kind="delegation")
def dh0_norms(H, W_h, dh_T):
    product, norms = np.eye(W_h.shape[0]), []
    for h_t in H:
        product = step_jacobian(h_t, W_h) @ product
        norms.append(float(keras.ops.norm(dh_T @ product)))
    return np.array(norms, dtype=np.float64)


# --- clip_by_global_norm -------------------------------------------------------
@mutant("clip_by_global_norm", "each tensor clipped by its own norm")
def clip_by_global_norm(grads, max_norm):
    out = []
    for g in grads:
        n = np.linalg.norm(g)
        out.append(g * max_norm / n if n > max_norm else g.copy())
    return out, float(np.sqrt(sum(np.sum(g ** 2) for g in grads)))


@mutant("clip_by_global_norm", "always rescaled to max_norm, even below it")
def clip_by_global_norm(grads, max_norm):
    total = float(np.sqrt(sum(np.sum(g ** 2) for g in grads)))
    return [g * max_norm / total for g in grads], total


@mutant("clip_by_global_norm", "the global norm as the sum of per-tensor norms")
def clip_by_global_norm(grads, max_norm):
    total = float(sum(np.linalg.norm(g) for g in grads))
    scale = max_norm / total if total > max_norm else 1.0
    return [g * scale for g in grads], total


@mutant("clip_by_global_norm", "no square root (the sum of squares as the norm)")
def clip_by_global_norm(grads, max_norm):
    total = float(sum(np.sum(g ** 2) for g in grads))
    scale = max_norm / total if total > max_norm else 1.0
    return [g * scale for g in grads], total


@mutant("clip_by_global_norm", "modifies the gradients in place", kind="in-place")
def clip_by_global_norm(grads, max_norm):
    total = float(np.sqrt(sum(np.sum(g ** 2) for g in grads)))
    if total > max_norm:
        for g in grads:
            g *= max_norm / total
    return grads, total


@mutant("clip_by_global_norm", "returns the norm after clipping")
def clip_by_global_norm(grads, max_norm):
    total = float(np.sqrt(sum(np.sum(g ** 2) for g in grads)))
    scale = max_norm / total if total > max_norm else 1.0
    return [g * scale for g in grads], total * scale


@mutant("clip_by_global_norm", "returns the same list when nothing needs clipping", kind="return-type")
def clip_by_global_norm(grads, max_norm):
    total = float(np.sqrt(sum(np.sum(np.square(g)) for g in grads)))
    if total <= max_norm:
        return grads, total
    return [g * (max_norm / total) for g in grads], total


@mutant("clip_by_global_norm", "the norm returned as a one-element array", kind="return-type")
def clip_by_global_norm(grads, max_norm):
    total = np.sqrt(np.sum([np.sum(np.square(g)) for g in grads], keepdims=True))
    scale = max_norm / total[0] if total[0] > max_norm else 1.0
    return [g * scale for g in grads], total


@mutant("clip_by_global_norm", "a Keras optimizer with global_clipnorm", kind="delegation")
def clip_by_global_norm(grads, max_norm):
    optimizer = keras.optimizers.SGD(learning_rate=1.0, global_clipnorm=max_norm)
    variables = [keras.Variable(np.zeros(np.shape(g)), dtype="float64") for g in grads]
    optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(g, dtype="float64") for g in grads], variables))
    total = float(np.sqrt(sum(np.sum(np.square(g)) for g in grads)))
    return [-np.asarray(v.numpy()) for v in variables], total


# --- softmax_cross_entropy_grad ------------------------------------------------
@mutant("softmax_cross_entropy_grad", "no division by N (the gradient of the summed loss)")
def softmax_cross_entropy_grad(logits, targets):
    z = logits - logits.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    one_hot = np.eye(logits.shape[-1])[targets]
    return float(-(log_p * one_hot).sum() / targets.size), np.exp(log_p) - one_hot


@mutant("softmax_cross_entropy_grad", "divided by the batch size only")
def softmax_cross_entropy_grad(logits, targets):
    z = logits - logits.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    one_hot = np.eye(logits.shape[-1])[targets]
    return float(-(log_p * one_hot).sum() / targets.size), (np.exp(log_p) - one_hot) / logits.shape[0]


@mutant("softmax_cross_entropy_grad", "the one-hot target not subtracted")
def softmax_cross_entropy_grad(logits, targets):
    z = logits - logits.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    one_hot = np.eye(logits.shape[-1])[targets]
    return float(-(log_p * one_hot).sum() / targets.size), np.exp(log_p) / targets.size


@mutant("softmax_cross_entropy_grad", "the sign reversed")
def softmax_cross_entropy_grad(logits, targets):
    z = logits - logits.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    one_hot = np.eye(logits.shape[-1])[targets]
    return float(-(log_p * one_hot).sum() / targets.size), (one_hot - np.exp(log_p)) / targets.size


@mutant("softmax_cross_entropy_grad", "no max shift (overflows on large logits)", kind="stability")
def softmax_cross_entropy_grad(logits, targets):
    e = np.exp(logits)
    p = e / e.sum(axis=-1, keepdims=True)
    one_hot = np.eye(logits.shape[-1])[targets]
    return float(-(np.log(p) * one_hot).sum() / targets.size), (p - one_hot) / targets.size


@mutant("softmax_cross_entropy_grad", "the loss as a 0-d array", kind="return-type")
def softmax_cross_entropy_grad(logits, targets):
    z = logits - np.max(logits, axis=-1, keepdims=True)
    log_p = z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
    one_hot = np.eye(logits.shape[-1])[targets]
    return np.array(-np.sum(log_p * one_hot) / np.size(targets)), (np.exp(log_p) - one_hot) / np.size(targets)


@mutant("softmax_cross_entropy_grad", "shifts the logits in place", kind="in-place")
def softmax_cross_entropy_grad(logits, targets):
    logits -= np.max(logits, axis=-1, keepdims=True)
    log_p = logits - np.log(np.sum(np.exp(logits), axis=-1, keepdims=True))
    one_hot = np.eye(logits.shape[-1])[targets]
    return float(-np.sum(log_p * one_hot) / np.size(targets)), (np.exp(log_p) - one_hot) / np.size(targets)


@mutant("softmax_cross_entropy_grad", "Keras' loss and keras.ops.softmax", kind="delegation")
def softmax_cross_entropy_grad(logits, targets):
    loss = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    probs = np.asarray(keras.ops.softmax(logits, axis=-1))
    return float(np.mean(np.asarray(loss))), (probs - np.eye(logits.shape[-1])[targets]) / np.size(targets)


@mutant("softmax_cross_entropy_grad", "the shift by the row minimum (overflows on wide rows)", kind="stability")
def softmax_cross_entropy_grad(logits, targets):
    z = logits - np.min(logits, axis=-1, keepdims=True)
    log_p = z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
    one_hot = np.eye(logits.shape[-1])[targets]
    return float(-np.sum(log_p * one_hot) / np.size(targets)), (np.exp(log_p) - one_hot) / np.size(targets)


# --- truncated_bptt_grads ------------------------------------------------------
@mutant("truncated_bptt_grads", "the state not carried (every window starts from h0)")
def truncated_bptt_grads(dH, X, h0, W_x, W_h, b, k):
    total = [np.zeros(W_x.shape), np.zeros(W_h.shape), np.zeros(W_h.shape[0])]
    for s in range(0, X.shape[1], k):
        H_w, _ = rnn_forward(X[:, s:s + k], h0, W_x, W_h, b)
        g = rnn_backward(dH[:, s:s + k], X[:, s:s + k], h0, H_w, W_x, W_h)[2:]
        total = [a + c for a, c in zip(total, g)]
    return tuple(total)


@mutant("truncated_bptt_grads", "no truncation (full BPTT, k ignored)")
def truncated_bptt_grads(dH, X, h0, W_x, W_h, b, k):
    H, _ = rnn_forward(X, h0, W_x, W_h, b)
    return tuple(rnn_backward(dH, X, h0, H, W_x, W_h)[2:])


@mutant("truncated_bptt_grads", "the last, shorter window left out")
def truncated_bptt_grads(dH, X, h0, W_x, W_h, b, k):
    total, h = [np.zeros(W_x.shape), np.zeros(W_h.shape), np.zeros(W_h.shape[0])], h0
    for s in range(0, X.shape[1] - k + 1, k):
        H_w, h_end = rnn_forward(X[:, s:s + k], h, W_x, W_h, b)
        g = rnn_backward(dH[:, s:s + k], X[:, s:s + k], h, H_w, W_x, W_h)[2:]
        total, h = [a + c for a, c in zip(total, g)], h_end
    return tuple(total)


@mutant("truncated_bptt_grads", "windows of k + 1 steps overlapping by one")
def truncated_bptt_grads(dH, X, h0, W_x, W_h, b, k):
    total, h = [np.zeros(W_x.shape), np.zeros(W_h.shape), np.zeros(W_h.shape[0])], h0
    for s in range(0, X.shape[1], k):
        H_w, _ = rnn_forward(X[:, s:s + k + 1], h, W_x, W_h, b)
        g = rnn_backward(dH[:, s:s + k + 1], X[:, s:s + k + 1], h, H_w, W_x, W_h)[2:]
        total, h = [a + c for a, c in zip(total, g)], H_w[:, min(k, H_w.shape[1]) - 1]
    return tuple(total)


@mutant("truncated_bptt_grads", "the carried state taken from the window's first step")
def truncated_bptt_grads(dH, X, h0, W_x, W_h, b, k):
    total, h = [np.zeros(W_x.shape), np.zeros(W_h.shape), np.zeros(W_h.shape[0])], h0
    for s in range(0, X.shape[1], k):
        H_w, _ = rnn_forward(X[:, s:s + k], h, W_x, W_h, b)
        g = rnn_backward(dH[:, s:s + k], X[:, s:s + k], h, H_w, W_x, W_h)[2:]
        total, h = [a + c for a, c in zip(total, g)], H_w[:, 0]
    return tuple(total)


@mutant("truncated_bptt_grads", "the carried state kept from the previous call", kind="state")
def truncated_bptt_grads(dH, X, h0, W_x, W_h, b, k, _carry={}):
    dW_x, dW_h, db = np.zeros(W_x.shape), np.zeros(W_h.shape), np.zeros(W_h.shape[0])
    h_start = _carry.get(h0.shape, h0)
    for start in range(0, X.shape[1], k):
        window = slice(start, start + k)
        H_w, h_end = rnn_forward(X[:, window], h_start, W_x, W_h, b)
        _, _, gW_x, gW_h, g_b = rnn_backward(dH[:, window], X[:, window], h_start, H_w, W_x, W_h)
        dW_x += gW_x
        dW_h += gW_h
        db += g_b
        h_start = h_end
    _carry[h0.shape] = h_start
    return dW_x, dW_h, db


@mutant("truncated_bptt_grads", "carries the state by writing it into h0", kind="in-place")
def truncated_bptt_grads(dH, X, h0, W_x, W_h, b, k):
    dW_x, dW_h, db = np.zeros(W_x.shape), np.zeros(W_h.shape), np.zeros(W_h.shape[0])
    for start in range(0, X.shape[1], k):
        window = slice(start, start + k)
        H_w, h_end = rnn_forward(X[:, window], h0, W_x, W_h, b)
        _, _, gW_x, gW_h, g_b = rnn_backward(dH[:, window], X[:, window], h0.copy(), H_w, W_x, W_h)
        dW_x += gW_x
        dW_h += gW_h
        db += g_b
        h0[...] = h_end
    return dW_x, dW_h, db


@mutant("truncated_bptt_grads", "the course's window helper", kind="delegation")
def truncated_bptt_grads(dH, X, h0, W_x, W_h, b, k):
    from course.checks.bptt_and_gradients import windows
    dW_x, dW_h, db = np.zeros(W_x.shape), np.zeros(W_h.shape), np.zeros(W_h.shape[0])
    h_start = h0
    for start, end in windows(X.shape[1], k):
        H_w, h_end = rnn_forward(X[:, start:end], h_start, W_x, W_h, b)
        _, _, gW_x, gW_h, g_b = rnn_backward(dH[:, start:end], X[:, start:end], h_start, H_w, W_x, W_h)
        dW_x += gW_x
        dW_h += gW_h
        db += g_b
        h_start = h_end
    return dW_x, dW_h, db


# --- red-team survivors: float32 cast back to float64, caches keyed on id(), a global max ---------
@mutant("rnn_step_backward", "float32 inside, every gradient cast back to float64 (dtype right, digits lost)",
        kind="precision")
def rnn_step_backward(dh_t, x_t, h_prev, h_t, W_x, W_h):
    f = np.float32
    da = (dh_t * (1 - h_t ** 2)).astype(f)
    out = (da @ W_x.T.astype(f), da @ W_h.T.astype(f), x_t.T.astype(f) @ da, h_prev.T.astype(f) @ da, da.sum(0))
    return tuple(g.astype(np.float64) for g in out)


_TRANSPOSES = {}


def _cached_transpose(W):
    key = (id(W), W.shape)
    if key not in _TRANSPOSES:
        _TRANSPOSES[key] = np.ascontiguousarray(W.T)
    return _TRANSPOSES[key]


@mutant("rnn_step_backward", "W_x.T and W_h.T cached by id(W): stale after an in-place weight update",
        kind="state")
def rnn_step_backward(dh_t, x_t, h_prev, h_t, W_x, W_h):
    da = dh_t * (1.0 - h_t ** 2)
    return da @ _cached_transpose(W_x), da @ _cached_transpose(W_h), x_t.T @ da, h_prev.T @ da, da.sum(axis=0)


@mutant("rnn_backward", "float32 running sums, cast back to float64 at the end", kind="precision")
def rnn_backward(dH, X, h0, H, W_x, W_h):
    f = np.float32
    dX = np.zeros(X.shape, f)
    dW_x, dW_h, db = np.zeros(W_x.shape, f), np.zeros(W_h.shape, f), np.zeros(W_h.shape[0], f)
    dh_future = np.zeros(h0.shape)
    for t in reversed(range(X.shape[1])):
        h_before = H[:, t - 1] if t > 0 else h0
        dX[:, t], dh_future, gW_x, gW_h, g_b = rnn_step_backward(dH[:, t] + dh_future, X[:, t], h_before, H[:, t],
                                                                 W_x, W_h)
        dW_x += gW_x
        dW_h += gW_h
        db += g_b
    return dX.astype(np.float64), dh_future, dW_x.astype(np.float64), dW_h.astype(np.float64), db.astype(np.float64)


@mutant("step_jacobian", "float32 inside, cast back to float64", kind="precision")
def step_jacobian(h_t, W_h):
    f = np.float32
    return ((1 - h_t.astype(f) ** 2)[:, None] * W_h.T.astype(f)).astype(np.float64)


@mutant("dh0_norms", "the running product in float32, the norms returned as float64", kind="precision")
def dh0_norms(H, W_h, dh_T):
    product, norms = np.eye(W_h.shape[0], dtype=np.float32), []
    for h_t in H:
        product = step_jacobian(h_t, W_h).astype(np.float32) @ product
        norms.append(np.linalg.norm(dh_T @ product))
    return np.array(norms, dtype=np.float64)


@mutant("softmax_cross_entropy_grad", "shifted by the largest logit of the whole array, not each row's "
        "(a row far below it underflows to log 0)", kind="stability")
def softmax_cross_entropy_grad(logits, targets):
    z = logits - np.max(logits)
    log_p = z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
    N = np.size(targets)
    one_hot = np.eye(logits.shape[-1])[targets]
    return float(-np.sum(log_p * one_hot) / N), (np.exp(log_p) - one_hot) / N


@mutant("softmax_cross_entropy_grad", "the softmax for the gradient in float32 (the loss in float64), "
        "dlogits cast back to float64", kind="precision")
def softmax_cross_entropy_grad(logits, targets):
    z = logits - np.max(logits, axis=-1, keepdims=True)
    log_p = z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
    N = np.size(targets)
    one_hot = np.eye(logits.shape[-1])[targets]
    z32 = z.astype(np.float32)
    p = np.exp(z32) / np.exp(z32).sum(axis=-1, keepdims=True)
    return float(-np.sum(log_p * one_hot) / N), ((p - one_hot) / N).astype(np.float64)


@mutant("truncated_bptt_grads", "float32 running sums across windows, cast back to float64", kind="precision")
def truncated_bptt_grads(dH, X, h0, W_x, W_h, b, k):
    f = np.float32
    dW_x, dW_h, db = np.zeros(W_x.shape, f), np.zeros(W_h.shape, f), np.zeros(W_h.shape[0], f)
    h_start = h0
    for start in range(0, X.shape[1], k):
        w = slice(start, start + k)
        H_w, h_end = rnn_forward(X[:, w], h_start, W_x, W_h, b)
        _, _, a, c, d = rnn_backward(dH[:, w], X[:, w], h_start, H_w, W_x, W_h)
        dW_x += a
        dW_h += c
        db += d
        h_start = h_end
    return dW_x.astype(np.float64), dW_h.astype(np.float64), db.astype(np.float64)



# --- results kept by the answer and handed out again (state) ------------------------------------------------
@mutant("rnn_backward", "gradient sums in buffers kept per shape, zeroed and returned by every call", kind="state")
def rnn_backward(dH, X, h0, H, W_x, W_h, _grads={}):
    key = (X.shape, W_h.shape)
    if key not in _grads:
        _grads[key] = (np.zeros(X.shape), np.zeros(W_x.shape), np.zeros(W_h.shape), np.zeros(W_h.shape[0]))
    dX, dW_x, dW_h, db = _grads[key]
    for a in (dX, dW_x, dW_h, db):
        a.fill(0.0)
    dh_future = np.zeros(h0.shape)
    for t in reversed(range(X.shape[1])):
        h_before = H[:, t - 1] if t > 0 else h0
        dX[:, t], dh_future, gW_x, gW_h, g_b = rnn_step_backward(dH[:, t] + dh_future, X[:, t], h_before, H[:, t],
                                                                 W_x, W_h)
        dW_x += gW_x
        dW_h += gW_h
        db += g_b
    return dX, dh_future, dW_x, dW_h, db


@mutant("dh0_norms", "reuses the Jacobian products of the call before, keyed on the arrays' ids", kind="state")
def dh0_norms(H, W_h, dh_T, _products={}):
    key = (id(W_h), W_h.shape, len(H), id(H))
    if key not in _products:
        product, products = np.eye(W_h.shape[0]), []
        for h_t in H:
            product = step_jacobian(h_t, W_h) @ product
            products.append(product)
        _products[key] = products
    return np.array([np.linalg.norm(dh_T @ P) for P in _products[key]], dtype=np.float64)


@mutant("truncated_bptt_grads", "memoised on the arrays' ids: stale once dH or the weights change in place",
        kind="state")
def truncated_bptt_grads(dH, X, h0, W_x, W_h, b, k, _memo={}):
    key = (id(X), id(dH), id(W_h), k, X.shape)
    if key in _memo:
        return _memo[key]
    dW_x, dW_h, db = np.zeros(W_x.shape), np.zeros(W_h.shape), np.zeros(W_h.shape[0])
    h_start = h0
    for start in range(0, X.shape[1], k):
        window = slice(start, start + k)
        H_w, h_end = rnn_forward(X[:, window], h_start, W_x, W_h, b)
        _, _, gW_x, gW_h, g_b = rnn_backward(dH[:, window], X[:, window], h_start, H_w, W_x, W_h)
        dW_x += gW_x
        dW_h += gW_h
        db += g_b
        h_start = h_end
    _memo[key] = (dW_x, dW_h, db)
    return _memo[key]


@mutant("clip_by_global_norm", "read-only views (np.broadcast_to) when nothing is clipped", kind="return-type")
def clip_by_global_norm(grads, max_norm):
    total = float(np.sqrt(sum(np.sum(np.square(g)) for g in grads)))
    if total <= max_norm:
        return [np.broadcast_to(np.asarray(g), np.shape(g)) for g in grads], total
    return [np.asarray(g) * (max_norm / total) for g in grads], total
