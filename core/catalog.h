/* catalog.h - o7's own records, in SQLite: stores, backups, audit.
 *
 * WAL mode; numbered schema migrations applied at open. Every write
 * transaction starts with BEGIN IMMEDIATE, so it holds the write lock before
 * its first read and concurrent jobs wait (busy timeout) instead of failing
 * with "database is locked". The catalog can be rebuilt from storage
 * (manifests), so it never holds the only copy of anything but tokens. */
#ifndef O7_CATALOG_H
#define O7_CATALOG_H

#include "result.h"

#include <stddef.h>
#include <stdint.h>

typedef struct o7_catalog o7_catalog;

/** Opens (creating if needed, folder 0700, file 0600) and migrates. */
o7_rc o7_catalog_open(const char *path, o7_catalog **out, o7_err *err);
void o7_catalog_close(o7_catalog *cat);
/** The schema version after migration. */
int o7_catalog_schema_version(o7_catalog *cat);

/* ---- stores ----------------------------------------------------------- */

typedef struct o7_store_row {
    char hash[64];
    unsigned char *token_sealed; /* owned by the row: o7_store_row_free */
    size_t token_sealed_len;
    char state[16];    /* "active", "removed" */
    char scopes[1024]; /* comma list found at the last check, may be "" */
    int64_t created_at, updated_at; /* unix seconds */
} o7_store_row;

void o7_store_row_free(o7_store_row *row);
/** Inserts or replaces the store's sealed token (rotation), state active. */
o7_rc o7_catalog_store_put(o7_catalog *cat, const char *hash, const unsigned char *sealed,
                           size_t len, const char *scopes, o7_err *err);
/** O7_ERR_NOTFOUND if there is no active store of that hash. */
o7_rc o7_catalog_store_get(o7_catalog *cat, const char *hash, o7_store_row *out, o7_err *err);
typedef o7_rc (*o7_store_fn)(void *ud, const o7_store_row *row);
o7_rc o7_catalog_store_list(o7_catalog *cat, o7_store_fn fn, void *ud, o7_err *err);
/** Deletes the sealed token at once and marks the store removed; its
 * backups stay listed. O7_ERR_NOTFOUND if unknown. */
o7_rc o7_catalog_store_remove(o7_catalog *cat, const char *hash, o7_err *err);

/* ---- backups ---------------------------------------------------------- */

typedef struct o7_backup_type_row {
    char type[64];
    char object[128];  /* relative to the backup folder */
    char codec[8];
    char status[16];   /* "complete", "failed", "running" */
    int64_t records, bytes, stored_bytes;
    char sha256[65];
    char plugin_version[32];
} o7_backup_type_row;

typedef struct o7_backup_row {
    char id[64];
    char store_hash[64];
    char status[16];   /* "running", "complete", "failed" */
    char kind[16];     /* "manual", "scheduled", "safety" */
    int64_t started_at, finished_at; /* unix seconds; 0 = not yet */
    char error[1024];
    int64_t records, bytes, stored_bytes; /* sums over types */
    char manifest_sha256[65];
    char actor[128];
    o7_backup_type_row *types; /* owned: o7_backup_row_free */
    size_t ntypes;
} o7_backup_row;

void o7_backup_row_free(o7_backup_row *row);
/** Records a backup that has started (status "running"). */
o7_rc o7_catalog_backup_begin(o7_catalog *cat, const o7_backup_row *row, o7_err *err);
/** Replaces the per-type rows and the totals, sets status, finished_at,
 * error and manifest_sha256 from row, in one transaction. */
o7_rc o7_catalog_backup_finish(o7_catalog *cat, const o7_backup_row *row, o7_err *err);
/** Inserts or replaces a whole row with its types (catalog rebuild). */
o7_rc o7_catalog_backup_upsert(o7_catalog *cat, const o7_backup_row *row, o7_err *err);
/** O7_ERR_NOTFOUND if unknown. The row's types are filled. */
o7_rc o7_catalog_backup_get(o7_catalog *cat, const char *id, o7_backup_row *out, o7_err *err);
typedef o7_rc (*o7_backup_fn)(void *ud, const o7_backup_row *row);
/** The store's backups, newest first, with their types. store_hash NULL = all. */
o7_rc o7_catalog_backup_list(o7_catalog *cat, const char *store_hash, o7_backup_fn fn, void *ud,
                             o7_err *err);
o7_rc o7_catalog_backup_delete(o7_catalog *cat, const char *id, o7_err *err);
/** Marks every "running" backup of the store failed with reason (used when
 * a new run finds one left by a process that died). Returns how many. */
o7_rc o7_catalog_backup_fail_running(o7_catalog *cat, const char *store_hash, const char *reason,
                                     int *count, o7_err *err);
/** Removes every backup row (catalog rebuild). */
o7_rc o7_catalog_backup_clear(o7_catalog *cat, o7_err *err);

/* ---- audit ------------------------------------------------------------ */

/** Appends an audit entry: at = now. types is a comma list or "". */
o7_rc o7_catalog_audit(o7_catalog *cat, const char *store_hash, const char *actor,
                       const char *action, const char *types, const char *status,
                       const char *detail, o7_err *err);

typedef struct o7_audit_row {
    int64_t id, at;
    const char *store_hash, *actor, *action, *types, *status, *detail;
} o7_audit_row;
typedef o7_rc (*o7_audit_fn)(void *ud, const o7_audit_row *row);
/** Entries oldest first; store_hash NULL = all; limit 0 = no limit (newest
 * `limit` entries when set). */
o7_rc o7_catalog_audit_list(o7_catalog *cat, const char *store_hash, int limit, o7_audit_fn fn,
                            void *ud, o7_err *err);

/* ---- id maps (restore) ------------------------------------------------ */

/** Remembers that record src_id of type in store src is dst_id in store dst. */
o7_rc o7_catalog_idmap_put(o7_catalog *cat, const char *src, const char *dst, const char *type,
                           const char *src_id, const char *dst_id, o7_err *err);
/** *dst_id (caller frees) or O7_ERR_NOTFOUND. */
o7_rc o7_catalog_idmap_get(o7_catalog *cat, const char *src, const char *dst, const char *type,
                           const char *src_id, char **dst_id, o7_err *err);

#endif
