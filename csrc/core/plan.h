/* plan.h — a measuring (planning) pass: a model call run against a measuring table and a measuring arena, so that
 * every allocation it would make on the device (activations, staged inputs/outputs, and the scratch of the ops a
 * backend marks in scratch_ops) is counted and nothing is computed, copied or allocated. Its peak is what the real
 * call needs: the model binding reserves the device arena at that size before the call, so the call itself
 * neither allocates nor frees device memory. */
#ifndef SVDC_PLAN_H
#define SVDC_PLAN_H

#include "backend.h"

/* Fills *out with the measuring table of `real`: its name, device count and chunk budget (so the model code splits
 * layers exactly as it will for real), no-op copies and synchronisation, no-op ops except those in
 * real->scratch_ops, which are real's own entries (they see measuring = 1 and only take their scratch). */
void svdc_plan_backend(const svdc_backend *real, svdc_backend *out);

#endif
