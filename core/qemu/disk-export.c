/* disk-export.c: qemu-nbd processes, their libnbd connections, idle stop and retirement.
 */
#include "disk-export.h"

#include <errno.h>
#include <fcntl.h>
#include <libnbd.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "snap-error.h"

/* Connections per export: readers (the kernel's parallel reads of one
 * file, several files) each take one, so reads of an export run in
 * parallel up to this many. */
#define EXPORT_MAX_CONNS 8

/* NBD allows requests of up to 32 MiB by qemu-nbd's limit; larger reads
 * are split. */
#define NBD_MAX_REQUEST (32u * 1024 * 1024)

/* A read is sent as pieces of this size, all in flight at once on its
 * connection: qemu-nbd reads the next while the previous one travels. */
#define NBD_PIECE (256u * 1024)

/* A sequential reader has this many of its next reads read ahead. */
#define READ_AHEAD 4

/* Block status asks about at most this much at once (NBD counts in 32
 * bits). */
#define NBD_MAX_STATUS (1u << 30)

#define START_TIMEOUT_US (30 * G_USEC_PER_SEC)
#define STOP_TIMEOUT_US (5 * G_USEC_PER_SEC)

typedef struct _DiskExport DiskExport;

struct _DiskExports {
    char *run_dir;
    gint64 idle_us;
    GMutex lock;           /* everything below, and each export's nreaders */
    GCond cond;            /* wakes the reaper */
    GHashTable *table;     /* key -> DiskExport* (a ref) */
    GHashTable *retired;   /* owner -> itself */
    GThread *reaper;       /* started with the first export */
    GThreadPool *prefetch; /* made with the first read ahead */
    gboolean quit;
    guint serial; /* socket names */
};

struct _DiskExport {
    char *key;
    char *owner;
    char *socket;
    char *log;
    GPid pid;
    guint64 size;
    gboolean has_status; /* the server answers base:allocation */
    /* Registry lock: */
    guint nreaders;
    gint64 idle_since;
    /* Own lock: */
    GMutex lock;
    GCond cond;      /* a connection came back */
    GPtrArray *idle; /* struct nbd_handle* nobody uses */
    guint nconns;    /* open ones, idle or in use */
    gboolean stale;
};

/* A range after a sequential read, read ahead on a worker while the
 * reader consumes what it got: qemu-nbd then never waits for the next
 * request. */
typedef struct {
    DiskExport *export; /* a ref */
    guint64 offset;
    gsize len;
    GMutex lock;
    GCond cond;
    gboolean done; /* lock */
    GBytes *bytes; /* lock: what was read, NULL when it failed */
} Prefetch;

struct _DiskReader {
    DiskExports *exports; /* a ref */
    DiskExport *export;   /* a ref */
    GMutex lock;
    guint64 next; /* where the last read ended */
    GQueue ahead; /* Prefetch*: ranges after it, contiguous, in order */
};

const char *
disk_export_binary(void)
{
    const char *bin = g_getenv("SNAPTREEFS_QEMU_NBD");

    return bin && *bin ? bin : "qemu-nbd";
}

/* QEMU's option syntax: a comma inside a value is written twice. */
static char *
opt_escape(const char *value)
{
    g_autoptr(GString) s = g_string_new(NULL);

    for (const char *p = value; *p; p++) {
        if (*p == ',')
            g_string_append_c(s, ',');
        g_string_append_c(s, *p);
    }
    return g_string_free(g_steal_pointer(&s), FALSE);
}

/* QEMU's protocol driver for @path: "host_device" for a block device
 * (libvirt's <source dev>), which the "file" driver refuses. */
static const char *
protocol_driver(const char *path)
{
    GStatBuf st;

    return g_stat(path, &st) == 0 && S_ISBLK(st.st_mode) ? "host_device" : "file";
}

