/* fs-tree.c: lookups, attributes and listings of the mounted tree. */
#include "fs-tree.h"

#include <string.h>

#include "fs-snapshot-dir.h"

/* `current` points into the nested tree up to this length of its target,
 * to .by-name/SNAP beyond (DESIGN "Any depth"): long enough for every
 * tree a person browses, well under PATH_MAX once a mount point and a
 * file name are added. */
#define CURRENT_NESTED_MAX 1024

static const FsNodeKind domain_file_kinds[] = {
    FS_NODE_DOMAIN_XML, FS_NODE_STATE,  FS_NODE_CURRENT,
    FS_NODE_CREATE,     FS_NODE_ERRORS, FS_NODE_JOB,
    FS_NODE_BY_NAME,    FS_NODE_FORGET, FS_NODE_UNDEFINE,
};

static gboolean
domain_file_of_kind(FsNodeKind kind, SnapDomainFile *file)
{
    switch (kind) {
    case FS_NODE_DOMAIN_XML:
        *file = SNAP_DOMAIN_FILE_XML;
        return TRUE;
    case FS_NODE_STATE:
        *file = SNAP_DOMAIN_FILE_STATE;
        return TRUE;
    case FS_NODE_ERRORS:
        *file = SNAP_DOMAIN_FILE_ERRORS;
        return TRUE;
    case FS_NODE_JOB:
        *file = SNAP_DOMAIN_FILE_JOB;
        return TRUE;
    default:
        return FALSE;
    }
}

char *
fs_tree_link_target(FsContext *ctx, FsNodeKind kind, const char *domain,
                    const char *snapshot)
{
    g_autofree char *current = NULL;
    g_autofree char *path = NULL;

    g_return_val_if_fail(kind == FS_NODE_CURRENT, NULL);
    current = snap_engine_current(ctx->engine, domain);
    if (current == NULL)
        return NULL;
    path = snap_engine_snapshot_path(ctx->engine, domain, current);
    if (path == NULL)
        return NULL;
    if (strlen(path) <= CURRENT_NESTED_MAX)
        return g_steal_pointer(&path);
    return g_strconcat(fs_attr_kind_name(FS_NODE_BY_NAME), "/", current, NULL);
}

/* The values of a snapshot's directory (nested or flat) and of its own
 * entries. */
static void
values_of_snapshot(FsContext *ctx, FsNodeKind kind, const char *domain,
                   const char *snapshot, const SnapSnapshotInfo *info, FsAttrValues *v)
{
    FsNodeKind base = fs_node_kind_base(kind);

    v->mtime = info->creation_time;
    /* Own subdirectories (disks/, files/) count too: find's leaf
     * optimisation counts on the exact number. The flat directory holds
     * no child snapshots. */
    v->nlink = 2 + fs_snapshot_dir_own_subdirs(ctx, domain, snapshot) +
               (fs_node_kind_is_flat(kind) ? 0 : info->nchildren);
    if (base == FS_NODE_DISKS)
        v->nlink = 2;
    /* How many filesystems files/ holds is known only once an appliance
     * looked: 1 is the "unknown" that find's leaf optimisation honours. */
    if (base == FS_NODE_FILES)
        v->nlink = 1;
    v->size = base == FS_NODE_METADATA ? info->xml_size
              : base == FS_NODE_SCREEN ? info->screen_size
                                       : 0;
}

/* A disk file: its snapshot's times, its size at that snapshot. */
static gboolean
disk_values(FsContext *ctx, const char *domain, const char *id, FsAttrValues *v)
{
    g_autofree char *snapshot = NULL;
    g_autofree char *target = NULL;
    g_autoptr(GError) error = NULL;
    SnapSnapshotInfo sinfo;

    if (!fs_attr_disk_id_split(id, &snapshot, &target) ||
        !snap_engine_snapshot_info(ctx->engine, domain, snapshot, FALSE, NULL, &sinfo))
        return FALSE;
    if (!snap_engine_snapshot_disk_size(ctx->engine, domain, snapshot, target, &v->size,
                                        &v->allocated, &error)) {
        g_debug("%s: %s/disks/%s: %s", domain, snapshot, target, error->message);
        return FALSE;
    }
    v->has_allocated = TRUE;
    v->mtime = sinfo.creation_time;
    return TRUE;
}

