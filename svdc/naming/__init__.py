"""Checkpoint naming, in one place: Stability single-file (sgm / open_clip) names -> diffusers/transformers names,
one module per component, each with its explicit ignore list."""
