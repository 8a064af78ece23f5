/* test_catalog.c - the catalog against real SQLite files in a fresh folder:
 * modes, migrations, every table's functions, and concurrent writers. */
#include "catalog.h"
#include "check.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char root[256];

/* A path inside this run's folder. Static storage: use before the next call. */
static const char *at(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", root, name);
    return path;
}

static int mode_of(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return -1;
    return (int)(sb.st_mode & 07777);
}

static o7_catalog *open_ok(const char *path)
{
    o7_catalog *cat = NULL;
    o7_err err = {0};
    o7_rc rc = o7_catalog_open(path, &cat, &err);
    if (rc != O7_OK)
        fprintf(stderr, "  open %s: %s\n", path, err.msg);
    CHECK_INT(rc, O7_OK);
    return cat;
}

/* Runs one query that returns a single integer, on a connection of its own. */
static long long query_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "  query %s: %s\n", sql, db ? sqlite3_errmsg(db) : "no handle");
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static o7_backup_row backup(const char *id, const char *store, int64_t started)
{
    o7_backup_row row;
    memset(&row, 0, sizeof row);
    snprintf(row.id, sizeof row.id, "%s", id);
    snprintf(row.store_hash, sizeof row.store_hash, "%s", store);
    snprintf(row.status, sizeof row.status, "running");
    snprintf(row.kind, sizeof row.kind, "manual");
    snprintf(row.actor, sizeof row.actor, "cli:tester");
    row.started_at = started;
    return row;
}

static o7_backup_type_row type_row(const char *type, const char *status, int64_t records)
{
    o7_backup_type_row t;
    memset(&t, 0, sizeof t);
    snprintf(t.type, sizeof t.type, "%s", type);
    snprintf(t.object, sizeof t.object, "%s.ndjson.zst", type);
    snprintf(t.codec, sizeof t.codec, "zstd");
    snprintf(t.status, sizeof t.status, "%s", status);
    snprintf(t.sha256, sizeof t.sha256, "%064d", (int)records);
    snprintf(t.plugin_version, sizeof t.plugin_version, "1.2.%d", (int)records);
    t.records = records;
    t.bytes = records * 100;
    t.stored_bytes = records * 10;
    return t;
}

/* ---- open, modes, migrations --------------------------------------------- */

