/* storage.h - where backups live: one small interface, several backends.
 *
 * The backend is chosen by the URL's scheme ([storage] url): file:// (a local
 * folder) or s3:// (any S3 API). The rest of o7 sees only keys relative to
 * the storage root, such as "<store_hash>/<backup_id>/products.ndjson.gz",
 * and never learns which backend it talks to.
 *
 * Guarantees every backend keeps: a writer's object is invisible under its
 * key until o7_writer_commit returns O7_OK, and is then durable; an aborted
 * writer leaves nothing behind; objects are private. */
#ifndef O7_STORAGE_H
#define O7_STORAGE_H

#include "codec.h"
#include "conf.h"
#include "result.h"

#include <stdint.h>

typedef struct o7_storage o7_storage;
typedef struct o7_writer o7_writer;

typedef struct o7_object_info {
    const char *key;  /* relative to the root; valid during the callback */
    uint64_t size;    /* bytes stored */
    char etag[96];    /* backend's entity tag, without quotes; "" if none */
    int64_t mtime;    /* unix seconds, 0 if unknown */
} o7_object_info;

/** Called once per object found; a non-OK result stops the listing. */
typedef o7_rc (*o7_list_fn)(void *ud, const o7_object_info *info);

/** Opens the backend named by conf->storage_url. *out is freed with
 * o7_storage_close. Checks nothing remote yet. */
o7_rc o7_storage_open(const o7_conf *conf, o7_storage **out, o7_err *err);
void o7_storage_close(o7_storage *st);

/** A printable name for logs and errors: "file:///var/o7" or
 * "s3://bucket/prefix at https://endpoint". Never holds a secret. Static
 * for the life of st. */
const char *o7_storage_describe(const o7_storage *st);

/** Starts a new object at key. Bytes are streamed with o7_writer_write. */
o7_rc o7_storage_writer(o7_storage *st, const char *key, o7_writer **out, o7_err *err);
o7_rc o7_writer_write(o7_writer *w, const void *data, size_t len, o7_err *err);
/** Makes the object durable and visible, then frees w (also on failure). */
o7_rc o7_writer_commit(o7_writer *w, o7_err *err);
/** Discards the object and frees w. NULL is accepted. */
void o7_writer_abort(o7_writer *w);

/** Streams the object's bytes to sink. O7_ERR_NOTFOUND if absent. */
o7_rc o7_storage_get(o7_storage *st, const char *key, o7_sink_fn sink, void *ud, o7_err *err);
/** Size and etag of an object. O7_ERR_NOTFOUND if absent. */
o7_rc o7_storage_head(o7_storage *st, const char *key, o7_object_info *info, o7_err *err);
/** Every object whose key starts with prefix, in key order. */
o7_rc o7_storage_list(o7_storage *st, const char *prefix, o7_list_fn fn, void *ud, o7_err *err);
/** Removes an object; removing an absent one is not an error. */
o7_rc o7_storage_delete(o7_storage *st, const char *key, o7_err *err);
/** A URL from which the object can be fetched for ttl seconds: a pre-signed
 * GET on S3, a file:// URL locally. *url is the caller's to free. Never
 * log it. */
o7_rc o7_storage_presign(o7_storage *st, const char *key, int ttl, char **url, o7_err *err);
/** Housekeeping: aborts o7's own unfinished multipart uploads older than
 * max_age seconds (S3); removes stale temporary files (file). */
o7_rc o7_storage_gc(o7_storage *st, int64_t max_age, o7_err *err);

/* ---- for backends only ------------------------------------------------ */

struct o7_storage_ops {
    const char *scheme; /* "file", "s3" */
    o7_rc (*open)(const o7_conf *conf, o7_storage **out, o7_err *err);
    void (*close)(o7_storage *st);
    o7_rc (*writer)(o7_storage *st, const char *key, o7_writer **out, o7_err *err);
    o7_rc (*write)(o7_writer *w, const void *data, size_t len, o7_err *err);
    o7_rc (*commit)(o7_writer *w, o7_err *err);
    void (*abort)(o7_writer *w);
    o7_rc (*get)(o7_storage *st, const char *key, o7_sink_fn sink, void *ud, o7_err *err);
    o7_rc (*head)(o7_storage *st, const char *key, o7_object_info *info, o7_err *err);
    o7_rc (*list)(o7_storage *st, const char *prefix, o7_list_fn fn, void *ud, o7_err *err);
    o7_rc (*del)(o7_storage *st, const char *key, o7_err *err);
    o7_rc (*presign)(o7_storage *st, const char *key, int ttl, char **url, o7_err *err);
    o7_rc (*gc)(o7_storage *st, int64_t max_age, o7_err *err);
};

/** Every backend's struct starts with this header. */
struct o7_storage {
    const struct o7_storage_ops *ops;
    char describe[512];
};
struct o7_writer {
    o7_storage *st;
};

extern const struct o7_storage_ops o7_storage_file_ops;
extern const struct o7_storage_ops o7_storage_s3_ops;

#endif
