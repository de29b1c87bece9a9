/* qmp-client.c: QMP over a unix socket: greeting, capabilities, ids, events, jobs. */
#include "qmp-client.h"

#include <string.h>
#include <gio/gunixsocketaddress.h>

#include "snap-error.h"

/* Keeps a flood of events nobody waits for from growing without bound. */
#define QMP_EVENT_QUEUE_MAX 1024
/* A line longer than this is not QMP but a runaway peer. */
#define QMP_LINE_MAX (64 * 1024 * 1024)
/* How often run_job asks query-jobs for progress. */
#define QMP_PROGRESS_INTERVAL_US (200 * G_TIME_SPAN_MILLISECOND)
/* For the steps after a job ends (query, dismiss) or is abandoned
 * (cancel): they should be instant, and must not eat the job's own time. */
#define QMP_CLEANUP_MS 2000
#define QMP_CLEANUP_TIMEOUT_MS qmp_timeout_cap(QMP_CLEANUP_MS)

struct _QmpClient {
    GSocket *socket;
    GByteArray *inbuf; /* received bytes not yet ending in '\n' */
    JsonParser *parser;
    guint64 next_id;
    guint version[3];
    gboolean greeted;
    char *broken; /* why the client is unusable; NULL while it is fine */
    char *last_error_class;
    GQueue events; /* QmpEvent *, oldest first */
    QmpEventFunc event_func;
    gpointer event_data;
    GDestroyNotify event_destroy;
    gboolean unsettled;     /* a job was given up on before it was dismissed */
    const char *pending_id; /* the id of the command awaiting its reply */
    JsonObject *reply;      /* that reply, once read */
};

/* What a wait on the socket ended with. */
typedef enum {
    QMP_IO_OK,
    QMP_IO_TIMEOUT,
    QMP_IO_CANCELLED,
    QMP_IO_BROKEN,
} QmpIo;

void
qmp_event_free(QmpEvent *event)
{
    if (event == NULL)
        return;
    g_free(event->name);
    g_clear_pointer(&event->data, json_object_unref);
    g_free(event);
}

gboolean
qmp_event_match_name(const QmpEvent *event, gpointer name)
{
    return g_strcmp0(event->name, name) == 0;
}

guint
qmp_timeout_cap(guint timeout_ms)
{
    static gsize once;
    static guint cap = G_MAXUINT;

    if (g_once_init_enter(&once)) {
        const char *env = g_getenv(QMP_TIMEOUT_ENV);
        guint64 value = env ? g_ascii_strtoull(env, NULL, 10) : 0;

        if (value > 0 && value < G_MAXUINT)
            cap = (guint)value;
        g_once_init_leave(&once, 1);
    }
    return MIN(timeout_ms, cap);
}

static gint64
qmp_deadline(guint timeout_ms)
{
    timeout_ms = qmp_timeout_cap(timeout_ms);
    if (timeout_ms == QMP_CLIENT_WAIT_FOREVER)
        return G_MAXINT64;
    return g_get_monotonic_time() + (gint64)timeout_ms * G_TIME_SPAN_MILLISECOND;
}

/* Marks the client unusable (the first reason wins) and closes the socket,
 * so that QEMU sees the monitor go away too. */
static void qmp_break(QmpClient *c, const char *format, ...) G_GNUC_PRINTF(2, 3);

static void
qmp_break(QmpClient *c, const char *format, ...)
{
    va_list ap;

    if (c->broken)
        return;
    va_start(ap, format);
    c->broken = g_strdup_vprintf(format, ap);
    va_end(ap);
    g_debug("QMP: connection unusable: %s", c->broken);
    g_socket_close(c->socket, NULL);
}

static gboolean
qmp_fail_broken(QmpClient *c, GError **error)
{
    g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_QEMU, c->broken);
    return FALSE;
}

/* Typed member access that tolerates anything a peer may send: json-glib's
 * own getters complain (g_critical) about a member of another type. */
