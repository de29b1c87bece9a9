/* qemu-img.c: qemu-img subcommands through snap_spawn_sync(), errors from its stderr. */
#include "qemu-img.h"

#include <errno.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "snap-error.h"
#include "snap-spawn.h"

#include <sys/wait.h>

const char *
qemu_img_binary(void)
{
    const char *bin = g_getenv("SNAPTREEFS_QEMU_IMG");

    return bin && *bin ? bin : "qemu-img";
}

typedef struct {
    QemuImgProgressFunc func;
    gpointer data;
    GString *line;
    int last;
} ProgressParse;

/* `qemu-img -p` rewrites one line: "    (42.00/100%)\r". */
static void
on_progress_output(const char *data, gsize len, gpointer user_data)
{
    ProgressParse *p = user_data;

    for (gsize i = 0; i < len; i++) {
        if (data[i] != '\r' && data[i] != '\n') {
            g_string_append_c(p->line, data[i]);
            continue;
        }
        {
            const char *open = strchr(p->line->str, '(');
            int percent = open ? (int)g_ascii_strtod(open + 1, NULL) : -1;

            if (percent >= 0 && percent != p->last) {
                p->last = percent;
                p->func(percent, p->data);
            }
        }
        g_string_truncate(p->line, 0);
    }
}

static gboolean qemu_img_run_full(const char *const *args, char **out,
                                  QemuImgProgressFunc progress, gpointer progress_data,
                                  GCancellable *cancellable, GError **error);

/* Runs qemu-img with @args (NULL-terminated, without argv[0]); its stdout
 * goes to @out when not NULL. */
static gboolean
qemu_img_run(const char *const *args, char **out, GCancellable *cancellable,
             GError **error)
{
    return qemu_img_run_full(args, out, NULL, NULL, cancellable, error);
}

/* The same; @progress, when not NULL, gets the percentages `-p` prints. */
static gboolean
qemu_img_run_full(const char *const *args, char **out, QemuImgProgressFunc progress,
                  gpointer progress_data, GCancellable *cancellable, GError **error)
{
    g_autoptr(GString) line = g_string_new(NULL);
    ProgressParse parse = {progress, progress_data, line, -1};
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) local = NULL;
    g_autofree char *stdout_buf = NULL;
    g_autofree char *stderr_buf = NULL;
    int status = 0;

    g_ptr_array_add(argv, (gpointer)qemu_img_binary());
    for (guint i = 0; args[i]; i++)
        g_ptr_array_add(argv, (gpointer)args[i]);
    g_ptr_array_add(argv, NULL);

    g_debug("running %s %s", qemu_img_binary(), args[0]);
    if (!snap_spawn_sync_full((const char *const *)argv->pdata, &stdout_buf, &stderr_buf,
                              &status, progress ? on_progress_output : NULL, &parse,
                              cancellable, &local)) {
        if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_CANCELLED,
                                "operation cancelled");
        else
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU, "cannot run %s: %s",
                        qemu_img_binary(), local->message);
        return FALSE;
    }
    if (WIFSIGNALED(status)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                    "qemu-img was killed by signal %d", WTERMSIG(status));
        return FALSE;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char *msg = g_strstrip(stderr_buf);

        if (*msg)
            g_set_error_literal(error, SNAP_ERROR,
                                strstr(msg, g_strerror(ENOSPC)) != NULL
                                    ? SNAP_ERROR_NO_SPACE
                                    : SNAP_ERROR_QEMU,
                                msg);
        else
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                        "qemu-img exited with status %d", WEXITSTATUS(status));
        return FALSE;
    }
    if (out)
        *out = g_steal_pointer(&stdout_buf);
    return TRUE;
}

/* Internal snapshots exist only in qcow2, and naming the format keeps
 * qemu-img from probing it (a raw guest disk can look like anything).
 * `snapshot` has no -f, so the format goes in --image-opts, where a comma
 * in the path is written twice. */
static char *
qcow2_image_opts(const char *file)
{
    g_auto(GStrv) parts = g_strsplit(file, ",", -1);
    g_autofree char *escaped = g_strjoinv(",,", parts);

    return g_strconcat("driver=qcow2,file.filename=", escaped, NULL);
}

/* qemu-img snapshot @op TAG FILE, for -c, -a and -d. */
static gboolean
qemu_img_snapshot(const char *op, const char *file, const char *tag,
                  GCancellable *cancellable, GError **error)
{
    g_autofree char *opts = qcow2_image_opts(file);
    const char *args[] = {"snapshot", "--image-opts", op, tag, opts, NULL};

    return qemu_img_run(args, NULL, cancellable, error);
}