GStrv
disk_export_argv(const char *socket, const DiskExportSource *source)
{
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    g_autofree char *file = opt_escape(source->image);
    g_autofree char *opts = NULL;
    g_autofree char *sock = g_strconcat("--socket=", socket, NULL);

    /* force-share: no image locks, so that a running QEMU (which holds
     * the write lock) and qemu-img keep working beside the export. Read
     * only, the export cannot harm them, and the snapshot it loads does
     * not change while it exists. */
    opts = g_strdup_printf("driver=%s,force-share=on,file.driver=%s,file.filename=%s",
                           source->format, protocol_driver(source->image), file);
    /* No --persistent: qemu-nbd exits when its last client leaves, so a
     * daemon that dies leaves no export behind; the registry holds a
     * connection for as long as it wants the export. --shared=0: any
     * number of connections. */
    g_strv_builder_add_many(b, disk_export_binary(), "--read-only", "--shared=0", sock,
                            "--image-opts", opts, NULL);
    if (source->snapshot != NULL) {
        g_autofree char *name = opt_escape(source->snapshot);
        g_autofree char *load = g_strconcat("--load-snapshot=snapshot.name=", name, NULL);

        g_strv_builder_add(b, load);
    }
    return g_strv_builder_end(b);
}

/* ---- one export ------------------------------------------------------------------ */

static void
conn_close(struct nbd_handle *nbd)
{
    nbd_close(nbd);
}

/* A connection to @socket, asking for allocation status. */
static struct nbd_handle *
conn_open(const char *socket, GError **error)
{
    struct nbd_handle *nbd = nbd_create();

    if (nbd == NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_FAILED, "libnbd: %s", nbd_get_error());
        return NULL;
    }
    /* Buffers are read into whole or the read fails and nothing of them
     * is used: zeroing each beforehand, libnbd's default, is wasted. */
    if (nbd_set_pread_initialize(nbd, false) < 0 ||
        nbd_add_meta_context(nbd, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0 ||
        nbd_connect_unix(nbd, socket) < 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU, "NBD connection to %s: %s",
                    socket, nbd_get_error());
        nbd_close(nbd);
        return NULL;
    }
    return nbd;
}

/* Reaps @pid if it has exited; TRUE when it has (or is not ours). */
static gboolean
reap(GPid pid, int *status)
{
    pid_t r;

    do
        r = waitpid(pid, status, WNOHANG);
    while (r < 0 && errno == EINTR);
    return r != 0;
}

/* Ends the process: SIGTERM, then SIGKILL if it lingers; always waited
 * for, so that it has stopped reading the image when this returns. */
static void
kill_and_wait(GPid pid)
{
    gint64 deadline = g_get_monotonic_time() + STOP_TIMEOUT_US;
    int status;

    kill(pid, SIGTERM);
    while (!reap(pid, &status)) {
        if (g_get_monotonic_time() > deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            break;
        }
        g_usleep(2000);
    }
    g_spawn_close_pid(pid);
}

static void
export_free(DiskExport *e)
{
    g_free(e->key);
    g_free(e->owner);
    g_free(e->socket);
    g_free(e->log);
    g_ptr_array_unref(e->idle);
    g_mutex_clear(&e->lock);
    g_cond_clear(&e->cond);
}

static DiskExport *
export_ref(DiskExport *e)
{
    return g_atomic_rc_box_acquire(e);
}

static void
export_unref(DiskExport *e)
{
    g_atomic_rc_box_release_full(e, (GDestroyNotify)export_free);
}

/* Stops @e: readers see it stale, its process is gone when this returns. */
static void
export_stop(DiskExport *e)
{
    g_autoptr(GPtrArray) idle = NULL;

    g_mutex_lock(&e->lock);
    e->stale = TRUE;
    idle = g_steal_pointer(&e->idle);
    e->idle = g_ptr_array_new();
    e->nconns -= idle->len;
    g_cond_broadcast(&e->cond);
    g_mutex_unlock(&e->lock);

    /* Closed before the kill: without clients, qemu-nbd exits by itself. */
    for (guint i = 0; i < idle->len; i++)
        conn_close(idle->pdata[i]);
    if (e->pid > 0) {
        kill_and_wait(e->pid);
        e->pid = 0;
    }
    g_unlink(e->socket);
    g_unlink(e->log);
    g_debug("disk export %s stopped", e->socket);
}

/* qemu-nbd's complaint, for an export that would not start. */
static char *
start_failure(DiskExport *e, int status)
{
    g_autofree char *text = NULL;

    if (g_file_get_contents(e->log, &text, NULL, NULL) && *g_strstrip(text))
        return g_steal_pointer(&text);
    if (WIFSIGNALED(status))
        return g_strdup_printf("qemu-nbd was killed by signal %d", WTERMSIG(status));
    return g_strdup_printf("qemu-nbd exited with status %d", WEXITSTATUS(status));
}

