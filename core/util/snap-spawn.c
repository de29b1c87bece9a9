/* snap-spawn.c: helper programs started with posix_spawn and read with poll. */
#include "snap-spawn.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* Why not GSubprocess: the daemon runs qemu-img once per disk for every
 * mkdir, rmdir and revert, and with GSubprocess the spawn (fork, then a
 * walk over every descriptor in the child) and the reaping (through
 * GLib's worker thread and a main context) cost about 2 ms of a 7 ms
 * qemu-img run. Leaving descriptors open lets g_spawn use posix_spawn
 * (vfork); every descriptor the daemon opens is O_CLOEXEC, so nothing
 * leaks into the child. */
#define SPAWN_FLAGS                                                                      \
    (G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_LEAVE_DESCRIPTORS_OPEN |  \
     G_SPAWN_STDIN_FROM_DEV_NULL | G_SPAWN_CLOEXEC_PIPES)

/* Reads what is there on @fd into @buf; FALSE at end of file. */
static gboolean
drain(int fd, GString *buf, SnapSpawnOutputFunc func, gpointer user_data)
{
    char chunk[4096];
    gssize n;

    do
        n = read(fd, chunk, sizeof(chunk));
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return FALSE;
    if (buf != NULL)
        g_string_append_len(buf, chunk, n);
    if (func != NULL)
        func(chunk, (gsize)n, user_data);
    return TRUE;
}

gboolean
snap_spawn_sync(const char *const *argv, char **out_stdout, char **out_stderr,
                int *wait_status, GCancellable *cancellable, GError **error)
{
    return snap_spawn_sync_full(argv, out_stdout, out_stderr, wait_status, NULL, NULL,
                                cancellable, error);
}

gboolean
snap_spawn_sync_full(const char *const *argv, char **out_stdout, char **out_stderr,
                     int *wait_status, SnapSpawnOutputFunc on_stdout, gpointer user_data,
                     GCancellable *cancellable, GError **error)
{
    g_autoptr(GString) out = g_string_new(NULL);
    g_autoptr(GString) err = g_string_new(NULL);
    int fds[2] = {-1, -1};
    gboolean cancelled = FALSE;
    GPid pid;
    int status = 0;

    if (g_cancellable_set_error_if_cancelled(cancellable, error))
        return FALSE;
    if (!g_spawn_async_with_pipes_and_fds(NULL, argv, NULL, SPAWN_FLAGS, NULL, NULL, -1,
                                          -1, -1, NULL, NULL, 0, &pid, NULL, &fds[0],
                                          &fds[1], error))
        return FALSE;

    while (fds[0] >= 0 || fds[1] >= 0) {
        struct pollfd pfd[3];
        nfds_t n = 0;
        int cancel_fd = cancelled ? -1 : g_cancellable_get_fd(cancellable);

        for (int i = 0; i < 2; i++)
            pfd[n++] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        if (cancel_fd >= 0)
            pfd[n++] = (struct pollfd){.fd = cancel_fd, .events = POLLIN};
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i] >= 0 && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
                !drain(fds[i], i == 0 ? out : err, i == 0 ? on_stdout : NULL,
                       user_data)) {
                close(fds[i]);
                fds[i] = -1;
            }
        }
        if (cancel_fd >= 0)
            g_cancellable_release_fd(cancellable);
        /* Killed, the child is waited for at once: a grandchild it left
         * may hold the pipes open for as long as it likes. */
        if (cancel_fd >= 0 && (pfd[n - 1].revents & POLLIN)) {
            cancelled = TRUE;
            kill(pid, SIGKILL);
            break;
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    g_spawn_close_pid(pid);

    if (cancelled) {
        g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                            "operation cancelled");
        return FALSE;
    }
    if (wait_status)
        *wait_status = status;
    if (out_stdout)
        *out_stdout = g_string_free(g_steal_pointer(&out), FALSE);
    if (out_stderr)
        *out_stderr = g_string_free(g_steal_pointer(&err), FALSE);
    return TRUE;
}
