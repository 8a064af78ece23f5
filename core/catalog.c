/* catalog.c - o7's own records in SQLite: the schema and its migrations, then
 * stores, backups, audit entries and id maps, in that order.
 *
 * Every write runs inside BEGIN IMMEDIATE so it holds the write lock before
 * its first read; concurrent o7 processes then queue on the busy timeout
 * instead of failing. List functions read all rows first and call back
 * afterwards, so a callback may use the catalog again, writes included. */
#include "catalog.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct o7_catalog {
    sqlite3 *db;
    char *path;  /* as given to o7_catalog_open, for error sentences */
    int version; /* user_version after migration */
};

/* How long a write waits for another process's transaction to finish. */
enum { BUSY_TIMEOUT_MS = 30000 };

/* ---- schema ------------------------------------------------------------- */

/* Append a new numbered entry to change the schema; never edit an old one,
 * because catalogs in the field have already run it. Each entry ends by
 * setting user_version to its own number, and runs in its own transaction. */
static const struct migration {
    int version;
    const char *sql;
} migrations[] = {
    {1, "CREATE TABLE stores ("
        "  hash TEXT PRIMARY KEY,"
        "  token_sealed BLOB,"
        "  state TEXT NOT NULL DEFAULT 'active',"
        "  scopes TEXT NOT NULL DEFAULT '',"
        "  created_at INTEGER NOT NULL,"
        "  updated_at INTEGER NOT NULL);"
        "CREATE TABLE backups ("
        "  id TEXT PRIMARY KEY,"
        "  store_hash TEXT NOT NULL,"
        "  status TEXT NOT NULL,"
        "  kind TEXT NOT NULL DEFAULT '',"
        "  started_at INTEGER NOT NULL,"
        "  finished_at INTEGER NOT NULL DEFAULT 0,"
        "  error TEXT NOT NULL DEFAULT '',"
        "  records INTEGER NOT NULL DEFAULT 0,"
        "  bytes INTEGER NOT NULL DEFAULT 0,"
        "  stored_bytes INTEGER NOT NULL DEFAULT 0,"
        "  manifest_sha256 TEXT NOT NULL DEFAULT '',"
        "  actor TEXT NOT NULL DEFAULT '');"
        "CREATE INDEX backups_by_store ON backups (store_hash, started_at);"
        "CREATE TABLE backup_types ("
        "  backup_id TEXT NOT NULL REFERENCES backups (id) ON DELETE CASCADE,"
        "  type TEXT NOT NULL,"
        "  object TEXT NOT NULL DEFAULT '',"
        "  codec TEXT NOT NULL DEFAULT '',"
        "  status TEXT NOT NULL,"
        "  records INTEGER NOT NULL DEFAULT 0,"
        "  bytes INTEGER NOT NULL DEFAULT 0,"
        "  stored_bytes INTEGER NOT NULL DEFAULT 0,"
        "  sha256 TEXT NOT NULL DEFAULT '',"
        "  plugin_version TEXT NOT NULL DEFAULT '',"
        "  PRIMARY KEY (backup_id, type));"
        "CREATE TABLE audit ("
        "  id INTEGER PRIMARY KEY,"
        "  at INTEGER NOT NULL,"
        "  store_hash TEXT,"
        "  actor TEXT NOT NULL DEFAULT '',"
        "  action TEXT NOT NULL,"
        "  types TEXT NOT NULL DEFAULT '',"
        "  status TEXT NOT NULL DEFAULT '',"
        "  detail TEXT NOT NULL DEFAULT '');"
        "CREATE INDEX audit_by_store ON audit (store_hash, at);"
        "CREATE TABLE idmap ("
        "  src_store TEXT NOT NULL,"
        "  dst_store TEXT NOT NULL,"
        "  type TEXT NOT NULL,"
        "  src_id TEXT NOT NULL,"
        "  dst_id TEXT NOT NULL,"
        "  PRIMARY KEY (src_store, dst_store, type, src_id));"
        "PRAGMA user_version = 1;"},
};

#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

/* ---- errors, statements, transactions ----------------------------------- */

static o7_rc rc_of(int code)
{
    switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return O7_ERR_BUSY;
    case SQLITE_NOMEM: return O7_ERR_NOMEM;
    default: return O7_ERR_CATALOG;
    }
}

/* Fills err from the connection's last error. Call it before anything else
 * touches the connection (a rollback would replace the message). */
static o7_rc db_fail(o7_catalog *cat, const char *what, o7_err *err)
{
    return o7_fail(err, rc_of(sqlite3_extended_errcode(cat->db)), "catalog %s: cannot %s: %s",
                   cat->path, what, sqlite3_errmsg(cat->db));
}

static o7_rc nomem(o7_catalog *cat, const char *what, o7_err *err)
{
    return o7_fail(err, O7_ERR_NOMEM, "catalog %s: cannot %s: out of memory", cat->path, what);
}

static o7_rc prepare(o7_catalog *cat, const char *sql, sqlite3_stmt **st, const char *what,
                     o7_err *err)
{
    if (sqlite3_prepare_v2(cat->db, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return db_fail(cat, what, err);
    }
    return O7_OK;
}

/* Steps a statement to its end (it returns no rows we want), then finalizes
 * it. `bound` is the OR of the bind calls' results: non-zero if one failed. */
static o7_rc run(o7_catalog *cat, sqlite3_stmt *st, int bound, const char *what, o7_err *err)
{
    o7_rc rc = O7_OK;
    if (bound != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(cat, what, err);
    sqlite3_finalize(st);
    return rc;
}

/* Binds s, or NULL when s is NULL. Text is copied by SQLite only when
 * needed: every caller steps before s goes away. */
static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s == NULL)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* Copies a text column into a fixed field; NULL becomes "". */
static void col_copy(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    size_t n = s ? (size_t)sqlite3_column_bytes(st, i) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, s, n);
    dst[n] = '\0';
}

