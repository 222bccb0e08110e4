"""The collectors Pulseboard can run, by the name their config section uses."""

from collectors.system import DiskUsageCollector, SystemCollector

COLLECTORS = {
    "system": SystemCollector,
    "disk_usage": DiskUsageCollector,
}
