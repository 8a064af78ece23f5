/* test_conf.c - o7.conf reading: defaults, paths, comments, the
 * environment over the file, and file:line in every error. */
#include "../../core/conf.h"
#include "check.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[PATH_MAX]; /* real path of a scratch folder */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        CHECK(f != NULL);
        return;
    }
    fputs(text, f);
    fclose(f);
}

/* Writes text as tmpdir/name and loads it; *out NULL on failure. */
static o7_rc load_text(const char *name, const char *text, o7_conf **out, o7_err *err,
                       char path[PATH_MAX])
{
    snprintf(path, PATH_MAX, "%s/%s", tmpdir, name);
    write_file(path, text);
    *out = NULL;
    memset(err, 0, sizeof *err);
    return o7_conf_load(path, out, err);
}

TEST(defaults)
{
    o7_conf *c = NULL;
    CHECK_INT(o7_conf_defaults("/srv/o7", &c), O7_OK);
    if (c == NULL)
        return;
    CHECK_STR(c->api_url, "https://api.bigcommerce.com");
    CHECK_INT(c->concurrency, 6);
    CHECK_INT(c->timeout_s, 120);
    CHECK_INT(c->max_retries, 8);
    CHECK_INT(c->codec, O7_CODEC_GZIP);
    CHECK_INT(c->url_ttl, 900);
    CHECK_INT(c->s3_part_size, 8LL << 20);
    CHECK_STR(c->storage_url, "file:///srv/o7/var/backups");
    CHECK_STR(c->catalog_path, "/srv/o7/var/o7.db");
    CHECK_STR(c->key_file, "/srv/o7/var/o7.key");
    CHECK_STR(c->plugins_dir, "/srv/o7/plugins");
    o7_conf_free(c);
}

TEST(relative_paths_resolve_against_the_conf_folder)
{
    char sub[PATH_MAX + 8], want[PATH_MAX + 64];
    snprintf(sub, sizeof sub, "%s/etc", tmpdir);
    mkdir(sub, 0700);
    o7_conf *c = NULL;
    o7_err err;
    char path[PATH_MAX];
    o7_rc rc = load_text("etc/o7.conf",
                         "[bigcommerce]\napi_url = https://api.example.com//\n"
                         "[storage]\nurl = ../data/backups\n"
                         "[catalog]\npath = var/o7.db\n"
                         "[crypto]\nkey_file = /abs/o7.key\n",
                         &c, &err, path);
    CHECK_INT(rc, O7_OK);
    if (c == NULL) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    snprintf(want, sizeof want, "file://%s/etc/../data/backups", tmpdir);
    CHECK_STR(c->storage_url, want);
    snprintf(want, sizeof want, "%s/etc/var/o7.db", tmpdir);
    CHECK_STR(c->catalog_path, want);
    CHECK_STR(c->key_file, "/abs/o7.key");
    snprintf(want, sizeof want, "%s/etc/plugins", tmpdir);
    CHECK_STR(c->plugins_dir, want); /* a default, from the conf's folder too */
    CHECK_STR(c->api_url, "https://api.example.com");
    o7_conf_free(c);

    /* A conf named without a folder: relative to the working directory. */
    char cwd[PATH_MAX];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK_INT(chdir(sub), 0);
    rc = o7_conf_load("o7.conf", &c, &err);
    CHECK_INT(rc, O7_OK);
    if (rc == O7_OK) {
        snprintf(want, sizeof want, "%s/etc/var/o7.db", tmpdir);
        CHECK_STR(c->catalog_path, want);
        o7_conf_free(c);
    }
    CHECK_INT(chdir(cwd), 0);
}

TEST(comments)
{
    o7_conf *c = NULL;
    o7_err err;
    char path[PATH_MAX], want[PATH_MAX + 64];
    o7_rc rc = load_text("comments.conf",
                         "# a whole-line comment\n"
                         "; another\n"
                         "[bigcommerce] ; trailing\n"
                         "api_url = http://127.0.0.1:1\t# after a tab\n"
                         "concurrency = 3 ; three\n"
                         "[storage]\n"
                         "url = back#ups\n"
                         "codec = zstd # smaller\n"
                         "[plugins]\n"
                         "dir = my;plugins\n",
                         &c, &err, path);
    CHECK_INT(rc, O7_OK);
    if (c == NULL) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    CHECK_STR(c->api_url, "http://127.0.0.1:1");
    CHECK_INT(c->concurrency, 3);
    CHECK_INT(c->codec, O7_CODEC_ZSTD);
    snprintf(want, sizeof want, "file://%s/back#ups", tmpdir);
    CHECK_STR(c->storage_url, want);
    snprintf(want, sizeof want, "%s/my;plugins", tmpdir);
    CHECK_STR(c->plugins_dir, want);
    o7_conf_free(c);
}

