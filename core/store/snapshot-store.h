/* snapshot-store.h: STATE/snapshots/<domain>/<snap>.xml, one file per
 * snapshot, written atomically (temp file, fsync, rename, fsync dir). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Writes @len bytes of @data to @path atomically and durably: a temp file
 * beside it, fsync, rename over @path, fsync of the directory. On failure
 * @path is unchanged and no temp file is left. ENOSPC maps to
 * SNAP_ERROR_NO_SPACE. */
gboolean snap_store_write_atomic(const char *path, const char *data, gsize len,
                                 GError **error);

/* Which fsyncs a write or removal does. */
typedef enum {
    SNAP_STORE_SYNC_NONE = 0,
    SNAP_STORE_SYNC_FILE = 1 << 0, /* the new content, before the rename */
    SNAP_STORE_SYNC_DIR = 1 << 1,  /* the directory: the rename or unlink */
    SNAP_STORE_SYNC_ALL = SNAP_STORE_SYNC_FILE | SNAP_STORE_SYNC_DIR,
} SnapStoreSync;

/* The same with only the fsyncs @sync names: without SYNC_DIR, for
 * several files of one directory whose last change syncs it once; with
 * NONE, for writes whose loss in a power cut a later step makes harmless
 * (the rename stays atomic: @path holds the old or the new content). */
gboolean snap_store_write_atomic_full(const char *path, const char *data, gsize len,
                                      SnapStoreSync sync, GError **error);

/* Removes @path and fsyncs its directory; a missing file is success. */
gboolean snap_store_remove(const char *path, GError **error);

/* The spare file of a directory (no .xml: loaders skip it). */
#define SNAP_STORE_SPARE ".snaptreefs-spare"

/* Creates @dir's spare file if it has none: the next atomic write into
 * @dir fills and renames it instead of creating a file, which is the slow
 * part of a small write here (about 0.4 ms). For directories written by
 * one thread at a time only (a domain's snapshots, by its worker), since
 * two writes at once would share the spare. Errors only cost the saving. */
void snap_store_prepare_spare(const char *dir);

/* The same; only SNAP_STORE_SYNC_DIR in @sync fsyncs the directory. */
gboolean snap_store_remove_full(const char *path, SnapStoreSync sync, GError **error);

/* STATE/snapshots/<domain>/<snapshot>.xml. (transfer full) */
char *snap_store_snapshot_path(const char *state_dir, const char *domain,
                               const char *snapshot);

/* Creates STATE/snapshots/<domain>/ if needed. */
gboolean snap_store_ensure_domain_dir(const char *state_dir, const char *domain,
                                      GError **error);

G_END_DECLS
