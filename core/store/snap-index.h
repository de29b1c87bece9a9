/* snap-index.h: a cache of one domain's parsed snapshot files.
 *
 * Parsing and formatting every STATE/snapshots/NAME/SNAP.xml dominated
 * the start of a large mount (17 s for 100,000 snapshots). The index
 * keeps, per file, what loading takes from it (parent, creationTime, the
 * <active> mark, metadata.xml as formatted) with the file's inode, mtime
 * and size; an entry counts only while the file still has those, so a
 * file changed by anyone (an edit, a restore, another snaptreefs) is
 * parsed again. The index is a cache: never the only copy of anything,
 * written without fsync, and ignored when it does not load. */
#pragma once

#include <glib.h>
#include <glib/gstdio.h>

G_BEGIN_DECLS

typedef struct _SnapIndex SnapIndex;

/* What a snapshot file held when it was parsed. */
typedef struct {
    const char *parent; /* NULL for a root */
    gint64 creation_time;
    gboolean active;
    const char *xml; /* snapshot_xml_format(def, FALSE) */
} SnapIndexEntry;

/* The index of @domain in @state_dir; empty when there is none or it does
 * not load (the reason goes to the debug log). Never NULL. */
SnapIndex *snap_index_load(const char *state_dir, const char *domain);
void snap_index_free(SnapIndex *index);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapIndex, snap_index_free)

/* The entry of snapshot file @name when the file, as @st describes it
 * now, is the one it was made from; its strings belong to @index.
 * Read-only: callable from several threads at once. */
gboolean snap_index_lookup(SnapIndex *index, const char *name, const GStatBuf *st,
                           SnapIndexEntry *out);

/* How many entries @index holds. */
guint snap_index_size(SnapIndex *index);

/* Writes a new index of @domain holding exactly these entries (arrays of
 * the same length; @stats of the files they were read from), replacing
 * the old one atomically. FALSE with @error when it could not. */
gboolean snap_index_save(const char *state_dir, const char *domain, GPtrArray *names,
                         GArray *stats, GArray *entries, GError **error);

G_END_DECLS
