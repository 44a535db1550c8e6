/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "hv-config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct hv_config {
	GKeyFile *merged;
	GHashTable *origin;  /* "group\037key" -> file (borrowed from files) */
	GPtrArray *files;    /* NULL-terminated */
};

hv_config *hv_config_new_empty(void)
{
	hv_config *c = g_new0(hv_config, 1);

	c->merged = g_key_file_new();
	c->origin = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	c->files = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(c->files, NULL);
	return c;
}

void hv_config_free(hv_config *c)
{
	if (!c)
		return;

	g_key_file_unref(c->merged);
	g_hash_table_unref(c->origin);
	g_ptr_array_unref(c->files);
	g_free(c);
}

static char *origin_key(const char *group, const char *key)
{
	return g_strdup_printf("%s\037%s", group, key);
}

static int merge_file(hv_config *c, const char *path, bool must_exist, char **ret_error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) groups = NULL;
	char *stored;

	if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &error)) {
		if (g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT) && !must_exist)
			return 0;

		if (ret_error)
			*ret_error = g_strdup_printf("%s: %s", path, error->message);

		if (g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return -ENOENT;
		if (g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_ACCES))
			return -EACCES;
		return error->domain == G_FILE_ERROR ? -EIO : -EINVAL;
	}

	/* Keep the path in files[] (before the NULL terminator) and point at it. */
	g_ptr_array_insert(c->files, (gint)c->files->len - 1, g_strdup(path));
	stored = g_ptr_array_index(c->files, c->files->len - 2);


	groups = g_key_file_get_groups(kf, NULL);
	for (char **g = groups; g && *g; g++) {
		g_auto(GStrv) keys = g_key_file_get_keys(kf, *g, NULL, NULL);

		for (char **k = keys; k && *k; k++) {
			g_autofree char *v = g_key_file_get_value(kf, *g, *k, NULL);

			if (!v)
				continue;

			g_key_file_set_value(c->merged, *g, *k, v);
			g_hash_table_replace(c->origin, origin_key(*g, *k), stored);
		}
	}

	return 0;
}

