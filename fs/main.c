/* main.c: snaptreefs command line, FUSE session, mount, loop and shutdown. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs-changes.h"
#include "fs-context.h"
#include "fs-log.h"
#include "fs-ops.h"
#include "snap-engine-files.h"

typedef struct {
    char *state_dir;
    char *backend;        /* -o backend=native|libvirt */
    GPtrArray *uris;      /* -o uri=URI (libvirt; several: a fleet), char* */
    char *uris_file;      /* -o uris=FILE: one URI a line */
    char *memory;         /* -o memory=no: mkdir of a running domain is disk-only */
    char *cache;          /* -o cache=DIR (libvirt): where screen.png files go */
    double entry_timeout; /* < 0: not given */
    double attr_timeout;
    int read_only;
    int disks;
    int files;
    unsigned files_max;
    int multithread;
} FsOptions;

enum {
    KEY_RO,
    KEY_DISKS,
    KEY_FILES,
    KEY_URI,
};

static const struct fuse_opt fs_option_spec[] = {
    FUSE_OPT_KEY("ro", KEY_RO),
    FUSE_OPT_KEY("disks", KEY_DISKS),
    FUSE_OPT_KEY("files", KEY_FILES),
    {"files_max=%u", offsetof(FsOptions, files_max), 0},
    {"entry_timeout=%lf", offsetof(FsOptions, entry_timeout), 0},
    {"attr_timeout=%lf", offsetof(FsOptions, attr_timeout), 0},
    {"multithread", offsetof(FsOptions, multithread), 1},
    {"backend=%s", offsetof(FsOptions, backend), 0},
    FUSE_OPT_KEY("uri=", KEY_URI),
    {"uris=%s", offsetof(FsOptions, uris_file), 0},
    {"memory=%s", offsetof(FsOptions, memory), 0},
    {"cache=%s", offsetof(FsOptions, cache), 0},
    FUSE_OPT_END,
};

static int
fs_option_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    FsOptions *opts = data;

    switch (key) {
    case KEY_RO:
        /* Ours (the engine refuses mutations) and the kernel's. */
        opts->read_only = 1;
        return 1;
    case KEY_DISKS:
        opts->disks = 1;
        return 0;
    case KEY_FILES:
        opts->files = 1;
        return 0;
    case KEY_URI:
        g_ptr_array_add(opts->uris, g_strdup(arg + strlen("uri=")));
        return 0;
    case FUSE_OPT_KEY_NONOPT:
        /* The first operand is ours; fuse_parse_cmdline takes the
         * mountpoint and refuses a third. */
        if (opts->state_dir == NULL) {
            opts->state_dir = g_strdup(arg);
            return 0;
        }
        return 1;
    default:
        return 1;
    }
}

static void
usage(const char *prog)
{
    printf("usage: %s [-f] [-d] [-s] [-o OPTIONS] STATE_DIR MOUNTPOINT\n"
           "       %s [-f] [-d] [-s] -o backend=libvirt,uri=URI[,OPTIONS] MOUNTPOINT\n\n"
           "Shows each domain of STATE_DIR (or of the libvirt connection URI:\n"
           "qemu:///system, qemu+ssh://host/system, test:///default, ...) as a\n"
           "directory and its snapshots as nested directories; unmount with\n"
           "fusermount3 -u MOUNTPOINT.\n\n"
           "snaptreefs options:\n"
           "    -o backend=libvirt     libvirt's own domains and snapshots, through\n"
           "                           its API (no STATE_DIR; needs -o uri=URI)\n"
           "    -o uri=URI             the libvirt connection URI; given several\n"
           "                           times, a fleet: MOUNT/HOST/DOMAIN/...\n"
           "    -o uris=FILE           the URIs of a fleet, one a line (# comments)\n"
           "    -o ro                  browse only: every mutation fails with EROFS\n"
           "    -o disks               SNAP/disks/TARGET: each disk's content at each\n"
           "                           snapshot, read-only (through qemu-nbd)\n"
           "    -o cache=DIR           libvirt: where screen.png files are kept\n"
           "                           ($XDG_CACHE_HOME/snaptreefs; root:\n"
           "                           /var/cache/snaptreefs)\n"
           "    -o memory=no           mkdir of a running domain takes a disk-only\n"
           "                           snapshot (no RAM; guest agent freeze if any)\n"
#ifdef HAVE_GUESTFS
           "    -o files               SNAP/files/FS/...: the guest's files at each\n"
           "                           snapshot, read-only (through libguestfs)\n"
           "    -o files_max=N         appliances running at once for files/ (2)\n"
#else
           "    -o files               unavailable: built without libguestfs\n"
#endif
           "    -o entry_timeout=SECS  how long the kernel caches names (3600)\n"
           "    -o attr_timeout=SECS   how long the kernel caches attributes (3600)\n"
           "    -o multithread         serve requests from libfuse's worker threads\n"
           "                           (default: one thread; -s is accepted)\n\n",
           prog, prog);
    fuse_cmdline_help();
    fuse_lowlevel_help();
}

