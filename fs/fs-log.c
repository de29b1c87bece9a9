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

/* A line logged while loading (a fleet host that cannot be reached) goes
 * to stderr, which a daemon that detaches then loses: it is kept until the
 * target is chosen and written there too. */
typedef struct {
    GLogLevelFlags level;
    char *domain;
    char *message;
    char *priority;
} FsLogEarly;

static GMutex early_lock; /* load threads log in parallel */
static GArray *early;     /* of FsLogEarly; NULL once the target is chosen */
static gboolean early_done;

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

static void
keep_early(GLogLevelFlags level, const char *domain, const GLogField *fields,
           gsize n_fields)
{
    g_mutex_lock(&early_lock);
    if (!early_done) {
        FsLogEarly line = {
            .level = level,
            .domain = g_strdup(domain),
            .message = g_strdup(field_string(fields, n_fields, "MESSAGE")),
            .priority = g_strdup(field_string(fields, n_fields, "PRIORITY")),
        };

        if (early == NULL)
            early = g_array_new(FALSE, FALSE, sizeof(FsLogEarly));
        g_array_append_val(early, line);
    }
    g_mutex_unlock(&early_lock);
}

/* Takes the kept lines; none are kept from now on. */
static GArray *
take_early(void)
{
    GArray *lines;

    g_mutex_lock(&early_lock);
    early_done = TRUE;
    lines = g_steal_pointer(&early);
    g_mutex_unlock(&early_lock);
    return lines;
}

static void
free_early(GArray *lines)
{
    for (guint i = 0; lines != NULL && i < lines->len; i++) {
        FsLogEarly *line = &g_array_index(lines, FsLogEarly, i);

        g_free(line->domain);
        g_free(line->message);
        g_free(line->priority);
    }
    if (lines != NULL)
        g_array_free(lines, TRUE);
}

static GLogWriterOutput
fs_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
              gpointer user_data)
{
    const char *domain = field_string(fields, n_fields, "GLIB_DOMAIN");

    if (log_target == FS_LOG_DEFAULT) {
        if (!g_log_writer_default_would_drop(level, domain))
            keep_early(level, domain, fields, n_fields);
        return g_log_writer_default(level, fields, n_fields, user_data);
    }
    if (g_log_writer_default_would_drop(level, domain))
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
    GArray *lines = take_early();

    log_ident = g_strdup(ident);
    openlog(log_ident, LOG_PID, LOG_DAEMON);
    log_target = stat(JOURNAL_SOCKET, &st) == 0 && S_ISSOCK(st.st_mode) ? FS_LOG_JOURNAL
                                                                        : FS_LOG_SYSLOG;
    for (guint i = 0; lines != NULL && i < lines->len; i++) {
        FsLogEarly *line = &g_array_index(lines, FsLogEarly, i);
        GLogField fields[3];
        gsize n = 0;

        fields[n++] = (GLogField){"MESSAGE", line->message ? line->message : "", -1};
        if (line->priority != NULL)
            fields[n++] = (GLogField){"PRIORITY", line->priority, -1};
        if (line->domain != NULL)
            fields[n++] = (GLogField){"GLIB_DOMAIN", line->domain, -1};
        fs_log_writer(line->level, fields, n, NULL);
    }
    free_early(lines);
}

void
fs_log_foreground(void)
{
    free_early(take_early());
}
