"""Samples in: one check and one durable append for every protocol (JSON push, remote write, OTLP, Influx line
protocol) and the registrations of pushed metrics."""
