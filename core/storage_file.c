/* storage_file.c - the file:// backend: objects are files under one root
 * folder, written to a temporary name and renamed into place on commit.
 *
 * Folders are 0700 and files 0600 whatever the umask: they hold customer
 * data. A temporary file is named ".<name>.tmp-<16 hex>" beside its object;
 * listings never show one and gc removes the stale ones. */
#include "buf.h"
#include "crypto.h"
#include "log.h"
#include "storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define TMP_MARK ".tmp-"
/* Keeps ".<name>.tmp-<16 hex>" within the usual 255-byte name limit. */
#define TMP_NAME_KEEP 200
#define KEY_MAX 1024

typedef struct file_storage {
    struct o7_storage base; /* first: storage.c sees only this */
    char *root;             /* absolute, no trailing slash */
} file_storage;

typedef struct file_writer {
    struct o7_writer base; /* first: storage.c sees only this */
    int fd;
    char *final_path; /* where commit puts the object */
    char *tmp_path;   /* where the bytes go until then */
    char *dir_path;   /* the folder of both, fsynced after the rename */
    o7_rc failed;     /* a failed write makes commit fail too */
} file_writer;

static file_storage *fs_of(o7_storage *st)
{
    return (file_storage *)st;
}

/* ---- names ------------------------------------------------------------- */

/* ".<anything>.tmp-<...>": the pattern of o7's temporary files. */
static int is_tmp_name(const char *name, size_t len)
{
    if (len < 2 || name[0] != '.')
        return 0;
    for (size_t i = 1; i + sizeof TMP_MARK - 1 <= len; i++)
        if (memcmp(name + i, TMP_MARK, sizeof TMP_MARK - 1) == 0)
            return 1;
    return 0;
}

static o7_rc check_key(const char *key, o7_err *err)
{
    if (key == NULL || key[0] == '\0')
        return o7_fail(err, O7_ERR_STORAGE, "an object key must not be empty");
    size_t len = strlen(key);
    if (len > KEY_MAX)
        return o7_fail(err, O7_ERR_STORAGE, "object key %.80s... is longer than %d bytes", key,
                       KEY_MAX);
    if (key[0] == '/')
        return o7_fail(err, O7_ERR_STORAGE,
                       "object key %s must be relative to the storage root, not absolute", key);
    const char *seg = key;
    while (seg <= key + len) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        if (n == 0)
            return o7_fail(err, O7_ERR_STORAGE, "object key %s has an empty path segment", key);
        if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return o7_fail(err, O7_ERR_STORAGE,
                           "object key %s must not contain \".\" or \"..\" segments", key);
        if (is_tmp_name(seg, n))
            return o7_fail(err, O7_ERR_STORAGE,
                           "object key %s has the form of o7's temporary files", key);
        seg += n + 1;
    }
    return O7_OK;
}

/* *out (caller frees) = root + "/" + key, after checking key. */
static o7_rc key_path(file_storage *fs, const char *key, char **out, o7_err *err)
{
    *out = NULL;
    o7_rc rc = check_key(key, err);
    if (rc != O7_OK)
        return rc;
    o7_buf b = O7_BUF_INIT;
    if (o7_buf_printf(&b, "%s/%s", fs->root, key) != O7_OK) {
        o7_buf_free(&b);
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    }
    *out = o7_buf_steal(&b);
    return O7_OK;
}

