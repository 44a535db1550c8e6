/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "kvp-osinfo.h"

#include <errno.h>
#include <string.h>

const char *const kvp_os_release_default_paths[] = {"/etc/os-release", "/usr/lib/os-release", NULL};
const char *const kvp_legacy_release_default_paths[] = {"/etc/SuSE-release", "/etc/redhat-release",
							NULL};

/* Values longer than this are cut: the host sees at most 1,022 bytes anyway. */
#define OS_VALUE_MAX 1022

/* Valid UTF-8, control characters dropped, at most OS_VALUE_MAX bytes. */
static char *sanitize(const char *s)
{
	g_autofree char *valid = g_utf8_make_valid(s, -1);
	GString *out = g_string_new(NULL);

	for (const char *p = valid; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		const char *next = g_utf8_next_char(p);

		if (g_unichar_iscntrl(c))
			continue;
		if (out->len + (gsize)(next - p) > OS_VALUE_MAX)
			break;
		g_string_append_len(out, p, next - p);
	}
	return g_string_free(out, FALSE);
}

char *kvp_os_release_unquote(const char *raw)
{
	GString *out = g_string_new(NULL);
	const char *p = raw;
	char quote = 0;

	/* Shell-like, as os-release(5) specifies. */
	for (; *p && *p != '\n' && *p != '\r'; p++) {
		if (quote == '\'') {
			if (*p == '\'')
				quote = 0;
			else
				g_string_append_c(out, *p);
		} else if (quote == '"') {
			if (*p == '"') {
				quote = 0;
			} else if (*p == '\\' && p[1] && strchr("\"\\$`", p[1])) {
				g_string_append_c(out, *++p);
			} else {
				g_string_append_c(out, *p);
			}
		} else if (*p == '"' || *p == '\'') {
			quote = *p;
		} else if (*p == '\\' && p[1] && p[1] != '\n') {
			g_string_append_c(out, *++p);
		} else if (*p == ' ' || *p == '\t') {
			/* An unquoted blank ends the value ("NAME=x # comment"). */
			break;
		} else {
			g_string_append_c(out, *p);
		}
	}
	return g_string_free(out, FALSE);
}

int kvp_os_release_parse(const char *path, GHashTable **ret)
{
	g_autofree char *text = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GHashTable) table = NULL;
	g_auto(GStrv) lines = NULL;

	if (!g_file_get_contents(path, &text, NULL, &error))
		return error->domain == G_FILE_ERROR && error->code == G_FILE_ERROR_NOENT ? -ENOENT
											  : -EIO;

	table = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++) {
		const char *p = *l;
		const char *key;
		size_t key_len;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\0')
			continue;
		key = p;
		while (g_ascii_isalnum(*p) || *p == '_')
			p++;
		key_len = (size_t)(p - key);
		if (key_len == 0 || *p != '=')
			continue;
		g_hash_table_replace(table, g_strndup(key, key_len), kvp_os_release_unquote(p + 1));
	}
	*ret = g_steal_pointer(&table);
	return 0;
}

static void set(char **field, const char *value)
{
	g_free(*field);
	*field = sanitize(value);
}

/* Up to three lines: name, major, minor (upstream's reading of these files). */
static int load_legacy(const char *path, kvp_os_info *info)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	char **field[] = {&info->name, &info->major, &info->minor};

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return -ENOENT;
	lines = g_strsplit(text, "\n", 4);
	for (size_t i = 0; i < G_N_ELEMENTS(field) && lines[i]; i++) {
		/* A file ending in a newline has an empty last piece: not a line. */
		if (!lines[i + 1] && !lines[i][0])
			break;
		g_strchomp(lines[i]);
		set(field[i], lines[i]);
	}
	return 0;
}

void kvp_os_info_load(const char *const *os_release_paths, const char *const *legacy_paths,
		      const struct utsname *uts, kvp_os_info *ret)
{
	struct utsname local;
	char *dash;

	if (!os_release_paths)
		os_release_paths = kvp_os_release_default_paths;
	if (!legacy_paths)
		legacy_paths = kvp_legacy_release_default_paths;
	if (!uts) {
		if (uname(&local) < 0)
			memset(&local, 0, sizeof(local));
		uts = &local;
	}

	*ret = (kvp_os_info){0};
	set(&ret->build, uts->release);
	set(&ret->version, uts->release);
	/* Windows hosts expect x.y.z here: cut "-18-amd64". */
	dash = strchr(ret->version, '-');
	if (dash)
		*dash = '\0';
	set(&ret->name, uts->sysname);
	set(&ret->arch, uts->machine);
	set(&ret->major, "");
	set(&ret->minor, "");

	for (const char *const *p = os_release_paths; *p; p++) {
		g_autoptr(GHashTable) t = NULL;
		const char *v;

		if (kvp_os_release_parse(*p, &t) < 0)
			continue;
		v = g_hash_table_lookup(t, "NAME");
		if (v)
			set(&ret->name, v);
		v = g_hash_table_lookup(t, "VERSION_ID");
		if (v)
			set(&ret->major, v);
		return;
	}

	for (const char *const *p = legacy_paths; *p; p++)
		if (load_legacy(*p, ret) == 0)
			return;
}

void kvp_os_info_clear(kvp_os_info *info)
{
	g_clear_pointer(&info->name, g_free);
	g_clear_pointer(&info->major, g_free);
	g_clear_pointer(&info->minor, g_free);
	g_clear_pointer(&info->build, g_free);
	g_clear_pointer(&info->version, g_free);
	g_clear_pointer(&info->arch, g_free);
}
