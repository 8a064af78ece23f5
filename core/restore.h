/* restore.h - puts a backup (a whole one, some types, or single records)
 * back into its store or another one, through the plugins' restore hooks.
 *
 * A restore verifies the backup first and refuses a damaged one before
 * anything is written; takes a safety backup of the types it will touch;
 * then feeds each type's records, in dependency order, to its plugin in
 * batches. Every record ends with one outcome: created, updated, unchanged,
 * skipped or kept (with the reason), or failed (with the API's message). */
#ifndef O7_RESTORE_H
#define O7_RESTORE_H

#include "catalog.h"
#include "conf.h"
#include "http.h"
#include "plugin.h"
#include "storage.h"

#include <signal.h>
#include <stdint.h>

typedef struct o7_restore_counts {
    int64_t created, updated, unchanged, skipped, kept, failed;
} o7_restore_counts;

typedef struct o7_restore_type {
    char type[64];
    char status[16]; /* "complete", "failed", "skipped" */
    char error[512];
    int64_t records;  /* in the plan */
    o7_restore_counts c;
} o7_restore_type;

/** A record that needs a line of its own: skipped, kept, failed, or (in a
 * dry run) one that would be updated, with the fields that differ. */
typedef struct o7_restore_item {
    char type[64];
    char id[64];
    char outcome[16];
    char detail[512];
    char fields[512];
} o7_restore_item;

typedef struct o7_restore_result {
    char backup_id[64], source_store[64], target_store[64];
    char status[16]; /* "complete", "failed", "planned" (dry run) */
    char error[1024];
    char safety_backup_id[64];
    int dry_run;
    int64_t started_at, finished_at, started_ms, finished_ms;
    o7_restore_type *types;
    size_t ntypes;
    o7_restore_item *items;
    size_t nitems, cap;
    o7_http_stats http;
} o7_restore_result;

typedef struct o7_restore_opts {
    const char *backup_id;
    const char *target_store;   /* NULL: the backup's own store */
    const char *token;          /* the target store's token; never logged */
    const char *const *types;   /* NULL: every type of the backup */
    size_t ntypes;
    const char *only_type;      /* --only TYPE:ID,...; NULL for none */
    const char *const *only_ids;
    size_t nonly;
    int dry_run, activate;
    const char *actor;
    volatile sig_atomic_t *interrupted;
} o7_restore_opts;

/** Runs a restore; fills res (o7_restore_result_free) in every case that
 * got as far as planning. O7_OK when no record failed. */
o7_rc o7_restore_run(const o7_conf *conf, o7_catalog *cat, o7_storage *st, o7_plugins *ps,
                     const o7_restore_opts *opts, o7_restore_result *res, o7_err *err);
void o7_restore_result_free(o7_restore_result *res);

/** The store a catalogued backup belongs to. */
o7_rc o7_restore_source(o7_catalog *cat, const char *backup_id, char store[64], o7_err *err);

#endif