TEST(open_creates_private_files)
{
    char path[512];
    snprintf(path, sizeof path, "%s", at("new/deeper/o7.db"));
    o7_catalog *cat = open_ok(path);
    if (cat == NULL)
        return;
    CHECK_INT(o7_catalog_schema_version(cat), 1);
    CHECK_INT(mode_of(path), 0600);
    CHECK_INT(mode_of(at("new/deeper")), 0700);
    CHECK_INT(mode_of(at("new")), 0700);
    o7_catalog_close(cat);

    CHECK_INT(query_int(path, "PRAGMA user_version"), 1);
    CHECK_INT(query_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND"
                              " name IN ('stores', 'backups', 'backup_types', 'audit', 'idmap')"),
              5);
    CHECK_INT(query_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND"
                              " name IN ('backups_by_store', 'audit_by_store')"),
              2);
    /* The journal mode is stored in the file, so a fresh connection sees it. */
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_step(st), SQLITE_ROW);
    CHECK_STR((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

TEST(open_fixes_a_loose_mode)
{
    char path[512];
    snprintf(path, sizeof path, "%s", at("loose.db"));
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK_INT(fchmod(fd, 0644), 0);
        close(fd);
    }
    CHECK_INT(mode_of(path), 0644);
    o7_catalog *cat = open_ok(path);
    CHECK_INT(mode_of(path), 0600);
    o7_catalog_close(cat);
}

TEST(open_reports_a_bad_path)
{
    const char *file = at("plainfile");
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    o7_catalog *cat = (o7_catalog *)1;
    o7_err err = {0};
    CHECK_INT(o7_catalog_open(at("plainfile/o7.db"), &cat, &err), O7_ERR_IO);
    CHECK(cat == NULL);
    CHECK(strstr(err.msg, "plainfile/o7.db") != NULL);
    o7_err_clear(&err);
    CHECK_INT(o7_catalog_open("", &cat, &err), O7_ERR_USAGE);
}

TEST(reopen_keeps_data)
{
    char path[512];
    snprintf(path, sizeof path, "%s", at("reopen.db"));
    o7_err err = {0};
    o7_catalog *cat = open_ok(path);
    if (cat == NULL)
        return;
    CHECK_INT(o7_catalog_store_put(cat, "s1", (const unsigned char *)"tok", 3, "", &err), O7_OK);
    CHECK_INT(o7_catalog_audit(cat, "s1", "cli", "store.add", "", "ok", "", &err), O7_OK);
    o7_catalog_close(cat);

    for (int round = 0; round < 2; round++) {
        cat = open_ok(path);
        if (cat == NULL)
            return;
        CHECK_INT(o7_catalog_schema_version(cat), 1);
        o7_store_row row;
        CHECK_INT(o7_catalog_store_get(cat, "s1", &row, &err), O7_OK);
        CHECK_MEM(row.token_sealed, row.token_sealed_len, "tok", 3);
        o7_store_row_free(&row);
        o7_catalog_close(cat);
    }
    CHECK_INT(query_int(path, "SELECT count(*) FROM audit"), 1);
    CHECK_INT(query_int(path, "PRAGMA user_version"), 1);
}

TEST(newer_schema_is_refused)
{
    char path[512];
    snprintf(path, sizeof path, "%s", at("future.db"));
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    o7_catalog *cat = (o7_catalog *)1;
    o7_err err = {0};
    CHECK_INT(o7_catalog_open(path, &cat, &err), O7_ERR_CATALOG);
    CHECK(cat == NULL);
    CHECK(strstr(err.msg, "999") != NULL);
    CHECK(strstr(err.msg, "newer o7") != NULL);
    CHECK_INT(query_int(path, "PRAGMA user_version"), 999);
    CHECK_INT(query_int(path, "SELECT count(*) FROM sqlite_master"), 0);
}

/* ---- stores -------------------------------------------------------------- */

typedef struct seen {
    int n;
    char names[8][64];
    char states[8][16];
    size_t token_len[8];
} seen;

static o7_rc see_store(void *ud, const o7_store_row *row)
{
    seen *s = ud;
    if (s->n < 8) {
        snprintf(s->names[s->n], sizeof s->names[0], "%s", row->hash);
        snprintf(s->states[s->n], sizeof s->states[0], "%s", row->state);
        s->token_len[s->n] = row->token_sealed_len;
    }
    s->n++;
    return O7_OK;
}

TEST(stores)
{
    o7_catalog *cat = open_ok(at("stores.db"));
    if (cat == NULL)
        return;
    o7_err err = {0};
    const unsigned char t1[] = {1, 0, 2, 3}, t2[] = {9, 8, 7, 6, 5};
    CHECK_INT(o7_catalog_store_put(cat, "bbb", t1, sizeof t1, "products,orders", &err), O7_OK);
    CHECK_INT(o7_catalog_store_put(cat, "aaa", t1, sizeof t1, NULL, &err), O7_OK);

    o7_store_row row;
    CHECK_INT(o7_catalog_store_get(cat, "bbb", &row, &err), O7_OK);
    CHECK_STR(row.hash, "bbb");
    CHECK_STR(row.state, "active");
    CHECK_STR(row.scopes, "products,orders");
    CHECK_MEM(row.token_sealed, row.token_sealed_len, t1, sizeof t1);
    CHECK(row.created_at > 0 && row.updated_at >= row.created_at);
    int64_t created = row.created_at;
    o7_store_row_free(&row);
    CHECK(row.token_sealed == NULL);

    /* Rotation replaces the token and the scopes, keeps created_at. */
    CHECK_INT(o7_catalog_store_put(cat, "bbb", t2, sizeof t2, "products", &err), O7_OK);
    CHECK_INT(o7_catalog_store_get(cat, "bbb", &row, &err), O7_OK);
    CHECK_MEM(row.token_sealed, row.token_sealed_len, t2, sizeof t2);
    CHECK_STR(row.scopes, "products");
    CHECK_INT(row.created_at, created);
    o7_store_row_free(&row);

    seen s = {0};
    CHECK_INT(o7_catalog_store_list(cat, see_store, &s, &err), O7_OK);
    CHECK_INT(s.n, 2);
    CHECK_STR(s.names[0], "aaa");
    CHECK_STR(s.names[1], "bbb");

    CHECK_INT(o7_catalog_store_remove(cat, "bbb", &err), O7_OK);
    o7_err_clear(&err);
    CHECK_INT(o7_catalog_store_get(cat, "bbb", &row, &err), O7_ERR_NOTFOUND);
    CHECK(row.token_sealed == NULL);
    o7_err_clear(&err);
    CHECK_INT(o7_catalog_store_remove(cat, "nosuch", &err), O7_ERR_NOTFOUND);
    CHECK(strstr(err.msg, "nosuch") != NULL);
    o7_err_clear(&err);

    /* A removed store is still listed, with its state and no token. */
    memset(&s, 0, sizeof s);
    CHECK_INT(o7_catalog_store_list(cat, see_store, &s, &err), O7_OK);
    CHECK_INT(s.n, 2);
    CHECK_STR(s.states[1], "removed");
    CHECK_INT(s.token_len[1], 0);
    CHECK_INT(s.token_len[0], sizeof t1);

    CHECK_INT(o7_catalog_store_put(cat, "bbb", t1, sizeof t1, "", &err), O7_OK);
    CHECK_INT(o7_catalog_store_get(cat, "bbb", &row, &err), O7_OK);
    CHECK_STR(row.state, "active");
    CHECK_MEM(row.token_sealed, row.token_sealed_len, t1, sizeof t1);
    o7_store_row_free(&row);

    CHECK_INT(o7_catalog_store_put(cat, "", t1, sizeof t1, "", &err), O7_ERR_USAGE);
    o7_catalog_close(cat);
}

/* Reads a file whole into a malloc'd buffer; *len 0 when it is missing. */
static unsigned char *slurp(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    unsigned char *data = malloc(1 << 22);
    if (data)
        *len = fread(data, 1, 1 << 22, f);
    fclose(f);
    return data;
}

static int file_holds(const char *path, const char *needle)
{
    size_t len;
    unsigned char *data = slurp(path, &len);
    int found = data && memmem(data, len, needle, strlen(needle)) != NULL;
    free(data);
    return found;
}

TEST(removed_token_leaves_the_disk)
{
    const char *secret = "SEALED-TOKEN-BYTES-7f3a9c-do-not-keep";
    char db[512], wal[520];
    snprintf(db, sizeof db, "%s", at("gone.db"));
    snprintf(wal, sizeof wal, "%s-wal", db);
    o7_catalog *cat = open_ok(db);
    if (cat == NULL)
        return;
    o7_err err = {0};
    CHECK_INT(o7_catalog_store_put(cat, "s", (const unsigned char *)secret, strlen(secret), "",
                                   &err), O7_OK);
    CHECK_INT(o7_catalog_store_put(cat, "t", (const unsigned char *)"x", 1, "", &err), O7_OK);
    /* The token is on disk somewhere before removal: the check can fail. */
    CHECK(file_holds(db, secret) || file_holds(wal, secret));
    CHECK_INT(o7_catalog_store_remove(cat, "s", &err), O7_OK);
    CHECK(!file_holds(db, secret));
    CHECK(!file_holds(wal, secret));
    o7_catalog_close(cat);
    CHECK(!file_holds(db, secret));
}

/* ---- backups ------------------------------------------------------------- */

typedef struct ids {
    int n;
    char id[16][64];
    size_t ntypes[16];
} ids;

static o7_rc see_backup(void *ud, const o7_backup_row *row)
{
    ids *s = ud;
    if (s->n < 16) {
        snprintf(s->id[s->n], sizeof s->id[0], "%s", row->id);
        s->ntypes[s->n] = row->ntypes;
    }
    s->n++;
    return O7_OK;
}

TEST(backup_begin_finish_get_list)
{
    o7_catalog *cat = open_ok(at("backups.db"));
    if (cat == NULL)
        return;
    o7_err err = {0};
    o7_backup_row b1 = backup("b1", "S", 100), b2 = backup("b2", "S", 200);
    o7_backup_row b3 = backup("b3", "T", 150), b4 = backup("b4", "S", 200);
    CHECK_INT(o7_catalog_backup_begin(cat, &b1, &err), O7_OK);
    CHECK_INT(o7_catalog_backup_begin(cat, &b2, &err), O7_OK);
    CHECK_INT(o7_catalog_backup_begin(cat, &b3, &err), O7_OK);
    CHECK_INT(o7_catalog_backup_begin(cat, &b4, &err), O7_OK);
    CHECK_INT(o7_catalog_backup_begin(cat, &b1, &err), O7_ERR_CATALOG);
    CHECK(strstr(err.msg, "b1") != NULL && strstr(err.msg, "UNIQUE") != NULL);
    o7_err_clear(&err);

    o7_backup_type_row types[2] = {type_row("products", "complete", 7),
                                   type_row("customers", "complete", 5)};
    snprintf(b1.status, sizeof b1.status, "complete");
    snprintf(b1.manifest_sha256, sizeof b1.manifest_sha256, "%064d", 42);
    b1.finished_at = 160;
    b1.types = types;
    b1.ntypes = 2;
    CHECK_INT(o7_catalog_backup_finish(cat, &b1, &err), O7_OK);

    o7_backup_row got;
    CHECK_INT(o7_catalog_backup_get(cat, "b1", &got, &err), O7_OK);
    CHECK_STR(got.status, "complete");
    CHECK_STR(got.kind, "manual");
    CHECK_STR(got.actor, "cli:tester");
    CHECK_INT(got.started_at, 100);
    CHECK_INT(got.finished_at, 160);
    CHECK_STR(got.manifest_sha256, b1.manifest_sha256);
    CHECK_INT(got.records, 12);
    CHECK_INT(got.bytes, 1200);
    CHECK_INT(got.stored_bytes, 120);
    CHECK_INT(got.ntypes, 2);
    if (got.ntypes == 2) {
        CHECK_STR(got.types[0].type, "customers");
        CHECK_STR(got.types[1].type, "products");
        CHECK_STR(got.types[1].object, "products.ndjson.zst");
        CHECK_STR(got.types[1].codec, "zstd");
        CHECK_STR(got.types[1].plugin_version, "1.2.7");
        CHECK_INT(got.types[1].records, 7);
        CHECK_STR(got.types[0].sha256, types[1].sha256);
    }
    o7_backup_row_free(&got);
    CHECK(got.types == NULL);

    ids s = {0};
    CHECK_INT(o7_catalog_backup_list(cat, "S", see_backup, &s, &err), O7_OK);
    CHECK_INT(s.n, 3);
    CHECK_STR(s.id[0], "b4"); /* same start as b2: the larger id first */
    CHECK_STR(s.id[1], "b2");
    CHECK_STR(s.id[2], "b1");
    CHECK_INT(s.ntypes[2], 2);
    memset(&s, 0, sizeof s);
    CHECK_INT(o7_catalog_backup_list(cat, NULL, see_backup, &s, &err), O7_OK);
    CHECK_INT(s.n, 4);
    CHECK_STR(s.id[2], "b3");

    o7_backup_row ghost = backup("ghost", "S", 1);
    CHECK_INT(o7_catalog_backup_finish(cat, &ghost, &err), O7_ERR_NOTFOUND);
    o7_err_clear(&err);
    CHECK_INT(o7_catalog_backup_get(cat, "ghost", &got, &err), O7_ERR_NOTFOUND);
    o7_catalog_close(cat);
}

TEST(backup_fail_running)
{
    o7_catalog *cat = open_ok(at("failrun.db"));
    if (cat == NULL)
        return;
    o7_err err = {0};
    o7_backup_type_row types[2] = {type_row("orders", "running", 3),
                                   type_row("brands", "complete", 1)};
    o7_backup_row a = backup("a", "S", 10), b = backup("b", "S", 20), c = backup("c", "T", 30);
    a.types = types;
    a.ntypes = 2;
    CHECK_INT(o7_catalog_backup_begin(cat, &a, &err), O7_OK);
    CHECK_INT(o7_catalog_backup_begin(cat, &b, &err), O7_OK);
    CHECK_INT(o7_catalog_backup_begin(cat, &c, &err), O7_OK);
    snprintf(b.status, sizeof b.status, "complete");
    CHECK_INT(o7_catalog_backup_finish(cat, &b, &err), O7_OK);

    int count = -1;
    CHECK_INT(o7_catalog_backup_fail_running(cat, "S", "the process died", &count, &err), O7_OK);
    CHECK_INT(count, 1);
    o7_backup_row got;
    CHECK_INT(o7_catalog_backup_get(cat, "a", &got, &err), O7_OK);
    CHECK_STR(got.status, "failed");
    CHECK_STR(got.error, "the process died");
    CHECK(got.finished_at > 0);
    if (got.ntypes == 2) {
        CHECK_STR(got.types[0].status, "complete"); /* brands */
        CHECK_STR(got.types[1].status, "failed");   /* orders */
    }
    o7_backup_row_free(&got);
    CHECK_INT(o7_catalog_backup_get(cat, "b", &got, &err), O7_OK);
    CHECK_STR(got.status, "complete");
    o7_backup_row_free(&got);
    CHECK_INT(o7_catalog_backup_get(cat, "c", &got, &err), O7_OK);
    CHECK_STR(got.status, "running");
    o7_backup_row_free(&got);

    CHECK_INT(o7_catalog_backup_fail_running(cat, "S", "again", &count, &err), O7_OK);
    CHECK_INT(count, 0);
    CHECK_INT(o7_catalog_backup_fail_running(cat, NULL, "all", &count, &err), O7_OK);
    CHECK_INT(count, 1);
    o7_catalog_close(cat);
}

TEST(backup_delete_upsert_clear)
{
    char path[512];
    snprintf(path, sizeof path, "%s", at("upsert.db"));
    o7_catalog *cat = open_ok(path);
    if (cat == NULL)
        return;
    o7_err err = {0};
    o7_backup_type_row first[2] = {type_row("products", "complete", 2),
                                   type_row("orders", "complete", 3)};
    o7_backup_row r = backup("r1", "S", 50);
    snprintf(r.status, sizeof r.status, "complete");
    r.types = first;
    r.ntypes = 2;
    CHECK_INT(o7_catalog_backup_upsert(cat, &r, &err), O7_OK);
    o7_backup_row got;
    CHECK_INT(o7_catalog_backup_get(cat, "r1", &got, &err), O7_OK);
    CHECK_INT(got.ntypes, 2);
    CHECK_INT(got.records, 5);
    o7_backup_row_free(&got);

    o7_backup_type_row second[1] = {type_row("coupons", "failed", 4)};
    snprintf(r.status, sizeof r.status, "failed");
    snprintf(r.error, sizeof r.error, "coupons: HTTP 500");
    r.types = second;
    r.ntypes = 1;
    CHECK_INT(o7_catalog_backup_upsert(cat, &r, &err), O7_OK);
    CHECK_INT(o7_catalog_backup_get(cat, "r1", &got, &err), O7_OK);
    CHECK_STR(got.status, "failed");
    CHECK_STR(got.error, "coupons: HTTP 500");
    CHECK_INT(got.ntypes, 1);
    if (got.ntypes == 1)
        CHECK_STR(got.types[0].type, "coupons");
    CHECK_INT(got.records, 4);
    CHECK_INT(got.stored_bytes, 40);
    o7_backup_row_free(&got);

    /* Deleting cascades to the type rows. */
    CHECK_INT(query_int(path, "SELECT count(*) FROM backup_types WHERE backup_id = 'r1'"), 1);
    CHECK_INT(o7_catalog_backup_delete(cat, "r1", &err), O7_OK);
    CHECK_INT(query_int(path, "SELECT count(*) FROM backup_types WHERE backup_id = 'r1'"), 0);
    CHECK_INT(o7_catalog_backup_get(cat, "r1", &got, &err), O7_ERR_NOTFOUND);
    o7_err_clear(&err);
    CHECK_INT(o7_catalog_backup_delete(cat, "r1", &err), O7_ERR_NOTFOUND);
    o7_err_clear(&err);

    r.types = first;
    r.ntypes = 2;
    CHECK_INT(o7_catalog_backup_upsert(cat, &r, &err), O7_OK);
    CHECK_INT(o7_catalog_backup_clear(cat, &err), O7_OK);
    ids s = {0};
    CHECK_INT(o7_catalog_backup_list(cat, NULL, see_backup, &s, &err), O7_OK);
    CHECK_INT(s.n, 0);
    CHECK_INT(query_int(path, "SELECT count(*) FROM backup_types"), 0);
    o7_catalog_close(cat);
}

/* ---- audit and id maps --------------------------------------------------- */

typedef struct actions {
    int n;
    char list[256];
    int64_t last_id;
    int ordered;
} actions;

static o7_rc see_audit(void *ud, const o7_audit_row *row)
{
    actions *a = ud;
    size_t used = strlen(a->list);
    snprintf(a->list + used, sizeof a->list - used, "%s%s@%s", a->n ? " " : "", row->action,
             row->store_hash);
    if (row->id <= a->last_id)
        a->ordered = 0;
    a->last_id = row->id;
    a->n++;
    return O7_OK;
}

static void audit_expect(o7_catalog *cat, const char *store, int limit, const char *want)
{
    actions a = {.ordered = 1};
    o7_err err = {0};
    CHECK_INT(o7_catalog_audit_list(cat, store, limit, see_audit, &a, &err), O7_OK);
    CHECK_STR(a.list, want);
    CHECK(a.ordered);
}

TEST(audit)
{
    o7_catalog *cat = open_ok(at("audit.db"));
    if (cat == NULL)
        return;
    o7_err err = {0};
    const char *stores[] = {"S", "T", "S", NULL, "S"};
    for (int i = 0; i < 5; i++) {
        char action[16];
        snprintf(action, sizeof action, "a%d", i + 1);
        CHECK_INT(o7_catalog_audit(cat, stores[i], "cli", action, "products", "ok", "", &err),
                  O7_OK);
    }
    audit_expect(cat, NULL, 0, "a1@S a2@T a3@S a4@ a5@S");
    audit_expect(cat, NULL, 2, "a4@ a5@S");
    audit_expect(cat, "S", 0, "a1@S a3@S a5@S");
    audit_expect(cat, "S", 2, "a3@S a5@S");
    audit_expect(cat, "nobody", 0, "");
    actions a = {0};
    CHECK_INT(o7_catalog_audit_list(cat, NULL, -1, see_audit, &a, &err), O7_ERR_USAGE);
    o7_catalog_close(cat);
}

/* A callback that writes to the catalog while the list is delivered, then
 * stops the walk with an error of its own. */
static o7_rc audit_while_listing(void *ud, const o7_backup_row *row)
{
    o7_catalog *cat = ud;
    o7_err err = {0};
    o7_rc rc = o7_catalog_audit(cat, row->store_hash, "cb", "seen", "", "ok", row->id, &err);
    return rc == O7_OK ? O7_ERR_INTERRUPTED : rc;
}

TEST(callbacks_may_write_and_stop)
{
    o7_catalog *cat = open_ok(at("callback.db"));
    if (cat == NULL)
        return;
    o7_err err = {0};
    o7_backup_row x = backup("x", "S", 1), y = backup("y", "S", 2);
    CHECK_INT(o7_catalog_backup_begin(cat, &x, &err), O7_OK);
    CHECK_INT(o7_catalog_backup_begin(cat, &y, &err), O7_OK);
    CHECK_INT(o7_catalog_backup_list(cat, "S", audit_while_listing, cat, &err),
              O7_ERR_INTERRUPTED);
    audit_expect(cat, "S", 0, "seen@S"); /* one call only: the walk stopped */
    o7_catalog_close(cat);
}

TEST(idmap)
{
    o7_catalog *cat = open_ok(at("idmap.db"));
    if (cat == NULL)
        return;
    o7_err err = {0};
    char *dst = NULL;
    CHECK_INT(o7_catalog_idmap_put(cat, "S", "T", "products", "11", "911", &err), O7_OK);
    CHECK_INT(o7_catalog_idmap_put(cat, "S", "T", "orders", "11", "42", &err), O7_OK);
    CHECK_INT(o7_catalog_idmap_get(cat, "S", "T", "products", "11", &dst, &err), O7_OK);
    CHECK_STR(dst, "911");
    free(dst);
    CHECK_INT(o7_catalog_idmap_put(cat, "S", "T", "products", "11", "912", &err), O7_OK);
    CHECK_INT(o7_catalog_idmap_get(cat, "S", "T", "products", "11", &dst, &err), O7_OK);
    CHECK_STR(dst, "912");
    free(dst);
    CHECK_INT(o7_catalog_idmap_get(cat, "T", "S", "products", "11", &dst, &err), O7_ERR_NOTFOUND);
    CHECK(dst == NULL);
    o7_err_clear(&err);
    CHECK_INT(o7_catalog_idmap_get(cat, "S", "T", "products", "12", &dst, &err), O7_ERR_NOTFOUND);
    o7_catalog_close(cat);
}

/* ---- concurrency --------------------------------------------------------- */

enum { WRITERS = 4, WRITES = 200 };

/* One writer process: waits at the gate, opens the catalog (the first one in
 * also migrates it), then writes. Exit 0 = all fine, 2 = a "locked" error,
 * 1 = another error. */
static int writer(const char *path, int me, int gate)
{
    alarm(120); /* a hung writer stops by itself */
    char c;
    if (read(gate, &c, 1) < 0)
        return 1;
    close(gate);
    o7_catalog *cat = NULL;
    o7_err err = {0};
    int failed = 0, locked = 0;
    if (o7_catalog_open(path, &cat, &err) != O7_OK) {
        fprintf(stderr, "  writer %d: %s\n", me, err.msg);
        return strstr(err.msg, "locked") ? 2 : 1;
    }
    for (int i = 0; i < WRITES; i++) {
        o7_rc rc;
        o7_err_clear(&err);
        if (i % 2 == 0) {
            rc = o7_catalog_audit(cat, "S", "writer", "backup.start", "", "ok", "", &err);
        } else {
            char id[32];
            snprintf(id, sizeof id, "w%d-%03d", me, i);
            o7_backup_type_row types[2] = {type_row("orders", "complete", i),
                                           type_row("products", "complete", 1)};
            o7_backup_row row = backup(id, "S", 1000 + i);
            row.types = types;
            row.ntypes = 2;
            rc = o7_catalog_backup_upsert(cat, &row, &err);
        }
        if (rc != O7_OK) {
            failed++;
            locked += strstr(err.msg, "locked") != NULL;
            fprintf(stderr, "  writer %d: %s\n", me, err.msg);
        }
    }
    o7_catalog_close(cat);
    return locked ? 2 : failed ? 1 : 0;
}

static o7_rc count_backup(void *ud, const o7_backup_row *row)
{
    int *n = ud;
    n[0]++;
    n[1] += (int)row->ntypes;
    return O7_OK;
}

static o7_rc count_audit(void *ud, const o7_audit_row *row)
{
    (*(int *)ud)++;
    return O7_OK;
}

TEST(concurrent_writers)
{
    char path[512];
    snprintf(path, sizeof path, "%s", at("busy/o7.db"));
    int gate[2];
    CHECK_INT(pipe(gate), 0);
    pid_t pids[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        fflush(NULL);
        pids[i] = fork();
        CHECK(pids[i] >= 0);
        if (pids[i] == 0) {
            close(gate[1]);
            _exit(writer(path, i, gate[0]));
        }
    }
    /* Closing the gate's write end releases every writer at once. */
    close(gate[0]);
    close(gate[1]);
    for (int i = 0; i < WRITERS; i++) {
        int status = -1;
        if (pids[i] <= 0 || waitpid(pids[i], &status, 0) != pids[i])
            continue;
        CHECK(WIFEXITED(status));
        CHECK_INT(WEXITSTATUS(status), 0);
    }

    o7_catalog *cat = open_ok(path);
    if (cat == NULL)
        return;
    o7_err err = {0};
    int backups[2] = {0, 0}, audits = 0;
    CHECK_INT(o7_catalog_backup_list(cat, "S", count_backup, backups, &err), O7_OK);
    CHECK_INT(o7_catalog_audit_list(cat, NULL, 0, count_audit, &audits, &err), O7_OK);
    CHECK_INT(backups[0], WRITERS * WRITES / 2);
    CHECK_INT(backups[1], WRITERS * WRITES);
    CHECK_INT(audits, WRITERS * WRITES / 2);
    CHECK_INT(o7_catalog_schema_version(cat), 1);
    o7_catalog_close(cat);
}

/* ---- main ---------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

int main(void)
{
    o7_log_min = O7_LOG_WARN;
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/o7-catalog-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN(open_creates_private_files);
    RUN(open_fixes_a_loose_mode);
    RUN(open_reports_a_bad_path);
    RUN(reopen_keeps_data);
    RUN(newer_schema_is_refused);
    RUN(stores);
    RUN(removed_token_leaves_the_disk);
    RUN(backup_begin_finish_get_list);
    RUN(backup_fail_running);
    RUN(backup_delete_upsert_clear);
    RUN(audit);
    RUN(callbacks_may_write_and_stop);
    RUN(idmap);
    RUN(concurrent_writers);
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return check_summary();
}