static gboolean
is_host(FsContext *ctx, const char *name)
{
    for (guint i = 0; ctx->hosts != NULL && i < ctx->hosts->len; i++)
        if (strcmp(ctx->hosts->pdata[i], name) == 0)
            return TRUE;
    return FALSE;
}

/* The domains of a fleet's @host ("HOST/NAME"). (transfer full) */
static GPtrArray *
host_domains(FsContext *ctx, const char *host)
{
    g_autoptr(GPtrArray) all = snap_engine_list_domains(ctx->engine);
    GPtrArray *mine = g_ptr_array_new_with_free_func(g_free);
    gsize n = strlen(host);

    for (guint i = 0; i < all->len; i++) {
        const char *d = all->pdata[i];

        if (strncmp(d, host, n) == 0 && d[n] == '/')
            g_ptr_array_add(mine, g_strdup(d));
    }
    return mine;
}

char *
fs_tree_child_domain(const FsNode *parent, const char *name)
{
    if (parent->kind == FS_NODE_ROOT)
        return g_strdup(name);
    if (parent->kind == FS_NODE_HOST)
        return g_strconcat(parent->domain, "/", name, NULL);
    return g_strdup(parent->domain);
}

static gboolean
attr_values(FsContext *ctx, FsNodeKind kind, const char *domain, const char *snapshot,
            FsAttrValues *v)
{
    SnapDomainInfo dinfo;
    SnapSnapshotInfo sinfo;
    SnapDomainFile file;

    memset(v, 0, sizeof(*v));
    v->nlink = 1;
    switch (fs_node_kind_base(kind)) {
    case FS_NODE_ROOT: {
        g_autoptr(GPtrArray) domains = snap_engine_list_domains(ctx->engine);

        v->nlink = 2 + (ctx->hosts ? ctx->hosts->len : domains->len);
        v->mtime = ctx->mount_time;
        return TRUE;
    }
    case FS_NODE_HOST: {
        g_autoptr(GPtrArray) domains = NULL;

        if (!is_host(ctx, domain))
            return FALSE;
        domains = host_domains(ctx, domain);
        v->nlink = 2 + domains->len;
        v->mtime = ctx->mount_time;
        return TRUE;
    }
    case FS_NODE_SNAPSHOT:
    case FS_NODE_METADATA:
    case FS_NODE_REVERT:
    case FS_NODE_DISKS:
    case FS_NODE_SCREEN:
    case FS_NODE_FILES:
        if (!snap_engine_snapshot_info(ctx->engine, domain, snapshot, FALSE, NULL,
                                       &sinfo))
            return FALSE;
        if (fs_node_kind_base(kind) == FS_NODE_SCREEN && sinfo.screen_size == 0)
            return FALSE;
        values_of_snapshot(ctx, kind, domain, snapshot, &sinfo, v);
        return TRUE;
    case FS_NODE_DISK:
        return disk_values(ctx, domain, snapshot, v);
    case FS_NODE_GUEST:
        /* The guest's own, from fs-ops-files.c only. */
        return FALSE;
    default:
        break;
    }

    /* The rest lives in a domain directory. */
    if (!snap_engine_domain_info(ctx->engine, domain, &dinfo))
        return FALSE;
    v->mtime = dinfo.mtime;
    if (kind == FS_NODE_DOMAIN) {
        /* Its root snapshots: .by-name is not counted, as ZFS counts
         * .zfs only when snapdir=visible, so that `find -type d -links 2`
         * lists a domain with no snapshot, a leaf of the walk. */
        v->nlink = 2 + dinfo.nroots;
    } else if (kind == FS_NODE_BY_NAME) {
        /* A flat directory per snapshot. */
        v->nlink = 2 + dinfo.nsnapshots;
    } else if (kind == FS_NODE_CURRENT) {
        g_autofree char *target = fs_tree_link_target(ctx, kind, domain, NULL);

        if (target == NULL)
            return FALSE;
        v->size = strlen(target);
    } else if (domain_file_of_kind(kind, &file)) {
        g_autoptr(GBytes) content = snap_engine_domain_file(ctx->engine, domain, file);

        if (content == NULL)
            return FALSE;
        v->size = g_bytes_get_size(content);
    }
    return TRUE;
}

gboolean
fs_tree_stat(FsContext *ctx, FsNodeKind kind, const char *domain, const char *snapshot,
             struct stat *st)
{
    FsAttrValues v;

