/* guest-agent.c: the QEMU guest agent's protocol over a unix socket, and
 * the freeze/thaw around a snapshot. */
#include "guest-agent.h"

#include <string.h>
#include <gio/gunixsocketaddress.h>

#include "snap-error.h"

/* A line longer than this is not an agent's reply but a runaway peer. */
#define AGENT_LINE_MAX (16 * 1024 * 1024)

const GuestAgentBounds guest_agent_default_bounds = {
    .ping_ms = 1000,
    .freeze_ms = 10000,
    .thaw_ms = 10000,
    .thaw_tries = 3,
};

struct _GuestAgent {
    GSocket *socket;
    GByteArray *inbuf; /* received bytes not yet ending in '\n' */
    JsonParser *parser;
    char *path;
    /* An earlier reply may still come: resynchronise before the next. */
    gboolean unsynced;
};

static gint64
agent_deadline(guint timeout_ms)
{
    return g_get_monotonic_time() + (gint64)timeout_ms * G_TIME_SPAN_MILLISECOND;
}

static gint64
agent_remaining_us(gint64 deadline)
{
    gint64 left = MAX(deadline - g_get_monotonic_time(), 0);

    /* Rounded up to what poll() sees, so a wait does not end early. */
    return (left + 999) / 1000 * 1000;
}

GuestAgent *
guest_agent_connect(const char *socket_path, GError **error)
{
    g_autoptr(GuestAgent) a = g_new0(GuestAgent, 1);
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(socket_path);
    g_autoptr(GError) local = NULL;

    a->inbuf = g_byte_array_new();
    a->parser = json_parser_new();
    a->path = g_strdup(socket_path);
    a->socket = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                             G_SOCKET_PROTOCOL_DEFAULT, &local);
    if (a->socket == NULL || !g_socket_connect(a->socket, addr, NULL, &local)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                    "cannot connect to the guest agent socket %s: %s", socket_path,
                    local->message);
        return NULL;
    }
    g_socket_set_blocking(a->socket, FALSE);
    /* Whatever a previous client left unread is not ours. */
    a->unsynced = TRUE;
    return g_steal_pointer(&a);
}

void
guest_agent_free(GuestAgent *a)
{
    if (a == NULL)
        return;
    if (a->socket != NULL) {
        g_socket_close(a->socket, NULL);
        g_object_unref(a->socket);
    }
    if (a->inbuf != NULL)
        g_byte_array_unref(a->inbuf);
    g_clear_object(&a->parser);
    g_free(a->path);
    g_free(a);
}

static gboolean
agent_send(GuestAgent *a, const char *data, gsize len, gint64 deadline, GError **error)
{
    gsize done = 0;

    while (done < len) {
        g_autoptr(GError) local = NULL;
        gssize n;

        if (!g_socket_condition_timed_wait(a->socket, G_IO_OUT,
                                           agent_remaining_us(deadline), NULL, &local)) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                        "guest agent: cannot send: %s", local->message);
            a->unsynced = TRUE;
            return FALSE;
        }
        n = g_socket_send(a->socket, data + done, len - done, NULL, &local);
        if (n < 0 && !g_error_matches(local, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                        "guest agent: cannot send: %s", local->message);
            return FALSE;
        }
        done += MAX(n, 0);
    }
    return TRUE;
}

/* The next complete line that is a JSON object with "return" or "error",
 * waiting until @deadline. Other lines (a 0xFF byte's echo, garbage) are
 * skipped. (transfer full) */
