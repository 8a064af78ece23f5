/* cli.c - the commands: each opens what it needs (conf, catalog, storage,
 * plugins), does its work, and reports for people or, with --json, for
 * scripts. */
#include "cli.h"
#include "buf.h"
#include "catalog.h"
#include "codec.h"
#include "conf.h"
#include "crypto.h"
#include "engine.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "manifest.h"
#include "plugin.h"
#include "restore.h"
#include "storage.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <termios.h>
#include <unistd.h>

#define EXIT_OK 0
#define EXIT_FAILED 1
#define EXIT_USAGE 2

/* What every command may need; opened on demand, closed at the end. */
typedef struct ctx {
    const char *conf_path;
    int verbosity;
    int json;
    o7_conf *conf;
    o7_catalog *cat;
    o7_storage *st;
    o7_plugins *ps;
} ctx;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* SIGINT and SIGTERM only set a flag that the HTTP loop checks, so a job
 * stops at a clean point and records itself failed. */
static void catch_stop_signals(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static int exit_for(o7_rc rc)
{
    if (rc == O7_OK)
        return EXIT_OK;
    if (rc == O7_ERR_USAGE || rc == O7_ERR_CONFIG)
        return EXIT_USAGE;
    return EXIT_FAILED;
}

/* Reports a failure: a sentence on standard error and, with --json, an
 * object on standard output. */
static int fail(ctx *c, o7_rc rc, const char *msg)
{
    fprintf(stderr, "o7: %s\n", msg);
    if (c->json) {
        o7_buf b = O7_BUF_INIT;
        o7_buf_puts(&b, "{\"status\": \"failed\", \"error\": ");
        o7_buf_json_str(&b, msg, strlen(msg));
        o7_buf_puts(&b, "}\n");
        fwrite(b.data, 1, b.len, stdout);
        o7_buf_free(&b);
    }
    return exit_for(rc);
}

static int fail_err(ctx *c, const o7_err *e)
{
    return fail(c, e->rc, e->msg[0] ? e->msg : o7_rc_str(e->rc));
}

static int usage_error(ctx *c, const char *msg)
{
    o7_err e = {0};
    o7_fail(&e, O7_ERR_USAGE, "%s (see o7 --help)", msg);
    return fail_err(c, &e);
}

static o7_rc need_conf(ctx *c, o7_err *err)
{
    if (c->conf)
        return O7_OK;
    o7_rc rc = o7_conf_load(c->conf_path, &c->conf, err);
    if (rc != O7_OK)
        return rc;
    int level = c->conf->log_level - c->verbosity;
    o7_log_min = (o7_log_level)(level < 0 ? 0 : level > O7_LOG_OFF ? O7_LOG_OFF : level);
    return O7_OK;
}

static o7_rc need_catalog(ctx *c, o7_err *err)
{
    o7_rc rc = need_conf(c, err);
    if (rc == O7_OK && c->cat == NULL)
        rc = o7_catalog_open(c->conf->catalog_path, &c->cat, err);
    return rc;
}

static o7_rc need_storage(ctx *c, o7_err *err)
{
    o7_rc rc = need_conf(c, err);
    if (rc == O7_OK && c->st == NULL)
        rc = o7_storage_open(c->conf, &c->st, err);
    return rc;
}

static o7_rc need_plugins(ctx *c, o7_err *err)
{
    o7_rc rc = need_conf(c, err);
    if (rc == O7_OK && c->ps == NULL)
        rc = o7_plugins_load(c->conf->plugins_dir, &c->ps, err);
    return rc;
}

static void ctx_close(ctx *c)
{
    o7_plugins_free(c->ps);
    o7_storage_close(c->st);
    o7_catalog_close(c->cat);
    o7_conf_free(c->conf);
}

static void put_json(const o7_buf *b)
{
    fwrite(b->data, 1, b->len, stdout);
    fflush(stdout);
}

static void jstr(o7_buf *b, const char *s)
{
    o7_buf_json_str(b, s ? s : "", s ? strlen(s) : 0);
}

static void rfc3339(int64_t t, char out[32])
{
    if (t <= 0) {
        snprintf(out, 32, "%s", "");
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Appends `, "name": "value"` (value as a JSON string). */
static void jfield(o7_buf *b, const char *name, const char *value)
{
    o7_buf_printf(b, ", \"%s\": ", name);
    jstr(b, value);
}

/* The --json answer of a command that did one thing to one thing:
 * {"<name>": "<value>", "status": "<status>"}. */
static void put_done(const char *name, const char *value, const char *status)
{
    o7_buf b = O7_BUF_INIT;
    o7_buf_printf(&b, "{\"%s\": ", name);
    jstr(&b, value);
    jfield(&b, "status", status);
    o7_buf_puts(&b, "}\n");
    put_json(&b);
    o7_buf_free(&b);
}

static void jtime(o7_buf *b, int64_t t)
{
    char s[32];
    rfc3339(t, s);
    if (s[0])
        jstr(b, s);
    else
        o7_buf_puts(b, "null");
}

static void human_bytes(int64_t n, char out[32])
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4)
        v /= 1024, u++;
    snprintf(out, 32, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

/* Options shared by commands: --json and --help, anywhere after the
 * command. Returns the other arguments compacted into argv. */
static int take_common(ctx *c, int *argc, char **argv, int *help)
{
    int n = 0;
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            c->json = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            *help = 1;
        else
            argv[n++] = argv[i];
    }
    *argc = n;
    return 0;
}

static o7_rc count_sealed(void *ud, const o7_store_row *row)
{
    if (strcmp(row->state, "active") == 0)
        (*(int *)ud)++;
    return O7_OK;
}

/* The key file is made on first use; but once tokens are sealed with it, a
 * missing key file is an operator's problem to fix, not a reason to make a
 * new key that opens nothing. */
static o7_rc key_present(ctx *c, o7_err *err)
{
    if (access(c->conf->key_file, F_OK) == 0)
        return O7_OK;
    int sealed = 0;
    o7_catalog_store_list(c->cat, count_sealed, &sealed, NULL);
    if (sealed == 0)
        return O7_OK;
    return o7_fail(err, O7_ERR_CRYPTO,
                   "the key file %s is missing, and the catalog holds %d store token%s sealed "
                   "with it: put the key file back from your copy, or remove and re-add each "
                   "store (o7 store remove, o7 store add)",
                   c->conf->key_file, sealed, sealed == 1 ? "" : "s");
}

/* The store's token, opened with the key. *token is wiped and freed by the
 * caller (free_token). */
static o7_rc store_token(ctx *c, const char *hash, char **token, o7_err *err)
{
    o7_store_row row = {0};
    o7_rc rc = o7_catalog_store_get(c->cat, hash, &row, err);
    if (rc == O7_ERR_NOTFOUND) {
        err->rc = O7_OK;
        return o7_fail(err, O7_ERR_NOTFOUND,
                       "store %s is not registered: add it with o7 store add %s (the token is "
                       "read from standard input)",
                       hash, hash);
    }
    if (rc != O7_OK)
        return rc;
    unsigned char key[32];
    size_t len = 0;
    rc = key_present(c, err);
    if (rc == O7_OK)
        rc = o7_key_load(c->conf->key_file, key, err);
    if (rc == O7_OK && o7_open(key, row.token_sealed, row.token_sealed_len, hash, token, &len,
                               NULL) != O7_OK)
        rc = o7_fail(err, O7_ERR_CRYPTO,
                     "the token of store %s does not open with the key in %s (a different key "
                     "file?): put the right key file back, or re-add the store with o7 store add",
                     hash, c->conf->key_file);
    o7_wipe(key, sizeof key);
    o7_store_row_free(&row);
    return rc;
}

static void free_token(char *token)
{
    if (token) {
        o7_wipe(token, strlen(token));
        free(token);
    }
}

static int valid_hash(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 40)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= '0' && h[i] <= '9') ||
              (h[i] >= 'A' && h[i] <= 'Z') || h[i] == '-' || h[i] == '_'))
            return 0;
    return 1;
}

