"""RQ queues and jobs: status changes, exposure tracing, logbook revocation, retention."""
