/* guest-files.c: libguestfs appliances per snapshot, their mounts, caches and limits. */
#include "guest-files.h"

#include <errno.h>
#include <guestfs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snap-error.h"

/* guestfs_pread moves at most a protocol message (2 to 4 MB): a MiB per
 * call, and a sequential reader's next MiB comes with its first read. */
#define READ_CHUNK (1024 * 1024)
/* lstatnslist and readlinklist answer in one message too: batches of
 * names keep a big directory's answer well under it. */
#define STAT_BATCH 1000
/* A KVM that cannot boot the appliance shows as silence on its console
 * (e.g. kvm-pvm hosts stop after "Probing EDD"); a booting kernel prints
 * every second or so, even under load. */
#define LAUNCH_STALL_S 30
/* The idle reaper's period. */
#define REAP_PERIOD_MS 500

typedef struct _Session Session;

struct _GuestFiles {
    GuestFilesOptions opts;
    GMutex lock;
    GCond cond;           /* an appliance stopped, went idle, or a session went stale */
    GHashTable *sessions; /* owner -> Session* */
    GHashTable *retired;  /* owner set */
    guint running;        /* appliances running or launching */
    GThread *reaper;
    gboolean quit;
    GCond reaper_cond;
    gboolean kvm_good; /* an appliance booted under KVM */
    gboolean kvm_bad;  /* one did not: TCG from then on */
    guint serial;      /* launch tokens */
};

struct _Session {
    gint refs;
    GuestFiles *gf;
    char *owner;
    GThreadPool *queue; /* one thread: the owner's calls, in order */
    GMutex run;         /* held across every appliance call */
    /* Under gf->lock: */
    guestfs_h *g; /* NULL: no appliance */
    pid_t pid;
    gpointer hold;
    GPtrArray *targets; /* the drives' targets at the last launch */
    guint busy;         /* calls begun and not ended */
    guint open;         /* open files */
    gint64 last_use;
    gint64 launch_us; /* how long its last launch took */
    gboolean stale;
    GHashTable *lists;  /* directory path -> GPtrArray of GuestEntry* */
    GHashTable *broken; /* filesystem name -> why it did not mount */
};

struct _GuestFile {
    Session *s;
    char *gpath; /* "/vda1/a/file" */
    guint64 size;
    GMutex lock;
    GBytes *ahead; /* the bytes read ahead, at ahead_off */
    guint64 ahead_off;
};

void
guest_drive_free(GuestDrive *drive)
{
    if (drive == NULL)
        return;
    g_free(drive->target);
    g_free(drive->socket);
    g_free(drive);
}

void
guest_entry_free(GuestEntry *entry)
{
    if (entry == NULL)
        return;
    g_free(entry->name);
    g_free(entry->link);
    g_free(entry);
}

static GuestEntry *
entry_copy(const GuestEntry *e)
{
    GuestEntry *c = g_new0(GuestEntry, 1);

    c->name = g_strdup(e->name);
    c->st = e->st;
    c->link = g_strdup(e->link);
    return c;
}

static void log_line(GuestFiles *gf, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
log_line(GuestFiles *gf, const char *fmt, ...)
{
    g_autofree char *line = NULL;
    va_list ap;

    va_start(ap, fmt);
    line = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_debug("%s", line);
    if (gf->opts.log != NULL)
        gf->opts.log(line, gf->opts.log_data);
}

/* ---- sessions ------------------------------------------------------------------- */

static Session *
session_ref(Session *s)
{
    g_atomic_int_inc(&s->refs);
    return s;
}

static void
session_unref(Session *s)
{
    if (s == NULL || !g_atomic_int_dec_and_test(&s->refs))
        return;
    /* The last reference may be a job's, on the queue's own thread: the
     * pool goes once that job returns, without waiting here. */
    g_assert(s->g == NULL);
    if (s->queue != NULL)
        g_thread_pool_free(s->queue, FALSE, FALSE);
    g_mutex_clear(&s->run);
    g_clear_pointer(&s->targets, g_ptr_array_unref);
    g_hash_table_destroy(s->lists);
    g_hash_table_destroy(s->broken);
    g_free(s->owner);
    g_free(s);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Session, session_unref)

static void reaper_start_locked(GuestFiles *gf);

/* @owner's session, made when needed; NULL with STALE while retired.
 * (transfer full) */
static Session *
session_get(GuestFiles *gf, const char *owner, GError **error)
{
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&gf->lock);
    Session *s;

    if (g_hash_table_contains(gf->retired, owner)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_STALE, "snapshot '%s' was deleted",
                    owner);
        return NULL;
    }
    s = g_hash_table_lookup(gf->sessions, owner);
    if (s == NULL) {
        s = g_new0(Session, 1);
        s->refs = 1;
        s->gf = gf;
        s->owner = g_strdup(owner);
        g_mutex_init(&s->run);
        s->lists = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify)g_ptr_array_unref);
        s->broken = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_hash_table_insert(gf->sessions, s->owner, s);
        reaper_start_locked(gf);
    }
    return session_ref(s);
}

/* ---- appliances ----------------------------------------------------------------- */

typedef struct {
    guestfs_h *g;
    pid_t pid;
    gpointer hold;
} Appliance;

/* Takes @s's appliance out of it (call with gf->lock held, and only while
 * no call uses it). */
static Appliance
detach_locked(Session *s)
{
    Appliance a = {s->g, s->pid, s->hold};

    if (s->g != NULL)
        s->gf->running--;
    s->g = NULL;
    s->pid = 0;
    s->hold = NULL;
    g_cond_broadcast(&s->gf->cond);
    return a;
}

/* libguestfs prints errors unless told not to, and the setting is per
 * thread: every thread that uses a handle says so first (errors are
 * returned, with guestfs_last_error()). */
static void
quiet(guestfs_h *g)
{
    guestfs_set_error_handler(g, NULL, NULL);
}

/* Kills a detached appliance's QEMU by pid, then closes the handle, which
 * waits for it (and its recovery process). */