/* fuse_session_loop*() return the number of the signal that ended them
 * (libfuse's exit handler stores it as the session's error). */
static gboolean
loop_ended_cleanly(int ret)
{
    return ret == 0 || ret == SIGTERM || ret == SIGINT || ret == SIGHUP;
}

/* One thread by default: no handler ever waits (slow operations reply
 * from the engine's workers, reads come from memory), and on a 2-core
 * machine, walking a 300-snapshot tree with no caching (timeouts 0:
 * ls -lR, then cat of every metadata.xml) took 2.5-3x as long with
 * libfuse's worker threads; with the default timeouts the two were even. */
static int
run_loop(struct fuse_session *se, const struct fuse_cmdline_opts *cmd, gboolean threads)
{
    struct fuse_loop_config *config;
    int ret;

    if (cmd->singlethread || !threads)
        return fuse_session_loop(se);
    config = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(config, cmd->clone_fd);
    fuse_loop_cfg_set_max_threads(config, cmd->max_threads);
    if (cmd->max_idle_threads != UINT_MAX)
        fuse_loop_cfg_set_idle_threads(config, cmd->max_idle_threads);
    ret = fuse_session_loop_mt(se, config);
    fuse_loop_cfg_destroy(config);
    return ret;
}

/* Adds the URIs of @path (one a line; blank lines and '#' comments
 * skipped) to @uris. */
static gboolean
read_uris_file(const char *path, GPtrArray *uris, GError **error)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;

    if (!g_file_get_contents(path, &text, NULL, error))
        return FALSE;
    lines = g_strsplit(text, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
        char *line = g_strstrip(lines[i]);

        if (*line != '\0' && *line != '#')
            g_ptr_array_add(uris, g_strdup(line));
    }
    return TRUE;
}

/* What loading found wrong (files skipped, links repaired, a QEMU that
 * could not be reattached) is in each domain's errors already; the log
 * gets it too, as it gets every later errors line. */
static void
log_load_problems(SnapEngine *engine)
{
    g_autoptr(GPtrArray) domains = snap_engine_list_domains(engine);

    for (guint i = 0; i < domains->len; i++) {
        const char *domain = domains->pdata[i];
        g_autoptr(GBytes) errors =
            snap_engine_domain_file(engine, domain, SNAP_DOMAIN_FILE_ERRORS);
        gsize len = 0;
        const char *data = errors ? g_bytes_get_data(errors, &len) : NULL;
        g_autofree char *text = len ? g_strndup(data, len) : NULL;
        g_auto(GStrv) lines = text ? g_strsplit(text, "\n", -1) : NULL;

        for (guint j = 0; lines && lines[j]; j++)
            if (*lines[j])
                g_message("%s: %s", domain, lines[j]);
    }
}