/* qemu-nbd's environment. qemu-nbd allocates a bounce buffer for each
 * read and frees it after the reply. With glibc's default thresholds the
 * heap is trimmed as soon as a few of them are free together, so each
 * read faulted in and zeroed fresh pages: that cost more CPU than the
 * read itself, and qemu-nbd's one thread is what limits throughput.
 * Higher thresholds keep the buffers for reuse. */
static GStrv
export_environ(void)
{
    GStrv env = g_get_environ();
    const char *old = g_environ_getenv(env, "GLIBC_TUNABLES");
    g_autofree char *tunables = g_strconcat(
        old && *old ? old : "", old && *old ? ":" : "",
        "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456",
        NULL);

    return g_environ_setenv(env, "GLIBC_TUNABLES", tunables, TRUE);
}

/* Spawns qemu-nbd for @source and connects to it. */
static DiskExport *
export_start(DiskExports *exports, const char *key, const char *owner,
             const DiskExportSource *source, GError **error)
{
    DiskExport *e = g_atomic_rc_box_new0(DiskExport);
    g_autofree char *base = NULL;
    g_auto(GStrv) argv = NULL;
    g_auto(GStrv) envp = NULL;
    g_autoptr(GError) local = NULL;
    gint64 deadline = g_get_monotonic_time() + START_TIMEOUT_US;
    struct nbd_handle *nbd = NULL;
    int log_fd;
    int status = 0;
    gint64 size;

    g_mutex_init(&e->lock);
    g_cond_init(&e->cond);
    e->idle = g_ptr_array_new();
    e->key = g_strdup(key);
    e->owner = g_strdup(owner);
    base = g_strdup_printf("%d-%u", (int)getpid(), ++exports->serial);
    e->socket = g_strdup_printf("%s/%s.sock", exports->run_dir, base);
    e->log = g_strdup_printf("%s/%s.log", exports->run_dir, base);

    if (strlen(e->socket) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "NBD socket path '%s' is longer than a unix socket allows; use a "
                    "shorter state directory",
                    e->socket);
        goto fail;
    }
    if (g_mkdir_with_parents(exports->run_dir, 0700) < 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_FAILED, "cannot create %s: %s",
                    exports->run_dir, g_strerror(errno));
        goto fail;
    }
    log_fd = open(e->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (log_fd < 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_FAILED, "cannot create %s: %s", e->log,
                    g_strerror(errno));
        goto fail;
    }
    g_unlink(e->socket);
    argv = disk_export_argv(e->socket, source);
    envp = export_environ();
    /* Descriptors are not left open: a qemu-nbd holding another
     * export's connection would keep that one alive. */
    if (!g_spawn_async_with_pipes_and_fds(
            NULL, (const char *const *)argv, (const char *const *)envp,
            G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                G_SPAWN_STDIN_FROM_DEV_NULL | G_SPAWN_STDOUT_TO_DEV_NULL,
            NULL, NULL, -1, -1, log_fd, NULL, NULL, 0, &e->pid, NULL, NULL, NULL,
            &local)) {
        close(log_fd);
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU, "cannot run %s: %s",
                    disk_export_binary(), local->message);
        goto fail;
    }
    close(log_fd);
    g_debug("disk export %s: %s at %s", e->socket, source->image,
            source->snapshot ? source->snapshot : "(as is)");

    /* The socket appears once the image is open; connecting earlier
     * fails, and an image that cannot be opened ends the process. */
    while ((nbd = conn_open(e->socket, &local)) == NULL) {
        if (reap(e->pid, &status)) {
            g_autofree char *why = start_failure(e, status);

            g_spawn_close_pid(e->pid);
            e->pid = 0;
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU, "%s", why);
            goto fail;
        }
        if (g_get_monotonic_time() > deadline) {
            g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                       "qemu-nbd did not answer: ");
            goto fail;
        }
        g_clear_error(&local);
        g_usleep(1000);
    }
    size = nbd_get_size(nbd);
    if (size < 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU, "NBD size: %s", nbd_get_error());
        conn_close(nbd);
        goto fail;
    }
    e->size = (guint64)size;
    e->has_status = nbd_can_meta_context(nbd, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
    g_ptr_array_add(e->idle, nbd);
    e->nconns = 1;
    return e;

fail:
    export_stop(e);
    export_unref(e);
    return NULL;
}

/* A connection of @e for one request, opening one when all are busy and
 * there are fewer than the maximum, else waiting for one. */
