/* fs-interrupt.c: which FUSE interrupts the daemon honours. */
#include "fs-interrupt.h"

#include <signal.h>
#include <string.h>

/* The signals whose default action is to continue, stop or nothing:
 * pending, they do not end the caller. */
static guint64
harmless_by_default(void)
{
    static const int sigs[] = {SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP,
                               SIGTTIN, SIGTTOU, SIGURG,  SIGWINCH};
    guint64 mask = 0;

    for (gsize i = 0; i < G_N_ELEMENTS(sigs); i++)
        mask |= G_GUINT64_CONSTANT(1) << (sigs[i] - 1);
    return mask;
}

/* The mask after "@field:\t" in /proc/TID/status (hex, bit N-1 for
 * signal N), 0 when absent. */
static guint64
status_mask(const char *status, const char *field)
{
    g_autofree char *key = g_strconcat("\n", field, ":", NULL);
    const char *at = strstr(status, key);

    if (at == NULL)
        return 0;
    return g_ascii_strtoull(at + strlen(key), NULL, 16);
}

gboolean
fs_interrupt_is_fatal(pid_t tid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status", (int)tid);
    g_autofree char *status = NULL;
    guint64 pending, spared;

    if (tid <= 0 || !g_file_get_contents(path, &status, NULL, NULL))
        return FALSE;
    /* A fatal signal also shows as SIGKILL pending on every thread. */
    pending = status_mask(status, "SigPnd") | status_mask(status, "ShdPnd");
    spared = status_mask(status, "SigBlk") | status_mask(status, "SigIgn") |
             status_mask(status, "SigCgt") | harmless_by_default();
    return (pending & ~spared) != 0 ||
           (pending & (G_GUINT64_CONSTANT(1) << (SIGKILL - 1))) != 0;
}
