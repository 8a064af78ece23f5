/* conf.c - reads o7.conf, an INI file, into an o7_conf.
 *
 * Strict on purpose: a typo in a key or a section must stop o7 with the file
 * and the line, not be ignored and leave a backup going somewhere else. */
#include "conf.h"
#include "codec.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Where one key lands, and how its text is checked. */
typedef enum { K_STR, K_PATH, K_INT, K_SIZE, K_CODEC, K_ADDRESSING, K_LEVEL, K_STORAGE } kind;

typedef struct key_def {
    const char *section, *name;
    kind kind;
    size_t offset;
    long long min, max; /* for K_INT and K_SIZE */
} key_def;

#define F(field) offsetof(o7_conf, field)

static const key_def keys[] = {
    {"bigcommerce", "api_url", K_STR, F(api_url), 0, 0},
    {"bigcommerce", "concurrency", K_INT, F(concurrency), 1, 64},
    {"bigcommerce", "timeout", K_INT, F(timeout_s), 1, 3600},
    {"bigcommerce", "connect_timeout", K_INT, F(connect_timeout_s), 1, 300},
    {"bigcommerce", "max_retries", K_INT, F(max_retries), 0, 20},
    {"storage", "url", K_STORAGE, F(storage_url), 0, 0},
    {"storage", "codec", K_CODEC, F(codec), 0, 0},
    {"storage", "level", K_INT, F(level), 0, 22},
    {"storage", "endpoint", K_STR, F(s3_endpoint), 0, 0},
    {"storage", "region", K_STR, F(s3_region), 0, 0},
    {"storage", "addressing", K_ADDRESSING, F(s3_virtual), 0, 0},
    {"storage", "access_key", K_STR, F(s3_access_key), 0, 0},
    {"storage", "secret_key", K_STR, F(s3_secret_key), 0, 0},
    {"storage", "url_ttl", K_INT, F(url_ttl), 1, 604800},
    {"storage", "part_size", K_SIZE, F(s3_part_size), 5LL << 20, 5LL << 30},
    {"storage", "parallel", K_INT, F(s3_parallel), 1, 64},
    {"catalog", "path", K_PATH, F(catalog_path), 0, 0},
    {"crypto", "key_file", K_PATH, F(key_file), 0, 0},
    {"plugins", "dir", K_PATH, F(plugins_dir), 0, 0},
    {"log", "level", K_LEVEL, F(log_level), 0, 0},
};

#define NKEYS (sizeof keys / sizeof keys[0])

static char *dup_str(const char *s)
{
    return s ? strdup(s) : NULL;
}

static char **str_field(o7_conf *c, size_t off)
{
    return (char **)((char *)c + off);
}

/* An absolute path for p, relative paths taken from dir. Caller frees. */
static char *resolve_path(const char *dir, const char *p)
{
    if (p[0] == '/')
        return strdup(p);
    size_t n = strlen(dir) + strlen(p) + 2;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", dir, p);
    return out;
}

o7_rc o7_conf_defaults(const char *dir, o7_conf **out)
{
    o7_conf *c = calloc(1, sizeof *c);
    if (c == NULL)
        return O7_ERR_NOMEM;
    c->dir = strdup(dir);
    c->path = strdup("(defaults)");
    c->api_url = strdup("https://api.bigcommerce.com");
    c->concurrency = 6;
    c->timeout_s = 120;
    c->connect_timeout_s = 15;
    c->max_retries = 8;
    c->storage_url = NULL;
    c->codec = O7_CODEC_GZIP;
    c->s3_region = strdup("us-east-1");
    c->url_ttl = 900;
    c->s3_part_size = 8LL << 20;
    c->s3_parallel = 4;
    c->catalog_path = resolve_path(dir, "var/o7.db");
    c->key_file = resolve_path(dir, "var/o7.key");
    c->plugins_dir = resolve_path(dir, "plugins");
    c->log_level = O7_LOG_INFO;
    char *backups = resolve_path(dir, "var/backups");
    if (backups) {
        size_t n = strlen(backups) + 8;
        c->storage_url = malloc(n);
        if (c->storage_url)
            snprintf(c->storage_url, n, "file://%s", backups);
        free(backups);
    }
    if (!c->dir || !c->path || !c->api_url || !c->s3_region || !c->catalog_path ||
        !c->key_file || !c->plugins_dir || !c->storage_url) {
        o7_conf_free(c);
        return O7_ERR_NOMEM;
    }
    *out = c;
    return O7_OK;
}