static JsonObject *
qmp_get_object(JsonObject *obj, const char *name)
{
    JsonNode *n = obj ? json_object_get_member(obj, name) : NULL;

    return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static const char *
qmp_get_string(JsonObject *obj, const char *name)
{
    JsonNode *n = obj ? json_object_get_member(obj, name) : NULL;

    return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
               ? json_node_get_string(n)
               : NULL;
}

static gint64
qmp_get_int(JsonObject *obj, const char *name, gint64 fallback)
{
    JsonNode *n = obj ? json_object_get_member(obj, name) : NULL;

    return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64
               ? json_node_get_int(n)
               : fallback;
}

static void
qmp_on_greeting(QmpClient *c, JsonObject *msg)
{
    JsonObject *version =
        qmp_get_object(qmp_get_object(qmp_get_object(msg, "QMP"), "version"), "qemu");

    if (version == NULL) {
        qmp_break(c, "QMP greeting without a QEMU version");
        return;
    }
    c->version[0] = (guint)CLAMP(qmp_get_int(version, "major", 0), 0, G_MAXUINT);
    c->version[1] = (guint)CLAMP(qmp_get_int(version, "minor", 0), 0, G_MAXUINT);
    c->version[2] = (guint)CLAMP(qmp_get_int(version, "micro", 0), 0, G_MAXUINT);
    c->greeted = TRUE;
}

static void
qmp_on_event(QmpClient *c, JsonObject *msg)
{
    g_autoptr(QmpEvent) event = g_new0(QmpEvent, 1);
    const char *name = qmp_get_string(msg, "event");
    JsonObject *data = qmp_get_object(msg, "data");
    JsonObject *ts = qmp_get_object(msg, "timestamp");

    if (name == NULL) {
        qmp_break(c, "QMP event without a name");
        return;
    }
    event->name = g_strdup(name);
    event->data = data ? json_object_ref(data) : json_object_new();
    event->timestamp_us = -1;
    if (qmp_get_int(ts, "seconds", -1) >= 0)
        event->timestamp_us = qmp_get_int(ts, "seconds", 0) * G_USEC_PER_SEC +
                              qmp_get_int(ts, "microseconds", 0);
    if (c->event_func)
        c->event_func(c, event, c->event_data);
    g_queue_push_tail(&c->events, g_steal_pointer(&event));
    if (g_queue_get_length(&c->events) > QMP_EVENT_QUEUE_MAX) {
        QmpEvent *old = g_queue_pop_head(&c->events);

        g_debug("QMP: event queue full, dropping %s", old->name);
        qmp_event_free(old);
    }
}

static void
qmp_on_reply(QmpClient *c, JsonObject *msg)
{
    const char *id = qmp_get_string(msg, "id");

    /* QEMU echoes our id. It sends none only when it could not read the
     * command at all ("JSON parse error"), which can only concern the one
     * command outstanding. A reply with another id answers a command that
     * timed out earlier: dropping it is what ids are for. */
    if (c->pending_id && c->reply == NULL &&
        (g_strcmp0(id, c->pending_id) == 0 ||
         (!json_object_has_member(msg, "id") && json_object_has_member(msg, "error")))) {
        c->reply = json_object_ref(msg);
        return;
    }
    g_debug("QMP: dropping a reply to no command waiting for it");
}

/* Handles one received line (without its terminator). */
static void
qmp_handle_line(QmpClient *c, const char *line)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonNode) root = NULL;
    JsonObject *msg;

    if (*line == '\0')
        return;
    g_debug("QMP <- %s", line);
    if (!json_parser_load_from_data(c->parser, line, -1, &local)) {
        qmp_break(c, "malformed QMP message from QEMU: %s", local->message);
        return;
    }
    root = json_parser_steal_root(c->parser);
    if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
        qmp_break(c, "malformed QMP message from QEMU: not a JSON object");
        return;
    }
    msg = json_node_get_object(root);
    if (!c->greeted) {
        if (json_object_has_member(msg, "QMP"))
            qmp_on_greeting(c, msg);
        else
            qmp_break(c, "QEMU did not start with the QMP greeting");
    } else if (json_object_has_member(msg, "event")) {
        qmp_on_event(c, msg);
    } else if (json_object_has_member(msg, "return") ||
               json_object_has_member(msg, "error")) {
        qmp_on_reply(c, msg);
    } else {
        qmp_break(c, "unexpected QMP message from QEMU: %s", line);
    }
}

