/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "transport-uio.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "hv-ic.h"
#include "vmbus-ring.h"

typedef struct uio_priv {
	void *map;
	size_t map_size;
	hv_ring tx; /* guest -> host, first half */
	hv_ring rx; /* host -> guest, second half */
	bool emu;
	bool irq_taken; /* the notification of this wakeup was read; cleared at -EAGAIN */
} uio_priv;

static const char *root_or(const char *root, const char *dflt)
{
	return root ? root : dflt;
}

static void why_set(char *why, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void why_set(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (!why || !size)
		return;

	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
}

/* Reads a small sysfs attribute, trailing newline removed. */
static int read_attr(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;

	n = read(fd, buf, size - 1);
	if (n < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	close(fd);

	buf[n] = '\0';
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		buf[--n] = '\0';
	return 0;
}

/* The first "uioN" entry under <dev>/uio; -ENOENT if the directory is missing, -ENODEV if empty. */
static int first_uio(const char *devdir, char *ret, size_t size)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int r = -ENODEV;

	if ((size_t)snprintf(path, sizeof(path), "%s/uio", devdir) >= sizeof(path))
		return -ENAMETOOLONG;

	d = opendir(path);
	if (!d)
		return errno == ENOENT ? -ENOENT : -errno;

	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "uio", 3) != 0 || !isdigit((unsigned char)de->d_name[3]))
			continue;

		if (ret) {
			if ((size_t)snprintf(ret, size, "%s", de->d_name) >= size) {
				r = -ENAMETOOLONG;
				break;
			}
		}
		r = 0;
		break;
	}

	closedir(d);
	return r;
}

/* class_id reads "{34d14be3-...}" (vmbus_drv.c class_id_show): compare without braces, any case. */
static bool guid_equal(const char *attr, const char *guid)
{
	size_t n = strlen(guid);

	if (*attr == '{')
		attr++;

	if (strncasecmp(attr, guid, n) != 0)
		return false;

	return attr[n] == '\0' || (attr[n] == '}' && attr[n + 1] == '\0');
}

static int bind_hint(char *why, size_t size, const char *devdir, const char *instance,
		     const char *class_guid)
{
	why_set(why, size,
		"%s is not bound to uio_hv_generic; bind it: modprobe uio_hv_generic && "
		"echo %s > /sys/bus/vmbus/drivers/uio_hv_generic/new_id (if another driver holds "
		"it: echo -n %s > /sys/bus/vmbus/devices/%s/driver/unbind, then echo -n %s > "
		"/sys/bus/vmbus/drivers/uio_hv_generic/bind)",
		devdir, class_guid ? class_guid : "<class GUID>", instance, instance, instance);
	return -ENODEV;
}

int hv_uio_discover(const char *sysfs_root, const char *instance_guid, const char *class_guid,
		    char *ret_name, size_t name_size, char *why, size_t why_size)
{
	const char *root = root_or(sysfs_root, "/sys");
	char devices[PATH_MAX], devdir[PATH_MAX], attr[128];
	struct dirent *de;
	DIR *d;
	int r;

	if (!instance_guid && !class_guid)
		return -EINVAL;

	if ((size_t)snprintf(devices, sizeof(devices), "%s/bus/vmbus/devices", root) >=
	    sizeof(devices))
		return -ENAMETOOLONG;

	if (instance_guid) {
		if ((size_t)snprintf(devdir, sizeof(devdir), "%s/%s", devices, instance_guid) >=
		    sizeof(devdir))
			return -ENAMETOOLONG;

		r = first_uio(devdir, ret_name, name_size);
		if (r == 0)
			return 0;

		if (access(devdir, F_OK) == 0)
			return bind_hint(why, why_size, devdir, instance_guid, class_guid);
	}

	if (!class_guid) {
		why_set(why, why_size, "no VMBus device %s in %s (is this a Hyper-V guest?)",
			instance_guid, devices);
		return -ENODEV;
	}

	d = opendir(devices);
	if (!d) {
		why_set(why, why_size, "no %s (not a Hyper-V guest, or hv_vmbus is not loaded)",
			devices);
		return -ENODEV;
	}

	r = -ENODEV;
	while ((de = readdir(d))) {
		char path[PATH_MAX];

		if (de->d_name[0] == '.')
			continue;

		if ((size_t)snprintf(path, sizeof(path), "%s/%s/class_id", devices, de->d_name) >=
		    sizeof(path))
			continue;

		if (read_attr(path, attr, sizeof(attr)) < 0 || !guid_equal(attr, class_guid))
			continue;

		if ((size_t)snprintf(devdir, sizeof(devdir), "%s/%s", devices, de->d_name) >=
		    sizeof(devdir))
			continue;

		r = first_uio(devdir, ret_name, name_size);
		if (r == 0)
			break;

		r = bind_hint(why, why_size, devdir, de->d_name, class_guid);
		break;
	}
	closedir(d);

	if (r == -ENODEV && why && why_size && !why[0])
		why_set(why, why_size,
			"no VMBus device of class %s in %s (is the Guest services integration "
			"service enabled for this VM?)",
			class_guid, devices);
	return r;
}