/* ---- store ----------------------------------------------------------------- */

typedef struct probe {
    const o7_plugin *p;
    long status;
    char error[256];
} probe;

static void on_probe(void *ud, o7_http_resp *resp)
{
    probe *pr = ud;
    pr->status = resp->rc == O7_OK ? resp->status : 0;
    snprintf(pr->error, sizeof pr->error, "%s", resp->rc == O7_OK ? "" : resp->error);
}

/* One cheap call per type (limit=1 on its list), side by side: 401 says
 * the token is wrong, 403 names the scope that is missing. */
static o7_rc check_token(ctx *c, const char *hash, const char *token, o7_buf *scopes,
                         o7_err *err)
{
    o7_http_opts ho = {.concurrency = 4, .timeout_s = 30, .connect_timeout_s = 10,
                       .max_retries = 3, .user_agent = "o7/" O7_VERSION};
    o7_http *h = NULL;
    o7_rc rc = o7_http_new(&ho, &h, err);
    if (rc != O7_OK)
        return rc;
    char auth[512];
    snprintf(auth, sizeof auth, "X-Auth-Token: %s", token);
    const char *headers[] = {auth, "Accept: application/json", NULL};
    probe *probes = calloc(c->ps->n ? c->ps->n : 1, sizeof *probes);
    size_t np = 0;
    o7_buf url = O7_BUF_INIT;
    for (size_t i = 0; probes && i < c->ps->n; i++) {
        const o7_plugin *p = &c->ps->items[i];
        int dup = 0;
        for (size_t j = 0; j < np; j++)
            dup |= strcmp(probes[j].p->scope, p->scope) == 0;
        if (dup || !p->has_list)
            continue;
        probes[np].p = p;
        o7_query_param one = {"limit", "1"};
        o7_api_url(&url, c->conf->api_url, hash, p->list.v2, p->list.path, &one, 1, NULL, NULL);
        o7_http_req req = {.method = "GET", .url = url.data, .headers = headers};
        o7_http_submit(h, &req, on_probe, &probes[np]);
        np++;
    }
    o7_buf_free(&url);
    rc = o7_http_run(h, err);
    o7_http_free(h);
    o7_wipe(auth, sizeof auth);
    if (probes == NULL)
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    o7_buf missing = O7_BUF_INIT;
    for (size_t i = 0; rc == O7_OK && i < np; i++) {
        probe *pr = &probes[i];
        if (pr->status == 401) {
            rc = o7_fail(err, O7_ERR_AUTH, "the store rejected the token (401): check the "
                         "store hash %s and the API account's token", hash);
        } else if (pr->status == 403) {
            o7_buf_printf(&missing, "%s%s (for %s)", missing.len ? ", " : "", pr->p->scope,
                          pr->p->type);
        } else if (pr->status == 404) {
            rc = o7_fail(err, O7_ERR_NOTFOUND, "the API has no store %s (404): check the store "
                         "hash and [bigcommerce] api_url", hash);
        } else if (pr->status < 200 || pr->status > 299) {
            rc = o7_fail(err, O7_ERR_HTTP, "checking the token: %s answered %ld%s%s",
                         c->conf->api_url, pr->status, pr->error[0] ? ": " : "", pr->error);
        } else {
            o7_buf_printf(scopes, "%s%s", scopes->len ? "," : "", pr->p->scope);
        }
    }
    if (rc == O7_OK && missing.len)
        rc = o7_fail(err, O7_ERR_AUTH, "the token lacks these scopes: %s; give the API account "
                     "read access to them and add the store again", missing.data);
    o7_buf_free(&missing);
    free(probes);
    return rc;
}