/* Handles every complete line in the input buffer. */
static void
qmp_process_lines(QmpClient *c)
{
    gsize start = 0;

    while (c->broken == NULL && start < c->inbuf->len) {
        guint8 *nl = memchr(c->inbuf->data + start, '\n', c->inbuf->len - start);
        gsize end;

        if (nl == NULL)
            break;
        end = nl - c->inbuf->data;
        *nl = '\0';
        /* QEMU ends lines with "\r\n"; the JSON parser would take the '\r'
         * as whitespace, but the debug log should not show it. */
        if (end > start && c->inbuf->data[end - 1] == '\r')
            c->inbuf->data[end - 1] = '\0';
        qmp_handle_line(c, (const char *)c->inbuf->data + start);
        start = end + 1;
    }
    if (c->broken)
        g_byte_array_set_size(c->inbuf, 0);
    else
        g_byte_array_remove_range(c->inbuf, 0, start);
}

static gint64
qmp_remaining_us(gint64 deadline)
{
    gint64 left;

    if (deadline == G_MAXINT64)
        return -1;
    /* Rounded up to whole milliseconds, which is what poll() sees: rounded
     * down, a wait would end just before its deadline. */
    left = MAX(deadline - g_get_monotonic_time(), 0);
    return (left + 999) / 1000 * 1000;
}

/* Waits until the socket is ready for @condition, the deadline passes or
 * @cancellable fires. */
static QmpIo
qmp_wait_socket(QmpClient *c, GIOCondition condition, gint64 deadline,
                GCancellable *cancellable)
{
    g_autoptr(GError) local = NULL;

    if (g_socket_condition_timed_wait(c->socket, condition, qmp_remaining_us(deadline),
                                      cancellable, &local))
        return QMP_IO_OK;
    if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
        return QMP_IO_TIMEOUT;
    if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return QMP_IO_CANCELLED;
    qmp_break(c, "lost the QMP connection: %s", local->message);
    return QMP_IO_BROKEN;
}

/* Reads once (waiting until the deadline for data) and handles the
 * complete lines that came. */
static QmpIo
qmp_read_some(QmpClient *c, gint64 deadline, GCancellable *cancellable)
{
    g_autoptr(GError) local = NULL;
    guint8 buf[8192];
    gssize n;
    QmpIo io;

    if (c->broken)
        return QMP_IO_BROKEN;
    io = qmp_wait_socket(c, G_IO_IN, deadline, cancellable);
    if (io != QMP_IO_OK)
        return io;
    n = g_socket_receive(c->socket, (char *)buf, sizeof(buf), NULL, &local);
    if (n < 0) {
        if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            return QMP_IO_OK;
        /* QEMU exiting may reset the connection rather than close it (7.2
         * does after "quit"): for us that is a close all the same. */
        if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
            qmp_break(c, "QEMU closed the monitor connection");
        else
            qmp_break(c, "lost the QMP connection: %s", local->message);
        return QMP_IO_BROKEN;
    }
    if (n == 0) {
        qmp_break(c, "QEMU closed the monitor connection");
        return QMP_IO_BROKEN;
    }
    g_byte_array_append(c->inbuf, buf, n);
    qmp_process_lines(c);
    if (c->broken)
        return QMP_IO_BROKEN;
    if (c->inbuf->len > QMP_LINE_MAX) {
        qmp_break(c, "QMP message from QEMU longer than %d bytes", QMP_LINE_MAX);
        return QMP_IO_BROKEN;
    }
    return QMP_IO_OK;
}

static QmpIo
qmp_send(QmpClient *c, const char *data, gsize len, gint64 deadline)
{
    gsize done = 0;

    while (done < len) {
        g_autoptr(GError) local = NULL;
        gssize n;
        QmpIo io = qmp_wait_socket(c, G_IO_OUT, deadline, NULL);

        if (io == QMP_IO_TIMEOUT && done > 0) {
            /* Half a command on the wire would garble the next one. */
            qmp_break(c, "timed out sending a command to QEMU");
            return QMP_IO_BROKEN;
        }
        if (io != QMP_IO_OK)
            return io;
        n = g_socket_send(c->socket, data + done, len - done, NULL, &local);
        if (n < 0) {
            if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
                continue;
            if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE) ||
                g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
                qmp_break(c, "QEMU closed the monitor connection");
            else
                qmp_break(c, "lost the QMP connection: %s", local->message);
            return QMP_IO_BROKEN;
        }
        done += n;
    }
    return QMP_IO_OK;
}

