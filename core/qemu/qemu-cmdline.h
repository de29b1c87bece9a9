/* qemu-cmdline.h: the qemu-system command line that runs a domain definition. */
#pragma once

#include <glib.h>
#include "domain-def.h"

G_BEGIN_DECLS

/* Where a domain's QEMU keeps its pid and QMP socket: STATE/run/NAME.pid
 * and STATE/run/NAME.qmp. (transfer full) */
char *qemu_run_pidfile(const char *state_dir, const char *domain);
char *qemu_run_socket(const char *state_dir, const char *domain);

/* The guest agent's socket of a domain whose definition has the agent
 * channel: STATE/run/NAME.qga. (transfer full) */
char *qemu_run_agent_socket(const char *state_dir, const char *domain);

/* The block node name QEMU knows disk @index of a domain by (the format
 * node, which snapshot-save/-load/-delete take). (transfer full) */
char *qemu_disk_node(guint index);

typedef struct {
    gboolean paused;   /* -S: started with its CPUs stopped */
    gboolean kvm;      /* -accel kvm, else tcg */
    gboolean incoming; /* -incoming defer: memory comes by migrate-incoming */
} QemuLaunch;

/* The whole argv (argv[0] the emulator: <emulator>, else
 * qemu-system-ARCH) that starts @def daemonized, with its pidfile and QMP
 * socket in STATE/run/, every disk as -blockdev nodes qemu_disk_node(i).
 * FALSE with SNAP_ERROR_INVALID when the definition cannot be run (e.g. a
 * socket path longer than a unix socket allows). (transfer full) */
GStrv qemu_cmdline_build(const DomainDef *def, const char *state_dir,
                         const QemuLaunch *launch, GError **error);

/* TRUE when KVM can be used here: /dev/kvm opens read-write. */
gboolean qemu_kvm_usable(void);

G_END_DECLS
