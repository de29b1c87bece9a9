/* journal.c: intents of multi-step operations, as JSON files in STATE/journal/. */
#include "journal.h"

#include <errno.h>
#include <json-glib/json-glib.h>

#include "snap-error.h"
#include "snapshot-store.h"

static char *
journal_path(const char *state_dir, const char *domain)
{
    g_autofree char *file = g_strconcat(domain, ".json", NULL);

    return g_build_filename(state_dir, "journal", file, NULL);
}

void
snap_journal_free(SnapJournal *journal)
{
    if (journal == NULL)
        return;
    g_free(journal->op);
    g_free(journal->snapshot);
    g_clear_pointer(&journal->disks, g_ptr_array_unref);
    g_free(journal);
}

gboolean
snap_journal_write(const char *state_dir, const char *domain, const char *op,
                   const char *snapshot, GPtrArray *disks, GError **error)
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
    json_builder_set_member_name(b, "disks");
    json_builder_begin_array(b);
    for (guint i = 0; disks && i < disks->len; i++)
        json_builder_add_string_value(b, disks->pdata[i]);
    json_builder_end_array(b);
    json_builder_end_object(b);

    root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, TRUE);
    text = json_generator_to_data(gen, &len);
    return snap_store_write_atomic(path, text, len, error);
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

    if (!g_file_test(path, G_FILE_TEST_EXISTS))
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
    return g_steal_pointer(&journal);
}

gboolean
snap_journal_remove(const char *state_dir, const char *domain, GError **error)
{
    g_autofree char *path = journal_path(state_dir, domain);

    return snap_store_remove(path, error);
}
