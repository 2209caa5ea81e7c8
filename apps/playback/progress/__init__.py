"""Playback progress, in one package: where a user is in each track, on every device.

- `rules`: the rules of a change (in Python and, side by side, in Lua for the Redis buffer); pure.
- `store`: the one mapping between a progress state and its PostgreSQL row, its Redis hash and the API output.
- `buffer`: the Redis buffer, the write-mode switch and the breaker that leaves an unreachable Redis alone.
- `services`: the writes (a device's report, a batch, reset, mark played); `flush`: the buffer to PostgreSQL.
- `selectors`: the reads, the buffer laid over PostgreSQL.

Import from the modules; this file imports nothing, so that loading the app does not load the models.
"""