static char *dup_prefix(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* ---- folders ----------------------------------------------------------- */

static o7_rc fsync_dir(const char *dir, o7_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return o7_fail(err, O7_ERR_STORAGE, "cannot open folder %s to sync it: %s", dir,
                       strerror(errno));
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    if (rc != 0)
        return o7_fail(err, O7_ERR_STORAGE, "cannot sync folder %s: %s", dir, strerror(saved));
    return O7_OK;
}

/* Creates path (and the folders above it) with mode 0700. A new folder is
 * made durable by syncing its parent, so a committed object never sits in a
 * folder that a crash could forget. */
static o7_rc make_dirs(char *path, o7_err *err)
{
    if (mkdir(path, 0700) != 0) {
        if (errno == EEXIST)
            return O7_OK; /* not checked to be a folder: the open that follows will tell */
        if (errno != ENOENT)
            return o7_fail(err, O7_ERR_STORAGE, "cannot create folder %s: %s", path,
                           strerror(errno));
        char *slash = strrchr(path, '/');
        if (slash == NULL || slash == path)
            return o7_fail(err, O7_ERR_STORAGE, "cannot create folder %s: %s", path,
                           strerror(ENOENT));
        *slash = '\0';
        o7_rc rc = make_dirs(path, err);
        *slash = '/';
        if (rc != O7_OK)
            return rc;
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return o7_fail(err, O7_ERR_STORAGE, "cannot create folder %s: %s", path,
                           strerror(errno));
    }
    /* mkdir's mode went through the umask; set the one we mean. */
    if (chmod(path, 0700) != 0)
        return o7_fail(err, O7_ERR_STORAGE, "cannot set the mode of folder %s: %s", path,
                       strerror(errno));
    char *slash = strrchr(path, '/');
    if (slash == NULL || slash == path)
        return O7_OK;
    *slash = '\0';
    o7_rc rc = fsync_dir(path, err);
    *slash = '/';
    return rc;
}

/* Removes the folders above path that became empty, up to the root. */
static void prune_dirs(file_storage *fs, const char *path)
{
    size_t rootlen = strlen(fs->root);
    char *dir = dup_prefix(path, strlen(path));
    if (dir == NULL)
        return;
    for (;;) {
        char *slash = strrchr(dir, '/');
        if (slash == NULL || (size_t)(slash - dir) <= rootlen)
            break;
        *slash = '\0';
        if (rmdir(dir) != 0)
            break; /* not empty (or busy): it and its parents stay */
    }
    free(dir);
}

/* ---- open and close ---------------------------------------------------- */

static o7_rc file_open(const o7_conf *conf, o7_storage **out, o7_err *err)
{
    const char *url = conf->storage_url;
    const char *path = url + strlen("file://");
    if (path[0] != '/')
        return o7_fail(err, O7_ERR_CONFIG,
                       "storage url %s must name an absolute folder, as file:///path", url);
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    if (len == 1)
        return o7_fail(err, O7_ERR_CONFIG,
                       "storage url %s names the file system root; use a folder of its own", url);

    file_storage *fs = calloc(1, sizeof *fs);
    if (fs == NULL || (fs->root = dup_prefix(path, len)) == NULL) {
        free(fs);
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    }
    snprintf(fs->base.describe, sizeof fs->base.describe, "file://%s", fs->root);
    *out = &fs->base;
    return O7_OK;
}

static void file_close(o7_storage *st)
{
    file_storage *fs = fs_of(st);
    free(fs->root);
    free(fs);
}

/* ---- writing ----------------------------------------------------------- */

static void writer_free(file_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    free(w->final_path);
    free(w->tmp_path);
    free(w->dir_path);
    free(w);
}

static o7_rc writer_names(file_writer *w, o7_err *err)
{
    const char *slash = strrchr(w->final_path, '/');
    const char *name = slash + 1;
    size_t keep = strlen(name) > TMP_NAME_KEEP ? TMP_NAME_KEEP : strlen(name);
    unsigned char rnd[8];
    char hex[17];
    if (o7_random(rnd, sizeof rnd) != O7_OK)
        return o7_fail(err, O7_ERR_CRYPTO, "no random bytes for a temporary file name");
    o7_hex(rnd, sizeof rnd, hex);

    w->dir_path = dup_prefix(w->final_path, (size_t)(slash - w->final_path));
    o7_buf b = O7_BUF_INIT;
    if (w->dir_path == NULL ||
        o7_buf_printf(&b, "%s/.%.*s%s%s", w->dir_path, (int)keep, name, TMP_MARK, hex) != O7_OK) {
        o7_buf_free(&b);
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    }
    w->tmp_path = o7_buf_steal(&b);
    return O7_OK;
}

/* Opens the temporary file, creating its folders. A delete pruning empty
 * folders may remove one between the two steps, so try again then. */
static o7_rc writer_create(file_writer *w, o7_err *err)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        o7_rc rc = make_dirs(w->dir_path, err);
        if (rc != O7_OK)
            return rc;
        w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (w->fd >= 0)
            break;
        if (errno != ENOENT)
            return o7_fail(err, O7_ERR_STORAGE, "cannot create %s: %s", w->tmp_path,
                           strerror(errno));
    }
    if (w->fd < 0)
        return o7_fail(err, O7_ERR_STORAGE, "cannot create %s: its folder keeps vanishing",
                       w->tmp_path);
    /* The mode passed to open went through the umask; set the one we mean. */
    if (fchmod(w->fd, 0600) != 0) {
        o7_fail(err, O7_ERR_STORAGE, "cannot set the mode of %s: %s", w->tmp_path, strerror(errno));
        unlink(w->tmp_path);
        return O7_ERR_STORAGE;
    }
    return O7_OK;
}

