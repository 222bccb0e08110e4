"""Alerts: rules, their evaluation and backtests, and delivery of notifications."""