/* Turns a reply into the "return" value, or QEMU's error into @error. */
static JsonNode *
qmp_reply_result(QmpClient *c, JsonObject *reply, GError **error)
{
    JsonObject *err = qmp_get_object(reply, "error");
    const char *desc = qmp_get_string(err, "desc");
    const char *klass = qmp_get_string(err, "class");

    if (!json_object_has_member(reply, "error"))
        return json_object_dup_member(reply, "return");
    c->last_error_class = g_strdup(klass ? klass : "GenericError");
    if (desc && *desc)
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_QEMU, desc);
    else
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU, "QEMU failed (%s)",
                    c->last_error_class);
    return NULL;
}

/* Sends @command and waits for its reply until @deadline; @timeout_ms is
 * only for the message. */
static JsonNode *
qmp_execute_until(QmpClient *c, const char *command, JsonNode *arguments, gint64 deadline,
                  guint timeout_ms, GError **error)
{
    g_autoptr(JsonNode) args = arguments;
    g_autoptr(JsonObject) msg = json_object_new();
    g_autoptr(JsonNode) root = json_node_new(JSON_NODE_OBJECT);
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonObject) reply = NULL;
    g_autofree char *id = NULL;
    g_autofree char *text = NULL;
    g_autofree char *line = NULL;
    gsize len = 0;
    QmpIo io;

    g_clear_pointer(&c->last_error_class, g_free);
    if (c->broken) {
        qmp_fail_broken(c, error);
        return NULL;
    }

    id = g_strdup_printf("snaptreefs-%" G_GUINT64_FORMAT, ++c->next_id);
    json_object_set_string_member(msg, "execute", command);
    if (args)
        json_object_set_member(msg, "arguments", g_steal_pointer(&args));
    json_object_set_string_member(msg, "id", id);
    json_node_set_object(root, msg);
    json_generator_set_root(gen, root);
    text = json_generator_to_data(gen, &len);
    g_debug("QMP -> %s", text);
    line = g_strconcat(text, "\r\n", NULL);

    io = qmp_send(c, line, len + 2, deadline);
    c->pending_id = id;
    /* Every read handles all the complete lines it brought, so what is
     * buffered now is at most the start of one. */
    while (io == QMP_IO_OK && c->reply == NULL)
        io = qmp_read_some(c, deadline, NULL);
    c->pending_id = NULL;
    reply = g_steal_pointer(&c->reply);

    if (reply)
        return qmp_reply_result(c, reply, error);
    if (io == QMP_IO_BROKEN) {
        qmp_fail_broken(c, error);
        return NULL;
    }
    g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                "QEMU did not answer '%s' within %u ms", command, timeout_ms);
    return NULL;
}

JsonNode *
qmp_client_execute(QmpClient *c, const char *command, JsonNode *arguments,
                   guint timeout_ms, GError **error)
{
    g_return_val_if_fail(c != NULL && command != NULL, NULL);
    g_return_val_if_fail(arguments == NULL || JSON_NODE_HOLDS_OBJECT(arguments), NULL);

    timeout_ms = qmp_timeout_cap(timeout_ms);
    return qmp_execute_until(c, command, arguments, qmp_deadline(timeout_ms), timeout_ms,
                             error);
}

