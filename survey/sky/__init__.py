"""The sky: GLEAM bands, the HEALPix shim, the footprint, tiles and windows, image fields, overlap groups, sphere geometry."""
