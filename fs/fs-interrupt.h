/* fs-interrupt.h: which FUSE interrupts the daemon honours. */
#pragma once

#include <sys/types.h>

#include <glib.h>

G_BEGIN_DECLS

/* Whether thread @tid has a signal pending that will kill it: one not
 * blocked, not ignored, not caught, whose default action ends the
 * process (SIGINT from Ctrl-C, SIGTERM, SIGKILL...). The kernel sends
 * FUSE_INTERRUPT for any signal, also one a handler takes (SIGALRM,
 * SIGCHLD, SIGWINCH) after which the call would simply go on; only a
 * caller about to die means to cancel. FALSE when @tid is gone or its
 * /proc status cannot be read. */
gboolean fs_interrupt_is_fatal(pid_t tid);

G_END_DECLS