static void
appliance_stop(GuestFiles *gf, Appliance *a)
{
    if (a->g == NULL)
        return;
    quiet(a->g);
    if (a->pid > 0)
        kill(a->pid, SIGKILL);
    guestfs_close(a->g);
    if (a->hold != NULL)
        gf->opts.drives_close(a->hold);
    a->g = NULL;
}

static void
set_guestfs_error(GError **error, guestfs_h *g, int code, const char *what)
{
    const char *msg = guestfs_last_error(g);

    g_set_error(error, SNAP_ERROR, code, "%s: %s", what, msg ? msg : "libguestfs failed");
}

/* Launch progress, watched while an appliance boots under KVM. */
typedef struct {
    gint64 last; /* monotonic µs of the last console line */
    char *token; /* on the appliance's kernel command line */
    gboolean done;
    gboolean killed;
    GMutex lock;
    GCond cond;
} Watch;

static void
on_guestfs_event(guestfs_h *g, void *data, uint64_t event, int event_handle, int flags,
                 const char *buf, size_t buf_len, const uint64_t *array, size_t array_len)
{
    Watch *w = data;

    if (w != NULL) {
        g_mutex_lock(&w->lock);
        w->last = g_get_monotonic_time();
        g_mutex_unlock(&w->lock);
    }
    g_debug("libguestfs: %.*s", (int)buf_len, buf);
}

/* The pid of this process's child whose command line holds @token. */
static pid_t
find_child(const char *token)
{
    g_autoptr(GDir) dir = g_dir_open("/proc", 0, NULL);
    const char *name;

    while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
        g_autofree char *stat_path = g_build_filename("/proc", name, "stat", NULL);
        g_autofree char *cmd_path = g_build_filename("/proc", name, "cmdline", NULL);
        g_autofree char *stat = NULL;
        g_autofree char *cmd = NULL;
        const char *paren;
        gsize len = 0;
        int ppid = 0;

        if (!g_ascii_isdigit(name[0]) ||
            !g_file_get_contents(stat_path, &stat, NULL, NULL))
            continue;
        paren = strrchr(stat, ')');
        if (paren == NULL || sscanf(paren + 1, " %*c %d", &ppid) != 1 || ppid != getpid())
            continue;
        if (!g_file_get_contents(cmd_path, &cmd, &len, NULL))
            continue;
        for (gsize i = 0; i + 1 < len; i++)
            if (cmd[i] == '\0')
                cmd[i] = ' ';
        if (strstr(cmd, token) != NULL)
            return (pid_t)g_ascii_strtoll(name, NULL, 10);
    }
    return 0;
}

/* Kills the appliance of @w when its console stays silent too long. */
static gpointer
watchdog_main(gpointer data)
{
    Watch *w = data;
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&w->lock);

    while (!w->done) {
        gint64 now = g_get_monotonic_time();

        if (now - w->last > (gint64)LAUNCH_STALL_S * G_USEC_PER_SEC) {
            pid_t pid = find_child(w->token);

            if (pid > 0) {
                kill(pid, SIGKILL);
                w->killed = TRUE;
                return NULL;
            }
        }
        g_cond_wait_until(&w->cond, &w->lock, now + G_USEC_PER_SEC);
    }
    return NULL;
}

static gboolean
settings_force_tcg(guestfs_h *g)
{
    g_auto(GStrv) settings = guestfs_get_backend_settings(g);

    return settings != NULL &&
           g_strv_contains((const char *const *)settings, "force_tcg");
}

static void
add_force_tcg(guestfs_h *g)
{
    g_auto(GStrv) settings = guestfs_get_backend_settings(g);
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    g_auto(GStrv) all = NULL;

    if (settings != NULL)
        g_strv_builder_addv(b, (const char **)settings);
    g_strv_builder_add(b, "force_tcg");
    all = g_strv_builder_end(b);
    guestfs_set_backend_settings(g, all);
}

/* A handle with @drives added, not launched. */
static guestfs_h *
handle_new(GuestFiles *gf, GPtrArray *drives, const char *token, GError **error)
{
    guestfs_h *g = guestfs_create_flags(0);

    if (g == NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                    "cannot create a libguestfs handle");
        return NULL;
    }
    quiet(g);
    /* The direct backend runs QEMU as our child, so that it can be killed
     * by pid and waited for; libvirt's would need a libvirtd. */
    guestfs_set_backend(g, "direct");
    guestfs_set_memsize(g, (int)gf->opts.memory_mb);
    /* Nothing is written: no sync at close. */
    guestfs_set_autosync(g, 0);
    /* On the kernel command line, so that QEMU's own is found by it (the
     * watchdog; tests looking for what a daemon left running). */
    guestfs_set_append(g, token);
    for (guint i = 0; i < drives->len; i++) {
        const GuestDrive *d = drives->pdata[i];
        g_autofree char *server = g_strconcat("unix:", d->socket, NULL);
        const char *servers[] = {server, NULL};

        if (guestfs_add_drive_opts(g, "", GUESTFS_ADD_DRIVE_OPTS_READONLY, 1,
                                   GUESTFS_ADD_DRIVE_OPTS_FORMAT, "raw",
                                   GUESTFS_ADD_DRIVE_OPTS_PROTOCOL, "nbd",
                                   GUESTFS_ADD_DRIVE_OPTS_SERVER, servers, -1) == -1) {
            set_guestfs_error(error, g, SNAP_ERROR_QEMU, "add_drive");
            guestfs_close(g);
            return NULL;
        }
    }
    return g;
}

/* guestfs_launch(), watched when it runs under KVM: a launch whose
 * console stays silent for LAUNCH_STALL_S is killed, and @stalled set. */
