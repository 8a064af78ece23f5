/* plugin.c - loads Lua plugins into sandboxes and calls their hooks.
 *
 * One lua_State holds every plugin, each with its own environment table
 * (core/lua/host.lua builds it). Lua is entered only through call() and,
 * for fetch coroutines, resume(); both turn failures into o7_rc with the
 * plugin's name, the hook and a traceback. */
#include "plugin.h"
#include "buf.h"
#include "json.h"
#include "luajson.h"
#include "embedded.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int luaopen_cjson(lua_State *L);

struct o7_fetch {
    o7_plugins *ps;
    const o7_plugin *p;
    lua_State *co;
    int co_ref;
    o7_query_param *query;
    size_t nquery;
};

/* ---- calling into Lua --------------------------------------------------- */

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

/* First line of a Lua error, for sentences; the log gets the whole text. */
static void first_line(const char *msg, char *out, size_t n)
{
    size_t len = strcspn(msg, "\n");
    if (len >= n)
        len = n - 1;
    memcpy(out, msg, len);
    out[len] = '\0';
}

/* Calls the function below nargs arguments on the stack. The only
 * lua_pcall in o7. */
static o7_rc call(lua_State *L, const char *who, const char *hook, int nargs, int nres,
                  o7_err *err)
{
    int base = lua_gettop(L) - nargs; /* index of the function */
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int status = lua_pcall(L, nargs, nres, base);
    lua_remove(L, base);
    if (status == 0)
        return O7_OK;
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL)
        msg = "(no message)";
    o7_error("plugin", "%s: %s failed: %s", who, hook, msg);
    char line[512];
    first_line(msg, line, sizeof line);
    o7_fail(err, status == LUA_ERRMEM ? O7_ERR_NOMEM : O7_ERR_PLUGIN, "plugin %s: %s failed: %s",
            who, hook, line);
    lua_pop(L, 1);
    return status == LUA_ERRMEM ? O7_ERR_NOMEM : O7_ERR_PLUGIN;
}

/* ---- the api table given to plugins ------------------------------------- */

static int api_log(lua_State *L)
{
    const char *level = luaL_checkstring(L, 1);
    const char *msg = luaL_checkstring(L, 2);
    int lv = o7_log_level_parse(level);
    if (lv < 0 || lv >= O7_LOG_OFF)
        return luaL_error(L, "o7.log: level must be debug, info, warn or error");
    lua_Debug ar;
    const char *src = "plugin";
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "S", &ar))
        src = ar.short_src;
    o7_log((o7_log_level)lv, "plugin", "%s: %s", src, msg);
    return 0;
}

/* Reads a file under the plugins folder for require(); nil if absent. */
static int api_read_plugin_file(lua_State *L)
{
    const char *rel = luaL_checkstring(L, 1);
    if (strstr(rel, "..") || rel[0] == '/')
        return 0;
    lua_getfield(L, LUA_REGISTRYINDEX, "o7.plugins_dir");
    const char *dir = lua_tostring(L, -1);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", rel);
    lua_pop(L, 1);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        luaL_addlstring(&b, chunk, n);
    fclose(f);
    luaL_pushresult(&b);
    return 1;
}

/* o7.records(body): the raw text of each record of a page (v3 `data` or a
 * v2 bare array), so a plugin can emit records without re-encoding them
 * (cjson would turn [] into {} and round numbers). */
static int api_records(lua_State *L)
{
    size_t len;
    const char *body = luaL_checklstring(L, 1, &len);
    o7_json_span doc, recs;
    o7_err e = {0};
    if (len == 0) {
        lua_newtable(L);
        return 1;
    }
    if (o7_json_parse(body, len, &doc, &e) != O7_OK)
        return luaL_error(L, "o7.records: %s", e.msg);
    if (doc.kind == O7_JSON_OBJECT) {
        if (o7_json_get(&doc, "data", &recs) != O7_OK)
            return luaL_error(L, "o7.records: the page has no data member");
    } else {
        recs = doc;
    }
    if (recs.kind != O7_JSON_ARRAY)
        return luaL_error(L, "o7.records: the records are not an array");
    lua_newtable(L);                       /* [t] */
    o7_json_iter it;
    o7_json_span k, v;
    int i = 0;
    o7_json_iter_init(&it, &recs);
    while (o7_json_next(&it, &k, &v)) {
        lua_pushlstring(L, v.p, v.len);    /* [t, raw] */
        lua_rawseti(L, -2, ++i);           /* [t] */
    }
    return 1;
}