static char *read_token_stdin(void)
{
    /* On a terminal, the token is typed without echo, like a password. */
    struct termios saved, quiet;
    int tty = isatty(0) && tcgetattr(0, &saved) == 0;
    if (tty) {
        fprintf(stderr, "API token for the store (not shown): ");
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(0, TCSAFLUSH, &quiet);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (tty) {
        tcsetattr(0, TCSAFLUSH, &saved);
        fputc('\n', stderr);
    }
    if (n <= 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
        line[--n] = '\0';
    size_t lead = strspn(line, " \t");
    memmove(line, line + lead, (size_t)n - lead + 1);
    if (line[0] == '\0') {
        free(line);
        return NULL;
    }
    return line;
}

static int cmd_store_add(ctx *c, const char *hash)
{
    o7_err e = {0};
    if (!valid_hash(hash))
        return usage_error(c, "a store hash is letters and digits, e.g. abc123xyz");
    char *token = read_token_stdin();
    if (token == NULL)
        return usage_error(c, "o7 store add reads the store's API token from standard input, "
                              "and got nothing");
    o7_buf scopes = O7_BUF_INIT;
    o7_rc rc = need_catalog(c, &e);
    if (rc == O7_OK)
        rc = need_plugins(c, &e);
    if (rc == O7_OK)
        rc = check_token(c, hash, token, &scopes, &e);
    unsigned char key[32];
    unsigned char *sealed = NULL;
    size_t slen = 0;
    if (rc == O7_OK)
        rc = key_present(c, &e);
    if (rc == O7_OK)
        rc = o7_key_load(c->conf->key_file, key, &e);
    if (rc == O7_OK)
        rc = o7_seal(key, token, strlen(token), hash, &sealed, &slen, &e);
    o7_wipe(key, sizeof key);
    free_token(token);
    o7_store_row old = {0};
    int existed = rc == O7_OK && o7_catalog_store_get(c->cat, hash, &old, NULL) == O7_OK;
    o7_store_row_free(&old);
    if (rc == O7_OK)
        rc = o7_catalog_store_put(c->cat, hash, sealed, slen, scopes.data ? scopes.data : "",
                                  &e);
    free(sealed);
    if (rc == O7_OK)
        o7_catalog_audit(c->cat, hash, "cli", existed ? "store.rotate" : "store.add", "", "ok",
                         scopes.data ? scopes.data : "", NULL);
    if (rc != O7_OK) {
        o7_buf_free(&scopes);
        return fail_err(c, &e);
    }
    if (c->json) {
        o7_buf b = O7_BUF_INIT;
        o7_buf_puts(&b, "{\"store_hash\": ");
        jstr(&b, hash);
        o7_buf_printf(&b, ", \"status\": \"%s\", \"scopes\": ", existed ? "rotated" : "added");
        jstr(&b, scopes.data);
        o7_buf_puts(&b, "}\n");
        put_json(&b);
        o7_buf_free(&b);
    } else {
        printf("store %s %s; the token is stored encrypted (scopes checked: %s)\n", hash,
               existed ? "updated with a new token" : "added", scopes.data ? scopes.data : "");
    }
    o7_buf_free(&scopes);
    return EXIT_OK;
}

typedef struct list_out {
    ctx *c;
    o7_buf *b;
    int n;
} list_out;

static o7_rc print_store(void *ud, const o7_store_row *row)
{
    list_out *lo = ud;
    char t[32];
    rfc3339(row->updated_at, t);
    if (lo->c->json) {
        o7_buf_puts(lo->b, lo->n ? ", {" : "{");
        o7_buf_puts(lo->b, "\"store_hash\": ");
        jstr(lo->b, row->hash);
        jfield(lo->b, "state", row->state);
        jfield(lo->b, "scopes", row->scopes);
        o7_buf_puts(lo->b, ", \"updated_at\": ");
        jtime(lo->b, row->updated_at);
        o7_buf_puts(lo->b, "}");
    } else {
        printf("%-20s %-8s %s\n", row->hash, row->state, t);
    }
    lo->n++;
    return O7_OK;
}

static int cmd_store(ctx *c, int argc, char **argv)
{
    o7_err e = {0};
    if (argc < 1)
        return usage_error(c, "o7 store needs add, list or remove");
    if (strcmp(argv[0], "add") == 0) {
        if (argc != 2)
            return usage_error(c, "usage: o7 store add STORE_HASH < token");
        return cmd_store_add(c, argv[1]);
    }
    if (need_catalog(c, &e) != O7_OK)
        return fail_err(c, &e);
    if (strcmp(argv[0], "list") == 0) {
        if (argc != 1)
            return usage_error(c, "usage: o7 store list [--json]");
        o7_buf b = O7_BUF_INIT;
        list_out lo = {c, &b, 0};
        if (c->json)
            o7_buf_puts(&b, "{\"stores\": [");
        else
            printf("%-20s %-8s %s\n", "STORE", "STATE", "UPDATED");
        if (o7_catalog_store_list(c->cat, print_store, &lo, &e) != O7_OK) {
            o7_buf_free(&b);
            return fail_err(c, &e);
        }
        if (c->json) {
            o7_buf_puts(&b, "]}\n");
            put_json(&b);
        }
        o7_buf_free(&b);
        return EXIT_OK;
    }
    if (strcmp(argv[0], "remove") == 0) {
        if (argc != 2)
            return usage_error(c, "usage: o7 store remove STORE_HASH");
        if (o7_catalog_store_remove(c->cat, argv[1], &e) != O7_OK)
            return fail_err(c, &e);
        o7_catalog_audit(c->cat, argv[1], "cli", "store.remove", "", "ok",
                         "token deleted; backups kept", NULL);
        if (c->json)
            put_done("store_hash", argv[1], "removed");
        else
            printf("store %s removed: its token is deleted, its backups are kept\n", argv[1]);
        return EXIT_OK;
    }
    return usage_error(c, "o7 store needs add, list or remove");
}

/* ---- backup ---------------------------------------------------------------- */

/* Plugins that failed to load: the backup goes on without their types, and
 * says so. */
static void failures_json(const o7_plugins *ps, o7_buf *b)
{
    o7_buf_puts(b, ", \"warnings\": [");
    for (size_t i = 0; ps && i < ps->nfailures; i++) {
        char msg[1400];
        snprintf(msg, sizeof msg, "plugin %s did not load, so its type was not backed up: %s",
                 ps->failures[i].file, ps->failures[i].reason);
        o7_buf_puts(b, i ? ", " : "");
        jstr(b, msg);
    }
    o7_buf_puts(b, "]");
}

static void backup_json(const o7_backup_result *r, o7_buf *b)
{
    o7_buf_puts(b, "{\"backup_id\": ");
    jstr(b, r->id);
    jfield(b, "store_hash", r->store_hash);
    jfield(b, "status", r->status);
    o7_buf_puts(b, ", \"started_at\": ");
    jtime(b, r->started_at);
    o7_buf_puts(b, ", \"finished_at\": ");
    jtime(b, r->finished_at);
    if (strcmp(r->status, "complete") != 0) {
        jfield(b, "error", r->error);
    }
    int64_t records = 0, requests = (int64_t)r->http.sent;
    o7_buf_puts(b, ", \"types\": {");
    for (size_t i = 0; i < r->ntypes; i++) {
        const o7_type_result *t = &r->types[i];
        records += t->records;
        o7_buf_puts(b, i ? ", " : "");
        jstr(b, t->type);
        o7_buf_printf(b, ": {\"records\": %lld, \"bytes\": %lld, \"stored_bytes\": %lld, "
                      "\"status\": ", (long long)t->records, (long long)t->bytes,
                      (long long)t->stored_bytes);
        jstr(b, t->status);
        jfield(b, "object", t->object);
        jfield(b, "sha256", t->sha256);
        o7_buf_printf(b, ", \"requests\": %lld", (long long)t->requests);
        if (t->error[0]) {
            jfield(b, "error", t->error);
        }
        o7_buf_puts(b, "}");
    }
    o7_buf_puts(b, "}, \"attachments\": [");
    for (size_t i = 0; i < r->nattachments; i++) {
        const o7_attachment *a = &r->attachments[i];
        o7_buf_puts(b, i ? ", {\"object\": " : "{\"object\": ");
        jstr(b, a->object);
        jfield(b, "type", a->type);
        o7_buf_printf(b, ", \"bytes\": %lld, \"sha256\": ", (long long)a->bytes);
        jstr(b, a->sha256);
        o7_buf_puts(b, "}");
    }
    double secs = (double)(r->finished_ms - r->started_ms) / 1000.0;
    o7_buf_printf(b, "], \"records\": %lld, \"seconds\": %.3f, \"requests\": %lld, "
                  "\"retries\": %llu, \"throttled\": %llu, \"quota_waits\": %llu}\n",
                  (long long)records, secs, (long long)requests,
                  (unsigned long long)r->http.retries, (unsigned long long)r->http.throttled,
                  (unsigned long long)r->http.quota_waits);
}

static void backup_human(const o7_backup_result *r)
{
    int64_t records = 0, bytes = 0, stored = 0;
    fprintf(stdout, "%-16s %10s %12s %12s  %s\n", "TYPE", "RECORDS", "BYTES", "STORED",
            "STATUS");
    for (size_t i = 0; i < r->ntypes; i++) {
        const o7_type_result *t = &r->types[i];
        char b1[32], b2[32];
        human_bytes(t->bytes, b1);
        human_bytes(t->stored_bytes, b2);
        fprintf(stdout, "%-16s %10lld %12s %12s  %s\n", t->type, (long long)t->records, b1, b2,
                t->status);
        records += t->records;
        bytes += t->bytes;
        stored += t->stored_bytes;
    }
    for (size_t i = 0; i < r->nattachments; i++) {
        char b1[32];
        human_bytes(r->attachments[i].bytes, b1);
        fprintf(stdout, "%-16s %10s %12s %12s  attachment %s\n", r->attachments[i].type, "-",
                b1, b1, r->attachments[i].object);
    }
    char b1[32], b2[32];
    human_bytes(bytes, b1);
    human_bytes(stored, b2);
    double secs = (double)(r->finished_ms - r->started_ms) / 1000.0;
    fprintf(stdout, "%-16s %10lld %12s %12s\n", "total", (long long)records, b1, b2);
    fprintf(stdout, "backup %s of store %s: %s in %.1f s, %llu requests (%.3f per record)\n",
            r->id, r->store_hash, r->status, secs, (unsigned long long)r->http.sent,
            records ? (double)r->http.sent / (double)records : 0.0);
    if (strcmp(r->status, "complete") != 0)
        fprintf(stdout, "error: %s\n", r->error);
}

static int cmd_backup(ctx *c, int argc, char **argv)
{
    o7_err e = {0};
    const char *hash = NULL;
    char *types_arg = NULL;
    for (int i = 0; i < argc; i++) {
        if ((strcmp(argv[i], "--types") == 0 && i + 1 < argc) ||
            strncmp(argv[i], "--types=", 8) == 0) {
            if (types_arg)
                return usage_error(c, "--types is given twice; list every type in one, e.g. "
                                      "--types products,orders");
            types_arg = argv[i][7] == '=' ? argv[i] + 8 : argv[++i];
        }
        else if (argv[i][0] == '-')
            return usage_error(c, "o7 backup takes STORE_HASH [--types a,b] [--json]");
        else if (hash == NULL)
            hash = argv[i];
        else
            return usage_error(c, "o7 backup takes one store hash");
    }
    if (hash == NULL)
        return usage_error(c, "usage: o7 backup STORE_HASH [--types a,b,...] [--json]");
    const char *types[64];
    size_t ntypes = 0;
    if (types_arg) {
        for (char *t = strtok(types_arg, ","); t; t = strtok(NULL, ",")) {
            if (ntypes == 64)
                return usage_error(c, "too many types");
            if (*t)
                types[ntypes++] = t;
        }
        if (ntypes == 0)
            return usage_error(c, "--types needs at least one type name");
    }
    if (need_catalog(c, &e) != O7_OK || need_storage(c, &e) != O7_OK ||
        need_plugins(c, &e) != O7_OK)
        return fail_err(c, &e);
    char *token = NULL;
    if (store_token(c, hash, &token, &e) != O7_OK)
        return fail_err(c, &e);

    catch_stop_signals();

    o7_backup_opts o = {.store_hash = hash, .token = token, .types = types_arg ? types : NULL,
                        .ntypes = ntypes, .actor = "cli", .kind = "manual",
                        .progress = isatty(2) && !c->json, .interrupted = &interrupted};
    o7_backup_result res;
    o7_rc rc = o7_backup_run(c->conf, c->cat, c->st, c->ps, &o, &res, &e);
    free_token(token);
    if (rc != O7_OK && res.id[0] == '\0') {
        o7_backup_result_free(&res);
        return fail_err(c, &e);
    }
    if (c->json) {
        o7_buf b = O7_BUF_INIT;
        backup_json(&res, &b);
        /* Splice the warnings in before the closing brace. */
        if (b.len >= 2 && !types_arg) {
            b.len -= 2;
            failures_json(c->ps, &b);
            o7_buf_puts(&b, "}\n");
        }
        put_json(&b);
        o7_buf_free(&b);
    } else {
        backup_human(&res);
    }
    for (size_t i = 0; !types_arg && i < c->ps->nfailures; i++)
        fprintf(stderr, "o7: warning: plugin %s did not load, so its type was not backed up: "
                "%s\n", c->ps->failures[i].file, c->ps->failures[i].reason);
    o7_backup_result_free(&res);
    if (rc != O7_OK)
        fprintf(stderr, "o7: backup failed: %s\n", e.msg);
    return rc == O7_OK ? EXIT_OK : EXIT_FAILED;
}

/* ---- backups --------------------------------------------------------------- */

/* A backup the catalog says is running, while nobody holds the store's lock,
 * was left by a process that died (SIGKILL, power loss): say so. */
static void settle_stale(ctx *c, const char *store)
{
    int lock = -1, n = 0;
    o7_err e = {0};
    if (o7_store_lock(c->conf, store, &lock, &e) != O7_OK)
        return; /* a job is running: its rows are live */
    o7_catalog_backup_fail_running(c->cat, store,
                                   "the process running this backup stopped before it finished",
                                   &n, NULL);
    o7_store_unlock(lock);
    if (n)
        o7_info("catalog", "marked %d backup%s of store %s failed: its process is gone", n,
                n == 1 ? "" : "s", store);
}

static void row_types_json(o7_buf *b, const o7_backup_row *row)
{
    o7_buf_puts(b, "{");
    for (size_t i = 0; i < row->ntypes; i++) {
        const o7_backup_type_row *t = &row->types[i];
        o7_buf_puts(b, i ? ", " : "");
        jstr(b, t->type);
        o7_buf_printf(b, ": {\"records\": %lld, \"bytes\": %lld, \"stored_bytes\": %lld, "
                      "\"status\": ", (long long)t->records, (long long)t->bytes,
                      (long long)t->stored_bytes);
        jstr(b, t->status);
        jfield(b, "object", t->object);
        jfield(b, "sha256", t->sha256);
        o7_buf_puts(b, "}");
    }
    o7_buf_puts(b, "}");
}

static o7_rc print_backup(void *ud, const o7_backup_row *row)
{
    list_out *lo = ud;
    if (lo->c->json) {
        o7_buf *b = lo->b;
        o7_buf_puts(b, lo->n ? ", {\"backup_id\": " : "{\"backup_id\": ");
        jstr(b, row->id);
        jfield(b, "status", row->status);
        jfield(b, "kind", row->kind);
        o7_buf_puts(b, ", \"started_at\": ");
        jtime(b, row->started_at);
        o7_buf_puts(b, ", \"finished_at\": ");
        jtime(b, row->finished_at);
        o7_buf_printf(b, ", \"records\": %lld, \"bytes\": %lld, \"stored_bytes\": %lld",
                      (long long)row->records, (long long)row->bytes,
                      (long long)row->stored_bytes);
        if (row->error[0]) {
            jfield(b, "error", row->error);
        }
        o7_buf_puts(b, ", \"types\": ");
        row_types_json(b, row);
        o7_buf_puts(b, "}");
    } else {
        char t[32], b1[32], b2[32];
        rfc3339(row->started_at, t);
        human_bytes(row->bytes, b1);
        human_bytes(row->stored_bytes, b2);
        printf("%-32s %-9s %-20s %9lld %11s %11s%s%s\n", row->id, row->status, t,
               (long long)row->records, b1, b2, row->error[0] ? "  " : "", row->error);
    }
    lo->n++;
    return O7_OK;
}

static int cmd_backups(ctx *c, int argc, char **argv)
{
    o7_err e = {0};
    if (argc != 1 || argv[0][0] == '-')
        return usage_error(c, "usage: o7 backups STORE_HASH [--json]");
    if (need_catalog(c, &e) != O7_OK)
        return fail_err(c, &e);
    settle_stale(c, argv[0]);
    o7_buf b = O7_BUF_INIT;
    list_out lo = {c, &b, 0};
    if (c->json) {
        o7_buf_puts(&b, "{\"store_hash\": ");
        jstr(&b, argv[0]);
        o7_buf_puts(&b, ", \"backups\": [");
    } else {
        printf("%-32s %-9s %-20s %9s %11s %11s\n", "BACKUP", "STATUS", "STARTED", "RECORDS",
               "BYTES", "STORED");
    }
    if (o7_catalog_backup_list(c->cat, argv[0], print_backup, &lo, &e) != O7_OK) {
        o7_buf_free(&b);
        return fail_err(c, &e);
    }
    if (c->json) {
        o7_buf_puts(&b, "]}\n");
        put_json(&b);
    } else if (lo.n == 0) {
        printf("(no backups of store %s)\n", argv[0]);
    }
    o7_buf_free(&b);
    return EXIT_OK;
}

/* ---- verify ---------------------------------------------------------------- */

static o7_rc backup_manifest(ctx *c, const char *id, o7_backup_row *row, o7_manifest *m,
                             o7_err *err)
{
    o7_rc rc = o7_catalog_backup_get(c->cat, id, row, err);
    if (rc == O7_ERR_NOTFOUND) {
        err->rc = O7_OK;
        return o7_fail(err, O7_ERR_NOTFOUND,
                       "no backup %s in the catalog (o7 backups STORE lists them; o7 catalog "
                       "rebuild re-reads storage)",
                       id);
    }
    if (rc != O7_OK)
        return rc;
    rc = o7_manifest_read(c->st, row->store_hash, id, m, err);
    if (rc == O7_ERR_NOTFOUND) {
        err->rc = O7_OK;
        return o7_fail(err, O7_ERR_CORRUPT,
                       "backup %s has no manifest in storage: it is not a complete backup%s%s%s",
                       id, row->status[0] ? " (catalog status: " : "",
                       row->status[0] ? row->status : "", row->status[0] ? ")" : "");
    }
    return rc;
}

static int cmd_verify(ctx *c, int argc, char **argv)
{
    o7_err e = {0};
    if (argc != 1 || argv[0][0] == '-')
        return usage_error(c, "usage: o7 verify BACKUP_ID [--json]");
    if (need_catalog(c, &e) != O7_OK || need_storage(c, &e) != O7_OK)
        return fail_err(c, &e);
    o7_backup_row row = {0};
    o7_manifest m = {0};
    o7_rc rc = backup_manifest(c, argv[0], &row, &m, &e);
    /* The manifest must still list every type the catalog recorded when the
     * backup completed: a type cut out of it is damage too. */
    for (size_t i = 0; rc == O7_OK && i < row.ntypes; i++)
        if (strcmp(row.types[i].status, "complete") == 0 &&
            o7_manifest_type_find(&m, row.types[i].type) == NULL)
            rc = o7_fail(&e, O7_ERR_CORRUPT,
                         "backup %s is damaged: its manifest no longer lists type %s, which the "
                         "catalog recorded (%lld records)",
                         argv[0], row.types[i].type, (long long)row.types[i].records);
    o7_backup_row_free(&row);
    if (rc != O7_OK) {
        o7_manifest_free(&m);
        return fail_err(c, &e);
    }
    o7_verify_item *items = NULL;
    size_t n = 0;
    rc = o7_verify(c->st, &m, &items, &n, &e);
    if (c->json) {
        o7_buf b = O7_BUF_INIT;
        o7_buf_puts(&b, "{\"backup_id\": ");
        jstr(&b, argv[0]);
        o7_buf_printf(&b, ", \"status\": \"%s\"", rc == O7_OK ? "ok" : "failed");
        if (rc != O7_OK) {
            jfield(&b, "error", e.msg);
        }
        o7_buf_puts(&b, ", \"objects\": [");
        for (size_t i = 0; i < n; i++) {
            o7_buf_puts(&b, i ? ", {\"object\": " : "{\"object\": ");
            jstr(&b, items[i].object);
            jfield(&b, "type", items[i].type);
            jfield(&b, "status", items[i].status);
            o7_buf_printf(&b, ", \"records\": %lld, \"bytes\": %lld, \"stored_bytes\": %lld",
                          (long long)items[i].records, (long long)items[i].bytes,
                          (long long)items[i].stored_bytes);
            if (items[i].error[0]) {
                jfield(&b, "error", items[i].error);
            }
            o7_buf_puts(&b, "}");
        }
        o7_buf_puts(&b, "]}\n");
        put_json(&b);
        o7_buf_free(&b);
    } else {
        for (size_t i = 0; i < n; i++)
            printf("%-6s %-40s %9lld records %s\n", items[i].status, items[i].object,
                   (long long)items[i].records, items[i].error);
        printf("backup %s: %s\n", argv[0], rc == O7_OK ? "verified" : "DAMAGED");
    }
    if (rc != O7_OK)
        fprintf(stderr, "o7: %s\n", e.msg);
    free(items);
    o7_manifest_free(&m);
    return rc == O7_OK ? EXIT_OK : EXIT_FAILED;
}

/* ---- plugins --------------------------------------------------------------- */

static const char *paging_name(const o7_plugin *p)
{
    if (p->has_fetch)
        return "hook";
    switch (p->list.paging) {
    case O7_PAGING_KEYSET: return "keyset";
    case O7_PAGING_CURSOR: return "cursor";
    case O7_PAGING_PAGE: return "page";
    }
    return "?";
}

static int cmd_plugins(ctx *c, int argc, char **argv)
{
    (void)argv;
    o7_err e = {0};
    if (argc != 0)
        return usage_error(c, "usage: o7 plugins [--json]");
    if (need_plugins(c, &e) != O7_OK)
        return fail_err(c, &e);
    o7_plugins *ps = c->ps;
    if (c->json) {
        o7_buf b = O7_BUF_INIT;
        o7_buf_puts(&b, "{\"dir\": ");
        jstr(&b, ps->dir);
        o7_buf_puts(&b, ", \"plugins\": [");
        for (size_t i = 0; i < ps->n; i++) {
            const o7_plugin *p = &ps->items[i];
            o7_buf_puts(&b, i ? ", {\"type\": " : "{\"type\": ");
            jstr(&b, p->type);
            jfield(&b, "version", p->version);
            jfield(&b, "file", p->file);
            jfield(&b, "scope", p->scope);
            jfield(&b, "paging", paging_name(p));
            o7_buf_puts(&b, ", \"depends\": [");
            for (size_t j = 0; j < p->ndepends; j++) {
                o7_buf_puts(&b, j ? ", " : "");
                jstr(&b, p->depends[j]);
            }
            o7_buf_puts(&b, "]}");
        }
        o7_buf_puts(&b, "], \"failed\": [");
        for (size_t i = 0; i < ps->nfailures; i++) {
            o7_buf_puts(&b, i ? ", {\"file\": " : "{\"file\": ");
            jstr(&b, ps->failures[i].file);
            jfield(&b, "reason", ps->failures[i].reason);
            o7_buf_puts(&b, "}");
        }
        o7_buf_puts(&b, "]}\n");
        put_json(&b);
        o7_buf_free(&b);
    } else {
        printf("%-16s %-8s %-8s %s\n", "TYPE", "VERSION", "PAGING", "FILE");
        for (size_t i = 0; i < ps->n; i++)
            printf("%-16s %-8s %-8s %s\n", ps->items[i].type, ps->items[i].version,
                   paging_name(&ps->items[i]), ps->items[i].file);
        for (size_t i = 0; i < ps->nfailures; i++)
            printf("FAILED %s: %s\n", ps->failures[i].file, ps->failures[i].reason);
    }
    return ps->nfailures ? EXIT_FAILED : EXIT_OK;
}

/* ---- catalog rebuild ---------------------------------------------------------- */

/* A growing list of object keys (or store hashes) gathered from a listing. */
typedef struct strlist {
    char (*s)[512];
    size_t n, cap;
} strlist;

static o7_rc strlist_add(strlist *l, const char *s, size_t len)
{
    if (len >= 512)
        return O7_OK; /* longer than any key o7 writes: not ours */
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        void *k = realloc(l->s, cap * sizeof *l->s);
        if (k == NULL)
            return O7_ERR_NOMEM;
        l->s = k;
        l->cap = cap;
    }
    memcpy(l->s[l->n], s, len);
    l->s[l->n++][len] = '\0';
    return O7_OK;
}

static o7_rc find_manifests(void *ud, const o7_object_info *info)
{
    const char *slash1 = strchr(info->key, '/');
    const char *slash2 = slash1 ? strchr(slash1 + 1, '/') : NULL;
    if (slash2 == NULL || strcmp(slash2 + 1, "manifest.json") != 0)
        return O7_OK;
    return strlist_add(ud, info->key, strlen(info->key));
}

static int cmd_catalog(ctx *c, int argc, char **argv)
{
    o7_err e = {0};
    if (argc != 1 || strcmp(argv[0], "rebuild") != 0)
        return usage_error(c, "usage: o7 catalog rebuild [--json]");
    if (need_catalog(c, &e) != O7_OK || need_storage(c, &e) != O7_OK)
        return fail_err(c, &e);
    strlist f = {0};
    if (o7_storage_list(c->st, "", find_manifests, &f, &e) != O7_OK) {
        free(f.s);
        return fail_err(c, &e);
    }
    int added = 0, bad = 0;
    for (size_t i = 0; i < f.n; i++) {
        char store[64], id[64];
        const char *k = f.s[i];
        const char *s1 = strchr(k, '/');
        const char *s2 = strchr(s1 + 1, '/');
        snprintf(store, sizeof store, "%.*s", (int)(s1 - k), k);
        snprintf(id, sizeof id, "%.*s", (int)(s2 - s1 - 1), s1 + 1);
        o7_manifest m = {0};
        o7_err me = {0};
        if (o7_manifest_read(c->st, store, id, &m, &me) != O7_OK) {
            o7_warn("catalog", "skipping %s: %s", k, me.msg);
            bad++;
            o7_manifest_free(&m);
            continue;
        }
        o7_backup_row row = {0};
        snprintf(row.id, sizeof row.id, "%s", id);
        snprintf(row.store_hash, sizeof row.store_hash, "%s", store);
        snprintf(row.status, sizeof row.status, "complete");
        snprintf(row.kind, sizeof row.kind, "rebuilt");
        snprintf(row.actor, sizeof row.actor, "catalog rebuild");
        row.started_at = o7_rfc3339_parse(m.started_at);
        row.finished_at = o7_rfc3339_parse(m.finished_at);
        o7_backup_type_row *tr = calloc(m.ntypes ? m.ntypes : 1, sizeof *tr);
        for (size_t j = 0; tr && j < m.ntypes; j++) {
            snprintf(tr[j].type, sizeof tr[j].type, "%s", m.types[j].type);
            snprintf(tr[j].object, sizeof tr[j].object, "%s", m.types[j].object);
            snprintf(tr[j].codec, sizeof tr[j].codec, "%s", m.types[j].codec);
            snprintf(tr[j].status, sizeof tr[j].status, "complete");
            snprintf(tr[j].sha256, sizeof tr[j].sha256, "%s", m.types[j].sha256);
            snprintf(tr[j].plugin_version, sizeof tr[j].plugin_version, "%s",
                     m.types[j].plugin_version);
            tr[j].records = m.types[j].records;
            tr[j].bytes = m.types[j].bytes;
            tr[j].stored_bytes = m.types[j].stored_bytes;
        }
        row.types = tr;
        row.ntypes = tr ? m.ntypes : 0;
        o7_rc rc = o7_catalog_backup_upsert(c->cat, &row, &e);
        free(tr);
        o7_manifest_free(&m);
        if (rc != O7_OK) {
            free(f.s);
            return fail_err(c, &e);
        }
        added++;
    }
    free(f.s);
    o7_catalog_audit(c->cat, NULL, "cli", "catalog.rebuild", "", "ok", "", NULL);
    if (c->json)
        printf("{\"status\": \"ok\", \"backups\": %d, \"unreadable\": %d}\n", added, bad);
    else
        printf("catalog rebuilt: %d backups found in %s%s\n", added, o7_storage_describe(c->st),
               bad ? " (some manifests could not be read; see the log)" : "");
    return EXIT_OK;
}

/* ---- audit ------------------------------------------------------------------ */

static o7_rc print_audit(void *ud, const o7_audit_row *row)
{
    list_out *lo = ud;
    if (lo->c->json) {
        o7_buf *b = lo->b;
        o7_buf_puts(b, lo->n ? ", {\"at\": " : "{\"at\": ");
        jtime(b, row->at);
        jfield(b, "store_hash", row->store_hash);
        jfield(b, "actor", row->actor);
        jfield(b, "action", row->action);
        jfield(b, "types", row->types);
        jfield(b, "status", row->status);
        jfield(b, "detail", row->detail);
        o7_buf_puts(b, "}");
    } else {
        char t[32];
        rfc3339(row->at, t);
        printf("%s %-12s %-8s %-16s %-10s %s %s\n", t, row->store_hash, row->actor, row->action,
               row->status, row->types, row->detail);
    }
    lo->n++;
    return O7_OK;
}

static int cmd_audit(ctx *c, int argc, char **argv)
{
    o7_err e = {0};
    if (argc > 1 || (argc == 1 && argv[0][0] == '-'))
        return usage_error(c, "usage: o7 audit [STORE_HASH] [--json]");
    if (need_catalog(c, &e) != O7_OK)
        return fail_err(c, &e);
    o7_buf b = O7_BUF_INIT;
    list_out lo = {c, &b, 0};
    if (c->json)
        o7_buf_puts(&b, "{\"entries\": [");
    if (o7_catalog_audit_list(c->cat, argc ? argv[0] : NULL, 0, print_audit, &lo, &e) != O7_OK) {
        o7_buf_free(&b);
        return fail_err(c, &e);
    }
    if (c->json) {
        o7_buf_puts(&b, "]}\n");
        put_json(&b);
    }
    o7_buf_free(&b);
    return EXIT_OK;
}

/* ---- url, delete, gc ------------------------------------------------------------- */

static int cmd_url(ctx *c, int argc, char **argv)
{
    o7_err e = {0};
    int ttl = -1;
    const char *pos[2];
    int np = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--ttl") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 604800)
                return usage_error(c, "--ttl takes seconds, from 1 to 604800 (7 days)");
            ttl = (int)v;
        } else if (argv[i][0] == '-' || np == 2) {
            return usage_error(c, "usage: o7 url BACKUP_ID NAME [--ttl SECONDS]");
        } else {
            pos[np++] = argv[i];
        }
    }
    if (np != 2)
        return usage_error(c, "usage: o7 url BACKUP_ID NAME [--ttl SECONDS]");
    if (need_catalog(c, &e) != O7_OK || need_storage(c, &e) != O7_OK)
        return fail_err(c, &e);
    o7_backup_row row = {0};
    o7_manifest m = {0};
    o7_rc rc = backup_manifest(c, pos[0], &row, &m, &e);
    char key[512] = "";
    if (rc == O7_OK) {
        const o7_manifest_type *t = o7_manifest_type_find(&m, pos[1]);
        if (t)
            snprintf(key, sizeof key, "%s/%s/%s", m.store_hash, m.backup_id, t->object);
        for (size_t i = 0; !key[0] && i < m.nattachments; i++)
            if (strcmp(m.attachments[i].object, pos[1]) == 0)
                snprintf(key, sizeof key, "%s/%s/%s", m.store_hash, m.backup_id, pos[1]);
        if (!key[0] && strcmp(pos[1], "manifest.json") == 0)
            snprintf(key, sizeof key, "%s/%s/manifest.json", m.store_hash, m.backup_id);
        if (!key[0])
            rc = o7_fail(&e, O7_ERR_NOTFOUND,
                         "backup %s has no type or attachment named %s", pos[0], pos[1]);
    }
    o7_backup_row_free(&row);
    o7_manifest_free(&m);
    char *url = NULL;
    if (rc == O7_OK)
        rc = o7_storage_presign(c->st, key, ttl > 0 ? ttl : c->conf->url_ttl, &url, &e);
    if (rc != O7_OK)
        return fail_err(c, &e);
    if (c->json) {
        o7_buf b = O7_BUF_INIT;
        o7_buf_puts(&b, "{\"url\": ");
        jstr(&b, url);
        o7_buf_printf(&b, ", \"ttl\": %d}\n", ttl > 0 ? ttl : c->conf->url_ttl);
        put_json(&b);
        o7_buf_free(&b);
    } else {
        printf("%s\n", url);
    }
    free(url);
    return EXIT_OK;
}

