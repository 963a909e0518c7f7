/* device.h — the device registry: backends register here by name ("cpu", "emu", "cuda"), device strings ("cpu",
 * "emu", "emu:N", "cuda", "cuda:N") resolve to (backend, ordinal), and svdc.info()/the op-test surface list what is
 * registered. The CPU and emulated backends are registered on first use; the CUDA module registers itself through
 * svdc._C._register_backend when svdc.runtime loads it. */
#ifndef SVDC_DEVICE_H
#define SVDC_DEVICE_H

#include "backend.h"

#define SVDC_MAX_BACKENDS 8

/* Adds a backend. Refuses (SVDC_ERR_DEVICE, naming both sides) a table of another ABI version or op list, and a
 * second table under a registered name unless it is the same table (registering twice is a no-op). */
svdc_status svdc_device_register(const svdc_backend *backend);

/* The backend registered as `name`, or NULL. */
const svdc_backend *svdc_device_find(const char *name);

/* Registered backends in registration order (cpu and emu first); NULL past the end. */
const svdc_backend *svdc_device_at(int index);

/* Parses a device string into its backend and ordinal (SVDC_DEVICE_CPU for "cpu", N >= 0 otherwise; "cuda" means
 * "cuda:0"). SVDC_ERR_ARGUMENT for malformed text, SVDC_ERR_DEVICE when the backend is not registered or the
 * ordinal is not a usable device (the message gives the reason). */
svdc_status svdc_device_parse(const char *text, const svdc_backend **backend, int *ordinal);

/* The services the core lends to backends built as separate modules (backend.h). */
const svdc_core_services *svdc_core_services_get(void);

#endif