    if (!attr_values(ctx, kind, domain, snapshot, &v))
        return FALSE;
    fs_attr_fill(kind, fs_attr_ino(kind, domain, snapshot), &v, ctx->uid, ctx->gid, st);
    return TRUE;
}

static int
lookup_in_domain(FsContext *ctx, const char *domain, const char *name,
                 FsNodeKind *out_kind, char **out_snapshot)
{
    for (gsize i = 0; i < G_N_ELEMENTS(domain_file_kinds); i++) {
        FsNodeKind kind = domain_file_kinds[i];

        if (strcmp(name, fs_attr_kind_name(kind)) != 0)
            continue;
        if (kind == FS_NODE_CURRENT) {
            g_autofree char *current = snap_engine_current(ctx->engine, domain);

            if (current == NULL)
                return ENOENT;
        }
        *out_kind = kind;
        *out_snapshot = NULL;
        return 0;
    }
    if (!snap_engine_snapshot_info(ctx->engine, domain, name, TRUE, NULL, NULL))
        return ENOENT;
    *out_kind = FS_NODE_SNAPSHOT;
    *out_snapshot = g_strdup(name);
    return 0;
}

static gboolean
targets_contain(GPtrArray *targets, const char *name)
{
    for (guint i = 0; targets != NULL && i < targets->len; i++)
        if (strcmp(targets->pdata[i], name) == 0)
            return TRUE;
    return FALSE;
}

static int
lookup_disk(FsContext *ctx, const FsNode *disks, const char *name, FsNodeKind *out_kind,
            char **out_snapshot)
{
    g_autoptr(GPtrArray) targets =
        snap_engine_snapshot_disks(ctx->engine, disks->domain, disks->snapshot);

    if (!targets_contain(targets, name))
        return ENOENT;
    *out_kind = fs_node_kind_as(FS_NODE_DISK, disks->kind);
    *out_snapshot = fs_attr_disk_id(disks->snapshot, name);
    return 0;
}

/* In a snapshot's directory, nested or flat: its own entries, then (nested
 * only) its child snapshots. */
static int
lookup_in_snapshot(FsContext *ctx, const FsNode *dir, const char *name,
                   FsNodeKind *out_kind, char **out_snapshot)
{
    FsNodeKind own;

    if (fs_snapshot_dir_own_lookup(ctx, dir->domain, dir->snapshot, name, &own)) {
        if (!snap_engine_snapshot_info(ctx->engine, dir->domain, dir->snapshot, FALSE,
                                       NULL, NULL))
            return ENOENT;
        *out_kind = fs_node_kind_as(own, dir->kind);
        *out_snapshot = g_strdup(dir->snapshot);
        return 0;
    }
    if (fs_node_kind_is_flat(dir->kind) ||
        !snap_engine_snapshot_info(ctx->engine, dir->domain, name, TRUE, dir->snapshot,
                                   NULL))
        return ENOENT;
    *out_kind = FS_NODE_SNAPSHOT;
    *out_snapshot = g_strdup(name);
    return 0;
}

int
fs_tree_lookup(FsContext *ctx, const FsNode *parent, const char *name,
               FsNodeKind *out_kind, char **out_snapshot)
{
    switch (fs_node_kind_base(parent->kind)) {
    case FS_NODE_ROOT:
        if (ctx->hosts != NULL) {
            if (!is_host(ctx, name))
                return ENOENT;
            *out_kind = FS_NODE_HOST;
            *out_snapshot = NULL;
            return 0;
        }
        if (!snap_engine_domain_info(ctx->engine, name, NULL))
            return ENOENT;
        *out_kind = FS_NODE_DOMAIN;
        *out_snapshot = NULL;
        return 0;
    case FS_NODE_HOST: {
        g_autofree char *domain = fs_tree_child_domain(parent, name);

        if (!snap_engine_domain_info(ctx->engine, domain, NULL))
            return ENOENT;
        *out_kind = FS_NODE_DOMAIN;
        *out_snapshot = NULL;
        return 0;
    }
    case FS_NODE_DOMAIN:
        return lookup_in_domain(ctx, parent->domain, name, out_kind, out_snapshot);
    case FS_NODE_BY_NAME:
        if (!snap_engine_snapshot_info(ctx->engine, parent->domain, name, FALSE, NULL,
                                       NULL))
            return ENOENT;
        *out_kind = FS_NODE_SNAPSHOT | FS_NODE_FLAT;
        *out_snapshot = g_strdup(name);
        return 0;
    case FS_NODE_SNAPSHOT:
        return lookup_in_snapshot(ctx, parent, name, out_kind, out_snapshot);
    case FS_NODE_DISKS:
        return lookup_disk(ctx, parent, name, out_kind, out_snapshot);
    default:
        return ENOTDIR;
    }
}

