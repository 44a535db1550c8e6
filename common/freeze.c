/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Freeze executor. Opens every target of a plan, flushes them in parallel,
 * then freezes them wave by wave; the handle owns exactly what it froze and
 * thaws exactly that, in reverse order.
 *
 * Between the first FIFREEZE and the last FITHAW this file does no I/O other
 * than the ioctls, close() and appends to the marker (a tmpfs file), and logs
 * nothing: a write to a frozen file system would block us, and with us the
 * thaw.
 */
#include "hv-freeze.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* At most this many syncfs() or FIFREEZE at once. */
#define WORKERS_MAX 16
#define WORKER_STACK_SIZE (64 * 1024)

typedef struct freeze_item {
	hv_freeze_entry entry; /* handed out by hv_freeze_get_entry() */
	int fd;
	dev_t dev;             /* st_dev of the opened mount point, 0 if unknown */
} freeze_item;

struct hv_freeze {
	freeze_item *items;
	unsigned int n_items;
	bool foreign_is_error;
	bool parallel;
	char *marker_path;
	int marker_fd;
};

static const char *const result_names[_HV_FREEZE_RESULT_MAX] = {
	[HV_FREEZE_FROZEN] = "frozen",
	[HV_FREEZE_UNSUPPORTED] = "unsupported",
	[HV_FREEZE_GONE] = "gone",
	[HV_FREEZE_FOREIGN] = "foreign",
	[HV_FREEZE_FAILED] = "failed",
	[HV_FREEZE_NOT_TRIED] = "not-tried",
	[HV_FREEZE_THAWED] = "thawed",
};

const char *hv_freeze_result_to_string(hv_freeze_result result)
{
	if ((unsigned int) result >= _HV_FREEZE_RESULT_MAX)
		return NULL;

	return result_names[result];
}

static void item_close(freeze_item *item)
{
	if (item->fd >= 0) {
		close(item->fd);
		item->fd = -1;
	}
}

/* The one place that issues FIFREEZE / FITHAW; returns 0 or -errno. */
static int fs_ioctl(int fd, bool freeze)
{
	if (ioctl(fd, freeze ? FIFREEZE : FITHAW, 0) < 0)
		return -errno;

	return 0;
}

static void marker_append(hv_freeze *f, GString *buf, hv_freeze_mark mark,
			  const freeze_item *item)
{
	if (f->marker_fd >= 0)
		hv_freeze_marker_add(buf, mark, item->dev, item->entry.mountpoint);
}

static int marker_flush(hv_freeze *f, GString *buf)
{
	int r = 0;

	if (f->marker_fd >= 0 && buf->len > 0)
		r = hv_freeze_marker_write(f->marker_fd, buf);

	g_string_truncate(buf, 0);
	return r;
}

/* Nothing of ours is frozen any more: the marker has nothing left to say. */
static void marker_remove(hv_freeze *f)
{
	if (f->marker_fd < 0)
		return;

	unlink(f->marker_path);
	close(f->marker_fd);
	f->marker_fd = -1;
}

