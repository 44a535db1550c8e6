/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "fcopy-utf16.h"

#include <errno.h>
#include <string.h>

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v & 0xff);
	p[1] = (uint8_t)(v >> 8);
}

static size_t utf8_encode(uint32_t cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

int fcopy_utf16le_to_utf8(const void *src, size_t max_units, char *dst, size_t dst_size,
			  size_t *ret_len, size_t *ret_bad_unit)
{
	const uint8_t *p = src;
	size_t out = 0;

	size_t n_units = max_units;

	if (!src || !dst || dst_size == 0)
		return -EINVAL;

	if (max_units == 0)
		return -EBADMSG;

	/* A missing terminator is the fault, whatever else is wrong with the field. */
	for (size_t i = 0; i < max_units; i++)
		if (get_le16(p + 2 * i) == 0) {
			n_units = i + 1;
			break;
		}
	if (n_units == max_units && get_le16(p + 2 * (max_units - 1)) != 0)
		return -EBADMSG;

	for (size_t i = 0; i < n_units; i++) {
		uint16_t u = get_le16(p + 2 * i);
		uint32_t cp = u;
		char enc[4];
		size_t n;

		if (u == 0) {
			dst[out] = '\0';
			if (ret_len)
				*ret_len = out;
			return 0;
		}

		if (u >= 0xdc00 && u <= 0xdfff) {
			/* a low surrogate with no high one before it */
			if (ret_bad_unit)
				*ret_bad_unit = i;
			return -EILSEQ;
		}

		if (u >= 0xd800 && u <= 0xdbff) {
			uint16_t lo = i + 1 < n_units ? get_le16(p + 2 * (i + 1)) : 0;

			if (lo < 0xdc00 || lo > 0xdfff) {
				if (ret_bad_unit)
					*ret_bad_unit = i;
				return -EILSEQ;
			}
			cp = 0x10000 + (((uint32_t)u - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
			i++;
		}

		n = utf8_encode(cp, enc);
		/* room for the sequence and the terminator */
		if (out + n + 1 > dst_size)
			return -ENAMETOOLONG;

		memcpy(dst + out, enc, n);
		out += n;
	}

	return -EBADMSG;
}

/*
 * Decodes one UTF-8 sequence at @s (at most @avail bytes). Returns its
 * length and sets *ret_cp, or 0 when it is invalid or truncated.
 */
static size_t utf8_decode(const uint8_t *s, size_t avail, uint32_t *ret_cp)
{
	uint32_t cp;
	size_t n;

	if (s[0] < 0x80) {
		*ret_cp = s[0];
		return 1;
	}

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		/* continuation byte, 0xc0/0xc1 (always overlong) or above 0xf4 */
		return 0;
	}

	if (avail < n)
		return 0;

	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}

	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;

	*ret_cp = cp;
	return n;
}

int fcopy_utf8_check(const void *buf, size_t size, size_t *ret_len, size_t *ret_bad_byte)
{
	const uint8_t *s = buf;
	const uint8_t *nul;
	size_t len;

	if (!buf)
		return -EINVAL;

	nul = memchr(s, 0, size);
	if (!nul)
		return -EBADMSG;

	len = (size_t)(nul - s);
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = utf8_decode(s + i, len - i, &cp);

		if (n == 0) {
			if (ret_bad_byte)
				*ret_bad_byte = i;
			return -EILSEQ;
		}
		i += n;
	}

	if (ret_len)
		*ret_len = len;
	return 0;
}

int fcopy_utf8_to_utf16le(const char *s, void *dst, size_t dst_units, size_t *ret_units)
{
	const uint8_t *p = (const uint8_t *)s;
	uint8_t *out = dst;
	size_t len, units = 0;

	if (!s || !dst || dst_units == 0)
		return -EINVAL;

	len = strlen(s);
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = utf8_decode(p + i, len - i, &cp);

		if (n == 0)
			return -EILSEQ;
		i += n;

		if (cp >= 0x10000) {
			if (units + 3 > dst_units)
				return -ENAMETOOLONG;
			cp -= 0x10000;
			put_le16(out + 2 * units++, (uint16_t)(0xd800 | (cp >> 10)));
			put_le16(out + 2 * units++, (uint16_t)(0xdc00 | (cp & 0x3ff)));
		} else {
			if (units + 2 > dst_units)
				return -ENAMETOOLONG;
			put_le16(out + 2 * units++, (uint16_t)cp);
		}
	}

	put_le16(out + 2 * units, 0);
	if (ret_units)
		*ret_units = units;
	return 0;
}
