/* snapshot-def.h: plain data for one libvirt <domainsnapshot>. */
#pragma once

#include <glib.h>
#include "domain-def.h"

G_BEGIN_DECLS

typedef enum {
    SNAP_STATE_NONE, /* not given (create input) */
    SNAP_STATE_RUNNING,
    SNAP_STATE_BLOCKED,
    SNAP_STATE_PAUSED,
    SNAP_STATE_SHUTDOWN,
    SNAP_STATE_SHUTOFF,
    SNAP_STATE_CRASHED,
    SNAP_STATE_DISK_SNAPSHOT,
} SnapState;

typedef enum {
    SNAP_MEMORY_DEFAULT, /* <memory> absent */
    SNAP_MEMORY_NO,
    SNAP_MEMORY_INTERNAL,
    SNAP_MEMORY_EXTERNAL,
} SnapMemoryMode;

typedef struct {
    char *name;                /* <disk name>: target dev or source path */
    DiskSnapshotMode snapshot; /* DEFAULT when the attribute is absent */
    char *type;                /* <disk type> (file|block|network), or NULL */
    char *driver_type;         /* <driver type>, or NULL */
    char *source_file;         /* <source file>, or NULL */
} SnapshotDiskDef;

typedef struct {
    char *name;
    char *description; /* NULL when absent */
    SnapState state;
    char *parent;         /* NULL for a root */
    gint64 creation_time; /* seconds since the epoch; -1 when absent */
    SnapMemoryMode memory;
    char *memory_file;  /* external memory file, or NULL */
    GPtrArray *disks;   /* of SnapshotDiskDef*, owned; may be empty */
    gboolean has_disks; /* a <disks> element was present */
    /* Foreign elements kept whole, each as a standalone serialization of
     * the element (no XML declaration, indented from column 0); the
     * formatter re-parses them and writes them at their depth. */
    char *domain_xml;          /* the embedded <domain>, or NULL */
    char *inactive_domain_xml; /* <inactiveDomain>, or NULL */
    char *cookie_xml;          /* <cookie>, or NULL */
    int active;                /* <active>: -1 absent, 0 or 1 */
} SnapshotDef;

void snapshot_disk_def_free(SnapshotDiskDef *disk);
void snapshot_def_free(SnapshotDef *def);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapshotDiskDef, snapshot_disk_def_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapshotDef, snapshot_def_free)

SnapshotDef *snapshot_def_new(void);

const char *snap_state_to_string(SnapState state);
/* SNAP_STATE_NONE for an unknown word. */
SnapState snap_state_from_string(const char *s);
const char *snap_memory_mode_to_string(SnapMemoryMode mode);

/* TRUE when @def was taken of a running domain and so holds its memory
 * (state running, paused or blocked). */
gboolean snapshot_def_has_memory(const SnapshotDef *def);

/* The disk entry named @name (target or source), or NULL. (transfer none) */
SnapshotDiskDef *snapshot_def_find_disk(const SnapshotDef *def, const char *name);

G_END_DECLS
