"""Jobs: the bounded queue and its worker threads (:mod:`.queue`), one voice's job
(:mod:`.job`), and jobs that come back after a restart or a wait (:mod:`.recovery`)."""