static struct nbd_handle *
conn_take(DiskExport *e, GError **error)
{
    struct nbd_handle *nbd = NULL;

    g_mutex_lock(&e->lock);
    while (!e->stale && e->idle->len == 0 && e->nconns >= EXPORT_MAX_CONNS)
        g_cond_wait(&e->cond, &e->lock);
    if (e->stale) {
        g_mutex_unlock(&e->lock);
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_STALE,
                            "the snapshot of this disk was deleted");
        return NULL;
    }
    if (e->idle->len > 0) {
        nbd = g_ptr_array_steal_index_fast(e->idle, e->idle->len - 1);
        g_mutex_unlock(&e->lock);
        return nbd;
    }
    e->nconns++;
    g_mutex_unlock(&e->lock);

    nbd = conn_open(e->socket, error);
    if (nbd == NULL) {
        g_mutex_lock(&e->lock);
        e->nconns--;
        g_cond_signal(&e->cond);
        g_mutex_unlock(&e->lock);
    }
    return nbd;
}

/* Returns @nbd to the pool, or closes it when it failed or the export
 * stopped meanwhile. FALSE (STALE) when the export stopped: what the
 * request read is not to be trusted then. */
static gboolean
conn_give(DiskExport *e, struct nbd_handle *nbd, gboolean failed, GError **error)
{
    gboolean stale;

    g_mutex_lock(&e->lock);
    stale = e->stale;
    if (stale || failed) {
        e->nconns--;
    } else {
        g_ptr_array_add(e->idle, nbd);
        nbd = NULL;
    }
    g_cond_signal(&e->cond);
    g_mutex_unlock(&e->lock);
    if (nbd != NULL)
        conn_close(nbd);
    if (stale) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_STALE,
                            "the snapshot of this disk was deleted");
        return FALSE;
    }
    return TRUE;
}

/* Gives back a connection whose request @what failed: SNAP_ERROR_QEMU
 * with libnbd's reason, or STALE when the export stopped meanwhile. */
static void
conn_give_failed(DiskExport *e, struct nbd_handle *nbd, const char *what, GError **error)
{
    const char *reason = nbd_get_error();
    g_autofree char *why =
        g_strdup(reason != NULL ? reason : "nothing usable in the reply");

    if (conn_give(e, nbd, TRUE, error))
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU, "%s: %s", what, why);
}

/* ---- the registry ---------------------------------------------------------------- */

static DiskExports *
exports_ref(DiskExports *exports)
{
    return g_atomic_rc_box_acquire(exports);
}

static void
exports_clear(DiskExports *exports)
{
    g_hash_table_unref(exports->table);
    g_hash_table_unref(exports->retired);
    g_mutex_clear(&exports->lock);
    g_cond_clear(&exports->cond);
    g_free(exports->run_dir);
}

static void
exports_unref(DiskExports *exports)
{
    g_atomic_rc_box_release_full(exports, (GDestroyNotify)exports_clear);
}

DiskExports *
disk_exports_new(const char *run_dir, guint idle_ms)
{
    DiskExports *exports = g_atomic_rc_box_new0(DiskExports);

    exports->run_dir = g_strdup(run_dir);
    exports->idle_us = (gint64)idle_ms * 1000;
    g_mutex_init(&exports->lock);
    g_cond_init(&exports->cond);
    exports->table = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify)export_unref);
    exports->retired = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return exports;
}

/* Takes every export the predicate picks out of the table (locked). */
static GPtrArray *
take_exports_locked(DiskExports *exports, const char *owner, gboolean idle_only,
                    gint64 now, gint64 *next_deadline)
{
    GPtrArray *taken = g_ptr_array_new_with_free_func((GDestroyNotify)export_unref);
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init(&iter, exports->table);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        DiskExport *e = value;

        if (owner != NULL && strcmp(e->owner, owner) != 0)
            continue;
        if (idle_only) {
            gint64 deadline = e->idle_since + exports->idle_us;

            if (e->nreaders > 0)
                continue;
            if (deadline > now) {
                if (*next_deadline == 0 || deadline < *next_deadline)
                    *next_deadline = deadline;
                continue;
            }
        }
        g_ptr_array_add(taken, export_ref(e));
        g_hash_table_iter_remove(&iter);
    }
    return taken;
}

static void
stop_all(GPtrArray *taken)
{
    for (guint i = 0; i < taken->len; i++)
        export_stop(taken->pdata[i]);
}

