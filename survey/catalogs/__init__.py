"""Galaxy-cluster catalogues: one table form, local readers, VizieR, the registry of known catalogues, cross-matching."""