void
fs_dir_entry_free(FsDirEntry *entry)
{
    if (entry == NULL)
        return;
    g_free(entry->name);
    g_free(entry->domain);
    g_free(entry->snapshot);
    g_free(entry);
}

static FsDirEntry *
dir_entry_new(const char *name, FsNodeKind kind, const char *domain, const char *snapshot)
{
    FsDirEntry *e = g_new0(FsDirEntry, 1);

    e->name = g_strdup(name);
    e->kind = kind;
    e->domain = g_strdup(domain);
    e->snapshot = g_strdup(snapshot);
    return e;
}

static void
add_dot(GPtrArray *entries, const char *name, guint64 ino)
{
    FsDirEntry *e = dir_entry_new(name, FS_NODE_ROOT, NULL, NULL);

    e->st.st_ino = ino;
    e->st.st_mode = S_IFDIR | 0755;
    g_ptr_array_add(entries, e);
}

/* Adds an entry when the object still exists (it may vanish between the
 * engine's listing and this call). */
static void
add_statted(FsContext *ctx, GPtrArray *entries, const char *name, FsNodeKind kind,
            const char *domain, const char *snapshot)
{
    FsDirEntry *e = dir_entry_new(name, kind, domain, snapshot);

    if (!fs_tree_stat(ctx, kind, domain, snapshot, &e->st)) {
        fs_dir_entry_free(e);
        return;
    }
    g_ptr_array_add(entries, e);
}

/* Snapshot directories of @kind (nested, or flat in .by-name) from the
 * engine's listing, with the attributes it came with. */
static void
add_snapshot_dirs(FsContext *ctx, GPtrArray *entries, FsNodeKind kind, const char *domain,
                  GPtrArray *snapshots)
{
    for (guint i = 0; i < snapshots->len; i++) {
        const SnapEntry *s = g_ptr_array_index(snapshots, i);
        FsDirEntry *e = dir_entry_new(s->name, kind, domain, s->name);
        FsAttrValues v = {0};

        values_of_snapshot(ctx, kind, domain, s->name, &s->info, &v);
        fs_attr_fill(kind, fs_attr_ino(kind, domain, s->name), &v, ctx->uid, ctx->gid,
                     &e->st);
        g_ptr_array_add(entries, e);
    }
}

/* A snapshot directory's own entries, in the view of @dir. */
static void
add_own_entries(FsContext *ctx, GPtrArray *entries, const FsNode *dir)
{
    g_autoptr(GArray) kinds = fs_snapshot_dir_own_kinds(ctx, dir->domain, dir->snapshot);

    for (guint i = 0; i < kinds->len; i++) {
        FsNodeKind kind = fs_node_kind_as(g_array_index(kinds, guint, i), dir->kind);

        add_statted(ctx, entries, fs_attr_kind_name(kind), kind, dir->domain,
                    dir->snapshot);
    }
}