/* Stops exports that nobody has read for the idle time. */
static gpointer
reaper_main(gpointer data)
{
    DiskExports *exports = data;

    g_mutex_lock(&exports->lock);
    while (!exports->quit) {
        gint64 next = 0;
        g_autoptr(GPtrArray) idle =
            take_exports_locked(exports, NULL, TRUE, g_get_monotonic_time(), &next);

        if (idle->len > 0) {
            g_mutex_unlock(&exports->lock);
            stop_all(idle);
            g_mutex_lock(&exports->lock);
            continue;
        }
        if (next == 0)
            g_cond_wait(&exports->cond, &exports->lock);
        else
            g_cond_wait_until(&exports->cond, &exports->lock, next);
    }
    g_mutex_unlock(&exports->lock);
    return NULL;
}

void
disk_exports_free(DiskExports *exports)
{
    g_autoptr(GPtrArray) all = NULL;
    GThreadPool *pool;

    if (exports == NULL)
        return;
    g_mutex_lock(&exports->lock);
    exports->quit = TRUE;
    g_cond_broadcast(&exports->cond);
    all = take_exports_locked(exports, NULL, FALSE, 0, NULL);
    pool = g_steal_pointer(&exports->prefetch);
    g_mutex_unlock(&exports->lock);
    if (exports->reaper != NULL)
        g_thread_join(exports->reaper);
    stop_all(all);
    /* What is being read ahead fails fast on stopped exports. */
    if (pool != NULL)
        g_thread_pool_free(pool, FALSE, TRUE);
    exports_unref(exports);
}

static char *
export_key(const char *owner, const DiskExportSource *source)
{
    /* Owners, paths and snapshot names hold no control characters. */
    return g_strdup_printf("%s\n%s\n%s\n%s", owner, source->image, source->format,
                           source->snapshot ? source->snapshot : "");
}

DiskReader *
disk_exports_open(DiskExports *exports, const char *owner, const DiskExportSource *source,
                  GError **error)
{
    g_autofree char *key = export_key(owner, source);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&exports->lock);
    DiskExport *e;
    DiskReader *reader;

    if (exports->quit || g_hash_table_contains(exports->retired, owner)) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_STALE,
                            "the snapshot of this disk is being deleted");
        return NULL;
    }
    e = g_hash_table_lookup(exports->table, key);
    if (e == NULL) {
        /* Started under the lock: a retirement waits for it, and two
         * first readers start one export. */
        e = export_start(exports, key, owner, source, error);
        if (e == NULL)
            return NULL;
        g_hash_table_insert(exports->table, g_strdup(key), e);
        if (exports->reaper == NULL)
            exports->reaper = g_thread_new("disk-exports", reaper_main, exports);
    }
    e->nreaders++;
    reader = g_new0(DiskReader, 1);
    reader->exports = exports_ref(exports);
    reader->export = export_ref(e);
    g_mutex_init(&reader->lock);
    return reader;
}

void
disk_exports_retire(DiskExports *exports, const char *owner)
{
    g_autoptr(GPtrArray) taken = NULL;

    g_mutex_lock(&exports->lock);
    g_hash_table_add(exports->retired, g_strdup(owner));
    taken = take_exports_locked(exports, owner, FALSE, 0, NULL);
    g_mutex_unlock(&exports->lock);
    stop_all(taken);
}

void
disk_exports_unretire(DiskExports *exports, const char *owner)
{
    g_mutex_lock(&exports->lock);
    g_hash_table_remove(exports->retired, owner);
    g_mutex_unlock(&exports->lock);
}

guint
disk_exports_count(DiskExports *exports)
{
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&exports->lock);

    return g_hash_table_size(exports->table);
}

/* ---- readers ---------------------------------------------------------------------- */

guint64
disk_reader_size(DiskReader *reader)
{
    return reader->export->size;
}

const char *
disk_reader_socket(DiskReader *reader)
{
    return reader->export->socket;
}

/* Reads @count bytes at @offset on @nbd as pieces in flight together.
 * FALSE with libnbd's error when any fails. */
static gboolean
pread_pieces(struct nbd_handle *nbd, char *buf, gsize count, guint64 offset)
{
    g_autoptr(GArray) cookies = g_array_new(FALSE, FALSE, sizeof(int64_t));
    gboolean ok = TRUE;

    for (gsize done = 0; done < count;) {
        gsize n = MIN(count - done, NBD_PIECE);
        int64_t cookie =
            nbd_aio_pread(nbd, buf + done, n, offset + done, NBD_NULL_COMPLETION, 0);

        if (cookie < 0)
            return FALSE;
        g_array_append_val(cookies, cookie);
        done += n;
    }
    while (nbd_aio_in_flight(nbd) > 0)
        if (nbd_poll(nbd, -1) < 0)
            return FALSE;
    for (guint i = 0; i < cookies->len; i++)
        ok =
            nbd_aio_command_completed(nbd, g_array_index(cookies, int64_t, i)) == 1 && ok;
    return ok;
}