static o7_rc collect_key(void *ud, const o7_object_info *info)
{
    return strlist_add(ud, info->key, strlen(info->key));
}

static int cmd_delete(ctx *c, int argc, char **argv)
{
    o7_err e = {0};
    if (argc != 1 || argv[0][0] == '-')
        return usage_error(c, "usage: o7 delete BACKUP_ID [--json]");
    if (need_catalog(c, &e) != O7_OK || need_storage(c, &e) != O7_OK)
        return fail_err(c, &e);
    o7_backup_row row = {0};
    if (o7_catalog_backup_get(c->cat, argv[0], &row, &e) != O7_OK) {
        if (e.rc == O7_ERR_NOTFOUND) {
            e.rc = O7_OK;
            o7_fail(&e, O7_ERR_NOTFOUND, "no backup %s in the catalog", argv[0]);
        }
        return fail_err(c, &e);
    }
    char store[64];
    snprintf(store, sizeof store, "%s", row.store_hash);
    o7_backup_row_free(&row);
    int lock = -1;
    if (o7_store_lock(c->conf, store, &lock, &e) != O7_OK) {
        e.rc = O7_OK;
        o7_fail(&e, O7_ERR_BUSY, "store %s has a backup or restore running; o7 does not delete "
                "while one may be writing, try again when it has finished", store);
        return fail_err(c, &e);
    }
    /* The manifest goes first, so an interrupted delete never leaves a
     * manifest that points at missing objects. */
    char key[512], prefix[192];
    snprintf(key, sizeof key, "%s/%s/manifest.json", store, argv[0]);
    snprintf(prefix, sizeof prefix, "%s/%s/", store, argv[0]);
    strlist l = {0};
    o7_rc rc = o7_storage_delete(c->st, key, &e);
    if (rc == O7_OK)
        rc = o7_storage_list(c->st, prefix, collect_key, &l, &e);
    for (size_t i = 0; rc == O7_OK && i < l.n; i++)
        rc = o7_storage_delete(c->st, l.s[i], &e);
    free(l.s);
    if (rc == O7_OK)
        rc = o7_catalog_backup_delete(c->cat, argv[0], &e);
    o7_catalog_audit(c->cat, store, "cli", "backup.delete", "", rc == O7_OK ? "ok" : "failed",
                     rc == O7_OK ? argv[0] : e.msg, NULL);
    o7_store_unlock(lock);
    if (rc != O7_OK)
        return fail_err(c, &e);
    if (c->json)
        put_done("backup_id", argv[0], "deleted");
    else
        printf("backup %s deleted\n", argv[0]);
    return EXIT_OK;
}

