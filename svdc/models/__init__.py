"""The model components: thin wrappers over svdc._C objects with from_pretrained / from_config.
One module per component (vae.py, image_encoder.py, unet.py); _loading.py locates and reads checkpoints."""