static void open_item(freeze_item *item)
{
	struct stat st;

	item->fd = open(item->entry.mountpoint,
			O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (item->fd < 0) {
		item->entry.error = -errno;
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			item->entry.result = HV_FREEZE_GONE;
		else
			item->entry.result = HV_FREEZE_FAILED;

		return;
	}

	/* Recorded in the marker, so that recovery thaws this file system only. */
	if (fstat(item->fd, &st) == 0)
		item->dev = st.st_dev;
}

/* Returns the error that stops the freeze, 0 otherwise. */
static int freeze_item_run(hv_freeze *f, freeze_item *item)
{
	gint64 start = g_get_monotonic_time();
	int r;

	r = fs_ioctl(item->fd, true);
	item->entry.freeze_us = g_get_monotonic_time() - start;
	item->entry.error = r;
	switch (r) {
	case 0:
		item->entry.result = HV_FREEZE_FROZEN;
		return 0;
	case -EOPNOTSUPP:
		item->entry.result = HV_FREEZE_UNSUPPORTED;
		return 0;
	case -EBUSY:
		/* Frozen by somebody else: never ours to thaw. */
		item->entry.result = HV_FREEZE_FOREIGN;
		return f->foreign_is_error ? r : 0;
	default:
		item->entry.result = HV_FREEZE_FAILED;
		return r;
	}
}

/*
 * Runs @fn on the opened items [first, last) with up to WORKERS_MAX threads
 * (the calling thread is one of them). Workers wait until all are created,
 * so that the frozen window does not include thread start-up, then take the
 * next item from a shared counter. Once a call of @fn has stored an error in
 * ->stop, the items nobody has taken yet are left alone (NOT_TRIED). The
 * workers neither log nor allocate: they may run while things are frozen.
 * A failed pthread_create() only costs parallelism.
 */
typedef struct work_ctx {
	hv_freeze *f;
	unsigned int next;
	unsigned int last;
	int stop;
	int (*fn)(hv_freeze *f, freeze_item *item);
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool go;
} work_ctx;

static void *worker(void *data)
{
	work_ctx *ctx = data;

	pthread_mutex_lock(&ctx->lock);
	while (!ctx->go)
		pthread_cond_wait(&ctx->cond, &ctx->lock);

	pthread_mutex_unlock(&ctx->lock);
	for (;;) {
		unsigned int i = __atomic_fetch_add(&ctx->next, 1, __ATOMIC_RELAXED);
		int r, expected = 0;

		if (i >= ctx->last || __atomic_load_n(&ctx->stop, __ATOMIC_ACQUIRE) < 0)
			break;

		if (ctx->f->items[i].fd < 0)
			continue;

		r = ctx->fn(ctx->f, &ctx->f->items[i]);
		if (r < 0)
			__atomic_compare_exchange_n(&ctx->stop, &expected, r, false,
						    __ATOMIC_RELEASE, __ATOMIC_RELAXED);
	}

	return NULL;
}

static unsigned int count_open(const hv_freeze *f, unsigned int first, unsigned int last)
{
	unsigned int i, n = 0;

	for (i = first; i < last; i++)
		if (f->items[i].fd >= 0)
			n++;

	return n;
}

/* Returns the first error stored by @fn, 0 otherwise. */
static int run_parallel(hv_freeze *f, unsigned int first, unsigned int last,
			int (*fn)(hv_freeze *f, freeze_item *item))
{
	pthread_t threads[WORKERS_MAX - 1];
	work_ctx ctx = {
		.f = f, .next = first, .last = last, .fn = fn,
		.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
	};
	unsigned int i, n_open = count_open(f, first, last), n_threads = 0, n_wanted;
	sigset_t all, saved;
	pthread_attr_t attr;

	if (n_open == 0)
		return 0;

	n_wanted = MIN(n_open, WORKERS_MAX) - 1;
	if (n_wanted > 0 && pthread_attr_init(&attr) == 0) {
		pthread_attr_setstacksize(&attr, WORKER_STACK_SIZE);
		/* Signals stay with the daemon's threads. */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &saved);
		for (i = 0; i < n_wanted; i++) {
			if (pthread_create(&threads[n_threads], &attr, worker, &ctx) != 0)
				break;

			n_threads++;
		}

		pthread_sigmask(SIG_SETMASK, &saved, NULL);
		pthread_attr_destroy(&attr);
	}

	pthread_mutex_lock(&ctx.lock);
	ctx.go = true;
	pthread_cond_broadcast(&ctx.cond);
	pthread_mutex_unlock(&ctx.lock);
	worker(&ctx);
	for (i = 0; i < n_threads; i++)
		pthread_join(threads[i], NULL);

	pthread_mutex_destroy(&ctx.lock);
	pthread_cond_destroy(&ctx.cond);
	return ctx.stop;
}

static int preflush_item(hv_freeze *f, freeze_item *item)
{
	/*
	 * Errors do not matter here: FIFREEZE does the authoritative sync,
	 * this only moves the writeback out of the frozen window.
	 */
	syncfs(item->fd);
	return 0;
}

/* syncfs() every opened target in parallel; returns when all are done. */
static void preflush(hv_freeze *f)
{
	run_parallel(f, 0, f->n_items, preflush_item);
}

/*
 * Freezes items [first, last), which share a wave: they do not depend on
 * each other, so with f->parallel they are frozen at the same time. The
 * marker names every one of them before the first FIFREEZE, and after the
 * wave says which of them turned out not to be ours.
 */