static gboolean
launch_watched(GuestFiles *gf, guestfs_h *g, const char *token, gboolean watch,
               gboolean *stalled)
{
    Watch w = {0};
    GThread *dog = NULL;
    int rc, eh;

    *stalled = FALSE;
    if (!watch)
        return guestfs_launch(g) == 0;
    g_mutex_init(&w.lock);
    g_cond_init(&w.cond);
    w.token = g_strdup(token);
    w.last = g_get_monotonic_time();
    /* The console is only sent as events in verbose mode. */
    guestfs_set_verbose(g, 1);
    eh = guestfs_set_event_callback(
        g, on_guestfs_event,
        GUESTFS_EVENT_APPLIANCE | GUESTFS_EVENT_LIBRARY | GUESTFS_EVENT_WARNING, 0, &w);
    dog = g_thread_new("guest-watchdog", watchdog_main, &w);
    rc = guestfs_launch(g);
    g_mutex_lock(&w.lock);
    w.done = TRUE;
    g_cond_signal(&w.cond);
    g_mutex_unlock(&w.lock);
    g_thread_join(dog);
    guestfs_delete_event_callback(g, eh);
    guestfs_set_event_callback(g, on_guestfs_event,
                               GUESTFS_EVENT_LIBRARY | GUESTFS_EVENT_WARNING, 0, NULL);
    guestfs_set_verbose(g, 0);
    *stalled = w.killed;
    g_free(w.token);
    g_mutex_clear(&w.lock);
    g_cond_clear(&w.cond);
    return rc == 0;
}

/* A running appliance for @s's drives. Under KVM its first launch is
 * watched; one that makes no progress means a KVM that cannot boot it,
 * and every launch runs under TCG from then on. */
static guestfs_h *
appliance_launch(GuestFiles *gf, Session *s, gpointer *hold, GPtrArray **targets,
                 GError **error)
{
    g_autoptr(GPtrArray) drives = NULL;
    gint64 start = g_get_monotonic_time();
    gboolean tcg, watch, stalled = FALSE;
    g_autofree char *token = NULL;
    guestfs_h *g;

    *hold = NULL;
    g_mutex_lock(&gf->lock);
    token = g_strdup_printf("snaptreefs.appliance=%d.%u", (int)getpid(), ++gf->serial);
    g_mutex_unlock(&gf->lock);
    drives = gf->opts.drives_open(s->owner, gf->opts.drives_data, hold, error);
    if (drives == NULL)
        return NULL;
    g = handle_new(gf, drives, token, error);
    if (g == NULL) {
        gf->opts.drives_close(*hold);
        return NULL;
    }
    g_mutex_lock(&gf->lock);
    tcg = gf->kvm_bad || settings_force_tcg(g) || access("/dev/kvm", R_OK | W_OK) != 0;
    watch = !tcg && !gf->kvm_good;
    g_mutex_unlock(&gf->lock);
    if (gf->kvm_bad)
        add_force_tcg(g);
    if (!watch)
        guestfs_set_event_callback(
            g, on_guestfs_event, GUESTFS_EVENT_LIBRARY | GUESTFS_EVENT_WARNING, 0, NULL);
    if (!launch_watched(gf, g, token, watch, &stalled)) {
        /* Under TCG there is nothing else to try. */
        if (!watch)
            goto failed;
        /* A KVM that cannot run the appliance either hangs it or kills
         * QEMU (kvm-pvm: "failed to set MSR"); TCG is slow but boots. */
        if (stalled)
            log_line(gf,
                     "files: KVM made no progress booting the appliance in %d s; "
                     "falling back to TCG (software emulation) for every appliance",
                     LAUNCH_STALL_S);
        else
            log_line(gf,
                     "files: the appliance failed to boot under KVM (%s); falling "
                     "back to TCG (software emulation) for every appliance",
                     guestfs_last_error(g));
        g_mutex_lock(&gf->lock);
        gf->kvm_bad = TRUE;
        g_mutex_unlock(&gf->lock);
        guestfs_close(g);
        g = handle_new(gf, drives, token, error);
        if (g == NULL) {
            gf->opts.drives_close(*hold);
            *hold = NULL;
            return NULL;
        }
        add_force_tcg(g);
        guestfs_set_event_callback(
            g, on_guestfs_event, GUESTFS_EVENT_LIBRARY | GUESTFS_EVENT_WARNING, 0, NULL);
        tcg = TRUE;
        watch = FALSE;
        if (guestfs_launch(g) != 0)
            goto failed;
    }
    if (watch) {
        g_mutex_lock(&gf->lock);
        gf->kvm_good = TRUE;
        g_mutex_unlock(&gf->lock);
    }
    *targets = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < drives->len; i++)
        g_ptr_array_add(*targets, g_strdup(((GuestDrive *)drives->pdata[i])->target));
    log_line(gf, "files: %s: appliance started in %.1f s (%s, %u MiB)", s->owner,
             (g_get_monotonic_time() - start) / 1e6, tcg ? "tcg" : "kvm",
             gf->opts.memory_mb);
    return g;

failed:
    set_guestfs_error(error, g, SNAP_ERROR_QEMU, "launching the appliance");
    guestfs_close(g);
    gf->opts.drives_close(*hold);
    *hold = NULL;
    return NULL;
}

/* ---- mounts ----------------------------------------------------------------------- */

/* The guest's name for a filesystem libguestfs calls @dev: the target of
 * its disk ("vdb"), with the partition number ("vda1"; "nvme0n1p1" after
 * a digit), or the device-mapper style name of anything else ("vg0-root"
 * for /dev/vg0/root). NULL for what has no name of its own (a btrfs
 * subvolume is seen through its filesystem). */
static char *
fs_name(guestfs_h *g, const char *dev, GPtrArray *targets)
{
    g_autofree char *parent = NULL;
    int idx;

    if (!g_str_has_prefix(dev, "/dev/"))
        return NULL;
    idx = guestfs_device_index(g, dev);
    if (idx >= 0 && (guint)idx < targets->len)
        return g_strdup(targets->pdata[idx]);
    parent = guestfs_part_to_dev(g, dev);
    if (parent != NULL && (idx = guestfs_device_index(g, parent)) >= 0 &&
        (guint)idx < targets->len) {
        const char *t = targets->pdata[idx];
        int n = guestfs_part_to_partnum(g, dev);

        if (n > 0)
            return g_strdup_printf("%s%s%d", t,
                                   g_ascii_isdigit(t[strlen(t) - 1]) ? "p" : "", n);
    }
    return g_strdelimit(g_strdup(dev + strlen("/dev/")), "/", '-');
}