static void push_api(lua_State *L)
{
    lua_newtable(L);
    o7_lua_json_push(L);
    lua_setfield(L, -2, "json");
    lua_pushcfunction(L, api_records);
    lua_setfield(L, -2, "records");
    lua_pushcfunction(L, api_log);
    lua_setfield(L, -2, "log");
    lua_pushcfunction(L, api_read_plugin_file);
    lua_setfield(L, -2, "read_plugin_file");
}

/* ---- reading a description into C ---------------------------------------- */

static char *field_str(lua_State *L, int idx, const char *k)
{
    lua_getfield(L, idx, k);
    char *s = lua_type(L, -1) == LUA_TSTRING ? strdup(lua_tostring(L, -1)) : NULL;
    lua_pop(L, 1);
    return s;
}

static int field_int(lua_State *L, int idx, const char *k)
{
    lua_getfield(L, idx, k);
    int v = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return v;
}

static int field_bool(lua_State *L, int idx, const char *k)
{
    lua_getfield(L, idx, k);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* A list of {name, value} pairs at field k of the table at idx. */
static void read_query(lua_State *L, int idx, const char *k, o7_query_param **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    lua_getfield(L, idx, k);                 /* [q] */
    if (lua_type(L, -1) == LUA_TTABLE) {
        size_t len = lua_objlen(L, -1);
        *out = calloc(len ? len : 1, sizeof **out);
        for (size_t i = 0; *out && i < len; i++) {
            lua_rawgeti(L, -1, (int)i + 1); /* [q, pair] */
            lua_rawgeti(L, -1, 1);          /* [q, pair, name] */
            lua_rawgeti(L, -2, 2);          /* [q, pair, name, value] */
            (*out)[i].name = strdup(lua_tostring(L, -2));
            (*out)[i].value = strdup(lua_tostring(L, -1));
            lua_pop(L, 3);                  /* [q] */
            (*n)++;
        }
    }
    lua_pop(L, 1);                           /* [] */
}

static void free_query(o7_query_param *q, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(q[i].name);
        free(q[i].value);
    }
    free(q);
}

