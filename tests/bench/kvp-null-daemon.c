/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kvp-null-daemon [DEVICE]: the floor of the KVP bench. Registers on the
 * KVP character device (default /dev/vmbus/hv_kvp) like a daemon, then
 * answers every request at once with success and the request echoed back,
 * doing nothing else: poll(), read(), write() per request, as the real
 * daemons do. What it reaches is the most any daemon can reach through the
 * same device; run only inside hv-sandbox by tests/bench/run-kvp-bench.sh
 * (--floor).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hv-kvp.h"

int main(int argc, char **argv)
{
	const char *dev = argc > 1 ? argv[1] : "/dev/vmbus/hv_kvp";
	static struct hv_kvp_msg msg;
	int fd = open(dev, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "kvp-null-daemon: %s: %s\n", dev, strerror(errno));
		return 1;
	}

	memset(&msg, 0, sizeof(msg));
	msg.kvp_hdr.operation = HV_KVP_OP_REGISTER1;
	if (write(fd, &msg, sizeof(msg)) != (ssize_t)sizeof(msg) ||
	    read(fd, &msg, sizeof(msg)) < 0) {
		fprintf(stderr, "kvp-null-daemon: registration on %s failed: %s\n", dev,
			strerror(errno));
		return 1;
	}

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("kvp-null-daemon: poll");
			return 1;
		}

		n = read(fd, &msg, sizeof(msg));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			fprintf(stderr, "kvp-null-daemon: read: %s\n", n ? strerror(errno) : "EOF");
			return 1;
		}

		msg.error = 0;
		if (write(fd, &msg, sizeof(msg)) < 0 && errno != EINVAL && errno != EFAULT) {
			perror("kvp-null-daemon: write");
			return 1;
		}
	}
}
