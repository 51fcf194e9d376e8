"""The core: decide → download → decode → transcribe → deliver, Telethon-free and testable
offline. Data flows one way: intake (:mod:`.dispatch`) → journal (:mod:`voicebot.state`) →
worker (:mod:`.pipeline`, :mod:`.jobs`) → delivery (:mod:`.delivery`). The owner's controls
(:mod:`.controls`), recovery and backfill reach the pipeline through the ports in
:mod:`.ports`; :mod:`.assembly` wires it all.

This package never imports :mod:`voicebot.telegram`, an engine implementation, the app or the CLI.
"""