static o7_rc tx_begin(o7_catalog *cat, const char *what, o7_err *err)
{
    if (sqlite3_exec(cat->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(cat, what, err);
    return O7_OK;
}

/* Commits when rc is O7_OK, otherwise rolls back; returns the final result. */
static o7_rc tx_end(o7_catalog *cat, o7_rc rc, const char *what, o7_err *err)
{
    if (rc == O7_OK && sqlite3_exec(cat->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(cat, what, err);
    /* SQLite may already have rolled back by itself after some errors. */
    if (rc != O7_OK && !sqlite3_get_autocommit(cat->db))
        sqlite3_exec(cat->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Returns arr grown to hold at least n + 1 elements, or NULL (arr is then
 * unchanged and still owned by the caller). */
static void *grow(void *arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return arr;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(arr, ncap * elem);
    if (p != NULL)
        *cap = ncap;
    return p;
}

/* True when a fixed field holds a terminated string, so it can be bound. */
static int terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

#define FITS(field) terminated((field), sizeof(field))

/* ---- open and migrate --------------------------------------------------- */

/* Creates every missing folder above path, 0700; existing ones are left as
 * they are (they may be shared, like a home folder). */
static o7_rc make_parents(const char *path, o7_err *err)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return o7_fail(err, O7_ERR_NOMEM, "catalog %s: out of memory", path);
    o7_rc rc = O7_OK;
    for (char *p = strchr(copy + 1, '/'); p != NULL && rc == O7_OK; p = strchr(p + 1, '/')) {
        *p = '\0';
        if (mkdir(copy, 0700) != 0 && errno != EEXIST)
            rc = o7_fail(err, O7_ERR_IO, "catalog %s: cannot create folder %s: %s", path, copy,
                         strerror(errno));
        *p = '/';
    }
    free(copy);
    return rc;
}

/* Creates the file ourselves so it is never readable by others, not even
 * between SQLite's create and our chmod. */
static o7_rc create_private(const char *path, o7_err *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return o7_fail(err, O7_ERR_IO, "catalog %s: cannot create or open the file: %s", path,
                       strerror(errno));
    close(fd);
    return O7_OK;
}

/* Sets mode 0600 on path when it has another; a missing file is fine (the
 * -wal and -shm files come and go). */
static o7_rc make_private(const char *path, const char *shown, o7_err *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return errno == ENOENT ? O7_OK
                               : o7_fail(err, O7_ERR_IO, "catalog %s: cannot check the mode: %s",
                                         shown, strerror(errno));
    if ((sb.st_mode & 07777) == 0600)
        return O7_OK;
    if (chmod(path, 0600) != 0)
        return o7_fail(err, O7_ERR_IO,
                       "catalog %s: the file is readable by others and cannot be made private "
                       "(0600): %s",
                       shown, strerror(errno));
    o7_warn("catalog", "%s had mode %04o; set it to 0600", path, (unsigned)(sb.st_mode & 07777));
    return O7_OK;
}

static o7_rc make_all_private(o7_catalog *cat, o7_err *err)
{
    static const char *suffixes[] = {"", "-wal", "-shm"};
    char file[4096];
    o7_rc rc = O7_OK;
    for (size_t i = 0; i < 3 && rc == O7_OK; i++) {
        int n = snprintf(file, sizeof file, "%s%s", cat->path, suffixes[i]);
        if (n < 0 || (size_t)n >= sizeof file)
            return o7_fail(err, O7_ERR_IO, "catalog %s: the path is too long", cat->path);
        rc = make_private(file, cat->path, err);
    }
    return rc;
}

static o7_rc connect_db(o7_catalog *cat, o7_err *err)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(cat->path, &cat->db, flags, NULL) != SQLITE_OK) {
        if (cat->db == NULL)
            return nomem(cat, "open the database", err);
        return db_fail(cat, "open the database", err);
    }
    sqlite3_extended_result_codes(cat->db, 1);
    sqlite3_busy_timeout(cat->db, BUSY_TIMEOUT_MS);
    return O7_OK;
}

/* Switches the file to WAL and returns SQLite's answer (SQLITE_ROW when it
 * replied). Switching needs an exclusive lock, and SQLite returns BUSY at
 * once, without its busy handler, while another process holds any lock on a
 * file not yet in WAL mode: so this retries, for at most the busy timeout. */
static int switch_to_wal(o7_catalog *cat, sqlite3_stmt *st)
{
    struct timespec pause = {0, 0};
    long waited_ms = 0;
    int code;
    while ((code = sqlite3_step(st)) != SQLITE_ROW && (code & 0xff) == SQLITE_BUSY &&
           waited_ms < BUSY_TIMEOUT_MS) {
        sqlite3_reset(st);
        long ms = 5 + (long)(waited_ms / 20); /* grows with the wait, stays small */
        pause.tv_nsec = (ms > 100 ? 100 : ms) * 1000000L;
        nanosleep(&pause, NULL);
        waited_ms += pause.tv_nsec / 1000000L;
    }
    return code;
}

/* WAL lets readers run beside the one writer. secure_delete overwrites
 * freed bytes, so a removed token does not linger in free pages. */
static o7_rc configure(o7_catalog *cat, o7_err *err)
{
    sqlite3_stmt *st;
    o7_rc rc = prepare(cat, "PRAGMA journal_mode=WAL", &st, "switch to WAL mode", err);
    if (rc != O7_OK)
        return rc;
    if (switch_to_wal(cat, st) != SQLITE_ROW) {
        rc = db_fail(cat, "switch to WAL mode", err);
    } else {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        if (mode == NULL || strcmp(mode, "wal") != 0)
            o7_warn("catalog", "%s: the file system refused WAL mode (journal is %s); "
                    "concurrent jobs will wait longer", cat->path, mode ? mode : "unknown");
    }
    sqlite3_finalize(st);
    if (rc == O7_OK && sqlite3_exec(cat->db,
                                    "PRAGMA foreign_keys=ON;"
                                    "PRAGMA synchronous=NORMAL;"
                                    "PRAGMA secure_delete=ON;",
                                    NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(cat, "set up the connection", err);
    return rc;
}

static o7_rc read_version(o7_catalog *cat, int *version, o7_err *err)
{
    sqlite3_stmt *st;
    o7_rc rc = prepare(cat, "PRAGMA user_version", &st, "read the schema version", err);
    if (rc != O7_OK)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    else
        rc = db_fail(cat, "read the schema version", err);
    sqlite3_finalize(st);
    return rc;
}

static o7_rc refuse_newer(o7_catalog *cat, int version, o7_err *err)
{
    return o7_fail(err, O7_ERR_CATALOG,
                   "catalog %s: its schema version is %d but this o7 knows versions up to %d; "
                   "it was written by a newer o7, so use that one (o7 never downgrades a "
                   "catalog)",
                   cat->path, version, NMIGRATIONS);
}

/* Applies one migration unless another process did it while we waited for
 * the write lock: the version is read again inside the transaction. */
static o7_rc apply(o7_catalog *cat, const struct migration *m, o7_err *err)
{
    char what[64];
    snprintf(what, sizeof what, "apply schema migration %d", m->version);
    int version = 0;
    o7_rc rc = tx_begin(cat, what, err);
    if (rc == O7_OK)
        rc = read_version(cat, &version, err);
    if (rc == O7_OK && version < m->version) {
        if (sqlite3_exec(cat->db, m->sql, NULL, NULL, NULL) != SQLITE_OK)
            rc = db_fail(cat, what, err);
        if (rc == O7_OK)
            rc = read_version(cat, &version, err);
        if (rc == O7_OK && !O7_CHECK(version == m->version))
            rc = o7_fail(err, O7_ERR_INTERNAL,
                         "catalog %s: migration %d left schema version %d behind", cat->path,
                         m->version, version);
        if (rc == O7_OK)
            o7_info("catalog", "%s: applied schema migration %d", cat->path, m->version);
    }
    return tx_end(cat, rc, what, err);
}

static o7_rc migrate(o7_catalog *cat, o7_err *err)
{
    int version = 0;
    o7_rc rc = read_version(cat, &version, err);
    if (rc == O7_OK && version > NMIGRATIONS)
        return refuse_newer(cat, version, err);
    for (int i = version; i < NMIGRATIONS && rc == O7_OK; i++) {
        O7_ASSERT(migrations[i].version == i + 1);
        rc = apply(cat, &migrations[i], err);
    }
    if (rc == O7_OK)
        rc = read_version(cat, &cat->version, err);
    if (rc == O7_OK && cat->version != NMIGRATIONS)
        rc = refuse_newer(cat, cat->version, err);
    return rc;
}

o7_rc o7_catalog_open(const char *path, o7_catalog **out, o7_err *err)
{
    *out = NULL;
    if (path == NULL || path[0] == '\0')
        return o7_fail(err, O7_ERR_USAGE, "catalog: no file path given");
    o7_catalog *cat = calloc(1, sizeof *cat);
    if (cat == NULL || (cat->path = strdup(path)) == NULL) {
        free(cat);
        return o7_fail(err, O7_ERR_NOMEM, "catalog %s: out of memory", path);
    }
    o7_rc rc = make_parents(path, err);
    if (rc == O7_OK)
        rc = create_private(path, err);
    if (rc == O7_OK)
        rc = connect_db(cat, err);
    if (rc == O7_OK)
        rc = make_private(path, path, err);
    if (rc == O7_OK)
        rc = configure(cat, err);
    if (rc == O7_OK)
        rc = migrate(cat, err);
    if (rc == O7_OK)
        rc = make_all_private(cat, err);
    if (rc != O7_OK) {
        o7_catalog_close(cat);
        return rc;
    }
    *out = cat;
    return O7_OK;
}

void o7_catalog_close(o7_catalog *cat)
{
    if (cat == NULL)
        return;
    sqlite3_close_v2(cat->db);
    free(cat->path);
    free(cat);
}

int o7_catalog_schema_version(o7_catalog *cat)
{
    return cat->version;
}

/* ---- stores ------------------------------------------------------------- */

#define STORE_COLS "hash, token_sealed, state, scopes, created_at, updated_at"

void o7_store_row_free(o7_store_row *row)
{
    if (row == NULL)
        return;
    free(row->token_sealed);
    row->token_sealed = NULL;
    row->token_sealed_len = 0;
}

/* Fills row from the current result of a STORE_COLS query; the token is
 * copied into memory the row owns. Returns 0 when out of memory. */
static int read_store(sqlite3_stmt *st, o7_store_row *row)
{
    memset(row, 0, sizeof *row);
    col_copy(st, 0, row->hash, sizeof row->hash);
    const void *blob = sqlite3_column_blob(st, 1);
    size_t len = (size_t)sqlite3_column_bytes(st, 1);
    if (blob != NULL && len > 0) {
        row->token_sealed = malloc(len);
        if (row->token_sealed == NULL)
            return 0;
        memcpy(row->token_sealed, blob, len);
        row->token_sealed_len = len;
    }
    col_copy(st, 2, row->state, sizeof row->state);
    col_copy(st, 3, row->scopes, sizeof row->scopes);
    row->created_at = sqlite3_column_int64(st, 4);
    row->updated_at = sqlite3_column_int64(st, 5);
    return 1;
}

o7_rc o7_catalog_store_put(o7_catalog *cat, const char *hash, const unsigned char *sealed,
                           size_t len, const char *scopes, o7_err *err)
{
    o7_store_row probe;
    if (hash == NULL || hash[0] == '\0' || strlen(hash) >= sizeof probe.hash)
        return o7_fail(err, O7_ERR_USAGE, "catalog %s: a store hash must be 1 to %zu characters",
                       cat->path, sizeof probe.hash - 1);
    if (strlen(or_empty(scopes)) >= sizeof probe.scopes)
        return o7_fail(err, O7_ERR_USAGE, "catalog %s: the scope list of store %s is too long",
                       cat->path, hash);
    char what[128];
    snprintf(what, sizeof what, "save the token of store %s", hash);
    if (sealed == NULL || len == 0)
        return o7_fail(err, O7_ERR_USAGE, "catalog %s: cannot %s: the sealed token is empty",
                       cat->path, what);

    /* A rotation or a re-add keeps created_at and replaces everything else. */
    static const char sql[] =
        "INSERT INTO stores (" STORE_COLS ") VALUES (?1, ?2, 'active', ?3, ?4, ?4)"
        " ON CONFLICT (hash) DO UPDATE SET token_sealed = excluded.token_sealed,"
        " state = 'active', scopes = excluded.scopes, updated_at = excluded.updated_at";
    sqlite3_stmt *st;
    o7_rc rc = tx_begin(cat, what, err);
    if (rc == O7_OK)
        rc = prepare(cat, sql, &st, what, err);
    if (rc == O7_OK) {
        int b = bind_text(st, 1, hash) | sqlite3_bind_blob64(st, 2, sealed, len, SQLITE_STATIC) |
                bind_text(st, 3, or_empty(scopes)) | sqlite3_bind_int64(st, 4, time(NULL));
        rc = run(cat, st, b, what, err);
    }
    return tx_end(cat, rc, what, err);
}

o7_rc o7_catalog_store_get(o7_catalog *cat, const char *hash, o7_store_row *out, o7_err *err)
{
    memset(out, 0, sizeof *out);
    char what[128];
    snprintf(what, sizeof what, "read store %s", or_empty(hash));
    sqlite3_stmt *st;
    o7_rc rc = prepare(cat, "SELECT " STORE_COLS " FROM stores WHERE hash = ?1"
                            " AND state = 'active'", &st, what, err);
    if (rc != O7_OK)
        return rc;
    int code = bind_text(st, 1, or_empty(hash));
    if (code == SQLITE_OK)
        code = sqlite3_step(st);
    if (code == SQLITE_ROW)
        rc = read_store(st, out) ? O7_OK : nomem(cat, what, err);
    else if (code == SQLITE_DONE)
        rc = o7_fail(err, O7_ERR_NOTFOUND, "catalog %s: no active store %s", cat->path,
                     or_empty(hash));
    else
        rc = db_fail(cat, what, err);
    sqlite3_finalize(st);
    return rc;
}

o7_rc o7_catalog_store_list(o7_catalog *cat, o7_store_fn fn, void *ud, o7_err *err)
{
    const char *what = "list stores";
    o7_store_row *rows = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *st;
    o7_rc rc = prepare(cat, "SELECT " STORE_COLS " FROM stores ORDER BY hash", &st, what, err);
    if (rc != O7_OK)
        return rc;
    int code = SQLITE_DONE;
    while (rc == O7_OK && (code = sqlite3_step(st)) == SQLITE_ROW) {
        o7_store_row *more = grow(rows, &cap, n, sizeof *rows);
        if (more != NULL)
            rows = more;
        if (more == NULL || !read_store(st, &rows[n]))
            rc = nomem(cat, what, err);
        else
            n++;
    }
    if (rc == O7_OK && code != SQLITE_DONE)
        rc = db_fail(cat, what, err);
    sqlite3_finalize(st);

    for (size_t i = 0; i < n && rc == O7_OK; i++)
        rc = fn(ud, &rows[i]);
    for (size_t i = 0; i < n; i++)
        o7_store_row_free(&rows[i]);
    free(rows);
    return rc;
}

/* Copies the log into the database and empties the log, so the page images
 * that held a removed token leave the disk now rather than at some later
 * checkpoint. It waits for readers at most the busy timeout. */
static void flush_wal(o7_catalog *cat)
{
    int logged = 0, moved = 0;
    int code = sqlite3_wal_checkpoint_v2(cat->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &logged,
                                         &moved);
    if (code != SQLITE_OK)
        o7_warn("catalog", "%s: the write-ahead log still holds old pages until the next "
                "checkpoint: %s", cat->path, sqlite3_errmsg(cat->db));
}

o7_rc o7_catalog_store_remove(o7_catalog *cat, const char *hash, o7_err *err)
{
    char what[128];
    snprintf(what, sizeof what, "remove store %s", or_empty(hash));
    sqlite3_stmt *st;
    o7_rc rc = tx_begin(cat, what, err);
    if (rc == O7_OK)
        rc = prepare(cat, "UPDATE stores SET token_sealed = NULL, state = 'removed',"
                          " updated_at = ?2 WHERE hash = ?1", &st, what, err);
    if (rc == O7_OK) {
        int b = bind_text(st, 1, or_empty(hash)) | sqlite3_bind_int64(st, 2, time(NULL));
        rc = run(cat, st, b, what, err);
    }
    if (rc == O7_OK && sqlite3_changes(cat->db) == 0)
        rc = o7_fail(err, O7_ERR_NOTFOUND, "catalog %s: no store %s", cat->path, or_empty(hash));
    rc = tx_end(cat, rc, what, err);
    if (rc == O7_OK)
        flush_wal(cat);
    return rc;
}

/* ---- backups ------------------------------------------------------------ */

#define BACKUP_COLS                                                                               \
    "id, store_hash, status, kind, started_at, finished_at, error, manifest_sha256, actor,"      \
    " records, bytes, stored_bytes"
#define TYPE_COLS                                                                                 \
    "type, object, codec, status, records, bytes, stored_bytes, sha256, plugin_version"

void o7_backup_row_free(o7_backup_row *row)
{
    if (row == NULL)
        return;
    free(row->types);
    row->types = NULL;
    row->ntypes = 0;
}

static o7_rc check_backup(o7_catalog *cat, const o7_backup_row *row, o7_err *err)
{
    int ok = FITS(row->id) && row->id[0] != '\0' && FITS(row->store_hash) &&
             row->store_hash[0] != '\0' && FITS(row->status) && FITS(row->kind) &&
             FITS(row->error) && FITS(row->manifest_sha256) && FITS(row->actor) &&
             (row->ntypes == 0 || row->types != NULL);
    for (size_t i = 0; ok && i < row->ntypes; i++) {
        const o7_backup_type_row *t = &row->types[i];
        ok = FITS(t->type) && t->type[0] != '\0' && FITS(t->object) && FITS(t->codec) &&
             FITS(t->status) && FITS(t->sha256) && FITS(t->plugin_version);
    }
    if (!O7_CHECK(ok))
        return o7_fail(err, O7_ERR_INTERNAL,
                       "catalog %s: a backup row with an empty id or store, or an unterminated "
                       "field, was refused", cat->path);
    return O7_OK;
}

/* Binds ?1..?9 of an insert of BACKUP_COLS without the totals; status NULL
 * takes the row's own. */
static int bind_backup(sqlite3_stmt *st, const o7_backup_row *row, const char *status)
{
    return bind_text(st, 1, row->id) | bind_text(st, 2, row->store_hash) |
           bind_text(st, 3, status ? status : row->status) | bind_text(st, 4, row->kind) |
           sqlite3_bind_int64(st, 5, row->started_at) |
           sqlite3_bind_int64(st, 6, row->finished_at) | bind_text(st, 7, row->error) |
           bind_text(st, 8, row->manifest_sha256) | bind_text(st, 9, row->actor);
}

static o7_rc insert_types(o7_catalog *cat, const o7_backup_row *row, const char *what,
                          o7_err *err)
{
    sqlite3_stmt *st;
    o7_rc rc = prepare(cat, "INSERT INTO backup_types (backup_id, " TYPE_COLS ")"
                            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)", &st, what, err);
    for (size_t i = 0; i < row->ntypes && rc == O7_OK; i++) {
        const o7_backup_type_row *t = &row->types[i];
        sqlite3_reset(st);
        int b = bind_text(st, 1, row->id) | bind_text(st, 2, t->type) |
                bind_text(st, 3, t->object) | bind_text(st, 4, t->codec) |
                bind_text(st, 5, t->status) | sqlite3_bind_int64(st, 6, t->records) |
                sqlite3_bind_int64(st, 7, t->bytes) | sqlite3_bind_int64(st, 8, t->stored_bytes) |
                bind_text(st, 9, t->sha256) | bind_text(st, 10, t->plugin_version);
        if (b != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(cat, what, err);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Replaces the backup's type rows with row's, then sets its totals to their
 * sums, so the totals can never disagree with the types. */
static o7_rc replace_types(o7_catalog *cat, const o7_backup_row *row, const char *what,
                           o7_err *err)
{
    sqlite3_stmt *st;
    o7_rc rc = prepare(cat, "DELETE FROM backup_types WHERE backup_id = ?1", &st, what, err);
    if (rc == O7_OK)
        rc = run(cat, st, bind_text(st, 1, row->id), what, err);
    if (rc == O7_OK)
        rc = insert_types(cat, row, what, err);
    if (rc == O7_OK)
        rc = prepare(cat, "UPDATE backups SET"
                          " records = (SELECT COALESCE(SUM(records), 0) FROM backup_types"
                          "            WHERE backup_id = ?1),"
                          " bytes = (SELECT COALESCE(SUM(bytes), 0) FROM backup_types"
                          "          WHERE backup_id = ?1),"
                          " stored_bytes = (SELECT COALESCE(SUM(stored_bytes), 0)"
                          "                 FROM backup_types WHERE backup_id = ?1)"
                          " WHERE id = ?1", &st, what, err);
    if (rc == O7_OK)
        rc = run(cat, st, bind_text(st, 1, row->id), what, err);
    return rc;
}

o7_rc o7_catalog_backup_begin(o7_catalog *cat, const o7_backup_row *row, o7_err *err)
{
    o7_rc rc = check_backup(cat, row, err);
    if (rc != O7_OK)
        return rc;
    char what[128];
    snprintf(what, sizeof what, "record the start of backup %s", row->id);
    sqlite3_stmt *st;
    rc = tx_begin(cat, what, err);
    if (rc == O7_OK)
        rc = prepare(cat, "INSERT INTO backups (" BACKUP_COLS ")"
                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, 0, 0)", &st, what, err);
    if (rc == O7_OK)
        rc = run(cat, st, bind_backup(st, row, "running"), what, err);
    if (rc == O7_OK)
        rc = replace_types(cat, row, what, err);
    return tx_end(cat, rc, what, err);
}

o7_rc o7_catalog_backup_finish(o7_catalog *cat, const o7_backup_row *row, o7_err *err)
{
    o7_rc rc = check_backup(cat, row, err);
    if (rc != O7_OK)
        return rc;
    char what[128];
    snprintf(what, sizeof what, "record the end of backup %s", row->id);
    sqlite3_stmt *st;
    rc = tx_begin(cat, what, err);
    if (rc == O7_OK)
        rc = prepare(cat, "UPDATE backups SET status = ?2, finished_at = ?3, error = ?4,"
                          " manifest_sha256 = ?5 WHERE id = ?1", &st, what, err);
    if (rc == O7_OK) {
        int b = bind_text(st, 1, row->id) | bind_text(st, 2, row->status) |
                sqlite3_bind_int64(st, 3, row->finished_at) | bind_text(st, 4, row->error) |
                bind_text(st, 5, row->manifest_sha256);
        rc = run(cat, st, b, what, err);
    }
    if (rc == O7_OK && sqlite3_changes(cat->db) == 0)
        rc = o7_fail(err, O7_ERR_NOTFOUND, "catalog %s: cannot %s: it was never started",
                     cat->path, what);
    if (rc == O7_OK)
        rc = replace_types(cat, row, what, err);
    return tx_end(cat, rc, what, err);
}

o7_rc o7_catalog_backup_upsert(o7_catalog *cat, const o7_backup_row *row, o7_err *err)
{
    o7_rc rc = check_backup(cat, row, err);
    if (rc != O7_OK)
        return rc;
    char what[128];
    snprintf(what, sizeof what, "record backup %s", row->id);
    static const char sql[] =
        "INSERT INTO backups (" BACKUP_COLS ")"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, 0, 0)"
        " ON CONFLICT (id) DO UPDATE SET store_hash = excluded.store_hash,"
        " status = excluded.status, kind = excluded.kind, started_at = excluded.started_at,"
        " finished_at = excluded.finished_at, error = excluded.error,"
        " manifest_sha256 = excluded.manifest_sha256, actor = excluded.actor";
    sqlite3_stmt *st;
    rc = tx_begin(cat, what, err);
    if (rc == O7_OK)
        rc = prepare(cat, sql, &st, what, err);
    if (rc == O7_OK)
        rc = run(cat, st, bind_backup(st, row, NULL), what, err);
    if (rc == O7_OK)
        rc = replace_types(cat, row, what, err);
    return tx_end(cat, rc, what, err);
}

static void read_backup(sqlite3_stmt *st, o7_backup_row *row)
{
    memset(row, 0, sizeof *row);
    col_copy(st, 0, row->id, sizeof row->id);
    col_copy(st, 1, row->store_hash, sizeof row->store_hash);
    col_copy(st, 2, row->status, sizeof row->status);
    col_copy(st, 3, row->kind, sizeof row->kind);
    row->started_at = sqlite3_column_int64(st, 4);
    row->finished_at = sqlite3_column_int64(st, 5);
    col_copy(st, 6, row->error, sizeof row->error);
    col_copy(st, 7, row->manifest_sha256, sizeof row->manifest_sha256);
    col_copy(st, 8, row->actor, sizeof row->actor);
    row->records = sqlite3_column_int64(st, 9);
    row->bytes = sqlite3_column_int64(st, 10);
    row->stored_bytes = sqlite3_column_int64(st, 11);
}

static void read_type(sqlite3_stmt *st, o7_backup_type_row *t)
{
    memset(t, 0, sizeof *t);
    col_copy(st, 0, t->type, sizeof t->type);
    col_copy(st, 1, t->object, sizeof t->object);
    col_copy(st, 2, t->codec, sizeof t->codec);
    col_copy(st, 3, t->status, sizeof t->status);
    t->records = sqlite3_column_int64(st, 4);
    t->bytes = sqlite3_column_int64(st, 5);
    t->stored_bytes = sqlite3_column_int64(st, 6);
    col_copy(st, 7, t->sha256, sizeof t->sha256);
    col_copy(st, 8, t->plugin_version, sizeof t->plugin_version);
}

/* Fills row->types with a prepared "types of ?1" query, sorted by type. */
static o7_rc load_types(o7_catalog *cat, sqlite3_stmt *st, o7_backup_row *row, const char *what,
                        o7_err *err)
{
    size_t cap = 0;
    int code = sqlite3_reset(st) | bind_text(st, 1, row->id);
    if (code != SQLITE_OK)
        return db_fail(cat, what, err);
    while ((code = sqlite3_step(st)) == SQLITE_ROW) {
        o7_backup_type_row *more = grow(row->types, &cap, row->ntypes, sizeof *more);
        if (more == NULL)
            return nomem(cat, what, err);
        row->types = more;
        read_type(st, &row->types[row->ntypes++]);
    }
    return code == SQLITE_DONE ? O7_OK : db_fail(cat, what, err);
}

#define TYPES_SQL "SELECT " TYPE_COLS " FROM backup_types WHERE backup_id = ?1 ORDER BY type"

o7_rc o7_catalog_backup_get(o7_catalog *cat, const char *id, o7_backup_row *out, o7_err *err)
{
    memset(out, 0, sizeof *out);
    char what[128];
    snprintf(what, sizeof what, "read backup %s", or_empty(id));
    sqlite3_stmt *st, *types = NULL;
    o7_rc rc = prepare(cat, "SELECT " BACKUP_COLS " FROM backups WHERE id = ?1", &st, what, err);
    if (rc != O7_OK)
        return rc;
    int code = bind_text(st, 1, or_empty(id));
    if (code == SQLITE_OK)
        code = sqlite3_step(st);
    if (code == SQLITE_ROW) {
        read_backup(st, out);
        rc = prepare(cat, TYPES_SQL, &types, what, err);
        if (rc == O7_OK)
            rc = load_types(cat, types, out, what, err);
    } else if (code == SQLITE_DONE) {
        rc = o7_fail(err, O7_ERR_NOTFOUND, "catalog %s: no backup %s", cat->path, or_empty(id));
    } else {
        rc = db_fail(cat, what, err);
    }
    sqlite3_finalize(types);
    sqlite3_finalize(st);
    if (rc != O7_OK)
        o7_backup_row_free(out);
    return rc;
}

/* Reads every matching backup with its types. The types are read while the
 * outer query is still open, so both come from one snapshot. */
static o7_rc collect_backups(o7_catalog *cat, const char *store_hash, o7_backup_row **rows,
                             size_t *n, o7_err *err)
{
    const char *what = "list backups";
    size_t cap = 0;
    sqlite3_stmt *st, *types = NULL;
    o7_rc rc = prepare(cat, "SELECT " BACKUP_COLS " FROM backups"
                            " WHERE ?1 IS NULL OR store_hash = ?1"
                            " ORDER BY started_at DESC, id DESC", &st, what, err);
    if (rc != O7_OK)
        return rc;
    rc = prepare(cat, TYPES_SQL, &types, what, err);
    if (rc == O7_OK && bind_text(st, 1, store_hash) != SQLITE_OK)
        rc = db_fail(cat, what, err);
    int code = SQLITE_DONE;
    while (rc == O7_OK && (code = sqlite3_step(st)) == SQLITE_ROW) {
        o7_backup_row *more = grow(*rows, &cap, *n, sizeof *more);
        if (more == NULL) {
            rc = nomem(cat, what, err);
            break;
        }
        *rows = more;
        read_backup(st, &(*rows)[*n]);
        rc = load_types(cat, types, &(*rows)[(*n)++], what, err);
    }
    if (rc == O7_OK && code != SQLITE_DONE)
        rc = db_fail(cat, what, err);
    sqlite3_finalize(types);
    sqlite3_finalize(st);
    return rc;
}

o7_rc o7_catalog_backup_list(o7_catalog *cat, const char *store_hash, o7_backup_fn fn, void *ud,
                             o7_err *err)
{
    o7_backup_row *rows = NULL;
    size_t n = 0;
    o7_rc rc = collect_backups(cat, store_hash, &rows, &n, err);
    for (size_t i = 0; i < n && rc == O7_OK; i++)
        rc = fn(ud, &rows[i]);
    for (size_t i = 0; i < n; i++)
        o7_backup_row_free(&rows[i]);
    free(rows);
    return rc;
}

o7_rc o7_catalog_backup_delete(o7_catalog *cat, const char *id, o7_err *err)
{
    char what[128];
    snprintf(what, sizeof what, "delete backup %s", or_empty(id));
    sqlite3_stmt *st;
    o7_rc rc = tx_begin(cat, what, err);
    if (rc == O7_OK)
        rc = prepare(cat, "DELETE FROM backups WHERE id = ?1", &st, what, err);
    if (rc == O7_OK)
        rc = run(cat, st, bind_text(st, 1, or_empty(id)), what, err);
    if (rc == O7_OK && sqlite3_changes(cat->db) == 0)
        rc = o7_fail(err, O7_ERR_NOTFOUND, "catalog %s: no backup %s", cat->path, or_empty(id));
    return tx_end(cat, rc, what, err);
}

o7_rc o7_catalog_backup_fail_running(o7_catalog *cat, const char *store_hash, const char *reason,
                                     int *count, o7_err *err)
{
    *count = 0;
    char what[128];
    snprintf(what, sizeof what, "mark the running backups of store %s failed",
             store_hash ? store_hash : "(all)");
    sqlite3_stmt *st;
    o7_rc rc = tx_begin(cat, what, err);
    /* The types first: the backups' status is what selects them. */
    if (rc == O7_OK)
        rc = prepare(cat, "UPDATE backup_types SET status = 'failed' WHERE status = 'running'"
                          " AND backup_id IN (SELECT id FROM backups WHERE status = 'running'"
                          " AND (?1 IS NULL OR store_hash = ?1))", &st, what, err);
    if (rc == O7_OK)
        rc = run(cat, st, bind_text(st, 1, store_hash), what, err);
    if (rc == O7_OK)
        rc = prepare(cat, "UPDATE backups SET status = 'failed', error = ?2, finished_at = ?3"
                          " WHERE status = 'running' AND (?1 IS NULL OR store_hash = ?1)",
                     &st, what, err);
    if (rc == O7_OK) {
        int b = bind_text(st, 1, store_hash) | bind_text(st, 2, or_empty(reason)) |
                sqlite3_bind_int64(st, 3, time(NULL));
        rc = run(cat, st, b, what, err);
    }
    if (rc == O7_OK)
        *count = sqlite3_changes(cat->db);
    rc = tx_end(cat, rc, what, err);
    if (rc != O7_OK)
        *count = 0;
    return rc;
}

o7_rc o7_catalog_backup_clear(o7_catalog *cat, o7_err *err)
{
    const char *what = "clear the backup list";
    o7_rc rc = tx_begin(cat, what, err);
    if (rc == O7_OK &&
        sqlite3_exec(cat->db, "DELETE FROM backup_types; DELETE FROM backups;", NULL, NULL,
                     NULL) != SQLITE_OK)
        rc = db_fail(cat, what, err);
    return tx_end(cat, rc, what, err);
}

/* ---- audit -------------------------------------------------------------- */

o7_rc o7_catalog_audit(o7_catalog *cat, const char *store_hash, const char *actor,
                       const char *action, const char *types, const char *status,
                       const char *detail, o7_err *err)
{
    char what[128];
    snprintf(what, sizeof what, "record the audit entry %s", or_empty(action));
    sqlite3_stmt *st;
    o7_rc rc = tx_begin(cat, what, err);
    if (rc == O7_OK)
        rc = prepare(cat, "INSERT INTO audit (at, store_hash, actor, action, types, status,"
                          " detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &st, what, err);
    if (rc == O7_OK) {
        int b = sqlite3_bind_int64(st, 1, time(NULL)) | bind_text(st, 2, store_hash) |
                bind_text(st, 3, or_empty(actor)) | bind_text(st, 4, or_empty(action)) |
                bind_text(st, 5, or_empty(types)) | bind_text(st, 6, or_empty(status)) |
                bind_text(st, 7, or_empty(detail));
        rc = run(cat, st, b, what, err);
    }
    return tx_end(cat, rc, what, err);
}

/* An audit row and the one allocation that holds its six strings. */
typedef struct audit_item {
    o7_audit_row row;
    char *text;
} audit_item;

/* Copies text columns 2..7 into one allocation; NULL becomes "". */
static int read_audit(sqlite3_stmt *st, audit_item *item)
{
    size_t total = 0;
    for (int i = 2; i < 8; i++)
        total += (size_t)sqlite3_column_bytes(st, i) + 1;
    item->text = malloc(total);
    if (item->text == NULL)
        return 0;
    const char **fields[6] = {&item->row.store_hash, &item->row.actor, &item->row.action,
                              &item->row.types, &item->row.status, &item->row.detail};
    char *p = item->text;
    for (int i = 2; i < 8; i++) {
        const unsigned char *s = sqlite3_column_text(st, i);
        size_t n = s ? (size_t)sqlite3_column_bytes(st, i) : 0;
        if (n)
            memcpy(p, s, n);
        p[n] = '\0';
        *fields[i - 2] = p;
        p += n + 1;
    }
    item->row.id = sqlite3_column_int64(st, 0);
    item->row.at = sqlite3_column_int64(st, 1);
    return 1;
}

/* The newest `limit` entries (all when -1), delivered oldest first. */
static o7_rc collect_audit(o7_catalog *cat, const char *store_hash, int limit, audit_item **items,
                           size_t *n, o7_err *err)
{
    const char *what = "list the audit log";
    size_t cap = 0;
    sqlite3_stmt *st;
    o7_rc rc = prepare(cat, "SELECT * FROM (SELECT id, at, store_hash, actor, action, types,"
                            " status, detail FROM audit WHERE ?1 IS NULL OR store_hash = ?1"
                            " ORDER BY id DESC LIMIT ?2) ORDER BY id", &st, what, err);
    if (rc != O7_OK)
        return rc;
    int code = bind_text(st, 1, store_hash) | sqlite3_bind_int(st, 2, limit);
    if (code != SQLITE_OK)
        rc = db_fail(cat, what, err);
    while (rc == O7_OK && (code = sqlite3_step(st)) == SQLITE_ROW) {
        audit_item *more = grow(*items, &cap, *n, sizeof *more);
        if (more != NULL)
            *items = more;
        if (more == NULL || !read_audit(st, &(*items)[*n]))
            rc = nomem(cat, what, err);
        else
            (*n)++;
    }
    if (rc == O7_OK && code != SQLITE_DONE)
        rc = db_fail(cat, what, err);
    sqlite3_finalize(st);
    return rc;
}

o7_rc o7_catalog_audit_list(o7_catalog *cat, const char *store_hash, int limit, o7_audit_fn fn,
                            void *ud, o7_err *err)
{
    if (limit < 0)
        return o7_fail(err, O7_ERR_USAGE, "catalog %s: an audit limit cannot be negative (%d)",
                       cat->path, limit);
    audit_item *items = NULL;
    size_t n = 0;
    o7_rc rc = collect_audit(cat, store_hash, limit ? limit : -1, &items, &n, err);
    for (size_t i = 0; i < n && rc == O7_OK; i++)
        rc = fn(ud, &items[i].row);
    for (size_t i = 0; i < n; i++)
        free(items[i].text);
    free(items);
    return rc;
}

/* ---- id maps ------------------------------------------------------------ */

o7_rc o7_catalog_idmap_put(o7_catalog *cat, const char *src, const char *dst, const char *type,
                           const char *src_id, const char *dst_id, o7_err *err)
{
    char what[160];
    snprintf(what, sizeof what, "remember the new id of %s %s", or_empty(type),
             or_empty(src_id));
    if (src == NULL || dst == NULL || type == NULL || src_id == NULL || dst_id == NULL)
        return o7_fail(err, O7_ERR_USAGE, "catalog %s: cannot %s: a field is missing", cat->path,
                       what);
    sqlite3_stmt *st;
    o7_rc rc = tx_begin(cat, what, err);
    if (rc == O7_OK)
        rc = prepare(cat, "INSERT INTO idmap (src_store, dst_store, type, src_id, dst_id)"
                          " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (src_store, dst_store,"
                          " type, src_id) DO UPDATE SET dst_id = excluded.dst_id", &st, what, err);
    if (rc == O7_OK) {
        int b = bind_text(st, 1, src) | bind_text(st, 2, dst) | bind_text(st, 3, type) |
                bind_text(st, 4, src_id) | bind_text(st, 5, dst_id);
        rc = run(cat, st, b, what, err);
    }
    return tx_end(cat, rc, what, err);
}

o7_rc o7_catalog_idmap_get(o7_catalog *cat, const char *src, const char *dst, const char *type,
                           const char *src_id, char **dst_id, o7_err *err)
{
    *dst_id = NULL;
    char what[160];
    snprintf(what, sizeof what, "look up the new id of %s %s", or_empty(type), or_empty(src_id));
    sqlite3_stmt *st;
    o7_rc rc = prepare(cat, "SELECT dst_id FROM idmap WHERE src_store = ?1 AND dst_store = ?2"
                            " AND type = ?3 AND src_id = ?4", &st, what, err);
    if (rc != O7_OK)
        return rc;
    int code = bind_text(st, 1, or_empty(src)) | bind_text(st, 2, or_empty(dst)) |
               bind_text(st, 3, or_empty(type)) | bind_text(st, 4, or_empty(src_id));
    if (code == SQLITE_OK)
        code = sqlite3_step(st);
    if (code == SQLITE_ROW) {
        *dst_id = strdup(or_empty((const char *)sqlite3_column_text(st, 0)));
        if (*dst_id == NULL)
            rc = nomem(cat, what, err);
    } else if (code == SQLITE_DONE) {
        rc = o7_fail(err, O7_ERR_NOTFOUND, "catalog %s: no new id known for %s %s", cat->path,
                     or_empty(type), or_empty(src_id));
    } else {
        rc = db_fail(cat, what, err);
    }
    sqlite3_finalize(st);
    return rc;
}