/* Reads @count bytes at @offset (within the disk) on a connection of @e. */
static gssize
export_pread(DiskExport *e, void *buf, gsize count, guint64 offset, GError **error)
{
    struct nbd_handle *nbd;
    gsize done = 0;
    gboolean failed = FALSE;

    nbd = conn_take(e, error);
    if (nbd == NULL)
        return -1;
    while (done < count && !failed) {
        gsize n = MIN(count - done, NBD_MAX_REQUEST);

        if (!pread_pieces(nbd, (char *)buf + done, n, offset + done))
            failed = TRUE;
        else
            done += n;
    }
    if (failed) {
        conn_give_failed(e, nbd, "NBD read", error);
        return -1;
    }
    if (!conn_give(e, nbd, FALSE, error))
        return -1;
    return (gssize)done;
}

static void
prefetch_free(Prefetch *p)
{
    export_unref(p->export);
    g_clear_pointer(&p->bytes, g_bytes_unref);
    g_mutex_clear(&p->lock);
    g_cond_clear(&p->cond);
}

static void
prefetch_unref(Prefetch *p)
{
    g_atomic_rc_box_release_full(p, (GDestroyNotify)prefetch_free);
}

/* Reads @len bytes at @offset of @e (a range within the disk) into a new
 * buffer; NULL when it fails. */
static GBytes *
export_read_bytes(DiskExport *e, gsize len, guint64 offset, GError **error)
{
    g_autofree char *buf = g_malloc(MAX(len, 1));
    gssize got = export_pread(e, buf, len, offset, error);

    if (got < 0)
        return NULL;
    return g_bytes_new_take(g_steal_pointer(&buf), (gsize)got);
}

static void
prefetch_run(gpointer data, gpointer user_data)
{
    Prefetch *p = data;
    GBytes *bytes = export_read_bytes(p->export, p->len, p->offset, NULL);

    g_mutex_lock(&p->lock);
    p->bytes = bytes;
    p->done = TRUE;
    g_cond_broadcast(&p->cond);
    g_mutex_unlock(&p->lock);
    prefetch_unref(p);
}

static gboolean
prefetch_covers(const Prefetch *p, guint64 offset, gsize count)
{
    return p != NULL && offset >= p->offset && offset + count <= p->offset + p->len;
}

/* Starts reading @len bytes at @offset ahead; NULL once the registry is
 * going away. (transfer full) */
static Prefetch *
prefetch_start(DiskReader *reader, guint64 offset, gsize len)
{
    DiskExports *exports = reader->exports;
    Prefetch *p = g_atomic_rc_box_new0(Prefetch);

    p->export = export_ref(reader->export);
    p->offset = offset;
    p->len = len;
    g_mutex_init(&p->lock);
    g_cond_init(&p->cond);
    g_mutex_lock(&exports->lock);
    if (exports->quit) {
        g_mutex_unlock(&exports->lock);
        prefetch_unref(p);
        return NULL;
    }
    if (exports->prefetch == NULL)
        exports->prefetch =
            g_thread_pool_new(prefetch_run, NULL, EXPORT_MAX_CONNS / 2, FALSE, NULL);
    g_thread_pool_push(exports->prefetch, g_atomic_rc_box_acquire(p), NULL);
    g_mutex_unlock(&exports->lock);
    return p;
}

/* What @p read for [@offset, +@count) once it is done, sharing its
 * buffer; NULL when it failed (the caller then reads it itself). */
static GBytes *
prefetch_take(Prefetch *p, gsize count, guint64 offset)
{
    GBytes *whole;

    g_mutex_lock(&p->lock);
    while (!p->done)
        g_cond_wait(&p->cond, &p->lock);
    whole = p->bytes;
    g_mutex_unlock(&p->lock);
    if (whole == NULL || g_bytes_get_size(whole) != p->len)
        return NULL;
    return g_bytes_new_from_bytes(whole, offset - p->offset, count);
}

