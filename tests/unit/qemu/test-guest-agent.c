/* test-guest-agent.c: the guest agent client and the freeze/thaw around a
 * snapshot, against a fake agent on a unix socket that answers as qemu-ga
 * does and counts what it was asked. */
#include <string.h>
#include <glib/gstdio.h>
#include <gio/gunixsocketaddress.h>

#include "guest-agent.h"
#include "snap-error.h"

/* ---- the fake agent ---- */

typedef struct {
    /* behaviour */
    gboolean silent;       /* never answers */
    gboolean freeze_fails; /* guest-fsfreeze-freeze: an error reply */
    gint thaw_failures;    /* the first N thaws: an error reply */
    guint info_delay_ms;   /* guest-info answers after this long */
    /* what it saw (atomic) */
    gint syncs;
    gint pings;
    gint freezes;
    gint thaws;
    gint frozen; /* the guest's filesystems are frozen now */
    /* plumbing */
    char *dir;
    char *path;
    GSocket *listener;
    GThread *thread;
    gint stop;
} FakeAgent;

static void
agent_reply(GSocket *conn, const char *text)
{
    g_autofree char *line = g_strconcat(text, "\n", NULL);
    gsize done = 0;

    while (done < strlen(line)) {
        gssize n = g_socket_send(conn, line + done, strlen(line) - done, NULL, NULL);

        if (n <= 0)
            return;
        done += n;
    }
}

static void
agent_handle(FakeAgent *fa, GSocket *conn, const char *line)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *msg;
    const char *cmd;

    if (!json_parser_load_from_data(parser, line, -1, NULL))
        return;
    msg = json_node_get_object(json_parser_get_root(parser));
    cmd = json_object_get_string_member(msg, "execute");
    if (fa->silent)
        return;
    if (g_str_equal(cmd, "guest-sync")) {
        JsonObject *args = json_object_get_object_member(msg, "arguments");
        g_autofree char *reply = g_strdup_printf("{\"return\": %" G_GINT64_FORMAT "}",
                                                 json_object_get_int_member(args, "id"));

        g_atomic_int_inc(&fa->syncs);
        agent_reply(conn, reply);
    } else if (g_str_equal(cmd, "guest-ping")) {
        g_atomic_int_inc(&fa->pings);
        agent_reply(conn, "{\"return\": {}}");
    } else if (g_str_equal(cmd, "guest-fsfreeze-freeze")) {
        g_atomic_int_inc(&fa->freezes);
        if (fa->freeze_fails) {
            agent_reply(conn, "{\"error\": {\"class\": \"GenericError\", \"desc\": "
                              "\"failed to freeze /: Operation not supported\"}}");
        } else {
            g_atomic_int_set(&fa->frozen, 1);
            agent_reply(conn, "{\"return\": 2}");
        }
    } else if (g_str_equal(cmd, "guest-fsfreeze-thaw")) {
        g_atomic_int_inc(&fa->thaws);
        if (fa->thaw_failures > 0) {
            fa->thaw_failures--;
            agent_reply(conn, "{\"error\": {\"class\": \"GenericError\", \"desc\": "
                              "\"failed to thaw\"}}");
        } else {
            g_atomic_int_set(&fa->frozen, 0);
            agent_reply(conn, "{\"return\": 2}");
        }
    } else if (g_str_equal(cmd, "guest-info")) {
        g_usleep(fa->info_delay_ms * 1000);
        agent_reply(conn, "{\"return\": {\"version\": \"late\"}}");
    } else {
        agent_reply(conn,
                    "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"?\"}}");
    }
}

/* Serves one connection until the client hangs up. */
static void
agent_serve(FakeAgent *fa, GSocket *conn)
{
    g_autoptr(GByteArray) buf = g_byte_array_new();

    for (;;) {
        guint8 *nl;
        char chunk[4096];
        gssize n = g_socket_receive(conn, chunk, sizeof(chunk), NULL, NULL);

        if (n <= 0)
            return;
        for (gssize i = 0; i < n; i++)
            /* 0xFF resets qemu-ga's parser: it is no part of a command. */
            if ((guint8)chunk[i] != 0xff)
                g_byte_array_append(buf, (guint8 *)&chunk[i], 1);
        while (buf->len > 0 && (nl = memchr(buf->data, '\n', buf->len)) != NULL) {
            gsize len = nl - buf->data;
            g_autofree char *line = g_strndup((const char *)buf->data, len);

            g_byte_array_remove_range(buf, 0, len + 1);
            agent_handle(fa, conn, line);
        }
    }
}