/* Fills p from the description table on top of the stack (left there). */
static void read_description(lua_State *L, o7_plugin *p)
{
    int d = lua_gettop(L);
    p->type = field_str(L, d, "type");
    p->version = field_str(L, d, "version");
    p->scope = field_str(L, d, "scope");
    p->file = field_str(L, d, "file");
    p->has_children = field_bool(L, d, "has_children");
    p->has_fetch = field_bool(L, d, "has_fetch");
    p->has_restore = field_bool(L, d, "has_restore");
    p->restore_batch = field_int(L, d, "restore_batch");
    p->restore_parallel = field_int(L, d, "restore_parallel");
    p->restore_parent = field_str(L, d, "restore_parent");
    read_query(L, d, "restore_needs", &p->restore_needs, &p->nneeds);

    lua_getfield(L, d, "depends");           /* [d, deps] */
    size_t nd = lua_objlen(L, -1);
    p->depends = calloc(nd ? nd : 1, sizeof *p->depends);
    for (size_t i = 0; p->depends && i < nd; i++) {
        lua_rawgeti(L, -1, (int)i + 1);
        p->depends[p->ndepends++] = strdup(lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);                           /* [d] */

    lua_getfield(L, d, "list");              /* [d, list] */
    if (lua_type(L, -1) == LUA_TTABLE) {
        int l = lua_gettop(L);
        o7_list_spec *s = &p->list;
        p->has_list = 1;
        char *api = field_str(L, l, "api");
        s->v2 = api && strcmp(api, "v2") == 0;
        free(api);
        s->path = field_str(L, l, "path");
        char *paging = field_str(L, l, "paging");
        s->paging = strcmp(paging, "keyset") == 0 ? O7_PAGING_KEYSET
                    : strcmp(paging, "cursor") == 0 ? O7_PAGING_CURSOR
                                                    : O7_PAGING_PAGE;
        free(paging);
        s->limit = field_int(L, l, "limit");
        s->key = field_str(L, l, "key");
        s->count_path = field_str(L, l, "count_path");
        s->after = field_str(L, l, "after");
        s->from = field_str(L, l, "from");
        s->upto = field_str(L, l, "upto");
        read_query(L, l, "query", &s->query, &s->nquery);
        read_query(L, l, "newest", &s->newest, &s->nnewest);
    }
    lua_pop(L, 1);                           /* [d] */
}

static void plugin_clear(o7_plugin *p)
{
    free(p->type);
    free(p->version);
    free(p->scope);
    free(p->file);
    free(p->restore_parent);
    free_query(p->restore_needs, p->nneeds);
    for (size_t i = 0; i < p->ndepends; i++)
        free(p->depends[i]);
    free(p->depends);
    o7_list_spec *s = &p->list;
    free(s->path);
    free(s->key);
    free(s->count_path);
    free(s->after);
    free(s->from);
    free(s->upto);
    free_query(s->query, s->nquery);
    free_query(s->newest, s->nnewest);
}

/* ---- loading ---------------------------------------------------------- */

static int add_failure(o7_plugins *ps, const char *file, const char *reason)
{
    o7_plugin_failure *f = realloc(ps->failures, (ps->nfailures + 1) * sizeof *f);
    if (f == NULL)
        return -1;
    ps->failures = f;
    f[ps->nfailures].file = strdup(file);
    f[ps->nfailures].reason = strdup(reason);
    ps->nfailures++;
    o7_warn("plugin", "%s did not load: %s", file, reason);
    return 0;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    o7_buf b = O7_BUF_INIT;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (o7_buf_append(&b, chunk, n) != O7_OK)
            break;
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        o7_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return o7_buf_steal(&b);
}

/* Loads dir/rel as a plugin: host.load(dir, rel, source, api). */
static void load_one(o7_plugins *ps, const char *rel)
{
    lua_State *L = ps->L;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", ps->dir, rel);
    size_t len = 0;
    char *src = read_file(path, &len);
    if (src == NULL) {
        add_failure(ps, path, strerror(errno));
        return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, ps->host_ref); /* [host] */
    lua_getfield(L, -1, "load");                     /* [host, load] */
    lua_pushstring(L, ps->dir);
    lua_pushstring(L, rel);
    lua_pushlstring(L, src, len);
    free(src);
    push_api(L);                                     /* [host, load, dir, rel, src, api] */
    o7_err err = {0};
    if (call(L, path, "load", 4, 2, &err) != O7_OK) { /* [host] */
        add_failure(ps, path, err.msg);
        lua_pop(L, 1);
        return;
    }                                                /* [host, desc|nil, msg] */
    if (lua_isnil(L, -2)) {
        const char *msg = lua_tostring(L, -1);
        add_failure(ps, path, msg ? msg : "failed to load");
        lua_pop(L, 3);
        return;
    }
    lua_pop(L, 1);                                   /* [host, desc] */
    o7_plugin p = {0};
    read_description(L, &p);
    if (o7_plugins_find(ps, p.type) != NULL) {
        char why[256];
        snprintf(why, sizeof why, "type %s is already provided by another plugin", p.type);
        add_failure(ps, path, why);
        plugin_clear(&p);
        lua_pop(L, 2);
        return;
    }
    p.ref = luaL_ref(L, LUA_REGISTRYINDEX);          /* [host] */
    lua_pop(L, 1);                                   /* [] */
    o7_plugin *items = realloc(ps->items, (ps->n + 1) * sizeof *items);
    if (items == NULL) {
        plugin_clear(&p);
        return;
    }
    ps->items = items;
    /* Keep items sorted by type for listing and lookup. */
    size_t at = ps->n;
    while (at > 0 && strcmp(items[at - 1].type, p.type) > 0) {
        items[at] = items[at - 1];
        at--;
    }
    items[at] = p;
    ps->n++;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_plugin_name(const char *name)
{
    return name[0] != '.' && name[0] != '_' && strncmp(name, "test_", 5) != 0;
}

static o7_rc scan_dir(o7_plugins *ps, o7_err *err)
{
    DIR *d = opendir(ps->dir);
    if (d == NULL)
        return o7_fail(err, O7_ERR_CONFIG, "cannot read the plugins folder %s: %s", ps->dir,
                       strerror(errno));
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_plugin_name(e->d_name))
            continue;
        char **nn = realloc(names, (n + 1) * sizeof *names);
        if (nn == NULL)
            break;
        names = nn;
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; i < n; i++) {
        char rel[1024], path[4096];
        struct stat st;
        size_t len = strlen(names[i]);
        snprintf(path, sizeof path, "%s/%s", ps->dir, names[i]);
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(rel, sizeof rel, "%s/init.lua", names[i]);
            snprintf(path, sizeof path, "%s/%s", ps->dir, rel);
            if (access(path, F_OK) == 0)
                load_one(ps, rel);
        } else if (len > 4 && strcmp(names[i] + len - 4, ".lua") == 0) {
            load_one(ps, names[i]);
        }
        free(names[i]);
    }
    free(names);
    return O7_OK;
}