/* The line that says the mount is up, with what it shows. */
static void
log_mounted(SnapEngine *engine, const char *source, const char *mountpoint,
            gint64 load_us)
{
    g_autoptr(GPtrArray) domains = snap_engine_list_domains(engine);
    guint64 snapshots = 0;

    for (guint i = 0; i < domains->len; i++) {
        SnapDomainInfo info;

        if (snap_engine_domain_info(engine, domains->pdata[i], &info))
            snapshots += info.nsnapshots;
    }
    g_message("mounted %s on %s: %u domains, %" G_GUINT64_FORMAT " snapshots, loaded in "
              "%" G_GINT64_FORMAT " ms",
              source, mountpoint, domains->len, snapshots, load_us / 1000);
}

int
main(int argc, char *argv[])
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fuse_cmdline_opts cmd;
    struct fuse_lowlevel_ops ops;
    FsOptions opts = {.entry_timeout = -1.0, .attr_timeout = -1.0, .files_max = 2};
    gboolean libvirt;
    SnapEngineOptions engine_opts = {0};
    g_autoptr(FsContext) ctx = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *state_dir = NULL;
    g_autofree char *source = NULL; /* what the log names: STATE or the URIs */
    char *cache_dir = NULL;
    struct fuse_session *se = NULL;
    gint64 load_us;
    int status = 1;
    int ret;

    memset(&cmd, 0, sizeof(cmd));
    fs_log_init();
    opts.uris = g_ptr_array_new_with_free_func(g_free);
    if (fuse_opt_parse(&args, &opts, fs_option_spec, fs_option_proc) != 0)
        goto out;
    if (opts.uris_file != NULL && !read_uris_file(opts.uris_file, opts.uris, &error)) {
        fprintf(stderr, "%s: -o uris=%s: %s\n", argv[0], opts.uris_file, error->message);
        goto out;
    }
    if (fuse_parse_cmdline(&args, &cmd) != 0)
        goto out;
    if (cmd.show_help) {
        usage(argv[0]);
        status = 0;
        goto out;
    }
    /* -d also shows the engine's debug lines: QMP traffic, qemu-img runs,
     * the elements of a domain definition it ignores. */
    if (cmd.debug)
        g_log_set_debug_enabled(TRUE);
    if (cmd.show_version) {
        printf("snaptreefs version %s\n", "0.1.0");
        fuse_lowlevel_version();
        status = 0;
        goto out;
    }
    libvirt = g_strcmp0(opts.backend, "libvirt") == 0;
    if (opts.backend != NULL && !libvirt && g_strcmp0(opts.backend, "native") != 0) {
        fprintf(stderr, "%s: unknown backend '%s' (native or libvirt)\n", argv[0],
                opts.backend);
        goto out;
    }
    if (libvirt && opts.uris->len == 0) {
        fprintf(stderr, "%s: -o backend=libvirt needs -o uri=URI (or uris=FILE)\n",
                argv[0]);
        goto out;
    }
    if (libvirt && opts.files) {
        fprintf(stderr, "%s: -o files works with the native backend only\n", argv[0]);
        goto out;
    }
    if (opts.files && !snap_engine_files_supported()) {
        fprintf(stderr,
                "%s: -o files needs libguestfs, and this snaptreefs was built "
                "without it (meson -Dguestfs=enabled)\n",
                argv[0]);
        goto out;
    }
    if (opts.files_max < 1 || opts.files_max > 64) {
        fprintf(stderr, "%s: -o files_max=N takes 1 to 64\n", argv[0]);
        goto out;
    }
    if (opts.memory != NULL && g_strcmp0(opts.memory, "no") != 0) {
        fprintf(stderr, "%s: -o memory=%s: the only value is 'no'\n", argv[0],
                opts.memory);
        goto out;
    }
    if (libvirt && opts.memory != NULL) {
        /* libvirt refuses internal disk-only snapshots of a running
         * domain, and an external one is not what mkdir takes there. */
        fprintf(stderr,
                "%s: -o memory=no works with the native backend only: libvirt cannot "
                "take an internal disk-only snapshot of a running domain\n",
                argv[0]);
        goto out;
    }
    if (!libvirt && opts.cache != NULL) {
        fprintf(stderr, "%s: -o cache=DIR goes with -o backend=libvirt\n", argv[0]);
        goto out;
    }
    if (!libvirt && opts.uris->len > 0) {
        fprintf(stderr, "%s: -o uri=URI goes with -o backend=libvirt\n", argv[0]);
        goto out;
    }
    /* The libvirt form has no STATE_DIR: its one operand is the mountpoint,
     * which the option parser took as ours. Given two (fstab and
     * mount.fuse3 always pass a source, e.g. "none"), the first is ignored. */
    if (libvirt && opts.state_dir != NULL) {
        if (cmd.mountpoint == NULL)
            cmd.mountpoint = g_steal_pointer(&opts.state_dir);
        else
            g_clear_pointer(&opts.state_dir, g_free);
    }
    if ((libvirt ? opts.state_dir != NULL : opts.state_dir == NULL) ||
        cmd.mountpoint == NULL) {
        fprintf(stderr,
                "usage: %s [-f] [-d] [-s] [-o OPTIONS] STATE_DIR MOUNTPOINT\n"
                "       %s [-f] [-d] [-s] -o backend=libvirt,uri=URI[,OPTIONS] "
                "MOUNTPOINT\n"
                "       %s --help\n",
                argv[0], argv[0], argv[0]);
        goto out;
    }
    if (opts.entry_timeout > 1e9 || opts.attr_timeout > 1e9) {
        fprintf(stderr, "%s: timeouts must be at most 1e9 seconds\n", argv[0]);
        goto out;
    }
    /* fuse_daemonize() changes to "/". */
    state_dir = libvirt ? NULL : g_canonicalize_filename(opts.state_dir, NULL);
    /* Libfuse's own options (allow_other, ...) pass through; these are
     * first so that the user's fsname or subtype win. */
    if (fuse_opt_insert_arg(&args, 1,
                            "-odefault_permissions,fsname=snaptreefs,"
                            "subtype=snaptreefs") != 0)
        goto out;
    /* A guest's device nodes and setuid files must not act on the host. */
    if (opts.files && fuse_opt_insert_arg(&args, 1, "-onodev,nosuid") != 0)
        goto out;

    ctx = fs_context_new();
    ctx->read_only = opts.read_only;
    if (opts.disks)
        ctx->disks = fs_disks_new();
    if (opts.entry_timeout >= 0)
        ctx->entry_timeout = opts.entry_timeout;
    if (opts.attr_timeout >= 0)
        ctx->attr_timeout = opts.attr_timeout;

    fs_ops_init(&ops);
    /* Unknown -o options make this fail with libfuse's own message. */
    se = fuse_session_new(&args, &ops, sizeof(ops), ctx);
    if (se == NULL)
        goto out;
    ctx->se = se;

    engine_opts.read_only = opts.read_only;
    engine_opts.memory_no = opts.memory != NULL;
    engine_opts.libvirt_uri = libvirt ? opts.uris->pdata[0] : NULL;
    if (libvirt && opts.uris->len > 1) {
        g_ptr_array_add(opts.uris, NULL);
        engine_opts.libvirt_uris = (const char *const *)opts.uris->pdata;
    }
    /* A fleet is named by all its URIs, not by the first alone. */
    source = engine_opts.libvirt_uris != NULL
                 ? g_strjoinv(", ", (char **)engine_opts.libvirt_uris)
                 : g_strdup(libvirt ? (const char *)opts.uris->pdata[0] : state_dir);
    engine_opts.disks = opts.disks;
    if (libvirt) {
        /* Absolute: fuse_daemonize() changes to "/". */
        cache_dir = opts.cache != NULL ? g_canonicalize_filename(opts.cache, NULL)
                    : getuid() == 0
                        ? g_strdup("/var/cache/snaptreefs")
                        : g_build_filename(g_get_user_cache_dir(), "snaptreefs", NULL);
        engine_opts.cache_dir = cache_dir;
    }
    load_us = g_get_monotonic_time();
    ctx->engine = snap_engine_new(state_dir, &engine_opts, &error);
    load_us = g_get_monotonic_time() - load_us;
    if (ctx->engine == NULL) {
        fprintf(stderr, "%s: %s: %s\n", argv[0], source, error->message);
        goto out_session;
    }
