/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The UIO transport: an IC service (fcopy on Linux >= 6.10) whose VMBus
 * channel is bound to uio_hv_generic, so the daemon maps the channel's two
 * rings and reads/writes packets itself.
 *
 * Kernel facts (drivers/uio/uio_hv_generic.c, drivers/hv/channel.c,
 * drivers/uio/uio.c, tools/hv/hv_fcopy_uio_daemon.c):
 * - /sys/bus/vmbus/devices/<instance GUID>/uio/uioN exists once the device is
 *   bound; /dev/uioN is the device node. Nothing binds it by default: the
 *   driver has no id table ("modprobe uio_hv_generic; echo <class GUID> >
 *   /sys/bus/vmbus/drivers/uio_hv_generic/new_id", then, if another driver
 *   holds the device, "echo -n <instance> > .../<driver>/unbind" and
 *   "echo -n <instance> > /sys/bus/vmbus/drivers/uio_hv_generic/bind").
 * - map0 ("txrx_rings", /sys/class/uio/uioN/maps/map0/size) is both rings,
 *   mmap offset 0: the first half is the outbound ring (TX, guest -> host),
 *   the second the inbound ring (RX, host -> guest); each half starts with
 *   the one-page ring header. The upstream daemon assumes 16 KiB per ring.
 * - read(fd, 4 bytes) blocks until an interrupt and returns the event count
 *   (-EAGAIN with O_NONBLOCK, poll() says POLLIN); write(fd, int 1) calls the
 *   driver's irqcontrol: the inbound interrupt_mask becomes 0 and the host
 *   is signalled. Every interrupt sets the inbound interrupt_mask to 1 first
 *   (hv_uio_channel_cb), so the reader must clear it again when it has
 *   drained the ring, then look once more.
 *
 * How a daemon gets packets: poll t->fd for POLLIN, then call
 * hv_transport_recv() until it returns -EAGAIN. Each call hands over one
 * VMBus packet's payload (from offset8 << 3: the IC message, pipe header
 * first, as hv_ic_msg_parse() expects) and consumes it from the RX ring.
 * The packet's transaction id is kept in t->last_trans_id. A payload larger
 * than the buffer is dropped (t->n_dropped) with -EMSGSIZE: give recv a
 * buffer as large as the ring. -EBADMSG: the ring is corrupt, close and
 * reopen. -EPIPE: the emulated host went away.
 *
 * hv_transport_send(buf, len) writes one VM_PKT_DATA_INBAND packet, flags 0,
 * with the last received transaction id (the kernel's util drivers echo the
 * request id; the upstream UIO daemon sends ~0 and the host accepts both),
 * payload padded to 8 bytes, and signals the host when the kernel's
 * hv_signal_on_write() rule says so (or after every send with
 * t->uio_signal_always, as the upstream daemon does). -EAGAIN: the TX ring is
 * full (the host is not reading); nothing was written.
 *
 * The emulated host ("emu:<dir>" as the device): <dir>/ring is a file of
 * the two rings (TX half first, as map0), mapped shared; <dir>/irq is a
 * SOCK_SEQPACKET socket standing in for the /dev/uioN interrupt fd, with the
 * same 4-byte reads (host -> guest: an event count) and writes (guest ->
 * host: int 1). Everything else is the same code.
 */
#pragma once

#include <stddef.h>

#include "hv-transport.h"

/* The upstream daemon's HV_RING_SIZE: one ring, header page included. */
#define HV_UIO_DEFAULT_RING_SIZE 0x4000U

/* The emulated device: "emu:" followed by a directory. */
#define HV_UIO_EMU_PREFIX "emu:"
#define HV_UIO_EMU_RING_FILE "ring"
#define HV_UIO_EMU_IRQ_SOCKET "irq"

/*
 * Finds the uio device bound to a VMBus device under sysfs_root (NULL:
 * "/sys"): the instance GUID's directory first, else the first device whose
 * class_id is class_guid. Writes "uioN" to ret_name (may be NULL).
 * -ENODEV when there is none, with an explanation and the command to bind
 * uio_hv_generic in why (may be NULL).
 */
int hv_uio_discover(const char *sysfs_root, const char *instance_guid, const char *class_guid,
		    char *ret_name, size_t name_size, char *why, size_t why_size);

/*
 * The size of map0 (both rings) of uioN from <sysfs_root>/class/uio/uioN/
 * maps/map0/size. -ENOENT if not there, -EBADMSG if unparsable.
 */
int hv_uio_map_size(const char *sysfs_root, const char *uio_name, size_t *ret);