int hv_uio_map_size(const char *sysfs_root, const char *uio_name, size_t *ret)
{
	char path[PATH_MAX], attr[64], *end;
	unsigned long long v;
	int r;

	if (!uio_name || !ret)
		return -EINVAL;

	if ((size_t)snprintf(path, sizeof(path), "%s/class/uio/%s/maps/map0/size",
			     root_or(sysfs_root, "/sys"), uio_name) >= sizeof(path))
		return -ENAMETOOLONG;

	r = read_attr(path, attr, sizeof(attr));
	if (r < 0)
		return r;

	errno = 0;
	v = strtoull(attr, &end, 0);
	if (errno || end == attr || *end || v == 0 || v > SIZE_MAX)
		return -EBADMSG;

	*ret = (size_t)v;
	return 0;
}

/* Splits the map into the two rings; each half must hold a header page and some data. */
static int attach_rings(uio_priv *p)
{
	size_t half = p->map_size / 2;
	int r;

	if (p->map_size % 2)
		return -EBADMSG;

	r = hv_ring_attach(&p->tx, p->map, half);
	if (r < 0)
		return -EBADMSG;

	r = hv_ring_attach(&p->rx, (uint8_t *)p->map + half, half);
	if (r < 0)
		return -EBADMSG;

	return 0;
}

