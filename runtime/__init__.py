"""Device, precision and distribution of a run, decided once at start-up: runtime.runtime holds the
Runtime object the option parser attaches as `opt.runtime`; runtime.device the choices it is made of."""
