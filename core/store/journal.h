/* journal.h: STATE/journal/DOMAIN.json, the intent of a multi-step operation. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* One intent: which operation ("create", "delete" or "revert") on which
 * snapshot, with which flags (a revert's SnapRevertFlags), touching which
 * disk image files; or "undefine" with the mode ("metadata" or "full") in
 * @snapshot and the files it deletes. */
typedef struct {
    char *op;
    char *snapshot;
    guint flags;
    GPtrArray *disks; /* of char*: image file paths */
    /* The planned steps of an operation on image files (each a GStrv:
     * verb then arguments, e.g. {"commit", TOP, BASE}) and how many of
     * them are done; empty for operations without a plan. */
    GPtrArray *steps;
    guint done;
} SnapJournal;

void snap_journal_free(SnapJournal *journal);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapJournal, snap_journal_free)

/* Writes the intent durably before a disk is touched, over the domain's
 * journal file in place (see journal.c for why that is safe). */
gboolean snap_journal_write(const char *state_dir, const char *domain, const char *op,
                            const char *snapshot, guint flags, GPtrArray *disks,
                            GError **error);

/* The same with a plan: @steps (GPtrArray of GStrv, may be NULL) of which
 * the first @done are finished. Rewritten with a growing @done as each
 * step ends, so a restart resumes at the first step not done. */
gboolean snap_journal_write_steps(const char *state_dir, const char *domain,
                                  const char *op, const char *snapshot, guint flags,
                                  GPtrArray *disks, GPtrArray *steps, guint done,
                                  GError **error);

/* The leftover intent of @domain: NULL without error when there is none
 * (no file, or an empty one); NULL with SNAP_ERROR_INVALID when it does
 * not parse, which means it was being written when the process died,
 * before any disk was touched. */
SnapJournal *snap_journal_read(const char *state_dir, const char *domain, GError **error);

/* Appends @step (verb then arguments) to the intent of @domain and
 * marks every step done, durably: a step that only happened once it is
 * recorded, e.g. {"disks-done", NULL}. FALSE when there is no intent. */
gboolean snap_journal_add_step(const char *state_dir, const char *domain,
                               const char *const *step, GError **error);

/* Clears the intent (empties the file, durably) once the operation is
 * over; absent is success. */
gboolean snap_journal_remove(const char *state_dir, const char *domain, GError **error);

/* Removes the domain's journal file itself (durably), for a domain that
 * is being undefined: no later domain of that name may inherit its
 * intent. Absent is success. */
gboolean snap_journal_unlink(const char *state_dir, const char *domain, GError **error);

G_END_DECLS