/* The store hashes found at the top of storage, once each (keys come in
 * order, so a store's keys are together). */
static o7_rc collect_store(void *ud, const o7_object_info *info)
{
    strlist *l = ud;
    const char *slash = strchr(info->key, '/');
    if (slash == NULL)
        return O7_OK;
    size_t len = (size_t)(slash - info->key);
    if (l->n && strlen(l->s[l->n - 1]) == len && strncmp(l->s[l->n - 1], info->key, len) == 0)
        return O7_OK;
    return strlist_add(l, info->key, len);
}

static int cmd_gc(ctx *c, int argc, char **argv)
{
    o7_err e = {0};
    long min_age = 24 * 3600;
    for (int i = 0; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--min-age") == 0 && i + 1 < argc) {
            min_age = strtol(argv[++i], &end, 10);
            if (*end || min_age < 0)
                return usage_error(c, "--min-age takes seconds (0 or more)");
        } else {
            return usage_error(c, "usage: o7 gc [--min-age SECONDS] [--json]");
        }
    }
    if (need_catalog(c, &e) != O7_OK || need_storage(c, &e) != O7_OK)
        return fail_err(c, &e);
    strlist l = {0};
    /* A server without multipart listing (some S3 clones) still gets its
     * unfinished folders cleaned; the upload sweep is reported as skipped. */
    o7_err ge = {0};
    if (o7_storage_gc(c->st, min_age, &ge) != O7_OK)
        o7_warn("gc", "unfinished uploads not swept: %s", ge.msg);
    o7_rc rc = o7_storage_list(c->st, "", collect_store, &l, &e);
    int removed = 0, busy = 0;
    for (size_t i = 0; rc == O7_OK && i < l.n; i++) {
        int lock = -1, n = 0;
        o7_err le = {0};
        if (o7_store_lock(c->conf, l.s[i], &lock, &le) != O7_OK) {
            busy++;
            continue;
        }
        int stale = 0;
        o7_catalog_backup_fail_running(c->cat, l.s[i], "the process running this backup "
                                       "stopped before it finished", &stale, NULL);
        rc = o7_backup_gc_store(c->st, c->cat, l.s[i], min_age, &n, &e);
        removed += n;
        o7_store_unlock(lock);
    }
    free(l.s);
    if (rc != O7_OK)
        return fail_err(c, &e);
    if (c->json) {
        o7_buf b = O7_BUF_INIT;
        o7_buf_printf(&b, "{\"status\": \"ok\", \"folders_removed\": %d, \"stores_busy\": %d, "
                      "\"uploads_swept\": %s", removed, busy, ge.rc == O7_OK ? "true" : "false");
        if (ge.rc != O7_OK) {
            jfield(&b, "warning", ge.msg);
        }
        o7_buf_puts(&b, "}\n");
        put_json(&b);
        o7_buf_free(&b);
    }
    else
        printf("gc: removed %d unfinished backup folders%s\n", removed,
               busy ? " (stores with a job running were skipped)" : "");
    return EXIT_OK;
}