static int by_name(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int hv_config_load(const char *path, hv_config **ret, char **ret_error)
{
	g_autoptr(hv_config) c = hv_config_new_empty();
	g_autoptr(GPtrArray) dropins = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *dir = NULL;
	g_autoptr(GDir) d = NULL;
	const char *main_path = path ? path : HV_CONFIG_DEFAULT_PATH;
	const char *name;
	int r;

	if (!ret)
		return -EINVAL;

	r = merge_file(c, main_path, path != NULL, ret_error);
	if (r < 0)
		return r;

	dir = g_strconcat(main_path, ".d", NULL);
	d = g_dir_open(dir, 0, NULL);
	while (d && (name = g_dir_read_name(d)))
		if (g_str_has_suffix(name, ".conf") && name[0] != '.')
			g_ptr_array_add(dropins, g_build_filename(dir, name, NULL));

	g_ptr_array_sort(dropins, by_name);
	for (guint i = 0; i < dropins->len; i++) {
		r = merge_file(c, g_ptr_array_index(dropins, i), true, ret_error);
		if (r < 0)
			return r;
	}

	*ret = g_steal_pointer(&c);
	return 0;
}

const char *hv_config_origin(const hv_config *c, const char *group, const char *key)
{
	g_autofree char *k = origin_key(group, key);
	const char *f = c ? g_hash_table_lookup(c->origin, k) : NULL;

	return f ? f : "built-in default";
}

const char *const *hv_config_files(const hv_config *c)
{
	return (const char *const *)c->files->pdata;
}

static int bad_value(const hv_config *c, const char *group, const char *key, const char *value,
		     const char *expected, char **ret_error)
{
	if (ret_error)
		*ret_error = g_strdup_printf("%s: [%s] %s = '%s' is not valid: expected %s",
					     hv_config_origin(c, group, key), group, key, value,
					     expected);
	return -EINVAL;
}

/* The raw value with surrounding blanks removed, or NULL when unset. */
static char *raw_value(const hv_config *c, const char *group, const char *key)
{
	char *v;

	if (!c)
		return NULL;

	v = g_key_file_get_value(c->merged, group, key, NULL);
	if (v)
		g_strstrip(v);
	return v;
}

int hv_config_get_string(const hv_config *c, const char *group, const char *key,
			 const char *def, char **ret, char **ret_error)
{
	g_autofree char *v = raw_value(c, group, key);

	if (!ret)
		return -EINVAL;

	if (!v) {
		*ret = g_strdup(def);
		return 0;
	}

	/* Reuse GKeyFile's unescaping (\s, \n, ...). */
	if (!g_utf8_validate(v, -1, NULL))
		return bad_value(c, group, key, v, "UTF-8 text", ret_error);

	g_free(v);
	v = g_key_file_get_string(c->merged, group, key, NULL);
	if (!v)
		return bad_value(c, group, key, "", "a string", ret_error);

	*ret = g_strdup(g_strstrip(v));
	return 0;
}

int hv_config_get_bool(const hv_config *c, const char *group, const char *key, bool def,
		       bool *ret, char **ret_error)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	g_autofree char *v = raw_value(c, group, key);

	if (!ret)
		return -EINVAL;

	if (!v) {
		*ret = def;
		return 0;
	}

	for (size_t i = 0; i < G_N_ELEMENTS(yes); i++) {
		if (g_ascii_strcasecmp(v, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (g_ascii_strcasecmp(v, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}

	return bad_value(c, group, key, v, "true or false", ret_error);
}

int hv_config_get_uint(const hv_config *c, const char *group, const char *key,
		       unsigned int def, unsigned int min, unsigned int max, unsigned int *ret,
		       char **ret_error)
{
	g_autofree char *v = raw_value(c, group, key);
	g_autofree char *expected = NULL;
	guint64 n;

	if (!ret)
		return -EINVAL;

	if (!v) {
		*ret = def;
		return 0;
	}

	expected = g_strdup_printf("a whole number from %u to %u", min, max);
	if (!g_ascii_string_to_unsigned(v, 10, min, max, &n, NULL))
		return bad_value(c, group, key, v, expected, ret_error);

	*ret = (unsigned int)n;
	return 0;
}

int hv_config_get_strv(const hv_config *c, const char *group, const char *key, char ***ret,
		       char **ret_error)
{
	g_autofree char *v = raw_value(c, group, key);
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();
	g_auto(GStrv) parts = NULL;

	if (!ret)
		return -EINVAL;

	if (v) {
		parts = g_strsplit_set(v, ";,", -1);
		for (char **p = parts; *p; p++) {
			g_strstrip(*p);
			if (**p)
				g_strv_builder_add(b, *p);
		}
	}

	*ret = g_strv_builder_end(b);
	return 0;
}

int hv_config_get_enum(const hv_config *c, const char *group, const char *key,
		       const char *const *names, int def, int *ret, char **ret_error)
{
	g_autofree char *v = raw_value(c, group, key);
	g_autofree char *joined = NULL;

	if (!ret || !names)
		return -EINVAL;

	if (!v) {
		*ret = def;
		return 0;
	}

	for (int i = 0; names[i]; i++)
		if (strcmp(v, names[i]) == 0) {
			*ret = i;
			return 0;
		}

	{
		g_autoptr(GString) s = g_string_new(NULL);

		for (int i = 0; names[i]; i++)
			g_string_append_printf(s, "%s%s", i ? ", " : "", names[i]);
		joined = g_string_free(g_steal_pointer(&s), FALSE);
	}
	return bad_value(c, group, key, v, joined, ret_error);
}

GPtrArray *hv_config_unknown_keys(const hv_config *c, const char *const *known)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	g_auto(GStrv) groups = g_key_file_get_groups(c->merged, NULL);

	for (char **g = groups; g && *g; g++) {
		g_auto(GStrv) keys = g_key_file_get_keys(c->merged, *g, NULL, NULL);

		g_autofree char *whole_group = g_strdup_printf("%s.*", *g);

		if (known && g_strv_contains(known, whole_group))
			continue;

		for (char **k = keys; k && *k; k++) {
			g_autofree char *full = g_strdup_printf("%s.%s", *g, *k);

			if (known && g_strv_contains(known, full))
				continue;

			g_ptr_array_add(out, g_strdup_printf("%s: [%s] %s",
							     hv_config_origin(c, *g, *k), *g, *k));
		}
	}

	return out;
}
