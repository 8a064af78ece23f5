/* luajson.c - JSON decode/encode for plugins, keeping [] apart from {}. */
#include "luajson.h"
#include "buf.h"
#include "json.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define ARRAY_MT "o7.json.array"
#define OBJECT_MT "o7.json.object"
#define NULL_KEY "o7.json.null"

static void push_null(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, NULL_KEY);
}

static int push_value(lua_State *L, const o7_json_span *v, int depth);

static int push_container(lua_State *L, const o7_json_span *v, int depth)
{
    int is_obj = v->kind == O7_JSON_OBJECT;
    lua_newtable(L);                                /* [t] */
    luaL_getmetatable(L, is_obj ? OBJECT_MT : ARRAY_MT);
    lua_setmetatable(L, -2);
    o7_json_iter it;
    o7_json_span k, e;
    int i = 0;
    o7_json_iter_init(&it, v);
    while (o7_json_next(&it, &k, &e)) {
        if (is_obj) {
            char *key = NULL;
            if (o7_json_str(&k, &key) != O7_OK)
                return luaL_error(L, "o7.decode: bad member name");
            lua_pushlstring(L, key, strlen(key));   /* [t, key] */
            free(key);
        } else {
            lua_pushinteger(L, ++i);                /* [t, i] */
        }
        if (push_value(L, &e, depth + 1) != 0)      /* [t, key, value] */
            return -1;
        lua_rawset(L, -3);                          /* [t] */
    }
    return 0;
}

static int push_value(lua_State *L, const o7_json_span *v, int depth)
{
    luaL_checkstack(L, 4, "o7.decode: nested too deep");
    switch (v->kind) {
    case O7_JSON_OBJECT:
    case O7_JSON_ARRAY:
        return push_container(L, v, depth);
    case O7_JSON_STRING: {
        char *s = NULL;
        if (o7_json_str(v, &s) != O7_OK)
            return luaL_error(L, "o7.decode: bad string");
        lua_pushstring(L, s);
        free(s);
        return 0;
    }
    case O7_JSON_NUMBER: {
        char num[64];
        size_t n = v->len < sizeof num - 1 ? v->len : sizeof num - 1;
        memcpy(num, v->p, n);
        num[n] = '\0';
        lua_pushnumber(L, strtod(num, NULL));
        return 0;
    }
    case O7_JSON_TRUE: lua_pushboolean(L, 1); return 0;
    case O7_JSON_FALSE: lua_pushboolean(L, 0); return 0;
    case O7_JSON_NULL: push_null(L); return 0;
    case O7_JSON_INVALID: break;
    }
    return luaL_error(L, "o7.decode: invalid value");
}

int o7_lua_json_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    o7_json_span v;
    o7_err e = {0};
    if (o7_json_parse(text, len, &v, &e) != O7_OK)
        return luaL_error(L, "o7.decode: %s", e.msg);
    push_value(L, &v, 0);
    return 1;
}

/* ---- encode ------------------------------------------------------------ */

static int has_mt(lua_State *L, int idx, const char *name)
{
    if (!lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, name);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

/* An array if marked so, or unmarked with keys exactly 1..n, n > 0. */
static int is_array(lua_State *L, int idx)
{
    if (has_mt(L, idx, ARRAY_MT))
        return 1;
    if (has_mt(L, idx, OBJECT_MT))
        return 0;
    size_t n = lua_objlen(L, idx), count = 0;
    if (n == 0)
        return 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TNUMBER) {
            lua_pop(L, 1);
            return 0;
        }
        count++;
    }
    return count == n;
}

static void encode(lua_State *L, int idx, o7_buf *b, int depth);

static void encode_number(lua_State *L, int idx, o7_buf *b)
{
    double d = lua_tonumber(L, idx);
    if (!isfinite(d))
        luaL_error(L, "o7.encode: %f cannot be written as JSON", d);
    if (d == floor(d) && fabs(d) < 9007199254740992.0)
        o7_buf_printf(b, "%.0f", d);
    else
        o7_buf_printf(b, "%.17g", d);
}

