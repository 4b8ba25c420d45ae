"""Device, precision and distribution of a run, decided once at start-up."""
