/* test-qmp-client.c: the QMP client against a scripted fake QMP peer on a unix socket. */
#include <string.h>
#include <glib/gstdio.h>
#include <gio/gunixsocketaddress.h>

#include "qmp-client.h"
#include "snap-error.h"

/* ---- the fake peer: plays a script of sends and expected commands ---- */

typedef enum {
    PEER_DONE,       /* end of script: read until the client hangs up */
    PEER_SEND,       /* write text in one write ($ID, $PREV: ids received) */
    PEER_SEND_BYTES, /* write text one byte per write */
    PEER_EXPECT,     /* read one command named text, with arguments args if set */
    PEER_SLEEP,      /* pause for ms */
    PEER_QUIET,      /* pause for ms, during which the client must send nothing */
    PEER_CLOSE,      /* hang up */
} PeerStepKind;

typedef struct {
    PeerStepKind kind;
    const char *text;
    const char *args;
    guint ms;
} PeerStep;

#define SEND(t)                                                                          \
    {                                                                                    \
        PEER_SEND, (t), NULL, 0                                                          \
    }
#define SEND_BYTES(t)                                                                    \
    {                                                                                    \
        PEER_SEND_BYTES, (t), NULL, 0                                                    \
    }
#define EXPECT(c)                                                                        \
    {                                                                                    \
        PEER_EXPECT, (c), NULL, 0                                                        \
    }
#define EXPECT_ARGS(c, a)                                                                \
    {                                                                                    \
        PEER_EXPECT, (c), (a), 0                                                         \
    }
#define SLEEP(ms)                                                                        \
    {                                                                                    \
        PEER_SLEEP, NULL, NULL, (ms)                                                     \
    }
#define QUIET(ms)                                                                        \
    {                                                                                    \
        PEER_QUIET, NULL, NULL, (ms)                                                     \
    }
#define CLOSE                                                                            \
    {                                                                                    \
        PEER_CLOSE, NULL, NULL, 0                                                        \
    }
#define DONE                                                                             \
    {                                                                                    \
        PEER_DONE, NULL, NULL, 0                                                         \
    }