static int open_uio_dev(hv_transport *t, uio_priv *p)
{
	char name[64], path[PATH_MAX];
	const char *base;
	char *dev;
	int r;

	if (strcmp(t->device, "uio:sysfs") == 0)
		t->uio_rediscover = true;
	if (t->uio_rediscover) {
		r = hv_uio_discover(t->sysfs_root, t->service->uio_instance_guid,
				    t->service->uio_class_guid, name, sizeof(name), t->open_why,
				    sizeof(t->open_why));
		if (r < 0)
			return r;

		if ((size_t)snprintf(path, sizeof(path), "%s/%s", root_or(t->dev_root, "/dev"),
				     name) >= sizeof(path))
			return -ENAMETOOLONG;

		dev = strdup(path);
		if (!dev)
			return -ENOMEM;
		free(t->device);
		t->device = dev;
	}

	base = strrchr(t->device, '/');
	base = base ? base + 1 : t->device;

	/* The driver's map size; the upstream constant if sysfs does not say. */
	r = hv_uio_map_size(t->sysfs_root, base, &p->map_size);
	if (r == -ENOENT)
		p->map_size = 2 * (size_t)HV_UIO_DEFAULT_RING_SIZE;
	else if (r < 0)
		return r;

	t->fd = open(t->device, O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (t->fd < 0) {
		r = -errno;
		why_set(t->open_why, sizeof(t->open_why), "cannot open %s: %s", t->device,
			strerror(-r));
		return r;
	}

	/* map0 is at offset 0 (UIO maps map N at N pages). */
	p->map = mmap(NULL, p->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd, 0);
	if (p->map == MAP_FAILED) {
		p->map = NULL;
		return -errno;
	}

	return 0;
}

static int open_emu(hv_transport *t, uio_priv *p)
{
	const char *dir = t->device + strlen(HV_UIO_EMU_PREFIX);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char path[PATH_MAX];
	struct stat st;
	int fd, r;

	p->emu = true;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, HV_UIO_EMU_RING_FILE) >=
	    sizeof(path))
		return -ENAMETOOLONG;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;

	if (fstat(fd, &st) < 0 || st.st_size <= 0) {
		r = st.st_size <= 0 ? -EBADMSG : -errno;
		close(fd);
		return r;
	}

	p->map_size = (size_t)st.st_size;
	p->map = mmap(NULL, p->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	r = -errno;
	close(fd);
	if (p->map == MAP_FAILED) {
		p->map = NULL;
		return r;
	}

	/*
	 * Interrupts on before the host sees us connect, so that anything it
	 * posts after accepting raises one.
	 */
	r = attach_rings(p);
	if (r < 0)
		return r;
	hv_ring_set_interrupt_mask(&p->rx, false);

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir,
			     HV_UIO_EMU_IRQ_SOCKET) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;

	t->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (t->fd < 0)
		return -errno;

	if (connect(t->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;

	return 0;
}

static void uio_free_priv(hv_transport *t)
{
	uio_priv *p = t->priv;

	if (!p)
		return;

	if (p->map)
		munmap(p->map, p->map_size);
	free(p);
	t->priv = NULL;
}

static int uio_open(hv_transport *t)
{
	uio_priv *p;
	int r;

	t->open_why[0] = '\0';
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	t->priv = p;

	if (strncmp(t->device, HV_UIO_EMU_PREFIX, strlen(HV_UIO_EMU_PREFIX)) == 0)
		r = open_emu(t, p);
	else
		r = open_uio_dev(t, p);
	if (r == 0)
		r = attach_rings(p);
	if (r < 0) {
		if (t->fd >= 0)
			close(t->fd);
		t->fd = -1;
		uio_free_priv(t);
		return r;
	}

	/* Take host -> guest interrupts (the upstream daemon's "rxbr.vbr->imask = 0"). */
	hv_ring_set_interrupt_mask(&p->rx, false);
	t->last_trans_id = 0;
	return 0;
}

/*
 * Consumes the pending interrupt notifications without blocking, in one
 * system call: a UIO device returns the event count in one read (and then
 * EAGAIN here); the emulated host's socket holds one 4-byte message per
 * interrupt, all taken with one recvmmsg() so that none is left behind to
 * pile up (a UIO device's count never does).
 */
#define EMU_IRQ_BATCH 64

static int drain_irq(hv_transport *t)
{
	uio_priv *p = t->priv;

	for (;;) {
		uint32_t count[EMU_IRQ_BATCH];
		ssize_t n;

		if (p->emu) {
			struct mmsghdr msgs[EMU_IRQ_BATCH];
			struct iovec iov[EMU_IRQ_BATCH];
			int got;

			memset(msgs, 0, sizeof(msgs));
			for (int i = 0; i < EMU_IRQ_BATCH; i++) {
				iov[i].iov_base = &count[i];
				iov[i].iov_len = sizeof(count[i]);
				msgs[i].msg_hdr.msg_iov = &iov[i];
				msgs[i].msg_hdr.msg_iovlen = 1;
			}
			got = recvmmsg(t->fd, msgs, EMU_IRQ_BATCH, MSG_DONTWAIT, NULL);
			if (got > 0) {
				for (int i = 0; i < got; i++) {
					/* End of file: the emulated host closed its end. */
					if (msgs[i].msg_len == 0)
						return -EPIPE;
					if (msgs[i].msg_len != sizeof(count[i]))
						return -EIO;
					t->n_interrupts++;
				}
				if (got == EMU_IRQ_BATCH)
					continue;
				return 0;
			}
			n = got < 0 ? -1 : 0;
		} else {
			n = read(t->fd, &count[0], sizeof(count[0]));
			if (n == sizeof(count[0])) {
				t->n_interrupts++;
				return 0;
			}
		}

		if (n < 0 && errno == EINTR)
			continue;

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;

		if (n < 0)
			return -errno;

		/* End of file: the emulated host closed its end (a UIO device never does this). */
		if (n == 0)
			return p->emu ? -EPIPE : 0;

		return -EIO;
	}
}

static int signal_host(hv_transport *t)
{
	int32_t one = 1;

	for (;;) {
		ssize_t n = write(t->fd, &one, sizeof(one));

		if (n == sizeof(one)) {
			t->n_signals++;
			return 0;
		}

		if (n < 0 && errno == EINTR)
			continue;

		/*
		 * The emulated host's socket is full of signals it has not
		 * read yet: it is bound to look, so this one is not needed.
		 * (A UIO device never says EAGAIN here.)
		 */
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;

		return n < 0 ? -errno : -EIO;
	}
}

static ssize_t uio_recv(hv_transport *t, void *buf, size_t size)
{
	uio_priv *p = t->priv;
	bool rearmed = false;
	int r;

	/*
	 * Once per wakeup: the caller receives until -EAGAIN, and only the
	 * first call after that can have a notification to take.
	 */
	if (!p->irq_taken) {
		r = drain_irq(t);
		if (r < 0)
			return r;
		p->irq_taken = true;
	}

	for (;;) {
		struct hv_vmpacket_descriptor desc;
		bool signal = false;
		ssize_t n;

		n = hv_ring_read(&p->rx, buf, size, false, &desc, &signal);
		if (n == -ENOBUFS) {
			r = hv_ring_skip(&p->rx, &signal);
			if (r < 0)
				return r;
			t->n_dropped++;
			n = -EMSGSIZE;
		} else if (n >= 0) {
			t->last_trans_id = desc.trans_id;
		}

		if (n == -EAGAIN && !rearmed) {
			/*
			 * Drained: take interrupts again, then look once more,
			 * since a packet written while the mask was set raised
			 * none.
			 */
			hv_ring_set_interrupt_mask(&p->rx, false);
			rearmed = true;
			continue;
		}

		/* The host waits for room in its ring: tell it there is some now. */
		if (signal) {
			r = signal_host(t);
			if (r < 0)
				return r;
		}

		if (n == -EAGAIN)
			p->irq_taken = false;
		return n;
	}
}

static int uio_send(hv_transport *t, const void *buf, size_t len)
{
	uio_priv *p = t->priv;
	bool signal = false;
	int r;

	r = hv_ring_write_packet(&p->tx, HV_VM_PKT_DATA_INBAND, 0, t->last_trans_id, buf, len,
				 &signal);
	if (r < 0)
		return r;

	/* The packet is in the ring now: never report -EAGAIN after this point. */
	if (signal || t->uio_signal_always) {
		r = signal_host(t);
		if (r == -EAGAIN)
			r = -EIO;
		return r;
	}

	return 0;
}

static void uio_close(hv_transport *t)
{
	close(t->fd);
	uio_free_priv(t);
}

const hv_transport_ops hv_transport_uio_ops = {
    .name = "uio",
    .open = uio_open,
    .recv = uio_recv,
    .send = uio_send,
    .close = uio_close,
};