static gint
compare_entries(gconstpointer a, gconstpointer b)
{
    const GuestEntry *x = *(const GuestEntry *const *)a;
    const GuestEntry *y = *(const GuestEntry *const *)b;

    return strcmp(x->name, y->name);
}

static void
stat_from_statns(const struct guestfs_statns *ns, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_dev = (dev_t)ns->st_dev;
    st->st_ino = (ino_t)ns->st_ino;
    st->st_mode = (mode_t)ns->st_mode;
    st->st_nlink = (nlink_t)ns->st_nlink;
    st->st_uid = (uid_t)ns->st_uid;
    st->st_gid = (gid_t)ns->st_gid;
    st->st_rdev = (dev_t)ns->st_rdev;
    st->st_size = (off_t)ns->st_size;
    st->st_blksize = (blksize_t)ns->st_blksize;
    st->st_blocks = (blkcnt_t)ns->st_blocks;
    st->st_atim.tv_sec = ns->st_atime_sec;
    st->st_atim.tv_nsec = ns->st_atime_nsec;
    st->st_mtim.tv_sec = ns->st_mtime_sec;
    st->st_mtim.tv_nsec = ns->st_mtime_nsec;
    st->st_ctim.tv_sec = ns->st_ctime_sec;
    st->st_ctim.tv_nsec = ns->st_ctime_nsec;
}

/* A filesystem that did not mount still shows, as an empty directory
 * whose listing fails. */
static GuestEntry *
root_entry(guestfs_h *g, const char *name, gboolean mounted)
{
    GuestEntry *e = g_new0(GuestEntry, 1);
    g_autofree char *gpath = g_strconcat("/", name, NULL);
    struct guestfs_statns *ns = mounted ? guestfs_lstatns(g, gpath) : NULL;

    e->name = g_strdup(name);
    if (ns != NULL) {
        stat_from_statns(ns, &e->st);
        guestfs_free_statns(ns);
    } else {
        e->st.st_mode = S_IFDIR | 0555;
        e->st.st_nlink = 2;
    }
    return e;
}

static int
compare_mountpoints(gconstpointer a, gconstpointer b)
{
    const char *const *x = a;
    const char *const *y = b;
    size_t lx = strlen(x[0]);
    size_t ly = strlen(y[0]);

    return lx < ly ? -1 : lx > ly ? 1 : strcmp(x[0], y[0]);
}

/* Mounts the OS found at @root under /os, its own mount points below,
 * shortest first (as guestmount -i does). */
static gboolean
mount_os(guestfs_h *g, const char *root)
{
    g_auto(GStrv) mps = guestfs_inspect_get_mountpoints(g, root);
    guint n = mps != NULL ? g_strv_length(mps) / 2 : 0;
    g_autofree const char **pairs = g_new0(const char *, 2 * n + 2);

    for (guint i = 0; i < 2 * n; i++)
        pairs[i] = mps[i];
    qsort(pairs, n, 2 * sizeof(char *), compare_mountpoints);
    if (guestfs_mkmountpoint(g, "/os") == -1)
        return FALSE;
    for (guint i = 0; i < n; i++) {
        g_autofree char *at =
            g_strconcat("/os", strcmp(pairs[2 * i], "/") == 0 ? "" : pairs[2 * i], NULL);

        if (guestfs_mount_ro(g, pairs[2 * i + 1], at) == -1) {
            g_debug("files: os: mount %s at %s: %s", pairs[2 * i + 1], at,
                    guestfs_last_error(g));
            if (i == 0)
                return FALSE;
        }
    }
    return n > 0;
}

/* Mounts every filesystem of a fresh appliance; the first time, also
 * fills @s's list of them (the listing of ""). */
static gboolean
appliance_mount(Session *s, guestfs_h *g, GPtrArray *targets, GError **error)
{
    g_auto(GStrv) fss = guestfs_list_filesystems(g);
    g_auto(GStrv) roots = NULL;
    g_autoptr(GPtrArray) entries = NULL;
    g_autoptr(GHashTable) seen =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    gboolean have_list;

    if (fss == NULL) {
        set_guestfs_error(error, g, SNAP_ERROR_QEMU, "list_filesystems");
        return FALSE;
    }
    g_mutex_lock(&s->gf->lock);
    have_list = g_hash_table_contains(s->lists, "");
    g_mutex_unlock(&s->gf->lock);
    entries = g_ptr_array_new_with_free_func((GDestroyNotify)guest_entry_free);
    /* Inspection mounts and unmounts on its own: before ours. */
    roots = guestfs_inspect_os(g);
    for (guint i = 0; fss[i] != NULL && fss[i + 1] != NULL; i += 2) {
        const char *dev = fss[i];
        const char *type = fss[i + 1];
        g_autofree char *name = NULL;
        g_autofree char *at = NULL;
        gboolean mounted;

        if (strcmp(type, "swap") == 0 || strcmp(type, "unknown") == 0 || *type == '\0')
            continue;
        name = fs_name(g, dev, targets);
        if (name == NULL || strcmp(name, "os") == 0 || g_hash_table_contains(seen, name))
            continue;
        g_hash_table_add(seen, g_strdup(name));
        at = g_strconcat("/", name, NULL);
        mounted = guestfs_mkmountpoint(g, at) == 0 && guestfs_mount_ro(g, dev, at) == 0;
        if (!mounted) {
            g_autofree char *why =
                g_strdup_printf("mount %s (%s): %s", dev, type, guestfs_last_error(g));

            g_debug("files: %s: %s", s->owner, why);
            g_mutex_lock(&s->gf->lock);
            g_hash_table_replace(s->broken, g_strdup(name), g_steal_pointer(&why));
            g_mutex_unlock(&s->gf->lock);
        }
        if (!have_list)
            g_ptr_array_add(entries, root_entry(g, name, mounted));
    }
    if (roots != NULL && roots[0] != NULL) {
        gboolean mounted = mount_os(g, roots[0]);

        if (!mounted)
            g_debug("files: %s: os at %s: %s", s->owner, roots[0], guestfs_last_error(g));
        else if (!have_list)
            g_ptr_array_add(entries, root_entry(g, "os", TRUE));
    }
    if (!have_list) {
        g_ptr_array_sort(entries, compare_entries);
        g_mutex_lock(&s->gf->lock);
        g_hash_table_insert(s->lists, g_strdup(""), g_steal_pointer(&entries));
        g_mutex_unlock(&s->gf->lock);
    }
    return TRUE;
}