QmpClient *
qmp_client_connect(const char *socket_path, guint timeout_ms, GError **error)
{
    g_autoptr(QmpClient) c = g_new0(QmpClient, 1);
    g_autoptr(GSocketAddress) addr = NULL;
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonNode) ret = NULL;
    gint64 deadline;
    gint64 refused_until;
    QmpIo io = QMP_IO_OK;

    timeout_ms = qmp_timeout_cap(timeout_ms);
    deadline = qmp_deadline(timeout_ms);
    c->inbuf = g_byte_array_new();
    c->parser = json_parser_new();
    g_queue_init(&c->events);
    c->socket = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                             G_SOCKET_PROTOCOL_DEFAULT, &local);
    if (c->socket == NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU, "cannot create a socket: %s",
                    local->message);
        return NULL;
    }
    addr = g_unix_socket_address_new(socket_path);
    /* A unix socket connect either succeeds or fails at once; only the
     * conversation after it can hang. A QEMU still starting has bound its
     * socket but may not listen yet: refused is tried again for a while
     * (a socket nobody listens on any more stays refused). */
    refused_until = MIN(deadline, g_get_monotonic_time() + 2 * G_TIME_SPAN_SECOND);
    while (!g_socket_connect(c->socket, addr, NULL, &local)) {
        if (!g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED) ||
            g_get_monotonic_time() >= refused_until) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                        "cannot connect to QMP socket %s: %s", socket_path,
                        local->message);
            return NULL;
        }
        g_clear_error(&local);
        g_usleep(10 * G_TIME_SPAN_MILLISECOND);
    }
    g_socket_set_blocking(c->socket, FALSE);
    g_debug("QMP: connected to %s", socket_path);

    while (!c->greeted && io == QMP_IO_OK)
        io = qmp_read_some(c, deadline, NULL);
    if (io == QMP_IO_TIMEOUT) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                    "no QMP greeting on %s within %u ms", socket_path, timeout_ms);
        return NULL;
    }
    if (io != QMP_IO_OK) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU, "QMP socket %s: %s", socket_path,
                    c->broken);
        return NULL;
    }
    ret = qmp_execute_until(c, "qmp_capabilities", NULL, deadline, timeout_ms, error);
    if (ret == NULL) {
        g_prefix_error(error, "QMP socket %s: ", socket_path);
        return NULL;
    }
    return g_steal_pointer(&c);
}

void
qmp_client_free(QmpClient *c)
{
    if (c == NULL)
        return;
    if (c->socket) {
        g_socket_close(c->socket, NULL);
        g_object_unref(c->socket);
    }
    if (c->inbuf)
        g_byte_array_unref(c->inbuf);
    g_clear_object(&c->parser);
    g_queue_clear_full(&c->events, (GDestroyNotify)qmp_event_free);
    if (c->event_destroy)
        c->event_destroy(c->event_data);
    g_clear_pointer(&c->reply, json_object_unref);
    g_free(c->broken);
    g_free(c->last_error_class);
    g_free(c);
}

void
qmp_client_get_version(QmpClient *c, guint *major, guint *minor, guint *micro)
{
    if (major)
        *major = c->version[0];
    if (minor)
        *minor = c->version[1];
    if (micro)
        *micro = c->version[2];
}

gboolean
qmp_client_version_at_least(QmpClient *c, guint major, guint minor)
{
    return c->version[0] > major || (c->version[0] == major && c->version[1] >= minor);
}

gboolean
qmp_client_poll(QmpClient *c, guint timeout_ms, GError **error)
{
    gint64 deadline = qmp_deadline(timeout_ms);
    QmpIo io = QMP_IO_OK;

    /* Until the deadline, and then on while data is already waiting (within
     * reason, should QEMU never pause), so that a burst of events and an
     * EOF behind it are all seen. */
    for (guint i = 0; io == QMP_IO_OK && (i < 64 || g_get_monotonic_time() < deadline);
         i++)
        io = qmp_read_some(c, deadline, NULL);
    if (io == QMP_IO_BROKEN)
        return qmp_fail_broken(c, error);
    return TRUE;
}

gboolean
qmp_client_is_connected(QmpClient *c)
{
    return qmp_client_poll(c, 0, NULL);
}

int
qmp_client_get_fd(QmpClient *c)
{
    return g_socket_get_fd(c->socket);
}

const char *
qmp_client_last_error_class(QmpClient *c)
{
    return c->last_error_class;
}

void
qmp_client_set_event_func(QmpClient *c, QmpEventFunc func, gpointer user_data,
                          GDestroyNotify destroy)
{
    if (c->event_destroy)
        c->event_destroy(c->event_data);
    c->event_func = func;
    c->event_data = user_data;
    c->event_destroy = destroy;
}

void
qmp_client_clear_events(QmpClient *c)
{
    g_queue_clear_full(&c->events, (GDestroyNotify)qmp_event_free);
    g_queue_init(&c->events);
}

