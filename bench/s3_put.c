/* s3_put.c - drives o7's storage layer from the command line: the S3
 * integration tests and the upload benchmark use it.
 *
 *   s3_put [--part-size BYTES] [--parallel N] [--virtual] COMMAND ARGS
 *     put KEY FILE|-        stream FILE (or stdin) into KEY
 *     put-abort KEY FILE|-  write it all, then abort instead of commit
 *     put-many PREFIX N     N small objects PREFIX00000.. (listing tests)
 *     get KEY FILE|-        object bytes to FILE (or stdout)
 *     head KEY              "size etag" on stdout
 *     list PREFIX           "size<TAB>key" per object on stdout
 *     delete KEY
 *     presign KEY TTL       the URL on stdout
 *     gc MAXAGE             abort unfinished uploads older than MAXAGE s
 *
 * Where and who from the environment, never argv: O7_S3_URL
 * (s3://bucket/prefix), O7_S3_ENDPOINT, O7_S3_REGION, AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY. Exit 0 done, 1 failed, 2 usage, 3 not found. */
#include "conf.h"
#include "storage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (1 << 20)

static int usage(void)
{
    fprintf(stderr, "usage: s3_put [--part-size BYTES] [--parallel N] [--virtual] "
                    "put|put-abort|put-many|get|head|list|delete|presign|gc ARGS\n");
    return 2;
}

static int parse_num(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return -1;
    *out = v;
    return 0;
}

static int finish(o7_rc rc, const o7_err *err)
{
    if (rc == O7_OK)
        return 0;
    fprintf(stderr, "s3_put: %s\n", err->msg[0] ? err->msg : o7_rc_str(rc));
    return rc == O7_ERR_NOTFOUND ? 3 : 1;
}

static o7_rc put_file(o7_storage *st, const char *key, const char *path, int abort_it, o7_err *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return o7_fail(err, O7_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    char *buf = malloc(CHUNK);
    o7_writer *w = NULL;
    o7_rc rc = buf ? o7_storage_writer(st, key, &w, err) : O7_ERR_NOMEM;
    size_t n;
    while (rc == O7_OK && (n = fread(buf, 1, CHUNK, f)) > 0)
        rc = o7_writer_write(w, buf, n, err);
    if (rc == O7_OK && ferror(f))
        rc = o7_fail(err, O7_ERR_IO, "cannot read %s", path);
    if (rc == O7_OK && !abort_it)
        rc = o7_writer_commit(w, err);
    else
        o7_writer_abort(w);
    if (f != stdin)
        fclose(f);
    free(buf);
    return rc;
}

static o7_rc put_many(o7_storage *st, const char *prefix, long long count, o7_err *err)
{
    o7_rc rc = O7_OK;
    for (long long i = 0; rc == O7_OK && i < count; i++) {
        char key[1024], body[64];
        snprintf(key, sizeof key, "%s%05lld", prefix, i);
        int len = snprintf(body, sizeof body, "object %lld\n", i);
        o7_writer *w = NULL;
        rc = o7_storage_writer(st, key, &w, err);
        if (rc == O7_OK)
            rc = o7_writer_write(w, body, (size_t)len, err);
        if (rc == O7_OK)
            rc = o7_writer_commit(w, err);
        else
            o7_writer_abort(w);
    }
    return rc;
}

static o7_rc to_file(void *ud, const void *data, size_t len)
{
    return fwrite(data, 1, len, ud) == len ? O7_OK : O7_ERR_IO;
}

static o7_rc get_file(o7_storage *st, const char *key, const char *path, o7_err *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
    if (!f)
        return o7_fail(err, O7_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    o7_rc rc = o7_storage_get(st, key, to_file, f, err);
    if (f != stdout && fclose(f) != 0 && rc == O7_OK)
        rc = o7_fail(err, O7_ERR_IO, "cannot write %s", path);
    return rc;
}

static o7_rc print_one(void *ud, const o7_object_info *info)
{
    (void)ud;
    printf("%llu\t%s\n", (unsigned long long)info->size, info->key);
    return O7_OK;
}

static o7_rc run(o7_storage *st, int argc, char **argv, o7_err *err)
{
    const char *cmd = argv[0];
    long long num = 0;
    if (!strcmp(cmd, "put") && argc == 3)
        return put_file(st, argv[1], argv[2], 0, err);
    if (!strcmp(cmd, "put-abort") && argc == 3)
        return put_file(st, argv[1], argv[2], 1, err);
    if (!strcmp(cmd, "put-many") && argc == 3 && parse_num(argv[2], &num) == 0)
        return put_many(st, argv[1], num, err);
    if (!strcmp(cmd, "get") && argc == 3)
        return get_file(st, argv[1], argv[2], err);
    if (!strcmp(cmd, "head") && argc == 2) {
        o7_object_info info;
        o7_rc rc = o7_storage_head(st, argv[1], &info, err);
        if (rc == O7_OK)
            printf("%llu %s\n", (unsigned long long)info.size, info.etag);
        return rc;
    }
    if (!strcmp(cmd, "list") && argc == 2)
        return o7_storage_list(st, argv[1], print_one, NULL, err);
    if (!strcmp(cmd, "delete") && argc == 2)
        return o7_storage_delete(st, argv[1], err);
    if (!strcmp(cmd, "presign") && argc == 3 && parse_num(argv[2], &num) == 0 && num < 1000000000) {
        char *url = NULL;
        o7_rc rc = o7_storage_presign(st, argv[1], (int)num, &url, err);
        if (rc == O7_OK)
            printf("%s\n", url);
        free(url);
        return rc;
    }
    if (!strcmp(cmd, "gc") && argc == 2 && parse_num(argv[1], &num) == 0)
        return o7_storage_gc(st, num, err);
    return O7_ERR_USAGE;
}

int main(int argc, char **argv)
{
    o7_conf conf;
    memset(&conf, 0, sizeof conf);
    conf.storage_url = getenv("O7_S3_URL");
    conf.s3_endpoint = getenv("O7_S3_ENDPOINT");
    conf.s3_region = getenv("O7_S3_REGION");
    conf.s3_access_key = getenv("AWS_ACCESS_KEY_ID");
    conf.s3_secret_key = getenv("AWS_SECRET_ACCESS_KEY");
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        long long v = 0;
        if (!strcmp(argv[i], "--virtual")) {
            conf.s3_virtual = 1;
        } else if (i + 1 < argc && !strcmp(argv[i], "--part-size") &&
                   parse_num(argv[i + 1], &v) == 0) {
            conf.s3_part_size = v, i++;
        } else if (i + 1 < argc && !strcmp(argv[i], "--parallel") &&
                   parse_num(argv[i + 1], &v) == 0 && v <= 64) {
            conf.s3_parallel = (int)v, i++;
        } else {
            return usage();
        }
    }
    if (i >= argc || !conf.storage_url)
        return usage();

    o7_err err = {0};
    o7_storage *st = NULL;
    o7_rc rc = o7_storage_open(&conf, &st, &err);
    if (rc == O7_OK) {
        rc = run(st, argc - i, argv + i, &err);
        if (rc == O7_ERR_USAGE && !err.msg[0]) {
            o7_storage_close(st);
            return usage();
        }
    }
    o7_storage_close(st);
    if (fflush(stdout) != 0 && rc == O7_OK)
        rc = o7_fail(&err, O7_ERR_IO, "cannot write to standard output");
    return finish(rc, &err);
}