static gboolean
export_check_live(DiskExport *e, GError **error)
{
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&e->lock);

    if (e->stale) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_STALE,
                            "the snapshot of this disk was deleted");
        return FALSE;
    }
    return TRUE;
}

/* A read ahead of @reader's that covers [@offset, +@count), or NULL.
 * (transfer full) */
static Prefetch *
reader_find_ahead(DiskReader *reader, guint64 offset, gsize count)
{
    for (GList *l = reader->ahead.head; l != NULL; l = l->next)
        if (prefetch_covers(l->data, offset, count))
            return g_atomic_rc_box_acquire((Prefetch *)l->data);
    return NULL;
}

/* After a sequential read of @count bytes that ended at reader->next:
 * keeps READ_AHEAD ranges from there on read or being read (new ones of
 * that size), dropping those behind and, after a jump, those elsewhere. */
static void
reader_read_ahead(DiskReader *reader, gsize count)
{
    DiskExport *e = reader->export;
    Prefetch *p;
    guint64 end;

    while ((p = g_queue_peek_head(&reader->ahead)) != NULL &&
           p->offset + p->len <= reader->next)
        prefetch_unref(g_queue_pop_head(&reader->ahead));
    /* The first one left ends after next: unless it also starts at or
     * before it, the reader jumped back. */
    if (p != NULL && p->offset > reader->next)
        g_queue_clear_full(&reader->ahead, (GDestroyNotify)prefetch_unref);
    p = g_queue_peek_tail(&reader->ahead);
    end = p != NULL ? p->offset + p->len : reader->next;
    while (g_queue_get_length(&reader->ahead) < READ_AHEAD && end < e->size) {
        p = prefetch_start(reader, end, MIN(count, e->size - end));
        if (p == NULL)
            break;
        g_queue_push_tail(&reader->ahead, p);
        end += p->len;
    }
}

GBytes *
disk_reader_read(DiskReader *reader, gsize count, guint64 offset, GError **error)
{
    DiskExport *e = reader->export;
    Prefetch *ahead = NULL;
    GBytes *bytes = NULL;
    gboolean sequential;

    if (offset >= e->size)
        return g_bytes_new(NULL, 0);
    count = MIN(count, e->size - offset);
    g_mutex_lock(&reader->lock);
    sequential = offset == reader->next;
    ahead = reader_find_ahead(reader, offset, count);
    g_mutex_unlock(&reader->lock);

    if (ahead != NULL) {
        bytes = prefetch_take(ahead, count, offset);
        prefetch_unref(ahead);
        /* Read before a deletion, asked for after it: refused too. */
        if (bytes != NULL && !export_check_live(e, error))
            g_clear_pointer(&bytes, g_bytes_unref);
        else if (bytes == NULL)
            bytes = export_read_bytes(e, count, offset, error);
    } else {
        bytes = export_read_bytes(e, count, offset, error);
    }
    if (bytes == NULL)
        return NULL;

    g_mutex_lock(&reader->lock);
    reader->next = offset + g_bytes_get_size(bytes);
    if (sequential || ahead != NULL)
        reader_read_ahead(reader, count);
    g_mutex_unlock(&reader->lock);
    return bytes;
}

/* Whether base:allocation @flags make a hole: unallocated and reading as
 * zeros. A zero cluster that is allocated is data for SEEK_DATA, as in a
 * file system. */
static gboolean
extent_is_hole(uint32_t flags)
{
    return (flags & LIBNBD_STATE_HOLE) && (flags & LIBNBD_STATE_ZERO);
}

typedef struct {
    gboolean seen;
    gboolean hole;
    guint64 length;
} FirstExtent;

static int
on_extents(void *data, const char *context, uint64_t offset, uint32_t *entries,
           size_t nr_entries, int *error)
{
    FirstExtent *first = data;

    if (strcmp(context, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0 || nr_entries < 2 ||
        first->seen)
        return 0;
    first->seen = TRUE;
    first->length = entries[0];
    first->hole = extent_is_hole(entries[1]);
    return 0;
}

static gboolean
reader_extent(gpointer data, guint64 offset, gboolean *hole, guint64 *length,
              GError **error)
{
    DiskExport *e = ((DiskReader *)data)->export;
    FirstExtent first = {FALSE, FALSE, 0};
    guint64 count = MIN(e->size - offset, NBD_MAX_STATUS);
    struct nbd_handle *nbd;
    int r;

    if (!e->has_status) {
        *hole = FALSE;
        *length = e->size - offset;
        return TRUE;
    }
    nbd = conn_take(e, error);
    if (nbd == NULL)
        return FALSE;
    r = nbd_block_status(
        nbd, count, offset,
        (nbd_extent_callback){.callback = on_extents, .user_data = &first}, 0);
    if (r < 0) {
        conn_give_failed(e, nbd, "NBD block status", error);
        return FALSE;
    }
    if (!conn_give(e, nbd, FALSE, error))
        return FALSE;
    if (!first.seen || first.length == 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                    "NBD block status at %" G_GUINT64_FORMAT ": no extent", offset);
        return FALSE;
    }
    *hole = first.hole;
    *length = MIN(first.length, e->size - offset);
    return TRUE;
}

