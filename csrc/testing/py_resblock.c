/* py_resblock.c — svdc._C_testing.st_resblock: runs one SpatioTemporalResBlock (csrc/models/blocks/resblocks.h)
 * with weights under "block." + diffusers names, so that tests compare it with diffusers. Test surface only:
 * registered by py_ops.c's module init; like py_ops.c it links no core file (its svdc_* symbols are svdc._C's). */
#include "../python/util.h"

#include "../core/arena.h"
#include "../core/backend.h"
#include "../models/blocks/resblocks.h"

/* st_resblock(config: dict, weights: dict, x (B*F, Cin, H, W), num_frames, temb (B*F, T) | None) -> y */
static PyObject *py_st_resblock(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *cfg, *weights, *xo, *to;
    int num_frames;
    if (!PyArg_ParseTuple(args, "O!OOiO", &PyDict_Type, &cfg, &weights, &xo, &num_frames, &to)) return NULL;
    int cin, cout, tch, groups, temporal_dir;
    float eps, teps;
    svdc_py_config c;
    const int BIG = SVDC_PY_CONFIG_SIZE_MAX;
    if (svdc_py_config_open(&c, cfg, "st_resblock") || svdc_py_config_int(&c, "in_channels", 1, BIG, &cin) ||
        svdc_py_config_int(&c, "out_channels", 1, BIG, &cout) || svdc_py_config_int(&c, "temb_channels", 0, BIG, &tch) ||
        svdc_py_config_int(&c, "groups", 1, BIG, &groups) || svdc_py_config_bool(&c, "temporal_weight", &temporal_dir) ||
        svdc_py_config_float(&c, "eps", 0.0, 1.0, &eps) || svdc_py_config_float(&c, "temporal_eps", 0.0, 1.0, &teps))
        return NULL;
    PyArrayObject *x = svdc_py_f32_array(xo, "x", 4), *t = NULL, *y = NULL;
    if (!x) return NULL;
    if (to != Py_None && !(t = svdc_py_f32_array(to, "temb", 2))) {
        Py_DECREF(x);
        return NULL;
    }
    svdc_params params;
    svdc_resblock block;
    svdc_ctx ctx = {svdc_backend_cpu(), NULL, SVDC_DEVICE_CPU};
    svdc_params_init(&params, ctx.backend, SVDC_DEVICE_CPU, SVDC_DTYPE_F32);
    svdc_status s = svdc_resblock_declare(&block, &params, "block", SVDC_BLOCK_SPATIO_TEMPORAL, cin, cout, tch, groups, eps, teps,
                                             temporal_dir ? SVDC_BLEND_TEMPORAL_WEIGHT : SVDC_BLEND_SPATIAL_WEIGHT);
    if (!s) s = svdc_params_allocate(&params);
    if (s) {
        svdc_py_raise(s);
        goto done;
    }
    if (svdc_py_load_params(&params, weights, "SpatioTemporalResBlock") < 0) goto done;
    svdc_tensor xt = svdc_py_tensor(x), tt;
    if (t) tt = svdc_py_tensor(t);
    int64_t shape[4] = {xt.shape[0], cout, xt.shape[2], xt.shape[3]};
    if (!(y = svdc_py_new_f32(4, shape))) goto done;
    svdc_tensor yt = svdc_py_tensor(y);
    if ((s = svdc_arena_init(&ctx.arena, ctx.backend, SVDC_DEVICE_CPU))) {
        svdc_py_raise(s);
        Py_CLEAR(y);
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS s = svdc_resblock_forward(&ctx, &block, &xt, num_frames, t ? &tt : NULL, &yt);
    Py_END_ALLOW_THREADS svdc_arena_free(ctx.arena);
    if (s) {
        svdc_py_raise(s);
        Py_CLEAR(y);
    }
done:
    svdc_params_free(&params);
    Py_XDECREF(x);
    Py_XDECREF(t);
    return (PyObject *)y;
}

static PyMethodDef resblock_methods[] = {
    {"st_resblock", py_st_resblock, METH_VARARGS,
     "st_resblock(config, weights, x, num_frames, temb|None) -> y: one SpatioTemporalResBlock on the CPU"},
    {NULL, NULL, 0, NULL},
};

int svdc_testing_register_resblock(PyObject *module) { return PyModule_AddFunctions(module, resblock_methods); }