/* ---- restore ------------------------------------------------------------------ */

static void restore_json(const o7_restore_result *r, o7_buf *b)
{
    o7_buf_puts(b, "{\"backup_id\": ");
    jstr(b, r->backup_id);
    jfield(b, "source_store", r->source_store);
    jfield(b, "target_store", r->target_store);
    jfield(b, "status", r->status);
    o7_buf_printf(b, ", \"dry_run\": %s", r->dry_run ? "true" : "false");
    o7_buf_puts(b, ", \"safety_backup_id\": ");
    if (r->safety_backup_id[0])
        jstr(b, r->safety_backup_id);
    else
        o7_buf_puts(b, "null");
    o7_buf_puts(b, ", \"started_at\": ");
    jtime(b, r->started_at);
    o7_buf_puts(b, ", \"finished_at\": ");
    jtime(b, r->finished_at);
    if (r->error[0]) {
        jfield(b, "error", r->error);
    }
    o7_buf_puts(b, ", \"types\": {");
    for (size_t i = 0; i < r->ntypes; i++) {
        const o7_restore_type *t = &r->types[i];
        const o7_restore_counts *c = &t->c;
        o7_buf_puts(b, i ? ", " : "");
        jstr(b, t->type);
        o7_buf_printf(b, ": {\"status\": \"%s\", \"records\": %lld, \"created\": %lld, "
                      "\"updated\": %lld, \"unchanged\": %lld, \"skipped\": %lld, "
                      "\"kept\": %lld, \"failed\": %lld",
                      t->status, (long long)t->records, (long long)c->created,
                      (long long)c->updated, (long long)c->unchanged, (long long)c->skipped,
                      (long long)c->kept, (long long)c->failed);
        if (t->error[0]) {
            jfield(b, "error", t->error);
        }
        o7_buf_puts(b, "}");
    }
    o7_buf_puts(b, "}, \"records\": [");
    for (size_t i = 0; i < r->nitems; i++) {
        const o7_restore_item *it = &r->items[i];
        o7_buf_puts(b, i ? ", {\"type\": " : "{\"type\": ");
        jstr(b, it->type);
        jfield(b, "id", it->id);
        jfield(b, "outcome", it->outcome);
        jfield(b, "reason", it->detail);
        if (it->fields[0]) {
            jfield(b, "fields", it->fields);
        }
        o7_buf_puts(b, "}");
    }
    o7_buf_printf(b, "], \"requests\": %llu, \"seconds\": %.3f}\n",
                  (unsigned long long)r->http.sent,
                  (double)(r->finished_ms - r->started_ms) / 1000.0);
}

