/* snap-external.h: which image files an external snapshot froze and created. */
#pragma once

#include <glib.h>
#include "domain-def.h"
#include "snapshot-def.h"

G_BEGIN_DECLS

/* One disk of an external snapshot, as libvirt records it: the snapshot's
 * data is @frozen (the file the embedded <domain> names, read-only from
 * that moment), and @overlay is the file created then, the active layer
 * from then on (the snapshot's <disks> entry). */
typedef struct {
    char *target;
    char *frozen;
    char *frozen_format; /* "qcow2" or "raw" */
    char *overlay;       /* NULL when the metadata does not name it */
} SnapExtDisk;

void snap_ext_disk_free(SnapExtDisk *disk);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapExtDisk, snap_ext_disk_free)

/* TRUE when @snap took at least one disk externally. */
gboolean snap_external_is_external(const SnapshotDef *snap);

/* TRUE when @snap took at least one disk internally. */
gboolean snap_external_is_internal(const SnapshotDef *snap);

/* The external disks of @snap, with their frozen files taken from the
 * embedded <domain> (relative paths resolve against @base_dir). Fails
 * with SNAP_ERROR_INVALID when the snapshot records no <domain> or the
 * domain lacks one of the disks. (transfer full: SnapExtDisk*) */
GPtrArray *snap_external_disks(const SnapshotDef *snap, const char *base_dir,
                               GError **error);

/* A new file name beside @disk's image for an overlay (@suffix "qcow2") or
 * a memory file ("mem") belonging to snapshot @snap_name of @domain:
 * "DIR/DOMAIN-TARGET.SNAP.SUFFIX", with "-N" before the suffix when that
 * is taken. The file is created empty (O_EXCL) to reserve the name, so
 * nothing that exists is ever overwritten. (transfer full) */
char *snap_external_reserve_file(const char *dir, const char *domain, const char *target,
                                 const char *snap_name, const char *suffix,
                                 GError **error);

/* Replaces every <source file> equal to @from by @to, in the embedded
 * <domain> and in <disks> of @snap; TRUE when something changed. */
gboolean snap_external_rename_file(SnapshotDef *snap, const char *from, const char *to,
                                   const char *base_dir);

/* The same in a domain definition. */
gboolean snap_external_rename_disk(DomainDef *def, const char *from, const char *to);

G_END_DECLS
