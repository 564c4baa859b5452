"""Images: what a band image is, the one door to FITS and WCS, file names and discovery, and the three image sources."""
