/* fs-log.h: where the daemon's log lines go (stderr, the journal or syslog). */
#pragma once

#include <glib.h>

/* Installs the log writer. Until fs_log_daemonized() lines go where GLib's
 * default writer sends them (stderr, or the journal when stderr is one);
 * debug lines only with g_log_set_debug_enabled(TRUE) or G_MESSAGES_DEBUG. */
void fs_log_init(void);

/* Called in the daemon once it has detached (stderr is /dev/null from now
 * on): lines go to the journal when /run/systemd/journal/socket exists,
 * otherwise to syslog (/dev/log), tagged @ident with the pid, at the
 * priority of their GLib level. The lines logged before (while loading),
 * which went to stderr, are written there too. */
void fs_log_daemonized(const char *ident);

/* Called when the daemon stays in the foreground: lines keep going to
 * stderr, and those logged so far are no longer kept for the log. */
void fs_log_foreground(void);
