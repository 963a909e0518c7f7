/* registry.h — every binding file exposes one `int svdc_py_register_<type>(PyObject *module)`; module init calls
 * them in this order. Add a line here when adding a py_<type>.c. */
#ifndef SVDC_PY_REGISTRY_H
#define SVDC_PY_REGISTRY_H

#include <Python.h>

typedef int (*svdc_py_registrar)(PyObject *module);

int svdc_py_register_generator(PyObject *module);     /* py_generator.c: svdc._C.Generator (torch-compatible noise) */
int svdc_py_register_sampler(PyObject *module);       /* py_sampler.c: svdc._C.Sampler (Euler/EDM/CFG steps) */
int svdc_py_register_image_encoder(PyObject *module); /* py_image_encoder.c: svdc._C.ImageEncoder */
int svdc_py_register_unet(PyObject *module);          /* py_unet.c: svdc._C.UNet */
int svdc_py_register_vae(PyObject *module);           /* py_vae.c: svdc._C.VAE */
int svdc_py_register_curation(PyObject *module);      /* py_curation.c: svdc._C._plane_* (curation) */
int svdc_py_register_text_encoder(PyObject *module);  /* py_text_encoder.c: svdc._C.TextEncoder */

static const svdc_py_registrar svdc_py_registrars[] = {
    svdc_py_register_generator,
    svdc_py_register_sampler,
    svdc_py_register_image_encoder,
    svdc_py_register_unet,
    svdc_py_register_vae,
    svdc_py_register_curation,
    svdc_py_register_text_encoder,
    NULL,
};

#endif