/* What QEMU 7.2 sends, byte for byte. */
#define GREETING_TEXT                                                                    \
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "   \
    "\"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": "              \
    "[\"oob\"]}}\r\n"
#define RETURN_EMPTY "{\"return\": {}, \"id\": $ID}\r\n"
#define GREETING SEND(GREETING_TEXT), EXPECT("qmp_capabilities"), SEND(RETURN_EMPTY)
#define TS "\"timestamp\": {\"seconds\": 1795306513, \"microseconds\": 449559}"
#define EV_STOP "{" TS ", \"event\": \"STOP\"}\r\n"
#define EV_RESUME "{" TS ", \"event\": \"RESUME\"}\r\n"
#define EV_JOB(id, status)                                                               \
    "{" TS ", \"event\": \"JOB_STATUS_CHANGE\", \"data\": {\"status\": \"" status        \
    "\", \"id\": \"" id "\"}}\r\n"

typedef struct {
    char *dir;
    char *path;
    GSocket *listener;
    GSocket *conn;
    const PeerStep *steps;
    GThread *thread;
    GByteArray *buf;
    GPtrArray *ids; /* each command's id, as JSON text */
    GString *failures;
} FakePeer;

static void peer_fail(FakePeer *p, const char *format, ...) G_GNUC_PRINTF(2, 3);

static void
peer_fail(FakePeer *p, const char *format, ...)
{
    va_list ap;

    va_start(ap, format);
    g_string_append_vprintf(p->failures, format, ap);
    va_end(ap);
    g_string_append_c(p->failures, '\n');
}

/* One line from the client, without its terminator; NULL at EOF. */
static char *
peer_read_line(FakePeer *p)
{
    for (;;) {
        guint8 *nl = p->buf->len ? memchr(p->buf->data, '\n', p->buf->len) : NULL;
        g_autoptr(GError) error = NULL;
        char chunk[4096];
        gssize n;

        if (nl) {
            gsize len = nl - p->buf->data;
            char *line = g_strndup((const char *)p->buf->data, len);

            g_byte_array_remove_range(p->buf, 0, len + 1);
            return g_strchomp(line);
        }
        n = g_socket_receive(p->conn, chunk, sizeof(chunk), NULL, &error);
        if (n < 0)
            peer_fail(p, "peer read: %s", error->message);
        if (n <= 0)
            return NULL;
        g_byte_array_append(p->buf, (const guint8 *)chunk, n);
    }
}

static void
peer_write(FakePeer *p, const char *text, gboolean byte_by_byte)
{
    g_autoptr(GString) s = g_string_new(text);
    const char *id = p->ids->len ? p->ids->pdata[p->ids->len - 1] : "null";
    const char *prev = p->ids->len > 1 ? p->ids->pdata[p->ids->len - 2] : "null";
    gsize step = byte_by_byte ? 1 : s->len;

    g_string_replace(s, "$PREV", prev, 0);
    g_string_replace(s, "$ID", id, 0);
    for (gsize off = 0; off < s->len;) {
        g_autoptr(GError) error = NULL;
        gssize n =
            g_socket_send(p->conn, s->str + off, MIN(step, s->len - off), NULL, &error);

        if (n < 0) {
            peer_fail(p, "peer write: %s", error->message);
            return;
        }
        off += n;
        if (byte_by_byte)
            g_usleep(300);
    }
}

static gboolean
peer_expect(FakePeer *p, const PeerStep *step)
{
    g_autofree char *line = peer_read_line(p);
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(JsonGenerator) gen = json_generator_new();
    JsonObject *cmd;
    JsonNode *id;

    if (line == NULL) {
        peer_fail(p, "expected '%s', got EOF", step->text);
        return FALSE;
    }
    if (!json_parser_load_from_data(parser, line, -1, NULL) ||
        !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
        peer_fail(p, "expected '%s', got non-JSON '%s'", step->text, line);
        return FALSE;
    }
    cmd = json_node_get_object(json_parser_get_root(parser));
    if (g_strcmp0(json_object_get_string_member_with_default(cmd, "execute", NULL),
                  step->text) != 0) {
        peer_fail(p, "expected '%s', got '%s'", step->text, line);
        return FALSE;
    }
    if (step->args) {
        g_autoptr(JsonNode) want = json_from_string(step->args, NULL);
        JsonNode *got = json_object_get_member(cmd, "arguments");

        if (got == NULL || !json_node_equal(want, got))
            peer_fail(p, "'%s': expected arguments %s, got '%s'", step->text, step->args,
                      line);
    }
    id = json_object_get_member(cmd, "id");
    if (id == NULL) {
        peer_fail(p, "'%s' came without an id", line);
        return FALSE;
    }
    json_generator_set_root(gen, id);
    g_ptr_array_add(p->ids, json_generator_to_data(gen, NULL));
    return TRUE;
}

static gpointer
peer_thread(gpointer data)
{
    FakePeer *p = data;
    g_autoptr(GError) error = NULL;
    g_autofree char *extra = NULL;
    gboolean closed = FALSE;

    p->conn = g_socket_accept(p->listener, NULL, &error);
    if (p->conn == NULL) {
        peer_fail(p, "accept: %s", error->message);
        return NULL;
    }
    g_socket_set_timeout(p->conn, 10);
    for (const PeerStep *step = p->steps; step->kind != PEER_DONE && !closed; step++) {
        switch (step->kind) {
        case PEER_SEND:
        case PEER_SEND_BYTES:
            peer_write(p, step->text, step->kind == PEER_SEND_BYTES);
            break;
        case PEER_EXPECT:
            if (!peer_expect(p, step))
                closed = TRUE;
            break;
        case PEER_SLEEP:
            g_usleep(step->ms * G_TIME_SPAN_MILLISECOND);
            break;
        case PEER_QUIET:
            if (p->buf->len > 0 ||
                g_socket_condition_timed_wait(
                    p->conn, G_IO_IN, step->ms * G_TIME_SPAN_MILLISECOND, NULL, NULL)) {
                g_autofree char *early = peer_read_line(p);

                peer_fail(p, "expected silence, got '%s'", early ? early : "EOF");
                closed = TRUE;
            }
            break;
        case PEER_CLOSE:
            closed = TRUE;
            break;
        case PEER_DONE:
            break;
        }
    }
    /* Whatever the client sends after the script is a command too many. */
    while (!closed && (extra = peer_read_line(p)) != NULL) {
        peer_fail(p, "unexpected after the script: '%s'", extra);
        g_clear_pointer(&extra, g_free);
    }
    g_socket_close(p->conn, NULL);
    return NULL;
}

static FakePeer *
fake_peer_start(const PeerStep *steps)
{
    FakePeer *p = g_new0(FakePeer, 1);
    g_autoptr(GSocketAddress) addr = NULL;
    g_autoptr(GError) error = NULL;

    p->dir = g_dir_make_tmp("qmp-peer-XXXXXX", &error);
    g_assert_no_error(error);
    p->path = g_build_filename(p->dir, "qmp.sock", NULL);
    p->listener = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                               G_SOCKET_PROTOCOL_DEFAULT, &error);
    g_assert_no_error(error);
    addr = g_unix_socket_address_new(p->path);
    g_assert_true(g_socket_bind(p->listener, addr, TRUE, &error));
    g_assert_true(g_socket_listen(p->listener, &error));
    g_assert_no_error(error);
    g_socket_set_timeout(p->listener, 10);
    p->steps = steps;
    p->buf = g_byte_array_new();
    p->ids = g_ptr_array_new_with_free_func(g_free);
    p->failures = g_string_new(NULL);
    p->thread = g_thread_new("fake-qmp-peer", peer_thread, p);
    return p;
}

/* Waits for the script to end (the client must have hung up or been
 * hung up on), checks it went as written, and cleans up. */
static void
fake_peer_finish(FakePeer *p)
{
    g_thread_join(p->thread);
    g_assert_cmpstr(p->failures->str, ==, "");
    g_clear_object(&p->conn);
    g_socket_close(p->listener, NULL);
    g_object_unref(p->listener);
    g_unlink(p->path);
    g_rmdir(p->dir);
    g_free(p->path);
    g_free(p->dir);
    g_byte_array_unref(p->buf);
    g_ptr_array_unref(p->ids);
    g_string_free(p->failures, TRUE);
    g_free(p);
}

static QmpClient *
connect_ok(FakePeer *p)
{
    g_autoptr(GError) error = NULL;
    QmpClient *c = qmp_client_connect(p->path, 2000, &error);

    g_assert_no_error(error);
    g_assert_nonnull(c);
    return c;
}

static JsonNode *
args(const char *json)
{
    g_autoptr(GError) error = NULL;
    JsonNode *node = json_from_string(json, &error);

    g_assert_no_error(error);
    return node;
}

static gint64
elapsed_ms(gint64 start)
{
    return (g_get_monotonic_time() - start) / G_TIME_SPAN_MILLISECOND;
}

/* Event names seen by the event function, in order. */
static void
record_event(QmpClient *c, const QmpEvent *event, gpointer names)
{
    g_ptr_array_add(names, g_strdup(event->name));
}

static char *
joined(GPtrArray *names)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < names->len; i++)
        g_string_append_printf(s, "%s%s", i ? " " : "", (char *)names->pdata[i]);
    return g_string_free(s, FALSE);
}

/* ---- tests ---- */

