/* manifest.h - reading a backup's manifest.json, and verifying a backup
 * against it by reading every object back.
 *
 * The manifest is the proof that a backup is complete: the engine writes it
 * last, after every other object is durable. docs/FORMAT.md describes it. */
#ifndef O7_MANIFEST_H
#define O7_MANIFEST_H

#include "engine.h"
#include "result.h"
#include "storage.h"

#include <stdint.h>

typedef struct o7_manifest_type {
    char type[64];
    char object[160];
    char codec[8];
    char sha256[65];
    char plugin[64];
    char plugin_version[32];
    int64_t records, bytes, stored_bytes;
} o7_manifest_type;

typedef struct o7_manifest {
    int format;
    char store_hash[64];
    char backup_id[64];
    char started_at[32], finished_at[32]; /* RFC 3339, UTC */
    char o7_version[32];
    o7_manifest_type *types;
    size_t ntypes;
    o7_attachment *attachments;
    size_t nattachments;
} o7_manifest;

/** Parses manifest text; *out is freed with o7_manifest_free. */
o7_rc o7_manifest_parse(const char *text, size_t len, o7_manifest *out, o7_err *err);
/** Reads "<store>/<id>/manifest.json" from storage and parses it.
 * O7_ERR_NOTFOUND when there is no manifest (then it is not a backup). */
o7_rc o7_manifest_read(o7_storage *st, const char *store_hash, const char *backup_id,
                       o7_manifest *out, o7_err *err);
void o7_manifest_free(o7_manifest *m);
/** The manifest entry of a type, or NULL. */
const o7_manifest_type *o7_manifest_type_find(const o7_manifest *m, const char *type);

/** Seconds since the epoch for "YYYY-MM-DDTHH:MM:SSZ"; -1 if malformed. */
int64_t o7_rfc3339_parse(const char *s);

/** What verify found for one object. */
typedef struct o7_verify_item {
    char object[256];
    char type[64];
    char status[16]; /* "ok" or "failed" */
    char error[512];
    int64_t records, bytes, stored_bytes;
    char sha256[65];
} o7_verify_item;

/** Reads every object of the backup back: checks its sha256 and stored
 * size, decompresses it to the end, and counts its records and bytes
 * against the manifest. *items (caller frees) has one entry per object.
 * Returns O7_OK only when every object passed; otherwise O7_ERR_CORRUPT
 * (or the storage error) with a sentence naming the first failure. */
o7_rc o7_verify(o7_storage *st, const o7_manifest *m, o7_verify_item **items, size_t *n,
                o7_err *err);

#endif
