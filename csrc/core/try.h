/* try.h — early-return helpers for code that calls fallible svdc functions (ops, models): forward a failing status
 * to the caller, optionally releasing the arena to a mark first so temporaries do not outlive the failure. */
#ifndef SVDC_TRY_H
#define SVDC_TRY_H

#include "arena.h"
#include "svdc.h"

#define SVDC_TRY(expr)                       \
    do {                                     \
        svdc_status try_status_ = (expr);    \
        if (try_status_) return try_status_; \
    } while (0)

/* Runs `expr`; on failure releases the ctx's arena to `mark` and returns the status. */
#define SVDC_TRY_RELEASE(ctx, mark, expr)             \
    do {                                              \
        svdc_status try_status_ = (expr);             \
        if (try_status_) {                            \
            svdc_arena_release((ctx)->arena, (mark)); \
            return try_status_;                       \
        }                                             \
    } while (0)

#endif