static gpointer
agent_thread(gpointer data)
{
    FakeAgent *fa = data;

    while (!g_atomic_int_get(&fa->stop)) {
        g_autoptr(GSocket) conn = NULL;

        if (!g_socket_condition_timed_wait(fa->listener, G_IO_IN, 20000, NULL, NULL))
            continue;
        conn = g_socket_accept(fa->listener, NULL, NULL);
        if (conn != NULL) {
            g_socket_set_blocking(conn, TRUE);
            agent_serve(fa, conn);
        }
    }
    return NULL;
}

static FakeAgent *
agent_start(void)
{
    FakeAgent *fa = g_new0(FakeAgent, 1);
    g_autoptr(GSocketAddress) addr = NULL;

    fa->dir = g_dir_make_tmp("test-guest-agent-XXXXXX", NULL);
    fa->path = g_build_filename(fa->dir, "d.qga", NULL);
    addr = g_unix_socket_address_new(fa->path);
    fa->listener = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                G_SOCKET_PROTOCOL_DEFAULT, NULL);
    g_assert_true(g_socket_bind(fa->listener, addr, TRUE, NULL));
    g_assert_true(g_socket_listen(fa->listener, NULL));
    g_socket_set_blocking(fa->listener, FALSE);
    return fa;
}

/* Behaviour is set between agent_start() and agent_run(). */
static void
agent_run(FakeAgent *fa)
{
    fa->thread = g_thread_new("fake-agent", agent_thread, fa);
}

static void
agent_free(FakeAgent *fa)
{
    g_atomic_int_set(&fa->stop, 1);
    if (fa->thread)
        g_thread_join(fa->thread);
    g_object_unref(fa->listener);
    g_unlink(fa->path);
    g_rmdir(fa->dir);
    g_free(fa->path);
    g_free(fa->dir);
    g_free(fa);
}

/* ---- the function run while frozen ---- */

typedef struct {
    FakeAgent *fa;
    gboolean fail;
    gint calls;
    gint frozen_during;
} Snapshot;

static gboolean
take_snapshot(gpointer data, GError **error)
{
    Snapshot *s = data;

    s->calls++;
    s->frozen_during = g_atomic_int_get(&s->fa->frozen);
    if (s->fail) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_QEMU, "transaction failed");
        return FALSE;
    }
    return TRUE;
}

static const GuestAgentBounds fast = {
    .ping_ms = 200, .freeze_ms = 1000, .thaw_ms = 1000, .thaw_tries = 3};

/* ---- tests ---- */

static void
test_frozen_around(void)
{
    FakeAgent *fa = agent_start();
    Snapshot s = {.fa = fa};
    g_auto(GuestAgentFreeze) out = {0};
    g_autoptr(GError) error = NULL;

    agent_run(fa);
    g_assert_true(
        guest_agent_run_frozen(fa->path, &fast, take_snapshot, &s, &out, &error));
    g_assert_no_error(error);
    g_assert_true(out.frozen);
    g_assert_null(out.not_frozen);
    g_assert_cmpuint(out.problems->len, ==, 0);
    g_assert_cmpint(s.calls, ==, 1);
    g_assert_cmpint(s.frozen_during, ==, 1);
    g_assert_cmpint(g_atomic_int_get(&fa->freezes), ==, 1);
    g_assert_cmpint(g_atomic_int_get(&fa->thaws), ==, 1);
    g_assert_cmpint(g_atomic_int_get(&fa->frozen), ==, 0);
    g_assert_cmpint(g_atomic_int_get(&fa->syncs), >=, 1);
    g_assert_cmpint(g_atomic_int_get(&fa->pings), ==, 1);
    agent_free(fa);
}

