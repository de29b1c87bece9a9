/* snap-spawn.h: run a helper program (qemu-img, qemu-system) and collect its output. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Runs @argv (argv[0] is looked up in PATH), stdin from /dev/null, and
 * waits for it on the calling thread, collecting stdout and stderr (each
 * may be NULL to discard). @wait_status receives the status as waitpid()
 * returns it. When @cancellable fires, the child is killed and the call
 * fails with G_IO_ERROR_CANCELLED. FALSE with @error when it cannot be
 * started; a child that fails is not an error here: look at @wait_status. */
gboolean snap_spawn_sync(const char *const *argv, char **out_stdout, char **out_stderr,
                         int *wait_status, GCancellable *cancellable, GError **error);

/* Called with each piece of a child's stdout as it arrives. */
typedef void (*SnapSpawnOutputFunc)(const char *data, gsize len, gpointer user_data);

/* snap_spawn_sync(), also handing stdout to @on_stdout as it comes (e.g.
 * the progress a long `qemu-img commit -p` prints). */
gboolean snap_spawn_sync_full(const char *const *argv, char **out_stdout,
                              char **out_stderr, int *wait_status,
                              SnapSpawnOutputFunc on_stdout, gpointer user_data,
                              GCancellable *cancellable, GError **error);

G_END_DECLS
