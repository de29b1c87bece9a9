/* guest-agent.h: a blocking client of the QEMU guest agent (qemu-ga), and
 * the freeze/thaw of the guest's filesystems around a disk snapshot.
 *
 * The protocol (qemu docs/interop/qemu-ga.rst, qga/qapi-schema.json): JSON
 * commands {"execute", "arguments"}, one reply {"return"|"error"} each, in
 * order, on a virtio-serial port that QEMU exposes as a unix socket. There
 * is no greeting and no capabilities. A reply that comes after its command
 * timed out would be taken for the next command's: the client then
 * resynchronises with guest-sync and a random id (after a 0xFF byte that
 * makes the agent drop half-read input), skipping every line until the
 * reply carries that id.
 *
 * Errors: SNAP_ERROR_QEMU, with the agent's "desc" for an error reply.
 * Threads: one caller at a time. Logging: g_debug. */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef struct _GuestAgent GuestAgent;

/* Connects to the agent's socket (QEMU's end of the channel). Succeeds
 * even when no agent runs in the guest: only commands tell. (transfer full) */
GuestAgent *guest_agent_connect(const char *socket_path, GError **error);

void guest_agent_free(GuestAgent *agent);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GuestAgent, guest_agent_free)

/* guest-sync with a random id: afterwards the next line is the next
 * command's reply. Within @timeout_ms. */
gboolean guest_agent_sync(GuestAgent *agent, guint timeout_ms, GError **error);

/* Runs @command (@arguments: a JSON object node, transfer full, may be
 * NULL), resynchronising first when an earlier call timed out, and waits
 * up to @timeout_ms for its reply. The "return" value (transfer full), or
 * NULL with @error. */
JsonNode *guest_agent_execute(GuestAgent *agent, const char *command, JsonNode *arguments,
                              guint timeout_ms, GError **error);

/* Bounds of the freeze around a snapshot, in ms. */
typedef struct {
    guint ping_ms;   /* guest-sync + guest-ping: is an agent there at all */
    guint freeze_ms; /* guest-fsfreeze-freeze */
    guint thaw_ms;   /* each guest-fsfreeze-thaw attempt */
    guint thaw_tries;
} GuestAgentBounds;

/* The bounds snaptreefs uses: 1 s ping, 10 s freeze, 3 thaws of 10 s. */
extern const GuestAgentBounds guest_agent_default_bounds;

/* What guest_agent_run_frozen() did besides calling its function. */
typedef struct {
    gboolean frozen;     /* the filesystems were frozen around it */
    char *not_frozen;    /* why not (no agent, no answer, a failed freeze) */
    GPtrArray *problems; /* thaws that failed (char*): each one worth a line */
} GuestAgentFreeze;

void guest_agent_freeze_clear(GuestAgentFreeze *freeze);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(GuestAgentFreeze, guest_agent_freeze_clear)

typedef gboolean (*GuestAgentFrozenFunc)(gpointer data, GError **error);

/* Calls @func with the guest's filesystems frozen when the agent on
 * @socket_path (NULL: no agent channel) answers a ping within
 * bounds->ping_ms; otherwise calls it all the same (crash-consistent) and
 * says why in @out->not_frozen. Whatever @func returns, and whether the
 * freeze said it worked or not, the filesystems are thawed: a failed
 * thaw is retried (resynchronising first) up to bounds->thaw_tries times,
 * each failure a line in @out->problems. Returns what @func returned. */
gboolean guest_agent_run_frozen(const char *socket_path, const GuestAgentBounds *bounds,
                                GuestAgentFrozenFunc func, gpointer data,
                                GuestAgentFreeze *out, GError **error);

/* Thaws the guest's filesystems (as guest_agent_run_frozen() does after
 * its function) on a thread of its own, for a QEMU found running at
 * start: a snaptreefs that died during a snapshot may have left its guest
 * frozen. A guest that is not frozen, or no agent, is no error; failures
 * are logged. */
void guest_agent_thaw_in_background(const char *socket_path);

G_END_DECLS