/* Removes and returns the oldest queued event @match accepts. */
static QmpEvent *
qmp_take_event(QmpClient *c, QmpEventMatch match, gpointer match_data)
{
    for (GList *l = c->events.head; l; l = l->next) {
        QmpEvent *event = l->data;

        if (match == NULL || match(event, match_data)) {
            g_queue_delete_link(&c->events, l);
            return event;
        }
    }
    return NULL;
}

static QmpIo
qmp_wait_event_until(QmpClient *c, QmpEventMatch match, gpointer match_data,
                     gint64 deadline, GCancellable *cancellable, QmpEvent **out)
{
    for (;;) {
        QmpIo io;

        *out = qmp_take_event(c, match, match_data);
        if (*out)
            return QMP_IO_OK;
        io = qmp_read_some(c, deadline, cancellable);
        if (io != QMP_IO_OK)
            return io;
    }
}

QmpEvent *
qmp_client_wait_event(QmpClient *c, QmpEventMatch match, gpointer match_data,
                      guint timeout_ms, GError **error)
{
    QmpEvent *event = NULL;
    QmpIo io;

    timeout_ms = qmp_timeout_cap(timeout_ms);
    io = qmp_wait_event_until(c, match, match_data, qmp_deadline(timeout_ms), NULL,
                              &event);

    if (io == QMP_IO_BROKEN) {
        qmp_fail_broken(c, error);
        return NULL;
    }
    if (io == QMP_IO_TIMEOUT)
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                    "no matching QMP event within %u ms", timeout_ms);
    return event;
}

static gboolean
qmp_match_job(const QmpEvent *event, gpointer job_id)
{
    return strcmp(event->name, "JOB_STATUS_CHANGE") == 0 &&
           g_strcmp0(qmp_get_string(event->data, "id"), job_id) == 0;
}

static JsonNode *
qmp_job_id_args(const char *job_id)
{
    JsonNode *node = json_node_new(JSON_NODE_OBJECT);
    g_autoptr(JsonObject) obj = json_object_new();

    json_object_set_string_member(obj, "id", job_id);
    json_node_set_object(node, obj);
    return node;
}

/* The job's entry in query-jobs, or NULL (with @error only when the query
 * itself failed). (transfer full) */
static JsonObject *
qmp_query_job(QmpClient *c, const char *job_id, GError **error)
{
    g_autoptr(JsonNode) jobs =
        qmp_execute_until(c, "query-jobs", NULL, qmp_deadline(QMP_CLEANUP_TIMEOUT_MS),
                          QMP_CLEANUP_TIMEOUT_MS, error);
    JsonArray *array =
        jobs && JSON_NODE_HOLDS_ARRAY(jobs) ? json_node_get_array(jobs) : NULL;

    for (guint i = 0; array && i < json_array_get_length(array); i++) {
        JsonNode *n = json_array_get_element(array, i);
        JsonObject *job = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;

        if (g_strcmp0(qmp_get_string(job, "id"), job_id) == 0)
            return json_object_ref(job);
    }
    return NULL;
}

static void
qmp_report_progress(JsonObject *job, QmpProgressFunc progress, gpointer progress_data)
{
    gint64 total = qmp_get_int(job, "total-progress", -1);

    if (progress && total >= 0)
        progress((guint64)MAX(qmp_get_int(job, "current-progress", 0), 0), (guint64)total,
                 progress_data);
}

static gboolean
qmp_dismiss_job(QmpClient *c, const char *job_id, GError **error)
{
    g_autoptr(JsonNode) ret = qmp_execute_until(c, "job-dismiss", qmp_job_id_args(job_id),
                                                qmp_deadline(QMP_CLEANUP_TIMEOUT_MS),
                                                QMP_CLEANUP_TIMEOUT_MS, error);

    return ret != NULL;
}

/* Best effort, for a job we stop waiting for: cancel it, give it a moment
 * to conclude, and dismiss it so that its id can be used again. TRUE when
 * it concluded without an error after all. */