#ifdef HAVE_GUESTFS
    if (opts.files) {
        ctx->files = fs_files_new(ctx->engine, opts.files_max, &error);
        if (ctx->files == NULL) {
            fprintf(stderr, "%s: -o files: %s\n", argv[0], error->message);
            goto out_session;
        }
    }
#endif
    ctx->hosts = snap_engine_hosts(ctx->engine);
    snap_engine_set_change_func(ctx->engine, fs_changes_on_change, ctx);

    if (fuse_set_signal_handlers(se) != 0)
        goto out_session;
    if (fuse_session_mount(se, cmd.mountpoint) != 0)
        goto out_signals;
    /* Without -f the parent exits here, once the mount is in place; no
     * thread may exist before this point. One exception: a fleet host
     * that did not answer at load leaves the libvirt open it abandoned
     * waiting; the child does without it (one unused socket). */
    if (fuse_daemonize(cmd.foreground) != 0)
        goto out_unmount;
    if (!cmd.foreground)
        fs_log_daemonized("snaptreefs");
    else
        fs_log_foreground();
    log_load_problems(ctx->engine);
    log_mounted(ctx->engine, source, cmd.mountpoint, load_us);

    snap_engine_start(ctx->engine);
    fs_invalidator_start(ctx->invalidator, se);

    ret = run_loop(se, &cmd, opts.multithread);
    status = loop_ended_cleanly(ret) ? 0 : 1;
    if (status != 0)
        g_message("session loop ended: %s", g_strerror(ret < 0 ? -ret : ret));
    /* While still mounted, so each caller gets the truth: what has not
     * started is answered EINTR and never runs, what runs finishes. No
     * request is read any more, so no notification may wait for one. */
    fs_invalidator_quiesce(ctx->invalidator);
    snap_engine_stop(ctx->engine);

    g_message("unmounting %s", cmd.mountpoint);

