/* luajson.h - JSON for plugins that write: decode into Lua tables that
 * remember whether they were arrays or objects, and encode them back.
 *
 * lua-cjson, as Debian ships it, turns an empty array into {} and keeps 14
 * significant digits, which the API would reject or round. These keep []
 * as [], and write numbers with every digit a double holds. */
#ifndef O7_LUAJSON_H
#define O7_LUAJSON_H

#include <lua.h>

/** o7.decode(text) -> value. Arrays and objects get the metatables
 * o7.array and o7.object; JSON null becomes o7.null. */
int o7_lua_json_decode(lua_State *L);
/** o7.encode(value) -> text. A table is an array when its metatable is
 * o7.array, or when it has no such mark and its keys are 1..n (n > 0). */
int o7_lua_json_encode(lua_State *L);
/** Pushes a table {decode, encode, array, object, null} onto the stack. */
void o7_lua_json_push(lua_State *L);

#endif
