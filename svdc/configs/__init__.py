"""Component configs: normalised from a diffusers config.json, or the sgm presets of the Stability single files
(svd, svd_xt, sv3d_u, sv3d_p, sd21), one module per component."""