static void
test_connect(void)
{
    static const PeerStep steps[] = {GREETING, DONE};
    FakePeer *p = fake_peer_start(steps);
    g_autoptr(QmpClient) c = connect_ok(p);
    guint major = 0, minor = 0, micro = 0;

    qmp_client_get_version(c, &major, &minor, &micro);
    g_assert_cmpuint(major, ==, 7);
    g_assert_cmpuint(minor, ==, 2);
    g_assert_cmpuint(micro, ==, 22);
    g_assert_true(qmp_client_version_at_least(c, 6, 0));
    g_assert_true(qmp_client_version_at_least(c, 7, 2));
    g_assert_false(qmp_client_version_at_least(c, 7, 3));
    g_assert_false(qmp_client_version_at_least(c, 8, 0));
    g_assert_true(qmp_client_is_connected(c));
    g_assert_cmpint(qmp_client_get_fd(c), >=, 0);
    g_clear_pointer(&c, qmp_client_free);
    fake_peer_finish(p);
}

static void
test_ids(void)
{
    static const PeerStep steps[] = {
        GREETING,
        EXPECT("query-status"),
        /* A reply to some other command must not be taken for this one. */
        SEND("{\"return\": {\"status\": \"stale\"}, \"id\": \"snaptreefs-999\"}\r\n"),
        SEND("{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": "
             "$ID}\r\n"),
        EXPECT_ARGS("human-monitor-command", "{\"command-line\": \"info name\"}"),
        SEND("{\"return\": \"vm1\\r\\n\", \"id\": $ID}\r\n"),
        DONE,
    };
    FakePeer *p = fake_peer_start(steps);
    g_autoptr(QmpClient) c = connect_ok(p);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) status = NULL;
    g_autoptr(JsonNode) name = NULL;

    status = qmp_client_execute(c, "query-status", NULL, 2000, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(json_object_get_string_member(json_node_get_object(status), "status"),
                    ==, "running");
    name = qmp_client_execute(c, "human-monitor-command",
                              args("{\"command-line\": \"info name\"}"), 2000, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(json_node_get_string(name), ==, "vm1\r\n");
    g_assert_null(qmp_client_last_error_class(c));
    g_clear_pointer(&c, qmp_client_free);

    g_assert_cmpuint(p->ids->len, ==, 3);
    g_assert_cmpstr(p->ids->pdata[0], !=, p->ids->pdata[1]);
    g_assert_cmpstr(p->ids->pdata[1], !=, p->ids->pdata[2]);
    g_assert_cmpstr(p->ids->pdata[0], !=, p->ids->pdata[2]);
    fake_peer_finish(p);
}

static void
test_split_reply(void)
{
    static const PeerStep steps[] = {
        SEND_BYTES(GREETING_TEXT),
        EXPECT("qmp_capabilities"),
        SEND_BYTES(RETURN_EMPTY),
        EXPECT("query-status"),
        SEND_BYTES(
            "{\"return\": {\"status\": \"paused\", \"running\": false}, \"id\": $ID}"
            "\r\n"),
        DONE,
    };
    FakePeer *p = fake_peer_start(steps);
    g_autoptr(QmpClient) c = connect_ok(p);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = qmp_client_execute(c, "query-status", NULL, 5000, &error);

    g_assert_no_error(error);
    g_assert_cmpstr(json_object_get_string_member(json_node_get_object(ret), "status"),
                    ==, "paused");
    g_clear_pointer(&c, qmp_client_free);
    fake_peer_finish(p);
}

static void
test_joined_lines(void)
{
    static const PeerStep steps[] = {
        GREETING,
        EXPECT("stop"),
        /* Event, reply and half of the next event in one write. */
        SEND(EV_STOP RETURN_EMPTY "{" TS ", \"event\": \"RES"),
        EXPECT("cont"),
        SEND("UME\"}\r\n" RETURN_EMPTY EV_RESUME),
        DONE,
    };
    FakePeer *p = fake_peer_start(steps);
    g_autoptr(QmpClient) c = connect_ok(p);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) r1 = NULL;
    g_autoptr(JsonNode) r2 = NULL;
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *seen = NULL;

    qmp_client_set_event_func(c, record_event, g_ptr_array_ref(names),
                              (GDestroyNotify)g_ptr_array_unref);
    r1 = qmp_client_execute(c, "stop", NULL, 2000, &error);
    g_assert_no_error(error);
    g_assert_true(JSON_NODE_HOLDS_OBJECT(r1));
    g_assert_cmpuint(json_object_get_size(json_node_get_object(r1)), ==, 0);
    seen = joined(names);
    g_assert_cmpstr(seen, ==, "STOP");
    g_clear_pointer(&seen, g_free);

    r2 = qmp_client_execute(c, "cont", NULL, 2000, &error);
    g_assert_no_error(error);
    g_assert_nonnull(r2);
    /* The event after the reply may reach the socket after the reply's
     * read returned: it is read by the next call, here a poll. */
    for (guint i = 0; i < 20 && names->len < 3; i++) {
        g_assert_true(qmp_client_poll(c, 100, &error));
        g_assert_no_error(error);
    }
    seen = joined(names);
    g_assert_cmpstr(seen, ==, "STOP RESUME RESUME");
    g_clear_pointer(&c, qmp_client_free);
    fake_peer_finish(p);
}

