/* fuzz-common.h: what every libFuzzer target of the core shares. */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "snap-error.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A g_return_if_fail() or g_warning() in the core means a contract was
 * broken on some input: make it a crash the fuzzer keeps. */
static inline void
fuzz_make_criticals_fatal(void)
{
    g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
}

/* Prints @what and the two texts that should have been equal, then
 * aborts, so libFuzzer saves the input. */
G_NORETURN static inline void
fuzz_mismatch(const char *what, const char *first, const char *second)
{
    fprintf(stderr, "==== %s\n---- first:\n%s\n---- second:\n%s\n----\n", what,
            first != NULL ? first : "(null)", second != NULL ? second : "(null)");
    abort();
}

G_NORETURN static inline void
fuzz_fail(const char *what, const GError *error)
{
    fprintf(stderr, "==== %s%s%s\n", what, error != NULL ? ": " : "",
            error != NULL ? error->message : "");
    abort();
}

/* Every rejection the parsers give is SNAP_ERROR_INVALID with a UTF-8
 * message (it goes to the errors file and the log); a success sets no
 * error. */
static inline void
fuzz_check_result(gboolean ok, const GError *error)
{
    if (ok) {
        if (error != NULL)
            fuzz_fail("success with an error set", error);
        return;
    }
    if (error == NULL)
        fuzz_fail("failure without an error", NULL);
    if (error->domain != SNAP_ERROR || error->code != SNAP_ERROR_INVALID)
        fuzz_fail("failure that is not SNAP_ERROR_INVALID", error);
    if (!g_utf8_validate(error->message, -1, NULL))
        fuzz_fail("error message is not valid UTF-8", error);
}
