"""The sequence layout of contract 1 (docs/architecture.md): its checks and reshapes.

A 2D window ``(n_samples, n_columns)`` is a batch of sequences flattened step-major,
oldest step first, so its columns must divide into steps of ``n_step_features``. The
recurrent regressors, :class:`~skrnn.lags.LastSteps` and the naive baselines all read
windows this way; they check and reshape them here. Each keeps the wording of its own
error message (users and tests match it), passed as a template.
"""

# placeholders: {n_columns}, {n_step_features}
STEPS_MESSAGE = (
    "X has {n_columns} columns, which do not divide into time steps of {n_step_features} "
    "features (n_step_features={n_step_features}). A 2D X must hold "
    "timesteps * n_step_features columns, oldest step first."
)


def n_steps(n_columns, n_step_features, message=STEPS_MESSAGE):
    """Steps in a window of ``n_columns`` columns of ``n_step_features`` features each.

    Parameters
    ----------
    n_columns : int
        Columns of the 2D window.
    n_step_features : int
        Features per time step.
    message : str, default=STEPS_MESSAGE
        Error message template, with ``{n_columns}`` and ``{n_step_features}``.

    Returns
    -------
    n_steps : int

    Raises
    ------
    ValueError
        When the columns do not divide into whole steps.
    """
    if n_columns % n_step_features:
        raise ValueError(message.format(n_columns=n_columns, n_step_features=n_step_features))
    return n_columns // n_step_features


def to_sequences(X, n_step_features, message=STEPS_MESSAGE):
    """A 2D window ``(n, T * F)`` as sequences ``(n, T, F)`` (a view), checked.

    ``message`` is the template of the error when the columns do not divide (see
    :func:`n_steps`).
    """
    n, n_columns = X.shape
    return X.reshape(n, n_steps(n_columns, n_step_features, message), n_step_features)


def flatten_sequences(X):
    """Sequences ``(n, T, F)`` as a 2D window ``(n, T * F)``, step-major, oldest first."""
    return X.reshape(X.shape[0], X.shape[1] * X.shape[2])  # -1 fails on 0 rows
