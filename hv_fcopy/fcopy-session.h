/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One host-to-guest file copy: START opens a temporary file in the target
 * directory, WRITEs land in it at their offsets, COMPLETE syncs it and
 * moves it under its final name in one step, CANCEL removes it. Whatever
 * happens in between (cancel, daemon restart, host reset), no partial file
 * ever carries the final name.
 *
 * The temporary file is an O_TMPFILE where the file system supports it (it
 * has no name, so a crash leaves nothing), else a hidden name in the same
 * directory, FCOPY_TEMP_PREFIX + 16 hex digits, created O_EXCL|O_NOFOLLOW
 * and recorded in a state file so that the next start removes it.
 *
 * Transport independent: names arrive decoded (UTF-8). Every function
 * returns 0 or -errno and logs nothing; fcopy_session_failed_step() says
 * what failed, fcopy_status_from_errno() what the host is told.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fcopy-utf16.h"
#include "hv-fcopy.h"

#define FCOPY_TEMP_PREFIX	".hv-fcopy-"
#define FCOPY_DEFAULT_FILE_MODE 0644
#define FCOPY_DEFAULT_DIR_MODE	0755
/*
 * WRITEs are gathered into one buffer of this size and written with one
 * pwrite() when it is full, when a WRITE is not contiguous with it, and at
 * COMPLETE: the host's 6,144-byte fragments would otherwise cost a system
 * call each and split every other page. Memory stays this size whatever
 * the file size.
 */
#define FCOPY_WRITE_BATCH (256 * 1024)

/* A host request, decoded by a transport adapter (see fcopy-daemon.h). */
typedef struct fcopy_request {
	uint32_t op; /* enum hv_fcopy_op, or the unknown value received */
	/* START */
	char file_name[FCOPY_NAME_UTF8_MAX];
	char path_name[FCOPY_NAME_UTF8_MAX];
	uint32_t copy_flags;
	uint64_t file_size;
	/* WRITE: data points into the adapter's receive buffer */
	uint64_t offset;
	uint32_t size;
	const uint8_t *data;
} fcopy_request;

typedef struct fcopy_options {
	mode_t file_mode;	    /* of copied files, whatever the umask */
	mode_t dir_mode;	    /* of directories made for CREATE_PATH */
	const char *const *allowed; /* normalised target directories; NULL/empty: any */
	const char *state_path;	    /* records a named temporary file; NULL: none */
	bool use_tmpfile;	    /* O_TMPFILE where supported */
} fcopy_options;

typedef enum fcopy_state {
	FCOPY_STATE_IDLE,
	FCOPY_STATE_COPYING,
	_FCOPY_STATE_MAX,
} fcopy_state;

typedef struct fcopy_session fcopy_session;

const char *fcopy_state_to_string(fcopy_state state);
const char *fcopy_op_to_string(uint32_t op);

/* The status sent to the host for a result of the functions below. */
uint32_t fcopy_status_from_errno(int r);

int fcopy_session_new(const fcopy_options *options, fcopy_session **ret);
/* Cancels a copy still open. NULL-safe. */
void fcopy_session_free(fcopy_session *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(fcopy_session, fcopy_session_free)

fcopy_state fcopy_session_get_state(const fcopy_session *s);
/* The final path of the copy in progress or last attempted ("" before any). */
const char *fcopy_session_target(const fcopy_session *s);
/* What the last failing call was doing ("create the directory", ...). */
const char *fcopy_session_failed_step(const fcopy_session *s);
/* Whether the last START had to cancel a copy still open (cleared by the next START). */
bool fcopy_session_cancelled_previous(const fcopy_session *s);
/* Bytes accepted from WRITEs so far (some maybe still batched) and the size the host announced. */
uint64_t fcopy_session_written(const fcopy_session *s);
uint64_t fcopy_session_announced_size(const fcopy_session *s);
/*
 * 0, or -errno when the last cancel (or a START that cancelled an open copy)
 * could not remove the named temporary file (e.g. EIO): it stays listed in
 * the state file and the next fcopy_cleanup_leftover() removes it.
 */
int fcopy_session_temp_left(const fcopy_session *s);
/* Whether the copy in progress uses a named temporary file (not O_TMPFILE). */
bool fcopy_session_temp_is_named(const fcopy_session *s);

/*
 * A START while a copy is open first cancels that one. -EINVAL/-ENAMETOOLONG
 * (bad names), -EACCES (not an allowed directory), -ENOENT (missing directory
 * without CREATE_PATH), -ELOOP (a symbolic link in the path), -EEXIST (exists,
 * no OVER_WRITE), -EISDIR (the target is a directory).
 */
int fcopy_session_start(fcopy_session *s, const char *dir, const char *name, uint32_t flags,
			uint64_t file_size);
/*
 * -EBADFD: no copy open. -EMSGSIZE: @size above 6,144. -EFBIG: offset overflow.
 * The data may stay in the batch (FCOPY_WRITE_BATCH) until a later call
 * writes it: a failure to write it (-ENOSPC, -EIO...) is returned by that
 * later WRITE or by COMPLETE, and by every WRITE and COMPLETE after it,
 * until CANCEL or the next START (the file would have a hole).
 */
int fcopy_session_write(fcopy_session *s, uint64_t offset, const void *data, uint32_t size);
/*
 * Writes what is batched, fsync, then the temporary file takes the final
 * name. On failure the copy is dropped.
 */
int fcopy_session_complete(fcopy_session *s);
/* Removes the temporary file; 0 also when no copy is open. */
int fcopy_session_cancel(fcopy_session *s);
/* Dispatches a decoded request to the four functions above. -EOPNOTSUPP: unknown op. */
int fcopy_session_handle(fcopy_session *s, const fcopy_request *req);

/*
 * Start-up: removes the named temporary files that @state_path lists (one
 * path a line), left by a daemon that stopped mid-copy or a cancel that
 * failed. The number removed (*ret_removed: their paths, ", "-separated),
 * 0 if none, else the first -errno; a file that cannot be removed yet stays
 * listed. Only a name starting with FCOPY_TEMP_PREFIX is ever removed, and
 * its directory is opened without following links.
 */
int fcopy_cleanup_leftover(const char *state_path, char **ret_removed);
