/* error-log.h: a domain's `errors` file, the last lines kept in memory. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _ErrorLog ErrorLog;

/* Keeps at most @max_lines lines; older ones drop off. */
ErrorLog *error_log_new(guint max_lines);
void error_log_free(ErrorLog *log);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ErrorLog, error_log_free)

/* @text (an operation, which may quote a snapshot name as the user typed
 * it) made one printable UTF-8 line: invalid bytes become U+FFFD, control
 * characters \uXXXX. (transfer full) */
char *error_log_printable(const char *text);

/* Appends "YYYY-MM-DDTHH:MM:SSZ OPERATION: MESSAGE\n", OPERATION made
 * printable (error_log_printable), newlines inside MESSAGE spaces. Not
 * thread-safe: the caller locks. */
void error_log_add(ErrorLog *log, const char *operation, const char *message);

/* Everything, oldest first. (transfer full) */
GBytes *error_log_contents(ErrorLog *log);
gsize error_log_size(ErrorLog *log);

G_END_DECLS
