"""The next days of revenue and orders, forecast from the daily history, with the forecast's own track record.

The model is a regression of the day's log value on deterministic terms (statsmodels'
``DeterministicProcess``): one level per weekday, a yearly cycle of Fourier terms once the history holds
a year, and a linear trend; an AR(1) term follows what the terms leave. Working in logs makes the effects
multiplicative, as the shop's are (a weekend, a peak season, growth). The interval is the model's
prediction interval for a single day; the forecast is its middle (back from logs, the median day).

Growth and season can be told apart only where the history holds the same days twice: with between one
year and one year and eight weeks of history the trend is left out (the yearly cycle alone would
otherwise be read as growth and a December peak carried into January).

Its accuracy is measured the way it is used: fitted on the history up to eight weeks ago, it forecasts
those eight weeks, and its mean absolute error is set beside that of the seasonal-naive forecast (each day
as the same weekday of the last week known), the baseline a forecast has to beat to be worth showing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.tsa.ar_model import AutoReg
from statsmodels.tsa.deterministic import DeterministicProcess, Fourier, Seasonality

HORIZON_DAYS = 30
BACKTEST_DAYS = 56
MIN_HISTORY_DAYS = 28  # four weeks: the least that tells the weekdays apart
YEAR_DAYS = 365.25
A_YEAR = 364  # days of history (52 whole weeks) from which the yearly cycle is fitted
GROWTH_OVERLAP = 56  # days seen in two years from which growth is told from the season
YEARLY_HARMONICS = 8  # a peak season of two months, sharp enough at its ends, from one year of history
INTERVAL = 0.8  # the share of days the interval should hold
METRICS = ("revenue", "orders")


@dataclass(frozen=True)
class Forecast:
    """``frame``: one row per metric and day (``date``, ``metric``, ``forecast``, ``lower``, ``upper``).
    ``accuracy``: per metric, the backtest's errors and whether the yearly cycle was part of the model."""

    frame: pd.DataFrame
    accuracy: dict[str, dict[str, float | int | bool | None]]

    def backtest_frame(self) -> pd.DataFrame:
        """The backtest as a table, one row per metric."""
        rows = [{"metric": metric, **scores} for metric, scores in self.accuracy.items()]
        return pd.DataFrame(rows, columns=["metric", "days", "mae", "naive_mae", "mape", "yearly"])


def forecast_daily(daily: pd.DataFrame, horizon: int = HORIZON_DAYS, backtest_days: int = BACKTEST_DAYS) -> Forecast:
    """Forecast each metric of ``daily`` (``full_date`` and one column per metric) ``horizon`` days ahead.

    Days missing from the history count as days without sales. Too short a history gives an empty forecast.
    """
    history = _complete_days(daily)
    columns = ["date", "metric", "forecast", "lower", "upper"]
    if len(history) < MIN_HISTORY_DAYS:
        return Forecast(pd.DataFrame(columns=columns), {})
    parts, accuracy = [], {}
    for metric in METRICS:
        series = history[metric]
        # To the cent (a hundredth of an order): the fit's last bits vary with the BLAS build and its threads.
        middle, lower, upper = (values.round(2) for values in _fit_and_forecast(series, horizon))
        parts.append(
            pd.DataFrame(
                {"date": middle.index.date, "metric": metric, "forecast": middle, "lower": lower, "upper": upper}
            )
        )
        accuracy[metric] = backtest(series, backtest_days)
    return Forecast(pd.concat(parts, ignore_index=True)[columns], accuracy)


def backtest(series: pd.Series, days: int = BACKTEST_DAYS) -> dict[str, float | int | bool | None]:
    """The model and the seasonal-naive forecast, both from the history up to ``days`` ago, against what came."""
    if len(series) - days < MIN_HISTORY_DAYS:
        return {"days": 0, "mae": None, "naive_mae": None, "mape": None, "yearly": False}
    known, actual = series.iloc[:-days], series.iloc[-days:].to_numpy()
    predicted, _, _ = _fit_and_forecast(known, days)
    naive = seasonal_naive(known, days)
    mae = float(np.abs(predicted.to_numpy() - actual).mean())
    sold = actual > 0
    mape = float(np.abs(predicted.to_numpy()[sold] / actual[sold] - 1).mean()) if sold.any() else None
    return {
        "days": days,
        "mae": round(mae, 2),
        "naive_mae": round(float(np.abs(naive - actual).mean()), 2),
        "mape": None if mape is None else round(mape, 4),
        "yearly": _has_a_year(known),
    }


def seasonal_naive(series: pd.Series, horizon: int) -> np.ndarray:
    """Each day ahead as the same weekday of the last week known."""
    last_week = series.iloc[-7:].to_numpy()
    return np.resize(last_week, horizon)


def _complete_days(daily: pd.DataFrame) -> pd.DataFrame:
    frame = daily.assign(full_date=pd.to_datetime(daily["full_date"])).set_index("full_date")[list(METRICS)]
    if frame.empty:
        return frame.astype(float)
    days = pd.date_range(frame.index.min(), frame.index.max(), freq="D")
    return frame.reindex(days, fill_value=0).astype(float)


def _has_a_year(series: pd.Series) -> bool:
    return len(series) >= A_YEAR


def _fit_and_forecast(series: pd.Series, horizon: int) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Forecast, lower and upper bound of each of the ``horizon`` days after ``series`` ends."""
    index = pd.DatetimeIndex(series.index, freq="D")
    terms = [Seasonality(7)]
    if _has_a_year(series):
        terms.append(Fourier(YEAR_DAYS, YEARLY_HARMONICS))
    trend = not _has_a_year(series) or len(series) >= A_YEAR + GROWTH_OVERLAP
    process = DeterministicProcess(index, constant=not trend, order=int(trend), additional_terms=terms)
    values = pd.Series(np.log1p(series.to_numpy()), index=index)
    model = AutoReg(values, lags=1, trend="n", deterministic=process).fit()
    predicted = model.get_prediction(start=len(values), end=len(values) + horizon - 1)
    bounds = predicted.conf_int(alpha=1 - INTERVAL)
    days = pd.date_range(index[-1] + pd.Timedelta(days=1), periods=horizon, freq="D")

    def back(logs) -> pd.Series:
        return pd.Series(np.clip(np.expm1(np.asarray(logs, dtype=float)), 0, None), index=days)

    return back(predicted.predicted_mean), back(bounds.iloc[:, 0]), back(bounds.iloc[:, 1])
