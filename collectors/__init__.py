"""Producers of samples, the store that keeps them and the aggregator that reads them."""