static JsonObject *
agent_read_reply(GuestAgent *a, gint64 deadline, GError **error)
{
    for (;;) {
        guint8 *nl = a->inbuf->len ? memchr(a->inbuf->data, '\n', a->inbuf->len) : NULL;
        g_autoptr(GError) local = NULL;
        guint8 buf[4096];
        gssize n;

        while (nl != NULL) {
            gsize len = nl - a->inbuf->data;
            g_autofree char *line = g_strndup((const char *)a->inbuf->data, len);
            JsonNode *root;

            g_byte_array_remove_range(a->inbuf, 0, len + 1);
            g_strdelimit(line, "\xff", ' ');
            g_strstrip(line);
            g_debug("guest agent <- %s", line);
            if (*line != '\0' && json_parser_load_from_data(a->parser, line, -1, NULL) &&
                (root = json_parser_get_root(a->parser)) != NULL &&
                JSON_NODE_HOLDS_OBJECT(root)) {
                JsonObject *obj = json_node_get_object(root);

                if (json_object_has_member(obj, "return") ||
                    json_object_has_member(obj, "error"))
                    return json_object_ref(obj);
            }
            nl = a->inbuf->len ? memchr(a->inbuf->data, '\n', a->inbuf->len) : NULL;
        }
        if (!g_socket_condition_timed_wait(a->socket, G_IO_IN,
                                           agent_remaining_us(deadline), NULL, &local)) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU, "guest agent: %s",
                        g_error_matches(local, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)
                            ? "no answer in time"
                            : local->message);
            a->unsynced = TRUE;
            return NULL;
        }
        n = g_socket_receive(a->socket, (char *)buf, sizeof(buf), NULL, &local);
        if (n < 0 && g_error_matches(local, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            continue;
        if (n <= 0) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU, "guest agent: %s",
                        n == 0 ? "the channel closed" : local->message);
            a->unsynced = TRUE;
            return NULL;
        }
        g_byte_array_append(a->inbuf, buf, n);
        if (a->inbuf->len > AGENT_LINE_MAX) {
            g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                                "guest agent: a reply longer than the limit");
            g_byte_array_set_size(a->inbuf, 0);
            a->unsynced = TRUE;
            return NULL;
        }
    }
}

static char *
agent_command_line(const char *command, JsonNode *arguments)
{
    g_autoptr(JsonObject) msg = json_object_new();
    g_autoptr(JsonNode) root = json_node_new(JSON_NODE_OBJECT);
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autofree char *text = NULL;

    json_object_set_string_member(msg, "execute", command);
    if (arguments != NULL)
        json_object_set_member(msg, "arguments", json_node_ref(arguments));
    json_node_set_object(root, msg);
    json_generator_set_root(gen, root);
    text = json_generator_to_data(gen, NULL);
    g_debug("guest agent -> %s", text);
    return g_strconcat(text, "\n", NULL);
}

static JsonNode *
agent_result(JsonObject *reply, const char *command, GError **error)
{
    JsonObject *err;
    const char *desc = NULL;

    if (json_object_has_member(reply, "return"))
        return json_object_dup_member(reply, "return");
    err = json_object_get_object_member(reply, "error");
    if (err != NULL && json_object_has_member(err, "desc"))
        desc = json_object_get_string_member(err, "desc");
    g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU, "guest agent: %s: %s", command,
                desc != NULL ? desc : "failed");
    return NULL;
}

static gboolean
agent_sync_until(GuestAgent *a, gint64 deadline, guint timeout_ms, GError **error)
{
    gint64 id = g_random_int_range(1, G_MAXINT32);
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) args = NULL;
    g_autofree char *line = NULL;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "id");
    json_builder_add_int_value(b, id);
    json_builder_end_object(b);
    args = json_builder_get_root(b);
    line = agent_command_line("guest-sync", args);
    /* 0xFF makes the agent drop what it half read (qemu-ga.rst). */
    g_byte_array_set_size(a->inbuf, 0);
    if (!agent_send(a, "\xff", 1, deadline, error) ||
        !agent_send(a, line, strlen(line), deadline, error))
        return FALSE;
    for (;;) {
        g_autoptr(JsonObject) reply = agent_read_reply(a, deadline, error);
        JsonNode *ret;

        if (reply == NULL) {
            g_prefix_error(error, "guest-sync within %u ms: ", timeout_ms);
            return FALSE;
        }
        ret = json_object_get_member(reply, "return");
        /* Any other reply is a late one from before: skipped. */
        if (ret != NULL && JSON_NODE_HOLDS_VALUE(ret) &&
            json_node_get_value_type(ret) == G_TYPE_INT64 &&
            json_node_get_int(ret) == id) {
            a->unsynced = FALSE;
            return TRUE;
        }
    }
}

gboolean
guest_agent_sync(GuestAgent *a, guint timeout_ms, GError **error)
{
    return agent_sync_until(a, agent_deadline(timeout_ms), timeout_ms, error);
}

