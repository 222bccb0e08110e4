"""Analyses of stored series (performance, trends, anomalies) and CSV exports."""
