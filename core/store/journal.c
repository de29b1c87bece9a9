/* journal.c: intents of multi-step operations, as JSON files in STATE/journal/. */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <unistd.h>
#include <json-glib/json-glib.h>

#include "snap-error.h"
#include "snapshot-store.h"

static char *
journal_path(const char *state_dir, const char *domain)
{
    g_autofree char *file = g_strconcat(domain, ".json", NULL);

    return g_build_filename(state_dir, "journal", file, NULL);
}

static gboolean
journal_errno(GError **error, int err, const char *what, const char *path)
{
    g_set_error(error, SNAP_ERROR,
                err == ENOSPC ? SNAP_ERROR_NO_SPACE : SNAP_ERROR_FAILED,
                "cannot %s journal '%s': %s", what, path, g_strerror(err));
    return FALSE;
}

/* The journal file of a domain stays in place and is overwritten: an
 * intent costs one write and one fdatasync, no file creation, rename or
 * directory sync (creating a file is the slow part here). A crash while
 * it is written leaves a file that does not parse, which can only mean
 * that no disk was touched yet: the intent is durable before any is. */
static gboolean
journal_write_in_place(const char *path, const char *text, gsize len, GError **error)
{
    gboolean created = FALSE;
    gsize done = 0;
    int fd;

    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        created = TRUE;
    }
    if (fd < 0)
        return journal_errno(error, errno, "open", path);
    while (done < len) {
        gssize n = pwrite(fd, text + done, len - done, (off_t)done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;

            close(fd);
            return journal_errno(error, err, "write", path);
        }
        done += n;
    }
    if (ftruncate(fd, (off_t)len) < 0 || fdatasync(fd) < 0) {
        int err = errno;

        close(fd);
        return journal_errno(error, err, "write", path);
    }
    close(fd);
    if (created) {
        g_autofree char *dir = g_path_get_dirname(path);
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (dfd < 0 || fsync(dfd) < 0) {
            int err = errno;

            if (dfd >= 0)
                close(dfd);
            return journal_errno(error, err, "sync the directory of", path);
        }
        close(dfd);
    }
    return TRUE;
}

void
snap_journal_free(SnapJournal *journal)
{
    if (journal == NULL)
        return;
    g_free(journal->op);
    g_free(journal->snapshot);
    g_clear_pointer(&journal->disks, g_ptr_array_unref);
    g_clear_pointer(&journal->steps, g_ptr_array_unref);
    g_free(journal);
}

gboolean
snap_journal_write(const char *state_dir, const char *domain, const char *op,
                   const char *snapshot, guint flags, GPtrArray *disks, GError **error)
{
    return snap_journal_write_steps(state_dir, domain, op, snapshot, flags, disks, NULL,
                                    0, error);
}

gboolean
snap_journal_write_steps(const char *state_dir, const char *domain, const char *op,
                         const char *snapshot, guint flags, GPtrArray *disks,
                         GPtrArray *steps, guint done, GError **error)
{
    g_autofree char *path = journal_path(state_dir, domain);
    g_autofree char *dir = g_path_get_dirname(path);
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = NULL;
    g_autofree char *text = NULL;
    gsize len;

    if (g_mkdir_with_parents(dir, 0755) < 0) {
        g_set_error(error, SNAP_ERROR,
                    errno == ENOSPC ? SNAP_ERROR_NO_SPACE : SNAP_ERROR_FAILED,
                    "cannot create '%s': %s", dir, g_strerror(errno));
        return FALSE;
    }
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "op");
    json_builder_add_string_value(b, op);
    json_builder_set_member_name(b, "domain");
    json_builder_add_string_value(b, domain);
    json_builder_set_member_name(b, "snapshot");
    json_builder_add_string_value(b, snapshot);
    json_builder_set_member_name(b, "flags");
    json_builder_add_int_value(b, flags);
    json_builder_set_member_name(b, "disks");
    json_builder_begin_array(b);
    for (guint i = 0; disks && i < disks->len; i++)
        json_builder_add_string_value(b, disks->pdata[i]);
    json_builder_end_array(b);
    if (steps != NULL && steps->len > 0) {
        json_builder_set_member_name(b, "steps");
        json_builder_begin_array(b);
        for (guint i = 0; i < steps->len; i++) {
            char **step = steps->pdata[i];

            json_builder_begin_array(b);
            for (guint k = 0; step[k]; k++)
                json_builder_add_string_value(b, step[k]);
            json_builder_end_array(b);
        }
        json_builder_end_array(b);
        json_builder_set_member_name(b, "done");
        json_builder_add_int_value(b, done);
    }
    json_builder_end_object(b);

    root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, TRUE);
    text = json_generator_to_data(gen, &len);
    return journal_write_in_place(path, text, len, error);
}