static o7_rc file_writer_new(o7_storage *st, const char *key, o7_writer **out, o7_err *err)
{
    *out = NULL;
    file_writer *w = calloc(1, sizeof *w);
    if (w == NULL)
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    w->fd = -1;
    o7_rc rc = key_path(fs_of(st), key, &w->final_path, err);
    if (rc == O7_OK)
        rc = writer_names(w, err);
    if (rc == O7_OK)
        rc = writer_create(w, err);
    if (rc != O7_OK) {
        writer_free(w);
        return rc;
    }
    *out = &w->base;
    return O7_OK;
}

static o7_rc file_write(o7_writer *ow, const void *data, size_t len, o7_err *err)
{
    file_writer *w = (file_writer *)ow;
    if (w->failed != O7_OK)
        return o7_fail(err, w->failed, "writing %s already failed", w->final_path);
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(w->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            w->failed = O7_ERR_STORAGE;
            return o7_fail(err, O7_ERR_STORAGE, "cannot write %s: %s", w->final_path,
                           strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
    return O7_OK;
}

/* fsync the bytes, rename over the final name, fsync the folder: after this
 * the object survives a crash, and until the rename nobody sees it. */
static o7_rc file_commit(o7_writer *ow, o7_err *err)
{
    file_writer *w = (file_writer *)ow;
    o7_rc rc = w->failed;
    if (rc != O7_OK)
        o7_fail(err, rc, "cannot commit %s: an earlier write failed", w->final_path);
    else if (fsync(w->fd) != 0)
        rc = o7_fail(err, O7_ERR_STORAGE, "cannot sync %s: %s", w->final_path, strerror(errno));

    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0 && rc == O7_OK)
        rc = o7_fail(err, O7_ERR_STORAGE, "cannot write %s: %s", w->final_path, strerror(errno));
    if (rc == O7_OK && rename(w->tmp_path, w->final_path) != 0)
        rc = o7_fail(err, O7_ERR_STORAGE, "cannot move %s into place: %s", w->final_path,
                     strerror(errno));
    if (rc != O7_OK)
        unlink(w->tmp_path);
    else
        rc = fsync_dir(w->dir_path, err);
    writer_free(w);
    return rc;
}

static void file_abort(o7_writer *ow)
{
    file_writer *w = (file_writer *)ow;
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    unlink(w->tmp_path);
    writer_free(w);
}

/* ---- reading ----------------------------------------------------------- */

/* Opens an object for reading; absent (or not a file) is NOTFOUND. */
static o7_rc open_object(file_storage *fs, const char *key, int *fd_out, struct stat *sb,
                         o7_err *err)
{
    char *path;
    o7_rc rc = key_path(fs, key, &path, err);
    if (rc != O7_OK)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR || errno == ELOOP))
        rc = o7_fail(err, O7_ERR_NOTFOUND, "no object %s in %s", key, fs->base.describe);
    else if (fd < 0)
        rc = o7_fail(err, O7_ERR_STORAGE, "cannot open %s: %s", path, strerror(errno));
    else if (fstat(fd, sb) != 0)
        rc = o7_fail(err, O7_ERR_STORAGE, "cannot check %s: %s", path, strerror(errno));
    else if (!S_ISREG(sb->st_mode))
        rc = o7_fail(err, O7_ERR_NOTFOUND, "no object %s in %s (%s is not a file)", key,
                     fs->base.describe, path);
    if (rc != O7_OK && fd >= 0)
        close(fd);
    if (rc == O7_OK)
        *fd_out = fd;
    free(path);
    return rc;
}

