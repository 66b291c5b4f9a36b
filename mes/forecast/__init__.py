"""Completion forecasts of open and banked lots (P50 / P90 from the recorded durations of
the remaining steps and holds), kept per lot in `lot_forecast` and refreshed when lots move."""
