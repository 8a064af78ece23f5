/* conf.h - o7.conf: an INI file read once at start.
 *
 * Relative paths resolve against the folder of the conf file. An unknown
 * section or key, or a bad value, fails with the file, the line and a plain
 * sentence. Secrets (S3 secret key) are held here and nowhere else. */
#ifndef O7_CONF_H
#define O7_CONF_H

#include "result.h"

typedef enum o7_codec_kind { O7_CODEC_GZIP = 0, O7_CODEC_ZSTD = 1 } o7_codec_kind;

typedef struct o7_conf {
    char *path; /* the conf file as given */
    char *dir;  /* its folder, absolute */

    /* [bigcommerce] */
    char *api_url;       /* no trailing slash */
    int concurrency;     /* requests in flight per job, default 6 */
    int timeout_s;       /* whole-transfer timeout per request, default 120 */
    int connect_timeout_s;
    int max_retries;     /* per request, for 429/5xx/timeouts, default 8 */

    /* [storage] */
    char *storage_url;   /* "file:///abs/path" after resolution, or "s3://bucket/prefix" */
    o7_codec_kind codec;
    int level;           /* compression level, 0 = codec default */
    char *s3_endpoint;   /* e.g. https://nyc3.digitaloceanspaces.com */
    char *s3_region;
    int s3_virtual;      /* 1: bucket.endpoint-host addressing */
    char *s3_access_key; /* environment wins over the file */
    char *s3_secret_key;
    int url_ttl;         /* pre-signed link lifetime, seconds, default 900 */
    long long s3_part_size; /* bytes, default 8 MiB */
    int s3_parallel;     /* parts in flight, default 4 */

    /* [catalog] */
    char *catalog_path;

    /* [crypto] */
    char *key_file;

    /* [plugins] */
    char *plugins_dir;

    /* [log] */
    int log_level;
} o7_conf;

/** Reads and checks the file at path. On success *out is owned by the
 * caller (o7_conf_free). On failure err names the file and line. */
o7_rc o7_conf_load(const char *path, o7_conf **out, o7_err *err);

/** A conf with every default and no file (tests). Paths are relative to dir. */
o7_rc o7_conf_defaults(const char *dir, o7_conf **out);

void o7_conf_free(o7_conf *conf);

#endif