static void
test_no_channel(void)
{
    Snapshot s = {.fa = NULL};
    FakeAgent dummy = {0};
    g_auto(GuestAgentFreeze) out = {0};

    s.fa = &dummy;
    g_assert_true(guest_agent_run_frozen(NULL, &fast, take_snapshot, &s, &out, NULL));
    g_assert_false(out.frozen);
    g_assert_nonnull(strstr(out.not_frozen, "no guest agent channel"));
    g_assert_cmpint(s.calls, ==, 1);
}

static void
test_no_socket(void)
{
    FakeAgent *fa = agent_start();
    Snapshot s = {.fa = fa};
    g_auto(GuestAgentFreeze) out = {0};
    g_autofree char *missing = g_build_filename(fa->dir, "none.qga", NULL);

    g_assert_true(guest_agent_run_frozen(missing, &fast, take_snapshot, &s, &out, NULL));
    g_assert_false(out.frozen);
    g_assert_nonnull(strstr(out.not_frozen, "no guest agent answered"));
    g_assert_cmpint(s.calls, ==, 1);
    agent_free(fa);
}

/* QEMU's end of the channel is there but no agent runs in the guest: the
 * ping's bound, not more, then crash-consistent; nothing to thaw. */
static void
test_silent(void)
{
    FakeAgent *fa = agent_start();
    Snapshot s = {.fa = fa};
    g_auto(GuestAgentFreeze) out = {0};
    gint64 t0;
    gint64 ms;

    fa->silent = TRUE;
    agent_run(fa);
    t0 = g_get_monotonic_time();
    g_assert_true(guest_agent_run_frozen(fa->path, &fast, take_snapshot, &s, &out, NULL));
    ms = (g_get_monotonic_time() - t0) / 1000;
    g_assert_false(out.frozen);
    g_assert_nonnull(strstr(out.not_frozen, "within 200 ms"));
    g_assert_cmpint(s.calls, ==, 1);
    g_assert_cmpint(s.frozen_during, ==, 0);
    g_assert_cmpint(g_atomic_int_get(&fa->freezes), ==, 0);
    g_assert_cmpint(g_atomic_int_get(&fa->thaws), ==, 0);
    g_test_message("silent agent: %" G_GINT64_FORMAT " ms", ms);
    g_assert_cmpint(ms, >=, 190);
    agent_free(fa);
}

/* A freeze that fails: the snapshot is taken all the same, and the guest
 * is thawed (a failed freeze may have frozen some filesystems). */
static void
test_freeze_fails(void)
{
    FakeAgent *fa = agent_start();
    Snapshot s = {.fa = fa};
    g_auto(GuestAgentFreeze) out = {0};

    fa->freeze_fails = TRUE;
    agent_run(fa);
    g_assert_true(guest_agent_run_frozen(fa->path, &fast, take_snapshot, &s, &out, NULL));
    g_assert_false(out.frozen);
    g_assert_nonnull(strstr(out.not_frozen, "Operation not supported"));
    g_assert_cmpint(s.calls, ==, 1);
    g_assert_cmpint(g_atomic_int_get(&fa->freezes), ==, 1);
    g_assert_cmpint(g_atomic_int_get(&fa->thaws), ==, 1);
    agent_free(fa);
}

/* Thaws that fail are retried; each failure is a problem line. */
static void
test_thaw_retried(void)
{
    FakeAgent *fa = agent_start();
    Snapshot s = {.fa = fa};
    g_auto(GuestAgentFreeze) out = {0};

    fa->thaw_failures = 2;
    agent_run(fa);
    g_assert_true(guest_agent_run_frozen(fa->path, &fast, take_snapshot, &s, &out, NULL));
    g_assert_true(out.frozen);
    g_assert_cmpint(g_atomic_int_get(&fa->thaws), ==, 3);
    g_assert_cmpuint(out.problems->len, ==, 2);
    g_assert_nonnull(strstr(out.problems->pdata[0], "failed to thaw"));
    g_assert_cmpint(g_atomic_int_get(&fa->frozen), ==, 0);
    agent_free(fa);
}

