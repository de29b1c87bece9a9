/* journal.h: STATE/journal/DOMAIN.json, the intent of a multi-step operation. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* One intent: which operation ("create", "delete" or "revert") on which
 * snapshot, with which flags (a revert's SnapRevertFlags), touching which
 * disk image files. */
typedef struct {
    char *op;
    char *snapshot;
    guint flags;
    GPtrArray *disks; /* of char*: image file paths */
} SnapJournal;

void snap_journal_free(SnapJournal *journal);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapJournal, snap_journal_free)

/* Writes the intent durably before a disk is touched, over the domain's
 * journal file in place (see journal.c for why that is safe). */
gboolean snap_journal_write(const char *state_dir, const char *domain, const char *op,
                            const char *snapshot, guint flags, GPtrArray *disks,
                            GError **error);

/* The leftover intent of @domain: NULL without error when there is none
 * (no file, or an empty one); NULL with SNAP_ERROR_INVALID when it does
 * not parse, which means it was being written when the process died,
 * before any disk was touched. */
SnapJournal *snap_journal_read(const char *state_dir, const char *domain, GError **error);

/* Clears the intent (empties the file) once the operation is over;
 * absent is success. */
gboolean snap_journal_remove(const char *state_dir, const char *domain, GError **error);

G_END_DECLS
