/* snap-disks.h: which disks of a domain a snapshot's <disks> entries mean. */
#pragma once

#include <glib.h>
#include "domain-def.h"
#include "snapshot-def.h"

G_BEGIN_DECLS

/* The disk of @dom that a snapshot's <disk name> means: libvirt accepts
 * the target dev or the source path. (transfer none) */
static inline DomainDisk *
snap_disk_resolve(const DomainDef *dom, const char *name)
{
    DomainDisk *disk = domain_def_find_disk(dom, name);

    for (guint i = 0; disk == NULL && i < dom->disks->len; i++) {
        DomainDisk *d = dom->disks->pdata[i];

        if (g_strcmp0(d->source, name) == 0)
            disk = d;
    }
    return disk;
}

/* The disks of @dom that @snap lists with snapshot='internal', in the
 * snapshot's order; a listed disk that @dom no longer has is skipped.
 * (transfer container: GPtrArray of DomainDisk*) */
static inline GPtrArray *
snap_disks_internal(const DomainDef *dom, const SnapshotDef *snap)
{
    GPtrArray *out = g_ptr_array_new();

    for (guint i = 0; snap->disks && i < snap->disks->len; i++) {
        SnapshotDiskDef *sd = snap->disks->pdata[i];
        DomainDisk *disk;

        if (sd->snapshot != DISK_SNAPSHOT_INTERNAL)
            continue;
        disk = snap_disk_resolve(dom, sd->name);
        if (disk != NULL && disk->source != NULL)
            g_ptr_array_add(out, disk);
    }
    return out;
}

G_END_DECLS
