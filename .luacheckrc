-- luacheck settings for o7's Lua: plugins run in a sandbox whose globals
-- are set by core/lua/host.lua.
std = "luajit"
max_line_length = 110
files["plugins/"] = {
    std = "min",
    read_globals = { "cjson", "o7", "unpack" },
}
files["core/lua/"] = {
    globals = {},
}
