/* crash-point.h: test-only deaths at the step boundaries of multi-step operations. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The environment variable that arms a crash point: "STEP" dies the first
 * time STEP is reached, "STEP:N" the Nth time (N from 1). */
#define SNAP_CRASH_AT_ENV "SNAPTREEFS_CRASH_AT"

/* Every step boundary an operation can die at, NULL-terminated, in the
 * order an operation reaches them (see crash-point.c for where each is). */
extern const char *const snap_crash_point_names[];

/* Kills the process with SIGKILL, as a power cut or the OOM killer would,
 * when SNAPTREEFS_CRASH_AT names @step (one of snap_crash_point_names);
 * otherwise does nothing. Thread-safe. */
void snap_crash_point(const char *step);

G_END_DECLS
