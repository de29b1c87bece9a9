/* snap-types.h: the words of the data model that every layer shares: run
 * states and the flags of the operations on snapshots and domains. The
 * engine's API (snap-engine.h) takes them; the word parsers (control-words.h),
 * the tree and QEMU's run states use them without knowing the engine. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A domain's run state. */
typedef enum {
    SNAP_DOMAIN_SHUTOFF,
    SNAP_DOMAIN_RUNNING,
    SNAP_DOMAIN_PAUSED,
} SnapDomainState;

/* How snapshot lists are filtered and ordered (snap_engine_list_snapshots). */
typedef enum {
    SNAP_LIST_ALL = 0,
    SNAP_LIST_ROOTS = 1 << 0, /* without @from; with @from: DESCENDANTS */
    SNAP_LIST_LEAVES = 1 << 1,
    SNAP_LIST_NO_LEAVES = 1 << 2,
    SNAP_LIST_TOPOLOGICAL = 1 << 3, /* parents before children */
} SnapListFlags;

/* virDomainSnapshotDelete's flags. */
typedef enum {
    SNAP_DELETE_CHILDREN = 1 << 0,      /* the snapshot and all descendants */
    SNAP_DELETE_CHILDREN_ONLY = 1 << 1, /* the descendants, keep the snapshot */
    SNAP_DELETE_METADATA_ONLY = 1 << 2, /* forget metadata, keep disk data */
} SnapDeleteFlags;

/* virDomainRevertToSnapshot's flags. */
typedef enum {
    SNAP_REVERT_RUNNING = 1 << 0,
    SNAP_REVERT_PAUSED = 1 << 1,
    SNAP_REVERT_FORCE = 1 << 2,
} SnapRevertFlags;

/* What a write to a domain's `state` asks. */
typedef enum {
    SNAP_ACTION_START,
    SNAP_ACTION_SHUTDOWN,
    SNAP_ACTION_DESTROY,
    SNAP_ACTION_PAUSE,
    SNAP_ACTION_RESUME,
} SnapDomainAction;

/* virDomainUndefineFlags: what goes with the definition. */
typedef enum {
    SNAP_UNDEFINE_METADATA, /* UNDEFINE_SNAPSHOTS_METADATA: images are kept */
    SNAP_UNDEFINE_FULL,     /* also deletes the image files the domain names */
} SnapUndefineMode;

G_END_DECLS
