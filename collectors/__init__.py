"""Producers of samples: the host collectors, scrapes, Pulseboard's own instruments, the demo, the scheduler
that runs them, and the client applications push with."""