static void
test_events_between(void)
{
    static const PeerStep steps[] = {
        GREETING,
        EXPECT_ARGS("snapshot-save", "{\"job-id\": \"j\", \"tag\": \"t\"}"),
        SEND(EV_STOP),
        SLEEP(20),
        SEND(EV_RESUME),
        SLEEP(20),
        /* An event whose data carries the command's own id is still an event. */
        SEND("{" TS ", \"event\": \"JOB_STATUS_CHANGE\", "
             "\"data\": {\"status\": \"created\", \"id\": $ID}}\r\n"),
        SLEEP(20),
        SEND("{\"event\": \"BARE\"}\r\n"),
        SEND("{\"return\": {\"done\": 1}, \"id\": $ID}\r\n"),
        DONE,
    };
    FakePeer *p = fake_peer_start(steps);
    g_autoptr(QmpClient) c = connect_ok(p);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = NULL;
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *seen = NULL;
    g_autoptr(QmpEvent) resume = NULL;
    g_autoptr(QmpEvent) stop = NULL;
    g_autoptr(QmpEvent) job = NULL;
    g_autoptr(QmpEvent) bare = NULL;
    g_autoptr(QmpEvent) none = NULL;

    qmp_client_set_event_func(c, record_event, g_ptr_array_ref(names),
                              (GDestroyNotify)g_ptr_array_unref);
    ret = qmp_client_execute(c, "snapshot-save",
                             args("{\"job-id\": \"j\", \"tag\": \"t\"}"), 2000, &error);
    g_assert_no_error(error);
    g_assert_cmpint(json_object_get_int_member(json_node_get_object(ret), "done"), ==, 1);
    seen = joined(names);
    g_assert_cmpstr(seen, ==, "STOP RESUME JOB_STATUS_CHANGE BARE");

    /* The same events are queued: a match takes the first it accepts. */
    resume = qmp_client_wait_event(c, qmp_event_match_name, "RESUME", 0, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(resume->name, ==, "RESUME");
    g_assert_cmpint(resume->timestamp_us, ==, G_GINT64_CONSTANT(1795306513449559));
    stop = qmp_client_wait_event(c, NULL, NULL, 0, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(stop->name, ==, "STOP");
    g_assert_cmpuint(json_object_get_size(stop->data), ==, 0);
    job = qmp_client_wait_event(c, NULL, NULL, 0, &error);
    g_assert_cmpstr(job->name, ==, "JOB_STATUS_CHANGE");
    g_assert_cmpstr(json_object_get_string_member(job->data, "status"), ==, "created");
    g_assert_cmpstr(json_object_get_string_member(job->data, "id"), ==, "snaptreefs-2");
    bare = qmp_client_wait_event(c, NULL, NULL, 0, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(bare->name, ==, "BARE");
    g_assert_cmpint(bare->timestamp_us, ==, -1);
    g_assert_nonnull(bare->data);
    none = qmp_client_wait_event(c, NULL, NULL, 0, &error);
    g_assert_null(none);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_clear_pointer(&c, qmp_client_free);
    fake_peer_finish(p);
}

static void
test_error_reply(void)
{
    static const PeerStep steps[] = {
        GREETING,
        EXPECT("nosuch"),
        SEND("{\"id\": $ID, \"error\": {\"class\": \"CommandNotFound\", "
             "\"desc\": \"The command nosuch has not been found\"}}\r\n"),
        EXPECT("job-dismiss"),
        SEND("{\"error\": {\"class\": \"DeviceNotFound\"}, \"id\": $ID}\r\n"),
        /* QEMU answers a command it could not parse without an id. */
        EXPECT("query-status"),
        SEND("{\"error\": {\"class\": \"GenericError\", "
             "\"desc\": \"JSON parse error, invalid keyword 'bad'\"}}\r\n"),
        EXPECT("query-status"),
        SEND(
            "{\"return\": {\"status\": \"running\"}, \"id\": $ID, \"unknown\": [1]}\r\n"),
        DONE,
    };
    FakePeer *p = fake_peer_start(steps);
    g_autoptr(QmpClient) c = connect_ok(p);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = NULL;

    ret = qmp_client_execute(c, "nosuch", NULL, 2000, &error);
    g_assert_null(ret);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_cmpstr(error->message, ==, "The command nosuch has not been found");
    g_assert_cmpstr(qmp_client_last_error_class(c), ==, "CommandNotFound");
    g_clear_error(&error);

    ret = qmp_client_execute(c, "job-dismiss", args("{\"id\": \"x\"}"), 2000, &error);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_cmpstr(error->message, ==, "QEMU failed (DeviceNotFound)");
    g_assert_cmpstr(qmp_client_last_error_class(c), ==, "DeviceNotFound");
    g_clear_error(&error);

    ret = qmp_client_execute(c, "query-status", NULL, 2000, &error);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_cmpstr(error->message, ==, "JSON parse error, invalid keyword 'bad'");
    g_assert_cmpstr(qmp_client_last_error_class(c), ==, "GenericError");
    g_clear_error(&error);

    /* An error reply leaves the connection usable. */
    ret = qmp_client_execute(c, "query-status", NULL, 2000, &error);
    g_assert_no_error(error);
    g_assert_nonnull(ret);
    g_assert_null(qmp_client_last_error_class(c));
    g_assert_true(qmp_client_is_connected(c));
    g_clear_pointer(&c, qmp_client_free);
    fake_peer_finish(p);
}

/* After the client broke, every call fails at once with @message. */
static void
assert_unusable(QmpClient *c, const char *message)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = NULL;
    g_autoptr(QmpEvent) event = NULL;
    gint64 start = g_get_monotonic_time();

    g_assert_false(qmp_client_is_connected(c));
    ret = qmp_client_execute(c, "query-status", NULL, 60000, &error);
    g_assert_null(ret);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_cmpstr(error->message, ==, message);
    g_clear_error(&error);
    event = qmp_client_wait_event(c, NULL, NULL, 60000, &error);
    g_assert_null(event);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_clear_error(&error);
    g_assert_false(qmp_client_run_job(c, "snapshot-save", NULL, "j", 60000, NULL, NULL,
                                      NULL, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_clear_error(&error);
    g_assert_false(qmp_client_poll(c, 60000, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    /* At once, not after the 60 s timeout (a bound far from any load). */
    g_assert_cmpint(elapsed_ms(start), <, 30000);
}

static void
test_eof_mid_reply(void)
{
    static const PeerStep steps[] = {
        GREETING,
        EXPECT("query-status"),
        SEND("{\"return\": {\"status\": \"run"),
        CLOSE,
    };
    FakePeer *p = fake_peer_start(steps);
    g_autoptr(QmpClient) c = connect_ok(p);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = qmp_client_execute(c, "query-status", NULL, 5000, &error);

    g_assert_null(ret);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_cmpstr(error->message, ==, "QEMU closed the monitor connection");
    g_assert_null(qmp_client_last_error_class(c));
    assert_unusable(c, "QEMU closed the monitor connection");
    g_clear_pointer(&c, qmp_client_free);
    fake_peer_finish(p);
}

typedef struct {
    const char *line;
    const char *message; /* the error message starts with this */
} MalformedCase;

static const MalformedCase malformed_cases[] = {
    {"{\"return\": nope, \"id\": $ID}", "malformed QMP message from QEMU: "},
    {"{\"return\": {}, \"id\": $ID", "malformed QMP message from QEMU: "},
    {"[1, 2]", "malformed QMP message from QEMU: not a JSON object"},
    {"\"just a string\"", "malformed QMP message from QEMU: not a JSON object"},
    {"{\"neither\": 1}", "unexpected QMP message from QEMU: {\"neither\": 1}"},
    {"{\"event\": 42}", "QMP event without a name"},
    {"{\"ret\xff\": 1}", "malformed QMP message from QEMU: "},
};

static void
test_malformed(gconstpointer data)
{
    const MalformedCase *mc = data;
    g_autofree char *line = g_strconcat(mc->line, "\r\n", NULL);
    const PeerStep steps[] = {
        GREETING,
        EXPECT("query-status"),
        SEND(line),
        DONE,
    };
    FakePeer *p = fake_peer_start(steps);
    g_autoptr(QmpClient) c = connect_ok(p);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = qmp_client_execute(c, "query-status", NULL, 5000, &error);

    g_assert_null(ret);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_true(g_str_has_prefix(error->message, mc->message));
    assert_unusable(c, error->message);
    g_clear_pointer(&c, qmp_client_free);
    fake_peer_finish(p);
}

static void
test_timeout(void)
{
    static const PeerStep steps[] = {
        GREETING,
        EXPECT("query-status"), /* never answered in time */
        EXPECT("query-name"),
        SEND("{\"return\": {\"status\": \"late\"}, \"id\": $PREV}\r\n"),
        SEND("{\"return\": {\"name\": \"vm\"}, \"id\": $ID}\r\n"),
        DONE,
    };
    FakePeer *p = fake_peer_start(steps);
    g_autoptr(QmpClient) c = connect_ok(p);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = NULL;
    gint64 start = g_get_monotonic_time();

    ret = qmp_client_execute(c, "query-status", NULL, 200, &error);
    g_assert_null(ret);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_cmpstr(error->message, ==,
                    "QEMU did not answer 'query-status' within 200 ms");
    g_assert_cmpint(elapsed_ms(start), >=, 200);
    g_assert_cmpint(elapsed_ms(start), <, 30000); /* it returned */
    g_clear_error(&error);

    /* Still usable, and the late reply is not taken for the next one. */
    g_assert_true(qmp_client_is_connected(c));
    ret = qmp_client_execute(c, "query-name", NULL, 2000, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(json_object_get_string_member(json_node_get_object(ret), "name"), ==,
                    "vm");
    g_clear_pointer(&c, qmp_client_free);
    fake_peer_finish(p);
}

static void
test_connect_no_socket(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(QmpClient) c = qmp_client_connect("/nonexistent/qmp.sock", 200, &error);

    g_assert_null(c);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_true(g_str_has_prefix(
        error->message, "cannot connect to QMP socket /nonexistent/qmp.sock: "));
}

typedef struct {
    PeerStep steps[6];
    const char *message; /* the error message contains this */
} ConnectCase;

static const ConnectCase connect_cases[] = {
    {{CLOSE}, "QEMU closed the monitor connection"},
    {{SEND(RETURN_EMPTY), DONE}, "QEMU did not start with the QMP greeting"},
    {{SEND("{\"QMP\": {\"capabilities\": []}}\r\n"), DONE},
     "QMP greeting without a QEMU version"},
    /* The peer stays silent far longer than the 200 ms timeout. */
    {{SLEEP(3000), DONE}, "no QMP greeting on "},
    {{SEND(GREETING_TEXT), EXPECT("qmp_capabilities"), DONE},
     "QEMU did not answer 'qmp_capabilities' within 200 ms"},
    {{SEND(GREETING_TEXT), EXPECT("qmp_capabilities"),
      SEND("{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Capabilities "
           "negotiation is already complete, command ignored\"}, \"id\": $ID}\r\n"),
      DONE},
     "Capabilities negotiation is already complete, command ignored"},
};

static void
test_connect_fails(gconstpointer data)
{
    const ConnectCase *cc = data;
    FakePeer *p = fake_peer_start(cc->steps);
    g_autoptr(GError) error = NULL;
    gint64 start = g_get_monotonic_time();
    g_autoptr(QmpClient) c = qmp_client_connect(p->path, 200, &error);

    g_assert_null(c);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    if (strstr(error->message, cc->message) == NULL)
        g_error("'%s' does not contain '%s'", error->message, cc->message);
    /* Within the timeout, not when the silent peer gives up. */
    g_assert_cmpint(elapsed_ms(start), <, 2500);
    fake_peer_finish(p);
}

static void
test_wait_event(void)
{
    static const PeerStep steps[] = {
        GREETING,
        SLEEP(50),
        /* a stale reply arriving while no command waits is dropped */
        SEND("{\"return\": {}, \"id\": \"snaptreefs-77\"}\r\n"),
        SEND("{" TS ", \"event\": \"SHUTDOWN\", "
             "\"data\": {\"guest\": true, \"reason\": \"guest-shutdown\"}}\r\n" EV_STOP),
        SLEEP(300),
        SEND(EV_RESUME),
        SLEEP(50),
        SEND("{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": false}}\r\n"),
        CLOSE,
    };
    /* Before the connection: the peer's first 50 ms start with it. */
    gint64 start = g_get_monotonic_time();
    FakePeer *p = fake_peer_start(steps);
    g_autoptr(QmpClient) c = connect_ok(p);
    g_autoptr(GError) error = NULL;
    g_autoptr(QmpEvent) shutdown = NULL;
    g_autoptr(QmpEvent) none = NULL;
    g_autoptr(QmpEvent) last = NULL;
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *seen = NULL;

    qmp_client_set_event_func(c, record_event, g_ptr_array_ref(names),
                              (GDestroyNotify)g_ptr_array_unref);
    shutdown = qmp_client_wait_event(c, qmp_event_match_name, "SHUTDOWN", 2000, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(shutdown->name, ==, "SHUTDOWN");
    g_assert_true(json_object_get_boolean_member(shutdown->data, "guest"));
    g_assert_cmpint(elapsed_ms(start), >=, 50);

    /* STOP came in the same read and is queued; clearing drops it. */
    qmp_client_clear_events(c);
    none = qmp_client_wait_event(c, qmp_event_match_name, "STOP", 100, &error);
    g_assert_null(none);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_cmpstr(error->message, ==, "no matching QMP event within 100 ms");
    g_clear_error(&error);

    /* poll() reads the last events, and the EOF after them. */
    g_assert_false(qmp_client_poll(c, 2000, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_cmpstr(error->message, ==, "QEMU closed the monitor connection");
    g_clear_error(&error);
    seen = joined(names);
    g_assert_cmpstr(seen, ==, "SHUTDOWN STOP RESUME SHUTDOWN");

    /* Queued events outlive the connection. */
    last = qmp_client_wait_event(c, qmp_event_match_name, "SHUTDOWN", 0, &error);
    g_assert_no_error(error);
    g_assert_false(json_object_get_boolean_member(last->data, "guest"));
    g_clear_pointer(&c, qmp_client_free);
    fake_peer_finish(p);
}

/* Appends current, total to a GArray of guint64. */
static void
record_progress(guint64 current, guint64 total, gpointer data)
{
    GArray *calls = data;

    g_array_append_val(calls, current);
    g_array_append_val(calls, total);
}

#define SAVE_ARGS                                                                        \
    "{\"job-id\": \"save1\", \"tag\": \"s1\", \"vmstate\": \"disk0\", "                  \
    "\"devices\": [\"disk0\"]}"
#define JOB_ID_ARGS "{\"id\": \"save1\"}"
#define QUERY_JOBS_REPLY(cur, total, status, extra)                                      \
    "{\"return\": [{\"current-progress\": " #cur ", \"status\": \"" status "\", "        \
    "\"total-progress\": " #total                                                        \
    ", \"type\": \"snapshot-save\", \"id\": \"save1\"" extra "}], \"id\": $ID}\r\n"

static void
test_run_job(void)
{
    static const PeerStep steps[] = {
        SEND(GREETING_TEXT),
        EXPECT("qmp_capabilities"),
        /* leftovers of an earlier job with the same id */
        SEND(EV_JOB("save1", "concluded") RETURN_EMPTY),
        EXPECT_ARGS("snapshot-save", SAVE_ARGS),
        SEND(EV_JOB("save1", "created") EV_JOB("save1", "running") EV_STOP EV_RESUME),
        SEND(EV_JOB("other", "concluded") RETURN_EMPTY),
        /* the stale "concluded" must not make the client query-jobs now */
        QUIET(100),
        SEND(EV_JOB("save1", "waiting") EV_JOB("save1", "pending")),
        SEND(EV_JOB("save1", "concluded")),
        EXPECT("query-jobs"),
        SEND(QUERY_JOBS_REPLY(1, 1, "concluded", "")),
        EXPECT_ARGS("job-dismiss", JOB_ID_ARGS),
        SEND(EV_JOB("save1", "null") RETURN_EMPTY),
        DONE,
    };
    FakePeer *p = fake_peer_start(steps);
    g_autoptr(QmpClient) c = connect_ok(p);
    g_autoptr(GError) error = NULL;
    gint64 start = g_get_monotonic_time();

    /* No progress function: no query-jobs before the job concludes. */
    g_assert_true(qmp_client_run_job(c, "snapshot-save", args(SAVE_ARGS), "save1", 5000,
                                     NULL, NULL, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpint(elapsed_ms(start), >=, 100);
    g_clear_pointer(&c, qmp_client_free);
    fake_peer_finish(p);
}

static void
test_run_job_progress(void)
{
    static const PeerStep steps[] = {
        GREETING,
        EXPECT_ARGS("snapshot-save", SAVE_ARGS),
        SEND(EV_JOB("save1", "created") EV_JOB("save1", "running") RETURN_EMPTY),
        /* nothing for 200 ms: the client asks how far it got */
        EXPECT("query-jobs"),
        SEND(QUERY_JOBS_REPLY(50, 100, "running", "")),
        SEND(EV_JOB("save1", "concluded")),
        EXPECT("query-jobs"),
        SEND(QUERY_JOBS_REPLY(100, 100, "concluded", "")),
        EXPECT_ARGS("job-dismiss", JOB_ID_ARGS),
        SEND(RETURN_EMPTY),
        DONE,
    };
    FakePeer *p = fake_peer_start(steps);
    g_autoptr(QmpClient) c = connect_ok(p);
    g_autoptr(GError) error = NULL;
    g_autoptr(GArray) calls = g_array_new(FALSE, FALSE, sizeof(guint64));
    gint64 start = g_get_monotonic_time();

    g_assert_true(qmp_client_run_job(c, "snapshot-save", args(SAVE_ARGS), "save1", 5000,
                                     record_progress, calls, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpint(elapsed_ms(start), >=, 200);
    g_assert_cmpuint(calls->len, ==, 4);
    g_assert_cmpuint(g_array_index(calls, guint64, 0), ==, 50);
    g_assert_cmpuint(g_array_index(calls, guint64, 1), ==, 100);
    g_assert_cmpuint(g_array_index(calls, guint64, 2), ==, 100);
    g_assert_cmpuint(g_array_index(calls, guint64, 3), ==, 100);
    g_clear_pointer(&c, qmp_client_free);
    fake_peer_finish(p);
}

static void
test_run_job_fails(void)
{
    static const PeerStep steps[] = {
        GREETING,
        EXPECT_ARGS("snapshot-save", SAVE_ARGS),
        SEND(EV_JOB("save1", "created") EV_JOB("save1", "running")
                 RETURN_EMPTY EV_JOB("save1", "aborting") EV_JOB("save1", "concluded")),
        EXPECT("query-jobs"),
        SEND(QUERY_JOBS_REPLY(1, 1, "concluded",
                              ", \"error\": \"Snapshot 's1' already exists in one or "
                              "more devices\"")),
        EXPECT_ARGS("job-dismiss", JOB_ID_ARGS),
        SEND(RETURN_EMPTY),
        /* the next job's command fails by itself: no job to wait for */
        EXPECT_ARGS("snapshot-save", SAVE_ARGS),
        SEND("{\"id\": $ID, \"error\": {\"class\": \"GenericError\", "
             "\"desc\": \"Job ID 'save1' already in use\"}}\r\n"),
        DONE,
    };
    FakePeer *p = fake_peer_start(steps);
    g_autoptr(QmpClient) c = connect_ok(p);
    g_autoptr(GError) error = NULL;

    g_assert_false(qmp_client_run_job(c, "snapshot-save", args(SAVE_ARGS), "save1", 5000,
                                      NULL, NULL, NULL, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_cmpstr(error->message, ==,
                    "Snapshot 's1' already exists in one or more devices");
    g_assert_null(qmp_client_last_error_class(c));
    g_clear_error(&error);

    g_assert_false(qmp_client_run_job(c, "snapshot-save", args(SAVE_ARGS), "save1", 5000,
                                      NULL, NULL, NULL, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_cmpstr(error->message, ==, "Job ID 'save1' already in use");
    g_assert_cmpstr(qmp_client_last_error_class(c), ==, "GenericError");
    g_clear_pointer(&c, qmp_client_free);
    fake_peer_finish(p);
}

static void
test_run_job_timeout(void)
{
    static const PeerStep steps[] = {
        GREETING,
        EXPECT_ARGS("snapshot-save", SAVE_ARGS),
        SEND(EV_JOB("save1", "created") EV_JOB("save1", "running") RETURN_EMPTY),
        EXPECT_ARGS("job-cancel", JOB_ID_ARGS),
        SEND(RETURN_EMPTY EV_JOB("save1", "aborting")),
        SEND(EV_JOB("save1", "concluded")),
        EXPECT("query-jobs"),
        SEND(QUERY_JOBS_REPLY(0, 1, "concluded", ", \"error\": \"Operation cancelled\"")),
        EXPECT_ARGS("job-dismiss", JOB_ID_ARGS),
        SEND(RETURN_EMPTY),
        DONE,
    };
    FakePeer *p = fake_peer_start(steps);
    g_autoptr(QmpClient) c = connect_ok(p);
    g_autoptr(GError) error = NULL;
    gint64 start = g_get_monotonic_time();

    g_assert_false(qmp_client_run_job(c, "snapshot-save", args(SAVE_ARGS), "save1", 300,
                                      NULL, NULL, NULL, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_cmpstr(error->message, ==,
                    "QEMU job 'save1' (snapshot-save) did not finish within 300 ms");
    g_assert_cmpint(elapsed_ms(start), >=, 300);
    g_assert_cmpint(elapsed_ms(start), <, 30000); /* it returned */
    g_assert_true(qmp_client_is_connected(c));
    g_clear_pointer(&c, qmp_client_free);
    fake_peer_finish(p);
}

/* A job whose command QEMU never answered (QEMU stopped) may run when QEMU
 * resumes: the next job waits for it and dismisses it first, and is not
 * ended by that job's events. */
static void
test_run_job_settles_abandoned(void)
{
    static const PeerStep steps[] = {
        GREETING,
        EXPECT_ARGS("snapshot-save", SAVE_ARGS),
        /* no reply: the client gives up and tries to cancel */
        EXPECT_ARGS("job-cancel", JOB_ID_ARGS),
        QUIET(50),
        /* "resumed": the late save runs; the next job must wait for it */
        EXPECT("query-jobs"),
        SEND(QUERY_JOBS_REPLY(0, 1, "running", "")),
        SLEEP(100),
        SEND(EV_JOB("save1", "concluded")),
        EXPECT("query-jobs"),
        SEND(QUERY_JOBS_REPLY(1, 1, "concluded", "")),
        EXPECT_ARGS("job-dismiss", JOB_ID_ARGS),
        SEND(RETURN_EMPTY),
        EXPECT_ARGS("snapshot-save", SAVE_ARGS),
        /* the dismissed job's "null", late: it must not end the new job */
        SEND(EV_JOB("save1", "null") EV_JOB("save1", "created")
                 RETURN_EMPTY EV_JOB("save1", "concluded")),
        EXPECT("query-jobs"),
        SEND(QUERY_JOBS_REPLY(1, 1, "concluded", "")),
        EXPECT_ARGS("job-dismiss", JOB_ID_ARGS),
        SEND(RETURN_EMPTY),
        DONE,
    };
    FakePeer *p = fake_peer_start(steps);
    g_autoptr(QmpClient) c = connect_ok(p);
    g_autoptr(GError) error = NULL;

    g_assert_false(qmp_client_run_job(c, "snapshot-save", args(SAVE_ARGS), "save1", 200,
                                      NULL, NULL, NULL, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_cmpstr(error->message, ==,
                    "QEMU did not answer 'snapshot-save' within 200 ms");
    g_clear_error(&error);
    qmp_client_run_job(c, "snapshot-save", args(SAVE_ARGS), "save1", 5000, NULL, NULL,
                       NULL, &error);
    g_assert_no_error(error);
    g_clear_pointer(&c, qmp_client_free);
    fake_peer_finish(p);
}

static gpointer
cancel_later(gpointer cancellable)
{
    g_usleep(100 * G_TIME_SPAN_MILLISECOND);
    g_cancellable_cancel(cancellable);
    return NULL;
}

/* data: query-jobs' reply after job-cancel: with an error when the job
 * stopped, without when it had gone too far to stop. */
static void
test_run_job_cancel(gconstpointer data)
{
    gboolean stopped = strstr(data, "\"error\"") != NULL;
    const PeerStep steps[] = {
        GREETING,
        EXPECT_ARGS("snapshot-save", SAVE_ARGS),
        SEND(EV_JOB("save1", "created") EV_JOB("save1", "running") RETURN_EMPTY),
        EXPECT_ARGS("job-cancel", JOB_ID_ARGS),
        SEND(RETURN_EMPTY EV_JOB("save1", "concluded")),
        EXPECT("query-jobs"),
        SEND(data),
        EXPECT_ARGS("job-dismiss", JOB_ID_ARGS),
        SEND(RETURN_EMPTY),
        DONE,
    };
    FakePeer *p = fake_peer_start(steps);
    g_autoptr(QmpClient) c = connect_ok(p);
    g_autoptr(GError) error = NULL;
    g_autoptr(GCancellable) cancellable = g_cancellable_new();
    GThread *canceller = g_thread_new("cancel", cancel_later, cancellable);
    gboolean ok = qmp_client_run_job(c, "snapshot-save", args(SAVE_ARGS), "save1", 5000,
                                     NULL, NULL, cancellable, &error);

    g_thread_join(canceller);
    if (stopped) {
        g_assert_false(ok);
        g_assert_error(error, SNAP_ERROR, SNAP_ERROR_CANCELLED);
    } else {
        g_assert_no_error(error);
        g_assert_true(ok);
    }
    g_clear_pointer(&c, qmp_client_free);
    fake_peer_finish(p);
}

static void
test_run_job_cancelled_before(void)
{
    static const PeerStep steps[] = {GREETING, DONE};
    FakePeer *p = fake_peer_start(steps);
    g_autoptr(QmpClient) c = connect_ok(p);
    g_autoptr(GError) error = NULL;
    g_autoptr(GCancellable) cancellable = g_cancellable_new();

    g_cancellable_cancel(cancellable);
    g_assert_false(qmp_client_run_job(c, "snapshot-save", args(SAVE_ARGS), "save1", 5000,
                                      NULL, NULL, cancellable, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_CANCELLED);
    g_clear_pointer(&c, qmp_client_free);
    fake_peer_finish(p); /* fails if anything was sent */
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/qmp/connect", test_connect);
    g_test_add_func("/qmp/connect/no-socket", test_connect_no_socket);
    for (guint i = 0; i < G_N_ELEMENTS(connect_cases); i++) {
        g_autofree char *path = g_strdup_printf("/qmp/connect/fails/%u", i);

        g_test_add_data_func(path, &connect_cases[i], test_connect_fails);
    }
    g_test_add_func("/qmp/ids", test_ids);
    g_test_add_func("/qmp/split-reply", test_split_reply);
    g_test_add_func("/qmp/joined-lines", test_joined_lines);
    g_test_add_func("/qmp/events-between", test_events_between);
    g_test_add_func("/qmp/error-reply", test_error_reply);
    g_test_add_func("/qmp/eof-mid-reply", test_eof_mid_reply);
    for (guint i = 0; i < G_N_ELEMENTS(malformed_cases); i++) {
        g_autofree char *path = g_strdup_printf("/qmp/malformed/%u", i);

        g_test_add_data_func(path, &malformed_cases[i], test_malformed);
    }
    g_test_add_func("/qmp/timeout", test_timeout);
    g_test_add_func("/qmp/wait-event", test_wait_event);
    g_test_add_func("/qmp/run-job/success", test_run_job);
    g_test_add_func("/qmp/run-job/progress", test_run_job_progress);
    g_test_add_func("/qmp/run-job/fails", test_run_job_fails);
    g_test_add_func("/qmp/run-job/timeout", test_run_job_timeout);
    g_test_add_func("/qmp/run-job/settles-abandoned", test_run_job_settles_abandoned);
    g_test_add_data_func(
        "/qmp/run-job/cancel/stopped",
        QUERY_JOBS_REPLY(0, 1, "concluded", ", \"error\": \"Operation cancelled\""),
        test_run_job_cancel);
    g_test_add_data_func("/qmp/run-job/cancel/too-late",
                         QUERY_JOBS_REPLY(1, 1, "concluded", ""), test_run_job_cancel);
    g_test_add_func("/qmp/run-job/cancelled-before", test_run_job_cancelled_before);
    return g_test_run();
}