static o7_rc file_get(o7_storage *st, const char *key, o7_sink_fn sink, void *ud, o7_err *err)
{
    int fd;
    struct stat sb;
    o7_rc rc = open_object(fs_of(st), key, &fd, &sb, err);
    if (rc != O7_OK)
        return rc;
    char *chunk = malloc(CHUNK);
    if (chunk == NULL) {
        close(fd);
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    }
    for (;;) {
        ssize_t n = read(fd, chunk, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = o7_fail(err, O7_ERR_STORAGE, "cannot read object %s in %s: %s", key, st->describe,
                         strerror(errno));
            break;
        }
        if (n == 0)
            break;
        rc = sink(ud, chunk, (size_t)n);
        if (rc != O7_OK) {
            o7_fail(err, rc, "reading object %s stopped: its reader failed (%s)", key,
                    o7_rc_str(rc));
            break;
        }
    }
    free(chunk);
    close(fd);
    return rc;
}

static void fill_info(const char *key, const struct stat *sb, o7_object_info *info)
{
    memset(info, 0, sizeof *info);
    info->key = key;
    info->size = (uint64_t)sb->st_size;
    info->mtime = (int64_t)sb->st_mtim.tv_sec;
    /* Size and modification time in nanoseconds: changes when the object is
     * replaced, which is all an etag promises here. */
    uint64_t ns = (uint64_t)sb->st_mtim.tv_sec * 1000000000u + (uint64_t)sb->st_mtim.tv_nsec;
    snprintf(info->etag, sizeof info->etag, "%" PRIx64 "-%" PRIx64, info->size, ns);
}

static o7_rc file_head(o7_storage *st, const char *key, o7_object_info *info, o7_err *err)
{
    int fd;
    struct stat sb;
    o7_rc rc = open_object(fs_of(st), key, &fd, &sb, err);
    if (rc != O7_OK)
        return rc;
    close(fd);
    fill_info(key, &sb, info);
    return O7_OK;
}

/* ---- walking the tree -------------------------------------------------- */

/* One walk serves list (objects, in key order) and gc (stale temporaries). */
typedef struct walk {
    file_storage *fs;
    const char *prefix;
    size_t prefix_len;
    o7_list_fn fn; /* list: called per object */
    void *ud;
    int gc; /* gc: remove temporaries older than cutoff */
    time_t cutoff;
    long removed;
    o7_err *err;
} walk;

typedef struct entry {
    char *name;
    int is_dir;
    struct stat sb;
} entry;

/* Key order: a folder's entries come as "name/" so that "a-b" (a file) sorts
 * before "a/x" (inside folder a), as strcmp on the whole keys would. */
static int entry_cmp(const void *pa, const void *pb)
{
    const entry *a = pa, *b = pb;
    const unsigned char *x = (const unsigned char *)a->name, *y = (const unsigned char *)b->name;
    while (*x && *x == *y) {
        x++;
        y++;
    }
    int cx = *x ? *x : (a->is_dir ? '/' : 0);
    int cy = *y ? *y : (b->is_dir ? '/' : 0);
    return cx - cy;
}

