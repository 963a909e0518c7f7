/* device.c — the device registry (see device.h). */
#include "device.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

static const svdc_backend *registered[SVDC_MAX_BACKENDS];
static int num_registered;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t builtins_once = PTHREAD_ONCE_INIT;

static svdc_status fail_text(svdc_status status, const char *text) { return svdc_fail(status, "%s", text); }

static const svdc_core_services core_services = {
    .fail = fail_text,
    .last_error = svdc_last_error,
    .scratch_alloc = svdc_arena_alloc,
    .scratch_mark = svdc_arena_mark,
    .scratch_release = svdc_arena_release,
};

const svdc_core_services *svdc_core_services_get(void) { return &core_services; }

static svdc_status register_locked(const svdc_backend *b) {
    if (!b) return svdc_fail(SVDC_ERR_ARGUMENT, "device registry: no backend table");
    /* Only the first two fields are laid out alike in every ABI version: read nothing else before they match. */
    if (b->abi_version != SVDC_BACKEND_ABI_VERSION)
        return svdc_fail(SVDC_ERR_DEVICE,
                         "device registry: a backend table of ABI %d, expected ABI %d (its module comes from a "
                         "different build of svdc; rebuild it)", b->abi_version, SVDC_BACKEND_ABI_VERSION);
    if (!b->op_signature || strcmp(b->op_signature, SVDC_OP_SIGNATURE) != 0)
        return svdc_fail(SVDC_ERR_DEVICE,
                         "device registry: backend '%s' implements the ops [%s], expected [%s] (its module comes "
                         "from a different build of svdc; rebuild it)",
                         b->name ? b->name : "?", b->op_signature ? b->op_signature : "?", SVDC_OP_SIGNATURE);
    if (!b->name) return svdc_fail(SVDC_ERR_ARGUMENT, "device registry: a backend table without a name");
    for (int i = 0; i < num_registered; i++) {
        if (registered[i] == b) return SVDC_OK;
        if (!strcmp(registered[i]->name, b->name))
            return svdc_fail(SVDC_ERR_DEVICE, "device registry: another backend named '%s' is already registered",
                             b->name);
    }
    if (num_registered == SVDC_MAX_BACKENDS)
        return svdc_fail(SVDC_ERR_DEVICE, "device registry: more than %d backends", SVDC_MAX_BACKENDS);
    if (b->attach) {
        svdc_status s = b->attach(&core_services);
        if (s) return s;
    }
    registered[num_registered++] = b;
    return SVDC_OK;
}

static void register_builtins(void) {
    register_locked(svdc_backend_cpu());
    register_locked(svdc_backend_emu());
}

svdc_status svdc_device_register(const svdc_backend *backend) {
    pthread_once(&builtins_once, register_builtins);
    pthread_mutex_lock(&registry_lock);
    svdc_status s = register_locked(backend);
    pthread_mutex_unlock(&registry_lock);
    return s;
}

const svdc_backend *svdc_device_at(int index) {
    pthread_once(&builtins_once, register_builtins);
    pthread_mutex_lock(&registry_lock);
    const svdc_backend *b = index >= 0 && index < num_registered ? registered[index] : NULL;
    pthread_mutex_unlock(&registry_lock);
    return b;
}

const svdc_backend *svdc_device_find(const char *name) {
    const svdc_backend *b;
    for (int i = 0; (b = svdc_device_at(i)); i++)
        if (!strcmp(b->name, name)) return b;
    return NULL;
}

svdc_status svdc_device_parse(const char *text, const svdc_backend **backend, int *ordinal) {
    *backend = NULL;
    *ordinal = SVDC_DEVICE_CPU;
    if (!text) return svdc_fail(SVDC_ERR_ARGUMENT, "device: expected a string like 'cpu' or 'cuda:0', got NULL");
    char name[32];
    const char *colon = strchr(text, ':');
    size_t len = colon ? (size_t)(colon - text) : strlen(text);
    if (len == 0 || len >= sizeof name)
        return svdc_fail(SVDC_ERR_ARGUMENT, "device: expected 'cpu', 'emu[:N]' or 'cuda[:N]', got '%s'", text);
    memcpy(name, text, len);
    name[len] = '\0';
    long n = 0;
    if (colon) {
        char *end = NULL;
        n = strtol(colon + 1, &end, 10);
        if (colon[1] < '0' || colon[1] > '9' || *end || n > 1023)
            return svdc_fail(SVDC_ERR_ARGUMENT, "device: '%s' has no valid ordinal after ':' (expected 0..1023)",
                             text);
    }
    const svdc_backend *b = svdc_device_find(name);
    if (!b) {
        if (strcmp(name, "cpu") && strcmp(name, "emu") && strcmp(name, "cuda"))
            return svdc_fail(SVDC_ERR_ARGUMENT, "device: expected 'cpu', 'emu[:N]' or 'cuda[:N]', got '%s'", text);
        return svdc_fail(SVDC_ERR_DEVICE,
                         "device '%s': the %s backend is not loaded (svdc.runtime registers it when svdc._C_cuda "
                         "imports; see svdc.info())", text, name);
    }
    if (!strcmp(b->name, "cpu")) {
        if (colon && n != 0) return svdc_fail(SVDC_ERR_ARGUMENT, "device: the CPU has no ordinal %ld ('%s')", n, text);
        *backend = b;
        return SVDC_OK;
    }
    char why[256] = "";
    int count = b->device_count(why, sizeof why);
    if (n >= count)
        return svdc_fail(SVDC_ERR_DEVICE, "device '%s': %d %s device(s) usable%s%s", text, count, b->name,
                         why[0] ? ": " : "", why);
    *backend = b;
    *ordinal = (int)n;
    return SVDC_OK;
}
