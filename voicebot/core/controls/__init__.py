"""The owner's controls: commands (:mod:`.commands`) and reactions (:mod:`.reactions`), written
against the core's ports, never against the pipeline."""
