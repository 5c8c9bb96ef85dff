"""The forecast against the generator's own effects: weekends, the peak season and growth are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecom_pipeline import forecast
from ecom_pipeline.params import Effects
from ecom_pipeline.stages.generate.world import daily_weights

EPOCH = pd.Timestamp("1970-01-01")
ORDERS_A_DAY = 300
ORDER_VALUE = 548.0


def _day(date: str) -> int:
    return (pd.Timestamp(date) - EPOCH).days


def expected_orders(start: str, first: str, days: int) -> np.ndarray:
    """The generator's expected orders on each of ``days`` days from ``first``, for a history from ``start``."""
    return daily_weights(np.arange(_day(first), _day(first) + days), _day(start), Effects()) * ORDERS_A_DAY


def history(start: str, days: int, seed: int = 7) -> pd.DataFrame:
    """Daily sales drawn around the generator's expected volume (Poisson orders, noisy order values)."""
    rng = np.random.default_rng(seed)
    orders = rng.poisson(expected_orders(start, start, days))
    return pd.DataFrame(
        {
            "full_date": pd.date_range(start, periods=days, freq="D").date,
            "orders": orders,
            "revenue": orders * rng.normal(ORDER_VALUE, 40, days),
        }
    )


@pytest.mark.parametrize("days", [730, 420], ids=["two years", "a year and eight weeks"])
def test_the_forecast_beats_repeating_the_last_week_on_the_backtest(days):
    result = forecast.forecast_daily(history("2024-01-01", days))
    for metric in forecast.METRICS:
        tested = result.accuracy[metric]
        assert tested["days"] == forecast.BACKTEST_DAYS and tested["yearly"]
        assert tested["mae"] < 0.8 * tested["naive_mae"], (metric, tested)


def test_the_next_month_follows_the_generators_effects():
    """Two years to the end of a peak season: the forecast January drops back, weekends stay higher."""
    result = forecast.forecast_daily(history("2024-01-01", 731))  # 2024 is a leap year: to 2025-12-31
    orders = result.frame[result.frame["metric"] == "orders"]
    assert list(orders["date"]) == list(pd.date_range("2026-01-01", periods=forecast.HORIZON_DAYS).date)
    truth = expected_orders("2024-01-01", "2026-01-01", forecast.HORIZON_DAYS)
    error = np.abs(orders["forecast"].to_numpy() / truth - 1)
    assert error.mean() < 0.15, error.round(2)
    assert ((orders["lower"] <= orders["forecast"]) & (orders["forecast"] <= orders["upper"])).all()
    weekend = pd.to_datetime(orders["date"]).dt.day_of_week >= 5
    ratio = orders["forecast"][weekend].mean() / orders["forecast"][~weekend].mean()
    assert ratio == pytest.approx(Effects().weekend_uplift, rel=0.1)


def test_one_year_of_history_reads_the_peak_as_season_not_growth():
    """With no day seen twice, growth cannot be told from the season: January must not carry December on."""
    result = forecast.forecast_daily(history("2025-01-01", 365))
    orders = result.frame[result.frame["metric"] == "orders"]
    december = expected_orders("2025-01-01", "2025-12-01", 31).mean()
    assert orders["forecast"].tail(21).mean() < 0.8 * december


def test_missing_days_count_as_days_without_sales():
    daily = history("2025-01-01", 120)
    gap = daily.drop(index=range(50, 53))
    result = forecast.forecast_daily(gap)
    assert len(result.frame) == forecast.HORIZON_DAYS * len(forecast.METRICS)
    assert result.frame["forecast"].notna().all() and (result.frame["lower"] >= 0).all()


def test_a_short_history_gives_no_forecast_and_no_backtest():
    assert forecast.forecast_daily(history("2025-01-01", forecast.MIN_HISTORY_DAYS - 1)).frame.empty
    result = forecast.forecast_daily(history("2025-01-01", 60))
    assert len(result.frame) == forecast.HORIZON_DAYS * len(forecast.METRICS)
    assert result.backtest_frame()["days"].tolist() == [0, 0]


def test_seasonal_naive_repeats_the_last_week():
    series = pd.Series(np.arange(1.0, 15.0))
    assert forecast.seasonal_naive(series, 10).tolist() == [8, 9, 10, 11, 12, 13, 14, 8, 9, 10]
