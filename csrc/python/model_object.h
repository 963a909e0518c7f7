/* model_object.h — the scaffolding every model binding type (UNet, VAE, ImageEncoder) shares: construction from
 * (config, weights, device) on any registered backend (weights uploaded once into the model's one device block),
 * the per-object device arena and mutex, dealloc, readiness, one model call run with the GIL released under the
 * object's lock with its NumPy inputs and outputs staged through the core's transfer service, the common getters
 * and the weight_shapes(config) classmethod. A py_<model>.c file supplies an svdc_py_model_kind (how to parse its
 * config and create/free/inspect its C model) and its methods. */
#ifndef SVDC_PY_MODEL_OBJECT_H
#define SVDC_PY_MODEL_OBJECT_H

#include "util.h"

#include <pythread.h>

#include "../core/backend.h"

typedef struct svdc_py_model_kind {
    const char *name;   /* "UNet": messages, and the weight loader's model name */
    size_t config_size; /* sizeof the model's C config struct */
    int (*parse_config)(PyObject *config, void *cfg); /* fills *cfg; -1 with a Python exception */
    svdc_status (*create)(void **model, const void *cfg, const svdc_backend *backend, int device);
    void (*destroy)(void *model); /* accepts NULL */
    svdc_params *(*params)(void *model);
    int trim_after_call; /* give the arena's memory back after every call (few, large calls: the VAE) */
} svdc_py_model_kind;

typedef struct {
    PyObject_HEAD const svdc_py_model_kind *kind;
    void *model; /* NULL until construction succeeded */
    svdc_ctx ctx;
    PyThread_type_lock lock; /* one call at a time per object: the arena is per object */
    size_t last_peak;        /* arena high-water mark of the last call that records it, bytes */
    size_t last_planned;     /* what its measuring pass planned (device backends; 0 on the CPU), bytes */
    PyObject *config;        /* a dict copy of the config it was built from */
    PyObject *borrowed;      /* the file views borrowed weights point into (svdc_py_load_params); NULL when none */
    char device[32];         /* the device string it lives on ("cpu", "emu:0", "cuda:0") */
    int prepared;            /* svdc_params_prepare has run: at the first call, so loading stays at disk speed */
} svdc_py_model;

/* tp_init body: Type(config, weights, device="cpu", dtype="fp32"). Parses the config and the device (the core's
 * registry), creates the model there, sets its weight storage dtype (fp32 | fp16 | bf16; compute stays float32),
 * uploads the weights by name (converted one tensor at a time; weights of a memory-mapped file already in the
 * storage dtype are borrowed on the CPU, not copied), sets up the device arena and the lock. The backend's derived
 * forms of the weights (the CPU's packed weights) are made by the first call, not here. On failure the
 * object stays unusable (every method raises) and holds no device memory. Returns 0 or -1. */
int svdc_py_model_init(svdc_py_model *self, const svdc_py_model_kind *kind, PyObject *args, PyObject *kwargs);

/* tp_dealloc of every model type. */
void svdc_py_model_dealloc(PyObject *self);

/* 1 when constructed; else 0 with RuntimeError "<Name>: not initialised". */
int svdc_py_model_ready(svdc_py_model *self);

/* One model call. Called with the GIL held; releases it, takes the object's lock, prepares the weights on the
 * first call (svdc_params_prepare), resets the arena, runs
 * call(ctx, model, args), records the arena peak in last_peak when `record_peak`, resets (and for trimming kinds
 * trims) the arena, and returns the call's status. `args` must not hold Python objects that need the GIL. */
typedef svdc_status (*svdc_py_model_call)(svdc_ctx *ctx, void *model, void *args);
svdc_status svdc_py_model_run(svdc_py_model *self, svdc_py_model_call call, void *args, int record_peak);