static void
test_thaw_never_works(void)
{
    FakeAgent *fa = agent_start();
    Snapshot s = {.fa = fa};
    g_auto(GuestAgentFreeze) out = {0};

    fa->thaw_failures = 100;
    agent_run(fa);
    g_assert_true(guest_agent_run_frozen(fa->path, &fast, take_snapshot, &s, &out, NULL));
    g_assert_cmpint(g_atomic_int_get(&fa->thaws), ==, 3);
    g_assert_cmpuint(out.problems->len, ==, 3);
    g_assert_nonnull(strstr(out.problems->pdata[2], "attempt 3 of 3"));
    agent_free(fa);
}

/* A snapshot that fails still thaws, and its error comes back. */
static void
test_snapshot_fails(void)
{
    FakeAgent *fa = agent_start();
    Snapshot s = {.fa = fa, .fail = TRUE};
    g_auto(GuestAgentFreeze) out = {0};
    g_autoptr(GError) error = NULL;

    agent_run(fa);
    g_assert_false(
        guest_agent_run_frozen(fa->path, &fast, take_snapshot, &s, &out, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_cmpstr(error->message, ==, "transaction failed");
    g_assert_cmpint(s.frozen_during, ==, 1);
    g_assert_cmpint(g_atomic_int_get(&fa->thaws), ==, 1);
    g_assert_cmpint(g_atomic_int_get(&fa->frozen), ==, 0);
    agent_free(fa);
}

/* A reply that comes after its command timed out is not taken for the
 * next command's: the client resynchronises with guest-sync first. */
static void
test_resync_after_timeout(void)
{
    FakeAgent *fa = agent_start();
    g_autoptr(GuestAgent) a = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) late = NULL;
    g_autoptr(JsonNode) ping = NULL;
    gint syncs;

    fa->info_delay_ms = 300;
    agent_run(fa);
    a = guest_agent_connect(fa->path, &error);
    g_assert_no_error(error);
    g_assert_true(guest_agent_sync(a, 1000, &error));
    g_assert_no_error(error);
    syncs = g_atomic_int_get(&fa->syncs);
    late = guest_agent_execute(a, "guest-info", NULL, 100, &error);
    g_assert_null(late);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_nonnull(strstr(error->message, "within 100 ms"));
    g_clear_error(&error);
    /* The agent is still busy with guest-info; its late reply comes
     * before guest-sync's and must be skipped. */
    ping = guest_agent_execute(a, "guest-ping", NULL, 2000, &error);
    g_assert_no_error(error);
    g_assert_nonnull(ping);
    g_assert_true(JSON_NODE_HOLDS_OBJECT(ping));
    g_assert_false(json_object_has_member(json_node_get_object(ping), "version"));
    g_assert_cmpint(g_atomic_int_get(&fa->syncs), ==, syncs + 1);
    g_clear_pointer(&a, guest_agent_free);
    agent_free(fa);
}

static void
test_error_reply(void)
{
    FakeAgent *fa = agent_start();
    g_autoptr(GuestAgent) a = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = NULL;

    agent_run(fa);
    a = guest_agent_connect(fa->path, &error);
    g_assert_no_error(error);
    ret = guest_agent_execute(a, "guest-no-such", NULL, 1000, &error);
    g_assert_null(ret);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_nonnull(strstr(error->message, "guest-no-such"));
    g_clear_pointer(&a, guest_agent_free);
    agent_free(fa);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/guest-agent/frozen-around", test_frozen_around);
    g_test_add_func("/guest-agent/no-channel", test_no_channel);
    g_test_add_func("/guest-agent/no-socket", test_no_socket);
    g_test_add_func("/guest-agent/silent", test_silent);
    g_test_add_func("/guest-agent/freeze-fails", test_freeze_fails);
    g_test_add_func("/guest-agent/thaw-retried", test_thaw_retried);
    g_test_add_func("/guest-agent/thaw-never-works", test_thaw_never_works);
    g_test_add_func("/guest-agent/snapshot-fails", test_snapshot_fails);
    g_test_add_func("/guest-agent/resync-after-timeout", test_resync_after_timeout);
    g_test_add_func("/guest-agent/error-reply", test_error_reply);
    return g_test_run();
}