static gboolean
qmp_abandon_job(QmpClient *c, const char *job_id)
{
    g_autoptr(JsonNode) ret = NULL;
    g_autoptr(JsonObject) job = NULL;
    gint64 deadline = qmp_deadline(QMP_CLEANUP_TIMEOUT_MS);
    gboolean ok;

    /* Until it is dismissed below, the job may still run (QEMU not
     * answering now may resume later): the next job waits for it. */
    c->unsettled = TRUE;
    ret = qmp_execute_until(c, "job-cancel", qmp_job_id_args(job_id), deadline,
                            QMP_CLEANUP_TIMEOUT_MS, NULL);
    if (ret == NULL && c->last_error_class == NULL)
        return FALSE; /* QEMU does not answer or is gone: nothing more to try */
    /* An error reply means there is no such job, or it has concluded
     * already; only a cancelled one still has to get there. */
    while (ret) {
        g_autoptr(QmpEvent) event = NULL;
        const char *status;

        if (qmp_wait_event_until(c, qmp_match_job, (gpointer)job_id, deadline, NULL,
                                 &event) != QMP_IO_OK)
            break;
        status = qmp_get_string(event->data, "status");
        if (g_strcmp0(status, "concluded") == 0)
            break;
        if (g_strcmp0(status, "null") == 0)
            return FALSE;
    }
    job = qmp_query_job(c, job_id, NULL);
    if (g_strcmp0(qmp_get_string(job, "status"), "concluded") != 0)
        return FALSE;
    ok = !json_object_has_member(job, "error");
    if (qmp_dismiss_job(c, job_id, NULL))
        c->unsettled = FALSE;
    return ok;
}

/* Waits until every snapshot job QEMU still has (one an earlier call
 * stopped waiting for, when QEMU did not answer in time) has concluded,
 * and dismisses it: its id can be used again, and what it did is done
 * before the next job starts. */
static gboolean
qmp_settle_jobs(QmpClient *c, gint64 deadline, guint timeout_ms, GError **error)
{
    for (;;) {
        g_autoptr(JsonNode) jobs =
            qmp_execute_until(c, "query-jobs", NULL, deadline, timeout_ms, error);
        JsonArray *array =
            jobs && JSON_NODE_HOLDS_ARRAY(jobs) ? json_node_get_array(jobs) : NULL;
        g_autofree char *running = NULL;
        g_autoptr(QmpEvent) event = NULL;

        if (jobs == NULL)
            return FALSE;
        for (guint i = 0; array && i < json_array_get_length(array); i++) {
            JsonNode *n = json_array_get_element(array, i);
            JsonObject *job = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
            const char *id = qmp_get_string(job, "id");
            const char *type = qmp_get_string(job, "type");

            if (id == NULL || type == NULL || !g_str_has_prefix(type, "snapshot-"))
                continue;
            g_debug("QMP: job %s of an earlier call is %s", id,
                    qmp_get_string(job, "status"));
            if (g_strcmp0(qmp_get_string(job, "status"), "concluded") == 0) {
                if (!qmp_dismiss_job(c, id, error))
                    return FALSE;
            } else if (running == NULL) {
                running = g_strdup(id);
            }
        }
        if (running == NULL) {
            c->unsettled = FALSE;
            return TRUE;
        }
        if (qmp_wait_event_until(c, qmp_match_job, running, deadline, NULL, &event) ==
            QMP_IO_BROKEN)
            return qmp_fail_broken(c, error);
        if (event == NULL) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                        "QEMU job '%s' of an earlier operation did not finish within %u "
                        "ms",
                        running, timeout_ms);
            return FALSE;
        }
    }
}

/* qmp_client_run_job() but for the error class, which it sets only for the
 * command itself. */