/* ---- calls ------------------------------------------------------------------------ */

/* Waits, with gf->lock held, until another appliance may run: stops the
 * least recently used idle one when @max run. FALSE when @s went stale. */
static gboolean
wait_slot_locked(GuestFiles *gf, Session *s)
{
    while (!s->stale && gf->running >= gf->opts.max) {
        GHashTableIter iter;
        Session *victim = NULL;
        Session *other;
        Appliance a;

        g_hash_table_iter_init(&iter, gf->sessions);
        while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&other)) {
            if (other == s || other->g == NULL || other->busy > 0)
                continue;
            /* Idle ones first (no open file), then the least recently used. */
            if (victim == NULL || (other->open == 0 && victim->open > 0) ||
                ((other->open == 0) == (victim->open == 0) &&
                 other->last_use < victim->last_use))
                victim = other;
        }
        if (victim == NULL) {
            g_cond_wait(&gf->cond, &gf->lock);
            continue;
        }
        a = detach_locked(victim);
        g_mutex_unlock(&gf->lock);
        log_line(gf, "files: %s: appliance stopped for %s (files_max=%u)", victim->owner,
                 s->owner, gf->opts.max);
        appliance_stop(gf, &a);
        g_mutex_lock(&gf->lock);
    }
    return !s->stale;
}

static gboolean
stale_error(GError **error, Session *s)
{
    g_set_error(error, SNAP_ERROR, SNAP_ERROR_STALE, "snapshot '%s' was deleted",
                s->owner);
    return FALSE;
}

/* Begins a call on @s: holds s->run, with a running appliance in
 * @out_g (launched now if needed). End it with call_end() either way. */
static gboolean
call_begin(Session *s, guestfs_h **out_g, GError **error)
{
    GuestFiles *gf = s->gf;
    Appliance dead = {NULL, 0, NULL};
    guestfs_h *g;
    gpointer hold = NULL;
    GPtrArray *targets = NULL;
    gint64 start, mounted;

    g_mutex_lock(&gf->lock);
    s->busy++;
    g_mutex_unlock(&gf->lock);
    g_mutex_lock(&s->run);
    g_mutex_lock(&gf->lock);
    if (s->stale) {
        g_mutex_unlock(&gf->lock);
        return stale_error(error, s);
    }
    /* One killed from outside is replaced. */
    if (s->g != NULL)
        quiet(s->g);
    if (s->g != NULL && !guestfs_is_ready(s->g)) {
        dead = detach_locked(s);
        g_mutex_unlock(&gf->lock);
        log_line(gf, "files: %s: the appliance died; restarting it", s->owner);
        appliance_stop(gf, &dead);
        g_mutex_lock(&gf->lock);
    }
    if (s->g != NULL) {
        *out_g = s->g;
        g_mutex_unlock(&gf->lock);
        quiet(*out_g);
        return TRUE;
    }
    if (!wait_slot_locked(gf, s)) {
        g_mutex_unlock(&gf->lock);
        return stale_error(error, s);
    }
    gf->running++;
    g_mutex_unlock(&gf->lock);

    start = g_get_monotonic_time();
    g = appliance_launch(gf, s, &hold, &targets, error);
    mounted = g_get_monotonic_time();
    if (g != NULL && !appliance_mount(s, g, targets, error)) {
        Appliance a = {g, guestfs_get_pid(g), hold};

        appliance_stop(gf, &a);
        g = NULL;
    }
    if (g != NULL)
        log_line(gf, "files: %s: filesystems found, inspected and mounted in %.1f s",
                 s->owner, (g_get_monotonic_time() - mounted) / 1e6);
    g_mutex_lock(&gf->lock);
    if (g == NULL) {
        gf->running--;
        g_cond_broadcast(&gf->cond);
        g_mutex_unlock(&gf->lock);
        g_clear_pointer(&targets, g_ptr_array_unref);
        return FALSE;
    }
    s->g = g;
    s->launch_us = g_get_monotonic_time() - start;
    s->pid = guestfs_get_pid(g);
    s->hold = hold;
    g_clear_pointer(&s->targets, g_ptr_array_unref);
    s->targets = targets;
    *out_g = g;
    g_mutex_unlock(&gf->lock);
    return TRUE;
}

static void
call_end(Session *s)
{
    GuestFiles *gf = s->gf;

    g_mutex_unlock(&s->run);
    g_mutex_lock(&gf->lock);
    s->busy--;
    s->last_use = g_get_monotonic_time();
    g_cond_broadcast(&gf->cond);
    g_mutex_unlock(&gf->lock);
}

/* After a failed call: TRUE when the appliance died under it (so the
 * call is worth repeating once on a new one). */
static gboolean
appliance_died(Session *s)
{
    gboolean dead;

    g_mutex_lock(&s->gf->lock);
    dead = s->g != NULL && !guestfs_is_ready(s->g);
    g_mutex_unlock(&s->gf->lock);
    return dead;
}

/* The error of a failed guest call on @path. */
static void
set_call_error(GError **error, guestfs_h *g, const char *what, const char *path)
{
    int err = guestfs_last_errno(g);
    const char *msg = guestfs_last_error(g);
    int code = err == ENOENT || err == ENOTDIR ? SNAP_ERROR_NOT_FOUND : SNAP_ERROR_FAILED;

    g_set_error(error, SNAP_ERROR, code, "%s %s: %s", what, path,
                msg ? msg : "libguestfs failed");
}

