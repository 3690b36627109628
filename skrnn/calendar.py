"""Calendar features of dates, for the known-future step features of the lag windows.

:func:`calendar_features` turns dates into numeric columns: one-hot day of week and month,
day of year and week of year as a point on the unit circle (sin, cos), so December 31 sits
next to January 1, and a public-holiday flag from the ``holidays`` package when a country is
given. ``dayofmonth`` (sin, cos of the position in the month) and ``monthstart`` (a flag on
the first day of each month) serve data with pay-day cycles or with records of unknown day
booked on the month's first day (police reports, for one). :class:`~skrnn.LagFeatures` and
:func:`~skrnn.make_supervised` use it for their ``calendar=`` option.
"""

import numpy as np
import pandas as pd

__all__ = ["CALENDAR_FEATURES", "calendar_feature_names", "calendar_features"]

#: The names accepted by ``calendar=`` and the columns each one produces.
CALENDAR_FEATURES = {
    "dayofweek": [f"dayofweek_{d}" for d in range(7)],  # Monday=0, one-hot
    "month": [f"month_{m}" for m in range(1, 13)],  # one-hot
    "dayofyear": ["dayofyear_sin", "dayofyear_cos"],
    "weekofyear": ["weekofyear_sin", "weekofyear_cos"],
    "dayofmonth": ["dayofmonth_sin", "dayofmonth_cos"],
    "monthstart": ["monthstart"],
    "holiday": ["holiday"],
}


def _check_features(features, country):
    """Features as a list of known names; ``holiday`` needs a country."""
    if isinstance(features, str):
        features = [features]
    try:
        features = list(features)
    except TypeError:
        raise TypeError(
            f"calendar must be a feature name or a list of them among "
            f"{sorted(CALENDAR_FEATURES)}, got {features!r}."
        ) from None
    unknown = [f for f in features if f not in CALENDAR_FEATURES]
    if unknown or not features:
        raise ValueError(
            f"calendar must list features among {sorted(CALENDAR_FEATURES)}, got {features!r}"
            f"{f' (unknown: {unknown})' if unknown else ''}."
        )
    if len(set(features)) != len(features):
        raise ValueError(f"calendar lists a feature twice: {features!r}.")
    if "holiday" in features and country is None:
        raise ValueError(
            "calendar='holiday' needs country= (an ISO code known to the holidays package, "
            "e.g. 'US')."
        )
    if country is not None and not isinstance(country, str):
        raise TypeError(f"country must be a str such as 'US', got {country!r}.")
    return features


def calendar_feature_names(features, country=None):
    """Output column names of :func:`calendar_features` for ``features``.

    Parameters
    ----------
    features : str or list of str
        Names among :data:`CALENDAR_FEATURES`.
    country : str, default=None
        Needed for ``"holiday"``.

    Returns
    -------
    names : list of str
    """
    return [n for f in _check_features(features, country) for n in CALENDAR_FEATURES[f]]


def _holiday_flags(dates, country):
    try:
        import holidays
    except ImportError as exc:
        raise ImportError(
            "calendar='holiday' needs the 'holidays' package: pip install 'skrnn[calendar]' "
            "(or pip install holidays)."
        ) from exc
    years = sorted(set(dates.year.tolist()))
    try:
        table = holidays.country_holidays(country, years=years)
    except NotImplementedError as exc:
        raise ValueError(
            f"country={country!r} is not known to the holidays package ({exc})."
        ) from None
    days = pd.DatetimeIndex(pd.to_datetime(list(table.keys()))).normalize()
    return dates.normalize().isin(days).astype(np.float64)


def calendar_features(dates, features, *, country=None):
    """Numeric calendar features of ``dates``.

    Parameters
    ----------
    dates : array-like of datetimes or periods, shape (n,)
        The dates (periods are read at their start).
    features : str or list of str
        Among ``"dayofweek"`` (7 one-hot columns, Monday first), ``"month"`` (12 one-hot
        columns), ``"dayofyear"`` and ``"weekofyear"`` (sin and cos of the position in the
        year; ISO weeks, of 52.18 on average), ``"dayofmonth"`` (sin and cos of the position
        in the month, day 1 at angle 0 and one turn per month of its own length),
        ``"monthstart"`` (1.0 on the first day of a month, else 0.0), ``"holiday"`` (1.0 on
        the public holidays of ``country``, else 0.0; needs the ``holidays`` package).
    country : str, default=None
        Country code for ``"holiday"``, as the ``holidays`` package knows it (e.g. ``"US"``).

    Returns
    -------
    values : ndarray of shape (n, n_columns)
        Columns in the order of :func:`calendar_feature_names`.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrnn.calendar import calendar_features
    >>> calendar_features(pd.to_datetime(["2024-01-01", "2024-01-06"]), "dayofweek")
    array([[1., 0., 0., 0., 0., 0., 0.],
           [0., 0., 0., 0., 0., 1., 0.]])
    """
    features = _check_features(features, country)
    dates = pd.Index(dates)
    if isinstance(dates, pd.PeriodIndex):
        dates = dates.to_timestamp()
    if not isinstance(dates, pd.DatetimeIndex):
        try:
            dates = pd.DatetimeIndex(dates)
        except (TypeError, ValueError):
            raise TypeError(
                f"calendar features need datetimes or periods, got dtype {dates.dtype}."
            ) from None
    if dates.isna().any():
        raise ValueError("calendar features: the dates contain NaT.")
    n = len(dates)
    blocks = []
    for f in features:
        if f == "dayofweek":
            blocks.append(np.eye(7)[np.asarray(dates.dayofweek)])
        elif f == "month":
            blocks.append(np.eye(12)[np.asarray(dates.month) - 1])
        elif f == "dayofyear":
            length = np.where(dates.is_leap_year, 366.0, 365.0)
            angle = 2 * np.pi * (np.asarray(dates.dayofyear) - 1) / length
            blocks.append(np.column_stack([np.sin(angle), np.cos(angle)]))
        elif f == "weekofyear":
            angle = 2 * np.pi * (np.asarray(dates.isocalendar().week, dtype=np.float64) - 1) / (
                365.2425 / 7)
            blocks.append(np.column_stack([np.sin(angle), np.cos(angle)]))
        elif f == "dayofmonth":
            angle = 2 * np.pi * (np.asarray(dates.day) - 1) / np.asarray(dates.days_in_month)
            blocks.append(np.column_stack([np.sin(angle), np.cos(angle)]))
        elif f == "monthstart":
            blocks.append(np.asarray(dates.day == 1, dtype=np.float64).reshape(n, 1))
        else:
            blocks.append(np.asarray(_holiday_flags(dates, country)).reshape(n, 1))
    return np.hstack(blocks).astype(np.float64)
