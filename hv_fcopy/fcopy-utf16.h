/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Name conversion for FCOPY. The host sends file and path names as
 * NUL-terminated UTF-16LE (at most HV_FCOPY_W_MAX_PATH units, terminator
 * included). Over the UIO ring (Linux >= 6.10) the daemon decodes them
 * itself; over the char device (<= 6.9) the kernel already did, and the
 * daemon only checks that what it got is UTF-8.
 *
 * Strict both ways: an unpaired surrogate, an overlong or out-of-range
 * UTF-8 sequence, or a missing terminator is an error, never replaced by
 * a stand-in character. Pure functions, no allocation.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "hv-fcopy.h"

/* Largest UTF-8 form of a wire name: 259 units of at most 3 bytes each, plus NUL. */
#define FCOPY_NAME_UTF8_MAX (3 * (HV_FCOPY_W_MAX_PATH - 1) + 1)

/*
 * Decodes the UTF-16LE string at @src (bytes, any alignment) of at most
 * @max_units units, terminator included, into @dst (NUL-terminated).
 * 0 and *ret_len = bytes written without the NUL. -EBADMSG: no terminator
 * within @max_units. -EILSEQ: an unpaired surrogate, at unit *ret_bad_unit.
 * -ENAMETOOLONG: @dst is too small. @ret_len and @ret_bad_unit may be NULL.
 */
int fcopy_utf16le_to_utf8(const void *src, size_t max_units, char *dst, size_t dst_size,
			  size_t *ret_len, size_t *ret_bad_unit);

/*
 * Checks that @buf holds a NUL-terminated, valid UTF-8 string within @size
 * bytes (no overlong forms, no surrogates, nothing above U+10FFFF).
 * 0 and *ret_len = its length. -EBADMSG: no NUL within @size. -EILSEQ:
 * invalid, at byte *ret_bad_byte.
 */
int fcopy_utf8_check(const void *buf, size_t size, size_t *ret_len, size_t *ret_bad_byte);

/*
 * Encodes the UTF-8 string @s as NUL-terminated UTF-16LE (little-endian
 * bytes whatever the host order) into @dst of @dst_units units, for the
 * emulated host and the tests. 0 and *ret_units = units without the NUL.
 * -EILSEQ: @s is not valid UTF-8. -ENAMETOOLONG: it does not fit.
 */
int fcopy_utf8_to_utf16le(const char *s, void *dst, size_t dst_units, size_t *ret_units);
