"""PromQL over the embedded store, answering as Prometheus' HTTP API does (Grafana's data source)."""
