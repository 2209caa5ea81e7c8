"""Artwork: covers read by the scanner (folder images, embedded pictures), stored once by content hash,
pre-sized by a worker, served signed under /art/ like HLS segments. Pure modules (no ORM): `images` (finding
and checking an image), `storage` (the layout on disk and the signed URLs), `variants` (the sizes)."""