JsonNode *
guest_agent_execute(GuestAgent *a, const char *command, JsonNode *arguments,
                    guint timeout_ms, GError **error)
{
    g_autoptr(JsonNode) args = arguments;
    gint64 deadline = agent_deadline(timeout_ms);
    g_autofree char *line = agent_command_line(command, args);
    g_autoptr(JsonObject) reply = NULL;

    if (a->unsynced && !agent_sync_until(a, deadline, timeout_ms, error))
        return NULL;
    if (!agent_send(a, line, strlen(line), deadline, error))
        return NULL;
    reply = agent_read_reply(a, deadline, error);
    if (reply == NULL) {
        g_prefix_error(error, "%s within %u ms: ", command, timeout_ms);
        return NULL;
    }
    return agent_result(reply, command, error);
}

void
guest_agent_freeze_clear(GuestAgentFreeze *f)
{
    g_clear_pointer(&f->not_frozen, g_free);
    g_clear_pointer(&f->problems, g_ptr_array_unref);
    f->frozen = FALSE;
}

/* guest-fsfreeze-thaw until it works or the tries run out. */
static void
thaw(GuestAgent *a, const GuestAgentBounds *bounds, GuestAgentFreeze *out)
{
    for (guint i = 0; i < MAX(bounds->thaw_tries, 1); i++) {
        g_autoptr(GError) local = NULL;
        g_autoptr(JsonNode) ret =
            guest_agent_execute(a, "guest-fsfreeze-thaw", NULL, bounds->thaw_ms, &local);

        if (ret != NULL)
            return;
        g_message("%s: thaw attempt %u of %u failed: %s", a->path, i + 1,
                  MAX(bounds->thaw_tries, 1), local->message);
        g_ptr_array_add(out->problems,
                        g_strdup_printf("thawing the guest's filesystems (attempt %u of "
                                        "%u) failed: %s",
                                        i + 1, MAX(bounds->thaw_tries, 1),
                                        local->message));
        /* The next attempt resynchronises first. */
        a->unsynced = TRUE;
    }
}

gboolean
guest_agent_run_frozen(const char *socket_path, const GuestAgentBounds *bounds,
                       GuestAgentFrozenFunc func, gpointer data, GuestAgentFreeze *out,
                       GError **error)
{
    g_autoptr(GuestAgent) a = NULL;
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonNode) ret = NULL;
    gboolean ok;

    out->frozen = FALSE;
    out->problems = g_ptr_array_new_with_free_func(g_free);
    if (socket_path == NULL) {
        out->not_frozen = g_strdup("the domain has no guest agent channel");
        return func(data, error);
    }
    a = guest_agent_connect(socket_path, &local);
    if (a != NULL && guest_agent_sync(a, bounds->ping_ms, &local))
        ret = guest_agent_execute(a, "guest-ping", NULL, bounds->ping_ms, &local);
    if (ret == NULL) {
        out->not_frozen = g_strdup_printf("no guest agent answered within %u ms (%s)",
                                          bounds->ping_ms, local->message);
        return func(data, error);
    }
    g_clear_pointer(&ret, json_node_unref);
    ret =
        guest_agent_execute(a, "guest-fsfreeze-freeze", NULL, bounds->freeze_ms, &local);
    if (ret == NULL)
        out->not_frozen = g_strdup_printf("freezing the guest's filesystems failed (%s)",
                                          local->message);
    out->frozen = ret != NULL;
    ok = func(data, error);
    /* Thawed whatever happened: a failed or late freeze may have frozen
     * some filesystems all the same. */
    thaw(a, bounds, out);
    return ok;
}

static gpointer
thaw_thread(gpointer data)
{
    g_autofree char *path = data;
    g_autoptr(GuestAgent) a = NULL;
    g_autoptr(GError) local = NULL;
    g_auto(GuestAgentFreeze) out = {0};

    a = guest_agent_connect(path, &local);
    if (a == NULL || !guest_agent_sync(a, guest_agent_default_bounds.ping_ms, &local)) {
        g_debug("%s: no thaw at start: %s", path, local->message);
        return NULL;
    }
    out.problems = g_ptr_array_new_with_free_func(g_free);
    thaw(a, &guest_agent_default_bounds, &out);
    if (out.problems->len == 0)
        g_debug("%s: thawed at start", path);
    return NULL;
}

void
guest_agent_thaw_in_background(const char *socket_path)
{
    g_autoptr(GError) local = NULL;
    GThread *t = g_thread_try_new("thaw", thaw_thread, g_strdup(socket_path), &local);

    if (t == NULL)
        g_message("%s: cannot start the thaw: %s", socket_path, local->message);
    else
        g_thread_unref(t);
}
