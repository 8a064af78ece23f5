/* plugin.h - the plugin host: finds Lua plugins under plugins/, loads each
 * into a sandbox, checks its description against the contract, and calls
 * its hooks.
 *
 * A plugin describes one resource type (products, orders, ...): where it is
 * listed and how it pages, which child calls complete a record, its natural
 * key and dependencies; and, for what cannot be declared, a fetch hook. The
 * core does the work. docs/PLUGINS.md is the contract for plugin authors.
 * Every call into Lua goes through one wrapper in plugin.c that adds a
 * traceback, logs the failure once with the plugin and hook, and turns it
 * into an o7_rc. */
#ifndef O7_PLUGIN_H
#define O7_PLUGIN_H

#include "result.h"

#include <stddef.h>

typedef enum o7_paging { O7_PAGING_KEYSET, O7_PAGING_PAGE, O7_PAGING_CURSOR } o7_paging;

typedef struct o7_query_param {
    char *name, *value;
} o7_query_param;

/** How a type is listed. Strings are owned by the plugin set. */
typedef struct o7_list_spec {
    int v2;                 /* 1: v2 (bare arrays), 0: v3 (data + meta) */
    char *path;             /* e.g. "/catalog/products" */
    o7_paging paging;
    int limit;
    char *key;              /* the record's id member */
    o7_query_param *query;  /* fixed query parameters */
    size_t nquery;
    char *count_path;       /* v2: "/orders/count", may be NULL */
    char *after, *from;     /* keyset: exclusive or inclusive lower bound param */
    char *upto;             /* keyset: inclusive upper bound param */
    o7_query_param *newest; /* keyset: the sort that puts the newest first */
    size_t nnewest;
} o7_list_spec;

typedef struct o7_plugin {
    char *type, *version, *scope, *file;
    char **depends;
    size_t ndepends;
    int has_list, has_children, has_fetch;
    int has_restore;
    int restore_batch;     /* records per call of restore.write */
    int restore_parallel;  /* batches in flight */
    char *restore_parent;  /* member naming a record's parent: parents go first */
    o7_query_param *restore_needs; /* member ("a" or "a.b") -> type it references */
    size_t nneeds;
    o7_list_spec list;
    int ref; /* registry reference to the description table */
} o7_plugin;

typedef struct o7_plugin_failure {
    char *file, *reason;
} o7_plugin_failure;

typedef struct o7_plugins {
    void *L; /* lua_State */
    char *dir;
    int host_ref;
    o7_plugin *items; /* sorted by type */
    size_t n;
    o7_plugin_failure *failures;
    size_t nfailures;
} o7_plugins;

/** One child call of a record: GET path (all pages), stored in member. */
typedef struct o7_child_spec {
    char *member, *path;
    int v2, limit;
    int empty; /* known empty: set member to [] without a call */
    o7_query_param *query;
    size_t nquery;
} o7_child_spec;

/** Loads every plugin in dir: dir/NAME.lua and dir/NAME/init.lua (files
 * starting with '_' are shared modules, not plugins). A plugin that fails
 * to load is listed in failures with its file and reason; the others load.
 * Fails only when dir cannot be read. */
o7_rc o7_plugins_load(const char *dir, o7_plugins **out, o7_err *err);
void o7_plugins_free(o7_plugins *ps);
/** NULL when no plugin of that type loaded. */
o7_plugin *o7_plugins_find(o7_plugins *ps, const char *type);

/** Calls the children hook on one record. *out (o7_child_specs_free) may be
 * empty. O7_ERR_PLUGIN, with the plugin, hook and traceback, on failure. */
o7_rc o7_plugin_children(o7_plugins *ps, const o7_plugin *p, const char *raw, size_t len,
                         o7_child_spec **out, size_t *n, o7_err *err);
void o7_child_specs_free(o7_child_spec *specs, size_t n);

/* ---- fetch hooks (coroutines) ------------------------------------------ */

typedef enum o7_fetch_op {
    O7_FETCH_DONE, O7_FETCH_GET, O7_FETCH_POST, O7_FETCH_SLEEP, O7_FETCH_EMIT, O7_FETCH_ATTACH,
    /* restore hooks only */
    O7_FETCH_PUT, O7_FETCH_DELETE, O7_FETCH_MAP, O7_FETCH_REMEMBER, O7_FETCH_REPORT,
    O7_FETCH_UPLOAD
} o7_fetch_op;

typedef struct o7_fetch o7_fetch;

/** What the coroutine asked for. Strings are valid until the next resume. */
typedef struct o7_fetch_request {
    o7_fetch_op op;
    const char *a;    /* get/post: path; emit: raw record; attach: name */
    size_t alen;
    const char *b;    /* post/put: body; attach: url */
    size_t blen;
    const char *c, *d; /* restore: remember (a type, b old, c new); report (a old id,
                          b outcome, c detail, d fields); map (a type, b old) */
    size_t clen, dlen;
    o7_query_param *query; /* get: parameters (owned by the fetch) */
    size_t nquery;
    long ms;          /* sleep */
} o7_fetch_request;

/** Starts p's fetch hook; the first o7_fetch_resume runs it. */
o7_rc o7_fetch_start(o7_plugins *ps, const o7_plugin *p, o7_fetch **out, o7_err *err);
/* status values of o7_fetch_resume that are not HTTP statuses */
#define O7_FETCH_ANSWER_NONE (-1)       /* resume with nothing (first call, sleep) */
#define O7_FETCH_ANSWER_OBJECT (-2)     /* resume with body only (attach: the object) */
#define O7_FETCH_ANSWER_NIL_ERR (-3)    /* resume with nil, body (attach: the error) */
#define O7_FETCH_ANSWER_NIL (-4)        /* resume with nil */

/** Resumes with the answer to the last request (none for the first call):
 * for get/post the status and body; for emit true (status 1, no body); for
 * attach the object name (O7_FETCH_ANSWER_OBJECT) or nil and the error
 * (O7_FETCH_ANSWER_NIL_ERR). Fills *req with the next request, or
 * O7_FETCH_DONE. */
o7_rc o7_fetch_resume(o7_fetch *f, long status, const char *body, size_t blen,
                      o7_fetch_request *req, o7_err *err);
void o7_fetch_free(o7_fetch *f);

/** What a restore hook is told about the run. */
typedef struct o7_restore_ctx {
    int dry_run, same_store, activate;
    const char *source_store, *target_store, *backup_id;
} o7_restore_ctx;

/** Starts p's restore.write hook on a batch of raw records (the lines of
 * the backup object); drive it with o7_fetch_resume like a fetch hook. */
o7_rc o7_restore_start(o7_plugins *ps, const o7_plugin *p, const char *const *raws,
                       const size_t *lens, size_t n, const o7_restore_ctx *ctx, o7_fetch **out,
                       o7_err *err);

#endif
