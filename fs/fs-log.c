/* fs-log.c: the daemon's log writer: stderr in the foreground, the journal or syslog once
 * detached. */
#include "fs-log.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <syslog.h>

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

typedef enum {
    FS_LOG_DEFAULT, /* GLib's default writer: stderr (or the journal it is) */
    FS_LOG_JOURNAL,
    FS_LOG_SYSLOG,
} FsLogTarget;

static FsLogTarget log_target = FS_LOG_DEFAULT;
static char *log_ident; /* lives as long as the process: openlog() keeps it */

static const char *
field_string(const GLogField *fields, gsize n_fields, const char *key)
{
    for (gsize i = 0; i < n_fields; i++)
        if (g_strcmp0(fields[i].key, key) == 0 && fields[i].length < 0)
            return fields[i].value;
    return NULL;
}

/* GLib has put the syslog priority (its journal mapping of the level) in
 * PRIORITY; syslog gets the same number. */
static int
syslog_priority(const GLogField *fields, gsize n_fields)
{
    const char *priority = field_string(fields, n_fields, "PRIORITY");

    return priority != NULL ? atoi(priority) & LOG_PRIMASK : LOG_NOTICE;
}

static GLogWriterOutput
write_syslog(const GLogField *fields, gsize n_fields)
{
    const char *message = field_string(fields, n_fields, "MESSAGE");

    syslog(syslog_priority(fields, n_fields), "%s", message != NULL ? message : "");
    return G_LOG_WRITER_HANDLED;
}

/* The journal's own identifier field, so that `journalctl -t snaptreefs`
 * finds the lines whatever the process is called. */
static GLogWriterOutput
write_journal(GLogLevelFlags level, const GLogField *fields, gsize n_fields)
{
    g_autofree GLogField *all = g_new(GLogField, n_fields + 1);

    for (gsize i = 0; i < n_fields; i++)
        all[i] = fields[i];
    all[n_fields] = (GLogField){"SYSLOG_IDENTIFIER", log_ident, -1};
    return g_log_writer_journald(level, all, n_fields + 1, NULL);
}

static GLogWriterOutput
fs_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
              gpointer user_data)
{
    if (log_target == FS_LOG_DEFAULT)
        return g_log_writer_default(level, fields, n_fields, user_data);
    if (g_log_writer_default_would_drop(level,
                                        field_string(fields, n_fields, "GLIB_DOMAIN")))
        return G_LOG_WRITER_HANDLED;
    /* A journal that went away (journald restarting) still has syslog. */
    if (log_target == FS_LOG_JOURNAL &&
        write_journal(level, fields, n_fields) == G_LOG_WRITER_HANDLED)
        return G_LOG_WRITER_HANDLED;
    return write_syslog(fields, n_fields);
}

void
fs_log_init(void)
{
    g_log_set_writer_func(fs_log_writer, NULL, NULL);
}

void
fs_log_daemonized(const char *ident)
{
    struct stat st;

    log_ident = g_strdup(ident);
    openlog(log_ident, LOG_PID, LOG_DAEMON);
    log_target = stat(JOURNAL_SOCKET, &st) == 0 && S_ISSOCK(st.st_mode) ? FS_LOG_JOURNAL
                                                                        : FS_LOG_SYSLOG;
}