static int freeze_wave(hv_freeze *f, GString *buf, unsigned int first, unsigned int last)
{
	unsigned int i;
	int r, k;

	for (i = first; i < last; i++)
		if (f->items[i].fd >= 0)
			marker_append(f, buf, HV_FREEZE_MARK_OURS, &f->items[i]);

	r = marker_flush(f, buf);
	if (r < 0)
		return r;

	if (f->parallel && count_open(f, first, last) > 1) {
		r = run_parallel(f, first, last, freeze_item_run);
	} else {
		for (i = first; i < last; i++) {
			if (f->items[i].fd < 0)
				continue;

			r = freeze_item_run(f, &f->items[i]);
			if (r < 0)
				break;
		}
	}

	for (i = first; i < last; i++)
		if (f->items[i].fd >= 0 && f->items[i].entry.result != HV_FREEZE_FROZEN)
			marker_append(f, buf, HV_FREEZE_MARK_NOT_OURS, &f->items[i]);

	k = marker_flush(f, buf);
	return r < 0 ? r : k;
}

/*
 * Thaw is sequential, in reverse plan order, so in reverse wave order, and
 * the FITHAW calls follow each other with nothing in between but the clock
 * reads: closing the fds and the marker's T lines wait for settle(), so that
 * a caller can answer the host first (hv_freeze_thaw_now()). Until then the
 * marker still names file systems that are thawed already; that is harmless,
 * since recovery's FITHAW of a file system that is not frozen is EINVAL and
 * skipped (freeze-marker.c). It never names less than what is frozen.
 *
 * A parallel thaw was measured and does not pay off: FITHAW does no
 * writeback, and threads only add their start-up and wake-up costs.
 * tests/bench (run-vss-bench.sh, 2 CPUs, zram, 16 fs ext4/xfs/btrfs, median
 * of 7): FITHAW loop 0.93 ms (8 MiB dirty before the freeze) and 0.96 ms
 * (64 MiB), one thread per fs 4.59 ms and 4.67 ms. Measured again with the
 * daemon's thaw boosted (SCHED_FIFO, vss-daemon.c), THAW request to reply,
 * medians of 10-14 rounds in one sandbox: sequential 1.67 and 1.81 ms (8 MiB),
 * 2.79 ms (64 MiB); two SCHED_FIFO threads per wave 1.59, 1.90 and 1.55 ms;
 * one thread per fs 4.04 ms (8 MiB): no steady gain either.
 */
static int thaw_ioctls(hv_freeze *f)
{
	int first_error = 0;
	unsigned int i;

	for (i = f->n_items; i-- > 0;) {
		freeze_item *item = &f->items[i];
		gint64 start;
		int r;

		if (item->entry.result != HV_FREEZE_FROZEN)
			continue;

		start = g_get_monotonic_time();
		r = fs_ioctl(item->fd, false);
		item->entry.thaw_us = g_get_monotonic_time() - start;
		/* EINVAL: not frozen any more (an admin thawed it): done as well. */
		if (r < 0 && r != -EINVAL) {
			item->entry.error = r;
			if (first_error == 0)
				first_error = r;

			continue;
		}

		item->entry.result = HV_FREEZE_THAWED;
		item->entry.error = 0;
	}

	return first_error;
}

/*
 * Bookkeeping after the thaw: closes the fd of every entry that is not
 * frozen, appends a T line for each entry thawed since the last call (one
 * write), and removes the marker once nothing of ours is frozen; while
 * something is, the marker stays for recovery to retry.
 */
static void settle(hv_freeze *f)
{
	g_autoptr(GString) buf = g_string_sized_new(256);
	unsigned int i;

	for (i = f->n_items; i-- > 0;) {
		freeze_item *item = &f->items[i];

		if (item->entry.result == HV_FREEZE_FROZEN)
			continue;

		if (item->entry.result == HV_FREEZE_THAWED && item->fd >= 0)
			marker_append(f, buf, HV_FREEZE_MARK_THAWED, item);

		item_close(item);
	}

	marker_flush(f, buf);
	if (!hv_freeze_is_frozen(f))
		marker_remove(f);
}

static int thaw_all(hv_freeze *f)
{
	int r = thaw_ioctls(f);

	settle(f);
	return r;
}

static void close_unfrozen(hv_freeze *f)
{
	unsigned int i;

	for (i = 0; i < f->n_items; i++)
		if (f->items[i].entry.result != HV_FREEZE_FROZEN)
			item_close(&f->items[i]);
}