/* svdc_py_model_run with host I/O: the host tensors *in[i] are uploaded to the model's device (and *out[o] given
 * device buffers) for the call, which sees the device views through the same pointers; the outputs are copied back
 * and every tensor is restored to its host view before returning. On the CPU nothing is copied. On a device a
 * measuring pass (core/plan.h) first sizes the call and the arena is reserved at that peak in one block before the
 * call runs, so the call itself neither allocates nor frees device memory; a failed call leaves the arena as it was
 * before the call. */
svdc_status svdc_py_model_run_io(svdc_py_model *self, svdc_py_model_call call, void *args, int record_peak,
                                 svdc_tensor *const *in, int nin, svdc_tensor *const *out, int nout);
/* Only run_io's measuring pass (core/plan.h), on any backend: *planned is the arena the call would need (its
 * activations; not the scratch a CPU kernel takes from the arena, which the CPU table does not plan). Nothing is
 * computed, and the inputs and outputs are neither read nor written. */
svdc_status svdc_py_model_plan_io(svdc_py_model *self, svdc_py_model_call call, void *args, svdc_tensor *const *in,
                                  int nin, svdc_tensor *const *out, int nout, size_t *planned);

/* The (array, count) pair of run_io's in/out: SVDC_PY_IO(&x, &y) */
#define SVDC_PY_IO(...) \
    (svdc_tensor *const[]){__VA_ARGS__}, (int)(sizeof((svdc_tensor *const[]){__VA_ARGS__}) / sizeof(svdc_tensor *))

/* The usual ending of a method that filled the new array `out`: returns it, or on failure drops it and raises
 * the status's exception (returns NULL). */
PyObject *svdc_py_model_result(svdc_status status, PyArrayObject *out);

/* classmethod weight_shapes(config) -> {name: shape}: the table a model of that config declares (the model is
 * built and freed; its weight block is allocated, never read or written). */
PyObject *svdc_py_model_weight_shapes(const svdc_py_model_kind *kind, PyObject *config);

PyObject *svdc_py_model_get_last_peak(PyObject *self, void *closure);
PyObject *svdc_py_model_get_num_parameters(PyObject *self, void *closure);
PyObject *svdc_py_model_get_config(PyObject *self, void *closure);
PyObject *svdc_py_model_get_device(PyObject *self, void *closure);
PyObject *svdc_py_model_get_arena_reserved(PyObject *self, void *closure);
PyObject *svdc_py_model_get_last_planned(PyObject *self, void *closure);
PyObject *svdc_py_model_get_dtype(PyObject *self, void *closure);
PyObject *svdc_py_model_get_weight_bytes(PyObject *self, void *closure);
PyObject *svdc_py_model_get_packed_weight_bytes(PyObject *self, void *closure);

/* The getset entries every model type has (put first in its PyGetSetDef table). */
#define SVDC_PY_MODEL_GETSET                                                                                         \
    {"last_peak_bytes", svdc_py_model_get_last_peak, NULL, "arena high-water mark of the last call, bytes", NULL},  \
        {"num_parameters", svdc_py_model_get_num_parameters, NULL, "number of weights (elements)", NULL},            \
        {"config", svdc_py_model_get_config, NULL, "a copy of the config dict it was built from", NULL},           \
        {"device", svdc_py_model_get_device, NULL, "the device it lives on ('cpu', 'emu:0', 'cuda:0')", NULL},     \
        {"arena_reserved_bytes", svdc_py_model_get_arena_reserved, NULL, "device memory its arena holds", NULL},   \
        {"last_planned_bytes", svdc_py_model_get_last_planned, NULL,                                                \
         "device arena the measuring pass of the last call planned (reserved before it ran), bytes", NULL},  \
        {"dtype", svdc_py_model_get_dtype, NULL, "weight storage dtype ('fp32', 'fp16', 'bf16')", NULL},          \
        {"weight_bytes", svdc_py_model_get_weight_bytes, NULL, "bytes of its one weight block", NULL},            \
        {"packed_weight_bytes", svdc_py_model_get_packed_weight_bytes, NULL,                                       \
         "bytes of the forms the backend derived from the weights at load (CPU: packed GEMM weights)", NULL}

#endif
