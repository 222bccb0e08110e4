"""The embedded store: samples and metric declarations, head chunks, compressed history on disk, rollups and
the pandas time aggregator that reads them."""