static const struct o7_embedded *embedded(const char *name)
{
    for (const struct o7_embedded *e = o7_embedded_lua; e->name; e++)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

o7_rc o7_plugins_load(const char *dir, o7_plugins **out, o7_err *err)
{
    o7_plugins *ps = calloc(1, sizeof *ps);
    if (ps == NULL)
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    ps->dir = strdup(dir);
    lua_State *L = luaL_newstate();
    if (L == NULL || ps->dir == NULL) {
        free(ps->dir);
        free(ps);
        return o7_fail(err, O7_ERR_NOMEM, "cannot start LuaJIT");
    }
    ps->L = L;
    luaL_openlibs(L);
    lua_getglobal(L, "package");               /* [package] */
    lua_getfield(L, -1, "preload");            /* [package, preload] */
    lua_pushcfunction(L, luaopen_cjson);
    lua_setfield(L, -2, "cjson");
    lua_pop(L, 2);                             /* [] */
    lua_pushstring(L, dir);
    lua_setfield(L, LUA_REGISTRYINDEX, "o7.plugins_dir");

    const struct o7_embedded *h = embedded("host");
    O7_ASSERT(h != NULL);
    if (luaL_loadbuffer(L, h->src, h->len, "@core/lua/host.lua") != 0) {
        o7_fail(err, O7_ERR_INTERNAL, "core/lua/host.lua: %s", lua_tostring(L, -1));
        o7_plugins_free(ps);
        return O7_ERR_INTERNAL;
    }                                          /* [chunk] */
    o7_rc rc = call(L, "host", "start", 0, 1, err);
    if (rc != O7_OK) {
        o7_plugins_free(ps);
        return rc;
    }                                          /* [host] */
    ps->host_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    rc = scan_dir(ps, err);
    if (rc != O7_OK) {
        o7_plugins_free(ps);
        return rc;
    }
    *out = ps;
    return O7_OK;
}

void o7_plugins_free(o7_plugins *ps)
{
    if (ps == NULL)
        return;
    for (size_t i = 0; i < ps->n; i++)
        plugin_clear(&ps->items[i]);
    free(ps->items);
    for (size_t i = 0; i < ps->nfailures; i++) {
        free(ps->failures[i].file);
        free(ps->failures[i].reason);
    }
    free(ps->failures);
    if (ps->L)
        lua_close(ps->L);
    free(ps->dir);
    free(ps);
}

o7_plugin *o7_plugins_find(o7_plugins *ps, const char *type)
{
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->items[i].type, type) == 0)
            return &ps->items[i];
    return NULL;
}

/* ---- hooks ---------------------------------------------------------- */

o7_rc o7_plugin_children(o7_plugins *ps, const o7_plugin *p, const char *raw, size_t len,
                         o7_child_spec **out, size_t *n, o7_err *err)
{
    lua_State *L = ps->L;
    *out = NULL;
    *n = 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ps->host_ref); /* [host] */
    lua_getfield(L, -1, "children");                 /* [host, children] */
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->ref);       /* [host, children, desc] */
    lua_pushlstring(L, raw, len);                    /* [host, children, desc, raw] */
    o7_rc rc = call(L, p->type, "children", 2, 1, err);
    if (rc != O7_OK) {
        lua_pop(L, 1);
        return rc;
    }                                                /* [host, specs] */
    size_t count = lua_objlen(L, -1);
    o7_child_spec *specs = calloc(count ? count : 1, sizeof *specs);
    if (specs == NULL) {
        lua_pop(L, 2);
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < count; i++) {
        lua_rawgeti(L, -1, (int)i + 1);              /* [host, specs, spec] */
        int s = lua_gettop(L);
        specs[i].member = field_str(L, s, "member");
        specs[i].path = field_str(L, s, "path");
        char *api = field_str(L, s, "api");
        specs[i].v2 = api && strcmp(api, "v2") == 0;
        free(api);
        specs[i].limit = field_int(L, s, "limit");
        specs[i].empty = field_bool(L, s, "empty");
        read_query(L, s, "query", &specs[i].query, &specs[i].nquery);
        lua_pop(L, 1);                               /* [host, specs] */
    }
    lua_pop(L, 2);                                   /* [] */
    *out = specs;
    *n = count;
    return O7_OK;
}

