"""Exceptions and warnings raised by skrnn."""


class DivergenceError(FloatingPointError, ValueError):
    """Training produced a non-finite loss or gradient.

    Raised by ``fit``/``partial_fit`` when the loss or the gradient becomes NaN or
    infinite and no earlier best weights can be restored. The estimator is left as
    it was before the call. Lower ``learning_rate_init``, set ``clipnorm``, or scale
    the inputs and target.
    """


class DivergenceWarning(UserWarning):
    """Training diverged; the best weights seen so far were restored."""


class NonNumericInputError(TypeError, ValueError):
    """``X`` or ``y`` holds values that are not numbers (strings, objects, dicts).

    A ``TypeError`` as NumPy's conversion error is (and scikit-learn expects), and a
    ``ValueError`` as every other bad-input error of skrnn, so either ``except``
    catches it.
    """
