-- brands: 250 per page, read by id ranges side by side. Restored one per
-- call, matched by name (unique in a store).
local R = require("_restore")

return {
    contract = 1,
    type = "brands",
    version = "1.0.0",
    scope = "store_v2_products_read_only",
    natural_key = { "name" },
    list = {
        api = "v3",
        path = "/catalog/brands",
        paging = "keyset",
        limit = 250,
        query = { sort = "id", direction = "asc" },
        keyset = {
            after = "id:greater",
            upto = "id:max",
            newest = { sort = "id", direction = "desc" },
        },
    },
    restore = R.one_by_one {
        type = "brands",
        path = "/v3/catalog/brands",
        item = "/v3/catalog/brands/%s",
        strip = { "id" },
        -- A store hosts each brand image under its own URL, so the URL a
        -- target gives back never equals the backup's: sent on create and
        -- when other fields change, but not a difference by itself.
        ignore = { "image_url" },
        lookup = function(api, body)
            return R.find(api, "/v3/catalog/brands", { name = body.name })
        end,
    },
}
