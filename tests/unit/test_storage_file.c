/* test_storage_file.c - the file:// backend against a fresh folder: what a
 * reader sees before and after commit, modes, listing order, pruning, bad
 * keys and the collection of stale temporary files. */
#include "buf.h"
#include "check.h"
#include "storage.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/o7-test-storage-XXXXXX";
static int case_no;

/* ---- helpers ------------------------------------------------------------- */

typedef struct fixture {
    char root[256];
    char url[300];
    o7_conf conf;
    o7_storage *st;
} fixture;

/* A storage rooted at a folder that does not exist yet (the backend makes it). */
static int setup(fixture *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->root, sizeof f->root, "%s/case%d/root", tmpdir, ++case_no);
    snprintf(f->url, sizeof f->url, "file://%s", f->root);
    f->conf.storage_url = f->url;
    o7_err err = {0};
    if (o7_storage_open(&f->conf, &f->st, &err) != O7_OK) {
        fprintf(stderr, "  open: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static void teardown(fixture *f)
{
    o7_storage_close(f->st);
}

static o7_rc put(o7_storage *st, const char *key, const void *data, size_t len)
{
    o7_writer *w = NULL;
    o7_err err = {0};
    o7_rc rc = o7_storage_writer(st, key, &w, &err);
    if (rc == O7_OK)
        rc = o7_writer_write(w, data, len, &err);
    if (rc == O7_OK)
        rc = o7_writer_commit(w, &err);
    else
        o7_writer_abort(w);
    if (rc != O7_OK)
        fprintf(stderr, "  put %s: %s\n", key, err.msg);
    return rc;
}

typedef struct sink_state {
    o7_buf buf;
    size_t calls, biggest;
} sink_state;

static o7_rc collect(void *ud, const void *data, size_t len)
{
    sink_state *s = ud;
    s->calls++;
    if (len > s->biggest)
        s->biggest = len;
    return o7_buf_append(&s->buf, data, len);
}

static o7_rc get(o7_storage *st, const char *key, sink_state *s)
{
    memset(s, 0, sizeof *s);
    o7_err err = {0};
    return o7_storage_get(st, key, collect, s, &err);
}

static o7_rc keys_of(void *ud, const o7_object_info *info)
{
    o7_buf *b = ud;
    o7_buf_printf(b, "%s=%llu;", info->key, (unsigned long long)info->size);
    return O7_OK;
}

/* "key=size;key=size;..." for every object under prefix, as listed. */
static o7_rc list_str(o7_storage *st, const char *prefix, o7_buf *out)
{
    o7_err err = {0};
    o7_buf_reset(out);
    o7_buf_puts(out, "");
    o7_rc rc = o7_storage_list(st, prefix, keys_of, out, &err);
    if (rc != O7_OK)
        fprintf(stderr, "  list: %s\n", err.msg);
    return rc;
}

static int exists(const char *root, const char *rel)
{
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", root, rel);
    return lstat(path, &sb) == 0;
}

static mode_t mode_of(const char *root, const char *rel)
{
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s%s%s", root, rel[0] ? "/" : "", rel);
    return stat(path, &sb) == 0 ? sb.st_mode & 07777 : (mode_t)-1;
}

/* Number of entries (hidden ones too) in root/rel; -1 if it is missing. */
static int entries_in(const char *root, const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

static unsigned char *pattern(size_t n)
{
    unsigned char *p = malloc(n);
    for (size_t i = 0; p && i < n; i++)
        p[i] = (unsigned char)(i * 7 + i / 251);
    return p;
}

/* ---- tests --------------------------------------------------------------- */

TEST(open_and_describe)
{
    fixture f;
    if (setup(&f) != 0) {
        CHECK(0);
        return;
    }
    char want[300];
    snprintf(want, sizeof want, "file://%s", f.root);
    CHECK_STR(o7_storage_describe(f.st), want);
    teardown(&f);

    /* A trailing slash is the same root. */
    o7_conf conf;
    memset(&conf, 0, sizeof conf);
    char url[300];
    snprintf(url, sizeof url, "file://%s/", f.root);
    conf.storage_url = url;
    o7_storage *st = NULL;
    o7_err err = {0};
    CHECK_INT(o7_storage_open(&conf, &st, &err), O7_OK);
    CHECK_STR(o7_storage_describe(st), want);
    o7_storage_close(st);

    char rel[] = "file://relative/path";
    conf.storage_url = rel;
    CHECK_INT(o7_storage_open(&conf, &st, &err), O7_ERR_CONFIG);
    CHECK(strstr(err.msg, "absolute") != NULL);
}

TEST(write_commit_get)
{
    fixture f;
    if (setup(&f) != 0) {
        CHECK(0);
        return;
    }
    size_t n = 300000;
    unsigned char *data = pattern(n);
    const char *key = "store1/b1/products.ndjson.gz";
    o7_writer *w = NULL;
    o7_err err = {0};
    o7_object_info info;
    sink_state s;
    o7_buf listing = O7_BUF_INIT;

    CHECK_INT(o7_storage_writer(f.st, key, &w, &err), O7_OK);
    for (size_t off = 0, step = 1; off < n; off += step, step = step * 5 + 3) {
        if (step > n - off)
            step = n - off;
        CHECK_INT(o7_writer_write(w, data + off, step, &err), O7_OK);
    }

    /* Not there until commit: not by head, get, list, nor the file system. */
    CHECK_INT(o7_storage_head(f.st, key, &info, &err), O7_ERR_NOTFOUND);
    CHECK(strstr(err.msg, key) != NULL);
    o7_err_clear(&err);
    CHECK_INT(get(f.st, key, &s), O7_ERR_NOTFOUND);
    o7_buf_free(&s.buf);
    CHECK_INT(list_str(f.st, "", &listing), O7_OK);
    CHECK_STR(listing.data, "");
    CHECK(!exists(f.root, key));
    CHECK_INT(entries_in(f.root, "store1/b1"), 1); /* just the temporary file */

    CHECK_INT(o7_writer_commit(w, &err), O7_OK);
    CHECK(exists(f.root, key));
    CHECK_INT(entries_in(f.root, "store1/b1"), 1); /* the temporary became the object */

    CHECK_INT(get(f.st, key, &s), O7_OK);
    CHECK_MEM(s.buf.data, s.buf.len, data, n);
    CHECK(s.calls >= 5); /* streamed, not in one piece */
    CHECK(s.biggest <= 64 * 1024);
    o7_buf_free(&s.buf);

    CHECK_INT(o7_storage_head(f.st, key, &info, &err), O7_OK);
    CHECK_INT(info.size, n);
    CHECK(info.mtime > 1600000000);
    CHECK(info.etag[0] != '\0');
    CHECK_STR(info.key, key);

    /* Replacing the object changes its bytes and its etag. */
    char etag[96];
    memcpy(etag, info.etag, sizeof etag);
    CHECK_INT(put(f.st, key, "new", 3), O7_OK);
    CHECK_INT(get(f.st, key, &s), O7_OK);
    CHECK_MEM(s.buf.data, s.buf.len, "new", 3);
    o7_buf_free(&s.buf);
    CHECK_INT(o7_storage_head(f.st, key, &info, &err), O7_OK);
    CHECK(strcmp(info.etag, etag) != 0);

    /* An empty object is an object. */
    CHECK_INT(put(f.st, "store1/empty", "", 0), O7_OK);
    CHECK_INT(get(f.st, "store1/empty", &s), O7_OK);
    CHECK_INT(s.buf.len, 0);
    o7_buf_free(&s.buf);

    o7_buf_free(&listing);
    free(data);
    teardown(&f);
}

TEST(abort_leaves_nothing)
{
    fixture f;
    if (setup(&f) != 0) {
        CHECK(0);
        return;
    }
    o7_writer *w = NULL;
    o7_err err = {0};
    o7_object_info info;
    CHECK_INT(o7_storage_writer(f.st, "s/b/orders.ndjson.gz", &w, &err), O7_OK);
    CHECK_INT(o7_writer_write(w, "half an object", 14, &err), O7_OK);
    CHECK_INT(entries_in(f.root, "s/b"), 1);
    o7_writer_abort(w);
    CHECK_INT(entries_in(f.root, "s/b"), 0);
    CHECK_INT(o7_storage_head(f.st, "s/b/orders.ndjson.gz", &info, &err), O7_ERR_NOTFOUND);
    o7_writer_abort(NULL);

    /* An aborted replacement leaves the old object as it was. */
    sink_state s;
    CHECK_INT(put(f.st, "s/keep", "old", 3), O7_OK);
    CHECK_INT(o7_storage_writer(f.st, "s/keep", &w, &err), O7_OK);
    CHECK_INT(o7_writer_write(w, "newer", 5, &err), O7_OK);
    o7_writer_abort(w);
    CHECK_INT(get(f.st, "s/keep", &s), O7_OK);
    CHECK_MEM(s.buf.data, s.buf.len, "old", 3);
    o7_buf_free(&s.buf);
    teardown(&f);
}

static void check_modes(mode_t mask)
{
    fixture f;
    if (setup(&f) != 0) {
        CHECK(0);
        return;
    }
    mode_t old = umask(mask);
    o7_rc rc = put(f.st, "a/b/c.ndjson.gz", "data", 4);
    umask(old);
    CHECK_INT(rc, O7_OK);
    CHECK_INT(mode_of(f.root, ""), 0700);
    CHECK_INT(mode_of(f.root, "a"), 0700);
    CHECK_INT(mode_of(f.root, "a/b"), 0700);
    CHECK_INT(mode_of(f.root, "a/b/c.ndjson.gz"), 0600);
    teardown(&f);
}

TEST(modes_whatever_the_umask)
{
    check_modes(0);    /* would leave 0777/0666 without explicit modes */
    check_modes(0377); /* would leave folders the owner cannot enter */
}

TEST(list_prefix_order_and_temporaries)
{
    fixture f;
    if (setup(&f) != 0) {
        CHECK(0);
        return;
    }
    o7_buf got = O7_BUF_INIT;
    CHECK_INT(list_str(f.st, "", &got), O7_OK); /* the root does not exist yet */
    CHECK_STR(got.data, "");

    /* Written out of order; "b1-old" and "b1/..." test that folders sort as
     * "name/" ('-' sorts before '/'). */
    const char *keys[] = {"s1/b10/x",    "s1/b1/products", "top",   "s2/z",
                          "s1/b1-old/y", "s1/b1/orders",   "s1/b1!"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        CHECK_INT(put(f.st, keys[i], keys[i], strlen(keys[i])), O7_OK);

    /* A writer in progress and a stray temporary file stay unseen. */
    o7_writer *w = NULL;
    o7_err err = {0};
    CHECK_INT(o7_storage_writer(f.st, "s1/b1/pending", &w, &err), O7_OK);
    char stray[512];
    snprintf(stray, sizeof stray, "%s/s1/.crashed.tmp-0123456789abcdef", f.root);
    int fd = open(stray, O_WRONLY | O_CREAT, 0600);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);

    CHECK_INT(list_str(f.st, "", &got), O7_OK);
    CHECK_STR(got.data, "s1/b1!=6;s1/b1-old/y=11;s1/b1/orders=12;s1/b1/products=14;"
                        "s1/b10/x=8;s2/z=4;top=3;");
    CHECK_INT(list_str(f.st, "s1/b1", &got), O7_OK); /* a prefix ending mid-name */
    CHECK_STR(got.data, "s1/b1!=6;s1/b1-old/y=11;s1/b1/orders=12;s1/b1/products=14;"
                        "s1/b10/x=8;");
    CHECK_INT(list_str(f.st, "s1/b1/", &got), O7_OK);
    CHECK_STR(got.data, "s1/b1/orders=12;s1/b1/products=14;");
    CHECK_INT(list_str(f.st, "s1/b1/p", &got), O7_OK);
    CHECK_STR(got.data, "s1/b1/products=14;");
    CHECK_INT(list_str(f.st, "t", &got), O7_OK);
    CHECK_STR(got.data, "top=3;");
    CHECK_INT(list_str(f.st, "nothing", &got), O7_OK);
    CHECK_STR(got.data, "");

    CHECK_INT(o7_writer_commit(w, &err), O7_OK);
    CHECK_INT(list_str(f.st, "s1/b1/", &got), O7_OK);
    CHECK_STR(got.data, "s1/b1/orders=12;s1/b1/pending=0;s1/b1/products=14;");
    o7_buf_free(&got);
    teardown(&f);
}

static o7_rc stop_after_two(void *ud, const o7_object_info *info)
{
    int *seen = ud;
    return ++*seen >= 2 ? O7_ERR_INTERRUPTED : O7_OK;
}

TEST(list_stops_when_told)
{
    fixture f;
    if (setup(&f) != 0) {
        CHECK(0);
        return;
    }
    const char *keys[] = {"a", "b", "c/d", "e"};
    for (size_t i = 0; i < 4; i++)
        CHECK_INT(put(f.st, keys[i], "x", 1), O7_OK);
    int seen = 0;
    o7_err err = {0};
    CHECK_INT(o7_storage_list(f.st, "", stop_after_two, &seen, &err), O7_ERR_INTERRUPTED);
    CHECK_INT(seen, 2);
    teardown(&f);
}

TEST(delete_prunes_empty_folders)
{
    fixture f;
    if (setup(&f) != 0) {
        CHECK(0);
        return;
    }
    o7_err err = {0};
    CHECK_INT(put(f.st, "s/b1/products", "p", 1), O7_OK);
    CHECK_INT(put(f.st, "s/b1/orders", "o", 1), O7_OK);
    CHECK_INT(put(f.st, "s/b2/deep/er/x", "x", 1), O7_OK);

    CHECK_INT(o7_storage_delete(f.st, "s/b1/orders", &err), O7_OK);
    CHECK(!exists(f.root, "s/b1/orders"));
    CHECK(exists(f.root, "s/b1/products")); /* the folder still has an object */

    CHECK_INT(o7_storage_delete(f.st, "s/b2/deep/er/x", &err), O7_OK);
    CHECK(!exists(f.root, "s/b2"));
    CHECK(exists(f.root, "s"));

    CHECK_INT(o7_storage_delete(f.st, "s/b1/products", &err), O7_OK);
    CHECK(!exists(f.root, "s"));
    CHECK_INT(entries_in(f.root, ""), 0); /* the root itself stays */
    CHECK_INT(mode_of(f.root, ""), 0700);

    /* Deleting what is not there is fine. */
    CHECK_INT(o7_storage_delete(f.st, "s/b1/products", &err), O7_OK);
    CHECK_INT(o7_storage_delete(f.st, "never/was", &err), O7_OK);
    CHECK_INT(err.rc, O7_OK);
    teardown(&f);
}

TEST(bad_keys_refused)
{
    fixture f;
    if (setup(&f) != 0) {
        CHECK(0);
        return;
    }
    const char *bad[] = {"",    "/etc/passwd", "a/../b", "..", "../x",
                         "./a", "a/.",         "a//b",   "a/", "s/.products.tmp-00ff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o7_writer *w = NULL;
        o7_object_info info;
        sink_state s;
        char *url = NULL;
        o7_err err = {0};
        CHECK_INT(o7_storage_writer(f.st, bad[i], &w, &err), O7_ERR_STORAGE);
        CHECK(w == NULL);
        CHECK(err.msg[0] != '\0');
        CHECK_INT(get(f.st, bad[i], &s), O7_ERR_STORAGE);
        CHECK_INT(o7_storage_head(f.st, bad[i], &info, &err), O7_ERR_STORAGE);
        CHECK_INT(o7_storage_delete(f.st, bad[i], &err), O7_ERR_STORAGE);
        CHECK_INT(o7_storage_presign(f.st, bad[i], 60, &url, &err), O7_ERR_STORAGE);
        CHECK(url == NULL);
    }
    CHECK_INT(entries_in(f.root, ""), -1); /* nothing was made, not even the root */
    teardown(&f);
}

TEST(head_notfound)
{
    fixture f;
    if (setup(&f) != 0) {
        CHECK(0);
        return;
    }
    o7_object_info info;
    o7_err err = {0};
    CHECK_INT(o7_storage_head(f.st, "missing", &info, &err), O7_ERR_NOTFOUND);
    CHECK_INT(put(f.st, "folder/object", "x", 1), O7_OK);
    o7_err_clear(&err);
    CHECK_INT(o7_storage_head(f.st, "folder", &info, &err), O7_ERR_NOTFOUND);
    o7_err_clear(&err);
    CHECK_INT(o7_storage_head(f.st, "folder/object/below", &info, &err), O7_ERR_NOTFOUND);
    o7_err_clear(&err);
    CHECK_INT(o7_storage_head(f.st, "folder/object", &info, &err), O7_OK);
    CHECK_INT(info.size, 1);
    teardown(&f);
}

TEST(presign_is_an_escaped_file_url)
{
    fixture f;
    if (setup(&f) != 0) {
        CHECK(0);
        return;
    }
    char *url = NULL, want[512];
    o7_err err = {0};
    CHECK_INT(o7_storage_presign(f.st, "s 1/b#2/\xc3\xbc~x_y-z.gz", 900, &url, &err), O7_OK);
    snprintf(want, sizeof want, "file://%s/s%%201/b%%232/%%C3%%BC~x_y-z.gz", f.root);
    CHECK_STR(url, want);
    free(url);
    teardown(&f);
}

TEST(gc_removes_old_temporaries)
{
    fixture f;
    if (setup(&f) != 0) {
        CHECK(0);
        return;
    }
    o7_err err = {0};
    CHECK_INT(put(f.st, "s/b/old-object", "keep me", 7), O7_OK);
    o7_writer *w = NULL;
    CHECK_INT(o7_storage_writer(f.st, "s/b/live", &w, &err), O7_OK);
    CHECK_INT(o7_writer_write(w, "in progress", 11, &err), O7_OK);

    /* A crashed writer's temporary file, two hours old, in a folder of its
     * own; and an old object, which gc must not touch. */
    char dir[512], stale[600], object[600];
    snprintf(dir, sizeof dir, "%s/s/crashed", f.root);
    snprintf(stale, sizeof stale, "%s/.orders.ndjson.gz.tmp-0011223344556677", dir);
    snprintf(object, sizeof object, "%s/s/b/old-object", f.root);
    CHECK_INT(mkdir(dir, 0700), 0);
    int fd = open(stale, O_WRONLY | O_CREAT, 0600);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= 7200;
    tv[1] = tv[0];
    CHECK_INT(utimes(stale, tv), 0);
    CHECK_INT(utimes(object, tv), 0);

    CHECK_INT(o7_storage_gc(f.st, 3600, &err), O7_OK);
    CHECK(!exists(f.root, "s/crashed/.orders.ndjson.gz.tmp-0011223344556677"));
    CHECK(!exists(f.root, "s/crashed")); /* emptied by gc, so removed */
    CHECK(exists(f.root, "s/b/old-object"));
    CHECK_INT(entries_in(f.root, "s/b"), 2); /* the object and the live temporary */

    /* The live writer is untouched and still commits. */
    CHECK_INT(o7_writer_commit(w, &err), O7_OK);
    sink_state s;
    CHECK_INT(get(f.st, "s/b/live", &s), O7_OK);
    CHECK_MEM(s.buf.data, s.buf.len, "in progress", 11);
    o7_buf_free(&s.buf);
    teardown(&f);
}

int main(void)
{
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN(open_and_describe);
    RUN(write_commit_get);
    RUN(abort_leaves_nothing);
    RUN(modes_whatever_the_umask);
    RUN(list_prefix_order_and_temporaries);
    RUN(list_stops_when_told);
    RUN(delete_prunes_empty_folders);
    RUN(bad_keys_refused);
    RUN(head_notfound);
    RUN(presign_is_an_escaped_file_url);
    RUN(gc_removes_old_temporaries);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_summary();
}