/* Sums the data (what SEEK_DATA finds: not a hole) among
 * every extent one block status reply gives, up to @limit bytes (the last
 * extent may reach past what was asked). */
typedef struct {
    guint64 limit;
    guint64 covered;
    guint64 data;
} ExtentSum;

static int
on_extents_sum(void *data, const char *context, uint64_t offset, uint32_t *entries,
               size_t nr_entries, int *error)
{
    ExtentSum *sum = data;

    if (strcmp(context, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
        return 0;
    for (size_t i = 0; i + 1 < nr_entries && sum->covered < sum->limit; i += 2) {
        guint64 len = MIN((guint64)entries[i], sum->limit - sum->covered);

        sum->covered += len;
        if (!extent_is_hole(entries[i + 1]))
            sum->data += len;
    }
    return 0;
}

gboolean
disk_reader_allocated(DiskReader *reader, guint64 *bytes, GError **error)
{
    DiskExport *e = reader->export;
    struct nbd_handle *nbd;
    guint64 pos = 0;
    guint64 data = 0;
    gboolean failed = FALSE;

    if (!e->has_status) {
        *bytes = e->size;
        return TRUE;
    }
    nbd = conn_take(e, error);
    if (nbd == NULL)
        return FALSE;
    while (pos < e->size && !failed) {
        guint64 count = MIN(e->size - pos, NBD_MAX_STATUS);
        ExtentSum sum = {count, 0, 0};

        if (nbd_block_status(
                nbd, count, pos,
                (nbd_extent_callback){.callback = on_extents_sum, .user_data = &sum},
                0) < 0 ||
            sum.covered == 0) {
            failed = TRUE;
            break;
        }
        data += sum.data;
        pos += sum.covered;
    }
    if (failed) {
        g_autofree char *what =
            g_strdup_printf("NBD block status at %" G_GUINT64_FORMAT, pos);

        conn_give_failed(e, nbd, what, error);
        return FALSE;
    }
    if (!conn_give(e, nbd, FALSE, error))
        return FALSE;
    *bytes = data;
    return TRUE;
}

gboolean
disk_seek(guint64 size, guint64 offset, gboolean data, DiskExtentFunc extent,
          gpointer extent_data, guint64 *out, gboolean *found, GError **error)
{
    guint64 pos = offset;

    while (pos < size) {
        gboolean hole = FALSE;
        guint64 len = 0;

        if (!extent(extent_data, pos, &hole, &len, error))
            return FALSE;
        if (hole != data) {
            *out = pos;
            *found = TRUE;
            return TRUE;
        }
        pos += MAX(len, 1);
    }
    /* Past the last extent: no more data, and the end is a hole. */
    *found = !data && offset < size;
    if (*found)
        *out = size;
    return TRUE;
}

gboolean
disk_reader_seek(DiskReader *reader, guint64 offset, gboolean data, guint64 *out,
                 gboolean *found, GError **error)
{
    return disk_seek(reader->export->size, offset, data, reader_extent, reader, out,
                     found, error);
}

void
disk_reader_close(DiskReader *reader)
{
    DiskExports *exports;
    DiskExport *e;

    if (reader == NULL)
        return;
    exports = reader->exports;
    e = reader->export;
    g_mutex_lock(&exports->lock);
    if (--e->nreaders == 0) {
        e->idle_since = g_get_monotonic_time();
        g_cond_broadcast(&exports->cond);
    }
    g_mutex_unlock(&exports->lock);
    g_queue_clear_full(&reader->ahead, (GDestroyNotify)prefetch_unref);
    g_mutex_clear(&reader->lock);
    export_unref(e);
    exports_unref(exports);
    g_free(reader);
}
