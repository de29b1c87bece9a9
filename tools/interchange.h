/* interchange.h: what snaptreefs-import and snaptreefs-export share: reading
 * snapshot files and checking that they form one valid tree. */
#pragma once

#include <glib.h>

#include "snapshot-def.h"

G_BEGIN_DECLS

/* TRUE when @name can name a domain directory and its STATE files: valid
 * UTF-8, 1..200 bytes, no '/', no control character, not starting with
 * '.'. Else FALSE with SNAP_ERROR_INVALID. */
gboolean interchange_domain_name_ok(const char *name, GError **error);

/* Reads and parses one <domainsnapshot> file (either libvirt form: its
 * on-disk one with <active>, or snapshot-dumpxml's). (transfer full) */
SnapshotDef *interchange_read_snapshot(const char *path, GError **error);

/* Checks that @defs (SnapshotDef*) can be redefined as one tree: every
 * name valid and unique, every creationTime given, every parent among
 * them, no cycle of parents. Returns them in topological order (parents
 * first; siblings by creationTime, then name), or NULL with
 * SNAP_ERROR_INVALID (SNAP_ERROR_EXISTS for a duplicate name) saying
 * which snapshot is wrong. (transfer container: the defs stay @defs') */
GPtrArray *interchange_order(GPtrArray *defs, GError **error);

G_END_DECLS
