/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Configuration: built-in defaults < the main file < drop-ins
 * (<main>.d/ *.conf in name order), GKeyFile syntax. Every value is checked
 * when read; a bad one is an error that names the file, key and value.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#define HV_CONFIG_DEFAULT_PATH HV_CONFIG_SYSCONFDIR "/hyperv-daemons.conf"

typedef struct hv_config hv_config;

/*
 * Loads @path (NULL: the default path, which may be missing). An explicitly
 * given @path must exist. On error, *ret_error says what was wrong.
 */
int hv_config_load(const char *path, hv_config **ret, char **ret_error);
/* An empty configuration: every getter returns its default. */
hv_config *hv_config_new_empty(void);
void hv_config_free(hv_config *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(hv_config, hv_config_free)

/* The file a key came from, or "built-in default". */
const char *hv_config_origin(const hv_config *config, const char *group, const char *key);
/* Files read, in order. */
const char *const *hv_config_files(const hv_config *config);

int hv_config_get_string(const hv_config *config, const char *group, const char *key,
			 const char *def, char **ret, char **ret_error);
int hv_config_get_bool(const hv_config *config, const char *group, const char *key, bool def,
		       bool *ret, char **ret_error);
int hv_config_get_uint(const hv_config *config, const char *group, const char *key,
		       unsigned int def, unsigned int min, unsigned int max, unsigned int *ret,
		       char **ret_error);
/* A ';' or ',' separated list; empty when unset. */
int hv_config_get_strv(const hv_config *config, const char *group, const char *key, char ***ret,
		       char **ret_error);
/* One of @names (NULL-terminated); *ret is its index. */
int hv_config_get_enum(const hv_config *config, const char *group, const char *key,
		       const char *const *names, int def, int *ret, char **ret_error);

/*
 * Keys present in the files but not in @known ("group.key" strings,
 * NULL-terminated; "group.*" takes every key of a group), as
 * "file: [group] key" strings, for a warning.
 */
GPtrArray *hv_config_unknown_keys(const hv_config *config, const char *const *known);