/* Reads the listing of @gpath from the appliance. */
static GPtrArray *
read_listing(guestfs_h *g, const char *gpath, GError **error)
{
    struct guestfs_dirent_list *dirents = guestfs_readdir(g, gpath);
    g_autoptr(GPtrArray) entries = NULL;

    if (dirents == NULL) {
        set_call_error(error, g, "readdir", gpath);
        return NULL;
    }
    entries = g_ptr_array_new_with_free_func((GDestroyNotify)guest_entry_free);
    for (guint32 i = 0; i < dirents->len; i++) {
        const char *name = dirents->val[i].name;
        GuestEntry *e;

        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        e = g_new0(GuestEntry, 1);
        e->name = g_strdup(name);
        g_ptr_array_add(entries, e);
    }
    guestfs_free_dirent_list(dirents);
    for (guint start = 0; start < entries->len; start += STAT_BATCH) {
        guint n = MIN(STAT_BATCH, entries->len - start);
        g_autofree char **names = g_new0(char *, n + 1);
        g_autoptr(GPtrArray) links = g_ptr_array_new();
        struct guestfs_statns_list *stats;
        g_auto(GStrv) targets = NULL;

        for (guint i = 0; i < n; i++)
            names[i] = ((GuestEntry *)entries->pdata[start + i])->name;
        stats = guestfs_lstatnslist(g, gpath, names);
        if (stats == NULL || stats->len != n) {
            if (stats != NULL)
                guestfs_free_statns_list(stats);
            set_call_error(error, g, "lstatnslist", gpath);
            return NULL;
        }
        for (guint i = 0; i < n; i++) {
            GuestEntry *e = entries->pdata[start + i];

            stat_from_statns(&stats->val[i], &e->st);
            if (S_ISLNK(e->st.st_mode))
                g_ptr_array_add(links, e);
        }
        guestfs_free_statns_list(stats);
        if (links->len == 0)
            continue;
        g_ptr_array_add(links, NULL);
        {
            g_autofree char **lnames = g_new0(char *, links->len);

            for (guint i = 0; i + 1 < links->len; i++)
                lnames[i] = ((GuestEntry *)links->pdata[i])->name;
            targets = guestfs_readlinklist(g, gpath, lnames);
        }
        if (targets == NULL) {
            set_call_error(error, g, "readlinklist", gpath);
            return NULL;
        }
        for (guint i = 0; i + 1 < links->len && targets[i] != NULL; i++) {
            GuestEntry *e = links->pdata[i];

            e->link = g_strdup(targets[i]);
            e->st.st_size = (off_t)strlen(targets[i]);
        }
    }
    g_ptr_array_sort(entries, compare_entries);
    return g_steal_pointer(&entries);
}

static GPtrArray *
cached_list_locked(Session *s, const char *path)
{
    GPtrArray *list = g_hash_table_lookup(s->lists, path);

    return list != NULL ? g_ptr_array_ref(list) : NULL;
}

/* The first component of @path: the filesystem's name. (transfer full) */
static char *
fs_of(const char *path)
{
    const char *slash = strchr(path, '/');

    return slash ? g_strndup(path, slash - path) : g_strdup(path);
}

static GPtrArray *
list_in(Session *s, const char *path, GError **error)
{
    GuestFiles *gf = s->gf;
    g_autofree char *fs = fs_of(path);
    g_autofree char *gpath = g_strconcat("/", path, NULL);
    g_autoptr(GError) local = NULL;
    GPtrArray *list;
    guestfs_h *g = NULL;

    g_mutex_lock(&gf->lock);
    list = s->stale ? NULL : cached_list_locked(s, path);
    g_mutex_unlock(&gf->lock);
    if (list != NULL)
        return list;
    for (int attempt = 0; attempt < 2; attempt++) {
        g_clear_error(&local);
        if (!call_begin(s, &g, &local)) {
            call_end(s);
            break;
        }
        g_mutex_lock(&gf->lock);
        list = cached_list_locked(s, path);
        if (list == NULL && *path != '\0' && g_hash_table_contains(s->broken, fs))
            g_set_error(&local, SNAP_ERROR, SNAP_ERROR_FAILED, "%s: %s", fs,
                        (const char *)g_hash_table_lookup(s->broken, fs));
        g_mutex_unlock(&gf->lock);
        if (list == NULL && local == NULL && *path != '\0')
            list = read_listing(g, gpath, &local);
        if (list == NULL && local == NULL)
            g_set_error(&local, SNAP_ERROR, SNAP_ERROR_FAILED, "no listing of '%s'",
                        path);
        if (list != NULL) {
            g_mutex_lock(&gf->lock);
            if (!g_hash_table_contains(s->lists, path))
                g_hash_table_insert(s->lists, g_strdup(path), g_ptr_array_ref(list));
            g_mutex_unlock(&gf->lock);
            call_end(s);
            return list;
        }
        if (!appliance_died(s)) {
            call_end(s);
            break;
        }
        call_end(s);
    }
    g_propagate_error(error, g_steal_pointer(&local));
    return NULL;
}

GPtrArray *
guest_files_list(GuestFiles *gf, const char *owner, const char *path, GError **error)
{
    g_autoptr(Session) s = session_get(gf, owner, error);

    return s != NULL ? list_in(s, path, error) : NULL;
}

static GuestEntry *
find_entry(GPtrArray *list, const char *name)
{
    for (guint i = 0; i < list->len; i++) {
        GuestEntry *e = list->pdata[i];

        if (strcmp(e->name, name) == 0)
            return e;
    }
    return NULL;
}

/* Splits @path into its directory and name. */
static void
split_path(const char *path, char **dir, const char **name)
{
    const char *slash = strrchr(path, '/');

    *dir = slash ? g_strndup(path, slash - path) : g_strdup("");
    *name = slash ? slash + 1 : path;
}