TEST(environment_overrides_the_file)
{
    static const char s3[] = "[bigcommerce]\napi_url = http://127.0.0.1:1\n"
                             "[storage]\nurl = s3://bucket-a/o7\n"
                             "endpoint = https://s3.example.com\n"
                             "access_key = FILEKEY\nsecret_key = FILESECRET\n";
    o7_conf *c = NULL;
    o7_err err;
    char path[PATH_MAX];
    setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "ENVSECRET", 1);
    CHECK_INT(load_text("env.conf", s3, &c, &err, path), O7_OK);
    if (c) {
        CHECK_STR(c->s3_access_key, "ENVKEY");
        CHECK_STR(c->s3_secret_key, "ENVSECRET");
        CHECK_STR(c->storage_url, "s3://bucket-a/o7");
        o7_conf_free(c);
    }
    /* Empty variables do not count. */
    setenv("AWS_ACCESS_KEY_ID", "", 1);
    unsetenv("AWS_SECRET_ACCESS_KEY");
    CHECK_INT(load_text("env.conf", s3, &c, &err, path), O7_OK);
    if (c) {
        CHECK_STR(c->s3_access_key, "FILEKEY");
        CHECK_STR(c->s3_secret_key, "FILESECRET");
        o7_conf_free(c);
    }
    /* Keys only in the environment are enough. */
    setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "ENVSECRET", 1);
    CHECK_INT(load_text("env2.conf",
                        "[storage]\nurl = s3://bucket-a/o7\nendpoint = https://s3.example.com\n",
                        &c, &err, path),
              O7_OK);
    o7_conf_free(c);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
}

typedef struct bad_case {
    const char *text;
    int line;
    const char *word; /* must be in the sentence too */
} bad_case;

TEST(every_error_names_file_and_line)
{
    static const bad_case cases[] = {
        {"[bigcommerce]\n\n[nosuch]\n", 3, "nosuch"},
        {"[bigcommerce]\ncolour = red\n", 2, "colour"},
        {"[storage]\ncodec = gzip\n\ncodec = zstd\n", 4, "line 2"},
        {"[storage]\ncodec = lz4\n", 2, "lz4"},
        {"[bigcommerce]\ntimeout = 10s\n", 2, "timeout"},
        {"[bigcommerce]\nconcurrency = 99999999999999999999\n", 2, "concurrency"},
        {"[bigcommerce]\nmax_retries = 21\n", 2, "range"},
        {"[storage]\npart_size = 8X\n", 2, "part_size"},
        {"\n[bigcommerce]\napi_url = http://api.example.com\n", 3, "http://"},
        {"[bigcommerce]\napi_url = http://localhost.example.com\n", 2, "http://"},
        {"[bigcommerce]\napi_url = ftp://x\n", 2, "ftp://x"},
        {"[storage]\nurl = s3://bucket-b/x\n", 2, "endpoint"},
        {"[storage]\nurl = s3://bucket-b/x\nendpoint = https://e.example.com\n", 2, "secret"},
        {"[storage]\nendpoint = http://e.example.com\nurl = s3://bucket-b/x\n"
         "access_key = a\nsecret_key = b\n", 2, "endpoint"},
        {"[storage]\nurl = s3://B/x\n", 2, "bucket"},
        {"[storage]\nurl_ttl = 604801\n", 2, "604800"},
        {"[storage]\nurl_ttl = 0\n", 2, "url_ttl"},
        {"[storage]\naddressing = sideways\n", 2, "sideways"},
        {"[log]\nlevel = loud\n", 2, "loud"},
        {"api_url = https://x.example.com\n", 1, "section"},
        {"[bigcommerce\n", 1, "section"},
        {"[bigcommerce]\njust words\n", 2, "key = value"},
        {"[catalog]\npath =\n", 2, "empty"},
    };
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        o7_conf *c = NULL;
        o7_err err;
        char path[PATH_MAX], where[PATH_MAX + 32];
        o7_rc rc = load_text("bad.conf", cases[i].text, &c, &err, path);
        snprintf(where, sizeof where, "%s:%d:", path, cases[i].line);
        int ok = rc == O7_ERR_CONFIG && c == NULL && strstr(err.msg, where) != NULL &&
                 strstr(err.msg, cases[i].word) != NULL;
        if (!ok)
            fprintf(stderr, "  case %zu: rc %d, want %s ... %s, got: %s\n", i, (int)rc, where,
                    cases[i].word, err.msg);
        CHECK(ok);
        o7_conf_free(c);
    }
    /* A missing file is a configuration error naming the file. */
    o7_conf *c = NULL;
    o7_err err = {0};
    CHECK_INT(o7_conf_load("/nonexistent/o7.conf", &c, &err), O7_ERR_CONFIG);
    CHECK(strstr(err.msg, "/nonexistent/o7.conf") != NULL);
}

int main(void)
{
    char tmpl[] = "/tmp/o7-test-conf-XXXXXX";
    if (mkdtemp(tmpl) == NULL || realpath(tmpl, tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN(defaults);
    RUN(relative_paths_resolve_against_the_conf_folder);
    RUN(comments);
    RUN(environment_overrides_the_file);
    RUN(every_error_names_file_and_line);
    int rc = check_summary();
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return rc;
}