gboolean
qemu_img_snapshot_create(const char *file, const char *tag, GCancellable *cancellable,
                         GError **error)
{
    return qemu_img_snapshot("-c", file, tag, cancellable, error);
}

/* The ID of the snapshot tagged @tag in @file's table, or NULL with
 * SNAP_ERROR_QEMU when no snapshot has that tag. (transfer full) */
static char *
snapshot_id_of(const char *file, const char *tag, GCancellable *cancellable,
               GError **error)
{
    g_autoptr(GPtrArray) snaps = qemu_img_info(file, "qcow2", NULL, cancellable, error);

    if (snaps == NULL)
        return NULL;
    for (guint i = 0; i < snaps->len; i++) {
        QemuImgSnapshot *snap = snaps->pdata[i];

        if (g_strcmp0(snap->name, tag) == 0 && snap->id != NULL)
            return g_strdup(snap->id);
    }
    g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU, "'%s' holds no snapshot tagged '%s'",
                file, tag);
    return NULL;
}

gboolean
qemu_img_snapshot_apply(const char *file, const char *tag, GCancellable *cancellable,
                        GError **error)
{
    /* `snapshot -a` looks its argument up as an ID first, so a tag such
     * as "1" could load snapshot ID 1 of another name. IDs are unique in
     * an image: applying by the tag's own ID is exact. QEMU numbers the
     * IDs it gives, so only a tag of digits can be taken for one; any
     * other is applied as it is, without the second qemu-img run that
     * doubled the time of a revert (scripts/bench/chain). */
    g_autofree char *id = NULL;
    const char *p = tag;

    while (g_ascii_isdigit(*p))
        p++;
    if (*tag != '\0' && *p != '\0')
        return qemu_img_snapshot("-a", file, tag, cancellable, error);
    id = snapshot_id_of(file, tag, cancellable, error);
    if (id == NULL)
        return FALSE;
    return qemu_img_snapshot("-a", file, id, cancellable, error);
}

gboolean
qemu_img_tag_is_exact(const char *file, const char *tag, GCancellable *cancellable,
                      GError **error)
{
    g_autoptr(GPtrArray) snaps = qemu_img_info(file, "qcow2", NULL, cancellable, error);

    if (snaps == NULL)
        return FALSE;
    for (guint i = 0; i < snaps->len; i++) {
        QemuImgSnapshot *snap = snaps->pdata[i];

        if (g_strcmp0(snap->id, tag) == 0 && g_strcmp0(snap->name, tag) != 0) {
            g_set_error(
                error, SNAP_ERROR, SNAP_ERROR_INVALID,
                "snapshot name '%s' is also the qcow2 ID of snapshot '%s' in '%s', "
                "and QEMU would load that one: refused",
                tag, snap->name, file);
            return FALSE;
        }
    }
    return TRUE;
}

gboolean
qemu_img_snapshot_delete(const char *file, const char *tag, GCancellable *cancellable,
                         GError **error)
{
    return qemu_img_snapshot("-d", file, tag, cancellable, error);
}

void
qemu_img_snapshot_free(QemuImgSnapshot *snap)
{
    if (snap == NULL)
        return;
    g_free(snap->id);
    g_free(snap->name);
    g_free(snap);
}

GPtrArray *
qemu_img_info(const char *file, const char *format, guint64 *virtual_size,
              GCancellable *cancellable, GError **error)
{
    /* -U: reading the table must work while a QEMU holds the image. -f:
     * never probe, a guest can write any header into a raw disk. */
    const char *args[] = {"info", "--output=json", "-U", "-f", format, file, NULL};
    g_autofree char *out = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) local = NULL;
    g_autoptr(GPtrArray) snaps = NULL;
    JsonNode *root;
    JsonObject *obj;

    /* A NULL format would end the argument list early. */
    g_return_val_if_fail(format != NULL, NULL);
    if (!qemu_img_run(args, &out, cancellable, error))
        return NULL;
    if (!json_parser_load_from_data(parser, out, -1, &local)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                    "cannot parse qemu-img info of '%s': %s", file, local->message);
        return NULL;
    }
    root = json_parser_get_root(parser);
    if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                    "qemu-img info of '%s' is not a JSON object", file);
        return NULL;
    }
    obj = json_node_get_object(root);

    snaps = g_ptr_array_new_with_free_func((GDestroyNotify)qemu_img_snapshot_free);
    if (json_object_has_member(obj, "snapshots")) {
        JsonArray *arr = json_object_get_array_member(obj, "snapshots");
        guint n = arr ? json_array_get_length(arr) : 0;

        for (guint i = 0; i < n; i++) {
            JsonObject *s = json_array_get_object_element(arr, i);
            QemuImgSnapshot *snap;

            if (s == NULL || !json_object_has_member(s, "name"))
                continue;
            snap = g_new0(QemuImgSnapshot, 1);
            snap->name = g_strdup(json_object_get_string_member(s, "name"));
            snap->id =
                g_strdup(json_object_get_string_member_with_default(s, "id", NULL));
            snap->date_sec = json_object_get_int_member_with_default(s, "date-sec", 0);
            snap->vm_state_size =
                json_object_get_int_member_with_default(s, "vm-state-size", 0);
            g_ptr_array_add(snaps, snap);
        }
    }
    if (virtual_size)
        *virtual_size = json_object_get_int_member_with_default(obj, "virtual-size", 0);
    return g_steal_pointer(&snaps);
}