GuestEntry *
guest_files_stat(GuestFiles *gf, const char *owner, const char *path, GError **error)
{
    g_autoptr(Session) s = session_get(gf, owner, error);
    g_autoptr(GPtrArray) list = NULL;
    g_autofree char *dir = NULL;
    const char *name;
    GuestEntry *e;

    if (s == NULL)
        return NULL;
    split_path(path, &dir, &name);
    list = list_in(s, dir, error);
    if (list == NULL)
        return NULL;
    e = find_entry(list, name);
    if (e == NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND, "no '%s' in the guest",
                    path);
        return NULL;
    }
    return entry_copy(e);
}

GPtrArray *
guest_files_cached_list(GuestFiles *gf, const char *owner, const char *path)
{
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&gf->lock);
    Session *s = g_hash_table_lookup(gf->sessions, owner);

    return s != NULL && !s->stale ? cached_list_locked(s, path) : NULL;
}

gboolean
guest_files_cached_stat(GuestFiles *gf, const char *owner, const char *path,
                        GuestEntry **out)
{
    g_autofree char *dir = NULL;
    const char *name;
    g_autoptr(GPtrArray) list = NULL;
    GuestEntry *e;

    split_path(path, &dir, &name);
    list = guest_files_cached_list(gf, owner, dir);
    if (list == NULL)
        return FALSE;
    e = find_entry(list, name);
    *out = e != NULL ? entry_copy(e) : NULL;
    return TRUE;
}

/* ---- queues ----------------------------------------------------------------------- */

typedef struct {
    Session *s;
    GFunc func;
    gpointer data;
} Job;

static void
job_run(gpointer data, gpointer user_data)
{
    Job *job = data;

    job->func(job->data, NULL);
    session_unref(job->s);
    g_free(job);
}

static gpointer
stale_job_main(gpointer data)
{
    Job *job = data;

    job->func(job->data, NULL);
    g_free(job);
    return NULL;
}

void
guest_files_submit(GuestFiles *gf, const char *owner, GFunc func, gpointer data)
{
    Session *s = session_get(gf, owner, NULL);
    Job *job = g_new0(Job, 1);

    job->s = s;
    job->func = func;
    job->data = data;
    /* A retired owner's job still runs on a thread of its own (it fails
     * fast with STALE), never on the caller's. */
    if (s == NULL) {
        g_thread_unref(g_thread_new("guest-stale", stale_job_main, job));
        return;
    }
    g_mutex_lock(&gf->lock);
    if (s->queue == NULL)
        s->queue = g_thread_pool_new(job_run, NULL, 1, FALSE, NULL);
    g_mutex_unlock(&gf->lock);
    g_thread_pool_push(s->queue, job, NULL);
}

/* ---- files ------------------------------------------------------------------------ */

GuestFile *
guest_files_open(GuestFiles *gf, const char *owner, const char *path, GError **error)
{
    g_autoptr(Session) s = session_get(gf, owner, error);
    g_autoptr(GuestEntry) e = NULL;
    GuestFile *file;

    if (s == NULL)
        return NULL;
    if (!guest_files_cached_stat(gf, owner, path, &e))
        e = guest_files_stat(gf, owner, path, error);
    else if (e == NULL)
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND, "no '%s' in the guest",
                    path);
    if (e == NULL)
        return NULL;
    if (!S_ISREG(e->st.st_mode)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID, "'%s' is not a regular file",
                    path);
        return NULL;
    }
    file = g_new0(GuestFile, 1);
    file->s = g_steal_pointer(&s);
    file->gpath = g_strconcat("/", path, NULL);
    file->size = (guint64)e->st.st_size;
    g_mutex_init(&file->lock);
    g_mutex_lock(&gf->lock);
    file->s->open++;
    g_mutex_unlock(&gf->lock);
    return file;
}

/* Reads [@offset, @offset + @count) of the file from the appliance. */
static GBytes *
pread_all(GuestFile *file, gsize count, guint64 offset, GError **error)
{
    Session *s = file->s;
    g_autoptr(GByteArray) buf = g_byte_array_sized_new((guint)count);
    g_autoptr(GError) local = NULL;
    guestfs_h *g = NULL;

    for (int attempt = 0; attempt < 2; attempt++) {
        g_clear_error(&local);
        g_byte_array_set_size(buf, 0);
        if (!call_begin(s, &g, &local)) {
            call_end(s);
            break;
        }
        while (buf->len < count) {
            gsize want = MIN(count - buf->len, READ_CHUNK);
            size_t n = 0;
            char *data = guestfs_pread(g, file->gpath, (int)want,
                                       (int64_t)(offset + buf->len), &n);

            if (data == NULL) {
                set_call_error(&local, g, "read", file->gpath);
                break;
            }
            g_byte_array_append(buf, (const guint8 *)data, (guint)n);
            free(data);
            if (n == 0)
                break;
        }
        if (local == NULL) {
            call_end(s);
            return g_byte_array_free_to_bytes(g_steal_pointer(&buf));
        }
        if (!appliance_died(s)) {
            call_end(s);
            break;
        }
        call_end(s);
    }
    g_propagate_error(error, g_steal_pointer(&local));
    return NULL;
}

GBytes *
guest_file_read(GuestFile *file, gsize count, guint64 offset, GError **error)
{
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&file->lock);
    GuestFiles *gf = file->s->gf;
    gsize ahead_len;
    gsize want;
    gboolean stale;

    g_mutex_lock(&gf->lock);
    stale = file->s->stale;
    g_mutex_unlock(&gf->lock);
    if (stale) {
        stale_error(error, file->s);
        return NULL;
    }
    if (offset >= file->size || count == 0)
        return g_bytes_new(NULL, 0);
    count = (gsize)MIN((guint64)count, file->size - offset);
    ahead_len = file->ahead ? g_bytes_get_size(file->ahead) : 0;
    if (file->ahead != NULL && offset >= file->ahead_off &&
        offset + count <= file->ahead_off + ahead_len)
        return g_bytes_new_from_bytes(file->ahead, (gsize)(offset - file->ahead_off),
                                      count);
    /* What a sequential reader asks for next comes with this call. */
    want = (gsize)MIN((guint64)MAX(count, (gsize)READ_CHUNK), file->size - offset);
    g_clear_pointer(&file->ahead, g_bytes_unref);
    file->ahead = pread_all(file, want, offset, error);
    if (file->ahead == NULL)
        return NULL;
    file->ahead_off = offset;
    ahead_len = g_bytes_get_size(file->ahead);
    return g_bytes_new_from_bytes(file->ahead, 0, MIN(count, ahead_len));
}

