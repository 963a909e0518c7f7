/* emu.h — controls of the emulated device backend ("emu"), for tests and the op-count benchmark: counters, an
 * injected allocation failure, the sticky-error switch and a dry-run mode (ops are counted, not computed). */
#ifndef SVDC_EMU_H
#define SVDC_EMU_H

#include "svdc.h"

typedef struct svdc_emu_stats {
    long long allocs, frees;          /* device allocations made / returned since the last reset */
    long long live_count, live_bytes; /* device allocations held now (never reset) */
    long long op_calls;               /* backend op entries run */
    long long bytes_to_device, bytes_to_host;
} svdc_emu_stats;

void svdc_emu_get_stats(svdc_emu_stats *out);
void svdc_emu_reset_counters(void); /* allocs, frees, op_calls and the byte counts back to 0 */

/* From the allocation `nth` allocations from now (0 = the next one) on, every allocation fails as out-of-memory
 * (a device that has run out, so a retry with fewer bytes fails too) until -1 disarms it. */
void svdc_emu_fail_allocation(long long nth);

/* Marks the device unusable after a (simulated) fault: every later call fails with SVDC_ERR_DEVICE quoting
 * `reason`. NULL clears it, which a real device never does; tests use it to leave the process clean. */
void svdc_emu_set_sticky(const char *reason);

/* Dry run: ops are counted but not computed, device memory is address space only and copies move nothing. For
 * counting the op calls of full-size models on a machine without their memory. */
void svdc_emu_set_dry_run(int on);

/* The chunk budget the emulated device asks models for (backend.h; default 0 = one op per layer, as a GPU). The
 * op-count benchmark sets the CPU's budget to count the CPU-sized chunking the same way. */
void svdc_emu_set_chunk_budget(size_t bytes);

#endif
