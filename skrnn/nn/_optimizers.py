"""Optimizers over one flat parameter vector, updated in place.

The update rules follow ``sklearn.neural_network._stochastic_optimizers`` (SGD with
momentum / Nesterov, Adam with bias correction folded into the step size) and
PyTorch's ``RMSprop`` (no momentum, ``eps`` outside the square root).
"""

import numpy as np

from skrnn.nn import _engine


def _fused_ok(theta, *arrays):
    """Whether the compiled one-pass update applies (same float dtype, contiguous)."""
    dt = theta.dtype
    return dt in (np.float32, np.float64) and all(
        a.dtype == dt and a.flags.c_contiguous and a.shape == theta.shape
        for a in (theta,) + arrays
    )


class _Optimizer:
    def __init__(self, size, dtype, learning_rate_init):
        self.learning_rate_init = float(learning_rate_init)
        self.learning_rate = float(learning_rate_init)
        self.dtype = dtype

    def step(self, theta, grad):
        raise NotImplementedError

    def end_epoch(self, schedule, time_step, power_t):
        """Apply the ``invscaling`` schedule after an epoch (``time_step`` samples seen)."""
        if schedule == "invscaling":
            self.learning_rate = self.learning_rate_init / (time_step + 1) ** power_t

    def on_plateau(self, schedule):
        """The monitored loss stopped improving: apply the ``adaptive`` schedule.

        As in scikit-learn's MLP, ``adaptive`` divides the learning rate by 5 while it
        is above 1e-6. Returns True when it did so (training goes on with the smaller
        rate), False when the schedule has nothing left to try (training stops).
        """
        if schedule == "adaptive" and self.learning_rate > 1e-6:
            self.learning_rate /= 5
            return True
        return False


class SGD(_Optimizer):
    def __init__(self, size, dtype, learning_rate_init, momentum=0.9, nesterov=True):
        super().__init__(size, dtype, learning_rate_init)
        self.momentum = momentum
        self.nesterov = nesterov
        self.velocity = np.zeros(size, dtype=dtype)

    def step(self, theta, grad):
        lr, mu = self.learning_rate, self.momentum
        v = self.velocity
        v *= mu
        v -= lr * grad
        if self.nesterov:
            theta += mu * v - lr * grad
        else:
            theta += v


class Adam(_Optimizer):
    def __init__(self, size, dtype, learning_rate_init, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8):
        super().__init__(size, dtype, learning_rate_init)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.t = 0
        self.m = np.zeros(size, dtype=dtype)
        self.v = np.zeros(size, dtype=dtype)
        self._buf = np.zeros(size, dtype=dtype)

    def step(self, theta, grad):
        b1, b2 = self.beta_1, self.beta_2
        self.t += 1
        if _engine.get_engine() == "compiled" and _fused_ok(theta, grad, self.m, self.v):
            # one pass instead of twelve, with the same roundings (same bits)
            lr = self.learning_rate * np.sqrt(1 - b2**self.t) / (1 - b1**self.t)
            _engine.adam(theta, grad, self.m, self.v, beta_1=b1, beta_2=b2,
                         epsilon=self.epsilon, learning_rate=lr)
            return
        self.m *= b1
        self.m += (1 - b1) * grad
        self.v *= b2
        buf = self._buf
        np.multiply(grad, grad, out=buf)
        buf *= 1 - b2
        self.v += buf
        lr = self.learning_rate * np.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        np.sqrt(self.v, out=buf)
        buf += self.epsilon
        np.divide(self.m, buf, out=buf)
        buf *= lr
        theta -= buf


class RMSprop(_Optimizer):
    def __init__(self, size, dtype, learning_rate_init, rho=0.9, epsilon=1e-8):
        super().__init__(size, dtype, learning_rate_init)
        self.rho, self.epsilon = rho, epsilon
        self.square_avg = np.zeros(size, dtype=dtype)
        self._buf = np.zeros(size, dtype=dtype)

    def step(self, theta, grad):
        rho = self.rho
        buf = self._buf
        self.square_avg *= rho
        np.multiply(grad, grad, out=buf)
        buf *= 1 - rho
        self.square_avg += buf
        np.sqrt(self.square_avg, out=buf)
        buf += self.epsilon
        np.divide(grad, buf, out=buf)
        buf *= self.learning_rate
        theta -= buf


def make_optimizer(solver, size, dtype, *, learning_rate_init, momentum, nesterov,
                   beta_1, beta_2, epsilon, rho):
    if solver == "sgd":
        return SGD(size, dtype, learning_rate_init, momentum, nesterov)
    if solver == "adam":
        return Adam(size, dtype, learning_rate_init, beta_1, beta_2, epsilon)
    if solver == "rmsprop":
        return RMSprop(size, dtype, learning_rate_init, rho, epsilon)
    raise ValueError(f"unknown solver {solver!r}")


def clip_gradient(grad, clipnorm=None, clipvalue=None):
    """Clip in place; return the global norm measured before clipping."""
    norm = float(np.sqrt(grad @ grad))
    clipped_norm = norm
    if clipvalue is not None:
        np.clip(grad, -clipvalue, clipvalue, out=grad)
        clipped_norm = float(np.sqrt(grad @ grad))
    if clipnorm is not None and clipped_norm > clipnorm:
        grad *= clipnorm / clipped_norm
    return norm
