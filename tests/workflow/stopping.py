"""A training callback that raises at the end of a chosen epoch, for the tests of what
a failed or interrupted fit leaves behind (MLflow runs, the active-run stack)."""


class RaiseAtEpoch:
    """Raise ``error`` (default: a RuntimeError naming the epoch) at the end of epoch
    ``epoch``."""

    def __init__(self, epoch, error=None):
        self.epoch = epoch
        self.error = error

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context, **kwargs):
        pass

    def on_fit_task_end(self, estimator, context, **kwargs):
        if context.task_name == "epoch" and estimator.n_iter_ == self.epoch:
            raise self.error or RuntimeError(f"stopped at epoch {self.epoch}")
