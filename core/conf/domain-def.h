/* domain-def.h: the subset of libvirt's <domain> XML that snaptreefs knows. */
#pragma once

#include <glib.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

G_BEGIN_DECLS

typedef enum {
    DISK_SNAPSHOT_DEFAULT, /* attribute absent: internal for qcow2 */
    DISK_SNAPSHOT_NO,
    DISK_SNAPSHOT_INTERNAL,
    DISK_SNAPSHOT_EXTERNAL,
    DISK_SNAPSHOT_MANUAL,
} DiskSnapshotMode;

typedef enum {
    DISK_FORMAT_RAW,
    DISK_FORMAT_QCOW2,
} DiskFormat;

typedef struct {
    char *target;              /* <target dev>, e.g. "vda" */
    char *bus;                 /* <target bus>, may be NULL */
    char *source;              /* <source file>, absolute (resolved) */
    DiskFormat format;         /* <driver type> */
    DiskSnapshotMode snapshot; /* <disk snapshot=...> */
} DomainDisk;

typedef struct {
    char *type; /* <domain type>, e.g. "kvm" or "qemu" */
    char *name;
    char *uuid; /* may be NULL */
    guint64 memory_kib;
    guint vcpus;
    char *arch;       /* <os><type arch>, may be NULL */
    char *machine;    /* <os><type machine>, may be NULL */
    char *emulator;   /* may be NULL */
    GPtrArray *disks; /* of DomainDisk*, owned */
    /* A <channel> whose <target name> is org.qemu.guest_agent.0: QEMU
     * gets a virtio-serial port for the guest agent. */
    gboolean guest_agent;
    /* The <video><model type> of the display device ("vga", "cirrus",
     * ...; <graphics> alone means "vga", as libvirt adds one); NULL: no
     * display device. */
    char *video;
} DomainDef;

/* The virtio-serial port name of the QEMU guest agent. */
#define DOMAIN_GUEST_AGENT_CHANNEL "org.qemu.guest_agent.0"

void domain_disk_free(DomainDisk *disk);
void domain_def_free(DomainDef *def);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomainDisk, domain_disk_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomainDef, domain_def_free)

/* Parses a <domain> document. Relative <source file> paths resolve against
 * @base_dir (may be NULL: then they are kept relative). Unknown elements
 * are ignored with a g_debug() line. No network, no entity expansion, no
 * DTD. Returns NULL with SNAP_ERROR_INVALID on bad input. */
DomainDef *domain_def_parse(const char *xml, gsize len, const char *base_dir,
                            GError **error);

/* As domain_def_parse, and what was ignored ("<clock>", "device
 * <interface>", ...) is added to @ignored (char*; may be NULL). */
DomainDef *domain_def_parse_noting(const char *xml, gsize len, const char *base_dir,
                                   GPtrArray *ignored, GError **error);

/* A <domain> that libvirt wrote (its paths are absolute): as
 * domain_def_parse, but a disk outside the subset is left out, with a
 * line saying why ("disk vdb: a network disk, ...") added to @skipped (may
 * be NULL), instead of failing the definition; block disks are kept, with
 * their <source dev> as the source. */
DomainDef *domain_def_parse_foreign(const char *xml, gsize len, GPtrArray *skipped,
                                    GError **error);

/* Same, from an already parsed <domain> element (e.g. the one embedded in
 * a <domainsnapshot>). */
DomainDef *domain_def_parse_node(xmlNodePtr node, const char *base_dir, GError **error);

/* Writes @def as a <domain> element (libvirt's layout) into @writer. */
void domain_def_write(const DomainDef *def, xmlTextWriterPtr writer);

/* @def formatted as a standalone document, as `virsh dumpxml` prints it,
 * without the XML declaration. (transfer full) */
char *domain_def_format(const DomainDef *def);

/* The effective snapshot mode of @disk: DEFAULT resolves to INTERNAL for
 * qcow2 and NO for raw, as libvirt does for offline snapshots. */
DiskSnapshotMode domain_disk_snapshot_mode(const DomainDisk *disk);

/* The disk with target @target, or NULL. (transfer none) */
DomainDisk *domain_def_find_disk(const DomainDef *def, const char *target);

const char *disk_snapshot_mode_to_string(DiskSnapshotMode mode);

/* "no", "internal", "external" or "manual" to its mode; FALSE for any
 * other word (DEFAULT has no word: the attribute is absent). */
gboolean disk_snapshot_mode_from_string(const char *s, DiskSnapshotMode *mode);
const char *disk_format_to_string(DiskFormat format);

G_END_DECLS