out_unmount:
    fuse_session_unmount(se);
out_signals:
    fuse_remove_signal_handlers(se);
    /* That restored SIGPIPE's default, but the teardown below still
     * writes to sockets whose peer may be gone (libvirt's, NBD's): EPIPE
     * is an error there, not a reason to die before the exports stop. */
    signal(SIGPIPE, SIG_IGN);
out_session:
    /* Operations still running reply into the unmounted session, and
     * their changes queue notifications nobody needs any more. Their
     * callbacks use ctx->engine until the engine has drained them, so it
     * is cleared only after (g_clear_pointer would clear it first). The
     * disk files' readers close before the engine that made them. */
    g_clear_pointer(&ctx->disks, fs_disks_free);
#ifdef HAVE_GUESTFS
    g_clear_pointer(&ctx->files, fs_files_free);
#endif
    snap_engine_free(ctx->engine);
    ctx->engine = NULL;
    g_clear_pointer(&ctx->invalidator, fs_invalidator_free);
    fuse_session_destroy(se);
out:
    g_free(opts.state_dir);
    free(opts.backend);
    g_ptr_array_unref(opts.uris);
    free(opts.uris_file);
    free(opts.memory);
    free(opts.cache);
    g_free(cache_dir);
    free(cmd.mountpoint);
    fuse_opt_free_args(&args);
    return status;
}