int hv_freeze_execute(const hv_freeze_plan *plan, const hv_freeze_options *options,
		      hv_freeze **ret)
{
	static const hv_freeze_options defaults = HV_FREEZE_OPTIONS_INIT;
	g_autoptr(hv_freeze) f = NULL;
	g_autoptr(GString) buf = NULL;
	unsigned int i, first;
	int r = 0;

	if (!plan || !plan->targets)
		return -EINVAL;

	if (!options)
		options = &defaults;

	f = g_new0(hv_freeze, 1);
	f->marker_fd = -1;
	f->foreign_is_error = options->foreign_is_error;
	f->parallel = options->parallel_freeze;
	f->marker_path = g_strdup(options->marker_path);
	f->n_items = plan->targets->len;
	f->items = g_new0(freeze_item, MAX(f->n_items, 1));
	for (i = 0; i < f->n_items; i++) {
		const hv_freeze_target *t = g_ptr_array_index(plan->targets, i);
		freeze_item *item = &f->items[i];

		item->fd = -1;
		item->entry.mountpoint = g_strdup(t->mountpoint);
		item->entry.fstype = g_strdup(t->fstype);
		item->entry.wave = t->wave;
		item->entry.result = HV_FREEZE_NOT_TRIED;
	}

	/* Open everything first: a path that fails to open fails before any freeze. */
	for (i = 0; i < f->n_items; i++) {
		if (!f->items[i].entry.mountpoint) {
			f->items[i].entry.result = HV_FREEZE_FAILED;
			f->items[i].entry.error = -EINVAL;
		} else {
			open_item(&f->items[i]);
		}

		if (f->items[i].entry.result == HV_FREEZE_FAILED && r == 0)
			r = f->items[i].entry.error;
	}

	if (r < 0)
		goto fail;

	if (options->preflush)
		preflush(f);

	if (f->marker_path) {
		r = hv_freeze_marker_create(f->marker_path);
		if (r < 0)
			goto fail;

		f->marker_fd = r;
		r = 0;
	}

	buf = g_string_sized_new(1024);
	for (first = 0; first < f->n_items;) {
		unsigned int last = first + 1;

		while (last < f->n_items && f->items[last].entry.wave == f->items[first].entry.wave)
			last++;

		r = freeze_wave(f, buf, first, last);
		if (r < 0)
			goto fail;

		first = last;
	}

	close_unfrozen(f);
	if (!hv_freeze_is_frozen(f))
		marker_remove(f);

	if (ret)
		*ret = g_steal_pointer(&f);

	return 0;

fail:
	/* Roll back; the error that stopped the freeze is the one reported. */
	thaw_all(f);
	close_unfrozen(f);
	if (ret)
		*ret = g_steal_pointer(&f);

	return r;
}

int hv_freeze_thaw(hv_freeze *freeze)
{
	if (!freeze)
		return -EINVAL;

	return thaw_all(freeze);
}

int hv_freeze_thaw_now(hv_freeze *freeze)
{
	if (!freeze)
		return -EINVAL;

	return thaw_ioctls(freeze);
}

void hv_freeze_settle(hv_freeze *freeze)
{
	if (freeze)
		settle(freeze);
}

bool hv_freeze_is_frozen(const hv_freeze *freeze)
{
	unsigned int i;

	if (!freeze)
		return false;

	for (i = 0; i < freeze->n_items; i++)
		if (freeze->items[i].entry.result == HV_FREEZE_FROZEN)
			return true;

	return false;
}

unsigned int hv_freeze_n_entries(const hv_freeze *freeze)
{
	return freeze ? freeze->n_items : 0;
}

const hv_freeze_entry *hv_freeze_get_entry(const hv_freeze *freeze, unsigned int i)
{
	if (!freeze || i >= freeze->n_items)
		return NULL;

	return &freeze->items[i].entry;
}

void hv_freeze_free(hv_freeze *freeze)
{
	unsigned int i;

	if (!freeze)
		return;

	/* Thaws what is still frozen, records what a hv_freeze_thaw_now() thawed. */
	thaw_all(freeze);

	for (i = 0; i < freeze->n_items; i++) {
		item_close(&freeze->items[i]);
		g_free(freeze->items[i].entry.mountpoint);
		g_free(freeze->items[i].entry.fstype);
	}

	/* Still open only when a thaw failed: the marker stays for recovery. */
	if (freeze->marker_fd >= 0)
		close(freeze->marker_fd);

	g_free(freeze->items);
	g_free(freeze->marker_path);
	g_free(freeze);
}
