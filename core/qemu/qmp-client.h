/* qmp-client.h: a blocking QMP client (QEMU Machine Protocol) on a unix socket.
 *
 * The protocol (qemu docs/interop/qmp-spec.rst): QEMU sends a greeting
 * {"QMP": {...}}, the client must send qmp_capabilities, then commands
 * {"execute", "arguments", "id"} get exactly one reply {"return"|"error",
 * "id"}, and asynchronous events {"event", "data", "timestamp"} may arrive
 * at any time, between a command and its reply too. Every message is one
 * line of JSON.
 *
 * Threads: a QmpClient has no lock. The engine uses it from one domain
 * worker thread at a time; every call blocks that thread for at most its
 * timeout. Events are read only while a call is reading from the socket,
 * and are handed to the event function on that same thread.
 *
 * Errors: everything fails with SNAP_ERROR_QEMU (but a cancelled
 * qmp_client_run_job(): SNAP_ERROR_CANCELLED). A QEMU error reply
 * {"error": {"class", "desc"}} gives a GError whose message is exactly
 * QEMU's "desc"; its "class" stays readable through
 * qmp_client_last_error_class(). EOF, a malformed message or a protocol
 * violation make the client unusable: that call and every later one fail
 * at once with the same message (e.g. "QEMU closed the monitor
 * connection"). A timeout while waiting for a reply does not: the late
 * reply is recognised by its id and dropped when it comes.
 *
 * Logging: g_debug only, with every message sent and received in full. */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef struct _QmpClient QmpClient;

/* A timeout_ms that never expires. A timeout of 0 takes only what has
 * already arrived. */
#define QMP_CLIENT_WAIT_FOREVER G_MAXUINT

/* When set to N > 0, no wait of any call below is longer than N ms (for
 * tests of a QEMU that stops answering). */
#define QMP_TIMEOUT_ENV "SNAPTREEFS_QMP_TIMEOUT_MS"

/* MIN(@timeout_ms, SNAPTREEFS_QMP_TIMEOUT_MS when set). */
guint qmp_timeout_cap(guint timeout_ms);

/* One asynchronous event. */
typedef struct {
    char *name;          /* "STOP", "JOB_STATUS_CHANGE", ... */
    JsonObject *data;    /* its "data"; an empty object when it has none */
    gint64 timestamp_us; /* QEMU's timestamp, microseconds since the epoch;
                          * -1 when the event carries none */
} QmpEvent;

void qmp_event_free(QmpEvent *event);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QmpEvent, qmp_event_free)

/* Called for each event as it is read, on the reading thread, from inside
 * whichever client call is reading. It must not call into @client. */
typedef void (*QmpEventFunc)(QmpClient *client, const QmpEvent *event,
                             gpointer user_data);

/* Selects the event qmp_client_wait_event() waits for. */
typedef gboolean (*QmpEventMatch)(const QmpEvent *event, gpointer match_data);

/* A QmpEventMatch: the event named @name (a const char *). */
gboolean qmp_event_match_name(const QmpEvent *event, gpointer name);

/* A job's progress as query-jobs reports it (units are the job's own). */
typedef void (*QmpProgressFunc)(guint64 current, guint64 total, gpointer user_data);

/* Connects to the QMP socket at @socket_path, reads the greeting and
 * negotiates capabilities (none are enabled), all within @timeout_ms.
 * (transfer full) */
QmpClient *qmp_client_connect(const char *socket_path, guint timeout_ms, GError **error);

/* Closes the connection. NULL-safe. */
void qmp_client_free(QmpClient *client);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QmpClient, qmp_client_free)

/* The QEMU version from the greeting, e.g. 7, 2, 22. Any pointer may be
 * NULL. */
void qmp_client_get_version(QmpClient *client, guint *major, guint *minor, guint *micro);

/* TRUE when QEMU is at least @major.@minor (snapshot-save needs 6.0). */
gboolean qmp_client_version_at_least(QmpClient *client, guint major, guint minor);

/* Reads whatever has already arrived (dispatching its events, which may
 * reveal EOF) and tells whether the connection is still usable. Same
 * thread rule as every other call. */
gboolean qmp_client_is_connected(QmpClient *client);

/* The socket's fd, for a caller that wants to poll for events while no
 * call is reading (then calls qmp_client_poll()). (transfer none) */
int qmp_client_get_fd(QmpClient *client);

/* Reads and dispatches the events that arrive within @timeout_ms (0: only
 * those already there). FALSE with @error once the connection is
 * unusable; a quiet connection is not an error. */
gboolean qmp_client_poll(QmpClient *client, guint timeout_ms, GError **error);

/* Runs @command with @arguments (a JSON object node, transfer full, may
 * be NULL) and waits up to @timeout_ms for its reply; events read
 * meanwhile are dispatched and queued. Returns the reply's "return" value
 * (transfer full; often an empty object), or NULL with @error: QEMU's
 * "desc" for an error reply, or a timeout or connection failure. */
JsonNode *qmp_client_execute(QmpClient *client, const char *command, JsonNode *arguments,
                             guint timeout_ms, GError **error);

/* The "class" of QEMU's error reply ("GenericError", "CommandNotFound",
 * "DeviceNotFound", ...) when the last qmp_client_execute() or
 * qmp_client_run_job() failed because of one; NULL otherwise.
 * (transfer none, valid until the next call) */
const char *qmp_client_last_error_class(QmpClient *client);

/* Sets the function called for every event read from now on; replaces
 * (and destroys the data of) the previous one. @func may be NULL. */
void qmp_client_set_event_func(QmpClient *client, QmpEventFunc func, gpointer user_data,
                               GDestroyNotify destroy);

/* Every event read is also queued (the latest 1024), so that a caller can
 * wait for an event that arrived before its command's reply. Returns, and
 * removes from the queue, the oldest queued event @match accepts (@match
 * NULL: any event), reading more for up to @timeout_ms when none is
 * queued yet. Queued events are found even after the connection broke.
 * (transfer full) */
QmpEvent *qmp_client_wait_event(QmpClient *client, QmpEventMatch match,
                                gpointer match_data, guint timeout_ms, GError **error);

/* Empties the event queue, e.g. before a command whose event the caller
 * will wait for. */
void qmp_client_clear_events(QmpClient *client);

/* Runs a job-based command (snapshot-save, snapshot-load,
 * snapshot-delete: QEMU >= 6.0) whose @arguments name the job @job_id, and
 * waits for JOB_STATUS_CHANGE to reach "concluded", all within
 * @timeout_ms. A job that reaches "ready" (an active block-commit) is
 * told to complete (job-complete). While it runs, @progress (may be NULL) gets
 * query-jobs' progress at most every 200 ms, and once more at the end. A concluded job's
 * "error" (e.g. "Snapshot 's1' already exists in one or more devices") becomes @error.
 * The job is dismissed, failed or not, while QEMU still answers. On timeout, or when
 * @cancellable is cancelled, the job is cancelled with job-cancel: cancellation gives
 * SNAP_ERROR_CANCELLED, unless the job had already gone too far to stop
 * and succeeded, which gives TRUE. A snapshot job that an earlier call
 * gave up on (QEMU did not answer in time) is waited for and dismissed
 * before the new one starts. */
gboolean qmp_client_run_job(QmpClient *client, const char *command, JsonNode *arguments,
                            const char *job_id, guint timeout_ms,
                            QmpProgressFunc progress, gpointer progress_data,
                            GCancellable *cancellable, GError **error);

G_END_DECLS