static void entries_free(entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

/* Does the walk need to look at rel (a folder path ending in '/')? */
static int wanted_dir(const walk *wk, const char *rel, size_t len)
{
    size_t n = len < wk->prefix_len ? len : wk->prefix_len;
    return strncmp(rel, wk->prefix, n) == 0;
}

/* Reads the open folder d into a sorted array of files and folders. */
static o7_rc read_entries(walk *wk, DIR *d, const char *rel, entry **out, size_t *count)
{
    entry *v = NULL;
    size_t n = 0, cap = 0;
    o7_rc rc = O7_OK;
    struct dirent *de;
    while (rc == O7_OK && (errno = 0, de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* removed since readdir saw it */
        if (!S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode))
            continue; /* o7 makes only files and folders */
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            entry *nv = realloc(v, cap * sizeof *v);
            if (nv == NULL) {
                rc = o7_fail(wk->err, O7_ERR_NOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        v[n].name = strdup(de->d_name);
        v[n].is_dir = S_ISDIR(sb.st_mode);
        v[n].sb = sb;
        if (v[n].name == NULL)
            rc = o7_fail(wk->err, O7_ERR_NOMEM, "out of memory");
        else
            n++;
    }
    if (rc == O7_OK && errno != 0)
        rc = o7_fail(wk->err, O7_ERR_STORAGE, "cannot read folder %s/%s: %s", wk->fs->root, rel,
                     strerror(errno));
    if (rc != O7_OK) {
        entries_free(v, n);
        return rc;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, entry_cmp);
    *out = v;
    *count = n;
    return O7_OK;
}

static o7_rc walk_dir(walk *wk, int fd, o7_buf *rel);

static o7_rc walk_subdir(walk *wk, int dirfd, o7_buf *rel, const entry *e)
{
    if (!wanted_dir(wk, rel->data, rel->len))
        return O7_OK;
    int fd = openat(dirfd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return O7_OK; /* a folder pruned meanwhile is simply gone */
    if (fd < 0)
        return o7_fail(wk->err, O7_ERR_STORAGE, "cannot open folder %s/%s: %s", wk->fs->root,
                       rel->data, strerror(errno));
    long before = wk->removed;
    o7_rc rc = walk_dir(wk, fd, rel);
    /* gc leaves no folder it emptied; rmdir fails harmlessly on others. */
    if (rc == O7_OK && wk->removed > before)
        unlinkat(dirfd, e->name, AT_REMOVEDIR);
    return rc;
}

static o7_rc walk_file(walk *wk, int dirfd, o7_buf *rel, const entry *e)
{
    if (is_tmp_name(e->name, strlen(e->name))) {
        if (!wk->gc || e->sb.st_mtim.tv_sec >= wk->cutoff)
            return O7_OK;
        if (unlinkat(dirfd, e->name, 0) == 0)
            wk->removed++;
        else if (errno != ENOENT)
            return o7_fail(wk->err, O7_ERR_STORAGE, "cannot remove %s/%s: %s", wk->fs->root,
                           rel->data, strerror(errno));
        return O7_OK;
    }
    if (wk->gc || strncmp(rel->data, wk->prefix, wk->prefix_len) != 0)
        return O7_OK;
    o7_object_info info;
    fill_info(rel->data, &e->sb, &info);
    o7_rc rc = wk->fn(wk->ud, &info);
    if (rc != O7_OK)
        o7_fail(wk->err, rc, "listing %s stopped at %s: its reader failed (%s)",
                wk->fs->base.describe, rel->data, o7_rc_str(rc));
    return rc;
}

/* One entry of a folder; rel holds the folder's key prefix ("" or "a/b/")
 * and, while the entry is handled, the entry's own key. */
static o7_rc walk_entry(walk *wk, int dirfd, o7_buf *rel, const entry *e)
{
    size_t mark = rel->len;
    o7_rc rc = o7_buf_puts(rel, e->name);
    if (rc == O7_OK && e->is_dir)
        rc = o7_buf_putc(rel, '/');
    if (rc != O7_OK)
        rc = o7_fail(wk->err, O7_ERR_NOMEM, "out of memory");
    else if (e->is_dir)
        rc = walk_subdir(wk, dirfd, rel, e);
    else
        rc = walk_file(wk, dirfd, rel, e);
    rel->len = mark;
    if (rel->data)
        rel->data[mark] = '\0';
    return rc;
}

/* Walks the folder fd (and closes it), its entries in key order. */
static o7_rc walk_dir(walk *wk, int fd, o7_buf *rel)
{
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int saved = errno;
        close(fd);
        return o7_fail(wk->err, O7_ERR_STORAGE, "cannot read folder %s/%s: %s", wk->fs->root,
                       rel->len ? rel->data : "", strerror(saved));
    }
    entry *v = NULL;
    size_t n = 0;
    o7_rc rc = read_entries(wk, d, rel->len ? rel->data : "", &v, &n);
    for (size_t i = 0; i < n && rc == O7_OK; i++)
        rc = walk_entry(wk, dirfd(d), rel, &v[i]);
    entries_free(v, n);
    closedir(d); /* closes fd too */
    return rc;
}

/* Walks the whole tree under the root; a root not made yet holds nothing. */
static o7_rc walk_root(walk *wk)
{
    int fd = open(wk->fs->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return O7_OK;
    if (fd < 0)
        return o7_fail(wk->err, O7_ERR_STORAGE, "cannot open folder %s: %s", wk->fs->root,
                       strerror(errno));
    o7_buf rel = O7_BUF_INIT;
    o7_rc rc = o7_buf_reserve(&rel, 256);
    if (rc != O7_OK) {
        close(fd);
        return o7_fail(wk->err, O7_ERR_NOMEM, "out of memory");
    }
    rel.data[0] = '\0';
    rc = walk_dir(wk, fd, &rel);
    o7_buf_free(&rel);
    return rc;
}

static o7_rc file_list(o7_storage *st, const char *prefix, o7_list_fn fn, void *ud, o7_err *err)
{
    walk wk = {.fs = fs_of(st), .prefix = prefix ? prefix : "", .fn = fn, .ud = ud, .err = err};
    wk.prefix_len = strlen(wk.prefix);
    return walk_root(&wk);
}

static o7_rc file_gc(o7_storage *st, int64_t max_age, o7_err *err)
{
    walk wk = {.fs = fs_of(st), .prefix = "", .gc = 1, .err = err};
    wk.cutoff = time(NULL) - (time_t)(max_age < 0 ? 0 : max_age);
    o7_rc rc = walk_root(&wk);
    if (wk.removed > 0)
        o7_info("storage", "removed %ld stale temporary file%s from %s", wk.removed,
                wk.removed == 1 ? "" : "s", st->describe);
    return rc;
}

/* ---- delete and presign ------------------------------------------------ */

static o7_rc file_delete(o7_storage *st, const char *key, o7_err *err)
{
    file_storage *fs = fs_of(st);
    char *path;
    o7_rc rc = key_path(fs, key, &path, err);
    if (rc != O7_OK)
        return rc;
    if (unlink(path) == 0)
        prune_dirs(fs, path);
    else if (errno != ENOENT && errno != ENOTDIR && errno != EISDIR)
        rc = o7_fail(err, O7_ERR_STORAGE, "cannot delete %s: %s", path, strerror(errno));
    free(path);
    return rc;
}

static int is_unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == '/';
}

static o7_rc url_escape(o7_buf *b, const char *s)
{
    static const char digits[] = "0123456789ABCDEF";
    o7_rc rc = O7_OK;
    for (const unsigned char *p = (const unsigned char *)s; *p && rc == O7_OK; p++) {
        if (is_unreserved(*p)) {
            rc = o7_buf_putc(b, (char)*p);
        } else {
            char esc[3] = {'%', digits[*p >> 4], digits[*p & 0x0f]};
            rc = o7_buf_append(b, esc, sizeof esc);
        }
    }
    return rc;
}

/* A file:// URL for the object; no signature, so ttl has no meaning here. */
static o7_rc file_presign(o7_storage *st, const char *key, int ttl, char **url, o7_err *err)
{
    *url = NULL;
    char *path;
    o7_rc rc = key_path(fs_of(st), key, &path, err);
    if (rc != O7_OK)
        return rc;
    o7_buf b = O7_BUF_INIT;
    rc = o7_buf_puts(&b, "file://");
    if (rc == O7_OK)
        rc = url_escape(&b, path);
    free(path);
    if (rc != O7_OK) {
        o7_buf_free(&b);
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    }
    *url = o7_buf_steal(&b);
    return O7_OK;
}

const struct o7_storage_ops o7_storage_file_ops = {
    .scheme = "file",
    .open = file_open,
    .close = file_close,
    .writer = file_writer_new,
    .write = file_write,
    .commit = file_commit,
    .abort = file_abort,
    .get = file_get,
    .head = file_head,
    .list = file_list,
    .del = file_delete,
    .presign = file_presign,
    .gc = file_gc,
};