gboolean
qemu_img_create(const char *file, const char *format, guint64 size, GError **error)
{
    g_autofree char *size_str = g_strdup_printf("%" G_GUINT64_FORMAT, size);
    const char *args[] = {"create", "-q", "-f", format, file, size_str, NULL};

    return qemu_img_run(args, NULL, NULL, error);
}

gboolean
qemu_img_create_overlay(const char *file, const char *backing, const char *backing_format,
                        GError **error)
{
    const char *args[] = {"create", "-q", "-f",           "qcow2", "-b",
                          backing,  "-F", backing_format, file,    NULL};

    return qemu_img_run(args, NULL, NULL, error);
}

gboolean
qemu_img_commit(const char *top, const char *base, QemuImgProgressFunc progress,
                gpointer progress_data, GCancellable *cancellable, GError **error)
{
    /* Tests slow a commit down to act while it runs. */
    const char *rate = g_getenv("SNAPTREEFS_TEST_JOB_SPEED");
    const char *args[] = {"commit", progress ? "-p" : "-q", "-d", "-b", base,
                          top,      rate ? "-r" : NULL,     rate, NULL};

    if (rate != NULL) {
        args[5] = "-r";
        args[6] = rate;
        args[7] = top;
    }
    return qemu_img_run_full(args, NULL, progress, progress_data, cancellable, error);
}

gboolean
qemu_img_rebase(const char *file, const char *backing, const char *backing_format,
                gboolean unsafe, QemuImgProgressFunc progress, gpointer progress_data,
                GCancellable *cancellable, GError **error)
{
    g_autoptr(GPtrArray) args = g_ptr_array_new();

    g_ptr_array_add(args, "rebase");
    g_ptr_array_add(args, progress ? "-p" : "-q");
    if (unsafe)
        g_ptr_array_add(args, "-u");
    g_ptr_array_add(args, "-b");
    g_ptr_array_add(args, backing ? (gpointer)backing : "");
    if (backing) {
        g_ptr_array_add(args, "-F");
        g_ptr_array_add(args, (gpointer)backing_format);
    }
    g_ptr_array_add(args, (gpointer)file);
    g_ptr_array_add(args, NULL);
    return qemu_img_run_full((const char *const *)args->pdata, NULL, progress,
                             progress_data, cancellable, error);
}

gboolean
qemu_img_chain(const char *file, const char *format, GPtrArray **files,
               GPtrArray **formats, GCancellable *cancellable, GError **error)
{
    /* -f for FILE; the layers below come with the backing format their
     * overlay records (snaptreefs writes it with every overlay). */
    const char *args[] = {"info", "--output=json",   "-U", "-f",
                          format, "--backing-chain", file, NULL};
    g_autofree char *out = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GPtrArray) f = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) fmt = g_ptr_array_new_with_free_func(g_free);
    JsonNode *root;
    JsonArray *arr;

    g_return_val_if_fail(format != NULL, FALSE);
    if (!qemu_img_run(args, &out, cancellable, error))
        return FALSE;
    if (!json_parser_load_from_data(parser, out, -1, NULL) ||
        (root = json_parser_get_root(parser)) == NULL || !JSON_NODE_HOLDS_ARRAY(root)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                    "cannot parse qemu-img info --backing-chain of '%s'", file);
        return FALSE;
    }
    arr = json_node_get_array(root);
    for (guint i = 0; i < json_array_get_length(arr); i++) {
        JsonObject *o = json_array_get_object_element(arr, i);
        const char *name =
            o ? json_object_get_string_member_with_default(o, "filename", NULL) : NULL;

        if (name == NULL) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                        "qemu-img info of '%s': a layer without a file name", file);
            return FALSE;
        }
        g_ptr_array_add(f, g_strdup(name));
        g_ptr_array_add(fmt, g_strdup(json_object_get_string_member_with_default(
                                 o, "format", "raw")));
    }
    *files = g_steal_pointer(&f);
    if (formats)
        *formats = g_steal_pointer(&fmt);
    return TRUE;
}
