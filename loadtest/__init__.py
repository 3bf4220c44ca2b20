"""The load and fault suites (make loadtest, make faults): Locust raters against `make cluster`."""