static void restore_human(const o7_restore_result *r)
{
    printf("%-16s %8s %8s %8s %9s %8s %6s %7s\n", "TYPE", "RECORDS", "CREATED", "UPDATED",
           "UNCHANGED", "SKIPPED", "KEPT", "FAILED");
    for (size_t i = 0; i < r->ntypes; i++) {
        const o7_restore_type *t = &r->types[i];
        printf("%-16s %8lld %8lld %8lld %9lld %8lld %6lld %7lld%s%s\n", t->type,
               (long long)t->records, (long long)t->c.created, (long long)t->c.updated,
               (long long)t->c.unchanged, (long long)t->c.skipped, (long long)t->c.kept,
               (long long)t->c.failed, t->error[0] ? "  " : "", t->error);
    }
    for (size_t i = 0; i < r->nitems; i++)
        printf("%s %s %s: %s%s%s\n", r->items[i].type, r->items[i].id, r->items[i].outcome,
               r->items[i].detail, r->items[i].fields[0] ? " fields: " : "",
               r->items[i].fields);
    printf("%s %s of backup %s into store %s: %s, %llu requests\n",
           r->dry_run ? "plan for the restore" : "restore", r->dry_run ? "(dry run)" : "",
           r->backup_id, r->target_store, r->status, (unsigned long long)r->http.sent);
    if (r->safety_backup_id[0])
        printf("safety backup taken first: %s (restore it to undo this restore)\n",
               r->safety_backup_id);
}

