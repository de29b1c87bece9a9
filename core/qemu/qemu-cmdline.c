/* qemu-cmdline.c: domain definition -> qemu-system argv. */
#include "qemu-cmdline.h"

#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <sys/un.h>
#include <unistd.h>

#include "snap-error.h"

char *
qemu_run_pidfile(const char *state_dir, const char *domain)
{
    g_autofree char *file = g_strconcat(domain, ".pid", NULL);

    return g_build_filename(state_dir, "run", file, NULL);
}

char *
qemu_run_socket(const char *state_dir, const char *domain)
{
    g_autofree char *file = g_strconcat(domain, ".qmp", NULL);

    return g_build_filename(state_dir, "run", file, NULL);
}

char *
qemu_run_agent_socket(const char *state_dir, const char *domain)
{
    g_autofree char *file = g_strconcat(domain, ".qga", NULL);

    return g_build_filename(state_dir, "run", file, NULL);
}

/* The -device of a <video> model; unknown models get the standard VGA. */
static const char *
video_device(const char *model)
{
    static const char *const map[][2] = {
        {"cirrus", "cirrus-vga"},   {"qxl", "qxl-vga"}, {"virtio", "virtio-vga"},
        {"bochs", "bochs-display"}, {"ramfb", "ramfb"}, {"vga", "VGA"},
    };

    for (guint i = 0; i < G_N_ELEMENTS(map); i++)
        if (g_strcmp0(model, map[i][0]) == 0)
            return map[i][1];
    return "VGA";
}

/* The guest agent channel: a virtio-serial port named as qemu-ga expects,
 * on a unix socket that QEMU listens on. */
static void
add_agent_channel(GStrvBuilder *b, const char *socket)
{
    g_autofree char *chardev =
        g_strdup_printf("socket,id=qga0,path=%s,server=on,wait=off", socket);

    g_strv_builder_add_many(
        b, "-chardev", chardev, "-device", "virtio-serial-pci,id=vser0", "-device",
        "virtserialport,bus=vser0.0,chardev=qga0,name=" DOMAIN_GUEST_AGENT_CHANNEL, NULL);
}

/* Node names are QEMU identifiers (a letter first, at most 31 bytes), so
 * they are numbered rather than taken from the target, which libvirt
 * lets be any string. */
char *
qemu_disk_node(guint index)
{
    return g_strdup_printf("disk%u", index);
}

static char *
file_node(guint index)
{
    return g_strdup_printf("file%u", index);
}

gboolean
qemu_kvm_usable(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

    if (fd < 0)
        return FALSE;
    close(fd);
    return TRUE;
}

/* -blockdev takes JSON, which needs no escaping of commas in paths. */
static char *
blockdev_json(const char *driver, const char *key, const char *value, const char *node)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = NULL;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "driver");
    json_builder_add_string_value(b, driver);
    json_builder_set_member_name(b, key);
    json_builder_add_string_value(b, value);
    json_builder_set_member_name(b, "node-name");
    json_builder_add_string_value(b, node);
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    return json_generator_to_data(gen, NULL);
}

/* The guest device for a disk; buses other than IDE and SATA become
 * virtio, which needs no controller of its own. */
static char *
disk_device(const DomainDisk *disk, const char *node, guint index)
{
    const char *model = g_strcmp0(disk->bus, "ide") == 0 ? "ide-hd" : "virtio-blk-pci";

    return g_strdup_printf("%s,drive=%s,id=dev%u", model, node, index);
}

GStrv
qemu_cmdline_build(const DomainDef *def, const char *state_dir, const QemuLaunch *launch,
                   GError **error)
{
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    g_autofree char *pidfile = qemu_run_pidfile(state_dir, def->name);
    g_autofree char *socket = qemu_run_socket(state_dir, def->name);
    g_autofree char *agent = qemu_run_agent_socket(state_dir, def->name);
    g_autofree char *qmp = NULL;
    g_autofree char *test_qmp = NULL;
    g_autofree char *emulator = NULL;
    g_autofree char *mem = NULL;
    g_autofree char *smp = NULL;
    guint64 mem_mib = MAX(def->memory_kib / 1024, 16);

    /* The agent's name is as long as the monitor's. */
    if (strlen(socket) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "QMP socket path '%s' is longer than a unix socket allows; use a "
                    "shorter state directory",
                    socket);
        return NULL;
    }
    emulator = def->emulator
                   ? g_strdup(def->emulator)
                   : g_strconcat("qemu-system-", def->arch ? def->arch : "x86_64", NULL);
    qmp = g_strdup_printf("unix:%s,server=on,wait=off", socket);
    mem = g_strdup_printf("%" G_GUINT64_FORMAT "M", mem_mib);
    smp = g_strdup_printf("%u", MAX(def->vcpus, 1));

    g_strv_builder_add_many(b, emulator, "-name", def->name, "-machine",
                            def->machine ? def->machine : "pc", "-accel",
                            launch->kvm ? "kvm" : "tcg", "-m", mem, "-smp", smp,
                            "-nodefaults", "-no-user-config", "-display", "none",
                            "-daemonize", "-pidfile", pidfile, "-qmp", qmp, NULL);
    if (def->uuid)
        g_strv_builder_add_many(b, "-uuid", def->uuid, NULL);
    if (launch->paused)
        g_strv_builder_add(b, "-S");
    /* Tests drive the guest's disks through a monitor of their own: QMP
     * takes one client per socket, and snaptreefs holds the first. */
    if (g_strcmp0(g_getenv("SNAPTREEFS_TEST_MONITOR"), "1") == 0) {
        g_autofree char *test_socket = g_strconcat(socket, ".test", NULL);

        test_qmp = g_strdup_printf("unix:%s,server=on,wait=off", test_socket);
        g_strv_builder_add_many(b, "-qmp", test_qmp, NULL);
    }
    if (launch->incoming)
        g_strv_builder_add_many(b, "-incoming", "defer", NULL);
    if (def->guest_agent)
        add_agent_channel(b, agent);
    if (def->video != NULL && g_strcmp0(def->video, "none") != 0)
        g_strv_builder_add_many(b, "-device", video_device(def->video), NULL);
    for (guint i = 0; i < def->disks->len; i++) {
        const DomainDisk *disk = def->disks->pdata[i];
        g_autofree char *fnode = file_node(i);
        g_autofree char *node = qemu_disk_node(i);
        g_autofree char *file = blockdev_json("file", "filename", disk->source, fnode);
        g_autofree char *fmt = blockdev_json(
            disk->format == DISK_FORMAT_QCOW2 ? "qcow2" : "raw", "file", fnode, node);
        g_autofree char *dev = disk_device(disk, node, i);

        g_strv_builder_add_many(b, "-blockdev", file, "-blockdev", fmt, "-device", dev,
                                NULL);
    }
    return g_strv_builder_end(b);
}