void o7_child_specs_free(o7_child_spec *specs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(specs[i].member);
        free(specs[i].path);
        free_query(specs[i].query, specs[i].nquery);
    }
    free(specs);
}

/* After host.start_fetch or host.start_restore ran (rc) with [host, co] or
 * [host] on the stack: keeps the coroutine alive in the registry for f. */
static o7_rc adopt(lua_State *L, o7_fetch *f, o7_rc rc, o7_fetch **out)
{
    if (rc != O7_OK) {
        lua_pop(L, 1);                               /* [] */
        free(f);
        return rc;
    }                                                /* [host, co] */
    f->co = lua_tothread(L, -1);
    f->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);      /* [host] */
    lua_pop(L, 1);                                   /* [] */
    *out = f;
    return O7_OK;
}

/* A coroutine-to-be for p, with host[start], p's description and the api
 * pushed: [host, start, desc, api]. NULL (nothing pushed) when out of
 * memory. */
static o7_fetch *hook_begin(o7_plugins *ps, const o7_plugin *p, const char *start)
{
    lua_State *L = ps->L;
    o7_fetch *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->ps = ps;
    f->p = p;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ps->host_ref); /* [host] */
    lua_getfield(L, -1, start);                      /* [host, start] */
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->ref);       /* [host, start, desc] */
    push_api(L);                                     /* [host, start, desc, api] */
    return f;
}

o7_rc o7_fetch_start(o7_plugins *ps, const o7_plugin *p, o7_fetch **out, o7_err *err)
{
    lua_State *L = ps->L;
    o7_fetch *f = hook_begin(ps, p, "start_fetch");  /* [host, start, desc, api] */
    if (f == NULL)
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    o7_rc rc = call(L, p->type, "fetch", 2, 1, err);
    return adopt(L, f, rc, out);
}

static void fetch_clear_query(o7_fetch *f)
{
    free_query(f->query, f->nquery);
    f->query = NULL;
    f->nquery = 0;
}

/* A query table {name = value} yielded by get(), into sorted pairs. */
static void yielded_query(o7_fetch *f, lua_State *co, int idx)
{
    if (lua_type(co, idx) != LUA_TTABLE)
        return;
    size_t cap = 0;
    lua_pushnil(co);
    while (lua_next(co, idx)) {
        if (lua_type(co, -2) == LUA_TSTRING && (lua_isstring(co, -1))) {
            if (f->nquery == cap) {
                cap = cap ? cap * 2 : 8;
                o7_query_param *q = realloc(f->query, cap * sizeof *q);
                if (q == NULL) {
                    lua_pop(co, 2);
                    return;
                }
                f->query = q;
            }
            f->query[f->nquery].name = strdup(lua_tostring(co, -2));
            f->query[f->nquery].value = strdup(lua_tostring(co, -1));
            f->nquery++;
        }
        lua_pop(co, 1);
    }
}