void o7_conf_free(o7_conf *c)
{
    if (c == NULL)
        return;
    char **strs[] = {&c->path, &c->dir, &c->api_url, &c->storage_url, &c->s3_endpoint,
                     &c->s3_region, &c->s3_access_key, &c->catalog_path, &c->key_file,
                     &c->plugins_dir};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free(*strs[i]);
    if (c->s3_secret_key) {
        memset(c->s3_secret_key, 0, strlen(c->s3_secret_key));
        free(c->s3_secret_key);
    }
    free(c);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* Cuts a comment: ';' or '#' at the start or after white space. */
static void strip_comment(char *s)
{
    for (char *p = s; *p; p++) {
        if ((*p == ';' || *p == '#') && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            return;
        }
    }
}

/* Whether host (len bytes) is a dotted-quad IPv4 address in 127.0.0.0/8. */
static int ipv4_loopback(const char *host, size_t len)
{
    int parts = 0;
    size_t i = 0;
    while (i < len) {
        long v = 0;
        size_t digits = 0;
        while (i < len && host[i] >= '0' && host[i] <= '9' && digits < 4)
            v = v * 10 + (host[i++] - '0'), digits++;
        if (digits == 0 || digits > 3 || v > 255 || (parts == 0 && v != 127))
            return 0;
        parts++;
        if (i < len && (host[i] != '.' || ++i == len))
            return 0;
    }
    return parts == 4;
}

/* Whether an http:// URL's host is a loopback address. The whole host is
 * compared, so neither "localhost.example.com", "127.0.0.1.example.com"
 * nor "127.0.0.1@example.com" pass for loopback. */
static int loopback_host(const char *url)
{
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    size_t auth = strcspn(h, "/?#");
    if (memchr(h, '@', auth))
        return 0;
    if (h[0] == '[')
        return strncmp(h, "[::1]", 5) == 0 && (auth == 5 || h[5] == ':');
    size_t len = strcspn(h, ":/?#");
    if (len == 9 && strncmp(h, "localhost", 9) == 0)
        return 1;
    return ipv4_loopback(h, len);
}

/* api_url and the S3 endpoint: https anywhere, http only on loopback. */
static o7_rc check_url(const char *what, const char *url, const char *file, int line, o7_err *err)
{
    if (strncmp(url, "https://", 8) == 0 && url[8])
        return O7_OK;
    if (strncmp(url, "http://", 7) == 0 && loopback_host(url))
        return O7_OK;
    if (strncmp(url, "http://", 7) == 0)
        return o7_fail(err, O7_ERR_CONFIG,
                       "%s:%d: %s %s uses plain http://, which o7 accepts only for a "
                       "loopback address; use https://",
                       file, line, what, url);
    return o7_fail(err, O7_ERR_CONFIG, "%s:%d: %s \"%s\" is not an http(s) URL", file, line, what,
                   url);
}

static o7_rc set_storage(o7_conf *c, const char *v, const char *file, int line, o7_err *err)
{
    char *url;
    if (strncmp(v, "s3://", 5) == 0) {
        const char *bucket = v + 5;
        size_t blen = strcspn(bucket, "/");
        if (blen < 3 || blen > 63)
            return o7_fail(err, O7_ERR_CONFIG,
                           "%s:%d: storage url %s does not name a bucket (3 to 63 characters "
                           "after s3://)",
                           file, line, v);
        for (size_t i = 0; i < blen; i++)
            if (!(islower((unsigned char)bucket[i]) || isdigit((unsigned char)bucket[i]) ||
                  bucket[i] == '-' || bucket[i] == '.'))
                return o7_fail(err, O7_ERR_CONFIG,
                               "%s:%d: storage url %s: a bucket name holds only lower-case "
                               "letters, digits, '-' and '.'",
                               file, line, v);
        url = strdup(v);
    } else if (strstr(v, "://") && strncmp(v, "file://", 7) != 0) {
        return o7_fail(err, O7_ERR_CONFIG,
                       "%s:%d: storage url %s: o7 stores to a folder (a path or file://) or to "
                       "s3://bucket/prefix",
                       file, line, v);
    } else {
        const char *p = strncmp(v, "file://", 7) == 0 ? v + 7 : v;
        if (strncmp(v, "file://localhost/", 17) == 0)
            p = v + 16;
        else if (strncmp(v, "file://", 7) == 0 && *p != '/')
            return o7_fail(err, O7_ERR_CONFIG,
                           "%s:%d: storage url %s names a host; a local folder is file:///path "
                           "(three slashes) or a plain path",
                           file, line, v);
        if (*p == '~')
            return o7_fail(err, O7_ERR_CONFIG,
                           "%s:%d: storage url %s starts with ~, which o7 does not expand; write "
                           "the full path",
                           file, line, v);
        if (*p == '\0')
            return o7_fail(err, O7_ERR_CONFIG, "%s:%d: storage url is empty", file, line);
        char *abs = resolve_path(c->dir, p);
        if (abs == NULL)
            return O7_ERR_NOMEM;
        size_t n = strlen(abs) + 8;
        url = malloc(n);
        if (url)
            snprintf(url, n, "file://%s", abs);
        free(abs);
    }
    if (url == NULL)
        return O7_ERR_NOMEM;
    free(c->storage_url);
    c->storage_url = url;
    return O7_OK;
}

static o7_rc set_value(o7_conf *c, const key_def *k, const char *v, const char *file, int line,
                       o7_err *err)
{
    char *end;
    long long n;
    switch (k->kind) {
    case K_STR:
    case K_PATH: {
        if (*v == '\0')
            return o7_fail(err, O7_ERR_CONFIG, "%s:%d: [%s] %s is empty", file, line, k->section,
                           k->name);
        char *s = k->kind == K_PATH ? resolve_path(c->dir, v) : strdup(v);
        if (s == NULL)
            return O7_ERR_NOMEM;
        char **f = str_field(c, k->offset);
        free(*f);
        *f = s;
        return O7_OK;
    }
    case K_INT:
    case K_SIZE: {
        errno = 0;
        n = strtoll(v, &end, 10);
        if (k->kind == K_SIZE && end != v) {
            if (strcasecmp(end, "k") == 0 || strcasecmp(end, "KiB") == 0)
                n <<= 10, end += strlen(end);
            else if (strcasecmp(end, "m") == 0 || strcasecmp(end, "MiB") == 0)
                n <<= 20, end += strlen(end);
            else if (strcasecmp(end, "g") == 0 || strcasecmp(end, "GiB") == 0)
                n <<= 30, end += strlen(end);
        }
        if (end != v && *end == '\0' && errno == ERANGE)
            return o7_fail(err, O7_ERR_CONFIG, "%s:%d: [%s] %s = %s is out of range (%lld to %lld)",
                           file, line, k->section, k->name, v, k->min, k->max);
        if (end == v || *end != '\0' || errno)
            return o7_fail(err, O7_ERR_CONFIG, "%s:%d: [%s] %s = \"%s\" is not a whole number",
                           file, line, k->section, k->name, v);
        long long min = k->min;
        /* Tests against a local S3 server may use parts below S3's 5 MiB. */
        const char *tiny = getenv("O7_TEST_TINY_PARTS");
        if (k->kind == K_SIZE && tiny && strcmp(tiny, "1") == 0)
            min = 1;
        if (n < min || n > k->max)
            return o7_fail(err, O7_ERR_CONFIG,
                           "%s:%d: [%s] %s = %lld is out of range (%lld to %lld)", file, line,
                           k->section, k->name, n, min, k->max);
        if (k->kind == K_SIZE)
            *(long long *)((char *)c + k->offset) = n;
        else
            *(int *)((char *)c + k->offset) = (int)n;
        return O7_OK;
    }
    case K_CODEC: {
        int codec = o7_codec_parse(v);
        if (codec < 0)
            return o7_fail(err, O7_ERR_CONFIG, "%s:%d: codec \"%s\" is not gzip or zstd", file,
                           line, v);
        c->codec = (o7_codec_kind)codec;
        return O7_OK;
    }
    case K_ADDRESSING:
        if (strcmp(v, "path") == 0)
            c->s3_virtual = 0;
        else if (strcmp(v, "virtual") == 0)
            c->s3_virtual = 1;
        else
            return o7_fail(err, O7_ERR_CONFIG, "%s:%d: addressing \"%s\" is not path or virtual",
                           file, line, v);
        return O7_OK;
    case K_LEVEL: {
        int lv = o7_log_level_parse(v);
        if (lv < 0)
            return o7_fail(err, O7_ERR_CONFIG,
                           "%s:%d: log level \"%s\" is not debug, info, warn, error or off", file,
                           line, v);
        c->log_level = lv;
        return O7_OK;
    }
    case K_STORAGE:
        return set_storage(c, v, file, line, err);
    }
    return O7_ERR_INTERNAL;
}

/* Environment over file for the S3 credentials, then the checks that need
 * the whole file read. */
static o7_rc finish(o7_conf *c, const int *seen_line, o7_err *err)
{
    const char *file = c->path;
    const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
    if (ak && *ak) {
        free(c->s3_access_key);
        c->s3_access_key = strdup(ak);
    }
    if (sk && *sk) {
        free(c->s3_secret_key);
        c->s3_secret_key = strdup(sk);
    }
    size_t n = strlen(c->api_url);
    while (n > 0 && c->api_url[n - 1] == '/')
        c->api_url[--n] = '\0';
    o7_rc rc = check_url("api_url", c->api_url, file, seen_line[0], err);
    if (rc != O7_OK)
        return rc;
    if (strncmp(c->storage_url, "s3://", 5) != 0)
        return O7_OK;

    int line = seen_line[1];
    if (c->s3_endpoint == NULL)
        return o7_fail(err, O7_ERR_CONFIG,
                       "%s:%d: storage url %s needs [storage] endpoint, e.g. "
                       "https://nyc3.digitaloceanspaces.com",
                       file, line, c->storage_url);
    rc = check_url("endpoint", c->s3_endpoint, file, seen_line[2] ? seen_line[2] : line, err);
    if (rc != O7_OK)
        return rc;
    if (c->s3_access_key == NULL || c->s3_secret_key == NULL)
        return o7_fail(err, O7_ERR_CONFIG,
                       "%s:%d: storage url %s needs an access key and a secret key: set "
                       "[storage] access_key and secret_key, or AWS_ACCESS_KEY_ID and "
                       "AWS_SECRET_ACCESS_KEY in the environment",
                       file, line, c->storage_url);
    return O7_OK;
}

o7_rc o7_conf_load(const char *path, o7_conf **out, o7_err *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return o7_fail(err, O7_ERR_CONFIG, "cannot read configuration %s: %s", path,
                       strerror(errno));

    char dirbuf[PATH_MAX];
    char *slash = strrchr(path, '/');
    if (slash == NULL) {
        if (getcwd(dirbuf, sizeof dirbuf) == NULL)
            dirbuf[0] = '\0';
    } else {
        char rel[PATH_MAX];
        snprintf(rel, sizeof rel, "%.*s", (int)(slash - path) + (slash == path), path);
        if (realpath(rel, dirbuf) == NULL)
            snprintf(dirbuf, sizeof dirbuf, "%s", rel);
    }

    o7_conf *c;
    if (o7_conf_defaults(dirbuf, &c) != O7_OK) {
        fclose(f);
        return o7_fail(err, O7_ERR_NOMEM, "out of memory reading %s", path);
    }
    free(c->path);
    c->path = dup_str(path);

    /* Lines where api_url, storage url and endpoint were set, for messages. */
    int seen_line[3] = {0, 0, 0};
    int key_line[NKEYS] = {0};
    char section[64] = "";
    char buf[4096];
    int line = 0;
    o7_rc rc = O7_OK;
    while (rc == O7_OK && fgets(buf, sizeof buf, f)) {
        line++;
        if (strlen(buf) == sizeof buf - 1 && buf[sizeof buf - 2] != '\n') {
            rc = o7_fail(err, O7_ERR_CONFIG, "%s:%d: line is longer than %zu characters", path,
                         line, sizeof buf - 2);
            break;
        }
        /* A byte-order mark some editors put first is not content. */
        if (line == 1 && strncmp(buf, "\xef\xbb\xbf", 3) == 0)
            memmove(buf, buf + 3, strlen(buf + 3) + 1);
        strip_comment(buf);
        char *s = trim(buf);
        if (*s == '\0')
            continue;
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (e == NULL || e[1] != '\0') {
                rc = o7_fail(err, O7_ERR_CONFIG, "%s:%d: a section header looks like [name]",
                             path, line);
                break;
            }
            *e = '\0';
            char *name = trim(s + 1);
            int known = 0;
            for (size_t i = 0; i < NKEYS; i++)
                known |= strcmp(keys[i].section, name) == 0;
            if (!known) {
                rc = o7_fail(err, O7_ERR_CONFIG,
                             "%s:%d: unknown section [%s] (known: bigcommerce, storage, "
                             "catalog, crypto, plugins, log)",
                             path, line, name);
                break;
            }
            snprintf(section, sizeof section, "%s", name);
            continue;
        }
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            rc = o7_fail(err, O7_ERR_CONFIG, "%s:%d: expected key = value", path, line);
            break;
        }
        *eq = '\0';
        char *k = trim(s), *v = trim(eq + 1);
        if (section[0] == '\0') {
            rc = o7_fail(err, O7_ERR_CONFIG, "%s:%d: key %s comes before any [section]", path,
                         line, k);
            break;
        }
        size_t i = 0;
        while (i < NKEYS && !(strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, k) == 0))
            i++;
        if (i == NKEYS) {
            rc = o7_fail(err, O7_ERR_CONFIG, "%s:%d: unknown key \"%s\" in [%s]", path, line, k,
                         section);
            break;
        }
        if (key_line[i]) {
            rc = o7_fail(err, O7_ERR_CONFIG, "%s:%d: [%s] %s is already set on line %d", path,
                         line, section, k, key_line[i]);
            break;
        }
        key_line[i] = line;
        if (strcmp(k, "api_url") == 0)
            seen_line[0] = line;
        else if (strcmp(section, "storage") == 0 && strcmp(k, "url") == 0)
            seen_line[1] = line;
        else if (strcmp(k, "endpoint") == 0)
            seen_line[2] = line;
        rc = set_value(c, &keys[i], v, path, line, err);
    }
    if (rc == O7_OK && ferror(f))
        rc = o7_fail(err, O7_ERR_CONFIG, "cannot read configuration %s: %s", path,
                     strerror(errno));
    fclose(f);
    if (rc == O7_OK)
        rc = finish(c, seen_line, err);
    if (rc != O7_OK) {
        o7_conf_free(c);
        return rc;
    }
    *out = c;
    return O7_OK;
}