static int cmd_restore(ctx *c, int argc, char **argv)
{
    o7_err e = {0};
    const char *id = NULL, *to = NULL;
    char *types_arg = NULL, *only_arg = NULL;
    int dry = 0, activate = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--types") == 0 && i + 1 < argc)
            types_arg = argv[++i];
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only_arg = argv[++i];
        else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
            to = argv[++i];
        else if (strcmp(argv[i], "--dry-run") == 0)
            dry = 1;
        else if (strcmp(argv[i], "--activate") == 0)
            activate = 1;
        else if (argv[i][0] == '-' || id)
            return usage_error(c, "usage: o7 restore BACKUP_ID [--types a,b] [--only TYPE:ID,...] "
                                  "[--to STORE_HASH] [--dry-run] [--activate] [--json]");
        else
            id = argv[i];
    }
    if (id == NULL)
        return usage_error(c, "usage: o7 restore BACKUP_ID [--types a,b] [--only TYPE:ID,...] "
                              "[--to STORE_HASH] [--dry-run] [--activate] [--json]");
    if (types_arg && only_arg)
        return usage_error(c, "--only names its type itself; use it without --types");
    const char *types[64], *ids[1024];
    size_t ntypes = 0, nids = 0;
    char *only_type = NULL;
    if (types_arg)
        for (char *t = strtok(types_arg, ","); t && ntypes < 64; t = strtok(NULL, ","))
            if (*t)
                types[ntypes++] = t;
    if (only_arg) {
        char *colon = strchr(only_arg, ':');
        if (colon == NULL || colon == only_arg || colon[1] == '\0')
            return usage_error(c, "--only takes TYPE:ID[,ID...], e.g. products:114,117");
        *colon = '\0';
        only_type = only_arg;
        for (char *t = strtok(colon + 1, ","); t && nids < 1024; t = strtok(NULL, ","))
            if (*t)
                ids[nids++] = t;
    }
    if (need_catalog(c, &e) != O7_OK || need_storage(c, &e) != O7_OK ||
        need_plugins(c, &e) != O7_OK)
        return fail_err(c, &e);
    char source[64];
    if (o7_restore_source(c->cat, id, source, &e) != O7_OK)
        return fail_err(c, &e);
    char *token = NULL;
    if (store_token(c, to ? to : source, &token, &e) != O7_OK)
        return fail_err(c, &e);
    catch_stop_signals();
    o7_restore_opts o = {.backup_id = id, .target_store = to, .token = token,
                         .types = types_arg ? types : NULL, .ntypes = ntypes,
                         .only_type = only_type, .only_ids = ids, .nonly = nids,
                         .dry_run = dry, .activate = activate, .actor = "cli",
                         .interrupted = &interrupted};
    o7_restore_result res;
    o7_rc rc = o7_restore_run(c->conf, c->cat, c->st, c->ps, &o, &res, &e);
    free_token(token);
    if (rc != O7_OK && res.ntypes == 0) {
        o7_restore_result_free(&res);
        return fail_err(c, &e);
    }
    if (c->json) {
        o7_buf b = O7_BUF_INIT;
        restore_json(&res, &b);
        put_json(&b);
        o7_buf_free(&b);
    } else {
        restore_human(&res);
    }
    o7_restore_result_free(&res);
    if (rc != O7_OK)
        fprintf(stderr, "o7: restore: %s\n", e.msg);
    return rc == O7_OK ? EXIT_OK : EXIT_FAILED;
}

/* ---- dispatch ---------------------------------------------------------------- */

typedef struct command {
    const char *name;
    int (*fn)(ctx *c, int argc, char **argv);
    const char *help;
} command;

static const command commands[] = {
    {"store", cmd_store,
     "o7 store add STORE_HASH      register a store (token on standard input)\n"
     "o7 store list [--json]       the registered stores\n"
     "o7 store remove STORE_HASH   delete a store's token; its backups stay\n"},
    {"backup", cmd_backup,
     "o7 backup STORE_HASH [--types a,b,...] [--json]\n"
     "  Backs the store up now, one object per type, then the manifest.\n"
     "  Exit 0 when complete, 1 when failed, 2 on bad usage.\n"},
    {"restore", cmd_restore,
     "o7 restore BACKUP_ID [--types a,b] [--only TYPE:ID,...] [--to STORE_HASH]\n"
     "           [--dry-run] [--activate] [--json]\n"
     "  Verifies the backup, takes a safety backup of the types it touches, then\n"
     "  puts the records back: each ends created, updated, unchanged, skipped,\n"
     "  kept or failed. --dry-run only plans. Exit 1 when any record failed.\n"},
    {"backups", cmd_backups, "o7 backups STORE_HASH [--json]\n  Lists the store's backups.\n"},
    {"verify", cmd_verify,
     "o7 verify BACKUP_ID [--json]\n"
     "  Reads every object back: sha256, full decompression, record counts.\n"},
    {"plugins", cmd_plugins,
     "o7 plugins [--json]\n  The plugins found and any that failed to load (exit 1 then).\n"},
    {"catalog", cmd_catalog,
     "o7 catalog rebuild [--json]\n  Re-creates the backup list from the manifests in "
     "storage.\n"},
    {"audit", cmd_audit, "o7 audit [STORE_HASH] [--json]\n  The audit log, oldest first.\n"},
    {"url", cmd_url,
     "o7 url BACKUP_ID NAME [--ttl SECONDS]\n"
     "  A download link for a type's object or an attachment (default [storage] url_ttl).\n"},
    {"delete", cmd_delete,
     "o7 delete BACKUP_ID [--json]\n  Deletes a backup: manifest first, then its objects.\n"},
    {"gc", cmd_gc,
     "o7 gc [--min-age SECONDS] [--json]\n  Aborts o7's unfinished uploads and removes "
     "backup folders without a manifest\n  that the catalog marks failed (or does not know), "
     "older than --min-age (default 86400).\n"},
};

int o7_cli_dispatch(const char *conf_path, int verbosity, int argc, char **argv)
{
    ctx c = {.conf_path = conf_path, .verbosity = verbosity};
    const command *cmd = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, argv[0]) == 0)
            cmd = &commands[i];
    /* --json is read first, so that even an unknown command answers a
     * script with one JSON object. */
    int help = 0, n = argc - 1;
    take_common(&c, &n, argv + 1, &help);
    if (cmd == NULL) {
        char msg[300];
        snprintf(msg, sizeof msg, "unknown command %.200s", argv[0]);
        return usage_error(&c, msg);
    }
    if (help) {
        fputs(cmd->help, stdout);
        return EXIT_OK;
    }
    int code = cmd->fn(&c, n, argv + 1);
    ctx_close(&c);
    return code;
}