static gboolean
qmp_run_job(QmpClient *c, const char *command, JsonNode *arguments, const char *job_id,
            guint timeout_ms, QmpProgressFunc progress, gpointer progress_data,
            GCancellable *cancellable, char **command_error_class, GError **error)
{
    g_autoptr(JsonNode) ret = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(GError) local = NULL;
    gint64 deadline = qmp_deadline(timeout_ms);
    gint64 next_progress = g_get_monotonic_time() + QMP_PROGRESS_INTERVAL_US;
    QmpIo io = QMP_IO_OK;
    const char *job_error;
    gboolean dismissed;
    gboolean created = FALSE;

    if (c->unsettled && !qmp_settle_jobs(c, deadline, timeout_ms, error)) {
        if (arguments)
            json_node_unref(arguments);
        return FALSE;
    }
    ret = qmp_execute_until(c, command, arguments, deadline, timeout_ms, error);
    if (ret == NULL) {
        *command_error_class = g_strdup(c->last_error_class);
        /* Only a reply that never came leaves a job that may be running. */
        if (c->broken == NULL && c->last_error_class == NULL)
            qmp_abandon_job(c, job_id);
        return FALSE;
    }

    for (;;) {
        g_autoptr(QmpEvent) event = NULL;
        gint64 until = progress ? MIN(deadline, next_progress) : deadline;
        const char *status;

        io = qmp_wait_event_until(c, qmp_match_job, (gpointer)job_id, until, cancellable,
                                  &event);
        if (io == QMP_IO_TIMEOUT && until < deadline) {
            g_autoptr(JsonObject) running = qmp_query_job(c, job_id, NULL);

            if (c->broken)
                return qmp_fail_broken(c, error);
            qmp_report_progress(running, progress, progress_data);
            next_progress = g_get_monotonic_time() + QMP_PROGRESS_INTERVAL_US;
            continue;
        }
        if (io != QMP_IO_OK)
            break;
        status = qmp_get_string(event->data, "status");
        g_debug("QMP: job %s is %s", job_id, status);
        /* QEMU announces every job it creates before it answers the
         * command. Any event of this id before that is of an earlier job
         * with the same id (its "null" may come after the dismiss's
         * reply), and must not end this one. */
        if (!created) {
            created = g_strcmp0(status, "created") == 0;
            continue;
        }
        if (g_strcmp0(status, "concluded") == 0)
            break;
        /* A job that mirrors into its target (an active block-commit)
         * waits in "ready" to be told to switch over. */
        if (g_strcmp0(status, "ready") == 0) {
            g_autoptr(JsonNode) done = qmp_execute_until(
                c, "job-complete", qmp_job_id_args(job_id), deadline, timeout_ms, error);

            if (done == NULL)
                return FALSE;
            continue;
        }
        if (g_strcmp0(status, "null") == 0) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                        "QEMU job '%s' vanished before it concluded", job_id);
            return FALSE;
        }
    }

    switch (io) {
    case QMP_IO_OK:
        break;
    case QMP_IO_BROKEN:
        return qmp_fail_broken(c, error);
    case QMP_IO_CANCELLED:
        if (qmp_abandon_job(c, job_id))
            return TRUE;
        if (c->broken)
            return qmp_fail_broken(c, error);
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_CANCELLED,
                            "operation cancelled");
        return FALSE;
    case QMP_IO_TIMEOUT:
        qmp_abandon_job(c, job_id);
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                    "QEMU job '%s' (%s) did not finish within %u ms", job_id, command,
                    timeout_ms);
        return FALSE;
    }

    job = qmp_query_job(c, job_id, &local);
    if (job == NULL) {
        if (local)
            g_propagate_error(error, g_steal_pointer(&local));
        else
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                        "QEMU job '%s' is not in query-jobs", job_id);
        return FALSE;
    }
    qmp_report_progress(job, progress, progress_data);
    job_error = qmp_get_string(job, "error");
    /* Dismissed even when it failed, so that its id can be used again. */
    dismissed = qmp_dismiss_job(c, job_id, job_error ? NULL : error);
    if (job_error) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_QEMU, job_error);
        return FALSE;
    }
    return dismissed;
}

gboolean
qmp_client_run_job(QmpClient *c, const char *command, JsonNode *arguments,
                   const char *job_id, guint timeout_ms, QmpProgressFunc progress,
                   gpointer progress_data, GCancellable *cancellable, GError **error)
{
    g_autofree char *command_error_class = NULL;
    gboolean ok;

    g_return_val_if_fail(c != NULL && command != NULL && job_id != NULL, FALSE);
    g_return_val_if_fail(arguments == NULL || JSON_NODE_HOLDS_OBJECT(arguments), FALSE);

    if (g_cancellable_is_cancelled(cancellable)) {
        if (arguments)
            json_node_unref(arguments);
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_CANCELLED,
                            "operation cancelled");
        return FALSE;
    }
    timeout_ms = qmp_timeout_cap(timeout_ms);
    ok = qmp_run_job(c, command, arguments, job_id, timeout_ms, progress, progress_data,
                     cancellable, &command_error_class, error);
    g_free(c->last_error_class);
    c->last_error_class = g_steal_pointer(&command_error_class);
    return ok;
}