static void encode_table(lua_State *L, int idx, o7_buf *b, int depth)
{
    if (depth > 200)
        luaL_error(L, "o7.encode: nested too deep (a cycle?)");
    if (is_array(L, idx)) {
        size_t n = lua_objlen(L, idx);
        o7_buf_putc(b, '[');
        for (size_t i = 1; i <= n; i++) {
            if (i > 1)
                o7_buf_putc(b, ',');
            lua_rawgeti(L, idx, (int)i);
            encode(L, lua_gettop(L), b, depth + 1);
            lua_pop(L, 1);
        }
        o7_buf_putc(b, ']');
        return;
    }
    o7_buf_putc(b, '{');
    int first = 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {                       /* [..., key, value] */
        size_t klen;
        if (lua_type(L, -2) != LUA_TSTRING && lua_type(L, -2) != LUA_TNUMBER)
            luaL_error(L, "o7.encode: an object key must be a string");
        lua_pushvalue(L, -2);                        /* [..., key, value, key copy] */
        const char *k = lua_tolstring(L, -1, &klen);
        if (!first)
            o7_buf_putc(b, ',');
        first = 0;
        o7_buf_json_str(b, k, klen);
        o7_buf_putc(b, ':');
        lua_pop(L, 1);                               /* [..., key, value] */
        encode(L, lua_gettop(L), b, depth + 1);
        lua_pop(L, 1);                               /* [..., key] */
    }
    o7_buf_putc(b, '}');
}

static void encode(lua_State *L, int idx, o7_buf *b, int depth)
{
    switch (lua_type(L, idx)) {
    case LUA_TNIL: o7_buf_puts(b, "null"); return;
    case LUA_TBOOLEAN: o7_buf_puts(b, lua_toboolean(L, idx) ? "true" : "false"); return;
    case LUA_TNUMBER: encode_number(L, idx, b); return;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        o7_buf_json_str(b, s, len);
        return;
    }
    case LUA_TLIGHTUSERDATA:
        push_null(L);
        if (lua_rawequal(L, -1, idx)) {
            lua_pop(L, 1);
            o7_buf_puts(b, "null");
            return;
        }
        lua_pop(L, 1);
        break;
    case LUA_TTABLE: encode_table(L, idx, b, depth); return;
    default: break;
    }
    luaL_error(L, "o7.encode: a %s cannot be written as JSON", luaL_typename(L, idx));
}

static int buf_gc(lua_State *L)
{
    o7_buf_free(lua_touserdata(L, 1));
    return 0;
}

int o7_lua_json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    /* The buffer lives in a userdata, so a Lua error raised while encoding
     * (a function value, a cycle) still frees it. */
    o7_buf *b = lua_newuserdata(L, sizeof *b);      /* [v, ud] */
    memset(b, 0, sizeof *b);
    if (luaL_newmetatable(L, "o7.json.buf")) {
        lua_pushcfunction(L, buf_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    encode(L, 1, b, 0);
    lua_pushlstring(L, b->data ? b->data : "", b->len); /* [v, ud, text] */
    o7_buf_free(b);
    return 1;
}

static int is_array_fn(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    luaL_getmetatable(L, ARRAY_MT);
    lua_setmetatable(L, 1);
    return 1;
}

static int is_object_fn(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    luaL_getmetatable(L, OBJECT_MT);
    lua_setmetatable(L, 1);
    return 1;
}

void o7_lua_json_push(lua_State *L)
{
    if (luaL_newmetatable(L, ARRAY_MT))
        lua_pushstring(L, "array"), lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
    if (luaL_newmetatable(L, OBJECT_MT))
        lua_pushstring(L, "object"), lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, NULL_KEY);
    if (lua_isnil(L, -1)) {
        static char null_tag;
        lua_pop(L, 1);
        lua_pushlightuserdata(L, &null_tag);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, NULL_KEY);
    }
    lua_pop(L, 1);
    lua_newtable(L);                                 /* [t] */
    lua_pushcfunction(L, o7_lua_json_decode);
    lua_setfield(L, -2, "decode");
    lua_pushcfunction(L, o7_lua_json_encode);
    lua_setfield(L, -2, "encode");
    lua_pushcfunction(L, is_array_fn);
    lua_setfield(L, -2, "array");
    lua_pushcfunction(L, is_object_fn);
    lua_setfield(L, -2, "object");
    push_null(L);
    lua_setfield(L, -2, "null");
}
