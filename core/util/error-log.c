/* error-log.c: the last lines of a domain's `errors` file, kept in memory. */
#include "error-log.h"

#include <string.h>

struct _ErrorLog {
    guint max_lines;
    GQueue lines; /* of char*, each ending in '\n' */
    gsize size;   /* sum of the lines' lengths */
};

ErrorLog *
error_log_new(guint max_lines)
{
    ErrorLog *log = g_new0(ErrorLog, 1);

    log->max_lines = MAX(max_lines, 1);
    g_queue_init(&log->lines);
    return log;
}

void
error_log_free(ErrorLog *log)
{
    if (log == NULL)
        return;
    g_queue_clear_full(&log->lines, g_free);
    g_free(log);
}

char *
error_log_printable(const char *text)
{
    g_autofree char *valid = g_utf8_make_valid(text ? text : "", -1);
    GString *out = g_string_sized_new(strlen(valid));

    for (const char *p = valid; *p != '\0'; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);

        if (c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f))
            g_string_append_printf(out, "\\u%04X", c);
        else
            g_string_append_unichar(out, c);
    }
    return g_string_free(out, FALSE);
}

void
error_log_add(ErrorLog *log, const char *operation, const char *message)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *stamp = g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
    g_autofree char *op = error_log_printable(operation);
    GString *line = g_string_new(stamp);
    gsize start;

    g_string_append_c(line, ' ');
    g_string_append(line, op);
    g_string_append(line, ": ");
    start = line->len;
    g_string_append(line, message ? message : "");
    /* One entry must stay one line, whatever QEMU printed. */
    for (gsize i = start; i < line->len; i++) {
        if (line->str[i] == '\n' || line->str[i] == '\r')
            line->str[i] = ' ';
    }
    g_string_append_c(line, '\n');

    log->size += line->len;
    g_queue_push_tail(&log->lines, g_string_free(line, FALSE));
    while (g_queue_get_length(&log->lines) > log->max_lines) {
        char *old = g_queue_pop_head(&log->lines);

        log->size -= strlen(old);
        g_free(old);
    }
}

GBytes *
error_log_contents(ErrorLog *log)
{
    GString *all = g_string_sized_new(log->size + 1);

    for (GList *l = log->lines.head; l; l = l->next)
        g_string_append(all, l->data);
    return g_string_free_to_bytes(all);
}

gsize
error_log_size(ErrorLog *log)
{
    return log->size;
}