SnapJournal *
snap_journal_read(const char *state_dir, const char *domain, GError **error)
{
    g_autofree char *path = journal_path(state_dir, domain);
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) local = NULL;
    g_autoptr(SnapJournal) journal = NULL;
    JsonNode *root;
    JsonObject *obj;
    JsonArray *arr;

    GStatBuf st;

    /* No file, or an empty one: no operation was under way. */
    if (g_stat(path, &st) < 0 || st.st_size == 0)
        return NULL;
    if (!json_parser_load_from_file(parser, path, &local)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID, "journal '%s': %s", path,
                    local->message);
        return NULL;
    }
    root = json_parser_get_root(parser);
    if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "journal '%s' is not a JSON object", path);
        return NULL;
    }
    obj = json_node_get_object(root);
    journal = g_new0(SnapJournal, 1);
    journal->op = g_strdup(json_object_get_string_member_with_default(obj, "op", NULL));
    journal->snapshot =
        g_strdup(json_object_get_string_member_with_default(obj, "snapshot", NULL));
    journal->flags = (guint)json_object_get_int_member_with_default(obj, "flags", 0);
    journal->disks = g_ptr_array_new_with_free_func(g_free);
    if (journal->op == NULL || journal->snapshot == NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "journal '%s' lacks \"op\" or \"snapshot\"", path);
        return NULL;
    }
    arr = json_object_has_member(obj, "disks")
              ? json_object_get_array_member(obj, "disks")
              : NULL;
    for (guint i = 0; arr && i < json_array_get_length(arr); i++) {
        JsonNode *n = json_array_get_element(arr, i);

        if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING)
            g_ptr_array_add(journal->disks, g_strdup(json_node_get_string(n)));
    }
    journal->steps = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    arr = json_object_has_member(obj, "steps")
              ? json_object_get_array_member(obj, "steps")
              : NULL;
    for (guint i = 0; arr && i < json_array_get_length(arr); i++) {
        JsonArray *step = json_array_get_array_element(arr, i);
        g_autoptr(GStrvBuilder) sb = g_strv_builder_new();

        for (guint k = 0; step && k < json_array_get_length(step); k++) {
            JsonNode *n = json_array_get_element(step, k);

            if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING)
                g_strv_builder_add(sb, json_node_get_string(n));
        }
        g_ptr_array_add(journal->steps, g_strv_builder_end(sb));
    }
    journal->done = (guint)json_object_get_int_member_with_default(obj, "done", 0);
    return g_steal_pointer(&journal);
}

gboolean
snap_journal_add_step(const char *state_dir, const char *domain, const char *const *step,
                      GError **error)
{
    g_autoptr(SnapJournal) j = snap_journal_read(state_dir, domain, error);

    if (j == NULL) {
        if (error != NULL && *error == NULL)
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_FAILED,
                        "no intent of domain '%s' to add step '%s' to", domain, step[0]);
        return FALSE;
    }
    g_ptr_array_add(j->steps, g_strdupv((char **)step));
    return snap_journal_write_steps(state_dir, domain, j->op, j->snapshot, j->flags,
                                    j->disks, j->steps, j->steps->len, error);
}

gboolean
snap_journal_remove(const char *state_dir, const char *domain, GError **error)
{
    g_autofree char *path = journal_path(state_dir, domain);
    int fd = open(path, O_WRONLY | O_CLOEXEC);

    /* Emptied, not removed, so the next intent needs no new file (and
     * the directory entry, made durable when the file was created, needs
     * no sync). Durably: an intent that came back after a power cut would
     * be finished again, an operation the caller was told had failed. */
    if (fd < 0)
        return errno == ENOENT ? TRUE : journal_errno(error, errno, "clear", path);
    if (ftruncate(fd, 0) < 0 || fdatasync(fd) < 0) {
        int err = errno;

        close(fd);
        return journal_errno(error, err, "clear", path);
    }
    close(fd);
    return TRUE;
}

gboolean
snap_journal_unlink(const char *state_dir, const char *domain, GError **error)
{
    g_autofree char *path = journal_path(state_dir, domain);

    return snap_store_remove(path, error);
}