o7_rc o7_fetch_resume(o7_fetch *f, long status, const char *body, size_t blen,
                      o7_fetch_request *req, o7_err *err)
{
    lua_State *co = f->co;
    fetch_clear_query(f);
    memset(req, 0, sizeof *req);
    int nargs = 0;
    if (lua_status(co) == LUA_YIELD) {
        lua_settop(co, 0);
        if (status == O7_FETCH_ANSWER_NIL) {
            lua_pushnil(co);
            nargs = 1;
        } else if (status == O7_FETCH_ANSWER_NIL_ERR) {
            lua_pushnil(co);
            nargs = 1;
        } else if (status == 1 && body == NULL) {
            lua_pushboolean(co, 1);
            nargs = 1;
        } else if (status >= 0) {
            lua_pushinteger(co, status);
            nargs = 1;
        }
        if (body) {
            lua_pushlstring(co, body, blen);
            nargs++;
        }
    }
    int st = lua_resume(co, nargs);
    if (st == 0) {
        req->op = O7_FETCH_DONE;
        return O7_OK;
    }
    if (st != LUA_YIELD) {
        const char *msg = lua_tostring(co, -1);
        luaL_traceback(f->ps->L, co, msg ? msg : "(no message)", 0);
        const char *tb = lua_tostring(f->ps->L, -1);
        o7_error("plugin", "%s: fetch failed: %s", f->p->type, tb);
        char line[512];
        first_line(msg ? msg : "(no message)", line, sizeof line);
        lua_pop(f->ps->L, 1);
        return o7_fail(err, O7_ERR_PLUGIN, "plugin %s: fetch failed: %s", f->p->type, line);
    }
    const char *op = lua_tostring(co, 1);
    if (op == NULL)
        return o7_fail(err, O7_ERR_PLUGIN, "plugin %s: fetch yielded something that is not a "
                       "request (use the api table, not coroutine.yield)", f->p->type);
    req->a = lua_tolstring(co, 2, &req->alen);
    if (strcmp(op, "get") == 0) {
        req->op = O7_FETCH_GET;
        yielded_query(f, co, 3);
        req->query = f->query;
        req->nquery = f->nquery;
    } else if (strcmp(op, "post") == 0 || strcmp(op, "put") == 0) {
        req->op = op[1] == 'o' ? O7_FETCH_POST : O7_FETCH_PUT;
        req->b = lua_tolstring(co, 3, &req->blen);
    } else if (strcmp(op, "delete") == 0) {
        req->op = O7_FETCH_DELETE;
        yielded_query(f, co, 3);
        req->query = f->query;
        req->nquery = f->nquery;
    } else if (strcmp(op, "map") == 0 || strcmp(op, "remember") == 0 ||
               strcmp(op, "report") == 0 || strcmp(op, "upload") == 0) {
        req->op = op[0] == 'm' ? O7_FETCH_MAP : op[2] == 'm' ? O7_FETCH_REMEMBER
                  : op[2] == 'p' ? O7_FETCH_REPORT : O7_FETCH_UPLOAD;
        req->b = lua_tolstring(co, 3, &req->blen);
        req->c = lua_tolstring(co, 4, &req->clen);
        req->d = lua_tolstring(co, 5, &req->dlen);
        if (req->b == NULL)
            return o7_fail(err, O7_ERR_PLUGIN, "plugin %s: %s needs string arguments",
                           f->p->type, op);
    } else if (strcmp(op, "sleep") == 0) {
        req->op = O7_FETCH_SLEEP;
        req->ms = (long)lua_tointeger(co, 2);
    } else if (strcmp(op, "emit") == 0) {
        req->op = O7_FETCH_EMIT;
    } else if (strcmp(op, "attach") == 0) {
        req->op = O7_FETCH_ATTACH;
        req->b = lua_tolstring(co, 3, &req->blen);
    } else {
        return o7_fail(err, O7_ERR_PLUGIN, "plugin %s: fetch asked for unknown operation %s",
                       f->p->type, op);
    }
    if ((req->op != O7_FETCH_SLEEP && req->a == NULL) ||
        ((req->op == O7_FETCH_POST || req->op == O7_FETCH_PUT || req->op == O7_FETCH_ATTACH) &&
         req->b == NULL))
        return o7_fail(err, O7_ERR_PLUGIN, "plugin %s: %s needs string arguments", f->p->type,
                       op);
    return O7_OK;
}

o7_rc o7_restore_start(o7_plugins *ps, const o7_plugin *p, const char *const *raws,
                       const size_t *lens, size_t n, const o7_restore_ctx *ctx, o7_fetch **out,
                       o7_err *err)
{
    lua_State *L = ps->L;
    o7_fetch *f = hook_begin(ps, p, "start_restore"); /* [host, start, desc, api] */
    if (f == NULL)
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    lua_createtable(L, (int)n, 0);                   /* [..., raws] */
    for (size_t i = 0; i < n; i++) {
        lua_pushlstring(L, raws[i], lens[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_newtable(L);                                 /* [..., raws, ctx] */
    lua_pushboolean(L, ctx->dry_run);
    lua_setfield(L, -2, "dry_run");
    lua_pushboolean(L, ctx->same_store);
    lua_setfield(L, -2, "same_store");
    lua_pushboolean(L, ctx->activate);
    lua_setfield(L, -2, "activate");
    lua_pushstring(L, ctx->source_store);
    lua_setfield(L, -2, "source_store");
    lua_pushstring(L, ctx->target_store);
    lua_setfield(L, -2, "target_store");
    lua_pushstring(L, ctx->backup_id);
    lua_setfield(L, -2, "backup_id");
    o7_rc rc = call(L, p->type, "restore", 4, 1, err);
    return adopt(L, f, rc, out);
}

void o7_fetch_free(o7_fetch *f)
{
    if (f == NULL)
        return;
    fetch_clear_query(f);
    luaL_unref(f->ps->L, LUA_REGISTRYINDEX, f->co_ref);
    free(f);
}