GPtrArray *
fs_tree_list(FsContext *ctx, const FsNode *dir, int *out_errno)
{
    g_autoptr(GPtrArray) entries =
        g_ptr_array_new_with_free_func((GDestroyNotify)fs_dir_entry_free);
    /* ".." of a domain directory is the root; deeper ones are not worth
     * computing: the kernel fills in ".." itself and ignores our d_ino. */
    guint64 parent_ino = dir->kind == FS_NODE_ROOT || dir->kind == FS_NODE_DOMAIN ||
                                 dir->kind == FS_NODE_HOST
                             ? 1
                             : fs_attr_ino(FS_NODE_DOMAIN, dir->domain, NULL);

    add_dot(entries, ".", dir->ino);
    add_dot(entries, "..", parent_ino);

    switch (fs_node_kind_base(dir->kind)) {
    case FS_NODE_ROOT: {
        g_autoptr(GPtrArray) domains = NULL;

        for (guint i = 0; ctx->hosts != NULL && i < ctx->hosts->len; i++)
            add_statted(ctx, entries, ctx->hosts->pdata[i], FS_NODE_HOST,
                        ctx->hosts->pdata[i], NULL);
        if (ctx->hosts != NULL)
            break;
        domains = snap_engine_list_domains(ctx->engine);
        for (guint i = 0; i < domains->len; i++) {
            const char *name = g_ptr_array_index(domains, i);

            add_statted(ctx, entries, name, FS_NODE_DOMAIN, name, NULL);
        }
        break;
    }
    case FS_NODE_HOST: {
        g_autoptr(GPtrArray) domains = host_domains(ctx, dir->domain);
        gsize n = strlen(dir->domain) + 1;

        for (guint i = 0; i < domains->len; i++) {
            const char *d = domains->pdata[i];

            add_statted(ctx, entries, d + n, FS_NODE_DOMAIN, d, NULL);
        }
        break;
    }
    case FS_NODE_DOMAIN: {
        g_autoptr(GPtrArray) roots =
            snap_engine_list_children(ctx->engine, dir->domain, NULL);

        if (roots == NULL) {
            *out_errno = ENOENT;
            return NULL;
        }
        /* "current" is left out by add_statted when there is none;
         * .by-name is reachable but unlisted, so that a walk of the mount
         * visits each snapshot once. */
        for (gsize i = 0; i < G_N_ELEMENTS(domain_file_kinds); i++)
            if (domain_file_kinds[i] != FS_NODE_BY_NAME)
                add_statted(ctx, entries, fs_attr_kind_name(domain_file_kinds[i]),
                            domain_file_kinds[i], dir->domain, NULL);
        add_snapshot_dirs(ctx, entries, FS_NODE_SNAPSHOT, dir->domain, roots);
        break;
    }
    case FS_NODE_SNAPSHOT: {
        g_autoptr(GPtrArray) children = NULL;

        if (fs_node_kind_is_flat(dir->kind)) {
            if (!snap_engine_snapshot_info(ctx->engine, dir->domain, dir->snapshot, FALSE,
                                           NULL, NULL)) {
                *out_errno = ENOENT;
                return NULL;
            }
            add_own_entries(ctx, entries, dir);
            break;
        }
        children = snap_engine_list_children(ctx->engine, dir->domain, dir->snapshot);
        if (children == NULL) {
            *out_errno = ENOENT;
            return NULL;
        }
        add_own_entries(ctx, entries, dir);
        add_snapshot_dirs(ctx, entries, FS_NODE_SNAPSHOT, dir->domain, children);
        break;
    }
    case FS_NODE_DISKS: {
        g_autoptr(GPtrArray) targets =
            snap_engine_snapshot_disks(ctx->engine, dir->domain, dir->snapshot);

        if (targets == NULL) {
            *out_errno = ENOENT;
            return NULL;
        }
        for (guint i = 0; i < targets->len; i++) {
            g_autofree char *id = fs_attr_disk_id(dir->snapshot, targets->pdata[i]);

            add_statted(ctx, entries, targets->pdata[i],
                        fs_node_kind_as(FS_NODE_DISK, dir->kind), dir->domain, id);
        }
        break;
    }
    case FS_NODE_BY_NAME: {
        g_autoptr(GPtrArray) all =
            snap_engine_list_snapshots(ctx->engine, dir->domain, NULL, SNAP_LIST_ALL);

        if (all == NULL) {
            *out_errno = ENOENT;
            return NULL;
        }
        add_snapshot_dirs(ctx, entries, FS_NODE_SNAPSHOT | FS_NODE_FLAT, dir->domain,
                          all);
        break;
    }
    default:
        *out_errno = ENOTDIR;
        return NULL;
    }
    return g_steal_pointer(&entries);
}

void
fs_tree_timeouts(FsContext *ctx, FsNodeKind kind, double *entry_timeout,
                 double *attr_timeout)
{
    /* `current` moves with every mkdir and revert, and scripts run `mkdir
     * current/x` right after one: its invalidation would arrive after the
     * reply, so the kernel must ask every time (from memory, cheap). */
    if (kind == FS_NODE_CURRENT) {
        *entry_timeout = 0.0;
        *attr_timeout = 0.0;
        return;
    }
    *entry_timeout = ctx->entry_timeout;
    *attr_timeout = fs_attr_kind_is_volatile(kind) ? 0.0 : ctx->attr_timeout;
}
