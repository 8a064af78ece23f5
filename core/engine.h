/* engine.h - runs a backup: pages every type of a store through its plugin
 * and the codec into one object per type, then writes the manifest.
 *
 * The path of a record: HTTP response (http.c) -> page split into records
 * with their bytes kept (json.c) -> child calls spliced in (plugin children
 * hook) -> codec (gzip/zstd) -> sha256 and storage writer. No type is ever
 * held whole in memory: only the pages in flight and the records waiting
 * for their child calls, both bounded. */
#ifndef O7_ENGINE_H
#define O7_ENGINE_H

#include "catalog.h"
#include "conf.h"
#include "http.h"
#include "plugin.h"
#include "result.h"
#include "storage.h"

#include <signal.h>
#include <stdint.h>

typedef struct o7_type_result {
    char type[64];
    char object[160];   /* relative to the backup folder */
    char status[16];    /* "complete", "failed", "skipped" */
    char error[512];
    int64_t records, bytes, stored_bytes;
    char sha256[65];
    char plugin_version[32];
    int64_t requests;   /* HTTP requests sent for this type */
} o7_type_result;

typedef struct o7_attachment {
    char object[256];
    char type[64];
    int64_t bytes;
    char sha256[65];
} o7_attachment;

typedef struct o7_backup_result {
    char id[64];
    char store_hash[64];
    char status[16];    /* "complete" or "failed" */
    int64_t started_at, finished_at; /* unix seconds */
    int64_t started_ms, finished_ms; /* for rates */
    char error[1024];
    o7_type_result *types;
    size_t ntypes;
    o7_attachment *attachments;
    size_t nattachments;
    o7_http_stats http;
} o7_backup_result;

typedef struct o7_backup_opts {
    const char *store_hash;
    const char *token;          /* the store's API token, in the clear; never logged */
    const char *const *types;   /* NULL: every loaded plugin */
    size_t ntypes;
    const char *actor;          /* who started it, for the audit log */
    const char *kind;           /* "manual", "scheduled", "safety" */
    int progress;               /* live progress lines on standard error */
    volatile sig_atomic_t *interrupted; /* set by a signal handler */
    int lock_held;              /* the caller holds the store's lock (a restore's safety backup) */
} o7_backup_opts;

/** Runs one backup of a store. Takes the store's lock (O7_ERR_BUSY when
 * another backup of it runs), records it in the catalog with audit
 * entries, and fills res (o7_backup_result_free) whether it completed or
 * failed. Returns O7_OK only for a complete backup whose manifest is
 * durable. */
o7_rc o7_backup_run(const o7_conf *conf, o7_catalog *cat, o7_storage *st, o7_plugins *ps,
                    const o7_backup_opts *opts, o7_backup_result *res, o7_err *err);
void o7_backup_result_free(o7_backup_result *res);

/** Holds the store's lock (an flock on a file beside the catalog) until
 * o7_store_unlock. O7_ERR_BUSY, naming the holder's pid, when held. */
o7_rc o7_store_lock(const o7_conf *conf, const char *store_hash, int *fd, o7_err *err);
void o7_store_unlock(int fd);

/** A new backup id: UTC time to the millisecond and 6 random hex digits,
 * e.g. "20261204T170102.123Z-3fa2c1". URL-safe; sorts by time. */
void o7_backup_id_new(char out[64]);

/** Removes the store's backup folders that have no manifest, are older
 * than max_age seconds, and that the catalog marks failed or does not
 * know. The caller holds the store's lock. Returns how many it removed. */
o7_rc o7_backup_gc_store(o7_storage *st, o7_catalog *cat, const char *store_hash,
                         int64_t max_age, int *removed, o7_err *err);

/** "https://api.../stores/HASH/v3" + path + "?" + query, in out. */
o7_rc o7_api_url(o7_buf *out, const char *api_url, const char *store_hash, int v2,
                 const char *path, const o7_query_param *q, size_t nq, const char *extra_name,
                 const char *extra_value);

#endif