void
guest_file_close(GuestFile *file)
{
    GuestFiles *gf;

    if (file == NULL)
        return;
    gf = file->s->gf;
    g_mutex_lock(&gf->lock);
    file->s->open--;
    file->s->last_use = g_get_monotonic_time();
    g_cond_broadcast(&gf->cond);
    g_mutex_unlock(&gf->lock);
    g_clear_pointer(&file->ahead, g_bytes_unref);
    g_mutex_clear(&file->lock);
    session_unref(file->s);
    g_free(file->gpath);
    g_free(file);
}

/* ---- the registry ----------------------------------------------------------------- */

static gpointer
reaper_main(gpointer data)
{
    GuestFiles *gf = data;
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&gf->lock);

    while (!gf->quit) {
        gint64 now = g_get_monotonic_time();
        g_autoptr(GArray) idle = g_array_new(FALSE, FALSE, sizeof(Appliance));
        g_autoptr(GPtrArray) owners = g_ptr_array_new_with_free_func(g_free);
        GHashTableIter iter;
        Session *s;

        g_hash_table_iter_init(&iter, gf->sessions);
        while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&s)) {
            Appliance a;

            /* Idle for as long as a new launch would take, at least: never
             * spend more on relaunching than on keeping it (ski rental). */
            if (s->g == NULL || s->busy > 0 || s->open > 0 ||
                now - s->last_use < MAX((gint64)gf->opts.idle_ms * 1000, s->launch_us))
                continue;
            a = detach_locked(s);
            g_array_append_val(idle, a);
            g_ptr_array_add(owners, g_strdup(s->owner));
        }
        g_mutex_unlock(&gf->lock);
        for (guint i = 0; i < idle->len; i++) {
            appliance_stop(gf, &g_array_index(idle, Appliance, i));
            log_line(gf, "files: %s: idle appliance stopped", (char *)owners->pdata[i]);
        }
        g_mutex_lock(&gf->lock);
        if (!gf->quit)
            g_cond_wait_until(&gf->reaper_cond, &gf->lock,
                              g_get_monotonic_time() + REAP_PERIOD_MS * 1000);
    }
    return NULL;
}

static void
reaper_start_locked(GuestFiles *gf)
{
    if (gf->reaper == NULL)
        gf->reaper = g_thread_new("guest-reaper", reaper_main, gf);
}

GuestFiles *
guest_files_new(const GuestFilesOptions *options)
{
    GuestFiles *gf = g_new0(GuestFiles, 1);

    gf->opts = *options;
    if (gf->opts.max == 0)
        gf->opts.max = 1;
    g_mutex_init(&gf->lock);
    g_cond_init(&gf->cond);
    g_cond_init(&gf->reaper_cond);
    gf->sessions = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                         (GDestroyNotify)session_unref);
    gf->retired = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return gf;
}

/* Makes @s stale and stops its appliance once no call uses it. */
static void
session_retire(GuestFiles *gf, Session *s)
{
    Appliance a;

    g_mutex_lock(&gf->lock);
    s->stale = TRUE;
    g_cond_broadcast(&gf->cond);
    g_mutex_unlock(&gf->lock);
    /* Waits for the call in flight, if any. */
    g_mutex_lock(&s->run);
    g_mutex_lock(&gf->lock);
    a = detach_locked(s);
    g_hash_table_remove_all(s->lists);
    g_mutex_unlock(&gf->lock);
    g_mutex_unlock(&s->run);
    if (a.g != NULL)
        log_line(gf, "files: %s: appliance stopped", s->owner);
    appliance_stop(gf, &a);
}

void
guest_files_free(GuestFiles *gf)
{
    g_autoptr(GPtrArray) all =
        g_ptr_array_new_with_free_func((GDestroyNotify)session_unref);
    GHashTableIter iter;
    Session *s;

    if (gf == NULL)
        return;
    g_mutex_lock(&gf->lock);
    gf->quit = TRUE;
    g_cond_broadcast(&gf->reaper_cond);
    g_mutex_unlock(&gf->lock);
    if (gf->reaper != NULL)
        g_thread_join(gf->reaper);
    g_mutex_lock(&gf->lock);
    g_hash_table_iter_init(&iter, gf->sessions);
    while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&s))
        g_ptr_array_add(all, session_ref(s));
    g_mutex_unlock(&gf->lock);
    for (guint i = 0; i < all->len; i++)
        session_retire(gf, all->pdata[i]);
    g_hash_table_destroy(gf->sessions);
    g_hash_table_destroy(gf->retired);
    g_clear_pointer(&all, g_ptr_array_unref);
    g_mutex_clear(&gf->lock);
    g_cond_clear(&gf->cond);
    g_cond_clear(&gf->reaper_cond);
    g_free(gf);
}

void
guest_files_retire(GuestFiles *gf, const char *owner)
{
    Session *s;

    g_mutex_lock(&gf->lock);
    g_hash_table_add(gf->retired, g_strdup(owner));
    s = g_hash_table_lookup(gf->sessions, owner);
    if (s != NULL) {
        session_ref(s);
        g_hash_table_remove(gf->sessions, owner);
    }
    g_mutex_unlock(&gf->lock);
    if (s != NULL) {
        session_retire(gf, s);
        session_unref(s);
    }
}

void
guest_files_unretire(GuestFiles *gf, const char *owner)
{
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&gf->lock);

    g_hash_table_remove(gf->retired, owner);
}

guint
guest_files_running(GuestFiles *gf)
{
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&gf->lock);

    return gf->running;
}
